"""Masks in and out: label maps from NIfTI, NRRD, TotalSegmentator, DICOM SEG and RTSTRUCT
read exactly onto the image they belong to; DICOM SEG written for PACS viewers.

Reading (:func:`read`) always produces a label :class:`~netvolume.volume.Volume` on the
*reference* image's grid, with ``label_names`` naming each value:

* **NIfTI / NRRD label maps** are matched by their affine, never by array index: a file
  stored in another axis order or direction (RAS NIfTI, a y-flipped mask, a cropped 3D
  Slicer export) is copied voxel for voxel; a file on a different grid is resampled by
  nearest neighbour and the result says so (``provenance.notes``).
* **TotalSegmentator** output: a folder of ``<structure>.nii.gz`` (values 1..N in the
  order of ``roi``, else of the file names) or one multilabel file whose class map is in
  its header extension (``--ml``) or given as ``class_map``.
* **DICOM SEG** (BINARY, FRACTIONAL thresholded at ``fraction_threshold``, LABELMAP;
  overlapping segments readable one at a time): frames placed by their plane positions
  through highdicom. Label value = SegmentNumber.
* **RTSTRUCT**: closed planar contours rasterised in patient coordinates, several
  contours per slice combined by the even-odd rule (holes); contours that miss the
  reference slices are reported. Label value = ROINumber.

A mask whose frame of reference differs from the image's, or that reaches outside the
image, is an error naming both, unless the caller allows it (``allow_other_frame``,
``allow_resample``). A SEG derived from another series than the reference is an error
unless resampling is allowed.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from netvolume.errors import (
    InputPathError,
    MaskError,
    MaskGridError,
    MaskOverlapError,
    MaskReferenceError,
    RoiNotFoundError,
)
from netvolume.io.masks._grid import describe_grid, place_on_reference
from netvolume.io.masks._labelmap import (
    LabelMap,
    is_label_map_file,
    list_mask_folder,
    read_class_map,
    read_label_map,
    smallest_label_dtype,
    structure_name,
)
from netvolume.io.masks._rtstruct import RTSTRUCT_SOP_CLASS, rasterise_roi, roi_table
from netvolume.io.masks._seg_read import (
    SEG_SOP_CLASSES,
    open_seg,
    referenced_series_uids,
    segment_array,
)
from netvolume.io.masks._seg_write import (
    STRUCTURES,
    Segment,
    SegReference,
    infer_structure,
    load_seg_reference,
    write_seg,
)
from netvolume.volume import Provenance, Volume

__all__ = [
    "MASK_KINDS",
    "STRUCTURES",
    "SegReference",
    "Segment",
    "infer_structure",
    "list_structures",
    "load_seg_reference",
    "read",
    "read_class_map",
    "write_seg",
]

#: What :func:`read` recognises, as reported in ``provenance.settings["mask_kind"]``.
MASK_KINDS = ("nifti", "nrrd", "totalsegmentator-folder", "seg", "rtstruct")


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _roi_list(roi: str | Sequence[str] | None) -> list[str] | None:
    if roi is None:
        return None
    if isinstance(roi, str):
        return [roi]
    names = [str(r) for r in roi]
    if not names:
        raise MaskError("roi is an empty list", hint="give one or more structure names, or None")
    return names


def _select(
    available: Sequence[str], roi: list[str] | None, what: str, files: Sequence[Path]
) -> list[int]:
    """Indices into ``available`` chosen by ``roi`` (exact name, else unique case-insensitive)."""
    if roi is None:
        return list(range(len(available)))
    chosen: list[int] = []
    for name in roi:
        exact = [n for n, a in enumerate(available) if a == name]
        if not exact:
            exact = [n for n, a in enumerate(available) if a.casefold() == name.casefold()]
        if len(exact) != 1:
            listing = ", ".join(repr(a) for a in available) or "(none)"
            problem = "is not in" if not exact else "matches several structures of"
            raise RoiNotFoundError(
                f"ROI {name!r} {problem} {what}; available: {listing}",
                files=files,
                tag="roi",
                hint="pass one of the listed names (CLI --roi NAME)",
            )
        if exact[0] in chosen:
            raise MaskError(f"ROI {name!r} is asked for twice", files=files, tag="roi")
        chosen.append(exact[0])
    return chosen


def _check_frame(
    mask_frame: str,
    reference: Volume,
    what: str,
    files: Sequence[Path],
    allow_other_frame: bool,
    notes: list[str],
) -> None:
    ref_frame = reference.frame_of_reference_uid or ""
    if not mask_frame or not ref_frame or mask_frame == ref_frame:
        if mask_frame and not ref_frame:
            notes.append(f"{what}: the reference image has no frame of reference to compare")
        return
    if allow_other_frame:
        notes.append(
            f"{what}: frame of reference {mask_frame} differs from the reference image's "
            f"{ref_frame}; coordinates taken as they are (allowed by the caller)"
        )
        return
    raise MaskGridError(
        f"{what} is in frame of reference {mask_frame}, the reference image in "
        f"{ref_frame}: patient coordinates of different frames cannot be compared",
        files=files,
        tag="FrameOfReferenceUID",
        hint="read the mask onto the image it was made on, or register the images; "
        "allow_other_frame=True (CLI --allow-other-frame) only when the frames are known "
        "to coincide",
    )


def _combine(
    structures: Sequence[tuple[int, str, np.ndarray]],
    shape: tuple[int, int, int],
    what: str,
    files: Sequence[Path],
) -> np.ndarray:
    """One label array from boolean masks, refusing overlaps (naming the pair)."""
    top = max((v for v, _, _ in structures), default=0)
    out = np.zeros(shape, dtype=smallest_label_dtype(top))
    names = {v: n for v, n, _ in structures}
    for value, name, mask in structures:
        clash = out[mask]
        if np.any(clash):
            other = int(clash[clash != 0][0])
            count = int(np.count_nonzero(clash))
            raise MaskOverlapError(
                f"{what}: {name!r} overlaps {names.get(other, other)!r} on {count} voxel(s) "
                "of the reference grid; one label map cannot hold both",
                files=files,
                hint="read overlapping structures one at a time with roi=NAME (CLI --roi)",
            )
        out[mask] = value
    return out


def list_structures(source: str | Path) -> list[str]:
    """Names of the structures a mask source holds (for choosing ``roi``).

    Works without a reference image: ROI names of an RTSTRUCT, segment labels of a SEG,
    label names of a label map, file names of a TotalSegmentator folder.
    """
    path = _resolve(Path(source))
    kind = _kind(path)
    if kind == "totalsegmentator-folder":
        return [structure_name(p) for p in list_mask_folder(path)]
    if kind in ("nifti", "nrrd"):
        return list(read_label_map(path).names.values())
    if kind == "seg":
        return [s.name for s in open_seg(path, [])[1]]
    import pydicom

    from netvolume.io.dicom import _quiet_pydicom

    with _quiet_pydicom():
        ds = pydicom.dcmread(path)
    return [r.name for r in roi_table(ds, path)]


def _resolve(path: Path) -> Path:
    """A mask file, or a folder of label maps; a folder with one SEG/RTSTRUCT gives that file."""
    if not path.exists():
        raise InputPathError(f"mask source not found: {path}", files=[path])
    if path.is_file():
        return path
    label_files = list_mask_folder(path)
    from netvolume.io.dicom import scan

    objects = [
        o for o in scan(path).objects if o.sop_class_uid in (*SEG_SOP_CLASSES, RTSTRUCT_SOP_CLASS)
    ]
    if label_files and not objects:
        return path
    if len(objects) == 1 and not label_files:
        return objects[0].path
    if not objects:
        raise MaskError(
            f"{path} holds no mask: no NIfTI / NRRD label map and no DICOM SEG or RTSTRUCT",
            files=[path],
            hint="pass the mask file itself",
        )
    listing = ", ".join(str(o.path.relative_to(path)) for o in objects)
    extra = f" and {len(label_files)} label-map file(s)" if label_files else ""
    raise MaskError(
        f"{path} holds several masks ({listing}{extra})",
        files=[path],
        hint="pass the mask file itself",
    )


def _kind(path: Path) -> str:
    if path.is_dir():
        return "totalsegmentator-folder"
    if is_label_map_file(path):
        return "nifti" if path.name.lower().endswith((".nii", ".nii.gz")) else "nrrd"
    import pydicom
    from pydicom.errors import InvalidDicomError

    try:
        ds = pydicom.dcmread(path, stop_before_pixels=True, specific_tags=["SOPClassUID"])
    except (InvalidDicomError, OSError) as exc:
        raise MaskError(
            f"{path.name}: not a NIfTI / NRRD label map and not readable as DICOM ({exc})",
            files=[path],
            hint="netvolume reads .nii, .nii.gz, .nrrd, .nhdr, DICOM SEG and RTSTRUCT",
        ) from exc
    sop = str(getattr(ds, "SOPClassUID", "") or "")
    if sop in SEG_SOP_CLASSES:
        return "seg"
    if sop == RTSTRUCT_SOP_CLASS:
        return "rtstruct"
    raise MaskError(
        f"{path.name}: DICOM object of SOP class {sop or '(none)'} is not a segmentation",
        files=[path],
        tag="SOPClassUID",
        hint="pass a DICOM SEG (1.2.840.10008.5.1.4.1.1.66.4 or .66.7) or RTSTRUCT "
        "(1.2.840.10008.5.1.4.1.1.481.3)",
    )


def read(
    source: str | Path,
    reference: Volume,
    *,
    roi: str | Sequence[str] | None = None,
    allow_resample: bool = False,
    allow_other_frame: bool = False,
    class_map: Mapping[int, str] | str | Path | None = None,
    fraction_threshold: float = 0.5,
    slice_tolerance: float = 0.1,
    tolerance_voxels: float = 0.01,
) -> Volume:
    """Read a mask onto the grid of ``reference`` as a label Volume.

    Parameters
    ----------
    source
        A NIfTI (``.nii``, ``.nii.gz``) or NRRD (``.nrrd``, ``.nhdr``, ``.seg.nrrd``) label
        map, a DICOM SEG or RTSTRUCT file, a folder holding exactly one of those DICOM
        objects, or a folder of binary label maps (TotalSegmentator's default output).
    reference
        The image the mask belongs to; the result has its grid and frame of reference.
    roi
        Structure name(s) to read (ROIName, SegmentLabel, label name or file name; exact,
        else unique case-insensitive match). None reads every structure.
    allow_resample
        Accept a mask that reaches outside the reference image, or a SEG derived from
        another series: what falls outside is dropped and counted in the notes.
    allow_other_frame
        Accept a SEG / RTSTRUCT whose FrameOfReferenceUID differs from the image's and use
        its coordinates as they are (only when the frames are known to coincide).
    class_map
        Names of the values of a label map: a mapping, a JSON file or a ``value name``
        text file (overrides names stored in the file).
    fraction_threshold
        A FRACTIONAL SEG voxel belongs to its segment when its fraction is >= this.
    slice_tolerance
        RTSTRUCT: largest distance of a contour from a reference slice, as a fraction of
        the slice spacing, for it to be rasterised on that slice.
    tolerance_voxels
        Largest offset, in reference voxels, between the grids for them to count as the
        same (voxels copied, no interpolation).

    Returns
    -------
    Volume
        Unsigned integer labels on the reference grid (0 = background); ``label_names``
        maps each value to its structure name; ``modality`` is ``"SEG"``, ``"RTSTRUCT"``
        or ``""``; ``units`` is ``"label"``. ``provenance`` records the source, its
        SHA-256, the reference series, the options and every note (resampling, contours
        missing the slices, axes reordered).

    Raises
    ------
    InputPathError
        The source does not exist.
    RoiNotFoundError
        An ``roi`` name the mask does not hold (the message lists those it holds).
    MaskGridError
        Other frame of reference, or a mask reaching outside the image (see above).
    MaskReferenceError
        A SEG derived from another series than ``reference``.
    ContourError
        An empty, degenerate or non-planar RTSTRUCT contour, or an ROI whose contours all
        miss the reference slices.
    MaskOverlapError
        Structures that overlap, asked for in one label map.
    MaskError
        Anything else that makes the source unusable as a mask.
    """
    if not 0.0 < fraction_threshold <= 1.0:
        raise MaskError(f"fraction_threshold must be in (0, 1]; got {fraction_threshold}")
    if not 0.0 < slice_tolerance < 0.5:
        raise MaskError(
            f"slice_tolerance must be in (0, 0.5) slice spacings; got {slice_tolerance}"
        )
    if reference.array.ndim != 3:
        raise MaskError("the reference image must be a scalar (3D) Volume; got an RGB one")
    path = _resolve(Path(source))
    kind = _kind(path)
    rois = _roi_list(roi)
    names_map = read_class_map(class_map) if class_map is not None else None
    notes: list[str] = []
    settings: dict[str, Any] = {
        "mask_kind": kind,
        "roi": rois,
        "allow_resample": allow_resample,
        "allow_other_frame": allow_other_frame,
        "tolerance_voxels": tolerance_voxels,
        "reference_series_instance_uid": reference.provenance.series_instance_uid,
        "reference_file_list_sha256": reference.provenance.file_list_sha256,
        "reference_grid": describe_grid(reference.spatial_shape, reference.affine),
    }
    mask_series = ""
    mask_sops: tuple[str, ...] = ()
    modality = ""
    if kind == "totalsegmentator-folder":
        array, names, hashes = _read_folder(
            path, reference, rois, allow_resample, tolerance_voxels, notes
        )
        settings["source_sha256"] = hashes
    elif kind in ("nifti", "nrrd"):
        array, names = _read_label_map(
            path, reference, rois, names_map, allow_resample, tolerance_voxels, notes
        )
        settings["source_sha256"] = _sha256(path)
    elif kind == "seg":
        array, names, mask_series, mask_sops = _read_seg(
            path,
            reference,
            rois,
            allow_resample,
            allow_other_frame,
            fraction_threshold,
            tolerance_voxels,
            notes,
        )
        settings["fraction_threshold"] = fraction_threshold
        settings["source_sha256"] = _sha256(path)
        modality = "SEG"
    else:
        array, names, mask_series, mask_sops = _read_rtstruct(
            path, reference, rois, allow_other_frame, slice_tolerance, notes
        )
        settings["slice_tolerance"] = slice_tolerance
        settings["source_sha256"] = _sha256(path)
        modality = "RTSTRUCT"
    prov = Provenance(
        series_instance_uid=mask_series,
        sop_instance_uids=mask_sops,
        source=str(path),
        settings=settings,
        notes=tuple(notes),
    )
    return Volume(
        array,
        reference.affine,
        frame_of_reference_uid=reference.frame_of_reference_uid,
        modality=modality,
        units="label",
        provenance=prov,
        label_names=names,
    )


def _read_label_map(
    path: Path,
    reference: Volume,
    rois: list[str] | None,
    names_map: dict[int, str] | None,
    allow_resample: bool,
    tolerance_voxels: float,
    notes: list[str],
) -> tuple[np.ndarray, dict[int, str]]:
    lm: LabelMap = read_label_map(path, names_map)
    notes.append(f"{path.name}: label names from {lm.names_source}")
    values = sorted(lm.names)
    chosen = _select([lm.names[v] for v in values], rois, path.name, [path])
    keep = [values[n] for n in chosen]
    array = lm.array
    if rois is not None:
        array = np.where(np.isin(array, keep), array, 0).astype(array.dtype)
    notes.append("no frame of reference in the file: matched to the image by affine only")
    placed = place_on_reference(
        array,
        lm.affine,
        reference,
        what=path.name,
        files=[path],
        allow_resample=allow_resample,
        tolerance_voxels=tolerance_voxels,
    )
    notes.extend(placed.notes)
    names = {v: lm.names[v] for v in keep}
    return placed.array, names


def _read_folder(
    folder: Path,
    reference: Volume,
    rois: list[str] | None,
    allow_resample: bool,
    tolerance_voxels: float,
    notes: list[str],
) -> tuple[np.ndarray, dict[int, str], dict[str, str]]:
    files = list_mask_folder(folder)
    available = [structure_name(p) for p in files]
    chosen = _select(available, rois, f"folder {folder}", [folder])
    structures: list[tuple[int, str, np.ndarray]] = []
    hashes: dict[str, str] = {}
    empty: list[str] = []
    for value, n in enumerate(chosen, 1):
        p = files[n]
        lm = read_label_map(p)
        distinct = [int(v) for v in np.unique(lm.array) if v != 0]
        if len(distinct) > 1:
            notes.append(f"{p.name}: values {distinct[:5]} all read as {available[n]!r}")
        placed = place_on_reference(
            (lm.array != 0).astype(np.uint8),
            lm.affine,
            reference,
            what=p.name,
            files=[p],
            allow_resample=allow_resample,
            tolerance_voxels=tolerance_voxels,
        )
        notes.extend(placed.notes)
        mask = placed.array.astype(bool)
        if not mask.any():
            empty.append(available[n])
        structures.append((value, available[n], mask))
        hashes[p.name] = _sha256(p)
    if empty:
        notes.append(f"empty structure(s): {', '.join(empty)}")
    notes.append("no frame of reference in the files: matched to the image by affine only")
    array = _combine(structures, reference.spatial_shape, f"folder {folder}", [folder])
    return array, {v: name for v, name, _ in structures}, hashes


def _read_seg(
    path: Path,
    reference: Volume,
    rois: list[str] | None,
    allow_resample: bool,
    allow_other_frame: bool,
    fraction_threshold: float,
    tolerance_voxels: float,
    notes: list[str],
) -> tuple[np.ndarray, dict[int, str], str, tuple[str, ...]]:
    seg, segments = open_seg(path, notes)
    what = f"SEG {path.name}"
    _check_frame(
        str(getattr(seg, "FrameOfReferenceUID", "") or ""),
        reference,
        what,
        [path],
        allow_other_frame,
        notes,
    )
    ref_series = reference.provenance.series_instance_uid
    derived_from = referenced_series_uids(seg)
    if ref_series and derived_from and ref_series not in derived_from:
        if not allow_resample:
            raise MaskReferenceError(
                f"{what} was derived from series {', '.join(derived_from)}, not from the "
                f"reference series {ref_series}",
                files=[path],
                tag="ReferencedSeriesSequence",
                hint="read it onto the series it was made on; allow resampling "
                "(allow_resample=True, CLI --allow-resample) to place it on this image by "
                "patient coordinates",
            )
        notes.append(
            f"{what}: derived from series {', '.join(derived_from)}; placed on series "
            f"{ref_series} by patient coordinates"
        )
    if not segments:
        raise MaskError(f"{what} describes no segment", files=[path], tag="SegmentSequence")
    chosen = _select([s.name for s in segments], rois, what, [path])
    structures: list[tuple[int, str, np.ndarray]] = []
    names: dict[int, str] = {}
    for n in chosen:
        info = segments[n]
        seg_mask, seg_affine = segment_array(
            seg, info, path, fraction_threshold=fraction_threshold, notes=notes
        )
        label = f"segment {info.number} ({info.name!r}) of {what}"
        placed = place_on_reference(
            seg_mask.astype(np.uint8),
            seg_affine,
            reference,
            what=label,
            files=[path],
            allow_resample=allow_resample,
            tolerance_voxels=tolerance_voxels,
        )
        notes.extend(placed.notes)
        mask = placed.array.astype(bool)
        if not mask.any():
            notes.append(f"{label}: no voxel on the reference image (empty segment)")
        structures.append((info.number, info.name, mask))
        names[info.number] = info.name
        if info.tracking_id or info.tracking_uid:
            notes.append(
                f"segment {info.number} ({info.name!r}): TrackingID {info.tracking_id!r}, "
                f"TrackingUID {info.tracking_uid}"
            )
    array = _combine(structures, reference.spatial_shape, what, [path])
    return (
        array,
        names,
        str(getattr(seg, "SeriesInstanceUID", "") or ""),
        (str(seg.SOPInstanceUID),),
    )


def _read_rtstruct(
    path: Path,
    reference: Volume,
    rois: list[str] | None,
    allow_other_frame: bool,
    slice_tolerance: float,
    notes: list[str],
) -> tuple[np.ndarray, dict[int, str], str, tuple[str, ...]]:
    import pydicom

    from netvolume.io.dicom import _quiet_pydicom

    with _quiet_pydicom():
        ds = pydicom.dcmread(path)
    what = f"RTSTRUCT {path.name}"
    table = roi_table(ds, path)
    chosen = _select([r.name for r in table], rois, what, [path])
    frames = {
        str(getattr(item, "FrameOfReferenceUID", "") or "")
        for item in getattr(ds, "ReferencedFrameOfReferenceSequence", []) or []
    }
    for n in chosen:
        frames.add(table[n].frame_of_reference_uid)
    frames.discard("")
    for frame in sorted(frames):
        _check_frame(frame, reference, what, [path], allow_other_frame, notes)
    ref_series = reference.provenance.series_instance_uid
    drawn_on = _rtstruct_series(ds)
    if ref_series and drawn_on and ref_series not in drawn_on:
        notes.append(
            f"{what}: contours drawn on series {', '.join(drawn_on)}, rasterised on series "
            f"{ref_series} of the same frame of reference"
        )
    to_index = np.linalg.inv(reference.affine)
    structures: list[tuple[int, str, np.ndarray]] = []
    for n in chosen:
        info = table[n]
        mask = rasterise_roi(
            info,
            to_index,
            reference.spatial_shape,
            path=path,
            slice_tolerance=slice_tolerance,
            notes=notes,
        )
        if not mask.any():
            notes.append(f"ROI {info.name!r}: its contours enclose no voxel centre")
        structures.append((info.number, info.name, mask))
    array = _combine(structures, reference.spatial_shape, what, [path])
    return (
        array,
        {v: name for v, name, _ in structures},
        str(getattr(ds, "SeriesInstanceUID", "") or ""),
        (str(getattr(ds, "SOPInstanceUID", "") or ""),),
    )


def _rtstruct_series(ds: Any) -> list[str]:
    uids: list[str] = []
    for frame in getattr(ds, "ReferencedFrameOfReferenceSequence", []) or []:
        for study in getattr(frame, "RTReferencedStudySequence", []) or []:
            for series in getattr(study, "RTReferencedSeriesSequence", []) or []:
                uid = str(getattr(series, "SeriesInstanceUID", "") or "")
                if uid:
                    uids.append(uid)
    return list(dict.fromkeys(uids))

"""Write a :class:`StudyMeasurement` as the ``netvolume measure`` output folder.

Layout of ``OUT/``::

    lesions.csv             one row per lesion, columns LESION_COLUMNS
    study.json              StudyMeasurement.to_dict() + output_files, outputs_not_written,
                            output_notes
    masks/liver.nii.gz      0/1 on the measurement grid (when a liver mask exists)
    masks/spleen.nii.gz     0/1 (when a spleen mask exists)
    masks/lesions.nii.gz    value = lesion_id, names in the NIfTI label table (always)
    masks/organs.seg.dcm    DICOM SEG: liver, spleen (those present)
    masks/lesions.seg.dcm   DICOM SEG: one segment per lesion, TrackingID = lesion name

The folder is built in a hidden sibling (``.OUT.tmp-<pid>``) and renamed into place when
complete, so a reader never sees a half-written output and a failure leaves nothing
behind. An existing ``OUT`` is refused unless ``overwrite``; it is then replaced only after
the new folder is complete, and only if it looks like a previous output (it holds a
``study.json``) or is empty, so a mistyped ``-o`` never deletes a study.

Numbers in ``lesions.csv`` are written at full precision: a float is the shortest text
that reads back to the same double (Python ``repr``), so ``float(cell)`` round-trips
exactly; ``None`` is an empty cell; booleans are ``true`` / ``false``.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import math
import os
import shutil
from collections import Counter
from collections.abc import Iterable
from concurrent.futures import Executor, Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from netvolume.errors import InputPathError
from netvolume.io.masks import Segment, SegReference, load_seg_reference, write_seg
from netvolume.io.masks._grid import label_values
from netvolume.io.nifti import nifti_parts, write_nifti_parts
from netvolume.measure._records import LESION_COLUMNS, LesionRecord, StudyMeasurement
from netvolume.volume import Volume

__all__ = [
    "LESION_SEG_STRUCTURES",
    "OutputExistsError",
    "check_output_folder",
    "format_cell",
    "write_measurement",
]

#: Organ of a lesion -> structure key of its DICOM SEG segment (SNOMED-coded).
LESION_SEG_STRUCTURES: dict[str, str] = {
    "liver": "liver_lesion",
    "bone": "bone_lesion",
    "lymph_node": "lymph_node_lesion",
    "other": "lesion",
}

_MAX_SEGMENT_LABEL = 64  # SegmentLabel and TrackingID are LO
_MASKS = "masks"
_LIVER_NII = f"{_MASKS}/liver.nii.gz"
_SPLEEN_NII = f"{_MASKS}/spleen.nii.gz"
_LESIONS_NII = f"{_MASKS}/lesions.nii.gz"
_ORGANS_SEG = f"{_MASKS}/organs.seg.dcm"
_LESIONS_SEG = f"{_MASKS}/lesions.seg.dcm"


class OutputExistsError(InputPathError):
    """The output folder exists and may not (or cannot safely) be replaced."""


def check_output_folder(out: str | os.PathLike[str], *, overwrite: bool = False) -> Path:
    """Check that ``out`` may be written as a measurement folder; return it as a Path.

    Called by :func:`write_measurement`, and by the command line before measuring so that
    a refused output is reported at once, not after the measurement.

    Parameters
    ----------
    out
        The output folder.
    overwrite
        Allow replacing an existing folder.

    Raises
    ------
    OutputExistsError
        If ``out`` exists and ``overwrite`` is false; if it exists and is not a folder; or
        if it is a non-empty folder without a ``study.json`` (not a previous measurement
        output: refused even with ``overwrite``, so that a mistyped ``-o`` never deletes
        a study).
    """
    path = Path(out)
    if not path.exists() and not path.is_symlink():
        return path
    if not path.is_dir():
        raise OutputExistsError(
            f"output {path} exists and is not a folder",
            files=[path],
            hint="choose a new output folder",
        )
    if not overwrite:
        raise OutputExistsError(
            f"output folder {path} already exists",
            files=[path],
            hint="choose a new folder, or pass --overwrite (overwrite=True) to replace it",
        )
    if any(path.iterdir()) and not (path / "study.json").is_file():
        raise OutputExistsError(
            f"output folder {path} is not empty and holds no study.json: it does not look "
            "like a previous 'netvolume measure' output, so it is not replaced",
            files=[path],
            hint="choose a new output folder (only measurement outputs are overwritten)",
        )
    return path


def write_measurement(
    m: StudyMeasurement, out: str | os.PathLike[str], *, overwrite: bool = False
) -> Path:
    """Write the measurement of one study as a folder (see the module docstring).

    Parameters
    ----------
    m
        The measurement: lesion records, study facts and the masks on the measurement
        grid (``liver_mask``, ``spleen_mask``: boolean or label maps, any non-zero voxel is
        the organ; ``lesion_labels``: value = ``lesion_id``).
    out
        The output folder. Its parent is created if needed.
    overwrite
        Replace an existing output folder (only one holding a ``study.json``, or an empty
        one), after the new one is complete.

    Returns
    -------
    pathlib.Path
        ``out``.

    Raises
    ------
    OutputExistsError
        See :func:`check_output_folder`.
    MaskError, MaskGridError
        The DICOM SEG writer refused a mask (not on the reference series' grid...).
    ValueError
        On an inconsistent measurement (a label value without a lesion record, masks on
        different grids, a NaN): a bug in the code that built ``m``.

    Notes
    -----
    What is not written, and why, is listed in ``study.json`` under
    ``outputs_not_written`` (relative path -> reason): organ masks that do not exist, the
    DICOM SEGs when there is no reference series, the lesion SEG when there is no lesion
    (a SEG needs at least one segment). ``output_notes`` lists what the writer changed:
    voxels claimed by both organ masks (liver in the organ SEG), a lesion name shortened
    to a valid SegmentLabel.

    SEG segments: ``organs.seg.dcm`` has segment 1 = liver and 2 = spleen (spleen is
    segment 1 when there is no liver mask); ``lesions.seg.dcm`` has one segment per lesion
    in ``lesion_id`` order (segment number = lesion_id when the ids are 1..N), named
    ``LesionRecord.name``, TrackingID = that name, coded from its organ
    (:data:`LESION_SEG_STRUCTURES`). Both reference ``m.reference_series``.
    """
    path = check_output_folder(out, overwrite=overwrite)
    _check_consistency(m)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.parent / f".{path.name}.tmp-{os.getpid()}"
    if tmp.exists() or tmp.is_symlink():
        _remove(tmp)
    tmp.mkdir()
    try:
        (tmp / _MASKS).mkdir()
        log = _Outputs()
        labels = _lesion_label_volume(m)
        with ThreadPoolExecutor(max_workers=1) as pool:
            niftis = _write_masks(m, labels, tmp, log, pool)
            _write_segs(m, labels, tmp, log)
            for job in niftis:
                job.result()
        (tmp / "lesions.csv").write_bytes(lesions_csv(m.lesions))
        log.written.append("lesions.csv")
        log.written.append("study.json")
        (tmp / "study.json").write_bytes(study_json(m, log.written, log.skipped, log.notes))
        _swap_into_place(tmp, path, overwrite=overwrite)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return path


# ---------------------------------------------------------------------------- tables
def format_cell(value: Any) -> str:
    """One ``lesions.csv`` cell: ``""`` for None, ``true``/``false``, full-precision floats.

    Raises
    ------
    ValueError
        On a NaN or infinite float (``None`` is the only "not available").
    """
    if value is None:
        return ""
    if isinstance(value, bool | np.bool_):
        return "true" if value else "false"
    if isinstance(value, int | np.integer):
        return str(int(value))
    if isinstance(value, float | np.floating):
        x = float(value)
        if not math.isfinite(x):
            raise ValueError(f"non-finite number {x!r}")
        return repr(x)
    return str(value)


def lesions_csv(lesions: Iterable[LesionRecord]) -> bytes:
    """The bytes of ``lesions.csv``: a header of :data:`LESION_COLUMNS`, one row a lesion.

    UTF-8, comma-separated, ``\\n`` line ends, quoted only where needed (csv module).
    """
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(LESION_COLUMNS)
    for les in lesions:
        row = les.to_row()
        missing = [c for c in LESION_COLUMNS if c not in row]
        if missing:
            raise ValueError(f"lesion {les.lesion_id}: no value for column(s) {missing}")
        cells = []
        for column in LESION_COLUMNS:
            try:
                cells.append(format_cell(row[column]))
            except ValueError as exc:
                raise ValueError(
                    f"lesion {les.lesion_id} column {column}: {exc}; use None for a value "
                    "that is not available"
                ) from None
        writer.writerow(cells)
    return buf.getvalue().encode("utf-8")


def study_json(
    m: StudyMeasurement,
    output_files: Iterable[str],
    not_written: dict[str, str] | None = None,
    output_notes: Iterable[str] = (),
) -> bytes:
    """The bytes of ``study.json``: ``m.to_dict()`` plus the output listing.

    Keys sorted, indent 2, strict JSON (a NaN or infinity is a ``ValueError`` naming the
    field). Added keys: ``output_files`` (relative paths written, sorted),
    ``outputs_not_written`` (relative path -> reason) and ``output_notes`` (what the
    writer changed on the way, e.g. a segment name shortened for DICOM).
    """
    record = m.to_dict()
    for key in ("output_files", "outputs_not_written", "output_notes"):
        if key in record:
            raise ValueError(f"StudyMeasurement.to_dict() already has a key {key!r}")
    record["output_files"] = sorted(output_files)
    record["outputs_not_written"] = dict(sorted((not_written or {}).items()))
    record["output_notes"] = list(output_notes)
    clean = _jsonable(record, "study")
    text = json.dumps(clean, indent=2, sort_keys=True, allow_nan=False, ensure_ascii=False)
    return (text + "\n").encode("utf-8")


def _jsonable(value: Any, where: str) -> Any:
    """``value`` with numpy scalars/arrays, tuples and paths made JSON types.

    Raises ``ValueError`` naming the field of a non-finite float.
    """
    if isinstance(value, dict):
        return {str(k): _jsonable(v, f"{where}.{k}") for k, v in value.items()}
    if isinstance(value, list | tuple | np.ndarray):
        items = value.tolist() if isinstance(value, np.ndarray) else value
        return [_jsonable(v, f"{where}[{i}]") for i, v in enumerate(items)]
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, bool | np.bool_):
        return bool(value)
    if isinstance(value, int | np.integer):
        return int(value)
    if isinstance(value, float | np.floating):
        x = float(value)
        if not math.isfinite(x):
            raise ValueError(
                f"study.json field {where} is {x!r}: JSON has no NaN or infinity; use None "
                "for a value that is not available"
            )
        return x
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    raise ValueError(f"study.json field {where} has a {type(value).__name__}, not a JSON value")


# ---------------------------------------------------------------------------- masks
def _grid_of(m: StudyMeasurement) -> tuple[tuple[int, int, int], np.ndarray] | None:
    shape, affine = m.grid.get("shape"), m.grid.get("affine")
    if shape is None or affine is None:
        return None
    return (int(shape[0]), int(shape[1]), int(shape[2])), np.asarray(affine, dtype=np.float64)


def _check_consistency(m: StudyMeasurement) -> None:
    """Masks on one grid (the measurement grid), label values matching the records."""
    grid = _grid_of(m)
    for what, vol in (
        ("liver_mask", m.liver_mask),
        ("spleen_mask", m.spleen_mask),
        ("lesion_labels", m.lesion_labels),
    ):
        if vol is None:
            continue
        if vol.array.ndim != 3:
            raise ValueError(f"{what} must be a 3D mask; got shape {vol.array.shape}")
        if grid is not None and (
            vol.spatial_shape != grid[0] or not np.allclose(vol.affine, grid[1], atol=1e-4)
        ):
            raise ValueError(
                f"{what} (shape {vol.spatial_shape}) is not on the measurement grid "
                f"(shape {grid[0]}, StudyMeasurement.grid)"
            )
    ids = [les.lesion_id for les in m.lesions]
    dup = sorted(i for i, n in Counter(ids).items() if n > 1)
    if dup:
        raise ValueError(f"lesion_id(s) used by more than one lesion record: {dup}")
    if any(i <= 0 for i in ids):
        raise ValueError(f"lesion_id values must be positive; got {sorted(ids)}")
    names = [les.name for les in m.lesions]
    dup_names = sorted(n for n, c in Counter(names).items() if c > 1)
    if dup_names:
        raise ValueError(f"lesion name(s) used by more than one lesion record: {dup_names}")
    if m.lesion_labels is None:
        if m.lesions:
            raise ValueError(f"{len(m.lesions)} lesion record(s) but no lesion_labels mask")
        return
    arr = m.lesion_labels.array
    if arr.dtype.kind not in "biu":
        raise ValueError(f"lesion_labels must hold integers; got dtype {arr.dtype}")
    values = set(label_values(arr))
    unknown = sorted(values - set(ids))
    if unknown:
        raise ValueError(f"lesion_labels value(s) {unknown[:10]} have no lesion record")


@dataclass
class _Outputs:
    """What the writer wrote (relative paths), skipped (path -> reason) and noted."""

    written: list[str] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def _organ_array(vol: Volume) -> np.ndarray:
    return (vol.array != 0).view(np.uint8)


def _write_masks(
    m: StudyMeasurement, labels: Volume | None, root: Path, log: _Outputs, pool: Executor
) -> list[Future[Path]]:
    """Encode the NIfTI masks' headers; ``pool`` compresses and writes them (the jobs
    returned).

    The compression (zlib) releases the GIL: on another thread it runs while this one
    builds the DICOM SEGs (mostly Python). The masks' arrays are passed, not copied.
    """
    jobs = []
    for rel, organ, vol in (
        (_LIVER_NII, "liver", m.liver_mask),
        (_SPLEEN_NII, "spleen", m.spleen_mask),
    ):
        if vol is None:
            log.skipped[rel] = f"no {organ} mask (the {organ} was not segmented)"
            continue
        mask = vol.with_array(_organ_array(vol), units="label", label_names={1: organ})
        jobs.append(pool.submit(write_nifti_parts, *nifti_parts(mask), root / rel))
        log.written.append(rel)
    if labels is None:
        log.skipped[_LESIONS_NII] = "no lesion mask and no measurement grid to draw an empty one on"
        return jobs
    jobs.append(pool.submit(write_nifti_parts, *nifti_parts(labels), root / _LESIONS_NII))
    log.written.append(_LESIONS_NII)
    return jobs


def _lesion_label_volume(m: StudyMeasurement) -> Volume | None:
    """The lesion label map (value = lesion_id) with the lesion names as label names."""
    names = {les.lesion_id: les.name for les in sorted(m.lesions, key=lambda r: r.lesion_id)}
    top = max(names, default=0)
    dtype = np.uint8 if top < 256 else np.uint16 if top < 65536 else np.uint32
    if m.lesion_labels is not None:
        arr = np.asarray(m.lesion_labels.array).astype(dtype)
        return m.lesion_labels.with_array(arr, units="label", label_names=names)
    # no lesion (checked): an all-zero map on the measurement grid
    template = next((v for v in (m.liver_mask, m.spleen_mask) if v is not None), None)
    if template is not None:
        return template.with_array(
            np.zeros(template.spatial_shape, dtype), units="label", label_names={}
        )
    grid = _grid_of(m)
    if grid is None:
        return None
    return Volume(
        np.zeros(grid[0], dtype),
        grid[1],
        frame_of_reference_uid=m.frame_of_reference_uid or None,
        units="label",
    )


def _segment_text(text: str) -> str:
    """A valid SegmentLabel / TrackingID (LO): no backslash, at most 64 characters."""
    return text.replace("\\", "/")[:_MAX_SEGMENT_LABEL]


def _write_segs(m: StudyMeasurement, labels: Volume | None, root: Path, log: _Outputs) -> None:
    series = m.reference_series
    if series is None:
        reason = "no reference image series (a DICOM SEG must reference the images it is on)"
        log.skipped[_ORGANS_SEG] = reason
        log.skipped[_LESIONS_SEG] = reason
        return

    organs = [
        (name, vol)
        for name, vol in (("liver", m.liver_mask), ("spleen", m.spleen_mask))
        if vol is not None
    ]
    reference: SegReference | None = None
    if organs:
        first = organs[0][1]
        arr = np.zeros(first.spatial_shape, dtype=np.uint8)
        segments = []
        for number, (name, vol) in enumerate(organs, start=1):
            # the organ's voxels not yet claimed, on the slices the organ spans only
            z = np.flatnonzero(vol.array.any(axis=(1, 2)))
            slab = slice(int(z[0]), int(z[-1]) + 1) if z.size else slice(0, 0)
            claim = vol.array[slab] != 0
            inside = int(np.count_nonzero(claim))
            claim &= arr[slab] == 0
            shared = inside - int(np.count_nonzero(claim))
            if shared:
                log.notes.append(
                    f"{_ORGANS_SEG}: {shared} voxel(s) in both the liver and the spleen mask "
                    f"are liver in the SEG ({name}.nii.gz keeps them)"
                )
            np.copyto(arr[slab], number, where=claim)
            segments.append(Segment(number, name, name))
        organ_map = first.with_array(
            arr, units="label", label_names={s.label: s.name for s in segments}
        )
        reference = load_seg_reference(series)
        write_seg(
            organ_map,
            reference,
            segments,
            path=root / _ORGANS_SEG,
            series_number=900,
            series_description="netvolume organs",
            content_label="ORGANS",
        )
        log.written.append(_ORGANS_SEG)
    else:
        log.skipped[_ORGANS_SEG] = "no liver or spleen mask"

    if not m.lesions or labels is None:
        log.skipped[_LESIONS_SEG] = "no lesion (a DICOM SEG needs at least one segment)"
        return
    segments = []
    for les in sorted(m.lesions, key=lambda r: r.lesion_id):
        name = _segment_text(les.name)
        if name != les.name:
            log.notes.append(
                f"{_LESIONS_SEG}: lesion {les.lesion_id}'s name is not a valid SegmentLabel "
                f"(LO: at most {_MAX_SEGMENT_LABEL} characters, no backslash); written as "
                f"{name!r}"
            )
        segments.append(
            Segment(
                les.lesion_id,
                name,
                LESION_SEG_STRUCTURES.get(les.organ, "lesion"),
                tracking_id=name,
                description=f"lesion_id {les.lesion_id}, organ {les.organ}, "
                f"detected by {les.detected_by}",
            )
        )
    write_seg(
        labels,
        reference or load_seg_reference(series),
        segments,
        path=root / _LESIONS_SEG,
        series_number=901,
        series_description="netvolume lesions",
        content_label="LESIONS",
    )
    log.written.append(_LESIONS_SEG)


# ---------------------------------------------------------------------------- folder
def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    else:
        path.unlink()


def _swap_into_place(tmp: Path, out: Path, *, overwrite: bool) -> None:
    """Rename the finished ``tmp`` onto ``out``; an old ``out`` is removed only after."""
    if not (out.exists() or out.is_symlink()):
        os.replace(tmp, out)
        return
    check_output_folder(out, overwrite=overwrite)  # again: it may have appeared meanwhile
    old = out.parent / f".{out.name}.old-{os.getpid()}"
    if old.exists() or old.is_symlink():
        _remove(old)
    os.replace(out, old)
    try:
        os.replace(tmp, out)
    except BaseException:
        with contextlib.suppress(OSError):
            os.replace(old, out)
        raise
    _remove(old)

"""Write a label map as a DICOM Segmentation (SEG) of its reference image series.

The SEG is a BINARY Segmentation Storage instance (``1.2.840.10008.5.1.4.1.1.66.4``)
written with :mod:`highdicom`: one segment per structure, each frame a one-bit mask of one
segment on one source image, referencing that image's SOPInstanceUID (DICOM PS3.3
C.8.20). Segments are coded with SNOMED CT concepts taken from pydicom's code dictionary
(:data:`STRUCTURES`), and lesions carry a TrackingID and TrackingUID so that the same
lesion can be followed across time points.

Geometry
--------
The labels must already lie on the reference image's grid. The reference series is
loaded in its native slice order (:func:`netvolume.io.dicom._load_stack`) and the label
array is copied onto that grid by its affine (:func:`~netvolume.io.masks._grid.
place_on_reference`): a label Volume that was reoriented, flipped or cropped still lands
on the right voxels, so frame ``k`` of the SEG always holds the labels of source image
``k``. A grid that would need interpolation is refused (:class:`MaskGridError`).

Determinism
-----------
SeriesInstanceUID and SOPInstanceUID are derived from the reference SeriesInstanceUID, a
SHA-256 of the label array on the reference grid and the segment definitions (and the
series number, description and content label), so writing the same labels twice gives
the same UIDs, and changing one voxel gives new ones. A lesion's default TrackingUID is
derived from the FrameOfReferenceUID and its TrackingID.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import re
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, overload

import numpy as np
import pydicom
import pydicom.uid
from pydicom.dataset import Dataset
from pydicom.sr.codedict import codes as _codes
from pydicom.sr.coding import Code

from netvolume._version import __version__
from netvolume.errors import (
    GantryTiltError,
    InputPathError,
    MaskError,
    MaskGridError,
    MaskReferenceError,
)
from netvolume.io._atomic import atomic_path
from netvolume.io.dicom import Series, _Image, _load_stack, _quiet_pydicom, scan
from netvolume.io.masks._grid import (
    describe_grid,
    grids_coincide,
    label_values,
    nonzero_box,
    place_on_reference,
)
from netvolume.io.masks._seg_encode import (
    SourcePlanes,
    encoded_template,
    seg_frames,
    source_planes,
    template_encoding,
    write_with_encoded,
)
from netvolume.volume import Volume

__all__ = [
    "ANATOMIC_REGIONS",
    "STRUCTURES",
    "TRACKED_STRUCTURES",
    "SegReference",
    "Segment",
    "infer_structure",
    "load_seg_reference",
    "write_seg",
]

logger = logging.getLogger(__name__)

#: SegmentedPropertyCategory values (CID 7150).
_ANATOMICAL_STRUCTURE = _codes.SCT.AnatomicalStructure  # SCT 91723000
_TISSUE = _codes.SCT.Tissue  # SCT 85756007
_ABNORMAL = _codes.SCT.MorphologicallyAbnormalStructure  # SCT 49755003

#: Structure key -> (SegmentedPropertyCategory, SegmentedPropertyType), SNOMED CT codes
#: from :data:`pydicom.sr.codedict.codes`. Organs use CID 7154 (abdominal organ) types
#: under "Anatomical Structure"; a lymph node is a CID 7166 (common tissue) type under
#: "Tissue"; lesions use CID 7159 (lesion) types under "Morphologically Abnormal
#: Structure", with the organ they lie in given in :data:`ANATOMIC_REGIONS`.
STRUCTURES: dict[str, tuple[Code, Code]] = {
    "liver": (_ANATOMICAL_STRUCTURE, _codes.SCT.Liver),  # 10200004
    "spleen": (_ANATOMICAL_STRUCTURE, _codes.SCT.Spleen),  # 78961009
    "kidney": (_ANATOMICAL_STRUCTURE, _codes.SCT.Kidney),  # 64033007
    "pancreas": (_ANATOMICAL_STRUCTURE, _codes.SCT.Pancreas),  # 15776009
    "lesion": (_ABNORMAL, _codes.SCT.Lesion),  # 52988006
    "liver_lesion": (_ABNORMAL, _codes.SCT.Lesion),
    "bone_lesion": (_ABNORMAL, _codes.SCT.Lesion),
    "lymph_node_lesion": (_ABNORMAL, _codes.SCT.Lesion),
    "lymph_node": (_TISSUE, _codes.SCT.LymphNode),  # 59441001
    "tumor": (_ABNORMAL, _codes.SCT.Neoplasm),  # 108369006
    "metastasis": (_ABNORMAL, _codes.SCT.NeoplasmSecondary),  # 14799000
}

#: Structure key -> AnatomicRegionSequence code (where the lesion lies).
ANATOMIC_REGIONS: dict[str, Code] = {
    "liver_lesion": _codes.SCT.Liver,  # 10200004
    "bone_lesion": _codes.SCT.Bone,  # 272673000
    "lymph_node_lesion": _codes.SCT.LymphNode,  # 59441001
}

#: Structures followed over time: they get a TrackingID (default: the segment name) and a
#: TrackingUID. A pathological lymph node is followed like a lesion (RECIST 1.1).
TRACKED_STRUCTURES: frozenset[str] = frozenset(
    {
        "lesion",
        "liver_lesion",
        "bone_lesion",
        "lymph_node_lesion",
        "lymph_node",
        "tumor",
        "metastasis",
    }
)

_SEG_SOP_CLASS = "1.2.840.10008.5.1.4.1.1.66.4"  # Segmentation Storage (BINARY)
_UID_PREFIX = "1.2.826.0.1.3680043.8.498."  # pydicom's root, as dicom_write
_MAX_SEGMENT_LABEL = 64  # SegmentLabel is LO
_CS_RE = re.compile(r"^[A-Z0-9_ ]{1,16}$")  # ContentLabel is CS
_UID_RE = re.compile(r"^(0|[1-9][0-9]*)(\.(0|[1-9][0-9]*))+$")  # PS3.5 9.1

# name tokens used to guess a structure when no Segment is given
_LESION_WORDS = frozenset({"lesion", "lesions", "nodule", "target", "nontarget"})
_MET_WORDS = frozenset({"met", "mets", "metastasis", "metastases", "metastatic"})
_TUMOR_WORDS = frozenset({"tumor", "tumour", "tumors", "tumours", "neoplasm", "mass"})
_NODE_WORDS = frozenset({"node", "nodes", "ln", "lymph", "lymphnode", "nodal"})
_ORGAN_WORDS = {
    "liver": "liver",
    "hepatic": "liver",
    "spleen": "spleen",
    "splenic": "spleen",
    "kidney": "kidney",
    "kidneys": "kidney",
    "renal": "kidney",
    "pancreas": "pancreas",
}


@dataclass(frozen=True)
class Segment:
    """One structure of a label map, as it is to appear in the SEG.

    Attributes
    ----------
    label
        The value of the structure's voxels in the label Volume (a positive integer).
    name
        SegmentLabel (0062,0005): at most 64 characters, no backslash.
    structure
        Key of :data:`STRUCTURES` giving the coded category and type ("liver",
        "lesion", ...).
    tracking_id
        TrackingID (0062,0020), e.g. ``"L3"``. For the structures of
        :data:`TRACKED_STRUCTURES` it defaults to ``name``; other structures are tracked
        only when a tracking ID or UID is given.
    tracking_uid
        TrackingUID (0062,0021). Default: derived deterministically from the reference
        FrameOfReferenceUID and the tracking ID, so the same lesion ID in another SEG of
        the same frame of reference gets the same UID.
    description
        SegmentDescription (0062,0006), free text.

    Raises
    ------
    MaskError
        On a label that is not a positive integer, an empty or too long name, or a
        structure key that :data:`STRUCTURES` does not hold.
    """

    label: int
    name: str
    structure: str = "lesion"
    tracking_id: str | None = None
    tracking_uid: str | None = None
    description: str | None = None

    def __post_init__(self) -> None:
        if (
            isinstance(self.label, bool)
            or not isinstance(self.label, int | np.integer)
            or int(self.label) <= 0
        ):
            raise MaskError(
                f"Segment label value must be a positive integer; got {self.label!r} "
                f"(segment {self.name!r})",
                hint="use the voxel value of the structure in the label Volume (1, 2, ...)",
            )
        if not isinstance(self.name, str) or not self.name.strip():
            raise MaskError(
                f"Segment name (SegmentLabel) must be a non-empty string; got {self.name!r} "
                f"for label {self.label}",
                tag="SegmentLabel",
                hint="give each segment a name such as 'liver' or 'L1'",
            )
        if len(self.name) > _MAX_SEGMENT_LABEL or "\\" in self.name:
            raise MaskError(
                f"Segment name {self.name!r} (label {self.label}) is not a valid SegmentLabel "
                f"(LO: at most {_MAX_SEGMENT_LABEL} characters, no backslash)",
                tag="SegmentLabel",
                hint="shorten the name; put details in description=",
            )
        if self.structure not in STRUCTURES:
            raise MaskError(
                f"unknown structure {self.structure!r} for segment {self.name!r} (label "
                f"{self.label}); known structures: {', '.join(sorted(STRUCTURES))}",
                hint="choose one of the listed keys (netvolume.io.masks._seg_write.STRUCTURES)",
            )
        if self.tracking_id is not None and not str(self.tracking_id).strip():
            raise MaskError(
                f"tracking_id of segment {self.name!r} (label {self.label}) is empty",
                tag="TrackingID",
                hint="leave tracking_id=None to use the segment name",
            )
        if self.tracking_uid is not None and not _is_valid_uid(self.tracking_uid):
            raise MaskError(
                f"tracking_uid {self.tracking_uid!r} of segment {self.name!r} (label "
                f"{self.label}) is not a valid DICOM UID",
                tag="TrackingUID",
                hint="leave tracking_uid=None to derive one from the tracking ID",
            )


@dataclass(frozen=True)
class SegReference:
    """A reference image series read once, to write one or more SEGs on it.

    Made by :func:`load_seg_reference`; pass it to :func:`write_seg` as
    ``reference_series`` to write several SEGs of one series (``netvolume measure``
    writes an organ SEG and a lesion SEG) without reading its images and headers again.

    Attributes
    ----------
    series
        The image series.
    volume
        The series on its native grid (the grid of the SEG's frames).
    images
        The image record of each slice of ``volume``, in slice order.
    datasets
        The source image headers, in the order highdicom pairs them with frames (read
        from the files when first used).
    planes
        The encoded source planes of the SEG fast path, made by the first SEG written
        (empty before; None when the fast path does not apply to the series).
    """

    series: Series
    volume: Volume = field(repr=False)
    images: tuple[_Image, ...] = field(repr=False)
    datasets: Sequence[Dataset] = field(repr=False)
    #: the encoded source planes of the fast path, made by the first SEG (0 or 1 item)
    planes: list[SourcePlanes | None] = field(
        default_factory=list, init=False, repr=False, compare=False
    )


def load_seg_reference(reference_series: Series | str | os.PathLike[str]) -> SegReference:
    """Read a reference image series for :func:`write_seg`: its grid and source headers.

    Parameters
    ----------
    reference_series
        A :class:`~netvolume.io.dicom.Series` from :func:`~netvolume.io.dicom.scan`, or a
        folder holding exactly one image series (see :func:`write_seg`).

    Returns
    -------
    SegReference

    Raises
    ------
    MaskReferenceError
        If the series has no FrameOfReferenceUID.
    MaskGridError
        If the series is gantry-tilted.
    MaskError
        If the series is made of several multi-frame files.
    """
    series = _resolve_series(reference_series)
    _check_frame_of_reference(series)
    return _load_seg_reference(series)


@contextlib.contextmanager
def lenient_source_values() -> Iterator[None]:
    """Let highdicom build an object from sources with non-conformant values, quietly.

    highdicom copies the patient and study attributes of the source images (SEG) or of
    the SEG (SR); pydicom and highdicom then warn about the *source's* non-conformant
    values (a 69-character Siemens SoftwareVersions, a one-component PatientName quoted
    in the message, which must not reach a log). pydicom's reading and writing
    validation is set to IGNORE inside the block and restored after it. The written
    object's own conformance is checked by dciodvfy in the tests.
    """
    from pydicom import config as pydicom_config

    old_modes = (
        pydicom_config.settings.reading_validation_mode,
        pydicom_config.settings.writing_validation_mode,
    )
    try:
        with warnings.catch_warnings():
            pydicom_config.settings.reading_validation_mode = pydicom_config.IGNORE
            pydicom_config.settings.writing_validation_mode = pydicom_config.IGNORE
            warnings.filterwarnings("ignore", message=".*intended person name.*")
            yield
    finally:
        (
            pydicom_config.settings.reading_validation_mode,
            pydicom_config.settings.writing_validation_mode,
        ) = old_modes


def _is_valid_uid(value: object) -> bool:
    """True for a DICOM UID: dot-separated numbers without leading zeros, <= 64 chars."""
    return isinstance(value, str) and len(value) <= 64 and bool(_UID_RE.match(value))


def infer_structure(name: str) -> str:
    """Guess the :data:`STRUCTURES` key of a label name (``"liver"`` -> ``"liver"``).

    The name is lower-cased and split into words at any non-alphanumeric character. A key
    of :data:`STRUCTURES` is taken as is; words naming a lymph node, a metastasis, a
    tumour or a lesion (with the organ it lies in: liver, bone) give the matching lesion
    structure; a name made of an organ word (and left/right) gives the organ; anything
    else ("L1", "target 3") is a ``"lesion"``.
    """
    norm = re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_")
    if norm in STRUCTURES:
        return norm
    # "lesion1" counts as "lesion": numbers glued to a word are an index, not a meaning
    words = {re.sub(r"(?<=[a-z])[0-9]+$", "", w) for w in norm.split("_")} - {""}
    lesion_like = bool(words & (_LESION_WORDS | _MET_WORDS | _TUMOR_WORDS))
    if words & _NODE_WORDS:
        return "lymph_node_lesion" if lesion_like else "lymph_node"
    organs = {_ORGAN_WORDS[w] for w in words if w in _ORGAN_WORDS}
    if lesion_like:
        if organs == {"liver"}:
            return "liver_lesion"
        if words & {"bone", "bones", "osseous", "skeletal"}:
            return "bone_lesion"
        if words & _MET_WORDS:
            return "metastasis"
        if words & _TUMOR_WORDS:
            return "tumor"
        return "lesion"
    if len(organs) == 1 and words <= set(_ORGAN_WORDS) | {"left", "right", "l", "r"}:
        return organs.pop()
    return "lesion"


def write_seg(
    labels: Volume,
    reference_series: SegReference | Series | str | os.PathLike[str],
    segments: Sequence[Segment] | None = None,
    *,
    path: str | os.PathLike[str],
    series_number: int = 900,
    series_description: str = "netvolume segmentation",
    content_label: str = "NETVOLUME",
) -> Path:
    """Write a label Volume as a BINARY DICOM Segmentation of its reference image series.

    Parameters
    ----------
    labels
        Integer label map (0 = background) on the reference image's grid, in any axis
        order or direction (it is copied onto the series' native grid by its affine; a
        crop of that grid is accepted). Its ``frame_of_reference_uid``, when set, must be
        the series'.
    reference_series
        The image series the labels were drawn on: a :class:`~netvolume.io.dicom.Series`
        from :func:`~netvolume.io.dicom.scan`, or a folder holding exactly one image
        series. Single-frame series and one multi-frame (enhanced) image are supported.
        A :class:`SegReference` of the series (:func:`load_seg_reference`) saves reading
        it again for each SEG.
    segments
        The structures to write, in segment order. ``None``: one segment per entry of
        ``labels.label_names`` in increasing label order, its structure guessed from the
        name (:func:`infer_structure`). Every non-zero value present in the array must
        have a segment; a segment whose value is absent is written as an empty segment
        (described, without frames).
    path
        Output file (``.dcm``); its folder must exist. Written atomically (temporary file
        then rename), so no partial file is left on error.
    series_number
        SeriesNumber of the SEG.
    series_description
        SeriesDescription of the SEG (at most 64 characters).
    content_label
        ContentLabel (CS: 1-16 characters of A-Z, 0-9, space, underscore).

    Returns
    -------
    pathlib.Path
        ``path``.

    Raises
    ------
    InputPathError
        If the output folder does not exist or ``path`` is a folder.
    MaskError
        On a label value without a segment, duplicate segment labels, names or tracking
        IDs, a non-integer or negative label array, an unsupported source series, or
        attributes highdicom refuses.
    MaskGridError
        If the labels are not on the reference grid (another shape that cuts off labelled
        voxels, a shift, another spacing or orientation) or in another frame of
        reference, or the series is gantry-tilted.
    MaskReferenceError
        If the reference series has no FrameOfReferenceUID.

    Notes
    -----
    Segment numbers are ``1..N`` in the order of ``segments`` (DICOM requires
    consecutive numbers from 1); the voxels of ``segments[n - 1].label`` form segment
    ``n``. When the label values are ``1..N`` in order (the default with
    ``label_names``), the segment number equals the label value, so a round trip gives
    back the same label map.

    Empty frames are omitted (each segment has frames only on the slices it occupies).
    A segment whose label is absent from the array therefore has no frames; a label map
    with no labelled voxel at all is written with every (empty) frame, as DICOM needs at
    least one frame. The segment algorithm type is MANUAL.

    On a series of single-frame images the frames are encoded by netvolume
    (:mod:`~netvolume.io.masks._seg_encode`) rather than by highdicom and pydicom one
    Dataset at a time; the file is byte for byte the one highdicom and pydicom write.
    """
    return _write_seg(
        labels,
        reference_series,
        segments,
        path=path,
        series_number=series_number,
        series_description=series_description,
        content_label=content_label,
        fast_path=True,
    )


def _write_seg(
    labels: Volume,
    reference_series: SegReference | Series | str | os.PathLike[str],
    segments: Sequence[Segment] | None,
    *,
    path: str | os.PathLike[str],
    series_number: int,
    series_description: str,
    content_label: str,
    fast_path: bool,
) -> Path:
    """:func:`write_seg`; ``fast_path=False`` has highdicom build every frame (tests)."""
    out_path = _check_output(path)
    if isinstance(reference_series, SegReference):
        loaded: SegReference | None = reference_series
        series = reference_series.series
    else:
        loaded = None
        series = _resolve_series(reference_series)
    _check_labels_array(labels)
    segs = _resolve_segments(labels, segments)

    _check_frame_of_reference(series)
    if labels.frame_of_reference_uid and (
        labels.frame_of_reference_uid != series.frame_of_reference_uid
    ):
        raise MaskGridError(
            f"the labels are in frame of reference {labels.frame_of_reference_uid}, the "
            f"reference series {series.uid} in {series.frame_of_reference_uid}",
            files=series.files[:1],
            tag="FrameOfReferenceUID",
            hint="write the SEG against the image series the labels were drawn on, or "
            "register and resample the labels onto this image first",
        )
    _check_text(series_description, content_label)

    ref = loaded if loaded is not None else _load_seg_reference(series)
    grid_labels = _on_reference_grid(labels, ref.volume, series)
    seg_array, present = _segment_numbers(grid_labels, segs, series)

    pixel_array = _source_pixels(ref.images, seg_array)
    for_uid = str(series.frame_of_reference_uid)
    descriptions = _descriptions(segs, for_uid)

    # the labels' identity: shape, dtype, the box of the labelled voxels and its content
    # (everything outside the box is 0), so a mostly empty full-size map hashes fast
    digest = hashlib.sha256()
    box = nonzero_box(seg_array)
    digest.update(f"{seg_array.shape}|{seg_array.dtype.str}|{box}|".encode())
    if box is not None:
        digest.update(np.ascontiguousarray(seg_array[box]).data)
    definition = [[int(series_number), series_description, content_label]]
    for number, s in enumerate(segs, start=1):
        tid, tuid = _tracking(s, for_uid)
        definition.append([number, int(s.label), s.name, s.structure, tid, tuid, s.description])
    sources = [
        "netvolume.io.masks.seg",
        series.series_instance_uid,
        digest.hexdigest(),
        json.dumps(definition),
    ]
    series_uid = pydicom.uid.generate_uid(prefix=_UID_PREFIX, entropy_srcs=[*sources, "series"])
    sop_uid = pydicom.uid.generate_uid(prefix=_UID_PREFIX, entropy_srcs=[*sources, "instance"])

    empty = [s.name for n, s in enumerate(segs, start=1) if n not in present]
    if empty:
        logger.info(
            "SEG %s: segment(s) without any voxel are written without frames: %s",
            out_path.name,
            ", ".join(empty),
        )

    common: dict[str, Any] = {
        "segment_descriptions": descriptions,
        "series_instance_uid": series_uid,
        "series_number": int(series_number),
        "sop_instance_uid": sop_uid,
        "series_description": series_description,
        "content_label": content_label,
    }
    fast = _fast_seg(ref, pixel_array, len(segs), bool(present), common) if fast_path else None
    if fast is not None:
        seg, encoded = fast
    else:
        if fast_path:
            logger.debug("SEG fast path does not apply to this reference; highdicom builds it")
        # every frame is kept when nothing is labelled (no frame at all is invalid)
        seg = _segmentation(ref.datasets, pixel_array, bool(present), common, series)
        encoded = {}

    # highdicom stamps ContentDate / InstanceCreationDate with the clock; the study's date
    # and time make the same inputs give the same bytes (a batch rerun, a Dask worker)
    for keyword in ("ContentDate", "InstanceCreationDate"):
        setattr(seg, keyword, str(seg.get("StudyDate") or seg.get(keyword)))
    for keyword in ("ContentTime", "InstanceCreationTime"):
        setattr(seg, keyword, str(seg.get("StudyTime") or seg.get(keyword)))
    for item in seg.get("ContributingEquipmentSequence") or ():
        if "ContributionDateTime" in item:
            item.ContributionDateTime = f"{seg.ContentDate}{seg.ContentTime}"
    # highdicom's DimensionOrganizationUID is random: derive it like the other UIDs
    dim_uid = pydicom.uid.generate_uid(prefix=_UID_PREFIX, entropy_srcs=[*sources, "dimension"])
    for seq in ("DimensionOrganizationSequence", "DimensionIndexSequence"):
        for item in seg.get(seq) or ():
            if "DimensionOrganizationUID" in item:
                item.DimensionOrganizationUID = dim_uid
    with atomic_path(out_path, suffix=".dcm") as tmp:
        if not encoded:
            seg.save_as(tmp, enforce_file_format=True)
        elif not write_with_encoded(seg, encoded, tmp):
            # pydicom's output could not be walked (not expected): write it whole
            for tag, element in encoded.items():
                seg[tag] = _decode_element(element)
            seg.save_as(tmp, enforce_file_format=True)
    return out_path


# ---------------------------------------------------------------------------- checks
def _check_output(path: str | os.PathLike[str]) -> Path:
    out = Path(path)
    if out.is_dir():
        raise InputPathError(
            f"SEG output path is a folder: {out}",
            files=[out],
            hint="give a file name, e.g. " + str(out / "seg.dcm"),
        )
    if not out.parent.is_dir():
        raise InputPathError(
            f"output folder does not exist: {out.parent}",
            files=[out.parent],
            hint="create the folder first",
        )
    return out


def _check_frame_of_reference(series: Series) -> None:
    if not series.frame_of_reference_uid:
        raise MaskReferenceError(
            f"reference series {series.uid} has no FrameOfReferenceUID, which a SEG needs",
            files=series.files[:1],
            tag="FrameOfReferenceUID",
            hint="choose a reference image series with patient geometry",
        )


def _resolve_series(reference: Series | str | os.PathLike[str]) -> Series:
    if isinstance(reference, Series):
        return reference
    folder = Path(reference)
    catalogue = scan(folder)
    return catalogue.select()


def _check_text(series_description: str, content_label: str) -> None:
    if len(series_description) > 64 or "\\" in series_description:
        raise MaskError(
            f"series_description {series_description!r} is not a valid SeriesDescription "
            "(LO: at most 64 characters, no backslash)",
            tag="SeriesDescription",
            hint="shorten it",
        )
    if not _CS_RE.match(content_label):
        raise MaskError(
            f"content_label {content_label!r} is not a valid ContentLabel (CS: 1-16 "
            "characters of A-Z, 0-9, space and underscore)",
            tag="ContentLabel",
            hint="use e.g. 'NETVOLUME' or 'LIVER_SEG'",
        )


def _check_labels_array(labels: Volume) -> None:
    arr = labels.array
    if arr.ndim != 3:
        raise MaskError(
            f"the label Volume must be 3D (slice, row, column); got shape {arr.shape}",
            hint="pass a scalar label map, not an RGB image",
        )
    if arr.dtype.kind == "f":
        finite = np.isfinite(arr)
        if not np.all(finite) or np.any(arr != np.round(arr)):
            raise MaskError(
                f"the label Volume holds non-integer values (dtype {arr.dtype})",
                hint="pass an integer label map (threshold or round a probability map first)",
            )
    if arr.dtype.kind in "if" and arr.size and float(arr.min()) < 0:
        raise MaskError(
            f"the label Volume holds negative values (minimum {arr.min()})",
            hint="labels are 0 (background) and positive integers",
        )


def _resolve_segments(labels: Volume, segments: Sequence[Segment] | None) -> list[Segment]:
    if segments is None:
        if not labels.label_names:
            raise MaskError(
                "no segments given and the label Volume has no label_names",
                hint="pass segments=[Segment(1, 'liver', 'liver'), ...] or set "
                "label_names on the Volume",
            )
        segs = [
            Segment(label=value, name=name, structure=infer_structure(name))
            for value, name in sorted(labels.label_names.items())
        ]
    else:
        segs = list(segments)
        if not segs:
            raise MaskError(
                "segments is empty: a SEG needs at least one segment",
                hint="pass one Segment per label value, or segments=None to use label_names",
            )
        for s in segs:
            if not isinstance(s, Segment):
                raise MaskError(
                    f"segments must hold Segment objects; got {type(s).__name__}",
                    hint="build them with Segment(label, name, structure)",
                )
    for attr, what in (("label", "label value"), ("name", "name")):
        seen: dict[Any, int] = {}
        for s in segs:
            key = int(s.label) if attr == "label" else s.name
            if key in seen:
                raise MaskError(
                    f"two segments have the same {what} {key!r}",
                    hint="give every segment its own label value and name",
                )
            seen[key] = 1
    ids = [s.tracking_id or s.name for s in segs if _is_tracked(s)]
    dup = sorted({i for i in ids if ids.count(i) > 1})
    if dup:
        raise MaskError(
            f"tracking ID(s) used by more than one segment: {', '.join(dup)}",
            tag="TrackingID",
            hint="give each tracked lesion its own tracking_id",
        )
    return segs


def _is_tracked(s: Segment) -> bool:
    return (
        s.structure in TRACKED_STRUCTURES or s.tracking_id is not None or s.tracking_uid is not None
    )


def _tracking(s: Segment, frame_of_reference_uid: str) -> tuple[str | None, str | None]:
    """(TrackingID, TrackingUID) of a segment; both None for an untracked organ."""
    if not _is_tracked(s):
        return None, None
    tid = s.tracking_id if s.tracking_id is not None else s.name
    tuid = s.tracking_uid or str(
        pydicom.uid.generate_uid(
            prefix=_UID_PREFIX,
            entropy_srcs=["netvolume.io.masks.seg tracking", frame_of_reference_uid, tid],
        )
    )
    return tid, tuid


def _load_seg_reference(series: Series) -> SegReference:
    try:
        volume, images = _load_stack(series, correct_tilt=False)
    except GantryTiltError as exc:
        raise MaskGridError(
            f"reference series {series.uid} is gantry-tilted: a SEG made on its "
            "tilt-corrected grid would not match its images",
            files=series.files[:1],
            tag="ImagePositionPatient",
            hint="writing a SEG on a tilted series is not supported yet",
        ) from exc
    return SegReference(series, volume, tuple(images), _SourceHeaders(images, series))


def _on_reference_grid(labels: Volume, reference: Volume, series: Series) -> np.ndarray:
    arr = labels.array
    if arr.dtype.kind == "b":
        arr = arr.astype(np.uint8)
    elif arr.dtype.kind == "f":
        arr = arr.astype(np.int64)
    if not grids_coincide(labels.affine, arr.shape, reference):
        raise MaskGridError(
            f"the labels ({describe_grid(labels.spatial_shape, labels.affine)}) are not on "
            f"the grid of reference series {series.uid} "
            f"({describe_grid(reference.spatial_shape, reference.affine)})",
            files=series.files[:1],
            hint="resample the labels onto the image first",
        )
    placement = place_on_reference(
        arr,
        labels.affine,
        reference,
        what="label Volume",
        files=series.files[:1],
        allow_resample=True,
    )
    if placement.dropped_voxels:
        lost = (
            f"; {placement.dropped_voxels} labelled voxel(s) fall outside the image"
            if placement.dropped_voxels
            else ""
        )
        raise MaskGridError(
            f"the labels ({describe_grid(labels.spatial_shape, labels.affine)}) are not on "
            f"the grid of reference series {series.uid} "
            f"({describe_grid(reference.spatial_shape, reference.affine)}){lost}",
            files=series.files[:1],
            hint="resample the labels onto the image first",
        )
    return placement.array


def _segment_numbers(
    array: np.ndarray, segs: Sequence[Segment], series: Series
) -> tuple[np.ndarray, set[int]]:
    """Map label values to segment numbers 1..N; also return the numbers present.

    The output is uint8 (uint16 beyond 255 segments). When every label value present is
    its own segment number and the array already has that dtype, the array is returned
    as is; otherwise only the slices holding a label are mapped, one at a time, so that
    no full-size index array is ever allocated.
    """
    dtype = np.uint8 if len(segs) < 256 else np.uint16
    values = label_values(array)
    known = {int(s.label): n for n, s in enumerate(segs, start=1)}
    unknown = [v for v in values if v not in known]
    if unknown:
        shown = ", ".join(str(v) for v in unknown[:10])
        more = f" and {len(unknown) - 10} more" if len(unknown) > 10 else ""
        raise MaskError(
            f"label value(s) {shown}{more} occur in the label Volume but have no segment "
            f"(segments: {', '.join(f'{s.label}={s.name}' for s in segs)})",
            files=series.files[:1],
            hint="add a Segment (or a label_names entry) for each value, or set those voxels to 0",
        )
    present = {known[v] for v in values}
    if array.dtype == dtype and all(known[v] == v for v in values):
        return array, present
    sorted_values = np.array([0, *values], dtype=array.dtype)
    numbers = np.array([0, *(known[v] for v in values)], dtype=dtype)
    out = np.zeros(array.shape, dtype=dtype)
    for k in np.flatnonzero(array.any(axis=tuple(range(1, array.ndim)))):
        out[k] = numbers[np.searchsorted(sorted_values, array[k])]
    return out, present


class _SourceHeaders(Sequence[Dataset]):
    """The source image headers, in the order highdicom pairs them with frames.

    A header is read from its file (:func:`_read_source`) the first time it is asked
    for, then kept: the SEG fast path needs the first header only (the other images'
    values come from their scan records), highdicom's own path reads them all.
    """

    def __init__(self, images: Sequence[_Image], series: Series) -> None:
        paths = [im.path for im in images]
        if all(im.n_frames == 1 for im in images) and len(set(paths)) == len(paths):
            self._paths = paths
        elif len(set(paths)) == 1:
            self._paths = paths[:1]
        else:
            raise MaskError(
                f"reference series {series.uid} is made of {len(set(paths))} multi-frame "
                "files: a SEG can reference single-frame images or one multi-frame image only",
                files=sorted(set(paths))[:6],
                hint="writing a SEG on a series of several multi-frame files is not supported yet",
            )
        self._headers: list[Dataset | None] = [None] * len(self._paths)

    def __len__(self) -> int:
        return len(self._paths)

    @overload
    def __getitem__(self, index: int) -> Dataset: ...

    @overload
    def __getitem__(self, index: slice) -> list[Dataset]: ...

    def __getitem__(self, index: int | slice) -> Dataset | list[Dataset]:
        if isinstance(index, slice):
            return [self[n] for n in range(len(self))[index]]
        header = self._headers[index]
        if header is None:
            header = self._headers[index] = _read_source(self._paths[index])
        return header


def _source_pixels(images: Sequence[_Image], seg_array: np.ndarray) -> np.ndarray:
    """The SEG pixel array in the order of :class:`_SourceHeaders` (their frames)."""
    if images[0].n_frames == 1:
        return seg_array
    # one multi-frame image: frame f of the SEG input is frame f of the source; frames
    # outside this stack (another stack or time point of the object) stay empty
    out = np.zeros((int(images[0].n_frames), *seg_array.shape[1:]), dtype=seg_array.dtype)
    for k, im in enumerate(images):
        out[im.frame] = seg_array[k]
    return out


def _read_source(path: Path) -> Dataset:
    """Read a source image header, with the Type 2 attributes highdicom copies present."""
    with _quiet_pydicom():  # tolerant reading, as scan(): value warnings are noise here
        ds = pydicom.dcmread(path, stop_before_pixels=True)
    for keyword in (
        "PatientName",
        "PatientID",
        "PatientBirthDate",
        "PatientSex",
        "AccessionNumber",
        "StudyID",
        "StudyDate",
        "StudyTime",
        "ReferringPhysicianName",
    ):
        if keyword not in ds:
            setattr(ds, keyword, "")
    # an empty SpecificCharacterSet (seen in GE CT) means the default repertoire, which
    # highdicom only accepts as an absent attribute
    if "SpecificCharacterSet" in ds and not ds.SpecificCharacterSet:
        del ds.SpecificCharacterSet
    return ds


def _segmentation(
    source_images: Sequence[Dataset],
    pixel_array: np.ndarray,
    omit_empty_frames: bool,
    common: dict[str, Any],
    series: Series,
) -> Dataset:
    """highdicom's BINARY Segmentation of ``pixel_array`` on ``source_images``."""
    import highdicom as hd

    try:
        with lenient_source_values():
            seg: Dataset = hd.seg.Segmentation(
                source_images=source_images,
                pixel_array=pixel_array,
                segmentation_type=hd.seg.SegmentationTypeValues.BINARY,
                instance_number=1,
                manufacturer="netvolume",
                manufacturer_model_name="netvolume",
                software_versions=__version__,
                device_serial_number="0",
                content_description=common["series_description"],
                omit_empty_frames=omit_empty_frames,
                **common,
            )
    except (ValueError, TypeError, AttributeError, KeyError) as exc:
        raise MaskError(
            f"highdicom cannot build a SEG on reference series {series.uid}: "
            f"{type(exc).__name__}: {exc}",
            files=series.files[:1],
            hint="check the reference series' headers (dciodvfy) and the segment definitions",
        ) from exc
    return seg


def _fast_seg(
    ref: SegReference,
    pixel_array: np.ndarray,
    n_segments: int,
    omit_empty_frames: bool,
    common: dict[str, Any],
) -> tuple[Dataset, dict[int, bytes]] | None:
    """The SEG built by highdicom on the first source image, and its encoded frames.

    highdicom builds the SEG on ``ref.datasets[0]`` with one empty plane; the attributes
    that depend on all source images or on the frames are then replaced by those of
    :mod:`~netvolume.io.masks._seg_encode`, which encodes them as highdicom and pydicom
    would. Returns None where that path does not apply (a multi-frame source, source
    images highdicom would refuse, an encoding that does not match highdicom's on the
    first plane): the caller then has highdicom build every frame.
    """
    first = ref.datasets[0]
    if (
        ref.images[0].n_frames != 1
        or len(ref.datasets) != pixel_array.shape[0]
        or "NumberOfFrames" in first
    ):
        return None
    numbers = list(range(1, n_segments + 1))
    template = _segmentation(
        ref.datasets[:1],
        np.zeros((1, *pixel_array.shape[1:]), dtype=pixel_array.dtype),
        False,
        common,
        ref.series,
    )
    try:
        frame = template.PerFrameFunctionalGroupsSequence[0]
        derivation = frame.DerivationImageSequence[0]
        purpose = derivation.SourceImageSequence[0].PurposeOfReferenceCodeSequence[0]
        derivation_code = derivation.DerivationCodeSequence[0]
    except (AttributeError, IndexError):
        return None
    if not ref.planes:
        with lenient_source_values():
            ref.planes.append(source_planes(first, ref.images, purpose, derivation_code))
    planes = ref.planes[0]
    if planes is None:
        return None
    # the encoding of the template's first frame and references must be highdicom's
    expected = template_encoding(planes, n_segments)
    if expected != encoded_template(template):
        logger.debug("SEG fast path: highdicom's frame encoding differs; using highdicom")
        return None
    frames = seg_frames(planes, pixel_array, numbers, omit_empty_frames=omit_empty_frames)
    for keyword in (
        "PerFrameFunctionalGroupsSequence",
        "PixelData",
        "SourceImageSequence",
        "ReferencedSeriesSequence",
    ):
        delattr(template, keyword)
    template.NumberOfFrames = frames.number_of_frames
    if first.get("SpacingBetweenSlices", None) is None:
        measures = template.SharedFunctionalGroupsSequence[0].PixelMeasuresSequence[0]
        if frames.spacing_between_slices is None:
            if "SpacingBetweenSlices" in measures:
                del measures.SpacingBetweenSlices
        else:
            measures.SpacingBetweenSlices = frames.spacing_between_slices
    if frames.three_dimensional:
        template.DimensionOrganizationType = "3D"
    return template, {
        0x00081115: planes.referenced_series_sequence(),
        0x00082112: planes.source_image_sequence(),
        0x52009230: frames.per_frame,
        0x7FE00010: frames.pixel_data,
    }


def _decode_element(encoded: bytes) -> Any:
    """The DataElement of one encoded Explicit VR Little Endian element."""
    from io import BytesIO

    from pydicom.filereader import read_dataset

    ds = read_dataset(BytesIO(encoded), is_implicit_VR=False, is_little_endian=True)
    return ds[next(iter(ds.keys()))]


def _descriptions(segs: Sequence[Segment], frame_of_reference_uid: str) -> list[Any]:
    import highdicom as hd

    out = []
    for number, s in enumerate(segs, start=1):
        category, kind = STRUCTURES[s.structure]
        tid, tuid = _tracking(s, frame_of_reference_uid)
        region = ANATOMIC_REGIONS.get(s.structure)
        desc = hd.seg.SegmentDescription(
            segment_number=number,
            segment_label=s.name,
            segmented_property_category=category,
            segmented_property_type=kind,
            algorithm_type=hd.seg.SegmentAlgorithmTypeValues.MANUAL,
            tracking_id=tid,
            tracking_uid=tuid,
            anatomic_regions=[region] if region is not None else None,
        )
        if s.description:
            desc.SegmentDescription = s.description
        out.append(desc)
    return out

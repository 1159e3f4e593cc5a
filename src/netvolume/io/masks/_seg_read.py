"""DICOM Segmentation (SEG) in: binary, fractional and label-map SEGs, overlapping or not,
read with highdicom and placed on the reference grid by their plane positions."""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from netvolume.errors import MaskError

__all__ = ["SEG_SOP_CLASSES", "SegmentInfo", "open_seg", "referenced_series_uids", "segment_array"]

#: Segmentation Storage and Label Map Segmentation Storage (DICOM 2024, LABELMAP type).
SEG_SOP_CLASSES = ("1.2.840.10008.5.1.4.1.1.66.4", "1.2.840.10008.5.1.4.1.1.66.7")


@dataclass(frozen=True)
class SegmentInfo:
    """One segment of a SEG, as the file describes it."""

    number: int
    name: str
    category: str  # CodeMeaning of SegmentedPropertyCategoryCodeSequence
    type: str  # CodeMeaning of SegmentedPropertyTypeCodeSequence
    tracking_id: str
    tracking_uid: str


def _code_meaning(item: Any, keyword: str) -> str:
    seq = getattr(item, keyword, None)
    if not seq:
        return ""
    return str(getattr(seq[0], "CodeMeaning", "") or "")


def open_seg(path: Path, notes: list[str]) -> tuple[Any, list[SegmentInfo]]:
    """Open a SEG with highdicom; return it and its segments (background excluded).

    highdicom's own warnings (e.g. about deprecated code schemes in older files) are
    collected into ``notes`` instead of surfacing as Python warnings.
    """
    import highdicom as hd

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            seg = hd.seg.segread(str(path))
        except (ValueError, AttributeError, KeyError, TypeError) as exc:
            raise MaskError(
                f"{path.name}: not a readable DICOM Segmentation: {exc}",
                files=[path],
                tag="SOPClassUID",
                hint="check the file with dciodvfy; netvolume reads SEG objects that "
                "highdicom accepts",
            ) from exc
    notes.extend(f"{path.name}: highdicom: {w.message}" for w in caught)
    segments: list[SegmentInfo] = []
    for item in seg.SegmentSequence:
        number = int(item.SegmentNumber)
        if number == 0:  # LABELMAP SEGs may describe the background as segment 0
            continue
        segments.append(
            SegmentInfo(
                number=number,
                name=str(getattr(item, "SegmentLabel", "") or f"segment_{number}"),
                category=_code_meaning(item, "SegmentedPropertyCategoryCodeSequence"),
                type=_code_meaning(item, "SegmentedPropertyTypeCodeSequence"),
                tracking_id=str(getattr(item, "TrackingID", "") or ""),
                tracking_uid=str(getattr(item, "TrackingUID", "") or ""),
            )
        )
    return seg, segments


def referenced_series_uids(seg: Any) -> list[str]:
    """SeriesInstanceUIDs of the images the SEG was derived from."""
    uids: list[str] = []
    for item in getattr(seg, "ReferencedSeriesSequence", []) or []:
        uid = str(getattr(item, "SeriesInstanceUID", "") or "")
        if uid:
            uids.append(uid)
    for study in getattr(seg, "StudiesContainingOtherReferencedInstancesSequence", []) or []:
        for item in getattr(study, "ReferencedSeriesSequence", []) or []:
            uid = str(getattr(item, "SeriesInstanceUID", "") or "")
            if uid:
                uids.append(uid)
    return list(dict.fromkeys(uids))


def segment_array(
    seg: Any,
    segment: SegmentInfo,
    path: Path,
    *,
    fraction_threshold: float,
    notes: list[str],
) -> tuple[np.ndarray, np.ndarray]:
    """One segment as a boolean array on the SEG's own grid, with that grid's affine.

    The grid spans the frames that hold the segment (highdicom builds it from the plane
    positions; missing positions in between are empty). A FRACTIONAL segment is
    thresholded: a voxel belongs to it when its fraction is >= ``fraction_threshold``.
    A segment without any frame comes back as one empty plane (highdicom's behaviour).
    """
    is_fractional = str(getattr(seg, "SegmentationType", "")) == "FRACTIONAL"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            vol = seg.get_volume(
                segment_numbers=[segment.number],
                combine_segments=False,
                rescale_fractional=True,
                allow_missing_positions=True,
            )
        except (ValueError, RuntimeError, IndexError) as exc:
            raise MaskError(
                f"{path.name}: segment {segment.number} ({segment.name!r}) cannot be "
                f"placed in 3D: {exc}",
                files=[path],
                tag="PlanePositionSequence",
                hint="the SEG's frames must lie on parallel, regularly spaced planes",
            ) from exc
    notes.extend(f"{path.name}: highdicom: {w.message}" for w in caught)
    arr = np.asarray(vol.array)
    if arr.ndim == 4:
        arr = arr[..., 0]
    mask = arr >= fraction_threshold if is_fractional else arr != 0
    return mask, np.array(vol.affine, dtype=np.float64)

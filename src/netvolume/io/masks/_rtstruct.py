"""RTSTRUCT closed planar contours rasterised onto a reference image grid.

Each contour's points (LPS mm, ``ContourData``) are mapped to the reference's continuous
index coordinates; a contour must lie in one reference slice (its slice index an integer
within ``slice_tolerance``), else it is reported as missing the reference slices. All
contours of one ROI on one slice are filled together by the even-odd rule, so a contour
inside another is a hole (and a contour inside a hole is an island again), as DICOM PS3.3
C.8.8.6.3 and the common planning systems intend. A pixel belongs to the ROI when its
centre is inside; a centre exactly on a left/top edge is in, on a right/bottom edge out
(the half-open rule of scan-line polygon filling: Foley, van Dam et al., *Computer
Graphics: Principles and Practice*, 2nd ed., section 3.6).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from pydicom.dataset import Dataset

from netvolume.errors import ContourError, MaskError

__all__ = ["RoiInfo", "fill_even_odd", "rasterise_roi", "roi_table"]

RTSTRUCT_SOP_CLASS = "1.2.840.10008.5.1.4.1.1.481.3"


@dataclass
class RoiInfo:
    """One ROI of a structure set."""

    number: int
    name: str
    interpreted_type: str
    frame_of_reference_uid: str
    contours: list[Dataset] = field(repr=False, default_factory=list)


def roi_table(ds: Dataset, path: Path) -> list[RoiInfo]:
    """The ROIs of an RTSTRUCT in file order, with their contour items."""
    rois: dict[int, RoiInfo] = {}
    for item in getattr(ds, "StructureSetROISequence", []) or []:
        number = getattr(item, "ROINumber", None)
        if number is None:
            raise MaskError(
                f"{path.name}: a StructureSetROISequence item has no ROINumber",
                files=[path],
                tag="ROINumber",
            )
        rois[int(number)] = RoiInfo(
            number=int(number),
            name=str(getattr(item, "ROIName", "") or f"ROI {int(number)}"),
            interpreted_type="",
            frame_of_reference_uid=str(getattr(item, "ReferencedFrameOfReferenceUID", "") or ""),
        )
    for item in getattr(ds, "RTROIObservationsSequence", []) or []:
        ref = getattr(item, "ReferencedROINumber", None)
        if ref is not None and int(ref) in rois:
            rois[int(ref)].interpreted_type = str(getattr(item, "RTROIInterpretedType", "") or "")
    for item in getattr(ds, "ROIContourSequence", []) or []:
        ref = getattr(item, "ReferencedROINumber", None)
        if ref is None or int(ref) not in rois:
            raise MaskError(
                f"{path.name}: an ROIContourSequence item references ROI number {ref}, which "
                "StructureSetROISequence does not define",
                files=[path],
                tag="ReferencedROINumber",
            )
        rois[int(ref)].contours.extend(getattr(item, "ContourSequence", []) or [])
    return list(rois.values())


def fill_even_odd(polygons: Sequence[np.ndarray], shape: tuple[int, int]) -> np.ndarray:
    """Rasterise polygons together by the even-odd rule onto a 2D grid of pixel centres.

    Parameters
    ----------
    polygons
        Closed polygons, each ``(n, 2)`` vertices in continuous ``(row, column)`` index
        coordinates (pixel centres at integers); the last vertex joins the first.
    shape
        ``(rows, columns)`` of the output.

    Returns
    -------
    numpy.ndarray
        Boolean mask: True where a pixel centre is inside an odd number of polygons.
    """
    rows, cols = shape
    all_j: list[np.ndarray] = []
    all_x: list[np.ndarray] = []
    for p in polygons:
        y0 = p[:, 0]
        x0 = p[:, 1]
        y1 = np.roll(y0, -1)
        x1 = np.roll(x0, -1)
        lo = np.minimum(y0, y1)
        hi = np.maximum(y0, y1)
        # an edge crosses the rows j with lo <= j < hi (half-open: vertices counted once)
        start = np.clip(np.ceil(lo), 0, rows).astype(np.int64)
        stop = np.clip(np.ceil(hi), 0, rows).astype(np.int64)
        counts = np.maximum(stop - start, 0)
        total = int(counts.sum())
        if total == 0:
            continue
        edge = np.repeat(np.arange(len(p)), counts)
        offset = np.arange(total) - np.repeat(np.cumsum(counts) - counts, counts)
        j = np.repeat(start, counts) + offset
        dy = y1[edge] - y0[edge]
        x = x0[edge] + (j - y0[edge]) * (x1[edge] - x0[edge]) / dy
        all_j.append(j)
        all_x.append(x)
    out = np.zeros((rows, cols), dtype=bool)
    if not all_j:
        return out
    j = np.concatenate(all_j)
    x = np.concatenate(all_x)
    order = np.lexsort((x, j))
    j = j[order]
    x = x[order]
    # every row holds an even number of crossings; consecutive pairs are the inside spans
    a = np.clip(np.ceil(x[0::2]), 0, cols).astype(np.int64)
    b = np.clip(np.ceil(x[1::2]), 0, cols).astype(np.int64)
    rj = j[0::2]
    keep = b > a
    diff = np.zeros((rows, cols + 1), dtype=np.int32)
    np.add.at(diff, (rj[keep], a[keep]), 1)
    np.add.at(diff, (rj[keep], b[keep]), -1)
    out[:] = np.cumsum(diff[:, :cols], axis=1) > 0
    return out


def rasterise_roi(
    roi: RoiInfo,
    to_index: np.ndarray,
    shape: tuple[int, int, int],
    *,
    path: Path,
    slice_tolerance: float,
    notes: list[str],
) -> np.ndarray:
    """Rasterise one ROI's closed planar contours on the reference grid.

    Parameters
    ----------
    roi
        The ROI and its contour items.
    to_index
        4x4 matrix mapping LPS mm to the reference's continuous ``[k, j, i]`` index.
    shape
        Reference spatial shape ``(slices, rows, columns)``.
    slice_tolerance
        Largest distance of a contour from a reference slice, as a fraction of the slice
        spacing, for it to count as lying in that slice.
    notes
        Receives one line per contour that misses the reference slices or covers no
        pixel centre.

    Raises
    ------
    ContourError
        If the ROI has no closed planar contour, a contour is empty or has fewer than three
        points, or a contour is not parallel to the reference slices.
    """
    per_slice: dict[int, list[np.ndarray]] = {}
    missed: list[str] = []
    closed = 0
    other_types: set[str] = set()
    for n, item in enumerate(roi.contours, 1):
        kind = str(getattr(item, "ContourGeometricType", "") or "")
        if kind != "CLOSED_PLANAR":
            other_types.add(kind or "(none)")
            continue
        closed += 1
        data = getattr(item, "ContourData", None)
        values = [] if data is None else list(data)
        where = f"ROI {roi.name!r} (ROINumber {roi.number}), contour {n}"
        if len(values) == 0:
            raise ContourError(
                f"{path.name}: {where} is empty (no ContourData)",
                files=[path],
                tag="ContourData",
                hint="remove the empty contour in the planning system, or choose other ROIs "
                "with roi=",
            )
        if len(values) % 3 or len(values) < 9:
            raise ContourError(
                f"{path.name}: {where} has {len(values)} ContourData values; a closed planar "
                "contour needs x, y, z triplets for at least 3 points",
                files=[path],
                tag="ContourData",
                hint="remove or redraw the degenerate contour",
            )
        pts = np.asarray(values, dtype=np.float64).reshape(-1, 3)
        idx = pts @ to_index[:3, :3].T + to_index[:3, 3]
        k = idx[:, 0]
        if k.max() - k.min() > 2 * slice_tolerance:
            raise ContourError(
                f"{path.name}: {where} is not parallel to the reference slices (its points "
                f"span {k.max() - k.min():.3f} slice spacings across the slice axis)",
                files=[path],
                tag="ContourData",
                hint="read it onto the image it was drawn on, then resample the labels",
            )
        kc = float(k.mean())
        kr = round(kc)
        if abs(kc - kr) > slice_tolerance or kr < 0 or kr >= shape[0]:
            missed.append(f"{n} (slice index {kc:.2f})")
            continue
        per_slice.setdefault(int(kr), []).append(idx[:, 1:])
    if closed == 0:
        kinds = ", ".join(sorted(other_types)) if other_types else "no contours at all"
        raise ContourError(
            f"{path.name}: ROI {roi.name!r} (ROINumber {roi.number}) has no closed planar "
            f"contour ({kinds})",
            files=[path],
            tag="ContourGeometricType",
            hint="choose ROIs that are delineated volumes with roi=",
        )
    if other_types:
        notes.append(
            f"ROI {roi.name!r}: contours of type {', '.join(sorted(other_types))} ignored "
            "(only CLOSED_PLANAR contours delineate a volume)"
        )
    if missed:
        notes.append(
            f"ROI {roi.name!r}: {len(missed)} of {closed} contour(s) miss the reference "
            f"slices and were not rasterised: contour {', '.join(missed[:10])}"
            + (" ..." if len(missed) > 10 else "")
        )
    if not per_slice:
        raise ContourError(
            f"{path.name}: none of the {closed} contours of ROI {roi.name!r} lies on a slice "
            f"of the reference image (slices 0..{shape[0] - 1}; tolerance "
            f"{slice_tolerance:g} slice spacing)",
            files=[path],
            tag="ContourData",
            hint="read the structure set onto the image series it was drawn on",
        )
    out = np.zeros(shape, dtype=bool)
    for k, polys in per_slice.items():
        out[k] = fill_even_odd(polys, (shape[1], shape[2]))
    return out

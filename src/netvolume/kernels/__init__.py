"""The numeric core: connected components, Euclidean dilation and erosion, lesion
statistics, RECIST axes, SUVpeak.

Pure functions on numpy arrays with an explicit ``spacing``; no DICOM, no
:class:`~netvolume.volume.Volume`, no I/O. Everything that measures a lesion calls these.

Conventions
-----------
* Arrays are indexed ``[slice, row, column]``; axis 0 is the axial slice (reorient a volume
  to axial first, :meth:`netvolume.volume.Volume.reorient`).
* ``spacing`` is ``(slice, row, column)`` in mm, all positive.
* Coordinates called ``*_mm`` here are *array-aligned* millimetres, ``index * spacing`` from
  the centre of voxel ``(0, 0, 0)``; turning them into patient LPS coordinates is the
  caller's job (the Volume's affine).
* Continuous index coordinates put a voxel's centre on its integer index; its faces lie at
  ``index +- 1/2``.
* Per-label results are dataclasses of numpy arrays indexed by ``label - 1``.

Every kernel is compiled by numba on first use and cached on disk (``cache=True``); the
first call in a fresh environment pays the compilation (see ``benchmarks/bench_kernels.py``),
later processes load the cache.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from netvolume.errors import EmptyRegionError, KernelInputError
from netvolume.kernels._axes import axes_per_label, row_extremes, row_extremes_runs
from netvolume.kernels._label import OFFSETS, Runs, label_runs, paint_runs, write_labels
from netvolume.kernels._morph import (
    ball_offsets,
    bbox,
    connected_to,
    count_neighbours,
    dilate_ball,
    erode_ball,
    erode_neighbours,
)
from netvolume.kernels._peak import peak_per_label, sphere_pattern
from netvolume.kernels._runs import threads_for, word_view
from netvolume.kernels._stats import merge_chunks, stats_pass, stats_runs

__all__ = [
    "AxialDiameters",
    "LesionTable",
    "RegionStats",
    "SphereStats",
    "SuvPeak",
    "axial_diameters",
    "ball_offsets",
    "bbox",
    "connected_to",
    "count_neighbours",
    "dilate_ball",
    "dust",
    "erode_ball",
    "erode_neighbours",
    "fill_holes",
    "label",
    "largest_component",
    "lesion_table",
    "region_stats",
    "sphere_mean",
    "suv_peak",
]

#: Tolerance (mm) under which two long axes of one label count as equal (slice tie-break).
LD_TIE_TOLERANCE_MM = 1e-9


# --------------------------------------------------------------------------- validation


def _as_mask(mask: np.ndarray, what: str = "mask") -> np.ndarray:
    arr = np.asarray(mask)
    if arr.dtype != np.bool_ and not np.issubdtype(arr.dtype, np.integer):
        raise KernelInputError(
            f"{what} has dtype {arr.dtype}; expected bool or an integer type",
            hint=f"threshold it first, e.g. {what} > 0.5, or cast with .astype(bool)",
        )
    if arr.ndim not in (2, 3):
        raise KernelInputError(
            f"{what} has {arr.ndim} dimensions (shape {arr.shape}); expected 2 or 3",
            hint="pass one 3-D volume [slice, row, column] or one 2-D slice",
        )
    return arr


def _mask_bytes(arr: np.ndarray) -> np.ndarray:
    """The mask as C-contiguous uint8 (nonzero = foreground), 3-D.

    One-byte masks (bool, uint8, int8) are viewed, not copied, when already contiguous;
    wider ones become ``arr != 0``. The numba kernels are thus compiled for one type only.
    """
    arr3 = _as3d(arr)
    if arr3.dtype.itemsize == 1:
        return np.ascontiguousarray(arr3).view(np.uint8)
    return np.not_equal(arr3, 0).view(np.uint8)


def _connectivity_offsets(
    ndim: int, connectivity: int, *, what: str = "connectivity"
) -> np.ndarray:
    conn = int(connectivity)
    if ndim == 2 and conn == 26:
        conn = 8  # the default, full connectivity, on a single slice
    key = (ndim, conn)
    if key not in OFFSETS:
        allowed = "6, 18 and 26" if ndim == 3 else "4 and 8"
        raise KernelInputError(
            f"Only {allowed} {what} are supported for {ndim}-D arrays. Got: {connectivity}",
            hint=f"pass {what}={'26' if ndim == 3 else '8'} (full) or the face-only one",
        )
    return OFFSETS[key]


def _as3d(arr: np.ndarray) -> np.ndarray:
    return arr[np.newaxis] if arr.ndim == 2 else arr


def _spacing3(spacing: Sequence[float]) -> tuple[float, float, float]:
    try:
        sp = tuple(float(s) for s in spacing)
    except (TypeError, ValueError) as exc:
        raise KernelInputError(
            f"spacing {spacing!r} is not a sequence of numbers",
            hint="pass (slice, row, column) spacing in mm, e.g. (3.0, 0.78, 0.78)",
        ) from exc
    if len(sp) != 3 or not all(math.isfinite(s) and s > 0 for s in sp):
        raise KernelInputError(
            f"spacing {spacing!r}: expected three positive finite values in mm "
            "(slice, row, column)",
            hint="take it from Volume.spacing_mm",
        )
    return (sp[0], sp[1], sp[2])


def _labels3(labels: np.ndarray, n: int) -> tuple[np.ndarray, int]:
    arr = np.asarray(labels)
    if not np.issubdtype(arr.dtype, np.integer):
        raise KernelInputError(
            f"labels have dtype {arr.dtype}; expected an integer label map",
            hint="use the output of netvolume.kernels.label",
        )
    if arr.ndim != 3:
        raise KernelInputError(
            f"labels have {arr.ndim} dimensions (shape {arr.shape}); expected 3 "
            "[slice, row, column]",
            hint="add a slice axis to a single slice: labels[np.newaxis]",
        )
    nn = int(n)
    if nn < 0:
        raise KernelInputError(f"n = {n}; expected the number of labels (>= 0)")
    if np.issubdtype(arr.dtype, np.signedinteger):
        if arr.size and int(arr.min()) < 0:
            raise KernelInputError(
                f"labels contain a negative value ({int(arr.min())}); expected 0..n",
                hint="relabel the map to 0 (background) and 1..n",
            )
        arr = arr.view(np.dtype(f"u{arr.dtype.itemsize}"))
    # unsigned, C-contiguous: the numba kernels are compiled for these four types only
    return np.ascontiguousarray(arr), nn


def _check_values(values: np.ndarray, labels: np.ndarray, what: str = "values") -> np.ndarray:
    vals = np.asarray(values)
    if vals.shape != labels.shape:
        raise KernelInputError(
            f"{what} shape {vals.shape} differs from the labels shape {labels.shape}",
            hint="resample the values onto the label grid first",
        )
    if not (np.issubdtype(vals.dtype, np.integer) or np.issubdtype(vals.dtype, np.floating)):
        raise KernelInputError(f"{what} have dtype {vals.dtype}; expected real numbers")
    return vals


def _row_bounds(n_rows: int, n_labels: int) -> np.ndarray:
    """Row chunks for the parallel passes, one accumulator table per chunk.

    The count does not depend on the number of threads, so float sums are merged in the same
    order on every machine and the results are reproducible to the bit. More chunks than
    threads balance uneven rows; fewer when per-chunk tables (136 bytes per label) grow.
    """
    nchunk = 16 if n_labels <= 4096 else (4 if n_labels <= 65536 else 2)
    nchunk = max(1, min(nchunk, n_rows))
    return np.linspace(0, n_rows, nchunk + 1).round().astype(np.int64)


# --------------------------------------------------------------------------- label


def _label_dtype(n: int) -> type[np.unsignedinteger]:
    for dt in (np.uint8, np.uint16, np.uint32):
        if n <= np.iinfo(dt).max:
            return dt
    return np.uint64


def label(mask: np.ndarray, *, connectivity: int = 26) -> tuple[np.ndarray, int]:
    """Label the connected components of a 2-D or 3-D mask.

    Parameters
    ----------
    mask : ndarray of bool or int, 2-D or 3-D
        Foreground where nonzero (negative values included).
    connectivity : {6, 18, 26} in 3-D, {4, 8} in 2-D
        Which neighbours join: faces (6 / 4), faces and edges (18), or all (26 / 8).
        The default 26 means 8 on a 2-D mask.

    Returns
    -------
    labels : ndarray, same shape, C order
        0 for background, 1..n for the components, numbered in the raster (C) order of each
        component's first voxel, exactly as ``scipy.ndimage.label`` with the matching
        structure. The dtype is the smallest of uint8 / uint16 / uint32 / uint64 holding n.
    n : int
        The number of components.

    Notes
    -----
    Run-based union-find, slab-parallel on numba's threads; see
    :mod:`netvolume.kernels._label`. Background voxels are never written: the output comes
    zero-initialised from ``numpy.zeros``.

    Examples
    --------
    >>> import numpy as np
    >>> m = np.array([[1, 0, 0], [0, 1, 0], [0, 0, 1]], bool)
    >>> label(m, connectivity=4)[1], label(m, connectivity=8)[1]
    (3, 1)
    """
    arr = _as_mask(mask)
    offsets = _connectivity_offsets(arr.ndim, connectivity)
    runs = label_runs(_mask_bytes(arr), offsets)
    out = np.zeros(arr.shape, _label_dtype(runs.n))
    write_labels(runs, _as3d(out))
    return out, runs.n


def _component_sizes(runs: Runs) -> np.ndarray:
    """Voxels per component (index k - 1) from labelled runs."""
    lengths = runs.stops.astype(np.int64) - runs.starts
    sizes = np.bincount(-runs.parent - 1, weights=lengths, minlength=runs.n)
    return sizes.astype(np.int64)


def _paint(runs: Runs, keep: np.ndarray, out: np.ndarray, value: int) -> None:
    """Set every byte of ``out`` (C-contiguous) to ``value`` on the runs whose component k
    has ``keep[k - 1]`` (0 clears any dtype; 1 sets a bool)."""
    if len(runs.parent) and keep.any():
        out3 = _as3d(out)
        item = out3.dtype.itemsize
        raw = out3.view(np.uint8)  # (nz, ny, nx * item)
        with threads_for(out3.size):
            paint_runs(raw, runs.row_ptr, runs.starts, runs.stops, runs.parent, keep, value, item)


def largest_component(mask: np.ndarray, *, connectivity: int = 26) -> np.ndarray:
    """The largest connected component of a mask, as a bool array.

    Parameters
    ----------
    mask : ndarray of bool or int, 2-D or 3-D
        Foreground where nonzero.
    connectivity : {6, 18, 26} or {4, 8}
        As in :func:`label`.

    Returns
    -------
    ndarray of bool
        True on the component with the most voxels; on a tie, the one whose first voxel
        comes first in raster order. All False for an empty mask.
    """
    arr = _as_mask(mask)
    runs = label_runs(_mask_bytes(arr), _connectivity_offsets(arr.ndim, connectivity))
    out = np.zeros(arr.shape, bool)
    if runs.n == 0:
        return out
    sizes = _component_sizes(runs)
    keep = np.zeros(runs.n, bool)
    keep[int(np.argmax(sizes))] = True
    _paint(runs, keep, out, 1)
    return out


def dust(mask: np.ndarray, min_voxels: int, *, connectivity: int = 26) -> np.ndarray:
    """Remove the connected components smaller than ``min_voxels``.

    Parameters
    ----------
    mask : ndarray of bool or int, 2-D or 3-D
        Foreground where nonzero; components are taken over all nonzero voxels together.
    min_voxels : int
        Components with fewer voxels than this are set to 0 (``cc3d.dust`` semantics);
        0 keeps everything.
    connectivity : {6, 18, 26} or {4, 8}
        As in :func:`label`.

    Returns
    -------
    ndarray
        A copy of ``mask`` (same dtype and values) without the small components.
    """
    arr = _as_mask(mask)
    if int(min_voxels) < 0:
        raise KernelInputError(
            f"min_voxels = {min_voxels}; expected a voxel count >= 0",
            hint="0 keeps every component",
        )
    runs = label_runs(_mask_bytes(arr), _connectivity_offsets(arr.ndim, connectivity))
    out = np.array(arr, copy=True, order="C")
    if runs.n == 0:
        return out
    small = _component_sizes(runs) < int(min_voxels)
    _paint(runs, small, out, 0)
    return out


def fill_holes(mask: np.ndarray, *, connectivity: int = 6) -> np.ndarray:
    """Fill the holes of a mask: background regions that do not reach the array border.

    Parameters
    ----------
    mask : ndarray of bool or int, 2-D or 3-D
        Foreground where nonzero.
    connectivity : {6, 18, 26} or {4, 8}
        Connectivity of the *background*; 6 (4 in 2-D), the default, matches
        ``scipy.ndimage.binary_fill_holes`` and suits a 26-connected foreground. A 2-D mask
        with 6 uses 4.

    Returns
    -------
    ndarray of bool
        The mask with its holes set (equals ``binary_fill_holes(mask, structure)`` with the
        structure of ``connectivity``).
    """
    arr = _as_mask(mask)
    if arr.ndim == 3:
        # only the mask's bounding box grown by one voxel can hold a hole: the grown box's
        # one-voxel shell is background and connected, so the answer inside it is the same
        box = bbox(arr, margin=1)
        if box is None:
            return np.zeros(arr.shape, dtype=bool)
        if math.prod(s.stop - s.start for s in box) < arr.size:
            out = np.zeros(arr.shape, dtype=bool)
            out[box] = _fill_holes_whole(arr[box], connectivity)
            return out
    return _fill_holes_whole(arr, connectivity)


def _fill_holes_whole(arr: np.ndarray, connectivity: int) -> np.ndarray:
    conn = 4 if (arr.ndim == 2 and int(connectivity) == 6) else connectivity
    offsets = _connectivity_offsets(arr.ndim, conn)
    background = np.logical_not(arr)
    bg3 = _as3d(background)
    runs = label_runs(_mask_bytes(background), offsets)
    out = arr.astype(bool, copy=True, order="C")
    if runs.n == 0:
        return out
    nz, ny, nx = bg3.shape
    # components touching the border: any run in a border row, starting at 0 or ending at nx
    touch = np.zeros(runs.n, bool)
    comp = -runs.parent - 1
    rows = np.repeat(np.arange(nz * ny), np.diff(runs.row_ptr))
    z = rows // ny
    y = rows % ny
    edge = (z == 0) | (z == nz - 1) | (y == 0) | (y == ny - 1)
    edge |= (runs.starts == 0) | (runs.stops == nx)
    if arr.ndim == 2:
        edge = (y == 0) | (y == ny - 1) | (runs.starts == 0) | (runs.stops == nx)
    touch[comp[edge]] = True
    _paint(runs, ~touch, out, 1)
    return out


# --------------------------------------------------------------------------- statistics


@dataclass(frozen=True)
class RegionStats:
    """Per-label statistics; every array is indexed by ``label - 1``.

    Attributes
    ----------
    n : int
        Number of labels.
    spacing : tuple of float
        (slice, row, column) spacing in mm.
    voxels : ndarray of int64, (n,)
    volume_ml : ndarray of float64, (n,)
        ``voxels * prod(spacing) / 1000``.
    bbox : ndarray of int64, (n, 6)
        ``(min_slice, min_row, min_col, max_slice + 1, max_row + 1, max_col + 1)`` (stop
        exclusive, as ``skimage.measure.regionprops``); zeros for an absent label.
    centroid_index : ndarray of float64, (n, 3)
        Mean voxel index (NaN when absent).
    centroid_mm : ndarray of float64, (n, 3)
        ``centroid_index * spacing`` (array-aligned mm, not LPS).
    min, max, mean, std : ndarray of float64, (n,) or None
        Of the values inside each label (``std`` with ddof = 0); None without values.
    argmax : ndarray of int64, (n, 3) or None
        Index of the maximum, the first in raster order on ties; -1 when absent.
    """

    n: int
    spacing: tuple[float, float, float]
    voxels: np.ndarray
    volume_ml: np.ndarray
    bbox: np.ndarray
    centroid_index: np.ndarray
    centroid_mm: np.ndarray
    min: np.ndarray | None = None
    max: np.ndarray | None = None
    mean: np.ndarray | None = None
    std: np.ndarray | None = None
    argmax: np.ndarray | None = None


def _stats_raw(labels: np.ndarray, n: int, values: np.ndarray | None) -> tuple[np.ndarray, ...]:
    words, per_word, ones = word_view(labels)
    bounds = _row_bounds(labels.shape[0] * labels.shape[1], n)
    with_values = values is not None
    vals = values if values is not None else np.zeros((1, 1, 1), np.float32)
    with threads_for(labels.size):
        iacc, facc, bad = stats_pass(labels, words, per_word, ones, n, vals, with_values, bounds)
    hits = bad[bad != 0]
    if hits.size:
        v = int(hits[0])
        shown = "a negative value" if v == -1 else str(v)
        raise KernelInputError(
            f"labels contain {shown}, outside 1..n = 1..{n}",
            hint="pass the n that label() returned, or relabel the map to 0..n",
        )
    return merge_chunks(iacc, facc, with_values)


def region_stats(
    labels: np.ndarray,
    n: int,
    *,
    spacing: Sequence[float],
    values: np.ndarray | None = None,
) -> RegionStats:
    """Count, volume, bounding box, centroid and value statistics of every label, in one pass.

    Parameters
    ----------
    labels : ndarray of int, 3-D [slice, row, column]
        0 background, 1..n labels (e.g. from :func:`label`).
    n : int
        Number of labels; a value above n is an error.
    spacing : sequence of 3 float
        (slice, row, column) spacing in mm.
    values : ndarray, same shape, optional
        CT HU, PET SUV, ... for min / max / mean / std / argmax. NaN inside a label is an
        error.

    Returns
    -------
    RegionStats

    Notes
    -----
    Variance by shifted sums merged with Chan, Golub & LeVeque (1983); see
    :mod:`netvolume.kernels._stats`.
    """
    arr, nn = _labels3(labels, n)
    sp = _spacing3(spacing)
    vals = _check_values(values, arr) if values is not None else None
    return _build_stats(_stats_raw(arr, nn, vals), nn, sp, arr.shape, vals is not None)


def _build_stats(
    merged: tuple[np.ndarray, ...],
    nn: int,
    sp: tuple[float, float, float],
    shape: tuple[int, ...],
    with_values: bool,
) -> RegionStats:
    count, bbox, sums, vmin, vmax, mean, m2, amax, nanc = merged
    if with_values and np.any(nanc):
        k = int(np.flatnonzero(nanc)[0]) + 1
        raise KernelInputError(
            f"values are NaN at {int(nanc[k - 1])} voxel(s) of label {k}",
            hint="replace NaN (e.g. outside the PET field of view) before measuring, or "
            "leave those voxels out of the labels",
        )
    with np.errstate(invalid="ignore", divide="ignore"):
        centroid = sums / count[:, None]
    centroid[count == 0] = np.nan
    voxel_ml = sp[0] * sp[1] * sp[2] / 1000.0
    extra: dict[str, np.ndarray | None] = {}
    if with_values:
        with np.errstate(invalid="ignore", divide="ignore"):
            std = np.sqrt(m2 / count)
        argmax = np.full((nn, 3), -1, np.int64)
        ok = amax >= 0
        argmax[ok] = np.stack(np.unravel_index(amax[ok], shape), axis=1)
        extra = {"min": vmin, "max": vmax, "mean": mean, "std": std, "argmax": argmax}
    return RegionStats(
        n=nn,
        spacing=sp,
        voxels=count,
        volume_ml=count * voxel_ml,
        bbox=bbox,
        centroid_index=centroid,
        centroid_mm=centroid * np.asarray(sp),
        **extra,
    )


# --------------------------------------------------------------------------- RECIST axes


@dataclass(frozen=True)
class AxialDiameters:
    """RECIST long and short axes per label; arrays indexed by ``label - 1``.

    Attributes
    ----------
    ld_mm : ndarray of float64, (n,)
        Long axis: the largest distance between two pixel corners of the label in one axial
        slice, over all slices (NaN when absent).
    sa_mm : ndarray of float64, (n,)
        Short axis: the longest chord of that slice's convex hull perpendicular to the long
        axis.
    slice : ndarray of int64, (n,)
        Slice index of the long axis (-1 when absent).
    ld_endpoints, sa_endpoints : ndarray of float64, (n, 2, 3)
        End points in continuous index coordinates (slice, row, column).
    """

    ld_mm: np.ndarray
    sa_mm: np.ndarray
    slice: np.ndarray
    ld_endpoints: np.ndarray
    sa_endpoints: np.ndarray


def axial_diameters(
    labels: np.ndarray,
    n: int,
    *,
    spacing: Sequence[float],
) -> AxialDiameters:
    """RECIST 1.1 long and short axis of every label in the axial plane.

    Measured as calipers span a lesion: between the outer edges of the pixels (their
    corners), in mm with the row and column spacing applied.

    Parameters
    ----------
    labels : ndarray of int, 3-D [slice, row, column]
        0 background, 1..n labels; axis 0 must be the axial slice.
    n : int
        Number of labels.
    spacing : sequence of 3 float
        (slice, row, column) spacing in mm; only the in-plane pair is used.

    Returns
    -------
    AxialDiameters

    Notes
    -----
    The long axis is the diameter of the convex hull of the slice's pixel squares (rotating
    calipers; equal to the largest corner-to-corner distance). Between slices with equal
    long axes (within 1e-9 mm) the one with the longer short axis wins, then the lower
    slice. The short axis is the longest hull chord perpendicular to the long axis: for a
    non-convex lesion it may cross background, as a caliper does. RECIST 1.1:
    Eisenhauer et al., Eur J Cancer 45 (2009) 228-247. Algorithms: see
    :mod:`netvolume.kernels._axes`.

    Other libraries use other conventions (pixel centres, contour points, mesh vertices) and
    give shorter values, by up to about one pixel diagonal; ``tests/test_kernels_axes.py``
    measures the differences.
    """
    arr, nn = _labels3(labels, n)
    sp = _spacing3(spacing)
    count, bb, *_ = _stats_raw(arr, nn, None)
    words, per_word, ones = word_view(arr)
    bounds = _row_bounds(arr.shape[0] * arr.shape[1], nn)

    def fill(xlo: np.ndarray, xhi: np.ndarray, offsets: np.ndarray) -> None:
        row_extremes(arr, words, per_word, ones, nn, bb, offsets, xlo, xhi, bounds)

    return _axes_core(bb, count, sp, fill)


def _axes_core(
    bb: np.ndarray,
    count: np.ndarray,
    sp: tuple[float, float, float],
    fill: Callable[[np.ndarray, np.ndarray, np.ndarray], None],
) -> AxialDiameters:
    """Allocate the per-row extreme tables, let ``fill`` fill them, measure every label."""
    nn = len(count)
    size = (bb[:, 3] - bb[:, 0]) * (bb[:, 4] - bb[:, 1])
    offsets = np.zeros(nn + 1, np.int64)
    np.cumsum(size, out=offsets[1:])
    total = int(offsets[-1])
    # int32 columns: 8 bytes per (label, slice, row) of every bounding box
    xlo = np.full(total, np.iinfo(np.int32).max, np.int32)
    xhi = np.full(total, -1, np.int32)
    fill(xlo, xhi, offsets)
    ld, sa, sl, lde, sae = axes_per_label(
        xlo, xhi, offsets, bb, count, sp[1], sp[2], LD_TIE_TOLERANCE_MM
    )
    return AxialDiameters(ld_mm=ld, sa_mm=sa, slice=sl, ld_endpoints=lde, sa_endpoints=sae)


# --------------------------------------------------------------------------- lesion table


@dataclass(frozen=True)
class LesionTable:
    """Everything :func:`lesion_table` measures.

    Attributes
    ----------
    labels : ndarray
        The label map, as :func:`label` returns it.
    n : int
        Number of components.
    stats : RegionStats
    axes : AxialDiameters
    """

    labels: np.ndarray
    n: int
    stats: RegionStats
    axes: AxialDiameters


def lesion_table(
    mask: np.ndarray,
    *,
    spacing: Sequence[float],
    values: np.ndarray | None = None,
    connectivity: int = 26,
) -> LesionTable:
    """Label a 3-D lesion mask and measure every component: :func:`label`,
    :func:`region_stats` and :func:`axial_diameters` in one go.

    The measurements come from the runs found while labelling, so the label map is never
    read back: this costs little more than :func:`label` alone. Results equal the three
    separate calls.

    Parameters
    ----------
    mask : ndarray of bool or int, 3-D [slice, row, column]
        Foreground where nonzero.
    spacing : sequence of 3 float
        (slice, row, column) spacing in mm.
    values : ndarray, same shape, optional
        CT HU or PET SUV for the value statistics.
    connectivity : {6, 18, 26}
        As in :func:`label`.

    Returns
    -------
    LesionTable
    """
    arr = _as_mask(mask)
    if arr.ndim != 3:
        raise KernelInputError(
            f"mask has {arr.ndim} dimensions (shape {arr.shape}); expected 3",
            hint="add a slice axis to a single slice: mask[np.newaxis]",
        )
    sp = _spacing3(spacing)
    vals = _check_values(values, arr) if values is not None else None
    runs = label_runs(_mask_bytes(arr), _connectivity_offsets(3, connectivity))
    out = np.zeros(arr.shape, _label_dtype(runs.n))
    write_labels(runs, out)
    nn = runs.n
    _nz, ny, nx = arr.shape
    bounds = _row_bounds(arr.shape[0] * ny, nn)
    with_values = vals is not None
    v = vals if vals is not None else np.zeros((1, 1, 1), np.float32)
    iacc, facc = stats_runs(
        runs.row_ptr, runs.starts, runs.stops, runs.parent, nn, ny, nx, v, with_values, bounds
    )
    stats = _build_stats(merge_chunks(iacc, facc, with_values), nn, sp, arr.shape, with_values)

    def fill(xlo: np.ndarray, xhi: np.ndarray, offsets: np.ndarray) -> None:
        if nn:
            row_extremes_runs(
                runs.row_ptr,
                runs.starts,
                runs.stops,
                runs.parent,
                ny,
                stats.bbox,
                offsets,
                xlo,
                xhi,
                bounds,
            )

    axes = _axes_core(stats.bbox, stats.voxels, sp, fill)
    return LesionTable(labels=out, n=nn, stats=stats, axes=axes)


# --------------------------------------------------------------------------- SUV


@dataclass(frozen=True)
class SuvPeak:
    """SUVpeak per label; arrays indexed by ``label - 1``.

    Attributes
    ----------
    peak : ndarray of float64, (n,)
        Highest sphere mean (NaN when absent).
    centre_index : ndarray of int64, (n, 3)
        Voxel the best sphere is centred on (first in raster order on ties; -1 when absent).
    voxels : ndarray of int64, (n,)
        Voxels averaged at that centre (fewer than a whole sphere at the image border).
    radius_mm : float
        Radius of the sphere.
    """

    peak: np.ndarray
    centre_index: np.ndarray
    voxels: np.ndarray
    radius_mm: float


def sphere_radius_mm(sphere_ml: float) -> float:
    """Radius (mm) of a sphere of ``sphere_ml`` mL: ``(3 V / (4 pi))^(1/3)``, V in mm^3."""
    return float((3.0 * 1000.0 * sphere_ml / (4.0 * math.pi)) ** (1.0 / 3.0))


def suv_peak(
    values: np.ndarray,
    labels: np.ndarray,
    n: int,
    *,
    spacing: Sequence[float],
    sphere_ml: float = 1.0,
) -> SuvPeak:
    """PERCIST SUVpeak: the highest mean in a sphere centred on a voxel of each label.

    Parameters
    ----------
    values : ndarray, 3-D
        SUV (or any uptake) on the label grid.
    labels : ndarray of int, 3-D
        0 background, 1..n labels.
    n : int
        Number of labels.
    spacing : sequence of 3 float
        (slice, row, column) spacing in mm; anisotropic voxels are honoured.
    sphere_ml : float
        Sphere volume in mL (1.0 in PERCIST 1.0); radius ``(3 V / 4 pi)^(1/3)``, 6.20 mm
        for 1 mL.

    Returns
    -------
    SuvPeak

    Notes
    -----
    A voxel belongs to the sphere when its centre lies within the radius; every voxel of the
    sphere counts, inside the lesion or not; voxels beyond the image are left out. Wahl et
    al., J Nucl Med 50 (2009) 122S-150S (PERCIST).
    """
    arr, nn = _labels3(labels, n)
    sp = _spacing3(spacing)
    vals = _check_values(values, arr)
    if not (math.isfinite(float(sphere_ml)) and float(sphere_ml) > 0):
        raise KernelInputError(f"sphere_ml = {sphere_ml}; expected a positive volume in mL")
    count, bb, *_ = _stats_raw(arr, nn, None)
    radius = sphere_radius_mm(float(sphere_ml))
    pattern = sphere_pattern(radius, sp)
    peak, centre, nvox = peak_per_label(vals, arr, nn, bb, count, pattern)
    bad = np.flatnonzero(np.isnan(peak) & (count > 0))
    if bad.size:
        raise KernelInputError(
            f"values are NaN in the SUVpeak sphere of label {int(bad[0]) + 1}",
            hint="replace NaN (e.g. outside the PET field of view) before measuring",
        )
    return SuvPeak(peak=peak, centre_index=centre, voxels=nvox, radius_mm=radius)


@dataclass(frozen=True)
class SphereStats:
    """Statistics of the values in a spherical VOI.

    Attributes
    ----------
    mean, std : float
        Mean and standard deviation (ddof = 0).
    voxels : int
        Voxels averaged.
    volume_ml : float
        ``voxels`` times the voxel volume.
    """

    mean: float
    std: float
    voxels: int
    volume_ml: float


def sphere_mean(
    values: np.ndarray,
    centre_mm: Sequence[float],
    radius_mm: float,
    *,
    spacing: Sequence[float],
    exclude: np.ndarray | None = None,
) -> SphereStats:
    """Mean, std and voxel count of ``values`` inside a sphere (reference VOI).

    Parameters
    ----------
    values : ndarray, 3-D
    centre_mm : sequence of 3 float
        Centre in array-aligned mm (``index * spacing``), not LPS.
    radius_mm : float
        A voxel counts when its centre is within this distance of the centre.
    spacing : sequence of 3 float
        (slice, row, column) spacing in mm.
    exclude : ndarray of bool, same shape, optional
        Voxels to leave out (lesions, vessels).

    Returns
    -------
    SphereStats

    Raises
    ------
    EmptyRegionError
        When no voxel is left (sphere outside the image, or all excluded).
    """
    vals = np.asarray(values)
    if vals.ndim != 3:
        raise KernelInputError(f"values have {vals.ndim} dimensions; expected 3")
    sp = np.asarray(_spacing3(spacing))
    c = np.asarray(centre_mm, dtype=np.float64)
    r = float(radius_mm)
    if c.shape != (3,) or not np.all(np.isfinite(c)) or not (math.isfinite(r) and r > 0):
        raise KernelInputError(
            f"sphere centre {centre_mm!r} / radius {radius_mm!r}: expected three finite "
            "coordinates in mm and a positive radius"
        )
    if exclude is not None and np.shape(exclude) != vals.shape:
        raise KernelInputError(
            f"exclude shape {np.shape(exclude)} differs from the values shape {vals.shape}"
        )
    lo = np.maximum(np.ceil((c - r) / sp - 1e-9).astype(np.int64), 0)
    hi = np.minimum(np.floor((c + r) / sp + 1e-9).astype(np.int64) + 1, vals.shape)
    if np.any(hi <= lo):
        raise EmptyRegionError(
            f"the sphere at {c.tolist()} mm with radius {r} mm lies outside the image "
            f"(extent {(np.asarray(vals.shape) - 1) * sp} mm)",
            hint="place the reference VOI inside the organ",
        )
    grids = np.ogrid[lo[0] : hi[0], lo[1] : hi[1], lo[2] : hi[2]]
    d2 = sum(((g * s - cc) ** 2 for g, s, cc in zip(grids, sp, c, strict=True)))
    inside = d2 <= r * r + 1e-9
    if exclude is not None:
        inside &= ~np.asarray(exclude, bool)[lo[0] : hi[0], lo[1] : hi[1], lo[2] : hi[2]]
    sel = vals[lo[0] : hi[0], lo[1] : hi[1], lo[2] : hi[2]][inside].astype(np.float64)
    if sel.size == 0:
        raise EmptyRegionError(
            f"no voxel left in the sphere at {c.tolist()} mm, radius {r} mm, after "
            "leaving out the excluded mask",
            hint="move the reference VOI away from lesions or enlarge it",
        )
    if np.isnan(sel).any():
        raise KernelInputError(
            f"values are NaN in the sphere at {c.tolist()} mm, radius {r} mm",
            hint="place the VOI inside the field of view",
        )
    return SphereStats(
        mean=float(sel.mean()),
        std=float(sel.std()),
        voxels=int(sel.size),
        volume_ml=float(sel.size * np.prod(sp) / 1000.0),
    )

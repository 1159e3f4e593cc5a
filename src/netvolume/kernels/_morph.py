"""Euclidean dilation and erosion by a ball in millimetres, painted from the surface.

``dilate_ball(mask, r)`` is the set of voxels whose centre lies within ``r`` mm of the
centre of a mask voxel; ``erode_ball(mask, r)`` the mask voxels farther than ``r`` mm from
every voxel outside the mask (the image outside counting as outside). Both equal a
threshold of the exact Euclidean distance transform (``scipy.ndimage.distance_transform_edt``
with ``sampling=spacing``), which is their test oracle, but cost only
``surface voxels x ball voxels`` inside the mask's bounding box instead of a transform of
the whole image; a small ball (up to about four voxels' radius) costs one vectorised pass
over that box per line of the ball along the last axis (the box first combined along that
axis, once per line width).

Why painting the surface is enough: let ``x`` be a voxel outside the mask and ``m`` the
mask voxel nearest to it. Moving ``m`` one voxel along any axis on which it differs from
``x`` brings it strictly closer to ``x``, so that neighbour is not in the mask: ``m`` has a
6-neighbour outside the mask (it is a surface voxel). The same holds for the background
voxel nearest to a mask voxel, which is why erosion paints from the background's surface
(see Maurer, Qi and Raghavan 2003, IEEE TPAMI 25(2):265, for the exact Euclidean distance
transform these thresholds reproduce).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence

import numba
import numpy as np
import scipy.ndimage as ndi

from netvolume.errors import KernelInputError

#: Tolerance (mm) added to the radius, so a neighbour exactly ``r`` away is inside the ball.
RADIUS_TOLERANCE_MM = 1e-9


def ball_offsets(radius_mm: float, spacing: Sequence[float]) -> np.ndarray:
    """Integer offsets ``(dk, dj, di)`` whose centre lies within ``radius_mm`` of the origin.

    Parameters
    ----------
    radius_mm : float
        Ball radius (mm), >= 0.
    spacing : sequence of 3 float
        Voxel spacing ``(slice, row, column)`` in mm.

    Returns
    -------
    ndarray of int64, shape (n, 3)
        Every offset with ``sqrt(sum((d * spacing) ** 2)) <= radius_mm + 1e-9``, the origin
        included, in raster order.
    """
    reach = [math.floor((radius_mm + RADIUS_TOLERANCE_MM) / s) for s in spacing]
    grids = np.meshgrid(*[np.arange(-r, r + 1) for r in reach], indexing="ij")
    d2 = np.zeros(grids[0].shape, dtype=np.float64)
    for g, s in zip(grids, spacing, strict=True):
        d2 = d2 + (g * float(s)) ** 2
    keep = np.sqrt(d2) <= radius_mm + RADIUS_TOLERANCE_MM
    return np.stack([g[keep] for g in grids], axis=1).astype(np.int64)


#: Painting costs about this many times less per (surface voxel x ball voxel) than the
#: distance transform per voxel of the box (measured on this project's 2-core machine:
#: ~3.5 ns against ~55 ns); above, the box's distance transform is used instead.
_PAINT_PER_EDT_VOXEL = 16


@numba.njit(cache=True, nogil=True)
def _is_surface(src: np.ndarray, k: int, j: int, i: int) -> bool:
    nk, nj, ni = src.shape
    return (
        (k > 0 and not src[k - 1, j, i])
        or (k + 1 < nk and not src[k + 1, j, i])
        or (j > 0 and not src[k, j - 1, i])
        or (j + 1 < nj and not src[k, j + 1, i])
        or (i > 0 and not src[k, j, i - 1])
        or (i + 1 < ni and not src[k, j, i + 1])
    )


@numba.njit(cache=True, nogil=True)
def _count_surface(src: np.ndarray) -> int:
    """True voxels of ``src`` with a false 6-neighbour inside the array."""
    nk, nj, ni = src.shape
    n = 0
    for k in range(nk):
        for j in range(nj):
            for i in range(ni):
                if src[k, j, i] and _is_surface(src, k, j, i):
                    n += 1
    return n


#: Up to this many passes (see :func:`_line_runs`), the ball is applied as shifted copies
#: of the whole box (one vectorised AND / OR per pass, about 0.15 ns per voxel and pass on
#: this project's 2-core machine), which costs less than merely counting the surface
#: voxels for painting (about 10 ns per voxel): balls of up to about four voxels' radius.
_SHIFT_MAX_OFFSETS = 64


def _shifted(n: int, d: int) -> tuple[slice, slice]:
    """(destination, source) slices of an axis of length ``n`` shifted by ``d``:
    ``out[dst]`` takes ``src[dst + d]``."""
    return slice(max(0, -d), n - max(0, d)), slice(max(0, d), n + min(0, d))


def _line_runs(offs: np.ndarray) -> list[tuple[int, int, int]]:
    """The ball's offsets as lines along the last axis: ``(dk, dj, w)`` for the offsets
    ``(dk, dj, -w..w)`` (for a fixed ``dk, dj`` those of a ball centred on a voxel are one
    symmetric run), in raster order."""
    width: dict[tuple[int, int], int] = {}
    for dk, dj, di in offs.tolist():
        width[(dk, dj)] = max(width.get((dk, dj), 0), abs(di))
    return [(dk, dj, w) for (dk, dj), w in width.items()]


@functools.lru_cache(maxsize=64)
def _ball(
    radius_mm: float, spacing: tuple[float, ...]
) -> tuple[np.ndarray, list[tuple[int, int, int]]]:
    """:func:`ball_offsets` (read-only) and its :func:`_line_runs`, kept for the radii and
    spacings met again (a study's lesions share a few)."""
    offs = ball_offsets(radius_mm, spacing)
    offs.setflags(write=False)
    return offs, _line_runs(offs)


def _passes(runs: list[tuple[int, int, int]]) -> int:
    """Vectorised passes over the box of :func:`_shift_apply`."""
    return len(runs) + 2 * max((w for _, _, w in runs), default=0)


def _shift_apply(
    src: np.ndarray, runs: list[tuple[int, int, int]], out: np.ndarray, dilate: bool
) -> None:
    """``out |= src`` shifted by every offset of the ball (``dilate``), else ``out &= src``
    shifted; a shift that leaves the array contributes nothing (the caller pads for
    erosion). ``runs``: the ball as :func:`_line_runs`.

    Separable along the last axis: ``src`` combined over ``-w..w`` along it (once per
    width, each width from the previous one), then one shifted OR / AND per run. Out of
    the array nothing is combined in either step, as with one shift per offset.
    """
    ni = src.shape[2]
    lines = {0: src}
    wmax = max(w for _, _, w in runs)
    line = src
    for w in range(1, wmax + 1):
        line = line.copy()
        if w < ni:
            if dilate:
                line[:, :, w:] |= src[:, :, :-w]
                line[:, :, :-w] |= src[:, :, w:]
            else:
                line[:, :, w:] &= src[:, :, :-w]
                line[:, :, :-w] &= src[:, :, w:]
        lines[w] = line
    nk, nj = src.shape[:2]
    for dk, dj, w in runs:
        if abs(dk) >= nk or abs(dj) >= nj:
            continue  # shifted out of the array entirely
        (dk0, sk0), (dj0, sj0) = _shifted(nk, dk), _shifted(nj, dj)
        if dilate:
            out[dk0, dj0] |= lines[w][sk0, sj0]
        else:
            out[dk0, dj0] &= lines[w][sk0, sj0]


def _paint_is_cheaper(src: np.ndarray, n_offsets: int) -> bool:
    return _count_surface(src) * n_offsets < _PAINT_PER_EDT_VOXEL * src.size


@numba.njit(cache=True, nogil=True)
def _paint_balls(src: np.ndarray, offs: np.ndarray, out: np.ndarray, value: bool) -> None:
    """Set ``out`` to ``value`` in the ball (``offs``) around every surface voxel of ``src``
    (a true voxel with a false 6-neighbour inside the array)."""
    nk, nj, ni = src.shape
    n = offs.shape[0]
    for k in range(nk):
        for j in range(nj):
            for i in range(ni):
                if not src[k, j, i] or not _is_surface(src, k, j, i):
                    continue
                for q in range(n):
                    kk = k + offs[q, 0]
                    jj = j + offs[q, 1]
                    ii = i + offs[q, 2]
                    if 0 <= kk < nk and 0 <= jj < nj and 0 <= ii < ni:
                        out[kk, jj, ii] = value


@numba.njit(cache=True, nogil=True, inline="always")
def _row_extent(row: np.ndarray, words: np.ndarray, use_words: bool) -> tuple[int, int]:
    """First and last true voxel of a row, ``(-1, -1)`` when empty. With ``use_words``
    (``words``: the row's memory as uint64) empty stretches are skipped 8 voxels at a
    time and only the first and last nonzero words are looked into."""
    if use_words:
        nw = words.size
        a = 0
        while a < nw and words[a] == 0:
            a += 1
        if a == nw:
            return -1, -1
        b = nw - 1
        while words[b] == 0:
            b -= 1
        first = a * 8
        while not row[first]:
            first += 1
        last = b * 8 + 7
        while not row[last]:
            last -= 1
        return first, last
    first = -1
    last = -1
    for i in range(row.size):
        if row[i]:
            if first < 0:
                first = i
            last = i
    return first, last


@numba.njit(cache=True, nogil=True)
def _bbox(
    mask: np.ndarray, words: np.ndarray, use_words: bool
) -> tuple[int, int, int, int, int, int]:
    """Inclusive-exclusive bounds of the true voxels; ``(0, 0, 0, 0, 0, 0)`` when empty.
    ``words``: ``mask`` as uint64 (rows a whole number of 8-byte words) when
    ``use_words``, about 8 x faster on mostly empty masks; anything otherwise."""
    nk, nj, ni = mask.shape
    k0, j0, i0 = nk, nj, ni
    k1 = j1 = i1 = -1
    for k in range(nk):
        for j in range(nj):
            first, last = _row_extent(
                mask[k, j], words[k, j] if use_words else words[0, 0], use_words
            )
            if first < 0:
                continue
            k0 = min(k0, k)
            k1 = k
            j0 = min(j0, j)
            j1 = max(j1, j)
            i0 = min(i0, first)
            i1 = max(i1, last)
    if k1 < 0:
        return 0, 0, 0, 0, 0, 0
    return k0, k1 + 1, j0, j1 + 1, i0, i1 + 1


def bbox(mask: np.ndarray, margin: int | Sequence[int] = 0) -> tuple[slice, slice, slice] | None:
    """Bounding box of the nonzero voxels of a 3-D mask, grown by ``margin`` voxels.

    Parameters
    ----------
    mask : ndarray, 3-D
        Foreground where nonzero (one-byte masks are scanned without a copy).
    margin : int or sequence of 3 int
        Voxels added on each side (per axis), clipped to the array.

    Returns
    -------
    tuple of 3 slice, or None when the mask is empty
    """
    arr = np.asarray(mask)
    if arr.ndim != 3:
        raise KernelInputError(
            f"expected a 3-D mask, got {arr.ndim} dimensions", hint="pass one 3-D volume"
        )
    src = np.ascontiguousarray(arr)
    item = src.dtype.itemsize
    if item == 1:
        src = src.view(np.uint8)
    elif src.dtype.kind in "iu" and src.shape[2] > 0:
        # an integer is non-zero where one of its bytes is: scan the bytes, then divide
        # the column bounds by the item size (no thresholded copy)
        found = bbox(src.view(np.uint8))
        if found is None:
            return None
        cols = slice(found[2].start // item, -(-found[2].stop // item))
        return _grown((found[0], found[1], cols), margin, arr.shape)
    else:
        src = np.not_equal(src, 0).view(np.uint8)
    use_words = src.shape[2] % 8 == 0 and src.shape[2] > 0
    words = src.view(np.uint64) if use_words else np.zeros((1, 1, 1), np.uint64)
    k0, k1, j0, j1, i0, i1 = _bbox(src, words, use_words)
    if k1 == 0:
        return None
    return _grown((slice(k0, k1), slice(j0, j1), slice(i0, i1)), margin, arr.shape)


def _grown(
    box: tuple[slice, slice, slice], margin: int | Sequence[int], shape: tuple[int, ...]
) -> tuple[slice, slice, slice]:
    m = (margin,) * 3 if isinstance(margin, int | np.integer) else tuple(margin)
    return tuple(  # type: ignore[return-value]
        slice(max(0, s.start - r), min(n, s.stop + r))
        for s, r, n in zip(box, map(int, m), shape, strict=True)
    )


def _bool3(mask: np.ndarray) -> np.ndarray:
    arr = np.asarray(mask)
    if arr.dtype != np.bool_ or arr.ndim != 3:
        raise KernelInputError(
            f"expected a 3-D bool mask, got dtype {arr.dtype} with {arr.ndim} dimensions",
            hint="threshold it first (mask > 0) and pass one 3-D volume",
        )
    return arr


def _check(mask: np.ndarray, spacing: Sequence[float]) -> tuple[np.ndarray, tuple[float, ...]]:
    arr = _bool3(mask)
    sp = tuple(float(s) for s in spacing)
    if len(sp) != 3 or min(sp) <= 0:
        raise KernelInputError(
            f"spacing {spacing!r}: expected three positive values in mm",
            hint="take it from Volume.spacing_mm",
        )
    return np.ascontiguousarray(arr), sp


def dilate_ball(mask: np.ndarray, radius_mm: float, spacing: Sequence[float]) -> np.ndarray:
    """Voxels whose centre is within ``radius_mm`` of the centre of a voxel of ``mask``.

    Equal to ``distance_transform_edt(~mask, sampling=spacing) <= radius_mm + 1e-9``
    (tested), at a cost proportional to the mask's surface times the ball's voxels.

    Parameters
    ----------
    mask : ndarray of bool, 3-D
    radius_mm : float
        Radius (mm); 0 or less returns a copy.
    spacing : sequence of 3 float
        Voxel spacing (mm), ``(slice, row, column)``.

    Returns
    -------
    ndarray of bool, the shape of ``mask``
    """
    arr, sp = _check(mask, spacing)
    out = arr.copy()
    if radius_mm <= 0:
        return out
    offs, runs = _ball(radius_mm, sp)
    box = bbox(arr, margin=tuple(int(v) for v in offs.max(axis=0)))
    if box is None:
        return out
    crop = np.ascontiguousarray(arr[box])
    if _passes(runs) <= _SHIFT_MAX_OFFSETS:
        grown = crop.copy()
        _shift_apply(crop, runs, grown, dilate=True)
        out[box] = grown
    elif _paint_is_cheaper(crop, len(offs)):
        painted = crop.copy()
        _paint_balls(crop, offs, painted, True)
        out[box] = painted
    else:  # a large ball around a large surface: the box's distance transform is cheaper
        d = ndi.distance_transform_edt(~crop, sampling=sp)
        out[box] = d <= radius_mm + RADIUS_TOLERANCE_MM
    return out


def erode_ball(mask: np.ndarray, radius_mm: float, spacing: Sequence[float]) -> np.ndarray:
    """Voxels of ``mask`` farther than ``radius_mm`` from every voxel outside it.

    The image outside counts as outside the mask. Equal to
    ``distance_transform_edt(pad(mask, 1), sampling=spacing)[1:-1, 1:-1, 1:-1] >
    radius_mm + 1e-9`` (tested).

    Parameters
    ----------
    mask : ndarray of bool, 3-D
    radius_mm : float
        Radius (mm); 0 or less returns a copy.
    spacing : sequence of 3 float
        Voxel spacing (mm), ``(slice, row, column)``.

    Returns
    -------
    ndarray of bool, the shape of ``mask``
    """
    arr, sp = _check(mask, spacing)
    if radius_mm <= 0:
        return arr.copy()
    out = np.zeros(arr.shape, dtype=bool)
    box = bbox(arr)
    if box is None:
        return out
    padded = np.pad(arr[box], 1, constant_values=False)
    offs, runs = _ball(radius_mm, sp)
    if _passes(runs) <= _SHIFT_MAX_OFFSETS:
        # a shift beyond the one-voxel pad erodes nothing more: the pad voxel on the way
        # lies in the ball too (it is the offset with the other components set to 0)
        kept = padded.copy()
        _shift_apply(padded, runs, kept, dilate=False)
        out[box] = kept[1:-1, 1:-1, 1:-1]
        return out
    background = ~padded
    if _paint_is_cheaper(background, len(offs)):
        kept = padded.copy()
        _paint_balls(background, offs, kept, False)
        out[box] = kept[1:-1, 1:-1, 1:-1]
    else:
        d = ndi.distance_transform_edt(padded, sampling=sp)[1:-1, 1:-1, 1:-1]
        out[box] = d > radius_mm + RADIUS_TOLERANCE_MM
    return out


def _with_neighbours(out: np.ndarray, src: np.ndarray, axis: int, op: np.ufunc) -> None:
    """``out = op(out, src shifted by -1 and by +1 along axis)`` in place; nothing is
    combined beyond the array's edge."""
    o = np.moveaxis(out, axis, 0)
    m = np.moveaxis(src, axis, 0)
    op(o[1:], m[:-1], out=o[1:])
    op(o[:-1], m[1:], out=o[:-1])


def erode_neighbours(
    mask: np.ndarray, connectivity: int = 6, *, border_value: bool = False
) -> np.ndarray:
    """Voxels of ``mask`` whose ``connectivity`` neighbours (6: faces; 26: the 3 x 3 x 3
    cube) are all in it; beyond the array's edge the mask is ``border_value``.

    ``scipy.ndimage.binary_erosion(mask, generate_binary_structure(3, 1 or 3),
    border_value=border_value)`` (tested), as vectorised ANDs of shifted views: the cube
    is separable into three 3-voxel lines.

    Parameters
    ----------
    mask : ndarray of bool, 3-D
    connectivity : {6, 26}
    border_value : bool
        What lies beyond the array's edge.

    Returns
    -------
    ndarray of bool, the shape of ``mask``
    """
    arr = _bool3(mask)
    if connectivity not in (6, 26):
        raise KernelInputError(f"connectivity {connectivity}: expected 6 or 26")
    out = arr.copy()
    for axis in range(3):
        # 26: each pass erodes the previous one (a 3-voxel line per axis); 6: every pass
        # looks at the mask itself
        _with_neighbours(out, out.copy() if connectivity == 26 else arr, axis, np.bitwise_and)
    if not border_value:
        for axis in range(3):
            o = np.moveaxis(out, axis, 0)
            o[0] = False
            o[-1] = False
    return out


def count_neighbours(mask: np.ndarray) -> np.ndarray:
    """How many voxels of the 3 x 3 x 3 cube around each voxel (itself included) are in
    ``mask``, 0 beyond the array's edge: 27 x ``scipy.ndimage.uniform_filter(mask, 3,
    mode="constant")`` as exact integers (tested), by three separable sums.

    Parameters
    ----------
    mask : ndarray of bool, 3-D

    Returns
    -------
    ndarray of uint8, the shape of ``mask``
    """
    arr = _bool3(mask)
    total = arr.astype(np.uint8)
    for axis in range(3):
        _with_neighbours(total, total.copy(), axis, np.add)
    return total


def neighbour_offsets(connectivity: int) -> np.ndarray:
    """All offsets of a 3-D neighbourhood: 6 (faces), 18 (and edges) or 26 (and corners).

    Returns
    -------
    ndarray of int64, shape (connectivity, 3)
    """
    order = {6: 1, 18: 2, 26: 3}.get(int(connectivity))
    if order is None:
        raise KernelInputError(
            f"connectivity {connectivity!r}: expected 6, 18 or 26",
            hint="pass 26 (full) or 6 (faces only)",
        )
    g = np.stack(np.meshgrid(*([np.arange(-1, 2)] * 3), indexing="ij"), axis=-1).reshape(-1, 3)
    n = np.abs(g).sum(axis=1)
    return np.ascontiguousarray(g[(n > 0) & (n <= order)]).astype(np.int64)


def _row_neighbours(connectivity: int) -> np.ndarray:
    """Rows next to a row, per connectivity: ``(d_slice, d_row, reach)``, where a run
    ``[a, b]`` touches the voxels ``[a - reach, b + reach]`` of that row."""
    offs = neighbour_offsets(connectivity)
    rows: dict[tuple[int, int], int] = {}
    for dk, dj, di in offs.tolist():
        if (dk, dj) != (0, 0):
            rows[(dk, dj)] = max(rows.get((dk, dj), 0), abs(di))
    return np.array([(dk, dj, r) for (dk, dj), r in sorted(rows.items())], dtype=np.int64)


@numba.njit(cache=True, nogil=True)
def _flood(mask: np.ndarray, seed: np.ndarray, rows: np.ndarray, out: np.ndarray) -> None:
    """Set ``out`` on every voxel of ``mask`` reachable from ``seed & mask``: a scanline
    fill (each popped voxel is widened to its whole run along the last axis, then the
    neighbouring rows' runs touching it are pushed), an explicit stack that doubles."""
    nk, nj, ni = mask.shape
    stack = np.empty((1024, 3), dtype=np.int64)
    n_rows = rows.shape[0]
    for k0 in range(nk):
        for j0 in range(nj):
            for i0 in range(ni):
                if not (seed[k0, j0, i0] and mask[k0, j0, i0]) or out[k0, j0, i0]:
                    continue
                stack[0, 0] = k0
                stack[0, 1] = j0
                stack[0, 2] = i0
                top = 1
                while top > 0:
                    top -= 1
                    k = stack[top, 0]
                    j = stack[top, 1]
                    i = stack[top, 2]
                    if out[k, j, i]:
                        continue
                    a = i
                    while a > 0 and mask[k, j, a - 1] and not out[k, j, a - 1]:
                        a -= 1
                    b = i
                    while b + 1 < ni and mask[k, j, b + 1] and not out[k, j, b + 1]:
                        b += 1
                    for x in range(a, b + 1):
                        out[k, j, x] = True
                    for q in range(n_rows):
                        kk = k + rows[q, 0]
                        jj = j + rows[q, 1]
                        if not (0 <= kk < nk and 0 <= jj < nj):
                            continue
                        x = max(0, a - rows[q, 2])
                        hi = min(ni - 1, b + rows[q, 2])
                        while x <= hi:
                            if mask[kk, jj, x] and not out[kk, jj, x]:
                                if top == stack.shape[0]:
                                    bigger = np.empty((2 * top, 3), dtype=np.int64)
                                    bigger[:top] = stack
                                    stack = bigger
                                stack[top, 0] = kk
                                stack[top, 1] = jj
                                stack[top, 2] = x
                                top += 1
                                while x <= hi and mask[kk, jj, x]:
                                    x += 1
                            else:
                                x += 1


def connected_to(mask: np.ndarray, seed: np.ndarray, *, connectivity: int = 26) -> np.ndarray:
    """The voxels of ``mask`` connected (within ``mask``) to a voxel of ``seed & mask``.

    Equal to keeping the components of ``scipy.ndimage.label(mask, structure)`` that hold a
    seed voxel (tested), at a cost proportional to the voxels reached plus one scan for
    the seeds, not to the whole array's components (a scanline flood fill: Heckbert,
    "A seed fill algorithm", Graphics Gems, 1990).

    Parameters
    ----------
    mask, seed : ndarray of bool, 3-D, same shape
    connectivity : {6, 18, 26}

    Returns
    -------
    ndarray of bool, the shape of ``mask``
    """
    m = np.ascontiguousarray(mask, dtype=bool)
    s = np.ascontiguousarray(seed, dtype=bool)
    if m.ndim != 3 or m.shape != s.shape:
        raise KernelInputError(
            f"mask {m.shape} and seed {s.shape}: expected two 3-D arrays of the same shape",
            hint="crop both with the same box",
        )
    out = np.zeros(m.shape, dtype=bool)
    _flood(m, s, _row_neighbours(connectivity), out)
    return out

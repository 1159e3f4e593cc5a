"""RECIST axes in the axial plane: convex hull of the pixel squares + rotating calipers.

For one label in one slice, the hull of its pixel squares is spanned by the outer corners of
the left-most and right-most pixel of every row, so it is built from two points per corner
line (no sort needed) by Andrew's monotone chain (A. M. Andrew, "Another efficient algorithm
for convex hulls in two dimensions", Inf. Proc. Letters 9 (1979) 216-219) in integer corner
coordinates: corner ``(i, j)`` is the point ``(row i - 1/2, column j - 1/2)`` in continuous
index coordinates. Integer cross products make the hull exact; scaling the axes by the pixel
spacing keeps it convex, so the hull is built once and measured in mm.

* Long axis: the diameter of the hull, from its antipodal vertex pairs by rotating calipers
  (M. I. Shamos, "Computational geometry", PhD thesis, Yale, 1978; G. T. Toussaint,
  "Solving geometric problems with the rotating calipers", Proc. IEEE MELECON 1983), O(h).
  It equals the largest distance between any two pixel corners of the slice.
* Short axis: the longest chord of the hull perpendicular (in mm) to the long axis. The chord
  length along a direction is a concave piecewise-linear function of the offset, with its
  breakpoints at the vertices, so its maximum lies on a line through a vertex: every vertex
  is tried against every edge (O(h^2), once per label, h is small).
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from netvolume.kernels._runs import value_row_runs

__all__ = ["axes_per_label", "row_extremes", "row_extremes_runs"]


@njit(cache=True, nogil=True, parallel=True)
def row_extremes(labels, words, per_word, ones, n, bbox, offsets, xlo, xhi, bounds):  # type: ignore[no-untyped-def]
    """For every label, slice and row of its bounding box: the first column and one past
    the last column of the label in that row (xlo > xhi when absent)."""
    _nz, ny, nx = labels.shape
    nchunk = len(bounds) - 1
    for c in prange(nchunk):
        starts = np.empty(nx + 1, np.int64)
        stops = np.empty(nx + 1, np.int64)
        vals = np.empty(nx + 1, np.int64)
        for r in range(bounds[c], bounds[c + 1]):
            z = r // ny
            y = r - z * ny
            m = value_row_runs(labels, words, per_word, ones, z, y, starts, stops, vals)
            for i in range(m):
                lab = vals[i]
                if lab < 1 or lab > n:
                    continue
                j = lab - 1
                by = bbox[j, 4] - bbox[j, 1]
                idx = offsets[j] + (z - bbox[j, 0]) * by + (y - bbox[j, 1])
                if starts[i] < xlo[idx]:
                    xlo[idx] = starts[i]
                if stops[i] > xhi[idx]:
                    xhi[idx] = stops[i]


@njit(cache=True, nogil=True, parallel=True)
def row_extremes_runs(row_ptr, rs, re, parent, ny, bbox, offsets, xlo, xhi, bounds):  # type: ignore[no-untyped-def]
    """:func:`row_extremes` from labelled runs (label = -parent) instead of a label map."""
    nchunk = len(bounds) - 1
    for c in prange(nchunk):
        for r in range(bounds[c], bounds[c + 1]):
            a0 = row_ptr[r]
            a1 = row_ptr[r + 1]
            if a0 == a1:
                continue
            z = r // ny
            y = r - z * ny
            for i in range(a0, a1):
                j = -parent[i] - 1
                by = bbox[j, 4] - bbox[j, 1]
                idx = offsets[j] + (z - bbox[j, 0]) * by + (y - bbox[j, 1])
                if rs[i] < xlo[idx]:
                    xlo[idx] = rs[i]
                if re[i] > xhi[idx]:
                    xhi[idx] = re[i]


@njit(cache=True, nogil=True)
def _hull(xlo, xhi, base, nrow, y0, hi_, hj_):  # type: ignore[no-untyped-def]
    """Convex hull (counter-clockwise in (i, j), collinear points dropped) of the pixel
    squares of one slice; rows ``base .. base + nrow`` of the extremes, first row ``y0``.
    Writes vertex corner coordinates into hi_, hj_; returns the vertex count."""
    # points sorted by (i, j): for every corner line i, its left-most then right-most corner
    npts = 0
    pi = np.empty(2 * (nrow + 1), np.int64)
    pj = np.empty(2 * (nrow + 1), np.int64)
    for k in range(nrow + 1):
        lo = np.iinfo(np.int64).max
        hi = -1
        if k < nrow and xlo[base + k] < xhi[base + k]:
            lo = xlo[base + k]
            hi = xhi[base + k]
        if k > 0 and xlo[base + k - 1] < xhi[base + k - 1]:
            lo = min(lo, xlo[base + k - 1])
            hi = max(hi, xhi[base + k - 1])
        if hi < 0:
            continue
        pi[npts] = y0 + k
        pj[npts] = lo
        npts += 1
        pi[npts] = y0 + k
        pj[npts] = hi
        npts += 1
    if npts == 0:
        return 0
    # Andrew's monotone chain
    m = 0
    for t in range(npts):  # lower hull
        while (
            m >= 2
            and (
                (hi_[m - 1] - hi_[m - 2]) * (pj[t] - hj_[m - 2])
                - (hj_[m - 1] - hj_[m - 2]) * (pi[t] - hi_[m - 2])
            )
            <= 0
        ):
            m -= 1
        hi_[m] = pi[t]
        hj_[m] = pj[t]
        m += 1
    lower = m + 1
    for t in range(npts - 2, -1, -1):  # upper hull
        while (
            m >= lower
            and (
                (hi_[m - 1] - hi_[m - 2]) * (pj[t] - hj_[m - 2])
                - (hj_[m - 1] - hj_[m - 2]) * (pi[t] - hi_[m - 2])
            )
            <= 0
        ):
            m -= 1
        hi_[m] = pi[t]
        hj_[m] = pj[t]
        m += 1
    return m - 1  # the last point repeats the first


@njit(cache=True, nogil=True)
def _diameter(hi_, hj_, h, sy, sx):  # type: ignore[no-untyped-def]
    """Rotating calipers over a convex polygon; returns (d_mm, a, b) vertex indices."""
    best = -1.0
    ba = 0
    bb = 0
    if h == 1:
        return 0.0, 0, 0
    j = 1
    for i in range(h):
        ni = (i + 1) % h
        ei = hi_[ni] - hi_[i]
        ej = hj_[ni] - hj_[i]
        # advance j while the triangle (i, ni, j+1) is larger than (i, ni, j) (exact ints)
        while True:
            nj = (j + 1) % h
            a_next = ei * (hj_[nj] - hj_[i]) - ej * (hi_[nj] - hi_[i])
            a_cur = ei * (hj_[j] - hj_[i]) - ej * (hi_[j] - hi_[i])
            if abs(a_next) > abs(a_cur):
                j = nj
            else:
                break
        for p in (i, ni):
            for q in (j, (j + 1) % h):
                dy = (hi_[q] - hi_[p]) * sy
                dx = (hj_[q] - hj_[p]) * sx
                d = np.sqrt(dy * dy + dx * dx)
                if d > best:
                    best = d
                    ba = p
                    bb = q
    return best, ba, bb


@njit(cache=True, nogil=True)
def _short_axis(hi_, hj_, h, sy, sx, ay, ax, by, bx):  # type: ignore[no-untyped-def]
    """Longest chord of the hull perpendicular to (a -> b). Points are integer corner
    coordinates scaled by the spacing (mm, origin at corner (0, 0)); returns
    (length, p0y, p0x, p1y, p1x) in that frame."""
    uy = by - ay
    ux = bx - ax
    norm = np.sqrt(uy * uy + ux * ux)
    uy /= norm
    ux /= norm
    vy = -ux
    vx = uy
    best = -1.0
    r0y = r0x = r1y = r1x = 0.0
    for k in range(h):
        py = hi_[k] * sy
        px = hj_[k] * sx
        t = py * uy + px * ux
        smin = np.inf
        smax = -np.inf
        for e in range(h):
            f = (e + 1) % h
            qy = hi_[e] * sy
            qx = hj_[e] * sx
            ry = hi_[f] * sy
            rx = hj_[f] * sx
            ta = qy * uy + qx * ux - t
            tb = ry * uy + rx * ux - t
            if ta == 0.0:
                s = qy * vy + qx * vx
                smin = min(smin, s)
                smax = max(smax, s)
            if (ta < 0.0 < tb) or (tb < 0.0 < ta):
                w = ta / (ta - tb)
                s = (qy + w * (ry - qy)) * vy + (qx + w * (rx - qx)) * vx
                smin = min(smin, s)
                smax = max(smax, s)
        if smax - smin > best:
            best = smax - smin
            r0y = t * uy + smin * vy
            r0x = t * ux + smin * vx
            r1y = t * uy + smax * vy
            r1x = t * ux + smax * vx
    return best, r0y, r0x, r1y, r1x


@njit(cache=True, nogil=True)
def _slice_hull(xlo, xhi, offsets, bbox, j, z, hi_, hj_):  # type: ignore[no-untyped-def]
    by = bbox[j, 4] - bbox[j, 1]
    base = offsets[j] + (z - bbox[j, 0]) * by
    return _hull(xlo, xhi, base, by, bbox[j, 1], hi_, hj_)


@njit(cache=True, nogil=True, parallel=True)
def axes_per_label(xlo, xhi, offsets, bbox, counts, sy, sx, tol):  # type: ignore[no-untyped-def]
    """Long and short axis per label. Returns ld, sa, slice, ld_ends (n,2,3), sa_ends."""
    n = len(counts)
    ld = np.full(n, np.nan)
    sa = np.full(n, np.nan)
    sl = np.full(n, -1, np.int64)
    lde = np.full((n, 2, 3), np.nan)
    sae = np.full((n, 2, 3), np.nan)
    for j in prange(n):
        if counts[j] == 0:
            continue
        by = bbox[j, 4] - bbox[j, 1]
        cap = 2 * (by + 1) + 2
        hi_ = np.empty(cap, np.int64)
        hj_ = np.empty(cap, np.int64)
        best = -1.0
        best_z = -1
        best_sa = -1.0  # computed lazily on ties
        bsa = np.zeros(4)
        bend = np.zeros(4)
        for z in range(bbox[j, 0], bbox[j, 3]):
            h = _slice_hull(xlo, xhi, offsets, bbox, j, z, hi_, hj_)
            if h == 0:
                continue
            d, a, b = _diameter(hi_, hj_, h, sy, sx)
            take = False
            cand_sa = -1.0
            csa = np.zeros(4)
            if d > best + tol:
                take = True
            elif d >= best - tol:
                if best_sa < 0.0:
                    hb = _slice_hull(xlo, xhi, offsets, bbox, j, best_z, hi_, hj_)
                    _db, ab, bb_ = _diameter(hi_, hj_, hb, sy, sx)
                    best_sa, q0, q1, q2, q3 = _short_axis(
                        hi_,
                        hj_,
                        hb,
                        sy,
                        sx,
                        hi_[ab] * sy,
                        hj_[ab] * sx,
                        hi_[bb_] * sy,
                        hj_[bb_] * sx,
                    )
                    bsa[0] = q0
                    bsa[1] = q1
                    bsa[2] = q2
                    bsa[3] = q3
                    h = _slice_hull(xlo, xhi, offsets, bbox, j, z, hi_, hj_)
                cand_sa, c0, c1, c2, c3 = _short_axis(
                    hi_, hj_, h, sy, sx, hi_[a] * sy, hj_[a] * sx, hi_[b] * sy, hj_[b] * sx
                )
                csa[0] = c0
                csa[1] = c1
                csa[2] = c2
                csa[3] = c3
                if cand_sa > best_sa + tol:
                    take = True
            if take:
                best = d
                best_z = z
                bend[0] = hi_[a]
                bend[1] = hj_[a]
                bend[2] = hi_[b]
                bend[3] = hj_[b]
                best_sa = cand_sa
                for q in range(4):
                    bsa[q] = csa[q]
        if best_sa < 0.0:
            h = _slice_hull(xlo, xhi, offsets, bbox, j, best_z, hi_, hj_)
            best_sa, q0, q1, q2, q3 = _short_axis(
                hi_,
                hj_,
                h,
                sy,
                sx,
                bend[0] * sy,
                bend[1] * sx,
                bend[2] * sy,
                bend[3] * sx,
            )
            bsa[0] = q0
            bsa[1] = q1
            bsa[2] = q2
            bsa[3] = q3
        ld[j] = best
        sa[j] = best_sa
        sl[j] = best_z
        # corner (i, j) is the index point (i - 1/2, j - 1/2)
        lde[j, 0, 0] = best_z
        lde[j, 0, 1] = bend[0] - 0.5
        lde[j, 0, 2] = bend[1] - 0.5
        lde[j, 1, 0] = best_z
        lde[j, 1, 1] = bend[2] - 0.5
        lde[j, 1, 2] = bend[3] - 0.5
        sae[j, 0, 0] = best_z
        sae[j, 0, 1] = bsa[0] / sy - 0.5
        sae[j, 0, 2] = bsa[1] / sx - 0.5
        sae[j, 1, 0] = best_z
        sae[j, 1, 1] = bsa[2] / sy - 0.5
        sae[j, 1, 2] = bsa[3] / sx - 0.5
    return ld, sa, sl, lde, sae

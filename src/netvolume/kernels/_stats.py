"""One pass over a label map: count, bounding box, centroid and value statistics (numba).

The rows are split into contiguous chunks, one accumulator set per chunk, walked in
parallel; the chunks are merged in order, so the result does not depend on the number of
threads (ties of the maximum go to the first voxel in raster order).

Variance: each chunk keeps sums of ``v - K`` and ``(v - K)**2`` with ``K`` the first value it
met in that label (the shifted-data algorithm), and chunks are merged with the pairwise
update of Chan, Golub & LeVeque, "Algorithms for computing the sample variance",
The American Statistician 37 (1983) 242-247; this stays accurate when the values carry a
large offset (Bq/mL, HU + 1024).
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from netvolume.kernels._runs import value_row_runs

__all__ = ["merge_chunks", "stats_pass", "stats_runs"]

# per-chunk integer accumulators: count, zmin, ymin, xmin, zmax, ymax, xmax, argmax (flat),
# nan count
_I_COUNT, _I_ZMIN, _I_YMIN, _I_XMIN, _I_ZMAX, _I_YMAX, _I_XMAX, _I_ARGMAX, _I_NAN = range(9)
# per-chunk float accumulators: sum z, sum y, sum x, min, max, shift K, sum(v-K), sum((v-K)^2)
_F_SZ, _F_SY, _F_SX, _F_MIN, _F_MAX, _F_K, _F_S1, _F_S2 = range(8)


@njit(cache=True, nogil=True, fastmath={"reassoc", "contract", "nsz"}, inline="always")
def _run_sums(values, z, y, s, e, kk):  # type: ignore[no-untyped-def]
    """Shifted sums, min and max of one run (reassociated, so the loops vectorise)."""
    row = values[z, y]
    s1 = 0.0
    s2 = 0.0
    for x in range(s, e):
        d = np.float64(row[x]) - kk
        s1 += d
        s2 += d * d
    rmin = np.inf
    rmax = -np.inf
    for x in range(s, e):
        v = np.float64(row[x])
        rmin = min(rmin, v)
        rmax = max(rmax, v)
    return s1, s2, rmin, rmax


@njit(cache=True, nogil=True)
def _count_nan(values, z, y, s, e):  # type: ignore[no-untyped-def]
    c = 0
    for x in range(s, e):
        v = np.float64(values[z, y, x])
        if v != v:
            c += 1
    return c


@njit(cache=True, nogil=True, inline="always")
def _accumulate(row, frow, z, y, s, e, values, with_values, ny, nx):  # type: ignore[no-untyped-def]
    """Add the run ``[s, e)`` of row (z, y) to one label's accumulators."""
    ln = e - s
    row[_I_COUNT] += ln
    if z < row[_I_ZMIN]:
        row[_I_ZMIN] = z
    if y < row[_I_YMIN]:
        row[_I_YMIN] = y
    if s < row[_I_XMIN]:
        row[_I_XMIN] = s
    if z > row[_I_ZMAX]:
        row[_I_ZMAX] = z
    if y > row[_I_YMAX]:
        row[_I_YMAX] = y
    if e - 1 > row[_I_XMAX]:
        row[_I_XMAX] = e - 1
    frow[_F_SZ] += z * ln
    frow[_F_SY] += y * ln
    frow[_F_SX] += 0.5 * (s + e - 1) * ln
    if not with_values:
        return
    if row[_I_ARGMAX] < 0:
        v0 = np.float64(values[z, y, s])
        frow[_F_MIN] = v0
        frow[_F_MAX] = v0
        frow[_F_K] = v0
        row[_I_ARGMAX] = (z * ny + y) * nx + s
    s1, s2, rmin, rmax = _run_sums(values, z, y, s, e, frow[_F_K])
    if s1 != s1 or s2 != s2:  # a NaN in the run
        row[_I_NAN] += _count_nan(values, z, y, s, e)
        return
    frow[_F_S1] += s1
    frow[_F_S2] += s2
    if rmin < frow[_F_MIN]:
        frow[_F_MIN] = rmin
    if rmax > frow[_F_MAX]:
        frow[_F_MAX] = rmax
        for x in range(s, e):  # the first voxel of the run with the max
            if np.float64(values[z, y, x]) == rmax:
                row[_I_ARGMAX] = (z * ny + y) * nx + x
                break


@njit(cache=True, nogil=True)
def _init_chunk(ia):  # type: ignore[no-untyped-def]
    big = np.iinfo(np.int64).max
    for k in range(ia.shape[0]):
        ia[k, _I_ZMIN] = big
        ia[k, _I_YMIN] = big
        ia[k, _I_XMIN] = big
        ia[k, _I_ZMAX] = -1
        ia[k, _I_YMAX] = -1
        ia[k, _I_XMAX] = -1
        ia[k, _I_ARGMAX] = -1


@njit(cache=True, nogil=True, parallel=True)
def stats_pass(labels, words, per_word, ones, n, values, with_values, bounds):  # type: ignore[no-untyped-def]
    """Accumulate per-chunk statistics over a label map; returns (iacc, facc, bad) with
    bad = the first label value outside 1..n met (0 when none, -1 for negatives)."""
    _nz, ny, nx = labels.shape
    nchunk = len(bounds) - 1
    iacc = np.zeros((nchunk, n + 1, 9), np.int64)
    facc = np.zeros((nchunk, n + 1, 8), np.float64)
    bad = np.zeros(nchunk, np.int64)
    for c in prange(nchunk):
        ia = iacc[c]
        fa = facc[c]
        _init_chunk(ia)
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
                    if bad[c] == 0:
                        bad[c] = lab if lab > 0 else -1
                    continue
                _accumulate(
                    ia[lab], fa[lab], z, y, starts[i], stops[i], values, with_values, ny, nx
                )
    return iacc, facc, bad


@njit(cache=True, nogil=True, parallel=True)
def stats_runs(row_ptr, rs, re, parent, n, ny, nx, values, with_values, bounds):  # type: ignore[no-untyped-def]
    """The same accumulators from labelled runs (label = -parent), without a label map."""
    nchunk = len(bounds) - 1
    iacc = np.zeros((nchunk, n + 1, 9), np.int64)
    facc = np.zeros((nchunk, n + 1, 8), np.float64)
    for c in prange(nchunk):
        ia = iacc[c]
        fa = facc[c]
        _init_chunk(ia)
        for r in range(bounds[c], bounds[c + 1]):
            a0 = row_ptr[r]
            a1 = row_ptr[r + 1]
            if a0 == a1:
                continue
            z = r // ny
            y = r - z * ny
            for i in range(a0, a1):
                lab = -parent[i]
                _accumulate(ia[lab], fa[lab], z, y, rs[i], re[i], values, with_values, ny, nx)
    return iacc, facc


@njit(cache=True, nogil=True)
def merge_chunks(iacc, facc, with_values):  # type: ignore[no-untyped-def]
    """Merge per-chunk accumulators in chunk order.

    Returns (count, bbox[n,6], sums[n,3], vmin, vmax, mean, m2, argmax_flat, nan_count),
    arrays of length n (label k at k - 1).
    """
    nchunk = iacc.shape[0]
    n = iacc.shape[1] - 1
    count = np.zeros(n, np.int64)
    bbox = np.zeros((n, 6), np.int64)
    sums = np.zeros((n, 3), np.float64)
    vmin = np.full(n, np.nan)
    vmax = np.full(n, np.nan)
    mean = np.full(n, np.nan)
    m2 = np.full(n, np.nan)
    amax = np.full(n, -1, np.int64)
    nanc = np.zeros(n, np.int64)
    for k in range(1, n + 1):
        cnt = 0
        lo0 = lo1 = lo2 = np.iinfo(np.int64).max
        hi0 = hi1 = hi2 = -1
        sz = sy = sx = 0.0
        nv = 0  # values counted so far (count minus NaN)
        mu = 0.0
        q = 0.0
        mn = np.inf
        mx = -np.inf
        am = -1
        nn = 0
        for c in range(nchunk):
            row = iacc[c, k]
            if row[_I_COUNT] == 0:
                continue
            fr = facc[c, k]
            cnt += row[_I_COUNT]
            lo0 = min(lo0, row[_I_ZMIN])
            lo1 = min(lo1, row[_I_YMIN])
            lo2 = min(lo2, row[_I_XMIN])
            hi0 = max(hi0, row[_I_ZMAX])
            hi1 = max(hi1, row[_I_YMAX])
            hi2 = max(hi2, row[_I_XMAX])
            sz += fr[_F_SZ]
            sy += fr[_F_SY]
            sx += fr[_F_SX]
            if with_values:
                nn += row[_I_NAN]
                nb = row[_I_COUNT] - row[_I_NAN]
                if nb > 0:
                    mb = fr[_F_K] + fr[_F_S1] / nb
                    qb = fr[_F_S2] - fr[_F_S1] * fr[_F_S1] / nb
                    if qb < 0.0:
                        qb = 0.0
                    if nv == 0:
                        mu = mb
                        q = qb
                    else:
                        tot = nv + nb
                        delta = mb - mu
                        mu = mu + delta * nb / tot
                        q = q + qb + delta * delta * nv * nb / tot
                    nv += nb
                    if fr[_F_MIN] < mn:
                        mn = fr[_F_MIN]
                    if fr[_F_MAX] > mx:
                        mx = fr[_F_MAX]
                        am = row[_I_ARGMAX]
        j = k - 1
        count[j] = cnt
        if cnt == 0:
            continue
        bbox[j, 0] = lo0
        bbox[j, 1] = lo1
        bbox[j, 2] = lo2
        bbox[j, 3] = hi0 + 1
        bbox[j, 4] = hi1 + 1
        bbox[j, 5] = hi2 + 1
        sums[j, 0] = sz
        sums[j, 1] = sy
        sums[j, 2] = sx
        if with_values:
            nanc[j] = nn
            if nv > 0:
                vmin[j] = mn
                vmax[j] = mx
                mean[j] = mu
                m2[j] = q
                amax[j] = am
    return count, bbox, sums, vmin, vmax, mean, m2, amax, nanc

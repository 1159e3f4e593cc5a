"""SUVpeak: the highest mean over a sphere centred on a voxel of each label (numba).

The sphere is the set of voxel centres within radius ``r`` of the centre (in mm, anisotropic
spacing honoured), described by one run ``[x - w, x + w]`` per (slice offset, row offset)
pair. Sums over a run come from row-wise prefix sums of the values, kept for the
``2 * dz_max + 1`` slices around the current one in a ring buffer restricted to the label's
bounding box grown by the sphere, so a label costs O(voxels x sphere rows) time and
O(sphere slices x box area) memory (Wahl et al., "From RECIST to PERCIST", J Nucl Med 50
(2009) 122S-150S: SUVpeak as the mean of a ~1 mL sphere at the hottest location).
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

__all__ = ["peak_per_label", "sphere_pattern"]


def sphere_pattern(radius_mm: float, spacing: tuple[float, float, float]) -> np.ndarray:
    """Rows of the digital sphere: (d_slice, d_row, half_width) with every voxel centre
    ``(dz, dy, dx)`` of the run satisfying ``|(dz, dy, dx) * spacing| <= radius_mm``."""
    sz, sy, sx = spacing
    r2 = radius_mm * radius_mm * (1.0 + 1e-12) + 1e-9
    rows = []
    kz = int(np.floor(radius_mm / sz + 1e-9))
    ky = int(np.floor(radius_mm / sy + 1e-9))
    for dz in range(-kz, kz + 1):
        for dy in range(-ky, ky + 1):
            rest = r2 - (dz * sz) ** 2 - (dy * sy) ** 2
            if rest < 0:
                continue
            w = int(np.floor(np.sqrt(rest) / sx))
            while ((w + 1) * sx) ** 2 <= rest:
                w += 1
            while w > 0 and (w * sx) ** 2 > rest:
                w -= 1
            rows.append((dz, dy, w))
    return np.array(rows, np.int64).reshape(-1, 3)


@njit(cache=True, nogil=True, parallel=True)
def peak_per_label(values, labels, n, bbox, counts, pattern):  # type: ignore[no-untyped-def]
    """Returns (peak, centre[n, 3], voxels) per label (NaN / -1 / 0 when absent)."""
    nz, ny, nx = labels.shape
    peak = np.full(n, np.nan)
    centre = np.full((n, 3), -1, np.int64)
    nvox = np.zeros(n, np.int64)
    dzmax = 0
    dymax = 0
    wmax = 0
    for p in range(pattern.shape[0]):
        dzmax = max(dzmax, abs(pattern[p, 0]))
        dymax = max(dymax, abs(pattern[p, 1]))
        wmax = max(wmax, pattern[p, 2])
    nring = 2 * dzmax + 1
    for j in prange(n):
        if counts[j] == 0:
            continue
        lab = j + 1
        z0 = bbox[j, 0]
        z1 = bbox[j, 3]
        ey0 = max(bbox[j, 1] - dymax, 0)
        ey1 = min(bbox[j, 4] + dymax, ny)
        ex0 = max(bbox[j, 2] - wmax, 0)
        ex1 = min(bbox[j, 5] + wmax, nx)
        wy = ey1 - ey0
        wx = ex1 - ex0
        # ring[slot, y, x + 1] = sum of values[zz, ey0 + y, ex0 : ex0 + x + 1]
        ring = np.zeros((nring, wy, wx + 1))
        ring_z = np.full(nring, -1, np.int64)
        best = -np.inf
        bz = by = bx = -1
        bn = 0
        for z in range(z0, z1):
            for zz in range(max(z - dzmax, 0), min(z + dzmax + 1, nz)):
                slot = zz % nring
                if ring_z[slot] == zz:
                    continue
                ring_z[slot] = zz
                for y in range(wy):
                    acc = 0.0
                    ring[slot, y, 0] = 0.0
                    for x in range(wx):
                        acc += values[zz, ey0 + y, ex0 + x]
                        ring[slot, y, x + 1] = acc
            for y in range(bbox[j, 1], bbox[j, 4]):
                for x in range(bbox[j, 2], bbox[j, 5]):
                    if labels[z, y, x] != lab:
                        continue
                    s = 0.0
                    c = 0
                    for p in range(pattern.shape[0]):
                        zz = z + pattern[p, 0]
                        yy = y + pattern[p, 1]
                        if zz < 0 or zz >= nz or yy < 0 or yy >= ny:
                            continue
                        xa = max(x - pattern[p, 2], 0)
                        xb = min(x + pattern[p, 2], nx - 1)
                        row = yy - ey0
                        slot = zz % nring
                        s += ring[slot, row, xb + 1 - ex0] - ring[slot, row, xa - ex0]
                        c += xb - xa + 1
                    mean = s / c
                    if mean > best:
                        best = mean
                        bz = z
                        by = y
                        bx = x
                        bn = c
        peak[j] = best
        centre[j, 0] = bz
        centre[j, 1] = by
        centre[j, 2] = bx
        nvox[j] = bn
    return peak, centre, nvox

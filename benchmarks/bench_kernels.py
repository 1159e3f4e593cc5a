"""Benchmark netvolume.kernels (connected components and the lesion table) against cc3d,
SimpleITK, scipy and scikit-image, next to this machine's memory-bandwidth floor.

Builds, with a seeded generator, a bool lesion mask of ``--shape`` (default 300 x 512 x 512,
[slice, row, col], spacing 3.0 x 0.78 x 0.78 mm) and a float32 SUV volume, once per
``--lesions`` count (default 50 and 2000): irregular blobs (unions of 1-3 tilted ellipsoids,
in-plane radii 2-25 voxels skewed to small ones, 1-8 slices in z), half of them inside a
"liver" region and the rest in the body, 8 % placed against the previous one so that some
merge (the printed component count is below the lesion count); cases with <= 100 lesions
also hold one organ-size component (~1.5 M voxels) so that the cost of one big region shows.
SUV: background 0.5 +- 0.1, lesions 5-40.

Then, in one run, times one warm-up and ``--repeats`` runs of each task and reports medians:

label (26-connectivity, the mask in, a label array and the count out)
    netvolume  ``kernels.label(mask)``
    cc3d       ``cc3d.connected_components(mask, connectivity=26)``
    SimpleITK  ``ConnectedComponentImageFilter`` (FullyConnectedOn, default threads) on an
               image converted beforehand; a second line adds ``GetImageFromArray`` and
               ``GetArrayFromImage`` (what a numpy caller pays)
    scipy      ``scipy.ndimage.label(mask, structure=ones((3, 3, 3)))``
stats (given the labels)
    netvolume  ``kernels.region_stats(labels, n, spacing=..., values=suv)``: voxels, volume,
               bbox, centroid (index and mm), min / max / mean / std and argmax of the SUV
    cc3d       ``cc3d.statistics(labels, no_slice_conversion=True)``: voxels, bbox, centroid
    skimage    ``regionprops_table(labels, suv, properties=...)``, twice: with ('label',
               'area', 'bbox', 'centroid', 'intensity_max', 'intensity_mean', 'intensity_min',
               'intensity_std') alone, and with the intensity properties only (the geometry
               then comes from cc3d.statistics); the faster route is the library's best
axial_diameters
    netvolume  ``kernels.axial_diameters(labels, n, spacing=...)``: RECIST long and short axes
               per label. No library computes these (skimage's ``axis_major_length`` is the
               inertia ellipsoid's axis and ``feret_diameter_max`` is 3-D, neither is a per-slice
               caliper pair), so the library side computes no axes at all.
full lesion table (mask in, table out)
    netvolume  label + region_stats(values=suv) + axial_diameters, three calls; and
               ``kernels.lesion_table(mask, spacing=..., values=suv)``, the same in one
               call (checked to equal the three calls), which the target judges
    libraries  cc3d.connected_components + the best stats route above (cc3d.statistics +
               skimage regionprops_table); it computes less (no argmax, no axes)
suv_peak       ``kernels.suv_peak(suv, labels, n, spacing=...)`` (no library equivalent; report)

The floor is one read of the mask plus one write of an array of the label dtype of the same
shape, timed in the same run with numpy on 1 and 2 threads (the faster is kept).

Peak memory: for each task, after its warm-up, the process's peak RSS is reset (``5`` into
``/proc/self/clear_refs``, glibc's free memory returned with ``malloc_trim``) and the peak
extra is VmHWM after the call minus VmRSS before it.

Compile time: the first call of each kernel, on a small input with the benchmark's dtypes,
in a fresh interpreter with ``NUMBA_CACHE_DIR`` set to an empty folder (cold compile), then
again in another fresh interpreter with that cache populated (cache load).

Targets (printed as PASS/FAIL, per lesion count), 2 cores:
``label <= 0.5 x cc3d``; ``full lesion table <= 1.5 x label``; the peak extra memory of
``label`` <= its label array + 10 % of (mask + label array), i.e. mask + labels + 10 % in all.

Before timing, netvolume's labels are checked to equal scipy.ndimage.label's exactly; the
cc3d and SimpleITK component counts to match; region_stats against cc3d.statistics (voxels),
skimage (bbox, centroid, min, max, mean, std) and scipy.ndimage.maximum_position (argmax);
axial_diameters against a brute force over the convex hull of the pixel corners (long axis
in every slice, short axis in the reported slice) for the largest and 30 random labels.

Exit status: 0 when every target passes, 1 when a target fails, 2 when results disagree,
3 when a dependency (cc3d, netvolume.kernels) is missing.

Usage::

    python benchmarks/bench_kernels.py [--lesions 50 2000] [--repeats 5] [--shape 300 512 512]
                                       [--seed 0] [--quick] [--libraries-only] [--no-compile]
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import dataclasses
import gc
import importlib
import importlib.metadata
import json
import math
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import scipy
import SimpleITK as sitk
import skimage
from scipy import ndimage
from scipy.spatial import ConvexHull
from scipy.spatial.distance import pdist
from skimage.measure import regionprops_table

try:
    import cc3d
except ImportError:  # pragma: no cover - depends on the environment
    cc3d = None  # type: ignore[assignment]

LABEL_VS_CC3D_TARGET = 0.5
TABLE_VS_LABEL_TARGET = 1.5
MEMORY_SLACK = 0.10
SPACING = (3.0, 0.78, 0.78)
ORGAN_MAX_LESIONS = 100  # cases with at most this many lesions get the organ-size component
AXES_SAMPLE = 30
SIZE_SKEW = 3.0  # in-plane radius = 2 * 12.5 ** (u ** SIZE_SKEW), u uniform: mostly small
LIVER_FRACTION = 0.5
TOUCH_FRACTION = 0.08
STRUCT26 = np.ones((3, 3, 3), dtype=bool)
PROPS_FULL = (
    "label",
    "area",
    "bbox",
    "centroid",
    "intensity_max",
    "intensity_mean",
    "intensity_min",
    "intensity_std",
)
PROPS_INTENSITY = ("label", "intensity_max", "intensity_mean", "intensity_min", "intensity_std")
KERNEL_NAMES = (
    "label",
    "region_stats",
    "axial_diameters",
    "suv_peak",
    "lesion_table",
    "sphere_mean",
    "largest_component",
    "fill_holes",
    "dust",
)
MB = 1e6


# --------------------------------------------------------------------------- phantom


def _rotation(rng: np.random.Generator) -> np.ndarray:
    """A random in-plane rotation (about the slice axis) times a tilt of up to 0.35 rad."""
    a = rng.uniform(0.0, np.pi)
    t = rng.uniform(-0.35, 0.35)
    ca, sa, ct, st = np.cos(a), np.sin(a), np.cos(t), np.sin(t)
    inplane = np.array([[1.0, 0.0, 0.0], [0.0, ca, -sa], [0.0, sa, ca]])
    tilt = np.array([[ct, 0.0, -st], [0.0, 1.0, 0.0], [st, 0.0, ct]])
    return inplane @ tilt


def _draw_ellipsoid(
    mask: np.ndarray,
    suv: np.ndarray,
    centre: np.ndarray,
    radii: np.ndarray,
    rot: np.ndarray,
    lo_val: float,
    hi_val: float,
    rng: np.random.Generator,
) -> None:
    """OR one ellipsoid (index units) into ``mask`` and raise ``suv`` inside it to a profile
    falling from ``hi_val`` at the centre to ``lo_val`` at the border (+-3 % noise); only the
    ellipsoid's bounding box is touched."""
    quad = rot @ np.diag(1.0 / radii**2) @ rot.T
    half = np.sqrt(np.diag(rot @ np.diag(radii**2) @ rot.T))
    lo = np.maximum(np.floor(centre - half).astype(np.int64), 0)
    hi = np.minimum(np.ceil(centre + half).astype(np.int64) + 1, mask.shape)
    if np.any(hi <= lo):
        return
    z, y, x = np.ogrid[lo[0] : hi[0], lo[1] : hi[1], lo[2] : hi[2]]
    dz, dy, dx = z - centre[0], y - centre[1], x - centre[2]
    q = (
        quad[0, 0] * dz * dz
        + quad[1, 1] * dy * dy
        + quad[2, 2] * dx * dx
        + 2.0 * (quad[0, 1] * dz * dy + quad[0, 2] * dz * dx + quad[1, 2] * dy * dx)
    )
    inside = q <= 1.0
    box = (slice(lo[0], hi[0]), slice(lo[1], hi[1]), slice(lo[2], hi[2]))
    mask[box] |= inside
    val = (lo_val + (hi_val - lo_val) * (1.0 - q)) * (1.0 + 0.03 * rng.standard_normal(q.shape))
    sub = suv[box]
    np.maximum(sub, np.where(inside, val, 0.0).astype(np.float32), out=sub)


def _in_ellipsoid(rng: np.random.Generator, centre: np.ndarray, semi: np.ndarray) -> np.ndarray:
    """A uniform random point of an axis-aligned ellipsoid (rejection sampling)."""
    while True:
        u = rng.uniform(-1.0, 1.0, 3)
        if u @ u <= 1.0:
            return centre + u * semi


def make_phantom(
    shape: tuple[int, int, int], lesions: int, seed: int, organ: bool
) -> tuple[np.ndarray, np.ndarray]:
    """The benchmark's bool lesion mask and float32 SUV volume ([slice, row, col]).

    Geometry is laid out relative to ``shape`` (the default 300 x 512 x 512 is the reference):
    a "liver" region on the image's left holds LIVER_FRACTION of the lesion centres, the rest
    lie anywhere in an elliptic body cylinder; TOUCH_FRACTION of the lesions are placed
    against the previous one so that some touch. ``organ`` adds a ~1.5 M-voxel organ (union
    of 3 ellipsoids) on the right (its size scales with the volume of ``shape``)."""
    rng = np.random.default_rng(seed)
    S, R, C = shape
    dims = np.array(shape, dtype=np.float64)
    scale = np.array([S / 300.0, R / 512.0, C / 512.0])
    mask = np.zeros(shape, dtype=bool)
    suv = rng.standard_normal(shape, dtype=np.float32)
    suv *= np.float32(0.1)
    suv += np.float32(0.5)
    np.maximum(suv, np.float32(0.0), out=suv)

    if organ:
        base = np.array([0.5, 0.5, 0.72]) * dims
        parts = (  # (offset, semi-axes) at the reference shape, index units
            (np.array([0.0, 0.0, 0.0]), np.array([43.0, 92.0, 76.0])),
            (np.array([-8.0, 60.0, -10.0]), np.array([32.0, 60.0, 54.0])),
            (np.array([18.0, -22.0, -48.0]), np.array([27.0, 49.0, 43.0])),
        )
        for off, semi in parts:
            _draw_ellipsoid(mask, suv, base + off * scale, semi * scale, np.eye(3), 2.0, 6.0, rng)

    liver_c = np.array([0.5, 0.45, 0.30]) * dims
    liver_semi = np.array([0.24, 0.22, 0.22]) * dims
    body_c = np.array([0.5, 0.5, 0.5]) * dims
    body_semi = np.array([0.5, 0.42, 0.45]) * dims
    rmin, rmax = 2.0 * scale[1:].min(), 25.0 * scale[1:].min()
    prev: tuple[np.ndarray, float] | None = None
    for _ in range(lesions):
        # in-plane radius: log-uniform skewed to small lesions; z radius follows in mm
        r_ip = max(rmin * (rmax / rmin) ** (rng.uniform() ** SIZE_SKEW), 0.75)
        r_z = float(np.clip(r_ip * SPACING[1] / SPACING[0] * rng.uniform(0.7, 1.5), 1.0, 8.0))
        r_z = max(r_z * scale[0], 0.75)
        radii = np.array([r_z, r_ip, r_ip * rng.uniform(0.5, 1.0)])
        if prev is not None and rng.uniform() < TOUCH_FRACTION:
            d = rng.standard_normal(3)
            d[0] *= 0.3
            d /= np.linalg.norm(d)
            centre = prev[0] + d * np.array([1.0, 1.0, 1.0]) * (prev[1] + r_ip) * 0.9
        elif rng.uniform() < LIVER_FRACTION:
            centre = _in_ellipsoid(rng, liver_c, liver_semi)
        else:
            centre = _in_ellipsoid(rng, body_c, body_semi)
            centre[0] = rng.uniform(0.0, S - 1.0)
        hi_val = rng.uniform(5.0, 40.0)
        rot = _rotation(rng)
        _draw_ellipsoid(mask, suv, centre, radii, rot, 5.0, hi_val, rng)
        for _ in range(int(rng.choice(3, p=[0.4, 0.35, 0.25]))):  # 0-2 satellites
            d = rng.standard_normal(3)
            d /= np.linalg.norm(d)
            sat = radii * rng.uniform(0.4, 0.8, 3)
            _draw_ellipsoid(
                mask, suv, centre + 0.7 * d * radii, sat, _rotation(rng), 5.0, hi_val, rng
            )
        prev = (centre, r_ip)
    return mask, suv


def make_small_inputs(label_dtype: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """A small phantom for the compile-time runs: mask, suv, labels (in the benchmark's label
    dtype) and n."""
    mask, suv = make_phantom((24, 96, 96), 12, seed=1, organ=False)
    labels, n = ndimage.label(mask, structure=STRUCT26)
    return mask, suv, labels.astype(label_dtype), int(n)


# --------------------------------------------------------------------------- measuring


def time_task(fn: Callable[[], Any], repeats: int) -> tuple[float, int]:
    """Median wall time of ``repeats`` calls after one warm-up call (a single timed call when
    the warm-up took more than 60 s). Returns (median, number of timed calls)."""
    medians, runs = time_tasks([("task", fn)], repeats)
    return medians["task"], runs["task"]


def time_tasks(
    tasks: list[tuple[str, Callable[[], Any]]], repeats: int
) -> tuple[dict[str, float], dict[str, int]]:
    """Median wall time per task of ``repeats`` calls after one warm-up call each, the tasks
    interleaved (round r times every task once), so that a slow spell of a shared machine
    hits all of them alike. A task whose warm-up took more than 60 s is timed once.
    Returns (medians, number of timed calls)."""
    samples: dict[str, list[float]] = {}
    want: dict[str, int] = {}
    for name, fn in tasks:
        t0 = time.perf_counter()
        fn()
        want[name] = 1 if time.perf_counter() - t0 > 60.0 else repeats
        samples[name] = []
    for r in range(repeats):
        for name, fn in tasks:
            if r < want[name]:
                t0 = time.perf_counter()
                fn()
                samples[name].append(time.perf_counter() - t0)
    return (
        {k: statistics.median(v) for k, v in samples.items()},
        {k: len(v) for k, v in samples.items()},
    )


def _proc_status() -> dict[str, int]:
    out = {}
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(("VmHWM:", "VmRSS:")):
                key, value = line.split(":", 1)
                out[key] = int(value.split()[0]) * 1024
    return out


def _malloc_trim() -> None:
    with contextlib.suppress(OSError, AttributeError):  # not glibc: nothing to trim
        ctypes.CDLL("libc.so.6").malloc_trim(0)


def peak_extra(fn: Callable[[], Any]) -> float:
    """Peak RSS above the starting RSS during one call of ``fn`` (bytes; NaN when the peak
    counter cannot be reset). Call it only after ``fn`` has been warmed up."""
    gc.collect()
    _malloc_trim()
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
    except OSError:
        return math.nan
    before = _proc_status()["VmRSS"]
    result = fn()
    peak = _proc_status()["VmHWM"]
    del result
    return float(peak - before)


def cpu_sample() -> tuple[float, float, float, float]:
    """(wall s, busy s of all CPUs, hypervisor steal s (both from /proc/stat), this
    process's CPU s)."""
    busy = steal = math.nan
    with contextlib.suppress(OSError, ValueError, IndexError):
        with open("/proc/stat") as fh:
            f = [int(x) for x in fh.readline().split()[1:]]
        # user nice system idle iowait irq softirq steal
        tick = os.sysconf("SC_CLK_TCK")
        busy = (f[0] + f[1] + f[2] + f[5] + f[6]) / tick
        steal = f[7] / tick
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return time.perf_counter(), busy, steal, ru.ru_utime + ru.ru_stime


def other_load(
    a: tuple[float, float, float, float], b: tuple[float, float, float, float]
) -> tuple[float, float]:
    """Average number of CPUs kept busy by other processes, and stolen by the hypervisor,
    between two cpu_sample()s."""
    wall = b[0] - a[0]
    if wall <= 0:
        return math.nan, math.nan
    return max(0.0, ((b[1] - a[1]) - (b[3] - a[3])) / wall), (b[2] - a[2]) / wall


def _halves(n: int) -> list[slice]:
    return [slice(0, n // 2), slice(n // 2, n)]


def measure_floor(mask: np.ndarray, label_dtype: np.dtype, repeats: int) -> dict[str, float]:
    """Read of the mask and write of a label-dtype array of the same shape (s): each the
    faster of numpy on one thread and on two threads (halves in a thread pool)."""
    flat = mask.reshape(-1)
    n8 = flat.size // 8 * 8
    words = flat[:n8].view(np.uint64)
    dst = np.empty(mask.size, dtype=label_dtype)
    dst.fill(1)  # fault the pages in: the write below is the bandwidth, not page faults
    pool = ThreadPoolExecutor(2)

    def read1() -> int:
        return int(np.bitwise_or.reduce(words))

    def read2() -> list[int]:
        parts = _halves(words.size)
        return list(pool.map(lambda s: int(np.bitwise_or.reduce(words[s])), parts))

    def count1() -> int:
        return int(np.count_nonzero(mask))

    def write1() -> None:
        np.copyto(dst, 2)

    def write2() -> None:
        list(pool.map(lambda s: np.copyto(dst[s], 3), _halves(dst.size)))

    def write_fresh() -> np.ndarray:
        out = np.empty(mask.shape, dtype=label_dtype)
        out.fill(4)
        return out

    try:
        t, _ = time_tasks(
            [
                ("read1", read1),
                ("read2", read2),
                ("count1", count1),
                ("write1", write1),
                ("write2", write2),
                ("write_fresh", write_fresh),
            ],
            max(repeats, 5),
        )
    finally:
        pool.shutdown()
    t["read"] = min(t["read1"], t["read2"], t["count1"])
    t["write"] = min(t["write1"], t["write2"])
    t["floor"] = t["read"] + t["write"]
    return t


# --------------------------------------------------------------------------- checks


def _corners_mm(rr: np.ndarray, cc: np.ndarray) -> np.ndarray:
    """Convex hull (ccw) of the corners of the pixel squares (r, c), in mm."""
    sy, sx = SPACING[1], SPACING[2]
    r = np.concatenate([rr - 0.5, rr - 0.5, rr + 0.5, rr + 0.5]) * sy
    c = np.concatenate([cc - 0.5, cc + 0.5, cc - 0.5, cc + 0.5]) * sx
    pts = np.unique(np.stack([r, c], axis=1), axis=0)
    return pts[ConvexHull(pts).vertices]


def _chord_max(poly: np.ndarray, u: np.ndarray) -> float:
    """Longest chord of convex polygon ``poly`` perpendicular to unit vector ``u`` (the chord
    length is concave in the offset along u, so its maximum is at a vertex's offset)."""
    v = np.array([-u[1], u[0]])
    pu, pv = poly @ u, poly @ v
    a_u, b_u = pu, np.roll(pu, -1)
    a_v, b_v = pv, np.roll(pv, -1)
    best = 0.0
    for t in pu:
        hits = [pv[np.abs(pu - t) <= 1e-9]]
        cross = (a_u - t) * (b_u - t) < 0
        if np.any(cross):
            s = (t - a_u[cross]) / (b_u[cross] - a_u[cross])
            hits.append(a_v[cross] + s * (b_v[cross] - a_v[cross]))
        h = np.concatenate(hits)
        best = max(best, float(h.max() - h.min()))
    return best


def check_axes(labels: np.ndarray, bbox: np.ndarray, ax: Any, seed: int) -> tuple[list[str], int]:
    """Brute-force check of axial_diameters on the largest and AXES_SAMPLE random labels.
    Returns (errors, number of labels checked)."""
    n = bbox.shape[0]
    if n == 0:
        return [], 0
    vols = np.prod(bbox[:, 3:] - bbox[:, :3], axis=1)
    rng = np.random.default_rng(seed + 7)
    picks = {int(np.argmax(vols))}
    picks.update(int(i) for i in rng.choice(n, size=min(AXES_SAMPLE, n), replace=False))
    sy, sx = SPACING[1], SPACING[2]
    errors: list[str] = []
    for i in sorted(picks):
        k = i + 1
        b = bbox[i]
        sub = labels[b[0] : b[3], b[1] : b[4], b[2] : b[5]] == k
        per_slice: dict[int, tuple[float, np.ndarray]] = {}
        for z in range(sub.shape[0]):
            rr, cc = np.nonzero(sub[z])
            if rr.size:
                poly = _corners_mm(rr + b[1], cc + b[2])
                per_slice[z + int(b[0])] = (float(pdist(poly).max()), poly)
        ld_true = max(v[0] for v in per_slice.values())
        ld, sa, zk = float(ax.ld_mm[i]), float(ax.sa_mm[i]), int(ax.slice[i])
        tol = 1e-6 + 1e-9 * ld_true
        if abs(ld - ld_true) > tol:
            errors.append(f"label {k}: ld_mm {ld:.6f} != brute force {ld_true:.6f}")
            continue
        if zk not in per_slice or abs(per_slice[zk][0] - ld_true) > tol:
            errors.append(f"label {k}: slice {zk} does not hold the long axis")
            continue
        ep = np.asarray(ax.ld_endpoints[i], dtype=np.float64)
        sp = np.asarray(ax.sa_endpoints[i], dtype=np.float64)
        if not (np.allclose(ep[:, 0], zk) and np.allclose(sp[:, 0], zk)):
            errors.append(f"label {k}: endpoint slice coordinates {ep[:, 0]}, {sp[:, 0]} != {zk}")
            continue
        d_ld = (ep[1, 1:] - ep[0, 1:]) * (sy, sx)
        d_sa = (sp[1, 1:] - sp[0, 1:]) * (sy, sx)
        if abs(np.hypot(*d_ld) - ld) > tol or abs(np.hypot(*d_sa) - sa) > tol:
            errors.append(
                f"label {k}: endpoint distances {np.hypot(*d_ld):.6f}, {np.hypot(*d_sa):.6f} "
                f"!= ld {ld:.6f}, sa {sa:.6f}"
            )
            continue
        u = d_ld / np.hypot(*d_ld)
        if sa > 0 and abs(float(u @ d_sa)) / sa > 1e-6:
            errors.append(f"label {k}: short axis not perpendicular (cos {u @ d_sa / sa:.2e})")
            continue
        sa_true = _chord_max(per_slice[zk][1], u)
        if abs(sa - sa_true) > tol:
            errors.append(f"label {k}: sa_mm {sa:.6f} != brute force {sa_true:.6f}")
    return errors, len(picks)


def check_results(
    kern: ModuleType | None, mask: np.ndarray, suv: np.ndarray, seed: int
) -> tuple[list[str], dict[str, Any]]:
    """Every route agrees on the components and the statistics. Returns (errors, info)."""
    errors: list[str] = []
    info: dict[str, Any] = {}
    sp_lab, sp_n = ndimage.label(mask, structure=STRUCT26)
    info["n"] = int(sp_n)
    cc_lab, cc_n = cc3d.connected_components(mask, connectivity=26, return_N=True)
    info["cc3d_dtype"] = cc_lab.dtype
    info["cc3d_equals_scipy"] = bool(np.array_equal(cc_lab, sp_lab))
    del cc_lab
    flt = sitk.ConnectedComponentImageFilter()
    flt.FullyConnectedOn()
    sitk_img = flt.Execute(sitk.GetImageFromArray(mask.view(np.uint8)))
    sitk_n = int(flt.GetObjectCount())
    info["sitk_dtype"] = sitk.GetArrayViewFromImage(sitk_img).dtype
    del sitk_img
    if int(cc_n) != sp_n:
        errors.append(f"cc3d finds {cc_n} components, scipy {sp_n}")
    if sitk_n != sp_n:
        errors.append(f"SimpleITK finds {sitk_n} components, scipy {sp_n}")
    counts = np.bincount(sp_lab.reshape(-1))[1:]
    info["largest"] = int(counts.max()) if counts.size else 0
    info["foreground"] = int(counts.sum())
    if kern is None:
        return errors, info

    labels, n = kern.label(mask)
    info["nv_dtype"] = labels.dtype
    if n != sp_n or labels.shape != sp_lab.shape or not np.array_equal(labels, sp_lab):
        diff = int(np.count_nonzero(labels != sp_lab)) if labels.shape == sp_lab.shape else -1
        errors.append(
            f"kernels.label: n={n} ({type(n).__name__}), dtype {labels.dtype}, shape "
            f"{labels.shape} != scipy.ndimage.label n={sp_n}; {diff} voxels differ"
        )
        return errors, info
    del sp_lab
    min_dtype = np.min_scalar_type(n) if n > 0 else np.dtype(np.uint8)
    want = next(d for d in (np.uint8, np.uint16, np.uint32, np.uint64) if np.can_cast(min_dtype, d))
    if labels.dtype != want:
        errors.append(f"kernels.label dtype {labels.dtype}, the contract says {np.dtype(want)}")

    rs = kern.region_stats(labels, n, spacing=SPACING, values=suv)
    st = cc3d.statistics(labels, no_slice_conversion=True)
    sk = regionprops_table(labels, intensity_image=suv, properties=PROPS_FULL)
    sk_bbox = np.stack([sk[f"bbox-{j}"] for j in range(6)], axis=1)
    sk_cen = np.stack([sk[f"centroid-{j}"] for j in range(3)], axis=1)
    vox_cc3d = np.asarray(st["voxel_counts"][1 : n + 1], dtype=np.int64)
    argmax_sp = np.array(
        ndimage.maximum_position(suv, labels, index=np.arange(1, n + 1)), dtype=np.int64
    ).reshape(-1, 3)
    checks: list[tuple[str, bool]] = [
        ("voxels == cc3d.statistics voxel_counts", np.array_equal(rs.voxels, vox_cc3d)),
        ("voxels == skimage area", np.array_equal(rs.voxels, sk["area"])),
        ("volume_ml", np.allclose(rs.volume_ml, vox_cc3d * np.prod(SPACING) / 1000.0)),
        ("bbox == skimage bbox", np.array_equal(rs.bbox, sk_bbox)),
        ("centroid_index ~ skimage centroid", np.allclose(rs.centroid_index, sk_cen, 0, 1e-6)),
        ("centroid_mm", np.allclose(rs.centroid_mm, sk_cen * SPACING, 0, 1e-6)),
        ("max == skimage intensity_max", np.array_equal(rs.max, sk["intensity_max"])),
        ("min == skimage intensity_min", np.array_equal(rs.min, sk["intensity_min"])),
        ("mean ~ skimage intensity_mean", np.allclose(rs.mean, sk["intensity_mean"], 1e-5)),
        ("std ~ skimage intensity_std", np.allclose(rs.std, sk["intensity_std"], 1e-4, 1e-6)),
        ("argmax == scipy maximum_position", np.array_equal(rs.argmax, argmax_sp)),
    ]
    for what, ok in checks:
        if not ok:
            errors.append(f"kernels.region_stats: {what} fails")
    if errors:
        return errors, info

    ax = kern.axial_diameters(labels, n, spacing=SPACING)
    ax_errors, info["axes_checked"] = check_axes(labels, rs.bbox, ax, seed)
    errors += [f"kernels.axial_diameters: {e}" for e in ax_errors]
    bad = ~(ax.sa_mm <= ax.ld_mm + 1e-9)
    if np.any(bad):
        errors.append(f"kernels.axial_diameters: sa_mm > ld_mm (or NaN) for {bad.sum()} labels")
    if hasattr(kern, "lesion_table"):
        errors += check_lesion_table(kern, mask, suv, labels, n, rs, ax)
    return errors, info


def _same(a: Any, b: Any) -> bool:
    a, b = np.asarray(a), np.asarray(b)
    if a.shape != b.shape:
        return False
    if np.issubdtype(a.dtype, np.floating) or np.issubdtype(b.dtype, np.floating):
        return bool(np.allclose(a, b, rtol=1e-9, atol=1e-9, equal_nan=True))
    return bool(np.array_equal(a, b))


def check_lesion_table(
    kern: ModuleType,
    mask: np.ndarray,
    suv: np.ndarray,
    labels: np.ndarray,
    n: int,
    rs: Any,
    ax: Any,
) -> list[str]:
    """kernels.lesion_table (one call) equals label + region_stats + axial_diameters."""
    lt = kern.lesion_table(mask, spacing=SPACING, values=suv)
    errors = []
    if lt.n != n or lt.labels.dtype != labels.dtype or not np.array_equal(lt.labels, labels):
        errors.append(f"kernels.lesion_table: labels / n ({lt.n}) differ from kernels.label")
    for part, ref, got in (("stats", rs, lt.stats), ("axes", ax, lt.axes)):
        for field in dataclasses.fields(ref):
            a, b = getattr(ref, field.name), getattr(got, field.name)
            if isinstance(a, np.ndarray) and not _same(a, b):
                errors.append(f"kernels.lesion_table: {part}.{field.name} differs")
    return errors


# --------------------------------------------------------------------------- compile time


def _compile_child(label_dtype: str) -> None:
    """Run in a fresh interpreter: print the first-call seconds of each kernel as JSON."""
    t0 = time.perf_counter()
    from netvolume import kernels as kern

    out: dict[str, float | None] = {"import": time.perf_counter() - t0}
    mask, suv, labels, n = make_small_inputs(label_dtype)
    calls: dict[str, Callable[[], Any]] = {
        "label": lambda: kern.label(mask),
        "region_stats": lambda: kern.region_stats(labels, n, spacing=SPACING, values=suv),
        "axial_diameters": lambda: kern.axial_diameters(labels, n, spacing=SPACING),
        "suv_peak": lambda: kern.suv_peak(suv, labels, n, spacing=SPACING),
        "lesion_table": lambda: kern.lesion_table(mask, spacing=SPACING, values=suv),
        "sphere_mean": lambda: kern.sphere_mean(suv, (36.0, 37.0, 37.0), 10.0, spacing=SPACING),
        "largest_component": lambda: kern.largest_component(mask),
        "fill_holes": lambda: kern.fill_holes(mask),
        "dust": lambda: kern.dust(mask, 20),
    }
    for name in KERNEL_NAMES:
        if not hasattr(kern, name):
            out[name] = None
            continue
        t0 = time.perf_counter()
        calls[name]()
        out[name] = time.perf_counter() - t0
    print(json.dumps(out))


def measure_compile(label_dtype: str) -> tuple[dict[str, Any], dict[str, Any]] | str:
    """(cold, cached) first-call seconds per kernel, or an error message."""
    results = []
    with tempfile.TemporaryDirectory(prefix="netvolume-numba-cache-") as cache:
        env = dict(os.environ, NUMBA_CACHE_DIR=cache)
        for _ in range(2):
            proc = subprocess.run(
                [sys.executable, str(Path(__file__).resolve()), "--compile-child", label_dtype],
                env=env,
                capture_output=True,
                text=True,
                timeout=900,
                check=False,
            )
            if proc.returncode != 0:
                return f"compile run failed ({proc.returncode}): {proc.stderr.strip()[-2000:]}"
            results.append(json.loads(proc.stdout.strip().splitlines()[-1]))
    return results[0], results[1]


# --------------------------------------------------------------------------- main


@dataclass
class CaseResult:
    lesions: int
    n: int
    times: dict[str, float]
    runs: dict[str, int]
    peaks: dict[str, float]
    floor: dict[str, float]
    mask_bytes: int
    label_bytes: int
    label_dtype: str
    targets: list[tuple[str, bool, str]]


def _f(t: float | None, digits: int = 3) -> str:
    return "-" if t is None or (isinstance(t, float) and math.isnan(t)) else f"{t:.{digits}f}"


def run_case(
    kern: ModuleType | None, shape: tuple[int, int, int], lesions: int, seed: int, repeats: int
) -> CaseResult | None:
    """One lesion count: generate, check, time, measure memory, print. None on mismatch."""
    organ = lesions <= ORGAN_MAX_LESIONS
    t0 = time.perf_counter()
    mask, suv = make_phantom(shape, lesions, seed, organ)
    t_gen = time.perf_counter() - t0
    print()
    print(f"=== {lesions} lesions{' + organ-size component' if organ else ''} (seed {seed}) ===")
    print(
        f"mask {shape[0]} x {shape[1]} x {shape[2]} bool ({mask.nbytes / MB:.1f} MB), "
        f"suv float32 ({suv.nbytes / MB:.1f} MB), generated in {t_gen:.1f} s"
    )
    t0 = time.perf_counter()
    errors, info = check_results(kern, mask, suv, seed)
    n = info["n"]
    print(
        f"{n} components (26-connected) from {lesions} lesions; {info['foreground']} "
        f"foreground voxels ({100 * info['foreground'] / mask.size:.2f} %), largest "
        f"{info['largest']} voxels; checked in {time.perf_counter() - t0:.1f} s"
    )
    print(
        f"label dtypes: netvolume {info.get('nv_dtype', '-')}, cc3d {info['cc3d_dtype']}, "
        f"SimpleITK {info['sitk_dtype']}, scipy int32; cc3d numbering == scipy's: "
        f"{info['cc3d_equals_scipy']}"
    )
    if errors:
        for e in errors:
            print(f"MISMATCH: {e}")
        return None
    if kern is not None:
        print(
            "check: kernels.label == scipy.ndimage.label (26); counts == cc3d == SimpleITK; "
            "region_stats == cc3d.statistics / skimage / scipy maximum_position; "
            f"axial_diameters == brute force on {info['axes_checked']} labels"
            + ("; lesion_table == the 3 calls" if hasattr(kern, "lesion_table") else "")
        )
    else:
        print("check: counts scipy == cc3d == SimpleITK (netvolume skipped)")

    label_dtype = (
        np.dtype(info["nv_dtype"])
        if kern is not None
        else np.dtype(
            next(d for d in (np.uint8, np.uint16, np.uint32, np.uint64) if n <= np.iinfo(d).max)
        )
    )
    # inputs prepared outside the timed calls
    sitk_in = sitk.GetImageFromArray(mask.view(np.uint8))
    flt = sitk.ConnectedComponentImageFilter()
    flt.FullyConnectedOn()
    cc_lab = cc3d.connected_components(mask, connectivity=26)

    def sitk_conv() -> np.ndarray:
        return sitk.GetArrayFromImage(flt.Execute(sitk.GetImageFromArray(mask.view(np.uint8))))

    def lib_stats_full(lab: np.ndarray) -> Any:
        return regionprops_table(lab, intensity_image=suv, properties=PROPS_FULL)

    def lib_stats_split(lab: np.ndarray) -> Any:
        st = cc3d.statistics(lab, no_slice_conversion=True)
        return st, regionprops_table(lab, intensity_image=suv, properties=PROPS_INTENSITY)

    tasks: list[tuple[str, Callable[[], Any]]] = [
        ("cc3d label", lambda: cc3d.connected_components(mask, connectivity=26)),
        ("sitk label", lambda: flt.Execute(sitk_in)),
        ("sitk label+conv", sitk_conv),
        ("scipy label", lambda: ndimage.label(mask, structure=STRUCT26)),
        ("cc3d.statistics", lambda: cc3d.statistics(cc_lab, no_slice_conversion=True)),
        ("skimage full", lambda: lib_stats_full(cc_lab)),
        (
            "skimage intensity",
            lambda: regionprops_table(cc_lab, intensity_image=suv, properties=PROPS_INTENSITY),
        ),
    ]

    def lib_table_full() -> Any:
        lab = cc3d.connected_components(mask, connectivity=26)
        return lab, lib_stats_full(lab)

    def lib_table_split() -> Any:
        lab = cc3d.connected_components(mask, connectivity=26)
        return lab, lib_stats_split(lab)

    lib_tasks: list[tuple[str, Callable[[], Any]]] = [
        ("lib table full", lib_table_full),
        ("lib table split", lib_table_split),
    ]
    nv_tasks: list[tuple[str, Callable[[], Any]]] = []
    if kern is not None:
        labels, n_nv = kern.label(mask)

        def nv_table() -> Any:
            lab, m = kern.label(mask)
            rs = kern.region_stats(lab, m, spacing=SPACING, values=suv)
            ax = kern.axial_diameters(lab, m, spacing=SPACING)
            return lab, rs, ax

        nv_tasks = [
            ("nv label", lambda: kern.label(mask)),
            (
                "nv region_stats",
                lambda: kern.region_stats(labels, n_nv, spacing=SPACING, values=suv),
            ),
            ("nv axial_diameters", lambda: kern.axial_diameters(labels, n_nv, spacing=SPACING)),
        ]
        nv_tasks.append(("nv table", nv_table))
        if hasattr(kern, "lesion_table"):
            nv_tasks.append(
                (
                    "nv lesion_table",
                    lambda: kern.lesion_table(mask, spacing=SPACING, values=suv),
                )
            )
        if hasattr(kern, "suv_peak"):
            nv_tasks.append(
                ("nv suv_peak", lambda: kern.suv_peak(suv, labels, n_nv, spacing=SPACING))
            )
    load0 = cpu_sample()
    times, runs = time_tasks(tasks + lib_tasks + nv_tasks, repeats)
    others, steal = other_load(load0, cpu_sample())
    split = times["cc3d.statistics"] + times["skimage intensity"]
    best_split = split < times["skimage full"]
    times["lib stats"] = min(split, times["skimage full"])
    best_table = min(times["lib table full"], times["lib table split"])
    times["lib table"] = best_table
    lib_table = (
        lib_table_split if times["lib table split"] < times["lib table full"] else lib_table_full
    )

    floor = measure_floor(mask, label_dtype, repeats)

    # peak memory (each task is warm by now)
    peak_tasks = [
        ("cc3d label", tasks[0][1]),
        ("sitk label", tasks[1][1]),
        ("sitk label+conv", sitk_conv),
        ("scipy label", tasks[3][1]),
        ("lib table", lib_table),
        *[(k, fn) for k, fn in nv_tasks if k in ("nv label", "nv table", "nv lesion_table")],
    ]
    peaks = {name: peak_extra(fn) for name, fn in peak_tasks}

    mask_bytes = mask.nbytes
    label_bytes = mask.size * label_dtype.itemsize
    budget = label_bytes + MEMORY_SLACK * (mask_bytes + label_bytes)

    # ---- table
    lib_label = min(times["cc3d label"], times["sitk label"], times["scipy label"])
    t = times.get
    rows = [
        # task, netvolume, cc3d, SimpleITK, scipy, skimage/combination, fastest library
        (
            "label",
            t("nv label"),
            t("cc3d label"),
            t("sitk label"),
            t("scipy label"),
            None,
            lib_label,
        ),
        ("label, numpy in/out", None, None, t("sitk label+conv"), None, None, None),
        (
            "stats (given labels)",
            t("nv region_stats"),
            t("cc3d.statistics"),
            None,
            None,
            t("skimage full"),
            times["lib stats"],
        ),
        ("  skimage intensity only", None, None, None, None, t("skimage intensity"), None),
        ("axial_diameters", t("nv axial_diameters"), None, None, None, None, None),
        (
            "full lesion table, 3 calls",
            t("nv table"),
            None,
            None,
            None,
            t("lib table"),
            t("lib table"),
        ),
        ("  lesion_table(), 1 call", t("nv lesion_table"), None, None, None, None, t("lib table")),
        ("suv_peak", t("nv suv_peak"), None, None, None, None, None),
    ]
    print()
    print(
        f"median s of {repeats} runs after 1 warm-up; 'x lib' = netvolume / fastest library "
        f"route for the task; 'x floor' = netvolume / floor ({_f(floor['floor'], 4)} s)"
    )
    print(
        f"other processes used {others:.2f} of the {os.cpu_count()} CPUs on average while "
        f"this was timed (hypervisor steal {steal:.2f} CPUs)"
    )
    if others + steal > 0.2:
        print(
            "  WARNING: the machine was busy; numba's multi-threaded kernels lose far more "
            "than the single-threaded libraries when a core is taken: rerun when it is idle"
        )
    head = (
        f"{'task':<26}{'netvolume':>10}{'cc3d':>9}{'SimpleITK':>10}{'scipy':>9}"
        f"{'cc3d+skimg':>11}{'x lib':>8}{'x floor':>9}"
    )
    print(head)
    print("-" * len(head))
    for name, nv, c3, si, sc, sk, lib in rows:
        if all(v is None for v in (nv, c3, si, sc, sk)):
            continue
        ratio = nv / lib if nv is not None and lib else None
        xf = nv / floor["floor"] if nv is not None else None
        print(
            f"{name:<26}{_f(nv):>10}{_f(c3):>9}{_f(si):>10}{_f(sc):>9}{_f(sk):>11}"
            f"{_f(ratio, 2):>8}{_f(xf, 1):>9}"
        )
    print(
        "  (library stats = the faster of skimage alone and cc3d.statistics + skimage "
        f"intensity only: {'the latter' if best_split else 'skimage alone'}; library table = "
        f"the faster of cc3d label + either: {_f(times['lib table full'])} s / "
        f"{_f(times['lib table split'])} s)"
    )
    single = [k for k, v in runs.items() if v < repeats]
    if single:
        print(f"  (timed once after a warm-up over 60 s: {', '.join(single)})")
    print(
        f"floor: read mask {_f(floor['read'], 4)} s ({mask_bytes / floor['read'] / 1e9:.1f} "
        f"GB/s) + write {label_dtype} labels {_f(floor['write'], 4)} s "
        f"({label_bytes / floor['write'] / 1e9:.1f} GB/s) = {_f(floor['floor'], 4)} s "
        f"[1 thread: read {_f(floor['read1'], 4)} / count_nonzero {_f(floor['count1'], 4)}, "
        f"write {_f(floor['write1'], 4)}; 2 threads: read {_f(floor['read2'], 4)}, write "
        f"{_f(floor['write2'], 4)}; a fresh array, page faults included: "
        f"{_f(floor['write_fresh'], 4)} s]"
    )
    print()
    mhead = (
        f"{'peak extra RSS, MB':<26}{'netvolume':>10}{'cc3d':>9}{'SimpleITK':>10}{'scipy':>9}"
        f"{'cc3d+skimg':>11}{'budget':>8}"
    )
    print(mhead)
    print("-" * len(mhead))
    p = {k: v / MB for k, v in peaks.items()}
    pg = p.get
    print(
        f"{'label':<26}{_f(pg('nv label'), 0):>10}{_f(p['cc3d label'], 0):>9}"
        f"{_f(p['sitk label'], 0):>10}{_f(p['scipy label'], 0):>9}{'-':>11}"
        f"{budget / MB:>8.0f}"
    )
    print(f"{'label, numpy in/out':<26}{'-':>10}{'-':>9}{_f(p['sitk label+conv'], 0):>10}")
    print(
        f"{'full lesion table, 3 calls':<26}{_f(pg('nv table'), 0):>10}{'-':>9}{'-':>10}{'-':>9}"
        f"{_f(p['lib table'], 0):>11}"
    )
    if "nv lesion_table" in p:
        print(f"{'  lesion_table(), 1 call':<26}{_f(p['nv lesion_table'], 0):>10}")
    print(
        f"  mask {mask_bytes / MB:.0f} MB (resident before each call, not counted), "
        f"{label_dtype} labels {label_bytes / MB:.0f} MB; budget = labels + "
        f"{MEMORY_SLACK:.0%} of (mask + labels)"
    )
    print(
        "  (RSS counts touched pages only: pages of a zero-initialised (calloc) output that "
        "stay all background are never resident)"
    )

    targets: list[tuple[str, bool, str]] = []
    if kern is not None:
        r1 = times["nv label"] / times["cc3d label"]
        one_call = "nv lesion_table" in times
        r2 = times["nv lesion_table" if one_call else "nv table"] / times["nv label"]
        route = "lesion_table(), 1 call" if one_call else "label + region_stats + axes"
        pk = peaks["nv label"]
        targets = [
            (f"label <= {LABEL_VS_CC3D_TARGET} x cc3d", r1 <= LABEL_VS_CC3D_TARGET, f"{r1:.2f} x"),
            (
                f"full lesion table <= {TABLE_VS_LABEL_TARGET} x label",
                r2 <= TABLE_VS_LABEL_TARGET,
                f"{r2:.2f} x ({route}; 3 calls: {times['nv table'] / times['nv label']:.2f} x)",
            ),
            (
                "label peak memory <= mask + labels + 10 %",
                bool(pk <= budget),
                f"{pk / MB:.0f} MB extra vs {budget / MB:.0f} MB",
            ),
        ]
        print()
        for what, ok, val in targets:
            print(f"{'PASS' if ok else 'FAIL'}: {lesions} lesions: {what}: {val}")
    return CaseResult(
        lesions, n, times, runs, peaks, floor, mask_bytes, label_bytes, str(label_dtype), targets
    )


def _versions() -> str:
    import numba

    cc3d_v = importlib.metadata.version("connected-components-3d")
    return (
        f"python {platform.python_version()}, numpy {np.__version__}, scipy {scipy.__version__}, "
        f"scikit-image {skimage.__version__}, SimpleITK {sitk.Version.VersionString()}, "
        f"cc3d {cc3d_v}, numba {numba.__version__}\n"
        f"{os.cpu_count()} CPUs (affinity {len(os.sched_getaffinity(0))}), numba threads "
        f"{numba.get_num_threads()} (layer setting {numba.config.THREADING_LAYER}), SimpleITK "
        "threads "
        f"{sitk.ProcessObject.GetGlobalDefaultNumberOfThreads()}, cc3d and scipy 1 thread"
    )


def _threading_layer() -> str:
    import numba

    try:
        return str(numba.threading_layer())
    except ValueError:  # no parallel region has run
        return "none started"


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; return 0 (targets met), 1 (target missed), 2 (mismatch) or 3."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument(
        "--lesions",
        type=int,
        nargs="+",
        default=[50, 2000],
        help="lesion counts, one case each (default 50 2000)",
    )
    parser.add_argument(
        "--repeats", type=int, default=None, help="timed runs per task (default 5; 3 with --quick)"
    )
    parser.add_argument(
        "--shape",
        type=int,
        nargs=3,
        default=None,
        metavar=("S", "R", "C"),
        help="mask shape [slice, row, col] (default 300 512 512)",
    )
    parser.add_argument("--seed", type=int, default=0, help="generator seed")
    parser.add_argument(
        "--quick", action="store_true", help="smoke run: shape 100 256 256, 3 repeats"
    )
    parser.add_argument(
        "--libraries-only",
        action="store_true",
        help="time the libraries only (netvolume.kernels not needed)",
    )
    parser.add_argument("--no-compile", action="store_true", help="skip the compile-time runs")
    parser.add_argument("--compile-child", metavar="DTYPE", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if cc3d is None:
        print(
            "bench_kernels.py needs cc3d: pip install connected-components-3d "
            "(or pip install -e '.[bench]')",
            file=sys.stderr,
        )
        return 3
    if args.compile_child:
        _compile_child(args.compile_child)
        return 0
    shape = tuple(args.shape or ((100, 256, 256) if args.quick else (300, 512, 512)))
    repeats = args.repeats or (3 if args.quick else 5)

    kern: ModuleType | None = None
    if not args.libraries_only:
        try:
            kern = importlib.import_module("netvolume.kernels")
        except ImportError as exc:
            print(
                f"cannot import netvolume.kernels ({exc}); use --libraries-only to time the "
                "libraries alone",
                file=sys.stderr,
            )
            return 3
        missing = [k for k in ("label", "region_stats", "axial_diameters") if not hasattr(kern, k)]
        if missing:
            print(f"netvolume.kernels lacks {', '.join(missing)}", file=sys.stderr)
            return 3

    print(_versions())
    print(f"shape {shape}, spacing {SPACING} mm, lesions {args.lesions}, repeats {repeats}")
    results: list[CaseResult] = []
    for lesions in args.lesions:
        res = run_case(kern, shape, lesions, args.seed, repeats)
        if res is None:
            return 2
        results.append(res)
        gc.collect()

    if kern is not None:
        print(f"\nnumba threading layer used: {_threading_layer()}")
    if kern is not None and not args.no_compile:
        dtype = results[-1].label_dtype
        print()
        print(f"compile time: first call of each kernel on 24 x 96 x 96 ({dtype} labels), fresh")
        print("interpreter, NUMBA_CACHE_DIR empty (cold) then populated (cache load)")
        measured = measure_compile(dtype)
        if isinstance(measured, str):
            print(f"  {measured}")
        else:
            cold, warm = measured
            print(f"{'kernel':<20}{'cold s':>9}{'cached s':>10}")
            for name in ("import", *KERNEL_NAMES):
                print(f"{name:<20}{_f(cold.get(name), 2):>9}{_f(warm.get(name), 2):>10}")
            tot_c = sum(v for v in cold.values() if v is not None)
            tot_w = sum(v for v in warm.values() if v is not None)
            print(
                f"{'total':<20}{tot_c:>9.2f}{tot_w:>10.2f}   (kernels sharing compiled helpers "
                "pay for them once, in the first listed)"
            )
            if tot_w > 0.5 * tot_c:
                print(
                    "  WARNING: loading the cache took more than half the cold compile: the "
                    "cache was not used (sources edited between the runs, or a kernel that "
                    "numba cannot cache)"
                )

    if kern is None:
        print()
        print("libraries only: no targets judged")
        return 0
    print()
    failed = [(r.lesions, w, v) for r in results for w, ok, v in r.targets if not ok]
    n_targets = sum(len(r.targets) for r in results)
    if failed:
        print(
            f"FAIL: {len(failed)} of {n_targets} targets missed: "
            + "; ".join(f"{les} lesions: {w} ({v})" for les, w, v in failed)
        )
        return 1
    print(f"PASS: all {n_targets} targets met")
    return 0


if __name__ == "__main__":
    sys.exit(main())

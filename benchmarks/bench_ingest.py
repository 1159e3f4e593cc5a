"""Benchmark DICOM series ingestion: netvolume against the I/O floor, SimpleITK and pydicom.

Writes a synthetic int16 CT series (default 300 slices of 512 x 512, uncompressed Explicit
VR Little Endian, via :func:`netvolume.io.dicom_write.write_series`), then times, with the
page cache warm, one warm-up and ``--repeats`` timed runs of each task and reports medians:

(a) ``read()``       plain Python ``open(f, "rb").read()`` of every file (the I/O floor)
(b) ``scan``         ``netvolume.scan(folder)``
(c) ``load``         ``netvolume.load(series)`` given the catalogue
(d) ``scan+load``    both
(e) ``SimpleITK``    ``ImageSeriesReader``: ``GetGDCMSeriesFileNames``, ``Execute``,
                     ``GetArrayFromImage``
(f) ``pydicom``      ``dcmread`` of each file + ``np.frombuffer(PixelData)``, sorted along
                     the slice normal, stacked and rescaled

Targets (printed as PASS/FAIL): ``load <= 1.5 x read()`` and ``load <= 0.5 x SimpleITK``.
Before timing, the netvolume volume is checked to equal the SimpleITK and pydicom arrays
(same values, same [slice, row, column] order), so that every route does the same work.

Exit status: 0 when both targets pass, 1 when a target fails, 2 when the arrays differ.

Usage::

    python benchmarks/bench_ingest.py [--slices 300] [--size 512] [--repeats 5] [--dir DIR]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pydicom
import SimpleITK as sitk

import netvolume
from netvolume import load, scan
from netvolume.io.dicom_write import write_series

LOAD_VS_READ_TARGET = 1.5
LOAD_VS_SITK_TARGET = 0.5


def make_series(folder: Path, slices: int, size: int, seed: int = 0) -> list[Path]:
    """Write the benchmark CT series (a noisy body-like phantom) into ``folder``."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size]
    r = np.hypot(yy - size / 2, xx - size / 2) / (size / 2)
    body = np.where(r < 0.85, 1064, 24).astype(np.int16)  # ~40 HU inside, air outside
    arr = np.empty((slices, size, size), dtype=np.int16)
    for k in range(slices):
        arr[k] = body + rng.integers(-20, 21, size=(size, size), dtype=np.int16)
    return write_series(
        folder,
        arr,
        spacing_mm=(1.0, 0.7, 0.7),
        origin_lps=(-179.0, -179.0, -150.0),
        rescale_slope=1.0,
        rescale_intercept=-1024.0,
        seed=seed,
    )


def read_all(files: list[Path]) -> int:
    """(a) The I/O floor: read every file's bytes."""
    total = 0
    for f in files:
        with open(f, "rb") as fh:
            total += len(fh.read())
    return total


def read_into_fresh(files: list[Path], sizes: list[int]) -> np.ndarray:
    """(a') The floor for a loader that returns new memory: every file's bytes read into
    one freshly allocated array (pays the kernel's zeroing of new pages, which plain
    ``read()`` avoids because the allocator recycles its buffers)."""
    out = np.empty(sum(sizes), dtype=np.uint8)
    off = 0
    for f, n in zip(files, sizes, strict=True):
        with open(f, "rb") as fh:
            fh.readinto(out[off : off + n].data)
        off += n
    return out


def sitk_read(folder: Path) -> np.ndarray:
    """(e) SimpleITK's series reader, GDCM sorting included."""
    reader = sitk.ImageSeriesReader()
    names = reader.GetGDCMSeriesFileNames(str(folder))
    reader.SetFileNames(names)
    img = reader.Execute()
    return sitk.GetArrayFromImage(img)


def pydicom_read(files: list[Path]) -> np.ndarray:
    """(f) pydicom's best sequential route: dcmread + frombuffer, sorted, stacked."""
    planes = []
    keys = []
    slopes = []
    intercepts = []
    for f in files:
        ds = pydicom.dcmread(f)
        dtype = "<i2" if ds.PixelRepresentation == 1 else "<u2"
        planes.append(np.frombuffer(ds.PixelData, dtype=dtype).reshape(ds.Rows, ds.Columns))
        iop = np.array([float(v) for v in ds.ImageOrientationPatient])
        normal = np.cross(iop[:3], iop[3:])
        keys.append(float(np.dot([float(v) for v in ds.ImagePositionPatient], normal)))
        slopes.append(float(ds.get("RescaleSlope", 1.0)))
        intercepts.append(float(ds.get("RescaleIntercept", 0.0)))
    order = np.argsort(keys, kind="stable")
    stored = np.stack([planes[i] for i in order])
    slope = np.array(slopes)[order][:, None, None]
    inter = np.array(intercepts)[order][:, None, None]
    if np.all(slope == 1.0) and np.all(inter == np.round(inter)):
        return (stored.astype(np.int32) + inter.astype(np.int32)).astype(np.int16)
    return stored * slope + inter


def time_task(fn: Callable[[], Any], repeats: int) -> float:
    """Median wall time of ``repeats`` calls after one warm-up call."""
    fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; return 0 (targets met), 1 (target missed) or 2 (mismatch)."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--slices", type=int, default=300, help="number of slices")
    parser.add_argument("--size", type=int, default=512, help="rows = columns")
    parser.add_argument("--repeats", type=int, default=5, help="timed runs per task")
    parser.add_argument(
        "--dir", type=Path, default=None, help="write the series here (default: a temp dir)"
    )
    args = parser.parse_args(argv)

    tmp: tempfile.TemporaryDirectory[str] | None = None
    if args.dir is None:
        tmp = tempfile.TemporaryDirectory(prefix="netvolume-bench-")
        folder = Path(tmp.name)
    else:
        folder = args.dir
    try:
        return _run(folder, args.slices, args.size, args.repeats)
    finally:
        if tmp is not None:
            tmp.cleanup()


def _run(folder: Path, slices: int, size: int, repeats: int) -> int:
    t0 = time.perf_counter()
    files = make_series(folder, slices, size)
    t_write = time.perf_counter() - t0
    nbytes = sum(f.stat().st_size for f in files)
    print(
        f"series: {slices} x {size} x {size} int16, {len(files)} files, "
        f"{nbytes / 2**20:.1f} MiB in {folder} (written in {t_write:.1f} s)"
    )
    print(
        f"python {platform.python_version()}, numpy {np.__version__}, "
        f"pydicom {pydicom.__version__}, SimpleITK {sitk.Version.VersionString()}, "
        f"netvolume {netvolume.__version__}, {os.cpu_count()} CPUs, "
        f"SimpleITK threads {sitk.ProcessObject.GetGlobalDefaultNumberOfThreads()}"
    )

    # --- fairness: every route must produce the same array in the same order
    cat = scan(folder)
    if len(cat.series) != 1 or cat.series[0].num_images != slices:
        print(f"MISMATCH: scan found {[(s.uid, s.num_images) for s in cat.series]}")
        return 2
    vol = load(cat.series[0])
    ref = sitk_read(folder)
    pyd = pydicom_read(files)
    for name, other in (("SimpleITK", ref), ("pydicom", pyd)):
        if vol.array.shape != other.shape or not np.array_equal(vol.array, other):
            print(
                f"MISMATCH: netvolume {vol.array.shape} {vol.array.dtype} != "
                f"{name} {other.shape} {other.dtype}"
            )
            return 2
    print(
        f"check: netvolume == SimpleITK == pydicom (shape {vol.array.shape}, "
        f"netvolume dtype {vol.array.dtype}, SimpleITK dtype {ref.dtype})"
    )
    del vol, ref, pyd

    series = cat.series[0]
    sizes = [f.stat().st_size for f in files]
    tasks: list[tuple[str, Callable[[], Any]]] = [
        ("read() floor", lambda: read_all(files)),
        ("readinto fresh array", lambda: read_into_fresh(files, sizes)),
        ("netvolume scan", lambda: scan(folder)),
        ("netvolume load", lambda: load(series)),
        ("netvolume scan+load", lambda: load(scan(folder).series[0])),
        ("SimpleITK series", lambda: sitk_read(folder)),
        ("pydicom sequential", lambda: pydicom_read(files)),
    ]
    medians: dict[str, float] = {}
    for name, fn in tasks:
        medians[name] = time_task(fn, repeats)

    t_read = medians["read() floor"]
    t_sitk = medians["SimpleITK series"]
    print()
    print(f"median of {repeats} runs after 1 warm-up (page cache warm)")
    print(f"{'task':<22}{'median s':>10}{'x read()':>10}{'x SimpleITK':>13}{'MiB/s':>9}")
    for name, t in medians.items():
        print(
            f"{name:<22}{t:>10.3f}{t / t_read:>10.2f}{t / t_sitk:>13.2f}{nbytes / 2**20 / t:>9.0f}"
        )
    t_load = medians["netvolume load"]
    ok_read = t_load <= LOAD_VS_READ_TARGET * t_read
    ok_sitk = t_load <= LOAD_VS_SITK_TARGET * t_sitk
    print()
    print(
        f"{'PASS' if ok_read and ok_sitk else 'FAIL'}: "
        f"load <= {LOAD_VS_READ_TARGET} x read(): {t_load / t_read:.2f} x "
        f"[{'ok' if ok_read else 'MISSED'}]; "
        f"load <= {LOAD_VS_SITK_TARGET} x SimpleITK: {t_load / t_sitk:.2f} x "
        f"[{'ok' if ok_sitk else 'MISSED'}]"
    )
    t_fresh = medians["readinto fresh array"]
    print(
        f"for reference: load = {t_load / t_fresh:.2f} x reading the same bytes into a fresh "
        "array (the floor for any loader that returns new memory)"
    )
    return 0 if ok_read and ok_sitk else 1


if __name__ == "__main__":
    sys.exit(main())

"""Benchmark ``netvolume measure`` on one full-size PET/CT study against the time to read it.

The study is one patient at one time point of the phantom (``generate_cohort`` with
``PhantomSettings(patients=1, timepoints=1, seed=--seed, size="full")``: a 512 x 512 x 300
CT and its Ga-68 PET), generated in a temporary folder, or an existing study folder given
with ``--study``. Timed in one run, each task once as a warm-up (numba compilation, page
cache) and then ``--repeat`` times in interleaved rounds, best time kept:

read (the baseline)
    ``netvolume.io.dicom.scan(study)`` + ``dicom.load(CT)`` + ``pet.load_activity(PET)``:
    what any measurement must pay before it measures anything.
libraries (for scale)
    pydicom: ``dcmread`` + ``pixel_array`` of every DICOM file of the CT and the PET
    (no sorting, no geometry, no rescale); SimpleITK: ``ImageSeriesReader`` of the CT
    (GDCM sorting included), ``GetArrayFromImage``.
measure_study
    end to end, automatic liver, spleen and lesion segmentation; its stages come from
    ``StudyMeasurement.provenance["seconds"]`` of the fastest run (``segmentation``,
    ``measurement``; ``load + rest`` is the total minus those two), and
    ``netvolume.measure.load_study`` (scan, choose, check, load CT + PET + SUV) is timed on
    its own for comparison.
write_measurement
    lesions.csv, study.json, NIfTI masks, organ and lesion DICOM SEGs into a fresh folder.

Target (issue 7): the whole measurement, ``measure_study`` + ``write_measurement`` (what
``netvolume measure STUDY -o OUT`` does), in at most 3 x the read time. Before timing, the
netvolume CT is checked to equal SimpleITK's array value for value (exit status 2
otherwise).

Usage::

    python benchmarks/bench_measure.py [--study DIR] [--repeat N] [--seed S]

Exit status: 0 when the target is met, 1 when it is missed, 2 on a mismatch.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
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
from netvolume.io import dicom, pet
from netvolume.io.dicom import Series
from netvolume.measure import StudyMeasurement, load_study, measure_study, write_measurement
from netvolume.phantom import PhantomSettings, generate_cohort

TARGET_X_READ = 3.0


def _best_of(tasks: list[tuple[str, Callable[[], Any]]], repeat: int) -> dict[str, float]:
    """Best wall time per task over ``repeat`` interleaved rounds, after one warm-up each."""
    for _, fn in tasks:
        fn()
    best = dict.fromkeys((name for name, _ in tasks), float("inf"))
    for _ in range(repeat):
        for name, fn in tasks:
            t0 = time.perf_counter()
            fn()
            best[name] = min(best[name], time.perf_counter() - t0)
    return best


def _series(study: Path) -> tuple[Series, Series]:
    """The study's CT (the largest CT stack) and PET series."""
    cat = dicom.scan(study)
    cts = sorted((s for s in cat.series if s.modality == "CT"), key=lambda s: -s.num_images)
    pts = [s for s in cat.series if s.modality == "PT"]
    if not cts or not pts:
        raise SystemExit(f"{study}: needs a CT and a PT series; found {cat.series}")
    return cts[0], pts[0]


def read_netvolume(study: Path) -> tuple[np.ndarray, np.ndarray]:
    """The read baseline: scan the folder, load the CT (HU) and the PET (Bq/mL)."""
    ct_series, pet_series = _series(study)
    ct = dicom.load(ct_series)
    activity = pet.load_activity(pet_series)
    return ct.array, activity.array


def read_pydicom(files: list[Path]) -> int:
    """pydicom: every file parsed and its pixels decoded (nothing sorted or rescaled)."""
    n = 0
    for f in files:
        n += int(pydicom.dcmread(f).pixel_array.size)
    return n


def read_sitk(folder: Path, series_uid: str) -> np.ndarray:
    """SimpleITK's series reader on the CT: GDCM lists and sorts the files, reads them."""
    reader = sitk.ImageSeriesReader()
    reader.SetFileNames(reader.GetGDCMSeriesFileNames(str(folder), series_uid))
    return sitk.GetArrayFromImage(reader.Execute())


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; return 0 (target met), 1 (missed) or 2 (mismatch)."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--study", type=Path, default=None, help="an existing study folder")
    parser.add_argument("--repeat", type=int, default=3, help="timed runs per task (best kept)")
    parser.add_argument("--seed", type=int, default=1, help="phantom seed")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="netvolume-bench-measure-") as tmp:
        study = args.study
        if study is None:
            t0 = time.perf_counter()
            settings = PhantomSettings(patients=1, timepoints=1, seed=args.seed, size="full")
            generate_cohort(Path(tmp) / "cohort", settings)
            study = Path(tmp) / "cohort" / "P001" / "T0"
            print(
                f"phantom study (seed {args.seed}, full size) generated in "
                f"{time.perf_counter() - t0:.1f} s: {study}"
            )
        return _run(study, Path(tmp), args.repeat)


def _run(study: Path, tmp: Path, repeat: int) -> int:
    ct_series, pet_series = _series(study)
    ct_folders = {im.path.parent for im in ct_series.images}
    if len(ct_folders) != 1:
        raise SystemExit(f"the CT's files lie in {len(ct_folders)} folders; SimpleITK needs one")
    (ct_folder,) = ct_folders
    ct_uid = ct_series.series_instance_uid
    files = sorted({im.path for s in (ct_series, pet_series) for im in s.images})
    nbytes = sum(f.stat().st_size for f in files)
    print(
        f"study: CT {ct_series.num_images} x {ct_series.rows} x {ct_series.columns}, "
        f"PET {pet_series.num_images} x {pet_series.rows} x {pet_series.columns}, "
        f"{len(files)} files, {nbytes / 2**20:.0f} MiB"
    )
    print(
        f"python {platform.python_version()}, numpy {np.__version__}, "
        f"pydicom {pydicom.__version__}, SimpleITK {sitk.Version.VersionString()}, "
        f"netvolume {netvolume.__version__}, {os.cpu_count()} CPUs"
    )

    # --- fairness: the netvolume CT and SimpleITK's are the same array
    ct_nv, _ = read_netvolume(study)
    ct_sitk = read_sitk(ct_folder, ct_uid)
    if ct_nv.shape != ct_sitk.shape or not np.array_equal(ct_nv, ct_sitk):
        print(
            f"MISMATCH: netvolume CT {ct_nv.shape} {ct_nv.dtype} != SimpleITK "
            f"{ct_sitk.shape} {ct_sitk.dtype}"
        )
        return 2
    print(f"check: netvolume CT == SimpleITK CT (shape {ct_nv.shape})")
    del ct_nv, ct_sitk

    last: list[StudyMeasurement] = []  # the latest measurement (what write_measurement writes)
    stage_seconds: list[dict[str, float]] = []  # provenance["seconds"] of every measure_study run
    write_times: list[float] = []
    outputs = tmp / "outputs"

    def measure() -> None:
        m = measure_study(study)
        last[:] = [m]
        stage_seconds.append(dict(m.provenance["seconds"]))

    def write() -> None:
        """write_measurement into a fresh folder; the removal afterwards is not timed."""
        out = outputs / f"out{len(write_times)}"
        t0 = time.perf_counter()
        write_measurement(last[0], out)
        write_times.append(time.perf_counter() - t0)
        shutil.rmtree(out)

    best = _best_of(
        [
            ("read", lambda: read_netvolume(study)),
            ("pydicom", lambda: read_pydicom(files)),
            ("sitk", lambda: read_sitk(ct_folder, ct_uid)),
            ("load_study", lambda: load_study(study)),
            ("measure_study", measure),
            ("write", write),
        ],
        repeat,
    )
    t_write = min(write_times[1:])  # the first was the warm-up
    sec = min(stage_seconds[1:], key=lambda d: d["total"])
    t_read = best["read"]
    t_measure = best["measure_study"]
    t_whole = t_measure + t_write
    rest = sec["total"] - sec["segmentation"] - sec["measurement"]

    rows: list[tuple[str, float]] = [
        ("read: netvolume scan + load CT + load_activity PET (baseline)", t_read),
        (f"  library: pydicom dcmread + pixel_array, {len(files)} files", best["pydicom"]),
        (
            f"  library: SimpleITK ImageSeriesReader, CT ({ct_series.num_images} files)",
            best["sitk"],
        ),
        ("measure_study, end to end", t_measure),
        ("  stage: load + rest (total - segmentation - measurement)", rest),
        ("  stage: segmentation (liver, spleen, lesions)", sec["segmentation"]),
        ("  stage: measurement (axes, stats, references, uptake)", sec["measurement"]),
        ("  for comparison: load_study (scan, choose, CT + PET + SUV)", best["load_study"]),
        ("write_measurement (csv, json, NIfTI, 2 SEGs)", t_write),
        ("whole measurement: measure_study + write_measurement", t_whole),
    ]
    print()
    print(
        f"best of {repeat} after 1 warm-up (page cache warm); stages from the fastest "
        f"measure_study run ({len(last[0].lesions)} lesions)"
    )
    print(f"{'stage':66s} {'seconds':>8s} {'x read':>7s}")
    for name, seconds in rows:
        print(f"{name:66s} {seconds:8.2f} {seconds / t_read:7.2f}")
    ok = t_whole <= TARGET_X_READ * t_read
    print()
    print(
        f"target (issue 7): whole measurement <= {TARGET_X_READ:.0f} x read: "
        f"{t_whole / t_read:.2f} x ({t_whole:.2f} s vs {TARGET_X_READ * t_read:.2f} s): "
        f"{'met' if ok else 'MISSED'}"
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

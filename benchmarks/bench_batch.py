"""Benchmark ``netvolume run`` on 8 full-size phantom studies: workers, store and report.

The export is 4 phantom patients x 2 PET/CT visits at full size (512 x 512 x 300 CT and its
Ga-68 PET per visit, ``PhantomSettings(patients=4, timepoints=2, seed=--seed,
size="full")``), generated in a temporary folder, or an existing export (``--export``).
Timed in one run, each into a fresh output folder (so nothing is skipped):

bare loop (the baseline)
    ``measure_study`` + ``write_measurement`` of each study in turn, in this process: what
    a user's own script would do, with no store, no assessment, no report.
run --jobs 1, run --jobs 2
    ``netvolume.batch.run_batch`` end to end (discovery, hashing, measurement, key
    images, assessment over time, SR, store, eligibility, tables, report).

Reported: wall seconds, studies per minute, the scaling of ``--jobs 2`` over ``--jobs 1``
(target >= 1.8 on 2 cores), and the overhead of the store and the report (the
coordinator's own time: discovery, file hashes, store transactions, eligibility, tables
and HTML report; plus the key images) relative to the measurement (the workers' time in
measure, write, assess and SR), target < 10 %.

Usage::

    python benchmarks/bench_batch.py [--export DIR] [--seed S] [--no-baseline]

Exit status: 0 when both targets are met, 1 otherwise.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any


def _cores() -> int:
    return len(os.sched_getaffinity(0))


def bare_loop(export: Path, out: Path) -> float:
    """Every study measured and written in turn, in this process; seconds."""
    from netvolume.batch.discover import discover
    from netvolume.measure import measure_study, write_measurement

    found = discover(export)
    folders = sorted(
        {
            str(Path(os.path.commonpath([str(Path(f.path).parent) for f in s.files])))
            for p in found.patients.values()
            for s in p.studies.values()
            if s.has_images
        }
    )
    start = time.perf_counter()
    for i, folder in enumerate(folders):
        write_measurement(measure_study(folder), out / f"s{i}")
    return time.perf_counter() - start


def batch(export: Path, out: Path, jobs: int) -> tuple[float, Any]:
    """One ``run_batch`` into a fresh folder; (seconds, result)."""
    from netvolume.batch import BatchSettings, run_batch

    start = time.perf_counter()
    result = run_batch(export, out, settings=BatchSettings(jobs=jobs))
    seconds = time.perf_counter() - start
    if not result.ok:
        raise SystemExit(f"bench_batch: the run failed: {result.failures}")
    return seconds, result


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; print the table; return the exit status."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--export", type=Path, help="an existing export (default: generated)")
    parser.add_argument("--seed", type=int, default=11, help="phantom seed (default 11)")
    parser.add_argument("--no-baseline", action="store_true", help="skip the bare loop")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="bench_batch_") as tmpdir:
        tmp = Path(tmpdir)
        export = args.export
        if export is None:
            from netvolume.phantom import PhantomSettings, generate_cohort

            export = tmp / "export"
            t = time.perf_counter()
            generate_cohort(
                export, PhantomSettings(patients=4, timepoints=2, seed=args.seed, size="full")
            )
            print(f"generated 4 patients x 2 full-size studies in {time.perf_counter() - t:.0f} s")
        from netvolume.batch.discover import discover

        n = discover(export).num_studies
        # warm-up: numba's compilation cache (the workers load it) and the page cache
        from netvolume.measure import measure_study

        first = next(iter(discover(export).patients.values()))
        study = next(iter(first.studies.values()))
        measure_study(os.path.commonpath([str(Path(f.path).parent) for f in study.files]))
        for f in export.rglob("*.dcm"):
            f.read_bytes()

        rows: list[tuple[str, float]] = []
        if not args.no_baseline:
            rows.append(("bare loop (measure + write, 1 process)", bare_loop(export, tmp / "bare")))
            shutil.rmtree(tmp / "bare")
        t1, r1 = batch(export, tmp / "j1", 1)
        rows.append(("netvolume run --jobs 1", t1))
        t2, r2 = batch(export, tmp / "j2", 2)
        rows.append(("netvolume run --jobs 2", t2))

    print(
        f"\n{n} full-size studies, {platform.machine()}, {_cores()} cores, "
        f"Python {platform.python_version()}\n"
    )
    print(f"| {'what':<42} | {'seconds':>8} | {'studies/min':>11} |")
    print(f"|{'-' * 44}|{'-' * 10}|{'-' * 13}|")
    for name, seconds in rows:
        print(f"| {name:<42} | {seconds:8.1f} | {60.0 * n / seconds:11.2f} |")
    scaling = t1 / t2
    print()
    for label, r in (("--jobs 1", r1), ("--jobs 2", r2)):
        tm = r.timings
        work = sum(tm.get(k, 0.0) for k in ("measure_s", "write_s", "assess_s", "sr_s"))
        overhead = tm.get("coordinator_s", 0.0) + tm.get("key_images_s", 0.0)
        print(
            f"{label}: workers measure {tm.get('measure_s', 0):.1f} s, write "
            f"{tm.get('write_s', 0):.1f} s, assess {tm.get('assess_s', 0):.1f} s, SR "
            f"{tm.get('sr_s', 0):.1f} s, key images {tm.get('key_images_s', 0):.1f} s; "
            f"coordinator (discovery, hashes, store, eligibility, tables, report) "
            f"{tm.get('coordinator_s', 0):.1f} s; overhead {100 * overhead / work:.1f} % "
            "of the measurement"
        )
    tm = r2.timings
    work = sum(tm.get(k, 0.0) for k in ("measure_s", "write_s", "assess_s", "sr_s"))
    overhead_pct = 100 * (tm.get("coordinator_s", 0.0) + tm.get("key_images_s", 0.0)) / work
    ok_scaling = scaling >= 1.8
    ok_overhead = overhead_pct < 10.0
    print(
        f"\nscaling --jobs 2 / --jobs 1: {scaling:.2f}x (target >= 1.8: "
        f"{'met' if ok_scaling else 'MISSED'}); store + report overhead {overhead_pct:.1f} % "
        f"(target < 10 %: {'met' if ok_overhead else 'MISSED'})"
    )
    return 0 if ok_scaling and ok_overhead else 1


if __name__ == "__main__":
    sys.exit(main())

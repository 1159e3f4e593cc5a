"""Phantom generation time: one full-size study (512 x 512 x 300 CT + PET) under a minute.

Prints a table of the stages (patient model, CT rasterisation, PET rasterisation + PSF,
DICOM and truth writing as a whole study) and the end-to-end time of
``generate_cohort`` for one patient and one time point at each size. There is no other
library that generates this phantom, so the reference row is the floor every generator
pays: ``numpy.random.Generator.standard_normal`` filling the CT array with noise, plus
writing the same number of bytes with ``pydicom``.

Usage::

    python benchmarks/bench_phantom.py [--size full|small] [--repeat N]

Exit code 0 when the full-size study is generated in under 60 s, 1 otherwise.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from netvolume.io.dicom_write import write_series
from netvolume.phantom import PhantomSettings, build_patient, generate_cohort
from netvolume.phantom._render import Pose
from netvolume.phantom._study import SCANNERS, render_ct, render_pet_suv

TARGET_S = 60.0


def _best(fn, repeat: int) -> float:  # type: ignore[no-untyped-def]
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", choices=("full", "small"), default="full")
    parser.add_argument("--repeat", type=int, default=2)
    args = parser.parse_args(argv)
    scanner = SCANNERS[args.size][0]
    pose = Pose((0.0, 0.0, -520.0), 0.01)
    rows: list[tuple[str, float]] = []

    rows.append(
        ("patient model (layout, lesions)", _best(lambda: build_patient(1, 0, 1), args.repeat))
    )
    model = build_patient(1, 0, 1)
    ct = scanner.ct_grid(-520.0)
    pet = scanner.pet_grid(-520.0)
    rng = np.random.default_rng(0)
    rows.append(
        (
            f"CT render {ct.shape} (+ noise, labels)",
            _best(lambda: render_ct(model, 0, ct, pose, 15.0, rng), args.repeat),
        )
    )
    rows.append(
        (
            f"PET render {pet.shape} (2x fine grid, PSF)",
            _best(lambda: render_pet_suv(model, 0, pet, pose, 6.5), args.repeat),
        )
    )

    with tempfile.TemporaryDirectory() as tmp:

        def whole() -> None:
            out = Path(tmp) / f"c{time.perf_counter_ns()}"
            generate_cohort(out, PhantomSettings(patients=1, timepoints=1, seed=1, size=args.size))

        total = _best(whole, args.repeat)

        def floor() -> None:
            noise = rng.standard_normal(ct.shape, dtype=np.float32)
            arr = (noise * 15).astype(np.int16)
            write_series(Path(tmp) / f"f{time.perf_counter_ns()}", arr, spacing_mm=ct.spacing_mm)

        reference = _best(floor, args.repeat)
    rows.append((f"whole study ({args.size}): CT + PET DICOM, truth, NIfTI", total))
    rows.append(("reference floor: noise array + pydicom write of the CT", reference))

    print(f"phantom generation, size {args.size}, best of {args.repeat}, {os.cpu_count()} cores")
    print(f"{'stage':58s} {'seconds':>8s}")
    for name, seconds in rows:
        print(f"{name:58s} {seconds:8.2f}")
    print(f"{'whole study / reference floor':58s} {total / reference:7.2f}x")
    ok = args.size != "full" or total < TARGET_S
    print(f"target: full-size study < {TARGET_S:.0f} s: {'met' if ok else 'MISSED'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

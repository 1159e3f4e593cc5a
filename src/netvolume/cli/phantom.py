"""``netvolume phantom -o DIR``: generate a synthetic NET PET/CT cohort with known truth."""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any


def add_parser(sub: Any) -> None:
    """Register the ``phantom`` command."""
    p = sub.add_parser(
        "phantom",
        help="generate synthetic CT + Ga-68 PET studies with known truth",
        description="Write a cohort of synthetic neuroendocrine-tumour patients: per patient "
        "and time point a CT Image Storage and a PET Image Storage series (Ga-68 DOTATATE, "
        "Bq/mL with the full radiopharmaceutical sequence), truth.json (lesions, volumes, "
        "RECIST axes, Krenning grade, RECIST response), truth label maps on the CT grid, "
        "and clinical.csv. The same seed gives the same bytes.",
    )
    p.add_argument("-o", "--output", required=True, metavar="DIR", help="cohort folder to write")
    p.add_argument("--patients", type=int, default=4, metavar="N", help="patients (default 4)")
    p.add_argument(
        "--timepoints", type=int, default=3, metavar="K", help="time points per patient (default 3)"
    )
    p.add_argument("--seed", type=int, default=2026, metavar="S", help="random seed (default 2026)")
    p.add_argument(
        "--size",
        choices=("small", "full"),
        default="small",
        help="small: 120x120 CT, 5 mm slices (default); full: 512x512x300 CT, 1.25 mm slices",
    )
    p.add_argument(
        "--no-scanner-change",
        dest="scanner_change",
        action="store_false",
        help="keep every time point on scanner A (by default patients 2, 6, ... change "
        "scanner, hence spacing, from the second time point)",
    )
    p.add_argument("--overwrite", action="store_true", help="replace DIR if it exists")
    p.add_argument("-q", "--quiet", action="store_true", help="print nothing on success")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Execute ``phantom``; return the exit code."""
    from netvolume.phantom import PhantomSettings, generate_cohort

    try:
        settings = PhantomSettings(
            patients=args.patients,
            timepoints=args.timepoints,
            seed=args.seed,
            size=args.size,
            scanner_change=args.scanner_change,
        )
    except ValueError as exc:
        print(f"netvolume: error: {exc}", file=sys.stderr)
        return 2
    start = time.perf_counter()

    def progress(message: str) -> None:
        if not args.quiet:
            print(f"[{time.perf_counter() - start:6.1f} s] {message}", file=sys.stderr)

    records = generate_cohort(args.output, settings, overwrite=args.overwrite, progress=progress)
    if not args.quiet:
        print(f"{len(records)} studies of {settings.patients} patients written to {args.output}")
    return 0

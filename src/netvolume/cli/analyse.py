"""``netvolume analyse``: run one seed protocol's pipeline on a cohort.

``netvolume analyse --pipeline NAME [COHORT_DIR] --clinical FACTS.csv [--imaging DIR] -o OUT``
measures and assesses every patient folder of COHORT_DIR (or reuses ``netvolume assess``
outputs from --imaging), evaluates the protocol's eligibility, and runs its planned
analysis. Exit code 1 when any patient's imaging failed (the others are still analysed).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

from netvolume.errors import EXIT_CODES


def add_parser(sub: Any) -> None:
    """Register the ``analyse`` command."""
    from netvolume.analysis.plans import PLANS, POPULATIONS

    p = sub.add_parser(
        "analyse",
        help="run a protocol's pipeline: imaging, eligibility and its planned analysis",
        description="Run one seed protocol's pipeline on a cohort: measure and assess each "
        "patient folder of COHORT_DIR (or use --imaging), evaluate the protocol's "
        "eligibility (criteria.csv, summary.csv) and run its planned analysis "
        "(analysis.json and tables). Pipelines: " + ", ".join(sorted(PLANS)) + ".",
    )
    p.add_argument(
        "cohort_dir",
        nargs="?",
        metavar="COHORT_DIR",
        help="folder of patient folders (one sub-folder per study)",
    )
    p.add_argument(
        "--pipeline",
        required=True,
        choices=sorted(PLANS),
        metavar="NAME",
        help="the pipeline (protocol) name",
    )
    p.add_argument(
        "--clinical",
        required=True,
        metavar="FACTS.csv",
        help="clinical facts of the cohort (CSV or JSON)",
    )
    p.add_argument(
        "--imaging",
        metavar="DIR",
        help="existing `netvolume assess` outputs to use instead of COHORT_DIR",
    )
    p.add_argument("-o", "--output", required=True, metavar="OUT", help="output folder")
    p.add_argument(
        "--population",
        choices=POPULATIONS,
        default="not_excluded",
        help="patients analysed: not_excluded (default: eligible or "
        "undetermined), eligible, or all",
    )
    p.add_argument(
        "--no-register", action="store_true", help="do not register follow-ups to the baseline"
    )
    p.add_argument(
        "--overwrite", action="store_true", help="replace OUT if it is an analyse output"
    )
    p.add_argument("-q", "--quiet", action="store_true", help="print nothing on success")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Execute ``analyse``; return the exit code."""
    import sys

    from netvolume.analysis.runner import run_pipeline

    if (args.cohort_dir is None) == (args.imaging is None):
        print("netvolume: error: give COHORT_DIR or --imaging DIR (one of them)", file=sys.stderr)
        return EXIT_CODES["usage_error"]
    start = time.perf_counter()
    result = run_pipeline(
        args.pipeline,
        clinical=args.clinical,
        out=args.output,
        cohort_dir=args.cohort_dir,
        imaging_dir=args.imaging,
        population=args.population,
        overwrite=args.overwrite,
        register=not args.no_register,
    )
    if not args.quiet:
        for pid, verdict in result.verdicts.items():
            print(f"{pid}: {verdict}")
        for pid, why in result.failures.items():
            print(f"{pid}: imaging FAILED: {why}", file=sys.stderr)
        print(
            f"{args.pipeline}: {len(result.analysed)} patient(s) analysed; written to "
            f"{Path(args.output)} in {time.perf_counter() - start:.1f} s"
        )
    return EXIT_CODES["data_error"] if result.failures else 0

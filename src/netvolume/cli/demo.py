"""``netvolume demo -o OUT``: the whole pipeline on the bundled sample cohort.

Runs ``netvolume run data/sample_dicom -o OUT`` with the sample's ``clinical.csv`` (4
synthetic patients x 3 PET/CT visits) and prints where the report is.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from netvolume.errors import EXIT_CODES


def sample_dir() -> Path | None:
    """The bundled sample cohort (``data/sample_dicom`` of the source checkout), or None."""
    here = Path(__file__).resolve()
    for parent in here.parents:
        candidate = parent / "data" / "sample_dicom"
        if (candidate / "cohort.json").is_file():
            return candidate
    return None


def add_parser(sub: Any) -> None:
    """Register the ``demo`` command."""
    from netvolume.cli.run import add_batch_options

    p = sub.add_parser(
        "demo",
        help="run the whole pipeline on the bundled sample cohort and print the report path",
        description="Run netvolume run on data/sample_dicom (4 synthetic NET patients x 3 "
        "PET/CT visits, with clinical.csv): measurement, assessment over time, DICOM SEG "
        "and SR, eligibility for the five seed protocols, tables and the HTML report.",
    )
    p.add_argument("-o", "--output", required=True, metavar="OUT", help="output folder")
    add_batch_options(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Execute ``demo``; return the exit code."""
    from netvolume.cli.run import execute

    sample = sample_dir()
    if sample is None:
        print(
            "netvolume: error: the bundled sample data/sample_dicom was not found (it ships "
            "with the source checkout, not the wheel) -> run from a clone of the repository, "
            "or use netvolume run EXPORT_DIR -o OUT",
            file=sys.stderr,
        )
        return EXIT_CODES["input_path_error"]
    code = execute(args, str(sample), str(sample / "clinical.csv"))
    report = Path(args.output) / "report" / "index.html"
    if report.is_file() and not args.json_lines:
        print(f"open the report: {report.resolve().as_uri()}")
    return code

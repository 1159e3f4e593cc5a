"""``netvolume assess``: the longitudinal engine on one patient's studies or on a table.

* ``netvolume assess PATIENT_DIR -o OUT``: a folder of one patient's time-point studies
  (DICOM study folders, or ``netvolume measure`` output folders); each study is
  measured (unless it already is), the follow-ups are registered to the baseline, the
  lesions tracked, then assessed.
* ``netvolume assess --measurements TABLE.csv -o OUT``: the engine alone on RECIST
  measurements made elsewhere (many patients).

Both write ``OUT/timepoints.csv`` and ``OUT/assessment.json``; with images also
``OUT/tracking.csv`` and ``OUT/studies/<name>/`` (the measurement of each study).
"""

from __future__ import annotations

import argparse
import datetime
import json
import sys
import time
from pathlib import Path
from typing import Any

from netvolume.errors import EXIT_CODES, AssessmentInputError, InputPathError


def add_parser(sub: Any) -> None:
    """Register the ``assess`` command."""
    p = sub.add_parser(
        "assess",
        help="assess a patient over time: tracking, RECIST 1.1, volumetric response, TGR",
        description="Assess one patient's time points (PATIENT_DIR: one sub-folder per "
        "study, DICOM or `netvolume measure` output) or many patients' measurements "
        "(--measurements TABLE.csv) by RECIST 1.1, with the volumetric response and the "
        "tumour growth rates; writes OUT/timepoints.csv, OUT/assessment.json and, with "
        "images, OUT/tracking.csv and OUT/studies/. Exit code 1 when any patient could "
        "not be assessed (the others are still written; see 'failures' in "
        "assessment.json).",
    )
    p.add_argument(
        "patient_dir", nargs="?", metavar="PATIENT_DIR", help="folder of one patient's studies"
    )
    p.add_argument("-o", "--output", required=True, metavar="OUT", help="output folder to write")
    p.add_argument(
        "--measurements",
        metavar="TABLE.csv",
        help="assess a table of measurements instead of images (see the README for its columns)",
    )
    p.add_argument(
        "--baseline-date",
        metavar="YYYY-MM-DD",
        help="the baseline scan of PATIENT_DIR (earlier scans are pre-baseline, used for "
        "TGR0); default: the first. In a table use its 'baseline' column.",
    )
    p.add_argument(
        "--matching",
        metavar="CSV",
        help="user lesion matching for PATIENT_DIR (columns study, lesion_id, tracking_id): "
        "overrides the automatic tracking for the lesions it lists",
    )
    p.add_argument(
        "--no-register",
        action="store_true",
        help="do not register follow-ups to the baseline (the studies share a frame of "
        "reference, or a --matching table gives every match)",
    )
    p.add_argument(
        "--set",
        action="append",
        metavar="NAME=VALUE",
        help="override a setting of RECIST (min_sd_days, confirm, ...), TGR, volumetric "
        "response or tracking (repeatable); an unknown name is a usage error (exit 2)",
    )
    p.add_argument(
        "--overwrite",
        action="store_true",
        help="replace OUT if it is a previous assess output (holds assessment.json)",
    )
    p.add_argument(
        "--json", action="store_true", help="print assessment.json instead of the summary"
    )
    p.add_argument("-q", "--quiet", action="store_true", help="print nothing on success")
    p.set_defaults(func=run)


def _usage(message: str) -> int:
    print(f"netvolume: error: {message}", file=sys.stderr)
    return EXIT_CODES["usage_error"]


def run(args: argparse.Namespace) -> int:
    """Execute ``assess``; return the exit code."""
    from netvolume.assess.course import AssessSettings
    from netvolume.longitudinal import assess_measurements, assess_patient_dir

    if (args.patient_dir is None) == (args.measurements is None):
        return _usage("give either PATIENT_DIR or --measurements TABLE.csv (one of them)")
    if args.measurements is not None and (args.baseline_date or args.matching or args.no_register):
        return _usage(
            "--baseline-date, --matching and --no-register apply to PATIENT_DIR only "
            "(a table marks its baseline with the 'baseline' column)"
        )
    try:
        settings = AssessSettings().with_overrides(args.set or [])
    except AssessmentInputError as exc:
        return _usage(str(exc))
    baseline = None
    if args.baseline_date:
        try:
            baseline = datetime.date.fromisoformat(args.baseline_date)
        except ValueError:
            return _usage(f"--baseline-date {args.baseline_date!r}: write YYYY-MM-DD")

    start = time.perf_counter()
    if args.measurements is not None:
        result = assess_measurements(
            args.measurements, args.output, settings=settings, overwrite=args.overwrite
        )
    else:
        folder = Path(args.patient_dir)
        if not folder.is_dir():
            raise InputPathError(
                "PATIENT_DIR is not a folder",
                files=[folder],
                hint="give the folder holding one sub-folder per study",
            )
        result = assess_patient_dir(
            folder,
            args.output,
            settings=settings,
            baseline_date=baseline,
            matching=args.matching,
            register=not args.no_register,
            overwrite=args.overwrite,
        )
    out = Path(args.output)
    if args.json:
        doc = json.loads((out / "assessment.json").read_text(encoding="utf-8"))
        print(json.dumps(doc, sort_keys=True, separators=(",", ":"), allow_nan=False))
    elif not args.quiet:
        for a in result.assessments:
            r = a.recist
            line = f"{a.patient_id}: {len(r.targets)} target(s), BOR {r.best_overall_response}"
            if r.pd_date is not None:
                line += f", PD {r.pd_date.isoformat()}"
            print(line)
        for pid, why in result.failures.items():
            print(f"{pid}: FAILED: {why}", file=sys.stderr)
        print(f"written to {out} in {time.perf_counter() - start:.1f} s")
    return EXIT_CODES["data_error"] if result.failures else 0

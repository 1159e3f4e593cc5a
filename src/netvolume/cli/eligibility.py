"""``netvolume eligibility``: who is eligible for a protocol, criterion by criterion.

``netvolume eligibility --protocol NAME --clinical FACTS.csv [--imaging OUT_DIR] -o OUT``
writes ``OUT/criteria.csv`` (one row per patient and criterion), ``OUT/summary.csv`` (one
verdict per patient) and ``OUT/eligibility.json`` (the same with provenance).
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from pathlib import Path
from typing import Any


def add_parser(sub: Any) -> None:
    """Register the ``eligibility`` command."""
    p = sub.add_parser(
        "eligibility",
        help="evaluate a trial protocol's criteria on a cohort",
        description="Evaluate every criterion of a protocol for every patient of a clinical "
        "facts table (CSV or JSON, schema: `netvolume protocols --schema`), with imaging "
        "facts from `netvolume assess` outputs; writes OUT/criteria.csv, OUT/summary.csv "
        "and OUT/eligibility.json.",
    )
    p.add_argument("--protocol", required=True, metavar="NAME", help="protocol name or .toml file")
    p.add_argument(
        "--clinical", required=True, metavar="FACTS.csv", help="clinical facts (CSV or JSON)"
    )
    p.add_argument(
        "--imaging",
        metavar="OUT_DIR",
        help="`netvolume assess` output folder, or a folder of them (one per patient, "
        "named by patient_id or by the clinical imaging_id)",
    )
    p.add_argument("-o", "--output", required=True, metavar="OUT", help="output folder")
    p.add_argument(
        "--overwrite", action="store_true", help="replace OUT if it is an eligibility output"
    )
    p.add_argument("-q", "--quiet", action="store_true", help="print nothing on success")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Execute ``eligibility``; return the exit code."""
    from netvolume.analysis.eligibility import run_eligibility, write_eligibility
    from netvolume.longitudinal._write import output_folder
    from netvolume.trials import load_protocol, read_clinical, read_imaging

    protocol = load_protocol(args.protocol)
    cohort = read_clinical(args.clinical)
    imaging = read_imaging(args.imaging) if args.imaging else None
    run_ = run_eligibility(protocol, cohort, imaging)
    with output_folder(args.output, overwrite=args.overwrite, marker="summary.csv") as tmp:
        write_eligibility(tmp, run_)
    if imaging is not None:
        used = set(run_.imaging_sources)
        unmatched = sorted(k for k in imaging if k not in used)
        if unmatched:
            print(
                f"netvolume: warning: imaging of {len(unmatched)} patient key(s) matched no "
                "clinical patient_id (give imaging_id in the clinical table)",
                file=sys.stderr,
            )
    if not args.quiet:
        counts = Counter(str(e.verdict) for e in run_.results)
        for e in run_.results:
            print(f"{e.patient_id}: {e.verdict} ({e.reason})")
        print(
            f"{protocol.name}: "
            + ", ".join(f"{counts[v]} {v}" for v in ("eligible", "not_eligible", "undetermined"))
            + f"; written to {Path(args.output)}"
        )
    return 0

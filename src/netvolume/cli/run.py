"""``netvolume run EXPORT_DIR -o OUT``: the main job over a whole export (resumable).

Exit code 0 when every study and patient succeeded, 1 when any failed (the others are
done, and the failures are listed at the end, in the store and in the report).
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from netvolume.errors import EXIT_CODES


def add_batch_options(p: argparse.ArgumentParser) -> None:
    """Options shared by ``run`` and ``demo``."""
    p.add_argument(
        "-j",
        "--jobs",
        type=int,
        metavar="N",
        help="worker processes on this machine (default: one per core)",
    )
    p.add_argument(
        "--scheduler",
        metavar="tcp://HOST:8786",
        help="run the studies on this Dask distributed cluster instead (its workers must "
        "see the export and OUT at the same paths)",
    )
    p.add_argument(
        "--set",
        action="append",
        metavar="NAME=VALUE",
        help="override a measurement setting (as netvolume measure --set); changed settings "
        "redo the studies",
    )
    p.add_argument(
        "--register-pet",
        action="store_true",
        help="register each PET onto its CT when their frames of reference differ",
    )
    p.add_argument(
        "--no-register", action="store_true", help="do not register follow-ups to the baseline"
    )
    p.add_argument(
        "--keep-identifiers",
        action="store_true",
        help="store the real PatientID in the database (default: pseudonymous keys only)",
    )
    p.add_argument(
        "--pseudonym-key",
        metavar="FILE",
        help="file holding the pseudonym key (hex), to share patient keys between outputs",
    )
    p.add_argument("--no-report", action="store_true", help="do not write the HTML report")
    p.add_argument("--no-sr", action="store_true", help="do not write the DICOM SR per study")
    p.add_argument("--no-key-images", action="store_true", help="do not render key images")
    out = p.add_mutually_exclusive_group()
    out.add_argument("-q", "--quiet", action="store_true", help="print only failures")
    out.add_argument(
        "--json-lines",
        action="store_true",
        help="print every progress event as one JSON object per line on stdout",
    )


def add_parser(sub: Any) -> None:
    """Register the ``run`` command."""
    p = sub.add_parser(
        "run",
        help="the main job: measure, assess and report a whole DICOM export",
        description="Find every patient and time point of a DICOM export from its headers, "
        "measure each study (lesions.csv, study.json, NIfTI masks, DICOM SEG, TID 1500 SR, "
        "key images), assess each patient over time, evaluate the seed protocols when "
        "clinical facts are given (--clinical, or clinical.csv at the export root), and "
        "write the cohort store OUT/netvolume.sqlite, OUT/tables (CSV and Parquet) and the "
        "report OUT/report/index.html. Re-running does only what changed; a killed run is "
        "finished by running the same command again.",
    )
    p.add_argument("export_dir", metavar="EXPORT_DIR", help="the DICOM export (any layout)")
    p.add_argument("-o", "--output", required=True, metavar="OUT", help="output folder")
    p.add_argument(
        "--clinical",
        metavar="FACTS.csv",
        help="clinical facts (CSV or JSON; default: clinical.csv / clinical.json at the "
        "export root, if present)",
    )
    add_batch_options(p)
    p.set_defaults(func=run)


def settings_from(args: argparse.Namespace, clinical: str | None) -> Any:
    """BatchSettings from the parsed options; None (after printing) on a bad --set."""
    from netvolume.batch import BatchSettings
    from netvolume.measure._settings import MeasureSettings, SettingsError

    pairs = list(args.set or [])
    try:
        MeasureSettings().with_overrides(pairs)
    except SettingsError as exc:
        print(f"netvolume: error: {exc}", file=sys.stderr)
        return None
    overrides = dict(p.split("=", 1) for p in pairs)
    return BatchSettings(
        jobs=args.jobs,
        scheduler=args.scheduler,
        clinical=clinical,
        measure_settings=overrides,
        register_pet=args.register_pet,
        register_followups=not args.no_register,
        keep_identifiers=args.keep_identifiers,
        pseudonym_key_file=args.pseudonym_key,
        key_images=not args.no_key_images,
        sr=not args.no_sr,
        report=not args.no_report,
    )


def execute(args: argparse.Namespace, export_dir: str, clinical: str | None) -> int:
    """Run the batch with the reporter the options ask for; print the summary."""
    from netvolume.batch import run_batch
    from netvolume.batch.progress import make_reporter

    if args.jobs is not None and args.jobs < 1:
        print(f"netvolume: error: --jobs must be at least 1 (got {args.jobs})", file=sys.stderr)
        return EXIT_CODES["usage_error"]
    settings = settings_from(args, clinical)
    if settings is None:
        return EXIT_CODES["usage_error"]
    reporter = make_reporter(quiet=args.quiet, json_lines=args.json_lines)
    try:
        result = run_batch(export_dir, args.output, settings=settings, on_event=reporter)
    finally:
        close = getattr(reporter, "close", None)
        if close is not None:
            close()
    if not args.json_lines:
        stream = sys.stderr if args.quiet else sys.stdout
        if not args.quiet:
            c = result.counts
            print(
                "studies: "
                + ", ".join(f"{v} {k}" for k, v in c.get("study", {}).items() if v)
                + "; patients: "
                + ", ".join(f"{v} {k}" for k, v in c.get("patient", {}).items() if v)
                + f"; {result.seconds:.1f} s"
            )
        for f in result.failures:
            print(
                f"FAILED {f['stage']} {f['item']}: {f['error_type']}: {f['message']}",
                file=stream if args.quiet else sys.stderr,
            )
        if not args.quiet:
            if result.report:
                print(f"report: {result.report}")
            print(f"database: {result.out / 'netvolume.sqlite'}")
    return 0 if result.ok else EXIT_CODES["data_error"]


def run(args: argparse.Namespace) -> int:
    """Execute ``run``; return the exit code."""
    return execute(args, args.export_dir, args.clinical)

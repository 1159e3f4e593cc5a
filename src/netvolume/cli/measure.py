"""``netvolume measure STUDY_DIR -o OUT``: measure one PET/CT (or CT-only) study.

Finds the liver, the spleen and the lesions (or takes imported masks, which take
precedence), measures every lesion (volume, RECIST axes, CT, SUV, Krenning grade) and the
organs, and writes ``OUT/lesions.csv``, ``OUT/study.json`` and the masks as NIfTI and
DICOM SEG (:func:`netvolume.measure._write.write_measurement`).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Any

from netvolume.errors import EXIT_CODES, InputPathError

if TYPE_CHECKING:
    from netvolume.measure._records import StudyMeasurement

logger = logging.getLogger(__name__)


def add_parser(sub: Any) -> None:
    """Register the ``measure`` command."""
    p = sub.add_parser(
        "measure",
        help="measure one study: liver, spleen, lesions (volume, RECIST axes, SUV, Krenning)",
        description="Measure the CT (and Ga-68 PET, when present) of one study: segment the "
        "liver, the spleen and the lesions, or import any of these masks (an imported mask "
        "takes precedence), and write OUT/lesions.csv (one row per lesion), OUT/study.json "
        "(study facts, settings, provenance, notes) and the masks as NIfTI on the "
        "measurement grid (OUT/masks/liver.nii.gz, spleen.nii.gz, lesions.nii.gz with value "
        "= lesion_id) and as DICOM SEG (OUT/masks/organs.seg.dcm, lesions.seg.dcm). A study "
        "without PET is measured too (SUV columns empty).",
    )
    p.add_argument("study_dir", metavar="STUDY_DIR", help="folder with the study's DICOM files")
    p.add_argument("-o", "--output", required=True, metavar="OUT", help="output folder to write")
    p.add_argument(
        "--json",
        action="store_true",
        help="print study.json (one compact JSON document) instead of the summary",
    )
    p.add_argument(
        "--overwrite",
        action="store_true",
        help="replace OUT if it is a previous measure output (holds a study.json) or empty",
    )
    p.add_argument(
        "--ct-series", metavar="UID", help="the CT series (stack) to measure, when several"
    )
    p.add_argument(
        "--pet-series", metavar="UID", help="the PET series (stack) to measure, when several"
    )
    p.add_argument(
        "--liver-mask",
        metavar="PATH",
        help="imported liver mask (NIfTI / NRRD label map, DICOM SEG or RTSTRUCT)",
    )
    p.add_argument("--spleen-mask", metavar="PATH", help="imported spleen mask (as --liver-mask)")
    p.add_argument(
        "--lesion-mask",
        metavar="PATH",
        help="imported lesion mask (NIfTI / NRRD label map, DICOM SEG or RTSTRUCT)",
    )
    p.add_argument(
        "--lesion-roi",
        action="append",
        metavar="NAME",
        help="structure(s) of --lesion-mask that are lesions (repeat for several; default: all)",
    )
    p.add_argument(
        "--totalseg",
        metavar="DIR",
        help="TotalSegmentator output folder (its liver and spleen are imported)",
    )
    p.add_argument(
        "--register",
        action="store_true",
        help="register the PET onto the CT before measuring (when they were not acquired together)",
    )
    p.add_argument(
        "--set",
        action="append",
        metavar="NAME=VALUE",
        help="override a measurement setting (repeatable; tuples as LOW,HIGH); an unknown "
        "name or bad value is a usage error (exit 2) listing the known settings",
    )
    p.add_argument("-q", "--quiet", action="store_true", help="print nothing on success")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Execute ``measure``; return the exit code."""
    # imported here: every command builds the parser, only this one needs the measurement
    from netvolume.measure._settings import MeasureSettings, SettingsError
    from netvolume.measure._write import check_output_folder, write_measurement

    try:
        settings = MeasureSettings().with_overrides(args.set or [])
    except SettingsError as exc:
        print(f"netvolume: error: {exc}", file=sys.stderr)
        return EXIT_CODES["usage_error"]
    study = Path(args.study_dir)
    if not study.is_dir():
        raise InputPathError(
            f"study folder not found: {study}"
            if not study.exists()
            else f"STUDY_DIR must be a folder of DICOM files; got a file: {study}",
            files=[study],
            hint="give the folder holding the study's CT (and PET) series",
        )
    # refuse an existing OUT now, not after the measurement
    out = check_output_folder(args.output, overwrite=args.overwrite)

    from netvolume.measure import measure_study

    start = time.perf_counter()
    m = measure_study(
        args.study_dir,
        settings=settings,
        ct_series=args.ct_series,
        pet_series=args.pet_series,
        liver_mask=args.liver_mask,
        spleen_mask=args.spleen_mask,
        lesion_mask=args.lesion_mask,
        lesion_roi=args.lesion_roi,
        totalseg=args.totalseg,
        register=args.register,
    )
    for note in m.notes:
        logger.info("%s", note)
    write_measurement(m, out, overwrite=args.overwrite)
    if args.json:
        record = json.loads((out / "study.json").read_text(encoding="utf-8"))
        print(json.dumps(record, sort_keys=True, separators=(",", ":"), allow_nan=False))
    elif not args.quiet:
        print(summary(m, out, seconds=time.perf_counter() - start))
    return 0


def _ml(value: float | None) -> str:
    return "not segmented" if value is None else f"{value:.1f} mL"


def summary(m: StudyMeasurement, out: Path, *, seconds: float | None = None) -> str:
    """A few human-readable lines: lesions by organ, organ volumes, LTB, output folder."""
    by_organ = Counter(les.organ for les in m.lesions)
    organs = ", ".join(f"{organ} {n}" for organ, n in sorted(by_organ.items()))
    measurable = sum(1 for les in m.lesions if les.measurable)
    lines = [
        f"{len(m.lesions)} lesion(s)" + (f" ({organs}), {measurable} measurable" if organs else ""),
        f"liver {_ml(m.liver_volume_ml)}, spleen {_ml(m.spleen_volume_ml)}",
    ]
    if m.liver_tumour_burden_pct is not None:
        lines.append(
            f"liver tumour burden {m.liver_tumour_burden_pct:.2f} % "
            f"({_ml(m.liver_tumour_volume_ml)})"
        )
    lines.append("PET: " + ("none (CT only)" if m.pet_series_uid is None else "measured"))
    if m.qc_flags:
        lines.append(f"QC flags: {', '.join(m.qc_flags)}")
    if m.notes:
        lines.append(f"{len(m.notes)} note(s) in study.json")
    took = f" in {seconds:.1f} s" if seconds is not None else ""
    lines.append(f"written to {out}{took}")
    return "\n".join(lines)

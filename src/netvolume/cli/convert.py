"""``netvolume convert DIR -o OUT.nii.gz [--series-uid UID] [--suv NORM]``: one series to NIfTI."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path
from typing import Any

from netvolume.errors import EXIT_CODES
from netvolume.io._atomic import atomic_path
from netvolume.io.dicom import load, scan
from netvolume.io.nifti import write_nifti
from netvolume.io.pet import NORMALISATIONS, REFERENCE_TIME_RULES, SUVOptions, load_suv

logger = logging.getLogger(__name__)


def add_parser(sub: Any) -> None:
    """Register the ``convert`` command."""
    p = sub.add_parser(
        "convert",
        help="convert one DICOM series to NIfTI (RAS affine in the file)",
        description="Load one image series of DIR (ordered along the slice normal, "
        "rescaled, geometry checked) and write it as NIfTI. A DIR with several image series "
        "needs --series-uid (run `netvolume scan DIR` to list them). With --suv a PET or "
        "quantitative SPECT series is written as SUV, with a JSON sidecar (OUT.json) "
        "listing every input of the SUV factor.",
    )
    p.add_argument("folder", metavar="DIR", help="folder with the DICOM files")
    p.add_argument(
        "-o", "--output", required=True, metavar="OUT.nii.gz", help="output file (.nii or .nii.gz)"
    )
    p.add_argument(
        "--series-uid",
        metavar="UID",
        help="SeriesInstanceUID, or UID#N for one stack of a split series",
    )
    p.add_argument(
        "--allow-single-slice",
        action="store_true",
        help="accept a one-slice series (slice spacing from SliceThickness)",
    )
    p.add_argument(
        "--no-tilt-correction",
        action="store_true",
        help="fail on gantry-tilted series instead of resampling them",
    )
    g = p.add_argument_group("PET / SPECT quantification")
    g.add_argument(
        "--suv",
        choices=NORMALISATIONS,
        metavar="{" + ",".join(NORMALISATIONS) + "}",
        help="write SUV normalised by body weight, lean body mass (James or "
        "Janmahasatian), body surface area or ideal body weight",
    )
    g.add_argument(
        "--reference-time",
        choices=REFERENCE_TIME_RULES,
        default="qiba-frame",
        help="how the decay reference time is chosen (default: qiba-frame)",
    )
    g.add_argument("--weight-kg", type=float, help="override PatientWeight (kg)")
    g.add_argument("--height-m", type=float, help="override PatientSize (m)")
    g.add_argument("--sex", choices=("M", "F", "O"), help="override PatientSex")
    g.add_argument("--dose-bq", type=float, help="override RadionuclideTotalDose (Bq)")
    g.add_argument(
        "--injection-datetime",
        metavar="YYYY-MM-DDTHH:MM:SS",
        help="override the radiopharmaceutical administration date and time",
    )
    g.add_argument("--half-life-s", type=float, help="override RadionuclideHalfLife (s)")
    g.add_argument("--units", help="override Units (0054,1001), e.g. BQML")
    g.add_argument(
        "--accept-corrections",
        metavar="REASON",
        help="accept images whose CorrectedImage lacks ATTN or DECY (the reason is recorded)",
    )
    p.set_defaults(func=run)


def suv_options(args: argparse.Namespace) -> SUVOptions:
    """The :class:`SUVOptions` given on the command line (ValueError for bad values)."""
    return SUVOptions(
        reference_time=args.reference_time,
        weight_kg=args.weight_kg,
        height_m=args.height_m,
        sex=args.sex,
        dose_bq=args.dose_bq,
        injection_datetime=args.injection_datetime,
        half_life_s=args.half_life_s,
        units=args.units,
        accept_corrections=args.accept_corrections,
    )


def sidecar_path(output: str | Path) -> Path:
    """``OUT.nii.gz`` -> ``OUT.json`` (the same for ``.nii``)."""
    out = Path(output)
    name = out.name
    for ext in (".nii.gz", ".nii"):
        if name.lower().endswith(ext):
            name = name[: -len(ext)]
            break
    return out.with_name(name + ".json")


def run(args: argparse.Namespace) -> int:
    """Execute ``convert``; return the exit code."""
    load_options = {
        "allow_single_slice": args.allow_single_slice,
        "correct_tilt": not args.no_tilt_correction,
    }
    options = None
    if args.suv:
        try:
            options = suv_options(args)
        except ValueError as exc:
            print(f"netvolume: error: {exc}", file=sys.stderr)
            return EXIT_CODES["usage_error"]
    catalogue = scan(args.folder)
    series = catalogue.select(args.series_uid)
    if args.suv:
        volume = load_suv(series, args.suv, options=options, load_options=load_options)
        record = {"series_uid": series.uid, "provenance": volume.provenance.to_dict()}
        # the sidecar is renamed into place only after the NIfTI is: never one without it
        with atomic_path(sidecar_path(args.output)) as tmp:
            tmp.write_text(json.dumps(record, indent=2, default=str) + "\n")
            out = write_nifti(volume, args.output)
    else:
        volume = load(series, **load_options)
        out = write_nifti(volume, args.output)
    # the last note of an SUV volume is its derivation, not something to warn about
    notes = volume.provenance.notes[:-1] if args.suv else volume.provenance.notes
    for note in notes:
        logger.warning("%s", note)
    sp = " x ".join(f"{v:.4g}" for v in volume.spacing)
    print(
        f"wrote {out}: {volume.shape} {volume.array.dtype}, spacing {sp} mm "
        f"(slice, row, column), {volume.modality} {volume.units}"
    )
    if args.suv:
        fac = volume.provenance.settings["suv"]
        factor = (
            f"{fac['factor']:.6g}"
            if fac["factor"] is not None
            else f"{fac['factor_min']:.6g}..{fac['factor_max']:.6g} (per slice)"
        )
        print(
            f"{fac['quantity']} ({fac['unit']}) = value x {factor} [{fac['method']}]; "
            f"inputs in {sidecar_path(out)}"
        )
    return 0

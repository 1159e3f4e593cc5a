"""``netvolume convert DIR -o OUT.nii.gz [--series-uid UID]``: one series to NIfTI."""

from __future__ import annotations

import argparse
import logging
from typing import Any

from netvolume.io.dicom import load, scan
from netvolume.io.nifti import write_nifti

logger = logging.getLogger(__name__)


def add_parser(sub: Any) -> None:
    """Register the ``convert`` command."""
    p = sub.add_parser(
        "convert",
        help="convert one DICOM series to NIfTI (RAS affine in the file)",
        description="Load one image series of DIR (ordered along the slice normal, "
        "rescaled, geometry checked) and write it as NIfTI. A DIR with several image series "
        "needs --series-uid (run `netvolume scan DIR` to list them).",
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
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Execute ``convert``; return the exit code."""
    catalogue = scan(args.folder)
    series = catalogue.select(args.series_uid)
    volume = load(
        series,
        allow_single_slice=args.allow_single_slice,
        correct_tilt=not args.no_tilt_correction,
    )
    out = write_nifti(volume, args.output)
    for note in volume.provenance.notes:
        logger.warning("%s", note)
    sp = " x ".join(f"{v:.4g}" for v in volume.spacing)
    print(
        f"wrote {out}: {volume.shape} {volume.array.dtype}, spacing {sp} mm "
        f"(slice, row, column), {volume.modality} {volume.units}"
    )
    return 0

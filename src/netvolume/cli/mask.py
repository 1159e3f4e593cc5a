"""``netvolume mask SRC --reference IMAGE_DIR [--roi NAME] -o OUT.nii.gz``: a mask onto an image.

SRC is a NIfTI / NRRD label map, a folder of them (TotalSegmentator), a DICOM SEG or an
RTSTRUCT (or a folder holding one). The labels are written on the reference image's grid
as NIfTI with a JSON sidecar (``OUT.json``: label names, voxel counts, volumes in mL,
provenance and every note), or as a DICOM SEG when OUT ends in ``.dcm``.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path
from typing import Any

import numpy as np

from netvolume.cli.convert import sidecar_path
from netvolume.errors import EXIT_CODES
from netvolume.io._atomic import atomic_path
from netvolume.io.dicom import load, scan
from netvolume.io.masks import list_structures, read
from netvolume.io.nifti import write_nifti
from netvolume.volume import Volume

logger = logging.getLogger(__name__)


def add_parser(sub: Any) -> None:
    """Register the ``mask`` command."""
    p = sub.add_parser(
        "mask",
        help="read a segmentation (NIfTI, NRRD, TotalSegmentator, DICOM SEG, RTSTRUCT) onto "
        "an image grid",
        description="Read the mask SRC onto the grid of the image series in IMAGE_DIR, "
        "matched by patient coordinates (never by array index), and write it as a label map: "
        "NIfTI with a JSON sidecar (OUT.json: label names, voxels, mL, provenance), or a "
        "DICOM SEG referencing the image when OUT ends in .dcm. Use --list to see the "
        "structures SRC holds.",
    )
    p.add_argument("source", metavar="SRC", help="mask file, or a folder with one")
    p.add_argument("--reference", metavar="IMAGE_DIR", help="folder with the DICOM image series")
    p.add_argument(
        "-o", "--output", metavar="OUT.nii.gz", help="output: .nii, .nii.gz or .dcm (DICOM SEG)"
    )
    p.add_argument(
        "--series-uid",
        metavar="UID",
        help="SeriesInstanceUID of the reference series when IMAGE_DIR holds several",
    )
    p.add_argument(
        "--roi",
        action="append",
        metavar="NAME",
        help="structure to read (ROIName, SegmentLabel, label name); repeat for several; "
        "default: all",
    )
    p.add_argument("--list", action="store_true", help="list the structures in SRC and exit")
    p.add_argument(
        "--allow-resample",
        action="store_true",
        help="accept a mask reaching outside the image or made on another series (cropped "
        "and placed by patient coordinates)",
    )
    p.add_argument(
        "--allow-other-frame",
        action="store_true",
        help="accept a SEG/RTSTRUCT in another frame of reference (only if the frames coincide)",
    )
    p.add_argument(
        "--class-map",
        metavar="FILE",
        help='label names of a label map: JSON ({"1": "liver"}) or \'value name\' lines',
    )
    p.add_argument(
        "--fraction-threshold",
        type=float,
        default=0.5,
        help="FRACTIONAL SEG: voxel in the segment when its fraction is >= this (default 0.5)",
    )
    p.set_defaults(func=run)


def label_table(labels: Volume) -> list[dict[str, Any]]:
    """Per label: value, name, voxel count and volume in mL."""
    counts = np.bincount(labels.array.ravel(), minlength=max(labels.label_names, default=0) + 1)
    return [
        {
            "value": value,
            "name": name,
            "voxels": int(counts[value]),
            "volume_ml": float(counts[value]) * labels.voxel_volume_ml,
        }
        for value, name in labels.label_names.items()
    ]


def run(args: argparse.Namespace) -> int:
    """Execute ``mask``; return the exit code."""
    if args.list:
        for name in list_structures(args.source):
            print(name)
        return 0
    if not args.reference or not args.output:
        print(
            "netvolume: error: mask needs --reference IMAGE_DIR and -o OUT (or --list)",
            file=sys.stderr,
        )
        return EXIT_CODES["usage_error"]
    out = Path(args.output)
    lower = out.name.lower()
    if not lower.endswith((".nii", ".nii.gz", ".dcm")):
        print(
            f"netvolume: error: output {out.name!r} must end in .nii, .nii.gz or .dcm",
            file=sys.stderr,
        )
        return EXIT_CODES["usage_error"]
    series = scan(args.reference).select(args.series_uid)
    reference = load(series)
    labels = read(
        args.source,
        reference,
        roi=args.roi,
        allow_resample=args.allow_resample,
        allow_other_frame=args.allow_other_frame,
        class_map=args.class_map,
        fraction_threshold=args.fraction_threshold,
    )
    for note in labels.provenance.notes:
        logger.info("%s", note)
    table = label_table(labels)
    if lower.endswith(".dcm"):
        from netvolume.io.masks import write_seg

        written = write_seg(labels, series, path=out)
    else:
        record = {
            "source": str(args.source),
            "reference_series_uid": series.uid,
            "labels": table,
            "provenance": labels.provenance.to_dict(),
        }
        # the sidecar is renamed into place only after the NIfTI is: never one without it
        with atomic_path(sidecar_path(out)) as tmp:
            tmp.write_text(json.dumps(record, indent=2, default=str) + "\n")
            written = write_nifti(labels, out)
    print(f"wrote {written}: {len(table)} structure(s) on the grid of series {series.uid}")
    for row in table:
        print(
            f"  {row['value']:>4}  {row['name']}: {row['voxels']} voxels, {row['volume_ml']:.3f} mL"
        )
    return 0

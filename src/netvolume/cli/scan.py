"""``netvolume scan DIR [--json]``: catalogue a folder of DICOM files."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from netvolume.io.dicom import Catalogue, scan
from netvolume.io.pet import QUANTITATIVE_MODALITIES, suv_summary


def add_parser(sub: Any) -> None:
    """Register the ``scan`` command."""
    p = sub.add_parser(
        "scan",
        help="list the image series, non-image objects and unused files of a folder",
        description="Read every file's header under DIR (recursively) and list the image "
        "series/stacks, the non-image objects (SEG, RTSTRUCT, SR...) and every file that is "
        "not used, with its reason. For PET (and NM) series it also shows the SUV inputs "
        "found in the headers and the SUVbw factor, or why it cannot be computed.",
    )
    p.add_argument("folder", metavar="DIR", help="folder exported from PACS (or one file)")
    p.add_argument("--json", action="store_true", help="print the catalogue as JSON")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Execute ``scan``; return the exit code."""
    catalogue = scan(args.folder)
    suv = {s.uid: suv_summary(s) for s in catalogue.series if s.modality in QUANTITATIVE_MODALITIES}
    if args.json:
        data = catalogue.to_dict()
        for entry in data["series"]:
            if entry["uid"] in suv:
                entry["suv"] = suv[entry["uid"]]
        json.dump(data, sys.stdout, indent=2, default=str)
        sys.stdout.write("\n")
    else:
        sys.stdout.write(format_catalogue(catalogue, suv))
    return 0


def format_catalogue(cat: Catalogue, suv: dict[str, dict[str, Any]] | None = None) -> str:
    """Return the human-readable listing printed by ``netvolume scan``."""
    lines = [
        f"{cat.root}: {cat.num_files} files, {len(cat.series)} image series/stacks, "
        f"{len(cat.objects)} non-image objects, {len(cat.unused)} unused files",
        "",
    ]
    if cat.series:
        lines.append("image series:")
        for s in cat.series:
            sp = (
                f"{s.pixel_spacing[0]:.4g} x {s.pixel_spacing[1]:.4g} mm"
                if s.pixel_spacing
                else "-"
            )
            ori = " ".join(f"{v:.3g}" for v in s.orientation) if s.orientation else "-"
            lines += [
                f"  {s.uid}",
                f"    {s.modality}  series {s.series_number}  {s.description!r}"
                + ("  [localizer]" if s.is_localizer else "")
                + ("  [multi-frame]" if s.is_multiframe else ""),
                f"    {s.num_images} images in {len(s.files)} files, matrix {s.rows} x "
                f"{s.columns}, pixel spacing {sp}, orientation [{ori}]",
                f"    frame of reference {s.frame_of_reference_uid or '-'}, acquired "
                f"{s.acquisition_datetime or '-'}, units {s.units}",
            ]
            info = (suv or {}).get(s.uid)
            if info is not None:
                if info["error"] is None:
                    rng = info["suv_bw_factor_range"]
                    factor = (
                        f"{info['suv_bw_factor']:.6g}"
                        if info["suv_bw_factor"] is not None
                        else f"{rng[0]:.6g}..{rng[1]:.6g} per slice"
                    )
                    lines.append(
                        f"    SUVbw = value x {factor} ({info['method']}, reference time "
                        f"{info['reference_rule'] or '-'})"
                    )
                else:
                    lines.append(f"    SUV not computable: {info['error']}")
    if cat.objects:
        lines.append("non-image objects:")
        for o in cat.objects:
            lines.append(f"  {o.kind:<9} {o.path}  (series {o.series_instance_uid or '-'})")
    if cat.unused:
        lines.append("unused files:")
        for u in cat.unused:
            lines.append(f"  {u.reason:<17} {u.path}: {u.detail}")
    return "\n".join(lines) + "\n"

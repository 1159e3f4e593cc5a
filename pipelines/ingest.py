"""Ingest a DICOM export: every image series to NIfTI, with provenance and a failure list.

The batch face of the ingestion layer, for a radiologist's export folder::

    python pipelines/ingest.py EXPORT_DIR -o OUT_DIR [--include-localizers]

Writes into ``OUT_DIR``:

* ``catalogue.json``: what ``netvolume scan`` found (series, non-image objects, every
  unused file with its reason);
* one ``<series number>_<modality>_<uid hash>.nii.gz`` per image stack, with a JSON
  sidecar of the same name holding its provenance (netvolume version, settings,
  SeriesInstanceUID, SOPInstanceUIDs, input hash, notes such as tilt correction); PET and
  NM stacks are written in their Units (Bq/mL for BQML) and their sidecar also holds the
  SUV summary (``netvolume scan --json``): every SUV input found in the headers and the
  SUVbw factor, or why it cannot be computed;
* ``ingest_report.json``: per stack ``converted`` / ``skipped`` / ``failed`` with the
  error type and message.

A failing stack never stops the others. Every file is written to a temporary name and
renamed, so an interrupted run leaves no half-written output. File names carry no patient
identifiers. Exit code 0 when every stack converted (localizers skipped by default), 1
when any failed, 3 when EXPORT_DIR cannot be read.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from pathlib import Path
from typing import Any

from netvolume import __version__
from netvolume.errors import InputPathError, NetVolumeError
from netvolume.io._atomic import atomic_path
from netvolume.io.dicom import Series, load, scan
from netvolume.io.nifti import write_nifti
from netvolume.io.pet import QUANTITATIVE_MODALITIES, suv_summary


def output_stem(series: Series) -> str:
    """File stem for a stack: series number, modality and a short hash of its uid."""
    h = hashlib.sha256(series.uid.encode()).hexdigest()[:10]
    number = series.series_number if series.series_number is not None else 0
    return f"{number:04d}_{series.modality or 'XX'}_{h}"


def write_json(path: Path, data: Any) -> None:
    """Write JSON atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(data, indent=2, default=str) + "\n")


def ingest(export_dir: Path, out_dir: Path, *, include_localizers: bool = False) -> dict[str, Any]:
    """Convert every image stack of ``export_dir``; return the report (also written)."""
    t0 = time.perf_counter()
    catalogue = scan(export_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    write_json(out_dir / "catalogue.json", catalogue.to_dict())
    rows: list[dict[str, Any]] = []
    for series in catalogue.series:
        row: dict[str, Any] = {
            "uid": series.uid,
            "modality": series.modality,
            "description": series.description,
            "num_images": series.num_images,
        }
        if series.is_localizer and not include_localizers:
            row.update(status="skipped", reason="localizer (use --include-localizers)")
            rows.append(row)
            continue
        stem = output_stem(series)
        try:
            volume = load(series)
            suv = suv_summary(series) if series.modality in QUANTITATIVE_MODALITIES else None
            nifti = write_nifti(volume, out_dir / f"{stem}.nii.gz")
            write_json(
                out_dir / f"{stem}.json",
                {
                    "series_uid": series.uid,
                    "modality": volume.modality,
                    "units": volume.units,
                    "shape": list(volume.shape),
                    "spacing_mm": list(volume.spacing),
                    "affine_lps": volume.affine.tolist(),
                    "frame_of_reference_uid": volume.frame_of_reference_uid,
                    "provenance": volume.provenance.to_dict(),
                    **({"suv": suv} if suv is not None else {}),
                },
            )
            row.update(
                status="converted",
                output=nifti.name,
                shape=list(volume.shape),
                notes=list(volume.provenance.notes),
            )
            if suv is not None:
                row.update(suv_bw_factor=suv["suv_bw_factor"], suv_error=suv["error"])
        except NetVolumeError as exc:
            row.update(status="failed", error=type(exc).__name__, message=str(exc))
        rows.append(row)
    report = {
        "netvolume_version": __version__,
        "export_dir": str(export_dir),
        "seconds": round(time.perf_counter() - t0, 3),
        "unused_files": len(catalogue.unused),
        "non_image_objects": len(catalogue.objects),
        "stacks": rows,
    }
    write_json(out_dir / "ingest_report.json", report)
    return report


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point; see the module docstring for the exit codes."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("export_dir", type=Path, metavar="EXPORT_DIR")
    parser.add_argument("-o", "--output", type=Path, required=True, metavar="OUT_DIR")
    parser.add_argument(
        "--include-localizers", action="store_true", help="also convert localizer/scout images"
    )
    args = parser.parse_args(argv)
    try:
        report = ingest(args.export_dir, args.output, include_localizers=args.include_localizers)
    except InputPathError as exc:
        print(f"ingest: error: {exc}", file=sys.stderr)
        return 3
    counts: dict[str, int] = {}
    for row in report["stacks"]:
        counts[row["status"]] = counts.get(row["status"], 0) + 1
        line = f"{row['status']:<9} {row['modality']:<3} {row['num_images']:>5} images  "
        line += f"{row['description']!r}  {row['uid']}"
        print(line)
        if row["status"] == "failed":
            print(f"          {row['error']}: {row['message']}")
        for note in row.get("notes", []):
            print(f"          note: {note}")
    summary = ", ".join(f"{n} {s}" for s, n in sorted(counts.items())) or "no image stacks"
    print(
        f"{summary}; {report['unused_files']} unused files, "
        f"{report['non_image_objects']} non-image objects; {report['seconds']} s; "
        f"report: {args.output / 'ingest_report.json'}"
    )
    return 1 if counts.get("failed") else 0


if __name__ == "__main__":
    sys.exit(main())

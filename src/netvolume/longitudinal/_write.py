"""Write the outputs of ``netvolume assess``: ``timepoints.csv``, ``assessment.json`` and
(with images) ``tracking.csv`` and ``studies/<name>/`` (each study's measurement).

The whole folder is built under a temporary sibling and renamed into place when it is
complete, so an interrupted run never leaves a half-written ``OUT``; an existing ``OUT``
is replaced only with ``overwrite`` and only when it is a previous ``assess`` output (it
holds an ``assessment.json``) or empty.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import os
import shutil
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from netvolume.assess.course import TIMEPOINT_COLUMNS, PatientAssessment, provenance
from netvolume.errors import InputPathError
from netvolume.measure._write import format_cell

__all__ = [
    "TRACKING_COLUMNS",
    "AssessOutputExistsError",
    "assessment_json",
    "check_assess_output",
    "output_folder",
    "timepoints_csv",
]

#: Columns of ``tracking.csv``.
TRACKING_COLUMNS: tuple[str, ...] = (
    "patient_id",
    "date",
    "study",
    "lesion_id",
    "tracking_id",
    "status",
    "related_tracking_id",
    "overlap_fraction",
    "distance_mm",
    "pinned",
    "organ",
    "ld_mm",
    "sa_mm",
    "volume_ml",
    "centroid_x_mm",
    "centroid_y_mm",
    "centroid_z_mm",
)


class AssessOutputExistsError(InputPathError):
    """The output folder exists and may not be replaced."""


def check_assess_output(
    out: str | os.PathLike[str], *, overwrite: bool, marker: str = "assessment.json"
) -> Path:
    """Check that ``out`` may be written; return it as a Path.

    An existing non-empty folder is replaced only with ``overwrite`` and only when it
    holds ``marker`` (the file that marks an output of the same command)."""
    path = Path(out)
    if path.is_symlink() or (path.exists() and not path.is_dir()):
        raise AssessOutputExistsError(
            "output exists and is not a folder", files=[path], hint="choose another -o"
        )
    if path.is_dir() and any(path.iterdir()):
        if not (path / marker).is_file():
            raise AssessOutputExistsError(
                f"output folder exists, is not empty and is not an output of this command "
                f"(no {marker})",
                files=[path],
                hint="choose a new folder",
            )
        if not overwrite:
            raise AssessOutputExistsError(
                f"output folder already holds an output of this command ({marker})",
                files=[path],
                hint="pass --overwrite to replace it",
            )
    return path


@contextlib.contextmanager
def output_folder(
    out: str | os.PathLike[str], *, overwrite: bool = False, marker: str = "assessment.json"
) -> Iterator[Path]:
    """Yield a temporary folder; on success it replaces ``out``, on failure it goes."""
    path = check_assess_output(out, overwrite=overwrite, marker=marker)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.parent / f".{path.name}.tmp-{os.getpid()}"
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir()
    try:
        yield tmp
        check_assess_output(path, overwrite=overwrite, marker=marker)
        if path.exists():
            old = path.parent / f".{path.name}.old-{os.getpid()}"
            if old.exists():
                shutil.rmtree(old)
            os.replace(path, old)
            os.replace(tmp, path)
            shutil.rmtree(old)
        else:
            os.replace(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def csv_bytes(columns: Sequence[str], rows: Sequence[Mapping[str, Any]]) -> bytes:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow([format_cell(row.get(c)) for c in columns])
    return buf.getvalue().encode("utf-8")


def timepoints_csv(assessments: Sequence[PatientAssessment]) -> bytes:
    """``timepoints.csv``: one row per patient and scan (pre-baseline included)."""
    return csv_bytes(TIMEPOINT_COLUMNS, [row for a in assessments for row in a.rows])


def tracking_csv(rows: Sequence[Mapping[str, Any]]) -> bytes:
    """``tracking.csv``: one row per lesion per study, and per disappeared / merged track."""
    return csv_bytes(TRACKING_COLUMNS, rows)


def assessment_json(
    assessments: Sequence[PatientAssessment],
    *,
    failures: Mapping[str, str],
    settings: Mapping[str, Any],
    inputs: Mapping[str, Any],
) -> bytes:
    """``assessment.json``: per patient targets (and why), BOR, PD date, TGR, volumes."""
    doc = {
        "provenance": {**provenance(), "inputs": dict(inputs)},
        "settings": dict(settings),
        "patients": {a.patient_id: a.to_dict() for a in assessments},
        "failures": dict(failures),
    }
    return (json.dumps(doc, indent=2, sort_keys=False, allow_nan=False) + "\n").encode()

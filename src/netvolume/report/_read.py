"""Read a batch output folder into plain records for the report.

Every table is checked as it is read: a missing column, a row with more cells than the
header, a number or a date that does not parse is a :class:`ReportInputError` naming the
file, the line and the column. Optional inputs (``eligibility/``, ``tables/outcomes.csv``,
``tables/failures.csv``, a study's key images) that are absent are recorded as absent so
that the report can say so.
"""

from __future__ import annotations

import csv
import datetime
import io
import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from netvolume.assess.course import TIMEPOINT_COLUMNS
from netvolume.errors import InputPathError
from netvolume.report._common import ReportInputError
from netvolume.trials._status import Verdict

__all__ = [
    "FAILURE_COLUMNS",
    "OUTCOME_COLUMNS",
    "PATIENT_COLUMNS",
    "BatchData",
    "Failure",
    "Outcome",
    "PatientData",
    "StudyInfo",
    "read_batch",
]

#: Columns of ``tables/patients.csv``.
PATIENT_COLUMNS = ("patient_key", "clinical_id", "n_studies", "first_date", "last_date", "status")
#: Columns of ``tables/outcomes.csv``.
OUTCOME_COLUMNS = (
    "patient_key",
    "start_date",
    "pfs_days",
    "pfs_event",
    "best_overall_response",
    "best_sod_change_pct",
)
#: Columns of ``tables/failures.csv``.
FAILURE_COLUMNS = ("stage", "patient_key", "study_key", "error_type", "message")
#: Columns of ``eligibility/<protocol>/summary.csv`` the report reads.
ELIGIBILITY_COLUMNS = ("patient_id", "protocol", "verdict", "reason")
#: Columns of an assessment's ``tracking.csv`` the report reads.
TRACKING_READ = (
    "date",
    "study",
    "lesion_id",
    "tracking_id",
    "status",
    "related_tracking_id",
    "organ",
    "ld_mm",
    "sa_mm",
    "volume_ml",
)
PATIENT_STATUSES = ("ok", "failed")
_TIMEPOINT_NUMBERS = (
    "days_from_baseline",
    "sod_mm",
    "sod_measured_mm",
    "nadir_mm",
    "pct_from_baseline",
    "pct_from_nadir",
    "target_volume_ml",
    "volume_ratio_to_baseline",
    "volume_ratio_to_nadir",
    "total_tumour_volume_ml",
    "liver_volume_ml",
    "liver_tumour_volume_ml",
    "liver_tumour_burden_pct",
    "tgr_diameter_vs_baseline_pct_per_month",
    "tgr_diameter_vs_previous_pct_per_month",
    "tgr_volume_vs_baseline_pct_per_month",
    "tgr_volume_vs_previous_pct_per_month",
)
_SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


# ----------------------------------------------------------------------------- records
@dataclass(frozen=True)
class Failure:
    """One row of ``tables/failures.csv``."""

    stage: str
    patient_key: str
    study_key: str
    error_type: str
    message: str


@dataclass(frozen=True)
class Outcome:
    """One row of ``tables/outcomes.csv``; ``pfs_days`` None: not evaluable."""

    patient_key: str
    start_date: str
    pfs_days: float | None
    pfs_event: bool | None
    best_overall_response: str
    best_sod_change_pct: float | None


@dataclass(frozen=True)
class StudyInfo:
    """One ``studies/<patient_key>/<study_key>/`` folder (a ``netvolume measure``
    output), with its key images' index when there is one."""

    study_key: str
    folder: Path
    study_date: str | None
    liver_volume_ml: float | None
    spleen_volume_ml: float | None
    liver_tumour_volume_ml: float | None
    liver_tumour_burden_pct: float | None
    n_lesions: int
    keyimages: dict[int, dict[str, Any]] | None  # lesion id -> index.json record


@dataclass
class PatientData:
    """Everything the batch wrote about one patient."""

    key: str
    clinical_id: str
    n_studies: int | None
    first_date: str
    last_date: str
    status: str
    listed: bool  # a row of tables/patients.csv
    studies: list[StudyInfo] = field(default_factory=list)
    assessment: dict[str, Any] | None = None  # the patient's block of assessment.json
    assessment_failures: dict[str, str] = field(default_factory=dict)
    assessment_studies: dict[str, Any] = field(default_factory=dict)
    timepoints: list[dict[str, Any]] = field(default_factory=list)
    tracking: list[dict[str, Any]] = field(default_factory=list)
    has_assessment_folder: bool = False


@dataclass
class BatchData:
    """A batch output folder as read.

    ``outcomes``, ``eligibility`` and ``failures`` are None when their file or folder is
    absent (no clinical facts given; no failures table)."""

    root: Path
    patients: list[PatientData]
    outcomes: dict[str, Outcome] | None
    eligibility: dict[str, dict[str, dict[str, str]]] | None  # protocol -> id -> row
    failures: list[Failure] | None
    notes: list[str] = field(default_factory=list)


# ----------------------------------------------------------------------------- parsing
def _read_table(
    path: Path, required: Sequence[str], *, what: str
) -> list[tuple[int, dict[str, str]]]:
    """(line number, row) of a UTF-8 CSV with at least the ``required`` columns."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ReportInputError(
            f"{what} is not UTF-8 text ({exc.reason} at byte {exc.start})",
            files=[path],
            hint="write the table as UTF-8 CSV",
        ) from None
    except OSError as exc:
        raise InputPathError(
            f"{what} cannot be read ({type(exc).__name__})", files=[path]
        ) from None
    reader = csv.DictReader(io.StringIO(text, newline=""), restkey="\x00extra")
    header = reader.fieldnames
    if not header:
        raise ReportInputError(
            f"{what} is empty: no header line",
            files=[path],
            hint="expected the columns " + ", ".join(required),
        )
    missing = [c for c in required if c not in header]
    if missing:
        raise ReportInputError(
            f"{what} lacks the column(s) {', '.join(missing)} (header: {', '.join(header)})",
            files=[path],
            tag=missing[0],
            hint="expected the columns " + ", ".join(required),
        )
    rows = []
    for row in reader:
        line = reader.line_num
        if "\x00extra" in row:
            raise ReportInputError(
                f"{what} line {line}: more cells than the {len(header)} columns of the header",
                files=[path],
                hint="quote cells that hold commas",
            )
        rows.append((line, {k: (v if v is not None else "") for k, v in row.items()}))
    return rows


def _number(
    value: str, *, path: Path, line: int, column: str, integer: bool = False
) -> float | None:
    text = value.strip()
    if text == "":
        return None
    try:
        x = float(int(text)) if integer else float(text)
    except ValueError:
        kind = "an integer" if integer else "a number"
        raise ReportInputError(
            f"line {line}: {column} {text!r} is not {kind}", files=[path], tag=column
        ) from None
    if not math.isfinite(x):
        raise ReportInputError(
            f"line {line}: {column} {text!r} is not a finite number (leave it empty for "
            "'not available')",
            files=[path],
            tag=column,
        )
    return x


def _boolean(value: str, *, path: Path, line: int, column: str) -> bool | None:
    text = value.strip().lower()
    if text == "":
        return None
    if text in ("true", "1", "yes"):
        return True
    if text in ("false", "0", "no"):
        return False
    raise ReportInputError(
        f"line {line}: {column} {value!r} is not true / false", files=[path], tag=column
    )


def _date(value: str, *, path: Path, line: int, column: str) -> str:
    text = value.strip()
    if text == "":
        return ""
    try:
        return datetime.date.fromisoformat(text[:10]).isoformat()
    except ValueError:
        raise ReportInputError(
            f"line {line}: {column} {text!r} is not an ISO date (YYYY-MM-DD)",
            files=[path],
            tag=column,
        ) from None


def _json(path: Path, what: str) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError:
        raise ReportInputError(f"{what} is not UTF-8 text", files=[path]) from None
    except json.JSONDecodeError as exc:
        raise ReportInputError(
            f"{what} is not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})",
            files=[path],
            hint="re-run the step that wrote it",
        ) from None


def _opt_float(doc: Mapping[str, Any], key: str, path: Path) -> float | None:
    value = doc.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ReportInputError(f"{key} is {value!r}, not a number or null", files=[path], tag=key)
    return float(value)


def _subfolders(folder: Path) -> list[Path]:
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))


# ----------------------------------------------------------------------------- tables
def _patients(path: Path) -> list[PatientData]:
    out: list[PatientData] = []
    seen: set[str] = set()
    for line, row in _read_table(path, PATIENT_COLUMNS, what="patients table"):
        key = row["patient_key"].strip()
        if not key:
            raise ReportInputError(
                f"line {line}: empty patient_key", files=[path], tag="patient_key"
            )
        if key in seen:
            raise ReportInputError(
                f"line {line}: patient_key {key!r} appears twice", files=[path], tag="patient_key"
            )
        seen.add(key)
        status = row["status"].strip()
        if status not in PATIENT_STATUSES:
            raise ReportInputError(
                f"line {line}: status {status!r} is not one of {', '.join(PATIENT_STATUSES)}",
                files=[path],
                tag="status",
            )
        n = _number(row["n_studies"], path=path, line=line, column="n_studies", integer=True)
        out.append(
            PatientData(
                key=key,
                clinical_id=row["clinical_id"].strip(),
                n_studies=None if n is None else int(n),
                first_date=_date(row["first_date"], path=path, line=line, column="first_date"),
                last_date=_date(row["last_date"], path=path, line=line, column="last_date"),
                status=status,
                listed=True,
            )
        )
    return out


def _outcomes(path: Path) -> dict[str, Outcome]:
    out: dict[str, Outcome] = {}
    for line, row in _read_table(path, OUTCOME_COLUMNS, what="outcomes table"):
        key = row["patient_key"].strip()
        if not key or key in out:
            raise ReportInputError(
                f"line {line}: patient_key {key!r} is empty or appears twice",
                files=[path],
                tag="patient_key",
            )
        days = _number(row["pfs_days"], path=path, line=line, column="pfs_days")
        event = _boolean(row["pfs_event"], path=path, line=line, column="pfs_event")
        if days is not None and days < 0:
            raise ReportInputError(
                f"line {line}: pfs_days {days:g} is negative", files=[path], tag="pfs_days"
            )
        if days is not None and event is None:
            raise ReportInputError(
                f"line {line}: pfs_days is given but pfs_event is empty",
                files=[path],
                tag="pfs_event",
                hint="true: progression or death observed; false: censored",
            )
        out[key] = Outcome(
            patient_key=key,
            start_date=_date(row["start_date"], path=path, line=line, column="start_date"),
            pfs_days=days,
            pfs_event=event,
            best_overall_response=row["best_overall_response"].strip(),
            best_sod_change_pct=_number(
                row["best_sod_change_pct"], path=path, line=line, column="best_sod_change_pct"
            ),
        )
    return out


def _failures(path: Path) -> list[Failure]:
    return [
        Failure(*(row[c] for c in FAILURE_COLUMNS))
        for _, row in _read_table(path, FAILURE_COLUMNS, what="failures table")
    ]


def _eligibility(folder: Path) -> dict[str, dict[str, dict[str, str]]]:
    out: dict[str, dict[str, dict[str, str]]] = {}
    verdicts = {str(v) for v in Verdict}
    for sub in _subfolders(folder):
        path = sub / "summary.csv"
        if not path.is_file():
            raise ReportInputError(
                f"eligibility folder {sub.name} has no summary.csv",
                files=[sub],
                hint="re-run netvolume eligibility for that protocol, or remove the folder",
            )
        rows: dict[str, dict[str, str]] = {}
        for line, row in _read_table(path, ELIGIBILITY_COLUMNS, what="eligibility summary"):
            pid = row["patient_id"].strip()
            verdict = row["verdict"].strip()
            if verdict not in verdicts:
                raise ReportInputError(
                    f"line {line}: verdict {verdict!r} is not one of "
                    + ", ".join(sorted(verdicts)),
                    files=[path],
                    tag="verdict",
                )
            if not pid or pid in rows:
                raise ReportInputError(
                    f"line {line}: patient_id {pid!r} is empty or appears twice",
                    files=[path],
                    tag="patient_id",
                )
            rows[pid] = row
        out[sub.name] = rows
    return out


# ----------------------------------------------------------------------------- patients
def _keyimages(folder: Path) -> dict[int, dict[str, Any]] | None:
    path = folder / "keyimages" / "index.json"
    if not path.is_file():
        return None
    doc = _json(path, "key image index")
    if not isinstance(doc, list):
        raise ReportInputError(
            "key image index is not a list of images", files=[path], hint="re-run the study"
        )
    out: dict[int, dict[str, Any]] = {}
    for n, item in enumerate(doc):
        ok = isinstance(item, dict) and all(k in item for k in ("lesion_id", "file", "alt"))
        lid = item.get("lesion_id") if isinstance(item, dict) else None
        name = item.get("file") if isinstance(item, dict) else None
        if (
            not ok
            or isinstance(lid, bool)
            or not isinstance(lid, int)
            or not isinstance(name, str)
            or not _SAFE_NAME.match(name)
        ):
            raise ReportInputError(
                f"key image index entry {n} is not {{lesion_id, file, alt}} with a plain file name",
                files=[path],
                hint="re-render the key images (netvolume.report.render_key_images)",
            )
        out[lid] = dict(item)
    return out


def _study(folder: Path) -> StudyInfo:
    path = folder / "study.json"
    doc = _json(path, "study.json")
    if not isinstance(doc, dict):
        raise ReportInputError("study.json is not a JSON object", files=[path])
    lesions = folder / "lesions.csv"
    n = len(_read_table(lesions, ("lesion_id",), what="lesions table")) if lesions.is_file() else 0
    date = doc.get("study_date")
    return StudyInfo(
        study_key=folder.name,
        folder=folder,
        study_date=date[:10] if isinstance(date, str) and date else None,
        liver_volume_ml=_opt_float(doc, "liver_volume_ml", path),
        spleen_volume_ml=_opt_float(doc, "spleen_volume_ml", path),
        liver_tumour_volume_ml=_opt_float(doc, "liver_tumour_volume_ml", path),
        liver_tumour_burden_pct=_opt_float(doc, "liver_tumour_burden_pct", path),
        n_lesions=n,
        keyimages=_keyimages(folder),
    )


def _timepoints(path: Path) -> list[dict[str, Any]]:
    rows = []
    for line, row in _read_table(path, TIMEPOINT_COLUMNS, what="timepoints table"):
        out: dict[str, Any] = dict(row)
        out["date"] = _date(row["date"], path=path, line=line, column="date")
        for column in _TIMEPOINT_NUMBERS:
            out[column] = _number(row[column], path=path, line=line, column=column)
        rows.append(out)
    return rows


def _tracking(path: Path) -> list[dict[str, Any]]:
    rows = []
    for line, row in _read_table(path, TRACKING_READ, what="tracking table"):
        out: dict[str, Any] = dict(row)
        out["date"] = _date(row["date"], path=path, line=line, column="date")
        lid = _number(row["lesion_id"], path=path, line=line, column="lesion_id", integer=True)
        out["lesion_id"] = None if lid is None else int(lid)
        for column in ("ld_mm", "sa_mm", "volume_ml"):
            out[column] = _number(row[column], path=path, line=line, column=column)
        if not row["tracking_id"].strip():
            raise ReportInputError(
                f"line {line}: empty tracking_id", files=[path], tag="tracking_id"
            )
        rows.append(out)
    return rows


def _assessment(patient: PatientData, folder: Path) -> None:
    patient.has_assessment_folder = True
    path = folder / "assessment.json"
    if not path.is_file():
        raise ReportInputError(
            "assessment folder without assessment.json",
            files=[folder],
            hint="re-run netvolume assess for this patient, or remove the folder",
        )
    doc = _json(path, "assessment.json")
    blocks = doc.get("patients") if isinstance(doc, dict) else None
    failures = doc.get("failures", {}) if isinstance(doc, dict) else None
    if not isinstance(blocks, dict) or not isinstance(failures, dict):
        raise ReportInputError(
            "assessment.json has no 'patients' / 'failures' objects: not a netvolume assess output",
            files=[path],
        )
    block = blocks.get(patient.key)
    if block is None and len(blocks) == 1:
        block = next(iter(blocks.values()))
    if block is not None:
        if not isinstance(block, dict) or not isinstance(block.get("targets"), list):
            raise ReportInputError(
                f"assessment.json: the block of {patient.key} has no 'targets' list",
                files=[path],
                tag="targets",
            )
        patient.assessment = block
    patient.assessment_failures = {str(k): str(v) for k, v in failures.items()}
    inputs = ((doc.get("provenance") or {}).get("inputs") or {}) if isinstance(doc, dict) else {}
    studies = inputs.get("studies") if isinstance(inputs, dict) else None
    patient.assessment_studies = studies if isinstance(studies, dict) else {}
    tp = folder / "timepoints.csv"
    if tp.is_file():
        patient.timepoints = _timepoints(tp)
    elif block is not None:
        raise ReportInputError(
            "assessment without timepoints.csv", files=[folder], hint="re-run netvolume assess"
        )
    tr = folder / "tracking.csv"
    if tr.is_file():
        patient.tracking = _tracking(tr)


def read_batch(root: str | Path) -> BatchData:
    """Read the batch output folder ``root`` (layout: ``docs/report.md``).

    Raises
    ------
    InputPathError
        ``root`` is not a folder, or has no ``tables/patients.csv``.
    ReportInputError
        A table or JSON file is malformed (the message names file, line and column).
    """
    root = Path(root)
    if not root.is_dir():
        raise InputPathError(
            "batch output folder not found", files=[root], hint="pass the batch's -o folder"
        )
    tables = root / "tables"
    patients_csv = tables / "patients.csv"
    if not patients_csv.is_file():
        raise InputPathError(
            "not a batch output folder: tables/patients.csv is missing",
            files=[root],
            hint="pass the folder a batch run wrote (it holds studies/, assessments/, tables/)",
        )
    patients = _patients(patients_csv)
    notes: list[str] = []
    by_key = {p.key: p for p in patients}
    found = {p.name for p in _subfolders(root / "studies")}
    found |= {p.name for p in _subfolders(root / "assessments")}
    for key in sorted(found - set(by_key)):
        extra = PatientData(key, "", None, "", "", "unlisted", listed=False)
        patients.append(extra)
        by_key[key] = extra
        notes.append(f"patient folder {key} is not listed in tables/patients.csv: shown as found")
    for p in patients:
        for sub in _subfolders(root / "studies" / p.key):
            if (sub / "study.json").is_file():
                p.studies.append(_study(sub))
        p.studies.sort(key=lambda s: (s.study_date or "", s.study_key))
        folder = root / "assessments" / p.key
        if folder.is_dir():
            _assessment(p, folder)

    outcomes_csv = tables / "outcomes.csv"
    outcomes = _outcomes(outcomes_csv) if outcomes_csv.is_file() else None
    failures_csv = tables / "failures.csv"
    failures = _failures(failures_csv) if failures_csv.is_file() else None
    elig_dir = root / "eligibility"
    eligibility = _eligibility(elig_dir) if elig_dir.is_dir() else None
    return BatchData(root, patients, outcomes, eligibility, failures, notes)

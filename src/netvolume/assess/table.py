"""Read a measurement table: RECIST measurements made elsewhere, many patients.

The table is a CSV file with one row per lesion per scan (``netvolume assess
--measurements TABLE.csv``). Columns (the contract; names are case-sensitive):

=====================  ==========  ====================================================
column                 required    meaning
=====================  ==========  ====================================================
``patient_id``         yes         the patient's key (pseudonymous)
``date``               yes         scan date, ISO ``YYYY-MM-DD``
``lesion_id``          yes         stable across the patient's dates
``organ``              yes         ``liver``, ``lymph_node``, ``lung``, ``bone``, ...
``nodal``              yes         ``true`` / ``false``: a lymph node (SA is followed)
``ld_mm``              yes         long axis, mm; empty: not measured; ``0`` at a later
                                   date: disappeared; ``TSTM``: too small to measure
``sa_mm``              yes         short axis, mm (same conventions)
``is_new``             yes         ``true`` / ``false``, or ``equivocal``
``nontarget_status``   yes         for non-targets: ``present``, ``absent``,
                                   ``unequivocal_progression``; empty: derived from
                                   the measurements
``target``             no          ``true`` / ``false`` at baseline: the reader's targets
``split_from``         no          a fragment: the lesion it split from
``merged_into``        no          a lesion that coalesced into another (counts 0 mm)
``measurable_site``    no          ``false``: never a target (bone without soft tissue)
``reproducible``       no          ``false``: chosen as target only after the others
``volume_ml``          no          lesion volume, mL (volumetric response, TGR_V)
``slice_thickness_mm`` no          of the scan (measurability at baseline)
``baseline``           no          ``true`` on the rows of the baseline scan; earlier
                                   dates are pre-baseline (TGR0). Default: first date
=====================  ==========  ====================================================

Every problem is an :class:`~netvolume.errors.AssessmentInputError` naming the file, the
line, the column and the value. The patient id appears in messages as given (it is the
table's own pseudonymous key).
"""

from __future__ import annotations

import csv
import datetime
import hashlib
import math
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

from netvolume.assess._records import NONTARGET_STATUSES, Observation, TimePoint
from netvolume.errors import AssessmentInputError, InputPathError

__all__ = [
    "OPTIONAL_COLUMNS",
    "REQUIRED_COLUMNS",
    "TOO_SMALL_WORDS",
    "PatientCourse",
    "read_measurement_table",
]

REQUIRED_COLUMNS: tuple[str, ...] = (
    "patient_id",
    "date",
    "lesion_id",
    "organ",
    "nodal",
    "ld_mm",
    "sa_mm",
    "is_new",
    "nontarget_status",
)
OPTIONAL_COLUMNS: tuple[str, ...] = (
    "target",
    "split_from",
    "merged_into",
    "measurable_site",
    "reproducible",
    "volume_ml",
    "slice_thickness_mm",
    "baseline",
)
#: Cell values of ``ld_mm`` / ``sa_mm`` meaning "too small to measure".
TOO_SMALL_WORDS: frozenset[str] = frozenset({"tstm", "too_small"})
_TRUE = frozenset({"true", "yes", "1", "y", "t"})
_FALSE = frozenset({"false", "no", "0", "n", "f"})


@dataclass(frozen=True)
class PatientCourse:
    """One patient's time points read from a table (or built from studies)."""

    patient_id: str
    timepoints: tuple[TimePoint, ...]
    baseline_date: datetime.date
    source: str


class _Row:
    def __init__(self, path: Path, line: int, row: dict[str, str]) -> None:
        self.path, self.line, self.row = path, line, row

    def error(self, column: str, message: str, hint: str | None = None) -> AssessmentInputError:
        value = self.row.get(column, "")
        return AssessmentInputError(
            f"line {self.line}, column {column}={value!r}: {message}",
            files=[self.path],
            tag=column,
            hint=hint,
        )

    def text(self, column: str) -> str:
        return (self.row.get(column) or "").strip()

    def required_text(self, column: str) -> str:
        value = self.text(column)
        if not value:
            raise self.error(column, "empty", "every row needs a value here")
        return value

    def boolean(self, column: str, default: bool | None) -> bool | None:
        value = self.text(column).lower()
        if not value:
            return default
        if value in _TRUE:
            return True
        if value in _FALSE:
            return False
        raise self.error(column, "not a boolean", "write true or false")

    def number(self, column: str) -> tuple[float | None, bool]:
        """(value, too_small): empty -> (None, False), TSTM -> (None, True)."""
        value = self.text(column)
        if not value:
            return None, False
        if value.lower() in TOO_SMALL_WORDS:
            if column not in ("ld_mm", "sa_mm"):
                raise self.error(column, "TSTM is only allowed for ld_mm and sa_mm")
            return None, True
        try:
            number = float(value)
        except ValueError:
            raise self.error(
                column, "not a number", "write millimetres (or mL) as a plain number"
            ) from None
        if not math.isfinite(number) or number < 0:
            raise self.error(column, "must be a finite number >= 0")
        return number, False


def read_measurement_table(path: str | Path) -> dict[str, PatientCourse]:
    """Read a measurement table into one :class:`PatientCourse` per patient.

    Parameters
    ----------
    path : str or Path
        The CSV file (UTF-8, header row; see the module docstring for the columns).

    Returns
    -------
    dict of str -> PatientCourse
        In the order the patients first appear.

    Raises
    ------
    InputPathError
        The file does not exist or cannot be read.
    AssessmentInputError
        A missing or unknown column, an impossible value, a date that does not parse,
        a scan whose slice thickness or baseline flag differ between its rows.
    """
    path = Path(path)
    if not path.is_file():
        raise InputPathError(
            "measurement table not found", files=[path], hint="give the path of a CSV file"
        )
    try:
        raw_bytes = path.read_bytes()
        text = raw_bytes.decode("utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise InputPathError(
            f"cannot read the measurement table: {exc}",
            files=[path],
            hint="save the table as UTF-8 CSV",
        ) from exc
    reader = csv.DictReader(text.splitlines())
    header = [h.strip() for h in (reader.fieldnames or [])]
    reader.fieldnames = header
    missing = [c for c in REQUIRED_COLUMNS if c not in header]
    unknown = [c for c in header if c not in REQUIRED_COLUMNS + OPTIONAL_COLUMNS]
    if missing or unknown:
        parts = []
        if missing:
            parts.append("missing column(s) " + ", ".join(missing))
        if unknown:
            parts.append("unknown column(s) " + ", ".join(unknown))
        raise AssessmentInputError(
            "measurement table header: " + "; ".join(parts),
            files=[path],
            tag="header",
            hint="columns: "
            + ", ".join(REQUIRED_COLUMNS)
            + " (optional: "
            + ", ".join(OPTIONAL_COLUMNS)
            + ")",
        )

    per_patient: dict[str, dict[datetime.date, list[Observation]]] = {}
    thickness: dict[tuple[str, datetime.date], tuple[float | None, int]] = {}
    baseline_flag: dict[tuple[str, datetime.date], tuple[bool | None, int]] = {}
    for line, raw in enumerate(reader, start=2):
        if raw.get(None):
            raise AssessmentInputError(
                f"line {line}: more cells than columns", files=[path], tag="row"
            )
        row = _Row(path, line, raw)
        patient = row.required_text("patient_id")
        try:
            date = datetime.date.fromisoformat(row.required_text("date"))
        except ValueError:
            raise row.error("date", "not an ISO date", "write YYYY-MM-DD") from None
        ld, ld_small = row.number("ld_mm")
        sa, sa_small = row.number("sa_mm")
        volume, _ = row.number("volume_ml")
        thick, _ = row.number("slice_thickness_mm")
        if thick == 0:
            raise row.error("slice_thickness_mm", "must be > 0")
        new_text = row.text("is_new").lower()
        if new_text == "equivocal":
            is_new, equivocal = False, True
        else:
            is_new, equivocal = bool(row.boolean("is_new", False)), False
        status = row.text("nontarget_status").lower() or None
        if status is not None and status not in NONTARGET_STATUSES:
            raise row.error(
                "nontarget_status",
                "unknown status",
                "one of " + ", ".join(sorted(NONTARGET_STATUSES)) + ", or empty",
            )
        nodal = row.boolean("nodal", None)
        if nodal is None:
            raise row.error("nodal", "empty", "write true for a lymph node, else false")
        obs = Observation(
            lesion_id=row.required_text("lesion_id"),
            organ=row.required_text("organ").lower(),
            nodal=nodal,
            ld_mm=ld,
            sa_mm=sa,
            too_small=(sa_small if nodal else ld_small) or (ld_small and sa_small),
            is_new=is_new,
            equivocal_new=equivocal,
            nontarget_status=status,
            target=row.boolean("target", None),
            split_from=row.text("split_from") or None,
            merged_into=row.text("merged_into") or None,
            measurable_site=bool(row.boolean("measurable_site", True)),
            reproducible=bool(row.boolean("reproducible", True)),
            volume_ml=volume,
            source=f"{path.name} line {line}",
        )
        per_patient.setdefault(patient, defaultdict(list))[date].append(obs)
        key = (patient, date)
        if row.text("slice_thickness_mm"):
            first = thickness.setdefault(key, (thick, line))
            if first[0] != thick:
                raise row.error(
                    "slice_thickness_mm",
                    f"differs from {first[0]!r} on line {first[1]} for the same scan",
                )
        flag = row.boolean("baseline", None)
        if flag is not None:
            prev = baseline_flag.setdefault(key, (flag, line))
            if prev[0] != flag:
                raise row.error("baseline", f"differs from line {prev[1]} for the same scan")

    courses: dict[str, PatientCourse] = {}
    digest = hashlib.sha256(raw_bytes).hexdigest()
    for patient, by_date in per_patient.items():
        tps = tuple(
            TimePoint(
                date=date,
                observations=tuple(obs),
                slice_thickness_mm=thickness.get((patient, date), (None, 0))[0],
                source=f"{path.name} (sha256 {digest[:12]})",
            )
            for date, obs in sorted(by_date.items())
        )
        flagged = [d for d in by_date if baseline_flag.get((patient, d), (None, 0))[0]]
        if len(flagged) > 1:
            raise AssessmentInputError(
                f"patient {patient}: baseline=true on several dates "
                f"({', '.join(sorted(d.isoformat() for d in flagged))})",
                files=[path],
                tag="baseline",
            )
        baseline = flagged[0] if flagged else tps[0].date
        courses[patient] = PatientCourse(patient, tps, baseline, f"{path} (sha256 {digest})")
    if not courses:
        raise AssessmentInputError(
            "measurement table has no rows", files=[path], hint="one row per lesion per scan"
        )
    return courses

"""Clinical facts: the published schema and a strict reader for CSV and JSON.

A research team gives one file per cohort, one row per patient: age, labs, grade, dates,
history... The columns are defined by ``clinical_schema.toml`` next to this module (data,
not code; published as ``docs/clinical.md`` by :func:`clinical_schema_markdown`). The
eligibility engine reads the result, :class:`ClinicalCohort`, as typed :class:`Fact`
records that know where they came from (file, row, line, column, the text as written and
any unit conversion).

Rules of the reader (:func:`read_clinical`):

- ``.csv``: UTF-8 (a byte-order mark is tolerated), comma-separated, one header line.
  ``.json``: a list of objects, or an object ``{"patients": [...]}`` (optionally with
  ``"schema_version": "1"``); values may be typed (numbers, booleans, strings), ``null``
  is missing.
- Column names are case-sensitive and must be a canonical name or an accepted alternative
  unit column of the schema; ``patient_id`` is required and unique.
- Missing: an empty cell, only spaces, ``NA``, ``N/A`` or ``NaN`` (any case), JSON
  ``null`` or ``NaN``. A missing cell gives no fact.
- Numbers: a decimal point, never a comma; finite; within the field's plausible range
  (checked after conversion to the canonical unit). Integer fields take whole numbers
  (``2`` or ``2.0``, not ``1.5``).
- Booleans: ``true`` / ``false``, ``yes`` / ``no``, ``1`` / ``0``, any case.
- Dates: ISO ``YYYY-MM-DD`` only.
- Categories: one of the field's values or aliases, ignoring case and surrounding spaces.
- A field given in two columns (the canonical one and an alternative unit, two
  alternatives, or a duplicated column) must agree within 0.5 % after conversion
  (other types: exactly); the canonical column wins, else the first alternative in the
  schema's order, else the first column in the file.
- ``bmi_kg_m2`` is derived from weight and height when absent; when given with both it
  must agree with them within 2 %.

Every problem is a :class:`~netvolume.errors.ClinicalDataError` naming the file, the row
as ``row N (line M)`` (JSON: ``row N (patients[i])``), the column, the bad value and what
was expected. Messages never repeat another fact of the patient; the patient key appears
only where two rows share it.
"""

from __future__ import annotations

import csv
import dataclasses
import datetime
import difflib
import functools
import hashlib
import io
import json
import math
import re
import tomllib
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from types import MappingProxyType
from typing import Any, Literal, TypeAlias, cast

from netvolume.errors import ClinicalDataError, InputPathError

__all__ = [
    "BOOL_FALSE",
    "BOOL_TRUE",
    "FIELD_TYPES",
    "MISSING_VALUES",
    "SCHEMA_VERSION",
    "AlternativeUnit",
    "ClinicalCohort",
    "Fact",
    "FieldSpec",
    "PatientFacts",
    "clinical_schema",
    "clinical_schema_markdown",
    "field_spec",
    "read_clinical",
]

FieldType: TypeAlias = Literal["number", "integer", "bool", "date", "category", "text"]
#: A category's value: a word (``"M"``) or an integer (grade ``1``).
CategoryValue: TypeAlias = str | int
#: The value of one fact, typed by its field.
FactValue: TypeAlias = float | int | bool | datetime.date | str

#: The types a schema field may have.
FIELD_TYPES: tuple[FieldType, ...] = ("number", "integer", "bool", "date", "category", "text")
#: The schema version this reader understands.
SCHEMA_VERSION = "1"
#: Cell texts that mean "missing" (compared after stripping spaces, ignoring case).
MISSING_VALUES: frozenset[str] = frozenset({"", "na", "n/a", "nan"})
#: Accepted words for a true / false boolean (compared ignoring case).
BOOL_TRUE: tuple[str, ...] = ("true", "yes", "1")
BOOL_FALSE: tuple[str, ...] = ("false", "no", "0")

_SCHEMA_PACKAGE = "netvolume.trials"
_SCHEMA_RESOURCE = "clinical_schema.toml"
_DOCS = "docs/clinical.md"
_SUFFIXES = (".csv", ".json")
#: Relative tolerance between two columns of one field (after conversion).
_AGREEMENT = 0.005
#: Relative tolerance between a given BMI and the one weight and height give.
_BMI_AGREEMENT = 0.02
_BMI, _WEIGHT, _HEIGHT = "bmi_kg_m2", "weight_kg", "height_cm"
_PATIENT_ID = "patient_id"

_NAME_RE = re.compile(r"[a-z][a-z0-9_]*")
_NUMBER_RE = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")
_COMMA_NUMBER_RE = re.compile(r"[+-]?\d*,\d+(?:[.,]\d+)*")
_NON_FINITE_RE = re.compile(r"[+-]?(?:inf|infinity|nan)", re.IGNORECASE)
_DATE_RE = re.compile(r"\d{4}-\d{2}-\d{2}")

_FIELD_KEYS = frozenset(
    {
        "name",
        "group",
        "type",
        "unit",
        "min",
        "max",
        "required",
        "unique",
        "description",
        "values",
        "aliases",
        "alternative",
    }
)
_ALTERNATIVE_KEYS = frozenset({"name", "unit", "factor", "reference"})


# --------------------------------------------------------------------------- records


@dataclass(frozen=True)
class AlternativeUnit:
    """Another unit a field is accepted in, under its own column name.

    Attributes
    ----------
    name
        The column name (``hb_mmol_l``).
    unit
        The unit of that column (``mmol/L``).
    factor
        Canonical value = value x factor (``1.6114``).
    reference
        Where the factor comes from.
    """

    name: str
    unit: str
    factor: float
    reference: str

    def to_canonical(self, value: float) -> float:
        """Convert ``value`` from this unit to the canonical one.

        The product is rounded to 12 significant digits so that binary noise cannot move a
        value across a threshold (``1500 /mm³`` gives exactly ``1.5 x 10^9/L``).
        """
        return _clean(value * self.factor)


@dataclass(frozen=True)
class FieldSpec:
    """One column of the clinical facts schema (a canonical fact).

    Attributes
    ----------
    name
        Canonical column name, carrying its unit (``hb_g_dl``).
    type
        ``number``, ``integer``, ``bool``, ``date``, ``category`` or ``text``.
    unit
        Unit of the canonical column (numbers), else ``None``.
    min, max
        Plausible range in the canonical unit; a value outside is impossible.
    description
        What the fact means.
    values
        The values of a category, in the schema's order.
    aliases
        Other spellings of category values: alias -> value.
    alternatives
        Other units accepted under their own column names.
    group
        The heading the field is published under.
    required
        Every row must give it.
    unique
        No two rows may share its value.
    """

    name: str
    type: FieldType
    unit: str | None
    min: float | None
    max: float | None
    description: str
    values: tuple[CategoryValue, ...] = ()
    aliases: Mapping[str, CategoryValue] = dataclasses.field(
        default_factory=lambda: MappingProxyType({}), hash=False
    )
    alternatives: tuple[AlternativeUnit, ...] = ()
    group: str = ""
    required: bool = False
    unique: bool = False

    @property
    def columns(self) -> tuple[str, ...]:
        """The canonical column name followed by the alternative unit columns."""
        return (self.name, *(alt.name for alt in self.alternatives))


@dataclass(frozen=True)
class Fact:
    """One clinical fact of one patient, typed, with its provenance.

    Attributes
    ----------
    field
        Canonical field name (``hb_g_dl``), whatever column it was read from.
    value
        The value in the canonical unit: ``float`` (number), ``int`` (integer, integer
        categories such as grade), ``bool``, :class:`datetime.date` or ``str``.
    unit
        Canonical unit of the value, ``None`` for units-free fields.
    column
        The column it was read from (``hb_mmol_l``); empty for a derived fact.
    raw
        The cell as written (JSON: the value as JSON text); empty for a derived fact.
    row
        1-based number of the patient row among the file's data rows.
    line
        CSV: line number in the file (the header is line 1). JSON: the 0-based index of
        the patient in the list.
    file
        The file's path as given to :func:`read_clinical`.
    converted
        The unit conversion, ``"7.2 mmol/L x 1.6114 = 11.60 g/dL"``, or ``None``.
    derived
        How a derived fact was computed, ``"from weight_kg 98.6 and height_cm 186"``.
    location
        Where in the file: ``"line 3"`` (CSV) or ``"patients[2]"`` (JSON).
    """

    field: str
    value: FactValue
    unit: str | None
    column: str
    raw: str
    row: int
    line: int
    file: str
    converted: str | None = None
    derived: str | None = None
    location: str = ""

    def describe(self) -> str:
        """Provenance in one line.

        Returns
        -------
        str
            ``"clinical.csv line 3, hb_mmol_l = 7.2 (converted: 11.60 g/dL)"``, or for a
            derived fact ``"clinical.csv line 3, bmi_kg_m2 = 28.50 kg/m² (derived from
            weight_kg 98.6 and height_cm 186)"``.
        """
        where = f"{Path(self.file).name} {self.location or f'line {self.line}'}"
        if self.derived is not None:
            unit = f" {self.unit}" if self.unit else ""
            return (
                f"{where}, {self.field} = {_format_value(self.value)}{unit} "
                f"(derived {self.derived})"
            )
        text = f"{where}, {self.column} = {self.raw.strip()}"
        if self.converted is not None:
            text += f" (converted: {_format_value(self.value)} {self.unit})"
        return text


@dataclass(frozen=True)
class PatientFacts:
    """The facts of one patient (one row of the file).

    Attributes
    ----------
    patient_id
        The pseudonymous key as given.
    row, line, file
        Where the row is (see :class:`Fact`).
    facts
        Canonical field name -> :class:`Fact`, for non-missing cells and derived facts
        only. Read-only.
    """

    patient_id: str
    row: int
    line: int
    file: str
    facts: Mapping[str, Fact] = dataclasses.field(
        default_factory=lambda: MappingProxyType({}), hash=False
    )

    def __post_init__(self) -> None:
        if not isinstance(self.facts, MappingProxyType):
            object.__setattr__(self, "facts", MappingProxyType(dict(self.facts)))

    def get(self, name: str) -> Fact | None:
        """The fact ``name``, or ``None`` when the patient's cell was missing.

        Raises
        ------
        ClinicalDataError
            ``name`` is not a canonical field of the schema (a typo in a protocol).
        """
        field_spec(name)
        return self.facts.get(name)

    def value(self, name: str) -> FactValue | None:
        """The value of the fact ``name``, or ``None`` when missing (see :meth:`get`)."""
        fact = self.get(name)
        return None if fact is None else fact.value


@dataclass(frozen=True)
class ClinicalCohort:
    """A clinical facts file, read and checked.

    Attributes
    ----------
    path
        The file as given.
    sha256
        SHA-256 of the file's bytes (hex), for provenance.
    columns
        The columns (JSON: keys, in order of first appearance) as in the file.
    patients
        One :class:`PatientFacts` per row, in file order.
    """

    path: Path
    sha256: str
    columns: tuple[str, ...]
    patients: tuple[PatientFacts, ...]

    def by_id(self, patient_id: str) -> PatientFacts:
        """The patient whose key is ``patient_id``.

        Raises
        ------
        ClinicalDataError
            No row has that key.
        """
        for patient in self.patients:
            if patient.patient_id == patient_id:
                return patient
        raise ClinicalDataError(
            f"patient {patient_id!r} is not in {self.path.name} ({len(self.patients)} patients)",
            files=[self.path],
            tag=_PATIENT_ID,
            hint="check the patient key (case-sensitive) or add the patient's row",
        )

    def __len__(self) -> int:
        return len(self.patients)

    def __iter__(self) -> Iterator[PatientFacts]:
        return iter(self.patients)


# --------------------------------------------------------------------------- schema


def _schema_text() -> tuple[str, str]:
    resource = resources.files(_SCHEMA_PACKAGE).joinpath(_SCHEMA_RESOURCE)
    return resource.read_text(encoding="utf-8"), str(resource)


@functools.cache
def clinical_schema() -> tuple[FieldSpec, ...]:
    """The clinical facts schema, read once from ``clinical_schema.toml``.

    Returns
    -------
    tuple of FieldSpec
        Every canonical field, in the schema's order.

    Raises
    ------
    ClinicalDataError
        The schema file itself is malformed (unknown type or key, duplicate or clashing
        names, a bad range or factor); the message names the schema file.
    """
    text, source = _schema_text()
    return _parse_schema(text, source)


@functools.cache
def _fields_by_name() -> Mapping[str, FieldSpec]:
    return MappingProxyType({spec.name: spec for spec in clinical_schema()})


@functools.cache
def _column_index() -> Mapping[str, tuple[FieldSpec, AlternativeUnit | None]]:
    index: dict[str, tuple[FieldSpec, AlternativeUnit | None]] = {}
    for spec in clinical_schema():
        index[spec.name] = (spec, None)
        for alt in spec.alternatives:
            index[alt.name] = (spec, alt)
    return MappingProxyType(index)


def field_spec(name: str) -> FieldSpec:
    """The schema's canonical field ``name``.

    Raises
    ------
    ClinicalDataError
        ``name`` is not a canonical field; the message suggests close names, or the
        canonical name when ``name`` is an alternative unit column.
    """
    spec = _fields_by_name().get(name)
    if spec is not None:
        return spec
    entry = _column_index().get(name)
    if entry is not None:
        message = (
            f"{name!r} is an alternative unit column of {entry[0].name!r}; facts are kept "
            f"under the canonical name"
        )
        hint = f"use {entry[0].name!r} (values are converted to {entry[0].unit})"
    else:
        close = difflib.get_close_matches(name, list(_fields_by_name()), n=3, cutoff=0.6)
        message = f"{name!r} is not a clinical fact of the schema"
        hint = (
            f"did you mean {_or_list(close)}? " if close else ""
        ) + f"the fields are listed in {_DOCS}"
    raise ClinicalDataError(message, tag=name, hint=hint)


def _schema_error(source: str, message: str, tag: str | None = None) -> ClinicalDataError:
    return ClinicalDataError(
        f"clinical schema {Path(source).name}: {message}",
        files=[source],
        tag=tag,
        hint="fix the schema file (its header comment explains every key)",
    )


def _parse_schema(text: str, source: str) -> tuple[FieldSpec, ...]:
    """Parse and validate the schema's TOML ``text``; ``source`` names it in errors."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise _schema_error(source, f"not valid TOML: {exc}") from None
    version = data.get("schema_version")
    if version != SCHEMA_VERSION:
        raise _schema_error(
            source, f"schema_version is {version!r}, this reader understands {SCHEMA_VERSION!r}"
        )
    unknown_top = sorted(set(data) - {"schema_version", "field"})
    if unknown_top:
        raise _schema_error(source, f"unknown top-level key(s) {unknown_top}")
    raw_fields = data.get("field")
    if not isinstance(raw_fields, list) or not raw_fields:
        raise _schema_error(source, "no [[field]] tables")
    specs: list[FieldSpec] = []
    seen: dict[str, str] = {}  # column name -> what it is
    for position, raw in enumerate(raw_fields, start=1):
        spec = _parse_field(raw, position, source)
        for column, what in [(spec.name, "field")] + [
            (alt.name, f"alternative of {spec.name!r}") for alt in spec.alternatives
        ]:
            if column in seen:
                raise _schema_error(
                    source,
                    f"name {column!r} ({what}) is already used ({seen[column]})",
                    tag=column,
                )
            seen[column] = what if what != "field" else "a field"
        specs.append(spec)
    id_spec = next((s for s in specs if s.name == _PATIENT_ID), None)
    if id_spec is None or id_spec.type != "text" or not id_spec.required or not id_spec.unique:
        raise _schema_error(
            source, f"{_PATIENT_ID!r} must be a required, unique text field", tag=_PATIENT_ID
        )
    for name, kind in ((_BMI, "number"), (_WEIGHT, "number"), (_HEIGHT, "number")):
        needed = next((s for s in specs if s.name == name), None)
        if needed is None or needed.type != kind:
            raise _schema_error(source, f"{name!r} must be a {kind} field", tag=name)
    return tuple(specs)


def _parse_field(raw: Any, position: int, source: str) -> FieldSpec:
    if not isinstance(raw, dict):
        raise _schema_error(source, f"field #{position} is not a table")
    name = raw.get("name")
    if not isinstance(name, str) or not _NAME_RE.fullmatch(name):
        raise _schema_error(
            source, f"field #{position} has name {name!r}: expected lower_case_with_underscores"
        )

    def fail(message: str) -> ClinicalDataError:
        return _schema_error(source, f"field {name!r}: {message}", tag=name)

    unknown = sorted(set(raw) - _FIELD_KEYS)
    if unknown:
        raise fail(f"unknown key(s) {unknown}; allowed: {sorted(_FIELD_KEYS)}")
    ftype = raw.get("type")
    if ftype not in FIELD_TYPES:
        raise fail(f"type {ftype!r} is not one of {list(FIELD_TYPES)}")
    description = raw.get("description")
    if not isinstance(description, str) or not description.strip():
        raise fail("needs a description")
    group = raw.get("group", "")
    if not isinstance(group, str):
        raise fail(f"group {group!r} is not text")
    unit = raw.get("unit")
    if unit is not None and (not isinstance(unit, str) or not unit):
        raise fail(f"unit {unit!r} is not text")
    if unit is not None and ftype not in ("number", "integer"):
        raise fail(f"a {ftype} field has no unit")
    flags = {}
    for key in ("required", "unique"):
        flag = raw.get(key, False)
        if not isinstance(flag, bool):
            raise fail(f"{key} must be true or false, not {flag!r}")
        flags[key] = flag

    bounds: dict[str, float | None] = {}
    for key in ("min", "max"):
        bound = raw.get(key)
        if bound is None:
            bounds[key] = None
            continue
        if ftype not in ("number", "integer"):
            raise fail(f"a {ftype} field has no {key}")
        if (
            isinstance(bound, bool)
            or not isinstance(bound, int | float)
            or not math.isfinite(bound)
        ):
            raise fail(f"{key} {bound!r} is not a finite number")
        bounds[key] = float(bound)
    low, high = bounds["min"], bounds["max"]
    if low is not None and high is not None and low > high:
        raise fail(f"min {low:g} is above max {high:g}")

    values: tuple[CategoryValue, ...] = ()
    aliases: dict[str, CategoryValue] = {}
    if ftype == "category":
        raw_values = raw.get("values")
        if not isinstance(raw_values, list) or not raw_values:
            raise fail("a category needs a non-empty list of values")
        for value in raw_values:
            if isinstance(value, bool) or not isinstance(value, str | int):
                raise fail(f"category value {value!r} is not a word or an integer")
        values = tuple(raw_values)
        raw_aliases = raw.get("aliases", {})
        if not isinstance(raw_aliases, dict):
            raise fail("aliases must be a table alias = value")
        aliases = dict(raw_aliases)
        # every spelling (value or alias, case ignored) must name one value only
        spellings: dict[str, CategoryValue] = {}
        for spelling, value in [(str(v), v) for v in values] + list(aliases.items()):
            if value not in values or isinstance(value, bool):
                raise fail(f"alias {spelling!r} points at {value!r}, which is not a value")
            key = spelling.strip().lower()
            if key in spellings and spellings[key] != value:
                raise fail(
                    f"{spelling!r} (case ignored) names both {spellings[key]!r} and {value!r}"
                )
            spellings[key] = value
    elif "values" in raw or "aliases" in raw:
        raise fail("only a category has values or aliases")

    alternatives: list[AlternativeUnit] = []
    raw_alts = raw.get("alternative", [])
    if raw_alts and ftype != "number":
        raise fail("only a number field has alternative units")
    if not isinstance(raw_alts, list):
        raise fail("alternative must be an array of tables [[field.alternative]]")
    for alt in raw_alts:
        if not isinstance(alt, dict):
            raise fail("an alternative is not a table")
        unknown = sorted(set(alt) - _ALTERNATIVE_KEYS)
        missing = sorted(_ALTERNATIVE_KEYS - set(alt))
        if unknown or missing:
            raise fail(
                f"alternative {alt.get('name')!r}: unknown keys {unknown}, missing {missing}"
            )
        alt_name, alt_unit, factor, reference = (
            alt["name"],
            alt["unit"],
            alt["factor"],
            alt["reference"],
        )
        if not isinstance(alt_name, str) or not _NAME_RE.fullmatch(alt_name):
            raise fail(f"alternative name {alt_name!r}: expected lower_case_with_underscores")
        if not isinstance(alt_unit, str) or not alt_unit or not isinstance(reference, str):
            raise fail(f"alternative {alt_name!r}: unit and reference must be text")
        if (
            isinstance(factor, bool)
            or not isinstance(factor, int | float)
            or not math.isfinite(factor)
            or factor <= 0
        ):
            raise fail(f"alternative {alt_name!r}: factor {factor!r} is not a positive number")
        alternatives.append(AlternativeUnit(alt_name, alt_unit, float(factor), reference))

    return FieldSpec(
        name=name,
        type=cast(FieldType, ftype),
        unit=unit,
        min=low,
        max=high,
        description=" ".join(description.split()),
        values=values,
        aliases=MappingProxyType(aliases),
        alternatives=tuple(alternatives),
        group=group,
        required=flags["required"],
        unique=flags["unique"],
    )


# --------------------------------------------------------------------------- markdown


def _md(text: str) -> str:
    return text.replace("|", "\\|")


def _range_cell(spec: FieldSpec) -> str:
    if spec.type in ("number", "integer"):
        low = "" if spec.min is None else _plain(spec.min)
        high = "" if spec.max is None else _plain(spec.max)
        text = f"{low} to {high}" if low and high else (f">= {low}" if low else f"<= {high}")
        if spec.type == "integer":
            text += ", whole"
        return text if (low or high) else ""
    if spec.type == "bool":
        return "true / false (also yes / no, 1 / 0)"
    if spec.type == "date":
        return "YYYY-MM-DD"
    if spec.type == "category":
        parts = []
        for value in spec.values:
            others = [a for a, v in spec.aliases.items() if v == value]
            parts.append(f"`{value}`" + (f" ({', '.join(others)})" if others else ""))
        return ", ".join(parts)
    flags = [w for w, on in (("required", spec.required), ("unique", spec.unique)) if on]
    return ", ".join(flags) if flags else "text"


def clinical_schema_markdown() -> str:
    """The schema as Markdown: one table per group, then the unit conversions.

    Published between the markers of ``docs/clinical.md`` (a test keeps them equal) and
    printed by the command line.

    Returns
    -------
    str
        Markdown text ending with a newline.
    """
    specs = clinical_schema()
    lines = [
        f"Schema version {SCHEMA_VERSION}, {len(specs)} fields. Column names are "
        "case-sensitive; category values and aliases (in brackets) ignore case. "
        "An alternative column holds the same fact in another unit: "
        "canonical value = value × factor.",
    ]
    groups: dict[str, list[FieldSpec]] = {}
    for spec in specs:
        groups.setdefault(spec.group or "Other", []).append(spec)
    for group, members in groups.items():
        lines += [
            "",
            f"### {group}",
            "",
            "| field | type | unit | range / values | other columns (unit, × factor) | "
            "description |",
            "|---|---|---|---|---|---|",
        ]
        for spec in members:
            alts = "; ".join(
                f"`{alt.name}` ({alt.unit}, × {_plain(alt.factor)})" for alt in spec.alternatives
            )
            cells = [
                f"`{spec.name}`",
                spec.type,
                spec.unit or "",
                _range_cell(spec),
                alts,
                spec.description,
            ]
            lines.append("| " + " | ".join(_md(c) for c in cells) + " |")
    lines += [
        "",
        "### Unit conversions",
        "",
        "| column | unit | field | × factor | reference |",
        "|---|---|---|---|---|",
    ]
    for spec in specs:
        for alt in spec.alternatives:
            cells = [
                f"`{alt.name}`",
                alt.unit,
                f"`{spec.name}` ({spec.unit})",
                _plain(alt.factor),
                alt.reference,
            ]
            lines.append("| " + " | ".join(_md(c) for c in cells) + " |")
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------- formatting


def _clean(value: float) -> float:
    """Round to 12 significant digits (drops binary noise of a unit conversion)."""
    return float(f"{value:.12g}")


def _plain(value: float) -> str:
    """A schema number as written: ``100`` not ``100.0``, ``0.45359237`` in full."""
    return str(int(value)) if float(value).is_integer() and abs(value) < 1e15 else repr(value)


def _format_number(value: float) -> str:
    """Four significant digits, trailing zeros kept: ``11.60``, ``150.0``, ``0.0500``."""
    if value == 0:
        return "0"
    magnitude = abs(value)
    if magnitude >= 1e6 or magnitude < 1e-4:
        return f"{value:.4g}"
    decimals = max(0, 3 - math.floor(math.log10(magnitude)))
    return f"{value:.{decimals}f}"


def _format_value(value: FactValue) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return _format_number(value)
    if isinstance(value, datetime.date):
        return value.isoformat()
    return str(value)


def _or_list(names: Sequence[str]) -> str:
    quoted = [repr(n) for n in names]
    return quoted[0] if len(quoted) == 1 else ", ".join(quoted[:-1]) + " or " + quoted[-1]


# --------------------------------------------------------------------------- reading


@dataclass(frozen=True)
class _Cell:
    column: str
    position: int  # 0-based column position (JSON: key order in the object)
    raw: str  # as written (JSON: the value as JSON text)
    value: object  # CSV: the text; JSON: the decoded value


@dataclass(frozen=True)
class _Record:
    row: int
    line: int
    location: str  # "line 3" / "patients[2]"
    cells: tuple[_Cell, ...]

    @property
    def where(self) -> str:
        return f"row {self.row} ({self.location})"


class _Reader:
    """Turns the records of one file into :class:`PatientFacts` (one instance per file)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.file = str(path)

    # errors -----------------------------------------------------------------------

    def error(self, message: str, *, tag: str | None, hint: str) -> ClinicalDataError:
        return ClinicalDataError(message, files=[self.path], tag=tag, hint=hint)

    def cell_error(
        self, record: _Record, cell: _Cell, problem: str, hint: str
    ) -> ClinicalDataError:
        return self.error(
            f"{record.where}, column {cell.column} = {cell.raw!r}: {problem}",
            tag=cell.column,
            hint=hint,
        )

    # header -----------------------------------------------------------------------

    def check_columns(self, columns: Sequence[str], where: Mapping[str, str]) -> None:
        """Every column known; ``where`` says where each first appears (for messages)."""
        index = _column_index()
        unknown = [c for c in columns if c not in index]
        if unknown:
            names = list(index)
            lowered = {n.lower(): n for n in names}
            parts = []
            for column in unknown:
                close = difflib.get_close_matches(column.lower(), list(lowered), n=3, cutoff=0.6)
                suggestion = (
                    f" (did you mean {_or_list([lowered[c] for c in close])}?)" if close else ""
                )
                parts.append(f"{column!r}{suggestion} in {where.get(column, 'the header')}")
            noun = "column" if len(unknown) == 1 else "columns"
            raise self.error(
                f"unknown {noun} " + "; ".join(parts),
                tag=unknown[0],
                hint=(
                    "rename each to a column of the clinical schema (names are case-sensitive; "
                    f"another unit has its own column), or remove it; see {_DOCS}"
                ),
            )

    # cells ------------------------------------------------------------------------

    @staticmethod
    def is_missing(value: object) -> bool:
        if value is None:
            return True
        if isinstance(value, float) and math.isnan(value):
            return True
        return isinstance(value, str) and value.strip().lower() in MISSING_VALUES

    def number(self, record: _Record, cell: _Cell, spec: FieldSpec) -> float:
        value = cell.value
        unit = f" in {spec.unit}" if spec.unit else ""
        expected = f"expected a number{unit}"
        if isinstance(value, bool):
            raise self.cell_error(
                record, cell, f"{expected}, not a boolean", "write the number only"
            )
        if isinstance(value, int | float):
            number = float(value)
        elif isinstance(value, str):
            text = value.strip()
            if _NUMBER_RE.fullmatch(text):
                number = float(text)
            elif _COMMA_NUMBER_RE.fullmatch(text):
                raise self.cell_error(
                    record,
                    cell,
                    f"{expected} with a decimal point, not a comma",
                    "write decimals with a point (11.8, not 11,8) and no thousands separator",
                )
            elif _NON_FINITE_RE.fullmatch(text):
                raise self.cell_error(
                    record, cell, f"{expected}, not infinite", "give a finite value or leave empty"
                )
            else:
                raise self.cell_error(
                    record,
                    cell,
                    f"{expected}, this is not a number",
                    "write the number only (the unit is in the column name); "
                    "leave the cell empty when unknown",
                )
        else:
            raise self.cell_error(
                record, cell, f"{expected}, not a JSON {type(value).__name__}", "give a number"
            )
        if not math.isfinite(number):
            raise self.cell_error(
                record, cell, f"{expected}, not infinite", "give a finite value or leave empty"
            )
        return number

    def check_range(
        self,
        record: _Record,
        cell: _Cell,
        spec: FieldSpec,
        alt: AlternativeUnit | None,
        value: float,
    ) -> None:
        low, high = spec.min, spec.max
        if (low is None or value >= low) and (high is None or value <= high):
            return
        unit = f" {spec.unit}" if spec.unit else ""
        span = f"{_plain(low) if low is not None else '-inf'} to "
        span += f"{_plain(high) if high is not None else 'inf'}{unit}"
        shown = ""
        if alt is not None:
            shown = f" (= {_format_number(value)}{unit})"
            alt_low = "-inf" if low is None else _format_number(low / alt.factor)
            alt_high = "inf" if high is None else _format_number(high / alt.factor)
            span += f", i.e. {alt_low} to {alt_high} {alt.unit}"
        raise self.error(
            f"{record.where}, column {cell.column} = {cell.raw!r}{shown}: impossible value, "
            f"outside the plausible range {span}",
            tag=cell.column,
            hint="check the value and the unit (the unit is in the column name); "
            f"the ranges are in {_DOCS}",
        )

    def parse(
        self, record: _Record, cell: _Cell, spec: FieldSpec, alt: AlternativeUnit | None
    ) -> Fact:
        converted: str | None = None
        value: FactValue
        if spec.type in ("number", "integer"):
            number = self.number(record, cell, spec)
            if alt is not None:
                canonical = alt.to_canonical(number)
                converted = (
                    f"{_format_raw(cell)} {alt.unit} x {_plain(alt.factor)} = "
                    f"{_format_number(canonical)} {spec.unit}"
                )
                number = canonical
            if spec.type == "integer":
                if not number.is_integer():
                    raise self.cell_error(
                        record, cell, "expected a whole number", "write an integer (2, not 1.5)"
                    )
                self.check_range(record, cell, spec, alt, number)
                value = int(number)
            else:
                self.check_range(record, cell, spec, alt, number)
                value = number
        elif spec.type == "bool":
            value = self.boolean(record, cell)
        elif spec.type == "date":
            value = self.date(record, cell)
        elif spec.type == "category":
            value = self.category(record, cell, spec)
        else:
            value = self.text(record, cell)
        return Fact(
            field=spec.name,
            value=value,
            unit=spec.unit,
            column=cell.column,
            raw=cell.raw,
            row=record.row,
            line=record.line,
            file=self.file,
            converted=converted,
            location=record.location,
        )

    def boolean(self, record: _Record, cell: _Cell) -> bool:
        value = cell.value
        if isinstance(value, bool):
            return value
        text = str(value).strip().lower() if isinstance(value, str | int) else None
        if text in BOOL_TRUE:
            return True
        if text in BOOL_FALSE:
            return False
        accepted = " / ".join(f"{t}|{f}" for t, f in zip(BOOL_TRUE, BOOL_FALSE, strict=True))
        raise self.cell_error(
            record,
            cell,
            f"expected a boolean: {accepted} (any case)",
            "write true or false; leave the cell empty when unknown",
        )

    def date(self, record: _Record, cell: _Cell) -> datetime.date:
        value = cell.value
        expected = "expected an ISO date YYYY-MM-DD"
        hint = "write the date as YYYY-MM-DD (2024-06-24); leave the cell empty when unknown"
        if not isinstance(value, str) or not _DATE_RE.fullmatch(value.strip()):
            raise self.cell_error(record, cell, expected, hint)
        try:
            return datetime.date.fromisoformat(value.strip())
        except ValueError:
            raise self.cell_error(
                record, cell, f"{expected}; this day does not exist", hint
            ) from None

    def category(self, record: _Record, cell: _Cell, spec: FieldSpec) -> CategoryValue:
        value = cell.value
        key: str | None = None
        if isinstance(value, str):
            key = value.strip().lower()
        elif isinstance(value, int) and not isinstance(value, bool):
            key = str(value)
        if key is not None:
            for candidate in spec.values:
                if str(candidate).lower() == key:
                    return candidate
            for alias, target in spec.aliases.items():
                if alias.strip().lower() == key:
                    return target
        values = ", ".join(str(v) for v in spec.values)
        aliases = ", ".join(spec.aliases)
        raise self.cell_error(
            record,
            cell,
            f"expected one of {values}" + (f" (or an alias: {aliases})" if aliases else ""),
            f"write one of the values (case is ignored); see {_DOCS}",
        )

    def text(self, record: _Record, cell: _Cell) -> str:
        value = cell.value
        if isinstance(value, str):
            return value.strip()
        if isinstance(value, int) and not isinstance(value, bool):
            return str(value)
        raise self.cell_error(record, cell, "expected text", "give the value as a JSON string")

    # rows -------------------------------------------------------------------------

    def patient(self, record: _Record) -> PatientFacts:
        index = _column_index()
        by_field: dict[str, list[tuple[tuple[int, int], Fact, _Cell]]] = {}
        for cell in record.cells:
            spec, alt = index[cell.column]
            if self.is_missing(cell.value):
                continue
            fact = self.parse(record, cell, spec, alt)
            rank = 0 if alt is None else 1 + spec.alternatives.index(alt)
            by_field.setdefault(spec.name, []).append(((rank, cell.position), fact, cell))
        facts: dict[str, Fact] = {}
        for spec in clinical_schema():
            given = sorted(by_field.get(spec.name, []), key=lambda item: item[0])
            if not given:
                if spec.required:
                    raise self.error(
                        f"{record.where}, column {spec.name} is empty: every row needs a value",
                        tag=spec.name,
                        hint=f"give the {spec.name} of every row",
                    )
                continue
            _, chosen, chosen_cell = given[0]
            for _, other, other_cell in given[1:]:
                self.check_agreement(record, spec, chosen, chosen_cell, other, other_cell)
            facts[spec.name] = chosen
        self.derive_bmi(record, facts)
        patient_id = facts[_PATIENT_ID].value
        assert isinstance(patient_id, str)
        return PatientFacts(
            patient_id=patient_id,
            row=record.row,
            line=record.line,
            file=self.file,
            facts=MappingProxyType(facts),
        )

    def check_agreement(
        self,
        record: _Record,
        spec: FieldSpec,
        first: Fact,
        first_cell: _Cell,
        second: Fact,
        second_cell: _Cell,
    ) -> None:
        a, b = first.value, second.value
        if spec.type == "number":
            assert isinstance(a, float) and isinstance(b, float)
            agree = abs(a - b) <= _AGREEMENT * max(abs(a), abs(b))
            tolerance = f" by more than {_AGREEMENT:.1%}"
        else:
            agree = a == b
            tolerance = ""
        if agree:
            return

        def shown(fact: Fact, cell: _Cell) -> str:
            text = f"{cell.column} = {cell.raw!r}"
            if fact.converted is not None:
                text += f" (= {_format_number(cast(float, fact.value))} {spec.unit})"
            return text

        raise self.error(
            f"{record.where}: columns {first_cell.column} and {second_cell.column} give "
            f"{spec.name} twice and disagree{tolerance}: {shown(first, first_cell)}, "
            f"{shown(second, second_cell)}",
            tag=spec.name,
            hint="correct one of them, or leave one cell empty",
        )

    def derive_bmi(self, record: _Record, facts: dict[str, Fact]) -> None:
        weight, height = facts.get(_WEIGHT), facts.get(_HEIGHT)
        if weight is None or height is None:
            return
        w, h = cast(float, weight.value), cast(float, height.value)
        bmi = w / (h / 100.0) ** 2
        spec = field_spec(_BMI)
        given = facts.get(_BMI)
        sources = f"{weight.column} and {height.column}"
        if given is not None:
            value = cast(float, given.value)
            if abs(value - bmi) > _BMI_AGREEMENT * bmi:
                raise self.error(
                    f"{record.where}: column {given.column} = {given.raw!r} disagrees with "
                    f"{sources}, which give {_format_number(bmi)} {spec.unit} (tolerance "
                    f"{_BMI_AGREEMENT:.0%})",
                    tag=_BMI,
                    hint=f"correct {given.column}, the weight or the height, or leave "
                    f"{given.column} empty to have it computed",
                )
            return
        if (spec.min is not None and bmi < spec.min) or (spec.max is not None and bmi > spec.max):
            raise self.error(
                f"{record.where}: {weight.column} = {weight.raw!r} and {height.column} = "
                f"{height.raw!r} give BMI {_format_number(bmi)} {spec.unit}: impossible value, "
                f"outside the plausible range {_plain(spec.min or 0)} to "
                f"{_plain(spec.max or math.inf)} {spec.unit}",
                tag=_BMI,
                hint="check the weight and the height and their units (kg, cm)",
            )
        facts[_BMI] = Fact(
            field=_BMI,
            value=bmi,
            unit=spec.unit,
            column="",
            raw="",
            row=record.row,
            line=record.line,
            file=self.file,
            derived=f"from {weight.column} {weight.raw.strip()} and "
            f"{height.column} {height.raw.strip()}",
            location=record.location,
        )

    def patients(self, records: Sequence[_Record]) -> tuple[PatientFacts, ...]:
        if not records:
            raise self.error(
                f"{self.path.name} has no patient rows",
                tag=None,
                hint="give one row (JSON: one object) per patient",
            )
        result: list[PatientFacts] = []
        unique = [spec.name for spec in clinical_schema() if spec.unique]
        seen: dict[str, dict[FactValue, _Record]] = {name: {} for name in unique}
        for record in records:
            patient = self.patient(record)
            for name in unique:
                fact = patient.facts.get(name)
                if fact is None:
                    continue
                first = seen[name].get(fact.value)
                if first is not None:
                    raise self.error(
                        f"{record.where}: {name} {fact.value!r} is already used by {first.where}",
                        tag=name,
                        hint=f"give each patient one row, with its own {name}",
                    )
                seen[name][fact.value] = record
            result.append(patient)
        return tuple(result)


def _format_raw(cell: _Cell) -> str:
    return cell.raw.strip()


def _csv_records(reader: _Reader, text: str) -> tuple[tuple[str, ...], list[_Record]]:
    rows = csv.reader(io.StringIO(text, newline=""), strict=True)
    previous_line = 0
    records: list[_Record] = []
    header: list[str] | None = None
    header_line = 1
    try:
        for cells in rows:
            start = previous_line + 1
            previous_line = rows.line_num
            if not any(c.strip() for c in cells):
                continue  # blank line, or a row of empty cells
            if header is None:
                header, header_line = [c.strip() for c in cells], start
                _check_csv_header(reader, header, header_line)
                continue
            if len(cells) != len(header):
                raise reader.error(
                    f"row {len(records) + 1} (line {start}) has {len(cells)} cells, the header "
                    f"(line {header_line}) has {len(header)} columns",
                    tag=None,
                    hint="every row needs one cell per column; write decimals with a point "
                    "(11.8, not 11,8) and put double quotes around a text that holds a comma",
                )
            records.append(
                _Record(
                    row=len(records) + 1,
                    line=start,
                    location=f"line {start}",
                    cells=tuple(
                        _Cell(column, position, raw, raw)
                        for position, (column, raw) in enumerate(zip(header, cells, strict=True))
                    ),
                )
            )
    except csv.Error as exc:
        raise reader.error(
            f"{reader.path.name} line {rows.line_num}: not readable as CSV ({exc})",
            tag=None,
            hint="save the file as comma-separated values (quotes around cells that hold "
            "commas or quotes, doubled quotes inside)",
        ) from None
    if header is None:
        raise reader.error(
            f"{reader.path.name} is empty: expected a header line with patient_id and the "
            "fact columns",
            tag=None,
            hint=f"see {_DOCS} for the columns",
        )
    return tuple(header), records


def _check_csv_header(reader: _Reader, header: list[str], line: int) -> None:
    if len(header) == 1 and any(sep in header[0] for sep in (";", "\t")):
        raise reader.error(
            f"the header (line {line}) is one column {header[0][:60]!r}: the file looks "
            "semicolon- or tab-separated",
            tag=None,
            hint="save the file with commas as separators (and points as decimal marks)",
        )
    for position, name in enumerate(header, start=1):
        if not name:
            raise reader.error(
                f"column {position} of the header (line {line}) has no name",
                tag=None,
                hint="name the column or delete it (a trailing comma makes an empty column)",
            )
    reader.check_columns(header, {c: f"the header (line {line})" for c in header})
    if _PATIENT_ID not in header:
        raise reader.error(
            f"the header (line {line}) has no {_PATIENT_ID} column",
            tag=_PATIENT_ID,
            hint=f"add a {_PATIENT_ID} column with each patient's pseudonymous key",
        )


class _JsonObject(dict[str, Any]):
    """A decoded JSON object that remembers the keys it saw twice."""

    duplicates: tuple[str, ...] = ()


def _json_object(pairs: list[tuple[str, Any]]) -> _JsonObject:
    obj = _JsonObject()
    twice = []
    for key, value in pairs:
        if key in obj:
            twice.append(key)
        obj[key] = value
    obj.duplicates = tuple(twice)
    return obj


def _json_records(reader: _Reader, text: str) -> tuple[tuple[str, ...], list[_Record]]:
    name = reader.path.name
    try:
        data = json.loads(text, object_pairs_hook=_json_object)
    except json.JSONDecodeError as exc:
        raise reader.error(
            f"{name} is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}",
            tag=None,
            hint="fix the JSON syntax",
        ) from None
    prefix = ""
    shape_hint = 'give a list of objects, or {"patients": [...]}, one object per patient'
    if isinstance(data, dict):
        unknown = sorted(set(data) - {"patients", "schema_version"})
        if "patients" not in data or unknown:
            raise reader.error(
                f"{name}: the top-level object has keys {sorted(data)}; expected "
                '"patients" (and optionally "schema_version")',
                tag=None,
                hint=shape_hint,
            )
        version = data.get("schema_version", SCHEMA_VERSION)
        if str(version) != SCHEMA_VERSION:
            raise reader.error(
                f"{name}: schema_version is {version!r}, this reader understands "
                f"{SCHEMA_VERSION!r}",
                tag="schema_version",
                hint=f"use the columns of schema version {SCHEMA_VERSION} ({_DOCS})",
            )
        data, prefix = data["patients"], "patients"
    if not isinstance(data, list):
        raise reader.error(
            f"{name}: expected a list of patients, got a JSON {_json_kind(data)}",
            tag=None,
            hint=shape_hint,
        )
    columns: dict[str, str] = {}  # key -> where it first appears
    for index, item in enumerate(data):
        where = f"row {index + 1} ({prefix}[{index}])"
        if not isinstance(item, dict):
            raise reader.error(
                f"{name} {where}: expected an object, got a JSON {_json_kind(item)}",
                tag=None,
                hint=shape_hint,
            )
        if isinstance(item, _JsonObject) and item.duplicates:
            raise reader.error(
                f"{name} {where}: key {item.duplicates[0]!r} is given twice in one object",
                tag=item.duplicates[0],
                hint="give each key once per patient",
            )
        for key in item:
            columns.setdefault(key, where)
    reader.check_columns(list(columns), columns)
    records = []
    for index, item in enumerate(data):
        cells = []
        for position, (key, value) in enumerate(item.items()):
            if isinstance(value, dict | list):
                raise reader.error(
                    f"row {index + 1} ({prefix}[{index}]), column {key}: expected a single "
                    f"value, got a JSON {_json_kind(value)}",
                    tag=key,
                    hint="give a number, a boolean, a string or null",
                )
            raw = value if isinstance(value, str) else json.dumps(value)
            cells.append(_Cell(key, position, raw, value))
        records.append(
            _Record(row=index + 1, line=index, location=f"{prefix}[{index}]", cells=tuple(cells))
        )
    return tuple(columns), records


def _json_kind(value: object) -> str:
    if isinstance(value, dict):
        return "object"
    if isinstance(value, list):
        return "array"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    return "null"


def read_clinical(path: str | Path) -> ClinicalCohort:
    """Read and check a clinical facts file (CSV or JSON).

    Parameters
    ----------
    path
        A ``.csv`` or ``.json`` file following the clinical schema (``docs/clinical.md``).

    Returns
    -------
    ClinicalCohort
        One :class:`PatientFacts` per row, values typed and converted to canonical units,
        the file's SHA-256 and its columns.

    Raises
    ------
    InputPathError
        The file does not exist, is not a file, or cannot be read.
    ClinicalDataError
        Anything wrong in the file: an unknown extension or column, an impossible or
        unreadable value, a duplicated patient, two columns of one fact that disagree.
        The message names the row, line, column and value.
    """
    file = Path(path)
    if not file.exists():
        raise InputPathError(
            f"clinical facts file {file} does not exist",
            files=[file],
            hint="check the path",
        )
    if not file.is_file():
        raise InputPathError(
            f"clinical facts path {file} is not a file", files=[file], hint="give the file"
        )
    suffix = file.suffix.lower()
    if suffix not in _SUFFIXES:
        raise ClinicalDataError(
            f"clinical facts file {file.name} has extension {file.suffix!r}; accepted: "
            f"{', '.join(_SUFFIXES)}",
            files=[file],
            hint="save the table as UTF-8 CSV (.csv) or as JSON (.json)",
        )
    try:
        data = file.read_bytes()
    except OSError as exc:
        raise InputPathError(
            f"cannot read clinical facts file {file}: {exc.strerror}",
            files=[file],
            hint="check the permissions",
        ) from None
    reader = _Reader(file)
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise reader.error(
            f"{file.name} is not UTF-8 text (byte {exc.start} is 0x{data[exc.start]:02x})",
            tag=None,
            hint="save the file as UTF-8 (in a spreadsheet: CSV UTF-8)",
        ) from None
    if suffix == ".csv":
        columns, records = _csv_records(reader, text)
    else:
        columns, records = _json_records(reader, text)
    return ClinicalCohort(
        path=file,
        sha256=hashlib.sha256(data).hexdigest(),
        columns=columns,
        patients=reader.patients(records),
    )

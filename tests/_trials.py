"""Helpers for the eligibility-engine tests (not a test module).

* Clinical facts: :func:`make_patient` builds :class:`PatientFacts` directly from canonical
  values (fast); :func:`read_patient_csv` writes the same values to a CSV file, optionally
  with some facts in an alternative unit column, and reads it back with
  :func:`read_clinical` (the unit conversion path, end to end).
* Imaging: :func:`lesion`, :func:`scan` and :func:`imaging` build :class:`ImagingFacts`
  from compact descriptions.
* :class:`Case`: one patient (facts + imaging) that variants are derived from.
* :func:`rule_facts` lists the facts a protocol's rules decide on, so the tests can check
  that every one of them is covered.
"""

from __future__ import annotations

import csv
import dataclasses
import datetime
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from netvolume.trials import (
    Eligibility,
    Fact,
    ImagedLesion,
    ImagedScan,
    ImagingFacts,
    PatientFacts,
    Protocol,
    Status,
    evaluate,
    field_spec,
    read_clinical,
)
from netvolume.trials.protocol import (
    REFERENCE,
    AllRule,
    AnyRule,
    CompareRule,
    ImagingRule,
    IntervalRule,
    ReviewRule,
    Rule,
)

MET, NOT_MET = Status.MET, Status.NOT_MET
UNKNOWN, NEEDS_REVIEW = Status.UNKNOWN, Status.NEEDS_REVIEW

#: The reference (inclusion) date of the reference patients.
REF = datetime.date(2024, 6, 1)
CLINICAL_FILE = "clinical.csv"


def before(days: int, ref: datetime.date = REF) -> datetime.date:
    """The date ``days`` days before ``ref`` (negative: after)."""
    return ref - datetime.timedelta(days=days)


# --- clinical facts ------------------------------------------------------------------------


def _typed(name: str, value: Any) -> Any:
    kind = field_spec(name).type
    if kind == "number":
        return float(value)
    if kind == "integer":
        return int(value)
    if kind == "date" and isinstance(value, str):
        return datetime.date.fromisoformat(value)
    if kind == "bool":
        assert isinstance(value, bool), f"{name}: {value!r} is not a bool"
    return value


def _text(value: Any) -> str:
    """A canonical value as a CSV cell."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime.date):
        return value.isoformat()
    return str(value)


def make_fact(name: str, value: Any, *, line: int = 2, file: str = CLINICAL_FILE) -> Fact:
    """A :class:`Fact` as ``read_clinical`` would give for the canonical column ``name``."""
    value = _typed(name, value)
    return Fact(
        field=name,
        value=value,
        unit=field_spec(name).unit,
        column=name,
        raw=_text(value),
        row=line - 1,
        line=line,
        file=file,
        location=f"line {line}",
    )


def make_patient(values: Mapping[str, Any], patient_id: str = "P1") -> PatientFacts:
    """:class:`PatientFacts` from canonical values (``None`` values are left out)."""
    facts = {name: make_fact(name, v) for name, v in values.items() if v is not None}
    return PatientFacts(patient_id=patient_id, row=1, line=2, file=CLINICAL_FILE, facts=facts)


def write_clinical_csv(folder: Path, rows: list[Mapping[str, Any]], name: str = "c.csv") -> Path:
    """Write rows of cells (header = union of keys, in order) as a clinical CSV."""
    header: list[str] = []
    for row in rows:
        header += [k for k in row if k not in header]
    path = folder / name
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        for row in rows:
            writer.writerow(["" if row.get(k) is None else _text(row[k]) for k in header])
    return path


def read_patient_csv(
    folder: Path,
    values: Mapping[str, Any],
    *,
    replace: Mapping[str, Mapping[str, Any]] | None = None,
    patient_id: str = "P1",
) -> PatientFacts:
    """Write one patient to a CSV file and read it back with ``read_clinical``.

    ``replace`` gives some facts in other columns: ``{"hb_g_dl": {"hb_g_l": 90}}`` writes
    the column ``hb_g_l = 90`` instead of ``hb_g_dl``; ``{"bmi_kg_m2": {"weight_kg": 160,
    "height_m": 2.0}}`` has the BMI derived. Cells are written as ``str(value)`` (booleans
    ``true``/``false``, dates ISO), so ``89.9`` is read as the text ``89.9``.
    """
    replace = dict(replace or {})
    row: dict[str, Any] = {"patient_id": patient_id}
    for name, value in values.items():
        if name in replace:
            row.update(replace.pop(name))
        elif value is not None:
            row[name] = value
    for cells in replace.values():  # facts the patient did not have
        row.update(cells)
    cohort = read_clinical(write_clinical_csv(folder, [row]))
    return cohort.patients[0]


# --- imaging -------------------------------------------------------------------------------


def lesion(
    lesion_id: str,
    ld_mm: float | None,
    *,
    organ: str = "liver",
    krenning: int | None = 4,
    sa_mm: float | None = None,
    measurable: bool | None = None,
    nodal: bool = False,
    suv_max: float | None = None,
    volume_ml: float | None = None,
    tumour_to_liver: float | None = None,
) -> ImagedLesion:
    """A lesion (its study is filled in by :func:`scan`).

    ``measurable`` defaults to RECIST 1.1: LD >= 10 mm, or SA >= 15 mm for a node.
    """
    if sa_mm is None and ld_mm is not None:
        sa_mm = round(ld_mm * 0.7, 1)
    if measurable is None:
        if nodal:
            measurable = sa_mm is not None and sa_mm >= 15.0
        else:
            measurable = ld_mm is not None and ld_mm >= 10.0
    if suv_max is None and krenning is not None:
        suv_max = {0: 1.0, 1: 3.0, 2: 6.0, 3: 12.0, 4: 25.0}.get(krenning, 10.0)
    return ImagedLesion(
        lesion_id=lesion_id,
        measure_id=lesion_id,
        study="",
        organ=organ,
        nodal=nodal,
        ld_mm=ld_mm,
        sa_mm=sa_mm,
        volume_ml=volume_ml,
        measurable=measurable,
        krenning_grade=krenning,
        suv_max=suv_max,
        tumour_to_liver=tumour_to_liver,
    )


def scan(
    date: datetime.date,
    *lesions: ImagedLesion,
    study: str | None = None,
    response: str | None = None,
    pet: bool | None = True,
    new: tuple[str, ...] = (),
    ltb: float | None = None,
    measured: bool = True,
) -> ImagedScan:
    """One time point; ``measured=False`` gives no lesion measurements (``lesions=None``)."""
    name = study or f"S{date.isoformat()}"
    return ImagedScan(
        study=name,
        date=date,
        study_uid=f"2.25.{date.toordinal()}",
        ct_series_uid=f"2.25.{date.toordinal()}1",
        pet_series_uid=f"2.25.{date.toordinal()}2" if pet else None,
        source=f"imaging/P1/studies/{name}",
        lesions=tuple(dataclasses.replace(les, study=name) for les in lesions)
        if measured
        else None,
        has_pet=pet,
        overall_response=response,
        new_lesions=new,
        liver_tumour_burden_pct=ltb,
        liver_volume_ml=1600.0 if ltb is not None else None,
        n_liver_lesions=sum(les.organ == "liver" for les in lesions) if ltb is not None else None,
    )


def imaging(*scans: ImagedScan, key: str = "P1") -> ImagingFacts:
    """A patient's imaging record (scans sorted by date, PD date = first PD)."""
    ordered = tuple(sorted(scans, key=lambda s: s.date))
    pd = [s.date for s in ordered if s.overall_response == "PD"]
    responses = [s.overall_response for s in ordered if s.overall_response]
    best = next((r for r in ("CR", "PR", "SD", "PD") if r in responses), None)
    return ImagingFacts(
        patient_key=key,
        source=f"imaging/{key}",
        scans=ordered,
        best_overall_response=best,
        pd_date=pd[0] if pd else None,
    )


# --- a patient and its variants ------------------------------------------------------------

_KEEP: Any = object()


@dataclass(frozen=True)
class Case:
    """One patient: canonical clinical values and imaging."""

    facts: Mapping[str, Any]
    imaging: ImagingFacts | None = None
    note: str = ""

    def but(
        self,
        *drop: str,
        imaging: ImagingFacts | None = _KEEP,
        note: str = "",
        **values: Any,
    ) -> Case:
        """A variant: facts in ``drop`` removed (``"imaging"``: no imaging), values set."""
        facts = {k: v for k, v in self.facts.items() if k not in drop}
        facts.update(values)
        img = self.imaging if imaging is _KEEP else imaging
        if "imaging" in drop:
            img = None
        return Case(facts, img, note or self.note)

    def patient(self) -> PatientFacts:
        return make_patient(self.facts)

    def evaluate(self, protocol: Protocol) -> Eligibility:
        return evaluate(protocol, self.patient(), self.imaging)


def statuses(result: Eligibility, *, counted: bool = True) -> dict[str, Status]:
    """Criterion id -> status (only inclusion/exclusion criteria when ``counted``)."""
    return {r.criterion: r.status for r in result.results if not counted or r.kind != "information"}


def counted_ids(protocol: Protocol) -> tuple[str, ...]:
    """The ids of the criteria that count for the verdict."""
    return tuple(c.id for c in protocol.criteria if c.kind != "information")


# --- what a protocol uses ------------------------------------------------------------------


def _walk(rule: Rule) -> Iterator[Rule]:
    yield rule
    if isinstance(rule, AnyRule | AllRule):
        for sub in rule.of:
            yield from _walk(sub)


@dataclass(frozen=True)
class Uses:
    """What one protocol's rules decide on."""

    facts: dict[str, set[str]] = field(default_factory=dict)  # fact -> criterion ids
    imaging: set[str] = field(default_factory=set)  # criteria with an imaging rule
    reference: set[str] = field(default_factory=set)  # criteria that need the reference
    show: dict[str, tuple[str, ...]] = field(default_factory=dict)  # review: shown facts


def rule_facts(protocol: Protocol) -> Uses:
    """The facts (and imaging) each criterion's rule and ``applies_if`` decide on.

    ``show`` facts of a review rule are only displayed and are listed apart.
    """
    uses = Uses()
    for c in protocol.criteria:
        rules = [*_walk(c.rule), *(_walk(c.applies_if) if c.applies_if else ())]
        for rule in rules:
            names: list[str] = []
            if isinstance(rule, CompareRule):
                names = [rule.fact, *([rule.times] if rule.times else [])]
            elif isinstance(rule, IntervalRule):
                names = [n for n in (rule.start, rule.end) if n != REFERENCE]
                if REFERENCE in (rule.start, rule.end):
                    uses.reference.add(c.id)
            elif isinstance(rule, ReviewRule):
                names = [rule.fact] if rule.fact else []
                uses.show[c.id] = rule.show
            elif isinstance(rule, ImagingRule):
                uses.imaging.add(c.id)
            for name in names:
                uses.facts.setdefault(name, set()).add(c.id)
    return uses


def review_rules(protocol: Protocol) -> dict[str, ReviewRule]:
    """Criterion id -> its review rule (criteria whose rule is a review)."""
    return {c.id: c.rule for c in protocol.criteria if isinstance(c.rule, ReviewRule)}

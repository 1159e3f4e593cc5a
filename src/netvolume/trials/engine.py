"""The eligibility engine: a protocol's criteria evaluated on one patient's facts.

For each criterion the engine gives a status (:class:`~netvolume.trials.Status`), one line
of evidence a reader can check, the provenance of every value it used (the clinical file
and line, the study, series and lesion) and, for ``unknown``, the facts that are missing.
The verdict is ``not_eligible`` when any inclusion or exclusion criterion is not met,
otherwise ``undetermined`` when any is unknown or needs review, otherwise ``eligible``;
``information`` criteria are reported but do not count.

Dates: the patient is evaluated at the protocol's reference date, the first of its
``reference_date`` facts that the patient has (inclusion date, PRRT start, ...). Imaging
is looked at only up to that date.
"""

from __future__ import annotations

import dataclasses
import datetime
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

from netvolume._version import __version__
from netvolume.trials._status import CheckOutcome, Status, Verdict
from netvolume.trials.clinical import Fact, PatientFacts, field_spec
from netvolume.trials.imaging import IMAGING_CHECKS, ImagingFacts
from netvolume.trials.protocol import (
    REFERENCE,
    AllRule,
    AnyRule,
    CompareRule,
    Criterion,
    ImagingRule,
    IntervalRule,
    Protocol,
    ReviewRule,
    Rule,
)

__all__ = ["CriterionResult", "Eligibility", "evaluate", "evaluate_cohort"]


@dataclass(frozen=True)
class CriterionResult:
    """One criterion evaluated for one patient."""

    criterion: str
    kind: str
    text: str
    source: str
    rule: str
    status: Status
    evidence: str
    provenance: tuple[str, ...] = ()
    missing: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return {
            "criterion": self.criterion,
            "kind": self.kind,
            "text": self.text,
            "source": self.source,
            "rule": self.rule,
            "status": str(self.status),
            "evidence": self.evidence,
            "provenance": list(self.provenance),
            "missing": list(self.missing),
        }


@dataclass(frozen=True)
class Eligibility:
    """One patient's eligibility for one protocol."""

    patient_id: str
    protocol: str
    protocol_version: str
    reference_date: datetime.date | None
    reference_date_source: str
    results: tuple[CriterionResult, ...]
    verdict: Verdict
    reason: str
    imaging_source: str | None = None

    def result(self, criterion: str) -> CriterionResult:
        """The result of one criterion (KeyError when the protocol has no such id)."""
        for r in self.results:
            if r.criterion == criterion:
                return r
        raise KeyError(criterion)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return {
            "patient_id": self.patient_id,
            "protocol": self.protocol,
            "protocol_version": self.protocol_version,
            "reference_date": self.reference_date.isoformat() if self.reference_date else None,
            "reference_date_source": self.reference_date_source,
            "verdict": str(self.verdict),
            "reason": self.reason,
            "imaging_source": self.imaging_source,
            "criteria": [r.to_dict() for r in self.results],
            "netvolume_version": __version__,
        }


@dataclass(frozen=True)
class _Context:
    facts: PatientFacts
    imaging: ImagingFacts | None
    reference: datetime.date | None
    reference_source: str
    reference_missing: tuple[str, ...]


def _exact(value: float | int) -> Fraction:
    return Fraction(repr(value)) if isinstance(value, float) else Fraction(value)


def _show(fact: Fact) -> str:
    value = fact.value
    if isinstance(value, bool):
        text = str(value).lower()
    elif isinstance(value, float):
        text = f"{value:g}"
    elif isinstance(value, datetime.date):
        text = value.isoformat()
    else:
        text = str(value)
    unit = f" {fact.unit}" if fact.unit else ""
    return f"{fact.field} = {text}{unit}"


def _unknown(names: Iterable[str], what: str = "") -> CheckOutcome:
    names = tuple(names)
    return CheckOutcome(
        Status.UNKNOWN,
        f"missing {', '.join(names)}" + (f" ({what})" if what else ""),
        missing=names,
    )


def _compare(rule: CompareRule, ctx: _Context) -> CheckOutcome:
    fact = ctx.facts.get(rule.fact)
    if fact is None:
        return _unknown([rule.fact])
    value = fact.value
    prov = [fact.describe()]
    shown = _show(fact)
    if rule.op in ("in", "not_in"):
        inside = value in rule.value
        ok = inside if rule.op == "in" else not inside
        return CheckOutcome(
            Status.MET if ok else Status.NOT_MET,
            f"{shown}; required {rule.describe().split(' ', 1)[1]}",
            provenance=tuple(prov),
        )
    if isinstance(value, bool) or isinstance(rule.value, bool) or isinstance(value, str):
        equal = value == rule.value
        ok = equal if rule.op == "==" else not equal
        return CheckOutcome(
            Status.MET if ok else Status.NOT_MET,
            f"{shown}; required {rule.describe().split(' ', 1)[1]}",
            provenance=tuple(prov),
        )
    threshold = _exact(rule.value)
    limit_text = f"{rule.value:g}"
    if rule.times is not None:
        uln = ctx.facts.get(rule.times)
        if uln is None:
            return _unknown([rule.times], f"needed for {rule.fact} {rule.op} {rule.value} x ULN")
        threshold = threshold * _exact(uln.value)  # type: ignore[arg-type]
        prov.append(uln.describe())
        limit_text = f"{rule.value:g} x {_show(uln)} = {float(threshold):g}"
    x = _exact(value)  # type: ignore[arg-type]
    ok = {
        ">": x > threshold,
        ">=": x >= threshold,
        "<": x < threshold,
        "<=": x <= threshold,
        "==": x == threshold,
        "!=": x != threshold,
    }[rule.op]
    unit = field_spec(rule.fact).unit
    unit_text = f" {unit}" if unit and rule.times is None else ""
    return CheckOutcome(
        Status.MET if ok else Status.NOT_MET,
        f"{shown}; required {rule.op} {limit_text}{unit_text}",
        provenance=tuple(prov),
    )


def _date_of(name: str, ctx: _Context) -> tuple[datetime.date | None, str, tuple[str, ...]]:
    if name == REFERENCE:
        if ctx.reference is None:
            return None, "", ctx.reference_missing
        return ctx.reference, f"reference date {ctx.reference.isoformat()}", ()
    fact = ctx.facts.get(name)
    if fact is None or not isinstance(fact.value, datetime.date):
        return None, "", (name,)
    return fact.value, _show(fact), ()


def _interval(rule: IntervalRule, ctx: _Context) -> CheckOutcome:
    start, start_text, miss_a = _date_of(rule.start, ctx)
    end, end_text, miss_b = _date_of(rule.end, ctx)
    if start is None or end is None:
        return _unknown(miss_a + miss_b, rule.describe())
    days = (end - start).days
    ok = (rule.min_days is None or days >= rule.min_days - 1e-9) and (
        rule.max_days is None or days <= rule.max_days + 1e-9
    )
    prov = tuple(
        f.describe()
        for f in (ctx.facts.get(n) for n in (rule.start, rule.end) if n != REFERENCE)
        if f is not None
    )
    return CheckOutcome(
        Status.MET if ok else Status.NOT_MET,
        f"{days} days from {start_text} to {end_text}; required {rule.describe()}",
        provenance=prov,
    )


def _imaging(rule: ImagingRule, ctx: _Context) -> CheckOutcome:
    if ctx.imaging is None:
        return CheckOutcome(
            Status.UNKNOWN,
            f"no imaging result for this patient ({rule.describe()})",
            missing=("imaging",),
        )
    check = IMAGING_CHECKS[rule.check]
    outcome = check.func(ctx.imaging, ctx.reference, rule.params)
    if ctx.reference is None and "reference date" in outcome.missing:
        # name the facts that would give the reference date, as an interval rule does
        missing = tuple(
            dict.fromkeys(
                name
                for m in outcome.missing
                for name in (ctx.reference_missing if m == "reference date" else (m,))
            )
        )
        outcome = dataclasses.replace(
            outcome,
            evidence=f"{outcome.evidence} (missing {', '.join(ctx.reference_missing)})",
            missing=missing,
        )
    return outcome


def _review(rule: ReviewRule, ctx: _Context, text: str) -> CheckOutcome:
    if rule.fact is not None:
        fact = ctx.facts.get(rule.fact)
        if fact is not None:
            ok = fact.value == rule.value
            return CheckOutcome(
                Status.MET if ok else Status.NOT_MET,
                f"investigator's decision recorded: {_show(fact)}; required "
                f"{rule.fact} == {str(rule.value).lower()}",
                provenance=(fact.describe(),),
            )
    shown = []
    prov = []
    for name in rule.show:
        fact = ctx.facts.get(name)
        shown.append(_show(fact) if fact is not None else f"{name} not given")
        if fact is not None:
            prov.append(fact.describe())
    evidence = f"investigator judgement: {text}"
    if rule.fact is not None:
        evidence += f" (record it as {rule.fact} = {str(rule.value).lower()} to settle)"
    if shown:
        evidence += "; known: " + "; ".join(shown)
    if rule.imaging_evidence is not None and ctx.imaging is not None:
        check = IMAGING_CHECKS[rule.imaging_evidence]
        found = check.func(ctx.imaging, ctx.reference, check.params)
        evidence += "; imaging: " + found.evidence
        prov.extend(found.provenance)
    return CheckOutcome(Status.NEEDS_REVIEW, evidence, provenance=tuple(prov))


def _combine(kind: str, outcomes: Sequence[CheckOutcome]) -> CheckOutcome:
    statuses = [o.status for o in outcomes]
    if kind == "any":
        order = (Status.MET, Status.UNKNOWN, Status.NEEDS_REVIEW, Status.NOT_MET)
    else:
        order = (Status.NOT_MET, Status.UNKNOWN, Status.NEEDS_REVIEW, Status.MET)
    status = next(s for s in order if s in statuses)
    if status in (Status.MET, Status.NOT_MET) and (kind == "any") == (status == Status.MET):
        # decided by one sub-rule: show that one first, then the others
        decisive = [o for o in outcomes if o.status == status]
        rest = [o for o in outcomes if o.status != status]
        chosen = decisive + rest
    else:
        chosen = list(outcomes)
    evidence = " | ".join(f"[{o.status}] {o.evidence}" for o in chosen)
    missing = (
        tuple(dict.fromkeys(m for o in outcomes if o.status == Status.UNKNOWN for m in o.missing))
        if status == Status.UNKNOWN
        else ()  # met or not met whatever the unknown sub-rules would say
    )
    provenance = tuple(dict.fromkeys(p for o in chosen for p in o.provenance))
    return CheckOutcome(status, evidence, provenance=provenance, missing=missing)


def _eval(rule: Rule, ctx: _Context, text: str) -> CheckOutcome:
    if isinstance(rule, CompareRule):
        return _compare(rule, ctx)
    if isinstance(rule, IntervalRule):
        return _interval(rule, ctx)
    if isinstance(rule, ImagingRule):
        return _imaging(rule, ctx)
    if isinstance(rule, ReviewRule):
        return _review(rule, ctx, text)
    kind = "any" if isinstance(rule, AnyRule) else "all"
    assert isinstance(rule, AnyRule | AllRule)
    return _combine(kind, [_eval(r, ctx, text) for r in rule.of])


def _criterion(c: Criterion, ctx: _Context) -> CriterionResult:
    if c.applies_if is not None:
        applies = _eval(c.applies_if, ctx, c.text)
        if applies.status == Status.NOT_MET:
            outcome = CheckOutcome(
                Status.MET,
                f"not applicable: {applies.evidence}",
                provenance=applies.provenance,
            )
        elif applies.status == Status.MET:
            outcome = _eval(c.rule, ctx, c.text)
        else:
            outcome = CheckOutcome(
                applies.status,
                f"whether it applies: {applies.evidence}",
                provenance=applies.provenance,
                missing=applies.missing,
            )
    else:
        outcome = _eval(c.rule, ctx, c.text)
    rule_text = c.rule.describe()
    if c.applies_if is not None:
        rule_text += f" (if {c.applies_if.describe()})"
    return CriterionResult(
        criterion=c.id,
        kind=c.kind,
        text=c.text,
        source=c.source,
        rule=rule_text,
        status=outcome.status,
        evidence=outcome.evidence,
        provenance=outcome.provenance,
        missing=outcome.missing,
    )


def _reference(
    protocol: Protocol, facts: PatientFacts
) -> tuple[datetime.date | None, str, tuple[str, ...]]:
    for name in protocol.reference_date:
        fact = facts.get(name)
        if fact is not None and isinstance(fact.value, datetime.date):
            return fact.value, fact.describe(), ()
    return None, "none of " + ", ".join(protocol.reference_date), protocol.reference_date


def evaluate(
    protocol: Protocol, facts: PatientFacts, imaging: ImagingFacts | None = None
) -> Eligibility:
    """Evaluate every criterion of ``protocol`` for one patient.

    Parameters
    ----------
    protocol : Protocol
    facts : PatientFacts
        The patient's clinical facts (one row of the clinical table).
    imaging : ImagingFacts, optional
        The patient's imaging (``netvolume assess`` output); without it every imaging
        criterion is ``unknown``.

    Returns
    -------
    Eligibility
    """
    reference, source, missing = _reference(protocol, facts)
    ctx = _Context(facts, imaging, reference, source, missing)
    results = tuple(_criterion(c, ctx) for c in protocol.criteria)
    counted = [r for r in results if r.kind != "information"]
    failed = [r.criterion for r in counted if r.status == Status.NOT_MET]
    open_ = [r.criterion for r in counted if r.status in (Status.UNKNOWN, Status.NEEDS_REVIEW)]
    if failed:
        verdict, reason = Verdict.NOT_ELIGIBLE, "not met: " + ", ".join(failed)
    elif open_:
        verdict, reason = Verdict.UNDETERMINED, "unknown or to review: " + ", ".join(open_)
    else:
        verdict, reason = Verdict.ELIGIBLE, f"all {len(counted)} criteria met"
    return Eligibility(
        patient_id=facts.patient_id,
        protocol=protocol.name,
        protocol_version=protocol.version,
        reference_date=reference,
        reference_date_source=source,
        results=results,
        verdict=verdict,
        reason=reason,
        imaging_source=imaging.source if imaging is not None else None,
    )


def evaluate_cohort(
    protocol: Protocol,
    patients: Iterable[PatientFacts],
    imaging: Mapping[str, ImagingFacts] | None = None,
) -> list[Eligibility]:
    """Evaluate every patient; imaging is matched by patient id (or ``imaging_id``)."""
    out = []
    for facts in patients:
        key_fact = facts.get("imaging_id")
        keys = ([str(key_fact.value)] if key_fact is not None else []) + [facts.patient_id]
        found = next((imaging[k] for k in keys if imaging and k in imaging), None)
        out.append(evaluate(protocol, facts, found))
    return out

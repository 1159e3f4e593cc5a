"""Trial protocol definitions: data files (TOML), read and checked into records.

A protocol file (``src/netvolume/trials/protocols/<name>.toml``) names the trial, the seed
text it was written from, the facts that give the date a patient is evaluated at, and its
criteria. Every criterion has an ``id``, a ``kind`` (``inclusion``, ``exclusion`` or
``information``: shown but not part of the verdict), a plain-language ``text``, the
``source`` (the protocol's own words) and one ``rule``. A criterion is always written as
what an eligible patient satisfies ("no morbid obesity: BMI <= 40"), so ``met`` is in
favour of eligibility for an exclusion criterion too.

Rules (``rule = "..."``):

``compare``
    ``fact`` ``op`` ``value`` with ``op`` one of ``> >= < <= == != in not_in``; with
    ``times = "<fact>"`` the value is a multiple of that fact (``bilirubin_umol_l <= 2 x
    bilirubin_uln_umol_l``). Numbers are compared as the decimals written (exactly).
``interval``
    the days from ``start`` to ``end`` (each a date fact or ``"reference"``) within
    ``min_days``/``max_days`` (or ``_weeks``, or ``_months`` of 365.25/12 days), bounds
    inclusive.
``imaging``
    an imaging check (``check = "..."``, parameters as keys; see
    :data:`netvolume.trials.imaging.IMAGING_CHECKS`) on the patient's scans on or before
    the reference date.
``review``
    investigator judgement: ``needs_review`` showing the facts named in ``show`` (and the
    imaging evidence of ``imaging_evidence``), unless the decision is recorded in ``fact``
    (met when it equals ``value``).
``any`` / ``all``
    ``of = [ {rule...}, ... ]``: met when any / all of the sub-rules are met.

``applies_if`` (a rule) makes a criterion conditional: when it is not met, the criterion is
met as not applicable ("pregnancy test: only for women of childbearing potential").
"""

from __future__ import annotations

import hashlib
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

from netvolume.errors import ClinicalDataError, ProtocolError
from netvolume.trials.clinical import field_spec
from netvolume.trials.imaging import DAYS_PER_MONTH, IMAGING_CHECKS, check_params

__all__ = [
    "AllRule",
    "AnyRule",
    "CompareRule",
    "Criterion",
    "ImagingRule",
    "IntervalRule",
    "Protocol",
    "ReviewRule",
    "Rule",
    "load_protocol",
    "protocol_names",
    "read_protocol",
]

KINDS = ("inclusion", "exclusion", "information")
OPS = (">", ">=", "<", "<=", "==", "!=", "in", "not_in")
REFERENCE = "reference"


@dataclass(frozen=True)
class CompareRule:
    """``fact op value`` (``value x times`` when ``times`` names a fact)."""

    fact: str
    op: str
    value: Any
    times: str | None = None

    def describe(self) -> str:
        """``bilirubin_umol_l <= 2 x bilirubin_uln_umol_l``."""
        value = self.value
        if isinstance(value, bool):
            value = str(value).lower()
        elif isinstance(value, list | tuple):
            value = "[" + ", ".join(str(v) for v in value) + "]"
        times = f" x {self.times}" if self.times else ""
        return f"{self.fact} {self.op} {value}{times}"


@dataclass(frozen=True)
class IntervalRule:
    """Days from ``start`` to ``end`` within [``min_days``, ``max_days``] (inclusive)."""

    start: str
    end: str
    min_days: float | None
    max_days: float | None
    written: str = ""

    def describe(self) -> str:
        """``days from progression_date to reference in [0, 365.25]``."""
        return self.written or (
            f"days from {self.start} to {self.end} in "
            f"[{self.min_days if self.min_days is not None else '-inf'}, "
            f"{self.max_days if self.max_days is not None else 'inf'}]"
        )


@dataclass(frozen=True)
class ImagingRule:
    """An imaging check with its parameters (defaults filled in)."""

    check: str
    params: Mapping[str, Any]

    def describe(self) -> str:
        """``imaging uptake_lesion(min_ld_mm=20, ...)``."""
        given = ", ".join(f"{k}={v}" for k, v in self.params.items() if v is not None)
        return f"imaging {self.check}({given})"


@dataclass(frozen=True)
class ReviewRule:
    """Investigator judgement, unless recorded in ``fact``."""

    fact: str | None
    value: bool
    show: tuple[str, ...] = ()
    imaging_evidence: str | None = None

    def describe(self) -> str:
        """``investigator judgement (recorded as prior_prrt == false)``."""
        if self.fact:
            return f"investigator judgement (recorded as {self.fact} == {str(self.value).lower()})"
        return "investigator judgement"


@dataclass(frozen=True)
class AnyRule:
    """Met when any sub-rule is met."""

    of: tuple[Rule, ...]

    def describe(self) -> str:
        """``any of (a; b)``."""
        return "any of (" + "; ".join(r.describe() for r in self.of) + ")"


@dataclass(frozen=True)
class AllRule:
    """Met when every sub-rule is met."""

    of: tuple[Rule, ...]

    def describe(self) -> str:
        """``all of (a; b)``."""
        return "all of (" + "; ".join(r.describe() for r in self.of) + ")"


Rule = CompareRule | IntervalRule | ImagingRule | ReviewRule | AnyRule | AllRule


@dataclass(frozen=True)
class Criterion:
    """One criterion of a protocol."""

    id: str
    kind: str
    text: str
    source: str
    rule: Rule
    applies_if: Rule | None = None
    note: str = ""


@dataclass(frozen=True)
class Protocol:
    """A trial protocol: its criteria and where it came from."""

    name: str
    title: str
    version: str
    seed: str
    summary: str
    reference_date: tuple[str, ...]
    criteria: tuple[Criterion, ...]
    path: str
    sha256: str
    analysis: Mapping[str, Any] = field(default_factory=dict)

    def criterion(self, criterion_id: str) -> Criterion:
        """The criterion with this id (ProtocolError when there is none)."""
        for c in self.criteria:
            if c.id == criterion_id:
                return c
        raise ProtocolError(
            f"protocol {self.name!r} has no criterion {criterion_id!r}",
            hint=f"its criteria are {', '.join(c.id for c in self.criteria)}",
        )


# --- reading -------------------------------------------------------------------------------


def _fact(name: Any, where: str, *, types: tuple[str, ...] | None = None) -> str:
    if not isinstance(name, str):
        raise ProtocolError(f"{where}: fact must be a name, got {name!r}", tag="fact")
    try:
        spec = field_spec(name)
    except ClinicalDataError as exc:
        raise ProtocolError(  # keep the schema's suggestion ("did you mean 'age_years'?")
            f"{where}: {exc.message}",
            tag="fact",
            hint=exc.hint or "see docs/clinical.md for the fact names",
        ) from None
    if types is not None and spec.type not in types:
        raise ProtocolError(
            f"{where}: fact {name!r} is a {spec.type}, expected {' or '.join(types)}", tag="fact"
        )
    return name


def _days(table: Mapping[str, Any], bound: str, where: str) -> tuple[float | None, str]:
    found = [
        (unit, table[f"{bound}_{unit}"])
        for unit in ("days", "weeks", "months")
        if f"{bound}_{unit}" in table
    ]
    if not found:
        return None, ""
    if len(found) > 1:
        raise ProtocolError(f"{where}: give {bound}_days, _weeks or _months, not several")
    unit, value = found[0]
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        raise ProtocolError(f"{where}: {bound}_{unit} must be a number >= 0, got {value!r}")
    factor = {"days": 1.0, "weeks": 7.0, "months": DAYS_PER_MONTH}[unit]
    return float(value) * factor, f"{value:g} {unit}"


def _allowed(table: Mapping[str, Any], keys: set[str], where: str) -> None:
    extra = set(table) - keys - {"rule"}
    if extra:
        raise ProtocolError(
            f"{where}: unknown key(s) {', '.join(sorted(extra))}",
            hint=f"a {table.get('rule')} rule takes {', '.join(sorted(keys))}",
        )


def _rule(table: Any, where: str) -> Rule:
    if not isinstance(table, Mapping) or "rule" not in table:
        raise ProtocolError(f"{where}: a rule is a table with a 'rule' key, got {table!r}")
    kind = table["rule"]
    if kind == "compare":
        _allowed(table, {"fact", "op", "value", "times"}, where)
        for key in ("fact", "op", "value"):
            if key not in table:
                raise ProtocolError(f"{where}: compare rule without {key!r}", tag=key)
        fact = _fact(table["fact"], where)
        op = table["op"]
        if op not in OPS:
            raise ProtocolError(f"{where}: op {op!r} is not one of {' '.join(OPS)}", tag="op")
        value = table["value"]
        spec = field_spec(fact)
        if op in ("in", "not_in"):
            if not isinstance(value, list) or not value:
                raise ProtocolError(f"{where}: {op} needs a non-empty list, got {value!r}")
            values = value
        else:
            values = [value]
        for v in values:
            ok = {
                "number": isinstance(v, int | float) and not isinstance(v, bool),
                "integer": isinstance(v, int) and not isinstance(v, bool),
                "bool": isinstance(v, bool),
                "category": isinstance(v, str | int) and not isinstance(v, bool),
                "text": isinstance(v, str),
                "date": False,
            }.get(spec.type, False)
            if not ok:
                raise ProtocolError(
                    f"{where}: value {v!r} does not fit fact {fact!r} ({spec.type})", tag="value"
                )
            if spec.type == "category" and spec.values and v not in spec.values:
                raise ProtocolError(
                    f"{where}: {v!r} is not a value of {fact!r}",
                    tag="value",
                    hint=f"its values are {', '.join(str(x) for x in spec.values)}",
                )
        if spec.type in ("bool", "category", "text") and op not in ("==", "!=", "in", "not_in"):
            raise ProtocolError(f"{where}: {op} does not apply to a {spec.type} fact", tag="op")
        times = table.get("times")
        if times is not None:
            times = _fact(times, where, types=("number", "integer"))
        return CompareRule(fact, op, tuple(value) if isinstance(value, list) else value, times)
    if kind == "interval":
        keys = {"start", "end"} | {
            f"{b}_{u}" for b in ("min", "max") for u in ("days", "weeks", "months")
        }
        _allowed(table, keys, where)
        ends: list[str] = []
        for key in ("start", "end"):
            name = table.get(key)
            if name != REFERENCE:
                name = _fact(name, f"{where} {key}", types=("date",))
            ends.append(str(name))
        lo, lo_text = _days(table, "min", where)
        hi, hi_text = _days(table, "max", where)
        if lo is None and hi is None:
            raise ProtocolError(f"{where}: an interval rule needs a min_ or max_ bound")
        bounds = " and ".join(
            t for t in (f">= {lo_text}" if lo_text else "", f"<= {hi_text}" if hi_text else "") if t
        )
        return IntervalRule(
            ends[0], ends[1], lo, hi, written=f"time from {ends[0]} to {ends[1]} {bounds}"
        )
    if kind == "imaging":
        check = table.get("check")
        if not isinstance(check, str):
            raise ProtocolError(f"{where}: imaging rule without check", tag="check")
        given = {k: v for k, v in table.items() if k not in ("rule", "check")}
        return ImagingRule(check, check_params(check, given, where))
    if kind == "review":
        _allowed(table, {"fact", "value", "show", "imaging_evidence"}, where)
        decision = table.get("fact")
        if decision is not None:
            decision = _fact(decision, where, types=("bool",))
        value = table.get("value", True)
        if not isinstance(value, bool):
            raise ProtocolError(f"{where}: review value must be true or false", tag="value")
        show = table.get("show", [])
        if not isinstance(show, list):
            raise ProtocolError(f"{where}: show must be a list of fact names, got {show!r}")
        for name in show:
            _fact(name, f"{where} show")
        evidence = table.get("imaging_evidence")
        if evidence is not None and evidence not in IMAGING_CHECKS:
            raise ProtocolError(
                f"{where}: unknown imaging check {evidence!r}", tag="imaging_evidence"
            )
        return ReviewRule(decision, value, tuple(show), evidence)
    if kind in ("any", "all"):
        _allowed(table, {"of"}, where)
        subs = table.get("of")
        if not isinstance(subs, list) or len(subs) < 2:
            raise ProtocolError(f"{where}: {kind} needs a list 'of' at least two rules")
        rules = tuple(_rule(s, f"{where} {kind}[{i}]") for i, s in enumerate(subs))
        return AnyRule(rules) if kind == "any" else AllRule(rules)
    raise ProtocolError(
        f"{where}: unknown rule {kind!r}",
        tag="rule",
        hint="use compare, interval, imaging, review, any or all",
    )


def _criterion(table: Any, where: str) -> Criterion:
    if not isinstance(table, Mapping):
        raise ProtocolError(f"{where}: a criterion is a table, got {table!r}")
    for key in ("id", "kind", "text", "source", "rule"):
        if not table.get(key):
            raise ProtocolError(f"{where}: criterion without {key!r}", tag=key)
    where = f"{where} ({table['id']})"
    if table["kind"] not in KINDS:
        raise ProtocolError(f"{where}: kind must be one of {', '.join(KINDS)}", tag="kind")
    rule_keys = {k: v for k, v in table.items() if k not in ("id", "kind", "text", "source")}
    rule_keys.pop("applies_if", None)
    rule_keys.pop("note", None)
    applies = table.get("applies_if")
    return Criterion(
        id=str(table["id"]),
        kind=str(table["kind"]),
        text=str(table["text"]),
        source=str(table["source"]),
        rule=_rule(rule_keys, where),
        applies_if=_rule(applies, f"{where} applies_if") if applies is not None else None,
        note=str(table.get("note", "")),
    )


def read_protocol(path: str | Path) -> Protocol:
    """Read and check one protocol file.

    Raises
    ------
    ProtocolError
        The file is not valid TOML or breaks the format (the message names the file, the
        criterion and the key).
    """
    path = Path(path)
    raw = path.read_bytes()
    try:
        doc = tomllib.loads(raw.decode("utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ProtocolError(f"protocol file {path.name}: {exc}", files=[path]) from None
    where = path.name
    try:
        for key in ("name", "title", "version", "seed", "summary", "reference_date"):
            if not doc.get(key):
                raise ProtocolError(f"{where}: no {key!r}", tag=key)
        refs = doc["reference_date"]
        if isinstance(refs, str):
            refs = [refs]
        for name in refs:
            _fact(name, f"{where} reference_date", types=("date",))
        criteria = tuple(
            _criterion(c, f"{where} criterion {i + 1}")
            for i, c in enumerate(doc.get("criterion", []))
        )
        if not criteria:
            raise ProtocolError(f"{where}: no [[criterion]]")
        ids = [c.id for c in criteria]
        dupes = sorted({i for i in ids if ids.count(i) > 1})
        if dupes:
            raise ProtocolError(f"{where}: duplicate criterion id(s) {', '.join(dupes)}")
    except ProtocolError as exc:
        if exc.files:
            raise
        raise ProtocolError(exc.message, files=[path], tag=exc.tag, hint=exc.hint) from None
    return Protocol(
        name=str(doc["name"]),
        title=str(doc["title"]),
        version=str(doc["version"]),
        seed=str(doc["seed"]),
        summary=str(doc["summary"]).strip(),
        reference_date=tuple(refs),
        criteria=criteria,
        path=str(path),
        sha256=hashlib.sha256(raw).hexdigest(),
        analysis=dict(doc.get("analysis", {})),
    )


def _bundled() -> dict[str, Path]:
    folder = resources.files("netvolume.trials") / "protocols"
    return {Path(str(p)).stem: Path(str(p)) for p in folder.iterdir() if str(p).endswith(".toml")}


def protocol_names() -> tuple[str, ...]:
    """The names of the bundled protocols (the five seed protocols), sorted."""
    return tuple(sorted(_bundled()))


@cache
def _load_cached(name: str) -> Protocol:
    return read_protocol(_bundled()[name])


def load_protocol(name_or_path: str | Path) -> Protocol:
    """A bundled protocol by name (``ibi_response``), or a protocol file by path.

    Raises
    ------
    ProtocolError
        No such protocol, or the file is malformed.
    """
    text = str(name_or_path)
    if text.endswith(".toml") or Path(text).is_file():
        return read_protocol(text)
    bundled = _bundled()
    if text not in bundled:
        raise ProtocolError(
            f"no protocol named {text!r}",
            tag="protocol",
            hint=f"use one of {', '.join(sorted(bundled))} (netvolume protocols lists them) "
            "or give the path of a protocol .toml file",
        )
    return _load_cached(text)

"""RECIST 1.1 engine: records in, records out.

Given one patient's time points (:class:`~netvolume.assess.Observation` records), this
module says what a careful radiologist applying RECIST 1.1 would say: which lesions are
targets and why, the sum of diameters (SOD) and its nadir, the target, non-target and
overall response at every follow-up, the best overall response (BOR) with optional
confirmation, and the date of progression.

Rules (Eisenhauer EA et al., "New response evaluation criteria in solid tumours: Revised
RECIST guideline (version 1.1)", Eur J Cancer 2009;45:228-247, with the EORTC RECIST
working group's clarifications, https://recist.eortc.org/recist-1-1-2/; the project's
summary is ``../shared/docs/DOMAIN.md`` section 1):

* **Measurability at baseline.** Non-nodal: long axis (LD) >= 10 mm, or >= 2 x slice
  thickness when the slices are thicker than 5 mm. Nodes by their short axis (SA):
  >= 15 mm measurable, 10 to < 15 mm pathological (non-target), < 10 mm normal (not
  recorded). A lesion present but not measured, too small to measure, or on a site that
  cannot be measured reproducibly is a non-target. LD 0 at baseline: not there.
* **Targets.** At most 5, at most 2 per organ, all nodes one organ; the largest first
  (LD, or SA for nodes), reproducible lesions before non-reproducible ones, ties broken
  by the lesion id in natural order. A user's selection (``target`` at baseline)
  replaces the automatic one and is checked against the same limits.
* **SOD.** LD of non-nodal targets plus SA of nodal targets (a node keeps its real SA
  even below 10 mm). A disappeared non-nodal target counts 0; "too small to measure"
  counts 5 mm only when no number was recorded (a recorded number is used as is); a
  target that split counts the sum of its fragments; a target that merged into another
  counts 0 (the other carries the merged LD).
* **Target response**, evaluated in this order: PD when SOD >= nadir x 1.2 and SOD -
  nadir >= 5 mm (the nadir is the smallest SOD of the earlier assessments, baseline
  included; from a nadir of 0, an SOD >= 5 mm); CR when every non-nodal target is gone
  and every nodal target has SA < 10 mm; PR when the SOD is <= baseline x 0.7; else SD.
  A target not measured at a follow-up makes the target response NE unless the measured
  ones already meet PD (the missing ones could not change that).
* **Non-target response.** PD on unequivocal progression of any non-target; CR when all
  are absent (nodes: SA < 10 mm); NE when any was not evaluated; else non-CR/non-PD.
* **New lesions.** A lesion reported new, a lesion not recorded at baseline appearing
  (a node only once its SA reaches 10 mm: a normal node growing to >= 10 mm is new), and
  after a CR any reappearing lesion: overall PD. An equivocal new lesion is not PD; if it
  is confirmed at a later time point, progression is dated to the first scan (RC5,
  https://recist.eortc.org/group/new-lesions/).
* **Overall response**: table 1 of the guideline when there are targets, table 2 when
  there are non-targets only; a patient with neither is NE unless new lesions appear.
* **Best overall response**: over the time points up to the first PD. Without
  confirmation, the best of CR > PR > SD > NON_CR_NON_PD > PD, where SD (and
  non-CR/non-PD) counts only from ``min_sd_days`` after baseline. With confirmation
  (non-randomised trials where response is the endpoint), a CR or PR counts only if a
  later time point at least ``confirm_min_days`` later shows the same or better
  response with nothing worse in between (NE allowed); an unconfirmed CR / PR counts as
  SD when it is at least ``min_sd_days`` after baseline (the guideline's table 3).

All threshold comparisons are exact: every axis is taken as the decimal it prints as and
summed as a :class:`fractions.Fraction`, so 16.5 mm -> 11.55 mm is exactly -30 %.
"""

from __future__ import annotations

import dataclasses
import datetime
import itertools
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

from netvolume.assess._checks import exact
from netvolume.assess._records import NONTARGET_STATUSES, Observation, TimePoint
from netvolume.errors import AssessmentInputError

__all__ = [
    "RESPONSES",
    "LesionDecision",
    "PatientRecist",
    "RecistSettings",
    "TimePointResponse",
    "assess_recist",
    "lesion_pieces",
    "natural_key",
    "target_sum_mm",
]

#: The response words, exactly as written in every output.
RESPONSES: tuple[str, ...] = ("CR", "PR", "SD", "PD", "NE", "NON_CR_NON_PD")
_NODAL_GROUP = "lymph_node"
#: A short axis may exceed the long axis by this much (floating-point noise of a
#: measurement on a symmetric lesion), not more.
_AXIS_TOLERANCE_MM = Fraction(1, 10**6)


@dataclass(frozen=True)
class RecistSettings:
    """Every number RECIST 1.1 uses, named; the defaults are the guideline's.

    Parameters
    ----------
    max_targets, max_per_organ : int
        Target limits (5 in all, 2 per organ; all nodes count as one organ).
    min_measurable_mm : float
        Least LD of a measurable non-nodal lesion on slices <= ``thick_slice_mm``.
    thick_slice_mm : float
        Above this slice thickness, the least LD is twice the thickness.
    node_measurable_sa_mm, node_pathological_sa_mm : float
        Node SA limits: measurable (15) and pathological / normal (10).
    pr_pct, pd_pct, pd_min_mm : float
        PR at <= -30 % from baseline; PD at >= +20 % and >= 5 mm over the nadir.
    too_small_mm : float
        Value of a target reported "too small to measure" with no number.
    min_sd_days : int
        Least days from baseline for SD (or non-CR/non-PD) to count as the BOR (the
        protocol sets it; 6 weeks here).
    confirm : bool
        Require confirmation of CR / PR for the best overall response.
    confirm_min_days : int
        Least days between a response and its confirmation (4 weeks).
    nontarget_pd_ld_ratio : float or None
        When a non-target's status is not given, it is derived from its measurement:
        gone -> absent, otherwise present, and unequivocal progression once its LD
        reaches this multiple of its baseline LD (1.5: volume x 3.4). None: never derive
        progression (only a reader's ``unequivocal_progression`` counts).
    """

    max_targets: int = 5
    max_per_organ: int = 2
    min_measurable_mm: float = 10.0
    thick_slice_mm: float = 5.0
    node_measurable_sa_mm: float = 15.0
    node_pathological_sa_mm: float = 10.0
    pr_pct: float = -30.0
    pd_pct: float = 20.0
    pd_min_mm: float = 5.0
    too_small_mm: float = 5.0
    min_sd_days: int = 42
    confirm: bool = False
    confirm_min_days: int = 28
    nontarget_pd_ld_ratio: float | None = 1.5

    def __post_init__(self) -> None:
        problems = []
        if self.max_targets < 1 or self.max_per_organ < 1:
            problems.append(
                f"max_targets={self.max_targets} and max_per_organ={self.max_per_organ} "
                "must be at least 1"
            )
        for name in (
            "min_measurable_mm",
            "thick_slice_mm",
            "node_measurable_sa_mm",
            "node_pathological_sa_mm",
            "pd_pct",
            "pd_min_mm",
            "too_small_mm",
        ):
            if not float(getattr(self, name)) >= 0:
                problems.append(f"{name}={getattr(self, name)!r} must be >= 0")
        if not -100 < self.pr_pct < 0:
            problems.append(f"pr_pct={self.pr_pct!r} must lie in (-100, 0)")
        if self.node_pathological_sa_mm > self.node_measurable_sa_mm:
            problems.append("node_pathological_sa_mm must not exceed node_measurable_sa_mm")
        if self.min_sd_days < 0 or self.confirm_min_days < 0:
            problems.append("min_sd_days and confirm_min_days must be >= 0")
        if self.nontarget_pd_ld_ratio is not None and not self.nontarget_pd_ld_ratio > 1:
            problems.append(
                f"nontarget_pd_ld_ratio={self.nontarget_pd_ld_ratio!r} must be > 1 or None"
            )
        if problems:
            raise AssessmentInputError(
                "RECIST settings out of range: " + "; ".join(problems),
                tag="RecistSettings",
                hint="use the guideline's values unless the protocol says otherwise",
            )

    def to_dict(self) -> dict[str, Any]:
        """The settings as JSON-ready plain data."""
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class LesionDecision:
    """The baseline role of one lesion and why.

    ``role`` is ``target``, ``non_target`` or ``not_recorded`` (a normal node, a lesion
    absent at baseline); ``size_mm`` is the RECIST measure (SA for nodes, LD otherwise).
    """

    lesion_id: str
    organ: str
    nodal: bool
    role: str
    ld_mm: float | None
    sa_mm: float | None
    size_mm: float | None
    reason: str
    source: str = ""

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready plain data."""
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class TimePointResponse:
    """The RECIST 1.1 assessment of one time point (baseline included, all None there).

    Parameters
    ----------
    date : datetime.date
    baseline : bool
    sod_mm : float or None
        Sum of diameters of the targets; None when a target was not measured (the sum of
        those measured is ``sod_measured_mm``) or there are no targets.
    sod_measured_mm : float or None
        Sum over the targets that were measured.
    nadir_mm : float or None
        Smallest SOD of the earlier assessments (baseline included).
    pct_from_baseline, pct_from_nadir : float or None
        Changes in percent (None at baseline, when the SOD or the reference is missing).
    target_response, nontarget_response : str or None
        None at baseline or without such lesions.
    new_lesions : tuple of str
        Lesions that make this time point PD as new (new, newly pathological nodes,
        reappeared after CR).
    equivocal_new : tuple of str
        Equivocal new lesions reported at this time point.
    overall_response : str or None
        None at baseline.
    notes : tuple of str
        How each non-obvious decision was reached.
    """

    date: datetime.date
    baseline: bool
    sod_mm: float | None
    sod_measured_mm: float | None
    nadir_mm: float | None
    pct_from_baseline: float | None
    pct_from_nadir: float | None
    target_response: str | None
    nontarget_response: str | None
    new_lesions: tuple[str, ...]
    equivocal_new: tuple[str, ...]
    overall_response: str | None
    notes: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready plain data (the date as ISO)."""
        out = dataclasses.asdict(self)
        out["date"] = self.date.isoformat()
        out["new_lesions"] = list(self.new_lesions)
        out["equivocal_new"] = list(self.equivocal_new)
        out["notes"] = list(self.notes)
        return out


@dataclass(frozen=True)
class PatientRecist:
    """The RECIST 1.1 assessment of one patient's course."""

    patient_id: str
    baseline_date: datetime.date
    targets: tuple[LesionDecision, ...]
    nontargets: tuple[LesionDecision, ...]
    not_recorded: tuple[LesionDecision, ...]
    timepoints: tuple[TimePointResponse, ...]
    best_overall_response: str
    bor_reason: str
    pd_date: datetime.date | None
    settings: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready plain data (dates as ISO)."""
        return {
            "patient_id": self.patient_id,
            "baseline_date": self.baseline_date.isoformat(),
            "targets": [d.to_dict() for d in self.targets],
            "nontargets": [d.to_dict() for d in self.nontargets],
            "not_recorded": [d.to_dict() for d in self.not_recorded],
            "timepoints": [t.to_dict() for t in self.timepoints],
            "best_overall_response": self.best_overall_response,
            "bor_reason": self.bor_reason,
            "pd_date": None if self.pd_date is None else self.pd_date.isoformat(),
            "settings": dict(self.settings),
        }


# --------------------------------------------------------------------------- helpers


def natural_key(text: str) -> tuple[Any, ...]:
    """Sort key that orders ``L2`` before ``L10`` (digits compared as numbers)."""
    return tuple(
        (0, int(part), "") if part.isdigit() else (1, 0, part)
        for part in re.split(r"(\d+)", text)
        if part
    )


def _pct(value: Fraction, reference: Fraction) -> Fraction:
    return (value - reference) / reference * 100


def _fmt(value: float | Fraction | None) -> str:
    return "-" if value is None else f"{float(value):g}"


def _group(obs: Observation) -> str:
    return _NODAL_GROUP if obs.nodal else obs.organ


def _where(patient_id: str, date: datetime.date, lesion_id: str | None = None) -> str:
    text = f"patient {patient_id}, {date.isoformat()}"
    return text if lesion_id is None else f"{text}, lesion {lesion_id}"


def _validate(patient_id: str, tps: Sequence[TimePoint]) -> None:
    """Check the records; raise AssessmentInputError naming patient, date, lesion, field."""
    if not tps:
        raise AssessmentInputError(
            f"patient {patient_id}: no time points", hint="give at least a baseline"
        )
    dates = [tp.date for tp in tps]
    for a, b in itertools.pairwise(dates):
        if b <= a:
            raise AssessmentInputError(
                f"patient {patient_id}: time point dates must be distinct and increasing, "
                f"got {a.isoformat()} then {b.isoformat()}",
                tag="date",
                hint="merge the rows of one scan under one date",
            )
    nodal_of: dict[str, bool] = {}
    for tp in tps:
        seen: set[str] = set()
        for o in tp.observations:
            where = _where(patient_id, tp.date, o.lesion_id)
            if not o.lesion_id:
                raise AssessmentInputError(f"{_where(patient_id, tp.date)}: empty lesion_id")
            if o.lesion_id in seen:
                raise AssessmentInputError(
                    f"{where}: listed twice at one date",
                    tag="lesion_id",
                    hint="a fragment needs its own lesion_id and split_from",
                )
            seen.add(o.lesion_id)
            for name in ("ld_mm", "sa_mm", "volume_ml"):
                v = getattr(o, name)
                if v is not None and not (v == v and v >= 0 and v != float("inf")):
                    raise AssessmentInputError(
                        f"{where}: {name}={v!r} must be a finite number >= 0", tag=name
                    )
            if (
                o.ld_mm is not None
                and o.sa_mm is not None
                and o.ld_mm > 0
                and exact(o.sa_mm) > exact(o.ld_mm) + _AXIS_TOLERANCE_MM
            ):
                raise AssessmentInputError(
                    f"{where}: sa_mm={o.sa_mm!r} is longer than ld_mm={o.ld_mm!r}",
                    tag="sa_mm",
                    hint="the short axis is the longest chord perpendicular to the long axis",
                )
            if o.nontarget_status is not None and o.nontarget_status not in NONTARGET_STATUSES:
                raise AssessmentInputError(
                    f"{where}: nontarget_status={o.nontarget_status!r} is not one of "
                    f"{sorted(NONTARGET_STATUSES)}",
                    tag="nontarget_status",
                )
            if o.is_new and o.equivocal_new:
                raise AssessmentInputError(f"{where}: both new and equivocal new", tag="is_new")
            if o.split_from is not None and o.merged_into is not None:
                raise AssessmentInputError(
                    f"{where}: both split_from and merged_into", tag="split_from"
                )
            if o.split_from == o.lesion_id or o.merged_into == o.lesion_id:
                raise AssessmentInputError(
                    f"{where}: split_from / merged_into names the lesion itself",
                    tag="split_from",
                )
            first = nodal_of.setdefault(o.lesion_id, o.nodal)
            if first != o.nodal:
                raise AssessmentInputError(
                    f"{where}: nodal={o.nodal} differs from nodal={first} at an earlier date",
                    tag="nodal",
                    hint="a lesion keeps its nodal status over time",
                )


# --------------------------------------------------------------------------- baseline


@dataclass
class _Baseline:
    targets: list[LesionDecision]
    nontargets: list[LesionDecision]
    not_recorded: list[LesionDecision]
    obs: dict[str, Observation]

    @property
    def recorded(self) -> set[str]:
        return {d.lesion_id for d in self.targets + self.nontargets}


def _classify_baseline(patient_id: str, tp: TimePoint, s: RecistSettings) -> _Baseline:
    thick = None if tp.slice_thickness_mm is None else exact(tp.slice_thickness_mm)
    min_ld = exact(s.min_measurable_mm)
    if thick is not None and thick > exact(s.thick_slice_mm):
        min_ld = max(min_ld, 2 * thick)
    node_path, node_meas = exact(s.node_pathological_sa_mm), exact(s.node_measurable_sa_mm)

    measurable: list[tuple[Observation, Fraction]] = []
    nontargets: list[LesionDecision] = []
    not_recorded: list[LesionDecision] = []
    by_id: dict[str, Observation] = {}

    def decision(o: Observation, role: str, size: Fraction | None, reason: str) -> LesionDecision:
        return LesionDecision(
            o.lesion_id,
            o.organ,
            o.nodal,
            role,
            o.ld_mm,
            o.sa_mm,
            None if size is None else float(size),
            reason,
            o.source,
        )

    for o in tp.observations:
        where = _where(patient_id, tp.date, o.lesion_id)
        if o.is_new or o.equivocal_new:
            raise AssessmentInputError(
                f"{where}: marked new at baseline",
                tag="is_new",
                hint="nothing is new at the baseline scan; set is_new=false",
            )
        if o.split_from is not None or o.merged_into is not None:
            raise AssessmentInputError(
                f"{where}: split_from / merged_into at baseline",
                tag="split_from",
                hint="record the lesions as separate lesions at baseline",
            )
        by_id[o.lesion_id] = o
        if o.nodal:
            if o.sa_mm is None:
                if o.too_small:
                    not_recorded.append(
                        decision(o, "not_recorded", None, "node too small to measure: normal")
                    )
                else:
                    nontargets.append(
                        decision(o, "non_target", None, "node present but short axis not measured")
                    )
                continue
            sa = exact(o.sa_mm)
            if sa < node_path:
                not_recorded.append(
                    decision(
                        o,
                        "not_recorded",
                        sa,
                        f"normal node: SA {_fmt(sa)} mm < {_fmt(node_path)} mm",
                    )
                )
            elif sa < node_meas or not o.measurable_site:
                why = (
                    f"pathological node, not measurable: SA {_fmt(sa)} mm < {_fmt(node_meas)} mm"
                    if sa < node_meas
                    else "node on a site that cannot be measured reproducibly"
                )
                nontargets.append(decision(o, "non_target", sa, why))
            else:
                measurable.append((o, sa))
        else:
            if o.ld_mm is None:
                why = (
                    "too small to measure" if o.too_small else "present but long axis not measured"
                )
                nontargets.append(decision(o, "non_target", None, why))
                continue
            ld = exact(o.ld_mm)
            if ld == 0:
                not_recorded.append(decision(o, "not_recorded", ld, "absent at baseline"))
            elif ld < min_ld:
                nontargets.append(
                    decision(
                        o, "non_target", ld, f"not measurable: LD {_fmt(ld)} mm < {_fmt(min_ld)} mm"
                    )
                )
            elif not o.measurable_site:
                nontargets.append(
                    decision(o, "non_target", ld, "site cannot be measured reproducibly")
                )
            else:
                measurable.append((o, ld))

    overrides = [o for o in tp.observations if o.target is not None]
    targets: list[LesionDecision] = []
    if any(o.target for o in overrides):
        measurable_ids = {o.lesion_id for o, _ in measurable}
        per_organ: dict[str, int] = {}
        chosen = sorted(
            ((o, size) for o, size in measurable if o.target),
            key=lambda p: (-p[1], natural_key(p[0].lesion_id)),
        )
        for o in overrides:
            if o.target and o.lesion_id not in measurable_ids:
                why = next(
                    (d.reason for d in nontargets + not_recorded if d.lesion_id == o.lesion_id),
                    "not measurable",
                )
                raise AssessmentInputError(
                    f"{_where(patient_id, tp.date, o.lesion_id)}: chosen as target but "
                    f"not measurable at baseline ({why})",
                    tag="target",
                    hint="choose measurable lesions as targets, or leave target empty",
                )
        if len(chosen) > s.max_targets:
            raise AssessmentInputError(
                f"patient {patient_id}: {len(chosen)} targets chosen, RECIST 1.1 allows "
                f"{s.max_targets}",
                tag="target",
            )
        for o, size in chosen:
            per_organ[_group(o)] = per_organ.get(_group(o), 0) + 1
            if per_organ[_group(o)] > s.max_per_organ:
                raise AssessmentInputError(
                    f"patient {patient_id}: more than {s.max_per_organ} targets chosen in "
                    f"{_group(o)} (all nodes count as one organ)",
                    tag="target",
                )
            targets.append(decision(o, "target", size, "chosen by the reader"))
        for o, size in measurable:
            if not o.target:
                nontargets.append(
                    decision(o, "non_target", size, "measurable, not chosen by the reader")
                )
    else:
        order = sorted(
            measurable,
            key=lambda p: (not p[0].reproducible, -p[1], natural_key(p[0].lesion_id)),
        )
        per_organ = {}
        for rank, (o, size) in enumerate(order, start=1):
            group = _group(o)
            axis = "SA" if o.nodal else "LD"
            if len(targets) >= s.max_targets:
                nontargets.append(
                    decision(
                        o,
                        "non_target",
                        size,
                        f"measurable ({axis} {_fmt(size)} mm, rank {rank}) but "
                        f"{s.max_targets} targets already chosen",
                    )
                )
            elif per_organ.get(group, 0) >= s.max_per_organ:
                nontargets.append(
                    decision(
                        o,
                        "non_target",
                        size,
                        f"measurable ({axis} {_fmt(size)} mm, rank {rank}) but {group} already "
                        f"has {s.max_per_organ} targets",
                    )
                )
            else:
                per_organ[group] = per_organ.get(group, 0) + 1
                note = "" if o.reproducible else ", not reproducible (chosen last)"
                targets.append(
                    decision(
                        o,
                        "target",
                        size,
                        f"measurable, largest first: {axis} {_fmt(size)} mm, rank {rank}; "
                        f"{group} target {per_organ[group]} of {s.max_per_organ}{note}",
                    )
                )
    nontargets.sort(key=lambda d: natural_key(d.lesion_id))
    not_recorded.sort(key=lambda d: natural_key(d.lesion_id))
    return _Baseline(targets, nontargets, not_recorded, by_id)


# --------------------------------------------------------------------------- follow-up


def lesion_pieces(obs: dict[str, Observation], lesion_id: str) -> list[Observation]:
    """What a lesion is at a time point (``obs``: observations by id): its own row, if
    any, and the fragments that split from it."""
    return [
        o
        for o in obs.values()
        if (o.lesion_id == lesion_id and o.split_from is None) or o.split_from == lesion_id
    ]


def _piece_value(o: Observation, nodal: bool, s: RecistSettings) -> Fraction | None:
    """The RECIST measure of one piece, or None when it was not measured."""
    if o.merged_into is not None:
        return Fraction(0)
    if o.ld_mm is not None and exact(o.ld_mm) == 0:
        return Fraction(0)
    value = o.sa_mm if nodal else o.ld_mm
    if value is not None:
        return exact(value)
    if o.too_small:
        return exact(s.too_small_mm)
    return None


def _piece_gone(o: Observation, nodal: bool, s: RecistSettings) -> bool | None:
    """True when a piece has resolved (non-nodal LD 0, node SA < 10 mm); None: unknown."""
    if o.merged_into is not None:
        return True
    if o.nontarget_status == "absent":
        return True
    if o.ld_mm is not None and exact(o.ld_mm) == 0:
        return True
    if nodal:
        if o.sa_mm is not None:
            return exact(o.sa_mm) < exact(s.node_pathological_sa_mm)
        return False if o.too_small or o.nontarget_status is not None else None
    if o.ld_mm is not None or o.too_small or o.nontarget_status is not None:
        return False
    return None


def _present(o: Observation, s: RecistSettings) -> bool:
    """A lesion that counts as there (for new lesions and reappearance)."""
    if o.merged_into is not None or o.nontarget_status == "absent":
        return False
    if o.ld_mm is not None and exact(o.ld_mm) == 0:
        return False
    if o.nodal:
        if o.sa_mm is None:
            return not o.too_small
        return exact(o.sa_mm) >= exact(s.node_pathological_sa_mm)
    return True


def target_sum_mm(
    tp: TimePoint, targets: Sequence[LesionDecision], settings: RecistSettings | None = None
) -> float | None:
    """Sum of diameters of given targets at any time point (a pre-baseline scan too).

    Same rules as the engine (SA for nodes, fragments summed, merged or disappeared 0,
    "too small to measure" as ``too_small_mm``); None when a target was not measured.
    """
    s = settings or RecistSettings()
    obs = {o.lesion_id: o for o in tp.observations}
    total = Fraction(0)
    for t in targets:
        pieces = lesion_pieces(obs, t.lesion_id)
        if not pieces:
            return None
        for p in pieces:
            value = _piece_value(p, t.nodal, s)
            if value is None:
                return None
            total += value
    return float(total)


@dataclass
class _State:
    sod_history: list[Fraction]
    cr_seen: bool = False


def _target_response(
    tp: TimePoint,
    base: _Baseline,
    state: _State,
    s: RecistSettings,
    notes: list[str],
) -> tuple[str | None, Fraction | None, Fraction | None]:
    """(response, SOD or None, SOD of the measured targets)."""
    if not base.targets:
        return None, None, None
    obs = {o.lesion_id: o for o in tp.observations}
    total = Fraction(0)
    missing: list[str] = []
    all_gone = True
    for t in base.targets:
        pieces = lesion_pieces(obs, t.lesion_id)
        if not pieces:
            missing.append(t.lesion_id)
            all_gone = False
            continue
        for p in pieces:
            value = _piece_value(p, t.nodal, s)
            if value is None:
                missing.append(p.lesion_id)
                all_gone = False
                continue
            total += value
            if p.too_small and (p.sa_mm if t.nodal else p.ld_mm) is None:
                notes.append(
                    f"target {p.lesion_id} too small to measure: counted {_fmt(s.too_small_mm)} mm"
                )
            gone = _piece_gone(p, t.nodal, s)
            if not gone:
                all_gone = False
        if len(pieces) > 1 or pieces[0].lesion_id != t.lesion_id:
            notes.append(
                f"target {t.lesion_id} split: sum of " + ", ".join(p.lesion_id for p in pieces)
            )
        merged = [p for p in pieces if p.merged_into is not None]
        for p in merged:
            notes.append(f"target {p.lesion_id} merged into {p.merged_into}: counted 0 mm")

    nadir = min(state.sod_history)
    pd_pct, pd_min = exact(s.pd_pct), exact(s.pd_min_mm)

    def progressed(sod: Fraction) -> bool:
        if nadir == 0:
            return sod >= pd_min
        return _pct(sod, nadir) >= pd_pct and sod - nadir >= pd_min

    if missing:
        if progressed(total):
            notes.append(
                "targets not measured (" + ", ".join(missing) + "): PD all the same, the "
                f"measured ones already sum to {_fmt(total)} mm against a nadir of "
                f"{_fmt(nadir)} mm"
            )
            return "PD", None, total
        notes.append("targets not measured (" + ", ".join(missing) + "): target response NE")
        return "NE", None, total
    if progressed(total):
        return "PD", total, total
    if all_gone:
        return "CR", total, total
    if _pct(total, state.sod_history[0]) <= exact(s.pr_pct):
        return "PR", total, total
    return "SD", total, total


def _nontarget_response(
    tp: TimePoint, base: _Baseline, s: RecistSettings, notes: list[str]
) -> str | None:
    if not base.nontargets:
        return None
    obs = {o.lesion_id: o for o in tp.observations}
    statuses: list[str] = []
    for nt in base.nontargets:
        pieces = lesion_pieces(obs, nt.lesion_id)
        if not pieces:
            statuses.append("not_evaluated")
            notes.append(f"non-target {nt.lesion_id} not evaluated")
            continue
        for p in pieces:
            status = p.nontarget_status
            if status is None:
                gone = _piece_gone(p, nt.nodal, s)
                if gone is None:
                    status = "not_evaluated"
                    notes.append(f"non-target {p.lesion_id} not evaluated")
                elif gone:
                    status = "absent"
                else:
                    status = "present"
                    base_ld = nt.ld_mm
                    if (
                        s.nontarget_pd_ld_ratio is not None
                        and base_ld
                        and p.split_from is None
                        and p.ld_mm is not None
                        and exact(p.ld_mm) >= exact(s.nontarget_pd_ld_ratio) * exact(base_ld)
                    ):
                        status = "unequivocal_progression"
                        notes.append(
                            f"non-target {p.lesion_id}: LD {_fmt(p.ld_mm)} mm >= "
                            f"{_fmt(s.nontarget_pd_ld_ratio)} x baseline {_fmt(base_ld)} mm: "
                            "unequivocal progression (derived; review)"
                        )
            elif (
                status == "absent"
                and nt.nodal
                and p.sa_mm is not None
                and not (exact(p.sa_mm) < exact(s.node_pathological_sa_mm))
            ):
                raise AssessmentInputError(
                    f"non-target node {p.lesion_id} at {tp.date.isoformat()}: "
                    f"nontarget_status=absent but sa_mm={p.sa_mm!r} >= "
                    f"{_fmt(s.node_pathological_sa_mm)} mm",
                    tag="nontarget_status",
                )
            statuses.append(status)
    if "unequivocal_progression" in statuses:
        return "PD"
    if "not_evaluated" in statuses:
        return "NE"
    if all(st == "absent" for st in statuses):
        return "CR"
    return "NON_CR_NON_PD"


def _new_lesions(
    patient_id: str,
    tp: TimePoint,
    base: _Baseline,
    state: _State,
    seen_before: set[str],
    s: RecistSettings,
    notes: list[str],
) -> tuple[list[str], list[str]]:
    """(lesions that are new at this time point, equivocal new lesions)."""
    new: list[str] = []
    equivocal: list[str] = []
    recorded = base.recorded
    for o in tp.observations:
        where = _where(patient_id, tp.date, o.lesion_id)
        if o.split_from is not None:
            if o.split_from in recorded:
                continue
            if o.split_from not in base.obs and o.split_from not in seen_before:
                raise AssessmentInputError(
                    f"{where}: split_from={o.split_from!r} is not a lesion seen before",
                    tag="split_from",
                )
            # a piece of a lesion that was not recorded at baseline (a normal node, a
            # new lesion): judged like that lesion, new when it is there
            if _present(o, s):
                new.append(o.lesion_id)
                notes.append(
                    f"lesion {o.lesion_id}: fragment of {o.split_from}, which was not "
                    "recorded at baseline: new lesion"
                )
            continue
        if o.equivocal_new:
            equivocal.append(o.lesion_id)
            continue
        present = _present(o, s)
        if o.is_new:
            if o.lesion_id in recorded:
                raise AssessmentInputError(
                    f"{where}: is_new=true for a lesion recorded at baseline",
                    tag="is_new",
                    hint="a lesion recorded at baseline cannot be new; give the new one "
                    "its own lesion_id",
                )
            if present:
                new.append(o.lesion_id)
            continue
        if o.lesion_id in recorded:
            # after a CR every recorded lesion had gone: any that is back is progression
            if state.cr_seen and present:
                new.append(o.lesion_id)
                notes.append(f"lesion {o.lesion_id} reappeared after a CR: PD")
            continue
        if o.lesion_id in base.obs:
            # seen at baseline but not recorded: a normal node or a lesion then absent
            if present:
                new.append(o.lesion_id)
                what = (
                    f"node now SA {_fmt(o.sa_mm)} mm >= {_fmt(s.node_pathological_sa_mm)} mm"
                    if o.nodal
                    else "absent at baseline, now present"
                )
                notes.append(f"lesion {o.lesion_id}: {what}: new lesion")
            continue
        if o.lesion_id in seen_before:
            # first appeared after baseline (counted new then, or a small node then)
            if present:
                new.append(o.lesion_id)
            continue
        if present:
            if o.nodal:
                new.append(o.lesion_id)
                notes.append(
                    f"lesion {o.lesion_id}: node not seen at baseline with SA "
                    f"{_fmt(o.sa_mm)} mm: new lesion"
                )
            else:
                raise AssessmentInputError(
                    f"{where}: first seen after baseline but is_new=false and no split_from",
                    tag="is_new",
                    hint="mark it is_new=true, or give split_from if it is a fragment of "
                    "a baseline lesion",
                )
    return sorted(set(new), key=natural_key), sorted(equivocal, key=natural_key)


def _overall(target: str | None, nontarget: str | None, new: bool) -> str:
    """RECIST 1.1 table 1 (targets) and table 2 (non-targets only)."""
    if new or target == "PD" or nontarget == "PD":
        return "PD"
    if target is None:
        return "NE" if nontarget is None else nontarget
    if target == "NE":
        return "NE"
    if target == "CR":
        return "CR" if nontarget in (None, "CR") else "PR"
    return target  # PR or SD, whatever the non-targets (non-PD or not all evaluated)


# --------------------------------------------------------------------------- BOR


def _best_overall(
    baseline_date: datetime.date,
    responses: Sequence[TimePointResponse],
    pd_date: datetime.date | None,
    s: RecistSettings,
) -> tuple[str, str]:
    """(best overall response, reason)."""
    considered: list[TimePointResponse] = []
    for r in responses:
        if pd_date is not None and r.date > pd_date:
            break
        considered.append(r)
        if r.overall_response == "PD":
            break
    if (
        pd_date is not None
        and considered
        and considered[-1].date == pd_date
        and considered[-1].overall_response != "PD"
    ):
        # progression dated back to an equivocal lesion confirmed later
        considered[-1] = dataclasses.replace(considered[-1], overall_response="PD")

    def days(r: TimePointResponse) -> int:
        return (r.date - baseline_date).days

    def sd_ok(r: TimePointResponse) -> bool:
        return days(r) >= s.min_sd_days

    rank = {"CR": 0, "PR": 1}
    if s.confirm:
        confirmed: dict[str, TimePointResponse] = {}
        for i, r in enumerate(considered):
            resp = r.overall_response
            if resp not in rank:
                continue
            for later in considered[i + 1 :]:
                lr = later.overall_response
                if lr == "NE":
                    continue
                if lr in rank and rank[lr] <= rank[resp]:
                    if (later.date - r.date).days >= s.confirm_min_days:
                        confirmed.setdefault(resp, r)
                        break
                    continue
                break  # something worse before the confirmation
        for word in ("CR", "PR"):
            if word in confirmed:
                r = confirmed[word]
                return word, (
                    f"{word} at {r.date.isoformat()} confirmed at least "
                    f"{s.confirm_min_days} days later"
                )
        stable = [r for r in considered if r.overall_response in ("CR", "PR", "SD") and sd_ok(r)]
        if stable:
            return "SD", (
                f"SD criteria met at {stable[0].date.isoformat()} ({days(stable[0])} days "
                f">= {s.min_sd_days}); no confirmed CR/PR"
            )
    else:
        for word in ("CR", "PR"):
            hit = next((r for r in considered if r.overall_response == word), None)
            if hit is not None:
                return word, f"{word} at {hit.date.isoformat()} (confirmation not required)"
        stable = [r for r in considered if r.overall_response == "SD" and sd_ok(r)]
        if stable:
            return "SD", (
                f"SD at {stable[0].date.isoformat()}, {days(stable[0])} days after baseline "
                f"(>= {s.min_sd_days})"
            )
    ncnp = [r for r in considered if r.overall_response == "NON_CR_NON_PD" and sd_ok(r)]
    if ncnp:
        return "NON_CR_NON_PD", (
            f"non-CR/non-PD at {ncnp[0].date.isoformat()}, {days(ncnp[0])} days after "
            f"baseline (>= {s.min_sd_days})"
        )
    if any(r.overall_response == "PD" for r in considered):
        return "PD", "progression before any response or SD of the minimum duration"
    if not considered:
        return "NE", "no follow-up assessment"
    return "NE", (f"no response and no SD at least {s.min_sd_days} days after baseline")


# --------------------------------------------------------------------------- engine


def assess_recist(
    patient_id: str,
    timepoints: Iterable[TimePoint],
    settings: RecistSettings | None = None,
    *,
    baseline_date: datetime.date | None = None,
) -> PatientRecist:
    """Assess one patient's course by RECIST 1.1.

    Parameters
    ----------
    patient_id : str
        The patient's key (pseudonymous, as given; only used in messages and outputs).
    timepoints : iterable of TimePoint
        The patient's time points in any order.
    settings : RecistSettings, optional
        The guideline's values by default.
    baseline_date : datetime.date, optional
        The baseline scan; time points before it are pre-baseline (used for TGR0
        elsewhere, ignored here). Default: the first time point.

    Returns
    -------
    PatientRecist
        Targets / non-targets with reasons, one response per time point from baseline
        on, best overall response, and the date of progression.

    Raises
    ------
    AssessmentInputError
        Contradictory or impossible records (see the message: it names the patient,
        the date, the lesion and the field).

    References
    ----------
    Eisenhauer EA et al. New response evaluation criteria in solid tumours: Revised
    RECIST guideline (version 1.1). Eur J Cancer 2009;45:228-247.
    """
    s = settings or RecistSettings()
    tps = sorted(timepoints, key=lambda tp: tp.date)
    _validate(patient_id, tps)
    if baseline_date is None:
        baseline_date = tps[0].date
    idx = next((i for i, tp in enumerate(tps) if tp.date == baseline_date), None)
    if idx is None:
        raise AssessmentInputError(
            f"patient {patient_id}: baseline date {baseline_date.isoformat()} is not one of "
            f"the time points ({', '.join(tp.date.isoformat() for tp in tps)})",
            tag="baseline_date",
        )
    course = tps[idx:]
    base = _classify_baseline(patient_id, course[0], s)
    base_sod = sum(
        (exact(d.size_mm) for d in base.targets if d.size_mm is not None),
        start=Fraction(0),
    )
    state = _State(sod_history=[base_sod])
    responses = [
        TimePointResponse(
            date=course[0].date,
            baseline=True,
            sod_mm=float(base_sod) if base.targets else None,
            sod_measured_mm=float(base_sod) if base.targets else None,
            nadir_mm=None,
            pct_from_baseline=None,
            pct_from_nadir=None,
            target_response=None,
            nontarget_response=None,
            new_lesions=(),
            equivocal_new=(),
            overall_response=None,
            notes=(
                ()
                if base.targets or base.nontargets
                else ("no target or non-target disease at baseline",)
            ),
        )
    ]
    seen_before = {o.lesion_id for o in course[0].observations}
    equivocal_first: dict[str, datetime.date] = {}
    pd_date: datetime.date | None = None
    for tp in course[1:]:
        notes: list[str] = []
        nadir = min(state.sod_history)
        target, sod, measured = _target_response(tp, base, state, s, notes)
        nontarget = _nontarget_response(tp, base, s, notes)
        new, equivocal = _new_lesions(patient_id, tp, base, state, seen_before, s, notes)
        for lid in equivocal:
            equivocal_first.setdefault(lid, tp.date)
        overall = _overall(target, nontarget, bool(new))
        if overall == "PD" and pd_date is None:
            backdated = [equivocal_first[lid] for lid in new if lid in equivocal_first]
            pd_date = min([tp.date, *backdated])
            if backdated:
                notes.append(
                    "new lesion first seen as equivocal on "
                    f"{min(backdated).isoformat()}: progression dated to that scan"
                )
        responses.append(
            TimePointResponse(
                date=tp.date,
                baseline=False,
                sod_mm=None if sod is None else float(sod),
                sod_measured_mm=None if measured is None else float(measured),
                nadir_mm=float(nadir) if base.targets else None,
                pct_from_baseline=(
                    float(_pct(sod, state.sod_history[0]))
                    if sod is not None and state.sod_history[0] != 0
                    else None
                ),
                pct_from_nadir=(
                    float(_pct(sod, nadir)) if sod is not None and nadir != 0 else None
                ),
                target_response=target,
                nontarget_response=nontarget,
                new_lesions=tuple(new),
                equivocal_new=tuple(equivocal),
                overall_response=overall,
                notes=tuple(notes),
            )
        )
        if sod is not None:
            state.sod_history.append(sod)
        if overall == "CR":
            state.cr_seen = True
        seen_before.update(o.lesion_id for o in tp.observations)

    best, reason = _best_overall(course[0].date, responses[1:], pd_date, s)
    return PatientRecist(
        patient_id=patient_id,
        baseline_date=course[0].date,
        targets=tuple(base.targets),
        nontargets=tuple(base.nontargets),
        not_recorded=tuple(base.not_recorded),
        timepoints=tuple(responses),
        best_overall_response=best,
        bor_reason=reason,
        pd_date=pd_date,
        settings=s.to_dict(),
    )

"""RECIST 1.1 oracle for the synthetic patient phantom.

The phantom knows the true long and short axes of every lesion at every visit. This
module turns those records into what a careful radiologist applying RECIST 1.1 would
report: the target and non-target lesions chosen at baseline, the sum of diameters, the
target / non-target / overall response at each follow-up and the best overall response.
It works on records only (no images) and is written to be read line by line against the
guideline, because it is the reference the full RECIST engine is tested against.

Rules implemented (Eisenhauer et al., "New response evaluation criteria in solid
tumours: Revised RECIST guideline (version 1.1)", Eur J Cancer 2009;45:228-247, with the
EORTC clarifications):

* Baseline is the first visit. A non-nodal lesion (organ other than ``"lymph_node"``) is
  measurable when its site is measurable and its long axis is at least 10 mm, or at least
  twice the slice thickness when the slices are thicker than 5 mm; otherwise it is a
  non-target. A lymph node is measurable with a short axis of at least 15 mm, a
  pathological non-target with 10 to under 15 mm, and normal (not recorded at all) under
  10 mm.
* Targets: the measurable lesions by size (long axis, or short axis for nodes) descending,
  ties broken by the lower lesion id, taken greedily up to ``max_targets`` in all and
  ``max_per_organ`` per organ, all lymph nodes counting as one organ. Measurable lesions
  not taken are non-targets.
* Sum of diameters (SOD): long axes of non-nodal targets plus short axes of nodal
  targets; an absent target counts 0; a target that split counts the sum of its
  fragments.
* Target response, tested in this order: PD (at least +20 % and at least +5 mm over the
  nadir, the smallest SOD of the earlier visits, baseline included; from a nadir of 0, an
  SOD of at least 5 mm), CR (every non-nodal target gone, every nodal target under 10 mm
  short axis), PR (at least -30 % from baseline), otherwise SD.
* Non-target response: PD on unequivocal progression, CR when every non-target is gone
  (nodes under 10 mm), otherwise non-CR/non-PD.
* New lesion: any lesion not recorded at baseline and not a fragment that is present
  (non-nodal) or at least 10 mm short axis (nodal). Any new lesion is overall PD.
* Overall response from table 1 of the guideline (table 2 when there are no targets) and
  the unconfirmed best overall response, with a minimum time from baseline for stable
  disease (``min_sd_days``).

Interpretations where the guideline or the brief leaves room:

* A non-nodal lesion with a long axis of 0 at baseline is absent, hence not recorded (as
  a normal node is); if it appears later it is a new lesion.
* ``measurable_site=False`` makes a node a non-target as well (when pathological).
* A target or non-target that has split is represented by its fragments (lesions whose
  ``split_from`` is its id); if the original id is still listed it is one more piece. The
  SOD counts the sum of the pieces; "gone" / "under 10 mm" is required of every piece.
* ``unequivocal_progression`` is read on non-targets (and their fragments) only.

All comparisons are exact: each axis is taken as the decimal it prints as (the shortest
``repr`` of the float) and summed as a :class:`fractions.Fraction`, so that the inclusive
boundaries (-30 %, +20 %, 5 mm) hold for values such as 16.5 mm -> 11.55 mm, where
floating-point division gives -29.999999999999993 %. Reported numbers are the exact
values rounded once to the nearest float.
"""

from __future__ import annotations

import datetime
import math
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction

__all__ = [
    "ORGANS",
    "CourseAssessment",
    "TruthLesion",
    "Visit",
    "VisitResponse",
    "assess_course",
]

#: The organ names a :class:`TruthLesion` may carry; ``"lymph_node"`` is the nodal one.
ORGANS: frozenset[str] = frozenset({"liver", "lymph_node", "bone", "other"})
_NODAL_ORGAN = "lymph_node"

_MIN_MEASURABLE_MM = Fraction(10)  # non-nodal, slices of 5 mm or thinner
_THICK_SLICE_MM = Fraction(5)  # above this the threshold is twice the slice thickness
_NODE_MEASURABLE_SA_MM = Fraction(15)
_NODE_PATHOLOGICAL_SA_MM = Fraction(10)  # also the "normal node" limit for CR
_PR_PCT = Fraction(-30)
_PD_PCT = Fraction(20)
_PD_MIN_MM = Fraction(5)


@dataclass(frozen=True)
class TruthLesion:
    """One lesion at one visit, as the phantom knows it.

    Parameters
    ----------
    lesion_id : int
        Identity of the lesion across visits.
    organ : str
        ``"liver"``, ``"lymph_node"``, ``"bone"`` or ``"other"``.
    ld_mm : float
        Long axis in the axial plane, mm; 0.0 means the lesion has disappeared.
    sa_mm : float
        Short axis perpendicular to the long axis, mm.
    split_from : int or None
        For a fragment of a lesion that split, the id of the baseline lesion it came from.
    measurable_site : bool
        False for a site that cannot be measured reliably (bone without a soft-tissue
        component, ...): such a lesion is a non-target whatever its size.
    unequivocal_progression : bool
        Unequivocal progression of this (non-target) lesion at this visit.
    """

    lesion_id: int
    organ: str
    ld_mm: float
    sa_mm: float
    split_from: int | None = None
    measurable_site: bool = True
    unequivocal_progression: bool = False

    @property
    def nodal(self) -> bool:
        """True for a lymph node (measured by its short axis)."""
        return self.organ == _NODAL_ORGAN


@dataclass(frozen=True)
class Visit:
    """One imaging time point.

    Parameters
    ----------
    date : datetime.date
        Date of the scan.
    slice_thickness_mm : float
        Reconstructed slice thickness; sets the measurability threshold at baseline.
    lesions : tuple of TruthLesion
        The lesions seen at this visit; a lesion not listed is absent.
    """

    date: datetime.date
    slice_thickness_mm: float
    lesions: tuple[TruthLesion, ...]


@dataclass(frozen=True)
class VisitResponse:
    """The RECIST 1.1 assessment of one visit.

    Parameters
    ----------
    date : datetime.date
        Date of the visit.
    sod_mm : float
        Sum of diameters of the targets (0.0 when there are no targets).
    nadir_mm : float or None
        Smallest SOD of the earlier visits, baseline included; None at baseline and
        when there are no targets.
    change_from_baseline_pct : float or None
        ``(SOD - SOD_baseline) / SOD_baseline * 100``; None at baseline and without targets.
    change_from_nadir_pct : float or None
        ``(SOD - nadir) / nadir * 100``; None at baseline, without targets, or when the
        nadir is 0.
    target_response : str or None
        ``"CR"``, ``"PR"``, ``"SD"`` or ``"PD"``; None at baseline and without targets.
    nontarget_response : str or None
        ``"CR"``, ``"NON_CR_NON_PD"`` or ``"PD"``; None at baseline and without
        non-targets.
    new_lesion_ids : tuple of int
        New lesions present at this visit, sorted.
    overall_response : str or None
        ``"CR"``, ``"PR"``, ``"SD"``, ``"NON_CR_NON_PD"``, ``"PD"`` or ``"NE"``; None at
        baseline.
    """

    date: datetime.date
    sod_mm: float
    nadir_mm: float | None
    change_from_baseline_pct: float | None
    change_from_nadir_pct: float | None
    target_response: str | None
    nontarget_response: str | None
    new_lesion_ids: tuple[int, ...]
    overall_response: str | None

    def to_dict(self) -> dict[str, object]:
        """Return the assessment as JSON-ready plain data (the date as an ISO string)."""
        return {
            "date": self.date.isoformat(),
            "sod_mm": self.sod_mm,
            "nadir_mm": self.nadir_mm,
            "change_from_baseline_pct": self.change_from_baseline_pct,
            "change_from_nadir_pct": self.change_from_nadir_pct,
            "target_response": self.target_response,
            "nontarget_response": self.nontarget_response,
            "new_lesion_ids": list(self.new_lesion_ids),
            "overall_response": self.overall_response,
        }


@dataclass(frozen=True)
class CourseAssessment:
    """The RECIST 1.1 assessment of a whole course.

    Parameters
    ----------
    target_ids : tuple of int
        Target lesions, in selection order (largest first).
    nontarget_ids : tuple of int
        Non-target lesions, sorted.
    visits : tuple of VisitResponse
        One per input visit, baseline first.
    best_overall_response : str
        ``"CR"``, ``"PR"``, ``"SD"``, ``"NON_CR_NON_PD"``, ``"PD"`` or ``"NE"``.
    progression_date : datetime.date or None
        Date of the first overall PD.
    settings : dict
        ``max_targets``, ``max_per_organ`` and ``min_sd_days`` used.
    """

    target_ids: tuple[int, ...]
    nontarget_ids: tuple[int, ...]
    visits: tuple[VisitResponse, ...]
    best_overall_response: str
    progression_date: datetime.date | None
    settings: dict[str, object]

    def to_dict(self) -> dict[str, object]:
        """Return the assessment as JSON-ready plain data (dates as ISO strings)."""
        return {
            "target_ids": list(self.target_ids),
            "nontarget_ids": list(self.nontarget_ids),
            "visits": [v.to_dict() for v in self.visits],
            "best_overall_response": self.best_overall_response,
            "progression_date": (
                None if self.progression_date is None else self.progression_date.isoformat()
            ),
            "settings": dict(self.settings),
        }


def assess_course(
    visits: Sequence[Visit],
    *,
    max_targets: int = 5,
    max_per_organ: int = 2,
    min_sd_days: int = 42,
) -> CourseAssessment:
    """Assess a course of visits by RECIST 1.1 (unconfirmed best overall response).

    Parameters
    ----------
    visits : sequence of Visit
        The visits in date order; the first is the baseline.
    max_targets : int
        Most target lesions in all (RECIST 1.1: 5).
    max_per_organ : int
        Most target lesions per organ, all lymph nodes counting as one organ (RECIST
        1.1: 2).
    min_sd_days : int
        Least time from baseline, in days, for SD (or non-CR/non-PD) to count as the best
        overall response.

    Returns
    -------
    CourseAssessment
        Targets, non-targets, the per-visit responses and the best overall response.

    Raises
    ------
    ValueError
        No visits; dates not strictly increasing; a negative or non-finite axis or slice
        thickness; a short axis longer than the long axis; a lesion id listed twice in a
        visit; an unknown organ; an id that changes organ or ``split_from`` between
        visits; a fragment at baseline, of a lesion not recorded at baseline, or with an
        id used at baseline; settings out of range.

    References
    ----------
    Eisenhauer EA et al. New response evaluation criteria in solid tumours: Revised
    RECIST guideline (version 1.1). Eur J Cancer 2009;45:228-247.
    """
    if max_targets < 1 or max_per_organ < 1 or min_sd_days < 0:
        raise ValueError(
            f"settings out of range: max_targets={max_targets} and "
            f"max_per_organ={max_per_organ} must be at least 1, "
            f"min_sd_days={min_sd_days} at least 0"
        )
    _validate(visits)

    baseline = visits[0]
    targets, nontargets = _classify_baseline(baseline, max_targets, max_per_organ)
    recorded = {lesion.lesion_id for lesion in targets + nontargets}
    _check_fragments(visits, baseline, recorded)

    sod_history = [_sod(baseline, targets)]
    responses = [
        VisitResponse(
            date=baseline.date,
            sod_mm=float(sod_history[0]),
            nadir_mm=None,
            change_from_baseline_pct=None,
            change_from_nadir_pct=None,
            target_response=None,
            nontarget_response=None,
            new_lesion_ids=(),
            overall_response=None,
        )
    ]
    for visit in visits[1:]:
        responses.append(_assess_visit(visit, targets, nontargets, recorded, sod_history))
        sod_history.append(_sod(visit, targets))

    best, progression_date = _best_overall_response(responses, min_sd_days)
    return CourseAssessment(
        target_ids=tuple(lesion.lesion_id for lesion in targets),
        nontarget_ids=tuple(sorted(lesion.lesion_id for lesion in nontargets)),
        visits=tuple(responses),
        best_overall_response=best,
        progression_date=progression_date,
        settings={
            "max_targets": max_targets,
            "max_per_organ": max_per_organ,
            "min_sd_days": min_sd_days,
        },
    )


# --------------------------------------------------------------------------- helpers


def _exact(value: float) -> Fraction:
    """The decimal a float prints as, exactly (``16.5`` -> 33/2, ``0.1`` -> 1/10)."""
    return Fraction(repr(float(value)))


def _size(lesion: TruthLesion) -> Fraction:
    """The RECIST measure of one lesion: short axis for a node, long axis otherwise."""
    return _exact(lesion.sa_mm if lesion.nodal else lesion.ld_mm)


def _pct(value: Fraction, reference: Fraction) -> Fraction:
    """Percentage change of ``value`` from ``reference`` (which must not be 0)."""
    return (value - reference) / reference * 100


def _validate(visits: Sequence[Visit]) -> None:
    """Check the visits one by one; raise ValueError naming the visit and lesion."""
    if len(visits) == 0:
        raise ValueError("no visits: a course needs at least a baseline visit")
    organ_of: dict[int, str] = {}
    split_of: dict[int, int | None] = {}
    previous: datetime.date | None = None
    for index, visit in enumerate(visits):
        where = f"visit {visit.date.isoformat()}"
        if previous is not None and visit.date <= previous:
            raise ValueError(
                f"{where}: dates must be strictly increasing, "
                f"but it follows visit {previous.isoformat()}"
            )
        previous = visit.date
        thickness = visit.slice_thickness_mm
        if not (math.isfinite(thickness) and thickness > 0):
            raise ValueError(
                f"{where}: slice_thickness_mm={thickness!r} must be finite and positive"
            )
        seen: set[int] = set()
        for lesion in visit.lesions:
            what = f"{where}, lesion {lesion.lesion_id}"
            if lesion.lesion_id in seen:
                raise ValueError(f"{what}: lesion id listed more than once in the visit")
            seen.add(lesion.lesion_id)
            if index == 0 and lesion.split_from is not None:
                raise ValueError(
                    f"{what}: split_from={lesion.split_from} at baseline; a fragment needs "
                    "a parent recorded at baseline"
                )
            if lesion.organ not in ORGANS:
                raise ValueError(f"{what}: organ {lesion.organ!r} is not one of {sorted(ORGANS)}")
            for name in ("ld_mm", "sa_mm"):
                value = getattr(lesion, name)
                if not (math.isfinite(value) and value >= 0):
                    raise ValueError(f"{what}: {name}={value!r} must be finite and >= 0")
            if _exact(lesion.sa_mm) > _exact(lesion.ld_mm):
                raise ValueError(
                    f"{what}: sa_mm={lesion.sa_mm!r} is longer than ld_mm={lesion.ld_mm!r}"
                )
            first_organ = organ_of.setdefault(lesion.lesion_id, lesion.organ)
            if lesion.organ != first_organ:
                raise ValueError(
                    f"{what}: organ {lesion.organ!r} differs from {first_organ!r} "
                    "given for the same id at an earlier visit"
                )
            first_split = split_of.setdefault(lesion.lesion_id, lesion.split_from)
            if lesion.split_from != first_split:
                raise ValueError(
                    f"{what}: split_from={lesion.split_from!r} differs from "
                    f"split_from={first_split!r} given for the same id at an earlier visit"
                )


def _classify_baseline(
    baseline: Visit, max_targets: int, max_per_organ: int
) -> tuple[list[TruthLesion], list[TruthLesion]]:
    """Split the baseline lesions into targets (selection order) and non-targets.

    Normal nodes (short axis under 10 mm) and absent non-nodal lesions (long axis 0)
    are in neither list.
    """
    thickness = _exact(baseline.slice_thickness_mm)
    # max(10, 2 * thickness) for thick slices; 2 * thickness > 10 there anyway
    threshold = 2 * thickness if thickness > _THICK_SLICE_MM else _MIN_MEASURABLE_MM

    measurable: list[TruthLesion] = []
    nontargets: list[TruthLesion] = []
    for lesion in baseline.lesions:
        if lesion.nodal:
            sa = _exact(lesion.sa_mm)
            if sa < _NODE_PATHOLOGICAL_SA_MM:
                continue  # normal node: not recorded
            if sa >= _NODE_MEASURABLE_SA_MM and lesion.measurable_site:
                measurable.append(lesion)
            else:
                nontargets.append(lesion)
        else:
            ld = _exact(lesion.ld_mm)
            if ld == 0:
                continue  # not there: not recorded
            if ld >= threshold and lesion.measurable_site:
                measurable.append(lesion)
            else:
                nontargets.append(lesion)

    measurable.sort(key=lambda lesion: (-_size(lesion), lesion.lesion_id))
    targets: list[TruthLesion] = []
    per_organ: dict[str, int] = {}
    for lesion in measurable:
        if len(targets) < max_targets and per_organ.get(lesion.organ, 0) < max_per_organ:
            targets.append(lesion)
            per_organ[lesion.organ] = per_organ.get(lesion.organ, 0) + 1
        else:
            nontargets.append(lesion)
    return targets, nontargets


def _check_fragments(visits: Sequence[Visit], baseline: Visit, recorded: set[int]) -> None:
    """Every fragment must come from a recorded baseline lesion of the same organ."""
    organ_of = {lesion.lesion_id: lesion.organ for lesion in baseline.lesions}
    for visit in visits[1:]:
        for lesion in visit.lesions:
            if lesion.split_from is None:
                continue
            what = f"visit {visit.date.isoformat()}, lesion {lesion.lesion_id}"
            if lesion.split_from not in recorded:
                raise ValueError(
                    f"{what}: split_from={lesion.split_from} is not a lesion recorded at "
                    "baseline (target or non-target)"
                )
            if lesion.organ != organ_of[lesion.split_from]:
                raise ValueError(
                    f"{what}: fragment organ {lesion.organ!r} differs from the organ "
                    f"{organ_of[lesion.split_from]!r} of lesion {lesion.split_from}"
                )


def _pieces(visit: Visit, lesion_id: int) -> list[TruthLesion]:
    """What a recorded lesion is at a visit: its own entry (if listed) and its fragments."""
    return [
        lesion
        for lesion in visit.lesions
        if (lesion.lesion_id == lesion_id and lesion.split_from is None)
        or lesion.split_from == lesion_id
    ]


def _gone(pieces: list[TruthLesion], nodal: bool) -> bool:
    """True when a recorded lesion has resolved: non-nodal all 0, nodal all under 10 mm."""
    if nodal:
        return all(_exact(p.sa_mm) < _NODE_PATHOLOGICAL_SA_MM for p in pieces)
    return all(_exact(p.ld_mm) == 0 for p in pieces)


def _sod(visit: Visit, targets: list[TruthLesion]) -> Fraction:
    """Sum of diameters of the targets at a visit (fragments summed, absent = 0)."""
    return sum(
        (_size(piece) for target in targets for piece in _pieces(visit, target.lesion_id)),
        start=Fraction(0),
    )


def _assess_visit(
    visit: Visit,
    targets: list[TruthLesion],
    nontargets: list[TruthLesion],
    recorded: set[int],
    sod_history: list[Fraction],
) -> VisitResponse:
    """Target, non-target, new-lesion and overall response at one follow-up."""
    sod = _sod(visit, targets)
    baseline_sod = sod_history[0]
    nadir = min(sod_history)

    target_response: str | None = None
    if targets:
        if nadir == 0:
            progressed = sod >= _PD_MIN_MM
        else:
            progressed = _pct(sod, nadir) >= _PD_PCT and sod - nadir >= _PD_MIN_MM
        if progressed:
            target_response = "PD"
        elif all(_gone(_pieces(visit, t.lesion_id), t.nodal) for t in targets):
            target_response = "CR"
        elif _pct(sod, baseline_sod) <= _PR_PCT:
            target_response = "PR"
        else:
            target_response = "SD"

    nontarget_response: str | None = None
    if nontargets:
        pieces = {nt.lesion_id: _pieces(visit, nt.lesion_id) for nt in nontargets}
        if any(p.unequivocal_progression for ps in pieces.values() for p in ps):
            nontarget_response = "PD"
        elif all(_gone(pieces[nt.lesion_id], nt.nodal) for nt in nontargets):
            nontarget_response = "CR"
        else:
            nontarget_response = "NON_CR_NON_PD"

    new_ids = tuple(
        sorted(
            lesion.lesion_id
            for lesion in visit.lesions
            if lesion.split_from is None
            and lesion.lesion_id not in recorded
            and (
                _exact(lesion.sa_mm) >= _NODE_PATHOLOGICAL_SA_MM
                if lesion.nodal
                else _exact(lesion.ld_mm) > 0
            )
        )
    )

    return VisitResponse(
        date=visit.date,
        sod_mm=float(sod),
        nadir_mm=float(nadir) if targets else None,
        change_from_baseline_pct=float(_pct(sod, baseline_sod)) if targets else None,
        change_from_nadir_pct=float(_pct(sod, nadir)) if targets and nadir != 0 else None,
        target_response=target_response,
        nontarget_response=nontarget_response,
        new_lesion_ids=new_ids,
        overall_response=_overall(target_response, nontarget_response, bool(new_ids)),
    )


def _overall(target: str | None, nontarget: str | None, new_lesion: bool) -> str:
    """Overall response from RECIST 1.1 tables 1 (targets) and 2 (non-targets only)."""
    if new_lesion or target == "PD" or nontarget == "PD":
        return "PD"
    if target is None:
        if nontarget is None:
            return "NE"
        return nontarget  # "CR" or "NON_CR_NON_PD"
    if target == "CR":
        return "CR" if nontarget in (None, "CR") else "PR"
    return target  # "PR" or "SD"


def _best_overall_response(
    responses: list[VisitResponse], min_sd_days: int
) -> tuple[str, datetime.date | None]:
    """Unconfirmed best overall response and the date of the first PD.

    Only the visits up to and including the first PD count. SD (or non-CR/non-PD for a
    patient without targets) counts from ``min_sd_days`` after baseline.
    """
    baseline_date = responses[0].date
    considered: list[VisitResponse] = []
    progression_date: datetime.date | None = None
    for response in responses[1:]:
        considered.append(response)
        if response.overall_response == "PD":
            progression_date = response.date
            break

    found = {r.overall_response for r in considered}
    stable = {
        r.overall_response
        for r in considered
        if r.overall_response in ("SD", "NON_CR_NON_PD")
        and (r.date - baseline_date).days >= min_sd_days
    }
    for candidate, pool in (
        ("CR", found),
        ("PR", found),
        ("SD", stable),
        ("NON_CR_NON_PD", stable),
        ("PD", found),
    ):
        if candidate in pool:
            return candidate, progression_date
    return "NE", progression_date

"""One patient's whole course: RECIST 1.1, volumetric response, TGR and liver tumour
burden over time, from :class:`~netvolume.assess.TimePoint` records.

The diameter side is :func:`~netvolume.assess.recist.assess_recist`. The volumetric side
follows the same target lesions: their summed volume at every time point (a fragment
adds its volume, a merged or disappeared target adds 0), judged with the exact cube
equivalents of RECIST's thresholds (:mod:`netvolume.assess.volumetric`), new lesions
making it PD as in RECIST. Growth rates (:mod:`netvolume.assess.tgr`) are computed from
the targets' sum of diameters and from their summed volume, pre-baseline scans included
(TGR0). The liver tumour burden is taken from the image measurement where there is one.
"""

from __future__ import annotations

import dataclasses
import datetime
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from netvolume._version import __version__
from netvolume.assess._records import TimePoint
from netvolume.assess.recist import (
    PatientRecist,
    RecistSettings,
    assess_recist,
    lesion_pieces,
    target_sum_mm,
)
from netvolume.assess.tgr import TGRSettings, growth_rates
from netvolume.assess.tracking import TrackSettings
from netvolume.assess.volumetric import VolumetricSettings, volumetric_course
from netvolume.errors import AssessmentInputError

__all__ = [
    "TIMEPOINT_COLUMNS",
    "AssessSettings",
    "PatientAssessment",
    "assess_course",
    "provenance",
]


def _parse(value: str, current: Any, name: str) -> Any:
    text = value.strip()
    if isinstance(current, bool):
        low = text.lower()
        if low in ("true", "yes", "1"):
            return True
        if low in ("false", "no", "0"):
            return False
        raise AssessmentInputError(f"setting {name}={value!r}: not a boolean", tag=name)
    if current is None or isinstance(current, float):
        if text.lower() in ("none", ""):
            return None
        try:
            return float(text)
        except ValueError:
            raise AssessmentInputError(
                f"setting {name}={value!r}: not a number", tag=name
            ) from None
    if isinstance(current, int):
        try:
            return int(text)
        except ValueError:
            raise AssessmentInputError(
                f"setting {name}={value!r}: not an integer", tag=name
            ) from None
    if isinstance(current, tuple):
        try:
            parts = tuple(float(p) for p in text.split(","))
        except ValueError:
            raise AssessmentInputError(
                f"setting {name}={value!r}: give two numbers as LOW,HIGH", tag=name
            ) from None
        return parts
    return text


@dataclass(frozen=True)
class AssessSettings:
    """The settings of every longitudinal engine together."""

    recist: RecistSettings = field(default_factory=RecistSettings)
    tgr: TGRSettings = field(default_factory=TGRSettings)
    volumetric: VolumetricSettings = field(default_factory=VolumetricSettings)
    tracking: TrackSettings = field(default_factory=TrackSettings)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready plain data, one block per engine."""
        return {
            "recist": self.recist.to_dict(),
            "tgr": self.tgr.to_dict(),
            "volumetric": dataclasses.asdict(self.volumetric),
            "tracking": self.tracking.to_dict(),
        }

    def with_overrides(self, items: Sequence[str]) -> AssessSettings:
        """A copy with ``NAME=VALUE`` overrides (names are unique across the engines).

        Raises
        ------
        AssessmentInputError
            An unknown name, a value of the wrong type, or one out of range.
        """
        blocks: dict[str, Any] = {
            "recist": self.recist,
            "tgr": self.tgr,
            "volumetric": self.volumetric,
            "tracking": self.tracking,
        }
        changes: dict[str, dict[str, Any]] = {k: {} for k in blocks}
        for item in items:
            name, sep, value = item.partition("=")
            name = name.strip()
            if not sep:
                raise AssessmentInputError(f"setting {item!r}: expected NAME=VALUE", tag="--set")
            owner = next(
                (k for k, b in blocks.items() if name in {f.name for f in dataclasses.fields(b)}),
                None,
            )
            if owner is None:
                known = sorted(f.name for b in blocks.values() for f in dataclasses.fields(b))
                raise AssessmentInputError(
                    f"unknown setting {name!r}", tag="--set", hint="one of " + ", ".join(known)
                )
            changes[owner][name] = _parse(value, getattr(blocks[owner], name), name)
        try:
            return AssessSettings(
                **{k: dataclasses.replace(b, **changes[k]) for k, b in blocks.items()}
            )
        except (TypeError, ValueError) as exc:
            if isinstance(exc, AssessmentInputError):
                raise
            raise AssessmentInputError(f"settings: {exc}", tag="--set") from exc


@dataclass(frozen=True)
class PatientAssessment:
    """Everything said about one patient's course.

    ``rows`` holds one dict per time point (pre-baseline included) with the columns of
    ``timepoints.csv``; ``recist`` the full RECIST record; ``tgr`` the growth rates by
    kind (``diameter``, ``volume``); ``volumetric`` one dict per time point from baseline.
    """

    patient_id: str
    recist: PatientRecist
    rows: tuple[dict[str, Any], ...]
    tgr: dict[str, Any]
    volumetric: tuple[dict[str, Any], ...]
    notes: tuple[str, ...]
    source: str

    def to_dict(self) -> dict[str, Any]:
        """The patient's block of ``assessment.json``."""
        r = self.recist.to_dict()
        return {
            "baseline_date": r["baseline_date"],
            "targets": r["targets"],
            "nontargets": r["nontargets"],
            "not_recorded": r["not_recorded"],
            "best_overall_response": r["best_overall_response"],
            "bor_reason": r["bor_reason"],
            "pd_date": r["pd_date"],
            "tgr": self.tgr,
            "volumetric": list(self.volumetric),
            "timepoints": r["timepoints"],
            "notes": list(self.notes),
            "source": self.source,
        }


#: Columns of ``timepoints.csv``, in order.
TIMEPOINT_COLUMNS: tuple[str, ...] = (
    "patient_id",
    "date",
    "role",
    "days_from_baseline",
    "sod_mm",
    "sod_measured_mm",
    "nadir_mm",
    "pct_from_baseline",
    "pct_from_nadir",
    "target_response",
    "nontarget_response",
    "new_lesions",
    "overall_response",
    "target_volume_ml",
    "volume_ratio_to_baseline",
    "volume_ratio_to_nadir",
    "volumetric_response",
    "total_tumour_volume_ml",
    "liver_volume_ml",
    "liver_tumour_volume_ml",
    "liver_tumour_burden_pct",
    "tgr_diameter_vs_baseline_pct_per_month",
    "tgr_diameter_vs_previous_pct_per_month",
    "tgr_volume_vs_baseline_pct_per_month",
    "tgr_volume_vs_previous_pct_per_month",
    "notes",
)


def _target_volume(tp: TimePoint, target_ids: Sequence[str]) -> float | None:
    """Summed volume of the targets' pieces at a time point; None if one is unknown."""
    obs = {o.lesion_id: o for o in tp.observations}
    total = 0.0
    for tid in target_ids:
        pieces = lesion_pieces(obs, tid)
        if not pieces:
            return None
        for p in pieces:
            if p.merged_into is not None or (p.ld_mm is not None and p.ld_mm == 0):
                continue
            if p.volume_ml is None:
                return None
            total += p.volume_ml
    return total


def _total_volume(tp: TimePoint) -> float | None:
    """Summed volume of every lesion present; None when a present one has no volume."""
    present = [
        o
        for o in tp.observations
        if o.merged_into is None
        and not (o.ld_mm is not None and o.ld_mm == 0)
        and o.nontarget_status != "absent"
    ]
    if not present or any(o.volume_ml is None for o in present):
        return None
    return float(sum(o.volume_ml for o in present if o.volume_ml is not None))


def _by_date(items: list[dict[str, Any]], key: str = "end_date") -> dict[str, dict[str, Any]]:
    return {item[key]: item for item in items}


def assess_course(
    patient_id: str,
    timepoints: Sequence[TimePoint],
    settings: AssessSettings | None = None,
    *,
    baseline_date: datetime.date | None = None,
    source: str = "",
) -> PatientAssessment:
    """RECIST 1.1, volumetric response, TGR and liver tumour burden for one patient.

    Parameters
    ----------
    patient_id : str
        The patient's key.
    timepoints : sequence of TimePoint
        Every scan, pre-baseline ones included.
    settings : AssessSettings, optional
    baseline_date : datetime.date, optional
        Default: the first time point.
    source : str
        Provenance of the records (table and hash, or studies).

    Returns
    -------
    PatientAssessment

    References
    ----------
    Eisenhauer EA et al. Eur J Cancer 2009;45:228-247 (RECIST 1.1); Ferté C et al. Clin
    Cancer Res 2014;20:246-252 (TGR); volumetric equivalents: V ∝ D³ (DOMAIN.md §3).
    """
    s = settings or AssessSettings()
    tps = sorted(timepoints, key=lambda tp: tp.date)
    recist = assess_recist(patient_id, tps, s.recist, baseline_date=baseline_date)
    base = recist.baseline_date
    target_ids = [d.lesion_id for d in recist.targets]
    notes: list[str] = []

    sods: list[tuple[datetime.date, float | None]] = []
    vols: list[tuple[datetime.date, float | None]] = []
    for tp in tps:
        sods.append((tp.date, target_sum_mm(tp, recist.targets, s.recist) if target_ids else None))
        vols.append((tp.date, _target_volume(tp, target_ids) if target_ids else None))

    tgr: dict[str, Any] = {}
    if target_ids:
        tgr["diameter"] = growth_rates("diameter", sods, base, s.tgr)
    else:
        notes.append("no target lesions: no sum of diameters, no TGR")
    base_vol = dict(vols).get(base)
    followed = [(d, v) for d, v in vols if d >= base]
    volumetric: list[dict[str, Any]] = []
    if target_ids and base_vol:
        tgr["volume"] = growth_rates("volume", vols, base, s.tgr)
        new_flags = [bool(r.new_lesions) for r in recist.timepoints]
        volumetric = [v.to_dict() for v in volumetric_course(followed, new_flags, s.volumetric)]
    elif target_ids:
        notes.append("target volumes not available at baseline: no volumetric response")

    by_date = {r.date: r for r in recist.timepoints}
    vol_by_date = {v["date"]: v for v in volumetric}
    tgr_d = tgr.get("diameter", {})
    tgr_v = tgr.get("volume", {})
    d_base = _by_date(tgr_d.get("vs_baseline", []))
    d_prev = _by_date(tgr_d.get("consecutive", []))
    v_base = _by_date(tgr_v.get("vs_baseline", []))
    v_prev = _by_date(tgr_v.get("consecutive", []))
    rows = []
    for tp, (_, sod), (_, tvol) in zip(tps, sods, vols, strict=True):
        iso = tp.date.isoformat()
        r = by_date.get(tp.date)
        v = vol_by_date.get(iso, {})
        role = (
            "pre_baseline" if tp.date < base else ("baseline" if tp.date == base else "follow_up")
        )
        ltb = (
            100.0 * tp.liver_tumour_volume_ml / tp.liver_volume_ml
            if tp.liver_tumour_volume_ml is not None and tp.liver_volume_ml
            else None
        )
        rows.append(
            {
                "patient_id": patient_id,
                "date": iso,
                "role": role,
                "days_from_baseline": (tp.date - base).days,
                "sod_mm": r.sod_mm if r is not None else sod,
                "sod_measured_mm": r.sod_measured_mm if r is not None else None,
                "nadir_mm": r.nadir_mm if r is not None else None,
                "pct_from_baseline": r.pct_from_baseline if r is not None else None,
                "pct_from_nadir": r.pct_from_nadir if r is not None else None,
                "target_response": r.target_response if r is not None else None,
                "nontarget_response": r.nontarget_response if r is not None else None,
                "new_lesions": ";".join(r.new_lesions) if r is not None else "",
                "overall_response": r.overall_response if r is not None else None,
                "target_volume_ml": tvol,
                "volume_ratio_to_baseline": v.get("ratio_to_baseline"),
                "volume_ratio_to_nadir": v.get("ratio_to_nadir"),
                "volumetric_response": v.get("response"),
                "total_tumour_volume_ml": _total_volume(tp),
                "liver_volume_ml": tp.liver_volume_ml,
                "liver_tumour_volume_ml": tp.liver_tumour_volume_ml,
                "liver_tumour_burden_pct": ltb,
                "tgr_diameter_vs_baseline_pct_per_month": d_base.get(iso, {}).get(
                    "tgr_pct_per_month"
                ),
                "tgr_diameter_vs_previous_pct_per_month": d_prev.get(iso, {}).get(
                    "tgr_pct_per_month"
                ),
                "tgr_volume_vs_baseline_pct_per_month": v_base.get(iso, {}).get(
                    "tgr_pct_per_month"
                ),
                "tgr_volume_vs_previous_pct_per_month": v_prev.get(iso, {}).get(
                    "tgr_pct_per_month"
                ),
                "notes": " | ".join([*(r.notes if r is not None else ()), *tp.notes]),
            }
        )
    return PatientAssessment(
        patient_id=patient_id,
        recist=recist,
        rows=tuple(rows),
        tgr=tgr,
        volumetric=tuple(volumetric),
        notes=tuple(notes),
        source=source,
    )


def provenance() -> dict[str, Any]:
    """Package version (for ``assessment.json``; no clock time: same input, same bytes)."""
    return {"netvolume_version": __version__}

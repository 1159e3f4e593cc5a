"""The planned analysis of each seed protocol, on a cohort's clinical and imaging facts.

Each plan takes the cohort (clinical facts), the patients' imaging facts (``netvolume
assess`` outputs) and their eligibility, and returns an :class:`AnalysisResult`: tables
(one row per patient, or per lesion) and the cohort statistics of the protocol's
objectives, each either computed (with its inputs counted) or "not computed" with the
reason (too few patients, no event, a hazard ratio that is not estimable...). Nothing is
turned into a silent NaN.

Outcome definitions, shared by the plans:

* **Start of follow-up**: the first of ``prrt_start_date``, ``inclusion_date``,
  ``baseline_scan_date`` the patient has.
* **Best overall response (BOR)**: RECIST 1.1 from the patient's imaging assessment; else
  the clinical ``best_response_recist``; the table says which.
* **PFS** (DOMAIN section 8): event = the earliest RECIST PD after the start (imaging
  ``pd_date`` or clinical ``progression_date``) or death; otherwise censored at the last
  evaluable assessment (the last scan after the start whose response is not NE), or at
  ``last_followup_date`` when there is no scan. Time in days.
"""

from __future__ import annotations

import datetime
import functools
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from netvolume.errors import StatisticsInputError
from netvolume.outcomes import (
    DiagnosticAccuracy,
    InflammationSettings,
    cox_ph,
    inflammation_score,
    kaplan_meier,
    logrank_test,
    roc_auc,
    spearman,
    wilson_interval,
)
from netvolume.trials import (
    ClinicalCohort,
    Eligibility,
    ImagingFacts,
    PatientFacts,
    Protocol,
    Verdict,
)
from netvolume.trials.imaging import DAYS_PER_MONTH, ImagedScan

__all__ = ["PLANS", "AnalysisResult", "Population", "patient_outcome", "select_population"]

#: Which patients a plan analyses: ``eligible`` only, ``not_excluded`` (eligible or
#: undetermined: nothing known excludes them; the default) or ``all``.
Population = str
POPULATIONS = ("eligible", "not_excluded", "all")


@dataclass
class AnalysisResult:
    """Tables and statistics of one plan."""

    tables: dict[str, tuple[tuple[str, ...], list[dict[str, Any]]]] = field(default_factory=dict)
    statistics: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


# --- shared outcome definitions ------------------------------------------------------------


def _value(facts: PatientFacts, name: str) -> Any:
    fact = facts.get(name)
    return fact.value if fact is not None else None


def _start(facts: PatientFacts, imaging: ImagingFacts | None) -> tuple[datetime.date | None, str]:
    for name in ("prrt_start_date", "inclusion_date", "baseline_scan_date"):
        value = _value(facts, name)
        if isinstance(value, datetime.date):
            return value, name
    if imaging is not None and imaging.scans:
        return imaging.scans[0].date, "first scan"
    return None, ""


def patient_outcome(facts: PatientFacts, imaging: ImagingFacts | None) -> dict[str, Any]:
    """Start, BOR and PFS of one patient (see the module docstring for the rules)."""
    start, start_source = _start(facts, imaging)
    row: dict[str, Any] = {
        "patient_id": facts.patient_id,
        "start_date": start,
        "start_source": start_source,
    }
    if imaging is not None and imaging.best_overall_response is not None:
        row["bor"], row["bor_source"] = imaging.best_overall_response, "imaging (RECIST 1.1)"
    elif _value(facts, "best_response_recist") is not None:
        row["bor"], row["bor_source"] = _value(facts, "best_response_recist"), "clinical table"
    else:
        row["bor"], row["bor_source"] = None, "not available"
    if start is None:
        row.update(pfs_days=None, pfs_event=None, pfs_reason="no start date")
        return row
    events: list[tuple[datetime.date, str]] = []
    if imaging is not None and imaging.pd_date is not None and imaging.pd_date > start:
        events.append((imaging.pd_date, "RECIST PD (imaging)"))
    prog = _value(facts, "progression_date")
    if isinstance(prog, datetime.date) and prog > start:
        events.append((prog, "progression (clinical table)"))
    death = _value(facts, "death_date")
    if isinstance(death, datetime.date) and death >= start:
        events.append((death, "death"))
    if events:
        when, why = min(events)
        row.update(pfs_days=(when - start).days, pfs_event=1, pfs_reason=f"{why} on {when}")
        return row
    last: tuple[datetime.date, str] | None = None
    if imaging is not None:
        evaluable = [
            s for s in imaging.scans if s.date > start and s.overall_response not in (None, "NE")
        ]
        if evaluable:
            last = (evaluable[-1].date, "last evaluable scan")
    if last is None:
        follow = _value(facts, "last_followup_date")
        if isinstance(follow, datetime.date) and follow >= start:
            last = (follow, "last follow-up (clinical table)")
    if last is None:
        row.update(pfs_days=None, pfs_event=None, pfs_reason="no assessment after the start")
    else:
        row.update(pfs_days=(last[0] - start).days, pfs_event=0, pfs_reason=f"censored: {last[1]}")
    return row


def _stat(name: str, func: Callable[[], Any], out: dict[str, Any]) -> Any:
    """Run one statistic; record it, or record why it could not be computed."""
    try:
        result = func()
    except StatisticsInputError as exc:
        out[name] = {"status": "not_computed", "reason": exc.message}
        return None
    out[name] = {"status": "computed", "result": result.to_dict()}
    return result


def _km_by_group(
    rows: Sequence[Mapping[str, Any]], group_key: str, label: str, out: dict[str, Any]
) -> None:
    usable = [r for r in rows if r.get("pfs_days") is not None and r.get(group_key) is not None]
    out[f"pfs_km_{label}_n"] = len(usable)
    groups = sorted({r[group_key] for r in usable}, key=str)
    for g in groups:
        sub = [r for r in usable if r[group_key] == g]
        _stat(f"pfs_km_{label}={g}", functools.partial(_km, sub), out)
    if len(groups) >= 2:
        _stat(
            f"pfs_logrank_{label}",
            lambda: logrank_test(
                [r["pfs_days"] for r in usable],
                [r["pfs_event"] for r in usable],
                [r[group_key] for r in usable],
            ),
            out,
        )
    else:
        out[f"pfs_logrank_{label}"] = {
            "status": "not_computed",
            "reason": f"{len(groups)} group(s) with PFS data; the log-rank test needs 2",
        }


def _km(rows: Sequence[Mapping[str, Any]]) -> Any:
    return kaplan_meier([r["pfs_days"] for r in rows], [r["pfs_event"] for r in rows])


def _pfs_all(rows: Sequence[Mapping[str, Any]], out: dict[str, Any]) -> None:
    usable = [r for r in rows if r.get("pfs_days") is not None]
    out["pfs_n"] = len(usable)
    _stat(
        "pfs_km",
        lambda: kaplan_meier([r["pfs_days"] for r in usable], [r["pfs_event"] for r in usable]),
        out,
    )


def _cox(rows: Sequence[Mapping[str, Any]], covariate: str, name: str, out: dict[str, Any]) -> None:
    usable = [r for r in rows if r.get("pfs_days") is not None and _finite(r.get(covariate))]
    _stat(
        name,
        lambda: cox_ph(
            [r["pfs_days"] for r in usable],
            [r["pfs_event"] for r in usable],
            {covariate: [float(r[covariate]) for r in usable]},
        ),
        out,
    )


def _finite(value: Any) -> bool:
    return (
        isinstance(value, int | float)
        and not isinstance(value, bool)
        and math.isfinite(float(value))
    )


def _spearman(rows: Sequence[Mapping[str, Any]], x: str, y: str, out: dict[str, Any]) -> None:
    usable = [r for r in rows if _finite(r.get(x)) and _finite(r.get(y))]
    _stat(
        f"spearman_{x}_vs_{y}",
        lambda: spearman([r[x] for r in usable], [r[y] for r in usable]),
        out,
    )


def _proportions(rows: Sequence[Mapping[str, Any]], out: dict[str, Any]) -> None:
    """Objective response rate (CR+PR) and disease control rate (CR+PR+SD), Wilson CIs."""
    known = [r for r in rows if r.get("bor") in ("CR", "PR", "SD", "PD", "NE")]
    n = len(known)
    for name, cats in (("orr", ("CR", "PR")), ("dcr", ("CR", "PR", "SD"))):
        k = sum(1 for r in known if r["bor"] in cats)
        if n == 0:
            out[name] = {"status": "not_computed", "reason": "no patient with a BOR"}
            continue
        lo, hi = wilson_interval(k, n)
        out[name] = {
            "status": "computed",
            "result": {
                "successes": k,
                "n": n,
                "estimate": k / n,
                "ci_lower": lo,
                "ci_upper": hi,
                "method": "wilson",
                "categories": list(cats),
            },
        }


def _scan_in_window(
    imaging: ImagingFacts | None, window_months: Sequence[float]
) -> ImagedScan | None:
    """The first follow-up scan between the window's bounds (months after the first scan)."""
    if imaging is None or len(imaging.scans) < 2:
        return None
    base = imaging.scans[0].date
    lo, hi = (m * DAYS_PER_MONTH for m in window_months)
    for s in imaging.scans[1:]:
        if lo <= (s.date - base).days <= hi:
            return s
    return None


# --- the five plans ---------------------------------------------------------------------


_OUTCOME_COLUMNS = ("bor", "bor_source", "start_date", "pfs_days", "pfs_event", "pfs_reason")


def _plan_ibi(
    protocol: Protocol,
    patients: Sequence[PatientFacts],
    imaging: Mapping[str, ImagingFacts],
) -> AnalysisResult:
    cfg = protocol.analysis
    settings = InflammationSettings(
        crp_high_mg_l=float(cfg.get("crp_high_mg_l", 10.0)),
        albumin_low_g_l=float(cfg.get("albumin_low_g_l", 35.0)),
    )
    non_response = tuple(cfg.get("non_response", ("SD", "PD")))
    rows = []
    for facts in patients:
        score = inflammation_score(
            _value(facts, "crp_mg_l"),
            _value(facts, "albumin_g_l"),
            settings=settings,
            crp_abnormal_override=_value(facts, "crp_abnormal"),
            albumin_abnormal_override=_value(facts, "albumin_abnormal"),
        )
        row = patient_outcome(facts, imaging.get(facts.patient_id))
        row.update(
            crp_mg_l=score.crp_mg_l,
            albumin_g_l=score.albumin_g_l,
            ibi=score.ibi,
            gps=score.gps,
            mgps=score.mgps,
            ibi_positive=None if score.ibi is None else score.ibi > 0,
            ibi_evidence=score.evidence,
        )
        bor = row["bor"]
        row["non_response"] = None if bor in (None, "NE") else bor in non_response
        rows.append(row)
    columns = (
        "patient_id", "crp_mg_l", "albumin_g_l", "ibi", "gps", "mgps", "ibi_positive",
        "ibi_evidence", "non_response", *_OUTCOME_COLUMNS,
    )  # fmt: skip
    result = AnalysisResult(tables={"patients": (columns, rows)})
    stats = result.statistics
    stats["settings"] = {**settings.to_dict(), "non_response": list(non_response)}
    both = [r for r in rows if r["ibi_positive"] is not None and r["non_response"] is not None]
    stats["ibi_vs_non_response_n"] = len(both)
    if both:
        _stat(
            "ibi_positive_predicts_non_response",
            lambda: DiagnosticAccuracy.from_counts(
                tp=sum(1 for r in both if r["ibi_positive"] and r["non_response"]),
                fp=sum(1 for r in both if r["ibi_positive"] and not r["non_response"]),
                fn=sum(1 for r in both if not r["ibi_positive"] and r["non_response"]),
                tn=sum(1 for r in both if not r["ibi_positive"] and not r["non_response"]),
            ),
            stats,
        )
    else:
        stats["ibi_positive_predicts_non_response"] = {
            "status": "not_computed",
            "reason": "no patient with both an IBI and a response",
        }
    _pfs_all(rows, stats)
    for r in rows:
        r["ibi_group"] = (
            None if r["ibi_positive"] is None else ("IBI>0" if r["ibi_positive"] else "IBI=0")
        )
    _km_by_group(rows, "ibi_group", "ibi", stats)
    for r in rows:
        r["ibi_positive_int"] = None if r["ibi_positive"] is None else int(r["ibi_positive"])
    _cox(rows, "ibi_positive_int", "pfs_cox_ibi_positive", stats)
    _proportions(rows, stats)
    return result


def _plan_lesion_based(
    protocol: Protocol,
    patients: Sequence[PatientFacts],
    imaging: Mapping[str, ImagingFacts],
) -> AnalysisResult:
    cfg = protocol.analysis
    min_ld = float(cfg.get("target_min_ld_mm", 20.0))
    min_grade = int(cfg.get("target_min_krenning", 3))
    lesion_rows: list[dict[str, Any]] = []
    patient_rows: list[dict[str, Any]] = []
    for facts in patients:
        img = imaging.get(facts.patient_id)
        patient_rows.append(patient_outcome(facts, img))
        if img is None:
            continue
        start, _ = _start(facts, img)
        base = img.latest(start) if start else (img.scans[0] if img.scans else None)
        if base is None or base.lesions is None:
            continue
        later = [s for s in img.scans if s.date > base.date and s.lesions is not None]
        for les in base.lesions:
            if les.ld_mm is None or les.ld_mm < min_ld or (les.krenning_grade or 0) < min_grade:
                continue
            last_ld = None
            last_date = None
            for s in later:
                same = [x for x in s.lesions or () if x.lesion_id == les.lesion_id]
                last_ld = sum(x.ld_mm or 0.0 for x in same) if same else 0.0
                last_date = s.date
            change = None if last_ld is None else (last_ld - les.ld_mm) / les.ld_mm * 100
            response = None
            if change is not None:
                grow = last_ld - les.ld_mm if last_ld is not None else 0.0
                response = "PD" if change >= 20 and grow >= 5 else "PR" if change <= -30 else "SD"
            lesion_rows.append(
                {
                    "patient_id": facts.patient_id,
                    "lesion_id": les.lesion_id,
                    "organ": les.organ,
                    "baseline_study": base.study,
                    "baseline_ld_mm": les.ld_mm,
                    "krenning_grade": les.krenning_grade,
                    "suv_max": les.suv_max,
                    "tumour_to_liver": les.tumour_to_liver,
                    "last_date": last_date,
                    "last_ld_mm": last_ld,
                    "ld_change_pct": change,
                    "lesion_response": response,
                    "responding": None if response is None else response == "PR",
                }
            )
    lesion_cols = (
        "patient_id", "lesion_id", "organ", "baseline_study", "baseline_ld_mm",
        "krenning_grade", "suv_max", "tumour_to_liver", "last_date", "last_ld_mm",
        "ld_change_pct", "lesion_response", "responding",
    )  # fmt: skip
    result = AnalysisResult(
        tables={
            "lesions": (lesion_cols, lesion_rows),
            "patients": (("patient_id", *_OUTCOME_COLUMNS), patient_rows),
        }
    )
    stats = result.statistics
    stats["settings"] = {
        "target_min_ld_mm": min_ld,
        "target_min_krenning": min_grade,
        "lesion_response": "LD change: PR <= -30 %, PD >= +20 % and +5 mm",
    }
    followed = [r for r in lesion_rows if r["ld_change_pct"] is not None]
    stats["target_lesions"] = len(lesion_rows)
    stats["target_lesions_followed"] = len(followed)
    _spearman(followed, "suv_max", "ld_change_pct", stats)
    _spearman(followed, "tumour_to_liver", "ld_change_pct", stats)
    with_suv = [r for r in followed if _finite(r["suv_max"])]
    _stat(
        "roc_suv_max_for_lesion_response",
        lambda: roc_auc(
            [float(r["suv_max"]) for r in with_suv], [bool(r["responding"]) for r in with_suv]
        ),
        stats,
    )
    cut = 2.2  # Kratochwil et al., Mol Imaging Biol 2015: T/L > 2.2
    with_tl = [r for r in followed if _finite(r["tumour_to_liver"])]
    high = [float(r["tumour_to_liver"]) > cut for r in with_tl]
    resp = [bool(r["responding"]) for r in with_tl]
    _stat(
        "tl_above_2_2_predicts_lesion_response",
        lambda: DiagnosticAccuracy.from_counts(
            tp=sum(h and r for h, r in zip(high, resp, strict=True)),
            fp=sum(h and not r for h, r in zip(high, resp, strict=True)),
            fn=sum(not h and r for h, r in zip(high, resp, strict=True)),
            tn=sum(not h and not r for h, r in zip(high, resp, strict=True)),
        ),
        stats,
    )
    _pfs_all(patient_rows, stats)
    _proportions(patient_rows, stats)
    return result


def _plan_retreatment(
    protocol: Protocol,
    patients: Sequence[PatientFacts],
    imaging: Mapping[str, ImagingFacts],
) -> AnalysisResult:
    rows = []
    for facts in patients:
        row = patient_outcome(facts, imaging.get(facts.patient_id))
        end = _value(facts, "first_prrt_end_date")
        prog = _value(facts, "first_prrt_progression_date")
        row["first_prrt_control_months"] = (
            (prog - end).days / DAYS_PER_MONTH
            if isinstance(end, datetime.date) and isinstance(prog, datetime.date)
            else None
        )
        rows.append(row)
    result = AnalysisResult(
        tables={"patients": (("patient_id", *_OUTCOME_COLUMNS, "first_prrt_control_months"), rows)}
    )
    stats = result.statistics
    _pfs_all(rows, stats)
    _proportions(rows, stats)
    _spearman(rows, "first_prrt_control_months", "pfs_days", stats)
    result.notes.append(
        "randomisation arms are not in the clinical schema: PFS is reported for the cohort"
    )
    return result


def _plan_volumetric(
    protocol: Protocol,
    patients: Sequence[PatientFacts],
    imaging: Mapping[str, ImagingFacts],
) -> AnalysisResult:
    cfg = protocol.analysis
    window = tuple(cfg.get("early_window_months", (3.0, 6.0)))
    threshold = float(cfg.get("volume_threshold_pct", 0.0))
    rows = []
    for facts in patients:
        img = imaging.get(facts.patient_id)
        row = patient_outcome(facts, img)
        row.update(
            cga_ug_l=_value(facts, "cga_ug_l"),
            ki67_pct=_value(facts, "ki67_pct"),
            extra_abdominal_disease=_value(facts, "extra_abdominal_disease"),
        )
        base = img.scans[0] if img is not None and img.scans else None
        early = _scan_in_window(img, window)
        row.update(
            baseline_date=base.date if base else None,
            baseline_liver_tumour_volume_ml=base.liver_tumour_volume_ml if base else None,
            baseline_liver_volume_ml=base.liver_volume_ml if base else None,
            baseline_n_liver_lesions=base.n_liver_lesions if base else None,
            early_date=early.date if early else None,
            early_liver_tumour_volume_ml=early.liver_tumour_volume_ml if early else None,
            early_n_liver_lesions=early.n_liver_lesions if early else None,
        )
        b, e = row["baseline_liver_tumour_volume_ml"], row["early_liver_tumour_volume_ml"]
        row["early_volume_change_pct"] = (e - b) / b * 100 if b and e is not None else None
        row.update(_sod_and_tgr(img, early))
        if row["early_volume_change_pct"] is None:
            row["volume_group"] = None
        else:
            row["volume_group"] = (
                f"increase>{threshold:g}%"
                if row["early_volume_change_pct"] > threshold
                else f"change<={threshold:g}%"
            )
        rows.append(row)
    columns = (
        "patient_id", "baseline_date", "baseline_liver_tumour_volume_ml",
        "baseline_liver_volume_ml", "baseline_n_liver_lesions", "baseline_sod_mm", "early_date",
        "early_liver_tumour_volume_ml", "early_n_liver_lesions", "early_sod_mm",
        "early_volume_change_pct", "early_sod_change_pct", "tgr_first_diameter_pct_per_month",
        "tgr_first_volume_pct_per_month", "volume_group", "cga_ug_l", "ki67_pct",
        "extra_abdominal_disease", *_OUTCOME_COLUMNS,
    )  # fmt: skip
    result = AnalysisResult(tables={"patients": (columns, rows)})
    stats = result.statistics
    stats["settings"] = {"early_window_months": list(window), "volume_threshold_pct": threshold}
    _pfs_all(rows, stats)
    _km_by_group(rows, "volume_group", "early_volume", stats)
    _cox(rows, "early_volume_change_pct", "pfs_cox_early_volume_change_pct", stats)
    _cox(rows, "baseline_liver_tumour_volume_ml", "pfs_cox_baseline_liver_tumour_volume_ml", stats)
    prog = [
        r for r in rows if _finite(r.get("early_volume_change_pct")) and r["pfs_event"] is not None
    ]
    _stat(
        "roc_early_volume_change_for_progression",
        lambda: roc_auc(
            [r["early_volume_change_pct"] for r in prog], [bool(r["pfs_event"]) for r in prog]
        ),
        stats,
    )
    _spearman(rows, "baseline_liver_tumour_volume_ml", "cga_ug_l", stats)
    _spearman(rows, "baseline_n_liver_lesions", "cga_ug_l", stats)
    _spearman(rows, "tgr_first_diameter_pct_per_month", "ki67_pct", stats)
    _spearman(rows, "early_volume_change_pct", "early_sod_change_pct", stats)
    for r in rows:
        r["extra_abdominal_int"] = (
            None if r["extra_abdominal_disease"] is None else int(r["extra_abdominal_disease"])
        )
    _spearman(rows, "baseline_liver_tumour_volume_ml", "extra_abdominal_int", stats)
    return result


def _sod_and_tgr(img: ImagingFacts | None, early: ImagedScan | None) -> dict[str, Any]:
    out: dict[str, Any] = {
        "baseline_sod_mm": None,
        "early_sod_mm": None,
        "early_sod_change_pct": None,
        "tgr_first_diameter_pct_per_month": None,
        "tgr_first_volume_pct_per_month": None,
    }
    if img is None or img.timepoints is None:
        return out
    by_date = {tp["date"]: tp for tp in img.timepoints}
    base = by_date.get(img.scans[0].date.isoformat()) if img.scans else None
    if base:
        out["baseline_sod_mm"] = base.get("sod_mm")
    if early is not None and early.date.isoformat() in by_date:
        tp = by_date[early.date.isoformat()]
        out["early_sod_mm"] = tp.get("sod_mm")
        out["early_sod_change_pct"] = tp.get("pct_from_baseline")
    for kind in ("diameter", "volume"):
        tgr = (img.tgr or {}).get(kind) or {}
        first = tgr.get("tgr_first") or {}
        out[f"tgr_first_{kind}_pct_per_month"] = first.get("tgr_pct_per_month")
    return out


def _plan_personalised(
    protocol: Protocol,
    patients: Sequence[PatientFacts],
    imaging: Mapping[str, ImagingFacts],
) -> AnalysisResult:
    rows = []
    for facts in patients:
        img = imaging.get(facts.patient_id)
        row = patient_outcome(facts, img)
        start, _ = _start(facts, img)
        base = img.latest(start) if img is not None and start else None
        lesions = base.lesions if base is not None and base.lesions is not None else None
        row.update(
            baseline_study=base.study if base else None,
            n_lesions=len(lesions) if lesions is not None else None,
            n_without_uptake=sum(1 for x in lesions if x.krenning_grade == 0) if lesions else None,
            max_suv=max((x.suv_max or 0.0 for x in lesions), default=None) if lesions else None,
        )
        rows.append(row)
    columns = ("patient_id", "baseline_study", "n_lesions", "n_without_uptake", "max_suv",
               *_OUTCOME_COLUMNS)  # fmt: skip
    result = AnalysisResult(tables={"patients": (columns, rows)})
    _pfs_all(rows, result.statistics)
    _proportions(rows, result.statistics)
    result.notes.append(
        "personalisation by kidney dosimetry needs post-therapy Lu-177 SPECT time-activity "
        "curves, which this pipeline does not compute yet: the analysis reports efficacy "
        "(BOR, ORR, DCR, PFS) and the baseline SSTR facts only"
    )
    return result


Plan = Callable[[Protocol, Sequence[PatientFacts], Mapping[str, ImagingFacts]], AnalysisResult]

#: The planned analysis of each pipeline, by name.
PLANS: dict[str, Plan] = {
    "ibi_response": _plan_ibi,
    "lesion_based_prrt": _plan_lesion_based,
    "retreatment": _plan_retreatment,
    "volumetric_followup": _plan_volumetric,
    "personalised_prrt": _plan_personalised,
}


def select_population(
    cohort: ClinicalCohort, eligibility: Sequence[Eligibility], population: Population
) -> list[PatientFacts]:
    """The patients a plan analyses (see :data:`POPULATIONS`)."""
    if population not in POPULATIONS:
        raise ValueError(f"population {population!r} is not one of {', '.join(POPULATIONS)}")
    verdicts = {e.patient_id: e.verdict for e in eligibility}
    keep = {
        "eligible": (Verdict.ELIGIBLE,),
        "not_excluded": (Verdict.ELIGIBLE, Verdict.UNDETERMINED),
        "all": tuple(Verdict),
    }[population]
    return [p for p in cohort.patients if verdicts.get(p.patient_id) in keep]

"""Tumour growth rate (TGR), specific growth rate (SGR) and doubling time (DT).

Pure, record-level arithmetic: sums of diameters or volumes with their scan dates in, numbers
with every edge case spelt out in words out. No images, no I/O.

Formulas
--------
Diameters (Ferté et al., Clin Cancer Res 2014;20:246, PMID 24240109; the formula of their
R script, see DOMAIN.md section 2). ``D`` is the RECIST 1.1 sum of diameters in mm, ``t``
the time between the two scans in months, ``t = days * 12 / 365.25``::

    TG  = 3 * ln(D_t / D_0) / t                      (per month)
    TGR = 100 * (exp(TG) - 1) = 100 * ((D_t / D_0) ** (3 / t) - 1)     (%/month)

The factor 3 turns the diameter ratio into a volume ratio (``V = 4 pi R^3 / 3``), so TGR is a
*volume* growth rate estimated from diameters. Test vector: ``D_0 = 100``, ``D_t = 110``,
``t = 3`` months gives ``TGR = 10 %/month``.

Measured volumes ``V`` in mL (same derivation, the factor 3 drops out)::

    TG_V  = ln(V_t / V_0) / t
    TGR_V = 100 * (exp(TG_V) - 1)                                      (%/month)

so a diameter TGR and a volume TGR are on the same scale and the same thresholds apply.

Specific growth rate and doubling time (Mehrara et al., Cancer Res 2007;67:3970, who recommend
reporting the SGR rather than the DT)::

    SGR = ln(V_2 / V_1) / dt                 (per day)
    DT  = ln 2 / SGR = dt * ln 2 / ln(V_2 / V_1)     (days)

Edge cases (never a silent NaN)
-------------------------------
* Start value 0: TGR, SGR and DT are ``None``; the note says
  :data:`REASON_START_ZERO`.
* End value 0 with a start value > 0: TGR is its limit, exactly ``-100.0 %/month``
  (:data:`NOTE_END_ZERO`); SGR and DT are ``None`` (``ln 0`` is undefined,
  :data:`REASON_SGR_END_ZERO`).
* No change (``V_2 == V_1``): TGR and SGR are exactly 0; DT is ``None``
  (:data:`REASON_NO_CHANGE`).
* Shrinking: DT is negative; its magnitude is the halving time (:data:`NOTE_SHRINKING`).
* An interval of 0 days or less, a negative, non-finite or non-numeric size, a rate that
  overflows a float (a ratio of sizes no tumour reaches in that interval: wrong units?)
  raise :class:`~netvolume.errors.AssessmentInputError` naming the field and the value.

Periods (Dromain et al., BMC Cancer 2019, CLARINET; Lamarca et al., Oncologist 2019, GREPONET)
------------------------------------------------------------------------------------------------
:func:`growth_rates` computes, for one patient's series and its baseline date:

* ``tgr0``: the latest pre-baseline scan with a value to the baseline. The papers expect
  12-24 weeks between them; outside that window the rate is still computed, with a note.
* ``vs_baseline`` (TGR(Tx-0)): every follow-up with a value against the baseline.
* ``consecutive`` (TGR(Tx-Tx)): between consecutive time points with a value, from the baseline
  on (time points without a value are skipped, so a pair may span one).
* ``tgr_first``: the baseline to the first follow-up with a value.
* ``tgr3m``: the baseline to the follow-up at 3 +/- 1 months: among the follow-ups with
  ``2 <= months <= 4`` the one closest to 3 months, ties to the earlier. Window bounds and
  distances are compared exactly (rational arithmetic on whole days).
* ``classification``: TGR0 against 4 %/month (Dromain 2019; GREPONET) and TGR3m against
  0.8 %/month (GREPONET; GREPONET-2). Dromain calls ``> 4`` high, GREPONET ``>= 4`` and
  ``>= 0.8`` high, so :attr:`TGRSettings.inclusive` says on which side a value exactly at the
  threshold falls (default ``"high"``, GREPONET). The comparison is exact on the float TGR.
"""

from __future__ import annotations

import datetime
import itertools
import math
import numbers
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from fractions import Fraction
from typing import Any

from netvolume.assess._checks import as_date, check_size
from netvolume.errors import AssessmentInputError

__all__ = [
    "DAYS_PER_MONTH",
    "DEFAULT_TGR_SETTINGS",
    "KINDS",
    "NOTE_END_ZERO",
    "NOTE_SHRINKING",
    "REASON_NO_CHANGE",
    "REASON_SGR_END_ZERO",
    "REASON_START_ZERO",
    "GrowthRate",
    "TGRSettings",
    "classify",
    "doubling_time_days",
    "growth_rate",
    "growth_rates",
    "months_between",
    "specific_growth_rate_per_day",
    "tgr_diameter",
    "tgr_volume",
]

#: Days in one month as Ferté et al. count them (a Julian year over 12).
DAYS_PER_MONTH = 365.25 / 12

#: The exact value of :data:`DAYS_PER_MONTH` (1461/48 days), for exact window comparisons.
_DAYS_PER_MONTH_EXACT = Fraction(36525, 1200)

#: The kinds of size a growth rate is computed from, with their units.
KINDS: dict[str, str] = {"diameter": "mm", "volume": "mL"}

#: Days per week, for the TGR0 window.
_DAYS_PER_WEEK = 7

REASON_START_ZERO = "start value is 0: the growth rate is undefined"
NOTE_END_ZERO = "end value 0: complete disappearance, limit value"
REASON_SGR_END_ZERO = (
    "end value 0: the specific growth rate and the doubling time are undefined (ln 0)"
)
REASON_NO_CHANGE = "no change: the doubling time is infinite"
NOTE_SHRINKING = (
    "shrinking: the doubling time is negative; its magnitude is the halving time in days"
)

_INCLUSIVE = ("high", "low")


# --------------------------------------------------------------------------- validation


def _size(value: object, name: str) -> float:
    return check_size(
        value,
        name,
        unit="mm or mL",
        hint="correct the measurement; a lesion that has disappeared counts as 0",
    )


def _check_months(months: object) -> float:
    """Return ``months`` as a float, or raise if it is not a finite number > 0."""
    if isinstance(months, bool) or not isinstance(months, numbers.Real):
        raise AssessmentInputError(
            f"months must be a number, got {months!r}",
            tag="months",
            hint="give the interval between the scans in months (days * 12 / 365.25)",
        )
    number = float(months)
    if not math.isfinite(number) or number <= 0:
        raise AssessmentInputError(
            f"the interval between the scans must be > 0 months, got months={months!r}",
            tag="months",
            hint="give the scans in chronological order, with distinct dates",
        )
    return number


def _check_threshold(value: object, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise AssessmentInputError(f"{name} must be a number, got {value!r}", tag=name)
    number = float(value)
    if not math.isfinite(number):
        raise AssessmentInputError(f"{name} must be finite, got {value!r}", tag=name)
    return number


def _check_inclusive(inclusive: object) -> str:
    if inclusive not in _INCLUSIVE:
        raise AssessmentInputError(
            f"inclusive must be 'high' or 'low', got {inclusive!r}",
            tag="inclusive",
            hint="'high': a value equal to the threshold is high (GREPONET, >=); "
            "'low': it is low (Dromain 2019, >)",
        )
    return str(inclusive)


def _check_kind(kind: object) -> str:
    if kind not in KINDS:
        raise AssessmentInputError(
            f"kind must be 'diameter' or 'volume', got {kind!r}",
            tag="kind",
            hint="'diameter' for RECIST sums of diameters in mm, 'volume' for volumes in mL",
        )
    return str(kind)


def _check_window(window: object, name: str, *, positive: bool) -> tuple[float, float]:
    if not isinstance(window, Sequence) or isinstance(window, str) or len(window) != 2:
        raise AssessmentInputError(f"{name} must be a pair (low, high), got {window!r}", tag=name)
    low_f = _check_threshold(window[0], name)
    high_f = _check_threshold(window[1], name)
    if low_f > high_f or low_f < 0 or (positive and low_f <= 0):
        raise AssessmentInputError(
            f"{name} must satisfy {'0 <' if positive else '0 <='} low <= high, got {window!r}",
            tag=name,
        )
    return (low_f, high_f)


# --------------------------------------------------------------------------- formulas


def months_between(start: datetime.date, end: datetime.date) -> float:
    """Months between two dates, counted as Ferté et al. count them.

    Parameters
    ----------
    start, end
        Scan dates (a :class:`datetime.datetime` is reduced to its date).

    Returns
    -------
    float
        ``(end - start).days * 12 / 365.25`` months; negative when ``end`` is before
        ``start`` (the growth-rate functions reject intervals <= 0).

    References
    ----------
    Ferté C et al. Clin Cancer Res 2014;20:246-252 (PMID 24240109), the R script's
    ``t = days * 12 / 365.25``.
    """
    days = (as_date(end, "end") - as_date(start, "start")).days
    return days * 12 / 365.25


def _log_ratio(start: float, end: float) -> float:
    """``ln(end / start)`` for ``start, end > 0``, without overflow or underflow of the ratio.

    ``ln(end / start)`` keeps the sign of ``end - start`` exactly (a correctly rounded ratio of
    two distinct floats is never 1.0); the difference of logarithms is only used when the
    ratio itself would overflow or underflow.
    """
    ratio = end / start
    if ratio == 0.0 or math.isinf(ratio):
        return math.log(end) - math.log(start)
    return math.log(ratio)


def _tgr(
    start: float, end: float, months: float, exponent: int, start_name: str, end_name: str
) -> tuple[float | None, str | None]:
    """``100 * (exp(exponent * ln(end / start) / months) - 1)`` with its edge-case note."""
    start = _size(start, start_name)
    end = _size(end, end_name)
    months = _check_months(months)
    if start == 0:
        return None, REASON_START_ZERO
    if end == 0:
        return -100.0, NOTE_END_ZERO
    growth = exponent * _log_ratio(start, end) / months
    try:
        value = 100.0 * math.expm1(growth)
    except OverflowError:
        value = math.inf
    if math.isinf(value):
        raise AssessmentInputError(
            f"the growth rate overflows: {start_name}={start!r}, {end_name}={end!r} "
            f"in {months!r} months",
            tag=end_name,
            hint="check the units (mm vs cm, mL vs mm^3) and the scan dates",
        )
    return value, None


def tgr_diameter(d0_mm: float, dt_mm: float, months: float) -> float | None:
    """Tumour growth rate from RECIST sums of diameters.

    Parameters
    ----------
    d0_mm
        Sum of diameters at the first scan, mm (finite, >= 0).
    dt_mm
        Sum of diameters at the second scan, mm (finite, >= 0).
    months
        Time between the scans in months (``days * 12 / 365.25``), > 0.

    Returns
    -------
    float or None
        ``TGR = 100 * ((dt_mm / d0_mm) ** (3 / months) - 1)`` in %/month (computed as
        ``100 * expm1(3 * ln(dt_mm / d0_mm) / months)``); exactly ``-100.0`` when
        ``dt_mm == 0 < d0_mm`` (the limit); ``None`` when ``d0_mm == 0`` (undefined).

    Raises
    ------
    AssessmentInputError
        A size that is negative, non-finite or not a number; ``months <= 0``; a rate that
        overflows a float.

    References
    ----------
    Ferté C et al. Clin Cancer Res 2014;20:246-252 (PMID 24240109).

    Examples
    --------
    >>> round(tgr_diameter(100.0, 110.0, 3.0), 9)
    10.0
    """
    value, _ = _tgr(d0_mm, dt_mm, months, 3, "d0_mm", "dt_mm")
    return value


def tgr_volume(v0_ml: float, vt_ml: float, months: float) -> float | None:
    """Tumour growth rate from measured volumes.

    Parameters
    ----------
    v0_ml
        Volume at the first scan, mL (finite, >= 0).
    vt_ml
        Volume at the second scan, mL (finite, >= 0).
    months
        Time between the scans in months (``days * 12 / 365.25``), > 0.

    Returns
    -------
    float or None
        ``TGR_V = 100 * (exp(ln(vt_ml / v0_ml) / months) - 1)`` in %/month; exactly
        ``-100.0`` when ``vt_ml == 0 < v0_ml``; ``None`` when ``v0_ml == 0``.
        For a sphere (``V`` proportional to ``D**3``) it equals :func:`tgr_diameter`.

    Raises
    ------
    AssessmentInputError
        As :func:`tgr_diameter`.

    References
    ----------
    Ferté C et al. Clin Cancer Res 2014;20:246-252 (PMID 24240109), with the measured volume
    in place of the diameter-based estimate (the factor 3 drops out).
    """
    value, _ = _tgr(v0_ml, vt_ml, months, 1, "v0_ml", "vt_ml")
    return value


def _check_days(days: object) -> float:
    if isinstance(days, bool) or not isinstance(days, numbers.Real):
        raise AssessmentInputError(f"days must be a number, got {days!r}", tag="days")
    number = float(days)
    if not math.isfinite(number) or number <= 0:
        raise AssessmentInputError(
            f"the interval between the scans must be > 0 days, got days={days!r}",
            tag="days",
            hint="give the scans in chronological order, with distinct dates",
        )
    return number


def _sgr_dt(
    v1_ml: float, v2_ml: float, days: float
) -> tuple[float | None, float | None, tuple[str, ...]]:
    """SGR per day, DT in days, and the notes explaining any ``None`` or sign."""
    v1 = _size(v1_ml, "v1_ml")
    v2 = _size(v2_ml, "v2_ml")
    interval = _check_days(days)
    if v1 == 0:
        return None, None, (REASON_START_ZERO,)
    if v2 == 0:
        return None, None, (REASON_SGR_END_ZERO,)
    log_ratio = _log_ratio(v1, v2)
    sgr = log_ratio / interval
    if log_ratio == 0:
        return sgr, None, (REASON_NO_CHANGE,)
    doubling = interval * math.log(2) / log_ratio
    if doubling < 0:
        return sgr, doubling, (NOTE_SHRINKING,)
    return sgr, doubling, ()


def specific_growth_rate_per_day(v1_ml: float, v2_ml: float, days: float) -> float | None:
    """Specific growth rate of a volume.

    Parameters
    ----------
    v1_ml, v2_ml
        Volumes at the first and the second scan, mL (finite, >= 0).
    days
        Days between the scans, > 0.

    Returns
    -------
    float or None
        ``SGR = ln(v2_ml / v1_ml) / days`` per day (0 exactly when the volumes are equal,
        negative when shrinking); ``None`` when either volume is 0 (undefined).

    Raises
    ------
    AssessmentInputError
        A negative, non-finite or non-numeric volume; ``days <= 0``.

    References
    ----------
    Mehrara E et al. Specific growth rate versus doubling time for quantitative
    characterization of tumor growth rate. Cancer Res 2007;67:3970-3975.
    """
    sgr, _, _ = _sgr_dt(v1_ml, v2_ml, days)
    return sgr


def doubling_time_days(v1_ml: float, v2_ml: float, days: float) -> float | None:
    """Volume doubling time.

    Parameters
    ----------
    v1_ml, v2_ml
        Volumes at the first and the second scan, mL (finite, >= 0).
    days
        Days between the scans, > 0.

    Returns
    -------
    float or None
        ``DT = ln 2 / SGR = days * ln 2 / ln(v2_ml / v1_ml)`` in days; negative when the
        tumour shrinks (its magnitude is then the halving time); ``None`` when the volumes
        are equal (infinite) or either is 0 (undefined).

    Raises
    ------
    AssessmentInputError
        As :func:`specific_growth_rate_per_day`.

    References
    ----------
    Mehrara E et al. Cancer Res 2007;67:3970-3975.
    """
    _, doubling, _ = _sgr_dt(v1_ml, v2_ml, days)
    return doubling


# --------------------------------------------------------------------------- classification


def classify(value: float | None, threshold: float, inclusive: str) -> str | None:
    """Classify a TGR as ``"high"`` or ``"low"`` against a threshold.

    Parameters
    ----------
    value
        TGR in %/month, or ``None`` (not computable).
    threshold
        Threshold in %/month (4.0 for TGR0, 0.8 for TGR3m by default).
    inclusive
        ``"high"``: ``value >= threshold`` is high (GREPONET, Lamarca et al. 2019);
        ``"low"``: ``value > threshold`` is high, a value at the threshold is low
        (Dromain et al., BMC Cancer 2019).

    Returns
    -------
    str or None
        ``"high"`` or ``"low"``; ``None`` when ``value`` is ``None``.

    Raises
    ------
    AssessmentInputError
        ``inclusive`` not ``"high"``/``"low"``, a non-finite threshold, a NaN value.
    """
    inclusive = _check_inclusive(inclusive)
    threshold = _check_threshold(threshold, "threshold")
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or math.isnan(value):
        raise AssessmentInputError(
            f"the TGR to classify must be a number or None, got {value!r}", tag="value"
        )
    if inclusive == "high":
        return "high" if value >= threshold else "low"
    return "high" if value > threshold else "low"


@dataclass(frozen=True)
class TGRSettings:
    """Thresholds and windows of :func:`growth_rates`.

    Attributes
    ----------
    tgr0_threshold_pct_per_month
        TGR0 threshold, %/month (4.0: Dromain et al., BMC Cancer 2019; GREPONET).
    tgr3m_threshold_pct_per_month
        TGR3m threshold, %/month (0.8: GREPONET, Lamarca et al., Oncologist 2019).
    inclusive
        Side of the threshold a value exactly equal to it falls on: ``"high"`` (GREPONET,
        ``>=``, the default) or ``"low"`` (Dromain 2019, ``>``).
    tgr3m_window_months
        Follow-ups eligible for TGR3m, months after baseline, bounds included (3 +/- 1).
    tgr0_window_weeks
        Expected interval between the pre-baseline scan and the baseline, weeks (12-24);
        outside it TGR0 is still computed, with a note.
    tgr3m_target_months
        Among the eligible follow-ups TGR3m uses the one closest to this (3 months); must lie
        within ``tgr3m_window_months``.
    """

    tgr0_threshold_pct_per_month: float = 4.0
    tgr3m_threshold_pct_per_month: float = 0.8
    inclusive: str = "high"
    tgr3m_window_months: tuple[float, float] = (2.0, 4.0)
    tgr0_window_weeks: tuple[float, float] = (12.0, 24.0)
    tgr3m_target_months: float = 3.0

    def __post_init__(self) -> None:
        _check_inclusive(self.inclusive)
        for name in ("tgr0_threshold_pct_per_month", "tgr3m_threshold_pct_per_month"):
            object.__setattr__(self, name, _check_threshold(getattr(self, name), name))
        window_3m = _check_window(self.tgr3m_window_months, "tgr3m_window_months", positive=True)
        window_0 = _check_window(self.tgr0_window_weeks, "tgr0_window_weeks", positive=False)
        object.__setattr__(self, "tgr3m_window_months", window_3m)
        object.__setattr__(self, "tgr0_window_weeks", window_0)
        target = _check_threshold(self.tgr3m_target_months, "tgr3m_target_months")
        if not window_3m[0] <= target <= window_3m[1]:
            raise AssessmentInputError(
                f"tgr3m_target_months={target!r} lies outside tgr3m_window_months={window_3m!r}",
                tag="tgr3m_target_months",
                hint="choose a target inside the window",
            )
        object.__setattr__(self, "tgr3m_target_months", target)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready copy of the settings (windows as lists)."""
        return {
            "tgr0_threshold_pct_per_month": self.tgr0_threshold_pct_per_month,
            "tgr3m_threshold_pct_per_month": self.tgr3m_threshold_pct_per_month,
            "inclusive": self.inclusive,
            "tgr3m_window_months": list(self.tgr3m_window_months),
            "tgr0_window_weeks": list(self.tgr0_window_weeks),
            "tgr3m_target_months": self.tgr3m_target_months,
        }


#: The default settings (GREPONET thresholds, values at the threshold are high).
DEFAULT_TGR_SETTINGS = TGRSettings()


# --------------------------------------------------------------------------- records


@dataclass(frozen=True)
class GrowthRate:
    """Growth between two scans of one patient.

    Attributes
    ----------
    kind
        ``"diameter"`` (RECIST sum of diameters, mm) or ``"volume"`` (mL).
    start_date, end_date
        Scan dates.
    days
        Days between the scans (> 0).
    months
        ``days * 12 / 365.25``.
    start_value, end_value
        Sizes at the two scans, mm or mL after :attr:`kind`.
    tgr_pct_per_month
        TGR in %/month (Ferté 2014), ``None`` when undefined (see :attr:`notes`).
    sgr_per_day
        Specific growth rate per day (Mehrara 2007), volumes only; ``None`` for diameters
        and when undefined.
    doubling_time_days
        Doubling time in days, volumes only; negative when shrinking; ``None`` for diameters,
        when there is no change, or when undefined.
    notes
        Every edge case and reason, in words.
    """

    kind: str
    start_date: datetime.date
    end_date: datetime.date
    days: int
    months: float
    start_value: float
    end_value: float
    tgr_pct_per_month: float | None
    sgr_per_day: float | None
    doubling_time_days: float | None
    notes: tuple[str, ...] = field(default=())

    @property
    def unit(self) -> str:
        """Unit of :attr:`start_value` and :attr:`end_value` (``"mm"`` or ``"mL"``)."""
        return KINDS[self.kind]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dictionary (dates as ISO strings, notes as a list)."""
        return {
            "kind": self.kind,
            "unit": self.unit,
            "start_date": self.start_date.isoformat(),
            "end_date": self.end_date.isoformat(),
            "days": self.days,
            "months": self.months,
            "start_value": self.start_value,
            "end_value": self.end_value,
            "tgr_pct_per_month": self.tgr_pct_per_month,
            "sgr_per_day": self.sgr_per_day,
            "doubling_time_days": self.doubling_time_days,
            "notes": list(self.notes),
        }


def growth_rate(
    kind: str,
    start: tuple[datetime.date, float],
    end: tuple[datetime.date, float],
) -> GrowthRate:
    """TGR (and, for volumes, SGR and DT) between two dated sizes.

    Parameters
    ----------
    kind
        ``"diameter"`` (sizes are RECIST sums of diameters, mm) or ``"volume"`` (mL).
    start, end
        ``(scan date, size)`` of the earlier and the later scan.

    Returns
    -------
    GrowthRate
        With ``tgr_pct_per_month`` from :func:`tgr_diameter` or :func:`tgr_volume`,
        ``sgr_per_day`` and ``doubling_time_days`` (volumes only, per Mehrara 2007) and a note
        for every ``None``, limit value or negative doubling time.

    Raises
    ------
    AssessmentInputError
        Unknown ``kind``; ``end`` not after ``start`` (tag ``date``); a size that is negative,
        non-finite or not a number (tag ``start_value`` / ``end_value``).

    References
    ----------
    Ferté C et al. Clin Cancer Res 2014 (PMID 24240109); Mehrara E et al. Cancer Res
    2007;67:3970.
    """
    kind = _check_kind(kind)
    start_date = as_date(start[0], "start_date")
    end_date = as_date(end[0], "end_date")
    start_value = _size(start[1], "start_value")
    end_value = _size(end[1], "end_value")
    days = (end_date - start_date).days
    if days <= 0:
        raise AssessmentInputError(
            f"the interval from {start_date.isoformat()} to {end_date.isoformat()} is "
            f"{days} days; it must be > 0",
            tag="date",
            hint="give the earlier scan first, and scans on distinct dates",
        )
    months = days * 12 / 365.25
    notes: list[str] = []
    if kind == "diameter":
        tgr, note = _tgr(start_value, end_value, months, 3, "start_value", "end_value")
        sgr: float | None = None
        doubling: float | None = None
        if note is not None:
            notes.append(note)
    else:
        tgr, note = _tgr(start_value, end_value, months, 1, "start_value", "end_value")
        if note is not None:
            notes.append(note)
        sgr, doubling, dt_notes = _sgr_dt(start_value, end_value, days)
        notes.extend(n for n in dt_notes if n not in notes)
    return GrowthRate(
        kind=kind,
        start_date=start_date,
        end_date=end_date,
        days=days,
        months=months,
        start_value=start_value,
        end_value=end_value,
        tgr_pct_per_month=tgr,
        sgr_per_day=sgr,
        doubling_time_days=doubling,
        notes=tuple(notes),
    )


def _months_exact(days: int) -> Fraction:
    return Fraction(days) / _DAYS_PER_MONTH_EXACT


def _with_note(rate: GrowthRate, note: str) -> GrowthRate:
    return replace(rate, notes=(*rate.notes, note))


def growth_rates(
    kind: str,
    values: Sequence[tuple[datetime.date, float | None]],
    baseline_date: datetime.date,
    settings: TGRSettings = DEFAULT_TGR_SETTINGS,
) -> dict[str, Any]:
    """Every TGR period of one patient's series, with classifications.

    Parameters
    ----------
    kind
        ``"diameter"`` (RECIST sums of diameters, mm) or ``"volume"`` (mL).
    values
        ``(scan date, size)`` pairs, dates strictly increasing. A size of ``None`` means the
        time point has no usable value: it is skipped, with a note.
    baseline_date
        The baseline scan date; must be one of the dates. Earlier dates are pre-baseline.
    settings
        Thresholds and windows (:class:`TGRSettings`).

    Returns
    -------
    dict
        JSON-ready::

            {"kind", "unit", "baseline_date",
             "tgr0": GrowthRate.to_dict() or None,      # latest pre-baseline -> baseline
             "tgr_first": ... or None,                  # baseline -> first follow-up
             "tgr3m": ... or None,                      # baseline -> follow-up at 3 +/- 1 m
             "vs_baseline": [...],                      # TGR(Tx-0)
             "consecutive": [...],                      # TGR(Tx-Tx), from baseline on
             "classification": {"tgr0": "high"/"low"/None, "tgr3m": ...},
             "thresholds": settings.to_dict(),
             "notes": [...]}

        When the baseline has no value every rate relative to the baseline is ``None`` (the
        lists empty) and ``consecutive`` starts at the first follow-up with a value.

    Raises
    ------
    AssessmentInputError
        Unknown ``kind``; dates not strictly increasing (tag ``date``); ``baseline_date``
        not among the dates (tag ``baseline_date``); an invalid size.

    References
    ----------
    Ferté C et al. Clin Cancer Res 2014 (PMID 24240109); Dromain C et al. BMC Cancer 2019
    (TGR0, TGR(Tx-0), TGR(Tx-Tx), threshold 4 %/month); Lamarca A et al. Oncologist 2019,
    GREPONET (TGR3m, TGRfirst, thresholds 0.8 and 4 %/month).
    """
    kind = _check_kind(kind)
    if not isinstance(settings, TGRSettings):
        raise AssessmentInputError(
            f"settings must be a TGRSettings, got {settings!r}", tag="settings"
        )
    baseline = as_date(baseline_date, "baseline_date")
    series: list[tuple[datetime.date, float | None]] = []
    for index, item in enumerate(values):
        try:
            raw_date, raw_value = item
        except (TypeError, ValueError):
            raise AssessmentInputError(
                f"time point {index} must be a (date, value) pair, got {item!r}",
                tag="values",
            ) from None
        day = as_date(raw_date, f"values[{index}] date")
        if series and day <= series[-1][0]:
            raise AssessmentInputError(
                f"dates must be strictly increasing: {day.isoformat()} (time point {index}) "
                f"follows {series[-1][0].isoformat()}",
                tag="date",
                hint="sort the time points by date and merge scans of the same day",
            )
        value = None if raw_value is None else _size(raw_value, f"value on {day}")
        series.append((day, value))
    dates = [day for day, _ in series]
    if baseline not in dates:
        shown = ", ".join(d.isoformat() for d in dates) or "none"
        raise AssessmentInputError(
            f"baseline_date {baseline.isoformat()} is not one of the dates ({shown})",
            tag="baseline_date",
            hint="give the date of the baseline scan exactly as in the series",
        )

    unit = KINDS[kind]
    notes: list[str] = []
    for day, value in series:
        if value is None:
            notes.append(f"{day.isoformat()}: no usable value; time point skipped")
    base_value = dict(series)[baseline]
    pre = [(d, v) for d, v in series if d < baseline and v is not None]
    post = [(d, v) for d, v in series if d > baseline and v is not None]

    tgr0: GrowthRate | None = None
    tgr_first: GrowthRate | None = None
    tgr3m: GrowthRate | None = None
    vs_baseline: list[GrowthRate] = []
    if base_value is None:
        notes.append(
            f"baseline {baseline.isoformat()} has no usable value: every rate relative to "
            "the baseline (TGR0, TGRfirst, TGR3m, vs_baseline) is None"
        )
    else:
        base_point = (baseline, base_value)
        # TGR0: the latest pre-baseline scan with a value.
        if pre:
            tgr0 = growth_rate(kind, pre[-1], base_point)
            low_w, high_w = settings.tgr0_window_weeks
            weeks = Fraction(tgr0.days, _DAYS_PER_WEEK)
            if not Fraction(low_w) <= weeks <= Fraction(high_w):
                note = (
                    f"TGR0 interval is {float(weeks):.1f} weeks, outside the expected "
                    f"{low_w:g}-{high_w:g} weeks; computed anyway"
                )
                tgr0 = _with_note(tgr0, note)
                notes.append(note)
        else:
            notes.append("no pre-baseline scan with a value: TGR0 is None")
        # TGR(Tx-0), TGRfirst, TGR3m.
        vs_baseline = [growth_rate(kind, base_point, point) for point in post]
        if vs_baseline:
            tgr_first = vs_baseline[0]
        else:
            notes.append("no follow-up with a value: TGRfirst and TGR3m are None")
        low_m, high_m = (Fraction(b) for b in settings.tgr3m_window_months)
        target = Fraction(settings.tgr3m_target_months)
        best: tuple[Fraction, GrowthRate] | None = None
        for rate in vs_baseline:
            months = _months_exact(rate.days)
            if low_m <= months <= high_m:
                distance = abs(months - target)
                if best is None or distance < best[0]:  # ties keep the earlier
                    best = (distance, rate)
        if best is not None:
            tgr3m = best[1]
        elif vs_baseline:
            notes.append(
                f"no follow-up {settings.tgr3m_window_months[0]:g}-"
                f"{settings.tgr3m_window_months[1]:g} months after baseline: TGR3m is None"
            )

    # TGR(Tx-Tx): consecutive time points with a value, from the baseline on.
    chain = ([(baseline, base_value)] if base_value is not None else []) + post
    consecutive = [growth_rate(kind, a, b) for a, b in itertools.pairwise(chain)]

    classification = {
        "tgr0": classify(
            None if tgr0 is None else tgr0.tgr_pct_per_month,
            settings.tgr0_threshold_pct_per_month,
            settings.inclusive,
        ),
        "tgr3m": classify(
            None if tgr3m is None else tgr3m.tgr_pct_per_month,
            settings.tgr3m_threshold_pct_per_month,
            settings.inclusive,
        ),
    }
    for name, period in (("TGR0", tgr0), ("TGR3m", tgr3m)):
        if period is not None and period.tgr_pct_per_month is None:
            notes.append(f"{name} is undefined ({'; '.join(period.notes)}): not classified")

    return {
        "kind": kind,
        "unit": unit,
        "baseline_date": baseline.isoformat(),
        "tgr0": None if tgr0 is None else tgr0.to_dict(),
        "tgr_first": None if tgr_first is None else tgr_first.to_dict(),
        "tgr3m": None if tgr3m is None else tgr3m.to_dict(),
        "vs_baseline": [rate.to_dict() for rate in vs_baseline],
        "consecutive": [rate.to_dict() for rate in consecutive],
        "classification": classification,
        "thresholds": settings.to_dict(),
        "notes": notes,
    }

"""Tumour growth rate, specific growth rate and doubling time (netvolume.assess.tgr).

Analytic values: Ferté et al., Clin Cancer Res 2014 (PMID 24240109) for TGR, with the test
vector D0 = 100, Dt = 110, t = 3 months -> 10 %/month; Mehrara et al., Cancer Res 2007 for
SGR and DT. Thresholds: Dromain 2019 (TGR0 4 %/month), GREPONET (TGR3m 0.8 %/month).
"""

from __future__ import annotations

import datetime
import json
import math
from typing import Any

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from netvolume.assess.tgr import (
    DAYS_PER_MONTH,
    DEFAULT_TGR_SETTINGS,
    NOTE_END_ZERO,
    NOTE_SHRINKING,
    REASON_NO_CHANGE,
    REASON_SGR_END_ZERO,
    REASON_START_ZERO,
    GrowthRate,
    TGRSettings,
    classify,
    doubling_time_days,
    growth_rate,
    growth_rates,
    months_between,
    specific_growth_rate_per_day,
    tgr_diameter,
    tgr_volume,
)
from netvolume.errors import AssessmentInputError

D = datetime.date
BASE = D(2021, 3, 1)
LN2 = math.log(2)

#: Property tests: enough examples to matter, no deadline, no example database on disk.
PROPERTY = settings(max_examples=200, deadline=None, database=None)

sizes = st.floats(min_value=1e-3, max_value=1e4, allow_nan=False, allow_infinity=False)
months_st = st.floats(min_value=0.1, max_value=120.0, allow_nan=False, allow_infinity=False)


def day(offset: int) -> D:
    return BASE + datetime.timedelta(days=offset)


def ferte(d0: float, dt: float, months: float) -> float:
    """The closed form 100 * ((Dt/D0)**(3/t) - 1)."""
    return 100.0 * ((dt / d0) ** (3.0 / months) - 1.0)


# --------------------------------------------------------------------------- months


def test_days_per_month_is_a_julian_year_over_12() -> None:
    assert DAYS_PER_MONTH == 30.4375


def test_months_between_counts_days_times_12_over_365_25() -> None:
    assert months_between(D(2020, 1, 1), D(2024, 1, 1)) == 48.0  # 1461 days
    assert months_between(D(2021, 1, 1), D(2021, 2, 1)) == pytest.approx(31 * 12 / 365.25)
    assert months_between(D(2021, 1, 1), D(2021, 1, 1)) == 0.0
    assert months_between(D(2021, 2, 1), D(2021, 1, 1)) == pytest.approx(-31 * 12 / 365.25)


def test_months_between_accepts_datetimes_as_their_dates() -> None:
    start = datetime.datetime(2020, 1, 1, 23, 59)
    assert months_between(start, D(2024, 1, 1)) == 48.0


def test_months_between_rejects_non_dates() -> None:
    with pytest.raises(AssessmentInputError, match=r"start must be a datetime\.date"):
        months_between("2020-01-01", D(2021, 1, 1))  # type: ignore[arg-type, unused-ignore]


# --------------------------------------------------------------------------- TGR formulas


def test_tgr_diameter_test_vector_is_ten_percent_per_month() -> None:
    value = tgr_diameter(100.0, 110.0, 3.0)
    assert value is not None
    assert abs(value - 10.0) < 1e-9


@pytest.mark.parametrize(
    ("d0", "dt", "months", "expected"),
    [
        (100.0, 50.0, 3.0, -50.0),  # (1/2)**1 - 1
        (100.0, 200.0, 3.0, 100.0),
        (100.0, 200.0, 6.0, 100.0 * (math.sqrt(2) - 1)),
        (40.0, 44.0, 12.0, ferte(40.0, 44.0, 12.0)),
        (10.0, 10.0, 1.0, 0.0),
    ],
)
def test_tgr_diameter_analytic_values(d0: float, dt: float, months: float, expected: float) -> None:
    assert tgr_diameter(d0, dt, months) == pytest.approx(expected, rel=1e-12, abs=1e-12)


@pytest.mark.parametrize(
    ("v0", "vt", "months", "expected"),
    [
        (1.0, 1.1, 1.0, 10.0),
        (1.0, 2.0, 1.0, 100.0),
        (8.0, 4.0, 1.0, -50.0),
        (8.0, 16.0, 2.0, 100.0 * (math.sqrt(2) - 1)),
        (1.0, 1.331, 3.0, 10.0),  # the diameter test vector, cubed
    ],
)
def test_tgr_volume_analytic_values(v0: float, vt: float, months: float, expected: float) -> None:
    assert tgr_volume(v0, vt, months) == pytest.approx(expected, rel=1e-12, abs=1e-12)


def test_tgr_volume_differs_from_tgr_diameter_on_the_same_numbers() -> None:
    # the factor 3: a 10 % larger volume is not a 10 % larger diameter
    assert tgr_volume(100.0, 110.0, 3.0) == pytest.approx(100.0 * (1.1 ** (1 / 3) - 1))


@pytest.mark.parametrize("func", [tgr_diameter, tgr_volume])
def test_tgr_start_zero_is_none(func: Any) -> None:
    assert func(0.0, 5.0, 3.0) is None
    assert func(0.0, 0.0, 3.0) is None


@pytest.mark.parametrize("func", [tgr_diameter, tgr_volume])
def test_tgr_end_zero_is_minus_100_exactly(func: Any) -> None:
    value = func(25.0, 0.0, 2.0)
    assert value == -100.0
    assert isinstance(value, float)


@pytest.mark.parametrize(
    ("args", "field", "shown"),
    [
        ((-1.0, 10.0, 3.0), "d0_mm", "-1.0"),
        ((10.0, -0.5, 3.0), "dt_mm", "-0.5"),
        ((math.nan, 10.0, 3.0), "d0_mm", "nan"),
        ((10.0, math.inf, 3.0), "dt_mm", "inf"),
        (("10", 10.0, 3.0), "d0_mm", "'10'"),
        ((True, 10.0, 3.0), "d0_mm", "True"),
        ((10.0, 10.0, 0.0), "months", "0.0"),
        ((10.0, 10.0, -3.0), "months", "-3.0"),
        ((10.0, 10.0, math.nan), "months", "nan"),
    ],
)
def test_tgr_diameter_rejects_bad_input(args: tuple[Any, ...], field: str, shown: str) -> None:
    with pytest.raises(AssessmentInputError) as info:
        tgr_diameter(*args)
    assert info.value.tag == field
    assert field in str(info.value)
    assert shown in str(info.value)
    assert info.value.hint


def test_tgr_volume_names_its_fields() -> None:
    with pytest.raises(AssessmentInputError, match=r"vt_ml.*-2\.0") as info:
        tgr_volume(1.0, -2.0, 1.0)
    assert info.value.tag == "vt_ml"


def test_tgr_overflow_is_an_error_not_inf() -> None:
    with pytest.raises(AssessmentInputError, match="overflows") as info:
        tgr_volume(1e-300, 1e300, 0.01)
    assert "units" in (info.value.hint or "")


def test_tgr_extreme_but_finite_ratio_does_not_overflow_the_ratio() -> None:
    # the ratio 1e-300 / 1e300 underflows to 0; the rate is computed from logarithms
    value = tgr_volume(1e300, 1e-300, 1000.0)
    expected = 100.0 * math.expm1((math.log(1e-300) - math.log(1e300)) / 1000.0)
    assert value == pytest.approx(expected, rel=1e-12)


# --------------------------------------------------------------------------- SGR and DT


def test_sgr_and_doubling_time_of_a_doubling() -> None:
    assert specific_growth_rate_per_day(1.0, 2.0, 10) == pytest.approx(LN2 / 10, rel=1e-15)
    assert doubling_time_days(1.0, 2.0, 10) == pytest.approx(10.0, rel=1e-15)
    assert doubling_time_days(3.0, 24.0, 90) == pytest.approx(30.0, rel=1e-14)


def test_doubling_time_of_shrinking_is_minus_the_halving_time() -> None:
    assert specific_growth_rate_per_day(2.0, 1.0, 10) == pytest.approx(-LN2 / 10, rel=1e-15)
    assert doubling_time_days(2.0, 1.0, 10) == pytest.approx(-10.0, rel=1e-15)


def test_no_change_gives_sgr_zero_and_no_doubling_time() -> None:
    assert specific_growth_rate_per_day(5.0, 5.0, 30) == 0.0
    assert doubling_time_days(5.0, 5.0, 30) is None


@pytest.mark.parametrize(("v1", "v2"), [(0.0, 1.0), (1.0, 0.0), (0.0, 0.0)])
def test_sgr_and_dt_undefined_with_a_zero_volume(v1: float, v2: float) -> None:
    assert specific_growth_rate_per_day(v1, v2, 30) is None
    assert doubling_time_days(v1, v2, 30) is None


@pytest.mark.parametrize("days", [0, -1, math.nan])
def test_sgr_rejects_non_positive_interval(days: float) -> None:
    with pytest.raises(AssessmentInputError, match="days") as info:
        specific_growth_rate_per_day(1.0, 2.0, days)
    assert info.value.tag == "days"


def test_sgr_rejects_negative_volume() -> None:
    with pytest.raises(AssessmentInputError, match=r"v1_ml.*-1\.0"):
        doubling_time_days(-1.0, 2.0, 10)


# --------------------------------------------------------------------------- growth_rate


def test_growth_rate_diameter_over_four_years() -> None:
    rate = growth_rate("diameter", (D(2020, 1, 1), 100.0), (D(2024, 1, 1), 110.0))
    assert rate.days == 1461
    assert rate.months == 48.0
    assert rate.tgr_pct_per_month == pytest.approx(ferte(100.0, 110.0, 48.0), rel=1e-12)
    assert rate.sgr_per_day is None
    assert rate.doubling_time_days is None
    assert rate.notes == ()
    assert rate.unit == "mm"


def test_growth_rate_volume_has_sgr_and_doubling_time() -> None:
    rate = growth_rate("volume", (day(0), 4.0), (day(60), 8.0))
    assert rate.tgr_pct_per_month == pytest.approx(100.0 * (2 ** (1 / (60 / DAYS_PER_MONTH)) - 1))
    assert rate.sgr_per_day == pytest.approx(LN2 / 60, rel=1e-15)
    assert rate.doubling_time_days == pytest.approx(60.0, rel=1e-15)
    assert rate.unit == "mL"


def test_growth_rate_notes_every_edge_case() -> None:
    start_zero = growth_rate("volume", (day(0), 0.0), (day(30), 1.0))
    assert start_zero.tgr_pct_per_month is None
    assert start_zero.sgr_per_day is None
    assert start_zero.notes == (REASON_START_ZERO,)

    end_zero = growth_rate("volume", (day(0), 2.0), (day(30), 0.0))
    assert end_zero.tgr_pct_per_month == -100.0
    assert end_zero.sgr_per_day is None
    assert end_zero.doubling_time_days is None
    assert end_zero.notes == (NOTE_END_ZERO, REASON_SGR_END_ZERO)

    end_zero_d = growth_rate("diameter", (day(0), 20.0), (day(30), 0.0))
    assert end_zero_d.tgr_pct_per_month == -100.0
    assert end_zero_d.notes == (NOTE_END_ZERO,)

    same = growth_rate("volume", (day(0), 2.0), (day(30), 2.0))
    assert same.tgr_pct_per_month == 0.0
    assert same.sgr_per_day == 0.0
    assert same.doubling_time_days is None
    assert same.notes == (REASON_NO_CHANGE,)

    shrink = growth_rate("volume", (day(0), 2.0), (day(30), 1.0))
    assert shrink.doubling_time_days == pytest.approx(-30.0)
    assert shrink.notes == (NOTE_SHRINKING,)


def test_reason_strings_say_what_the_brief_says() -> None:
    assert REASON_START_ZERO == "start value is 0: the growth rate is undefined"
    assert NOTE_END_ZERO == "end value 0: complete disappearance, limit value"
    assert REASON_NO_CHANGE == "no change: the doubling time is infinite"
    assert "negative" in NOTE_SHRINKING and "halving" in NOTE_SHRINKING


@pytest.mark.parametrize("offset", [0, -5])
def test_growth_rate_rejects_non_positive_interval(offset: int) -> None:
    with pytest.raises(AssessmentInputError) as info:
        growth_rate("diameter", (day(0), 10.0), (day(offset), 12.0))
    assert info.value.tag == "date"
    assert f"{offset} days" in str(info.value)
    assert day(0).isoformat() in str(info.value)


def test_growth_rate_rejects_bad_kind_and_sizes() -> None:
    with pytest.raises(AssessmentInputError, match="'area'") as info:
        growth_rate("area", (day(0), 10.0), (day(30), 12.0))
    assert info.value.tag == "kind"
    with pytest.raises(AssessmentInputError, match=r"end_value.*-12\.0") as info:
        growth_rate("diameter", (day(0), 10.0), (day(30), -12.0))
    assert info.value.tag == "end_value"
    with pytest.raises(AssessmentInputError, match=r"start_value.*inf"):
        growth_rate("volume", (day(0), math.inf), (day(30), 12.0))


def test_growth_rate_to_dict_is_json_ready() -> None:
    rate = growth_rate("volume", (datetime.datetime(2021, 3, 1, 8), 2.0), (day(30), 0.0))
    assert rate.start_date == BASE  # a datetime is reduced to its date
    data = rate.to_dict()
    assert json.loads(json.dumps(data, allow_nan=False)) == data
    assert data["start_date"] == "2021-03-01"
    assert data["end_date"] == "2021-03-31"
    assert data["tgr_pct_per_month"] == -100.0
    assert data["notes"] == [NOTE_END_ZERO, REASON_SGR_END_ZERO]
    assert set(data) >= {
        "kind",
        "start_date",
        "end_date",
        "days",
        "months",
        "start_value",
        "end_value",
        "tgr_pct_per_month",
        "sgr_per_day",
        "doubling_time_days",
        "notes",
    }


def test_growth_rate_is_frozen() -> None:
    rate = growth_rate("diameter", (day(0), 10.0), (day(30), 12.0))
    assert isinstance(rate, GrowthRate)
    with pytest.raises(AttributeError):
        rate.days = 3  # type: ignore[misc, unused-ignore]


# --------------------------------------------------------------------------- classify


@pytest.mark.parametrize("threshold", [4.0, 0.8])
def test_classify_at_the_threshold_follows_inclusive(threshold: float) -> None:
    assert classify(threshold, threshold, "high") == "high"  # GREPONET: >=
    assert classify(threshold, threshold, "low") == "low"  # Dromain 2019: >
    above = math.nextafter(threshold, math.inf)
    below = math.nextafter(threshold, -math.inf)
    for inclusive in ("high", "low"):
        assert classify(above, threshold, inclusive) == "high"
        assert classify(below, threshold, inclusive) == "low"


def test_classify_none_and_errors() -> None:
    assert classify(None, 4.0, "high") is None
    assert classify(-100.0, 4.0, "low") == "low"
    with pytest.raises(AssessmentInputError, match="'both'") as info:
        classify(5.0, 4.0, "both")
    assert info.value.tag == "inclusive"
    with pytest.raises(AssessmentInputError, match="nan"):
        classify(math.nan, 4.0, "high")
    with pytest.raises(AssessmentInputError, match="threshold"):
        classify(1.0, math.inf, "high")


# --------------------------------------------------------------------------- settings


def test_settings_defaults_and_to_dict() -> None:
    s = TGRSettings()
    assert s == DEFAULT_TGR_SETTINGS
    assert s.to_dict() == {
        "tgr0_threshold_pct_per_month": 4.0,
        "tgr3m_threshold_pct_per_month": 0.8,
        "inclusive": "high",
        "tgr3m_window_months": [2.0, 4.0],
        "tgr0_window_weeks": [12.0, 24.0],
        "tgr3m_target_months": 3.0,
    }
    assert json.loads(json.dumps(s.to_dict())) == s.to_dict()


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"inclusive": "above"}, "inclusive"),
        ({"tgr0_threshold_pct_per_month": math.nan}, "tgr0_threshold_pct_per_month"),
        ({"tgr3m_threshold_pct_per_month": "0.8"}, "tgr3m_threshold_pct_per_month"),
        ({"tgr3m_window_months": (4.0, 2.0)}, "tgr3m_window_months"),
        ({"tgr3m_window_months": (0.0, 4.0)}, "tgr3m_window_months"),
        ({"tgr3m_window_months": (2.0,)}, "tgr3m_window_months"),
        ({"tgr0_window_weeks": (-1.0, 24.0)}, "tgr0_window_weeks"),
        ({"tgr3m_target_months": 5.0}, "tgr3m_target_months"),
    ],
)
def test_settings_validation(kwargs: dict[str, Any], field: str) -> None:
    with pytest.raises(AssessmentInputError) as info:
        TGRSettings(**kwargs)
    assert info.value.tag == field
    assert field in str(info.value)


def test_settings_accept_lists_as_windows() -> None:
    s = TGRSettings(tgr3m_window_months=[1.5, 4.5])  # type: ignore[arg-type, unused-ignore]
    assert s.tgr3m_window_months == (1.5, 4.5)


# --------------------------------------------------------------------------- growth_rates


def test_growth_rates_full_series() -> None:
    series = [
        (day(-200), 80.0),
        (day(-119), 90.0),  # 17 weeks before baseline: TGR0 uses this one, the latest
        (day(0), 100.0),  # baseline
        (day(56), 104.0),  # 1.84 months: TGRfirst, outside the 3 +/- 1 window
        (day(84), 106.0),  # 2.76 months: in the window, 0.240 from 3
        (day(98), 107.0),  # 3.22 months: in the window, 0.220 from 3 -> TGR3m
        (day(180), 120.0),
    ]
    result = growth_rates("diameter", series, BASE)
    assert json.loads(json.dumps(result, allow_nan=False)) == result
    assert result["kind"] == "diameter"
    assert result["baseline_date"] == BASE.isoformat()

    tgr0 = result["tgr0"]
    assert tgr0["start_date"] == day(-119).isoformat()
    assert tgr0["days"] == 119
    expected_tgr0 = ferte(90.0, 100.0, 119 / DAYS_PER_MONTH)
    assert tgr0["tgr_pct_per_month"] == pytest.approx(expected_tgr0, rel=1e-12)
    assert tgr0["notes"] == []
    assert expected_tgr0 > 4.0

    assert result["tgr_first"]["end_date"] == day(56).isoformat()
    assert result["tgr_first"]["tgr_pct_per_month"] == pytest.approx(
        ferte(100.0, 104.0, 56 / DAYS_PER_MONTH), rel=1e-12
    )
    assert result["tgr3m"]["end_date"] == day(98).isoformat()
    expected_3m = ferte(100.0, 107.0, 98 / DAYS_PER_MONTH)
    assert result["tgr3m"]["tgr_pct_per_month"] == pytest.approx(expected_3m, rel=1e-12)

    assert [r["end_date"] for r in result["vs_baseline"]] == [
        day(o).isoformat() for o in (56, 84, 98, 180)
    ]
    assert all(r["start_date"] == BASE.isoformat() for r in result["vs_baseline"])
    assert [(r["start_date"], r["end_date"]) for r in result["consecutive"]] == [
        (day(a).isoformat(), day(b).isoformat())
        for a, b in [(0, 56), (56, 84), (84, 98), (98, 180)]
    ]
    assert result["consecutive"][3]["tgr_pct_per_month"] == pytest.approx(
        ferte(107.0, 120.0, 82 / DAYS_PER_MONTH), rel=1e-12
    )
    assert result["classification"] == {"tgr0": "high", "tgr3m": "high"}
    assert result["thresholds"] == TGRSettings().to_dict()
    assert result["notes"] == []


def test_growth_rates_volume_kind() -> None:
    result = growth_rates("volume", [(day(-100), 10.0), (day(0), 20.0), (day(91), 20.0)], BASE)
    assert result["unit"] == "mL"
    assert result["tgr0"]["tgr_pct_per_month"] == pytest.approx(
        100.0 * (2.0 ** (DAYS_PER_MONTH / 100) - 1), rel=1e-12
    )
    assert result["tgr0"]["doubling_time_days"] == pytest.approx(100.0)
    assert result["tgr3m"]["tgr_pct_per_month"] == 0.0
    assert result["tgr3m"]["doubling_time_days"] is None
    assert result["classification"] == {"tgr0": "high", "tgr3m": "low"}


@pytest.mark.parametrize(
    ("offset", "included"),
    [(60, False), (61, True), (121, True), (122, False)],  # 1.971, 2.004, 3.975, 4.008 months
)
def test_tgr3m_default_window_bounds(offset: int, included: bool) -> None:
    result = growth_rates("diameter", [(day(0), 50.0), (day(offset), 55.0)], BASE)
    assert (result["tgr3m"] is not None) is included
    assert result["tgr_first"]["days"] == offset
    if not included:
        assert any("TGR3m is None" in n for n in result["notes"])
        assert result["classification"]["tgr3m"] is None


@pytest.mark.parametrize(("offset", "included"), [(487, True), (488, False)])
def test_tgr3m_window_bounds_are_inclusive_and_exact(offset: int, included: bool) -> None:
    # 487 days is exactly 16 months (487 * 12 / 365.25)
    s = TGRSettings(tgr3m_window_months=(2.0, 16.0))
    result = growth_rates("diameter", [(day(0), 50.0), (day(offset), 55.0)], BASE, s)
    assert (result["tgr3m"] is not None) is included


def test_tgr3m_tie_goes_to_the_earlier_follow_up() -> None:
    # target 8 months = 243.5 days exactly: 243 and 244 days are equally close
    s = TGRSettings(tgr3m_window_months=(6.0, 10.0), tgr3m_target_months=8.0)
    series = [(day(0), 50.0), (day(243), 55.0), (day(244), 60.0)]
    result = growth_rates("diameter", series, BASE, s)
    assert result["tgr3m"]["days"] == 243


def test_tgr3m_prefers_the_closest_not_the_first() -> None:
    series = [(day(0), 50.0), (day(62), 51.0), (day(90), 52.0), (day(120), 53.0)]
    result = growth_rates("diameter", series, BASE)
    assert result["tgr3m"]["days"] == 90  # 2.957 months
    assert result["tgr_first"]["days"] == 62


@pytest.mark.parametrize(("gap", "noted"), [(83, True), (84, False), (168, False), (169, True)])
def test_tgr0_window_note(gap: int, noted: bool) -> None:
    result = growth_rates("diameter", [(day(-gap), 50.0), (day(0), 60.0)], BASE)
    tgr0 = result["tgr0"]
    assert tgr0["tgr_pct_per_month"] == pytest.approx(ferte(50.0, 60.0, gap / DAYS_PER_MONTH))
    window_notes = [n for n in tgr0["notes"] if "outside the expected 12-24 weeks" in n]
    assert bool(window_notes) is noted
    assert any("outside the expected" in n for n in result["notes"]) is noted
    if noted:
        assert f"{gap / 7:.1f} weeks" in window_notes[0]


def test_no_pre_baseline_scan_gives_tgr0_none() -> None:
    result = growth_rates("diameter", [(day(0), 50.0), (day(90), 55.0)], BASE)
    assert result["tgr0"] is None
    assert result["classification"]["tgr0"] is None
    assert any("TGR0 is None" in n for n in result["notes"])


def test_no_follow_up_gives_empty_lists() -> None:
    result = growth_rates("diameter", [(day(-100), 50.0), (day(0), 55.0)], BASE)
    assert result["tgr_first"] is None
    assert result["tgr3m"] is None
    assert result["vs_baseline"] == []
    assert result["consecutive"] == []
    assert any("no follow-up with a value" in n for n in result["notes"])


def test_missing_values_are_skipped_with_a_note() -> None:
    series = [
        (day(-150), 40.0),
        (day(-100), None),  # latest pre-baseline has no value: TGR0 uses day -150
        (day(0), 50.0),
        (day(30), None),  # first follow-up has no value: TGRfirst uses day 60
        (day(60), 55.0),
        (day(90), 60.0),
    ]
    result = growth_rates("diameter", series, BASE)
    assert result["tgr0"]["start_date"] == day(-150).isoformat()
    assert result["tgr_first"]["end_date"] == day(60).isoformat()
    assert [(r["start_date"], r["end_date"]) for r in result["consecutive"]] == [
        (day(0).isoformat(), day(60).isoformat()),
        (day(60).isoformat(), day(90).isoformat()),
    ]
    assert len(result["vs_baseline"]) == 2
    for offset in (-100, 30):
        assert f"{day(offset).isoformat()}: no usable value; time point skipped" in result["notes"]


def test_baseline_without_value_makes_everything_relative_to_it_none() -> None:
    series = [(day(-100), 40.0), (day(0), None), (day(60), 55.0), (day(90), 60.0)]
    result = growth_rates("diameter", series, BASE)
    assert result["tgr0"] is None
    assert result["tgr_first"] is None
    assert result["tgr3m"] is None
    assert result["vs_baseline"] == []
    assert result["classification"] == {"tgr0": None, "tgr3m": None}
    assert any("baseline 2021-03-01 has no usable value" in n for n in result["notes"])
    # consecutive rates do not need the baseline: they start at the first follow-up
    assert [(r["start_date"], r["end_date"]) for r in result["consecutive"]] == [
        (day(60).isoformat(), day(90).isoformat())
    ]


def test_baseline_zero_gives_undefined_rates_with_reasons() -> None:
    series = [(day(-100), 10.0), (day(0), 0.0), (day(91), 5.0)]
    result = growth_rates("diameter", series, BASE)
    assert result["tgr0"]["tgr_pct_per_month"] == -100.0
    assert result["tgr0"]["notes"] == [NOTE_END_ZERO]
    assert result["tgr3m"]["tgr_pct_per_month"] is None
    assert result["tgr3m"]["notes"] == [REASON_START_ZERO]
    assert result["classification"] == {"tgr0": "low", "tgr3m": None}
    assert any(n.startswith("TGR3m is undefined") for n in result["notes"])
    json.dumps(result, allow_nan=False)


def test_classification_at_the_computed_value_uses_inclusive() -> None:
    series = [(day(-100), 50.0), (day(0), 60.0)]
    value = growth_rates("diameter", series, BASE)["tgr0"]["tgr_pct_per_month"]
    high = TGRSettings(tgr0_threshold_pct_per_month=value, inclusive="high")
    low = TGRSettings(tgr0_threshold_pct_per_month=value, inclusive="low")
    assert growth_rates("diameter", series, BASE, high)["classification"]["tgr0"] == "high"
    assert growth_rates("diameter", series, BASE, low)["classification"]["tgr0"] == "low"


def test_growth_rates_rejects_baseline_not_in_series() -> None:
    with pytest.raises(AssessmentInputError) as info:
        growth_rates("diameter", [(day(0), 50.0), (day(90), 55.0)], day(1))
    assert info.value.tag == "baseline_date"
    assert day(1).isoformat() in str(info.value)


@pytest.mark.parametrize("second", [0, -10])
def test_growth_rates_rejects_dates_not_strictly_increasing(second: int) -> None:
    with pytest.raises(AssessmentInputError, match="strictly increasing") as info:
        growth_rates("diameter", [(day(0), 50.0), (day(second), 55.0)], BASE)
    assert info.value.tag == "date"
    assert day(second).isoformat() in str(info.value)


def test_growth_rates_rejects_bad_values_naming_the_date() -> None:
    with pytest.raises(AssessmentInputError, match=r"2021-05-30.*-55\.0"):
        growth_rates("diameter", [(day(0), 50.0), (day(90), -55.0)], BASE)
    with pytest.raises(AssessmentInputError, match="pair"):
        growth_rates("diameter", [(day(0), 50.0, 1)], BASE)  # type: ignore[list-item, unused-ignore]
    with pytest.raises(AssessmentInputError, match="kind"):
        growth_rates("sod", [(day(0), 50.0)], BASE)


# --------------------------------------------------------------------------- properties


@PROPERTY
@given(value=sizes, months=months_st)
def test_property_equal_values_give_exactly_zero(value: float, months: float) -> None:
    assert tgr_diameter(value, value, months) == 0.0
    assert tgr_volume(value, value, months) == 0.0
    assert specific_growth_rate_per_day(value, value, months * DAYS_PER_MONTH) == 0.0


@PROPERTY
@given(d0=sizes, dt=sizes, months=months_st)
def test_property_sign_follows_the_change(d0: float, dt: float, months: float) -> None:
    value = tgr_diameter(d0, dt, months)
    assert value is not None
    assert (value > 0) == (dt > d0)
    assert (value < 0) == (dt < d0)
    assert (value == 0) == (dt == d0)


@PROPERTY
@given(d0=sizes, a=st.one_of(st.just(0.0), sizes), b=st.one_of(st.just(0.0), sizes), m=months_st)
def test_property_monotone_in_dt(d0: float, a: float, b: float, m: float) -> None:
    low, high = sorted((a, b))
    t_low, t_high = tgr_diameter(d0, low, m), tgr_diameter(d0, high, m)
    assert t_low is not None and t_high is not None
    assert t_low <= t_high
    if high > low * (1 + 1e-9) and t_high > -99.0:  # strict away from the -100 limit
        assert t_low < t_high


@PROPERTY
@given(
    d0=st.floats(min_value=1.0, max_value=500.0),
    dt=st.floats(min_value=1.0, max_value=500.0),
    c=st.floats(min_value=1e-3, max_value=10.0),
    months=st.floats(min_value=0.5, max_value=60.0),
)
def test_property_diameter_tgr_equals_volume_tgr_for_cubes(
    d0: float, dt: float, c: float, months: float
) -> None:
    by_diameter = tgr_diameter(d0, dt, months)
    by_volume = tgr_volume(c * d0**3, c * dt**3, months)
    assert by_diameter is not None and by_volume is not None
    assert by_volume == pytest.approx(by_diameter, rel=1e-9, abs=1e-9)


@PROPERTY
@given(v1=sizes, v2=sizes, days=st.integers(min_value=1, max_value=3650))
def test_property_doubling_time_times_sgr_is_ln2(v1: float, v2: float, days: int) -> None:
    assume(v1 != v2)
    sgr = specific_growth_rate_per_day(v1, v2, days)
    doubling = doubling_time_days(v1, v2, days)
    assert sgr is not None and doubling is not None
    assert doubling * sgr == pytest.approx(LN2, rel=1e-12)
    assert (doubling < 0) == (v2 < v1)
    rate = growth_rate("volume", (day(0), v1), (day(days), v2))
    assert rate.sgr_per_day == sgr
    assert rate.doubling_time_days == doubling
    assert (NOTE_SHRINKING in rate.notes) == (v2 < v1)

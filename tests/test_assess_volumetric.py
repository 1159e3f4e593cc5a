"""Volumetric response with the exact cube equivalents (netvolume.assess.volumetric).

RECIST 1.1 (Eisenhauer et al., EJC 2009): -30 % diameter against baseline is PR, +20 %
against the nadir is PD; for a sphere (V ~ D**3) these are the volume ratios 0.7**3 = 0.343
and 1.2**3 = 1.728 (DOMAIN.md section 3).
"""

from __future__ import annotations

import datetime
import json
import math
from fractions import Fraction
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from netvolume.assess.volumetric import (
    DEFAULT_VOLUMETRIC_SETTINGS,
    PD_VOLUME_RATIO,
    PD_VOLUME_RATIO_EXACT,
    PR_VOLUME_RATIO,
    PR_VOLUME_RATIO_EXACT,
    RESPONSE_ORDER,
    VolumetricSettings,
    VolumetricTimePoint,
    volumetric_course,
    volumetric_response,
)
from netvolume.errors import AssessmentInputError

D = datetime.date
BASE = D(2022, 1, 10)
PROPERTY = settings(max_examples=200, deadline=None, database=None)


def day(offset: int) -> D:
    return BASE + datetime.timedelta(days=offset)


def rank(response: str) -> int:
    return RESPONSE_ORDER.index(response)


# --------------------------------------------------------------------------- constants


def test_ratios_are_the_exact_cubes_of_recist_thresholds() -> None:
    assert Fraction(7, 10) ** 3 == PR_VOLUME_RATIO_EXACT == Fraction(repr(PR_VOLUME_RATIO))
    assert Fraction(6, 5) ** 3 == PD_VOLUME_RATIO_EXACT == Fraction(repr(PD_VOLUME_RATIO))
    assert PR_VOLUME_RATIO == 0.343
    assert PD_VOLUME_RATIO == 1.728
    # 65.7 % decrease and 72.8 % increase in volume
    assert Fraction(657, 10) == (1 - PR_VOLUME_RATIO_EXACT) * 100
    assert Fraction(728, 10) == (PD_VOLUME_RATIO_EXACT - 1) * 100
    assert VolumetricSettings() == DEFAULT_VOLUMETRIC_SETTINGS
    assert DEFAULT_VOLUMETRIC_SETTINGS.to_dict() == {"pr_ratio": 0.343, "pd_ratio": 1.728}


# --------------------------------------------------------------------------- rules


@pytest.mark.parametrize(
    ("volume", "baseline", "nadir", "new", "expected"),
    [
        (None, 10.0, 10.0, False, "NE"),
        (None, 10.0, 10.0, True, "PD"),  # a new lesion is PD even when the volume is missing
        (5.0, 10.0, 10.0, True, "PD"),  # new lesions
        (0.0, 10.0, 5.0, True, "PD"),  # new lesions beat CR
        (17.28, 10.0, 10.0, False, "PD"),  # 1.728 x nadir
        (20.0, 100.0, 10.0, False, "PD"),  # PD before PR: 0.2 x baseline but 2 x nadir
        (0.1, 10.0, 0.0, False, "PD"),  # reappearance after nadir 0
        (0.0, 10.0, 0.0, False, "CR"),
        (0.0, 10.0, 4.0, False, "CR"),
        (3.43, 10.0, 10.0, False, "PR"),
        (34.3, 100.0, 30.0, False, "PR"),  # shrinkage is against baseline, not nadir
        (31.0, 100.0, 30.0, False, "PR"),  # continuing PR (RECIST's 165 -> 63 -> 65)
        (5.0, 10.0, 10.0, False, "SD"),
        (12.0, 10.0, 10.0, False, "SD"),
        (51.0, 100.0, 30.0, False, "SD"),  # 1.7 x nadir
    ],
)
def test_response_rules(
    volume: float | None, baseline: float, nadir: float, new: bool, expected: str
) -> None:
    assert volumetric_response(volume, baseline, nadir, new_lesions=new) == expected


def test_pr_boundary_is_exact_on_both_sides() -> None:
    assert volumetric_response(3.43, 10.0, 10.0) == "PR"
    assert volumetric_response(math.nextafter(3.43, math.inf), 10.0, 10.0) == "SD"
    assert volumetric_response(math.nextafter(3.43, -math.inf), 10.0, 10.0) == "PR"


def test_pd_boundary_is_exact_on_both_sides() -> None:
    assert volumetric_response(1.728, 1.0, 1.0) == "PD"
    assert volumetric_response(math.nextafter(1.728, -math.inf), 1.0, 1.0) == "SD"
    assert volumetric_response(math.nextafter(1.728, math.inf), 1.0, 1.0) == "PD"


def test_boundaries_where_float_arithmetic_is_wrong() -> None:
    # 0.343 * 2.05 = 0.70315 exactly in decimals, but not in binary floating point
    assert not 0.70315 <= 0.343 * 2.05
    assert not 0.70315 / 2.05 <= 0.343
    assert volumetric_response(0.70315, 2.05, 2.05) == "PR"
    assert volumetric_response(math.nextafter(0.70315, math.inf), 2.05, 2.05) == "SD"
    # 1.728 * 0.07 = 0.12096 exactly in decimals
    assert not 0.12096 >= 1.728 * 0.07
    assert not 0.12096 / 0.07 >= 1.728
    assert volumetric_response(0.12096, 1.0, 0.07) == "PD"
    assert volumetric_response(math.nextafter(0.12096, -math.inf), 1.0, 0.07) == "PR"


def test_configurable_ratios() -> None:
    rounded = VolumetricSettings(pr_ratio=0.35, pd_ratio=1.73)
    assert volumetric_response(35.0, 100.0, 100.0) == "SD"
    assert volumetric_response(35.0, 100.0, 100.0, settings=rounded) == "PR"
    assert volumetric_response(172.8, 100.0, 100.0) == "PD"
    assert volumetric_response(172.8, 100.0, 100.0, settings=rounded) == "SD"
    assert volumetric_response(173.0, 100.0, 100.0, settings=rounded) == "PD"


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"pr_ratio": 1.0}, "pr_ratio"),
        ({"pr_ratio": 0.0}, "pr_ratio"),
        ({"pr_ratio": math.nan}, "pr_ratio"),
        ({"pd_ratio": 1.0}, "pd_ratio"),
        ({"pd_ratio": math.inf}, "pd_ratio"),
        ({"pd_ratio": True}, "pd_ratio"),
    ],
)
def test_settings_validation(kwargs: dict[str, Any], field: str) -> None:
    with pytest.raises(AssessmentInputError) as info:
        VolumetricSettings(**kwargs)
    assert info.value.tag == field
    assert field in str(info.value)


@pytest.mark.parametrize(
    ("args", "field", "shown"),
    [
        ((5.0, 0.0, 0.0), "baseline_ml", "is 0"),
        ((5.0, None, 0.0), "baseline_ml", "is None"),
        ((5.0, -1.0, 0.0), "baseline_ml", "-1.0"),
        ((5.0, math.nan, 0.0), "baseline_ml", "nan"),
        ((-2.5, 10.0, 10.0), "volume_ml", "-2.5"),
        ((math.inf, 10.0, 10.0), "volume_ml", "inf"),
        (("5", 10.0, 10.0), "volume_ml", "'5'"),
        ((5.0, 10.0, -1.0), "nadir_ml", "-1.0"),
        ((5.0, 10.0, 12.0), "nadir_ml", "12.0"),  # the nadir includes the baseline
    ],
)
def test_response_rejects_bad_input(args: tuple[Any, ...], field: str, shown: str) -> None:
    with pytest.raises(AssessmentInputError) as info:
        volumetric_response(*args)
    assert info.value.tag == field
    assert field in str(info.value)
    assert shown in str(info.value)
    assert info.value.hint


def test_response_rejects_wrong_settings_type() -> None:
    with pytest.raises(AssessmentInputError, match="VolumetricSettings"):
        volumetric_response(1.0, 2.0, 2.0, settings={"pr_ratio": 0.3})  # type: ignore[arg-type, unused-ignore]


# --------------------------------------------------------------------------- course


def test_course_follows_nadir_and_baseline() -> None:
    values = [
        (day(0), 10.0),  # baseline
        (day(60), 3.43),  # exactly 0.343 x baseline: PR
        (day(120), None),  # NE, ignored for the nadir
        (day(180), 1.0),  # PR; nadir before it is 3.43
        (day(240), 1.728),  # exactly 1.728 x nadir 1.0: PD
        (day(300), 0.0),  # CR
        (day(360), 0.2),  # reappearance after nadir 0: PD
    ]
    course = volumetric_course(values)
    assert [p.response for p in course] == [None, "PR", "NE", "PR", "PD", "CR", "PD"]
    assert [p.nadir_ml for p in course] == [None, 10.0, 3.43, 3.43, 1.0, 1.0, 0.0]
    assert [p.date for p in course] == [d for d, _ in values]
    assert course[0].ratio_to_baseline == 1.0
    assert course[0].ratio_to_nadir is None
    assert course[1].ratio_to_baseline == pytest.approx(0.343)
    assert course[2].ratio_to_baseline is None
    assert course[4].ratio_to_nadir == pytest.approx(1.728)
    assert course[6].ratio_to_nadir is None  # nadir 0
    assert any("not used for the nadir" in n for n in course[2].notes)
    assert any("reappearance" in n for n in course[6].notes)
    assert all(isinstance(p, VolumetricTimePoint) for p in course)


def test_course_nadir_excludes_the_current_time_point() -> None:
    # 5.0 becomes the nadir only after its own time point; 8.64 = 1.728 x 5.0 is then PD
    course = volumetric_course([(day(0), 10.0), (day(30), 5.0), (day(60), 8.64)])
    assert [p.response for p in course] == [None, "SD", "PD"]
    assert course[1].nadir_ml == 10.0
    assert course[2].nadir_ml == 5.0


def test_course_new_lesions() -> None:
    values = [(day(0), 10.0), (day(30), 2.0), (day(60), None), (day(90), 2.0)]
    course = volumetric_course(values, new_lesions=[False, True, True, False])
    assert [p.response for p in course] == [None, "PD", "PD", "PR"]
    assert [p.new_lesions for p in course] == [False, True, True, False]
    assert "new lesions: PD" in course[1].notes
    assert "new lesions: PD" in course[2].notes
    # the nadir still takes the PD time point's volume
    assert course[3].nadir_ml == 2.0


def test_course_with_settings() -> None:
    values = [(day(0), 100.0), (day(30), 35.0)]
    assert volumetric_course(values)[1].response == "SD"
    rounded = VolumetricSettings(pr_ratio=0.35)
    assert volumetric_course(values, settings=rounded)[1].response == "PR"


def test_course_baseline_only() -> None:
    course = volumetric_course([(day(0), 4.0)])
    assert len(course) == 1
    assert course[0].response is None


def test_course_to_dict_is_json_ready() -> None:
    course = volumetric_course([(day(0), 10.0), (datetime.datetime(2022, 2, 9, 7), None)])
    data = [p.to_dict() for p in course]
    assert json.loads(json.dumps(data, allow_nan=False)) == data
    assert data[1] == {
        "date": "2022-02-09",
        "volume_ml": None,
        "ratio_to_baseline": None,
        "ratio_to_nadir": None,
        "nadir_ml": 10.0,
        "response": "NE",
        "new_lesions": False,
        "notes": ["no volume: not evaluable (NE); not used for the nadir"],
    }
    assert data[0]["response"] is None


@pytest.mark.parametrize("baseline", [None, 0.0])
def test_course_rejects_baseline_without_volume(baseline: float | None) -> None:
    with pytest.raises(AssessmentInputError, match="nothing to follow") as info:
        volumetric_course([(day(0), baseline), (day(30), 5.0)])
    assert "2022-01-10" in str(info.value)


def test_course_rejects_bad_series() -> None:
    with pytest.raises(AssessmentInputError, match="empty"):
        volumetric_course([])
    with pytest.raises(AssessmentInputError, match="strictly increasing") as info:
        volumetric_course([(day(0), 10.0), (day(0), 5.0)])
    assert info.value.tag == "date"
    with pytest.raises(AssessmentInputError, match="strictly increasing"):
        volumetric_course([(day(0), 10.0), (day(30), 5.0), (day(10), 5.0)])
    with pytest.raises(AssessmentInputError, match="2 flags for 3") as info:
        volumetric_course([(day(0), 10.0), (day(30), 5.0), (day(60), 5.0)], [False, True])
    assert info.value.tag == "new_lesions"
    with pytest.raises(AssessmentInputError, match="True at baseline"):
        volumetric_course([(day(0), 10.0), (day(30), 5.0)], [True, False])
    with pytest.raises(AssessmentInputError, match=r"2022-02-09.*-5\.0"):
        volumetric_course([(day(0), 10.0), (day(30), -5.0)])
    with pytest.raises(AssessmentInputError, match=r"datetime\.date"):
        volumetric_course([("2022-01-10", 10.0)])  # type: ignore[list-item, unused-ignore]


# --------------------------------------------------------------------------- properties

volumes = st.floats(min_value=0.0, max_value=1e4, allow_nan=False, allow_infinity=False)
positive = st.floats(min_value=1e-3, max_value=1e4, allow_nan=False, allow_infinity=False)


@PROPERTY
@given(
    baseline=positive,
    nadir_fraction=st.floats(min_value=0.0, max_value=1.0),
    a=volumes,
    b=volumes,
    new=st.booleans(),
)
def test_property_response_is_monotone_in_volume(
    baseline: float, nadir_fraction: float, a: float, b: float, new: bool
) -> None:
    nadir = min(baseline, baseline * nadir_fraction)
    small, large = sorted((a, b))
    r_small = volumetric_response(small, baseline, nadir, new_lesions=new)
    r_large = volumetric_response(large, baseline, nadir, new_lesions=new)
    assert rank(r_small) <= rank(r_large)  # a larger volume is never a better response


@PROPERTY
@given(
    st.lists(st.one_of(st.none(), volumes), min_size=1, max_size=8),
    positive,
)
def test_property_course_nadir_is_min_of_earlier_evaluated(
    follow_ups: list[float | None], baseline: float
) -> None:
    values = [(day(0), baseline)] + [(day(30 * (i + 1)), v) for i, v in enumerate(follow_ups)]
    course = volumetric_course(values)
    for i, point in enumerate(course[1:], start=1):
        earlier = [v for _, v in values[:i] if v is not None]
        assert point.nadir_ml == min(earlier)
        assert point.response == volumetric_response(point.volume_ml, baseline, min(earlier))
        assert (point.response == "NE") == (point.volume_ml is None)

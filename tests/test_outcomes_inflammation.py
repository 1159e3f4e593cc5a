"""IBI, GPS and mGPS (netvolume.outcomes.inflammation).

Tables: Black et al., J Clin Endocrinol Metab 2019;104:285 (IBI = number of abnormal of
CRP > 10 mg/L and albumin < 35 g/L); Forrest et al. 2003 / McMillan 2013 (GPS, the same
count); McMillan 2007 / Proctor et al. 2011 (mGPS: 0 if CRP <= 10, 1 if CRP > 10 and
albumin >= 35, 2 if CRP > 10 and albumin < 35).
"""

from __future__ import annotations

import json
import math
from typing import Any

import pytest

from netvolume.errors import StatisticsInputError
from netvolume.outcomes import InflammationScore, InflammationSettings, inflammation_score

CRP_NORMAL, CRP_HIGH = 4.0, 32.5
ALB_NORMAL, ALB_LOW = 41.0, 30.0


# (crp, albumin) -> (ibi, gps, mgps): every cell of the 2x2 table
TABLE = [
    (CRP_NORMAL, ALB_NORMAL, 0, 0, 0),
    (CRP_NORMAL, ALB_LOW, 1, 1, 0),
    (CRP_HIGH, ALB_NORMAL, 1, 1, 1),
    (CRP_HIGH, ALB_LOW, 2, 2, 2),
]


@pytest.mark.parametrize(("crp", "alb", "ibi", "gps", "mgps"), TABLE)
def test_every_cell_of_the_table(crp: float, alb: float, ibi: int, gps: int, mgps: int) -> None:
    score = inflammation_score(crp, alb)
    assert (score.ibi, score.gps, score.mgps) == (ibi, gps, mgps)
    assert score.crp_abnormal is (crp == CRP_HIGH)
    assert score.albumin_abnormal is (alb == ALB_LOW)
    assert score.overrides == ()
    assert score.missing == ()
    assert f"IBI {ibi}, GPS {gps}, mGPS {mgps}" in score.evidence


def test_evidence_line() -> None:
    score = inflammation_score(32.5, 34.7)
    assert score.evidence == (
        "CRP 32.5 mg/L > 10 (abnormal); albumin 34.7 g/L < 35 (abnormal) -> IBI 2, GPS 2, mGPS 2"
    )
    normal = inflammation_score(10.0, 35.0)
    assert normal.evidence == (
        "CRP 10 mg/L <= 10 (normal); albumin 35 g/L >= 35 (normal) -> IBI 0, GPS 0, mGPS 0"
    )


# ------------------------------------------------------------------------- thresholds


@pytest.mark.parametrize(
    ("crp", "inclusive", "abnormal"),
    [
        (10.0, False, False),  # default: abnormal only when > 10
        (10.01, False, True),
        (9.99, False, False),
        (10.0, True, True),  # inclusive: abnormal when >= 10
        (10.01, True, True),
        (9.99, True, False),
    ],
)
def test_crp_threshold_both_sides(crp: float, inclusive: bool, abnormal: bool) -> None:
    settings = InflammationSettings(crp_inclusive=inclusive)
    score = inflammation_score(crp, ALB_NORMAL, settings=settings)
    assert score.crp_abnormal is abnormal
    assert score.ibi == int(abnormal)
    assert score.mgps == int(abnormal)
    rule = (">=" if inclusive else ">") if abnormal else ("<" if inclusive else "<=")
    assert f"CRP {crp:g} mg/L {rule} 10 " in score.evidence


@pytest.mark.parametrize(
    ("alb", "inclusive", "abnormal"),
    [
        (35.0, False, False),  # default: abnormal only when < 35
        (34.99, False, True),
        (35.01, False, False),
        (35.0, True, True),  # inclusive: abnormal when <= 35
        (34.99, True, True),
        (35.01, True, False),
    ],
)
def test_albumin_threshold_both_sides(alb: float, inclusive: bool, abnormal: bool) -> None:
    settings = InflammationSettings(albumin_inclusive=inclusive)
    score = inflammation_score(CRP_HIGH, alb, settings=settings)
    assert score.albumin_abnormal is abnormal
    assert score.ibi == 1 + int(abnormal)
    assert score.gps == 1 + int(abnormal)
    assert score.mgps == (2 if abnormal else 1)
    rule = ("<=" if inclusive else "<") if abnormal else (">" if inclusive else ">=")
    assert f"albumin {alb:g} g/L {rule} 35 " in score.evidence


def test_custom_thresholds() -> None:
    settings = InflammationSettings(crp_high_mg_l=5.0, albumin_low_g_l=30.0)
    score = inflammation_score(6.0, 31.0, settings=settings)
    assert (score.ibi, score.mgps) == (1, 1)
    assert score.to_dict()["settings"]["crp_high_mg_l"] == 5.0
    assert inflammation_score(6.0, 29.0, settings=settings).ibi == 2


def test_albumin_irrelevant_to_mgps_when_crp_normal() -> None:
    assert inflammation_score(CRP_NORMAL, ALB_LOW).mgps == 0
    assert inflammation_score(CRP_NORMAL, ALB_NORMAL).mgps == 0


# -------------------------------------------------------------------------- overrides


def test_override_against_measured_value() -> None:
    score = inflammation_score(8.0, ALB_NORMAL, crp_abnormal_override=True)
    assert score.crp_abnormal is True
    assert (score.ibi, score.gps, score.mgps) == (1, 1, 1)
    assert score.overrides == (
        "crp_abnormal=True (investigator override; measured 8 mg/L would be normal)",
    )
    assert "investigator override" in score.evidence


def test_override_to_normal() -> None:
    # a CRP raised by an intercurrent infection judged not tumour-related
    score = inflammation_score(CRP_HIGH, ALB_LOW, crp_abnormal_override=False)
    assert score.crp_abnormal is False
    assert (score.ibi, score.gps, score.mgps) == (1, 1, 0)
    assert "would be abnormal" in score.overrides[0]


def test_override_that_agrees() -> None:
    score = inflammation_score(CRP_NORMAL, ALB_LOW, albumin_abnormal_override=True)
    assert score.ibi == 1
    assert score.overrides == (
        "albumin_abnormal=True (investigator override; measured 30 g/L would also be abnormal)",
    )


def test_override_without_measured_value() -> None:
    score = inflammation_score(None, ALB_LOW, crp_abnormal_override=True)
    assert score.missing == ("crp_mg_l",)
    assert score.crp_mg_l is None
    assert (score.ibi, score.gps, score.mgps) == (2, 2, 2)
    assert score.overrides == ("crp_abnormal=True (investigator override; no measured value)",)
    both = inflammation_score(
        None, None, crp_abnormal_override=True, albumin_abnormal_override=False
    )
    assert (both.ibi, both.gps, both.mgps) == (1, 1, 1)
    assert both.missing == ("crp_mg_l", "albumin_g_l")
    assert len(both.overrides) == 2


# ----------------------------------------------------------------------------- missing


def test_missing_albumin() -> None:
    high = inflammation_score(CRP_HIGH, None)
    assert (high.ibi, high.gps, high.mgps) == (None, None, None)
    assert high.albumin_abnormal is None
    assert high.missing == ("albumin_g_l",)
    assert "albumin not measured (unknown)" in high.evidence
    assert "IBI unknown" in high.evidence
    # CRP normal: mGPS is 0 whatever the albumin, IBI / GPS are still unknown
    normal = inflammation_score(CRP_NORMAL, None)
    assert (normal.ibi, normal.gps, normal.mgps) == (None, None, 0)


def test_missing_crp() -> None:
    for alb in (ALB_NORMAL, ALB_LOW):
        score = inflammation_score(None, alb)
        assert (score.ibi, score.gps, score.mgps) == (None, None, None)
        assert score.crp_abnormal is None
        assert score.missing == ("crp_mg_l",)


def test_both_missing() -> None:
    score = inflammation_score(None, None)
    assert (score.ibi, score.gps, score.mgps) == (None, None, None)
    assert score.missing == ("crp_mg_l", "albumin_g_l")


def test_zero_is_a_value() -> None:
    score = inflammation_score(0.0, 0.0)
    assert (score.ibi, score.mgps) == (1, 0)
    assert score.missing == ()


# --------------------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    ("kwargs", "field", "text"),
    [
        ({"crp_mg_l": -3.0, "albumin_g_l": 40.0}, "crp_mg_l", "got -3"),
        ({"crp_mg_l": 3.0, "albumin_g_l": -1.0}, "albumin_g_l", "got -1"),
        ({"crp_mg_l": math.nan, "albumin_g_l": 40.0}, "crp_mg_l", "nan"),
        ({"crp_mg_l": 3.0, "albumin_g_l": math.inf}, "albumin_g_l", "inf"),
        ({"crp_mg_l": "12", "albumin_g_l": 40.0}, "crp_mg_l", "'12'"),
        ({"crp_mg_l": True, "albumin_g_l": 40.0}, "crp_mg_l", "True"),
        (
            {"crp_mg_l": 3.0, "albumin_g_l": 40.0, "crp_abnormal_override": 1},
            "crp_abnormal_override",
            "got 1",
        ),
        (
            {"crp_mg_l": 3.0, "albumin_g_l": 40.0, "albumin_abnormal_override": "yes"},
            "albumin_abnormal_override",
            "'yes'",
        ),
    ],
)
def test_bad_values_raise(kwargs: dict[str, Any], field: str, text: str) -> None:
    with pytest.raises(StatisticsInputError) as info:
        inflammation_score(**kwargs)
    assert info.value.tag == field
    assert text in str(info.value)


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"crp_high_mg_l": 0.0}, "crp_high_mg_l"),
        ({"crp_high_mg_l": -10.0}, "crp_high_mg_l"),
        ({"albumin_low_g_l": math.nan}, "albumin_low_g_l"),
        ({"albumin_low_g_l": math.inf}, "albumin_low_g_l"),
        ({"crp_inclusive": "yes"}, "crp_inclusive"),
        ({"albumin_inclusive": 1}, "albumin_inclusive"),
    ],
)
def test_bad_settings_raise(kwargs: dict[str, Any], field: str) -> None:
    with pytest.raises(StatisticsInputError) as info:
        InflammationSettings(**kwargs)
    assert info.value.tag == field


def test_settings_integer_threshold_becomes_float() -> None:
    assert InflammationSettings(crp_high_mg_l=10).crp_high_mg_l == 10.0


def test_to_dict_is_json() -> None:
    score = inflammation_score(8.0, None, crp_abnormal_override=True)
    data = score.to_dict()
    assert json.loads(json.dumps(data)) == data
    assert data["missing"] == ["albumin_g_l"]
    assert data["ibi"] is None
    assert isinstance(score, InflammationScore)
    frozen: Any = score
    with pytest.raises(AttributeError):
        frozen.ibi = 1

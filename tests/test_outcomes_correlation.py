"""Spearman's rho (netvolume.outcomes.correlation).

Oracles: scipy.stats.spearmanr for rho and the p-value (with ties); the Fisher-z
interval tanh(atanh(rho) -/+ z sqrt(1.06 / (n - 3))) (Fieller, Hartley & Pearson,
Biometrika 1957; Bonett & Wright, Psychometrika 2000) written out here; a seeded
bootstrap for the width of the interval.
"""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np
import pytest
from scipy import stats

from netvolume.errors import StatisticsInputError
from netvolume.outcomes import Spearman, spearman


def fisher_interval(rho: float, n: int, level: float) -> tuple[float, float]:
    z = stats.norm.ppf(0.5 + level / 2)
    se = math.sqrt(1.06 / (n - 3))
    return math.tanh(math.atanh(rho) - z * se), math.tanh(math.atanh(rho) + z * se)


@pytest.mark.parametrize("seed", [1, 2, 3, 4, 5])
@pytest.mark.parametrize("n", [5, 12, 40, 300])
def test_against_scipy_with_ties(seed: int, n: int) -> None:
    rng = np.random.default_rng(seed * 1000 + n)
    x = rng.integers(0, 6, size=n).astype(float)  # many ties
    y = np.round(0.5 * x + rng.normal(size=n), 1)
    ours = spearman(x, y, conf_level=0.9)
    ref = stats.spearmanr(x, y)
    assert ours.rho == pytest.approx(ref.statistic, rel=1e-12, abs=1e-15)
    assert ours.p_value == pytest.approx(ref.pvalue, rel=1e-10, abs=1e-300)
    lower, upper = fisher_interval(ours.rho, n, 0.9)
    assert ours.ci_lower == pytest.approx(lower, rel=1e-12)
    assert ours.ci_upper == pytest.approx(upper, rel=1e-12)
    assert ours.n == n and ours.note is None


def test_rho_is_pearson_of_average_ranks() -> None:
    x = [1.0, 2.0, 2.0, 3.0, 7.0, 7.0, 7.0]
    y = [3.0, 1.0, 2.0, 2.0, 9.0, 4.0, 4.0]
    ours = spearman(x, y)
    rx, ry = stats.rankdata(x), stats.rankdata(y)
    assert list(rx) == [1, 2.5, 2.5, 4, 6, 6, 6]
    assert ours.rho == pytest.approx(np.corrcoef(rx, ry)[0, 1], rel=1e-14)
    # p-value from t on n - 2 df
    t = ours.rho * math.sqrt(5 / (1 - ours.rho**2))
    assert ours.p_value == pytest.approx(2 * stats.t.sf(abs(t), 5), rel=1e-12)


def test_small_samples() -> None:
    three = spearman([1, 2, 3], [1, 3, 2])
    assert three.rho == pytest.approx(0.5)
    assert three.ci_lower is None and three.ci_upper is None
    assert three.note is not None and "at least 4 pairs, got 3" in three.note
    assert three.p_value == pytest.approx(stats.spearmanr([1, 2, 3], [1, 3, 2]).pvalue)
    four = spearman([1, 2, 3, 4], [1, 3, 2, 4])
    lower, upper = fisher_interval(four.rho, 4, 0.95)
    assert (four.ci_lower, four.ci_upper) == (pytest.approx(lower), pytest.approx(upper))


def test_perfect_correlation() -> None:
    res = spearman([1, 2, 3, 4, 5], [10, 20, 30, 40, 1000])
    assert res.rho == 1.0 and res.p_value == 0.0
    assert (res.ci_lower, res.ci_upper) == (1.0, 1.0)
    assert res.note is not None
    neg = spearman([1, 2, 3, 4, 5], [5, 4, 3, 2, 1])
    assert neg.rho == -1.0 and (neg.ci_lower, neg.ci_upper) == (-1.0, -1.0)


def test_interval_width_against_bootstrap() -> None:
    rng = np.random.default_rng(777)
    n = 200
    x = rng.normal(size=n)
    y = 0.5 * x + rng.normal(size=n)
    res = spearman(x, y)
    assert res.ci_lower is not None and res.ci_upper is not None
    boot = []
    for _ in range(2000):
        idx = rng.integers(0, n, size=n)
        rx, ry = stats.rankdata(x[idx]), stats.rankdata(y[idx])
        boot.append(np.corrcoef(rx, ry)[0, 1])
    low, high = np.percentile(boot, [2.5, 97.5])
    ratio = (res.ci_upper - res.ci_lower) / (high - low)
    assert 1 / 1.5 < ratio < 1.5
    assert res.ci_lower < res.rho < res.ci_upper


def test_to_dict_is_json() -> None:
    res = spearman(np.arange(10.0), np.array([2, 1, 4, 3, 6, 5, 8, 7, 10, 9]))
    assert isinstance(res, Spearman)
    data = res.to_dict()
    assert json.loads(json.dumps(data)) == data
    assert type(data["rho"]) is float


@pytest.mark.parametrize(
    ("x", "y", "field", "text"),
    [
        ([1, 2, math.nan, 4], [1, 2, 3, 4], "x", "got nan at index 2"),
        ([1, 2, 3, 4], [1, 2, 3, math.inf], "y", "got inf at index 3"),
        ([1, 2, 3, 4], [1, 2, None, 4], "y", "got None at index 2"),
        ([1, 2, 3, 4], [1, 2, 3], "y", "got 4 and 3"),
        ([1, 2], [1, 2], "x", "at least 3 pairs, got 2"),
        ([5, 5, 5, 5], [1, 2, 3, 4], "x", "constant"),
        ([1, 2, 3, 4], [2, 2, 2, 2], "y", "constant"),
        ([1, 2, 3, 4], [1, 2, "3", 4], "y", "got '3' at index 2"),
        ([True, False, True], [1, 2, 3], "x", "got True at index 0"),
    ],
)
def test_bad_input(x: Any, y: Any, field: str, text: str) -> None:
    with pytest.raises(StatisticsInputError) as info:
        spearman(x, y)
    assert info.value.tag == field
    assert text in str(info.value)


def test_bad_level() -> None:
    with pytest.raises(StatisticsInputError) as info:
        spearman([1, 2, 3, 4], [1, 3, 2, 4], conf_level=0.0)
    assert info.value.tag == "conf_level"

"""Wilson intervals, 2x2 diagnostic accuracy and ROC AUC (netvolume.outcomes.diagnostic).

Oracles: scipy.stats.binomtest(...).proportion_ci(method="wilson") for the Wilson
interval; scipy.stats.mannwhitneyu for the AUC; a brute-force DeLong variance written
here from the placement-value definition (DeLong, DeLong & Clarke-Pearson, Biometrics
1988;44:837); a seeded bootstrap for the width of the interval.
"""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np
import pytest
from scipy import stats

from netvolume.errors import StatisticsInputError
from netvolume.outcomes import (
    DiagnosticAccuracy,
    Proportion,
    diagnostic_accuracy,
    roc_auc,
    wilson_interval,
)

# ------------------------------------------------------------------------------ Wilson


def test_wilson_test_vector() -> None:
    lower, upper = wilson_interval(8, 10)
    assert (round(lower, 4), round(upper, 4)) == (0.4902, 0.9433)


@pytest.mark.parametrize("conf_level", [0.5, 0.8, 0.9, 0.95, 0.99, 0.999])
def test_wilson_equals_scipy(conf_level: float) -> None:
    worst = 0.0
    for n in [*range(1, 31), 47, 100, 999, 10_000]:
        for x in sorted({0, 1, 2, n // 3, n // 2, n - 2, n - 1, n} & set(range(n + 1))):
            ours = wilson_interval(x, n, conf_level=conf_level)
            ci = stats.binomtest(x, n).proportion_ci(conf_level, method="wilson")
            worst = max(worst, abs(ours[0] - ci.low), abs(ours[1] - ci.high))
            assert 0.0 <= ours[0] <= x / n <= ours[1] <= 1.0
    assert worst <= 1e-12


def test_wilson_edges() -> None:
    assert wilson_interval(0, 5)[0] == 0.0
    assert wilson_interval(5, 5)[1] == 1.0
    # closed form by hand for 0/5: upper = z^2 / (n + z^2)
    z = stats.norm.ppf(0.975)
    assert wilson_interval(0, 5)[1] == pytest.approx(z**2 / (5 + z**2), rel=1e-12)


@pytest.mark.parametrize(
    ("x", "n", "field", "text"),
    [
        (0, 0, "n", "got 0"),
        (3, 2, "successes", "got 3 successes for n = 2"),
        (-1, 5, "successes", "got -1"),
        (1.5, 5, "successes", "got 1.5"),
        (1, True, "n", "got True"),
    ],
)
def test_wilson_bad_input(x: Any, n: Any, field: str, text: str) -> None:
    with pytest.raises(StatisticsInputError) as info:
        wilson_interval(x, n)
    assert info.value.tag == field
    assert text in str(info.value)


def test_wilson_bad_level() -> None:
    with pytest.raises(StatisticsInputError) as info:
        wilson_interval(1, 2, conf_level=95)
    assert info.value.tag == "conf_level"


# ------------------------------------------------------------------------------- 2x2


def test_from_counts() -> None:
    acc = DiagnosticAccuracy.from_counts(tp=45, fp=6, fn=5, tn=44, conf_level=0.9)
    assert acc.n == 100
    expected = {
        "sensitivity": (45, 50),
        "specificity": (44, 50),
        "ppv": (45, 51),
        "npv": (44, 49),
        "accuracy": (89, 100),
        "prevalence": (50, 100),
    }
    for name, (x, n) in expected.items():
        prop: Proportion = getattr(acc, name)
        assert (prop.successes, prop.n) == (x, n)
        assert prop.estimate == pytest.approx(x / n, rel=1e-15)
        ci = stats.binomtest(x, n).proportion_ci(0.9, method="wilson")
        assert prop.ci_lower == pytest.approx(ci.low, abs=1e-12)
        assert prop.ci_upper == pytest.approx(ci.high, abs=1e-12)
        assert prop.method == "wilson" and prop.note is None and prop.conf_level == 0.9
    data = acc.to_dict()
    assert json.loads(json.dumps(data)) == data


def test_from_sequences_equals_counts() -> None:
    rng = np.random.default_rng(2024)
    truth = rng.random(150) < 0.3
    test = np.where(truth, rng.random(150) < 0.85, rng.random(150) < 0.1)
    acc = diagnostic_accuracy(list(test), list(truth))
    tp = int(np.sum(test & truth))
    fp = int(np.sum(test & ~truth))
    fn = int(np.sum(~test & truth))
    tn = int(np.sum(~test & ~truth))
    assert (acc.tp, acc.fp, acc.fn, acc.tn) == (tp, fp, fn, tn)
    assert acc == DiagnosticAccuracy.from_counts(tp=tp, fp=fp, fn=fn, tn=tn)
    assert diagnostic_accuracy(test, truth) == acc  # numpy bool arrays too


def test_no_condition_positive_case_is_a_note() -> None:
    acc = diagnostic_accuracy([False, True, False], [False, False, False])
    assert acc.sensitivity.estimate is None
    assert acc.sensitivity.n == 0
    assert acc.sensitivity.ci_lower is None and acc.sensitivity.ci_upper is None
    assert acc.sensitivity.note == "no condition-positive cases"
    assert acc.specificity.estimate == pytest.approx(2 / 3)
    assert acc.ppv.estimate == 0.0
    assert acc.npv.estimate == 1.0
    all_negative_calls = DiagnosticAccuracy.from_counts(tp=0, fp=0, fn=3, tn=7)
    assert all_negative_calls.ppv.note == "no test-positive cases"
    assert json.loads(json.dumps(all_negative_calls.to_dict()))["ppv"]["estimate"] is None


@pytest.mark.parametrize(
    ("pred", "truth", "field", "text"),
    [
        ([True, False], [True], "predicted_positive", "same length, got 2 and 1"),
        ([True, 1], [True, False], "predicted_positive", "got 1 at index 1"),
        ([True, False], ["yes", False], "condition_positive", "got 'yes' at index 0"),
        ([True, None], [True, False], "predicted_positive", "got None at index 1"),
        (np.array([1, 0]), [True, False], "predicted_positive", "got 1 at index 0"),
        ([], [], "predicted_positive", "at least 1 case"),
        ("TF", [True, False], "predicted_positive", "got str"),
    ],
)
def test_diagnostic_bad_input(pred: Any, truth: Any, field: str, text: str) -> None:
    with pytest.raises(StatisticsInputError) as info:
        diagnostic_accuracy(pred, truth)
    assert info.value.tag == field
    assert text in str(info.value)


@pytest.mark.parametrize(
    ("counts", "field"),
    [
        ({"tp": -1, "fp": 0, "fn": 0, "tn": 1}, "tp"),
        ({"tp": 1, "fp": 2.0, "fn": 0, "tn": 1}, "fp"),
        ({"tp": 0, "fp": 0, "fn": 0, "tn": 0}, "counts"),
    ],
)
def test_from_counts_bad(counts: dict[str, Any], field: str) -> None:
    with pytest.raises(StatisticsInputError) as info:
        DiagnosticAccuracy.from_counts(**counts)
    assert info.value.tag == field


# -------------------------------------------------------------------------------- ROC


def brute_force_delong(pos: np.ndarray, neg: np.ndarray) -> tuple[float, float]:
    """AUC and DeLong variance from the definition (DeLong et al. 1988, eqs. for V10, V01)."""
    m, n = len(pos), len(neg)

    def psi(x: float, y: float) -> float:
        return 1.0 if x > y else 0.5 if x == y else 0.0

    v10 = [sum(psi(x, y) for y in neg) / n for x in pos]
    v01 = [sum(psi(x, y) for x in pos) / m for y in neg]
    auc = sum(v10) / m
    s10 = sum((v - auc) ** 2 for v in v10) / (m - 1)
    s01 = sum((v - auc) ** 2 for v in v01) / (n - 1)
    return auc, s10 / m + s01 / n


def test_roc_hand_example() -> None:
    scores = [0.9, 0.8, 0.8, 0.3, 0.1]
    labels = [True, True, False, False, True]
    roc = roc_auc(scores, labels)
    # thresholds +inf, 0.9, 0.8, 0.3, 0.1 (positive when score >= threshold):
    # TP 0,1,2,2,3 of 3 positives; FP 0,0,1,2,2 of 2 negatives
    assert roc.thresholds == (math.inf, 0.9, 0.8, 0.3, 0.1)
    np.testing.assert_allclose(roc.tpr, [0, 1 / 3, 2 / 3, 2 / 3, 1], rtol=1e-15)
    np.testing.assert_allclose(roc.fpr, [0, 0, 0.5, 1, 1], rtol=1e-15)
    # pairs (pos > neg): 0.9>0.8, 0.9>0.3, 0.8=0.8 (1/2), 0.8>0.3, 0.1<both -> 3.5 / 6
    assert roc.auc == pytest.approx(7 / 12, rel=1e-15)
    # the trapezoid area under the curve is the AUC
    assert np.trapezoid(roc.tpr, roc.fpr) == pytest.approx(roc.auc, rel=1e-14)
    auc, var = brute_force_delong(np.array([0.9, 0.8, 0.1]), np.array([0.8, 0.3]))
    assert auc == roc.auc
    assert roc.se == pytest.approx(math.sqrt(var), rel=1e-13)
    data = roc.to_dict()
    assert data["thresholds"][0] is None
    assert json.loads(json.dumps(data)) == data


@pytest.mark.parametrize("seed", [1, 2, 3, 4])
def test_auc_equals_mann_whitney(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n = 40 + 20 * seed
    labels = rng.random(n) < 0.4
    scores = np.round(rng.normal(size=n) + 0.8 * labels, 1)  # rounded: ties
    roc = roc_auc(scores, labels)
    pos, neg = scores[labels], scores[~labels]
    u = stats.mannwhitneyu(pos, neg).statistic
    assert roc.auc == pytest.approx(u / (pos.size * neg.size), rel=1e-13)
    assert np.trapezoid(roc.tpr, roc.fpr) == pytest.approx(roc.auc, rel=1e-12)
    assert roc.n_positive == pos.size and roc.n_negative == neg.size


@pytest.mark.parametrize("seed", [10, 11, 12])
def test_delong_variance_brute_force(seed: int) -> None:
    rng = np.random.default_rng(seed)
    labels = np.array([True] * 9 + [False] * 13)
    rng.shuffle(labels)
    scores = rng.integers(0, 6, size=labels.size).astype(float) + labels
    roc = roc_auc(scores, labels, conf_level=0.9)
    auc, var = brute_force_delong(scores[labels], scores[~labels])
    assert roc.auc == pytest.approx(auc, rel=1e-14)
    assert roc.se == pytest.approx(math.sqrt(var), rel=1e-12)
    z = stats.norm.ppf(0.95)
    assert roc.ci_lower == pytest.approx(max(0.0, auc - z * math.sqrt(var)), rel=1e-12)
    assert roc.ci_upper == pytest.approx(min(1.0, auc + z * math.sqrt(var)), rel=1e-12)
    logit = roc_auc(scores, labels, conf_level=0.9, ci_transform="logit")
    centre, half = math.log(auc / (1 - auc)), z * math.sqrt(var) / (auc * (1 - auc))
    assert logit.ci_lower == pytest.approx(1 / (1 + math.exp(-(centre - half))), rel=1e-12)
    assert logit.ci_upper == pytest.approx(1 / (1 + math.exp(-(centre + half))), rel=1e-12)


def test_perfect_classifier() -> None:
    roc = roc_auc([0.1, 0.2, 0.3, 0.7, 0.8, 0.9], [False, False, False, True, True, True])
    assert roc.auc == 1.0
    assert roc.se == 0.0
    assert (roc.ci_lower, roc.ci_upper) == (1.0, 1.0)
    assert roc.note is not None and "degenerate" in roc.note
    assert (roc.fpr[-1], roc.tpr[-1]) == (1.0, 1.0)
    assert (0.0, 1.0) in set(zip(roc.fpr, roc.tpr, strict=True))
    inverted = roc_auc([0.9, 0.8, 0.1, 0.2], [False, False, True, True])
    assert inverted.auc == 0.0


def test_single_positive_has_no_interval() -> None:
    roc = roc_auc([0.1, 0.5, 0.9], [False, True, False])
    assert roc.auc == 0.5
    assert roc.se is None and roc.ci_lower is None and roc.ci_upper is None
    assert roc.note is not None and "got 1 and 2" in roc.note


def test_delong_interval_width_against_bootstrap() -> None:
    rng = np.random.default_rng(20240601)
    n = 200
    labels = rng.random(n) < 0.45
    scores = rng.normal(size=n) + 1.0 * labels
    roc = roc_auc(scores, labels)
    assert roc.ci_lower is not None and roc.ci_upper is not None

    def auc_of(s: np.ndarray, y: np.ndarray) -> float:
        ranks = stats.rankdata(s)
        m = int(y.sum())
        return float((ranks[y].sum() - m * (m + 1) / 2) / (m * (y.size - m)))

    boot = []
    for _ in range(2000):
        idx = rng.integers(0, n, size=n)
        y = labels[idx]
        if 0 < y.sum() < n:
            boot.append(auc_of(scores[idx], y))
    low, high = np.percentile(boot, [2.5, 97.5])
    ratio = (roc.ci_upper - roc.ci_lower) / (high - low)
    assert 1 / 1.5 < ratio < 1.5
    assert roc.ci_lower < np.median(boot) < roc.ci_upper


@pytest.mark.parametrize(
    ("scores", "labels", "field", "text"),
    [
        ([0.1, 0.2], [True, True], "labels", "got 2 positive and 0 negative"),
        ([0.1, 0.2], [False, False], "labels", "got 0 positive and 2 negative"),
        ([0.1, math.nan], [True, False], "scores", "got nan at index 1"),
        ([0.1, 0.2, 0.3], [True, False], "labels", "got 3 and 2"),
        ([0.1, 0.2], [1, 0], "labels", "got 1 at index 0"),
        (["a", "b"], [True, False], "scores", "numbers"),
    ],
)
def test_roc_bad_input(scores: Any, labels: Any, field: str, text: str) -> None:
    with pytest.raises(StatisticsInputError) as info:
        roc_auc(scores, labels)
    assert info.value.tag == field
    assert text in str(info.value)


def test_roc_bad_transform() -> None:
    with pytest.raises(StatisticsInputError) as info:
        roc_auc([0.1, 0.2], [True, False], ci_transform="probit")
    assert info.value.tag == "ci_transform"

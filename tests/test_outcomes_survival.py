"""Kaplan-Meier, log-rank and Cox (netvolume.outcomes.survival) against independent oracles.

Oracles: lifelines (KaplanMeierFitter, multivariate_logrank_test / logrank_test,
CoxPHFitter, utils.concordance_index) and statsmodels (SurvfuncRight, survdiff, PHReg),
on seeded random data sets with tied times and censoring, plus hand-computed examples.
"""

from __future__ import annotations

import json
import math
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

lifelines = pytest.importorskip("lifelines")
statsmodels = pytest.importorskip("statsmodels")
pd = pytest.importorskip("pandas")

from lifelines import CoxPHFitter, KaplanMeierFitter  # noqa: E402
from lifelines.statistics import logrank_test as ll_logrank_test  # noqa: E402
from lifelines.statistics import multivariate_logrank_test  # noqa: E402
from lifelines.utils import concordance_index, median_survival_times  # noqa: E402
from scipy import stats  # noqa: E402
from statsmodels.duration.hazard_regression import PHReg  # noqa: E402
from statsmodels.duration.survfunc import SurvfuncRight, survdiff  # noqa: E402

from netvolume.errors import StatisticsInputError  # noqa: E402
from netvolume.outcomes import cox_ph, kaplan_meier, logrank_test  # noqa: E402

# rtol of the comparisons with the oracles
RTOL = 1e-8


def quiet(func: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Call an oracle with its warnings silenced (pytest turns warnings into errors)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return func(*args, **kwargs)


def make_data(seed: int, n: int, *, resolution: float = 7.0) -> dict[str, np.ndarray]:
    """Seeded survival data: two covariates, exponential times, uniform censoring, times
    rounded up to ``resolution`` days so that there are many ties."""
    rng = np.random.default_rng(seed)
    x1 = rng.normal(size=n)
    x2 = (rng.random(n) < 0.4).astype(float)
    rate = 0.01 * np.exp(0.5 * x1 - 0.7 * x2)
    t_event = rng.exponential(1.0 / rate)
    t_censor = rng.uniform(20.0, 250.0, size=n)
    time = np.ceil(np.minimum(t_event, t_censor) / resolution) * resolution
    event = (t_event <= t_censor).astype(int)
    group3 = rng.integers(0, 3, size=n)
    return {"time": time, "event": event, "x1": x1, "x2": x2, "group3": group3}


DATASETS = [(11, 30, 7.0), (12, 60, 7.0), (13, 120, 14.0), (14, 250, 30.0), (15, 80, 1.0)]


@pytest.fixture(params=DATASETS, ids=[f"seed{s}-n{n}" for s, n, _ in DATASETS])
def data(request: pytest.FixtureRequest) -> dict[str, np.ndarray]:
    seed, n, resolution = request.param
    d = make_data(seed, n, resolution=resolution)
    # the data sets must exercise ties and censoring
    assert np.unique(d["time"]).size < n
    assert 0 < d["event"].sum() < n
    return d


# ----------------------------------------------------------------------- Kaplan-Meier


def test_km_hand_computed() -> None:
    time = [1, 2, 2, 3, 4, 4, 5, 6]
    event = [1, 1, 0, 1, 1, 1, 0, 1]
    km = kaplan_meier(time, event)
    assert km.time == (1.0, 2.0, 3.0, 4.0, 5.0, 6.0)
    assert km.n_at_risk == (8, 7, 5, 4, 2, 1)
    assert km.n_events == (1, 1, 1, 2, 0, 1)
    assert km.n_censored == (0, 1, 0, 0, 1, 0)
    # S: 7/8; 7/8 * 6/7 = 3/4; 3/4 * 4/5 = 3/5; 3/5 * 2/4 = 3/10; 3/10; 3/10 * 0/1 = 0
    expected_s = [7 / 8, 3 / 4, 3 / 5, 3 / 10, 3 / 10, 0.0]
    np.testing.assert_allclose(km.survival, expected_s, rtol=1e-14, atol=0)
    # Greenwood sums d/(n(n-d)): 1/56; + 1/42; + 1/20; + 2/(4*2) = 1/4; + 0; then n = d
    sums = np.cumsum([1 / 56, 1 / 42, 1 / 20, 1 / 4, 0.0])
    expected_se = np.array(expected_s[:5]) * np.sqrt(sums)
    np.testing.assert_allclose(km.std_err[:5], expected_se, rtol=1e-13)
    assert km.std_err[3] == pytest.approx(0.3 * math.sqrt(0.3416666666666667), rel=1e-13)
    # the last at risk all die: S = 0, SE 0, the interval collapses to 0
    assert (km.survival[5], km.std_err[5], km.ci_lower[5], km.ci_upper[5]) == (0, 0, 0, 0)
    # log-log interval at t = 1 by hand: exp(-exp(log(-log S) -/+ z sqrt(V) / |log S|))
    z = stats.norm.ppf(0.975)
    s, v = 7 / 8, 1 / 56
    theta, half = math.log(-math.log(s)), z * math.sqrt(v) / -math.log(s)
    assert km.ci_lower[0] == pytest.approx(math.exp(-math.exp(theta + half)), rel=1e-13)
    assert km.ci_upper[0] == pytest.approx(math.exp(-math.exp(theta - half)), rel=1e-13)
    # the median is the first time with S <= 0.5
    assert km.median == 4.0
    assert km.n == 8


def test_km_survival_at_step_function() -> None:
    km = kaplan_meier([1, 2, 2, 3, 4, 4, 5, 6], [1, 1, 0, 1, 1, 1, 0, 0])
    assert km.survival_at(0.0) == 1.0
    assert km.survival_at(0.999) == 1.0
    assert km.survival_at(1.0) == 7 / 8  # right-continuous
    assert km.survival_at(1.5) == 7 / 8
    assert km.survival_at(4.0) == pytest.approx(3 / 10)
    assert km.survival_at(100.0) == pytest.approx(3 / 10)
    assert km.survival_at(math.inf) == pytest.approx(3 / 10)
    for bad in (-1.0, math.nan):
        with pytest.raises(StatisticsInputError) as info:
            km.survival_at(bad)
        assert info.value.tag == "t"


def test_km_no_event_and_median_not_reached() -> None:
    km = kaplan_meier([3.0, 5.0, 5.0], [0, 0, False])
    assert km.survival == (1.0, 1.0)
    assert km.std_err == (0.0, 0.0)
    assert km.ci_lower == (1.0, 1.0) and km.ci_upper == (1.0, 1.0)
    assert km.median is None and km.median_ci_lower is None and km.median_ci_upper is None


def test_km_median_exact_half() -> None:
    # S = 1/2 exactly at t = 2 (lifelines: first time with S <= 0.5)
    km = kaplan_meier([1, 2, 3, 4], [1, 1, 1, 1])
    assert km.survival[1] == 0.5
    assert km.median == 2.0


@pytest.mark.parametrize("conf_level", [0.95, 0.9])
def test_km_against_lifelines(data: dict[str, np.ndarray], conf_level: float) -> None:
    t, e = data["time"], data["event"]
    km = kaplan_meier(t, e, conf_level=conf_level)
    fitter = quiet(KaplanMeierFitter(alpha=1 - conf_level).fit, t, e)
    sf = fitter.survival_function_.iloc[:, 0]
    ci = fitter.confidence_interval_
    times = list(km.time)
    np.testing.assert_allclose(km.survival, sf.loc[times].to_numpy(), rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(km.ci_lower, ci.iloc[:, 0].loc[times], rtol=1e-10, atol=1e-14)
    np.testing.assert_allclose(km.ci_upper, ci.iloc[:, 1].loc[times], rtol=1e-10, atol=1e-14)
    table = fitter.event_table.loc[times]
    np.testing.assert_array_equal(km.n_at_risk, table["at_risk"])
    np.testing.assert_array_equal(km.n_events, table["observed"])
    np.testing.assert_array_equal(km.n_censored, table["censored"])
    median = fitter.median_survival_time_
    assert km.median == (None if math.isinf(median) else median)
    med_ci = quiet(median_survival_times, ci).to_numpy().ravel()
    ours = [km.median_ci_lower, km.median_ci_upper]
    assert ours == [None if math.isinf(v) else v for v in med_ci]


def test_km_against_statsmodels(data: dict[str, np.ndarray]) -> None:
    t, e = data["time"], data["event"]
    km = kaplan_meier(t, e)
    sf = quiet(SurvfuncRight, t, e.astype(float))
    mask = np.isfinite(sf.surv_prob_se) & (sf.surv_prob > 0)
    ours_s = np.array([km.survival_at(v) for v in sf.surv_times])
    np.testing.assert_allclose(ours_s, sf.surv_prob, rtol=1e-12, atol=1e-14)
    index = np.searchsorted(km.time, sf.surv_times)
    ours_se = np.asarray(km.std_err)[index]
    np.testing.assert_allclose(ours_se[mask], sf.surv_prob_se[mask], rtol=1e-10, atol=1e-14)


@pytest.mark.parametrize("conf_type", ["linear", "log"])
def test_km_linear_and_log_intervals(data: dict[str, np.ndarray], conf_type: Any) -> None:
    """No oracle reports these pointwise intervals: check the formulas against
    statsmodels' S and Greenwood SE."""
    t, e = data["time"], data["event"]
    km = kaplan_meier(t, e, conf_type=conf_type, conf_level=0.9)
    sf = quiet(SurvfuncRight, t, e.astype(float))
    z = stats.norm.ppf(0.95)
    s, se = sf.surv_prob, sf.surv_prob_se
    keep = (s > 0) & (s < 1)
    s, se = s[keep], se[keep]
    if conf_type == "linear":
        lower, upper = np.clip(s - z * se, 0, 1), np.clip(s + z * se, 0, 1)
    else:
        lower = np.clip(np.exp(np.log(s) - z * se / s), 0, 1)
        upper = np.clip(np.exp(np.log(s) + z * se / s), 0, 1)
    index = np.searchsorted(km.time, sf.surv_times[keep])
    np.testing.assert_allclose(np.asarray(km.ci_lower)[index], lower, rtol=1e-10, atol=1e-14)
    np.testing.assert_allclose(np.asarray(km.ci_upper)[index], upper, rtol=1e-10, atol=1e-14)
    assert all(
        0 <= lo <= s_ <= hi <= 1
        for lo, s_, hi in zip(km.ci_lower, km.survival, km.ci_upper, strict=True)
    )


def test_km_to_dict_is_json() -> None:
    km = kaplan_meier(np.array([5.0, 3.0, 3.0, 8.0]), np.array([True, True, False, False]))
    data = km.to_dict()
    assert json.loads(json.dumps(data)) == data
    assert all(type(v) is float for v in data["survival"])
    assert all(type(v) is int for v in data["n_at_risk"])


@pytest.mark.parametrize(
    ("time", "event", "field", "text"),
    [
        (
            [1.0, 2.0, -3.0, 4.0, 5.0],
            [1, 1, 1, 1, 1],
            "time",
            "time must be >= 0, got -3.0 at index 2",
        ),
        ([1.0, math.nan], [1, 1], "time", "got nan at index 1"),
        ([1.0, math.inf], [1, 1], "time", "got inf at index 1"),
        ([1.0, None], [1, 1], "time", "got None at index 1"),
        ([1.0, "2"], [1, 1], "time", "got '2' at index 1"),
        ([], [], "time", "at least 1 observation"),
        ([1.0, 2.0], [1, 2], "event", "event must be 0/1 or bool, got 2.0 at index 1"),
        ([1.0, 2.0], [1, 0.5], "event", "got 0.5 at index 1"),
        ([1.0, 2.0], [1], "event", "got 1 for 2 times"),
        ([1.0, 2.0], ["yes", "no"], "event", "got 'yes' at index 0"),
        ([[1.0, 2.0]], [[1, 1]], "time", "one-dimensional"),
    ],
)
def test_km_bad_input(time: Any, event: Any, field: str, text: str) -> None:
    with pytest.raises(StatisticsInputError) as info:
        kaplan_meier(time, event)
    assert info.value.tag == field
    assert text in str(info.value)


def test_km_bad_options() -> None:
    with pytest.raises(StatisticsInputError) as info:
        kaplan_meier([1.0], [1], conf_level=1.5)
    assert info.value.tag == "conf_level"
    with pytest.raises(StatisticsInputError) as info:
        kaplan_meier([1.0], [1], conf_type="plain")
    assert info.value.tag == "conf_type"


# -------------------------------------------------------------------------- log-rank


def test_logrank_hand_computed() -> None:
    # group A: 1, 3 (events); group B: 2 (event), 4 (censored)
    # t=1: n=4 (A 2), d=1 -> E_A = 2/4, V = 1*3/3 * 2/4 * 2/4 = 1/4
    # t=2: n=3 (A 1), d=1 -> E_A = 1/3, V = 1*2/2 * 1/3 * 2/3 = 2/9
    # t=3: n=2 (A 1), d=1 -> E_A = 1/2, V = 1*1/1 * 1/2 * 1/2 = 1/4
    # O_A = 2, E_A = 4/3, V = 13/18 -> chi2 = (2/3)^2 / (13/18) = 8/13
    lr = logrank_test([1, 3, 2, 4], [1, 1, 1, 0], ["A", "A", "B", "B"])
    assert lr.groups == ("A", "B")
    assert lr.observed == {"A": 2.0, "B": 1.0}
    assert lr.expected["A"] == pytest.approx(4 / 3, rel=1e-14)
    assert lr.expected["B"] == pytest.approx(5 / 3, rel=1e-14)
    assert lr.statistic == pytest.approx(8 / 13, rel=1e-14)
    assert lr.df == 1
    assert lr.p_value == pytest.approx(stats.chi2.sf(8 / 13, 1), rel=1e-14)
    assert lr.n == {"A": 2, "B": 2}
    assert lr.n_events == 3
    data = lr.to_dict()
    assert json.loads(json.dumps(data)) == data


def test_logrank_two_groups_against_oracles(data: dict[str, np.ndarray]) -> None:
    t, e, g = data["time"], data["event"], data["x2"].astype(int)
    ours = logrank_test(t, e, g)
    a, b = g == 0, g == 1
    oracle = quiet(ll_logrank_test, t[a], t[b], e[a], e[b])
    multi = quiet(multivariate_logrank_test, t, g, e)
    chisq, pvalue = quiet(survdiff, t, e.astype(float), g)
    for stat, p in (
        (oracle.test_statistic, oracle.p_value),
        (multi.test_statistic, multi.p_value),
        (chisq, pvalue),
    ):
        assert ours.statistic == pytest.approx(stat, rel=1e-10)
        assert ours.p_value == pytest.approx(p, rel=1e-8)
    assert sum(ours.observed.values()) == pytest.approx(sum(ours.expected.values()))
    assert ours.observed == {0: float(e[a].sum()), 1: float(e[b].sum())}


def test_logrank_three_groups_against_oracles(data: dict[str, np.ndarray]) -> None:
    t, e = data["time"], data["event"]
    labels = np.array(["low", "mid", "high"])[data["group3"]]
    ours = logrank_test(t, e, labels)
    multi = quiet(multivariate_logrank_test, t, labels, e)
    chisq, pvalue = quiet(survdiff, t, e.astype(float), data["group3"])
    assert ours.df == 2
    assert ours.groups == ("high", "low", "mid")
    assert ours.statistic == pytest.approx(multi.test_statistic, rel=1e-10)
    assert ours.statistic == pytest.approx(chisq, rel=1e-10)
    assert ours.p_value == pytest.approx(multi.p_value, rel=1e-8)
    assert ours.p_value == pytest.approx(pvalue, rel=1e-8)
    # the statistic does not depend on which group is left out
    other = logrank_test(t, e, data["group3"])
    assert other.statistic == pytest.approx(ours.statistic, rel=1e-10)


def test_logrank_expected_by_definition() -> None:
    d = make_data(21, 90)
    t, e, g = d["time"], d["event"], d["group3"]
    ours = logrank_test(t, e, list(g))
    for k in range(3):
        expected = 0.0
        for u in np.unique(t[e == 1]):
            at_risk = t >= u
            expected += np.sum(at_risk & (g == k)) * np.sum((t == u) & (e == 1)) / at_risk.sum()
        assert ours.expected[k] == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize(
    ("group", "event", "text"),
    [
        ([1, 1, 1, 1], [1, 1, 0, 1], "at least 2 distinct labels, got 1"),
        ([1, 2, 1, 2], [0, 0, 0, 0], "at least 1 event, got 0"),
        ([1, 2, None, 2], [1, 1, 0, 1], "got None at index 2"),
        ([1, 2, 1], [1, 1, 0, 1], "got 3 for 4 times"),
    ],
)
def test_logrank_bad_input(group: Any, event: Any, text: str) -> None:
    with pytest.raises(StatisticsInputError) as info:
        logrank_test([1.0, 2.0, 3.0, 4.0], event, group)
    assert text in str(info.value)


# ------------------------------------------------------------------------------- Cox


def lifelines_cox(t: np.ndarray, e: np.ndarray, cov: dict[str, np.ndarray]) -> Any:
    frame = pd.DataFrame({"T": t, "E": e, **cov})
    fitter = CoxPHFitter(penalizer=0.0)
    # lifelines' default stopping rule (precision 1e-7, damped steps) leaves ~1e-6 relative
    # error in beta: take full Newton steps until the step vanishes (or 60 steps) so that
    # the oracle is accurate to ~1e-15
    options = {"precision": 1e-30, "r_precision": 0.0, "max_steps": 60, "step_size": 1.0}
    return quiet(fitter.fit, frame, "T", "E", fit_options=options)


COVARIATE_SETS = [("x1",), ("x2",), ("x1", "x2")]


@pytest.mark.parametrize("names", COVARIATE_SETS, ids=["+".join(n) for n in COVARIATE_SETS])
def test_cox_efron_against_lifelines(data: dict[str, np.ndarray], names: tuple[str, ...]) -> None:
    t, e = data["time"], data["event"]
    cov = {name: data[name] for name in names}
    ours = cox_ph(t, e, cov)
    oracle = lifelines_cox(t, e, cov)
    summary = oracle.summary
    np.testing.assert_allclose(ours.coef, oracle.params_.loc[list(names)], rtol=RTOL)
    np.testing.assert_allclose(ours.se, oracle.standard_errors_.loc[list(names)], rtol=RTOL)
    np.testing.assert_allclose(ours.hazard_ratio, summary["exp(coef)"], rtol=RTOL)
    np.testing.assert_allclose(ours.ci_lower, summary["exp(coef) lower 95%"], rtol=RTOL)
    np.testing.assert_allclose(ours.ci_upper, summary["exp(coef) upper 95%"], rtol=RTOL)
    np.testing.assert_allclose(ours.z, summary["z"], rtol=RTOL)
    np.testing.assert_allclose(ours.p_value, summary["p"], rtol=1e-7)
    assert ours.log_likelihood == pytest.approx(oracle.log_likelihood_, rel=1e-10)
    lr = quiet(oracle.log_likelihood_ratio_test)
    assert ours.lr_statistic == pytest.approx(lr.test_statistic, rel=1e-8)
    assert ours.lr_p_value == pytest.approx(lr.p_value, rel=1e-7)
    assert ours.concordance == pytest.approx(oracle.concordance_index_, rel=1e-12)
    assert ours.covariates == names
    assert ours.n == t.size and ours.n_events == int(e.sum())
    assert ours.converged and 1 <= ours.iterations <= 10


@pytest.mark.parametrize("ties", ["efron", "breslow"])
@pytest.mark.parametrize("names", COVARIATE_SETS, ids=["+".join(n) for n in COVARIATE_SETS])
def test_cox_against_statsmodels(
    data: dict[str, np.ndarray], names: tuple[str, ...], ties: Any
) -> None:
    t, e = data["time"], data["event"]
    cov = {name: data[name] for name in names}
    ours = cox_ph(t, e, cov, ties=ties, conf_level=0.9)
    x = np.column_stack([data[name] for name in names])
    model = PHReg(t, x, status=e.astype(float), ties=ties)
    fit = quiet(model.fit, gtol=1e-12)
    np.testing.assert_allclose(ours.coef, fit.params, rtol=RTOL)
    np.testing.assert_allclose(ours.se, fit.bse, rtol=RTOL)
    np.testing.assert_allclose(ours.p_value, fit.pvalues, rtol=1e-7)
    ci = np.exp(quiet(fit.conf_int, alpha=0.1))
    np.testing.assert_allclose(ours.ci_lower, ci[:, 0], rtol=RTOL)
    np.testing.assert_allclose(ours.ci_upper, ci[:, 1], rtol=RTOL)
    assert ours.log_likelihood == pytest.approx(fit.llf, rel=1e-10)
    assert ours.log_likelihood_null == pytest.approx(model.loglike(np.zeros(len(names))), rel=1e-12)


def test_cox_concordance_against_lifelines_utils(data: dict[str, np.ndarray]) -> None:
    t, e = data["time"], data["event"]
    ours = cox_ph(t, e, {"x1": data["x1"], "x2": data["x2"]})
    lp = ours.coef[0] * data["x1"] + ours.coef[1] * data["x2"]
    assert ours.concordance == pytest.approx(concordance_index(t, -lp, e), rel=1e-12)
    # a binary covariate: many tied predictors, counted 1/2
    binary = cox_ph(t, e, {"x2": data["x2"]})
    lp2 = binary.coef[0] * data["x2"]
    assert binary.concordance == pytest.approx(concordance_index(t, -lp2, e), rel=1e-12)


def test_cox_ties_and_scale() -> None:
    """Breslow and Efron agree without ties; rescaling a covariate rescales beta."""
    rng = np.random.default_rng(5)
    n = 60
    x = rng.normal(size=n)
    t = rng.exponential(np.exp(-0.8 * x))  # continuous: no ties
    e = (rng.random(n) < 0.8).astype(int)
    efron = cox_ph(t, e, {"x": x})
    breslow = cox_ph(t, e, {"x": x}, ties="breslow")
    assert efron.coef[0] == pytest.approx(breslow.coef[0], rel=1e-10)
    assert efron.coef[0] > 0
    scaled = cox_ph(t, e, {"x": 1000.0 * x + 5.0})
    assert scaled.coef[0] == pytest.approx(efron.coef[0] / 1000.0, rel=1e-9)
    assert scaled.se[0] == pytest.approx(efron.se[0] / 1000.0, rel=1e-9)
    assert scaled.hazard_ratio[0] == pytest.approx(math.exp(efron.coef[0] / 1000.0), rel=1e-9)
    data = efron.to_dict()
    assert json.loads(json.dumps(data)) == data
    assert type(data["coef"][0]) is float


def test_cox_perfect_separation_raises() -> None:
    rng = np.random.default_rng(7)
    n = 40
    arm = np.repeat([0.0, 1.0], n // 2)
    # every event in arm 1 happens before any time in arm 0
    t = np.where(arm == 1, rng.uniform(1, 5, n), rng.uniform(6, 10, n))
    e = np.ones(n, dtype=int)
    noise = rng.normal(size=n)
    with pytest.raises(StatisticsInputError) as info:
        cox_ph(t, e, {"noise": noise, "arm": arm})
    message = str(info.value)
    assert "'arm'" in message and "'noise'" not in message
    assert "not estimable" in message
    # all events in one group, censored in the other
    t2 = rng.uniform(1, 10, n)
    with pytest.raises(StatisticsInputError, match="hazard ratio is not estimable"):
        cox_ph(t2, arm, {"arm": arm})


def test_cox_max_iter_raises() -> None:
    d = make_data(11, 30)
    with pytest.raises(StatisticsInputError, match="max_iter=1"):
        cox_ph(d["time"], d["event"], {"x1": d["x1"]}, max_iter=1)


@pytest.mark.parametrize(
    ("kwargs", "field", "text"),
    [
        ({"covariates": {"age": [60, 60, 60, 60, 60]}}, "covariates['age']", "'age' is constant"),
        ({"covariates": {"a": [1, 2, math.nan, 4, 5]}}, "covariates['a']", "got nan at index 2"),
        ({"covariates": {"a": [1, 2, 3]}}, "covariates['a']", "got 3 for 5"),
        ({"covariates": {}}, "covariates", "non-empty"),
        ({"event": [1, 0, 0, 0, 0]}, "event", "at least 2 events, got 1"),
        ({"event": [1, 1, 1, 3, 0]}, "event", "got 3.0 at index 3"),
        ({"time": [1, 2, -3, 4, 5]}, "time", "time must be >= 0, got -3.0 at index 2"),
        ({"ties": "exact"}, "ties", "'exact'"),
        ({"max_iter": 0}, "max_iter", "got 0"),
        ({"conf_level": 0}, "conf_level", "got 0"),
        (
            {"covariates": {"a": [1, 2, 3, 4, 6], "b": [2, 4, 6, 8, 12]}},
            "covariates",
            "collinear",
        ),
    ],
)
def test_cox_bad_input(kwargs: dict[str, Any], field: str, text: str) -> None:
    args: dict[str, Any] = {
        "time": [5.0, 3.0, 8.0, 1.0, 4.0],
        "event": [1, 1, 0, 1, 1],
        "covariates": {"a": [0.5, 1.0, 0.2, 2.0, 1.5]},
    }
    args.update(kwargs)
    with pytest.raises(StatisticsInputError) as info:
        cox_ph(args.pop("time"), args.pop("event"), args.pop("covariates"), **args)
    assert info.value.tag == field
    assert text in str(info.value)

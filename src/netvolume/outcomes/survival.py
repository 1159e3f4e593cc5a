"""Time-to-event statistics: Kaplan-Meier, the log-rank test and the Cox model.

* :func:`kaplan_meier` - the product-limit estimator with Greenwood's standard error,
  pointwise confidence intervals (log-log / exponential Greenwood, linear or log) and
  the median survival time with its confidence interval.
* :func:`logrank_test` - the K-sample log-rank (Mantel-Haenszel / Peto) chi-square test.
* :func:`cox_ph` - the Cox proportional-hazards model fitted by Newton-Raphson on the
  partial log-likelihood (Efron or Breslow handling of tied event times), with Wald and
  likelihood-ratio tests and Harrell's concordance index.

Times may be in any unit (the pipeline uses days); only their order matters to these
statistics. ``event`` is 1 (or True) for an observed event and 0 (or False) for a
censored observation. An observation censored at the same time as an event counts as
still at risk at that time (the usual convention: Kaplan & Meier 1958).

References
----------
* Kaplan EL, Meier P. Nonparametric estimation from incomplete observations. J Am Stat
  Assoc. 1958;53(282):457-481.
* Greenwood M. The natural duration of cancer. Reports on Public Health and Medical
  Subjects 33. London: HMSO; 1926.
* Kalbfleisch JD, Prentice RL. The Statistical Analysis of Failure Time Data. 2nd ed.
  Wiley; 2002 (section 1.4: the log-log "exponential Greenwood" interval).
* Mantel N. Evaluation of survival data and two new rank order statistics arising in its
  consideration. Cancer Chemother Rep. 1966;50(3):163-170.
* Peto R, Peto J. Asymptotically efficient rank invariant test procedures. J R Stat Soc
  A. 1972;135(2):185-207.
* Cox DR. Regression models and life-tables. J R Stat Soc B. 1972;34(2):187-220.
* Breslow N. Covariance analysis of censored survival data. Biometrics.
  1974;30(1):89-99.
* Efron B. The efficiency of Cox's likelihood function for censored data. J Am Stat
  Assoc. 1977;72(359):557-565.
* Harrell FE, Lee KL, Mark DB. Multivariable prognostic models. Stat Med.
  1996;15(4):361-387 (concordance index).
* Therneau TM, Grambsch PM. Modeling Survival Data: Extending the Cox Model. Springer;
  2000 (section 3.2 and the R ``survival`` package's ``coxph.fit``: Newton-Raphson with
  step halving, detection of infinite coefficients).
* lifelines documentation, https://lifelines.readthedocs.io (``KaplanMeierFitter``,
  ``statistics.multivariate_logrank_test``, ``CoxPHFitter``, ``utils.concordance_index``).
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
from scipy import stats

from netvolume.errors import StatisticsInputError
from netvolume.outcomes._checks import check_conf_level, z_quantile

__all__ = [
    "CoxResult",
    "KaplanMeier",
    "LogRank",
    "cox_ph",
    "kaplan_meier",
    "logrank_test",
]

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]
ConfType = Literal["log-log", "linear", "log"]
Ties = Literal["efron", "breslow"]

_CONF_TYPES: tuple[str, ...] = ("log-log", "linear", "log")
_TIES: tuple[str, ...] = ("efron", "breslow")
#: Relative tolerance of "S(t) <= 0.5" for the median, so that a product that is 0.5 in
#: exact arithmetic counts as reaching it (R's survfit uses a tolerance the same way).
_MEDIAN_TOL = 1e-12


# --------------------------------------------------------------------------- inputs


def _numeric(values: Any, name: str, *, allow_bool: bool = False) -> FloatArray:
    """A 1-D float array; an error naming ``name`` and the first entry that is not a
    number (text, None, a nested sequence; a bool unless ``allow_bool``)."""
    try:
        raw = np.asarray(values)
    except ValueError:  # ragged nesting
        raw = np.asarray(values, dtype=object)
    kinds = "biuf" if allow_bool else "iuf"
    if raw.ndim == 1 and raw.dtype.kind in kinds:
        return raw.astype(float)
    if raw.ndim != 1 and raw.dtype.kind != "O":
        raise StatisticsInputError(
            f"{name} must be a one-dimensional sequence, got an array of shape {raw.shape}",
            tag=name,
        )
    items = values.tolist() if isinstance(values, np.ndarray) else list(values)
    out = np.empty(len(items), dtype=float)
    for i, v in enumerate(items):
        is_bool = isinstance(v, bool | np.bool_)
        if (is_bool and not allow_bool) or not (is_bool or isinstance(v, int | float | np.number)):
            raise StatisticsInputError(
                f"{name} must be numbers, got {v!r} at index {i}",
                tag=name,
                hint="convert the column to numbers; remove rows with missing values",
            )
        out[i] = float(v)
    return out


def _check_times(time: Any, name: str = "time") -> FloatArray:
    t = _numeric(time, name)
    bad = np.flatnonzero(~np.isfinite(t))
    if bad.size:
        i = int(bad[0])
        raise StatisticsInputError(
            f"{name} must be finite, got {float(t[i])!r} at index {i}",
            tag=name,
            hint="remove observations without a follow-up time",
        )
    neg = np.flatnonzero(t < 0)
    if neg.size:
        i = int(neg[0])
        raise StatisticsInputError(
            f"{name} must be >= 0, got {float(t[i])!r} at index {i}",
            tag=name,
            hint="time is measured from the start of follow-up; check the dates",
        )
    return t


def _check_events(event: Any, n: int) -> BoolArray:
    e = _numeric(event, "event", allow_bool=True)
    if e.size != n:
        raise StatisticsInputError(
            f"event must have one entry per time, got {e.size} for {n} times",
            tag="event",
        )
    bad = np.flatnonzero((e != 0) & (e != 1))
    if bad.size:
        i = int(bad[0])
        raise StatisticsInputError(
            f"event must be 0/1 or bool, got {float(e[i])!r} at index {i}",
            tag="event",
            hint="1 (True) for an observed event, 0 (False) for a censored observation",
        )
    return e == 1


def _check_time_event(time: Any, event: Any) -> tuple[FloatArray, BoolArray]:
    t = _check_times(time)
    if t.size == 0:
        raise StatisticsInputError("time must have at least 1 observation, got 0", tag="time")
    return t, _check_events(event, t.size)


def _plain(label: Hashable) -> Hashable:
    """A group label as a plain Python object (numpy scalars unwrapped)."""
    if isinstance(label, np.generic):
        return label.item()
    return label


def _group_codes(group: Any, n: int) -> tuple[tuple[Hashable, ...], npt.NDArray[np.intp]]:
    """Group labels (sorted when comparable, else in order of appearance) and codes."""
    items = [_plain(g) for g in (group.tolist() if isinstance(group, np.ndarray) else group)]
    if len(items) != n:
        raise StatisticsInputError(
            f"group must have one entry per time, got {len(items)} for {n} times",
            tag="group",
        )
    for i, g in enumerate(items):
        if g is None or (isinstance(g, float) and not math.isfinite(g)):
            raise StatisticsInputError(
                f"group label missing, got {g!r} at index {i}",
                tag="group",
                hint="give every observation a group label",
            )
        if not isinstance(g, Hashable):
            raise StatisticsInputError(
                f"group labels must be hashable (int, str, ...), got {g!r} at index {i}",
                tag="group",
            )
    unique = list(dict.fromkeys(items))
    try:
        labels = tuple(sorted(unique))  # type: ignore[type-var]
    except TypeError:
        labels = tuple(unique)
    index = {label: k for k, label in enumerate(labels)}
    codes = np.array([index[g] for g in items], dtype=np.intp)
    return labels, codes


def _floats(values: Any) -> list[float]:
    return [float(v) for v in values]


# ---------------------------------------------------------------------- Kaplan-Meier


@dataclass(frozen=True)
class KaplanMeier:
    """A Kaplan-Meier survival curve.

    One row per distinct observed time (events and censoring), sorted ascending. The
    survival and its interval are those just after the time (right-continuous step
    function). Times are in the unit of the input (days in this pipeline).

    Attributes
    ----------
    time : tuple of float
        Distinct event and censoring times.
    n_at_risk : tuple of int
        Number at risk just before each time (those with time >= t).
    n_events, n_censored : tuple of int
        Events and censored observations at each time.
    survival : tuple of float
        S(t) = prod over event times t_i <= t of (1 - d_i / n_i) (Kaplan & Meier 1958).
    std_err : tuple of float
        Greenwood's standard error, SE = S * sqrt(sum d_i / (n_i (n_i - d_i)))
        (Greenwood 1926); 0 where S = 0 (everyone still at risk died).
    ci_lower, ci_upper : tuple of float
        Pointwise confidence interval of S(t) (see :func:`kaplan_meier`).
    conf_level : float
        Confidence level, e.g. 0.95.
    conf_type : str
        ``log-log``, ``linear`` or ``log``.
    median : float or None
        Median survival time: the smallest time with S(t) <= 0.5 (lifelines'
        convention); None when the curve stays above 0.5.
    median_ci_lower, median_ci_upper : float or None
        Confidence interval of the median by inverting the pointwise band (Brookmeyer &
        Crowley, Biometrics 1982;38:29; as R's ``survfit`` and lifelines'
        ``median_survival_times(kmf.confidence_interval_)``): the smallest time where the
        lower (resp. upper) bound is <= 0.5; None when it never is (not reached).
    n : int
        Number of observations.
    """

    time: tuple[float, ...]
    n_at_risk: tuple[int, ...]
    n_events: tuple[int, ...]
    n_censored: tuple[int, ...]
    survival: tuple[float, ...]
    std_err: tuple[float, ...]
    ci_lower: tuple[float, ...]
    ci_upper: tuple[float, ...]
    conf_level: float
    conf_type: str
    median: float | None
    median_ci_lower: float | None
    median_ci_upper: float | None
    n: int

    def survival_at(self, t: float) -> float:
        """S(t) of the step function, right-continuous: S just after the last time <= t.

        1.0 before the first time; beyond the last observed time (+inf included), the
        last value (the curve is not defined there when the last observation is
        censored).

        Raises
        ------
        StatisticsInputError
            A negative or NaN time.
        """
        value = float(t)
        if math.isnan(value) or value < 0:
            raise StatisticsInputError(f"t must be a time >= 0, got {value!r}", tag="t")
        k = int(np.searchsorted(np.asarray(self.time), value, side="right")) - 1
        return 1.0 if k < 0 else float(self.survival[k])

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready plain data (lists of floats and ints, None)."""
        return {
            "time": list(self.time),
            "n_at_risk": list(self.n_at_risk),
            "n_events": list(self.n_events),
            "n_censored": list(self.n_censored),
            "survival": list(self.survival),
            "std_err": list(self.std_err),
            "ci_lower": list(self.ci_lower),
            "ci_upper": list(self.ci_upper),
            "conf_level": self.conf_level,
            "conf_type": self.conf_type,
            "median": self.median,
            "median_ci_lower": self.median_ci_lower,
            "median_ci_upper": self.median_ci_upper,
            "n": self.n,
        }


def _km_bounds(
    s: FloatArray, var_term: FloatArray, z: float, conf_type: str
) -> tuple[FloatArray, FloatArray]:
    """Pointwise bounds of S given the Greenwood sum ``var_term`` = sum d/(n(n-d))."""
    lower = s.copy()
    upper = s.copy()
    # bounds equal S where S = 1 (no event yet), S = 0 or the variance term is 0
    ok = (s > 0) & (s < 1) & (var_term > 0) & np.isfinite(var_term)
    so = s[ok]
    root = np.sqrt(var_term[ok])
    if conf_type == "log-log":
        log_s = np.log(so)  # < 0
        centre = np.log(-log_s)
        half = z * root / -log_s  # SE of log(-log S) (Kalbfleisch & Prentice 2002)
        lower[ok] = np.exp(-np.exp(centre + half))
        upper[ok] = np.exp(-np.exp(centre - half))
    elif conf_type == "linear":
        se = so * root
        lower[ok] = np.clip(so - z * se, 0.0, 1.0)
        upper[ok] = np.clip(so + z * se, 0.0, 1.0)
    else:  # "log": SE of log S is sqrt(var_term)
        lower[ok] = np.clip(so * np.exp(-z * root), 0.0, 1.0)
        upper[ok] = np.clip(so * np.exp(z * root), 0.0, 1.0)
    return lower, upper


def _first_time_at_or_below(times: FloatArray, curve: FloatArray, level: float) -> float | None:
    hit = np.flatnonzero(curve <= level * (1.0 + _MEDIAN_TOL))
    return float(times[hit[0]]) if hit.size else None


def kaplan_meier(
    time: Sequence[float] | npt.NDArray[Any],
    event: Sequence[int] | Sequence[bool] | npt.NDArray[Any],
    *,
    conf_level: float = 0.95,
    conf_type: ConfType = "log-log",
) -> KaplanMeier:
    """Kaplan-Meier (product-limit) estimate of the survival function.

    Parameters
    ----------
    time : sequence of float
        Follow-up time of each observation, >= 0 and finite, in any unit (days in this
        pipeline).
    event : sequence of 0/1 or bool
        1 (True): the event was observed at ``time``; 0 (False): censored at ``time``.
    conf_level : float
        Level of the pointwise confidence interval, in (0, 1).
    conf_type : {"log-log", "linear", "log"}
        ``log-log`` (default; the "exponential Greenwood" interval of Kalbfleisch &
        Prentice 2002, what lifelines' ``KaplanMeierFitter`` reports):
        exp(-exp(log(-log S) -/+ z * sqrt(V) / |log S|)), with V = sum d/(n(n-d)).
        ``linear``: S -/+ z * SE, clipped to [0, 1]. ``log``: exp(log S -/+ z * sqrt(V)),
        clipped to [0, 1] (SE of log S is sqrt(V) by the delta method). Where S = 1 (no
        event yet) or S = 0 (all still at risk died, n = d, where V is infinite) both
        bounds equal S.

    Returns
    -------
    KaplanMeier
        S(t) = prod_{t_i <= t} (1 - d_i / n_i) (Kaplan & Meier 1958) and Greenwood's
        variance Var S(t) = S(t)^2 sum_{t_i <= t} d_i / (n_i (n_i - d_i)) (Greenwood 1926).

    Raises
    ------
    StatisticsInputError
        No observation, a negative or non-finite time, an event that is not 0/1, or
        lengths that differ.

    References
    ----------
    Kaplan & Meier, JASA 1958;53:457; Greenwood 1926; Kalbfleisch & Prentice, The
    Statistical Analysis of Failure Time Data, 2nd ed. 2002, sec. 1.4;
    https://lifelines.readthedocs.io/en/latest/fitters/univariate/KaplanMeierFitter.html
    """
    level = check_conf_level(conf_level)
    if conf_type not in _CONF_TYPES:
        raise StatisticsInputError(
            f"conf_type must be one of {', '.join(_CONF_TYPES)}, got {conf_type!r}",
            tag="conf_type",
        )
    t, e = _check_time_event(time, event)
    n = t.size
    times, inverse = np.unique(t, return_inverse=True)
    total = np.bincount(inverse, minlength=times.size)
    deaths = np.bincount(inverse, weights=e.astype(float), minlength=times.size)
    deaths_int = np.rint(deaths).astype(int)
    censored = total - deaths_int
    at_risk = n - np.concatenate(([0], np.cumsum(total)[:-1]))
    at_risk_f = at_risk.astype(float)

    survival = np.cumprod(1.0 - deaths / at_risk_f)
    with np.errstate(divide="ignore"):
        # d / (n (n - d)); infinite where all at risk die (n = d): S is 0 from there on
        term = np.where(deaths > 0, deaths / (at_risk_f * (at_risk_f - deaths)), 0.0)
    var_term = np.cumsum(term)
    positive = survival > 0
    std_err = np.zeros_like(survival)
    std_err[positive] = survival[positive] * np.sqrt(var_term[positive])
    survival[~positive] = 0.0
    z = z_quantile(level)
    lower, upper = _km_bounds(survival, var_term, z, conf_type)

    return KaplanMeier(
        time=tuple(_floats(times)),
        n_at_risk=tuple(int(v) for v in at_risk),
        n_events=tuple(int(v) for v in deaths_int),
        n_censored=tuple(int(v) for v in censored),
        survival=tuple(_floats(survival)),
        std_err=tuple(_floats(std_err)),
        ci_lower=tuple(_floats(lower)),
        ci_upper=tuple(_floats(upper)),
        conf_level=level,
        conf_type=conf_type,
        median=_first_time_at_or_below(times, survival, 0.5),
        median_ci_lower=_first_time_at_or_below(times, lower, 0.5),
        median_ci_upper=_first_time_at_or_below(times, upper, 0.5),
        n=n,
    )


# -------------------------------------------------------------------------- log-rank


@dataclass(frozen=True)
class LogRank:
    """The K-sample log-rank test.

    Attributes
    ----------
    statistic : float
        Chi-square statistic (O - E)' V^-1 (O - E) over the first K - 1 groups.
    df : int
        Degrees of freedom, K - 1.
    p_value : float
        Upper tail of the chi-square distribution with ``df`` degrees of freedom.
    groups : tuple
        Group labels, sorted when comparable (else in order of appearance).
    observed, expected : dict
        Observed and expected numbers of events per group label.
    n : dict
        Number of observations per group label.
    n_events : int
        Total number of events.
    """

    statistic: float
    df: int
    p_value: float
    groups: tuple[Hashable, ...]
    observed: dict[Hashable, float]
    expected: dict[Hashable, float]
    n: dict[Hashable, int]
    n_events: int

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready plain data; group labels become strings in the per-group maps."""
        return {
            "statistic": self.statistic,
            "df": self.df,
            "p_value": self.p_value,
            "groups": [str(g) for g in self.groups],
            "observed": {str(g): v for g, v in self.observed.items()},
            "expected": {str(g): v for g, v in self.expected.items()},
            "n": {str(g): v for g, v in self.n.items()},
            "n_events": self.n_events,
        }


def logrank_test(
    time: Sequence[float] | npt.NDArray[Any],
    event: Sequence[int] | Sequence[bool] | npt.NDArray[Any],
    group: Sequence[Hashable] | npt.NDArray[Any],
) -> LogRank:
    """Log-rank test of equal survival in K >= 2 groups.

    At each distinct event time t with n_t at risk and d_t events overall, group k has
    n_kt at risk and d_kt events. Expected events E_k = sum_t d_t n_kt / n_t; the
    hypergeometric covariance is V_kl = sum_t d_t (n_t - d_t) / (n_t - 1) *
    (n_kt / n_t) * (delta_kl - n_lt / n_t). The statistic (O - E)' V^-1 (O - E) over the
    first K - 1 groups has a chi-square distribution with K - 1 degrees of freedom under
    the null hypothesis (Mantel 1966; Peto & Peto 1972).

    Parameters
    ----------
    time : sequence of float
        Follow-up times, >= 0 (any unit; days in this pipeline).
    event : sequence of 0/1 or bool
        1: event observed; 0: censored.
    group : sequence of hashable
        Group label of each observation (ints or strings, ...).

    Returns
    -------
    LogRank

    Raises
    ------
    StatisticsInputError
        Bad times or events, lengths that differ, fewer than 2 groups, no event, or a
        singular covariance (a group never at risk at an event time).

    References
    ----------
    Mantel, Cancer Chemother Rep 1966;50:163; Peto & Peto, JRSS A 1972;135:185;
    https://lifelines.readthedocs.io/en/latest/lifelines.statistics.html
    (``multivariate_logrank_test``).
    """
    t, e = _check_time_event(time, event)
    labels, codes = _group_codes(group, t.size)
    k = len(labels)
    if k < 2:
        raise StatisticsInputError(
            f"group must have at least 2 distinct labels, got {k}",
            tag="group",
            hint="the log-rank test compares groups",
        )
    n_events = int(e.sum())
    if n_events == 0:
        raise StatisticsInputError(
            "event must contain at least 1 event, got 0 (all censored)",
            tag="event",
            hint="the log-rank test needs observed events",
        )
    event_times = np.unique(t[e])
    at_risk = np.empty((k, event_times.size))
    deaths = np.empty((k, event_times.size))
    for g in range(k):
        tg = np.sort(t[codes == g])
        at_risk[g] = tg.size - np.searchsorted(tg, event_times, side="left")
        pos = np.searchsorted(event_times, t[(codes == g) & e])
        deaths[g] = np.bincount(pos, minlength=event_times.size)
    n_t = at_risk.sum(axis=0)
    d_t = deaths.sum(axis=0)
    observed = deaths.sum(axis=1)
    expected = (at_risk * (d_t / n_t)).sum(axis=1)
    use = n_t > 1
    frac = at_risk[:, use] / n_t[use]
    weight = d_t[use] * (n_t[use] - d_t[use]) / (n_t[use] - 1.0)
    cov = np.einsum("t,kt,lt->kl", weight, frac, -frac)
    cov[np.diag_indices(k)] += (weight * frac).sum(axis=1)
    diff = (observed - expected)[: k - 1]
    sub = cov[: k - 1, : k - 1]
    try:
        solved = np.linalg.solve(sub, diff)
    except np.linalg.LinAlgError:
        solved = None
    if solved is None or np.linalg.cond(sub) > 1e12:
        raise StatisticsInputError(
            "the log-rank covariance matrix is singular: a group contributes no "
            "information (never at risk at an event time with others)",
            tag="group",
            hint="merge or drop groups whose follow-up does not overlap the events",
        )
    statistic = float(diff @ solved)
    df = k - 1
    return LogRank(
        statistic=statistic,
        df=df,
        p_value=float(stats.chi2.sf(statistic, df)),
        groups=labels,
        observed={label: float(observed[g]) for g, label in enumerate(labels)},
        expected={label: float(expected[g]) for g, label in enumerate(labels)},
        n={label: int((codes == g).sum()) for g, label in enumerate(labels)},
        n_events=n_events,
    )


# ------------------------------------------------------------------------------ Cox


@dataclass(frozen=True)
class CoxResult:
    """A fitted Cox proportional-hazards model, h(t | x) = h0(t) exp(beta' x).

    Per-covariate tuples are in the order of :attr:`covariates`; coefficients are per
    unit of the covariate as given (log hazard ratio per unit).

    Attributes
    ----------
    covariates : tuple of str
        Covariate names.
    coef : tuple of float
        beta, log hazard ratios.
    se : tuple of float
        Standard errors, square roots of the diagonal of the inverse observed
        information at beta.
    hazard_ratio : tuple of float
        exp(beta).
    ci_lower, ci_upper : tuple of float
        exp(beta -/+ z * se), the Wald interval of the hazard ratio.
    z : tuple of float
        Wald statistics beta / se.
    p_value : tuple of float
        Two-sided Wald p-values, 2 * (1 - Phi(|z|)).
    covariance : tuple of tuple of float
        Covariance matrix of beta (inverse observed information).
    log_likelihood, log_likelihood_null : float
        Partial log-likelihood at beta and at beta = 0.
    lr_statistic : float
        Likelihood-ratio statistic 2 (l(beta) - l(0)).
    lr_df : int
        Its degrees of freedom, the number of covariates.
    lr_p_value : float
        Upper tail of the chi-square distribution with ``lr_df`` degrees of freedom.
    n, n_events : int
        Observations and events.
    ties : str
        ``efron`` or ``breslow``.
    conf_level : float
        Level of the hazard-ratio intervals.
    concordance : float or None
        Harrell's C of the linear predictor (see :func:`cox_ph`); None when no pair is
        comparable.
    iterations : int
        Newton-Raphson iterations.
    converged : bool
        Always True in a returned result (non-convergence raises).
    """

    covariates: tuple[str, ...]
    coef: tuple[float, ...]
    se: tuple[float, ...]
    hazard_ratio: tuple[float, ...]
    ci_lower: tuple[float, ...]
    ci_upper: tuple[float, ...]
    z: tuple[float, ...]
    p_value: tuple[float, ...]
    covariance: tuple[tuple[float, ...], ...]
    log_likelihood: float
    log_likelihood_null: float
    lr_statistic: float
    lr_df: int
    lr_p_value: float
    n: int
    n_events: int
    ties: str
    conf_level: float
    concordance: float | None
    iterations: int
    converged: bool

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready plain data (lists of floats, ints, str, None)."""
        return {
            "covariates": list(self.covariates),
            "coef": list(self.coef),
            "se": list(self.se),
            "hazard_ratio": list(self.hazard_ratio),
            "ci_lower": list(self.ci_lower),
            "ci_upper": list(self.ci_upper),
            "z": list(self.z),
            "p_value": list(self.p_value),
            "covariance": [list(row) for row in self.covariance],
            "log_likelihood": self.log_likelihood,
            "log_likelihood_null": self.log_likelihood_null,
            "lr_statistic": self.lr_statistic,
            "lr_df": self.lr_df,
            "lr_p_value": self.lr_p_value,
            "n": self.n,
            "n_events": self.n_events,
            "ties": self.ties,
            "conf_level": self.conf_level,
            "concordance": self.concordance,
            "iterations": self.iterations,
            "converged": self.converged,
        }


class _PartialLikelihood:
    """Efron / Breslow partial log-likelihood, score and information of a Cox model.

    For each distinct event time with death set D (d deaths) and risk set R, with
    r_i = exp(beta' x_i), S_m = sum_R r x^(m) and A_m = sum_D r x^(m), and for
    l = 0 .. d - 1, f = l / d (Efron 1977) or f = 0 (Breslow 1974):
    phi_m = S_m - f A_m; loglik += sum_D beta' x - sum_l log phi_0;
    score += sum_D x - sum_l phi_1 / phi_0;
    information += sum_l (phi_2 / phi_0 - phi_1 phi_1' / phi_0^2).
    """

    def __init__(self, time: FloatArray, event: BoolArray, x: FloatArray, ties: str) -> None:
        order = np.argsort(time, kind="stable")
        self.time = time[order]
        self.event = event[order]
        self.x = x[order]
        event_times, d = np.unique(self.time[self.event], return_counts=True)
        # first index (in ascending order) of each event time's risk set
        self.start = np.searchsorted(self.time, event_times, side="left")
        self.death_group = np.searchsorted(event_times, self.time[self.event])
        self.n_times = event_times.size
        rep = np.repeat(np.arange(self.n_times), d)
        first = np.repeat(np.cumsum(d) - d, d)
        within = np.arange(rep.size) - first
        self.rep = rep
        self.f = within / d[rep] if ties == "efron" else np.zeros(rep.size)
        self.x_dead_sum = self.x[self.event].sum(axis=0)

    def evaluate(self, beta: FloatArray) -> tuple[float, FloatArray, FloatArray]:
        x = self.x
        eta = x @ beta
        shift = float(eta.max())
        w = np.exp(eta - shift)
        wx = w[:, None] * x
        wxx = wx[:, :, None] * x[:, None, :]

        def tail(a: FloatArray) -> FloatArray:
            return np.cumsum(a[::-1], axis=0)[::-1][self.start]

        s0, s1, s2 = tail(w), tail(wx), tail(wxx)
        dead = self.event
        g = self.death_group
        a0 = np.bincount(g, weights=w[dead], minlength=self.n_times)
        a1 = np.zeros((self.n_times, x.shape[1]))
        np.add.at(a1, g, wx[dead])
        a2 = np.zeros((self.n_times, x.shape[1], x.shape[1]))
        np.add.at(a2, g, wxx[dead])
        r, f = self.rep, self.f
        phi0 = s0[r] - f * a0[r]
        phi1 = s1[r] - f[:, None] * a1[r]
        phi2 = s2[r] - f[:, None, None] * a2[r]
        with np.errstate(divide="ignore"):
            loglik = float(eta[dead].sum() - (np.log(phi0) + shift).sum())
        mean = phi1 / phi0[:, None]
        score = self.x_dead_sum - mean.sum(axis=0)
        info = (phi2 / phi0[:, None, None]).sum(axis=0) - mean.T @ mean
        return loglik, score, info


def _concordance(time: FloatArray, event: BoolArray, risk: FloatArray) -> float | None:
    """Harrell's C: a pair is comparable when the shorter time is an event (or the times
    tie and only the other is censored); concordant when the higher risk failed first;
    tied risks count 1/2 (lifelines' ``concordance_index`` convention)."""
    correct = 0.0
    tied = 0.0
    pairs = 0
    for t in np.unique(time[event]):
        failed = risk[event & (time == t)]
        comparable = np.sort(risk[(time > t) | ((time == t) & ~event)])
        if comparable.size == 0:
            continue
        below = np.searchsorted(comparable, failed, side="left")
        at_or_below = np.searchsorted(comparable, failed, side="right")
        correct += float(below.sum())
        tied += float((at_or_below - below).sum())
        pairs += failed.size * comparable.size
    if pairs == 0:
        return None
    return (correct + 0.5 * tied) / pairs


def _check_covariates(
    covariates: Mapping[str, Sequence[float] | npt.NDArray[Any]], n: int
) -> tuple[tuple[str, ...], FloatArray]:
    if not isinstance(covariates, Mapping) or not covariates:
        raise StatisticsInputError(
            "covariates must be a non-empty mapping of name -> values, got "
            f"{type(covariates).__name__} with {len(covariates) if covariates else 0} entries",
            tag="covariates",
        )
    names = tuple(str(name) for name in covariates)
    columns = []
    for name, values in covariates.items():
        col = _numeric(values, f"covariates[{name!r}]", allow_bool=True)
        if col.size != n:
            raise StatisticsInputError(
                f"covariate {name!r} must have one value per time, got {col.size} for {n}",
                tag=f"covariates[{name!r}]",
            )
        bad = np.flatnonzero(~np.isfinite(col))
        if bad.size:
            i = int(bad[0])
            raise StatisticsInputError(
                f"covariate {name!r} must be finite, got {float(col[i])!r} at index {i}",
                tag=f"covariates[{name!r}]",
                hint="remove or impute observations with a missing covariate",
            )
        if np.all(col == col[0]):
            raise StatisticsInputError(
                f"covariate {name!r} is constant (every value {float(col[0])!r}): its hazard "
                "ratio is not estimable",
                tag=f"covariates[{name!r}]",
                hint="drop the covariate",
            )
        columns.append(col)
    return names, np.column_stack(columns)


def _not_estimable(
    names: Sequence[str],
    beta: FloatArray,
    iterations: int,
    why: str,
    *,
    hint: str | None = None,
    verdict: str = "is not estimable",
) -> None:
    listed = ", ".join(
        f"{name!r} (log hazard ratio {b:+.3g} per SD and still moving)"
        for name, b in zip(names, beta, strict=True)
    )
    raise StatisticsInputError(
        f"Cox model: {why} after {iterations} iterations for covariate(s) {listed}: "
        f"the hazard ratio {verdict} (monotone likelihood, e.g. perfect separation: "
        "all events in one covariate group)",
        tag="covariates",
        hint=hint or "drop or merge the covariate, or use a penalised (Firth) Cox model",
    )


def cox_ph(
    time: Sequence[float] | npt.NDArray[Any],
    event: Sequence[int] | Sequence[bool] | npt.NDArray[Any],
    covariates: Mapping[str, Sequence[float] | npt.NDArray[Any]],
    *,
    ties: Ties = "efron",
    conf_level: float = 0.95,
    max_iter: int = 50,
    tol: float = 1e-9,
) -> CoxResult:
    """Fit a Cox proportional-hazards model by Newton-Raphson on the partial likelihood.

    The model is h(t | x) = h0(t) exp(beta' x) (Cox 1972); HR = exp(beta) per unit of
    a covariate, with the Wald interval exp(beta -/+ z * SE). Tied event times use
    Efron's (1977) or Breslow's (1974) approximation of the partial likelihood.

    The covariates are centred and scaled to unit SD internally (which leaves the
    partial likelihood unchanged); the results are reported on the original scale.
    Newton-Raphson starts at beta = 0 and halves the step while the log-likelihood
    drops; it stops when the change of the log-likelihood is <= ``tol`` * max(1, |l|)
    (a relative criterion like R's ``coxph``). A coefficient whose final Newton step is
    still larger than sqrt(tol) * (1 + |beta|) (in SD units) is running off to infinity -
    monotone likelihood - and raises (Therneau & Grambsch 2000, sec. 3.5; R ``coxph.fit``).

    Parameters
    ----------
    time : sequence of float
        Follow-up times, >= 0 (any unit; days in this pipeline).
    event : sequence of 0/1 or bool
        1: event observed; 0: censored.
    covariates : mapping of str to sequence of float
        Covariate name -> one value per observation (numbers or bools).
    ties : {"efron", "breslow"}
        Handling of tied event times.
    conf_level : float
        Level of the hazard-ratio intervals, in (0, 1).
    max_iter : int
        Maximum number of Newton-Raphson iterations.
    tol : float
        Relative convergence tolerance on the log-likelihood.

    Returns
    -------
    CoxResult
        Also the likelihood-ratio test 2 (l(beta) - l(0)) on p df and Harrell's C of
        the linear predictor beta' x. Concordance convention (lifelines'
        ``concordance_index``, Harrell et al. 1996): a pair is comparable when the
        shorter time is an event, or the times tie and exactly the other one is
        censored; it is concordant when the one that failed first has the higher linear
        predictor; tied predictors count 1/2; two events at the same time are not
        compared. This equals ``lifelines.utils.concordance_index(time, -lp, event)``.

    Raises
    ------
    StatisticsInputError
        Bad times, events or covariates (non-finite, constant, wrong length), fewer
        than 2 events, collinear covariates, or no convergence / an infinite
        coefficient (the message names the covariate).

    References
    ----------
    Cox, JRSS B 1972;34:187; Breslow, Biometrics 1974;30:89; Efron, JASA 1977;72:557;
    Harrell et al., Stat Med 1996;15:361; Therneau & Grambsch, Modeling Survival Data,
    2000; https://lifelines.readthedocs.io/en/latest/fitters/regression/CoxPHFitter.html
    """
    level = check_conf_level(conf_level)
    if ties not in _TIES:
        raise StatisticsInputError(f"ties must be 'efron' or 'breslow', got {ties!r}", tag="ties")
    if isinstance(max_iter, bool) or not isinstance(max_iter, int) or max_iter < 1:
        raise StatisticsInputError(
            f"max_iter must be an integer >= 1, got {max_iter!r}", tag="max_iter"
        )
    if not isinstance(tol, int | float) or not (0 < float(tol) < 1):
        raise StatisticsInputError(f"tol must be in (0, 1), got {tol!r}", tag="tol")
    t, e = _check_time_event(time, event)
    names, x = _check_covariates(covariates, t.size)
    n_events = int(e.sum())
    if n_events < 2:
        raise StatisticsInputError(
            f"the Cox model needs at least 2 events, got {n_events}",
            tag="event",
            hint="too few events to estimate a hazard ratio",
        )
    p = x.shape[1]
    centre = x.mean(axis=0)
    scale = x.std(axis=0)
    xs = (x - centre) / scale
    model = _PartialLikelihood(t, e, xs, ties)

    def newton_step(info: FloatArray, score: FloatArray) -> FloatArray:
        try:
            step = np.linalg.solve(info, score)
        except np.linalg.LinAlgError:
            step = None
        if step is None or not np.all(np.isfinite(step)) or np.linalg.cond(info) > 1e13:
            raise StatisticsInputError(
                "Cox model: the information matrix is singular: covariates "
                f"{', '.join(repr(n) for n in names)} are collinear or a hazard ratio is "
                "not estimable",
                tag="covariates",
                hint="drop a covariate that is a combination of the others",
            )
        return np.asarray(step, dtype=float)

    beta = np.zeros(p)
    loglik, score, info = model.evaluate(beta)
    loglik_null = loglik
    iterations = 0
    converged = False
    while iterations < max_iter:
        step = newton_step(info, score)
        iterations += 1
        new_beta = beta + step
        new_loglik, new_score, new_info = model.evaluate(new_beta)
        halvings = 0
        while (not math.isfinite(new_loglik) or new_loglik < loglik) and halvings < 40:
            step = step / 2.0
            halvings += 1
            new_beta = beta + step
            new_loglik, new_score, new_info = model.evaluate(new_beta)
        if not math.isfinite(new_loglik):
            _not_estimable(names, new_beta, iterations, "the likelihood overflowed")
        change = abs(new_loglik - loglik)
        beta, loglik, score, info = new_beta, new_loglik, new_score, new_info
        if change <= tol * max(1.0, abs(loglik)):
            converged = True
            break
    if not converged:
        moving = newton_step(info, score)
        big = np.abs(moving) > math.sqrt(tol) * (1.0 + np.abs(beta))
        flagged = [i for i in range(p) if big[i]] or list(range(p))
        _not_estimable(
            [names[i] for i in flagged],
            beta[flagged],
            iterations,
            f"no convergence within max_iter={max_iter}",
            verdict="may not be estimable",
            hint="raise max_iter if the coefficients are moderate; otherwise drop or merge "
            "the covariate, or use a penalised (Firth) Cox model",
        )
    # infinite-coefficient check (R coxph.fit): the next Newton step is not small
    final = newton_step(info, score)
    infinite = np.abs(final) > math.sqrt(tol) * (1.0 + np.abs(beta))
    if np.any(infinite):
        flagged = [i for i in range(p) if infinite[i]]
        _not_estimable(
            [names[i] for i in flagged],
            beta[flagged],
            iterations,
            "the partial likelihood kept increasing",
        )
    beta = beta + final
    loglik, score, info = model.evaluate(beta)
    cov_std = np.linalg.inv(info)
    coef = beta / scale
    cov = cov_std / np.outer(scale, scale)
    se = np.sqrt(np.diag(cov))
    zq = z_quantile(level)
    zstat = coef / se
    lr = max(0.0, 2.0 * (loglik - loglik_null))
    concordance = _concordance(t, e, xs @ beta)
    return CoxResult(
        covariates=names,
        coef=tuple(_floats(coef)),
        se=tuple(_floats(se)),
        hazard_ratio=tuple(_floats(np.exp(coef))),
        ci_lower=tuple(_floats(np.exp(coef - zq * se))),
        ci_upper=tuple(_floats(np.exp(coef + zq * se))),
        z=tuple(_floats(zstat)),
        p_value=tuple(_floats(2.0 * stats.norm.sf(np.abs(zstat)))),
        covariance=tuple(tuple(_floats(row)) for row in cov),
        log_likelihood=loglik,
        log_likelihood_null=loglik_null,
        lr_statistic=lr,
        lr_df=p,
        lr_p_value=float(stats.chi2.sf(lr, p)),
        n=int(t.size),
        n_events=n_events,
        ties=ties,
        conf_level=level,
        concordance=concordance,
        iterations=iterations,
        converged=True,
    )

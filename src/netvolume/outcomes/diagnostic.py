"""Diagnostic accuracy: Wilson intervals, sensitivity / specificity / PPV / NPV, ROC AUC.

* :func:`wilson_interval` - the Wilson score interval of a binomial proportion.
* :func:`diagnostic_accuracy` / :meth:`DiagnosticAccuracy.from_counts` - the 2x2 table
  of a binary test against a reference standard, each proportion with its Wilson
  interval.
* :func:`roc_auc` - the area under the ROC curve (the Mann-Whitney probability), the ROC
  curve and DeLong's confidence interval.

References
----------
* Wilson EB. Probable inference, the law of succession, and statistical inference. J Am
  Stat Assoc. 1927;22(158):209-212.
* Newcombe RG. Two-sided confidence intervals for the single proportion: comparison of
  seven methods. Stat Med. 1998;17(8):857-872.
* Altman DG, Bland JM. Diagnostic tests 1: sensitivity and specificity. BMJ.
  1994;308:1552; Diagnostic tests 2: predictive values. BMJ. 1994;309:102.
* Hanley JA, McNeil BJ. The meaning and use of the area under a receiver operating
  characteristic (ROC) curve. Radiology. 1982;143(1):29-36.
* DeLong ER, DeLong DM, Clarke-Pearson DL. Comparing the areas under two or more
  correlated receiver operating characteristic curves: a nonparametric approach.
  Biometrics. 1988;44(3):837-845.
* Sun X, Xu W. Fast implementation of DeLong's algorithm for comparing the areas under
  correlated receiver operating characteristic curves. IEEE Signal Process Lett.
  2014;21(11):1389-1393.
* Robin X, et al. pROC: an open-source package for R and S+ to analyze and compare ROC
  curves. BMC Bioinformatics. 2011;12:77 (``ci.auc(method = "delong")``).
* Pepe MS. The Statistical Evaluation of Medical Tests for Classification and
  Prediction. Oxford University Press; 2003, sec. 5.2 (logit-transformed AUC interval).
* Qin G, Hotilovac L. Comparison of non-parametric confidence intervals for the area
  under the ROC curve of a continuous-scale diagnostic test. Stat Methods Med Res.
  2008;17(2):207-221 (logit-transformed interval).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
from scipy import special, stats

from netvolume.errors import StatisticsInputError
from netvolume.outcomes._checks import check_conf_level, z_quantile

__all__ = [
    "DiagnosticAccuracy",
    "Proportion",
    "RocAuc",
    "diagnostic_accuracy",
    "roc_auc",
    "wilson_interval",
]

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]
CiTransform = Literal["none", "logit"]


def _check_count(value: Any, name: str) -> int:
    if isinstance(value, bool | np.bool_) or not isinstance(value, int | np.integer):
        raise StatisticsInputError(
            f"{name} must be a whole number >= 0, got {value!r}",
            tag=name,
            hint="give counts as integers",
        )
    count = int(value)
    if count < 0:
        raise StatisticsInputError(f"{name} must be >= 0, got {count}", tag=name)
    return count


def _check_bools(values: Any, name: str) -> BoolArray:
    """A 1-D bool array; an error naming the first entry that is not a bool."""
    if isinstance(values, np.ndarray):
        if values.ndim != 1:
            raise StatisticsInputError(
                f"{name} must be a one-dimensional sequence of bools, got shape {values.shape}",
                tag=name,
            )
        if values.dtype.kind == "b":
            return values.astype(bool)
        items = values.tolist()
    elif isinstance(values, str | bytes) or not isinstance(values, Sequence):
        raise StatisticsInputError(
            f"{name} must be a sequence of bools, got {type(values).__name__}", tag=name
        )
    else:
        items = list(values)
    for i, v in enumerate(items):
        if not isinstance(v, bool | np.bool_):
            raise StatisticsInputError(
                f"{name} must be True/False, got {v!r} at index {i}",
                tag=name,
                hint="convert explicitly, e.g. [v == 1 for v in values]",
            )
    return np.array(items, dtype=bool)


# ---------------------------------------------------------------------------- Wilson


def wilson_interval(successes: int, n: int, *, conf_level: float = 0.95) -> tuple[float, float]:
    """Wilson score interval of a binomial proportion (no continuity correction).

    With p = x / n and z = Phi^-1((1 + level) / 2): centre = (p + z^2 / (2n)) /
    (1 + z^2 / n), half-width = z / (1 + z^2 / n) * sqrt(p (1 - p) / n + z^2 / (4 n^2)).
    The bounds are exactly 0 when x = 0 and exactly 1 when x = n.

    Parameters
    ----------
    successes : int
        Number of successes x, 0 <= x <= n.
    n : int
        Number of trials, >= 1.
    conf_level : float
        Confidence level in (0, 1).

    Returns
    -------
    tuple of float
        (lower, upper), proportions in [0, 1].

    Raises
    ------
    StatisticsInputError
        n = 0 (a proportion of nothing), negative or non-integer counts, x > n.

    References
    ----------
    Wilson, JASA 1927;22:209; Newcombe, Stat Med 1998;17:857 (method 3);
    https://docs.scipy.org/doc/scipy/reference/generated/scipy.stats.binomtest.html
    """
    level = check_conf_level(conf_level)
    x = _check_count(successes, "successes")
    total = _check_count(n, "n")
    if total == 0:
        raise StatisticsInputError(
            "n must be >= 1, got 0: a proportion of nothing has no interval",
            tag="n",
            hint="report the proportion as not estimable",
        )
    if x > total:
        raise StatisticsInputError(
            f"successes must be <= n, got {x} successes for n = {total}", tag="successes"
        )
    z = z_quantile(level)
    p = x / total
    z2n = z * z / total
    centre = (p + z2n / 2.0) / (1.0 + z2n)
    half = z / (1.0 + z2n) * math.sqrt(p * (1.0 - p) / total + z * z / (4.0 * total * total))
    lower = 0.0 if x == 0 else max(0.0, centre - half)
    upper = 1.0 if x == total else min(1.0, centre + half)
    return lower, upper


@dataclass(frozen=True)
class Proportion:
    """A proportion with its Wilson interval.

    Attributes
    ----------
    estimate : float or None
        successes / n; None when n = 0 (see ``note``).
    successes, n : int
        Numerator and denominator.
    ci_lower, ci_upper : float or None
        Wilson interval; None when n = 0.
    conf_level : float
        Confidence level.
    method : str
        ``wilson``.
    note : str or None
        Why the estimate is missing, e.g. "no condition-positive cases".
    """

    estimate: float | None
    successes: int
    n: int
    ci_lower: float | None
    ci_upper: float | None
    conf_level: float
    method: str = "wilson"
    note: str | None = None

    @classmethod
    def of(
        cls, successes: int, n: int, *, conf_level: float = 0.95, empty_note: str = "n = 0"
    ) -> Proportion:
        """successes / n with its Wilson interval; estimate None and a note if n = 0."""
        level = check_conf_level(conf_level)
        if n == 0:
            return cls(None, successes, 0, None, None, level, "wilson", empty_note)
        lower, upper = wilson_interval(successes, n, conf_level=level)
        return cls(successes / n, successes, n, lower, upper, level, "wilson", None)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready plain data."""
        return {
            "estimate": self.estimate,
            "successes": self.successes,
            "n": self.n,
            "ci_lower": self.ci_lower,
            "ci_upper": self.ci_upper,
            "conf_level": self.conf_level,
            "method": self.method,
            "note": self.note,
        }


# ------------------------------------------------------------------ 2x2 diagnostics


@dataclass(frozen=True)
class DiagnosticAccuracy:
    """A binary test against a reference standard (the 2x2 table).

    Attributes
    ----------
    tp, fp, fn, tn : int
        True positives, false positives, false negatives, true negatives.
    sensitivity : Proportion
        TP / (TP + FN).
    specificity : Proportion
        TN / (TN + FP).
    ppv : Proportion
        Positive predictive value, TP / (TP + FP).
    npv : Proportion
        Negative predictive value, TN / (TN + FN).
    accuracy : Proportion
        (TP + TN) / N.
    prevalence : Proportion
        (TP + FN) / N, condition-positive fraction of the cohort.
    conf_level : float
        Level of the Wilson intervals.
    """

    tp: int
    fp: int
    fn: int
    tn: int
    sensitivity: Proportion
    specificity: Proportion
    ppv: Proportion
    npv: Proportion
    accuracy: Proportion
    prevalence: Proportion
    conf_level: float

    @classmethod
    def from_counts(
        cls, *, tp: int, fp: int, fn: int, tn: int, conf_level: float = 0.95
    ) -> DiagnosticAccuracy:
        """Build from the four cells of the 2x2 table.

        Sensitivity = TP / (TP + FN), specificity = TN / (TN + FP), PPV = TP / (TP + FP),
        NPV = TN / (TN + FN) (Altman & Bland, BMJ 1994;308:1552 and 309:102), each with
        its Wilson interval (:func:`wilson_interval`). A proportion with an empty
        denominator is reported with estimate None and a note, not an error.

        Raises
        ------
        StatisticsInputError
            A negative or non-integer count, or an empty table.
        """
        level = check_conf_level(conf_level)
        a = _check_count(tp, "tp")
        b = _check_count(fp, "fp")
        c = _check_count(fn, "fn")
        d = _check_count(tn, "tn")
        total = a + b + c + d
        if total == 0:
            raise StatisticsInputError(
                "the 2x2 table must hold at least 1 case, got tp = fp = fn = tn = 0",
                tag="counts",
            )
        return cls(
            tp=a,
            fp=b,
            fn=c,
            tn=d,
            sensitivity=Proportion.of(
                a, a + c, conf_level=level, empty_note="no condition-positive cases"
            ),
            specificity=Proportion.of(
                d, d + b, conf_level=level, empty_note="no condition-negative cases"
            ),
            ppv=Proportion.of(a, a + b, conf_level=level, empty_note="no test-positive cases"),
            npv=Proportion.of(d, d + c, conf_level=level, empty_note="no test-negative cases"),
            accuracy=Proportion.of(a + d, total, conf_level=level),
            prevalence=Proportion.of(a + c, total, conf_level=level),
            conf_level=level,
        )

    @property
    def n(self) -> int:
        """Number of cases, TP + FP + FN + TN."""
        return self.tp + self.fp + self.fn + self.tn

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready plain data."""
        return {
            "tp": self.tp,
            "fp": self.fp,
            "fn": self.fn,
            "tn": self.tn,
            "n": self.n,
            "sensitivity": self.sensitivity.to_dict(),
            "specificity": self.specificity.to_dict(),
            "ppv": self.ppv.to_dict(),
            "npv": self.npv.to_dict(),
            "accuracy": self.accuracy.to_dict(),
            "prevalence": self.prevalence.to_dict(),
            "conf_level": self.conf_level,
        }


def diagnostic_accuracy(
    predicted_positive: Sequence[bool] | npt.NDArray[np.bool_],
    condition_positive: Sequence[bool] | npt.NDArray[np.bool_],
    *,
    conf_level: float = 0.95,
) -> DiagnosticAccuracy:
    """Sensitivity, specificity, PPV and NPV of a binary test, with Wilson intervals.

    Parameters
    ----------
    predicted_positive : sequence of bool
        The test's call for each case (True: positive).
    condition_positive : sequence of bool
        The reference standard for each case (True: the condition is present).
    conf_level : float
        Level of the Wilson intervals.

    Returns
    -------
    DiagnosticAccuracy
        See :meth:`DiagnosticAccuracy.from_counts` for the formulas.

    Raises
    ------
    StatisticsInputError
        Sequences of different lengths or empty, or an entry that is not a bool.

    References
    ----------
    Altman & Bland, BMJ 1994;308:1552 and 1994;309:102; Wilson, JASA 1927;22:209.
    """
    test = _check_bools(predicted_positive, "predicted_positive")
    truth = _check_bools(condition_positive, "condition_positive")
    if test.size != truth.size:
        raise StatisticsInputError(
            f"predicted_positive and condition_positive must have the same length, got "
            f"{test.size} and {truth.size}",
            tag="predicted_positive",
        )
    if test.size == 0:
        raise StatisticsInputError(
            "predicted_positive must hold at least 1 case, got 0", tag="predicted_positive"
        )
    return DiagnosticAccuracy.from_counts(
        tp=int(np.sum(test & truth)),
        fp=int(np.sum(test & ~truth)),
        fn=int(np.sum(~test & truth)),
        tn=int(np.sum(~test & ~truth)),
        conf_level=conf_level,
    )


# -------------------------------------------------------------------------------- ROC


@dataclass(frozen=True)
class RocAuc:
    """Area under the ROC curve with DeLong's interval, and the curve.

    Attributes
    ----------
    auc : float
        P(score_pos > score_neg) + 0.5 P(tie) (Mann-Whitney; Hanley & McNeil 1982).
    se : float or None
        DeLong standard error; None with fewer than 2 positives or 2 negatives.
    ci_lower, ci_upper : float or None
        Confidence interval of the AUC (see :func:`roc_auc`); None when ``se`` is.
    conf_level : float
        Confidence level.
    ci_transform : str
        ``none`` (AUC -/+ z SE clipped to [0, 1]) or ``logit``.
    n_positive, n_negative : int
        Numbers of condition-positive and condition-negative cases.
    fpr, tpr : tuple of float
        ROC points, from (0, 0) to (1, 1), by descending threshold.
    thresholds : tuple of float
        The threshold of each point: a case is called positive when score >= threshold;
        the first is +inf (no case called positive).
    note : str or None
        Why the interval is missing or degenerate.
    """

    auc: float
    se: float | None
    ci_lower: float | None
    ci_upper: float | None
    conf_level: float
    ci_transform: str
    n_positive: int
    n_negative: int
    fpr: tuple[float, ...]
    tpr: tuple[float, ...]
    thresholds: tuple[float, ...]
    note: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready plain data; the +inf first threshold is written as None."""
        return {
            "auc": self.auc,
            "se": self.se,
            "ci_lower": self.ci_lower,
            "ci_upper": self.ci_upper,
            "conf_level": self.conf_level,
            "ci_transform": self.ci_transform,
            "n_positive": self.n_positive,
            "n_negative": self.n_negative,
            "fpr": list(self.fpr),
            "tpr": list(self.tpr),
            "thresholds": [v if math.isfinite(v) else None for v in self.thresholds],
            "note": self.note,
        }


def _delong_components(pos: FloatArray, neg: FloatArray) -> tuple[FloatArray, FloatArray]:
    """DeLong's structural components (placement values) from mid-ranks (Sun & Xu 2014).

    V10_i = mean_j psi(X_i, Y_j) for each positive score X_i and V01_j = mean_i
    psi(X_i, Y_j) for each negative score Y_j, with psi = 1 (X > Y), 1/2 (X = Y), 0.
    """
    m, n = pos.size, neg.size
    combined = stats.rankdata(np.concatenate([pos, neg]))
    rank_pos = stats.rankdata(pos)
    rank_neg = stats.rankdata(neg)
    v10 = (combined[:m] - rank_pos) / n
    v01 = 1.0 - (combined[m:] - rank_neg) / m
    return v10, v01


def roc_auc(
    scores: Sequence[float] | npt.NDArray[Any],
    labels: Sequence[bool] | npt.NDArray[np.bool_],
    *,
    conf_level: float = 0.95,
    ci_transform: CiTransform = "none",
) -> RocAuc:
    """Area under the ROC curve, the curve, and DeLong's confidence interval.

    A higher score means "more likely condition-positive".

    Parameters
    ----------
    scores : sequence of float
        Finite scores, one per case.
    labels : sequence of bool
        Reference standard (True: condition-positive), one per case.
    conf_level : float
        Confidence level in (0, 1).
    ci_transform : {"none", "logit"}
        ``none`` (default, as pROC's ``ci.auc(method = "delong")``): AUC -/+ z SE,
        clipped to [0, 1]. ``logit``: expit(logit AUC -/+ z SE / (AUC (1 - AUC))),
        which stays inside (0, 1) (Pepe 2003, sec. 5.2; Qin & Hotilovac 2008).

    Returns
    -------
    RocAuc
        AUC = (1 / (m n)) sum_i sum_j psi(X_i, Y_j), equal to the Mann-Whitney U of the
        positives over m n. DeLong's variance is Var = S10 / m + S01 / n with S10, S01
        the sample variances (denominator m - 1, n - 1) of the placement values V10,
        V01 (DeLong et al. 1988). With fewer than 2 positives or negatives the variance
        is not defined: ``se`` and the interval are None with a note. When the variance
        is 0 (complete separation: AUC 0 or 1) the interval is [AUC, AUC], with a note.

    Raises
    ------
    StatisticsInputError
        Lengths that differ, a non-finite score, a label that is not a bool, or no
        positive or no negative case.

    References
    ----------
    Hanley & McNeil, Radiology 1982;143:29; DeLong, DeLong & Clarke-Pearson, Biometrics
    1988;44:837; Sun & Xu, IEEE Signal Process Lett 2014;21:1389; Robin et al., BMC
    Bioinformatics 2011;12:77; Qin & Hotilovac, Stat Methods Med Res 2008;17:207.
    """
    level = check_conf_level(conf_level)
    if ci_transform not in ("none", "logit"):
        raise StatisticsInputError(
            f"ci_transform must be 'none' or 'logit', got {ci_transform!r}",
            tag="ci_transform",
        )
    raw = np.asarray(scores)
    if raw.ndim != 1 or raw.dtype.kind not in "iuf":
        raise StatisticsInputError(
            f"scores must be a one-dimensional sequence of numbers, got dtype {raw.dtype} "
            f"and shape {raw.shape}",
            tag="scores",
        )
    s = raw.astype(float)
    bad = np.flatnonzero(~np.isfinite(s))
    if bad.size:
        i = int(bad[0])
        raise StatisticsInputError(
            f"scores must be finite, got {float(s[i])!r} at index {i}",
            tag="scores",
            hint="remove cases without a score",
        )
    y = _check_bools(labels, "labels")
    if y.size != s.size:
        raise StatisticsInputError(
            f"scores and labels must have the same length, got {s.size} and {y.size}",
            tag="labels",
        )
    pos, neg = s[y], s[~y]
    if pos.size == 0 or neg.size == 0:
        raise StatisticsInputError(
            f"labels must contain at least 1 positive and 1 negative case, got "
            f"{pos.size} positive and {neg.size} negative",
            tag="labels",
            hint="the AUC compares condition-positive with condition-negative cases",
        )
    v10, v01 = _delong_components(pos, neg)
    auc = float(v10.mean())

    # ROC curve: a case is positive when score >= threshold, thresholds descending
    thresholds = np.unique(s)[::-1]
    pos_sorted = np.sort(pos)
    neg_sorted = np.sort(neg)
    tp = pos.size - np.searchsorted(pos_sorted, thresholds, side="left")
    fp = neg.size - np.searchsorted(neg_sorted, thresholds, side="left")
    tpr = np.concatenate([[0.0], tp / pos.size])
    fpr = np.concatenate([[0.0], fp / neg.size])
    thr = np.concatenate([[math.inf], thresholds])

    se: float | None = None
    lower: float | None = None
    upper: float | None = None
    note: str | None = None
    if pos.size < 2 or neg.size < 2:
        note = (
            f"DeLong variance needs >= 2 positive and >= 2 negative cases, got "
            f"{pos.size} and {neg.size}: no interval"
        )
    else:
        var = float(np.var(v10, ddof=1) / pos.size + np.var(v01, ddof=1) / neg.size)
        se = math.sqrt(max(var, 0.0))
        z = z_quantile(level)
        if se == 0.0 or auc in (0.0, 1.0):
            lower = upper = auc
            note = "DeLong variance is 0 (complete separation): the interval is degenerate"
        elif ci_transform == "logit":
            centre = math.log(auc / (1.0 - auc))
            half = z * se / (auc * (1.0 - auc))
            lower = float(special.expit(centre - half))
            upper = float(special.expit(centre + half))
        else:
            lower = max(0.0, auc - z * se)
            upper = min(1.0, auc + z * se)
    return RocAuc(
        auc=auc,
        se=se,
        ci_lower=lower,
        ci_upper=upper,
        conf_level=level,
        ci_transform=ci_transform,
        n_positive=int(pos.size),
        n_negative=int(neg.size),
        fpr=tuple(float(v) for v in fpr),
        tpr=tuple(float(v) for v in tpr),
        thresholds=tuple(float(v) for v in thr),
        note=note,
    )

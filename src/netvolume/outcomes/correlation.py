"""Rank correlation: Spearman's rho with its p-value and a Fisher-z confidence interval.

References
----------
* Spearman C. The proof and measurement of association between two things. Am J
  Psychol. 1904;15(1):72-101.
* Fieller EC, Hartley HO, Pearson ES. Tests for rank correlation coefficients. I.
  Biometrika. 1957;44(3/4):470-481 (variance of Fisher's z of Spearman's rho,
  about 1.06 / (n - 3)).
* Bonett DG, Wright TA. Sample size requirements for estimating Pearson, Kendall and
  Spearman correlations. Psychometrika. 2000;65(1):23-28.
* SciPy ``spearmanr``,
  https://docs.scipy.org/doc/scipy/reference/generated/scipy.stats.spearmanr.html
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
from scipy import stats

from netvolume.errors import StatisticsInputError
from netvolume.outcomes._checks import check_conf_level, z_quantile

__all__ = ["Spearman", "spearman"]

FloatArray = npt.NDArray[np.float64]

#: Variance factor of Fisher's z of Spearman's rho (Fieller, Hartley & Pearson 1957).
_FHP_FACTOR = 1.06


@dataclass(frozen=True)
class Spearman:
    """Spearman's rank correlation.

    Attributes
    ----------
    rho : float
        Pearson correlation of the average ranks, in [-1, 1].
    p_value : float
        Two-sided p-value of rho = 0 from t = rho sqrt((n - 2) / (1 - rho^2)) with n - 2
        degrees of freedom (as :func:`scipy.stats.spearmanr`).
    n : int
        Number of pairs.
    ci_lower, ci_upper : float or None
        Confidence interval tanh(atanh(rho) -/+ z sqrt(1.06 / (n - 3))); None with
        fewer than 4 pairs (see ``note``).
    conf_level : float
        Confidence level.
    ci_method : str
        Description of the interval.
    note : str or None
        Why the interval is missing or degenerate.
    """

    rho: float
    p_value: float
    n: int
    ci_lower: float | None
    ci_upper: float | None
    conf_level: float
    ci_method: str = "fisher-z, se = sqrt(1.06 / (n - 3))"
    note: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready plain data."""
        return {
            "rho": self.rho,
            "p_value": self.p_value,
            "n": self.n,
            "ci_lower": self.ci_lower,
            "ci_upper": self.ci_upper,
            "conf_level": self.conf_level,
            "ci_method": self.ci_method,
            "note": self.note,
        }


def _values(values: Any, name: str) -> FloatArray:
    """A 1-D finite float array; an error naming the first bad entry."""
    if isinstance(values, np.ndarray):
        if values.ndim != 1:
            raise StatisticsInputError(
                f"{name} must be one-dimensional, got shape {values.shape}", tag=name
            )
        if values.dtype.kind in "iuf":
            items: list[Any] | None = None
            arr = values.astype(float)
        else:
            items = values.tolist()
    elif isinstance(values, str | bytes) or not isinstance(values, Sequence):
        raise StatisticsInputError(
            f"{name} must be a sequence of numbers, got {type(values).__name__}", tag=name
        )
    else:
        items = list(values)
    if items is not None:
        arr = np.empty(len(items), dtype=float)
        for i, v in enumerate(items):
            if isinstance(v, bool | np.bool_) or not isinstance(v, int | float | np.number):
                raise StatisticsInputError(
                    f"{name} must be numbers, got {v!r} at index {i}", tag=name
                )
            arr[i] = float(v)
    bad = np.flatnonzero(~np.isfinite(arr))
    if bad.size:
        i = int(bad[0])
        raise StatisticsInputError(
            f"{name} must be finite, got {float(arr[i])!r} at index {i}",
            tag=name,
            hint="remove pairs with a missing value",
        )
    return arr


def spearman(
    x: Sequence[float] | npt.NDArray[Any],
    y: Sequence[float] | npt.NDArray[Any],
    *,
    conf_level: float = 0.95,
) -> Spearman:
    """Spearman's rank correlation with its p-value and confidence interval.

    rho is the Pearson correlation of the average ranks of x and y (ties get their mean
    rank, :func:`scipy.stats.rankdata`; Spearman 1904). The p-value is two-sided, from
    t = rho sqrt((n - 2) / (1 - rho^2)) on n - 2 degrees of freedom (SciPy's
    ``spearmanr``). The interval is tanh(atanh(rho) -/+ z sqrt(1.06 / (n - 3))) with
    z = Phi^-1((1 + level) / 2) (Fieller, Hartley & Pearson 1957; Bonett & Wright
    2000); it needs n >= 4 (else None with a note). When |rho| = 1 the interval is
    [rho, rho] and the p-value 0.

    Parameters
    ----------
    x, y : sequence of float
        Paired finite values, n >= 3 pairs.
    conf_level : float
        Confidence level in (0, 1).

    Returns
    -------
    Spearman

    Raises
    ------
    StatisticsInputError
        Lengths that differ, fewer than 3 pairs, a non-finite or non-numeric value (the
        index is named), or a constant x or y (rho undefined).

    References
    ----------
    Spearman, Am J Psychol 1904;15:72; Fieller, Hartley & Pearson, Biometrika
    1957;44:470; Bonett & Wright, Psychometrika 2000;65:23;
    https://docs.scipy.org/doc/scipy/reference/generated/scipy.stats.spearmanr.html
    """
    level = check_conf_level(conf_level)
    a = _values(x, "x")
    b = _values(y, "y")
    if a.size != b.size:
        raise StatisticsInputError(
            f"x and y must have the same length, got {a.size} and {b.size}", tag="y"
        )
    n = a.size
    if n < 3:
        raise StatisticsInputError(f"Spearman's rho needs at least 3 pairs, got {n}", tag="x")
    for name, v in (("x", a), ("y", b)):
        if np.all(v == v[0]):
            raise StatisticsInputError(
                f"{name} is constant (every value {float(v[0])!r}): the rank correlation "
                "is undefined",
                tag=name,
            )
    ra = stats.rankdata(a)
    rb = stats.rankdata(b)
    da = ra - ra.mean()
    db = rb - rb.mean()
    rho = float(np.dot(da, db) / math.sqrt(float(np.dot(da, da)) * float(np.dot(db, db))))
    rho = min(1.0, max(-1.0, rho))
    dof = n - 2
    if abs(rho) == 1.0:
        p_value = 0.0
    else:
        t = rho * math.sqrt(dof / ((1.0 + rho) * (1.0 - rho)))
        p_value = float(2.0 * stats.t.sf(abs(t), dof))
    note: str | None = None
    lower: float | None
    upper: float | None
    if n < 4:
        lower = upper = None
        note = f"the Fisher-z interval needs at least 4 pairs, got {n}: no interval"
    elif abs(rho) == 1.0:
        lower = upper = rho
        note = "|rho| = 1: the Fisher-z interval is degenerate"
    else:
        z = z_quantile(level)
        centre = math.atanh(rho)
        half = z * math.sqrt(_FHP_FACTOR / (n - 3))
        lower = math.tanh(centre - half)
        upper = math.tanh(centre + half)
    return Spearman(
        rho=rho,
        p_value=p_value,
        n=n,
        ci_lower=lower,
        ci_upper=upper,
        conf_level=level,
        note=note,
    )

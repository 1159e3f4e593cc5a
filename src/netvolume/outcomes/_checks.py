"""Input checks shared by the outcome statistics."""

from __future__ import annotations

import numpy as np
from scipy import special

from netvolume.errors import StatisticsInputError

__all__ = ["check_conf_level", "z_quantile"]


def check_conf_level(conf_level: float) -> float:
    """Return ``conf_level`` as a float, or raise if it is not a number in (0, 1)."""
    if isinstance(conf_level, bool) or not isinstance(conf_level, int | float | np.floating):
        raise StatisticsInputError(
            f"conf_level must be a number in (0, 1), got {conf_level!r}",
            tag="conf_level",
            hint="e.g. 0.95 for a 95% confidence interval",
        )
    level = float(conf_level)
    if not (0.0 < level < 1.0):
        raise StatisticsInputError(
            f"conf_level must be in (0, 1), got {level!r}",
            tag="conf_level",
            hint="e.g. 0.95 for a 95% confidence interval",
        )
    return level


def z_quantile(conf_level: float) -> float:
    """Two-sided standard normal quantile, z = Phi^-1((1 + level) / 2)."""
    return float(special.ndtri(0.5 + 0.5 * conf_level))

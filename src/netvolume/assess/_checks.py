"""Input checks and exact arithmetic shared by the longitudinal engines."""

from __future__ import annotations

import datetime
import math
import numbers
from fractions import Fraction

from netvolume.errors import AssessmentInputError

__all__ = ["as_date", "check_size", "exact"]


def exact(value: float) -> Fraction:
    """The decimal a float prints as, exactly (``16.5`` -> 33/2, ``0.1`` -> 1/10), so that
    inclusive thresholds (-30 %, x 0.343, ...) hold for the numbers a reader wrote."""
    return Fraction(repr(float(value)))


def check_size(value: object, name: str, *, unit: str, hint: str) -> float:
    """Return ``value`` as a float, or raise if it is not a finite number >= 0.

    ``unit`` names what the number is in the message (``"mm"``, ``"mL"``, ``"mm or
    mL"``); ``hint`` says how to correct an out-of-range value.
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise AssessmentInputError(
            f"{name} must be a number ({unit}), got {value!r}",
            tag=name,
            hint=f"give the size as a number in {unit}",
        )
    number = float(value)
    if not math.isfinite(number) or number < 0:
        raise AssessmentInputError(
            f"{name} must be a finite number >= 0 ({unit}), got {value!r}", tag=name, hint=hint
        )
    return number


def as_date(value: object, name: str) -> datetime.date:
    """Return a :class:`datetime.date` (a datetime is reduced to its date)."""
    if isinstance(value, datetime.datetime):
        return value.date()
    if isinstance(value, datetime.date):
        return value
    raise AssessmentInputError(
        f"{name} must be a datetime.date, got {value!r}",
        tag=name,
        hint="give the scan date as datetime.date (parse ISO strings with date.fromisoformat)",
    )

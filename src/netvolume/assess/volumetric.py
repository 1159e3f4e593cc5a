"""Volumetric response: RECIST 1.1's diameter rules carried over to volumes with exact cubes.

Pure, record-level: volumes with their dates in, response categories out. No images, no I/O.

The equivalence
---------------
For a sphere ``V`` is proportional to ``D**3``, so RECIST 1.1's thresholds on the sum of
diameters (Eisenhauer et al., EJC 2009;45:228) become, exactly (DOMAIN.md section 3):

* PR, a 30 % decrease in diameter against baseline: ``V / V_baseline <= 0.7**3 = 0.343``
  (a 65.7 % volume decrease; tables round it to 65 % or 66 %);
* PD, a 20 % increase in diameter against the nadir: ``V / V_nadir >= 1.2**3 = 1.728``
  (a 72.8 % volume increase, often quoted as 73 %).

The ratios are :class:`VolumetricSettings` fields (some papers use 0.35 / 1.73).

Rules, evaluated in this order
------------------------------
1. ``"NE"`` when the volume is ``None`` (not evaluable); that time point is then ignored for
   the nadir.
2. ``"PD"`` when there are new lesions; or when ``nadir > 0`` and ``V >= pd_ratio * nadir``;
   or when ``nadir == 0`` and ``V > 0`` (reappearance after complete disappearance).
3. ``"CR"`` when ``V == 0``.
4. ``"PR"`` when ``V <= pr_ratio * baseline``.
5. ``"SD"`` otherwise.

PD is evaluated before PR, and shrinkage is measured against the baseline, growth against the
nadir, as RECIST's erratum says. The nadir is the smallest volume of the *earlier* evaluated
time points, baseline included, never the current one. RECIST's absolute +5 mm condition has
no volumetric counterpart here.

Exact comparisons
-----------------
The boundary comparisons convert every float through ``Fraction(repr(float(x)))``: the
decimal it prints as. So baseline 10.0 with V = 3.43 is PR, and nadir 1.0 with V = 1.728 is
PD, as the decimals say; float products get cases like baseline 2.05 with V = 0.70315, or
nadir 0.07 with V = 0.12096, wrong.
"""

from __future__ import annotations

import datetime
import math
import numbers
from collections.abc import Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

from netvolume.assess._checks import as_date, check_size, exact
from netvolume.errors import AssessmentInputError

__all__ = [
    "DEFAULT_VOLUMETRIC_SETTINGS",
    "PD_VOLUME_RATIO",
    "PD_VOLUME_RATIO_EXACT",
    "PR_VOLUME_RATIO",
    "PR_VOLUME_RATIO_EXACT",
    "RESPONSE_ORDER",
    "VolumetricSettings",
    "VolumetricTimePoint",
    "volumetric_course",
    "volumetric_response",
]

#: ``(1 - 0.30) ** 3``: a 30 % diameter decrease (RECIST PR) as a volume ratio to baseline.
PR_VOLUME_RATIO = 0.343
#: ``(1 + 0.20) ** 3``: a 20 % diameter increase (RECIST PD) as a volume ratio to the nadir.
PD_VOLUME_RATIO = 1.728
#: :data:`PR_VOLUME_RATIO` as an exact rational, ``Fraction(7, 10) ** 3``.
PR_VOLUME_RATIO_EXACT = Fraction(343, 1000)
#: :data:`PD_VOLUME_RATIO` as an exact rational, ``Fraction(6, 5) ** 3``.
PD_VOLUME_RATIO_EXACT = Fraction(1728, 1000)

#: Response categories from best to worst (``"NE"`` is not ranked).
RESPONSE_ORDER: tuple[str, ...] = ("CR", "PR", "SD", "PD")


def _check_volume(value: object, name: str) -> float:
    return check_size(
        value, name, unit="mL", hint="correct the measurement; a disappeared tumour has volume 0"
    )


def _check_baseline(value: object, name: str = "baseline_ml") -> float:
    if value is None:
        raise AssessmentInputError(
            f"{name} is None: without a baseline volume there is nothing to follow",
            tag=name,
            hint="measure the baseline volume, or choose another baseline scan",
        )
    number = _check_volume(value, name)
    if number == 0:
        raise AssessmentInputError(
            f"{name} is 0: a baseline without tumour volume leaves nothing to follow",
            tag=name,
            hint="choose a baseline scan with measurable disease",
        )
    return number


@dataclass(frozen=True)
class VolumetricSettings:
    """Volume-ratio thresholds of :func:`volumetric_response`.

    Attributes
    ----------
    pr_ratio
        PR when ``V / V_baseline <= pr_ratio``; default ``0.343 = 0.7**3`` (RECIST 1.1's
        -30 % diameter for a sphere). Must satisfy ``0 < pr_ratio < 1``.
    pd_ratio
        PD when ``V / V_nadir >= pd_ratio``; default ``1.728 = 1.2**3`` (RECIST 1.1's
        +20 % diameter). Must be > 1.
    """

    pr_ratio: float = PR_VOLUME_RATIO
    pd_ratio: float = PD_VOLUME_RATIO

    def __post_init__(self) -> None:
        for name in ("pr_ratio", "pd_ratio"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, numbers.Real):
                raise AssessmentInputError(f"{name} must be a number, got {value!r}", tag=name)
            if not math.isfinite(value):
                raise AssessmentInputError(f"{name} must be finite, got {value!r}", tag=name)
            object.__setattr__(self, name, float(value))
        if not 0 < self.pr_ratio < 1:
            raise AssessmentInputError(
                f"pr_ratio must lie in (0, 1), got {self.pr_ratio!r}",
                tag="pr_ratio",
                hint="0.343 = 0.7**3 is RECIST's -30 % diameter as a volume ratio",
            )
        if not self.pd_ratio > 1:
            raise AssessmentInputError(
                f"pd_ratio must be > 1, got {self.pd_ratio!r}",
                tag="pd_ratio",
                hint="1.728 = 1.2**3 is RECIST's +20 % diameter as a volume ratio",
            )

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready copy of the settings."""
        return {"pr_ratio": self.pr_ratio, "pd_ratio": self.pd_ratio}


#: The default settings: the exact cubes 0.343 and 1.728.
DEFAULT_VOLUMETRIC_SETTINGS = VolumetricSettings()


def volumetric_response(
    volume_ml: float | None,
    baseline_ml: float,
    nadir_ml: float,
    *,
    new_lesions: bool = False,
    settings: VolumetricSettings = DEFAULT_VOLUMETRIC_SETTINGS,
) -> str:
    """Response category of one follow-up volume.

    Parameters
    ----------
    volume_ml
        Tumour volume at the follow-up, mL, or ``None`` when not evaluated.
    baseline_ml
        Baseline volume, mL (> 0).
    nadir_ml
        Smallest volume of the earlier evaluated time points, baseline included, mL
        (``0 <= nadir_ml <= baseline_ml``).
    new_lesions
        Whether new lesions appeared at this time point.
    settings
        The volume ratios (:class:`VolumetricSettings`).

    Returns
    -------
    str
        In this order: ``"PD"`` when ``new_lesions`` (whatever the volume, as in RECIST
        1.1's overall table); ``"NE"`` when ``volume_ml`` is ``None``; ``"PD"`` when
        ``nadir_ml > 0`` and ``volume_ml >= pd_ratio * nadir_ml``, or when
        ``nadir_ml == 0 < volume_ml`` (reappearance); ``"CR"`` when ``volume_ml == 0``;
        ``"PR"`` when ``volume_ml <= pr_ratio * baseline_ml``; otherwise ``"SD"``.
        Boundaries are compared exactly on the decimals the floats print as.

    Raises
    ------
    AssessmentInputError
        ``baseline_ml`` None, 0, negative or non-finite; a negative or non-finite volume or
        nadir; ``nadir_ml > baseline_ml``.

    References
    ----------
    Eisenhauer EA et al. New response evaluation criteria in solid tumours: revised RECIST
    guideline (version 1.1). Eur J Cancer 2009;45:228-247; the sphere equivalence
    ``V ~ D**3`` (-30 % diameter = volume ratio 0.343, +20 % = 1.728), DOMAIN.md section 3.
    """
    if not isinstance(settings, VolumetricSettings):
        raise AssessmentInputError(
            f"settings must be a VolumetricSettings, got {settings!r}", tag="settings"
        )
    baseline = _check_baseline(baseline_ml)
    nadir = _check_volume(nadir_ml, "nadir_ml")
    if exact(nadir) > exact(baseline):
        raise AssessmentInputError(
            f"nadir_ml={nadir!r} exceeds baseline_ml={baseline!r}; the nadir includes the baseline",
            tag="nadir_ml",
            hint="pass the smallest volume of the earlier time points, baseline included",
        )
    if new_lesions:
        # a new lesion is progression whatever the targets do (RECIST 1.1 table 1)
        if volume_ml is not None:
            _check_volume(volume_ml, "volume_ml")
        return "PD"
    if volume_ml is None:
        return "NE"
    volume = _check_volume(volume_ml, "volume_ml")
    v = exact(volume)
    n = exact(nadir)
    if n > 0 and v >= exact(settings.pd_ratio) * n:
        return "PD"
    if n == 0 and v > 0:
        return "PD"
    if v == 0:
        return "CR"
    if v <= exact(settings.pr_ratio) * exact(baseline):
        return "PR"
    return "SD"


@dataclass(frozen=True)
class VolumetricTimePoint:
    """One time point of a volumetric course.

    Attributes
    ----------
    date
        Scan date.
    volume_ml
        Tumour volume, mL, or ``None`` when not evaluated.
    ratio_to_baseline
        ``volume_ml / baseline``; ``None`` when the volume is ``None``.
    ratio_to_nadir
        ``volume_ml / nadir_ml``; ``None`` at baseline, when the volume is ``None`` or when
        the nadir is 0.
    nadir_ml
        Smallest volume of the earlier evaluated time points, baseline included, mL;
        ``None`` at baseline (no earlier time point).
    response
        ``"CR"``, ``"PR"``, ``"SD"``, ``"PD"`` or ``"NE"``; ``None`` at baseline.
    new_lesions
        Whether new lesions were reported at this time point.
    notes
        Edge cases in words (not evaluated, reappearance, new lesions).
    """

    date: datetime.date
    volume_ml: float | None
    ratio_to_baseline: float | None
    ratio_to_nadir: float | None
    nadir_ml: float | None
    response: str | None
    new_lesions: bool = False
    notes: tuple[str, ...] = field(default=())

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dictionary (the date as an ISO string, notes as a list)."""
        return {
            "date": self.date.isoformat(),
            "volume_ml": self.volume_ml,
            "ratio_to_baseline": self.ratio_to_baseline,
            "ratio_to_nadir": self.ratio_to_nadir,
            "nadir_ml": self.nadir_ml,
            "response": self.response,
            "new_lesions": self.new_lesions,
            "notes": list(self.notes),
        }


def volumetric_course(
    values: Sequence[tuple[datetime.date, float | None]],
    new_lesions: Sequence[bool] | None = None,
    settings: VolumetricSettings = DEFAULT_VOLUMETRIC_SETTINGS,
) -> list[VolumetricTimePoint]:
    """Volumetric response at every time point of one patient's series.

    Parameters
    ----------
    values
        ``(scan date, volume in mL or None)`` pairs, dates strictly increasing; the first is
        the baseline and must have a volume > 0.
    new_lesions
        One flag per time point (``None``: no new lesions anywhere). The baseline's flag must
        be ``False``.
    settings
        The volume ratios (:class:`VolumetricSettings`).

    Returns
    -------
    list of VolumetricTimePoint
        The baseline (``response=None``) and one entry per follow-up, with
        :func:`volumetric_response` against the baseline and the nadir of the earlier
        evaluated time points (``None`` volumes are skipped for the nadir).

    Raises
    ------
    AssessmentInputError
        An empty series; a baseline volume None or 0; dates not strictly increasing (tag
        ``date``); ``new_lesions`` of another length, or ``True`` at baseline; an invalid
        volume.

    References
    ----------
    Eisenhauer EA et al. Eur J Cancer 2009;45:228-247 (RECIST 1.1, nadir semantics); the
    sphere equivalence, DOMAIN.md section 3.
    """
    points = list(values)
    if not points:
        raise AssessmentInputError(
            "the series is empty: a volumetric course needs a baseline",
            tag="values",
            hint="give at least the baseline (date, volume)",
        )
    flags = [False] * len(points) if new_lesions is None else list(new_lesions)
    if len(flags) != len(points):
        raise AssessmentInputError(
            f"new_lesions has {len(flags)} flags for {len(points)} time points",
            tag="new_lesions",
            hint="give one flag per time point, baseline included",
        )
    if flags[0]:
        raise AssessmentInputError(
            "new_lesions is True at baseline: new lesions are judged against the baseline",
            tag="new_lesions",
            hint="set the baseline's flag to False",
        )

    dates: list[datetime.date] = []
    for index, item in enumerate(points):
        try:
            raw_date, _ = item
        except (TypeError, ValueError):
            raise AssessmentInputError(
                f"time point {index} must be a (date, volume) pair, got {item!r}",
                tag="values",
            ) from None
        day = as_date(raw_date, f"values[{index}] date")
        if dates and day <= dates[-1]:
            raise AssessmentInputError(
                f"dates must be strictly increasing: {day.isoformat()} (time point {index}) "
                f"follows {dates[-1].isoformat()}",
                tag="date",
                hint="sort the time points by date and merge scans of the same day",
            )
        dates.append(day)

    baseline = _check_baseline(points[0][1], f"baseline volume on {dates[0].isoformat()}")
    course = [
        VolumetricTimePoint(
            date=dates[0],
            volume_ml=baseline,
            ratio_to_baseline=1.0,
            ratio_to_nadir=None,
            nadir_ml=None,
            response=None,
            new_lesions=False,
            notes=("baseline",),
        )
    ]
    nadir = baseline
    for day, (_, raw_volume), flag in zip(dates[1:], points[1:], flags[1:], strict=True):
        notes: list[str] = []
        volume = None if raw_volume is None else _check_volume(raw_volume, f"volume on {day}")
        response = volumetric_response(
            volume, baseline, nadir, new_lesions=bool(flag), settings=settings
        )
        if volume is None:
            notes.append(
                "no volume: not used for the nadir"
                if flag
                else "no volume: not evaluable (NE); not used for the nadir"
            )
        if flag:
            notes.append("new lesions: PD")
        if volume is not None and nadir == 0 and volume > 0:
            notes.append("nadir 0: reappearance after complete disappearance is PD")
        course.append(
            VolumetricTimePoint(
                date=day,
                volume_ml=volume,
                ratio_to_baseline=None if volume is None else volume / baseline,
                ratio_to_nadir=None if volume is None or nadir == 0 else volume / nadir,
                nadir_ml=nadir,
                response=response,
                new_lesions=bool(flag),
                notes=tuple(notes),
            )
        )
        if volume is not None:
            nadir = min(nadir, volume)
    return course

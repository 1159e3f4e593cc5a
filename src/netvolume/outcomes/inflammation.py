"""Systemic inflammation scores from C-reactive protein and albumin: IBI, GPS and mGPS.

Three scores are built from the same two laboratory values:

* **IBI**, the inflammation-based index of neuroendocrine tumours (Black et al. 2019):
  the number of abnormal values among {CRP, albumin}, 0, 1 or 2.
* **GPS**, the Glasgow Prognostic Score (Forrest et al. 2003; McMillan 2013): the same
  count, kept as a separate field so that a report can name the score it quotes.
* **mGPS**, the modified Glasgow Prognostic Score (McMillan 2007; Proctor et al. 2011):
  0 when CRP is not abnormal, whatever the albumin; 1 when CRP is abnormal and albumin
  is normal; 2 when both are abnormal.

The thresholds (CRP > 10 mg/L, albumin < 35 g/L) and whether they are strict are
settings (:class:`InflammationSettings`). An investigator may override the judgement of
either component (a CRP known to be raised by an intercurrent infection, a value taken
from another laboratory); an override replaces the judgement from the measured value,
and is recorded in :attr:`InflammationScore.overrides`.

References
----------
* Black JRM, Atkinson SR, Singh A, Evans J, Sharma R. The inflammation-based index can
  predict response and improve patient selection in NETs treated with PRRT: a pilot
  study. J Clin Endocrinol Metab. 2019;104(2):285-292. doi:10.1210/jc.2018-01214
* Forrest LM, McMillan DC, McArdle CS, Angerson WJ, Dunlop DJ. Evaluation of
  cumulative prognostic scores based on the systemic inflammatory response in patients
  with inoperable non-small-cell lung cancer. Br J Cancer. 2003;89(6):1028-1030.
* McMillan DC, Crozier JE, Canna K, Angerson WJ, McArdle CS. Evaluation of an
  inflammation-based prognostic score (GPS) in patients undergoing resection for colon
  and rectal cancer. Int J Colorectal Dis. 2007;22(8):881-886 (introduces the mGPS).
* McMillan DC. The systemic inflammation-based Glasgow Prognostic Score: a decade of
  experience in patients with cancer. Cancer Treat Rev. 2013;39(5):534-540.
* Proctor MJ, Morrison DS, Talwar D, et al. An inflammation-based prognostic score
  (mGPS) predicts cancer survival independent of tumour site: a Glasgow Inflammation
  Outcome Study. Br J Cancer. 2011;104(4):726-734.
* Proctor MJ, Horgan PG, Talwar D, Fletcher CD, Morrison DS, McMillan DC. Optimization
  of the systemic inflammation-based Glasgow Prognostic Score. Cancer.
  2013;119(12):2325-2332.
* MDCalc, Glasgow Prognostic Score (GPS) for cancer outcomes,
  https://www.mdcalc.com/glasgow-prognostic-score-gps-cancer-outcomes
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from netvolume.errors import StatisticsInputError

__all__ = ["InflammationScore", "InflammationSettings", "inflammation_score"]


def _fmt(value: float) -> str:
    """A number as a short, readable string (``10``, ``32.5``, ``0.125``)."""
    return f"{value:g}"


@dataclass(frozen=True)
class InflammationSettings:
    """Thresholds of the CRP / albumin judgements.

    Parameters
    ----------
    crp_high_mg_l : float
        CRP threshold, mg/L. CRP is abnormal when it is above this (or at or above it
        with ``crp_inclusive``). Default 10 mg/L (Forrest et al. 2003; McMillan 2013).
    albumin_low_g_l : float
        Albumin threshold, g/L. Albumin is abnormal when it is below this (or at or below
        it with ``albumin_inclusive``). Default 35 g/L (Forrest et al. 2003).
    crp_inclusive : bool
        True: CRP is abnormal when ``>=`` the threshold; False (default): when ``>``.
    albumin_inclusive : bool
        True: albumin is abnormal when ``<=`` the threshold; False (default): when ``<``.

    Raises
    ------
    StatisticsInputError
        A threshold that is not a positive finite number, or a flag that is not a bool.
    """

    crp_high_mg_l: float = 10.0
    albumin_low_g_l: float = 35.0
    crp_inclusive: bool = False
    albumin_inclusive: bool = False

    def __post_init__(self) -> None:
        for name in ("crp_high_mg_l", "albumin_low_g_l"):
            value = getattr(self, name)
            if isinstance(value, bool | np.bool_) or not isinstance(value, int | float | np.number):
                raise StatisticsInputError(
                    f"{name} must be a number, got {value!r}",
                    tag=name,
                    hint="give the threshold in the unit of the field name",
                )
            if not math.isfinite(float(value)) or float(value) <= 0:
                raise StatisticsInputError(
                    f"{name} must be a positive finite number, got {value!r}",
                    tag=name,
                    hint="give the threshold in the unit of the field name",
                )
            object.__setattr__(self, name, float(value))
        for name in ("crp_inclusive", "albumin_inclusive"):
            value = getattr(self, name)
            if not isinstance(value, bool | np.bool_):
                raise StatisticsInputError(f"{name} must be True or False, got {value!r}", tag=name)
            object.__setattr__(self, name, bool(value))

    def crp_rule(self) -> tuple[str, str]:
        """The abnormal and the normal comparison of CRP, e.g. ``("> 10", "<= 10")``."""
        t = _fmt(self.crp_high_mg_l)
        return (f">= {t}", f"< {t}") if self.crp_inclusive else (f"> {t}", f"<= {t}")

    def albumin_rule(self) -> tuple[str, str]:
        """The abnormal and the normal comparison of albumin, e.g. ``("< 35", ">= 35")``."""
        t = _fmt(self.albumin_low_g_l)
        return (f"<= {t}", f"> {t}") if self.albumin_inclusive else (f"< {t}", f">= {t}")

    def crp_is_abnormal(self, crp_mg_l: float) -> bool:
        """Whether a CRP value (mg/L) is abnormal under these settings."""
        if self.crp_inclusive:
            return crp_mg_l >= self.crp_high_mg_l
        return crp_mg_l > self.crp_high_mg_l

    def albumin_is_abnormal(self, albumin_g_l: float) -> bool:
        """Whether an albumin value (g/L) is abnormal under these settings."""
        if self.albumin_inclusive:
            return albumin_g_l <= self.albumin_low_g_l
        return albumin_g_l < self.albumin_low_g_l

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready plain data."""
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class InflammationScore:
    """IBI, GPS and mGPS of one patient at one time point.

    Attributes
    ----------
    ibi : int or None
        Inflammation-based index, 0-2 (Black et al. 2019); None when either component
        is unknown.
    gps : int or None
        Glasgow Prognostic Score, 0-2 (the same count as the IBI); None when either
        component is unknown.
    mgps : int or None
        Modified Glasgow Prognostic Score, 0-2; known as 0 when CRP is known to be normal
        even if albumin is unknown; otherwise None when either component is unknown.
    crp_abnormal, albumin_abnormal : bool or None
        The judgement of each component (measured or overridden); None: unknown.
    crp_mg_l : float or None
        The measured CRP, mg/L; None: not measured.
    albumin_g_l : float or None
        The measured albumin, g/L; None: not measured.
    overrides : tuple of str
        One line per component set by the investigator's judgement.
    missing : tuple of str
        Names of the missing inputs (``crp_mg_l``, ``albumin_g_l``), whether or not an
        override stood in for them.
    evidence : str
        One human-readable line: each component, its rule and the scores.
    settings : InflammationSettings
        The thresholds used.
    """

    ibi: int | None
    gps: int | None
    mgps: int | None
    crp_abnormal: bool | None
    albumin_abnormal: bool | None
    crp_mg_l: float | None
    albumin_g_l: float | None
    overrides: tuple[str, ...] = ()
    missing: tuple[str, ...] = ()
    evidence: str = ""
    settings: InflammationSettings = field(default_factory=InflammationSettings)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready plain data (ints, bools, floats, None, lists of str)."""
        return {
            "ibi": self.ibi,
            "gps": self.gps,
            "mgps": self.mgps,
            "crp_abnormal": self.crp_abnormal,
            "albumin_abnormal": self.albumin_abnormal,
            "crp_mg_l": self.crp_mg_l,
            "albumin_g_l": self.albumin_g_l,
            "overrides": list(self.overrides),
            "missing": list(self.missing),
            "evidence": self.evidence,
            "settings": self.settings.to_dict(),
        }


def _check_value(value: float | None, name: str, unit: str) -> float | None:
    """A laboratory value as a float, or None when missing; an error when invalid."""
    if value is None:
        return None
    if isinstance(value, bool | np.bool_) or not isinstance(value, int | float | np.number):
        raise StatisticsInputError(
            f"{name} must be a number in {unit} or None, got {value!r}",
            tag=name,
            hint="pass None for a value that was not measured",
        )
    number = float(value)
    if not math.isfinite(number):
        raise StatisticsInputError(
            f"{name} must be a finite number >= 0 ({unit}), got {number!r}",
            tag=name,
            hint="pass None for a value that was not measured, not NaN",
        )
    if number < 0:
        raise StatisticsInputError(
            f"{name} must be >= 0 ({unit}), got {_fmt(number)}",
            tag=name,
            hint="check the sign and the unit of the laboratory value",
        )
    return number


def _check_override(value: bool | None, name: str) -> bool | None:
    if value is None:
        return None
    if not isinstance(value, bool | np.bool_):
        raise StatisticsInputError(
            f"{name} must be True, False or None, got {value!r}",
            tag=name,
            hint="None: judge the component from its measured value",
        )
    return bool(value)


def _judge(
    label: str,
    unit: str,
    value: float | None,
    override: bool | None,
    rule: tuple[str, str],
    is_abnormal: bool | None,
    override_name: str,
) -> tuple[bool | None, str | None, str]:
    """The judgement of one component, its override line (if any) and its evidence text."""
    abnormal_rule, normal_rule = rule
    if override is not None:
        word = "abnormal" if override else "normal"
        if value is None:
            note = "no measured value"
            text = f"{label} not measured: {word} (investigator override)"
        else:
            measured_word = "abnormal" if is_abnormal else "normal"
            if is_abnormal == override:
                note = f"measured {_fmt(value)} {unit} would also be {measured_word}"
            else:
                note = f"measured {_fmt(value)} {unit} would be {measured_word}"
            text = f"{label} {_fmt(value)} {unit}: {word} (investigator override; {note})"
        return override, f"{override_name}={override} (investigator override; {note})", text
    if value is None:
        return None, None, f"{label} not measured (unknown)"
    assert is_abnormal is not None
    if is_abnormal:
        return True, None, f"{label} {_fmt(value)} {unit} {abnormal_rule} (abnormal)"
    return False, None, f"{label} {_fmt(value)} {unit} {normal_rule} (normal)"


def inflammation_score(
    crp_mg_l: float | None,
    albumin_g_l: float | None,
    *,
    settings: InflammationSettings | None = None,
    crp_abnormal_override: bool | None = None,
    albumin_abnormal_override: bool | None = None,
) -> InflammationScore:
    """IBI, GPS and mGPS from serum CRP and albumin.

    Parameters
    ----------
    crp_mg_l : float or None
        Serum C-reactive protein, mg/L (>= 0). None: not measured.
    albumin_g_l : float or None
        Serum albumin, g/L (>= 0). None: not measured.
    settings : InflammationSettings, optional
        Thresholds; default CRP > 10 mg/L and albumin < 35 g/L abnormal.
    crp_abnormal_override, albumin_abnormal_override : bool or None
        The investigator's judgement of a component, replacing the one from the
        measured value (also allowed when the value is missing). None: no override.

    Returns
    -------
    InflammationScore
        IBI = GPS = number of abnormal components among {CRP, albumin} (Black et al.
        2019; Forrest et al. 2003); mGPS = 0 if CRP is normal, 1 if CRP is abnormal and
        albumin normal, 2 if both are abnormal (McMillan 2007; Proctor et al. 2011). A
        component that is unknown (missing and not overridden) makes IBI and GPS None;
        mGPS is 0 when CRP is known normal whatever the albumin, and None otherwise.

    Raises
    ------
    StatisticsInputError
        A negative, non-finite or non-numeric value, or an override that is not a bool.

    References
    ----------
    Black et al., J Clin Endocrinol Metab 2019;104(2):285-292 (IBI); Forrest et al., Br
    J Cancer 2003;89:1028 and McMillan, Cancer Treat Rev 2013;39:534 (GPS); Proctor et
    al., Br J Cancer 2011;104:726 and Cancer 2013;119:2325 (mGPS);
    https://www.mdcalc.com/glasgow-prognostic-score-gps-cancer-outcomes
    """
    if settings is None:
        settings = InflammationSettings()
    if not isinstance(settings, InflammationSettings):
        raise StatisticsInputError(
            f"settings must be an InflammationSettings, got {type(settings).__name__}",
            tag="settings",
        )
    crp = _check_value(crp_mg_l, "crp_mg_l", "mg/L")
    albumin = _check_value(albumin_g_l, "albumin_g_l", "g/L")
    crp_override = _check_override(crp_abnormal_override, "crp_abnormal_override")
    albumin_override = _check_override(albumin_abnormal_override, "albumin_abnormal_override")

    crp_measured = None if crp is None else settings.crp_is_abnormal(crp)
    albumin_measured = None if albumin is None else settings.albumin_is_abnormal(albumin)
    crp_abnormal, crp_line, crp_text = _judge(
        "CRP", "mg/L", crp, crp_override, settings.crp_rule(), crp_measured, "crp_abnormal"
    )
    albumin_abnormal, albumin_line, albumin_text = _judge(
        "albumin",
        "g/L",
        albumin,
        albumin_override,
        settings.albumin_rule(),
        albumin_measured,
        "albumin_abnormal",
    )

    if crp_abnormal is None or albumin_abnormal is None:
        count: int | None = None
    else:
        count = int(crp_abnormal) + int(albumin_abnormal)
    if crp_abnormal is None:
        mgps: int | None = None
    elif not crp_abnormal:
        mgps = 0
    elif albumin_abnormal is None:
        mgps = None
    else:
        mgps = 2 if albumin_abnormal else 1

    def show(score: int | None) -> str:
        return "unknown" if score is None else str(score)

    evidence = (
        f"{crp_text}; {albumin_text} -> IBI {show(count)}, GPS {show(count)}, mGPS {show(mgps)}"
    )
    missing = tuple(
        name for name, value in (("crp_mg_l", crp), ("albumin_g_l", albumin)) if value is None
    )
    overrides = tuple(line for line in (crp_line, albumin_line) if line is not None)
    return InflammationScore(
        ibi=count,
        gps=count,
        mgps=mgps,
        crp_abnormal=crp_abnormal,
        albumin_abnormal=albumin_abnormal,
        crp_mg_l=crp,
        albumin_g_l=albumin,
        overrides=overrides,
        missing=missing,
        evidence=evidence,
        settings=settings,
    )

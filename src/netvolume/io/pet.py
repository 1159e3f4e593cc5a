"""PET and quantitative SPECT: activity concentration (Bq/mL) and SUV from DICOM headers.

The numbers every uptake criterion rests on, computed so that a reader can audit them:
each :class:`SUVFactor` lists every tag it used, the value, and where the value came from
(the header, an explicit override, a fallback table, or a derivation).

Pipeline, per image (slice or frame)::

    stored value --rescale (per slice, in io.dicom.load)--> value in Units (0054,1001)
      BQML           : activity concentration A in Bq/mL
      CNTS (Philips) : SUVbw = value * SUVScaleFactor (7053,xx00), or
                       A = value * ActivityConcentrationScaleFactor (7053,xx09)
      GML / CM2ML    : already an SUV of SUVType (0054,1006) (GML, empty type = BW) / BSA
    A --decay (DecayCorrection (0054,1102) START / ADMIN / NONE)--> A at administration
    SUV = A_admin * N / D_admin, with N the normaliser (g or cm2) and D_admin in Bq

References
----------
.. [QIBA] Quantitative Imaging Biomarkers Alliance, "SUV vendor-neutral pseudo-code"
   (QIBA wiki, Standardized Uptake Value), reference time order and CNTS handling.
.. [ONC] M. Vacha et al., OncoRay/IBSI "Standardizing SUV computation" manual and digital
   reference objects, oncoray/suv_computation @ bf11a08 (frame-timing reference time,
   per-frame decay correction for DecayCorrection NONE).
.. [DICOM] DICOM PS3.3 C.8.9.1 PET Series and C.8.9.4 PET Image modules (Units, SUV Type,
   Decay Correction, Frame Reference Time); PS3.3 C.8.4.x NM modules.
.. [JAMES] W. P. T. James, "Research on obesity", HMSO, London, 1976 (LBM formula);
   coefficients as in DICOM SUV Type LBMJAMES128 / LBM.
.. [JANMA] S. Janmahasatian et al., "Quantification of lean bodyweight", Clin.
   Pharmacokinet. 44(10), 2005, 1051-1065.
.. [DUBOIS] D. Du Bois, E. F. Du Bois, "A formula to estimate the approximate surface area
   if height and weight be known", Arch. Intern. Med. 17, 1916, 863-871.
.. [IBW] Ideal body weight as in 3D Slicer's SUVFactorCalculator (QIICR
   Slicer-PETDICOMExtension), capped at the body weight.
.. [NUDAT] Half-lives: NNDC NuDat 3 / DDEP evaluated values (see :data:`HALF_LIFE_TABLE_S`).
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import logging
import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, TypeVar

import numpy as np
import pydicom
from pydicom.dataset import Dataset
from pydicom.errors import InvalidDicomError

from netvolume.errors import (
    ContradictoryQuantityError,
    DicomReadError,
    MissingQuantityError,
    QuantificationError,
    UncorrectedImageError,
    UnsupportedUnitsError,
)
from netvolume.io.dicom import Series, _Image, _load_stack, _quiet_pydicom
from netvolume.volume import Volume

__all__ = [
    "HALF_LIFE_TABLE_S",
    "NORMALISATIONS",
    "QUANTITATIVE_MODALITIES",
    "REFERENCE_TIME_RULES",
    "ActivityFactor",
    "SUVFactor",
    "SUVInput",
    "SUVOptions",
    "activity_factor",
    "bsa_dubois_m2",
    "ibw_kg",
    "identify_nuclide",
    "lbm_james_kg",
    "lbm_janmahasatian_kg",
    "load_activity",
    "load_suv",
    "suv_factor",
    "suv_summary",
]

logger = logging.getLogger(__name__)

Normalisation = Literal["bw", "lbm-james", "lbm-james120", "lbm-janma", "bsa", "ibw"]

#: Modalities whose values can be quantified (PET, and SPECT stored as NM).
QUANTITATIVE_MODALITIES: tuple[str, ...] = ("PT", "NM")

#: Normalisations offered on the command line (``--suv``); the API also accepts
#: ``"lbm-james120"`` (DICOM SUV Type ``LBM``: James' formula with 120 for men).
NORMALISATIONS: tuple[str, ...] = ("bw", "lbm-james", "lbm-janma", "bsa", "ibw")

#: normalisation -> (DICOM SUV Type (0054,1006), unit of the SUV, description)
_NORM_INFO: dict[str, tuple[str, str, str]] = {
    "bw": ("BW", "g/mL", "body weight"),
    "lbm-james": ("LBMJAMES128", "g/mL", "lean body mass, James (128 for men)"),
    "lbm-james120": ("LBM", "g/mL", "lean body mass, James as in DICOM LBM (120 for men)"),
    "lbm-janma": ("LBMJANMA", "g/mL", "lean body mass, Janmahasatian"),
    "bsa": ("BSA", "cm2/mL", "body surface area, Du Bois"),
    "ibw": ("IBW", "g/mL", "ideal body weight"),
}
_SUVTYPE_TO_NORM = {info[0]: name for name, info in _NORM_INFO.items()}

#: How the decay reference time of DecayCorrection START is found (see :class:`SUVOptions`).
REFERENCE_TIME_RULES: tuple[str, ...] = ("qiba-frame", "qiba", "series", "acquisition", "frame")

#: Fallback half-lives in seconds, used only when RadionuclideHalfLife (0018,1075) is
#: absent (with a warning). Values: NNDC NuDat 3 / DDEP evaluations.
HALF_LIFE_TABLE_S: dict[str, float] = {
    "F-18": 6586.2,  # 109.77 min
    "Ga-68": 4069.8,  # 67.83 min (DDEP); real headers often carry ~4057 s
    "Cu-64": 45723.6,  # 12.701 h
    "Tc-99m": 21624.12,  # 6.0067 h
    "In-111": 242326.08,  # 2.8047 d
    "Lu-177": 574300.8,  # 6.647 d
}

_ELEMENTS: dict[str, tuple[str, str]] = {
    "F-18": ("f", "fluorine"),
    "Ga-68": ("ga", "gallium"),
    "Cu-64": ("cu", "copper"),
    "Tc-99m": ("tc", "technetium"),
    "In-111": ("in", "indium"),
    "Lu-177": ("lu", "lutetium"),
}

_PHILIPS_CREATOR = "Philips PET Private Group"
_GE_PET_CREATOR = "GEMS_PETD_01"
_LN2 = math.log(2.0)
_T = TypeVar("_T")
_DECAYED_TO = {"START": "reference", "ADMIN": "administration", "NONE": "none"}


# ---------------------------------------------------------------------------- records
@dataclass(frozen=True)
class SUVInput:
    """One input of an activity or SUV computation, as used.

    Attributes
    ----------
    name
        DICOM keyword or derived quantity name (``"PatientWeight"``, ``"LBM"``).
    tag
        ``"(gggg,eeee)"`` for a DICOM attribute, None for a derived value.
    value
        The value as used, after unit conversion (JSON-serialisable).
    unit
        Unit of ``value`` (``"kg"``, ``"Bq"``, ``"s"``...), None when dimensionless.
    source
        ``"header"``, ``"override"``, ``"derived"``, ``"fallback table"``, ``"default"``.
    note
        What was done to the raw value (e.g. "stored in MBq, converted").
    """

    name: str
    tag: str | None
    value: Any
    unit: str | None
    source: str
    note: str = ""

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-serialisable dictionary."""
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class SUVOptions:
    """Settings and explicit overrides for activity and SUV computation.

    Every override is recorded in the resulting factor's inputs with source
    ``"override"``; a header value it replaces is noted next to it.

    Attributes
    ----------
    reference_time
        How the decay reference time of DecayCorrection START is chosen:

        * ``"qiba-frame"`` (default): QIBA order [QIBA]_: SeriesDate/Time unless later than
          the earliest acquisition; else the GE private scan datetime (0009,xx0D); else the
          time implied by the frame timing, ``t_acq + ln(lT/(1-exp(-lT)))/l - FrameReference
          Time`` [ONC]_ when every image has FrameReferenceTime and ActualFrameDuration;
          else the earliest acquisition.
        * ``"qiba"``: the same without the frame-timing step (QIBA's pseudo-code as written).
        * ``"series"``: always SeriesDate/Time; ``"acquisition"``: always the earliest
          AcquisitionDate/Time; ``"frame"``: always the frame-timing time (OncoRay's
          proposal).
    weight_kg, height_m, sex
        Override PatientWeight (0010,1030), PatientSize (0010,1020), PatientSex (0010,0040)
        (``"M"``, ``"F"`` or ``"O"``).
    dose_bq
        Override RadionuclideTotalDose (0018,1074), in Bq.
    injection_datetime
        Override RadiopharmaceuticalStartDateTime (0018,1078) (datetime or ISO string).
    half_life_s
        Override RadionuclideHalfLife (0018,1075), in s.
    units
        Override Units (0054,1001) (e.g. ``"BQML"`` for a quantitative SPECT without it).
    accept_corrections
        A reason for accepting images whose CorrectedImage (0028,0051) lacks ATTN or DECY;
        without it such images are refused. The reason is recorded.
    dose_mbq_below
        A RadionuclideTotalDose below this value (in the header's number) is taken as MBq
        and converted, with a warning: no real administered activity is below 100 kBq.
    ibw_cap_at_weight
        Cap the ideal body weight at the body weight (as 3D Slicer does).
    sex_other
        For PatientSex ``O`` (other), sex-specific formulas (LBM, IBW) give the mean of
        their male and female values (``"average"``, default, as the IBSI/OncoRay DRO
        expects) or raise (``"error"``). An empty PatientSex always raises.
    reference_spread_tol_s
        Largest accepted spread of the frame-timing reference time over the images.
    """

    reference_time: str = "qiba-frame"
    weight_kg: float | None = None
    height_m: float | None = None
    sex: str | None = None
    dose_bq: float | None = None
    injection_datetime: _dt.datetime | str | None = None
    half_life_s: float | None = None
    units: str | None = None
    accept_corrections: str | None = None
    dose_mbq_below: float = 1.0e5
    ibw_cap_at_weight: bool = True
    sex_other: str = "average"
    reference_spread_tol_s: float = 1.0

    def __post_init__(self) -> None:
        if self.reference_time not in REFERENCE_TIME_RULES:
            raise ValueError(
                f"reference_time must be one of {', '.join(REFERENCE_TIME_RULES)}; "
                f"got {self.reference_time!r}"
            )
        for name in ("weight_kg", "height_m", "dose_bq", "half_life_s"):
            v = getattr(self, name)
            if v is not None and not (math.isfinite(v) and v > 0):
                raise ValueError(f"{name} override must be a positive number; got {v!r}")
        if self.sex is not None and self.sex.upper() not in ("M", "F", "O"):
            raise ValueError(f"sex override must be 'M', 'F' or 'O'; got {self.sex!r}")
        if isinstance(self.injection_datetime, str):
            try:
                parsed = _dt.datetime.fromisoformat(self.injection_datetime)
            except ValueError:
                raise ValueError(
                    "injection_datetime must be an ISO date and time like "
                    f"2025-01-01T10:00:00; got {self.injection_datetime!r}"
                ) from None
            object.__setattr__(self, "injection_datetime", parsed)
        if self.sex_other not in ("average", "error"):
            raise ValueError(f"sex_other must be 'average' or 'error'; got {self.sex_other!r}")

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-serialisable dictionary (datetimes as ISO strings)."""
        d = dataclasses.asdict(self)
        if isinstance(self.injection_datetime, _dt.datetime):
            d["injection_datetime"] = self.injection_datetime.isoformat()
        return d


@dataclass(frozen=True)
class ActivityFactor:
    """How the values of a PET/SPECT series become activity concentration in Bq/mL.

    ``activity[image] = value_in_Units[image] * image_factors[image]``.

    Attributes
    ----------
    units_in
        Units (0054,1001) of the loaded values.
    method
        ``"bqml"`` (values are Bq/mL) or ``"philips-activity-scale"`` (CNTS times
        ActivityConcentrationScaleFactor).
    decay_correction
        DecayCorrection (0054,1102) of the input: START, ADMIN or NONE.
    decayed_to
        What the output is decay-corrected to: ``"reference"`` (t_ref),
        ``"administration"`` (t_adm) or ``"none"`` (each frame at its own time).
    reference_datetime, reference_rule
        Decay reference time t_ref (ISO 8601) and the rule that chose it
        (``"series"``, ``"ge-private"``, ``"frame-timing"``, ``"earliest-acquisition"``).
    injection_datetime
        Administration time t_adm (ISO 8601), None when not needed and not present.
    half_life_s
        Half-life used, None when not needed and not present.
    image_keys, image_factors
        ``(SOPInstanceUID, frame)`` of every image in catalogue order, and its factor.
    inputs, warnings
        Every input used (see :class:`SUVInput`) and what the user should know.
    """

    units_in: str
    method: str
    decay_correction: str
    decayed_to: str
    reference_datetime: str | None
    reference_rule: str | None
    injection_datetime: str | None
    half_life_s: float | None
    image_keys: tuple[tuple[str, int], ...]
    image_factors: tuple[float, ...]
    inputs: tuple[SUVInput, ...]
    warnings: tuple[str, ...] = ()

    @property
    def factor(self) -> float | None:
        """The factor when it is the same for every image, else None."""
        return _common(self.image_factors)

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-serialisable dictionary."""
        d = dataclasses.asdict(self)
        d["inputs"] = [i.to_dict() for i in self.inputs]
        d["warnings"] = list(self.warnings)
        _factor_fields(d, self.image_keys, self.image_factors)
        return d


@dataclass(frozen=True)
class SUVFactor:
    """The factor from loaded PET/SPECT values to an SUV, and everything it rests on.

    ``suv[image] = value_in_Units[image] * image_factors[image]``; :attr:`factor` is the
    single factor when it is the same for every image (the usual case).

    Attributes
    ----------
    normalisation
        ``"bw"``, ``"lbm-james"``, ``"lbm-james120"``, ``"lbm-janma"``, ``"bsa"``, ``"ibw"``.
    suv_type
        The DICOM SUV Type (0054,1006) code of the result (BW, LBMJAMES128, ...).
    unit
        ``"g/mL"`` (``"cm2/mL"`` for BSA).
    method
        ``"activity"`` (Bq/mL and the decay-corrected dose), ``"philips-suv-scale"`` (CNTS
        times SUVScaleFactor) or ``"stored-suv"`` (Units GML / CM2ML).
    units_in
        Units (0054,1001) of the loaded values.
    decay_correction, reference_datetime, reference_rule, injection_datetime, elapsed_s
        DecayCorrection, t_ref, the rule that chose it, t_adm and t_ref - t_adm in s.
    half_life_s
        T1/2 in s.
    dose_administered_bq, dose_at_reference_bq
        D_adm, and D = D_adm * 2**(-elapsed_s / half_life_s) for START (= D_adm for ADMIN,
        and for NONE, where each frame is corrected to the administration instead).
    weight_kg, height_m, sex
        Patient values used (None when not needed).
    normaliser, normaliser_unit
        N: body weight, LBM or IBW in kg, or BSA in m2, as used in the formula.
    activity
        The activity part (None for ``"stored-suv"`` and ``"philips-suv-scale"``).
    image_keys, image_factors, inputs, warnings
        As in :class:`ActivityFactor`.
    """

    normalisation: str
    suv_type: str
    unit: str
    method: str
    units_in: str
    decay_correction: str
    reference_datetime: str | None
    reference_rule: str | None
    injection_datetime: str | None
    elapsed_s: float | None
    half_life_s: float | None
    dose_administered_bq: float | None
    dose_at_reference_bq: float | None
    weight_kg: float | None
    height_m: float | None
    sex: str | None
    normaliser: float | None
    normaliser_unit: str | None
    activity: ActivityFactor | None
    image_keys: tuple[tuple[str, int], ...]
    image_factors: tuple[float, ...]
    inputs: tuple[SUVInput, ...]
    warnings: tuple[str, ...] = ()
    options: SUVOptions = field(default_factory=SUVOptions)

    @property
    def factor(self) -> float | None:
        """The factor when it is the same for every image, else None."""
        return _common(self.image_factors)

    @property
    def quantity(self) -> str:
        """Name of the result, used as the Volume's units: ``"SUVbw"``, ``"SUVbsa"``..."""
        return f"SUV{self.normalisation}"

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-serialisable dictionary (the audit record)."""
        d = dataclasses.asdict(self)
        d["inputs"] = [i.to_dict() for i in self.inputs]
        d["warnings"] = list(self.warnings)
        d["activity"] = self.activity.to_dict() if self.activity else None
        d["options"] = self.options.to_dict()
        d["quantity"] = self.quantity
        _factor_fields(d, self.image_keys, self.image_factors)
        return d


def _common(values: Sequence[float], rtol: float = 1e-12) -> float | None:
    if not values:
        return None
    v0 = values[0]
    if all(abs(v - v0) <= rtol * max(abs(v0), 1e-300) for v in values):
        return v0
    return None


def _factor_fields(
    d: dict[str, Any], keys: Sequence[tuple[str, int]], factors: Sequence[float]
) -> None:
    """Replace per-image lists by ``factor`` (if constant) and a compact per-image list."""
    del d["image_keys"], d["image_factors"]
    common = _common(factors)
    d["factor"] = common
    if factors:
        d["factor_min"], d["factor_max"] = min(factors), max(factors)
    if common is None:
        d["image_factors"] = [
            {"sop_instance_uid": k[0], "frame": k[1], "factor": f}
            for k, f in zip(keys, factors, strict=True)
        ]


# ---------------------------------------------------------------------------- body size
def _check_sex(sex: str | None, formula: str) -> str:
    s = (sex or "").upper()
    if s not in ("M", "F"):
        raise MissingQuantityError(
            f"{formula} needs the patient's sex as M or F; PatientSex is {sex!r}",
            tag="PatientSex (0010,0040)",
            hint="pass sex='M' or 'F' (CLI --sex) if it is known, or use --suv bw",
        )
    return s


def lbm_james_kg(
    weight_kg: float, height_m: float, sex: str, *, male_coeff: float = 128.0
) -> float:
    """Lean body mass by James' formula [JAMES]_.

    ``LBM = 1.10 W - c (W / H_cm)**2`` for men (c = 128, DICOM ``LBMJAMES128``; 120 for the
    DICOM ``LBM`` variant) and ``LBM = 1.07 W - 148 (W / H_cm)**2`` for women.

    Parameters
    ----------
    weight_kg
        Body weight W in kg.
    height_m
        Height H in m (H_cm = 100 H).
    sex
        ``"M"`` or ``"F"``.
    male_coeff
        c for men: 128 (default) or 120.

    Returns
    -------
    float
        LBM in kg.
    """
    s = _check_sex(sex, "LBM (James)")
    h_cm = 100.0 * height_m
    if s == "M":
        return 1.10 * weight_kg - male_coeff * (weight_kg / h_cm) ** 2
    return 1.07 * weight_kg - 148.0 * (weight_kg / h_cm) ** 2


def lbm_janmahasatian_kg(weight_kg: float, height_m: float, sex: str) -> float:
    """Lean body mass by Janmahasatian's formula [JANMA]_ (DICOM ``LBMJANMA``).

    ``LBM = 9270 W / (6680 + 216 BMI)`` for men, ``9270 W / (8780 + 244 BMI)`` for women,
    with ``BMI = W / H**2``.

    Parameters
    ----------
    weight_kg
        Body weight W in kg.
    height_m
        Height H in m.
    sex
        ``"M"`` or ``"F"``.

    Returns
    -------
    float
        LBM in kg.
    """
    s = _check_sex(sex, "LBM (Janmahasatian)")
    bmi = weight_kg / height_m**2
    if s == "M":
        return 9270.0 * weight_kg / (6680.0 + 216.0 * bmi)
    return 9270.0 * weight_kg / (8780.0 + 244.0 * bmi)


def bsa_dubois_m2(weight_kg: float, height_m: float) -> float:
    """Body surface area by Du Bois' formula [DUBOIS]_.

    ``BSA = 0.007184 W**0.425 H_cm**0.725``.

    Parameters
    ----------
    weight_kg
        Body weight W in kg.
    height_m
        Height H in m.

    Returns
    -------
    float
        BSA in m2.
    """
    return 0.007184 * weight_kg**0.425 * (100.0 * height_m) ** 0.725


def ibw_kg(height_m: float, sex: str) -> float:
    """Ideal body weight [IBW]_.

    ``IBW = 48.0 + 1.06 (H_cm - 152)`` for men, ``45.5 + 0.91 (H_cm - 152)`` for women.

    Parameters
    ----------
    height_m
        Height H in m.
    sex
        ``"M"`` or ``"F"``.

    Returns
    -------
    float
        IBW in kg (not capped; :func:`suv_factor` caps it at the body weight by default).
    """
    s = _check_sex(sex, "IBW")
    h_cm = 100.0 * height_m
    if s == "M":
        return 48.0 + 1.06 * (h_cm - 152.0)
    return 45.5 + 0.91 * (h_cm - 152.0)


# ---------------------------------------------------------------------------- header parsing
_TM_RE = re.compile(r"(\d{2})(?::?(\d{2})(?::?(\d{2})(?:\.(\d{1,6}))?)?)?")
_DT_RE = re.compile(r"(\d{4})(\d{2})(\d{2})(\d{2})?(\d{2})?(\d{2})?(?:\.(\d{1,6}))?([+-]\d{4})?")


def _parse_tm(value: str) -> _dt.time | None:
    m = _TM_RE.fullmatch(value.strip())
    if m is None:
        return None
    hh, mm, ss, frac = m.groups()
    try:
        return _dt.time(int(hh), int(mm or 0), int(ss or 0), int((frac or "0").ljust(6, "0")[:6]))
    except ValueError:
        return None


def _parse_dt(value: str) -> _dt.datetime | None:
    """Parse DICOM DT ``YYYYMMDDHHMMSS.FFFFFF[&ZZXX]`` (offset dropped: local time)."""
    m = _DT_RE.fullmatch(value.strip())
    if m is None:
        return None
    y, mo, d, hh, mi, ss, frac, _tz = m.groups()
    try:
        return _dt.datetime(
            int(y),
            int(mo),
            int(d),
            int(hh or 0),
            int(mi or 0),
            int(ss or 0),
            int((frac or "0").ljust(6, "0")[:6]),
        )
    except ValueError:
        return None


def _parse_da(value: str) -> _dt.date | None:
    v = value.strip().replace(".", "")
    if not re.fullmatch(r"\d{8}", v):
        return None
    try:
        return _dt.date(int(v[:4]), int(v[4:6]), int(v[6:8]))
    except ValueError:
        return None


def _combine(da: str | None, tm: str | None) -> _dt.datetime | None:
    if not da or not tm:
        return None
    d = _parse_da(str(da))
    t = _parse_tm(str(tm))
    if d is None or t is None:
        return None
    return _dt.datetime.combine(d, t)


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bytes):
        return value.decode("ascii", "replace").strip("\x00 ")
    return str(value).strip()


def _num(value: Any) -> float | None:
    t = _text(value)
    if not t:
        return None
    try:
        v = float(t.split("\\")[0])
    except ValueError:
        return None
    return v if math.isfinite(v) else None


def _private(ds: Dataset, group: int, creator: str, offset: int) -> tuple[Any, str, str] | None:
    """Value of a private element: (value, "(gggg,eeee)", note) or None.

    The block is found through its private creator; files without the creator element
    (some exports and test objects) are read at the usual block 0x10, with a note.
    """
    creators = {
        int(t) & 0xFF: ds[t].value
        for t in ds.keys()  # noqa: SIM118 - the tags, not the elements
        if int(t) >> 16 == group and 0x10 <= int(t) & 0xFFFF <= 0xFF
    }
    for block, name in creators.items():
        if _text(name).upper() == creator.upper():
            t = (group << 16) | (block << 8) | offset
            if t in ds and _text(ds[t].value):
                return ds[t].value, f"({group:04X},{(block << 8) | offset:04X})", ""
            return None
    if not creators:
        t = (group << 16) | 0x1000 | offset
        if t in ds and _text(ds[t].value):
            return (
                ds[t].value,
                f"({group:04X},{0x1000 | offset:04X})",
                f"private creator {creator!r} absent; read at block 0x10",
            )
    return None


@dataclass(frozen=True)
class _Rec:
    """The quantification-relevant header values of one image."""

    key: tuple[str, int]
    path: Path
    modality: str
    units: str
    suv_type: str
    decay_correction: str
    corrected: tuple[str, ...]
    series_dt: _dt.datetime | None
    acq_dt: _dt.datetime | None
    frame_ref_ms: float | None
    frame_dur_ms: float | None
    inj_dt_text: str
    inj_tm_text: str
    dose: float | None
    half_life: float | None
    n_radiopharm: int
    nuclide_text: str
    weight: float | None
    height: float | None
    sex: str
    ge_dt: tuple[_dt.datetime | None, str, str] | None
    philips_suv: tuple[float | None, str, str] | None
    philips_act: tuple[float | None, str, str] | None
    series_date: str
    malformed_timing: tuple[str, ...] = ()


#: The records of the last series read, keyed by its files' paths, sizes and mtimes:
#: loading a series as Bq/mL and then as SUV (what a measurement does) reads the headers
#: once.
_LAST_RECORDS: list[tuple[tuple[Any, ...], list[_Rec]]] = []


def _read_records(images: Sequence[_Image]) -> list[_Rec]:
    """The record of every image, in ``images`` order (each file's header read once; the
    last series' records are reused while its files are unchanged)."""
    try:
        key = tuple(
            (str(im.path), im.frame, st.st_size, st.st_mtime_ns)
            for im, st in ((im, im.path.stat()) for im in images)
        )
    except OSError:
        key = None  # _read_headers raises the error naming the file
    last = _LAST_RECORDS[0] if _LAST_RECORDS else None  # one read: threads may replace it
    if key is not None and last is not None and last[0] == key:
        return list(last[1])
    recs = _read_headers(images)
    if key is not None:
        _LAST_RECORDS[:] = [(key, recs)]
    return list(recs)


def _read_headers(images: Sequence[_Image]) -> list[_Rec]:
    """Read the header of every file once; one record per image, in ``images`` order."""
    datasets: dict[Path, Dataset] = {}
    recs = []
    with _quiet_pydicom():
        for im in images:
            ds = datasets.get(im.path)
            if ds is None:
                try:
                    ds = pydicom.dcmread(im.path, stop_before_pixels=True, force=True)
                except (OSError, InvalidDicomError) as exc:
                    raise DicomReadError(
                        f"cannot read the header again ({exc})",
                        files=[im.path],
                        hint="was the export changed since it was scanned?",
                    ) from exc
                datasets[im.path] = ds
            recs.append(_record(ds, im))
    return recs


def _record(ds: Dataset, im: _Image) -> _Rec:
    rp_seq = ds.get("RadiopharmaceuticalInformationSequence") or []
    rp = rp_seq[0] if len(rp_seq) else Dataset()
    code = rp.get("RadionuclideCodeSequence") or []
    nuclide_text = " ".join(
        [_text(code[0].get("CodeMeaning")), _text(code[0].get("CodeValue"))] if len(code) else []
    )
    nuclide_text += " " + _text(rp.get("Radiopharmaceutical")) + " " + _text(rp.get("Radionuclide"))
    series_date = _text(ds.get("SeriesDate")) or _text(ds.get("StudyDate"))
    malformed: list[str] = []  # timing values present but unreadable: never skipped silently

    def timing(parsed: Any, text: str, tag: str) -> Any:
        if parsed is None and text.strip():
            malformed.append(f"{tag} {text.strip()!r}")
        return parsed

    acq_dt: _dt.datetime | None = None
    dur_text = _text(ds.get("ActualFrameDuration"))
    frame_dur: float | None = timing(_num(dur_text), dur_text, "ActualFrameDuration (0018,1242)")
    if im.n_frames > 1 or "PerFrameFunctionalGroupsSequence" in ds:
        pf = ds.get("PerFrameFunctionalGroupsSequence") or []
        if im.frame < len(pf):
            fc = pf[im.frame].get("FrameContentSequence") or []
            if len(fc):
                text = _text(fc[0].get("FrameAcquisitionDateTime"))
                acq_dt = timing(_parse_dt(text), text, "FrameAcquisitionDateTime (0018,9074)")
                frame_dur = _num(fc[0].get("FrameAcquisitionDuration")) or frame_dur
    if acq_dt is None:
        text = _text(ds.get("AcquisitionDateTime"))
        if text:
            acq_dt = timing(_parse_dt(text), text, "AcquisitionDateTime (0008,002A)")
        else:
            date = _text(ds.get("AcquisitionDate")) or series_date
            text = _text(ds.get("AcquisitionTime"))
            acq_dt = timing(
                _combine(date, text) if text else None,
                f"{date} {text}" if text else "",
                "AcquisitionDate/AcquisitionTime (0008,0022/0032)",
            )
    series_tm = _text(ds.get("SeriesTime"))
    series_dt = timing(
        _combine(series_date, series_tm) if series_tm else None,
        f"{series_date} {series_tm}" if series_tm else "",
        "SeriesDate/SeriesTime (0008,0021/0031)",
    )
    ref_text = _text(ds.get("FrameReferenceTime"))
    frame_ref = timing(_num(ref_text), ref_text, "FrameReferenceTime (0054,1300)")
    ge = _private(ds, 0x0009, _GE_PET_CREATOR, 0x0D)
    ph_suv = _private(ds, 0x7053, _PHILIPS_CREATOR, 0x00)
    ph_act = _private(ds, 0x7053, _PHILIPS_CREATOR, 0x09)
    corrected = ds.get("CorrectedImage")
    if corrected is None:
        corr: tuple[str, ...] = ()
    elif isinstance(corrected, str | bytes):
        corr = (_text(corrected).upper(),)
    else:
        corr = tuple(_text(c).upper() for c in corrected)
    return _Rec(
        key=(im.sop_instance_uid, im.frame),
        path=im.path,
        modality=_text(ds.get("Modality")),
        units=_text(ds.get("Units")).upper(),
        suv_type=_text(ds.get("SUVType")).upper(),
        decay_correction=_text(ds.get("DecayCorrection")).upper(),
        corrected=corr,
        series_dt=series_dt,
        acq_dt=acq_dt,
        frame_ref_ms=frame_ref,
        frame_dur_ms=frame_dur,
        inj_dt_text=_text(rp.get("RadiopharmaceuticalStartDateTime")),
        inj_tm_text=_text(rp.get("RadiopharmaceuticalStartTime")),
        dose=_num(rp.get("RadionuclideTotalDose")),
        half_life=_num(rp.get("RadionuclideHalfLife")),
        n_radiopharm=len(rp_seq),
        nuclide_text=nuclide_text.strip(),
        weight=_num(ds.get("PatientWeight")),
        height=_num(ds.get("PatientSize")),
        sex=_text(ds.get("PatientSex")).upper(),
        ge_dt=(
            (timing(_parse_dt(_text(ge[0])), _text(ge[0]), f"GE scan datetime {ge[1]}"), *ge[1:])
            if ge
            else None
        ),
        philips_suv=(_num(ph_suv[0]), ph_suv[1], ph_suv[2]) if ph_suv else None,
        philips_act=(_num(ph_act[0]), ph_act[1], ph_act[2]) if ph_act else None,
        series_date=series_date,
        malformed_timing=tuple(malformed),
    )


def _same(recs: Sequence[_Rec], get: Callable[[_Rec], Any], tag: str) -> Any:
    """The value every image has for ``tag``; ContradictoryQuantityError if they differ."""
    first = get(recs[0])
    for r in recs[1:]:
        v = get(r)
        if v != first:
            raise ContradictoryQuantityError(
                f"{tag} differs between images of one series: {first!r} in {recs[0].path.name} "
                f"but {v!r} in {r.path.name}",
                files=[recs[0].path, r.path],
                tag=tag,
                hint="a series must be quantified with one value; split or fix the export, "
                "or pass the value as an override",
            )
    return first


def _header_note(recs: Sequence[_Rec], get: Callable[[_Rec], Any]) -> str:
    """Describe the header value(s) an override replaces (several when they differ)."""
    values = list(dict.fromkeys(get(r) for r in recs))
    if len(values) == 1:
        return f"header value {values[0]!r}"
    return f"header values differ between images: {', '.join(repr(v) for v in values)}"


def _override(
    recs: Sequence[_Rec],
    inp: _Inputs,
    value: _T | None,
    get: Callable[[_Rec], Any],
    name: str,
    tag: str,
    unit: str | None,
) -> _T | None:
    """``value`` if the user gave it (recorded, with the header value(s) it replaces)."""
    if value is not None:
        inp.add(name, tag, value, unit, "override", _header_note(recs, get))
    return value


def identify_nuclide(text: str) -> str | None:
    """Name of the radionuclide (a :data:`HALF_LIFE_TABLE_S` key) mentioned in ``text``.

    Reads forms such as ``"^18^Fluorine"``, ``"177 Lutetium"``, ``"Ga-68"``, ``"68Ga-DOTATATE"``,
    ``"Tc-99m"`` and ``"FDG"``; None if no known nuclide is named.
    """
    tokens = set(re.findall(r"\d+m?|[a-z]+", text.lower()))
    if "fdg" in tokens or "fluorodeoxyglucose" in tokens:
        return "F-18"
    for name, (symbol, element) in _ELEMENTS.items():
        mass = name.split("-")[1].lower()
        if mass in tokens and (symbol in tokens or element in tokens):
            return name
    return None


# ---------------------------------------------------------------------------- computation
class _Inputs:
    """Collects :class:`SUVInput` records and warnings while a factor is computed."""

    def __init__(self) -> None:
        self.items: list[SUVInput] = []
        self.warnings: list[str] = []

    def add(
        self,
        name: str,
        tag: str | None,
        value: Any,
        unit: str | None,
        source: str,
        note: str = "",
    ) -> None:
        if isinstance(value, _dt.datetime):
            value = value.isoformat()
        item = SUVInput(name, tag, value, unit, source, note)
        if item not in self.items:  # a value used twice (two normalisers) is listed once
            self.items.append(item)

    def warn(self, message: str) -> None:
        self.warnings.append(message)
        logger.warning("%s", message)


def _files(recs: Sequence[_Rec]) -> list[Path]:
    return list(dict.fromkeys(r.path for r in recs))


def _units(recs: Sequence[_Rec], opts: SUVOptions, inp: _Inputs) -> str:
    if opts.units:
        header = recs[0].units
        inp.add(
            "Units",
            "(0054,1001)",
            opts.units.upper(),
            None,
            "override",
            f"header value {header!r}" if header else "absent in the header",
        )
        return opts.units.upper()
    units = _same(recs, lambda r: r.units, "Units (0054,1001)")
    if not units:
        raise UnsupportedUnitsError(
            "Units (0054,1001) is absent: the pixel values have no stated unit",
            files=_files(recs)[:3],
            tag="Units (0054,1001)",
            hint="pass units='BQML' (CLI --units BQML) if the vendor documents the values as Bq/mL",
        )
    inp.add("Units", "(0054,1001)", units, None, "header")
    return str(units)


def _decay_correction(
    recs: Sequence[_Rec], opts: SUVOptions, inp: _Inputs, *, must_be_known: bool
) -> str:
    """DecayCorrection (0054,1102), recorded, and CorrectedImage checked against it.

    ``must_be_known``: the decay arithmetic needs START, ADMIN or NONE (a stored SUV
    does not).
    """
    dc = _same(recs, lambda r: r.decay_correction, "DecayCorrection (0054,1102)")
    if must_be_known and dc not in ("START", "ADMIN", "NONE"):
        raise MissingQuantityError(
            f"DecayCorrection (0054,1102) is {dc!r}; START, ADMIN or NONE expected",
            files=_files(recs)[:3],
            tag="DecayCorrection (0054,1102)",
            hint="the series cannot be quantified without knowing its decay correction",
        )
    inp.add("DecayCorrection", "(0054,1102)", dc, None, "header")
    _check_corrections(recs, dc, opts, inp)
    return str(dc)


def _check_corrections(
    recs: Sequence[_Rec], decay_correction: str, opts: SUVOptions, inp: _Inputs
) -> None:
    corrected = _same(recs, lambda r: r.corrected, "CorrectedImage (0028,0051)")
    inp.add("CorrectedImage", "(0028,0051)", list(corrected), None, "header")
    missing = []
    if "ATTN" not in corrected:
        missing.append("ATTN")
    has_decay = "DECY" in corrected or "DECAY" in corrected
    if decay_correction == "NONE":
        if has_decay:
            raise ContradictoryQuantityError(
                f"DecayCorrection (0054,1102) is NONE but CorrectedImage (0028,0051) "
                f"{list(corrected)} says DECY",
                files=_files(recs)[:3],
                tag="DecayCorrection (0054,1102)",
                hint="check with the vendor which is right; this series cannot be quantified "
                "as it stands",
            )
    elif not has_decay:
        missing.append("DECY")
    if not missing:
        return
    if opts.accept_corrections:
        inp.warn(
            f"CorrectedImage (0028,0051) {list(corrected)} lacks {', '.join(missing)}; "
            f"accepted: {opts.accept_corrections}"
        )
        inp.add(
            "accept_corrections",
            None,
            opts.accept_corrections,
            None,
            "override",
            f"CorrectedImage lacks {', '.join(missing)}",
        )
        return
    raise UncorrectedImageError(
        f"CorrectedImage (0028,0051) is {list(corrected)}: it lacks {', '.join(missing)}, so "
        "the values are not quantitative",
        files=_files(recs)[:3],
        tag="CorrectedImage (0028,0051)",
        hint="if the images are corrected nonetheless, pass accept_corrections='<reason>' "
        "(CLI --accept-corrections REASON); the reason is recorded",
    )


def _half_life(recs: Sequence[_Rec], opts: SUVOptions, inp: _Inputs) -> float:
    half_life = _override(
        recs,
        inp,
        opts.half_life_s,
        lambda r: r.half_life,
        "RadionuclideHalfLife",
        "(0018,1075)",
        "s",
    )
    if half_life is not None:
        return float(half_life)
    header = _same(recs, lambda r: r.half_life, "RadionuclideHalfLife (0018,1075)")
    if header is not None and header > 0:
        inp.add("RadionuclideHalfLife", "(0018,1075)", float(header), "s", "header")
        return float(header)
    nuclide = identify_nuclide(recs[0].nuclide_text)
    if nuclide is None:
        raise MissingQuantityError(
            f"RadionuclideHalfLife (0018,1075) is {header!r} and the radionuclide "
            f"({recs[0].nuclide_text!r}) is not one of {', '.join(HALF_LIFE_TABLE_S)}",
            files=_files(recs)[:3],
            tag="RadionuclideHalfLife (0018,1075)",
            hint="pass half_life_s= (CLI --half-life-s) with the nuclide's half-life",
        )
    t_half = HALF_LIFE_TABLE_S[nuclide]
    inp.warn(
        f"RadionuclideHalfLife (0018,1075) absent; {nuclide} half-life {t_half} s taken from "
        "the fallback table"
    )
    inp.add(
        "RadionuclideHalfLife",
        "(0018,1075)",
        t_half,
        "s",
        "fallback table",
        f"{nuclide} identified from {recs[0].nuclide_text!r}",
    )
    return t_half


def _injection(
    recs: Sequence[_Rec], t_scan: _dt.datetime, opts: SUVOptions, inp: _Inputs
) -> _dt.datetime:
    """Administration time; time-only values are put on the scan's date (or the day before)."""
    if opts.injection_datetime is not None:
        t = opts.injection_datetime
        assert isinstance(t, _dt.datetime)  # parsed by SUVOptions
        inp.add(
            "RadiopharmaceuticalStartDateTime",
            "(0018,1078)",
            t,
            None,
            "override",
            "DateTime "
            + _header_note(recs, lambda r: r.inj_dt_text)
            + "; Time "
            + _header_note(recs, lambda r: r.inj_tm_text),
        )
        return t
    inj_dt = _same(recs, lambda r: r.inj_dt_text, "RadiopharmaceuticalStartDateTime (0018,1078)")
    inj_tm = _same(recs, lambda r: r.inj_tm_text, "RadiopharmaceuticalStartTime (0018,1072)")
    if inj_dt:
        t_dt = _parse_dt(inj_dt)
        if t_dt is None or len(inj_dt.split(".")[0]) < 12:
            raise MissingQuantityError(
                f"RadiopharmaceuticalStartDateTime (0018,1078) {inj_dt!r} is not a full "
                "date and time",
                files=_files(recs)[:3],
                tag="RadiopharmaceuticalStartDateTime (0018,1078)",
                hint="pass injection_datetime= (CLI --injection-datetime YYYY-MM-DDTHH:MM:SS)",
            )
        inp.add("RadiopharmaceuticalStartDateTime", "(0018,1078)", t_dt, None, "header")
        return t_dt
    if not inj_tm:
        raise MissingQuantityError(
            "neither RadiopharmaceuticalStartDateTime (0018,1078) nor "
            "RadiopharmaceuticalStartTime (0018,1072) is present: the administration time "
            "is unknown",
            files=_files(recs)[:3],
            tag="RadiopharmaceuticalStartTime (0018,1072)",
            hint="pass injection_datetime= (CLI --injection-datetime YYYY-MM-DDTHH:MM:SS)",
        )
    tm = _parse_tm(inj_tm)
    day = _parse_da(recs[0].series_date) if recs[0].series_date else None
    if tm is None or day is None:
        raise MissingQuantityError(
            f"RadiopharmaceuticalStartTime (0018,1072) {inj_tm!r} with SeriesDate "
            f"{recs[0].series_date!r} does not give a date and time",
            files=_files(recs)[:3],
            tag="RadiopharmaceuticalStartTime (0018,1072)",
            hint="pass injection_datetime= (CLI --injection-datetime YYYY-MM-DDTHH:MM:SS)",
        )
    t = _dt.datetime.combine(day, tm)
    note = "time only; date from SeriesDate (0008,0021)"
    if t > t_scan:
        t -= _dt.timedelta(days=1)
        note = (
            "time only and later than the scan on the SeriesDate: injected the day before "
            "(scan crosses midnight)"
        )
    inp.add("RadiopharmaceuticalStartTime", "(0018,1072)", t, None, "header", note)
    return t


def _dose(recs: Sequence[_Rec], opts: SUVOptions, inp: _Inputs) -> float:
    if recs[0].n_radiopharm > 1:
        inp.warn(
            f"RadiopharmaceuticalInformationSequence has {recs[0].n_radiopharm} items; the "
            "first is used"
        )
    dose = _override(
        recs, inp, opts.dose_bq, lambda r: r.dose, "RadionuclideTotalDose", "(0018,1074)", "Bq"
    )
    if dose is not None:
        return float(dose)
    header = _same(recs, lambda r: r.dose, "RadionuclideTotalDose (0018,1074)")
    if header is None or header <= 0:
        raise MissingQuantityError(
            f"RadionuclideTotalDose (0018,1074) is {header!r}: the administered activity is "
            "unknown",
            files=_files(recs)[:3],
            tag="RadionuclideTotalDose (0018,1074)",
            hint="pass dose_bq= (CLI --dose-bq) from the injection record",
        )
    if header < opts.dose_mbq_below:
        dose = header * 1e6
        inp.warn(
            f"RadionuclideTotalDose (0018,1074) {header:g} is below {opts.dose_mbq_below:g}: "
            f"taken as MBq, i.e. {dose:.6g} Bq"
        )
        inp.add(
            "RadionuclideTotalDose",
            "(0018,1074)",
            dose,
            "Bq",
            "header",
            f"stored as {header:g}, read as MBq and converted",
        )
        return dose
    inp.add("RadionuclideTotalDose", "(0018,1074)", float(header), "Bq", "header")
    return float(header)


def _frame_factor(lam: float, dur_s: float) -> float:
    """lT / (1 - exp(-lT)): mean activity over a frame of length T -> activity at its start."""
    x = lam * dur_s
    if x < 1e-8:
        return 1.0 + x / 2.0
    return x / -math.expm1(-x)


def _frame_reference_times(recs: Sequence[_Rec], lam: float) -> list[_dt.datetime] | None:
    """Per image ``t_acq + ln(lT/(1-exp(-lT)))/l - FrameReferenceTime`` [ONC]_, or None."""
    out = []
    for r in recs:
        if r.acq_dt is None or r.frame_ref_ms is None or not r.frame_dur_ms:
            return None
        dur_s = r.frame_dur_ms / 1000.0
        offset_s = math.log(_frame_factor(lam, dur_s)) / lam - r.frame_ref_ms / 1000.0
        out.append(r.acq_dt + _dt.timedelta(seconds=offset_s))
    return out


def _reference_time(
    recs: Sequence[_Rec], lam: float | None, opts: SUVOptions, inp: _Inputs
) -> tuple[_dt.datetime, str]:
    """The decay reference time t_ref and the rule that chose it (see SUVOptions)."""
    bad = [(r.path, m) for r in recs for m in r.malformed_timing]
    if bad:
        raise MissingQuantityError(
            f"unreadable timing value(s): {'; '.join(sorted({m for _, m in bad}))}; the "
            "decay reference time cannot be established",
            files=list(dict.fromkeys(p for p, _ in bad))[:6],
            tag=bad[0][1].split(" '")[0],
            hint="fix the export's timing tags (DICOM DA YYYYMMDD, TM HHMMSS.FFFFFF, DT "
            "YYYYMMDDHHMMSS.FFFFFF)",
        )
    acq = [r.acq_dt for r in recs if r.acq_dt is not None]
    earliest = min(acq) if acq else None
    series_dt = _same(recs, lambda r: r.series_dt, "SeriesDate/SeriesTime (0008,0021/0031)")
    rule = opts.reference_time

    def frame_based(required: bool) -> _dt.datetime | None:
        if lam is None:
            if required:
                raise MissingQuantityError(
                    "reference_time='frame' needs the half-life: RadionuclideHalfLife "
                    "(0018,1075) is absent",
                    files=_files(recs)[:3],
                    tag="RadionuclideHalfLife (0018,1075)",
                    hint="pass half_life_s= (CLI --half-life-s)",
                )
            return None
        times = _frame_reference_times(recs, lam)
        if times is None:
            if required:
                raise MissingQuantityError(
                    "reference_time='frame' needs AcquisitionDate/Time (0008,0022/0032), "
                    "FrameReferenceTime (0054,1300) and ActualFrameDuration (0018,1242) on "
                    "every image",
                    files=_files(recs)[:3],
                    tag="FrameReferenceTime (0054,1300)",
                    hint="use reference_time='qiba-frame' (the default)",
                )
            return None
        spread = (max(times) - min(times)).total_seconds()
        if spread > opts.reference_spread_tol_s:
            msg = (
                f"the frame-timing reference time varies by {spread:.1f} s over the images "
                f"(more than {opts.reference_spread_tol_s:g} s)"
            )
            if required:
                raise ContradictoryQuantityError(
                    msg,
                    files=_files(recs)[:3],
                    tag="FrameReferenceTime (0054,1300)",
                    hint="use reference_time='qiba-frame' (the default)",
                )
            inp.warn(msg + "; frame timing not used")
            return None
        t = min(times)
        inp.add(
            "FrameReferenceTime",
            "(0054,1300)",
            sorted({r.frame_ref_ms for r in recs if r.frame_ref_ms is not None}),
            "ms",
            "header",
            "with ActualFrameDuration (0018,1242) and AcquisitionTime",
        )
        return t

    if rule == "series":
        if series_dt is None:
            raise MissingQuantityError(
                "reference_time='series' needs SeriesDate and SeriesTime (0008,0021/0031)",
                files=_files(recs)[:3],
                tag="SeriesTime (0008,0031)",
                hint="use reference_time='qiba-frame' (the default)",
            )
        inp.add("SeriesDateTime", "(0008,0021/0031)", series_dt, None, "header")
        return series_dt, "series"
    if rule == "acquisition":
        if earliest is None:
            raise MissingQuantityError(
                "reference_time='acquisition' needs AcquisitionDate/Time (0008,0022/0032)",
                files=_files(recs)[:3],
                tag="AcquisitionTime (0008,0032)",
                hint="use reference_time='qiba-frame' (the default)",
            )
        inp.add("AcquisitionDateTime (earliest)", "(0008,0022/0032)", earliest, None, "header")
        return earliest, "earliest-acquisition"
    if rule == "frame":
        t = frame_based(required=True)
        if t is None:  # frame_based(required=True) raises instead; kept for -O runs
            raise MissingQuantityError("no frame-timing reference time", tag="FrameReferenceTime")
        return t, "frame-timing"

    # QIBA order
    if series_dt is not None and (earliest is None or series_dt <= earliest):
        inp.add(
            "SeriesDateTime",
            "(0008,0021/0031)",
            series_dt,
            None,
            "header",
            "not later than the earliest acquisition" if earliest else "no acquisition time",
        )
        return series_dt, "series"
    if series_dt is not None:
        inp.add(
            "SeriesDateTime",
            "(0008,0021/0031)",
            series_dt,
            None,
            "header",
            "not used: later than the earliest acquisition (a post-processed series?)",
        )
    ge = _same(recs, lambda r: r.ge_dt, "GE private scan datetime (0009,xx0D)")
    if ge is not None and ge[0] is not None:
        inp.add("GE PETD scan datetime", ge[1], ge[0], None, "header", ge[2])
        return ge[0], "ge-private"
    if rule == "qiba-frame":
        t = frame_based(required=False)
        if t is not None:
            return t, "frame-timing"
    if earliest is None:
        raise MissingQuantityError(
            "no decay reference time: SeriesDate/Time (0008,0021/0031) and "
            "AcquisitionDate/Time (0008,0022/0032) are absent",
            files=_files(recs)[:3],
            tag="AcquisitionTime (0008,0032)",
            hint="the series cannot be decay-corrected; re-export it with its timing tags",
        )
    inp.add("AcquisitionDateTime (earliest)", "(0008,0022/0032)", earliest, None, "header")
    return earliest, "earliest-acquisition"


@dataclass
class _Timing:
    decay_correction: str
    t_ref: _dt.datetime | None
    rule: str | None
    t_adm: _dt.datetime | None
    half_life: float | None
    to_admin: list[float]  # per image: activity as stored -> activity at administration


def _timing(recs: Sequence[_Rec], opts: SUVOptions, inp: _Inputs, *, need_admin: bool) -> _Timing:
    """Decay correction state; with ``need_admin`` the per-image factors to t_adm."""
    dc = _decay_correction(recs, opts, inp, must_be_known=True)
    n = len(recs)
    if not need_admin:
        # values kept as stored: the timing is reported, not used, so its absence is
        # a warning here (suv_factor and decay_to != "stored" raise instead)
        hl: float | None = None
        try:
            hl = _half_life(recs, opts, inp)
            t_ref, rule = _reference_time(recs, _LN2 / hl, opts, inp)
        except MissingQuantityError as exc:
            inp.warn(f"decay reference time not reported: {exc.message}")
            return _Timing(dc, None, None, None, hl, [1.0] * n)
        return _Timing(dc, t_ref, rule, None, hl, [1.0] * n)
    half_life = _half_life(recs, opts, inp)
    lam = _LN2 / half_life
    t_ref, rule = _reference_time(recs, lam, opts, inp)
    t_adm = _injection(recs, t_ref, opts, inp)
    acq = [r.acq_dt for r in recs if r.acq_dt is not None]
    if acq and t_adm > min(acq):
        raise ContradictoryQuantityError(
            f"the administration time {t_adm.isoformat()} is after the earliest acquisition "
            f"{min(acq).isoformat()}",
            files=_files(recs)[:3],
            tag="RadiopharmaceuticalStartDateTime (0018,1078)",
            hint="check the injection record and pass injection_datetime= "
            "(CLI --injection-datetime) if the header is wrong",
        )
    elapsed = (t_ref - t_adm).total_seconds()
    if elapsed < 0:
        raise ContradictoryQuantityError(
            f"the decay reference time {t_ref.isoformat()} ({rule}) is before the "
            f"administration time {t_adm.isoformat()}",
            files=_files(recs)[:3],
            tag="RadiopharmaceuticalStartDateTime (0018,1078)",
            hint="check the injection record and pass injection_datetime= "
            "(CLI --injection-datetime) if the header is wrong",
        )
    if elapsed > 10 * half_life:
        inp.warn(
            f"{elapsed / 3600:.1f} h between administration and scan is more than 10 "
            "half-lives: check the injection date"
        )
    if dc == "START":
        factors = [2.0 ** (elapsed / half_life)] * n
    elif dc == "ADMIN":
        factors = [1.0] * n
    else:  # NONE: each frame from its mean activity back to the administration [ONC]
        factors = []
        for r in recs:
            if r.acq_dt is None or not r.frame_dur_ms:
                raise MissingQuantityError(
                    "DecayCorrection NONE needs AcquisitionDate/Time (0008,0022/0032) and "
                    "ActualFrameDuration (0018,1242) on every image to correct each frame",
                    files=[r.path],
                    tag="ActualFrameDuration (0018,1242)",
                    hint="re-export the series with its timing tags (or decay-corrected)",
                )
            dt_s = (r.acq_dt - t_adm).total_seconds()
            factors.append(_frame_factor(lam, r.frame_dur_ms / 1000.0) * math.exp(lam * dt_s))
        inp.add(
            "ActualFrameDuration",
            "(0018,1242)",
            sorted({r.frame_dur_ms for r in recs if r.frame_dur_ms}),
            "ms",
            "header",
            "DecayCorrection NONE: each frame corrected to the administration",
        )
    return _Timing(dc, t_ref, rule, t_adm, half_life, factors)


def _activity_scale(
    recs: Sequence[_Rec], units: str, inp: _Inputs, *, purpose: str
) -> tuple[str, list[float]]:
    """Per-image factor from the loaded values to Bq/mL (BQML or Philips CNTS)."""
    if units == "BQML":
        return "bqml", [1.0] * len(recs)
    if units == "CNTS":
        facs = [r.philips_act for r in recs]
        if all(f is not None and f[0] for f in facs):
            vals = [float(f[0]) for f in facs if f is not None and f[0] is not None]
            f0 = facs[0]
            assert f0 is not None
            inp.add(
                "ActivityConcentrationScaleFactor",
                f0[1],
                vals[0] if _common(vals) is not None else sorted(set(vals)),
                "Bq/mL per count",
                "header",
                f0[2],
            )
            return "philips-activity-scale", vals
        raise UnsupportedUnitsError(
            f"Units CNTS without a Philips ActivityConcentrationScaleFactor (7053,xx09) on "
            f"every image: {purpose} cannot be computed",
            files=_files(recs)[:3],
            tag="Units (0054,1001)",
            hint="counts are not quantitative without the vendor's scale factor",
        )
    raise UnsupportedUnitsError(
        f"Units (0054,1001) is {units!r}: not an activity concentration ({purpose} needs "
        "BQML, or CNTS with the Philips activity scale factor)",
        files=_files(recs)[:3],
        tag="Units (0054,1001)",
        hint="GML and CM2ML are SUVs already: use suv_factor()/--suv instead",
    )


def _options(options: SUVOptions | None, overrides: Mapping[str, Any]) -> SUVOptions:
    if options is None:
        return SUVOptions(**overrides)
    return dataclasses.replace(options, **overrides) if overrides else options


def _check_pet(series: Series) -> None:
    if series.modality not in QUANTITATIVE_MODALITIES:
        raise UnsupportedUnitsError(
            f"stack {series.uid} is {series.modality!r}, not PET (PT) or SPECT (NM)",
            tag="Modality (0008,0060)",
            hint="select the PET series (netvolume scan lists them)",
        )


def activity_factor(
    series: Series,
    *,
    decay_to: Literal["stored", "administration", "reference"] = "stored",
    options: SUVOptions | None = None,
    **overrides: Any,
) -> ActivityFactor:
    """Factor from the loaded values of a PET/SPECT series to activity concentration (Bq/mL).

    Parameters
    ----------
    series
        A PT or NM stack from :func:`netvolume.io.dicom.scan`.
    decay_to
        ``"stored"``: keep the decay correction of the file (START: to t_ref, ADMIN: to
        the administration, NONE: none). ``"administration"``: decay-correct to the
        administration time. ``"reference"``: decay-correct to the reference time t_ref
        (the activity present at the start of the scan).
    options, **overrides
        :class:`SUVOptions`, or its fields as keyword arguments.

    Returns
    -------
    ActivityFactor

    Raises
    ------
    QuantificationError
        A subclass naming the tags: missing, contradictory, unsupported units, uncorrected.
    """
    _check_pet(series)
    opts = _options(options, overrides)
    recs = _read_records(series.images)
    inp = _Inputs()
    units = _units(recs, opts, inp)
    method, scale = _activity_scale(recs, units, inp, purpose="activity concentration")
    timing = _timing(recs, opts, inp, need_admin=decay_to != "stored")
    dc = timing.decay_correction
    if decay_to == "stored":
        factors = scale
        decayed_to = _DECAYED_TO[dc]
    elif decay_to == "administration":
        factors = [s * g for s, g in zip(scale, timing.to_admin, strict=True)]
        decayed_to = "administration"
    elif decay_to == "reference":
        assert timing.t_ref is not None and timing.t_adm is not None
        assert timing.half_life is not None
        back = 2.0 ** (-(timing.t_ref - timing.t_adm).total_seconds() / timing.half_life)
        factors = [s * g * back for s, g in zip(scale, timing.to_admin, strict=True)]
        decayed_to = "reference"
    else:
        raise ValueError(
            f"decay_to must be 'stored', 'administration' or 'reference'; got {decay_to!r}"
        )
    return ActivityFactor(
        units_in=units,
        method=method,
        decay_correction=dc,
        decayed_to=decayed_to,
        reference_datetime=timing.t_ref.isoformat() if timing.t_ref else None,
        reference_rule=timing.rule,
        injection_datetime=timing.t_adm.isoformat() if timing.t_adm else None,
        half_life_s=timing.half_life,
        image_keys=tuple(r.key for r in recs),
        image_factors=tuple(factors),
        inputs=tuple(inp.items),
        warnings=tuple(inp.warnings),
    )


def _patient(
    recs: Sequence[_Rec], opts: SUVOptions, inp: _Inputs, *, weight: bool, height: bool, sex: bool
) -> tuple[float | None, float | None, str | None]:
    w = h = s = None
    if weight:
        w = _override(
            recs, inp, opts.weight_kg, lambda r: r.weight, "PatientWeight", "(0010,1030)", "kg"
        )
        header_w = (
            None if w is not None else _same(recs, lambda r: r.weight, "PatientWeight (0010,1030)")
        )
        if w is not None:
            w = float(w)
        elif header_w is None or header_w <= 0:
            raise MissingQuantityError(
                f"PatientWeight (0010,1030) is {header_w!r}: the SUV needs the body weight",
                files=_files(recs)[:3],
                tag="PatientWeight (0010,1030)",
                hint="pass weight_kg= (CLI --weight-kg) from the patient record",
            )
        elif header_w > 400:
            raise ContradictoryQuantityError(
                f"PatientWeight (0010,1030) is {header_w:g}: not a weight in kg (grams?)",
                files=_files(recs)[:3],
                tag="PatientWeight (0010,1030)",
                hint="pass weight_kg= (CLI --weight-kg) with the weight in kg",
            )
        else:
            w = float(header_w)
            inp.add("PatientWeight", "(0010,1030)", w, "kg", "header")
    if height:
        h = _override(
            recs, inp, opts.height_m, lambda r: r.height, "PatientSize", "(0010,1020)", "m"
        )
        header_h = (
            None if h is not None else _same(recs, lambda r: r.height, "PatientSize (0010,1020)")
        )
        if h is not None:
            h = float(h)
        elif header_h is None or header_h <= 0:
            raise MissingQuantityError(
                f"PatientSize (0010,1020) is {header_h!r}: this normalisation needs the height",
                files=_files(recs)[:3],
                tag="PatientSize (0010,1020)",
                hint="pass height_m= (CLI --height-m), or use --suv bw",
            )
        elif 100 <= header_h <= 250:
            h = header_h / 100.0
            inp.warn(f"PatientSize (0010,1020) {header_h:g} taken as cm: {h:g} m")
            inp.add(
                "PatientSize",
                "(0010,1020)",
                h,
                "m",
                "header",
                f"stored as {header_h:g}, read as cm and converted",
            )
        elif not 0.3 <= header_h <= 2.5:
            raise ContradictoryQuantityError(
                f"PatientSize (0010,1020) is {header_h:g}: not a height in m",
                files=_files(recs)[:3],
                tag="PatientSize (0010,1020)",
                hint="pass height_m= (CLI --height-m) with the height in m",
            )
        else:
            h = float(header_h)
            inp.add("PatientSize", "(0010,1020)", h, "m", "header")
    if sex:
        override = opts.sex.upper() if opts.sex is not None else None
        if override == "O" and opts.sex_other == "error":
            _check_sex(override, "this normalisation (sex_other='error')")
        s = _override(recs, inp, override, lambda r: r.sex, "PatientSex", "(0010,0040)", None)
        if s is None:
            header_s = _same(recs, lambda r: r.sex, "PatientSex (0010,0040)")
            if header_s == "O" and opts.sex_other == "average":
                s = "O"
                inp.warn(
                    "PatientSex (0010,0040) is O (other): the mean of the male and female "
                    "formulas is used"
                )
                note = "other: mean of the male and female formulas (sex_other='average')"
            else:
                s = _check_sex(header_s, "this normalisation")
                note = ""
            inp.add("PatientSex", "(0010,0040)", s, None, "header", note)
    return w, h, s


def _by_sex(formula: Callable[[str], float], sex: str) -> float:
    """``formula(sex)``; for ``"O"`` the mean of the male and female values."""
    if sex == "O":
        return 0.5 * (formula("M") + formula("F"))
    return formula(sex)


_FORMULA_TEXT = {
    ("ibw", "M"): "IBW = 48.0 + 1.06 (H_cm - 152)",
    ("ibw", "F"): "IBW = 45.5 + 0.91 (H_cm - 152)",
    ("lbm-janma", "M"): "Janmahasatian: 9270 W / (6680 + 216 BMI)",
    ("lbm-janma", "F"): "Janmahasatian: 9270 W / (8780 + 244 BMI)",
    ("lbm-james", "M"): "James: 1.10 W - 128 (W/H_cm)^2",
    ("lbm-james", "F"): "James: 1.07 W - 148 (W/H_cm)^2",
    ("lbm-james120", "M"): "James: 1.10 W - 120 (W/H_cm)^2",
    ("lbm-james120", "F"): "James: 1.07 W - 148 (W/H_cm)^2",
}


def _formula_text(norm: str, sex: str) -> str:
    if sex == "O":
        return f"mean of ({_FORMULA_TEXT[norm, 'M']}) and ({_FORMULA_TEXT[norm, 'F']})"
    return _FORMULA_TEXT[norm, sex]


def _normaliser(
    norm: str,
    recs: Sequence[_Rec],
    opts: SUVOptions,
    inp: _Inputs,
) -> tuple[float, float, str, float | None, float | None, str | None]:
    """(N in g or cm2, N as reported, its unit, weight, height, sex) for ``norm``."""
    if norm == "bw":
        w, _, _ = _patient(recs, opts, inp, weight=True, height=False, sex=False)
        assert w is not None
        return w * 1000.0, w, "kg", w, None, None
    if norm == "bsa":
        w, h, _ = _patient(recs, opts, inp, weight=True, height=True, sex=False)
        assert w is not None and h is not None
        bsa = bsa_dubois_m2(w, h)
        inp.add("BSA", None, bsa, "m2", "derived", "Du Bois: 0.007184 W^0.425 H_cm^0.725")
        return bsa * 1e4, bsa, "m2", w, h, None
    if norm == "ibw":
        w, h, s = _patient(recs, opts, inp, weight=opts.ibw_cap_at_weight, height=True, sex=True)
        assert h is not None and s is not None
        height = h
        ibw = _by_sex(lambda x: ibw_kg(height, x), s)
        note = _formula_text(norm, s)
        if w is not None and ibw > w:
            note += f"; {ibw:.4g} kg capped at the body weight"
            ibw = w
        if ibw <= 0:
            raise ContradictoryQuantityError(
                f"the ideal body weight for height {h:g} m is {ibw:.3g} kg",
                files=_files(recs)[:3],
                tag="PatientSize (0010,1020)",
                hint="IBW is not defined for this height; use another normalisation",
            )
        inp.add("IBW", None, ibw, "kg", "derived", note)
        return ibw * 1000.0, ibw, "kg", w, h, s
    w, h, s = _patient(recs, opts, inp, weight=True, height=True, sex=True)
    assert w is not None and h is not None and s is not None
    weight, height = w, h
    if norm == "lbm-janma":
        lbm = _by_sex(lambda x: lbm_janmahasatian_kg(weight, height, x), s)
    else:
        c = 120.0 if norm == "lbm-james120" else 128.0
        lbm = _by_sex(lambda x: lbm_james_kg(weight, height, x, male_coeff=c), s)
        for x in ("M", "F") if s == "O" else (s,):
            coeff, a = (c, 1.10) if x == "M" else (148.0, 1.07)
            if a - 2 * coeff * w / (100 * h) ** 2 < 0:
                inp.warn(
                    f"James' LBM decreases with weight above BMI ~{a * 1e4 / (2 * coeff):.0f} "
                    f"(here {w / h**2:.0f}): prefer lbm-janma for this patient"
                )
                break
    if lbm <= 0:
        raise ContradictoryQuantityError(
            f"lean body mass {lbm:.3g} kg for weight {w:g} kg and height {h:g} m",
            files=_files(recs)[:3],
            tag="PatientWeight (0010,1030)",
            hint="check weight and height; use lbm-janma or bw",
        )
    inp.add("LBM", None, lbm, "kg", "derived", _formula_text(norm, s))
    return lbm * 1000.0, lbm, "kg", w, h, s


def suv_factor(
    series: Series,
    normalisation: str = "bw",
    *,
    options: SUVOptions | None = None,
    **overrides: Any,
) -> SUVFactor:
    """Factor from the loaded values of a PET/SPECT series to an SUV, from headers only.

    ``SUV = A * N / D`` with A the activity concentration (Bq/mL) decay-corrected to the
    reference time, D = D_adm * 2**(-(t_ref - t_adm) / T1/2) for DecayCorrection START
    (D_adm for ADMIN; for NONE each frame is corrected to the administration instead,
    ``A * lT / (1 - exp(-lT)) * exp(l (t_acq - t_adm))``, l = ln 2 / T1/2, T the frame
    duration [ONC]_) and N the normaliser: body weight, lean body mass or ideal body
    weight in g, or body surface area in cm2 [QIBA]_ [DICOM]_.

    Parameters
    ----------
    series
        A PT or NM stack from :func:`netvolume.io.dicom.scan`.
    normalisation
        ``"bw"`` (default), ``"lbm-james"``, ``"lbm-janma"``, ``"bsa"``, ``"ibw"`` or
        ``"lbm-james120"``.
    options, **overrides
        :class:`SUVOptions`, or its fields as keyword arguments (``weight_kg=``...).

    Returns
    -------
    SUVFactor
        The factor (per image when it varies) with every input it used.

    Raises
    ------
    QuantificationError
        A subclass naming the tags: missing, contradictory, unsupported units, uncorrected.
    """
    _check_pet(series)
    if normalisation not in _NORM_INFO:
        raise ValueError(
            f"normalisation must be one of {', '.join(_NORM_INFO)}; got {normalisation!r}"
        )
    opts = _options(options, overrides)
    recs = _read_records(series.images)
    inp = _Inputs()
    units = _units(recs, opts, inp)
    if units in ("GML", "CM2ML"):
        return _stored_suv(recs, units, normalisation, opts, inp)
    if units == "CNTS" and all(r.philips_suv is not None and r.philips_suv[0] for r in recs):
        return _philips_suv(recs, units, normalisation, opts, inp)
    return _activity_suv(recs, units, normalisation, opts, inp)


def _result(
    recs: Sequence[_Rec],
    normalisation: str,
    method: str,
    units: str,
    factors: Sequence[float],
    opts: SUVOptions,
    inp: _Inputs,
    *,
    decay_correction: str,
    **fields: Any,
) -> SUVFactor:
    """Build the :class:`SUVFactor`; fields not given (not used by the route) are None."""
    suv_type, unit, _ = _NORM_INFO[normalisation]
    values: dict[str, Any] = dict.fromkeys(
        (
            "reference_datetime",
            "reference_rule",
            "injection_datetime",
            "elapsed_s",
            "half_life_s",
            "dose_administered_bq",
            "dose_at_reference_bq",
            "weight_kg",
            "height_m",
            "sex",
            "normaliser",
            "normaliser_unit",
            "activity",
        )
    )
    values.update(fields)
    return SUVFactor(
        normalisation=normalisation,
        suv_type=suv_type,
        unit=unit,
        method=method,
        units_in=units,
        decay_correction=decay_correction,
        image_keys=tuple(r.key for r in recs),
        image_factors=tuple(float(f) for f in factors),
        inputs=tuple(inp.items),
        warnings=tuple(inp.warnings),
        options=opts,
        **values,
    )


def _convert_between(
    recs: Sequence[_Rec],
    stored_norm: str,
    normalisation: str,
    opts: SUVOptions,
    inp: _Inputs,
) -> tuple[float, dict[str, Any]]:
    """Ratio N_normalisation / N_stored, and the patient fields used for it."""
    if stored_norm == normalisation:
        return 1.0, {}
    n_g, n_rep, n_unit, w, h, s = _normaliser(normalisation, recs, opts, inp)
    n_stored, *_ = _normaliser(stored_norm, recs, opts, inp)
    ratio = n_g / n_stored
    inp.add(
        "normalisation conversion",
        None,
        ratio,
        None,
        "derived",
        f"SUV{normalisation} = SUV{stored_norm} * N_{normalisation} / N_{stored_norm}",
    )
    return ratio, {
        "normaliser": n_rep,
        "normaliser_unit": n_unit,
        "weight_kg": w,
        "height_m": h,
        "sex": s,
    }


def _stored_suv(
    recs: Sequence[_Rec], units: str, normalisation: str, opts: SUVOptions, inp: _Inputs
) -> SUVFactor:
    """Units GML / CM2ML: the values are an SUV already, of SUVType (0054,1006)."""
    stored_type = _same(recs, lambda r: r.suv_type, "SUVType (0054,1006)")
    if units == "CM2ML":
        if stored_type not in ("", "BSA"):
            raise ContradictoryQuantityError(
                f"Units CM2ML (an SUVbsa) with SUVType (0054,1006) {stored_type!r}",
                files=_files(recs)[:3],
                tag="SUVType (0054,1006)",
                hint="the header contradicts itself; ask the vendor which is right",
            )
        stored_type = "BSA"
    elif stored_type == "":
        stored_type = "BW"
        inp.warn("Units GML with SUVType (0054,1006) empty: taken as SUVbw")
    elif stored_type == "BSA":
        raise ContradictoryQuantityError(
            "Units GML with SUVType BSA (an SUVbsa is in CM2ML)",
            files=_files(recs)[:3],
            tag="SUVType (0054,1006)",
            hint="the header contradicts itself; ask the vendor which is right",
        )
    if stored_type not in _SUVTYPE_TO_NORM:
        raise UnsupportedUnitsError(
            f"SUVType (0054,1006) {stored_type!r} is not one of {', '.join(_SUVTYPE_TO_NORM)}",
            files=_files(recs)[:3],
            tag="SUVType (0054,1006)",
            hint="the stored SUV's normalisation is unknown",
        )
    inp.add("SUVType", "(0054,1006)", stored_type, None, "header")
    dc = _decay_correction(recs, opts, inp, must_be_known=False)
    ratio, fields = _convert_between(recs, _SUVTYPE_TO_NORM[stored_type], normalisation, opts, inp)
    return _result(
        recs,
        normalisation,
        "stored-suv",
        units,
        [ratio] * len(recs),
        opts,
        inp,
        decay_correction=dc,
        **fields,
    )


def _philips_suv(
    recs: Sequence[_Rec], units: str, normalisation: str, opts: SUVOptions, inp: _Inputs
) -> SUVFactor:
    """Philips CNTS with SUVScaleFactor (7053,xx00): value * factor is the SUVbw [QIBA]_."""
    vals = [float(r.philips_suv[0]) for r in recs if r.philips_suv and r.philips_suv[0]]
    f0 = recs[0].philips_suv
    assert f0 is not None
    inp.add(
        "SUVScaleFactor",
        f0[1],
        vals[0] if _common(vals) is not None else sorted(set(vals)),
        "g/mL per count",
        "header",
        (f0[2] + "; " if f0[2] else "") + "value * factor = SUVbw",
    )
    dc = _decay_correction(recs, opts, inp, must_be_known=False)
    ratio, fields = _convert_between(recs, "bw", normalisation, opts, inp)
    return _result(
        recs,
        normalisation,
        "philips-suv-scale",
        units,
        [v * ratio for v in vals],
        opts,
        inp,
        decay_correction=dc,
        **fields,
    )


def _activity_suv(
    recs: Sequence[_Rec], units: str, normalisation: str, opts: SUVOptions, inp: _Inputs
) -> SUVFactor:
    """BQML (or CNTS with the activity scale factor): SUV = A * N / D [QIBA]_."""
    act_method, scale = _activity_scale(recs, units, inp, purpose="the SUV")
    timing = _timing(recs, opts, inp, need_admin=True)
    assert timing.t_ref is not None and timing.t_adm is not None
    assert timing.half_life is not None
    dose_adm = _dose(recs, opts, inp)
    elapsed = (timing.t_ref - timing.t_adm).total_seconds()
    if timing.decay_correction == "START":
        dose_ref = dose_adm * 2.0 ** (-elapsed / timing.half_life)
    else:
        dose_ref = dose_adm
    n_g, n_rep, n_unit, w, h, s = _normaliser(normalisation, recs, opts, inp)
    # SUV = value * scale (-> Bq/mL) * to_admin (-> decay-corrected to t_adm) * N / D_adm
    factors = [sc * g * n_g / dose_adm for sc, g in zip(scale, timing.to_admin, strict=True)]
    keys = tuple(r.key for r in recs)
    activity = ActivityFactor(
        units_in=units,
        method=act_method,
        decay_correction=timing.decay_correction,
        decayed_to=_DECAYED_TO[timing.decay_correction],
        reference_datetime=timing.t_ref.isoformat(),
        reference_rule=timing.rule,
        injection_datetime=timing.t_adm.isoformat(),
        half_life_s=timing.half_life,
        image_keys=keys,
        image_factors=tuple(scale),
        inputs=tuple(inp.items),
        warnings=tuple(inp.warnings),
    )
    return _result(
        recs,
        normalisation,
        "activity",
        units,
        factors,
        opts,
        inp,
        decay_correction=timing.decay_correction,
        reference_datetime=timing.t_ref.isoformat(),
        reference_rule=timing.rule,
        injection_datetime=timing.t_adm.isoformat(),
        elapsed_s=elapsed,
        half_life_s=timing.half_life,
        dose_administered_bq=dose_adm,
        dose_at_reference_bq=dose_ref,
        weight_kg=w,
        height_m=h,
        sex=s,
        normaliser=n_rep,
        normaliser_unit=n_unit,
        activity=activity,
    )


# ---------------------------------------------------------------------------- volumes
def _load_scaled(
    series: Series,
    load_options: Mapping[str, Any] | None,
    keys: Sequence[tuple[str, int]],
    factors: Sequence[float],
    *,
    units: str,
    note: str,
    **record: Any,
) -> Volume:
    """Load ``series`` and multiply each slice by the factor of its image (float32).

    The loader's image records give each slice's (SOPInstanceUID, frame), so per-image
    factors land on the right slice whatever the file order. ``record`` (the factor's
    audit record) goes into the provenance settings.
    """
    vol, images = _load_stack(series, **dict(load_options or {}))
    if len(images) != vol.shape[0]:
        raise QuantificationError(
            f"{vol.shape[0]} slices but {len(images)} image records: per-slice factors "
            "cannot be applied (a resampled stack?)",
            hint="please report this series",
        )
    by_key = dict(zip(keys, factors, strict=True))
    per_slice = np.array([by_key[(im.sop_instance_uid, im.frame)] for im in images])
    out = vol.array.astype(np.float32)
    out *= per_slice.astype(np.float32)[:, None, None]
    return Volume(
        out,
        vol.affine,
        frame_of_reference_uid=vol.frame_of_reference_uid,
        modality=vol.modality,
        units=units,
        provenance=vol.provenance.derive(note, **record),
    )


def load_activity(
    series: Series,
    *,
    decay_to: Literal["stored", "administration", "reference"] = "stored",
    options: SUVOptions | None = None,
    load_options: Mapping[str, Any] | None = None,
    **overrides: Any,
) -> Volume:
    """Load a PET/SPECT series as activity concentration in Bq/mL (float32).

    Parameters
    ----------
    series
        A PT or NM stack from :func:`netvolume.io.dicom.scan`.
    decay_to
        See :func:`activity_factor`.
    options, **overrides
        :class:`SUVOptions`, or its fields as keyword arguments.
    load_options
        Keyword arguments for :func:`netvolume.io.dicom.load` (tolerances).

    Returns
    -------
    Volume
        Units ``"Bq/mL"``; ``provenance.settings["activity"]`` holds the
        :class:`ActivityFactor` record.
    """
    fac = activity_factor(series, decay_to=decay_to, options=options, **overrides)
    return _load_scaled(
        series,
        load_options,
        fac.image_keys,
        fac.image_factors,
        units="Bq/mL",
        note=f"activity concentration in Bq/mL ({fac.method}, decay-corrected to {fac.decayed_to})",
        activity=fac.to_dict(),
    )


def load_suv(
    series: Series,
    normalisation: str = "bw",
    *,
    options: SUVOptions | None = None,
    load_options: Mapping[str, Any] | None = None,
    **overrides: Any,
) -> Volume:
    """Load a PET/SPECT series as SUV (float32), see :func:`suv_factor`.

    Parameters
    ----------
    series
        A PT or NM stack from :func:`netvolume.io.dicom.scan`.
    normalisation
        ``"bw"``, ``"lbm-james"``, ``"lbm-janma"``, ``"bsa"``, ``"ibw"`` or ``"lbm-james120"``.
    options, **overrides
        :class:`SUVOptions`, or its fields as keyword arguments.
    load_options
        Keyword arguments for :func:`netvolume.io.dicom.load` (tolerances).

    Returns
    -------
    Volume
        Units ``"SUVbw"``, ``"SUVlbm-james"``... (g/mL; cm2/mL for BSA);
        ``provenance.settings["suv"]`` holds the :class:`SUVFactor` record.
    """
    fac = suv_factor(series, normalisation, options=options, **overrides)
    return _load_scaled(
        series,
        load_options,
        fac.image_keys,
        fac.image_factors,
        units=fac.quantity,
        note=f"{fac.quantity} in {fac.unit} ({fac.method})",
        suv=fac.to_dict(),
    )


def suv_summary(series: Series) -> dict[str, Any]:
    """The SUV inputs of a PET/SPECT series as found in its headers, and its SUVbw factor.

    For ``netvolume scan --json``: never raises on quantification problems; the reason
    an SUV cannot be computed is reported under ``"error"``.
    """
    recs = _read_records(series.images)
    r = recs[0]
    acq = [x.acq_dt for x in recs if x.acq_dt is not None]
    header: dict[str, Any] = {
        "Units": r.units or None,
        "SUVType": r.suv_type or None,
        "DecayCorrection": r.decay_correction or None,
        "CorrectedImage": list(r.corrected),
        "PatientWeight_kg": r.weight,
        "PatientSize_m": r.height,
        "PatientSex": r.sex or None,
        "RadionuclideTotalDose": r.dose,
        "RadionuclideHalfLife_s": r.half_life,
        "radionuclide": identify_nuclide(r.nuclide_text),
        "RadiopharmaceuticalStartDateTime": r.inj_dt_text or None,
        "RadiopharmaceuticalStartTime": r.inj_tm_text or None,
        "SeriesDateTime": r.series_dt.isoformat() if r.series_dt else None,
        "AcquisitionDateTime_earliest": min(acq).isoformat() if acq else None,
        "FrameReferenceTime_ms": r.frame_ref_ms,
        "ActualFrameDuration_ms": r.frame_dur_ms,
        "GE_scan_datetime": r.ge_dt[0].isoformat() if r.ge_dt and r.ge_dt[0] else None,
        "Philips_SUVScaleFactor": r.philips_suv[0] if r.philips_suv else None,
        "Philips_ActivityConcentrationScaleFactor": r.philips_act[0] if r.philips_act else None,
    }
    out: dict[str, Any] = {"header": header}
    try:
        fac = suv_factor(series, "bw")
    except QuantificationError as exc:
        out.update(suv_bw_factor=None, error=str(exc), error_type=type(exc).__name__)
        return out
    out.update(
        suv_bw_factor=fac.factor,
        suv_bw_factor_range=[min(fac.image_factors), max(fac.image_factors)],
        method=fac.method,
        reference_rule=fac.reference_rule,
        inputs=[i.to_dict() for i in fac.inputs],
        warnings=list(fac.warnings),
        error=None,
    )
    return out

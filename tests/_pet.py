"""Helper for the PET/SPECT SUV tests: a small synthetic PT series with chosen headers.

:func:`write_pet_series` writes a seeded 6 x 8 x 8 int16 series with
:func:`netvolume.io.dicom_write.write_series` (modality PT, RescaleIntercept 0) and then
rewrites every file with pydicom to set the attributes that activity concentration and
SUV depend on (see ``../shared/docs/DOMAIN.md`` section 5).

Conventions of the keyword arguments:

* ``None`` omits the attribute (``weight_kg=None`` writes no PatientWeight).
* A ``list`` gives one value per slice, in array order (``acquisition_times=[...]``,
  ``dose_bq=[...]``); any other value (tuples included) is the same on every slice.
* ``private`` maps ``(group, element)`` to ``(VR, value)``; a private creator is just
  another entry, e.g. ``{(0x7053, 0x0010): ("LO", "Philips PET Private Group"),
  (0x7053, 0x1000): ("DS", "0.5")}``. Leave the creator out to write an element without
  one.
* ``remove`` lists top-level keywords deleted last (after everything else was set).

Everything is deterministic: the pixel values come from ``numpy.random.default_rng(seed)``
and UIDs / file names from ``write_series(seed=seed)``.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pydicom
from pydicom.dataset import Dataset
from pydicom.tag import Tag
from pydicom.valuerep import format_number_as_ds

from netvolume.io.dicom_write import write_series

__all__ = [
    "GE_CREATOR",
    "PHILIPS_CREATOR",
    "SHAPE",
    "PrivateElements",
    "ds_text",
    "ge_private",
    "philips_private",
    "stored_array",
    "write_pet_series",
]

#: Shape of the default array (slices, rows, columns).
SHAPE = (6, 8, 8)
#: ``(group, element) -> (VR, value)`` of private elements (creators included).
PrivateElements = dict[tuple[int, int], tuple[str, str]]
#: Private creators read by netvolume.io.pet.
GE_CREATOR = "GEMS_PETD_01"
PHILIPS_CREATOR = "Philips PET Private Group"


def ds_text(value: float | np.integer | np.floating) -> str:
    """A DICOM Decimal String for ``value`` (the shortest round-tripping form if it fits)."""
    x = float(value)
    text = repr(x)
    if text.endswith(".0"):
        text = text[:-2]
    return text if len(text) <= 16 else format_number_as_ds(x)


def stored_array(seed: int = 0, shape: tuple[int, int, int] = SHAPE) -> np.ndarray:
    """The default stored pixel values of :func:`write_pet_series` for ``seed``."""
    rng = np.random.default_rng(seed)
    return rng.integers(0, 1000, size=shape).astype(np.int16)


def ge_private(scan_datetime: str, *, block: int = 0x10, creator: bool = True) -> PrivateElements:
    """Private elements of a GE PET scan datetime (0009,xx0D) in ``block``."""
    out: PrivateElements = {}
    if creator:
        out[(0x0009, block)] = ("LO", GE_CREATOR)
    out[(0x0009, (block << 8) | 0x0D)] = ("DT", scan_datetime)
    return out


def philips_private(
    *, suv_scale: float | None = None, activity_scale: float | None = None, creator: bool = True
) -> PrivateElements:
    """Private elements of Philips SUVScaleFactor (7053,1000) / activity scale (7053,1009)."""
    out: PrivateElements = {}
    if creator:
        out[(0x7053, 0x0010)] = ("LO", PHILIPS_CREATOR)
    if suv_scale is not None:
        out[(0x7053, 0x1000)] = ("DS", ds_text(suv_scale))
    if activity_scale is not None:
        out[(0x7053, 0x1009)] = ("DS", ds_text(activity_scale))
    return out


def _at(value: Any, k: int, n: int, name: str) -> Any:
    """``value[k]`` for a per-slice list, else ``value``."""
    if isinstance(value, list):
        if len(value) != n:
            raise ValueError(f"{name} has {len(value)} values for {n} slices")
        return value[k]
    return value


def _set(ds: Dataset, keyword: str, value: Any) -> None:
    """Set ``keyword`` (numbers as DS/IS text), or delete it when ``value`` is None."""
    if value is None:
        if keyword in ds:
            delattr(ds, keyword)
        return
    if isinstance(value, bool):
        raise TypeError(f"{keyword}: bool is not a DICOM value")
    if isinstance(value, int | float | np.integer | np.floating):
        value = ds_text(value)
    setattr(ds, keyword, value)


def write_pet_series(
    folder: str | os.PathLike[str],
    array: np.ndarray | None = None,
    *,
    modality: str = "PT",
    slope: float | Sequence[float] = 1.0,
    units: str | None = "BQML",
    suv_type: str | None = None,
    decay_correction: str | None = "START",
    corrected_image: Sequence[str] | str | None = ("ATTN", "DECY"),
    weight_kg: Any = 70.0,
    height_m: Any = 1.75,
    sex: Any = "M",
    dose_bq: Any = 370e6,
    half_life_s: Any = 6586.2,
    nuclide: Any = "^18^Fluorine",
    nuclide_code: str | None = None,
    radiopharmaceutical: str | None = None,
    injection_datetime: Any = "20250101100000.000000",
    injection_time: Any = "100000.000000",
    series_date: str | None = "20250101",
    series_time: str | None = "110000.000000",
    acquisition_date: Any = None,
    acquisition_times: Any = None,
    frame_duration_ms: Any = 300000,
    frame_reference_time_ms: Any = None,
    private: Mapping[tuple[int, int], tuple[str, Any]] | None = None,
    remove: Iterable[str] = (),
    seed: int = 0,
    **kw: Any,
) -> list[Path]:
    """Write a synthetic PT series with the given quantification headers.

    Parameters
    ----------
    folder
        Output folder (created).
    array
        Stored values ``(slices, rows, columns)`` int16; :func:`stored_array` by default.
    modality
        Passed to ``write_series`` (``"CT"`` gives a non-PET series; the PET attributes
        are still written unless set to None).
    slope
        RescaleSlope, one value or one per slice.
    units, suv_type, decay_correction, corrected_image
        Units (0054,1001), SUVType (0054,1006), DecayCorrection (0054,1102),
        CorrectedImage (0028,0051).
    weight_kg, height_m, sex
        PatientWeight (0010,1030), PatientSize (0010,1020), PatientSex (0010,0040).
    dose_bq, half_life_s, nuclide, nuclide_code, radiopharmaceutical
        RadionuclideTotalDose, RadionuclideHalfLife, the CodeMeaning (and CodeValue) of
        RadionuclideCodeSequence, and Radiopharmaceutical, in the one item of
        RadiopharmaceuticalInformationSequence (0054,0016).
    injection_datetime, injection_time
        RadiopharmaceuticalStartDateTime (DT) and RadiopharmaceuticalStartTime (TM).
    series_date, series_time
        SeriesDate / SeriesTime (StudyDate follows SeriesDate).
    acquisition_date, acquisition_times
        AcquisitionDate / AcquisitionTime; default the series date and time.
    frame_duration_ms, frame_reference_time_ms
        ActualFrameDuration (0018,1242) and FrameReferenceTime (0054,1300).
    private, remove
        See the module docstring.
    seed
        Seed of the pixel values, UIDs and file names.
    **kw
        Passed to :func:`write_series`.

    Returns
    -------
    list of pathlib.Path
        The files, in array (slice) order.
    """
    arr = stored_array(seed) if array is None else np.asarray(array)
    n = int(arr.shape[0])
    kw.setdefault("spacing_mm", (3.0, 2.0, 2.0))
    kw.setdefault("origin_lps", (-8.0, -8.0, 0.0))
    paths = write_series(
        folder,
        arr,
        modality=modality,
        rescale_slope=slope,
        rescale_intercept=0.0,
        seed=seed,
        **kw,
    )
    if acquisition_date is None:
        acquisition_date = series_date
    if acquisition_times is None:
        acquisition_times = series_time
    for k, path in enumerate(paths):
        ds = pydicom.dcmread(path)

        def at(value: Any, name: str, k: int = k) -> Any:
            return _at(value, k, n, name)

        _set(ds, "Units", at(units, "units"))
        _set(ds, "SUVType", at(suv_type, "suv_type"))
        _set(ds, "DecayCorrection", at(decay_correction, "decay_correction"))
        ci = at(corrected_image, "corrected_image")
        _set(ds, "CorrectedImage", list(ci) if isinstance(ci, tuple) else ci)
        _set(ds, "PatientWeight", at(weight_kg, "weight_kg"))
        _set(ds, "PatientSize", at(height_m, "height_m"))
        _set(ds, "PatientSex", at(sex, "sex"))
        _set(ds, "StudyDate", series_date)
        _set(ds, "SeriesDate", series_date)
        _set(ds, "SeriesTime", series_time)
        _set(ds, "AcquisitionDate", at(acquisition_date, "acquisition_date"))
        _set(ds, "AcquisitionTime", at(acquisition_times, "acquisition_times"))
        dur = at(frame_duration_ms, "frame_duration_ms")
        _set(ds, "ActualFrameDuration", None if dur is None else str(int(dur)))
        _set(ds, "FrameReferenceTime", at(frame_reference_time_ms, "frame_reference_time_ms"))

        item = Dataset()
        _set(item, "Radiopharmaceutical", radiopharmaceutical)
        _set(item, "RadiopharmaceuticalStartTime", at(injection_time, "injection_time"))
        _set(item, "RadiopharmaceuticalStartDateTime", at(injection_datetime, "injection_dt"))
        _set(item, "RadionuclideTotalDose", at(dose_bq, "dose_bq"))
        _set(item, "RadionuclideHalfLife", at(half_life_s, "half_life_s"))
        meaning = at(nuclide, "nuclide")
        if meaning is not None or nuclide_code is not None:
            code = Dataset()
            _set(code, "CodeValue", nuclide_code or "")
            _set(code, "CodingSchemeDesignator", "SCT")
            _set(code, "CodeMeaning", meaning or "")
            item.RadionuclideCodeSequence = [code]
        ds.RadiopharmaceuticalInformationSequence = [item]

        for (group, element), (vr, value) in (private or {}).items():
            ds.add_new(Tag(group, element), vr, at(value, f"private {group:04X},{element:04X}"))
        for keyword in remove:
            if keyword in ds:
                delattr(ds, keyword)
        ds.save_as(path, enforce_file_format=True)
    return paths

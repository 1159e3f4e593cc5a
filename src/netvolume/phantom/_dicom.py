"""DICOM attributes of the phantom's CT and PET series (synthetic identities only).

The images are written by :func:`netvolume.io.dicom_write.write_series`; this module
supplies what makes them one patient's PET/CT visit: patient and study identity, dates
and times, the PET Isotope module with the full radiopharmaceutical sequence (so that
SUV must be computed from the header, as from a real export), per-slice bed timing with
FrameReferenceTime and DecayFactor, and the NM/PET patient orientation codes.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from pydicom.dataset import Dataset

from netvolume.io.dicom_write import write_series
from netvolume.phantom._render import Grid
from netvolume.phantom._study import GA68_HALF_LIFE_S, GA68_POSITRON_FRACTION, Scanner, Timing


def _da(t: dt.datetime | dt.date) -> str:
    return t.strftime("%Y%m%d")


def _tm(t: dt.datetime) -> str:
    return t.strftime("%H%M%S.%f")


def _code(value: str, scheme: str, meaning: str) -> Dataset:
    item = Dataset()
    item.CodeValue = value
    item.CodingSchemeDesignator = scheme
    item.CodeMeaning = meaning
    return item


def _common(
    identity: dict[str, Any], scanner: Scanner, when: dt.datetime, study_time: dt.datetime
) -> dict[str, Any]:
    """Patient, study, equipment and date attributes shared by the CT and the PET."""
    return {
        "PatientName": identity["patient_name"],
        "PatientID": identity["patient_id"],
        "PatientSex": identity["sex"],
        "PatientAge": f"{int(identity['age_years']):03d}Y",
        "PatientWeight": f"{identity['weight_kg']:.1f}",
        "PatientSize": f"{identity['height_cm'] / 100.0:.2f}",
        "StudyDate": _da(study_time),
        "StudyTime": _tm(study_time),
        "StudyID": identity["study_id"],
        "StudyDescription": "PET/CT Ga-68 DOTATATE (netvolume phantom)",
        "SeriesDate": _da(when),
        "SeriesTime": _tm(when),
        "ContentDate": _da(when),
        "ContentTime": _tm(when),
        "InstanceCreationDate": _da(study_time),
        "InstanceCreationTime": _tm(study_time),
        "BodyPartExamined": "ABDOMEN",
        "Manufacturer": "netvolume",
        "ManufacturerModelName": scanner.model,
        "StationName": f"PHANTOM_{scanner.name}",
        "DeviceSerialNumber": f"NV-{scanner.name}",
        "SoftwareVersions": identity["software"],
    }


def write_ct(
    folder: Path,
    stored: npt.NDArray[np.int16],
    grid: Grid,
    *,
    identity: dict[str, Any],
    scanner: Scanner,
    timing: Timing,
    uids: dict[str, str],
    seed: int,
) -> list[Path]:
    """Write the CT series (HU = stored - 1024)."""
    extra = _common(identity, scanner, timing.ct_start, timing.ct_start)
    extra.update(
        {
            "AcquisitionDate": _da(timing.ct_start),
            "AcquisitionTime": _tm(timing.ct_start),
            "ContrastBolusAgent": "IODINATED CONTRAST (PORTAL VENOUS PHASE)",
            "ConvolutionKernel": "STANDARD",
            "KVP": "120",
            "ProtocolName": "PET/CT portal venous",
        }
    )
    return write_series(
        folder,
        stored,
        spacing_mm=grid.spacing_mm,
        origin_lps=grid.origin_mm,
        modality="CT",
        rescale_slope=1.0,
        rescale_intercept=-1024.0,
        series_instance_uid=uids["ct_series"],
        study_instance_uid=uids["study"],
        frame_of_reference_uid=uids["frame_of_reference"],
        series_number=2,
        series_description=f"CT ABDOMEN PV {scanner.ct_slice_mm:g}mm",
        seed=seed,
        extra=extra,
    )


def _bed_starts(grid: Grid, timing: Timing, bed_length_mm: float) -> list[float]:
    """Seconds from the series start at which each slice's bed position began.

    Beds are acquired caudal to cranial, each ``bed_length_mm`` long.
    """
    z = grid.axis_mm(0)
    beds = np.floor((z - z.min()) / bed_length_mm).astype(int)
    return [float(b) * timing.bed_duration_s for b in beds]


def pet_slice_timing(
    grid: Grid, timing: Timing, half_life_s: float = GA68_HALF_LIFE_S, bed_length_mm: float = 160.0
) -> list[dict[str, Any]]:
    """Per-slice AcquisitionTime, FrameReferenceTime (ms) and DecayFactor.

    The images are decay-corrected to the series start (DecayCorrection START).
    A frame that starts ``dt`` after it and lasts ``T`` needs the factor
    ``DecayFactor = exp(lambda dt) * lambda T / (1 - exp(-lambda T))`` and has its
    reference time (when the mean activity equals the decayed activity) at
    ``FrameReferenceTime = dt + ln(lambda T / (1 - exp(-lambda T))) / lambda``, both
    relative to the series start (PS3.3 C.8.9.4.1.5 and C.8.9.4.1.6).
    """
    lam = np.log(2.0) / half_life_s
    dur = timing.bed_duration_s
    frame = lam * dur / (1.0 - np.exp(-lam * dur))
    out = []
    for start in _bed_starts(grid, timing, bed_length_mm):
        acq = timing.pet_start + dt.timedelta(seconds=start)
        out.append(
            {
                "AcquisitionDate": _da(acq),
                "AcquisitionTime": _tm(acq),
                "FrameReferenceTime": f"{(start + np.log(frame) / lam) * 1000.0:.3f}",
                "DecayFactor": f"{np.exp(lam * start) * frame:.8f}",
                "ActualFrameDuration": round(dur * 1000.0),
            }
        )
    return out


def write_pet(
    folder: Path,
    bqml: npt.NDArray[np.float32],
    grid: Grid,
    *,
    identity: dict[str, Any],
    scanner: Scanner,
    timing: Timing,
    uids: dict[str, str],
    seed: int,
) -> list[Path]:
    """Write the PET series: int16 with a per-slice RescaleSlope, Units BQML."""
    n = grid.shape[0]
    maxima = bqml.reshape(n, -1).max(axis=1).astype(np.float64)
    slopes = np.where(maxima > 0, maxima / 32000.0, 1.0)
    # round the slopes to what a DS holds, then quantise with the written value
    slopes = np.array([float(f"{s:.10g}") for s in slopes])
    stored = np.rint(bqml / slopes[:, None, None].astype(np.float32)).astype(np.int16)

    radiopharm = Dataset()
    radiopharm.Radiopharmaceutical = "Ga-68 DOTATATE"
    radiopharm.RadiopharmaceuticalStartDateTime = timing.injection.strftime("%Y%m%d%H%M%S.%f")
    radiopharm.RadiopharmaceuticalStartTime = _tm(timing.injection)
    radiopharm.RadionuclideTotalDose = f"{timing.injected_dose_bq:.6g}"
    radiopharm.RadionuclideHalfLife = f"{GA68_HALF_LIFE_S:g}"
    radiopharm.RadionuclidePositronFraction = f"{GA68_POSITRON_FRACTION:g}"
    radiopharm.RadionuclideCodeSequence = [_code("35337001", "SCT", "^68^Gallium")]
    radiopharm.RadiopharmaceuticalRoute = "Intravenous"
    orientation = _code("102538003", "SCT", "recumbent")
    orientation.PatientOrientationModifierCodeSequence = [_code("40199007", "SCT", "supine")]

    common = _common(identity, scanner, timing.pet_start, timing.ct_start)
    common.update(
        {
            "SeriesType": ["WHOLE BODY", "IMAGE"],
            "CorrectedImage": ["NORM", "DTIM", "ATTN", "SCAT", "DECY", "RAN"],
            "RandomsCorrectionMethod": "DLYD",
            "AttenuationCorrectionMethod": "CT-based",
            "ScatterCorrectionMethod": "single scatter simulation",
            "DecayCorrection": "START",
            "ReconstructionMethod": "OSEM 3i21s",
            "ConvolutionKernel": f"PSF{scanner.pet_fwhm_mm:g}MM",
            "RadiopharmaceuticalInformationSequence": [radiopharm],
            "PatientOrientationCodeSequence": [orientation],
            "PatientGantryRelationshipCodeSequence": [_code("102540008", "SCT", "headfirst")],
        }
    )
    return write_series(
        folder,
        stored,
        spacing_mm=grid.spacing_mm,
        origin_lps=grid.origin_mm,
        modality="PT",
        rescale_slope=[float(s) for s in slopes],
        rescale_intercept=0.0,
        series_instance_uid=uids["pet_series"],
        study_instance_uid=uids["study"],
        frame_of_reference_uid=uids["frame_of_reference"],
        series_number=3,
        series_description="PET Ga-68 DOTATATE AC",
        image_type=("ORIGINAL", "PRIMARY"),
        seed=seed,
        extra=common,
        per_slice_extra=pet_slice_timing(grid, timing),
    )

"""A small, standard-conformant writer of single-frame DICOM image series.

Used by the test suite, the benchmarks and the synthetic patient phantom to create DICOM
series with exactly known geometry and pixel values. It writes one single-frame instance
per slice (CT Image Storage, PET Image Storage or MR Image Storage) with a complete file
meta group and the attributes a loader needs: UIDs, ImagePositionPatient,
ImageOrientationPatient, PixelSpacing, SliceThickness, the Image Pixel module and the
rescale. No real patient data is ever written.

Everything is deterministic: UIDs are derived from ``seed`` (and the series identity) with
:func:`pydicom.uid.generate_uid`, and the default file names are a seeded shuffle of the
slice order, so that a loader that sorts by file name (instead of by position) is caught.

Example
-------
>>> import numpy as np
>>> from netvolume.io.dicom_write import write_series
>>> arr = np.zeros((4, 8, 8), dtype=np.int16)
>>> paths = write_series(tmp_folder, arr, spacing_mm=(2.5, 0.7, 0.7))  # doctest: +SKIP
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pydicom
import pydicom.uid
from pydicom.datadict import tag_for_keyword
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import UID
from pydicom.valuerep import format_number_as_ds

__all__ = ["SOP_CLASS_FOR_MODALITY", "write_series"]

#: SOP Class UID written for each supported modality.
SOP_CLASS_FOR_MODALITY: dict[str, str] = {
    "CT": pydicom.uid.CTImageStorage,
    "PT": pydicom.uid.PositronEmissionTomographyImageStorage,
    "MR": pydicom.uid.MRImageStorage,
}

#: Transfer syntaxes written natively (no compression); any other one is encoded with
#: :meth:`pydicom.dataset.Dataset.compress` (which needs the matching encoder installed).
_NATIVE_SYNTAXES = {
    pydicom.uid.ImplicitVRLittleEndian,
    pydicom.uid.ExplicitVRLittleEndian,
    pydicom.uid.ExplicitVRBigEndian,
    pydicom.uid.DeflatedExplicitVRLittleEndian,
}

_UID_PREFIX = "1.2.826.0.1.3680043.8.498."  # pydicom's UID root
_DATE = "20240101"
_TIME = "120000.000000"


def _ds(value: float) -> str:
    """Format a number as a DICOM Decimal String (at most 16 characters).

    The shortest round-tripping representation is used when it fits, so that values such
    as ``0.7`` are written as ``"0.7"`` rather than ``"0.70000000000000"``.
    """
    x = float(value)
    if not np.isfinite(x):
        raise ValueError(f"cannot write a non-finite number ({x!r}) as a DICOM DS")
    if x == 0.0:
        return "0"
    text = repr(x)
    if text.endswith(".0"):
        text = text[:-2]
    if len(text) <= 16:
        return text
    return format_number_as_ds(x)


def _uid(seed: int, *parts: object) -> str:
    """Return a deterministic UID derived from ``seed`` and ``parts``."""
    sources = ["netvolume.io.dicom_write", str(int(seed)), *(str(p) for p in parts)]
    return str(pydicom.uid.generate_uid(prefix=_UID_PREFIX, entropy_srcs=sources))


def _per_slice(value: float | Sequence[float], n: int, name: str) -> list[float]:
    """Broadcast a scalar (or check a sequence) to one value per slice."""
    if isinstance(value, int | float | np.integer | np.floating):
        return [float(value)] * n
    values = [float(v) for v in value]
    if len(values) != n:
        raise ValueError(f"{name} has {len(values)} values but the array has {n} slices")
    return values


def _default_file_names(n: int, seed: int, series_uid: str) -> list[str]:
    """Return ``n`` file names whose lexical order is a seeded shuffle of the slice order.

    A short hash of the series UID and the seed is part of each name so that several
    series (or several parts of one series written with different seeds) can be written
    into the same folder; the names of two series interleave when sorted.
    """
    rng = np.random.default_rng(seed)
    perm = rng.permutation(n)
    if n > 1 and np.all(perm == np.arange(n)):
        perm = perm[::-1]
    tag = hashlib.sha1(f"{series_uid}/{seed}".encode("ascii")).hexdigest()[:6]
    width = max(5, len(str(n)))
    return [f"IM{int(perm[k]):0{width}d}_{tag}.dcm" for k in range(n)]


def _normal(orientation: Sequence[float]) -> np.ndarray:
    """Return the unit slice normal (row cosine x column cosine) of an IOP."""
    iop = np.asarray(orientation, dtype=float)
    if iop.shape != (6,):
        raise ValueError(f"orientation must have 6 values (got {iop.shape})")
    row, col = iop[:3], iop[3:]
    if not (
        np.isclose(np.linalg.norm(row), 1.0, atol=1e-6)
        and np.isclose(np.linalg.norm(col), 1.0, atol=1e-6)
    ):
        raise ValueError(f"orientation direction cosines must be unit vectors (got {iop})")
    if abs(float(row @ col)) > 1e-6:
        raise ValueError(f"orientation direction cosines must be orthogonal (got {iop})")
    normal = np.cross(row, col)
    return normal / np.linalg.norm(normal)


def write_series(
    folder: str | os.PathLike[str],
    array: np.ndarray,
    *,
    spacing_mm: Sequence[float] = (1.0, 1.0, 1.0),
    origin_lps: Sequence[float] = (0.0, 0.0, 0.0),
    orientation: Sequence[float] = (1.0, 0.0, 0.0, 0.0, 1.0, 0.0),
    modality: str = "CT",
    rescale_slope: float | Sequence[float] = 1.0,
    rescale_intercept: float | Sequence[float] = -1024.0,
    series_instance_uid: str | None = None,
    study_instance_uid: str | None = None,
    frame_of_reference_uid: str | None = None,
    series_number: int = 1,
    series_description: str = "",
    positions: Sequence[Sequence[float]] | None = None,
    image_type: Sequence[str] = ("ORIGINAL", "PRIMARY", "AXIAL"),
    transfer_syntax: str = pydicom.uid.ExplicitVRLittleEndian,
    file_names: Sequence[str] | None = None,
    seed: int = 0,
    extra: Mapping[str, Any] | None = None,
    instance_numbers: Sequence[int] | None = None,
    per_slice_extra: Sequence[Mapping[str, Any]] | None = None,
) -> list[Path]:
    """Write a 3D array as a single-frame DICOM image series, one file per slice.

    Parameters
    ----------
    folder
        Output folder; created if missing. Existing files of the same name are replaced.
    array
        Stored pixel values, shape ``(slices, rows, columns)``, dtype ``int16`` or
        ``uint16`` (PixelRepresentation 1 or 0). Real-world values are
        ``stored * RescaleSlope + RescaleIntercept``.
    spacing_mm
        ``(slice spacing, row spacing, column spacing)`` in mm. Row spacing is
        PixelSpacing[0] (between rows), column spacing PixelSpacing[1]. The slice spacing
        is also written as SliceThickness.
    origin_lps
        ImagePositionPatient (LPS mm) of the first slice (``array[0]``).
    orientation
        ImageOrientationPatient: row direction cosine then column direction cosine.
    modality
        ``"CT"``, ``"PT"`` or ``"MR"``; chooses the SOP Class.
    rescale_slope, rescale_intercept
        RescaleSlope / RescaleIntercept, either one value for every slice or one value per
        slice (in array order).
    series_instance_uid, study_instance_uid, frame_of_reference_uid
        UIDs; derived deterministically from ``seed`` (and the series number, description
        and modality for the series UID) when not given.
    series_number
        SeriesNumber.
    series_description
        SeriesDescription.
    positions
        One ImagePositionPatient (3 values, LPS mm) per slice, overriding the regular
        placement ``origin + k * spacing_mm[0] * normal`` (normal = row x column cosine).
    image_type
        ImageType values.
    transfer_syntax
        Transfer syntax UID. Implicit/Explicit VR Little Endian, Explicit VR Big Endian and
        Deflated Explicit VR Little Endian are written natively; any other (RLE Lossless,
        JPEG-LS, JPEG 2000, ...) is encoded with :meth:`pydicom.dataset.Dataset.compress`
        and needs the matching encoder.
    file_names
        One file name per slice (in array order). By default the names are a seeded
        shuffle of the slice order (``IM#####_xxxxxx.dcm``), so sorting by name does not
        give the slice order.
    seed
        Seed of the UIDs and of the file-name shuffle.
    extra
        DICOM keyword -> value set on every dataset after all the others (so it can
        override them). A value of ``None`` removes the attribute (e.g. to write images
        without ImagePositionPatient).
    instance_numbers
        One InstanceNumber per slice (in array order); ``1..n`` in slice order by default.
    per_slice_extra
        One mapping per slice (in array order) like ``extra``, applied after it: values
        that differ between slices (PET AcquisitionTime, FrameReferenceTime, ...).

    Returns
    -------
    list of pathlib.Path
        The written files, in array (slice) order.

    Raises
    ------
    ValueError
        On an array of the wrong shape or dtype, an unknown modality or keyword, an
        invalid orientation, or per-slice arguments of the wrong length.

    Notes
    -----
    Each file is written to a temporary name in ``folder`` and then renamed with
    :func:`os.replace`, so a reader never sees a partially written file under its final
    name.
    """
    arr = np.asarray(array)
    if arr.ndim != 3:
        raise ValueError(f"array must be 3D (slices, rows, columns); got shape {arr.shape}")
    if arr.dtype not in (np.dtype(np.int16), np.dtype(np.uint16)):
        raise ValueError(f"array dtype must be int16 or uint16; got {arr.dtype}")
    n, rows, cols = (int(s) for s in arr.shape)
    if n < 1 or rows < 1 or cols < 1:
        raise ValueError(f"array must not be empty; got shape {arr.shape}")
    modality = modality.upper()
    if modality not in SOP_CLASS_FOR_MODALITY:
        raise ValueError(
            f"modality must be one of {sorted(SOP_CLASS_FOR_MODALITY)}; got {modality!r}"
        )
    sop_class = SOP_CLASS_FOR_MODALITY[modality]
    spacing = [float(s) for s in spacing_mm]
    if len(spacing) != 3 or min(spacing) <= 0:
        raise ValueError(f"spacing_mm must be 3 positive numbers; got {spacing_mm}")
    iop = [float(v) for v in orientation]
    normal = _normal(iop)
    origin = np.asarray(origin_lps, dtype=float)
    if origin.shape != (3,):
        raise ValueError(f"origin_lps must have 3 values; got {origin_lps}")

    if positions is None:
        ipps = [origin + k * spacing[0] * normal for k in range(n)]
    else:
        ipps = [np.asarray(p, dtype=float) for p in positions]
        if len(ipps) != n or any(p.shape != (3,) for p in ipps):
            raise ValueError(f"positions must be {n} 3-vectors (one per slice)")
    slopes = _per_slice(rescale_slope, n, "rescale_slope")
    intercepts = _per_slice(rescale_intercept, n, "rescale_intercept")
    if instance_numbers is None:
        numbers = list(range(1, n + 1))
    else:
        numbers = [int(v) for v in instance_numbers]
        if len(numbers) != n:
            raise ValueError(f"instance_numbers has {len(numbers)} values, expected {n}")

    extra = dict(extra or {})
    slice_extras = [dict(e) for e in per_slice_extra] if per_slice_extra is not None else None
    if slice_extras is not None and len(slice_extras) != n:
        raise ValueError(f"per_slice_extra has {len(slice_extras)} mappings, expected {n}")
    for keyword in [*extra, *(kw for e in slice_extras or [] for kw in e)]:
        if tag_for_keyword(keyword) is None:
            raise ValueError(f"extra: {keyword!r} is not a DICOM keyword")

    study_uid = study_instance_uid or _uid(seed, "study")
    for_uid = frame_of_reference_uid or _uid(seed, "frame-of-reference")
    series_uid = series_instance_uid or _uid(
        seed, "series", series_number, series_description, modality
    )
    if file_names is None:
        names = _default_file_names(n, seed, series_uid)
    else:
        names = [str(f) for f in file_names]
        if len(names) != n or len(set(names)) != n:
            raise ValueError(f"file_names must be {n} distinct names (one per slice)")

    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    pixel_repr = 1 if arr.dtype == np.dtype(np.int16) else 0
    native = transfer_syntax in _NATIVE_SYNTAXES
    big_endian = transfer_syntax == pydicom.uid.ExplicitVRBigEndian
    stored_dtype = arr.dtype.newbyteorder(">" if big_endian else "<")

    written: list[Path] = []
    for k in range(n):
        sop_uid = _uid(seed, "instance", series_uid, k)

        meta = FileMetaDataset()
        meta.MediaStorageSOPClassUID = UID(sop_class)
        meta.MediaStorageSOPInstanceUID = UID(sop_uid)
        meta.TransferSyntaxUID = UID(
            transfer_syntax if native else pydicom.uid.ExplicitVRLittleEndian
        )
        meta.ImplementationClassUID = pydicom.uid.PYDICOM_IMPLEMENTATION_UID
        meta.ImplementationVersionName = "NETVOLUME_WRITE"

        ds = Dataset()
        ds.file_meta = meta
        # SOP Common
        ds.SpecificCharacterSet = "ISO_IR 100"
        ds.SOPClassUID = sop_class
        ds.SOPInstanceUID = sop_uid
        ds.InstanceCreationDate = _DATE
        ds.InstanceCreationTime = _TIME
        # Patient (synthetic only)
        ds.PatientName = "NETVOLUME^PHANTOM"
        ds.PatientID = "NV-000"
        ds.PatientBirthDate = ""
        ds.PatientSex = "O"
        # General Study
        ds.StudyInstanceUID = study_uid
        ds.StudyDate = _DATE
        ds.StudyTime = _TIME
        ds.ReferringPhysicianName = ""
        ds.StudyID = "1"
        ds.AccessionNumber = ""
        ds.StudyDescription = "netvolume synthetic phantom"
        # General Series
        ds.Modality = modality
        ds.SeriesInstanceUID = series_uid
        ds.SeriesNumber = int(series_number)
        ds.SeriesDescription = series_description
        ds.SeriesDate = _DATE
        ds.SeriesTime = _TIME
        ds.BodyPartExamined = "ABDOMEN"  # unpaired: no Laterality (type 2C)
        ds.PatientPosition = "HFS"
        # Frame of Reference
        ds.FrameOfReferenceUID = for_uid
        ds.PositionReferenceIndicator = ""
        # General Equipment
        ds.Manufacturer = "netvolume"
        ds.ManufacturerModelName = "dicom_write"
        ds.SoftwareVersions = "netvolume"
        # General Image / Acquisition
        ds.ImageType = list(image_type)
        ds.InstanceNumber = numbers[k]
        ds.AcquisitionNumber = 1
        ds.ContentDate = _DATE
        ds.ContentTime = _TIME
        ds.AcquisitionDate = _DATE
        ds.AcquisitionTime = _TIME
        # Image Plane
        ipp = ipps[k]
        ds.ImagePositionPatient = [_ds(v) for v in ipp]
        ds.ImageOrientationPatient = [_ds(v) for v in iop]
        ds.PixelSpacing = [_ds(spacing[1]), _ds(spacing[2])]
        ds.SliceThickness = _ds(spacing[0])
        ds.SliceLocation = _ds(float(ipp @ normal))
        # Image Pixel
        ds.SamplesPerPixel = 1
        ds.PhotometricInterpretation = "MONOCHROME2"
        ds.Rows = rows
        ds.Columns = cols
        ds.BitsAllocated = 16
        ds.BitsStored = 16
        ds.HighBit = 15
        ds.PixelRepresentation = pixel_repr
        # Rescale (CT Image / PET Image / MR rescale)
        ds.RescaleSlope = _ds(slopes[k])
        ds.RescaleIntercept = _ds(intercepts[k])
        if modality == "CT":
            ds.RescaleType = "HU"
            ds.KVP = "120"
        elif modality == "PT":
            # PET Series, PET Isotope, NM/PET Patient Orientation and PET Image modules
            # (PS3.3 C.8.9): the type 1 and 2 attributes, so the files pass dciodvfy;
            # real timing and radiopharmaceutical values come in through ``extra``
            ds.Units = "BQML"
            ds.CountsSource = "EMISSION"
            ds.SeriesType = ["STATIC", "IMAGE"]
            ds.NumberOfSlices = n
            ds.CollimatorType = "NONE"
            ds.DecayCorrection = "START"
            ds.CorrectedImage = ["ATTN", "DECY"]
            ds.RadiopharmaceuticalInformationSequence = []
            ds.PatientOrientationCodeSequence = []
            ds.PatientGantryRelationshipCodeSequence = []
            ds.FrameReferenceTime = "0"
            ds.ActualFrameDuration = ""
            ds.DecayFactor = "1"
            ds.ImageIndex = k + 1
            del ds.PatientPosition  # not allowed beside PatientOrientationCodeSequence
        elif modality == "MR":
            ds.ScanningSequence = "GR"
            ds.SequenceVariant = "NONE"
            ds.ScanOptions = ""
            ds.MRAcquisitionType = "3D"
            ds.EchoTime = "2"
            ds.RepetitionTime = "5"
            ds.EchoTrainLength = 1
            ds.SpacingBetweenSlices = _ds(spacing[0])
        ds.PixelData = np.ascontiguousarray(arr[k], dtype=stored_dtype).tobytes()
        ds["PixelData"].VR = "OW"

        updates = {**extra, **(slice_extras[k] if slice_extras is not None else {})}
        for keyword, value in updates.items():
            if value is None:
                if keyword in ds:
                    delattr(ds, keyword)
            else:
                setattr(ds, keyword, value)

        if not native:
            ds.compress(
                transfer_syntax,
                np.ascontiguousarray(arr[k]),
                generate_instance_uid=False,
            )

        path = out / names[k]
        tmp = out / f".{names[k]}.{os.getpid()}.tmp"
        try:
            ds.save_as(tmp, enforce_file_format=True)
            os.replace(tmp, path)  # atomic rename
        finally:
            if tmp.exists():
                tmp.unlink()
        written.append(path)
    return written

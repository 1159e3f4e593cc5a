"""Test helper: write a valid, minimal DICOM RT Structure Set (RTSTRUCT) with pydicom.

Only what a reader of contours needs, and what the RT Structure Set IOD (PS3.3 A.19)
requires of a small synthetic object: the SOP Common, Patient, General Study, RT Series,
Structure Set, ROI Contour and RT ROI Observations modules. No real patient data.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pydicom.uid
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence as DicomSequence
from pydicom.uid import UID
from pydicom.valuerep import format_number_as_ds

__all__ = ["RTSTRUCT_SOP_CLASS", "Roi", "ds_value", "write_rtstruct"]

#: RT Structure Set Storage.
RTSTRUCT_SOP_CLASS = "1.2.840.10008.5.1.4.1.1.481.3"
#: Study Component Management SOP Class, the class RTReferencedStudySequence names.
_STUDY_COMPONENT_SOP_CLASS = "1.2.840.10008.3.1.2.3.2"
_UID_PREFIX = "1.2.826.0.1.3680043.8.498."

#: One ROI: (ROINumber, ROIName, [(ContourGeometricType, points (n, 3) LPS mm), ...]).
Roi = tuple[int, str, list[tuple[str, np.ndarray]]]


def ds_value(value: float) -> str:
    """Format a number as a valid DICOM Decimal String (at most 16 characters).

    Parameters
    ----------
    value
        A finite number.

    Returns
    -------
    str
        The shortest round-tripping text when it fits in 16 characters, else pydicom's
        16-character rendering.
    """
    x = float(value)
    if x == 0.0:
        return "0"
    text = repr(x)
    if text.endswith(".0"):
        text = text[:-2]
    return text if len(text) <= 16 else format_number_as_ds(x)


def _uid(seed: int, *parts: object) -> str:
    """A deterministic UID from ``seed`` and ``parts``.

    Parameters
    ----------
    seed
        Seed of the UID.
    parts
        More entropy sources.

    Returns
    -------
    str
        A UID under pydicom's root.
    """
    sources = ["tests._masks", str(int(seed)), *(str(p) for p in parts)]
    return str(pydicom.uid.generate_uid(prefix=_UID_PREFIX, entropy_srcs=sources))


def write_rtstruct(
    path: str | Path,
    *,
    frame_of_reference_uid: str,
    series_instance_uid: str,
    rois: Sequence[Roi],
    sop_instance_uid: str | None = None,
    study_instance_uid: str | None = None,
    seed: int = 0,
) -> Path:
    """Write an RTSTRUCT whose ROIs carry the given contours.

    Parameters
    ----------
    path
        Output file (its folder is created).
    frame_of_reference_uid
        FrameOfReferenceUID of the contours (ReferencedFrameOfReferenceSequence and every
        ROI's ReferencedFrameOfReferenceUID).
    series_instance_uid
        SeriesInstanceUID of the image series the contours were drawn on
        (RTReferencedSeriesSequence).
    rois
        ``(number, name, contours)`` per ROI; each contour is ``(geometric type, points)``
        with points ``(n, 3)`` in LPS mm; an empty array gives an empty ContourData.
    sop_instance_uid
        SOPInstanceUID; derived from ``seed`` when None.
    study_instance_uid
        StudyInstanceUID; derived from ``seed`` when None.
    seed
        Seed of the derived UIDs and of the ROI display colours.

    Returns
    -------
    pathlib.Path
        The written file.
    """
    rng = np.random.default_rng(seed)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    sop_uid = sop_instance_uid or _uid(seed, "rtstruct-instance")
    study_uid = study_instance_uid or _uid(seed, "study")

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = UID(RTSTRUCT_SOP_CLASS)
    meta.MediaStorageSOPInstanceUID = UID(sop_uid)
    meta.TransferSyntaxUID = pydicom.uid.ExplicitVRLittleEndian
    meta.ImplementationClassUID = pydicom.uid.PYDICOM_IMPLEMENTATION_UID

    ds = Dataset()
    ds.file_meta = meta
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.SOPClassUID = RTSTRUCT_SOP_CLASS
    ds.SOPInstanceUID = sop_uid
    ds.InstanceCreationDate = "20240101"
    ds.InstanceCreationTime = "120000"
    ds.PatientName = "NETVOLUME^PHANTOM"
    ds.PatientID = "NV-000"
    ds.PatientBirthDate = ""
    ds.PatientSex = "O"
    ds.StudyInstanceUID = study_uid
    ds.StudyDate = "20240101"
    ds.StudyTime = "120000"
    ds.ReferringPhysicianName = ""
    ds.StudyID = "1"
    ds.AccessionNumber = ""
    ds.Modality = "RTSTRUCT"
    ds.SeriesInstanceUID = _uid(seed, "rtstruct-series")
    ds.SeriesNumber = 99
    ds.OperatorsName = ""
    ds.Manufacturer = "netvolume tests"
    ds.InstanceNumber = 1
    ds.StructureSetLabel = "SYNTH"
    ds.StructureSetDate = "20240101"
    ds.StructureSetTime = "120000"

    series_item = Dataset()
    series_item.SeriesInstanceUID = series_instance_uid
    series_item.ContourImageSequence = DicomSequence()
    study_item = Dataset()
    study_item.ReferencedSOPClassUID = _STUDY_COMPONENT_SOP_CLASS
    study_item.ReferencedSOPInstanceUID = study_uid
    study_item.RTReferencedSeriesSequence = DicomSequence([series_item])
    frame_item = Dataset()
    frame_item.FrameOfReferenceUID = frame_of_reference_uid
    frame_item.RTReferencedStudySequence = DicomSequence([study_item])
    ds.ReferencedFrameOfReferenceSequence = DicomSequence([frame_item])

    structure_items: list[Dataset] = []
    contour_items: list[Dataset] = []
    observation_items: list[Dataset] = []
    for obs_number, (number, name, contours) in enumerate(rois, 1):
        s = Dataset()
        s.ROINumber = int(number)
        s.ReferencedFrameOfReferenceUID = frame_of_reference_uid
        s.ROIName = name
        s.ROIGenerationAlgorithm = "MANUAL"
        structure_items.append(s)

        c = Dataset()
        c.ReferencedROINumber = int(number)
        c.ROIDisplayColor = [int(v) for v in rng.integers(0, 256, size=3)]
        items: list[Dataset] = []
        for n, (kind, points) in enumerate(contours, 1):
            pts = np.asarray(points, dtype=np.float64).reshape(-1, 3)
            item = Dataset()
            item.ContourNumber = n
            item.ContourGeometricType = kind
            item.NumberOfContourPoints = len(pts)
            item.ContourData = [ds_value(v) for v in pts.ravel()]
            items.append(item)
        c.ContourSequence = DicomSequence(items)
        contour_items.append(c)

        o = Dataset()
        o.ObservationNumber = obs_number
        o.ReferencedROINumber = int(number)
        o.RTROIInterpretedType = "ORGAN"
        o.ROIInterpreter = ""
        observation_items.append(o)

    ds.StructureSetROISequence = DicomSequence(structure_items)
    ds.ROIContourSequence = DicomSequence(contour_items)
    ds.RTROIObservationsSequence = DicomSequence(observation_items)
    ds.save_as(path, enforce_file_format=True)
    return path

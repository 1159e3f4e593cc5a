"""Write a ``netvolume measure`` output folder as a DICOM Structured Report (TID 1500).

The report is a Comprehensive 3D SR instance (``1.2.840.10008.5.1.4.1.1.88.34``) built
with :mod:`highdicom`, following DICOM PS3.16 TID 1500 "Measurement Report". It is made
from the folder alone (``lesions.csv``, ``study.json`` and the DICOM SEG files under
``masks/``): the source CT images are referenced by the UIDs the lesion SEG records, so
the original DICOM files are not needed.

Content tree
------------
::

    CONTAINER Imaging Measurement Report (TID 1500)
    ├── Language of Content Item and Descendants: English
    ├── Observer Type: Device; Device Observer UID / Name "netvolume" /
    │   Manufacturer "netvolume" / Model Name "netvolume <version>"
    ├── Procedure reported: PET unspecified body region (LN 44136-0) and/or
    │   CT unspecified body region (LN 25045-6), after the series that were measured
    └── CONTAINER Imaging Measurements
        └── per lesion, in lesion_id order:
            ├── Measurement Group, TID 1411 (volumetric ROI)
            │   ├── Tracking Identifier / Tracking Unique Identifier
            │   ├── Finding category, Finding (SCT Lesion), Finding Site (organ)
            │   ├── Algorithm Name "netvolume", Algorithm Version
            │   ├── Time Point Context (TID 1502), when a time point is given
            │   ├── Referenced Segment (SEG instance + segment number)
            │   │   + Source Image For Segmentation (the CT images of its frames)
            │   ├── NUM Volume [ml]
            │   ├── NUM SUVbw [g/ml{SUVbw}], Derivation Maximum / Mean /
            │   │   Peak Value Within ROI (each only when available)
            │   ├── CODE Krenning score = Krenning grade 0..4 (when graded)
            │   └── CODE RECIST 1.1 baseline category (when known)
            ├── Measurement Group, TID 1410 (planar ROI): the long axis
            │   ├── Tracking Identifier / UID (the same as above), Finding, Site,
            │   │   Measurement Method RECIST 1.1, Algorithm, Time Point Context
            │   ├── Image Region: SCOORD3D POLYLINE, 2 points (LPS mm), the frame
            │   │   of reference of the measurement
            │   └── NUM Long axis [mm]
            └── Measurement Group, TID 1410: the short axis, as the long axis

Calipers
--------
highdicom refuses SCOORD3D content on a measurement inside a TID 1410 / 1411 group (TID
1419 has no such child), so each RECIST axis is its own TID 1410 planar ROI group whose
region of interest *is* the caliper: an ``Image Region`` SCOORD3D ``POLYLINE`` from the
axis start to its end point (``ld_start_*`` / ``ld_end_*`` of ``lesions.csv``), holding
the one length measurement. The three groups of a lesion share its Tracking Identifier
and Tracking Unique Identifier, which is how a reader puts them back together. A viewer
that draws TID 1410 regions draws the two calipers on the CT slice they lie in.

Codes
-----
Standard codes come from :data:`pydicom.sr.codedict.codes`; the lesion category, type
and site are those of the lesion SEG (:data:`netvolume.io.masks._seg_write.STRUCTURES`,
:data:`~netvolume.io.masks._seg_write.ANATOMIC_REGIONS`). The SUV unit is UCUM
``g/ml{SUVbw}`` as PS3.16 CID 85 (and pydicom) spell it. The Krenning grade and the
RECIST 1.1 baseline category have no standard code, so they use the private coding
scheme ``99NETVOLUME`` (:data:`PRIVATE_CODES`), declared in the
CodingSchemeIdentificationSequence of the instance.

Identifiers, dates and determinism
----------------------------------
SeriesInstanceUID and SOPInstanceUID are hashes of everything the content is made of
(the bytes of ``lesions.csv``, the study facts, the SEG's SOPInstanceUID, the arguments
and the netvolume version), so the same inputs give the same file, byte for byte. A
lesion's Tracking Unique Identifier is derived from its tracking identifier and
``tracking_namespace`` (``netvolume run`` passes the patient key, so a lesion keeps its UID
over time; default the StudyInstanceUID). ContentDate / ContentTime, InstanceCreationDate /
Time and SeriesDate / Time are the study's date and time (from the SEG, else
``study.json``), never the clock.

Time point
----------
``time_point`` becomes TID 1502's Time Point (text); ``time_point_date`` its Subject
Time Point Identifier (the ISO date, which identifies the visit for this subject).

A study without lesions
-----------------------
There is no lesion SEG then, and highdicom needs at least one measurement group, so the
report holds, instead of Imaging Measurements, the TID 1500 ``Qualitative Evaluations``
container (UMLS C0034375) with ``Finding = None`` (SCT 260413007). Patient and study
attributes are then copied from ``masks/organs.seg.dcm``; without any SEG in the folder
there is nothing to copy them from, and the writer refuses.
"""

from __future__ import annotations

import csv
import datetime
import hashlib
import json
import math
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pydicom
import pydicom.uid
from pydicom.dataset import Dataset
from pydicom.sr.codedict import codes
from pydicom.sr.coding import Code
from pydicom.valuerep import DA, TM

from netvolume._version import __version__
from netvolume.errors import InputPathError, NetVolumeError
from netvolume.io._atomic import atomic_path
from netvolume.io.dicom import _quiet_pydicom
from netvolume.io.masks._seg_write import ANATOMIC_REGIONS, STRUCTURES, lenient_source_values

__all__ = [
    "PRIVATE_CODES",
    "PRIVATE_SCHEME",
    "MeasurementFolderError",
    "write_measurement_sr",
]

Point = tuple[float, float, float]

#: Coding scheme designator of the codes netvolume defines itself.
PRIVATE_SCHEME = "99NETVOLUME"

#: The private codes: concept names and values without a standard code.
PRIVATE_CODES: dict[str, Code] = {
    "krenning_score": Code("KRENNING", PRIVATE_SCHEME, "Krenning score"),
    **{
        f"krenning_{g}": Code(f"KRENNING{g}", PRIVATE_SCHEME, f"Krenning grade {g}")
        for g in range(5)
    },
    "recist_category": Code("RECISTCATEGORY", PRIVATE_SCHEME, "RECIST 1.1 baseline category"),
    "measurable": Code("RECISTMEAS", PRIVATE_SCHEME, "Measurable"),
    "non_measurable": Code("RECISTNONMEAS", PRIVATE_SCHEME, "Non-measurable"),
    "normal_node": Code("RECISTNORMALNODE", PRIVATE_SCHEME, "Normal lymph node"),
}

#: Organ of a lesion -> structure key of :data:`STRUCTURES` (as the lesion SEG codes it).
_ORGAN_STRUCTURE: dict[str, str] = {
    "liver": "liver_lesion",
    "bone": "bone_lesion",
    "lymph_node": "lymph_node_lesion",
    "other": "lesion",
}

_SEG_SOP_CLASSES = frozenset({"1.2.840.10008.5.1.4.1.1.66.4", "1.2.840.10008.5.1.4.1.1.66.7"})
_UID_PREFIX = pydicom.uid.PYDICOM_ROOT_UID  # "1.2.826.0.1.3680043.8.498.", as the SEG
_LESIONS_SEG = "masks/lesions.seg.dcm"
_ORGANS_SEG = "masks/organs.seg.dcm"

_ML = Code("ml", "UCUM", "milliliter")
_MM = Code("mm", "UCUM", "millimeter")
_SUV_UNIT = codes.UCUM.StandardizedUptakeValueBodyWeight  # g/ml{SUVbw}
_SUVBW = codes.DCM.Suvbw  # 126401
_QUALITATIVE_EVALUATIONS = Code("C0034375", "UMLS", "Qualitative Evaluations")
_ACQUISITION = ("109101", "DCM")  # purpose of reference: Acquisition Equipment

# columns this writer reads from lesions.csv
_REQUIRED_COLUMNS = ("lesion_id", "name", "organ", "volume_ml", "ld_mm", "sa_mm")
_AXIS_COLUMNS = tuple(
    f"{tag}_{end}_{axis}_mm" for tag in ("ld", "sa") for end in ("start", "end") for axis in "xyz"
)
_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


class MeasurementFolderError(NetVolumeError):
    """A ``netvolume measure`` output folder whose content cannot be reported: a malformed
    ``lesions.csv`` cell, a ``study.json`` without a needed field, or a lesion SEG that
    does not match the lesion table. The message names the file, the line and column."""


@dataclass(frozen=True)
class _Lesion:
    """One row of ``lesions.csv``, as far as the report needs it."""

    lesion_id: int
    name: str
    organ: str
    volume_ml: float
    ld_mm: float
    sa_mm: float
    ld_points: tuple[Point, Point] | None
    sa_points: tuple[Point, Point] | None
    suv_max: float | None
    suv_mean: float | None
    suv_peak: float | None
    krenning_grade: int | None
    recist_category: str | None


@dataclass(frozen=True)
class _Folder:
    """What the writer read from the measurement folder."""

    csv_sha256: str
    lesions: tuple[_Lesion, ...]
    study: dict[str, Any]
    seg: Dataset | None  # masks/lesions.seg.dcm, without pixel data
    seg_path: Path | None
    context: Dataset  # the SEG whose patient / study attributes the SR copies
    context_path: Path


def write_measurement_sr(
    study_folder: str | os.PathLike[str],
    out: str | os.PathLike[str],
    *,
    tracking: Mapping[int, str] | None = None,
    time_point: str | None = None,
    time_point_date: str | None = None,
    series_number: int = 901,
    institution: str | None = None,
    tracking_namespace: str | None = None,
) -> Path:
    """Write the measurements of one ``netvolume measure`` output folder as a DICOM SR.

    Parameters
    ----------
    study_folder
        The output folder of ``netvolume measure`` (holding ``lesions.csv``,
        ``study.json`` and ``masks/lesions.seg.dcm``).
    out
        The SR file to write (``.dcm``); its folder must exist. Written atomically
        (temporary file in the same folder, then renamed), so an error leaves no file.
    tracking
        Tracking identifier of each lesion over time, by ``lesion_id`` (e.g.
        ``{3: "L3"}``), as ``netvolume assess`` assigns them. A lesion that is not in the
        mapping is tracked by its name (``lesions.csv`` column ``name``).
    time_point
        Time point of the study, e.g. ``"baseline"`` or ``"follow-up 1"`` (TID 1502 Time
        Point). None: no time point context.
    time_point_date
        The time point's date, ISO ``YYYY-MM-DD`` (TID 1502 Subject Time Point
        Identifier). Needs ``time_point``.
    series_number
        SeriesNumber of the SR (a positive integer).
    institution
        InstitutionName of the SR (at most 64 characters). None: not written.
    tracking_namespace
        What a lesion's Tracking Unique Identifier is derived from, with its tracking
        identifier. Give a key of the patient (``netvolume run`` gives the pseudonymous
        patient key) so that one lesion keeps one UID at every time point; None: the
        StudyInstanceUID (unique per study only).

    Returns
    -------
    pathlib.Path
        ``out``.

    Raises
    ------
    InputPathError
        If ``study_folder`` is not a folder or lacks ``lesions.csv`` / ``study.json``, if
        it has lesions but no ``masks/lesions.seg.dcm``, or no lesion and no SEG at all;
        if ``out`` is a folder or its folder does not exist.
    MeasurementFolderError
        On a malformed ``lesions.csv`` cell or ``study.json``, or a SEG that does not
        match the lesion table or the study (another study, frame of reference, segment
        count or names).
    ValueError
        On bad arguments: a tracking identifier for a lesion_id that is not in the table,
        one identifier used for two lesions, an empty identifier, a date that is not ISO,
        a date without ``time_point``, a series number below 1, a too long institution.

    Notes
    -----
    Values are written as ``lesions.csv`` holds them: the measurement's NumericValue is
    the DS text of the value (at most 16 characters) and its FloatingPointValue the exact
    double; SCOORD3D coordinates are 32-bit floats (about 1e-4 mm at 1 m from the
    origin). A measurement whose cell is empty (no PET: SUVs; no grade) is left out.
    """
    folder = Path(study_folder)
    out_path = _check_output(Path(out))
    _check_arguments(time_point, time_point_date, series_number, institution)
    data = _read_folder(folder)
    ids = _tracking_ids(data.lesions, tracking)
    namespace = tracking_namespace or str(data.study["study_instance_uid"])
    sr = _build_sr(data, ids, time_point, time_point_date, series_number, institution, namespace)
    with atomic_path(out_path, suffix=".dcm") as tmp:
        sr.save_as(tmp, enforce_file_format=True)
    return out_path


# ---------------------------------------------------------------------------- checks
def _check_output(out: Path) -> Path:
    if out.is_dir():
        raise InputPathError(
            f"SR output path is a folder: {out}",
            files=[out],
            hint="give a file name, e.g. " + str(out / "measurements.sr.dcm"),
        )
    if not out.parent.is_dir():
        raise InputPathError(
            f"output folder does not exist: {out.parent}",
            files=[out.parent],
            hint="create the folder first",
        )
    return out


def _check_arguments(
    time_point: str | None,
    time_point_date: str | None,
    series_number: int,
    institution: str | None,
) -> None:
    if time_point is not None and not time_point.strip():
        raise ValueError("time_point is empty; pass None for no time point")
    if time_point_date is not None:
        if time_point is None:
            raise ValueError(
                f"time_point_date {time_point_date!r} given without time_point; name the "
                "time point (e.g. 'baseline')"
            )
        if not _ISO_DATE.match(time_point_date):
            raise ValueError(f"time_point_date must be ISO YYYY-MM-DD; got {time_point_date!r}")
        datetime.date.fromisoformat(time_point_date)  # a real calendar date
    if isinstance(series_number, bool) or not isinstance(series_number, int) or series_number < 1:
        raise ValueError(f"series_number must be a positive integer; got {series_number!r}")
    if institution is not None and (len(institution) > 64 or "\\" in institution):
        raise ValueError(
            "institution must be a valid InstitutionName (LO: at most 64 characters, no "
            f"backslash); got {len(institution)} characters"
        )


def _tracking_ids(lesions: Sequence[_Lesion], tracking: Mapping[int, str] | None) -> dict[int, str]:
    """lesion_id -> tracking identifier (the mapping's, else the lesion name)."""
    given = dict(tracking or {})
    known = {les.lesion_id for les in lesions}
    unknown = sorted(k for k in given if k not in known)
    if unknown:
        raise ValueError(
            f"tracking names lesion_id(s) {unknown} that lesions.csv does not hold "
            f"(it has {sorted(known)})"
        )
    ids: dict[int, str] = {}
    for les in lesions:
        tid = given.get(les.lesion_id, les.name)
        if not isinstance(tid, str) or not tid.strip():
            raise ValueError(f"tracking identifier of lesion_id {les.lesion_id} is empty")
        ids[les.lesion_id] = tid
    seen: dict[str, int] = {}
    for lesion_id, tid in ids.items():
        if tid in seen:
            raise ValueError(
                f"tracking identifier {tid!r} is used by lesion_ids {seen[tid]} and {lesion_id}"
            )
        seen[tid] = lesion_id
    return ids


# ---------------------------------------------------------------------------- reading
def _read_folder(folder: Path) -> _Folder:
    if not folder.is_dir():
        raise InputPathError(
            f"measurement folder not found: {folder}",
            files=[folder],
            hint="pass the output folder of 'netvolume measure'",
        )
    csv_path, json_path = folder / "lesions.csv", folder / "study.json"
    for path in (csv_path, json_path):
        if not path.is_file():
            raise InputPathError(
                f"{path.name} not found in {folder}: not a 'netvolume measure' output folder",
                files=[path],
                hint="pass the output folder of 'netvolume measure' (run it first)",
            )
    raw = csv_path.read_bytes()
    lesions = _read_lesions(raw, csv_path)
    study = _read_study(json_path)

    seg_path = folder / _LESIONS_SEG
    seg: Dataset | None = None
    if seg_path.is_file():
        seg = _read_seg(seg_path)
        _check_seg(seg, seg_path, study, json_path)
    elif lesions:
        raise InputPathError(
            f"{_LESIONS_SEG} not found in {folder}, but lesions.csv lists {len(lesions)} "
            "lesion(s): the SR references each lesion's SEG segment",
            files=[seg_path],
            hint="measure the study again with a reference image series (the SEG needs one)",
        )
    if seg is not None:
        context, context_path = seg, seg_path
    else:
        organs = folder / _ORGANS_SEG
        if not organs.is_file():
            raise InputPathError(
                f"no DICOM SEG in {folder / 'masks'} ({_LESIONS_SEG}, {_ORGANS_SEG}): the "
                "SR copies the patient and study attributes from one",
                files=[seg_path, organs],
                hint="measure the study again with a reference image series",
            )
        context, context_path = _read_seg(organs), organs
        _check_seg(context, organs, study, json_path)
    return _Folder(
        csv_sha256=hashlib.sha256(raw).hexdigest(),
        lesions=lesions,
        study=study,
        seg=seg,
        seg_path=seg_path if seg is not None else None,
        context=context,
        context_path=context_path,
    )


def _read_lesions(raw: bytes, path: Path) -> tuple[_Lesion, ...]:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise MeasurementFolderError(
            f"{path.name} is not UTF-8 text ({exc})", files=[path], hint="rewrite it as UTF-8"
        ) from exc
    reader = csv.DictReader(text.splitlines())
    header = reader.fieldnames or []
    missing = [c for c in (*_REQUIRED_COLUMNS, *_AXIS_COLUMNS) if c not in header]
    if missing:
        raise MeasurementFolderError(
            f"{path.name} lacks column(s) {', '.join(missing)}",
            files=[path],
            hint="write it with 'netvolume measure' (columns: netvolume.measure.LESION_COLUMNS)",
        )
    lesions: list[_Lesion] = []
    for line, row in enumerate(reader, start=2):
        cell = _Cells(row, path, line)
        lesions.append(
            _Lesion(
                lesion_id=cell.integer("lesion_id"),
                name=cell.text("name"),
                organ=cell.text("organ"),
                volume_ml=cell.number("volume_ml"),
                ld_mm=cell.number("ld_mm"),
                sa_mm=cell.number("sa_mm"),
                ld_points=cell.segment("ld"),
                sa_points=cell.segment("sa"),
                suv_max=cell.optional("suv_max"),
                suv_mean=cell.optional("suv_mean"),
                suv_peak=cell.optional("suv_peak"),
                krenning_grade=cell.grade(),
                recist_category=cell.category(),
            )
        )
    ids = [les.lesion_id for les in lesions]
    dup = sorted({i for i in ids if ids.count(i) > 1})
    if dup:
        raise MeasurementFolderError(
            f"{path.name}: lesion_id(s) {dup} appear more than once",
            files=[path],
            tag="lesion_id",
            hint="write the folder again with 'netvolume measure'",
        )
    return tuple(sorted(lesions, key=lambda r: r.lesion_id))


class _Cells:
    """Typed access to the cells of one ``lesions.csv`` row, errors naming the cell."""

    def __init__(self, row: dict[str, str | None], path: Path, line: int) -> None:
        self.row, self.path, self.line = row, path, line

    def _raw(self, column: str) -> str:
        value = self.row.get(column)
        return "" if value is None else value.strip()

    def _error(self, column: str, value: str, expected: str) -> MeasurementFolderError:
        return MeasurementFolderError(
            f"{self.path.name} line {self.line}, column {column}: {value!r} is not {expected}",
            files=[self.path],
            tag=column,
            hint="write the folder again with 'netvolume measure'",
        )

    def text(self, column: str) -> str:
        value = self._raw(column)
        if not value:
            raise self._error(column, value, "a non-empty text")
        return value

    def optional(self, column: str) -> float | None:
        value = self._raw(column)
        if not value:
            return None
        try:
            x = float(value)
        except ValueError:
            raise self._error(column, value, "a number (or empty)") from None
        if not math.isfinite(x):
            raise self._error(column, value, "a finite number (or empty)")
        return x

    def number(self, column: str) -> float:
        x = self.optional(column)
        if x is None:
            raise self._error(column, "", "a number")
        return x

    def integer(self, column: str) -> int:
        value = self._raw(column)
        if not re.fullmatch(r"[0-9]+", value) or int(value) < 1:
            raise self._error(column, value, "a positive integer")
        return int(value)

    def segment(self, tag: str) -> tuple[Point, Point] | None:
        """The two end points of axis ``tag`` (``ld`` / ``sa``); None if all are empty."""
        columns = [f"{tag}_{end}_{axis}_mm" for end in ("start", "end") for axis in "xyz"]
        values = [self.optional(c) for c in columns]
        if all(v is None for v in values):
            return None
        if any(v is None for v in values):
            empty = [c for c, v in zip(columns, values, strict=True) if v is None]
            raise self._error(empty[0], "", "a number (the other end point cells are set)")
        x = [float(v) for v in values if v is not None]
        return (x[0], x[1], x[2]), (x[3], x[4], x[5])

    def grade(self) -> int | None:
        value = self._raw("krenning_grade")
        if not value:
            return None
        if value not in {"0", "1", "2", "3", "4"}:
            raise self._error("krenning_grade", value, "a Krenning grade 0-4 (or empty)")
        return int(value)

    def category(self) -> str | None:
        value = self._raw("recist_category")
        if value:
            if value not in {"measurable", "non_measurable", "normal_node"}:
                raise self._error(
                    "recist_category", value, "measurable, non_measurable or normal_node"
                )
            return value
        flag = self._raw("measurable")
        if flag in {"true", "false"}:
            return "measurable" if flag == "true" else "non_measurable"
        if flag:
            raise self._error("measurable", flag, "true or false (or empty)")
        return None


def _read_study(path: Path) -> dict[str, Any]:
    try:
        study = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise MeasurementFolderError(
            f"{path.name} is not valid JSON ({exc})",
            files=[path],
            hint="write the folder again with 'netvolume measure'",
        ) from exc
    if not isinstance(study, dict):
        raise MeasurementFolderError(
            f"{path.name} holds a {type(study).__name__}, not an object", files=[path]
        )
    for key in ("study_instance_uid", "frame_of_reference_uid"):
        if not isinstance(study.get(key), str) or not study[key]:
            raise MeasurementFolderError(
                f"{path.name} has no {key}",
                files=[path],
                tag=key,
                hint="write the folder again with 'netvolume measure'",
            )
    date = study.get("study_date")
    if date is not None and not (isinstance(date, str) and _ISO_DATE.match(date)):
        raise MeasurementFolderError(
            f"{path.name}: study_date {date!r} is not an ISO date (YYYY-MM-DD)",
            files=[path],
            tag="study_date",
        )
    return study


def _read_seg(path: Path) -> Dataset:
    from pydicom.errors import InvalidDicomError

    try:
        with _quiet_pydicom():
            ds = pydicom.dcmread(path, stop_before_pixels=True)
    except (InvalidDicomError, OSError) as exc:
        raise MeasurementFolderError(
            f"{path.name} is not readable as DICOM ({exc})",
            files=[path],
            hint="write the folder again with 'netvolume measure'",
        ) from exc
    sop = str(getattr(ds, "SOPClassUID", "") or "")
    if sop not in _SEG_SOP_CLASSES:
        raise MeasurementFolderError(
            f"{path.name} is not a DICOM Segmentation (SOPClassUID {sop or '(none)'})",
            files=[path],
            tag="SOPClassUID",
        )
    return ds


def _check_seg(seg: Dataset, path: Path, study: dict[str, Any], json_path: Path) -> None:
    for keyword, key in (
        ("StudyInstanceUID", "study_instance_uid"),
        ("FrameOfReferenceUID", "frame_of_reference_uid"),
    ):
        value = str(getattr(seg, keyword, "") or "")
        if value != study[key]:
            raise MeasurementFolderError(
                f"{path.name} has {keyword} {value or '(none)'}, {json_path.name} "
                f"{key} {study[key]}: they are not of the same study",
                files=[path, json_path],
                tag=keyword,
                hint="the folder mixes outputs of different studies; measure it again",
            )


# ---------------------------------------------------------------------------- building
def _uid(*sources: str) -> str:
    return str(pydicom.uid.generate_uid(prefix=_UID_PREFIX, entropy_srcs=list(sources)))


def _segment_numbers(data: _Folder) -> dict[int, int]:
    """lesion_id -> SegmentNumber in the lesion SEG (matched by description, else name)."""
    if data.seg is None or data.seg_path is None:
        return {}
    items = list(getattr(data.seg, "SegmentSequence", []) or [])
    path = data.seg_path
    if len(items) != len(data.lesions):
        raise MeasurementFolderError(
            f"{path.name} has {len(items)} segment(s), lesions.csv {len(data.lesions)} lesion(s)",
            files=[path],
            tag="SegmentSequence",
            hint="the folder mixes outputs of different runs; measure the study again",
        )
    numbers: dict[int, int] = {}
    for les in data.lesions:
        by_description = [
            int(s.SegmentNumber)
            for s in items
            if str(s.get("SegmentDescription", "")).startswith(f"lesion_id {les.lesion_id},")
        ]
        by_label = [int(s.SegmentNumber) for s in items if str(s.SegmentLabel) == les.name]
        found = by_description or by_label
        if len(found) != 1:
            raise MeasurementFolderError(
                f"{path.name}: {len(found)} segments match lesion_id {les.lesion_id} "
                f"({les.name!r}) of lesions.csv; expected exactly one",
                files=[path],
                tag="SegmentSequence",
                hint="the folder mixes outputs of different runs; measure the study again",
            )
        numbers[les.lesion_id] = found[0]
    return numbers


def _source_evidence(seg: Dataset, path: Path) -> list[Dataset]:
    """Stand-ins for the source images the SEG references (UIDs only) as SR evidence."""
    study_uid = str(seg.StudyInstanceUID)
    series_of: dict[str, str] = {}
    class_of: dict[str, str] = {}
    for series in getattr(seg, "ReferencedSeriesSequence", []) or []:
        for inst in getattr(series, "ReferencedInstanceSequence", []) or []:
            uid = str(inst.ReferencedSOPInstanceUID)
            series_of[uid] = str(series.SeriesInstanceUID)
            class_of[uid] = str(inst.ReferencedSOPClassUID)
    for frame in getattr(seg, "PerFrameFunctionalGroupsSequence", []) or []:
        for derivation in getattr(frame, "DerivationImageSequence", []) or []:
            for src in getattr(derivation, "SourceImageSequence", []) or []:
                uid = str(src.ReferencedSOPInstanceUID)
                if uid not in series_of:
                    raise MeasurementFolderError(
                        f"{path.name}: source image {uid} of a frame is not listed in its "
                        "ReferencedSeriesSequence, so its series is unknown",
                        files=[path],
                        tag="ReferencedSeriesSequence",
                    )
    evidence = []
    for uid in sorted(series_of):
        ds = Dataset()
        ds.SOPClassUID = class_of[uid]
        ds.SOPInstanceUID = uid
        ds.SeriesInstanceUID = series_of[uid]
        ds.StudyInstanceUID = study_uid
        evidence.append(ds)
    return evidence


def _referenced_segment(seg: Dataset, number: int, path: Path) -> Any:
    import highdicom as hd

    has_frames = any(
        int(f.SegmentIdentificationSequence[0].ReferencedSegmentNumber) == number
        for f in getattr(seg, "PerFrameFunctionalGroupsSequence", []) or []
    )
    if has_frames:
        try:
            return hd.sr.ReferencedSegment.from_segmentation(seg, number)
        except (ValueError, AttributeError) as exc:
            raise MeasurementFolderError(
                f"{path.name}: segment {number} cannot be referenced: {exc}",
                files=[path],
                tag="PerFrameFunctionalGroupsSequence",
                hint="write the folder again with 'netvolume measure'",
            ) from exc
    # a segment without frames: its source is the whole referenced series
    sources = [
        hd.sr.SourceImageForSegmentation(
            str(inst.ReferencedSOPClassUID), str(inst.ReferencedSOPInstanceUID)
        )
        for series in getattr(seg, "ReferencedSeriesSequence", []) or []
        for inst in getattr(series, "ReferencedInstanceSequence", []) or []
    ]
    if not sources:
        raise MeasurementFolderError(
            f"{path.name}: segment {number} has no frame and the SEG lists no source image",
            files=[path],
            tag="ReferencedSeriesSequence",
        )
    return hd.sr.ReferencedSegment(
        sop_class_uid=str(seg.SOPClassUID),
        sop_instance_uid=str(seg.SOPInstanceUID),
        segment_number=number,
        source_images=sources,
    )


def _content_date_time(data: _Folder) -> tuple[str, str]:
    """The study's date and time (DA, TM) for the SR's dates: never the clock."""
    ctx = data.context
    date = str(getattr(ctx, "StudyDate", "") or "")
    time = str(getattr(ctx, "StudyTime", "") or "")
    if not date and data.study.get("study_date"):
        date, time = str(data.study["study_date"]).replace("-", ""), ""
    if not date:
        date = str(getattr(ctx, "ContentDate", "") or "")
        time = str(getattr(ctx, "ContentTime", "") or "")
    if not date:
        raise MeasurementFolderError(
            "no study date: neither the SEG (StudyDate, ContentDate) nor study.json "
            "(study_date) has one, and the SR needs a content date",
            tag="StudyDate",
        )
    return date, time or "000000"


def _procedures(study: dict[str, Any]) -> list[Code]:
    procedures = []
    if study.get("pet_series_uid"):
        procedures.append(codes.LN.PETUnspecifiedBodyRegion)  # 44136-0
    if study.get("ct_series_uid") or not procedures:
        procedures.append(codes.LN.CTUnspecifiedBodyRegion)  # 25045-6
    return procedures


def _lesion_groups(
    data: _Folder,
    ids: Mapping[int, str],
    time_point_context: Any,
    namespace: str,
) -> list[Any]:
    import highdicom as hd

    if not data.lesions:
        return []
    if data.seg is None or data.seg_path is None:  # _read_folder refuses this
        raise RuntimeError("lesions without a lesion SEG reached the SR builder")
    seg, seg_path = data.seg, data.seg_path
    numbers = _segment_numbers(data)
    for_uid = str(data.study["frame_of_reference_uid"])
    algorithm = hd.sr.AlgorithmIdentification(name="netvolume", version=__version__)
    groups: list[Any] = []
    for les in data.lesions:
        tid = ids[les.lesion_id]
        tracking = hd.sr.TrackingIdentifier(
            uid=_uid("netvolume.io.sr_write tracking", namespace, tid), identifier=tid
        )
        structure = _ORGAN_STRUCTURE.get(les.organ, "lesion")
        category, finding = STRUCTURES[structure]
        sites = (
            [hd.sr.FindingSite(ANATOMIC_REGIONS[structure])]
            if structure in ANATOMIC_REGIONS
            else None
        )
        measurements = [hd.sr.Measurement(name=codes.SCT.Volume, value=les.volume_ml, unit=_ML)]
        for value, derivation in (
            (les.suv_max, codes.SCT.Maximum),
            (les.suv_mean, codes.SCT.Mean),
            (les.suv_peak, codes.DCM.PeakValueWithinROI),
        ):
            if value is not None:
                measurements.append(
                    hd.sr.Measurement(
                        name=_SUVBW, value=value, unit=_SUV_UNIT, derivation=derivation
                    )
                )
        evaluations = []
        if les.krenning_grade is not None:
            evaluations.append(
                hd.sr.QualitativeEvaluation(
                    PRIVATE_CODES["krenning_score"],
                    PRIVATE_CODES[f"krenning_{les.krenning_grade}"],
                )
            )
        if les.recist_category is not None:
            evaluations.append(
                hd.sr.QualitativeEvaluation(
                    PRIVATE_CODES["recist_category"], PRIVATE_CODES[les.recist_category]
                )
            )
        groups.append(
            hd.sr.VolumetricROIMeasurementsAndQualitativeEvaluations(
                tracking_identifier=tracking,
                referenced_segment=_referenced_segment(seg, numbers[les.lesion_id], seg_path),
                time_point_context=time_point_context,
                finding_type=finding,
                finding_category=category,
                finding_sites=sites,
                algorithm_id=algorithm,
                measurements=measurements,
                qualitative_evaluations=evaluations or None,
            )
        )
        for points, name, value in (
            (les.ld_points, codes.SCT.LongAxis, les.ld_mm),
            (les.sa_points, codes.SCT.ShortAxis, les.sa_mm),
        ):
            if points is None:
                continue
            groups.append(
                hd.sr.PlanarROIMeasurementsAndQualitativeEvaluations(
                    tracking_identifier=tracking,
                    referenced_region=hd.sr.ImageRegion3D(
                        graphic_type=hd.sr.GraphicTypeValues3D.POLYLINE,
                        graphic_data=_as_array(points),
                        frame_of_reference_uid=for_uid,
                    ),
                    time_point_context=time_point_context,
                    finding_type=finding,
                    finding_category=category,
                    finding_sites=sites,
                    method=codes.DCM.RECIST1Point1,
                    algorithm_id=algorithm,
                    measurements=[hd.sr.Measurement(name=name, value=value, unit=_MM)],
                )
            )
    return groups


def _as_array(points: tuple[Point, Point]) -> Any:
    import numpy as np

    return np.asarray(points, dtype=np.float64)


def _report(
    data: _Folder,
    ids: Mapping[int, str],
    time_point: str | None,
    time_point_date: str | None,
    namespace: str,
) -> Any:
    import highdicom as hd

    device = hd.sr.DeviceObserverIdentifyingAttributes(
        uid=_uid("netvolume.io.sr_write device observer", __version__),
        name="netvolume",
        manufacturer_name="netvolume",
        model_name=f"netvolume {__version__}",
    )
    observation_context = hd.sr.ObservationContext(
        observer_device_context=hd.sr.ObserverContext(
            observer_type=codes.cid270.Device,
            observer_identifying_attributes=device,
        )
    )
    time_point_context = (
        hd.sr.TimePointContext(time_point=time_point, subject_time_point_identifier=time_point_date)
        if time_point is not None
        else None
    )
    groups = _lesion_groups(data, ids, time_point_context, namespace)
    if groups:
        return hd.sr.MeasurementReport(
            observation_context=observation_context,
            procedure_reported=_procedures(data.study),
            imaging_measurements=groups,
        )
    # no lesion: highdicom needs a group, so build with a stand-in and put the TID 1500
    # "Qualitative Evaluations" container (Finding = None) where the measurements were
    stand_in = hd.sr.MeasurementsAndQualitativeEvaluations(
        tracking_identifier=hd.sr.TrackingIdentifier(
            uid=_uid("netvolume.io.sr_write no lesion"), identifier="none"
        )
    )
    report = hd.sr.MeasurementReport(
        observation_context=observation_context,
        procedure_reported=_procedures(data.study),
        imaging_measurements=[stand_in],
    )
    items = report[0].ContentSequence
    if items[-1].name != codes.DCM.ImagingMeasurements:
        raise RuntimeError(
            "highdicom's MeasurementReport layout changed: the last item is not the "
            "Imaging Measurements container"
        )
    evaluations = hd.sr.ContainerContentItem(
        name=_QUALITATIVE_EVALUATIONS,
        relationship_type=hd.sr.RelationshipTypeValues.CONTAINS,
    )
    evaluations.ContentSequence = hd.sr.ContentSequence(
        [
            hd.sr.CodeContentItem(
                name=codes.DCM.Finding,
                value=codes.SCT.None_,
                relationship_type=hd.sr.RelationshipTypeValues.CONTAINS,
            )
        ]
    )
    del items[-1]  # (highdicom's ContentSequence.__setitem__ refuses a single item)
    items.append(evaluations)
    return report


def _build_sr(
    data: _Folder,
    ids: Mapping[int, str],
    time_point: str | None,
    time_point_date: str | None,
    series_number: int,
    institution: str | None,
    namespace: str,
) -> Any:
    import highdicom as hd
    from highdicom.coding_schemes import CodingSchemeIdentificationItem

    content = _report(data, ids, time_point, time_point_date, namespace)
    evidence: list[Dataset] = [data.context]
    if data.seg is not None and data.seg_path is not None:
        evidence += _source_evidence(data.seg, data.seg_path)
    date, time = _content_date_time(data)
    sources = [
        "netvolume.io.sr_write",
        __version__,
        data.csv_sha256,
        json.dumps(
            {
                k: data.study.get(k)
                for k in (
                    "study_instance_uid",
                    "frame_of_reference_uid",
                    "ct_series_uid",
                    "pet_series_uid",
                    "study_date",
                )
            },
            sort_keys=True,
        ),
        str(data.context.SOPInstanceUID),
        json.dumps(sorted(ids.items())),
        json.dumps([time_point, time_point_date, int(series_number), institution, namespace]),
    ]
    coding_scheme = CodingSchemeIdentificationItem(
        designator=PRIVATE_SCHEME,
        name="netvolume private codes",
        responsible_organization="netvolume",
    )
    try:
        with lenient_source_values():  # the SEG's patient attributes are copied
            sr = hd.sr.Comprehensive3DSR(
                evidence=evidence,
                content=content,
                series_instance_uid=_uid(*sources, "series"),
                series_number=int(series_number),
                sop_instance_uid=_uid(*sources, "instance"),
                instance_number=1,
                manufacturer="netvolume",
                is_complete=True,
                is_final=False,
                is_verified=False,
                institution_name=institution,
                series_description="netvolume measurements",
                manufacturer_model_name="netvolume",
                software_versions=__version__,
                coding_schemes=[coding_scheme],
                content_date=date,
                content_time=time,
            )
    except (ValueError, TypeError, AttributeError, KeyError) as exc:
        # not the message: highdicom may quote header values, patient names among them
        raise MeasurementFolderError(
            f"highdicom cannot build the SR from {data.context_path.name} "
            f"({type(exc).__name__}; see the chained exception)",
            files=[data.context_path],
            hint="check the SEG's headers with dciodvfy; write the folder again with "
            "'netvolume measure'",
        ) from exc
    # highdicom stamps the clock here; the study's date and time keep the file reproducible
    sr.InstanceCreationDate = DA(date)
    sr.InstanceCreationTime = TM(time)
    sr.SeriesDate = DA(date)
    sr.SeriesTime = TM(time)
    equipment = []
    for item in getattr(sr, "ContributingEquipmentSequence", []) or []:
        purpose = item.PurposeOfReferenceCodeSequence[0]
        if (str(purpose.CodeValue), str(purpose.CodingSchemeDesignator)) == _ACQUISITION:
            # highdicom describes the first evidence instance's equipment as the
            # acquisition equipment; that is the SEG's (netvolume), not the scanner's
            continue
        if "ContributionDateTime" in item:
            item.ContributionDateTime = date + time
        equipment.append(item)
    if equipment:
        sr.ContributingEquipmentSequence = equipment
    elif "ContributingEquipmentSequence" in sr:
        del sr.ContributingEquipmentSequence
    return sr

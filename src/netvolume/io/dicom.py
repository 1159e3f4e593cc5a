"""DICOM ingestion that loses nothing: ``scan`` a folder into a catalogue, ``load`` a stack.

``scan(folder)`` walks a folder recursively (following symbolic links, never twice into
the same directory), reads every file's header only (pydicom ``stop_before_pixels``) and
returns a :class:`Catalogue`:

* image stacks (:class:`Series`): instances grouped by SeriesInstanceUID, a series split
  into separate stacks when ImageOrientationPatient, the matrix (Rows x Columns) or the
  localizer ImageType differ (enhanced multi-frame objects: one stack per file, split by
  StackID / TemporalPositionIndex);
* non-image objects (:class:`NonImageObject`): SEG, RTSTRUCT, SR, presentation states, key
  objects, DICOMDIR...;
* every file not used (:class:`UnusedFile`), with its reason: ``not_dicom``,
  ``unreadable``, ``permission_denied``, ``truncated``, ``no_pixel_data``, ``duplicate``.
  Nothing is dropped silently.

``load(series)`` returns a :class:`~netvolume.volume.Volume`:

* slices ordered by their position along the slice normal (row x column direction
  cosines), never by InstanceNumber or file name;
* RescaleSlope / RescaleIntercept applied per slice (per frame for enhanced objects, from
  the Pixel Value Transformation functional group);
* every common transfer syntax: native little-endian pixel data is read straight from the
  file into the output array (offsets recorded by ``scan``); everything else (JPEG, JPEG-LS,
  JPEG 2000, RLE, deflate, big endian) is decoded by pydicom with the pylibjpeg plugins;
* geometry checks with keyword-only tolerances, each failure a named
  :class:`~netvolume.errors.GeometryError` naming the files and what to do. Handled
  cases, documented: identical duplicate slices are dropped (reported in
  ``volume.provenance.notes``); a gantry-tilted (sheared) stack is resampled onto an
  orthogonal grid as dcm2niix does (each slice shifted within its own plane by linear
  interpolation, the matrix enlarged to keep every pixel; no interpolation across slices).

SliceThickness is not the slice spacing and is never used as such, except for a single
slice loaded with ``allow_single_slice=True``.

References
----------
DICOM PS3.3 C.7.6.2.1.1 (Image Position and Orientation), C.7.6.16 (Multi-frame
Functional Groups), C.11.1.1.2 (Modality LUT / rescale). Gantry tilt: dcm2niix
(Li et al., J Neurosci Methods 2016;264:47-56), ``nii_dicom_batch.cpp``.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import dataclasses
import hashlib
import logging
import math
import os
import re
import stat
import warnings
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pydicom
from pydicom.dataset import Dataset
from pydicom.errors import InvalidDicomError
from pydicom.uid import UID

from netvolume._version import __version__
from netvolume.errors import (
    DicomReadError,
    DuplicatePositionError,
    GantryTiltError,
    InconsistentMatrixError,
    InconsistentOrientationError,
    InconsistentPixelFormatError,
    InconsistentPixelSpacingError,
    InputPathError,
    IrregularSpacingError,
    MissingGeometryError,
    MissingSliceError,
    MultipleSeriesError,
    NoImageSeriesError,
    PixelDataError,
    SeriesNotFoundError,
    SingleSliceError,
)
from netvolume.volume import Provenance, Volume

__all__ = [
    "Catalogue",
    "NonImageObject",
    "Series",
    "UnusedFile",
    "UnusedReason",
    "load",
    "load_files",
    "load_folder",
    "scan",
]

logger = logging.getLogger(__name__)

#: Threads that read native pixel data (file reads and numpy ufuncs release the GIL).
_MAX_READ_THREADS = 4

UnusedReason = Literal[
    "not_dicom", "unreadable", "permission_denied", "truncated", "no_pixel_data", "duplicate"
]

_PIXEL_TAGS = {
    0x7FE00010: "PixelData",
    0x7FE00008: "FloatPixelData",
    0x7FE00009: "DoubleFloatPixelData",
}
_NATIVE_LE = {"1.2.840.10008.1.2", "1.2.840.10008.1.2.1"}
_IMPLICIT_LE = "1.2.840.10008.1.2"

#: SOP classes that are never image stacks, by kind (checked before PixelData).
_OBJECT_KINDS: tuple[tuple[str, str], ...] = (
    ("1.2.840.10008.1.3.10", "DICOMDIR"),
    ("1.2.840.10008.5.1.4.1.1.66.4", "SEG"),
    ("1.2.840.10008.5.1.4.1.1.66.7", "SEG"),  # label map segmentation
    ("1.2.840.10008.5.1.4.1.1.481.3", "RTSTRUCT"),
    ("1.2.840.10008.5.1.4.1.1.481.2", "RTDOSE"),
    ("1.2.840.10008.5.1.4.1.1.481.", "RT"),
    ("1.2.840.10008.5.1.4.1.1.88.59", "KO"),
    ("1.2.840.10008.5.1.4.1.1.88.", "SR"),
    ("1.2.840.10008.5.1.4.1.1.11.", "PR"),
    ("1.2.840.10008.5.1.4.1.1.66", "REGISTRATION"),
    ("1.2.840.10008.5.1.4.1.1.104.", "ENCAPSULATED"),
)


# ---------------------------------------------------------------------------- records
@dataclass(frozen=True, slots=True)
class _Image:
    """One 2D image: a single-frame file, or one frame of a multi-frame file."""

    path: Path
    frame: int  # 0-based frame number; 0 for single-frame files
    n_frames: int
    sop_instance_uid: str
    instance_number: int | None
    position: tuple[float, float, float] | None
    orientation: tuple[float, ...] | None
    pixel_spacing: tuple[float, float] | None
    rows: int
    columns: int
    slope: float
    intercept: float
    slice_thickness: float | None
    spacing_between_slices: float | None
    image_type: tuple[str, ...]
    pixel_format: tuple[int, int, int, int, str, int]  # alloc, stored, repr, spp, photo, planar
    transfer_syntax: str
    pixel_offset: int | None  # byte offset of the native pixel data value, else None
    file_size: int
    stack_key: tuple[Any, ...]  # extra grouping (enhanced: StackID, temporal index)
    # header values a DICOM SEG on the image needs (netvolume.io.masks), as pydicom read
    # them: None where the header lacks the attribute
    sop_class_uid: str | None = field(default=None, compare=False, repr=False)
    study_instance_uid: str | None = field(default=None, compare=False, repr=False)
    frame_of_reference_uid: str | None = field(default=None, compare=False, repr=False)
    position_text: tuple[str, ...] | None = field(default=None, compare=False, repr=False)


@dataclass(frozen=True)
class Series:
    """One image stack of a catalogue: a whole series, or one stack of a split series.

    Attributes
    ----------
    uid
        Stack identifier: the SeriesInstanceUID, or ``"<SeriesInstanceUID>#N"`` (N = 1, 2,
        ...) when the series was split into several stacks.
    """

    uid: str
    series_instance_uid: str
    stack_index: int
    modality: str
    description: str
    series_number: int | None
    study_instance_uid: str
    frame_of_reference_uid: str
    rows: int
    columns: int
    orientation: tuple[float, ...] | None
    pixel_spacing: tuple[float, float] | None
    acquisition_datetime: str | None
    is_localizer: bool
    is_multiframe: bool
    transfer_syntaxes: tuple[str, ...]
    units: str
    images: tuple[_Image, ...] = field(repr=False)

    @property
    def num_images(self) -> int:
        """Number of 2D images (files, or frames of a multi-frame object)."""
        return len(self.images)

    @property
    def files(self) -> tuple[Path, ...]:
        """The distinct files of the stack, in catalogue order."""
        return tuple(dict.fromkeys(im.path for im in self.images))

    def summary(self) -> str:
        """One line describing the stack, for listings and error messages."""
        sp = (
            f"{self.pixel_spacing[0]:.3g}x{self.pixel_spacing[1]:.3g} mm"
            if self.pixel_spacing
            else "no spacing"
        )
        loc = " [localizer]" if self.is_localizer else ""
        return (
            f"{self.uid}  {self.modality} #{self.series_number} "
            f"{self.description!r} {self.num_images} images {self.rows}x{self.columns} "
            f"{sp}{loc}"
        )

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-serialisable description (without the per-image records)."""
        return {
            "uid": self.uid,
            "series_instance_uid": self.series_instance_uid,
            "stack_index": self.stack_index,
            "modality": self.modality,
            "description": self.description,
            "series_number": self.series_number,
            "study_instance_uid": self.study_instance_uid,
            "frame_of_reference_uid": self.frame_of_reference_uid,
            "num_images": self.num_images,
            "num_files": len(self.files),
            "rows": self.rows,
            "columns": self.columns,
            "pixel_spacing_mm": list(self.pixel_spacing) if self.pixel_spacing else None,
            "orientation": list(self.orientation) if self.orientation else None,
            "acquisition_datetime": self.acquisition_datetime,
            "is_localizer": self.is_localizer,
            "is_multiframe": self.is_multiframe,
            "transfer_syntaxes": [f"{t} ({UID(t).name})" for t in self.transfer_syntaxes],
            "units": self.units,
        }


@dataclass(frozen=True)
class NonImageObject:
    """A DICOM object that is not an image stack (SEG, RTSTRUCT, SR, PR, DICOMDIR...)."""

    path: Path
    kind: str
    sop_class_uid: str
    sop_instance_uid: str
    modality: str
    series_instance_uid: str
    study_instance_uid: str
    frame_of_reference_uid: str

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-serialisable description."""
        d = dataclasses.asdict(self)
        d["path"] = str(self.path)
        d["sop_class_name"] = UID(self.sop_class_uid).name if self.sop_class_uid else ""
        return d


@dataclass(frozen=True)
class UnusedFile:
    """A file that is not part of any stack or object, and why."""

    path: Path
    reason: UnusedReason
    detail: str

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-serialisable description."""
        return {"path": str(self.path), "reason": self.reason, "detail": self.detail}


@dataclass(frozen=True)
class Catalogue:
    """What :func:`scan` found in a folder."""

    root: Path
    series: tuple[Series, ...]
    objects: tuple[NonImageObject, ...]
    unused: tuple[UnusedFile, ...]
    num_files: int

    def get(self, uid: str) -> Series:
        """Return the stack with this identifier (SeriesInstanceUID or ``UID#N``).

        Raises
        ------
        SeriesNotFoundError
            If no stack has this identifier.
        MultipleSeriesError
            If a bare SeriesInstanceUID names a series split into several stacks.
        """
        exact = [s for s in self.series if s.uid == uid]
        if exact:
            return exact[0]
        stacks = [s for s in self.series if s.series_instance_uid == uid]
        if len(stacks) > 1:
            listing = "\n  ".join(s.summary() for s in stacks)
            raise MultipleSeriesError(
                f"series {uid} holds {len(stacks)} stacks (different orientation, matrix or "
                f"localizer):\n  {listing}",
                hint="choose one with its stack id, e.g. --series-uid " + stacks[0].uid,
            )
        known = "\n  ".join(s.summary() for s in self.series) or "(none)"
        raise SeriesNotFoundError(
            f"no image series {uid!r} in {self.root}; image series found:\n  {known}",
            hint="copy a uid from `netvolume scan`",
        )

    def select(self, series_uid: str | None = None) -> Series:
        """Return the one stack to load: the one named, or the only one there is.

        Raises
        ------
        NoImageSeriesError, MultipleSeriesError, SeriesNotFoundError
        """
        if series_uid is not None:
            return self.get(series_uid)
        if not self.series:
            reasons: dict[str, int] = {}
            for u in self.unused:
                reasons[u.reason] = reasons.get(u.reason, 0) + 1
            found = ", ".join(f"{n} {r}" for r, n in sorted(reasons.items())) or "no files"
            objs = f"; {len(self.objects)} non-image objects" if self.objects else ""
            raise NoImageSeriesError(
                f"no loadable image series in {self.root} ({self.num_files} files: {found}{objs})",
                hint="run `netvolume scan` on the folder to see every file and its reason",
            )
        if len(self.series) > 1:
            listing = "\n  ".join(s.summary() for s in self.series)
            raise MultipleSeriesError(
                f"{len(self.series)} image series/stacks in {self.root}:\n  {listing}",
                hint="choose one with --series-uid (Python: series_uid=)",
            )
        return self.series[0]

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-serialisable description of the whole catalogue."""
        return {
            "root": str(self.root),
            "num_files": self.num_files,
            "series": [s.to_dict() for s in self.series],
            "objects": [o.to_dict() for o in self.objects],
            "unused": [u.to_dict() for u in self.unused],
            "netvolume_version": __version__,
        }


# ---------------------------------------------------------------------------- walking
def _walk(root: Path) -> Iterator[tuple[Path, os.stat_result | OSError]]:
    """Yield every regular file under ``root`` once, following links without loops."""
    seen_dirs: set[tuple[int, int]] = set()
    seen_files: set[tuple[int, int]] = set()
    stack = [root]
    while stack:
        d = stack.pop()
        try:
            st = d.stat()
        except OSError as exc:
            yield d, exc
            continue
        key = (st.st_dev, st.st_ino)
        if key in seen_dirs:
            continue  # a symbolic link back into a folder already walked
        seen_dirs.add(key)
        try:
            entries = sorted(os.scandir(d), key=lambda e: e.name)
        except OSError as exc:
            yield d, exc
            continue
        subdirs = []
        for e in entries:
            p = Path(e.path)
            try:
                est = p.stat()  # follows links
            except OSError as exc:
                yield p, exc  # dangling link or no permission
                continue
            if stat.S_ISDIR(est.st_mode):
                subdirs.append(p)
            elif stat.S_ISREG(est.st_mode):
                fkey = (est.st_dev, est.st_ino)
                if fkey in seen_files:
                    yield p, FileExistsError("same file as another path (link)")
                    continue
                seen_files.add(fkey)
                yield p, est
        stack.extend(reversed(subdirs))


# ---------------------------------------------------------------------------- headers
def _floats(value: Any, n: int) -> tuple[float, ...] | None:
    if value is None:
        return None
    try:
        vals = tuple(float(v) for v in value)
    except (TypeError, ValueError):
        return None
    if len(vals) != n or not all(math.isfinite(v) for v in vals):
        return None
    return vals


def _float(value: Any) -> float | None:
    if value is None or value == "":
        return None
    try:
        v = float(value)
    except (TypeError, ValueError):
        return None
    return v if math.isfinite(v) else None


def _int(value: Any) -> int | None:
    if value is None or value == "":
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _object_kind(sop_class: str) -> str | None:
    for prefix, kind in _OBJECT_KINDS:
        if sop_class == prefix or (prefix.endswith(".") and sop_class.startswith(prefix)):
            return kind
    return None


def _looks_like_raw_dataset(head: bytes) -> bool:
    """True if the bytes start like a preamble-less little-endian data set."""
    if len(head) < 8:
        return False
    group = int.from_bytes(head[0:2], "little")
    return group in (0x0002, 0x0008)


@contextlib.contextmanager
def _quiet_pydicom() -> Iterator[None]:
    """Silence pydicom's value-validation warnings while reading (reading is tolerant).

    Values that matter are checked by netvolume itself, with errors naming the file and
    tag; pydicom's UserWarnings about, e.g., a non-conformant UI value would otherwise
    flood a batch log without saying which file they concern.
    """
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=UserWarning, module=r"pydicom\..*")
        yield


@dataclass(frozen=True, slots=True)
class _Header:
    """A parsed header and where its pixel data lies."""

    ds: Dataset
    size: int  # file size in bytes
    element_offset: int | None  # offset of the pixel data element, None without one
    value_offset: int | None  # offset of the native little-endian pixel value, else None
    length: int | None  # declared value length (0xFFFFFFFF: encapsulated), else None


def _read_header(path: Path) -> _Header:
    """Parse the header of ``path`` and locate its pixel data element.

    pydicom's ``stop_before_pixels`` leaves the file positioned on the pixel data
    element's tag; the element header read there gives the value offset and length.
    """
    with open(path, "rb") as fp:
        size = os.fstat(fp.fileno()).st_size
        try:
            ds = pydicom.dcmread(fp, stop_before_pixels=True)
        except InvalidDicomError:
            fp.seek(0)
            if not _looks_like_raw_dataset(fp.read(8)):
                raise
            fp.seek(0)
            ds = pydicom.dcmread(fp, stop_before_pixels=True, force=True)
        pos = fp.tell()
        head = fp.read(12)
    if len(head) < 8:
        return _Header(ds, size, None, None, None)
    little = getattr(ds, "original_encoding", (True, True))[1] is not False
    order: Literal["little", "big"] = "little" if little else "big"
    tag = int.from_bytes(head[0:2], order) << 16 | int.from_bytes(head[2:4], order)
    if tag not in _PIXEL_TAGS:
        return _Header(ds, size, None, None, None)
    ts = str(getattr(ds, "file_meta", Dataset()).get("TransferSyntaxUID", _IMPLICIT_LE))
    if ts == _IMPLICIT_LE:
        return _Header(ds, size, pos, pos + 8, int.from_bytes(head[4:8], "little"))
    if ts in _NATIVE_LE and len(head) == 12:
        if head[4:6] in (b"OB", b"OW", b"OF", b"OD", b"OL", b"UN", b"OV"):
            return _Header(ds, size, pos, pos + 12, int.from_bytes(head[8:12], "little"))
        return _Header(ds, size, pos, pos + 8, int.from_bytes(head[6:8], "little"))
    return _Header(ds, size, pos, None, None)


class _UnusableError(Exception):
    """Internal: a readable DICOM file that holds no usable image (reason, detail)."""

    def __init__(self, reason: UnusedReason, detail: str) -> None:
        super().__init__(detail)
        self.reason: UnusedReason = reason
        self.detail = detail


def _images_of(header: _Header, path: Path) -> list[_Image]:
    """The image records of a file with pixel data; :class:`_UnusableError` if none.

    Raises for no pixel data, an invalid matrix, or pixel data shorter than the matrix,
    bit depth and number of frames declare (truncated).
    """
    ds = header.ds
    if header.element_offset is None:
        raise _UnusableError("no_pixel_data", "image object without PixelData")
    rows = _int(ds.get("Rows")) or 0
    cols = _int(ds.get("Columns")) or 0
    if rows <= 0 or cols <= 0:
        raise _UnusableError("no_pixel_data", f"PixelData without a valid matrix ({rows}x{cols})")
    images = _images_from_dataset(ds, path, header.value_offset, header.size)
    if header.value_offset is not None and header.length is not None:
        if header.length != 0xFFFFFFFF:
            fmt = images[0].pixel_format
            expected = _expected_frame_bytes(rows, cols, fmt) * images[0].n_frames
            held = min(header.size - header.value_offset, header.length)
            if held < expected:
                raise _UnusableError(
                    "truncated",
                    f"PixelData holds {held} bytes, {expected} expected for "
                    f"{images[0].n_frames} frame(s) of {rows}x{cols} at {fmt[0]} bits",
                )
    elif header.size <= header.element_offset + 8:
        raise _UnusableError("truncated", "file ends inside the PixelData element")
    return images


def _seq_item(ds: Dataset, keyword: str) -> Dataset | None:
    seq = ds.get(keyword)
    if seq is None or len(seq) == 0:
        return None
    item: Dataset = seq[0]
    return item


def _fg(frame: Dataset | None, shared: Dataset | None, keyword: str) -> Dataset | None:
    """Return the functional group macro item, per-frame first, then shared."""
    for group in (frame, shared):
        if group is not None:
            item = _seq_item(group, keyword)
            if item is not None:
                return item
    return None


def _expected_frame_bytes(rows: int, cols: int, fmt: tuple[int, int, int, int, str, int]) -> int:
    alloc, _, _, spp, _, _ = fmt
    return (rows * cols * spp * alloc + 7) // 8


def _images_from_dataset(
    ds: Dataset, path: Path, pixel_offset: int | None, size: int
) -> list[_Image]:
    """Build the per-image records of one file (one per frame)."""
    rows = _int(ds.get("Rows")) or 0
    cols = _int(ds.get("Columns")) or 0
    fmt = (
        _int(ds.get("BitsAllocated")) or 0,
        _int(ds.get("BitsStored")) or _int(ds.get("BitsAllocated")) or 0,
        _int(ds.get("PixelRepresentation")) or 0,
        _int(ds.get("SamplesPerPixel")) or 1,
        str(ds.get("PhotometricInterpretation", "")),
        _int(ds.get("PlanarConfiguration")) or 0,
    )
    ts = str(ds.file_meta.get("TransferSyntaxUID", _IMPLICIT_LE))
    n_frames = _int(ds.get("NumberOfFrames")) or 1
    image_type = tuple(str(v) for v in (ds.get("ImageType") or ()))
    sop = str(ds.get("SOPInstanceUID", ""))
    inst = _int(ds.get("InstanceNumber"))
    thickness = _float(ds.get("SliceThickness"))
    sbs = _float(ds.get("SpacingBetweenSlices"))
    shared_root = _seq_item(ds, "SharedFunctionalGroupsSequence")
    per_frame = ds.get("PerFrameFunctionalGroupsSequence")
    # values a DICOM SEG on these images needs (netvolume.io.masks), kept as read
    sop_class_uid = _uid_or_none(ds.get("SOPClassUID"))
    study_uid = _uid_or_none(ds.get("StudyInstanceUID"))
    for_uid = _uid_or_none(ds.get("FrameOfReferenceUID"))
    position_text = _ds_texts(ds.get("ImagePositionPatient")) if n_frames == 1 else None
    images = []
    for f in range(n_frames):
        frame_group = per_frame[f] if per_frame is not None and f < len(per_frame) else None
        if per_frame is not None:
            pos_item = _fg(frame_group, shared_root, "PlanePositionSequence")
            ori_item = _fg(frame_group, shared_root, "PlaneOrientationSequence")
            mea_item = _fg(frame_group, shared_root, "PixelMeasuresSequence")
            pvt_item = _fg(frame_group, shared_root, "PixelValueTransformationSequence")
            fc_item = _fg(frame_group, None, "FrameContentSequence")
            position = _floats(pos_item.get("ImagePositionPatient"), 3) if pos_item else None
            orientation = _floats(ori_item.get("ImageOrientationPatient"), 6) if ori_item else None
            spacing = _floats(mea_item.get("PixelSpacing"), 2) if mea_item else None
            f_thick = _float(mea_item.get("SliceThickness")) if mea_item else None
            f_sbs = _float(mea_item.get("SpacingBetweenSlices")) if mea_item else None
            slope = _float(pvt_item.get("RescaleSlope")) if pvt_item else None
            intercept = _float(pvt_item.get("RescaleIntercept")) if pvt_item else None
            if slope is None:
                slope = _float(ds.get("RescaleSlope"))
                intercept = _float(ds.get("RescaleIntercept"))
            key: tuple[Any, ...] = (
                str(path),
                _int(fc_item.get("StackID")) if fc_item is not None else None,
                _int(fc_item.get("TemporalPositionIndex")) if fc_item is not None else None,
            )
        else:
            position = _floats(ds.get("ImagePositionPatient"), 3)
            orientation = _floats(ds.get("ImageOrientationPatient"), 6)
            if n_frames > 1 and position is not None:
                # a multi-frame object without functional groups: frames are placed by
                # GridFrameOffsetVector (RT Dose, PS3.3 C.8.8.3.2) along the normal, or
                # cannot be placed at all
                offsets = _floats(ds.get("GridFrameOffsetVector"), n_frames)
                if offsets is None or orientation is None:
                    position = None
                else:
                    nrm = np.cross(orientation[:3], orientation[3:])
                    position = tuple(float(v) for v in np.asarray(position) + offsets[f] * nrm)
            spacing = _floats(ds.get("PixelSpacing"), 2)
            f_thick, f_sbs = thickness, sbs
            slope = _float(ds.get("RescaleSlope"))
            intercept = _float(ds.get("RescaleIntercept"))
            if slope is None and ds.get("DoseGridScaling") is not None:
                slope = _float(ds.get("DoseGridScaling"))  # RT Dose: stored x scaling = dose
            key = (str(path),) if n_frames > 1 else ()
        offset = None
        if pixel_offset is not None:
            offset = pixel_offset + f * _expected_frame_bytes(rows, cols, fmt)
        images.append(
            _Image(
                path=path,
                frame=f,
                n_frames=n_frames,
                sop_instance_uid=sop,
                instance_number=inst,
                position=position,  # type: ignore[arg-type]
                orientation=orientation,
                pixel_spacing=spacing,  # type: ignore[arg-type]
                rows=rows,
                columns=cols,
                slope=1.0 if slope is None else slope,
                intercept=0.0 if intercept is None else (intercept or 0.0),
                slice_thickness=f_thick,
                spacing_between_slices=f_sbs,
                image_type=image_type,
                pixel_format=fmt,
                transfer_syntax=ts,
                pixel_offset=offset,
                file_size=size,
                stack_key=key,
                sop_class_uid=sop_class_uid,
                study_instance_uid=study_uid,
                frame_of_reference_uid=for_uid,
                position_text=position_text,
            )
        )
    return images


def _uid_or_none(value: Any) -> str | None:
    """A UID value as pydicom read it (a string), None when absent or not one string."""
    return value if isinstance(value, str) else None


def _ds_texts(value: Any) -> tuple[str, ...] | None:
    """The text of each value of a DS element as read (pydicom's ``original_string``)."""
    if value is None or isinstance(value, str):
        return None
    try:
        return tuple(getattr(v, "original_string", str(v)) for v in value)
    except TypeError:  # a single value
        return None


def _units_of(ds: Dataset) -> str:
    modality = str(ds.get("Modality", ""))
    rescale_type = str(ds.get("RescaleType", "") or "")
    if modality == "CT":
        return rescale_type if rescale_type and rescale_type != "US" else "HU"
    if modality == "RTDOSE":
        return str(ds.get("DoseUnits", "") or "unknown")
    if modality in ("PT", "NM"):
        return str(ds.get("Units", "") or "unknown")
    return rescale_type if rescale_type and rescale_type != "US" else "arbitrary"


#: DICOM DT (PS3.5 6.2): YYYY[MM[DD[HH[MM[SS[.F{1,6}]]]]]][&ZZXX]; DA+TM concatenated too.
_DT_RE = re.compile(
    r"(\d{4})(?:(\d{2})(?:(\d{2})(?:(\d{2})(?:(\d{2})(?:(\d{2})(\.\d{1,6})?)?)?)?)?)?"
    r"(?:[+-]\d{4})?"
)


def _iso_datetime(dicom_dt: str) -> str | None:
    """Convert a DICOM DA+TM or DT string (``YYYYMMDDHHMMSS.FFFFFF``) to ISO 8601.

    The UTC offset of a DT value, if any, is dropped (DICOM times are local times unless
    TimezoneOffsetFromUTC says otherwise). Returns None for a malformed value.
    """
    m = _DT_RE.fullmatch(dicom_dt.strip())
    if m is None:
        return None
    year, month, day, hour, minute, second, frac = m.groups()
    iso = year + (f"-{month}" if month else "") + (f"-{day}" if day else "")
    if hour:
        iso += f"T{hour}:{minute or '00'}:{second or '00'}" + (frac or "")
    return iso


def _acq_datetime(ds: Dataset) -> str | None:
    """Acquisition date-time of an image as ISO 8601 (local time), or None."""
    dt = ds.get("AcquisitionDateTime")
    if dt:
        return _iso_datetime(str(dt))
    date = ds.get("AcquisitionDate") or ds.get("SeriesDate") or ds.get("StudyDate")
    time = ds.get("AcquisitionTime") or ds.get("SeriesTime") or ""
    if date:
        return _iso_datetime(f"{date}{str(time).replace(':', '')}")
    return None


# ---------------------------------------------------------------------------- scan
@dataclass
class _SeriesMeta:
    modality: str
    description: str
    series_number: int | None
    study_instance_uid: str
    frame_of_reference_uid: str
    units: str
    acquisition_datetimes: list[str]


def scan(folder: str | Path) -> Catalogue:
    """Catalogue every DICOM file under ``folder`` by reading headers only.

    Parameters
    ----------
    folder
        A folder (walked recursively, symbolic links followed without loops) or a single
        file.

    Returns
    -------
    Catalogue
        Image stacks, non-image objects, and every unused file with its reason.

    Raises
    ------
    InputPathError
        If ``folder`` does not exist or cannot be listed.
    """
    root = Path(folder)
    if not root.exists():
        raise InputPathError(
            f"path does not exist: {root}", files=[root], hint="check the path and retry"
        )
    if root.is_dir() and not os.access(root, os.R_OK | os.X_OK):
        raise InputPathError(
            f"folder cannot be read (permission denied): {root}",
            files=[root],
            hint="grant read permission or run as a user who has it",
        )
    if root.is_file():
        walker: Iterable[tuple[Path, os.stat_result | OSError]] = [(root, root.stat())]
    else:
        walker = _walk(root)

    unused: list[UnusedFile] = []
    objects: list[NonImageObject] = []
    images_by_series: dict[str, list[_Image]] = {}
    meta: dict[str, _SeriesMeta] = {}
    sop_seen: dict[str, Path] = {}
    num_files = 0

    for path, st in walker:
        num_files += 1
        if isinstance(st, FileExistsError):
            unused.append(UnusedFile(path, "duplicate", str(st)))
        elif isinstance(st, PermissionError):
            unused.append(UnusedFile(path, "permission_denied", str(st)))
        elif isinstance(st, OSError):
            unused.append(UnusedFile(path, "unreadable", f"{type(st).__name__}: {st}"))
        else:
            with _quiet_pydicom():
                _scan_one(path, unused, objects, images_by_series, meta, sop_seen)

    series = _build_stacks(images_by_series, meta)
    return Catalogue(
        root=root,
        series=tuple(series),
        objects=tuple(sorted(objects, key=lambda o: (o.kind, str(o.path)))),
        unused=tuple(sorted(unused, key=lambda u: str(u.path))),
        num_files=num_files,
    )


def _scan_one(
    path: Path,
    unused: list[UnusedFile],
    objects: list[NonImageObject],
    images_by_series: dict[str, list[_Image]],
    meta: dict[str, _SeriesMeta],
    sop_seen: dict[str, Path],
) -> None:
    """Catalogue one file: as image(s), a non-image object, or an unused file."""
    try:
        header = _read_header(path)
    except PermissionError as exc:
        unused.append(UnusedFile(path, "permission_denied", str(exc)))
        return
    except InvalidDicomError:
        unused.append(UnusedFile(path, "not_dicom", "no DICM prefix and no DICOM data set"))
        return
    except (EOFError, OSError) as exc:
        reason: UnusedReason = "truncated" if isinstance(exc, EOFError) else "unreadable"
        unused.append(UnusedFile(path, reason, f"{type(exc).__name__}: {exc}"))
        return
    except Exception as exc:  # pydicom raises many types on corrupt headers
        text = f"{type(exc).__name__}: {exc}"
        reason = "truncated" if "end of file" in text.lower() or "EOF" in text else ("unreadable")
        unused.append(UnusedFile(path, reason, f"header cannot be parsed: {text}"))
        return
    try:
        _catalogue_header(header, path, unused, objects, images_by_series, meta, sop_seen)
    except Exception as exc:  # a header that parses but whose values do not convert
        unused.append(
            UnusedFile(path, "unreadable", f"header values unusable: {type(exc).__name__}: {exc}")
        )


def _catalogue_header(
    header: _Header,
    path: Path,
    unused: list[UnusedFile],
    objects: list[NonImageObject],
    images_by_series: dict[str, list[_Image]],
    meta: dict[str, _SeriesMeta],
    sop_seen: dict[str, Path],
) -> None:
    ds = header.ds
    file_meta = getattr(ds, "file_meta", Dataset())
    sop_class = str(ds.get("SOPClassUID") or file_meta.get("MediaStorageSOPClassUID") or "")
    sop_uid = str(ds.get("SOPInstanceUID") or file_meta.get("MediaStorageSOPInstanceUID") or "")
    if sop_uid and sop_uid in sop_seen:
        unused.append(UnusedFile(path, "duplicate", f"same SOPInstanceUID as {sop_seen[sop_uid]}"))
        return
    if sop_uid:
        sop_seen[sop_uid] = path
    kind = _object_kind(sop_class)
    if kind is None and "DirectoryRecordSequence" in ds:
        kind = "DICOMDIR"
    is_image_class = "Image Storage" in (UID(sop_class).name if sop_class else "")
    if kind is None and header.element_offset is None and not (is_image_class or "Rows" in ds):
        kind = "OTHER"  # no pixel data and not an image class: some other object
    if kind is not None:
        objects.append(_non_image(ds, path, kind, sop_class, sop_uid))
        return
    try:
        images = _images_of(header, path)
    except _UnusableError as exc:
        unused.append(UnusedFile(path, exc.reason, exc.detail))
        return
    uid = str(ds.get("SeriesInstanceUID", "")) or f"(no SeriesInstanceUID) {path.parent}"
    images_by_series.setdefault(uid, []).extend(images)
    acq = _acq_datetime(ds)
    if uid not in meta:
        meta[uid] = _series_meta(ds)
    if acq:
        meta[uid].acquisition_datetimes.append(acq)


def _non_image(ds: Dataset, path: Path, kind: str, sop_class: str, sop_uid: str) -> NonImageObject:
    return NonImageObject(
        path=path,
        kind=kind,
        sop_class_uid=sop_class,
        sop_instance_uid=sop_uid,
        modality=str(ds.get("Modality", "")),
        series_instance_uid=str(ds.get("SeriesInstanceUID", "")),
        study_instance_uid=str(ds.get("StudyInstanceUID", "")),
        frame_of_reference_uid=str(ds.get("FrameOfReferenceUID", "")),
    )


def _series_meta(ds: Dataset) -> _SeriesMeta:
    """Series-level header values, from the first instance of a series."""
    return _SeriesMeta(
        modality=str(ds.get("Modality", "")),
        description=str(ds.get("SeriesDescription", "")),
        series_number=_int(ds.get("SeriesNumber")),
        study_instance_uid=str(ds.get("StudyInstanceUID", "")),
        frame_of_reference_uid=str(ds.get("FrameOfReferenceUID", "")),
        units=_units_of(ds),
        acquisition_datetimes=[],
    )


def _make_series(
    uid: str, series_instance_uid: str, stack_index: int, m: _SeriesMeta, images: list[_Image]
) -> Series:
    """A :class:`Series` of ``images`` (one stack), described by the first of them."""
    first = images[0]
    return Series(
        uid=uid,
        series_instance_uid=series_instance_uid,
        stack_index=stack_index,
        modality=m.modality,
        description=m.description,
        series_number=m.series_number,
        study_instance_uid=m.study_instance_uid,
        frame_of_reference_uid=m.frame_of_reference_uid,
        rows=first.rows,
        columns=first.columns,
        orientation=first.orientation,
        pixel_spacing=first.pixel_spacing,
        acquisition_datetime=min(m.acquisition_datetimes) if m.acquisition_datetimes else None,
        is_localizer=_is_localizer(first.image_type),
        is_multiframe=first.n_frames > 1,
        transfer_syntaxes=tuple(sorted({im.transfer_syntax for im in images})),
        units=m.units,
        images=tuple(images),
    )


def _is_localizer(image_type: tuple[str, ...]) -> bool:
    return any(t.upper() in ("LOCALIZER", "SCOUT", "SURVEY", "TOPOGRAM") for t in image_type)


def _build_stacks(
    images_by_series: dict[str, list[_Image]], meta: dict[str, _SeriesMeta], tol: float = 1e-4
) -> list[Series]:
    out: list[Series] = []
    for uid, images in images_by_series.items():
        groups: list[tuple[tuple[Any, ...], list[_Image]]] = []
        for im in images:
            key = (im.rows, im.columns, _is_localizer(im.image_type), im.stack_key)
            for gkey, gimgs in groups:
                ref = gimgs[0].orientation
                if gkey == key and (
                    (ref is None and im.orientation is None)
                    or (
                        ref is not None
                        and im.orientation is not None
                        and max(abs(a - b) for a, b in zip(ref, im.orientation, strict=True)) <= tol
                    )
                ):
                    gimgs.append(im)
                    break
            else:
                groups.append((key, [im]))
        groups.sort(key=lambda g: (g[0][2], -len(g[1]), str(g[1][0].path), g[1][0].frame))
        for n, (_, gimgs) in enumerate(groups, start=1):
            stack_uid = uid if len(groups) == 1 else f"{uid}#{n}"
            out.append(_make_series(stack_uid, uid, n, meta[uid], gimgs))
    out.sort(key=lambda s: (s.series_number if s.series_number is not None else 1 << 30, s.uid))
    return out


# ---------------------------------------------------------------------------- load
def load_folder(folder: str | Path, *, series_uid: str | None = None, **load_kwargs: Any) -> Volume:
    """Scan ``folder`` and load its one image stack (or the one named by ``series_uid``).

    Raises
    ------
    InputPathError, NoImageSeriesError, MultipleSeriesError, SeriesNotFoundError
        When the folder cannot be read or no single stack can be chosen.
    GeometryError, PixelDataError
        From :func:`load`.
    """
    catalogue = scan(folder)
    return load(catalogue.select(series_uid), **load_kwargs)


def load_files(paths: Sequence[str | Path], **load_kwargs: Any) -> Volume:
    """Load the given files as ONE stack, without splitting (geometry checks apply).

    Raises
    ------
    InputPathError
        If a path does not exist.
    DicomReadError, PixelDataError
        If a file is not a readable DICOM image.
    GeometryError
        If the files do not form one regular volume (see :func:`load`).
    """
    if not paths:
        raise InputPathError("load_files needs at least one file; got none")
    images: list[_Image] = []
    meta: _SeriesMeta | None = None
    uid = ""
    with _quiet_pydicom():
        for p in map(Path, paths):
            if not p.is_file():
                raise InputPathError(f"file does not exist: {p}", files=[p])
            try:
                header = _read_header(p)
            except PermissionError as exc:
                raise InputPathError(f"permission denied: {p}", files=[p]) from exc
            except Exception as exc:
                raise DicomReadError(
                    f"cannot read DICOM header: {type(exc).__name__}: {exc}",
                    files=[p],
                    hint="check the file is DICOM (run `netvolume scan` on its folder)",
                ) from exc
            try:
                images.extend(_images_of(header, p))
            except _UnusableError as exc:
                hint = (
                    "the file was cut short; export it again"
                    if exc.reason == "truncated"
                    else "this is not an image object"
                )
                raise PixelDataError(exc.detail, files=[p], tag="PixelData", hint=hint) from exc
            if meta is None:
                uid = str(header.ds.get("SeriesInstanceUID", ""))
                meta = _series_meta(header.ds)
    assert meta is not None
    series = _make_series(uid, uid, 1, meta, images)
    return load(series, **load_kwargs)


def _where(im: _Image) -> str:
    return f"{im.path}" + (f" frame {im.frame + 1}" if im.n_frames > 1 else "")


def _check_consistency(
    images: Sequence[_Image], *, orientation_tol: float, pixel_spacing_rtol: float
) -> None:
    first = images[0]
    for im in images[1:]:
        if (im.rows, im.columns) != (first.rows, first.columns):
            raise InconsistentMatrixError(
                f"matrix {im.rows}x{im.columns} differs from {first.rows}x{first.columns}",
                files=[first.path, im.path],
                tag="Rows/Columns",
                hint="these images belong to different stacks: load them separately "
                "(`netvolume scan` lists the stacks)",
            )
        if im.pixel_format != first.pixel_format:
            raise InconsistentPixelFormatError(
                f"pixel format (BitsAllocated, BitsStored, PixelRepresentation, "
                f"SamplesPerPixel, PhotometricInterpretation, PlanarConfiguration) "
                f"{im.pixel_format} differs from {first.pixel_format}",
                files=[first.path, im.path],
                tag="BitsAllocated/PixelRepresentation",
                hint="load the images separately",
            )
    missing = [im for im in images if im.position is None or im.orientation is None]
    if missing:
        raise MissingGeometryError(
            f"{len(missing)} of {len(images)} images have no ImagePositionPatient / "
            "ImageOrientationPatient, so they cannot be placed in 3D (a projection, "
            "screenshot or secondary capture?)",
            files=[_where(im) for im in missing],
            tag="ImagePositionPatient/ImageOrientationPatient",
            hint="only cross-sectional image stacks can be loaded as volumes",
        )
    ref_o = np.asarray(first.orientation)
    ref_s = first.pixel_spacing
    for im in images[1:]:
        diff = float(np.abs(np.asarray(im.orientation) - ref_o).max())
        if diff > orientation_tol:
            raise InconsistentOrientationError(
                f"ImageOrientationPatient {list(im.orientation or ())} differs from "
                f"{list(first.orientation or ())} by {diff:.3g} (tolerance "
                f"orientation_tol={orientation_tol:g})",
                files=[_where(first), _where(im)],
                tag="ImageOrientationPatient",
                hint="the images form several stacks: `netvolume scan` lists them, "
                "load one at a time",
            )
        sp = im.pixel_spacing
        if (ref_s is None) != (sp is None) or (
            ref_s is not None
            and sp is not None
            and max(abs(a - b) / max(abs(b), 1e-12) for a, b in zip(sp, ref_s, strict=True))
            > pixel_spacing_rtol
        ):
            raise InconsistentPixelSpacingError(
                f"PixelSpacing {list(sp) if sp else None} differs from "
                f"{list(ref_s) if ref_s else None} (relative tolerance "
                f"pixel_spacing_rtol={pixel_spacing_rtol:g})",
                files=[_where(first), _where(im)],
                tag="PixelSpacing",
                hint="load the images separately",
            )
    if ref_s is None:
        raise MissingGeometryError(
            "images have no PixelSpacing (in-plane spacing unknown)",
            files=[_where(first)],
            tag="PixelSpacing",
            hint="only calibrated cross-sectional images can be loaded as volumes",
        )


def _unit(v: np.ndarray) -> np.ndarray:
    n = float(np.linalg.norm(v))
    return v / n if n > 0 else v


def load(
    series: Series,
    *,
    orientation_tol: float = 1e-4,
    pixel_spacing_rtol: float = 1e-3,
    slice_spacing_rtol: float = 0.01,
    duplicate_tol_mm: float = 0.01,
    correct_tilt: bool = True,
    tilt_tol_deg: float = 0.05,
    allow_single_slice: bool = False,
) -> Volume:
    """Load one image stack as a Volume (LPS affine, slices sorted along the normal).

    Parameters
    ----------
    series
        A stack from :func:`scan` (``catalogue.series[i]`` or ``catalogue.get(uid)``).
    orientation_tol
        Largest accepted difference between ImageOrientationPatient values of two slices.
    pixel_spacing_rtol
        Largest accepted relative difference between PixelSpacing values.
    slice_spacing_rtol
        Largest accepted relative deviation of a slice-to-slice distance from the median
        distance; beyond it the stack has a gap (a distance near a multiple of the median:
        :class:`MissingSliceError`) or is irregular (:class:`IrregularSpacingError`).
    duplicate_tol_mm
        Two slices closer than this (in mm, in 3D) are at the same position. Identical
        ones are dropped (and noted in provenance); different ones raise
        :class:`DuplicatePositionError`.
    correct_tilt
        Resample a sheared (gantry-tilted) stack onto an orthogonal grid (default), or
        raise :class:`GantryTiltError` when False.
    tilt_tol_deg
        Shear angles below this are treated as rounding noise (no resampling).
    allow_single_slice
        Load a one-slice stack with slice spacing from SpacingBetweenSlices or
        SliceThickness (noted in provenance) instead of raising
        :class:`SingleSliceError`.

    Returns
    -------
    Volume
        Rescaled values (HU for CT, the Units of PET/NM), dtype int16/int32 when every
        slope and intercept is integral and the range fits, else float32; RGB as uint8
        with a trailing channel axis.

    Raises
    ------
    GeometryError
        A subclass naming the files and the problem (see :mod:`netvolume.errors`).
    PixelDataError
        If pixel data cannot be read or decoded.
    """
    volume, _ = _load_stack(
        series,
        orientation_tol=orientation_tol,
        pixel_spacing_rtol=pixel_spacing_rtol,
        slice_spacing_rtol=slice_spacing_rtol,
        duplicate_tol_mm=duplicate_tol_mm,
        correct_tilt=correct_tilt,
        tilt_tol_deg=tilt_tol_deg,
        allow_single_slice=allow_single_slice,
    )
    return volume


def _load_stack(
    series: Series,
    *,
    orientation_tol: float = 1e-4,
    pixel_spacing_rtol: float = 1e-3,
    slice_spacing_rtol: float = 0.01,
    duplicate_tol_mm: float = 0.01,
    correct_tilt: bool = True,
    tilt_tol_deg: float = 0.05,
    allow_single_slice: bool = False,
) -> tuple[Volume, list[_Image]]:
    """:func:`load`, also returning the image records in slice order (one per slice).

    Modules that need per-slice header values (PET timing, vendor scale factors) use the
    records to read them in the order of the Volume's first axis.
    """
    settings = {
        "orientation_tol": orientation_tol,
        "pixel_spacing_rtol": pixel_spacing_rtol,
        "slice_spacing_rtol": slice_spacing_rtol,
        "duplicate_tol_mm": duplicate_tol_mm,
        "correct_tilt": correct_tilt,
        "tilt_tol_deg": tilt_tol_deg,
        "allow_single_slice": allow_single_slice,
    }
    images = list(series.images)
    if not images:
        raise NoImageSeriesError(f"stack {series.uid} has no images")
    _check_consistency(
        images, orientation_tol=orientation_tol, pixel_spacing_rtol=pixel_spacing_rtol
    )
    first = images[0]
    assert first.orientation is not None and first.pixel_spacing is not None
    row_dir = _unit(np.asarray(first.orientation[:3]))
    col_dir = _unit(np.asarray(first.orientation[3:]))
    normal = _unit(np.cross(row_dir, col_dir))
    positions = np.array([im.position for im in images], dtype=np.float64)
    d = positions @ normal
    order = sorted(
        range(len(images)),
        key=lambda n: (d[n], images[n].instance_number or 0, str(images[n].path), images[n].frame),
    )
    images = [images[n] for n in order]
    positions = positions[order]
    d = d[order]
    notes: list[str] = []

    # group slices at the same 3D position (duplicates)
    groups: list[list[int]] = [[0]]
    for n in range(1, len(images)):
        if np.linalg.norm(positions[n] - positions[groups[-1][0]]) <= duplicate_tol_mm:
            groups[-1].append(n)
        else:
            groups.append([n])
    uniq = [g[0] for g in groups]
    u_pos = positions[uniq]
    u_d = d[uniq]
    n_slices = len(uniq)

    row_sp, col_sp = first.pixel_spacing  # PixelSpacing = (row spacing, column spacing)
    values: np.ndarray | None = None
    if n_slices == 1 and len(images) > 1:
        # several images at one position: different pixels is the real problem to report
        values, images = _drop_duplicates(series, images, groups, positions, notes)
    if n_slices == 1:
        if not allow_single_slice:
            dup = f" ({len(groups[0])} identical images)" if len(groups[0]) > 1 else ""
            raise SingleSliceError(
                f"stack {series.uid} has a single slice position{dup}: the slice spacing is "
                "unknown, so this is not a 3D volume",
                files=[_where(im) for im in images],
                hint="load it with allow_single_slice=True (CLI --allow-single-slice) to "
                "use SliceThickness as the spacing",
            )
        spacing = first.spacing_between_slices or first.slice_thickness
        if not spacing or spacing <= 0:
            spacing = 1.0
            notes.append("single slice without SliceThickness: slice spacing set to 1 mm")
        else:
            notes.append(
                f"single slice: slice spacing {spacing:g} mm from SliceThickness/"
                "SpacingBetweenSlices"
            )
        shift = np.zeros((1, 2))
    else:
        spacing, shift = _check_spacing_and_tilt(
            series,
            images,
            uniq,
            u_pos,
            u_d,
            row_dir,
            col_dir,
            normal,
            slice_spacing_rtol=slice_spacing_rtol,
            correct_tilt=correct_tilt,
            tilt_tol_deg=tilt_tol_deg,
        )

    if values is None:
        values, images = _drop_duplicates(series, images, groups, positions, notes)
    array = values

    affine = np.eye(4)
    affine[:3, 0] = normal * spacing
    affine[:3, 1] = col_dir * row_sp
    affine[:3, 2] = row_dir * col_sp
    affine[:3, 3] = u_pos[0]
    if np.any(shift != 0):
        array, origin_shift, note = _correct_tilt(array, shift, row_sp, col_sp)
        affine[:3, 3] = u_pos[0] + origin_shift[0] * col_dir + origin_shift[1] * row_dir
        notes.append(note)

    sops = tuple(im.sop_instance_uid for im in images)
    h = hashlib.sha256()
    for im in images:
        h.update(f"{im.sop_instance_uid}|{im.frame}|{im.file_size}\n".encode())
    prov = Provenance(
        series_instance_uid=series.series_instance_uid,
        sop_instance_uids=sops,
        file_list_sha256=h.hexdigest(),
        source=str(images[0].path.parent),
        settings=settings,
        notes=tuple(notes),
    )
    volume = Volume(
        array,
        affine,
        frame_of_reference_uid=series.frame_of_reference_uid or None,
        modality=series.modality,
        units=series.units,
        provenance=prov,
    )
    return volume, images


def _drop_duplicates(
    series: Series,
    images: list[_Image],
    groups: list[list[int]],
    positions: np.ndarray,
    notes: list[str],
) -> tuple[np.ndarray, list[_Image]]:
    """Read the values; drop identical images at one position, raise on different ones.

    Images are compared after rescaling, so two copies of a slice stored with different
    RescaleSlope/Intercept but the same values are identical.
    """
    values = _read_values(images)
    keep: list[int] = []
    dropped: list[str] = []
    for g in groups:
        keep.append(g[0])
        for other in g[1:]:
            same = np.array_equal(values[g[0]], values[other])
            if not same:
                raise DuplicatePositionError(
                    f"{len(g)} images at the same position {positions[g[0]].round(3).tolist()}"
                    " (LPS mm) have different pixel data: several acquisitions, echoes or "
                    "time points mixed in one stack",
                    files=[_where(images[n]) for n in g],
                    tag="ImagePositionPatient",
                    hint="separate the acquisitions (e.g. by AcquisitionNumber or "
                    "EchoNumbers) and load each with load_files()",
                )
            dropped.append(_where(images[other]))
    if dropped:
        notes.append(f"dropped {len(dropped)} identical duplicate image(s): " + "; ".join(dropped))
        logger.warning(
            "stack %s: dropped %d identical duplicate slice(s)", series.uid, len(dropped)
        )
        values = values[keep]
        images = [images[n] for n in keep]
    return values, images


def _check_spacing_and_tilt(
    series: Series,
    images: Sequence[_Image],
    uniq: Sequence[int],
    u_pos: np.ndarray,
    u_d: np.ndarray,
    row_dir: np.ndarray,
    col_dir: np.ndarray,
    normal: np.ndarray,
    *,
    slice_spacing_rtol: float,
    correct_tilt: bool,
    tilt_tol_deg: float,
) -> tuple[float, np.ndarray]:
    """Return (slice spacing along the normal, per-slice in-plane shift in mm).

    The shift of slice k is ``((p_k - p_0) . col_dir, (p_k - p_0) . row_dir)``, zero for
    an orthogonal stack.
    """
    diffs = np.diff(u_d)
    median = float(np.median(diffs))
    dev = np.abs(diffs - median) / median
    bad = np.nonzero(dev > slice_spacing_rtol)[0]
    if bad.size:
        # a gap: every step is a whole multiple of the smallest step (with a few slices
        # left the median can sit between the two, so it is not the base here)
        base = float(diffs.min())
        ratios = diffs / base
        whole = np.abs(ratios - np.round(ratios)) <= np.maximum(slice_spacing_rtol * ratios, 0.02)
        gaps = np.nonzero(np.round(ratios) >= 2)[0]
        b = int(gaps[0]) if gaps.size else int(bad[0])
        before, after = images[uniq[b]], images[uniq[b + 1]]
        if bool(np.all(whole)) and gaps.size:
            n_missing = int(np.sum(np.round(ratios) - 1))
            raise MissingSliceError(
                f"{n_missing} slice(s) missing in stack {series.uid}: {diffs[b]:.4g} mm "
                f"between two slices where the spacing is {base:.4g} mm (first gap after "
                f"slice {b + 1} of {len(uniq)}; {gaps.size} gap(s) in all)",
                files=[_where(before), _where(after)],
                tag="ImagePositionPatient",
                hint="the export is incomplete: export the series again from PACS",
            )
        uniq_d = ", ".join(f"{v:.4g}" for v in sorted(set(np.round(diffs, 3).tolist())))
        raise IrregularSpacingError(
            f"slice spacing varies in stack {series.uid}: distances between consecutive "
            f"slices {uniq_d} mm (median {median:.4g} mm, relative tolerance "
            f"slice_spacing_rtol={slice_spacing_rtol:g})",
            files=[_where(before), _where(after)],
            tag="ImagePositionPatient",
            hint="this stack cannot be stored on a regular grid; check the export or raise "
            "slice_spacing_rtol if the variation is rounding noise",
        )
    spacing = float((u_d[-1] - u_d[0]) / (len(u_d) - 1))
    rel = u_pos - u_pos[0]
    in_plane = rel - np.outer(rel @ normal, normal)
    shift = np.stack([in_plane @ col_dir, in_plane @ row_dir], axis=1)  # (rows, cols) mm
    total = float(np.linalg.norm(in_plane[-1]))
    angle = math.degrees(math.atan2(total, float(u_d[-1] - u_d[0])))
    if angle <= tilt_tol_deg:
        return spacing, np.zeros_like(shift)
    if not correct_tilt:
        raise GantryTiltError(
            f"stack {series.uid} is sheared by {angle:.2f} degrees (gantry tilt): slices are "
            "not stacked along their normal",
            files=[_where(images[uniq[0]]), _where(images[uniq[-1]])],
            tag="ImagePositionPatient/GantryDetectorTilt",
            hint="load with correct_tilt=True (the default) to resample onto an orthogonal grid",
        )
    # the shear must be linear along the stack for one regular correction
    k = np.arange(len(u_d), dtype=np.float64)
    fit = np.outer(k, shift[-1] / k[-1])
    resid = float(np.abs(shift - fit).max())
    if resid > 0.1 * min(images[0].pixel_spacing or (1.0, 1.0)):
        raise GantryTiltError(
            f"stack {series.uid} is sheared irregularly (in-plane offsets deviate from a "
            f"constant tilt by up to {resid:.3g} mm)",
            files=[_where(images[uniq[0]]), _where(images[uniq[-1]])],
            tag="ImagePositionPatient",
            hint="check the export: slices of several acquisitions may be mixed",
        )
    return spacing, shift


def _correct_tilt(
    array: np.ndarray, shift: np.ndarray, row_sp: float, col_sp: float
) -> tuple[np.ndarray, np.ndarray, str]:
    """Shift each slice within its plane so the stack becomes orthogonal (as dcm2niix).

    Slice k's pixel (j, i) lies ``shift[k]`` mm (along rows, columns) off the line through
    slice 0 along the normal. The output grid is anchored on slice 0 (whose pixels are
    kept exactly, as dcm2niix does) and enlarged by whole pixels to hold every shifted
    slice; the other slices are linearly interpolated within their own plane (no
    interpolation across slices). Samples within half a pixel of the source edge take the
    edge value (the pixel's footprint); beyond the source field of view the array minimum
    is used.

    Returns
    -------
    (array, origin shift in mm (along rows, along columns), note)
    """
    from scipy import ndimage

    sp = np.array([row_sp, col_sp])
    in_px = shift / sp
    lo = np.floor(in_px.min(axis=0) + 1e-6).astype(int)
    hi = np.ceil(in_px.max(axis=0) - 1e-6).astype(int)
    n, rows, cols = array.shape[:3]
    out_shape = (rows + int(hi[0] - lo[0]), cols + int(hi[1] - lo[1]))
    fill = float(array.min())
    is_int = array.dtype.kind in "iu"
    out = np.empty((n, *out_shape), dtype=array.dtype)
    for k in range(n):
        # output pixel (j', i') lies at input index (j', i') + lo - shift_k / spacing
        offset = lo - in_px[k]
        res = ndimage.affine_transform(
            array[k].astype(np.float64),
            np.ones(2),
            offset=offset,
            output_shape=out_shape,
            order=1,
            mode="nearest",
        )
        # a pixel covers +-0.5 around its centre: samples within the source field of view
        # (index in [-0.5, n - 0.5]) take the edge value, samples beyond it the fill
        for axis, n_in in ((0, rows), (1, cols)):
            src = np.arange(out_shape[axis]) + offset[axis]
            outside = (src < -0.5) | (src > n_in - 0.5)
            if axis == 0:
                res[outside, :] = fill
            else:
                res[:, outside] = fill
        out[k] = np.rint(res) if is_int else res
    note = (
        f"gantry tilt corrected: {n} slices shifted in-plane by up to "
        f"{np.abs(shift).max():.3f} mm (linear interpolation within each slice, slice 1 "
        f"kept exactly), matrix {rows}x{cols} -> {out_shape[0]}x{out_shape[1]}"
    )
    return out, lo * sp, note


# ---------------------------------------------------------------------------- pixels
def _read_values(images: Sequence[_Image]) -> np.ndarray:
    """Read the pixel data of ``images`` and apply the Modality LUT (rescale) per image.

    Native little-endian data takes the fast route: each image is read straight from its
    file into the output array (``readinto`` at the offset recorded by ``scan``), its
    bits above BitsStored cleared (or sign-extended) and rescaled while the slice is still
    in the CPU cache; slices are spread over a few threads (file reads and numpy ufuncs
    release the GIL). Everything else is decoded by pydicom, then rescaled.
    """
    first = images[0]
    alloc, _bits, representation, spp, photometric, planar = first.pixel_format
    native = (
        all(im.transfer_syntax in _NATIVE_LE and im.pixel_offset is not None for im in images)
        and alloc in (8, 16, 32)
        and (spp == 1 or (spp == 3 and planar == 0 and photometric == "RGB"))
    )
    if not native:
        return _rescale(_read_pixels_pydicom(images), images)
    stored_dtype = np.dtype(f"{'i' if representation == 1 else 'u'}{alloc // 8}")
    out_dtype = _output_dtype(images, stored_dtype, data=None)
    if out_dtype is None:
        # the declared range (BitsStored) would need int32, but the values present rarely
        # do: try int16, checking each slice's range while it is in cache
        try:
            return _read_native(
                images, stored_dtype, np.dtype(np.int16), rescale=True, check_range=True
            )
        except _RangeOverflowError:
            raw = _read_native(images, stored_dtype, stored_dtype, rescale=False)
            return _rescale(raw, images, masked=True)
    return _read_native(images, stored_dtype, out_dtype, rescale=True)


class _RangeOverflowError(Exception):
    """Internal: a slice's rescaled values do not fit the optimistic output type."""


def _read_native(
    images: Sequence[_Image],
    stored_dtype: np.dtype,
    out_dtype: np.dtype,
    *,
    rescale: bool,
    check_range: bool = False,
) -> np.ndarray:
    """Fast route of :func:`_read_values` for native little-endian pixel data.

    With ``check_range``, each slice's stored range is checked (in cache) against the
    integer ``out_dtype`` before it is rescaled in place; :class:`_RangeOverflowError` is raised
    on the first slice that does not fit.
    """
    first = images[0]
    alloc, bits, representation, spp = first.pixel_format[:4]
    shape = (len(images), first.rows, first.columns) + ((spp,) if spp > 1 else ())
    out = np.empty(shape, dtype=out_dtype)
    inplace = out_dtype.itemsize == stored_dtype.itemsize and out_dtype.kind in "iu"
    slopes = [im.slope for im in images]
    inters = [im.intercept for im in images]
    needs_fix = spp == 1 and 0 < bits < alloc
    do_scale = rescale and spp == 1
    integral = out_dtype.kind in "iu"

    def work(ks: range) -> None:
        scratch = None if inplace else np.empty(shape[1:], dtype=stored_dtype)
        for k in ks:
            im = images[k]
            buf: np.ndarray = out[k].view(stored_dtype) if inplace else scratch  # type: ignore[assignment]
            try:
                with open(im.path, "rb") as fp:
                    fp.seek(im.pixel_offset or 0)
                    got = fp.readinto(buf.data.cast("B"))
            except OSError as exc:
                raise PixelDataError(
                    f"cannot read pixel data: {exc}", files=[_where(im)], tag="PixelData"
                ) from exc
            if got != buf.nbytes:
                raise PixelDataError(
                    f"truncated pixel data: {got} of {buf.nbytes} bytes",
                    files=[_where(im)],
                    tag="PixelData",
                    hint="the file was cut short; export it again",
                )
            if needs_fix:
                _fix_stored_bits(buf, alloc, bits, representation)
            slope, inter = slopes[k], inters[k]
            if check_range:
                lo, hi = int(buf.min()), int(buf.max())
                info = np.iinfo(out_dtype)
                ends = (slope * lo + inter, slope * hi + inter)
                if not (info.min <= min(ends) and max(ends) <= info.max and hi <= info.max):
                    raise _RangeOverflowError
            if not inplace:
                if do_scale and slope != 1.0:
                    np.multiply(buf, slope, out=out[k], casting="unsafe")
                else:
                    out[k] = buf
                if do_scale and inter != 0.0:
                    np.add(
                        out[k], inter if not integral else int(inter), out=out[k], casting="unsafe"
                    )
            elif do_scale:
                o = out[k]
                if slope != 1.0:
                    np.multiply(o, int(slope), out=o, casting="unsafe")
                if inter != 0.0:
                    np.add(o, int(inter), out=o, casting="unsafe")

    n_workers = max(1, min(len(images), os.cpu_count() or 1, _MAX_READ_THREADS))
    if n_workers == 1:
        work(range(len(images)))
        return out
    bounds = np.linspace(0, len(images), n_workers + 1).astype(int)
    with concurrent.futures.ThreadPoolExecutor(max_workers=n_workers) as pool:
        futures = [pool.submit(work, range(bounds[w], bounds[w + 1])) for w in range(n_workers)]
        for fut in futures:
            fut.result()  # re-raises a worker's PixelDataError
    return out


def _fix_stored_bits(buf: np.ndarray, alloc: int, bits: int, representation: int) -> None:
    """Clear (unsigned) or sign-extend (signed) the bits above BitsStored, in place.

    Bits outside BitsStored carry no pixel value (DICOM PS3.5 section 8.1.1); some
    scanners leave overlay or padding bits there.
    """
    if representation == 1:
        sh = alloc - bits
        np.left_shift(buf, sh, out=buf)
        np.right_shift(buf, sh, out=buf)
    else:
        np.bitwise_and(buf, (1 << bits) - 1, out=buf)


def _output_dtype(
    images: Sequence[_Image], stored_dtype: np.dtype, data: np.ndarray | None
) -> np.dtype | None:
    """Choose the output dtype of rescaled values.

    Unchanged when no image is rescaled (slope 1, intercept 0) or the data are RGB;
    int16 / int32 when every slope and intercept is integral and the rescaled range fits
    (the range declared by BitsStored, or the range of ``data`` when given); float32
    otherwise. None when ``data`` is needed to decide and was not given.
    """
    fmt = images[0].pixel_format
    if fmt[3] > 1 or stored_dtype.kind == "f":
        return stored_dtype if fmt[3] > 1 else np.dtype(np.float32)
    slopes = np.array([im.slope for im in images], dtype=np.float64)
    inters = np.array([im.intercept for im in images], dtype=np.float64)
    if np.all(slopes == 1.0) and np.all(inters == 0.0):
        return stored_dtype
    if not (np.all(slopes == np.round(slopes)) and np.all(inters == np.round(inters))):
        return np.dtype(np.float32)
    if data is None:
        lo, hi = _stored_range(fmt, stored_dtype)
    else:
        lo, hi = (int(data.min()), int(data.max())) if data.size else (0, 0)
    ends = np.concatenate([slopes * lo + inters, slopes * hi + inters])
    rmin, rmax = float(ends.min()), float(ends.max())
    for cand in (np.int16, np.int32):
        info = np.iinfo(cand)
        if info.min <= rmin and rmax <= info.max:
            if data is None and cand is np.int32 and stored_dtype.itemsize < 4:
                return None  # the values present may well fit int16: look at them
            return np.dtype(cand)
    return np.dtype(np.float64) if data is not None else None


def _read_pixels_pydicom(images: Sequence[_Image]) -> np.ndarray:
    """Decode pixel data through pydicom (compressed, big endian, odd formats)."""
    frames: list[np.ndarray] = []
    cache: dict[Path, np.ndarray] = {}
    for im in images:
        arr = cache.get(im.path)
        if arr is None:
            try:
                with _quiet_pydicom():
                    ds = pydicom.dcmread(im.path)
                    arr = np.asarray(ds.pixel_array)
            except Exception as exc:
                ts = UID(im.transfer_syntax)
                raise PixelDataError(
                    f"cannot decode pixel data ({ts.name}, {ts}): {type(exc).__name__}: {exc}",
                    files=[_where(im)],
                    tag="PixelData",
                    hint="the file may be truncated or corrupt; for compressed data check "
                    "that pylibjpeg and its libjpeg/openjpeg/rle plugins are installed",
                ) from exc
            if im.n_frames > 1:
                if arr.shape[0] != im.n_frames:
                    raise PixelDataError(
                        f"decoded {arr.shape[0]} frames, NumberOfFrames says {im.n_frames}",
                        files=[im.path],
                        tag="NumberOfFrames",
                    )
                cache[im.path] = arr
        frame = arr[im.frame] if im.n_frames > 1 else arr
        expected = (im.rows, im.columns) + ((im.pixel_format[3],) if im.pixel_format[3] > 1 else ())
        if frame.shape != expected:
            raise PixelDataError(
                f"decoded frame has shape {frame.shape}, {expected} expected",
                files=[_where(im)],
                tag="PixelData",
            )
        frames.append(frame)
    out = np.stack(frames)
    alloc, _, representation, _, _, _ = images[0].pixel_format
    if out.dtype.kind in "iu" and alloc in (8, 16, 32):
        # decoders return various integer widths (int32 for J2K, say): store as declared
        target = np.dtype(f"{'i' if representation == 1 else 'u'}{alloc // 8}")
        if out.dtype != target and out.size:
            info = np.iinfo(target)
            if info.min <= int(out.min()) and int(out.max()) <= info.max:
                out = out.astype(target)
    return out


def _stored_range(fmt: tuple[int, int, int, int, str, int], dtype: np.dtype) -> tuple[int, int]:
    alloc, stored, representation = fmt[0], fmt[1], fmt[2]
    bits = stored if 0 < stored <= alloc else alloc
    if dtype.kind == "f":
        return (0, 0)
    if representation == 1:
        return (-(1 << (bits - 1)), (1 << (bits - 1)) - 1)
    return (0, (1 << bits) - 1)


def _rescale(stored: np.ndarray, images: Sequence[_Image], *, masked: bool = False) -> np.ndarray:
    """Apply BitsStored masking and RescaleSlope/Intercept per image (Modality LUT).

    The slow route of :func:`_read_values`, for decoded data (whole array at once).
    Output dtype as chosen by :func:`_output_dtype` from the values present.
    """
    fmt = images[0].pixel_format
    if fmt[3] > 1:
        return stored
    alloc, bits, representation = fmt[0], fmt[1], fmt[2]
    if (
        not masked
        and stored.dtype.kind in "iu"
        and 0 < bits < alloc
        and stored.dtype.itemsize * 8 == alloc
    ):
        _fix_stored_bits(stored, alloc, bits, representation)
    if all(im.slope == 1.0 and im.intercept == 0.0 for im in images):
        return stored
    out_dtype = _output_dtype(images, stored.dtype, data=stored)
    assert out_dtype is not None
    out = stored if out_dtype == stored.dtype else stored.astype(out_dtype)
    integral = out_dtype.kind in "iu"
    for n, im in enumerate(images):
        if im.slope != 1.0:
            np.multiply(
                out[n], int(im.slope) if integral else im.slope, out=out[n], casting="unsafe"
            )
        if im.intercept != 0.0:
            np.add(
                out[n],
                int(im.intercept) if integral else im.intercept,
                out=out[n],
                casting="unsafe",
            )
    return out

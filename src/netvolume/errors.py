"""The exception tree of netvolume.

Every error raised on bad input is a :class:`NetVolumeError`. Its message says what is
wrong, repeats the offending value next to the expected one, names the file(s) and the
DICOM tag or field, and ends with what to do about it. Messages never contain patient
identifiers (names, IDs, birth dates): files are named by path, instances by UID.

Tree::

    NetVolumeError
    ├── InputPathError            path missing, not a folder, permission denied
    ├── DicomReadError            a file that cannot be parsed as DICOM
    ├── PixelDataError            pixel data missing, truncated or not decodable
    ├── SeriesSelectionError
    │   ├── NoImageSeriesError    nothing loadable in a folder
    │   ├── MultipleSeriesError   several series/stacks and none chosen
    │   ├── SeriesNotFoundError   the requested series UID is not there
    │   ├── MissingSeriesError    a study without the series a job needs (no CT / MR)
    │   └── SeriesModalityError   a named series of the wrong modality (PET named as CT...)
    ├── PatientMismatchError      two series of one job from different patients
    ├── FrameOfReferenceMismatchError  two series not in one patient coordinate system
    ├── GeometryError             a stack that is not one regular 3D volume
    │   ├── InconsistentOrientationError
    │   ├── InconsistentPixelSpacingError
    │   ├── InconsistentMatrixError
    │   ├── InconsistentPixelFormatError
    │   ├── MissingGeometryError  no ImagePositionPatient / ImageOrientationPatient
    │   ├── SingleSliceError
    │   ├── DuplicatePositionError
    │   ├── MissingSliceError     a gap: one or more slices absent
    │   ├── IrregularSpacingError
    │   └── GantryTiltError       a sheared stack while tilt correction is off
    ├── QuantificationError       PET/SPECT activity or SUV not computable
    │   ├── MissingQuantityError  no weight, dose, injection time, half-life...
    │   ├── ContradictoryQuantityError  injection after acquisition, per-slice mismatch
    │   ├── UnsupportedUnitsError unknown Units, CNTS without a scale factor
    │   └── UncorrectedImageError CorrectedImage without ATTN / DECY
    ├── MaskError                 a segmentation that cannot be read onto its image
    │   ├── MaskGridError         frame of reference or extent differs from the image
    │   ├── MaskReferenceError    a SEG / RTSTRUCT made for another series
    │   ├── RoiNotFoundError      unknown ROI / segment name (also a SeriesSelectionError)
    │   ├── ContourError          empty, degenerate or non-planar RTSTRUCT contour
    │   └── MaskOverlapError      overlapping structures asked for in one label map
    ├── AssessmentInputError      a longitudinal record that cannot be assessed
    ├── RegistrationError         a registration that failed or is implausible
    ├── ClinicalDataError         a clinical facts table with a bad column or value
    ├── ProtocolError             a malformed trial protocol definition
    ├── StatisticsInputError      data an outcome statistic cannot be computed on
    ├── VolumeError (also ValueError)  an invalid Volume (shape, affine, ...)
    └── KernelInputError (also ValueError)  bad array, spacing or option given to a kernel
        └── EmptyRegionError      a region (reference sphere, ...) with no voxel in it

The exit code of the command line for each class is given by :data:`EXIT_CODES`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path

__all__ = [
    "EXIT_CODES",
    "AssessmentInputError",
    "ClinicalDataError",
    "ContourError",
    "ContradictoryQuantityError",
    "DicomReadError",
    "DuplicatePositionError",
    "EmptyRegionError",
    "FrameOfReferenceMismatchError",
    "GantryTiltError",
    "GeometryError",
    "InconsistentMatrixError",
    "InconsistentOrientationError",
    "InconsistentPixelFormatError",
    "InconsistentPixelSpacingError",
    "InputPathError",
    "IrregularSpacingError",
    "KernelInputError",
    "MaskError",
    "MaskGridError",
    "MaskOverlapError",
    "MaskReferenceError",
    "MissingGeometryError",
    "MissingQuantityError",
    "MissingSeriesError",
    "MissingSliceError",
    "MultipleSeriesError",
    "NetVolumeError",
    "NoImageSeriesError",
    "PatientMismatchError",
    "PixelDataError",
    "ProtocolError",
    "QuantificationError",
    "RegistrationError",
    "RoiNotFoundError",
    "SeriesModalityError",
    "SeriesNotFoundError",
    "SeriesSelectionError",
    "SingleSliceError",
    "StatisticsInputError",
    "UncorrectedImageError",
    "UnsupportedUnitsError",
    "VolumeError",
]

#: How many file names a message lists before it says "and N more".
_MAX_FILES_IN_MESSAGE = 6


def format_files(files: Iterable[str | Path], limit: int = _MAX_FILES_IN_MESSAGE) -> str:
    """Return a short, readable list of file names for an error message."""
    names = [str(f) for f in files]
    if len(names) <= limit:
        return ", ".join(names)
    return ", ".join(names[:limit]) + f" and {len(names) - limit} more"


class NetVolumeError(Exception):
    """Base class of every error netvolume raises on bad input.

    Parameters
    ----------
    message
        What is wrong, with the offending value and the expected one.
    files
        The files involved (paths), listed in the message.
    tag
        The DICOM keyword (or field name) at fault, if any.
    hint
        What the user can do about it.
    """

    def __init__(
        self,
        message: str,
        *,
        files: Sequence[str | Path] = (),
        tag: str | None = None,
        hint: str | None = None,
    ) -> None:
        self.message = message
        self.files: tuple[Path, ...] = tuple(Path(f) for f in files)
        self.tag = tag
        self.hint = hint
        super().__init__(self._compose())

    def _compose(self) -> str:
        parts = [self.message]
        if self.tag:
            parts.append(f"[tag: {self.tag}]")
        if self.files:
            parts.append(f"[files: {format_files(self.files)}]")
        text = " ".join(parts)
        if self.hint:
            text += f" -> {self.hint}"
        return text


class InputPathError(NetVolumeError):
    """A path that does not exist, is not of the expected kind, or cannot be read."""


class DicomReadError(NetVolumeError):
    """A file that cannot be parsed as DICOM (not DICOM, corrupt, truncated header)."""


class PixelDataError(NetVolumeError):
    """Pixel data that is missing, shorter than declared, or cannot be decoded."""


class SeriesSelectionError(NetVolumeError):
    """No single image series could be chosen from what was found."""


class NoImageSeriesError(SeriesSelectionError):
    """A folder (or catalogue) that contains no loadable image series."""


class MultipleSeriesError(SeriesSelectionError):
    """Several image series or stacks were found and none was chosen."""


class SeriesNotFoundError(SeriesSelectionError):
    """The requested series (or stack) identifier is not in the catalogue."""


class MissingSeriesError(SeriesSelectionError):
    """A study without a series the job needs (``netvolume measure`` without a CT or MR)."""


class SeriesModalityError(SeriesSelectionError):
    """A series named explicitly whose modality does not fit its role (a PET as the CT...)."""


class PatientMismatchError(NetVolumeError):
    """Two series of one job whose PatientID (or PatientBirthDate) differ.

    The message never shows the identifiers: it gives SHA-256 prefixes of both values.
    """


class FrameOfReferenceMismatchError(NetVolumeError):
    """Two series whose FrameOfReferenceUID differ, used together without a registration."""


class GeometryError(NetVolumeError):
    """A set of slices that does not form one regular 3D volume."""


class InconsistentOrientationError(GeometryError):
    """Slices with different ImageOrientationPatient in one stack."""


class InconsistentPixelSpacingError(GeometryError):
    """Slices with different PixelSpacing in one stack."""


class InconsistentMatrixError(GeometryError):
    """Slices with different Rows / Columns in one stack."""


class InconsistentPixelFormatError(GeometryError):
    """Slices with different BitsAllocated / PixelRepresentation / SamplesPerPixel."""


class MissingGeometryError(GeometryError):
    """Images without ImagePositionPatient or ImageOrientationPatient (not a 3D stack)."""


class SingleSliceError(GeometryError):
    """A stack of one slice, whose slice spacing is therefore unknown."""


class DuplicatePositionError(GeometryError):
    """Two or more slices at the same position whose pixel data differ."""


class MissingSliceError(GeometryError):
    """A gap in the stack: one or more slices between two others are absent."""


class IrregularSpacingError(GeometryError):
    """Slice spacing that varies along the stack (and is not explained by a gap)."""


class GantryTiltError(GeometryError):
    """A sheared (gantry-tilted) stack while tilt correction was switched off."""


class QuantificationError(NetVolumeError):
    """PET/SPECT values that cannot be turned into activity concentration or SUV."""


class MissingQuantityError(QuantificationError):
    """A tag needed for the activity or SUV (weight, dose, injection time...) is absent."""


class ContradictoryQuantityError(QuantificationError):
    """Tags that contradict each other (injection after acquisition, values per slice)."""


class UnsupportedUnitsError(QuantificationError):
    """Units (0054,1001) that cannot give the requested quantity (unknown, CNTS alone)."""


class UncorrectedImageError(QuantificationError):
    """CorrectedImage (0028,0051) lacks attenuation or decay correction."""


class MaskError(NetVolumeError):
    """A segmentation (NIfTI, NRRD, DICOM SEG, RTSTRUCT) that cannot be read onto its image."""


class MaskGridError(MaskError):
    """The mask's frame of reference or extent does not match the reference image."""


class MaskReferenceError(MaskError):
    """A DICOM SEG or RTSTRUCT that references another series than the reference image."""


class RoiNotFoundError(MaskError, SeriesSelectionError):
    """An ROI or segment name that the mask does not contain (the message lists them)."""


class ContourError(MaskError):
    """An RTSTRUCT contour that is empty, degenerate, not closed-planar or not in a slice."""


class MaskOverlapError(MaskError):
    """Structures that overlap cannot share one label map."""


class VolumeError(NetVolumeError, ValueError):
    """An invalid :class:`~netvolume.volume.Volume` (bad shape, affine or metadata)."""


class KernelInputError(NetVolumeError, ValueError):
    """An array, spacing or option that a :mod:`netvolume.kernels` function cannot use."""


class EmptyRegionError(KernelInputError):
    """A region to average over (a reference sphere, ...) that holds no voxel."""


class AssessmentInputError(NetVolumeError, ValueError):
    """Longitudinal input that cannot be assessed: a measurement table row with an
    impossible or contradictory value, a time point without a date, a target override
    that breaks RECIST 1.1's limits, ... The message names the patient (pseudonymous
    key as given), the date, the lesion and the field."""


class RegistrationError(NetVolumeError):
    """An image registration that failed or did not converge to a plausible transform."""


class ClinicalDataError(NetVolumeError, ValueError):
    """A clinical facts table (CSV or JSON) that cannot be used: an unknown column, an
    impossible value (age 300, a negative platelet count), an unreadable date, a
    duplicated patient, two units of one fact that disagree. The message names the
    file, the row (line number) and the field; never the patient's identifiers."""


class ProtocolError(NetVolumeError, ValueError):
    """A trial protocol definition (data file) that is malformed: an unknown fact or
    imaging rule, an operator that does not exist, a criterion without its source, or a
    protocol name that is not defined."""


class StatisticsInputError(NetVolumeError, ValueError):
    """Data an outcome statistic cannot be computed on: arrays of different lengths, a
    negative time, an event indicator that is not 0/1, too few observations, a table of
    counts with a negative cell, ..."""


#: Exit codes of the ``netvolume`` command line (see ``netvolume --help``).
EXIT_CODES: dict[str, int] = {
    "ok": 0,
    "data_error": 1,  # the input was read but is not usable (any NetVolumeError but below)
    "usage_error": 2,  # bad command-line arguments (argparse's own code)
    "input_path_error": 3,  # path missing, not a folder, permission denied
    "selection_error": 4,  # no series, several and none chosen, unknown UID or ROI name
    "internal_error": 70,  # a bug in netvolume: please report it (EX_SOFTWARE)
}

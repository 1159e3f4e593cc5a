"""The inputs of ``netvolume measure``: which series, are they one patient, PET on the CT grid.

A study folder (one patient, one visit) is scanned, one anatomical series (CT, else MR)
and one functional series (PET, or quantitative SPECT in Bq/mL) are chosen by documented
rules (:func:`select_series`), checked to belong together (:func:`check_pair`), loaded
(:func:`load_study`: CT in HU, PET in Bq/mL and SUVbw) and, on request, registered
rigidly when they are not in one frame of reference. :func:`pet_on_grid` brings the PET
onto the CT grid, or onto any crop of it, by trilinear interpolation.

Selection rules
---------------
Anatomical: Modality CT or MR, not a localizer, at least :data:`MIN_ANATOMICAL_IMAGES`
images; the one with the most images wins, ties broken by the smallest pixel spacing, then
the lowest SeriesNumber, then the stack id. Functional: Modality PT (any Units), or NM
with Units BQML; preferred in order: Units BQML, attenuation-corrected (CorrectedImage
(0028,0051) contains ATTN; without that tag, a SeriesDescription without "NAC"), most
images, lowest SeriesNumber, stack id. A series named explicitly (SeriesInstanceUID or
stack id ``UID#N``) always wins, provided its modality fits its role.

Consistency
-----------
The CT and PET must come from one patient (PatientID, and PatientBirthDate when both
have one): otherwise :class:`~netvolume.errors.PatientMismatchError`, whose message shows
SHA-256 prefixes, never the identifiers. They must share a FrameOfReferenceUID (one
patient coordinate system, as a hybrid PET/CT acquisition gives): otherwise
:class:`~netvolume.errors.FrameOfReferenceMismatchError`, unless a registration is asked
for. Different StudyInstanceUIDs are only noted.

Registration
------------
Rigid (Euler 3D: three rotations about a centre, three translations) of the PET (moving)
to the CT (fixed) with SimpleITK: geometric-centre initialisation, Mattes mutual
information (50 bins) on a 5 % random sample drawn with a fixed seed, regular-step
gradient descent with physical-shift parameter scales, a three-level pyramid (shrink
4, 2, 1; smoothing 2, 1, 0 mm). The CT is windowed to [-200, 300] HU so bone and air do not
dominate the histogram, and a CT finer than 2 mm is first block-averaged to about 2 mm (the
PET's resolution is coarser still; a 512 x 512 x 300 CT would otherwise cost minutes). The
registration runs on one thread (SimpleITK's multi-threaded metric sums in a scheduling-
dependent order) with a fixed random sample: the same inputs give the same transform, bit
for bit, on any machine; on 2 cores one thread is as fast.

References
----------
Mattes D, Haynor DR, Vesselle H, Lewellen TK, Eubank W. PET-CT image registration in the
chest using free-form deformations. IEEE Trans Med Imaging 2003;22(1):120-128.
Lowekamp BC, Chen DT, Ibanez L, Blezek D. The design of SimpleITK. Front Neuroinform
2013;7:45. DICOM PS3.3 C.7.4.1 (Frame of Reference), C.8.9.4 (PET Image: CorrectedImage).
"""

from __future__ import annotations

import hashlib
import itertools
import re
import warnings
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pydicom
from pydicom.dataset import Dataset
from pydicom.errors import InvalidDicomError

from netvolume.errors import (
    DicomReadError,
    FrameOfReferenceMismatchError,
    InputPathError,
    MissingSeriesError,
    PatientMismatchError,
    QuantificationError,
    SeriesModalityError,
    VolumeError,
)
from netvolume.io import dicom
from netvolume.io import pet as petio
from netvolume.io.dicom import Catalogue, Series
from netvolume.volume import Volume

__all__ = [
    "MIN_ANATOMICAL_IMAGES",
    "REGISTRATION_SEED",
    "REGISTRATION_THREADS",
    "SeriesChoice",
    "StudyInputs",
    "check_pair",
    "load_study",
    "pet_on_grid",
    "register_pet_to_ct",
    "select_series",
]

#: An anatomical stack needs at least this many images (fewer: a scout, a key image).
MIN_ANATOMICAL_IMAGES = 10

#: Seed of the random metric sample of the registration (fixed: reproducible results).
REGISTRATION_SEED = 20_240_917

#: Threads of the registration (SimpleITK's global default while it runs). With more than
#: one, ITK's metric sums in a scheduling-dependent order and the result varies in the
#: last digits from run to run.
REGISTRATION_THREADS = 1

#: CT window (HU) given to the registration metric.
REGISTRATION_CT_WINDOW_HU = (-200.0, 300.0)

#: A finer CT is block-averaged (by whole factors) to about this spacing (mm) before the
#: registration.
REGISTRATION_CT_SPACING_MM = 2.0

_ANATOMICAL = ("CT", "MR")
_FUNCTIONAL = ("PT", "NM")
_NAC_RE = re.compile(r"(?<![A-Z0-9])(NAC|NON[-_ ]?AC|NOAC|UNCORR(ECTED)?)(?![A-Z0-9])")
_LAST = 1 << 30  # sorts a missing SeriesNumber last


# ---------------------------------------------------------------------------- records
@dataclass(frozen=True)
class SeriesChoice:
    """The series chosen for a measurement, and why.

    Attributes
    ----------
    ct
        The anatomical stack (CT, else MR), or None when the study has none.
    pet
        The functional stack (PT, or NM in Bq/mL), or None when the study has none.
    notes
        One line per decision: what was chosen by which rule, and each candidate passed
        over with its reason.
    """

    ct: Series | None
    pet: Series | None
    notes: tuple[str, ...]


@dataclass(frozen=True, eq=False)
class StudyInputs:
    """Everything ``netvolume measure`` reads from one study folder.

    Attributes
    ----------
    root
        The study folder (or file) as given.
    catalogue
        :func:`netvolume.io.dicom.scan` of ``root``.
    ct_series, pet_series
        The chosen stacks (see :func:`select_series`); None when absent.
    ct
        The anatomical Volume (HU for CT), axis 0 the axial slice axis (an axial stack
        exactly as loaded, so slice index k is the k-th slice along the normal; a coronal
        or sagittal stack reoriented to ``"SPL"``).
    pet_bqml
        Activity concentration (Bq/mL, float32, decay correction as stored) on the PET's
        own grid.
    pet_suv
        SUVbw (g/mL, float32) on the PET's own grid; None when the headers do not allow
        an SUV (the reason is in ``notes``).
    slice_thickness_mm
        The CT's SliceThickness (0018,0050) (the most common value over its images), else
        its slice spacing; None without a CT. Used for RECIST measurability.
    pet_transform
        SimpleITK rigid transform mapping CT (fixed) LPS points to PET (moving) LPS
        points, when the PET was registered; None when both share a frame of reference.
        Pass it to :func:`pet_on_grid` (or use :meth:`pet_on`).
    registration
        The registration record (metric value, parameters, iterations, settings) or None.
    notes
        Selection, consistency, loading and registration notes, in that order.
    """

    root: Path
    catalogue: Catalogue
    ct_series: Series | None
    pet_series: Series | None
    ct: Volume | None
    pet_bqml: Volume | None
    pet_suv: Volume | None
    slice_thickness_mm: float | None
    pet_transform: Any
    registration: dict[str, Any] | None
    notes: tuple[str, ...]

    def pet_on(
        self, reference: Volume, *, quantity: Literal["suv", "bqml"] = "suv"
    ) -> Volume | None:
        """The PET (SUVbw or Bq/mL) on ``reference``'s grid (a CT crop), NaN outside its field.

        Applies :attr:`pet_transform` when the PET was registered. Returns None when the
        study has no PET, or no SUV for ``quantity="suv"``.
        """
        src = self.pet_suv if quantity == "suv" else self.pet_bqml
        if src is None:
            return None
        return pet_on_grid(src, reference, transform=self.pet_transform)


# ---------------------------------------------------------------------------- helpers
def _read_header(series: Series) -> tuple[Dataset, Path]:
    """Header (no pixel data) of the first file of ``series``."""
    path = series.files[0]
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", category=UserWarning, module=r"pydicom\..*")
            ds = pydicom.dcmread(path, stop_before_pixels=True, force=True)
    except (InvalidDicomError, OSError, ValueError) as exc:
        raise DicomReadError(
            f"cannot read the header of series {series.uid}: {type(exc).__name__}",
            files=[path],
            hint="check the file (netvolume scan lists what it can read)",
        ) from exc
    return ds, path


def _text(ds: Dataset, keyword: str) -> str:
    value = ds.get(keyword)
    return "" if value is None else str(value).strip()


def _sha(value: str) -> str:
    return hashlib.sha256(value.encode("utf-8")).hexdigest()[:8]


def _label(series: Series) -> str:
    return f"{series.uid} ({series.modality} #{series.series_number} {series.description!r})"


def _listing(catalogue: Catalogue) -> str:
    return "\n  ".join(s.summary() for s in catalogue.series) or "(no image series)"


def _why_not(winner: tuple[Any, ...], other: tuple[Any, ...], reasons: Sequence[str]) -> str:
    """The reason of the first key element where ``other`` sorts after ``winner``."""
    for w, o, reason in zip(winner, other, reasons, strict=True):
        if w != o:
            return reason
    return reasons[-1]


def _attenuation_corrected(series: Series) -> tuple[bool, str]:
    """Whether a PET stack is attenuation-corrected, and the evidence."""
    try:
        ds, _ = _read_header(series)
    except DicomReadError:
        ds = Dataset()
    if "CorrectedImage" in ds:
        value = ds.CorrectedImage
        flags = [str(v).upper() for v in ([value] if isinstance(value, str) else value)]
        return "ATTN" in flags, f"CorrectedImage {flags}"
    nac = _NAC_RE.search(series.description.upper()) is not None
    return not nac, f"no CorrectedImage; SeriesDescription {series.description!r}"


def _named(
    catalogue: Catalogue, uid: str, role: str, option: str, modalities: Sequence[str]
) -> Series:
    series = catalogue.get(uid)
    if series.modality not in modalities:
        raise SeriesModalityError(
            f"{option} {uid} is {series.modality!r} ({series.summary()}), but the {role} "
            f"series must be {' or '.join(modalities)}; image series found:\n  "
            f"{_listing(catalogue)}",
            tag="Modality (0008,0060)",
            hint=f"pass the uid of a {'/'.join(modalities)} series to {option}",
        )
    return series


# ---------------------------------------------------------------------------- selection
def _choose_anatomical(catalogue: Catalogue, uid: str | None, notes: list[str]) -> Series | None:
    if uid is not None:
        series = _named(catalogue, uid, "anatomical", "--ct-series", _ANATOMICAL)
        extra = ""
        if series.is_localizer or series.num_images < MIN_ANATOMICAL_IMAGES:
            extra = (
                f" (although a localizer or under {MIN_ANATOMICAL_IMAGES} images: "
                f"{series.num_images})"
            )
        notes.append(f"anatomical: {_label(series)} chosen by --ct-series{extra}")
        return series
    candidates: list[Series] = []
    for s in catalogue.series:
        if s.modality not in _ANATOMICAL:
            continue
        if s.is_localizer:
            notes.append(f"anatomical: passed over {_label(s)}: a localizer")
        elif s.num_images < MIN_ANATOMICAL_IMAGES:
            notes.append(
                f"anatomical: passed over {_label(s)}: {s.num_images} images "
                f"(< {MIN_ANATOMICAL_IMAGES})"
            )
        else:
            candidates.append(s)
    if not candidates:
        notes.append(
            f"anatomical: none (no CT or MR stack with >= {MIN_ANATOMICAL_IMAGES} images "
            "that is not a localizer)"
        )
        return None

    def key(s: Series) -> tuple[Any, ...]:
        spacing = min(s.pixel_spacing) if s.pixel_spacing else float("inf")
        number = s.series_number if s.series_number is not None else _LAST
        return (-s.num_images, spacing, number, s.uid)

    ranked = sorted(candidates, key=key)
    best = ranked[0]
    rule = (
        "the only candidate"
        if len(ranked) == 1
        else "most images, then finest pixel spacing, then lowest series number"
    )
    notes.append(f"anatomical: {_label(best)}, {best.num_images} images ({rule})")
    for s in ranked[1:]:
        reason = _why_not(
            key(best),
            key(s),
            (
                f"fewer images ({s.num_images} < {best.num_images})",
                f"coarser pixel spacing ({key(s)[1]:.4g} > {key(best)[1]:.4g} mm)",
                "higher series number",
                "same images, spacing and series number: later stack id",
            ),
        )
        notes.append(f"anatomical: passed over {_label(s)}: {reason}")
    return best


def _choose_functional(catalogue: Catalogue, uid: str | None, notes: list[str]) -> Series | None:
    if uid is not None:
        series = _named(catalogue, uid, "PET/SPECT", "--pet-series", _FUNCTIONAL)
        notes.append(f"PET: {_label(series)} chosen by --pet-series")
        return series
    candidates: list[Series] = []
    for s in catalogue.series:
        if s.modality not in _FUNCTIONAL:
            continue
        if s.is_localizer:
            notes.append(f"PET: passed over {_label(s)}: a localizer")
        elif s.modality == "NM" and s.units != "BQML":
            notes.append(f"PET: passed over {_label(s)}: NM with Units {s.units!r}, not BQML")
        else:
            candidates.append(s)
    if not candidates:
        notes.append("PET: none (no PT stack, nor NM in BQML): no uptake values")
        return None
    evidence: dict[str, tuple[bool, str]] = {}
    if len(candidates) > 1:
        evidence = {s.uid: _attenuation_corrected(s) for s in candidates}

    def key(s: Series) -> tuple[Any, ...]:
        ac = evidence.get(s.uid, (True, ""))[0]
        number = s.series_number if s.series_number is not None else _LAST
        return (s.units != "BQML", not ac, -s.num_images, number, s.uid)

    ranked = sorted(candidates, key=key)
    best = ranked[0]
    rule = (
        "the only candidate"
        if len(ranked) == 1
        else "Units BQML, then attenuation-corrected, then most images, then lowest series number"
    )
    notes.append(f"PET: {_label(best)}, Units {best.units}, {best.num_images} images ({rule})")
    for s in ranked[1:]:
        reason = _why_not(
            key(best),
            key(s),
            (
                f"Units {s.units!r}, not BQML",
                f"not attenuation-corrected ({evidence.get(s.uid, (True, ''))[1]})",
                f"fewer images ({s.num_images} < {best.num_images})",
                "higher series number",
                "otherwise equal: later stack id",
            ),
        )
        notes.append(f"PET: passed over {_label(s)}: {reason}")
    return best


def select_series(
    catalogue: Catalogue, *, ct_series: str | None = None, pet_series: str | None = None
) -> SeriesChoice:
    """Choose the anatomical (CT/MR) and functional (PET/SPECT) stacks of a study.

    Parameters
    ----------
    catalogue
        :func:`netvolume.io.dicom.scan` of the study folder.
    ct_series, pet_series
        A SeriesInstanceUID or stack id (``UID#N``) that overrides the rules for that role.

    Returns
    -------
    SeriesChoice
        The stacks (None where the study has none) and a note per decision. The rules are
        in the module docstring.

    Raises
    ------
    SeriesNotFoundError, MultipleSeriesError
        A named uid that is not in the catalogue, or a bare uid of a split series.
    SeriesModalityError
        A named uid whose modality does not fit (``ct_series`` not CT/MR, ``pet_series``
        not PT/NM).
    """
    notes: list[str] = []
    ct = _choose_anatomical(catalogue, ct_series, notes)
    pet = _choose_functional(catalogue, pet_series, notes)
    return SeriesChoice(ct=ct, pet=pet, notes=tuple(notes))


# ---------------------------------------------------------------------------- consistency
def check_pair(ct: Series, pet: Series, *, register: bool) -> list[str]:
    """Check that an anatomical and a PET stack belong together.

    Parameters
    ----------
    ct, pet
        The two stacks; the first file header of each is read.
    register
        Whether the caller will register the PET to the CT: different frames of reference
        are then a note instead of an error.

    Returns
    -------
    list of str
        Notes: a different study, a missing PatientID, frames to be registered.

    Raises
    ------
    PatientMismatchError
        PatientID differs, or PatientBirthDate differs where both have one (the message
        gives SHA-256 prefixes of the values, never the values).
    FrameOfReferenceMismatchError
        FrameOfReferenceUID differs (or is absent from one) and ``register`` is False.
    DicomReadError
        A header that cannot be read.
    """
    notes: list[str] = []
    ct_ds, ct_file = _read_header(ct)
    pet_ds, pet_file = _read_header(pet)
    files = [ct_file, pet_file]
    pair = f"anatomical {ct.uid} and PET {pet.uid}"
    for keyword, tag, required in (
        ("PatientID", "(0010,0020)", True),
        ("PatientBirthDate", "(0010,0030)", False),
    ):
        a, b = _text(ct_ds, keyword), _text(pet_ds, keyword)
        if a and b:
            if a != b:
                raise PatientMismatchError(
                    f"{pair} are from different patients: {keyword} differs (sha256 "
                    f"prefixes {_sha(a)} vs {_sha(b)})",
                    files=files,
                    tag=f"{keyword} {tag}",
                    hint="choose series of one patient with --ct-series / --pet-series, "
                    "or fix the export",
                )
        elif required:
            missing = " and ".join(name for name, v in (("anatomical", a), ("PET", b)) if not v)
            notes.append(f"{keyword} absent from the {missing} header: same patient not checked")
    if ct.study_instance_uid != pet.study_instance_uid:
        notes.append(
            f"{pair} are from different studies (StudyInstanceUID {ct.study_instance_uid} vs "
            f"{pet.study_instance_uid})"
        )
    fa, fb = ct.frame_of_reference_uid, pet.frame_of_reference_uid
    if fa != fb or not fa:
        what = (
            f"FrameOfReferenceUID differs ({fa or 'absent'} vs {fb or 'absent'})"
            if fa != fb
            else "FrameOfReferenceUID is absent from both"
        )
        if fa == fb and ct.study_instance_uid == pet.study_instance_uid:
            notes.append(f"{pair}: {what}; same study, so one coordinate system is assumed")
        elif register:
            notes.append(f"{pair}: {what}: the PET is registered rigidly to the CT")
        else:
            raise FrameOfReferenceMismatchError(
                f"{pair} are not in one patient coordinate system: {what}",
                files=files,
                tag="FrameOfReferenceUID (0020,0052)",
                hint="pass --register to align the PET to the CT rigidly (Python: "
                "register=True), or choose series of one PET/CT acquisition",
            )
    return notes


# ---------------------------------------------------------------------------- resampling
def _sitk_geometry(
    affine: np.ndarray,
) -> tuple[tuple[float, ...], tuple[float, ...], tuple[float, ...]]:
    """(spacing, direction, origin) of SimpleITK (x first) for an array-order LPS affine."""
    sp = np.linalg.norm(affine[:3, :3], axis=0)  # k, j, i
    unit = affine[:3, :3] / sp
    direction = np.stack([unit[:, 2], unit[:, 1], unit[:, 0]], axis=1)  # x, y, z columns
    return (
        (float(sp[2]), float(sp[1]), float(sp[0])),
        tuple(float(v) for v in direction.ravel()),
        tuple(float(v) for v in affine[:3, 3]),
    )


def _to_sitk(array: np.ndarray, affine: np.ndarray) -> Any:
    import SimpleITK as sitk

    img = sitk.GetImageFromArray(array)
    spacing, direction, origin = _sitk_geometry(affine)
    img.SetSpacing(spacing)
    img.SetDirection(direction)
    img.SetOrigin(origin)
    return img


def pet_on_grid(
    pet: Volume,
    reference: Volume,
    *,
    transform: Any = None,
    fill_value: float = float("nan"),
) -> Volume:
    """Resample a PET (or any scalar) Volume onto ``reference``'s grid, trilinearly.

    Only the block of the PET that the reference grid reaches (plus one voxel) is handed
    to SimpleITK, so a small crop of a CT grid costs milliseconds whatever the PET's size;
    the result is the same as resampling the whole PET.

    Parameters
    ----------
    pet
        Source Volume (any orientation); values are interpolated in float64 and returned
        as float32.
    reference
        The target grid: a CT Volume, or a crop of one (:meth:`Volume.crop`); only its
        shape and affine are used.
    transform
        SimpleITK transform mapping reference LPS points (mm) to ``pet`` LPS points, e.g.
        :attr:`StudyInputs.pet_transform`. None: both are in one frame of reference.
    fill_value
        Value where a reference voxel centre falls outside the PET's field of view (more
        than half a voxel beyond its outermost voxel centres; within that half voxel the
        edge value is used, as ITK does). NaN by default, so that callers can flag
        lesions partly outside the PET.

    Returns
    -------
    Volume
        float32 on ``reference``'s affine, in ``reference``'s frame of reference, with
        ``pet``'s modality and units.

    Raises
    ------
    FrameOfReferenceMismatchError
        ``transform`` is None and both Volumes carry different FrameOfReferenceUIDs.
    VolumeError
        ``pet`` is not a scalar 3D Volume.
    """
    import SimpleITK as sitk

    if pet.array.ndim != 3:
        raise VolumeError(f"pet_on_grid needs a scalar 3D Volume; got shape {pet.shape}")
    if (
        transform is None
        and pet.frame_of_reference_uid
        and reference.frame_of_reference_uid
        and pet.frame_of_reference_uid != reference.frame_of_reference_uid
    ):
        raise FrameOfReferenceMismatchError(
            "cannot put the PET on the reference grid: FrameOfReferenceUID differs "
            f"({pet.frame_of_reference_uid} vs {reference.frame_of_reference_uid})",
            tag="FrameOfReferenceUID (0020,0052)",
            hint="register the PET to the CT first (load_study(..., register=True)) and "
            "pass its pet_transform",
        )
    shape = reference.spatial_shape
    out_shape = (shape[2], shape[1], shape[0])  # x, y, z
    src = pet
    linear = transform is None or bool(transform.IsLinear())
    if linear:
        # bounding box, in PET indices, of the reference grid (outer voxel corners)
        corners = np.array(list(itertools.product(*[(-0.5, n - 0.5) for n in shape])))
        points = reference.index_to_lps(corners)
        if transform is not None:
            points = np.array([transform.TransformPoint(tuple(map(float, p))) for p in points])
        index = pet.lps_to_index(points)
        lo = np.clip(np.floor(index.min(axis=0)) - 1, 0, None).astype(int)
        hi = np.minimum(np.ceil(index.max(axis=0)) + 2, pet.spatial_shape).astype(int)
        if np.any(hi <= lo):
            values = np.full(shape, fill_value, dtype=np.float32)
            return _on_reference(values, pet, reference, transform, "entirely outside the PET")
        if np.any(lo > 0) or np.any(hi < pet.spatial_shape):
            src = pet.crop([(int(a), int(b)) for a, b in zip(lo, hi, strict=True)])
    moving = _to_sitk(np.asarray(src.array, dtype=np.float32), src.affine)
    spacing, direction, origin = _sitk_geometry(reference.affine)
    f = sitk.ResampleImageFilter()
    f.SetSize([int(v) for v in out_shape])
    f.SetOutputSpacing(spacing)
    f.SetOutputDirection(direction)
    f.SetOutputOrigin(origin)
    f.SetInterpolator(sitk.sitkLinear)
    f.SetDefaultPixelValue(float(fill_value))
    f.SetOutputPixelType(sitk.sitkFloat32)
    if transform is not None:
        f.SetTransform(transform)
    values = sitk.GetArrayFromImage(f.Execute(moving))
    return _on_reference(values, pet, reference, transform, "")


def _on_reference(
    values: np.ndarray, pet: Volume, reference: Volume, transform: Any, extra: str
) -> Volume:
    how = "registered, " if transform is not None else ""
    note = f"resampled (linear, {how}NaN outside the field of view) to shape {values.shape}"
    return Volume(
        values,
        reference.affine,
        frame_of_reference_uid=reference.frame_of_reference_uid or pet.frame_of_reference_uid,
        modality=pet.modality,
        units=pet.units,
        provenance=pet.provenance.derive(note + (f": {extra}" if extra else "")),
    )


# ---------------------------------------------------------------------------- registration
def register_pet_to_ct(
    pet: Volume,
    ct: Volume,
    *,
    seed: int = REGISTRATION_SEED,
    threads: int = REGISTRATION_THREADS,
) -> tuple[Any, dict[str, Any]]:
    """Rigidly register a PET (moving) to a CT (fixed); see the module docstring.

    Parameters
    ----------
    pet
        The PET Volume (any units; used as float32).
    ct
        The CT Volume (HU), windowed to :data:`REGISTRATION_CT_WINDOW_HU` for the metric.
    seed
        Seed of the metric's random sample.
    threads
        Threads of the registration (SimpleITK's global default is set to it while the
        registration runs, then restored); 1 gives bit-identical results run to run.

    Returns
    -------
    transform : SimpleITK.Euler3DTransform
        Maps CT LPS points (mm) to PET LPS points: pass it to :func:`pet_on_grid`.
    record : dict
        ``metric`` (final Mattes MI, lower is better), ``rotation_deg`` (about x, y, z),
        ``translation_mm``, ``center_mm``, ``initial_translation_mm`` (the geometric
        centring), ``iterations`` (per pyramid level), ``stop_condition`` and the
        ``settings``.
    """
    import SimpleITK as sitk

    lo, hi = REGISTRATION_CT_WINDOW_HU
    shrink, sigmas = [4, 2, 1], [2.0, 1.0, 0.0]
    iterations = [0] * len(shrink)
    previous = sitk.ProcessObject.GetGlobalDefaultNumberOfThreads()
    sitk.ProcessObject.SetGlobalDefaultNumberOfThreads(int(threads))
    try:
        fixed = _to_sitk(np.clip(ct.array, lo, hi).astype(np.float32), ct.affine)
        # block-average a fine CT to about REGISTRATION_CT_SPACING_MM: the PET's resolution
        # is coarser still, and the metric's 5 % sample stays small (a 512 x 512 x 300 CT
        # otherwise costs minutes)
        binning = [max(1, round(REGISTRATION_CT_SPACING_MM / sp)) for sp in fixed.GetSpacing()]
        if max(binning) > 1:
            fixed = sitk.BinShrink(fixed, binning)
        moving = _to_sitk(np.asarray(pet.array, dtype=np.float32), pet.affine)
        transform = sitk.Euler3DTransform(
            sitk.CenteredTransformInitializer(
                fixed,
                moving,
                sitk.Euler3DTransform(),
                sitk.CenteredTransformInitializerFilter.GEOMETRY,
            )
        )
        initial = [float(v) for v in transform.GetTranslation()]
        reg = sitk.ImageRegistrationMethod()
        reg.SetMetricAsMattesMutualInformation(numberOfHistogramBins=50)
        reg.SetMetricSamplingStrategy(reg.RANDOM)
        reg.SetMetricSamplingPercentage(0.05, int(seed))
        reg.SetInterpolator(sitk.sitkLinear)
        reg.SetOptimizerAsRegularStepGradientDescent(
            learningRate=2.0,
            minStep=0.05,
            numberOfIterations=200,
            relaxationFactor=0.5,
            gradientMagnitudeTolerance=1e-6,
        )
        reg.SetOptimizerScalesFromPhysicalShift()
        reg.SetShrinkFactorsPerLevel(shrink)
        reg.SetSmoothingSigmasPerLevel(sigmas)
        reg.SmoothingSigmasAreSpecifiedInPhysicalUnitsOn()
        reg.SetInitialTransform(transform, inPlace=True)

        def count() -> None:
            iterations[int(reg.GetCurrentLevel())] += 1

        reg.AddCommand(sitk.sitkIterationEvent, count)
        reg.Execute(fixed, moving)
    finally:
        sitk.ProcessObject.SetGlobalDefaultNumberOfThreads(previous)
    params = [float(v) for v in transform.GetParameters()]
    record = {
        "method": "rigid (Euler3D), PET moving to CT fixed, SimpleITK "
        + str(sitk.Version.VersionString()),
        "metric": float(reg.GetMetricValue()),
        "metric_name": "Mattes mutual information (negated: lower is better)",
        "rotation_deg": [float(np.degrees(v)) for v in params[:3]],
        "translation_mm": params[3:],
        "center_mm": [float(v) for v in transform.GetCenter()],
        "initial_translation_mm": initial,
        "iterations": iterations,
        "stop_condition": str(reg.GetOptimizerStopConditionDescription()),
        "settings": {
            "initializer": "CenteredTransformInitializer GEOMETRY",
            "histogram_bins": 50,
            "sampling": "random",
            "sampling_percentage": 0.05,
            "seed": int(seed),
            "threads": int(threads),
            "optimizer": "RegularStepGradientDescent",
            "learning_rate_mm": 2.0,
            "min_step_mm": 0.05,
            "max_iterations_per_level": 200,
            "relaxation_factor": 0.5,
            "scales": "physical shift",
            "shrink_factors": shrink,
            "smoothing_sigmas_mm": sigmas,
            "ct_window_hu": [lo, hi],
            "ct_binning_xyz": binning,
        },
    }
    return transform, record


# ---------------------------------------------------------------------------- loading
def _load_anatomical(series: Series) -> tuple[Volume, float, list[str]]:
    """The CT (or MR) Volume with axis 0 the axial slice axis, its slice thickness, notes."""
    notes: list[str] = []
    vol = dicom.load(series)
    code = vol.orientation_code()
    if code[0] in "SI":
        thicknesses = [im.slice_thickness for im in series.images if im.slice_thickness]
        if thicknesses:
            counts = Counter(round(float(t), 4) for t in thicknesses)
            thickness = counts.most_common(1)[0][0]
            if len(counts) > 1:
                notes.append(
                    f"CT SliceThickness (0018,0050) varies ({sorted(counts)} mm): "
                    f"{thickness:g} mm, the most common, is used"
                )
        else:
            thickness = vol.spacing[0]
            notes.append(
                f"CT without SliceThickness (0018,0050): the slice spacing {thickness:.4g} mm "
                "is used as the slice thickness"
            )
        return vol, float(thickness), notes
    vol = vol.reorient("SPL")
    thickness = vol.spacing[0]
    notes.append(
        f"the anatomical stack is not axial (orientation {code}): reoriented to SPL "
        f"(axial slices of {thickness:.4g} mm, the acquired pixel spacing), so slice "
        "indices do not match the series' images"
    )
    return vol, float(thickness), notes


def load_study(
    path: str | Path,
    *,
    ct_series: str | None = None,
    pet_series: str | None = None,
    register: bool = False,
    require_ct: bool = True,
) -> StudyInputs:
    """Scan a study folder, choose, check and load its CT and PET.

    Parameters
    ----------
    path
        A study folder (one patient, one visit), walked recursively.
    ct_series, pet_series
        Series overrides (SeriesInstanceUID or stack id), see :func:`select_series`.
    register
        Register the PET rigidly to the CT when their frames of reference differ
        (otherwise that is an error). Nothing is registered when they share one.
    require_ct
        Raise when the study has no anatomical series (False: PET-only studies load with
        ``ct=None``).

    Returns
    -------
    StudyInputs

    Raises
    ------
    InputPathError
        ``path`` does not exist or cannot be read.
    MissingSeriesError
        No CT/MR series and ``require_ct`` (the message lists the series found).
    SeriesNotFoundError, MultipleSeriesError, SeriesModalityError
        From the series overrides.
    PatientMismatchError, FrameOfReferenceMismatchError
        From :func:`check_pair`.
    GeometryError, PixelDataError
        From loading either series.
    QuantificationError
        When the PET's activity concentration (Bq/mL) cannot be computed; an SUV that
        cannot be computed only leaves ``pet_suv`` None, with the reason in ``notes``.
    """
    root = Path(path)
    if not root.exists():
        raise InputPathError(
            f"study folder does not exist: {root}", files=[root], hint="check the path and retry"
        )
    catalogue = dicom.scan(root)
    choice = select_series(catalogue, ct_series=ct_series, pet_series=pet_series)
    notes = list(choice.notes)
    if choice.ct is None and require_ct:
        passed = [n for n in choice.notes if n.startswith("anatomical: passed over")]
        why = ("\n  " + "\n  ".join(passed)) if passed else ""
        raise MissingSeriesError(
            f"no CT or MR series to measure in {root}; image series found:\n  "
            f"{_listing(catalogue)}{why}",
            hint="netvolume measure needs a CT (or MR) series; to measure imported lesion "
            "masks on a PET/SPECT-only study pass --lesion-mask",
        )
    if choice.ct is not None and choice.pet is not None:
        notes.extend(check_pair(choice.ct, choice.pet, register=register))

    ct: Volume | None = None
    thickness: float | None = None
    if choice.ct is not None:
        ct, thickness, more = _load_anatomical(choice.ct)
        notes.extend(more)

    pet_bqml: Volume | None = None
    pet_suv: Volume | None = None
    if choice.pet is not None:
        pet_bqml = petio.load_activity(choice.pet)
        try:
            pet_suv = petio.load_suv(choice.pet, "bw")
        except QuantificationError as exc:
            notes.append(f"no SUVbw for PET {choice.pet.uid}, activity (Bq/mL) only: {exc}")

    transform: Any = None
    registration: dict[str, Any] | None = None
    if register:
        if ct is None or pet_bqml is None:
            notes.append("registration asked for, but the study lacks a CT or a PET: skipped")
        elif ct.frame_of_reference_uid and (
            ct.frame_of_reference_uid == pet_bqml.frame_of_reference_uid
        ):
            notes.append("registration asked for, but CT and PET share a frame of reference")
        else:
            transform, registration = register_pet_to_ct(pet_bqml, ct)
            rot = max(abs(v) for v in registration["rotation_deg"])
            shift = float(np.linalg.norm(registration["translation_mm"]))
            notes.append(
                f"PET registered to CT: rotation {rot:.2f} deg (largest), translation "
                f"{shift:.1f} mm, Mattes MI {registration['metric']:.4f}"
            )
            if rot > 10.0 or shift > 100.0:
                notes.append(
                    "the registration moved the PET by more than 10 deg or 100 mm: check the "
                    "alignment visually"
                )

    return StudyInputs(
        root=root,
        catalogue=catalogue,
        ct_series=choice.ct,
        pet_series=choice.pet,
        ct=ct,
        pet_bqml=pet_bqml,
        pet_suv=pet_suv,
        slice_thickness_mm=thickness,
        pet_transform=transform,
        registration=registration,
        notes=tuple(notes),
    )

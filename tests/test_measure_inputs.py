"""The inputs of ``netvolume measure``: series selection, pair checks, loading, PET on a grid.

Studies are copies of the bundled sample ``data/sample_dicom/P001/T0`` (one CT, one PET;
never modified in place) with series added or headers rewritten by pydicom in ``tmp_path``.
The copies live in folders named without the patient's identifiers, so that a message
naming a file cannot leak them by accident.
"""

from __future__ import annotations

import itertools
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pydicom
import pytest
import SimpleITK as sitk
from pydicom.uid import generate_uid
from scipy import ndimage

from netvolume.errors import (
    FrameOfReferenceMismatchError,
    InputPathError,
    MissingSeriesError,
    PatientMismatchError,
    SeriesModalityError,
    SeriesNotFoundError,
    SeriesSelectionError,
)
from netvolume.io.dicom import Catalogue, load, scan
from netvolume.io.dicom_write import write_series
from netvolume.measure._inputs import (
    StudyInputs,
    check_pair,
    load_study,
    pet_on_grid,
    register_pet_to_ct,
    select_series,
)
from netvolume.volume import Volume

SAMPLE = Path(__file__).resolve().parents[1] / "data" / "sample_dicom" / "P001" / "T0"
PATIENT_ID = "NV2026-P001"  # the sample's PatientID: must never appear in a message


# ---------------------------------------------------------------------------- helpers
@pytest.fixture(scope="module")
def study_copy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A read-only reference copy of the sample study's CT and PET folders."""
    root = tmp_path_factory.mktemp("study_ref")
    for name in ("CT", "PET"):
        shutil.copytree(SAMPLE / name, root / name)
    return root


@pytest.fixture
def study(study_copy: Path, tmp_path: Path) -> Callable[..., Path]:
    """``study("CT", "PET")``: a fresh copy of the named folders of the sample study."""

    def _make(*names: str) -> Path:
        root = tmp_path / "study"
        root.mkdir(exist_ok=True)
        for name in names:
            shutil.copytree(study_copy / name, root / name)
        return root

    return _make


def _rewrite(folder: Path, **attrs: Any) -> None:
    """Set (value) or delete (None) header attributes in every file of ``folder``."""
    for f in sorted(folder.iterdir()):
        ds = pydicom.dcmread(f)
        for key, value in attrs.items():
            if value is None:
                if key in ds:
                    delattr(ds, key)
            else:
                setattr(ds, key, value)
        ds.save_as(f)


def _add_series(src: Path, dst: Path, *, n: int | None = None, seed: str, **attrs: Any) -> str:
    """Copy the first ``n`` files of ``src`` to ``dst`` as a new series; return its uid."""
    uid = generate_uid(entropy_srcs=[seed])
    dst.mkdir(parents=True)
    for i, f in enumerate(sorted(src.iterdir())[:n]):
        ds = pydicom.dcmread(f)
        ds.SeriesInstanceUID = uid
        ds.SOPInstanceUID = generate_uid(entropy_srcs=[seed, str(i)])
        ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        for key, value in attrs.items():
            if value is None:
                if key in ds:
                    delattr(ds, key)
            else:
                setattr(ds, key, value)
        ds.save_as(dst / f.name)
    return uid


def _uid_of(cat: Catalogue, modality: str) -> str:
    (series,) = [s for s in cat.series if s.modality == modality]
    return series.uid


# ---------------------------------------------------------------------------- selection
def test_sample_selects_its_ct_and_pet(study_copy: Path) -> None:
    cat = scan(study_copy)
    choice = select_series(cat)
    assert choice.ct is not None and choice.pet is not None
    assert (choice.ct.modality, choice.pet.modality) == ("CT", "PT")
    assert all("the only candidate" in n for n in choice.notes)


def test_anatomical_rules_images_spacing_localizer(study: Callable[..., Path]) -> None:
    root = study("CT")
    ct = root / "CT"
    fewer = _add_series(ct, root / "B", n=30, seed="B", SeriesNumber=4)
    scout = _add_series(
        ct, root / "C", seed="C", SeriesNumber=5, ImageType=["ORIGINAL", "PRIMARY", "LOCALIZER"]
    )
    key_images = _add_series(ct, root / "D", n=5, seed="D", SeriesNumber=1)
    finer = _add_series(ct, root / "E", seed="E", SeriesNumber=9, PixelSpacing=[3.0, 3.0])
    mr = _add_series(ct, root / "F", n=40, seed="F", SeriesNumber=7, Modality="MR")
    cat = scan(root)
    choice = select_series(cat)
    assert choice.ct is not None and choice.ct.uid == finer
    assert choice.pet is None
    text = "\n".join(choice.notes)
    original = next(s.uid for s in cat.series if s.series_number == 2)
    assert f"passed over {original}" in text and "coarser pixel spacing" in text
    assert f"passed over {fewer}" in text and "fewer images (30 < 54)" in text
    assert f"passed over {scout}" in text and "localizer" in text
    assert f"passed over {key_images}" in text and "5 images (< 10)" in text
    assert f"passed over {mr}" in text
    assert "PET: none" in text


def test_anatomical_tie_goes_to_lowest_series_number(study: Callable[..., Path]) -> None:
    root = study("CT")
    first = _add_series(root / "CT", root / "B", seed="B", SeriesNumber=1)
    choice = select_series(scan(root))
    assert choice.ct is not None and choice.ct.uid == first
    assert any("higher series number" in n for n in choice.notes)


def test_functional_rules_bqml_then_attenuation_then_images(study: Callable[..., Path]) -> None:
    root = study("CT")
    pet = SAMPLE / "PET"
    cnts = _add_series(pet, root / "Q", seed="Q", SeriesNumber=4, Units="CNTS")
    nac = _add_series(pet, root / "R", seed="R", SeriesNumber=5, CorrectedImage=["NORM", "DECY"])
    ac = _add_series(pet, root / "S", n=40, seed="S", SeriesNumber=6)
    nm_cnts = _add_series(pet, root / "U", seed="U", SeriesNumber=3, Modality="NM", Units="CNTS")
    nac_by_name = _add_series(
        pet,
        root / "V",
        seed="V",
        SeriesNumber=7,
        CorrectedImage=None,
        SeriesDescription="PET WB NAC",
    )
    ac_by_name = _add_series(
        pet,
        root / "W",
        n=20,
        seed="W",
        SeriesNumber=8,
        CorrectedImage=None,
        SeriesDescription="PET WB",
    )
    choice = select_series(scan(root))
    assert choice.pet is not None and choice.pet.uid == ac
    text = "\n".join(choice.notes)
    assert f"passed over {cnts}" in text and "Units 'CNTS', not BQML" in text
    assert f"passed over {nac}" in text and "not attenuation-corrected (CorrectedImage" in text
    assert f"passed over {nm_cnts}" in text and "NM with Units 'CNTS'" in text
    assert f"passed over {nac_by_name}" in text and "'PET WB NAC'" in text
    assert f"passed over {ac_by_name}" in text and "fewer images (20 < 40)" in text


def test_nm_in_bqml_is_a_functional_candidate(study: Callable[..., Path]) -> None:
    root = study("CT")
    spect = _add_series(SAMPLE / "PET", root / "NM", seed="NM", Modality="NM")
    choice = select_series(scan(root))
    assert choice.pet is not None and choice.pet.uid == spect


def test_explicit_uids_override_the_rules(study: Callable[..., Path]) -> None:
    root = study("CT", "PET")
    fewer = _add_series(root / "CT", root / "B", n=12, seed="B", SeriesNumber=4)
    nac = _add_series(root / "PET", root / "R", seed="R", CorrectedImage=["NORM", "DECY"])
    cat = scan(root)
    choice = select_series(cat, ct_series=fewer, pet_series=nac)
    assert choice.ct is not None and choice.ct.uid == fewer
    assert choice.pet is not None and choice.pet.uid == nac
    assert any("chosen by --ct-series" in n for n in choice.notes)
    assert any("chosen by --pet-series" in n for n in choice.notes)


def test_wrong_modality_or_unknown_uid_is_an_error(study_copy: Path) -> None:
    cat = scan(study_copy)
    ct_uid, pet_uid = _uid_of(cat, "CT"), _uid_of(cat, "PT")
    with pytest.raises(SeriesModalityError, match="--ct-series") as err:
        select_series(cat, ct_series=pet_uid)
    assert isinstance(err.value, SeriesSelectionError)
    assert ct_uid in str(err.value)  # lists the series found
    with pytest.raises(SeriesModalityError, match="--pet-series"):
        select_series(cat, pet_series=ct_uid)
    with pytest.raises(SeriesNotFoundError):
        select_series(cat, pet_series="1.2.3.4")


# ---------------------------------------------------------------------------- load_study
@pytest.fixture(scope="module")
def sample_inputs(study_copy: Path) -> StudyInputs:
    return load_study(study_copy)


def test_load_study_on_the_sample(sample_inputs: StudyInputs) -> None:
    s = sample_inputs
    assert s.ct is not None and s.pet_bqml is not None and s.pet_suv is not None
    assert s.ct.units == "HU" and s.ct.orientation_code() == "SPL"
    assert s.ct.shape == (54, 120, 120)
    assert s.slice_thickness_mm == 5.0
    assert (s.pet_bqml.units, s.pet_suv.units) == ("Bq/mL", "SUVbw")
    assert s.pet_transform is None and s.registration is None
    assert s.ct_series is not None and s.ct_series.modality == "CT"
    ratio = s.pet_suv.array[s.pet_bqml.array > 0] / s.pet_bqml.array[s.pet_bqml.array > 0]
    assert np.ptp(ratio) < 1e-6 * ratio.max()  # one SUV factor


def test_missing_path_is_an_input_path_error(tmp_path: Path) -> None:
    with pytest.raises(InputPathError):
        load_study(tmp_path / "nope")


def test_no_ct_raises_and_lists_the_series(study: Callable[..., Path]) -> None:
    root = study("PET")
    _add_series(
        SAMPLE / "CT", root / "SCOUT", seed="S", ImageType=["ORIGINAL", "PRIMARY", "LOCALIZER"]
    )
    with pytest.raises(MissingSeriesError) as err:
        load_study(root)
    msg = str(err.value)
    cat = scan(root)
    assert all(s.uid in msg for s in cat.series)
    assert "localizer" in msg
    assert "--lesion-mask" in msg
    assert isinstance(err.value, SeriesSelectionError)
    pet_only = load_study(root, require_ct=False)
    assert pet_only.ct is None and pet_only.slice_thickness_mm is None
    assert pet_only.pet_suv is not None


def test_no_pet_gives_none_with_a_note(study: Callable[..., Path]) -> None:
    s = load_study(study("CT"))
    assert s.ct is not None
    assert s.pet_series is None and s.pet_bqml is None and s.pet_suv is None
    assert any(n.startswith("PET: none") for n in s.notes)
    assert s.pet_on(s.ct) is None


def test_suv_failure_keeps_activity(study: Callable[..., Path]) -> None:
    root = study("CT", "PET")
    _rewrite(root / "PET", PatientWeight=None)
    s = load_study(root)
    assert s.pet_suv is None and s.pet_bqml is not None
    note = next(n for n in s.notes if n.startswith("no SUVbw"))
    assert "PatientWeight" in note


def test_patient_id_mismatch_never_shows_the_ids(study: Callable[..., Path]) -> None:
    root = study("CT", "PET")
    secret = "SECRET-4711"
    _rewrite(root / "PET", PatientID=secret)
    with pytest.raises(PatientMismatchError) as err:
        load_study(root)
    msg = str(err.value)
    assert secret not in msg and PATIENT_ID not in msg
    assert "PatientID differs" in msg and "sha256" in msg
    cat = scan(root)
    assert _uid_of(cat, "CT") in msg and _uid_of(cat, "PT") in msg
    assert "CT" in msg and "PET" in msg and ".dcm" in msg  # one file of each


def test_birth_date_mismatch_is_an_error(study: Callable[..., Path]) -> None:
    root = study("CT", "PET")
    _rewrite(root / "CT", PatientBirthDate="19600101")
    _rewrite(root / "PET", PatientBirthDate="19610202")
    cat = scan(root)
    with pytest.raises(PatientMismatchError, match="PatientBirthDate") as err:
        check_pair(cat.series[0], cat.series[1], register=True)
    assert "1960" not in str(err.value) and "1961" not in str(err.value)


def test_frame_of_reference_mismatch_and_other_study(study: Callable[..., Path]) -> None:
    root = study("CT", "PET")
    _rewrite(
        root / "PET",
        FrameOfReferenceUID=generate_uid(entropy_srcs=["for"]),
        StudyInstanceUID=generate_uid(entropy_srcs=["study"]),
    )
    with pytest.raises(FrameOfReferenceMismatchError, match="--register"):
        load_study(root)
    cat = scan(root)
    ct, pet = (next(s for s in cat.series if s.modality == m) for m in ("CT", "PT"))
    notes = check_pair(ct, pet, register=True)
    assert any("different studies" in n for n in notes)
    assert any("registered rigidly" in n for n in notes)


def test_coronal_ct_is_reoriented_to_axial(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    arr = rng.integers(0, 2000, size=(12, 20, 16)).astype(np.int16)
    folder = tmp_path / "coronal"
    write_series(
        folder,
        arr,
        spacing_mm=(3.0, 2.0, 1.5),
        orientation=(1, 0, 0, 0, 0, -1),
        origin_lps=(-10.0, -20.0, 50.0),
    )
    s = load_study(folder)
    assert s.ct is not None and s.ct.orientation_code()[0] in "SI"
    loaded = load(scan(folder).series[0])
    assert loaded.orientation_code()[0] == "P"
    expected = loaded.reorient("SPL")
    np.testing.assert_array_equal(s.ct.array, expected.array)
    np.testing.assert_allclose(s.ct.affine, expected.affine)
    assert s.slice_thickness_mm == pytest.approx(2.0)
    assert any("not axial" in n for n in s.notes)


# ---------------------------------------------------------------------------- registration
def _moved_pet(root: Path, *, shift_x: float, drop: int) -> None:
    """New frame of reference for the PET, its positions shifted, ``drop`` slices removed.

    Removing slices moves the PET's geometric centre away from the truth, so the
    registration (not its centre-of-geometry initialisation) must recover the position.
    """
    frame = generate_uid(entropy_srcs=["moved", str(shift_x)])
    by_z: list[tuple[float, Path]] = []
    for f in sorted((root / "PET").iterdir()):
        ds = pydicom.dcmread(f)
        ds.FrameOfReferenceUID = frame
        ipp = [float(v) for v in ds.ImagePositionPatient]
        ipp[0] += shift_x
        ds.ImagePositionPatient = ipp
        ds.save_as(f)
        by_z.append((ipp[2], f))
    by_z.sort()
    for _, f in by_z[:drop] if drop > 0 else by_z[drop:]:
        f.unlink()


def _rotation_deg(transform: Any) -> float:
    m = np.asarray(transform.GetMatrix()).reshape(3, 3)
    return float(np.degrees(np.arccos(np.clip((np.trace(m) - 1) / 2, -1, 1))))


def test_registration_recovers_identity(study: Callable[..., Path]) -> None:
    root = study("CT", "PET")
    _moved_pet(root, shift_x=0.0, drop=-10)  # top 40 mm gone: initial offset 20 mm
    with pytest.raises(FrameOfReferenceMismatchError):
        load_study(root)
    s = load_study(root, register=True)
    assert s.registration is not None and s.pet_transform is not None
    assert np.linalg.norm(s.registration["initial_translation_mm"]) > 15
    assert _rotation_deg(s.pet_transform) < 1.0
    centre = np.asarray(s.registration["center_mm"])
    moved = np.asarray(s.pet_transform.TransformPoint(tuple(centre))) - centre
    assert np.linalg.norm(moved) < 2.0
    assert any(n.startswith("PET registered to CT") for n in s.notes)
    # the registered PET lands where the unmoved one does
    assert s.ct is not None
    crop = s.ct.crop([(20, 34), (30, 90), (30, 90)])
    on = s.pet_on(crop)
    assert on is not None and on.frame_of_reference_uid == s.ct.frame_of_reference_uid


def test_registration_recovers_a_10mm_shift_deterministically(
    study: Callable[..., Path],
) -> None:
    root = study("CT", "PET")
    _moved_pet(root, shift_x=10.0, drop=10)
    s = load_study(root, register=True)
    assert s.registration is not None and s.ct is not None and s.pet_bqml is not None
    assert _rotation_deg(s.pet_transform) < 1.0
    for point in ([0.0, 0.0, -520.0], [100.0, -50.0, -450.0]):
        moved = np.asarray(s.pet_transform.TransformPoint(point)) - point
        np.testing.assert_allclose(moved, [10.0, 0.0, 0.0], atol=2.0)
    _, again = register_pet_to_ct(s.pet_bqml, s.ct)
    assert again["translation_mm"] == s.registration["translation_mm"]
    assert again["metric"] == s.registration["metric"]


# ---------------------------------------------------------------------------- pet_on_grid
def _random_rotation(rng: np.random.Generator) -> np.ndarray:
    q, r = np.linalg.qr(rng.normal(size=(3, 3)))
    q = q * np.sign(np.diag(r))
    if np.linalg.det(q) < 0:
        q[:, 0] = -q[:, 0]
    return q


def _random_volume(rng: np.random.Generator, *, rotate: bool, frame: str = "F") -> Volume:
    shape = tuple(int(v) for v in rng.integers(8, 20, size=3))
    spacing = rng.uniform(1.0, 4.0, size=3)
    direction = _random_rotation(rng) if rotate else np.eye(3)
    aff = np.eye(4)
    aff[:3, :3] = direction * spacing
    aff[:3, 3] = -aff[:3, :3] @ (np.asarray(shape) / 2) + rng.normal(0, 3, size=3)
    return Volume(
        rng.uniform(0, 10, size=shape).astype(np.float32), aff, frame_of_reference_uid=frame
    )


def _trilinear(
    pet: Volume, reference: Volume, matrix: np.ndarray, offset: np.ndarray
) -> np.ndarray:
    """scipy: reference voxel centres -> (matrix @ p + offset) -> PET index, trilinear.

    Within half a voxel beyond the outer centres the edge value (ITK's convention);
    further out NaN.
    """
    grid = np.stack(
        np.meshgrid(*[np.arange(n) for n in reference.spatial_shape], indexing="ij"), axis=-1
    )
    points = reference.index_to_lps(grid) @ matrix.T + offset
    index = pet.lps_to_index(points)
    values = ndimage.map_coordinates(
        pet.array.astype(np.float64), np.moveaxis(index, -1, 0), order=1, mode="nearest"
    )
    n = np.asarray(pet.spatial_shape)
    outside = np.any((index < -0.5) | (index > n - 0.5), axis=-1)
    values[outside] = np.nan
    return values


@pytest.mark.parametrize("seed", range(6))
def test_pet_on_grid_equals_scipy_trilinear(seed: int) -> None:
    rng = np.random.default_rng(seed)
    pet = _random_volume(rng, rotate=seed % 2 == 1)
    reference = _random_volume(rng, rotate=seed % 3 == 0)
    shape = reference.spatial_shape
    lo = [int(rng.integers(0, n // 2)) for n in shape]
    crop = reference.crop(
        [(a, a + int(rng.integers(3, n - a + 1))) for a, n in zip(lo, shape, strict=True)]
    )
    if seed >= 3:  # with a rigid transform
        transform = sitk.Euler3DTransform()
        transform.SetCenter(tuple(rng.normal(0, 5, size=3)))
        transform.SetRotation(*rng.normal(0, 0.1, size=3))
        transform.SetTranslation(tuple(rng.normal(0, 3, size=3)))
        matrix = np.asarray(transform.GetMatrix()).reshape(3, 3)
        centre = np.asarray(transform.GetCenter())
        offset = centre + np.asarray(transform.GetTranslation()) - matrix @ centre
        crop = Volume(crop.array, crop.affine, frame_of_reference_uid="other")
    else:
        transform, matrix, offset = None, np.eye(3), np.zeros(3)
    for target in (reference, crop):
        got = pet_on_grid(pet, target, transform=transform)
        expected = _trilinear(pet, target, matrix, offset)
        assert got.array.dtype == np.float32 and got.shape == target.shape
        np.testing.assert_array_equal(np.isnan(got.array), np.isnan(expected))
        np.testing.assert_allclose(got.array, expected, rtol=1e-4, atol=1e-4)
        np.testing.assert_array_equal(got.affine, target.affine)
        assert got.units == pet.units
        if target is reference:  # partly outside the PET: both cases are exercised
            assert 0.0 < np.isnan(got.array).mean() < 1.0


def test_pet_on_grid_matches_volume_resample(sample_inputs: StudyInputs) -> None:
    s = sample_inputs
    assert s.ct is not None and s.pet_suv is not None
    full = pet_on_grid(s.pet_suv, s.ct)
    ref = s.pet_suv.resample(reference=s.ct, fill_value=float("nan"))
    np.testing.assert_allclose(full.array, ref.array, rtol=1e-5, equal_nan=True)
    assert full.frame_of_reference_uid == s.ct.frame_of_reference_uid
    # crop vs full
    for bounds in ([(0, 10), (0, 30), (90, 120)], [(20, 31), (40, 77), (5, 60)]):
        crop = pet_on_grid(s.pet_suv, s.ct.crop(bounds))
        part = full.array[tuple(slice(a, b) for a, b in bounds)]
        np.testing.assert_allclose(crop.array, part, rtol=1e-5, atol=1e-6, equal_nan=True)
    on = s.pet_on(s.ct.crop([(20, 31), (40, 77), (5, 60)]), quantity="bqml")
    assert on is not None and on.units == "Bq/mL"


def test_pet_on_grid_is_nan_outside_the_field_of_view() -> None:
    pet = Volume(
        np.ones((10, 10, 10), np.float32), np.diag([2.0, 2.0, 2.0, 1.0]), frame_of_reference_uid="F"
    )
    # reference: 1 mm grid from -5 to 24 mm: PET centres span 0..18 mm (+-1 mm half voxel)
    aff = np.diag([1.0, 1.0, 1.0, 1.0])
    aff[:3, 3] = -5.0
    ref = Volume(np.zeros((30, 30, 30), np.int16), aff, frame_of_reference_uid="F")
    out = pet_on_grid(pet, ref).array
    inside = np.zeros((30, 30, 30), bool)
    inside[4:24, 4:24, 4:24] = True  # -1 mm .. 18 mm (19 mm is beyond the half voxel)
    assert np.all(out[inside] == 1.0)
    assert np.all(np.isnan(out[~inside]))
    # entirely outside: all NaN (or the fill value)
    far_aff = np.eye(4)
    far_aff[:3, 3] = 500.0
    far = Volume(np.zeros((3, 3, 3)), far_aff, frame_of_reference_uid="F")
    assert np.all(np.isnan(pet_on_grid(pet, far).array))
    assert np.all(pet_on_grid(pet, far, fill_value=-1.0).array == -1.0)


def test_pet_on_grid_refuses_another_frame_without_a_transform() -> None:
    pet = Volume(np.ones((4, 4, 4), np.float32), np.eye(4), frame_of_reference_uid="A")
    ref = Volume(np.ones((4, 4, 4), np.float32), np.eye(4), frame_of_reference_uid="B")
    with pytest.raises(FrameOfReferenceMismatchError, match="register"):
        pet_on_grid(pet, ref)
    assert np.all(pet_on_grid(pet, ref, transform=sitk.Euler3DTransform()).array == 1.0)


def test_crop_corners_cover_the_grid() -> None:
    """The source block handed to SimpleITK never cuts a needed PET voxel (90 deg turns)."""
    rng = np.random.default_rng(7)
    pet = _random_volume(rng, rotate=False)
    for perm in itertools.permutations(range(3)):
        aff = np.eye(4)
        aff[:3, :3] = np.eye(3)[:, perm] * 1.3
        aff[:3, 3] = pet.index_to_lps(np.asarray(pet.spatial_shape) / 3)
        ref = Volume(np.zeros((7, 5, 6)), aff, frame_of_reference_uid="F")
        got = pet_on_grid(pet, ref)
        expected = _trilinear(pet, ref, np.eye(3), np.zeros(3))
        np.testing.assert_allclose(got.array, expected, rtol=1e-5, atol=1e-5, equal_nan=True)

"""Tests of :class:`netvolume.volume.Volume` (geometry, crop, reorient, resample, SimpleITK)
and of the NIfTI reader/writer in :mod:`netvolume.io.nifti`.

The axis convention under test: ``array[k, j, i]`` (slice, row, column) and
``affine @ [k, j, i, 1]`` = LPS mm. SimpleITK's ``TransformIndexToPhysicalPoint((i, j, k))``
is used as the independent oracle of that convention.
"""

from __future__ import annotations

import gzip
import itertools
import re
from pathlib import Path

import nibabel
import numpy as np
import pytest
import SimpleITK as sitk
from scipy.spatial.transform import Rotation

from netvolume.errors import VolumeError
from netvolume.io import nifti
from netvolume.io.nifti import nifti_bytes, read_nifti, write_nifti, write_nifti_bytes
from netvolume.volume import ORTHOGONALITY_TOL, Volume

#: Array-order axes of a standard axial stack, as LPS unit vectors (columns k, j, i):
#: slices towards +z (S), rows towards +y (P), columns towards +x (L): code "SPL".
AXIAL = np.array([[0.0, 0.0, 1.0], [0.0, 1.0, 0.0], [1.0, 0.0, 0.0]])

#: The 48 orientation codes: every permutation of the three anatomical axes x both signs.
_PAIRS = (("L", "R"), ("P", "A"), ("S", "I"))
ALL_CODES = sorted(
    "".join(_PAIRS[axis][sign] for axis, sign in zip(perm, signs, strict=True))
    for perm in itertools.permutations(range(3))
    for signs in itertools.product((0, 1), repeat=3)
)

FOR_UID = "1.2.826.0.1.3680043.8.498.1"


def _affine(direction: np.ndarray, spacing: tuple[float, float, float], origin) -> np.ndarray:
    """4x4 affine whose column n is ``direction[:, n] * spacing[n]``, translation ``origin``."""
    aff = np.eye(4)
    aff[:3, :3] = np.asarray(direction, dtype=np.float64) * np.asarray(spacing, dtype=np.float64)
    aff[:3, 3] = origin
    return aff


def _rotation(seed: int, max_deg: float | None = None) -> np.ndarray:
    """A seeded rotation matrix; limited to ``max_deg`` about a random axis if given."""
    rng = np.random.default_rng(seed)
    if max_deg is None:
        return Rotation.random(random_state=rng).as_matrix()
    axis = rng.normal(size=3)
    axis /= np.linalg.norm(axis)
    angle = np.deg2rad(rng.uniform(0.3, 1.0) * max_deg)
    return Rotation.from_rotvec(axis * angle).as_matrix()


def _all_indices(shape: tuple[int, ...]) -> np.ndarray:
    """Every integer index of a 3D grid, shape ``(N, 3)`` in array order."""
    return np.stack(np.meshgrid(*(np.arange(s) for s in shape[:3]), indexing="ij"), -1).reshape(
        -1, 3
    )


def _names(folder: Path) -> list[str]:
    """Sorted names of everything in a folder (hidden temporary files included)."""
    return sorted(p.name for p in folder.iterdir())


def _value_at(vol: Volume, idx: np.ndarray) -> np.ndarray:
    """Voxel values at integer indices ``(N, 3)`` (channel axis kept for RGB)."""
    idx = np.asarray(idx, dtype=int)
    return vol.array[idx[:, 0], idx[:, 1], idx[:, 2]]


@pytest.fixture
def oblique() -> tuple[Volume, np.ndarray, tuple[float, float, float], np.ndarray]:
    """An oblique volume from a seeded random rotation and anisotropic spacing."""
    rot = _rotation(seed=7)
    spacing = (3.0, 0.7, 1.3)
    origin = np.array([-101.25, 37.5, 412.0])
    aff = _affine(rot, spacing, origin)
    rng = np.random.default_rng(1)
    arr = rng.normal(size=(5, 6, 7)).astype(np.float32)
    return Volume(arr, aff, frame_of_reference_uid=FOR_UID), rot, spacing, origin


@pytest.fixture
def near_axial() -> Volume:
    """A small volume, oblique by a few degrees off axial ("SPL"), with distinct values."""
    rot = _rotation(seed=11, max_deg=12.0)
    aff = _affine(rot @ AXIAL, (2.5, 0.8, 0.75), (-120.3, -95.7, 33.1))
    arr = np.arange(4 * 5 * 6, dtype=np.int32).reshape(4, 5, 6) * 3 - 17
    return Volume(arr, aff, frame_of_reference_uid=FOR_UID, modality="CT", units="HU")


# ---------------------------------------------------------------------- constructor
@pytest.mark.parametrize(
    ("array", "affine", "fragments"),
    [
        pytest.param(np.zeros((4, 5)), np.eye(4), ["2D", "(4, 5)"], id="2d-array"),
        pytest.param(np.zeros((2, 3, 4, 4)), np.eye(4), ["(2, 3, 4, 4)", "3"], id="4d-channel-4"),
        pytest.param(np.zeros((2, 3, 4, 1)), np.eye(4), ["(2, 3, 4, 1)"], id="4d-channel-1"),
        pytest.param(np.zeros((1, 2, 3, 3, 1)), np.eye(4), ["5D"], id="5d-array"),
        pytest.param(np.zeros((2, 3, 4)), np.eye(3), ["4x4", "(3, 3)"], id="affine-3x3"),
        pytest.param(np.zeros((2, 3, 4)), np.eye(4)[:3], ["(3, 4)"], id="affine-3x4"),
    ],
)
def test_constructor_rejects_bad_shapes(array, affine, fragments) -> None:
    with pytest.raises(VolumeError) as info:
        Volume(array, affine)
    for fragment in fragments:
        assert fragment in str(info.value)


def test_constructor_rejects_non_finite_affine() -> None:
    for bad in (np.nan, np.inf):
        aff = np.eye(4)
        aff[1, 3] = bad
        with pytest.raises(VolumeError, match="non-finite") as info:
            Volume(np.zeros((2, 3, 4)), aff)
        assert str(bad) in str(info.value)


def test_constructor_rejects_bad_last_row() -> None:
    aff = np.eye(4)
    aff[3] = [0.0, 0.0, 0.5, 1.0]
    with pytest.raises(VolumeError, match=re.escape("[0.0, 0.0, 0.5, 1.0]")):
        Volume(np.zeros((2, 3, 4)), aff)


def test_constructor_rejects_zero_column() -> None:
    aff = np.diag([2.0, 0.0, 0.8, 1.0])
    with pytest.raises(VolumeError, match="zero-length") as info:
        Volume(np.zeros((2, 3, 4)), aff)
    assert "[2.0, 0.0, 0.8]" in str(info.value)


def test_constructor_rejects_shear() -> None:
    aff = np.diag([2.5, 0.7, 0.7, 1.0])
    aff[1, 0] = 0.5  # slice axis leans towards the row axis: a sheared grid
    cosine = 0.5 / np.hypot(2.5, 0.5)
    with pytest.raises(VolumeError, match="not orthogonal") as info:
        Volume(np.zeros((2, 3, 4)), aff)
    assert f"{cosine:.2e}" in str(info.value)
    assert "correct_tilt" in str(info.value)


def test_constructor_accepts_rounding_noise_and_freezes_affine(oblique) -> None:
    vol = oblique[0]
    aff = vol.affine.copy()
    aff[:3, 0] += aff[:3, 1] * (ORTHOGONALITY_TOL / 10)  # below the tolerance
    assert Volume(vol.array, aff).shape == vol.shape
    with pytest.raises(ValueError, match="read-only"):
        vol.affine[0, 0] = 1.0


def test_constructor_rejects_non_numeric_and_empty() -> None:
    with pytest.raises(VolumeError, match="dtype"):
        Volume(np.array([[["a"]]]), np.eye(4))
    with pytest.raises(VolumeError, match=re.escape("(0, 3, 4)")):
        Volume(np.zeros((0, 3, 4)), np.eye(4))


# ---------------------------------------------------------------------- geometry
def test_spacing_origin_direction_voxel_volume(oblique) -> None:
    vol, rot, spacing, origin = oblique
    np.testing.assert_allclose(vol.spacing, spacing, rtol=1e-12)
    np.testing.assert_allclose(vol.origin, origin, rtol=0, atol=0)
    np.testing.assert_allclose(vol.direction, rot, atol=1e-12)
    np.testing.assert_allclose(vol.direction.T @ vol.direction, np.eye(3), atol=1e-12)
    assert vol.voxel_volume_ml == pytest.approx(3.0 * 0.7 * 1.3 / 1000.0, rel=1e-12)
    assert vol.spatial_shape == (5, 6, 7)
    # column n of the affine moves one voxel along array axis n
    for axis in range(3):
        step = np.zeros(3)
        step[axis] = 1.0
        np.testing.assert_allclose(
            vol.index_to_lps(step) - vol.index_to_lps(np.zeros(3)),
            rot[:, axis] * spacing[axis],
            atol=1e-12,
        )


def test_index_lps_round_trip(oblique) -> None:
    vol = oblique[0]
    rng = np.random.default_rng(3)
    idx = rng.uniform(-2, 9, size=(50, 3))
    lps = vol.index_to_lps(idx)
    assert lps.shape == (50, 3)
    np.testing.assert_allclose(vol.lps_to_index(lps), idx, atol=1e-9)
    np.testing.assert_allclose(vol.index_to_lps([0, 0, 0]), vol.origin, atol=0)
    # broadcasting over leading axes
    grid = idx.reshape(5, 10, 3)
    np.testing.assert_allclose(vol.index_to_lps(grid), lps.reshape(5, 10, 3), atol=1e-12)


def test_orientation_code_of_axial_stack() -> None:
    vol = Volume(np.zeros((2, 3, 4)), _affine(AXIAL, (2.0, 1.0, 1.0), (0, 0, 0)))
    assert vol.orientation_code() == "SPL"
    flipped = _affine(-AXIAL, (2.0, 1.0, 1.0), (0, 0, 0))
    assert Volume(np.zeros((2, 3, 4)), flipped).orientation_code() == "IAR"


# ---------------------------------------------------------------------- with_array
def test_with_array(near_axial: Volume) -> None:
    mask = near_axial.array > 0
    out = near_axial.with_array(mask, units="1", note="threshold")
    assert np.array_equal(out.affine, near_axial.affine)
    assert out.units == "1"
    assert out.frame_of_reference_uid == FOR_UID
    assert out.provenance.notes[-1] == "threshold"
    with pytest.raises(VolumeError, match=re.escape("(4, 5, 6)")) as info:
        near_axial.with_array(np.zeros((4, 5, 7)))
    assert "(4, 5, 7)" in str(info.value)


# ---------------------------------------------------------------------- crop
def test_crop_keeps_positions_and_values(oblique) -> None:
    vol = oblique[0]
    bounds = [(1, 4), (2, 6), (3, 7)]
    sub = vol.crop(bounds)
    assert sub.shape == (3, 4, 4)
    np.testing.assert_allclose(sub.index_to_lps([0, 0, 0]), vol.index_to_lps([1, 2, 3]), atol=1e-9)
    np.testing.assert_array_equal(sub.array, vol.array[1:4, 2:6, 3:7])
    assert np.array_equal(sub.affine[:3, :3], vol.affine[:3, :3])
    for idx in _all_indices(sub.shape):
        src = vol.lps_to_index(sub.index_to_lps(idx))
        np.testing.assert_allclose(src, idx + np.array([1, 2, 3]), atol=1e-9)
    # slices (and numpy-style negative / clipped bounds) are accepted
    same = vol.crop([slice(1, 4), slice(-4, None), slice(3, 100)])
    np.testing.assert_array_equal(same.array, sub.array)
    np.testing.assert_allclose(same.affine, sub.affine, atol=1e-12)
    assert sub.provenance.notes[-1].startswith("cropped")


@pytest.mark.parametrize(
    ("bounds", "pattern"),
    [
        ([(2, 2), (0, 6), (0, 7)], "empty axis 0"),
        ([(0, 5), (4, 1), (0, 7)], "empty axis 1"),
        ([(0, 5), (0, 6), (7, 9)], "empty axis 2"),
        ([slice(0, 5, 2), (0, 6), (0, 7)], "step 2"),
        ([(0, 5), (0, 6)], "3 bounds"),
    ],
)
def test_crop_bad_bounds_raise(oblique, bounds, pattern) -> None:
    with pytest.raises(VolumeError, match=pattern):
        oblique[0].crop(bounds)


def test_crop_four_bounds_raise_volume_error(oblique) -> None:
    with pytest.raises(VolumeError, match="3 bounds"):
        oblique[0].crop([(0, 5), (0, 6), (0, 7), (0, 1)])


def test_crop_fractional_bounds_raise_volume_error(oblique) -> None:
    with pytest.raises(VolumeError, match="whole indices"):
        oblique[0].crop([(0, 2.5), (0, 6), (0, 7)])


# ---------------------------------------------------------------------- reorient
def test_there_are_48_codes() -> None:
    assert len(ALL_CODES) == 48 == len(set(ALL_CODES))
    assert {"SPL", "IAR", "LPS", "RAS"} <= set(ALL_CODES)


@pytest.mark.parametrize("code", ALL_CODES)
def test_reorient_keeps_every_voxel_in_place(near_axial: Volume, code: str) -> None:
    vol = near_axial
    assert vol.orientation_code() == "SPL"
    out = vol.reorient(code)
    assert out.orientation_code() == code
    assert sorted(out.spatial_shape) == sorted(vol.spatial_shape)
    assert sorted(out.spacing) == pytest.approx(sorted(vol.spacing), rel=1e-12)
    # every voxel of the output lies on a source voxel with the same value
    idx = _all_indices(out.spatial_shape)
    src = vol.lps_to_index(out.index_to_lps(idx))
    src_int = np.rint(src)
    np.testing.assert_allclose(src, src_int, atol=1e-6)
    np.testing.assert_array_equal(_value_at(out, idx), _value_at(vol, src_int))
    assert out.voxel_volume_ml == pytest.approx(vol.voxel_volume_ml, rel=1e-12)
    assert out.frame_of_reference_uid == vol.frame_of_reference_uid
    assert (out.modality, out.units) == (vol.modality, vol.units)
    # and back again: the same array and axes exactly; the translation goes through
    # t + a * (n - 1) - a * (n - 1) for a flipped axis, so it may differ in the last bit
    back = out.reorient("SPL")
    np.testing.assert_array_equal(back.array, vol.array)
    assert back.array.dtype == vol.array.dtype
    np.testing.assert_array_equal(back.affine[:, :3], vol.affine[:, :3])
    np.testing.assert_allclose(back.affine[:3, 3], vol.affine[:3, 3], rtol=0, atol=1e-12)
    if code == "SPL":
        np.testing.assert_array_equal(out.affine, vol.affine)  # identity: bit for bit


def test_reorient_rgb_keeps_channel_axis(near_axial: Volume) -> None:
    rng = np.random.default_rng(5)
    rgb = near_axial.with_array(rng.integers(0, 256, size=(4, 5, 6, 3), dtype=np.uint8))
    out = rgb.reorient("LAI")
    assert out.shape[3] == 3
    idx = _all_indices(out.spatial_shape)
    src = np.rint(rgb.lps_to_index(out.index_to_lps(idx)))
    np.testing.assert_array_equal(_value_at(out, idx), _value_at(rgb, src))


def test_reorient_lowercase_code(near_axial: Volume) -> None:
    assert near_axial.reorient("lps").orientation_code() == "LPS"


@pytest.mark.parametrize("code", ["LPX", "LP", "LPSR", "", "LLS", "RLA", "SPS", "PAI", "123"])
def test_reorient_invalid_codes_raise(near_axial: Volume, code: str) -> None:
    with pytest.raises(VolumeError, match="orientation code") as info:
        near_axial.reorient(code)
    assert repr(code.upper()) in str(info.value)


def test_reorient_ambiguous_direction_raises() -> None:
    # 45 degrees between two LPS axes: two array axes are closest to the same axis
    rot = Rotation.from_euler("z", 45, degrees=True).as_matrix() @ AXIAL
    rot2 = Rotation.from_euler("x", 10, degrees=True).as_matrix() @ rot
    vol = Volume(np.zeros((2, 3, 4)), _affine(rot2, (1, 1, 1), (0, 0, 0)))
    if sorted(np.argmax(np.abs(vol.direction), axis=0).tolist()) == [0, 1, 2]:
        pytest.skip("this direction is not ambiguous")
    with pytest.raises(VolumeError, match="cannot reorient"):
        vol.reorient("SPL")


# ---------------------------------------------------------------------- SimpleITK
def test_sitk_round_trip_exact(oblique) -> None:
    vol = oblique[0]
    img = vol.to_sitk()
    back = Volume.from_sitk(img, frame_of_reference_uid=FOR_UID)
    np.testing.assert_array_equal(back.array, vol.array)
    assert back.array.dtype == vol.array.dtype
    # the affine goes through spacing x unit direction: equal to the last bit or two
    np.testing.assert_allclose(back.affine, vol.affine, rtol=0, atol=1e-12)
    # integer and boolean arrays
    for arr in (
        np.arange(5 * 6 * 7, dtype=np.int16).reshape(5, 6, 7),
        np.arange(5 * 6 * 7).reshape(5, 6, 7) % 3 == 0,
    ):
        again = Volume.from_sitk(vol.with_array(arr).to_sitk())
        np.testing.assert_array_equal(again.array, arr)


def test_sitk_index_to_physical_point_is_the_oracle(oblique) -> None:
    vol = oblique[0]
    img = vol.to_sitk()
    assert img.GetSize() == (7, 6, 5)  # x = column, y = row, z = slice
    np.testing.assert_allclose(img.GetSpacing(), vol.spacing[::-1], rtol=1e-12)
    rng = np.random.default_rng(9)
    for _ in range(20):
        k, j, i = (int(rng.integers(0, n)) for n in vol.spatial_shape)
        phys = img.TransformIndexToPhysicalPoint((i, j, k))
        np.testing.assert_allclose(phys, vol.index_to_lps([k, j, i]), atol=1e-9)
        # and the voxel value found at that index is the array's [k, j, i]
        assert img.GetPixel(i, j, k) == pytest.approx(float(vol.array[k, j, i]))
    cont = rng.uniform(0, 4, size=3)
    phys = img.TransformContinuousIndexToPhysicalPoint(tuple(cont[::-1].tolist()))
    np.testing.assert_allclose(phys, vol.index_to_lps(cont), atol=1e-9)


def test_from_sitk_of_an_independently_built_image() -> None:
    rot = _rotation(seed=21)
    arr = np.random.default_rng(2).integers(-5, 5, size=(3, 4, 5)).astype(np.int16)
    img = sitk.GetImageFromArray(arr)
    img.SetSpacing((0.9, 1.1, 2.7))  # x, y, z
    img.SetDirection(tuple(rot.ravel().tolist()))  # columns: x, y, z axes
    img.SetOrigin((10.0, -20.0, 30.0))
    vol = Volume.from_sitk(img)
    for i, j, k in [(0, 0, 0), (4, 3, 2), (1, 2, 0), (3, 0, 1)]:
        np.testing.assert_allclose(
            vol.index_to_lps([k, j, i]), img.TransformIndexToPhysicalPoint((i, j, k)), atol=1e-9
        )
    assert vol.spacing == pytest.approx((2.7, 1.1, 0.9))


def test_from_sitk_rejects_2d() -> None:
    with pytest.raises(VolumeError, match="2D"):
        Volume.from_sitk(sitk.Image(4, 5, sitk.sitkInt16))


# ---------------------------------------------------------------------- resample
def _independent_sitk_image(vol: Volume) -> sitk.Image:
    """Build the SimpleITK image of a Volume without Volume.to_sitk."""
    arr = vol.array.astype(np.float64)
    img = sitk.GetImageFromArray(arr)
    m = vol.affine[:3, :3]
    sp = np.sqrt((m**2).sum(axis=0))
    img.SetSpacing((sp[2], sp[1], sp[0]))
    img.SetDirection(tuple((m[:, ::-1] / sp[::-1]).ravel().tolist()))
    img.SetOrigin(tuple(vol.affine[:3, 3].tolist()))
    return img


def test_resample_spacing_matches_independent_sitk(oblique) -> None:
    vol = oblique[0]
    new_sp = np.array([1.5, 1.0, 0.9])
    out = vol.resample(spacing_mm=new_sp)
    # the expected grid: same directions, new spacing, same outer corner of voxel 0
    extent = np.array(vol.spacing) * vol.spatial_shape
    shape = tuple(int(v) for v in np.maximum(1, np.round(extent / new_sp)))
    assert out.spatial_shape == shape
    np.testing.assert_allclose(out.spacing, new_sp, rtol=1e-12)
    np.testing.assert_allclose(out.direction, vol.direction, atol=1e-12)
    np.testing.assert_allclose(
        out.index_to_lps([-0.5, -0.5, -0.5]), vol.index_to_lps([-0.5, -0.5, -0.5]), atol=1e-9
    )
    # an independent SimpleITK call on that grid
    direction = vol.direction[:, ::-1]  # columns x, y, z
    corner = vol.index_to_lps([-0.5, -0.5, -0.5])
    origin = corner + direction @ (0.5 * new_sp[::-1])
    expected = sitk.Resample(
        _independent_sitk_image(vol),
        list(shape[::-1]),
        sitk.Transform(),
        sitk.sitkLinear,
        tuple(origin.tolist()),
        tuple(new_sp[::-1].tolist()),
        tuple(direction.ravel().tolist()),
        float(vol.array.min()),
        sitk.sitkFloat64,
    )
    np.testing.assert_allclose(out.array, sitk.GetArrayFromImage(expected), rtol=0, atol=1e-5)
    assert out.array.dtype == np.float32
    assert out.frame_of_reference_uid == FOR_UID
    assert "resampled" in out.provenance.notes[-1]


def test_resample_reference_matches_independent_sitk(oblique) -> None:
    vol = oblique[0]
    ref_aff = vol.affine.copy()
    ref_aff[:3, :3] = _rotation(seed=8, max_deg=10) @ vol.direction * [2.0, 0.6, 1.0]
    ref_aff[:3, 3] += [1.3, -0.4, 0.8]
    ref = Volume(np.zeros((4, 9, 8), dtype=np.int16), ref_aff, frame_of_reference_uid=FOR_UID)
    out = vol.resample(reference=ref, fill_value=-7.0)
    assert out.spatial_shape == ref.spatial_shape
    assert np.array_equal(out.affine, ref.affine)
    ref_img = _independent_sitk_image(ref)
    expected = sitk.Resample(
        _independent_sitk_image(vol),
        ref_img,
        sitk.Transform(),
        sitk.sitkLinear,
        -7.0,
        sitk.sitkFloat64,
    )
    exp = sitk.GetArrayFromImage(expected)
    np.testing.assert_allclose(out.array, exp, rtol=0, atol=1e-5)
    assert np.any(out.array == -7.0)  # part of the reference grid is outside the source


def test_resample_linear_ramp_is_exact_inside_fov() -> None:
    a, b, c = 0.3, -0.45, 0.7
    rot = _rotation(seed=31)
    src_aff = _affine(rot, (2.0, 1.5, 1.25), (12.0, -30.0, 55.0))
    src_shape = (16, 20, 24)
    ramp_dir = np.array([a, b, c])
    base = Volume(np.zeros(src_shape, dtype=np.float32), src_aff, frame_of_reference_uid=FOR_UID)
    src_vals = base.index_to_lps(_all_indices(src_shape)) @ ramp_dir
    src = base.with_array(src_vals.reshape(src_shape))
    # a rotated and shifted target grid around the source centre
    centre = src.index_to_lps((np.array(src_shape) - 1) / 2.0)
    rot2 = _rotation(seed=32, max_deg=25) @ rot
    tgt_sp = np.array([1.7, 1.3, 1.1])
    tgt_shape = (14, 18, 20)
    tgt_origin = centre - rot2 @ (tgt_sp * (np.array(tgt_shape) - 1) / 2.0) + [2.1, -1.7, 0.9]
    ref = Volume(
        np.zeros(tgt_shape, dtype=np.uint8),
        _affine(rot2, tuple(tgt_sp), tgt_origin),
        frame_of_reference_uid=FOR_UID,
    )
    out = src.resample(reference=ref, interpolation="linear")
    idx = _all_indices(tgt_shape)
    pts = out.index_to_lps(idx)
    src_idx = src.lps_to_index(pts)
    inside = np.all((src_idx >= 1e-6) & (src_idx <= np.array(src_shape) - 1 - 1e-6), axis=1)
    assert inside.mean() > 0.3
    got = _value_at(out, idx[inside])
    np.testing.assert_allclose(got, pts[inside] @ ramp_dir, rtol=0, atol=1e-3)


def test_resample_nearest_keeps_labels(oblique) -> None:
    vol = oblique[0]
    rng = np.random.default_rng(4)
    labels = rng.choice(np.array([0, 3, 7, 250], dtype=np.uint8), size=vol.spatial_shape)
    lab = vol.with_array(labels)
    out = lab.resample(spacing_mm=(1.1, 0.5, 0.6), interpolation="nearest")
    assert out.array.dtype == np.uint8
    assert set(np.unique(out.array).tolist()) <= {0, 3, 7, 250}
    assert set(np.unique(out.array).tolist()) == {0, 3, 7, 250}
    # each output voxel takes the label of the source voxel nearest to its centre
    idx = _all_indices(out.spatial_shape)
    cont = vol.lps_to_index(out.index_to_lps(idx))
    src = np.rint(cont)
    # centres half-way between two source voxels may round either way: leave them out
    halfway = np.any(np.abs(np.abs(cont - src) - 0.5) < 1e-6, axis=1)
    ok = np.all((src >= 0) & (src <= np.array(vol.spatial_shape) - 1), axis=1) & ~halfway
    assert ok.mean() > 0.5
    np.testing.assert_array_equal(_value_at(out, idx[ok]), _value_at(lab, src[ok]))


def test_resample_across_frames_of_reference_raises(oblique) -> None:
    vol = oblique[0]
    other = Volume(vol.array, vol.affine, frame_of_reference_uid="1.2.3.4.5")
    with pytest.raises(VolumeError, match="frames of reference") as info:
        vol.resample(reference=other)
    assert "1.2.3.4.5" in str(info.value)
    assert FOR_UID in str(info.value)


@pytest.mark.parametrize(
    ("kwargs", "pattern"),
    [
        ({}, "exactly one"),
        ({"spacing_mm": (1, 1)}, "3 positive"),
        ({"spacing_mm": (1, 0, 1)}, "3 positive"),
        ({"spacing_mm": (1, 1, 1), "interpolation": "cubic"}, "cubic"),
    ],
)
def test_resample_bad_arguments(oblique, kwargs, pattern) -> None:
    with pytest.raises(VolumeError, match=pattern):
        oblique[0].resample(**kwargs)


def test_resample_rgb_raises(near_axial: Volume) -> None:
    rgb = near_axial.with_array(np.zeros((4, 5, 6, 3), dtype=np.uint8))
    with pytest.raises(VolumeError, match="RGB"):
        rgb.resample(spacing_mm=(1, 1, 1))


# ---------------------------------------------------------------------- NIfTI
_REVERSE = np.array([[0, 0, 1, 0], [0, 1, 0, 0], [1, 0, 0, 0], [0, 0, 0, 1]], dtype=np.float64)
_LPS_TO_RAS = np.diag([-1.0, -1.0, 1.0, 1.0])


def _nifti_arrays() -> list[np.ndarray]:
    rng = np.random.default_rng(12)
    shape = (5, 6, 7)
    return [
        rng.integers(-32768, 32767, size=shape).astype(np.int16),
        rng.normal(size=shape).astype(np.float32),
        rng.integers(0, 256, size=shape).astype(np.uint8),
        rng.random(size=shape) > 0.5,
        rng.integers(0, 256, size=(*shape, 3)).astype(np.uint8),
    ]


@pytest.mark.parametrize("suffix", [".nii", ".nii.gz"])
@pytest.mark.parametrize("which", ["int16", "float32", "uint8", "bool", "rgb"])
def test_nifti_round_trip(oblique, tmp_path: Path, suffix: str, which: str) -> None:
    arr = dict(zip(["int16", "float32", "uint8", "bool", "rgb"], _nifti_arrays(), strict=True))[
        which
    ]
    vol = oblique[0].with_array(arr)
    path = tmp_path / f"vol{suffix}"
    assert write_nifti(vol, path) == path
    assert _names(tmp_path) == [path.name]  # no temporary file left behind
    back = read_nifti(path, frame_of_reference_uid=FOR_UID)
    np.testing.assert_array_equal(back.array, arr)
    expected_dtype = np.uint8 if arr.dtype == np.bool_ else arr.dtype
    assert back.array.dtype == expected_dtype
    # the sform is stored as float32
    np.testing.assert_allclose(back.affine, vol.affine, rtol=0, atol=1e-4)
    # what nibabel sees: RAS, (i, j, k) index
    img = nibabel.load(str(path))
    expected_ras = _LPS_TO_RAS @ vol.affine @ _REVERSE
    np.testing.assert_allclose(img.affine, expected_ras, rtol=0, atol=1e-4)
    assert int(img.header["sform_code"]) == 1
    assert int(img.header["qform_code"]) == 1
    np.testing.assert_allclose(img.get_qform(), expected_ras, rtol=0, atol=1e-4)
    data = np.asanyarray(img.dataobj)
    assert data.shape[:3] == (7, 6, 5)
    if which == "rgb":
        assert data[4, 2, 1]["G"] == arr[1, 2, 4, 1]
    else:
        assert data[4, 2, 1] == arr[1, 2, 4]
    # nibabel's world coordinates of voxel (i, j, k) = our LPS of [k, j, i] with x, y negated
    ras = nibabel.affines.apply_affine(img.affine, [4, 2, 1])
    np.testing.assert_allclose(ras * [-1, -1, 1], vol.index_to_lps([1, 2, 4]), atol=1e-3)


@pytest.mark.parametrize("suffix", [".nii", ".nii.gz"])
def test_write_nifti_gives_the_bytes_of_nibabel_save(oblique, tmp_path: Path, suffix: str) -> None:
    """write_nifti encodes in memory and compresses in one zlib call: nibabel's bytes."""
    labels = oblique[0].with_array(
        (np.arange(5 * 6 * 7).reshape(5, 6, 7) % 4).astype(np.uint8),
        units="label",
        label_names={1: "liver", 2: "spleen", 3: "L1"},
    )
    for i, vol in enumerate((oblique[0], labels)):
        ours = write_nifti(vol, tmp_path / f"ours{i}{suffix}")
        theirs = tmp_path / f"nibabel{i}{suffix}"
        nibabel.save(nifti.volume_to_nifti(vol), str(theirs))
        assert ours.read_bytes() == theirs.read_bytes()
        again = write_nifti_bytes(nifti_bytes(vol), tmp_path / f"bytes{i}{suffix}")
        assert again.read_bytes() == theirs.read_bytes()


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.float32])
def test_write_nifti_mostly_zero_mask_decodes_to_nibabel_bytes(tmp_path: Path, dtype: type) -> None:
    """Whole zero pieces (64 KiB) are spliced in precompressed: at the start, between
    labelled slices, at the end and as a partial last piece, the file must still decode to
    nibabel's bytes and load in nibabel."""
    rng = np.random.default_rng(9)
    arr = np.zeros((41, 64, 96), dtype)  # 6144 voxels per slice
    arr[12:14] = (rng.random((2, 64, 96)) * 5).astype(dtype)
    arr[30, 5:9, 7:60] = 3
    vol = Volume(arr, np.diag([2.0, 0.8, 0.8, 1.0]), units="label", label_names={3: "L1"})
    path = write_nifti(vol, tmp_path / "m.nii.gz")
    assert gzip.decompress(path.read_bytes()) == nifti.volume_to_nifti(vol).to_bytes()
    loaded = np.asarray(nibabel.load(str(path)).dataobj).transpose(2, 1, 0)
    assert np.array_equal(loaded, arr)
    # the zero pieces are spliced in: far smaller than compressing them would not make it,
    # but the splice must not change what gzip reads back (checked above)
    assert path.stat().st_size < arr.nbytes / 20
    head, body = nifti.nifti_parts(vol)
    assert np.shares_memory(body, arr)  # passed on, not copied
    assert head + body.tobytes() == nifti_bytes(vol)


@pytest.mark.parametrize("name", ["out.nii.gzip", "out.img", "out", "out.gz", "out.nii.bak"])
def test_write_nifti_bad_name_raises(near_axial: Volume, tmp_path: Path, name: str) -> None:
    with pytest.raises(VolumeError, match=re.escape(repr(name))):
        write_nifti(near_axial, tmp_path / name)
    with pytest.raises(VolumeError, match=re.escape(repr(name))):
        write_nifti_bytes(b"", tmp_path / name)
    assert _names(tmp_path) == []


def test_write_nifti_upper_case_suffix(near_axial: Volume, tmp_path: Path) -> None:
    path = write_nifti(near_axial, tmp_path / "OUT.NII.GZ")
    np.testing.assert_array_equal(read_nifti(path).array, near_axial.array)


def test_write_nifti_failure_leaves_nothing(
    near_axial: Volume, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    class Boom:
        def __init__(self, *args: object) -> None:
            pass

        def compress(self, data: object) -> bytes:
            raise OSError("disk full")  # the gzip header is written by then

    monkeypatch.setattr(nifti.zlib, "compressobj", Boom)
    target = tmp_path / "vol.nii.gz"
    with pytest.raises(OSError, match="disk full"):
        write_nifti(near_axial, target)
    assert not target.exists()
    assert _names(tmp_path) == []


def test_write_nifti_failure_keeps_existing_target(
    near_axial: Volume, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "vol.nii"
    write_nifti(near_axial, target)
    before = target.read_bytes()

    def boom(header, fileobj):
        raise RuntimeError("interrupted")

    monkeypatch.setattr(nibabel.Nifti1Header, "write_to", boom)
    with pytest.raises(RuntimeError, match="interrupted"):
        write_nifti(near_axial.with_array(near_axial.array + 1), target)
    assert target.read_bytes() == before
    assert _names(tmp_path) == ["vol.nii"]


def test_rgb_nifti_refuses_non_uint8(tmp_path: Path) -> None:
    rgb = Volume(np.full((2, 3, 4, 3), 300, dtype=np.int16), np.eye(4))
    with pytest.raises(VolumeError, match="int16"):
        write_nifti(rgb, tmp_path / "rgb.nii.gz")
    assert not list(tmp_path.iterdir())

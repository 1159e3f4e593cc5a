"""DICOM stack geometry: spacing checks, gaps, pixel spacing, gantry tilt, slice order.

Every stack is written with :func:`netvolume.io.dicom_write.write_series` (exactly known
ImagePositionPatient / ImageOrientationPatient) and read back with
:func:`netvolume.io.dicom.load` / :func:`~netvolume.io.dicom.load_files`.
"""

from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np
import pydicom
import pytest
from _orientation import oblique_iop
from pydicom.data import get_testdata_file

from netvolume.errors import (
    GantryTiltError,
    InconsistentPixelSpacingError,
    IrregularSpacingError,
    MissingSliceError,
    MultipleSeriesError,
)
from netvolume.io.dicom import _iso_datetime, load, load_files, scan
from netvolume.io.dicom_write import write_series

AXIAL_IOP = (1.0, 0.0, 0.0, 0.0, 1.0, 0.0)
OBLIQUE_IOP = oblique_iop(20.0, 35.0)


def _stack(n: int, rows: int = 6, cols: int = 5, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.integers(0, 2000, size=(n, rows, cols)).astype(np.int16)


def _z_positions(zs, x: float = -10.0, y: float = 20.0) -> list[tuple[float, float, float]]:
    return [(x, y, float(z)) for z in zs]


def _normal(iop) -> np.ndarray:
    iop = np.asarray(iop, dtype=float)
    n = np.cross(iop[:3], iop[3:])
    return n / np.linalg.norm(n)


# ---------------------------------------------------------------------- spacing
def test_irregular_spacing_raises(tmp_path: Path) -> None:
    zs = [0.0, 2.5, 5.0, 8.2, 10.0]
    paths = write_series(tmp_path, _stack(5), spacing_mm=(2.5, 1, 1), positions=_z_positions(zs))
    with pytest.raises(IrregularSpacingError) as info:
        load_files(paths)
    msg = str(info.value)
    for distance in ("1.8", "2.5", "3.2"):
        assert re.search(rf"\b{re.escape(distance)}\b", msg), (distance, msg)
    assert "slice_spacing_rtol" in msg
    assert "median 2.5" in msg
    assert info.value.tag == "ImagePositionPatient"
    assert len(info.value.files) == 2


def test_two_gaps_raise_missing_slice(tmp_path: Path) -> None:
    zs = [0.0, 5.0, 15.0, 20.0, 30.0]
    paths = write_series(tmp_path, _stack(5), spacing_mm=(5, 1, 1), positions=_z_positions(zs))
    with pytest.raises(MissingSliceError) as info:
        load_files(paths)
    msg = str(info.value)
    assert msg.startswith("2 slice(s) missing"), msg
    assert "2 gap(s)" in msg
    assert "spacing is 5 mm" in msg
    # the files around the first gap (z = 5 and z = 15) are named
    assert {p.name for p in info.value.files} == {paths[1].name, paths[2].name}


def test_one_gap_of_two_slices(tmp_path: Path) -> None:
    zs = [0.0, 2.0, 4.0, 10.0, 12.0, 14.0]
    paths = write_series(tmp_path, _stack(6), spacing_mm=(2, 1, 1), positions=_z_positions(zs))
    with pytest.raises(MissingSliceError, match=r"^2 slice\(s\) missing"):
        load_files(paths)


def test_spacing_jitter_within_tolerance_loads_with_mean_spacing(tmp_path: Path) -> None:
    zs = [0.0, 2.5, 5.0, 7.5, 10.02, 12.54]  # steps 2.5 x3, 2.52 x2: within 1 %
    arr = _stack(6)
    paths = write_series(tmp_path, arr, spacing_mm=(2.5, 1, 1), positions=_z_positions(zs))
    vol = load_files(paths, slice_spacing_rtol=0.01)
    assert vol.spacing[0] == pytest.approx(12.54 / 5, rel=1e-9)  # the mean, not the median
    np.testing.assert_allclose(vol.origin, (-10.0, 20.0, 0.0), atol=1e-9)
    np.testing.assert_array_equal(vol.array, arr.astype(np.int32) - 1024)
    # the same jitter with a tighter tolerance is refused
    with pytest.raises(IrregularSpacingError, match=re.escape("slice_spacing_rtol=0.001")):
        load_files(paths, slice_spacing_rtol=0.001)


# ---------------------------------------------------------------------- pixel spacing
def test_inconsistent_pixel_spacing_raises(tmp_path: Path) -> None:
    uid = "1.2.826.0.1.3680043.8.498.77"
    a = write_series(
        tmp_path, _stack(3), spacing_mm=(2.0, 0.75, 0.75), series_instance_uid=uid, seed=1
    )
    b = write_series(
        tmp_path,
        _stack(3, seed=2),
        spacing_mm=(2.0, 0.75, 0.75),
        origin_lps=(0.0, 0.0, 6.0),
        series_instance_uid=uid,
        seed=2,
        extra={"PixelSpacing": ["0.8", "0.8"]},
    )
    assert len({*a, *b}) == 6
    # scan does not split on PixelSpacing: one stack, which load refuses
    catalogue = scan(tmp_path)
    assert [s.uid for s in catalogue.series] == [uid]
    with pytest.raises(InconsistentPixelSpacingError) as info:
        load_files([*a, *b])
    msg = str(info.value)
    assert "[0.8, 0.8]" in msg
    assert "[0.75, 0.75]" in msg
    assert "pixel_spacing_rtol" in msg
    with pytest.raises(InconsistentPixelSpacingError):
        load(catalogue.series[0])


# ---------------------------------------------------------------------- gantry tilt
def test_gantry_tilt_error_without_correction(tmp_path: Path) -> None:
    zs = np.arange(8) * 2.5
    t = math.tan(math.radians(15.0))
    positions = [(-30.0, -40.0 + t * z, float(z)) for z in zs]
    paths = write_series(tmp_path, _stack(8), spacing_mm=(2.5, 1, 1), positions=positions)
    with pytest.raises(GantryTiltError) as info:
        load_files(paths, correct_tilt=False)
    assert "15.00 degrees" in str(info.value)
    # with correction (the default) it loads
    vol = load_files(paths)
    assert vol.spacing[0] == pytest.approx(2.5, rel=1e-9)
    assert any("gantry tilt corrected" in n for n in vol.provenance.notes)


def _tilted_stack(tilt_deg: float, n: int = 20, about: str = "x"):
    """Geometry of a gantry-tilted CT: planes tilted about x (or y), positions along z."""
    t = math.radians(tilt_deg)
    if about == "x":  # the usual gantry tilt: the column direction leaves the axial plane
        row_dir = np.array([1.0, 0.0, 0.0])
        col_dir = np.array([0.0, math.cos(t), -math.sin(t)])
    else:
        row_dir = np.array([math.cos(t), 0.0, math.sin(t)])
        col_dir = np.array([0.0, 1.0, 0.0])
    origin = np.array([-63.0, -50.0, -30.0])
    positions = origin + np.outer(np.arange(n) * 3.0, [0.0, 0.0, 1.0])
    iop = (*row_dir, *col_dir)
    return iop, positions, row_dir, col_dir


def _soft_sphere(points: np.ndarray, centre: np.ndarray, radius: float = 10.0) -> np.ndarray:
    r = np.linalg.norm(points - centre, axis=-1)
    return 1000.0 / (1.0 + np.exp((r - radius) / 1.0))


@pytest.mark.parametrize(
    ("tilt", "about", "reverse"),
    [(12.0, "x", False), (-12.0, "x", True), (12.0, "y", False)],
    ids=["12deg-x", "-12deg-x-reversed", "12deg-y"],
)
def test_gantry_tilt_correction_places_sphere_analytically(
    tmp_path: Path, tilt: float, about: str, reverse: bool
) -> None:
    n, size, pixel = 20, 64, 2.0
    iop, positions, row_dir, col_dir = _tilted_stack(tilt, n, about)
    if reverse:  # array order against the slice normal: the loader must sort
        positions = positions[::-1].copy()
    centre = np.array([1.0, 12.0, -2.0])
    # the true LPS position of every stored pixel centre (k, j, i)
    jj, ii = np.meshgrid(np.arange(size), np.arange(size), indexing="ij")
    pts = (
        positions[:, None, None, :]
        + (jj * pixel)[None, :, :, None] * col_dir
        + (ii * pixel)[None, :, :, None] * row_dir
    )
    stored = np.rint(_soft_sphere(pts, centre)).astype(np.int16)
    # the test's own premise: the sphere lies well inside the sheared field of view
    w = stored.astype(np.float64)
    np.testing.assert_allclose((w[..., None] * pts).sum((0, 1, 2)) / w.sum(), centre, atol=0.05)
    paths = write_series(
        tmp_path,
        stored,
        spacing_mm=(3.0, pixel, pixel),
        orientation=iop,
        positions=positions,
        rescale_intercept=0.0,
    )
    vol = load_files(paths)  # correct_tilt=True is the default

    # orthogonal grid, spacing along the normal = 3 mm * cos(tilt)
    d = vol.direction
    np.testing.assert_allclose(d.T @ d, np.eye(3), atol=1e-9)
    assert vol.spacing[0] == pytest.approx(3.0 * math.cos(math.radians(tilt)), rel=1e-6)
    assert vol.spacing[1:] == pytest.approx((pixel, pixel))
    np.testing.assert_allclose(d[:, 0], np.cross(row_dir, col_dir), atol=1e-6)
    np.testing.assert_allclose(d[:, 1], col_dir, atol=1e-6)
    np.testing.assert_allclose(d[:, 2], row_dir, atol=1e-6)
    assert vol.shape[0] == n
    assert vol.shape[1] + vol.shape[2] > 2 * size  # matrix enlarged to keep every pixel
    notes = " ".join(vol.provenance.notes)
    assert "tilt" in notes
    assert vol.provenance.settings["correct_tilt"] is True

    # intensity-weighted centroid, in LPS through the affine
    arr = vol.array.astype(np.float64)
    idx = np.stack(np.meshgrid(*(np.arange(s) for s in arr.shape), indexing="ij"), -1)
    lps = vol.index_to_lps(idx)
    got = (arr[..., None] * lps).sum((0, 1, 2)) / arr.sum()
    assert np.linalg.norm(got - centre) < 0.5, (got, centre)
    # and the voxels themselves follow the analytic sphere (in-plane linear interpolation)
    truth = _soft_sphere(lps, centre)
    assert np.abs(arr - truth).max() < 100.0
    assert np.abs(arr - truth).mean() < 0.5
    # the first slice along the normal is kept exactly (it anchors the grid, which is
    # enlarged by whole pixels)
    first = int(np.argmin(positions @ d[:, 0]))
    offset = (positions[first] - np.asarray(vol.origin)) / pixel
    r0, c0 = float(offset @ col_dir), float(offset @ row_dir)
    assert (r0, c0) == pytest.approx((round(r0), round(c0)), abs=1e-6)
    r0, c0 = round(r0), round(c0)
    np.testing.assert_array_equal(vol.array[0, r0 : r0 + size, c0 : c0 + size], stored[first])


def test_gantry_tilt_below_tolerance_not_corrected(tmp_path: Path) -> None:
    tilt = 0.02  # degrees, below the default tilt_tol_deg=0.05
    n, size = 6, 8
    iop, positions, _, _ = _tilted_stack(tilt, n)
    arr = _stack(n, size, size)
    paths = write_series(
        tmp_path, arr, spacing_mm=(3.0, 2.0, 2.0), orientation=iop, positions=positions
    )
    vol = load_files(paths)
    assert vol.shape == arr.shape
    np.testing.assert_array_equal(vol.array, arr.astype(np.int32) - 1024)
    assert not any("tilt" in n for n in vol.provenance.notes)
    np.testing.assert_allclose(vol.origin, positions[0], atol=1e-9)
    assert vol.spacing[0] == pytest.approx(3.0 * math.cos(math.radians(tilt)), rel=1e-9)
    # correct_tilt=False accepts it too, and a lower tolerance turns the correction on
    assert load_files(paths, correct_tilt=False).shape == arr.shape
    with pytest.raises(GantryTiltError):
        load_files(paths, correct_tilt=False, tilt_tol_deg=0.01)


# ---------------------------------------------------------------------- selection
def test_get_bare_uid_of_split_series_raises(tmp_path: Path) -> None:
    uid = "1.2.826.0.1.3680043.8.498.4242"
    write_series(tmp_path / "ax", _stack(4), series_instance_uid=uid, seed=1)
    write_series(
        tmp_path / "cor",
        _stack(3, seed=5),
        series_instance_uid=uid,
        orientation=(1.0, 0.0, 0.0, 0.0, 0.0, -1.0),
        seed=2,
    )
    catalogue = scan(tmp_path)
    assert sorted(s.uid for s in catalogue.series) == [f"{uid}#1", f"{uid}#2"]
    with pytest.raises(MultipleSeriesError) as info:
        catalogue.get(uid)
    msg = str(info.value)
    assert f"{uid}#1" in msg
    assert f"{uid}#2" in msg
    assert "2 stacks" in msg
    stack = catalogue.get(f"{uid}#1")
    assert stack.num_images == 4  # the larger stack first
    assert load(stack).shape == (4, 6, 5)


# ---------------------------------------------------------------------- date-times
@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("20240131", "2024-01-31"),
        ("2024", "2024"),
        ("202401", "2024-01"),
        ("20240131123456", "2024-01-31T12:34:56"),
        ("20240131123456.789", "2024-01-31T12:34:56.789"),
        ("20240131123456.000001", "2024-01-31T12:34:56.000001"),
        ("202401311234", "2024-01-31T12:34:00"),
        ("2024013112", "2024-01-31T12:00:00"),
        ("20240131123456+0100", "2024-01-31T12:34:56"),
        ("20240131123456.5-0500", "2024-01-31T12:34:56.5"),
        ("  20240131120000  ", "2024-01-31T12:00:00"),
        ("", None),
        ("2024-01-31", None),
        ("2024013", None),
        ("abcdefgh", None),
        ("20240131123", None),
        ("2024013112345", None),
        ("20240131ab", None),
    ],
)
def test_iso_datetime(value: str, expected: str | None) -> None:
    assert _iso_datetime(value) == expected


# ---------------------------------------------------------------------- RT dose
def test_rtdose_frames_placed_by_grid_frame_offsets() -> None:
    path = Path(get_testdata_file("rtdose.dcm"))
    ds = pydicom.dcmread(path)
    vol = load_files([path])
    n = int(ds.NumberOfFrames)
    offsets = [float(v) for v in ds.GridFrameOffsetVector]
    step = offsets[1] - offsets[0]
    assert vol.shape == (n, int(ds.Rows), int(ds.Columns))
    normal = _normal(ds.ImageOrientationPatient)
    np.testing.assert_allclose(vol.affine[:3, 0], normal * step, atol=1e-9)
    np.testing.assert_allclose(vol.spacing, (step, *map(float, ds.PixelSpacing)), rtol=1e-9)
    np.testing.assert_allclose(vol.origin, [float(v) for v in ds.ImagePositionPatient], atol=1e-9)
    # dose = stored value x DoseGridScaling (PS3.3 C.8.8.3), in DoseUnits
    np.testing.assert_allclose(vol.array, ds.pixel_array * float(ds.DoseGridScaling), rtol=1e-6)
    assert vol.units == ds.DoseUnits
    for f in (0, 7, n - 1):
        expected = np.asarray(ds.ImagePositionPatient, dtype=float) + offsets[f] * normal
        np.testing.assert_allclose(vol.index_to_lps([f, 0, 0]), expected, atol=1e-9)


def test_rtdose_negative_offsets_are_sorted_along_the_normal(tmp_path: Path) -> None:
    ds = pydicom.dcmread(get_testdata_file("rtdose.dcm"))
    pixels = ds.pixel_array.copy()
    offsets = [-float(v) for v in ds.GridFrameOffsetVector]  # 0, -5, -10, ...
    ds.GridFrameOffsetVector = offsets
    path = tmp_path / "dose.dcm"
    ds.save_as(path)
    vol = load_files([path])
    np.testing.assert_allclose(vol.array, pixels[::-1] * float(ds.DoseGridScaling), rtol=1e-6)
    normal = _normal(ds.ImageOrientationPatient)
    np.testing.assert_allclose(vol.affine[:3, 0], normal * 5.0, atol=1e-9)
    np.testing.assert_allclose(
        vol.origin, np.asarray(ds.ImagePositionPatient, dtype=float) + offsets[-1] * normal
    )


# ---------------------------------------------------------------------- slice order
@pytest.mark.parametrize(
    "iop", [AXIAL_IOP, (1.0, 0.0, 0.0, 0.0, -1.0, 0.0)], ids=["normal+z", "normal-z"]
)
@pytest.mark.parametrize("against_normal", [False, True], ids=["along", "against"])
def test_slices_sorted_along_normal(tmp_path: Path, ct_stack, iop, against_normal: bool) -> None:
    n, spacing = 7, 2.5
    normal = _normal(iop)
    origin = np.array([-100.0, -120.0, 30.0])
    sign = -1.0 if against_normal else 1.0
    positions = [origin + sign * k * spacing * normal for k in range(n)]
    arr, paths = ct_stack(
        tmp_path,
        shape=(n, 8, 10),
        seed=3,
        orientation=iop,
        positions=positions,
        instance_numbers=list(range(n, 0, -1)),  # reverse InstanceNumber
    )
    # the file names are shuffled: their order is not the slice order
    assert sorted(paths) != paths
    shuffled = [paths[k] for k in np.random.default_rng(4).permutation(n)]
    for vol in (load_files(shuffled), load(scan(tmp_path).select())):
        expected = arr[::-1] if against_normal else arr
        np.testing.assert_array_equal(vol.array, expected.astype(np.int32) - 1024)
        np.testing.assert_allclose(vol.affine[:3, 0], normal * spacing, atol=1e-9)
        first = positions[-1] if against_normal else positions[0]
        np.testing.assert_allclose(vol.origin, first, atol=1e-9)
        # each slice sits at the position written for it
        for k in range(n):
            src = n - 1 - k if against_normal else k
            np.testing.assert_allclose(vol.index_to_lps([k, 0, 0]), positions[src], atol=1e-9)


def test_oblique_stack_affine(tmp_path: Path, ct_stack) -> None:
    spacing = (2.5, 0.75, 0.8)
    arr, paths = ct_stack(tmp_path, shape=(5, 8, 10), seed=6, orientation=OBLIQUE_IOP)
    vol = load_files(paths)
    row_dir, col_dir = np.asarray(OBLIQUE_IOP[:3]), np.asarray(OBLIQUE_IOP[3:])
    normal = np.cross(row_dir, col_dir)
    np.testing.assert_allclose(vol.affine[:3, 0], normal * spacing[0], atol=1e-9)
    np.testing.assert_allclose(vol.affine[:3, 1], col_dir * spacing[1], atol=1e-9)
    np.testing.assert_allclose(vol.affine[:3, 2], row_dir * spacing[2], atol=1e-9)
    np.testing.assert_allclose(vol.origin, (-100.0, -120.0, 30.0), atol=1e-9)
    np.testing.assert_array_equal(vol.array, arr.astype(np.int32) - 1024)
    for k, path in enumerate(paths):
        ds = pydicom.dcmread(path, stop_before_pixels=True)
        np.testing.assert_allclose(
            vol.index_to_lps([k, 0, 0]), [float(v) for v in ds.ImagePositionPatient], atol=1e-6
        )
        # pixel (j, i) lies at IPP + j * row spacing * column cosine + i * column spacing * row
        j, i = 3, 7
        expected = (
            np.asarray(ds.ImagePositionPatient, dtype=float)
            + j * float(ds.PixelSpacing[0]) * col_dir
            + i * float(ds.PixelSpacing[1]) * row_dir
        )
        np.testing.assert_allclose(vol.index_to_lps([k, j, i]), expected, atol=1e-6)

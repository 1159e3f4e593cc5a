"""Bad (and tricky) input through the Python API and through the command line.

Every bad input is checked twice: the Python API raises the documented exception (or
reports the file in ``Catalogue.unused``), and ``netvolume.cli.main`` returns the
documented exit code with a ``netvolume: error: ...`` message on stderr that names the
problem, never a traceback. The positive tests at the end check geometry and values
against what is known analytically from how the series was written.
"""

from __future__ import annotations

import signal
from collections.abc import Callable, Iterator
from pathlib import Path
from types import FrameType
from typing import Any

import nibabel as nib
import numpy as np
import pydicom
import pydicom.uid
import pytest
from _orientation import oblique_iop

import netvolume.errors as E  # noqa: N812
from netvolume import load, load_files, load_folder, scan
from netvolume.io.dicom_write import write_series

EXIT_OK = 0
EXIT_DATA = 1
EXIT_PATH = 3
EXIT_SELECTION = 4

LPS_TO_RAS = np.diag([-1.0, -1.0, 1.0, 1.0])

OBLIQUE_IOP = oblique_iop(25.0, 40.0)
SAGITTAL_IOP = (0.0, 1.0, 0.0, 0.0, 0.0, -1.0)
CORONAL_IOP = (1.0, 0.0, 0.0, 0.0, 0.0, -1.0)

MakeStack = Callable[..., tuple[np.ndarray, list[Path]]]


# --------------------------------------------------------------------------- helpers


def assert_cli_error(res: Any, code: int, *needles: str) -> None:
    """The CLI failed with ``code`` and a message on stderr that contains ``needles``."""
    assert res.code == code, f"exit {res.code} != {code}; stderr: {res.err!r}"
    assert "netvolume: error:" in res.err, res.err
    low = res.err.lower()
    for needle in needles:
        assert str(needle).lower() in low, f"{needle!r} not in stderr: {res.err!r}"


def unused_reasons(cat: Any) -> dict[str, str]:
    """``{file name: reason}`` of a catalogue's unused files."""
    return {Path(u.path).name: u.reason for u in cat.unused}


def copy_as_new_instance(src: Path, dst: Path, pixel_delta: int = 0) -> None:
    """Copy a DICOM file under a new SOPInstanceUID, optionally changing its pixels."""
    ds = pydicom.dcmread(src)
    uid = pydicom.uid.generate_uid(entropy_srcs=[str(src), str(dst)])
    ds.SOPInstanceUID = uid
    ds.file_meta.MediaStorageSOPInstanceUID = uid
    if pixel_delta:
        arr = ds.pixel_array.astype(np.int16) + np.int16(pixel_delta)
        ds.PixelData = arr.astype("<i2").tobytes()
    ds.save_as(dst, enforce_file_format=True)


def hu(stored: np.ndarray, slope: float = 1.0, intercept: float = -1024.0) -> np.ndarray:
    """Real-world values of stored pixels."""
    return stored.astype(np.float64) * slope + intercept


def ipp(path: Path) -> np.ndarray:
    """ImagePositionPatient of a file."""
    return np.array([float(v) for v in pydicom.dcmread(path).ImagePositionPatient])


def can_read(path: Path) -> bool:
    """Whether this process can actually read ``path`` (root ignores chmod 000)."""
    try:
        if path.is_dir():
            next(iter(path.iterdir()), None)
        else:
            with path.open("rb") as fh:
                fh.read(1)
    except PermissionError:
        return False
    return True


@pytest.fixture
def unreadable() -> Iterator[Callable[[Path], None]]:
    """chmod 000 a path (skip when permissions are not enforced); restore afterwards."""
    changed: list[tuple[Path, int]] = []

    def _make(path: Path) -> None:
        changed.append((path, path.stat().st_mode))
        path.chmod(0)
        if can_read(path):
            pytest.skip(
                "chmod 000 does not block reads here (running as root or with "
                "CAP_DAC_OVERRIDE); the permission check cannot be exercised"
            )

    yield _make
    for path, mode in reversed(changed):
        path.chmod(mode)


@pytest.fixture
def time_limit() -> Iterator[Callable[[int], None]]:
    """Fail (rather than hang) when the test runs longer than the given seconds."""

    def _handler(signum: int, frame: FrameType | None) -> None:
        raise TimeoutError("scan did not terminate (symlink loop?)")

    old = signal.signal(signal.SIGALRM, _handler)
    yield lambda seconds: signal.alarm(seconds)
    signal.alarm(0)
    signal.signal(signal.SIGALRM, old)


# --------------------------------------------------------------------------- bad input


def test_empty_folder(tmp_path: Path, run_cli: Any) -> None:
    folder = tmp_path / "empty"
    folder.mkdir()
    cat = scan(folder)
    assert list(cat.series) == []
    assert list(cat.objects) == []
    assert list(cat.unused) == []
    with pytest.raises(E.NoImageSeriesError):
        load_folder(folder)

    res = run_cli(["scan", folder])
    assert res.code == EXIT_OK, res.err
    res = run_cli(["convert", folder, "-o", tmp_path / "out.nii.gz"])
    assert_cli_error(res, EXIT_SELECTION, "series", folder.name)
    assert not (tmp_path / "out.nii.gz").exists()


def test_folder_of_non_dicom_files(tmp_path: Path, run_cli: Any) -> None:
    folder = tmp_path / "junk"
    folder.mkdir()
    (folder / "notes.txt").write_text("this is not DICOM\n" * 20)
    png = b"\x89PNG\r\n\x1a\n" + bytes(np.random.default_rng(0).integers(0, 256, 600, np.uint8))
    (folder / "image.png").write_bytes(png)
    (folder / "zero.dcm").write_bytes(b"")

    cat = scan(folder)
    assert list(cat.series) == []
    reasons = unused_reasons(cat)
    assert reasons["notes.txt"] == "not_dicom"
    assert reasons["image.png"] == "not_dicom"
    assert reasons["zero.dcm"] in {"not_dicom", "unreadable", "truncated"}
    with pytest.raises(E.NoImageSeriesError):
        load_folder(folder)
    with pytest.raises(E.DicomReadError) as info:
        load_files([folder / "notes.txt"])
    assert "notes.txt" in str(info.value)

    res = run_cli(["scan", folder])
    assert res.code == EXIT_OK, res.err
    assert "notes.txt" in res.out + res.err
    res = run_cli(["convert", folder, "-o", tmp_path / "out.nii.gz"])
    assert_cli_error(res, EXIT_SELECTION, "series")


def test_truncated_dicom_file(tmp_path: Path, ct_stack: MakeStack, run_cli: Any) -> None:
    arr, paths = ct_stack(tmp_path / "s", shape=(5, 8, 10))
    victim = paths[-1]  # the last slice: the rest still forms a regular stack
    data = victim.read_bytes()
    pixel_bytes = arr[-1].nbytes
    victim.write_bytes(data[: len(data) - pixel_bytes // 2])  # cut in the pixel data

    cat = scan(tmp_path / "s")
    assert unused_reasons(cat) == {victim.name: "truncated"}
    assert len(cat.series) == 1
    assert cat.series[0].num_images == 4
    assert victim not in {Path(p) for p in cat.series[0].files}
    vol = load(cat.series[0])
    np.testing.assert_array_equal(vol.array, hu(arr[:4]))

    with pytest.raises(E.PixelDataError) as info:
        load_files(paths)
    assert victim.name in str(info.value)

    res = run_cli(["scan", tmp_path / "s"])
    assert res.code == EXIT_OK, res.err
    assert "truncated" in res.out + res.err
    res = run_cli(["convert", tmp_path / "s", "-o", tmp_path / "out.nii.gz"])
    assert res.code == EXIT_OK, res.err
    assert nib.load(tmp_path / "out.nii.gz").shape == (10, 8, 4)


def test_dicom_without_pixel_data(tmp_path: Path, ct_stack: MakeStack, run_cli: Any) -> None:
    folder = tmp_path / "s"
    ct_stack(folder, shape=(4, 6, 6))
    nopix = write_series(
        folder,
        np.zeros((1, 6, 6), np.int16),
        seed=99,
        series_number=9,
        extra={"PixelData": None},
        file_names=["nopixels.dcm"],
    )[0]

    cat = scan(folder)
    assert unused_reasons(cat) == {"nopixels.dcm": "no_pixel_data"}
    assert [s.num_images for s in cat.series] == [4]
    with pytest.raises(E.PixelDataError) as info:
        load_files([nopix])
    assert "nopixels.dcm" in str(info.value)

    res = run_cli(["scan", folder])
    assert res.code == EXIT_OK, res.err
    assert "no_pixel_data" in res.out + res.err
    alone = tmp_path / "alone"
    alone.mkdir()
    nopix.rename(alone / nopix.name)
    res = run_cli(["convert", alone, "-o", tmp_path / "out.nii.gz"])
    assert_cli_error(res, EXIT_SELECTION, "series")


def test_two_interleaved_series(tmp_path: Path, ct_stack: MakeStack, run_cli: Any) -> None:
    folder = tmp_path / "two"
    arr_a, paths_a = ct_stack(folder, shape=(5, 8, 8), seed=1, series_number=1)
    arr_b, paths_b = ct_stack(
        folder, shape=(4, 8, 8), seed=2, series_number=2, origin_lps=(0.0, 0.0, 0.0)
    )
    names = sorted(p.name for p in folder.iterdir())
    # the writer's names interleave the two series when sorted
    assert names != sorted(p.name for p in paths_a) + sorted(p.name for p in paths_b)

    cat = scan(folder)
    uid_a = pydicom.dcmread(paths_a[0]).SeriesInstanceUID
    uid_b = pydicom.dcmread(paths_b[0]).SeriesInstanceUID
    assert sorted(s.uid for s in cat.series) == sorted([uid_a, uid_b])
    assert {s.uid: s.num_images for s in cat.series} == {uid_a: 5, uid_b: 4}
    with pytest.raises(E.MultipleSeriesError) as info:
        load_folder(folder)
    assert uid_a in str(info.value)
    assert uid_b in str(info.value)
    vol_b = load_folder(folder, series_uid=uid_b)
    np.testing.assert_array_equal(vol_b.array, hu(arr_b))
    np.testing.assert_array_equal(load(cat.get(uid_a)).array, hu(arr_a))
    with pytest.raises(E.SeriesNotFoundError):
        load_folder(folder, series_uid="1.2.3.4.5.6.7")

    out = tmp_path / "out.nii.gz"
    res = run_cli(["convert", folder, "-o", out])
    assert_cli_error(res, EXIT_SELECTION, uid_a, uid_b)
    assert not out.exists()
    res = run_cli(["convert", folder, "-o", out, "--series-uid", uid_b])
    assert res.code == EXIT_OK, res.err
    np.testing.assert_array_equal(np.asarray(nib.load(out).dataobj), hu(arr_b).transpose(2, 1, 0))
    res = run_cli(["convert", folder, "-o", out, "--series-uid", "1.2.3.4.5.6.7"])
    assert_cli_error(res, EXIT_SELECTION, "1.2.3.4.5.6.7")


def test_missing_slice(tmp_path: Path, ct_stack: MakeStack, run_cli: Any) -> None:
    folder = tmp_path / "gap"
    _, paths = ct_stack(folder, shape=(7, 6, 6))
    paths[3].unlink()

    with pytest.raises(E.MissingSliceError) as info:
        load_folder(folder)
    message = str(info.value)
    assert paths[2].name in message, message
    assert paths[4].name in message, message

    res = run_cli(["convert", folder, "-o", tmp_path / "out.nii.gz"])
    assert_cli_error(res, EXIT_DATA, paths[2].name, paths[4].name)


def test_duplicate_slice_identical_pixels(
    tmp_path: Path, ct_stack: MakeStack, run_cli: Any
) -> None:
    folder = tmp_path / "dup"
    arr, paths = ct_stack(folder, shape=(5, 6, 6))
    copy_as_new_instance(paths[2], folder / "duplicate.dcm")

    vol = load_folder(folder)
    assert vol.shape == (5, 6, 6)
    np.testing.assert_array_equal(vol.array, hu(arr))
    notes = " ".join(vol.provenance.notes).lower()
    assert "duplicate" in notes, vol.provenance.notes

    out = tmp_path / "out.nii.gz"
    res = run_cli(["convert", folder, "-o", out])
    assert res.code == EXIT_OK, res.err
    assert nib.load(out).shape == (6, 6, 5)


def test_byte_identical_copy_is_counted_once(tmp_path: Path, ct_stack: MakeStack) -> None:
    folder = tmp_path / "copy"
    arr, paths = ct_stack(folder, shape=(5, 6, 6))
    (folder / "copy_of_slice.dcm").write_bytes(paths[1].read_bytes())
    vol = load_folder(folder)
    np.testing.assert_array_equal(vol.array, hu(arr))


def test_duplicate_slice_different_pixels(
    tmp_path: Path, ct_stack: MakeStack, run_cli: Any
) -> None:
    folder = tmp_path / "dup"
    _, paths = ct_stack(folder, shape=(5, 6, 6))
    copy_as_new_instance(paths[2], folder / "conflict.dcm", pixel_delta=7)

    with pytest.raises(E.DuplicatePositionError) as info:
        load_folder(folder)
    assert "conflict.dcm" in str(info.value)
    assert paths[2].name in str(info.value)

    res = run_cli(["convert", folder, "-o", tmp_path / "out.nii.gz"])
    assert_cli_error(res, EXIT_DATA, "conflict.dcm")


def test_mixed_matrix_sizes(tmp_path: Path, ct_stack: MakeStack, run_cli: Any) -> None:
    folder = tmp_path / "mixed"
    uid = "1.2.826.0.1.3680043.8.498.424242"
    same = {
        "series_instance_uid": uid,
        "study_instance_uid": "1.2.826.0.1.3680043.8.498.424241",
        "frame_of_reference_uid": "1.2.826.0.1.3680043.8.498.424240",
    }
    ct_stack(folder, shape=(4, 8, 8), seed=1, **same)
    ct_stack(folder, shape=(3, 8, 10), seed=2, origin_lps=(-100.0, -120.0, 80.0), **same)

    cat = scan(folder)
    assert sorted(s.uid for s in cat.series) == [f"{uid}#1", f"{uid}#2"]
    assert {s.series_instance_uid for s in cat.series} == {uid}
    assert sorted((s.rows, s.columns, s.num_images) for s in cat.series) == [
        (8, 8, 4),
        (8, 10, 3),
    ]
    with pytest.raises(E.MultipleSeriesError):
        load_folder(folder)
    with pytest.raises(E.InconsistentMatrixError) as info:
        load_files(sorted(folder.iterdir()))
    low = str(info.value).lower()
    assert "rows" in low or "columns" in low or "matrix" in low, str(info.value)
    second = cat.get(f"{uid}#2")
    assert load(second).shape == (second.num_images, second.rows, second.columns)

    res = run_cli(["convert", folder, "-o", tmp_path / "out.nii.gz"])
    assert_cli_error(res, EXIT_SELECTION, f"{uid}#1", f"{uid}#2")
    res = run_cli(["convert", folder, "-o", tmp_path / "out.nii.gz", "--series-uid", f"{uid}#2"])
    assert res.code == EXIT_OK, res.err


def test_single_slice(tmp_path: Path, ct_stack: MakeStack, run_cli: Any) -> None:
    folder = tmp_path / "one"
    arr, _ = ct_stack(folder, shape=(1, 6, 7), spacing_mm=(3.0, 0.5, 0.6))

    with pytest.raises(E.SingleSliceError):
        load_folder(folder)
    vol = load_folder(folder, allow_single_slice=True)
    assert vol.shape == (1, 6, 7)
    np.testing.assert_allclose(vol.spacing, (3.0, 0.5, 0.6))
    np.testing.assert_array_equal(vol.array, hu(arr))

    out = tmp_path / "out.nii.gz"
    res = run_cli(["convert", folder, "-o", out])
    assert_cli_error(res, EXIT_DATA, "single", "allow")
    assert not out.exists()
    res = run_cli(["convert", folder, "-o", out, "--allow-single-slice"])
    assert res.code == EXIT_OK, res.err
    np.testing.assert_allclose(nib.load(out).header.get_zooms(), (0.6, 0.5, 3.0))


def test_path_does_not_exist(tmp_path: Path, run_cli: Any) -> None:
    missing = tmp_path / "no_such_folder"
    with pytest.raises(E.InputPathError) as info:
        scan(missing)
    assert "no_such_folder" in str(info.value)
    with pytest.raises(E.InputPathError):
        load_folder(missing)

    res = run_cli(["scan", missing])
    assert_cli_error(res, EXIT_PATH, "no_such_folder")
    res = run_cli(["convert", missing, "-o", tmp_path / "out.nii.gz"])
    assert_cli_error(res, EXIT_PATH, "no_such_folder")


def test_unreadable_file(
    tmp_path: Path, ct_stack: MakeStack, run_cli: Any, unreadable: Callable[[Path], None]
) -> None:
    folder = tmp_path / "perm"
    arr, paths = ct_stack(folder, shape=(5, 6, 6))
    unreadable(paths[-1])

    cat = scan(folder)
    assert unused_reasons(cat) == {paths[-1].name: "permission_denied"}
    assert [s.num_images for s in cat.series] == [4]
    np.testing.assert_array_equal(load(cat.series[0]).array, hu(arr[:4]))
    with pytest.raises(E.InputPathError):
        load_files(paths)

    res = run_cli(["scan", folder])
    assert res.code == EXIT_OK, res.err
    assert "permission_denied" in res.out + res.err


def test_unreadable_directory(
    tmp_path: Path, ct_stack: MakeStack, run_cli: Any, unreadable: Callable[[Path], None]
) -> None:
    folder = tmp_path / "perm"
    ct_stack(folder / "ok", shape=(3, 6, 6))
    ct_stack(folder / "locked", shape=(3, 6, 6), seed=5, series_number=5)
    unreadable(folder / "locked")

    cat = scan(folder)
    assert [s.num_images for s in cat.series] == [3]
    denied = [u for u in cat.unused if u.reason == "permission_denied"]
    assert denied, cat.unused
    assert all(folder / "locked" in (Path(u.path), *Path(u.path).parents) for u in denied)
    res = run_cli(["scan", folder])
    assert res.code == EXIT_OK, res.err

    # the folder itself unreadable: an input path error
    unreadable(folder)
    with pytest.raises(E.InputPathError):
        scan(folder)
    res = run_cli(["convert", folder, "-o", tmp_path / "out.nii.gz"])
    assert_cli_error(res, EXIT_PATH, folder.name)


def test_symlink_loop(
    tmp_path: Path, ct_stack: MakeStack, run_cli: Any, time_limit: Callable[[int], None]
) -> None:
    folder = tmp_path / "loop"
    arr, paths = ct_stack(folder / "sub", shape=(4, 6, 6))
    (folder / "sub" / "back_to_top").symlink_to(folder, target_is_directory=True)
    (folder / "self").symlink_to(".", target_is_directory=True)
    (folder / "alias.dcm").symlink_to(paths[0])
    (folder / "dangling_a").symlink_to(folder / "dangling_b")
    (folder / "dangling_b").symlink_to(folder / "dangling_a")

    time_limit(60)
    cat = scan(folder)
    assert len(cat.series) == 1
    assert cat.series[0].num_images == 4
    real = [Path(p).resolve() for p in cat.series[0].files]
    assert len(set(real)) == 4
    np.testing.assert_array_equal(load(cat.series[0]).array, hu(arr))
    res = run_cli(["scan", folder])
    assert res.code == EXIT_OK, res.err


# --------------------------------------------------------------------------- positive


def test_sorted_by_position_not_instance_number_or_name(
    tmp_path: Path, ct_stack: MakeStack
) -> None:
    n = 8
    rng = np.random.default_rng(7)
    numbers = [int(v) for v in rng.permutation(n) + 1]
    names = [f"slice_{n - k:02d}.dcm" for k in range(n)]  # name order = reverse slice order
    arr, paths = ct_stack(
        tmp_path / "s", shape=(n, 5, 6), instance_numbers=numbers, file_names=names
    )
    vol = load_folder(tmp_path / "s")
    np.testing.assert_array_equal(vol.array, hu(arr))
    np.testing.assert_allclose(vol.affine[:3, 3], ipp(paths[0]), atol=1e-6)

    # positions decreasing along the normal: the volume comes out reversed
    spacing = 2.5
    positions = [(0.0, 0.0, -k * spacing) for k in range(n)]
    arr2, paths2 = ct_stack(tmp_path / "r", shape=(n, 5, 6), seed=3, positions=positions)
    vol2 = load_folder(tmp_path / "r")
    np.testing.assert_array_equal(vol2.array, hu(arr2[::-1]))
    np.testing.assert_allclose(vol2.affine[:3, 3], ipp(paths2[-1]), atol=1e-6)
    np.testing.assert_allclose(vol2.spacing[0], spacing, rtol=1e-6)


def test_per_slice_rescale_applied_exactly(tmp_path: Path) -> None:
    rng = np.random.default_rng(11)
    stored = rng.integers(0, 1000, size=(6, 5, 5)).astype(np.int16)
    slopes = [1.0, 0.5, 2.0, 0.25, 1.5, 4.0]
    intercepts = [-1024.0, -1000.5, -3.0, 0.0, 7.25, -2048.0]
    write_series(tmp_path, stored, rescale_slope=slopes, rescale_intercept=intercepts, seed=11)
    vol = load_folder(tmp_path)
    expected = stored * np.array(slopes)[:, None, None] + np.array(intercepts)[:, None, None]
    np.testing.assert_array_equal(np.asarray(vol.array, dtype=np.float64), expected)


@pytest.mark.parametrize(
    "orientation",
    [SAGITTAL_IOP, CORONAL_IOP, OBLIQUE_IOP],
    ids=["sagittal", "coronal", "oblique"],
)
def test_affine_of_non_axial_orientation(
    tmp_path: Path, ct_stack: MakeStack, orientation: tuple[float, ...]
) -> None:
    spacing = (3.0, 0.7, 0.9)  # slice, row (PixelSpacing[0]), column (PixelSpacing[1])
    origin = np.array([12.5, -40.0, 101.0])
    _, paths = ct_stack(
        tmp_path, shape=(5, 6, 7), spacing_mm=spacing, origin_lps=origin, orientation=orientation
    )
    vol = load_folder(tmp_path)
    row_cos = np.array(orientation[:3])
    col_cos = np.array(orientation[3:])
    normal = np.cross(row_cos, col_cos)
    np.testing.assert_allclose(vol.spacing, spacing, rtol=1e-6)
    np.testing.assert_allclose(vol.affine[:3, 2], row_cos * spacing[2], atol=1e-6)
    np.testing.assert_allclose(vol.affine[:3, 1], col_cos * spacing[1], atol=1e-6)
    np.testing.assert_allclose(vol.affine[:3, 0], normal * spacing[0], atol=1e-6)
    np.testing.assert_allclose(vol.affine[:3, 3], origin, atol=1e-6)
    np.testing.assert_allclose(vol.affine[3], [0, 0, 0, 1])
    np.testing.assert_allclose(vol.origin, origin, atol=1e-6)
    # every slice's IPP is where the affine puts voxel [k, 0, 0]
    for k, path in enumerate(paths):
        np.testing.assert_allclose(vol.affine @ [k, 0, 0, 1], [*ipp(path), 1], atol=1e-5)


def test_convert_writes_ras_nifti(tmp_path: Path, ct_stack: MakeStack, run_cli: Any) -> None:
    folder = tmp_path / "s"
    spacing = (2.0, 0.8, 0.6)
    arr, paths = ct_stack(
        folder,
        shape=(6, 9, 11),
        spacing_mm=spacing,
        origin_lps=(30.0, -15.5, 7.0),
        orientation=OBLIQUE_IOP,
    )
    out = tmp_path / "out.nii.gz"
    res = run_cli(["convert", folder, "-o", out])
    assert res.code == EXIT_OK, res.err

    img = nib.load(out)
    vol = load_folder(folder)
    reverse = [2, 1, 0, 3]  # array order (k, j, i) -> NIfTI order (i, j, k)
    np.testing.assert_allclose(img.affine, LPS_TO_RAS @ vol.affine[:, reverse], atol=1e-4)
    data = np.asarray(img.dataobj)
    np.testing.assert_array_equal(data, hu(arr).transpose(2, 1, 0))

    # a known voxel: slice k, row j, column i of the DICOM series
    k, j, i = 4, 7, 3
    row_cos, col_cos = np.array(OBLIQUE_IOP[:3]), np.array(OBLIQUE_IOP[3:])
    lps = ipp(paths[k]) + j * spacing[1] * col_cos + i * spacing[2] * row_cos
    ras = LPS_TO_RAS[:3, :3] @ lps
    np.testing.assert_allclose(img.affine @ [i, j, k, 1], [*ras, 1], atol=1e-4)
    index = np.linalg.solve(img.affine, [*ras, 1])[:3]
    np.testing.assert_allclose(index, [i, j, k], atol=1e-4)
    assert data[i, j, k] == arr[k, j, i] - 1024


def test_sphere_volume_matches_analytic(tmp_path: Path) -> None:
    """A sphere drawn in world coordinates loads with the analytic volume and centre."""
    radius = 20.0
    spacing = (1.5, 0.6, 0.7)
    orientation = OBLIQUE_IOP
    origin = np.array([-30.0, -25.0, 50.0])
    shape = (34, 80, 70)
    row_cos, col_cos = np.array(orientation[:3]), np.array(orientation[3:])
    normal = np.cross(row_cos, col_cos)
    k, j, i = np.meshgrid(*(np.arange(s) for s in shape), indexing="ij")
    world = (
        origin
        + k[..., None] * spacing[0] * normal
        + j[..., None] * spacing[1] * col_cos
        + i[..., None] * spacing[2] * row_cos
    )
    centre = origin + (
        16.3 * spacing[0] * normal + 40.2 * spacing[1] * col_cos + 34.6 * spacing[2] * row_cos
    )
    inside = np.linalg.norm(world - centre, axis=-1) <= radius
    assert not inside[[0, -1]].any() and not inside[:, [0, -1]].any()
    assert not inside[:, :, [0, -1]].any()  # the sphere lies fully inside the volume
    stored = np.where(inside, 2024, 0).astype(np.int16)  # 1000 HU in, -1024 HU out
    write_series(
        tmp_path, stored, spacing_mm=spacing, origin_lps=origin, orientation=orientation, seed=21
    )

    vol = load_folder(tmp_path)
    mask = np.asarray(vol.array) > 0
    assert mask.sum() == inside.sum()  # no voxel lost or gained
    voxel_mm3 = float(np.prod(vol.spacing))
    assert voxel_mm3 == pytest.approx(np.prod(spacing), rel=1e-6)
    analytic = 4.0 / 3.0 * np.pi * radius**3
    # Counting voxel centres: the error is bounded by the voxels cut by the surface,
    # ~ surface * voxel size; for r / h >= 13 (here) it stays well below 1 %; a spacing or
    # axis mistake is off by tens of percent.
    assert mask.sum() * voxel_mm3 == pytest.approx(analytic, rel=0.01)
    idx = np.argwhere(mask)
    centroid = (vol.affine @ np.c_[idx, np.ones(len(idx))].T)[:3].mean(axis=1)
    np.testing.assert_allclose(centroid, centre, atol=0.1)

"""Round-trip tests of :mod:`netvolume.io.dicom_write` through pydicom and SimpleITK."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pydicom
import pydicom.uid
import pytest
import SimpleITK as sitk
from _orientation import oblique_iop

from netvolume.io.dicom_write import SOP_CLASS_FOR_MODALITY, write_series

OBLIQUE_IOP = oblique_iop(20.0, 35.0)


def _random_int16(shape: tuple[int, int, int], seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.integers(-2000, 3000, size=shape).astype(np.int16)


def _read_all(paths: list[Path]) -> list[pydicom.Dataset]:
    return [pydicom.dcmread(p) for p in paths]


def test_file_meta_and_preamble(tmp_path: Path) -> None:
    paths = write_series(tmp_path, _random_int16((3, 4, 5)))
    assert len(paths) == 3
    for path in paths:
        raw = path.read_bytes()
        assert raw[:128] == b"\x00" * 128
        assert raw[128:132] == b"DICM"
        ds = pydicom.dcmread(path)
        meta = ds.file_meta
        assert meta.FileMetaInformationVersion == b"\x00\x01"
        assert meta.TransferSyntaxUID == pydicom.uid.ExplicitVRLittleEndian
        assert meta.MediaStorageSOPClassUID == pydicom.uid.CTImageStorage
        assert meta.MediaStorageSOPInstanceUID == ds.SOPInstanceUID
        assert meta.ImplementationClassUID
        assert meta.FileMetaInformationGroupLength > 0


def test_tags_of_ct_series(tmp_path: Path) -> None:
    arr = _random_int16((4, 6, 7))
    paths = write_series(
        tmp_path,
        arr,
        spacing_mm=(2.5, 0.75, 0.8),
        origin_lps=(-120.5, -99.25, 40.0),
        series_number=7,
        series_description="abdomen",
    )
    datasets = _read_all(paths)
    for k, ds in enumerate(datasets):
        assert ds.SOPClassUID == pydicom.uid.CTImageStorage
        assert ds.Modality == "CT"
        assert ds.PatientName == "NETVOLUME^PHANTOM"
        assert ds.PatientID == "NV-000"
        assert ds.SeriesNumber == 7
        assert ds.SeriesDescription == "abdomen"
        assert (ds.Rows, ds.Columns) == (6, 7)
        assert (ds.BitsAllocated, ds.BitsStored, ds.HighBit) == (16, 16, 15)
        assert ds.PixelRepresentation == 1
        assert ds.SamplesPerPixel == 1
        assert ds.PhotometricInterpretation == "MONOCHROME2"
        assert [float(v) for v in ds.PixelSpacing] == [0.75, 0.8]
        assert float(ds.SliceThickness) == 2.5
        assert [float(v) for v in ds.ImageOrientationPatient] == [1, 0, 0, 0, 1, 0]
        assert float(ds.RescaleSlope) == 1.0
        assert float(ds.RescaleIntercept) == -1024.0
        assert ds.RescaleType == "HU"
        assert ds.InstanceNumber == k + 1
        assert list(ds.ImageType) == ["ORIGINAL", "PRIMARY", "AXIAL"]
        assert ds.StudyDate and ds.SeriesDate and ds.ContentDate and ds.ContentTime
    # one study / series / frame of reference, unique instances
    assert len({ds.StudyInstanceUID for ds in datasets}) == 1
    assert len({ds.SeriesInstanceUID for ds in datasets}) == 1
    assert len({ds.FrameOfReferenceUID for ds in datasets}) == 1
    assert len({ds.SOPInstanceUID for ds in datasets}) == 4
    for ds in datasets:
        for uid in (ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.SOPInstanceUID):
            assert pydicom.uid.UID(uid).is_valid


@pytest.mark.parametrize("modality", ["CT", "PT", "MR"])
def test_sop_class_per_modality(tmp_path: Path, modality: str) -> None:
    paths = write_series(tmp_path, _random_int16((2, 3, 3)), modality=modality)
    ds = pydicom.dcmread(paths[0])
    assert ds.Modality == modality
    assert ds.SOPClassUID == SOP_CLASS_FOR_MODALITY[modality]
    assert ds.file_meta.MediaStorageSOPClassUID == SOP_CLASS_FOR_MODALITY[modality]
    assert ("RescaleType" in ds) == (modality == "CT")
    expected = {
        "CT": pydicom.uid.CTImageStorage,
        "PT": pydicom.uid.PositronEmissionTomographyImageStorage,
        "MR": pydicom.uid.MRImageStorage,
    }[modality]
    assert ds.SOPClassUID == expected


def test_pixel_values_int16_round_trip(tmp_path: Path) -> None:
    arr = _random_int16((5, 9, 11), seed=3)
    arr[0, 0, 0] = -32768
    arr[-1, -1, -1] = 32767
    paths = write_series(tmp_path, arr)
    got = np.stack([ds.pixel_array for ds in _read_all(paths)])
    assert got.dtype == np.int16
    np.testing.assert_array_equal(got, arr)


def test_pixel_values_uint16_round_trip(tmp_path: Path) -> None:
    rng = np.random.default_rng(4)
    arr = rng.integers(0, 65536, size=(3, 8, 5)).astype(np.uint16)
    arr[1, 2, 3] = 65535
    paths = write_series(tmp_path, arr, rescale_intercept=0.0)
    datasets = _read_all(paths)
    assert all(ds.PixelRepresentation == 0 for ds in datasets)
    got = np.stack([ds.pixel_array for ds in datasets])
    assert got.dtype == np.uint16
    np.testing.assert_array_equal(got, arr)


def test_non_square_pixel_data_order(tmp_path: Path) -> None:
    # rows and columns must not be swapped: value = 100*row + col
    rows, cols = 3, 5
    arr = (100 * np.arange(rows)[:, None] + np.arange(cols)[None, :]).astype(np.int16)
    arr = np.stack([arr, arr + 1000])
    paths = write_series(tmp_path, arr)
    ds = pydicom.dcmread(paths[1])
    assert ds.pixel_array.shape == (rows, cols)
    assert ds.pixel_array[2, 4] == 1204


@pytest.mark.parametrize(
    "transfer_syntax",
    [
        pydicom.uid.ImplicitVRLittleEndian,
        pydicom.uid.ExplicitVRLittleEndian,
        pydicom.uid.ExplicitVRBigEndian,
        pydicom.uid.DeflatedExplicitVRLittleEndian,
        pydicom.uid.RLELossless,
    ],
    ids=lambda uid: pydicom.uid.UID(uid).keyword,
)
def test_transfer_syntaxes_round_trip(tmp_path: Path, transfer_syntax: str) -> None:
    arr = _random_int16((3, 16, 12), seed=5)
    paths = write_series(tmp_path, arr, transfer_syntax=transfer_syntax)
    datasets = _read_all(paths)
    assert all(ds.file_meta.TransferSyntaxUID == transfer_syntax for ds in datasets)
    np.testing.assert_array_equal(np.stack([ds.pixel_array for ds in datasets]), arr)


def test_positions_follow_normal_for_oblique_orientation(tmp_path: Path) -> None:
    origin = np.array([10.5, -20.25, 30.125])
    spacing = (3.0, 0.9, 1.1)
    paths = write_series(
        tmp_path,
        _random_int16((6, 4, 4)),
        spacing_mm=spacing,
        origin_lps=origin,
        orientation=OBLIQUE_IOP,
    )
    row = np.array(OBLIQUE_IOP[:3])
    col = np.array(OBLIQUE_IOP[3:])
    normal = np.cross(row, col)
    for k, ds in enumerate(_read_all(paths)):
        ipp = np.array([float(v) for v in ds.ImagePositionPatient])
        np.testing.assert_allclose(ipp, origin + k * spacing[0] * normal, atol=1e-9)
        iop = np.array([float(v) for v in ds.ImageOrientationPatient])
        np.testing.assert_allclose(iop, OBLIQUE_IOP, atol=1e-12)
        assert float(ds.SliceLocation) == pytest.approx(float(ipp @ normal), abs=1e-9)


def test_explicit_positions_override(tmp_path: Path) -> None:
    positions = [(0.0, 0.0, 0.0), (0.0, 0.0, 2.0), (0.0, 0.0, 7.5)]
    paths = write_series(tmp_path, _random_int16((3, 2, 2)), positions=positions)
    got = [[float(v) for v in ds.ImagePositionPatient] for ds in _read_all(paths)]
    assert got == [list(p) for p in positions]


def test_decimal_strings_fit_and_round_trip(tmp_path: Path) -> None:
    origin = (-123.456789012345678, 1e-7, 98765.4321)
    paths = write_series(
        tmp_path, _random_int16((2, 2, 2)), origin_lps=origin, spacing_mm=(1 / 3, 0.1, 0.2)
    )
    ds = pydicom.dcmread(paths[0])
    for elem in ("ImagePositionPatient", "PixelSpacing", "ImageOrientationPatient"):
        for value in ds[elem].value:
            assert len(str(value)) <= 16
    ipp = [float(v) for v in ds.ImagePositionPatient]
    np.testing.assert_allclose(ipp, origin, rtol=1e-10, atol=1e-12)
    assert float(ds.SliceThickness) == pytest.approx(1 / 3, rel=1e-12)
    assert [float(v) for v in ds.PixelSpacing] == [0.1, 0.2]


def test_per_slice_rescale(tmp_path: Path) -> None:
    slopes = [1.0, 0.5, 2.0]
    intercepts = [-1024.0, -1000.0, 10.25]
    paths = write_series(
        tmp_path, _random_int16((3, 2, 2)), rescale_slope=slopes, rescale_intercept=intercepts
    )
    datasets = _read_all(paths)
    assert [float(ds.RescaleSlope) for ds in datasets] == slopes
    assert [float(ds.RescaleIntercept) for ds in datasets] == intercepts


def test_instance_numbers(tmp_path: Path) -> None:
    numbers = [5, 1, 3, 2, 4]
    paths = write_series(tmp_path, _random_int16((5, 2, 2)), instance_numbers=numbers)
    assert [ds.InstanceNumber for ds in _read_all(paths)] == numbers


def test_default_file_names_not_in_slice_order(tmp_path: Path) -> None:
    paths = write_series(tmp_path, _random_int16((10, 2, 2)))
    names = [p.name for p in paths]
    assert len(set(names)) == 10
    assert sorted(names) != names
    assert sorted(names, reverse=True) != names
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(names)  # no temp files left


def test_two_series_in_one_folder_do_not_collide(tmp_path: Path) -> None:
    a = write_series(tmp_path, _random_int16((4, 2, 2)), series_number=1)
    b = write_series(tmp_path, _random_int16((4, 2, 2)), series_number=2)
    assert len({*a, *b}) == 8
    assert len(list(tmp_path.iterdir())) == 8
    uid_a = pydicom.dcmread(a[0]).SeriesInstanceUID
    uid_b = pydicom.dcmread(b[0]).SeriesInstanceUID
    assert uid_a != uid_b
    assert pydicom.dcmread(a[0]).StudyInstanceUID == pydicom.dcmread(b[0]).StudyInstanceUID


def test_given_file_names(tmp_path: Path) -> None:
    names = ["c.dcm", "a.dcm", "b.dcm"]
    paths = write_series(tmp_path, _random_int16((3, 2, 2)), file_names=names)
    assert [p.name for p in paths] == names


def test_deterministic_from_seed(tmp_path: Path) -> None:
    arr = _random_int16((4, 3, 3))
    first = write_series(tmp_path / "a", arr, seed=11)
    again = write_series(tmp_path / "b", arr, seed=11)
    other = write_series(tmp_path / "c", arr, seed=12)
    assert [p.name for p in first] == [p.name for p in again]
    uids = [pydicom.dcmread(p).SOPInstanceUID for p in first]
    assert uids == [pydicom.dcmread(p).SOPInstanceUID for p in again]
    assert first[0].read_bytes() == again[0].read_bytes()
    other_uids = {pydicom.dcmread(p).SOPInstanceUID for p in other}
    assert not other_uids & set(uids)
    assert (
        pydicom.dcmread(other[0]).SeriesInstanceUID != pydicom.dcmread(first[0]).SeriesInstanceUID
    )


def test_explicit_uids(tmp_path: Path) -> None:
    paths = write_series(
        tmp_path,
        _random_int16((2, 2, 2)),
        series_instance_uid="1.2.3.4",
        study_instance_uid="1.2.3",
        frame_of_reference_uid="1.2.3.5",
    )
    ds = pydicom.dcmread(paths[1])
    assert (ds.SeriesInstanceUID, ds.StudyInstanceUID, ds.FrameOfReferenceUID) == (
        "1.2.3.4",
        "1.2.3",
        "1.2.3.5",
    )


def test_extra_sets_and_removes(tmp_path: Path) -> None:
    paths = write_series(
        tmp_path,
        _random_int16((2, 2, 2)),
        extra={"BodyPartExamined": "ABDOMEN", "ImagePositionPatient": None},
    )
    for ds in _read_all(paths):
        assert ds.BodyPartExamined == "ABDOMEN"
        assert "ImagePositionPatient" not in ds


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"array": np.zeros((2, 2), np.int16)}, "3D"),
        ({"array": np.zeros((2, 2, 2), np.float32)}, "dtype"),
        ({"array": np.zeros((2, 2, 2), np.int32)}, "dtype"),
        ({"modality": "US"}, "modality"),
        ({"orientation": (1, 0, 0, 1, 0, 0)}, "orthogonal"),
        ({"orientation": (2, 0, 0, 0, 1, 0)}, "unit"),
        ({"positions": [(0, 0, 0)]}, "positions"),
        ({"rescale_slope": [1.0]}, "rescale_slope"),
        ({"extra": {"NotAKeyword": 1}}, "keyword"),
        ({"spacing_mm": (0.0, 1.0, 1.0)}, "spacing"),
        ({"file_names": ["a", "a"]}, "file_names"),
    ],
)
def test_invalid_arguments(tmp_path: Path, kwargs: dict[str, object], match: str) -> None:
    args: dict[str, object] = {"array": np.zeros((2, 2, 2), np.int16)}
    args.update(kwargs)
    array = args.pop("array")
    with pytest.raises(ValueError, match=match):
        write_series(tmp_path, array, **args)  # type: ignore[arg-type]
    assert list(tmp_path.iterdir()) == []


def test_simpleitk_reads_same_geometry_and_values(tmp_path: Path) -> None:
    """An independent reader (GDCM via SimpleITK) agrees on geometry and values."""
    arr = _random_int16((5, 6, 7), seed=9)
    origin = (12.0, -7.5, 100.0)
    spacing = (2.0, 0.6, 0.7)
    write_series(
        tmp_path,
        arr,
        spacing_mm=spacing,
        origin_lps=origin,
        orientation=OBLIQUE_IOP,
        rescale_intercept=0.0,
    )
    reader = sitk.ImageSeriesReader()
    reader.SetFileNames(reader.GetGDCMSeriesFileNames(str(tmp_path)))
    img = reader.Execute()
    # SimpleITK: spacing/origin/direction in (x=column, y=row, z=slice) order
    np.testing.assert_allclose(img.GetSpacing(), spacing[::-1], rtol=1e-6)
    np.testing.assert_allclose(img.GetOrigin(), origin, atol=1e-6)
    direction = np.array(img.GetDirection()).reshape(3, 3)
    row, col = np.array(OBLIQUE_IOP[:3]), np.array(OBLIQUE_IOP[3:])
    np.testing.assert_allclose(direction[:, 0], row, atol=1e-6)
    np.testing.assert_allclose(direction[:, 1], col, atol=1e-6)
    np.testing.assert_allclose(direction[:, 2], np.cross(row, col), atol=1e-6)
    np.testing.assert_array_equal(sitk.GetArrayFromImage(img), arr)

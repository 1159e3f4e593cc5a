"""Tests of :func:`netvolume.io.masks._seg_write.write_seg` (label map -> DICOM SEG).

The SEG files are read back with highdicom and pydicom only (not with netvolume's own
mask reader), and their geometry is checked against the source images' own headers.
"""

from __future__ import annotations

import logging
import shutil
import subprocess
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import highdicom as hd
import numpy as np
import pydicom
import pydicom.config
import pytest
from _orientation import oblique_iop
from pydicom.dataelem import DataElement
from pydicom.multival import MultiValue
from pydicom.valuerep import validate_value

from netvolume.errors import (
    InputPathError,
    MaskError,
    MaskGridError,
    MultipleSeriesError,
)
from netvolume.io.dicom import Series, load, scan
from netvolume.io.dicom_write import write_series
from netvolume.io.masks._grid import label_values, nonzero_box, place_on_reference
from netvolume.io.masks._seg_write import (
    ANATOMIC_REGIONS,
    STRUCTURES,
    Segment,
    _segment_numbers,
    infer_structure,
    load_seg_reference,
    write_seg,
)
from netvolume.volume import Volume

SEG_SOP_CLASS = "1.2.840.10008.5.1.4.1.1.66.4"

# codes looked up in pydicom.sr.codedict (codes.SCT.<Name>.value)
SCT_ANATOMICAL_STRUCTURE = "91723000"
SCT_TISSUE = "85756007"
SCT_MORPH_ABNORMAL = "49755003"
SCT_LIVER = "10200004"
SCT_SPLEEN = "78961009"
SCT_KIDNEY = "64033007"
SCT_LESION = "52988006"
SCT_LYMPH_NODE = "59441001"
SCT_BONE = "272673000"
SCT_NEOPLASM = "108369006"
SCT_NEOPLASM_SECONDARY = "14799000"

PHI = ("NETVOLUME^PHANTOM", "NV-000")  # what write_series puts in the patient module


# ---------------------------------------------------------------------------- fixtures
@dataclass
class Ref:
    """A synthetic reference series: its catalogue entry, loaded Volume and folder."""

    series: Series
    volume: Volume
    folder: Path


def _make_series(folder: Path, shape: tuple[int, int, int], seed: int, **kwargs: Any) -> Ref:
    rng = np.random.default_rng(seed)
    arr = rng.integers(0, 3000, size=shape).astype(np.int16)
    write_series(folder, arr, seed=seed, **kwargs)
    series = scan(folder).select()
    return Ref(series, load(series), folder)


@pytest.fixture(scope="module")
def axial(tmp_path_factory: pytest.TempPathFactory) -> Ref:
    folder = tmp_path_factory.mktemp("axial_ct")
    return _make_series(
        folder,
        (12, 20, 24),
        seed=11,
        spacing_mm=(2.5, 0.8, 0.7),
        origin_lps=(-100.5, -80.25, 30.0),
    )


@pytest.fixture(scope="module")
def sagittal(tmp_path_factory: pytest.TempPathFactory) -> Ref:
    folder = tmp_path_factory.mktemp("sagittal_ct")
    return _make_series(
        folder,
        (10, 16, 14),
        seed=12,
        spacing_mm=(1.5, 2.0, 1.2),
        origin_lps=(40.0, -30.5, 85.0),
        orientation=(0.0, 1.0, 0.0, 0.0, 0.0, -1.0),
    )


@pytest.fixture(scope="module")
def oblique(tmp_path_factory: pytest.TempPathFactory) -> Ref:
    folder = tmp_path_factory.mktemp("oblique_ct")
    return _make_series(
        folder,
        (9, 15, 13),
        seed=13,
        spacing_mm=(2.0, 1.1, 0.9),
        origin_lps=(-12.0, 7.5, -40.0),
        orientation=oblique_iop(20.0, 35.0),
    )


def _blob(
    shape: tuple[int, int, int],
    centre: tuple[float, float, float],
    radii: tuple[float, float, float],
) -> np.ndarray:
    """Boolean ellipsoid of index-space ``radii`` around ``centre`` (index units)."""
    k, j, i = np.indices(shape, dtype=np.float64)
    d = np.zeros(shape)
    for x, c, r in zip((k, j, i), centre, radii, strict=True):
        d += ((x - c) / r) ** 2
    return np.asarray(d <= 1.0)


def _labels(ref: Ref) -> Volume:
    """Liver (1), spleen (2) and two lesions L1 (3), L2 (4); disjoint, asymmetric."""
    shape = ref.volume.spatial_shape
    n, r, c = shape
    arr = np.zeros(shape, dtype=np.uint8)
    arr[_blob(shape, (n * 0.45, r * 0.4, c * 0.3), (n * 0.3, r * 0.3, c * 0.25))] = 1
    arr[_blob(shape, (n * 0.6, r * 0.6, c * 0.78), (n * 0.2, r * 0.2, c * 0.15))] = 2
    arr[1, 1, c - 2] = 3  # a one-voxel lesion near a corner: catches flips
    arr[n - 2, r - 3 : r - 1, 1:3] = 4
    assert set(np.unique(arr).tolist()) == {0, 1, 2, 3, 4}
    return ref.volume.with_array(
        arr, label_names={1: "liver", 2: "spleen", 3: "L1", 4: "L2"}, note="test labels"
    )


# ---------------------------------------------------------------------------- helpers
def _segment_on(ref: Ref, seg_path: Path, number: int) -> np.ndarray:
    """Segment ``number`` of a SEG, read by highdicom and put on the CT grid by affine."""
    seg = hd.seg.segread(seg_path)
    vol = seg.get_volume(segment_numbers=[number])
    arr = np.asarray(vol.array)
    if arr.ndim == 4:
        assert arr.shape[3] == 1
        arr = arr[..., 0]
    m = np.linalg.inv(ref.volume.affine) @ np.asarray(vol.affine)
    idx = np.indices(arr.shape).reshape(3, -1).T.astype(np.float64)
    ct_idx = idx @ m[:3, :3].T + m[:3, 3]
    snapped = np.rint(ct_idx)
    assert np.abs(ct_idx - snapped).max() < 1e-3, "SEG voxels are not on the CT grid"
    snapped_i = snapped.astype(int)
    shape = np.asarray(ref.volume.spatial_shape)
    assert np.all(snapped_i >= 0) and np.all(snapped_i < shape), "SEG reaches outside the CT"
    out = np.zeros(ref.volume.spatial_shape, dtype=np.uint8)
    out[tuple(snapped_i.T)] = arr.ravel()
    return out


def _check_frames(ref: Ref, seg_path: Path, label_array: np.ndarray, labels: list[int]) -> None:
    """Each frame references the source image at its position and holds its mask."""
    by_sop = {}
    for p in ref.series.files:
        ds = pydicom.dcmread(p, stop_before_pixels=True)
        by_sop[str(ds.SOPInstanceUID)] = np.asarray(ds.ImagePositionPatient, dtype=float)
    inv = np.linalg.inv(ref.volume.affine)
    seg = pydicom.dcmread(seg_path)
    frames = seg.pixel_array.reshape(-1, seg.Rows, seg.Columns)
    assert len(seg.PerFrameFunctionalGroupsSequence) == len(frames) > 0
    for f, group in enumerate(seg.PerFrameFunctionalGroupsSequence):
        ipp = np.asarray(group.PlanePositionSequence[0].ImagePositionPatient, dtype=float)
        src = group.DerivationImageSequence[0].SourceImageSequence
        assert len(src) == 1
        uid = str(src[0].ReferencedSOPInstanceUID)
        assert uid in by_sop
        np.testing.assert_allclose(ipp, by_sop[uid], atol=1e-3)
        kji = inv[:3, :3] @ ipp + inv[:3, 3]
        np.testing.assert_allclose(kji, [round(kji[0]), 0, 0], atol=1e-3)
        k = round(kji[0])
        number = int(group.SegmentIdentificationSequence[0].ReferencedSegmentNumber)
        expected = label_array[k] == labels[number - 1]
        np.testing.assert_array_equal(frames[f].astype(bool), expected)


def _dciodvfy(path: Path) -> list[str]:
    exe = shutil.which("dciodvfy")
    if exe is None:
        pytest.skip("dciodvfy (dicom3tools) is not installed; CI installs it")
    res = subprocess.run([exe, str(path)], capture_output=True, text=True, check=False)
    return (res.stdout + res.stderr).splitlines()


@pytest.fixture
def strict_pydicom() -> Iterator[None]:
    old = pydicom.config.settings.reading_validation_mode
    pydicom.config.settings.reading_validation_mode = pydicom.config.RAISE
    try:
        yield
    finally:
        pydicom.config.settings.reading_validation_mode = old


_TEXT_VRS = {
    "AE",
    "AS",
    "CS",
    "DA",
    "DT",
    "LO",
    "LT",
    "PN",
    "SH",
    "ST",
    "TM",
    "UC",
    "UI",
    "UR",
    "UT",
}


def _strict_check(ds: pydicom.Dataset) -> int:
    """Convert every value (numbers are validated then, under RAISE) and validate each
    text value against its VR (which reading alone does not do); return the count."""
    n = 0
    for elem in ds.iterall():
        value = elem.value
        if elem.VR not in _TEXT_VRS or value is None:
            continue
        for v in value if isinstance(value, list | MultiValue) else [value]:
            validate_value(elem.VR, str(v), pydicom.config.RAISE)
            n += 1
    return n


def _no_leftovers(folder: Path) -> None:
    assert [p.name for p in folder.iterdir()] == []


# ---------------------------------------------------------------------------- round trips
def test_round_trip_axial_voxel_for_voxel(axial: Ref, tmp_path: Path) -> None:
    labels = _labels(axial)
    out = write_seg(labels, axial.series, path=tmp_path / "seg.dcm")
    assert out == tmp_path / "seg.dcm" and out.is_file()
    ds = pydicom.dcmread(out)
    assert ds.SOPClassUID == SEG_SOP_CLASS
    assert ds.SegmentationType == "BINARY"
    assert ds.FrameOfReferenceUID == axial.series.frame_of_reference_uid
    assert ds.StudyInstanceUID == axial.series.study_instance_uid
    assert [int(s.SegmentNumber) for s in ds.SegmentSequence] == [1, 2, 3, 4]
    assert [s.SegmentLabel for s in ds.SegmentSequence] == ["liver", "spleen", "L1", "L2"]
    assert ds.Manufacturer == "netvolume" and ds.ManufacturerModelName == "netvolume"
    assert ds.SeriesNumber == 900 and ds.SeriesDescription == "netvolume segmentation"
    assert ds.ContentLabel == "NETVOLUME"
    for n in (1, 2, 3, 4):
        got = _segment_on(axial, out, n)
        np.testing.assert_array_equal(got, (labels.array == n).astype(np.uint8), err_msg=f"{n}")
    _check_frames(axial, out, labels.array, [1, 2, 3, 4])
    # referenced series: every source image of the CT
    refs = ds.ReferencedSeriesSequence[0]
    assert refs.SeriesInstanceUID == axial.series.series_instance_uid


@pytest.mark.parametrize("code", ["IAR", "PLI", "RSA"])
def test_reoriented_labels_give_the_same_seg(code: str, axial: Ref, tmp_path: Path) -> None:
    labels = _labels(axial)
    a = write_seg(labels, axial.series, path=tmp_path / "a.dcm")
    turned = labels.reorient(code)
    assert turned.orientation_code() == code
    assert turned.spatial_shape != labels.spatial_shape or not np.array_equal(
        turned.array, labels.array
    )
    b = write_seg(turned, axial.series, path=tmp_path / "b.dcm")
    da, db = pydicom.dcmread(a), pydicom.dcmread(b)
    assert da.PixelData == db.PixelData
    assert da.SOPInstanceUID == db.SOPInstanceUID
    assert da.NumberOfFrames == db.NumberOfFrames
    for fa, fb in zip(
        da.PerFrameFunctionalGroupsSequence, db.PerFrameFunctionalGroupsSequence, strict=True
    ):
        assert fa == fb
    _check_frames(axial, b, labels.array, [1, 2, 3, 4])


def test_cropped_labels_on_the_same_grid(axial: Ref, tmp_path: Path) -> None:
    labels = _labels(axial)
    full = write_seg(labels, axial.series, path=tmp_path / "full.dcm")
    # a crop holding every labelled voxel lies on the same lattice: accepted, identical
    nz = np.argwhere(labels.array)
    lo, hi = nz.min(axis=0), nz.max(axis=0) + 1
    crop = labels.crop([(int(a), int(b)) for a, b in zip(lo, hi, strict=True)])
    assert crop.spatial_shape != labels.spatial_shape
    part = write_seg(crop, axial.series, path=tmp_path / "crop.dcm")
    assert pydicom.dcmread(full).PixelData == pydicom.dcmread(part).PixelData
    assert pydicom.dcmread(full).SOPInstanceUID == pydicom.dcmread(part).SOPInstanceUID


@pytest.mark.parametrize("which", ["sagittal", "oblique"])
def test_permuted_and_oblique_series(
    which: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    ref: Ref = request.getfixturevalue(which)
    labels = _labels(ref)
    out = write_seg(labels, ref.series, path=tmp_path / "seg.dcm")
    for n in (1, 2, 3, 4):
        got = _segment_on(ref, out, n)
        np.testing.assert_array_equal(got, (labels.array == n).astype(np.uint8), err_msg=f"{n}")
    _check_frames(ref, out, labels.array, [1, 2, 3, 4])
    # the same labels in another axis order write the same frames
    turned = labels.reorient("SPL" if which == "sagittal" else "LPS")
    again = write_seg(turned, ref.series, path=tmp_path / "turned.dcm")
    assert pydicom.dcmread(again).PixelData == pydicom.dcmread(out).PixelData
    _check_frames(ref, again, labels.array, [1, 2, 3, 4])
    assert not any(line.startswith("Error") for line in _dciodvfy(out))


def test_reference_given_as_folder(axial: Ref, tmp_path: Path) -> None:
    labels = _labels(axial)
    a = write_seg(labels, axial.series, path=tmp_path / "a.dcm")
    b = write_seg(labels, axial.folder, path=tmp_path / "b.dcm")
    assert pydicom.dcmread(a).SOPInstanceUID == pydicom.dcmread(b).SOPInstanceUID


def test_multiframe_source(axial: Ref, tmp_path: Path) -> None:
    legacy = [pydicom.dcmread(p) for p in sorted(axial.series.files)]
    enhanced = hd.legacy.LegacyConvertedEnhancedCTImage(legacy, hd.UID(), 5, hd.UID(), 1)
    folder = tmp_path / "enhanced"
    folder.mkdir()
    enhanced.save_as(folder / "enhanced.dcm", enforce_file_format=True)
    series = scan(folder).select()
    assert series.is_multiframe
    ref = Ref(series, load(series), folder)
    labels = ref.volume.with_array(_labels(axial).array, label_names=_labels(axial).label_names)
    out = write_seg(labels, series, path=tmp_path / "seg.dcm")
    for n in (1, 2, 3, 4):
        got = _segment_on(ref, out, n)
        np.testing.assert_array_equal(got, (labels.array == n).astype(np.uint8))
    # each frame references the enhanced image and the frame at the same position
    ds = pydicom.dcmread(out)
    positions = [
        np.asarray(g.PlanePositionSequence[0].ImagePositionPatient, dtype=float)
        for g in enhanced.PerFrameFunctionalGroupsSequence
    ]
    for group in ds.PerFrameFunctionalGroupsSequence:
        src = group.DerivationImageSequence[0].SourceImageSequence[0]
        assert src.ReferencedSOPInstanceUID == enhanced.SOPInstanceUID
        frame = int(src.ReferencedFrameNumber)
        ipp = np.asarray(group.PlanePositionSequence[0].ImagePositionPatient, dtype=float)
        np.testing.assert_allclose(ipp, positions[frame - 1], atol=1e-3)
    assert not any(line.startswith("Error") for line in _dciodvfy(out))


# ---------------------------------------------------------------------------- conformance
def test_dciodvfy_and_strict_pydicom(axial: Ref, tmp_path: Path, strict_pydicom: None) -> None:
    labels = _labels(axial)
    segments = [
        Segment(1, "liver", "liver", description="whole liver"),
        Segment(2, "spleen", "spleen"),
        Segment(3, "L1", "liver_lesion"),
        Segment(4, "N1", "lymph_node"),
    ]
    out = write_seg(labels, axial.series, segments, path=tmp_path / "seg.dcm")
    lines = _dciodvfy(out)
    errors = [line for line in lines if line.startswith("Error")]
    assert errors == [], "\n".join(lines)
    ds = pydicom.dcmread(out)
    assert _strict_check(ds) > 100
    assert ds.SegmentSequence[0].SegmentDescription == "whole liver"


def test_dciodvfy_sees_errors_in_a_broken_seg(axial: Ref, tmp_path: Path) -> None:
    """The oracle is live: a SEG without SegmentLabel / ContentLabel gives Error lines."""
    out = write_seg(_labels(axial), axial.series, path=tmp_path / "seg.dcm")
    ds = pydicom.dcmread(out)
    del ds.SegmentSequence[0].SegmentLabel
    del ds.ContentLabel
    ds.save_as(tmp_path / "broken.dcm")
    errors = [line for line in _dciodvfy(tmp_path / "broken.dcm") if line.startswith("Error")]
    assert any("SegmentLabel" in line for line in errors), errors
    assert any("ContentLabel" in line for line in errors), errors


def test_strict_check_sees_bad_values(axial: Ref, tmp_path: Path, strict_pydicom: None) -> None:
    """The strict read-back is live: a bad CS and a bad IS in a copy are caught."""
    out = write_seg(_labels(axial), axial.series, path=tmp_path / "seg.dcm")
    for tag, vr, value in ((0x00700080, "CS", "bad label"), (0x00200013, "IS", "1.5")):
        ds = pydicom.dcmread(out)
        ds[tag] = DataElement(tag, vr, value, validation_mode=pydicom.config.IGNORE)
        ds.save_as(tmp_path / "bad.dcm")
        with pytest.raises(ValueError):
            _strict_check(pydicom.dcmread(tmp_path / "bad.dcm"))


def test_source_without_optional_type2_attributes(tmp_path: Path) -> None:
    """Reference images lacking Type 2 patient/study attributes still give a valid SEG."""
    missing = ("AccessionNumber", "StudyID", "PatientBirthDate", "ReferringPhysicianName")
    ref = _make_series(
        tmp_path / "ct",
        (5, 8, 9),
        seed=21,
        spacing_mm=(3.0, 1.0, 1.0),
        extra=dict.fromkeys(missing),
    )
    assert all(k not in pydicom.dcmread(ref.series.files[0]) for k in missing)
    labels = ref.volume.with_array(
        (np.indices(ref.volume.spatial_shape)[0] == 2).astype(np.uint8), label_names={1: "L1"}
    )
    out = write_seg(labels, ref.series, path=tmp_path / "seg.dcm")
    np.testing.assert_array_equal(_segment_on(ref, out, 1), labels.array)
    assert not any(line.startswith("Error") for line in _dciodvfy(out))


def test_empty_segment_and_empty_label_map(
    axial: Ref, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    labels = _labels(axial)
    # label 5 is named but absent: written as a segment without frames
    named = labels.with_array(labels.array, label_names={**labels.label_names, 5: "L3"})
    out = write_seg(named, axial.series, path=tmp_path / "seg.dcm")
    ds = pydicom.dcmread(out)
    assert [s.SegmentLabel for s in ds.SegmentSequence][-1] == "L3"
    used = {
        int(g.SegmentIdentificationSequence[0].ReferencedSegmentNumber)
        for g in ds.PerFrameFunctionalGroupsSequence
    }
    assert used == {1, 2, 3, 4}
    assert not _segment_on(axial, out, 5).any()
    np.testing.assert_array_equal(_segment_on(axial, out, 3), labels.array == 3)
    assert not any(line.startswith("Error") for line in _dciodvfy(out))
    # nothing labelled at all: every (empty) frame is written
    blank = labels.with_array(np.zeros_like(labels.array), label_names={1: "liver"})
    out2 = write_seg(blank, axial.series, path=tmp_path / "blank.dcm")
    ds2 = pydicom.dcmread(out2)
    assert ds2.NumberOfFrames == axial.volume.spatial_shape[0]
    assert not _segment_on(axial, out2, 1).any()
    assert not any(line.startswith("Error") for line in _dciodvfy(out2))
    # highdicom is not left to fall back on its own (it logs a warning when it does)
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


# ---------------------------------------------------------------------------- coded concepts
def _code(item: pydicom.Dataset, keyword: str) -> tuple[str, str]:
    c = getattr(item, keyword)[0]
    return str(c.CodeValue), str(c.CodingSchemeDesignator)


def test_coded_concepts_and_tracking(axial: Ref, tmp_path: Path) -> None:
    labels = _labels(axial)
    arr = labels.array.copy()
    arr[0, 0, 0] = 5
    arr[0, 0, 2] = 6
    arr[0, 2, 0] = 7
    vol = labels.with_array(arr)
    segments = [
        Segment(1, "liver", "liver"),
        Segment(2, "spleen", "spleen"),
        Segment(3, "L1", "liver_lesion", tracking_id="T-1"),
        Segment(4, "L2", "bone_lesion", tracking_uid="1.2.3.4.5"),
        Segment(5, "N1", "lymph_node"),
        Segment(6, "K", "kidney"),
        Segment(7, "M1", "metastasis"),
    ]
    out = write_seg(vol, axial.series, segments, path=tmp_path / "seg.dcm")
    items = pydicom.dcmread(out).SegmentSequence
    cat, typ = "SegmentedPropertyCategoryCodeSequence", "SegmentedPropertyTypeCodeSequence"
    assert _code(items[0], cat) == (SCT_ANATOMICAL_STRUCTURE, "SCT")
    assert _code(items[0], typ) == (SCT_LIVER, "SCT")
    assert _code(items[1], cat) == (SCT_ANATOMICAL_STRUCTURE, "SCT")
    assert _code(items[1], typ) == (SCT_SPLEEN, "SCT")
    assert _code(items[2], cat) == (SCT_MORPH_ABNORMAL, "SCT")
    assert _code(items[2], typ) == (SCT_LESION, "SCT")
    assert _code(items[2], "AnatomicRegionSequence") == (SCT_LIVER, "SCT")
    assert _code(items[3], "AnatomicRegionSequence") == (SCT_BONE, "SCT")
    assert _code(items[4], cat) == (SCT_TISSUE, "SCT")
    assert _code(items[4], typ) == (SCT_LYMPH_NODE, "SCT")
    assert _code(items[5], typ) == (SCT_KIDNEY, "SCT")
    assert _code(items[6], typ) == (SCT_NEOPLASM_SECONDARY, "SCT")
    # organs are not tracked; lesions and nodes are, with the name as default ID
    for organ in (items[0], items[1], items[5]):
        assert "TrackingID" not in organ and "TrackingUID" not in organ
    assert items[2].TrackingID == "T-1"
    assert items[3].TrackingID == "L2" and items[3].TrackingUID == "1.2.3.4.5"
    assert items[4].TrackingID == "N1" and items[6].TrackingID == "M1"
    uids = [str(items[n].TrackingUID) for n in (2, 4, 6)]
    assert len(set(uids)) == 3
    assert all(pydicom.uid.UID(u).is_valid for u in uids)
    # the structure table holds the pydicom codedict values
    assert STRUCTURES["liver"][1].value == SCT_LIVER
    assert STRUCTURES["tumor"][1].value == SCT_NEOPLASM
    assert STRUCTURES["lesion"][0].value == SCT_MORPH_ABNORMAL
    assert ANATOMIC_REGIONS["lymph_node_lesion"].value == SCT_LYMPH_NODE


def test_structure_inferred_from_label_names() -> None:
    assert infer_structure("liver") == "liver"
    assert infer_structure("Spleen") == "spleen"
    assert infer_structure("kidney_left") == "kidney"
    assert infer_structure("liver lesion 2") == "liver_lesion"
    assert infer_structure("liver-met") == "liver_lesion"
    assert infer_structure("bone met 1") == "bone_lesion"
    assert infer_structure("LN 3") == "lymph_node"
    assert infer_structure("tumour") == "tumor"
    assert infer_structure("L3") == "lesion"
    assert infer_structure("liver_and_spleen") == "lesion"


def test_uids_are_deterministic(axial: Ref, tmp_path: Path) -> None:
    labels = _labels(axial)
    a = pydicom.dcmread(write_seg(labels, axial.series, path=tmp_path / "a.dcm"))
    time.sleep(0.01)  # a clock stamp would now differ
    b = pydicom.dcmread(write_seg(labels, axial.series, path=tmp_path / "b.dcm"))
    # the same inputs give the same bytes (no clock in ContentDate / InstanceCreationTime)
    assert (tmp_path / "a.dcm").read_bytes() == (tmp_path / "b.dcm").read_bytes()
    assert a.ContentDate == a.StudyDate and a.InstanceCreationTime == a.StudyTime
    assert a.SOPInstanceUID == b.SOPInstanceUID
    assert a.SeriesInstanceUID == b.SeriesInstanceUID
    assert a.SOPInstanceUID != a.SeriesInstanceUID
    assert a.SeriesInstanceUID != axial.series.series_instance_uid
    assert [s.TrackingUID for s in a.SegmentSequence[2:]] == [
        s.TrackingUID for s in b.SegmentSequence[2:]
    ]
    arr = labels.array.copy()
    arr[6, 10, 12] = 0 if arr[6, 10, 12] else 1
    changed = labels.with_array(arr, label_names=labels.label_names)
    c = pydicom.dcmread(write_seg(changed, axial.series, path=tmp_path / "c.dcm"))
    assert c.SOPInstanceUID != a.SOPInstanceUID
    assert c.SeriesInstanceUID != a.SeriesInstanceUID
    # the lesion keeps its TrackingUID when its voxels change
    assert [s.TrackingUID for s in c.SegmentSequence[2:]] == [
        s.TrackingUID for s in a.SegmentSequence[2:]
    ]
    renamed = labels.with_array(labels.array, label_names={**labels.label_names, 4: "L9"})
    d = pydicom.dcmread(write_seg(renamed, axial.series, path=tmp_path / "d.dcm"))
    assert d.SOPInstanceUID != a.SOPInstanceUID


def test_one_reference_for_several_segs(axial: Ref, tmp_path: Path) -> None:
    """A SegReference read once gives the bytes of a SEG written from the Series."""
    labels = _labels(axial)
    organs = labels.with_array(np.where(labels.array <= 2, labels.array, 0))
    segs = [Segment(1, "liver", "liver"), Segment(2, "spleen", "spleen")]
    reference = load_seg_reference(axial.folder)
    assert reference.series.uid == axial.series.uid
    for name, vol, segments in (("labels", labels, None), ("organs", organs, segs)):
        shared = write_seg(vol, reference, segments, path=tmp_path / f"{name}_shared.dcm")
        alone = write_seg(vol, axial.series, segments, path=tmp_path / f"{name}_alone.dcm")
        assert shared.read_bytes() == alone.read_bytes()


def _segment_numbers_slice_by_slice(array: np.ndarray, segs: list[Segment]) -> np.ndarray:
    """The mapping as first written: np.unique and searchsorted on every slice."""
    values = sorted({int(v) for k in range(len(array)) for v in np.unique(array[k])})
    known = {s.label: n for n, s in enumerate(segs, start=1)}
    numbers = np.array([known.get(v, 0) for v in values], dtype=np.uint8)
    return numbers[np.searchsorted(np.array(values, dtype=array.dtype), array)]


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.int64])
@pytest.mark.parametrize("order", ["identity", "permuted"])
def test_segment_numbers_match_the_slice_by_slice_mapping(
    axial: Ref, dtype: type, order: str
) -> None:
    rng = np.random.default_rng(3)
    labels = [1, 2, 3, 4] if order == "identity" else [7, 300, 5, 2]
    labels = [v for v in labels if v <= np.iinfo(dtype).max]
    array = np.zeros((40, 9, 11), dtype=dtype)
    array[5:33] = rng.choice([0, 0, 0, *labels[:-1]], size=(28, 9, 11))  # last one absent
    array[20] = labels[0]  # a slice without background
    segs = [Segment(v, f"s{v}") for v in labels]
    out, present = _segment_numbers(array, segs, axial.series)
    expected = _segment_numbers_slice_by_slice(array, segs)
    assert out.dtype == np.uint8
    np.testing.assert_array_equal(out, expected)
    assert present == set(range(1, len(labels)))
    assert (out is array) == (order == "identity" and dtype == np.uint8)
    array[7, 3, 4] = 6
    with pytest.raises(MaskError, match=r"label value\(s\) 6 occur"):
        _segment_numbers(array, segs, axial.series)


@pytest.mark.parametrize("slab", [1, 4, 32])
def test_label_values(slab: int) -> None:
    rng = np.random.default_rng(4)
    for dtype in (np.bool_, np.uint8, np.uint16, np.int32):
        array = (rng.random((13, 6, 5)) * 9).astype(dtype) * (rng.random((13, 6, 5)) < 0.2)
        expected = sorted(int(v) for v in np.unique(array) if v != 0)
        assert label_values(array, slab=slab) == expected
    assert label_values(np.zeros((3, 2, 2), np.uint8), slab=slab) == []


@pytest.mark.parametrize("width", [5, 8, 16])
def test_nonzero_box_equals_nonzero(width: int) -> None:
    """The box that the SEG's content hash and label_values look into: sparse arrays (one
    voxel at a time), words of 8 one-byte voxels and wider dtypes."""
    rng = np.random.default_rng(width)
    for dtype in (np.bool_, np.uint8, np.uint16, np.int64):
        for density in (0.0, 0.002, 0.05):
            array = ((rng.random((9, 7, width)) < density) * rng.integers(1, 5)).astype(dtype)
            nz = np.nonzero(array)
            expected = (
                tuple(slice(int(v.min()), int(v.max()) + 1) for v in nz) if array.any() else None
            )
            assert nonzero_box(array) == expected


def test_placement_on_the_reference_grid_is_the_array_itself() -> None:
    reference = Volume(np.zeros((4, 5, 6), np.int16), np.diag([2.0, 0.8, 0.8, 1.0]))
    labels = np.zeros((4, 5, 6), np.uint8)
    labels[1, 2, 3] = 7
    placed = place_on_reference(labels, reference.affine, reference, what="test")
    assert placed.array is labels and placed.method == "exact"
    flipped = reference.affine @ np.diag([1.0, 1.0, -1.0, 1.0])
    flipped[:3, 3] = reference.affine[:3, :3] @ np.array([0.0, 0.0, 5.0])
    moved = place_on_reference(labels[:, :, ::-1].copy(), flipped, reference, what="test")
    assert moved.array is not labels and np.array_equal(moved.array, labels)


# ---------------------------------------------------------------------------- bad input
def _assert_no_phi(exc: BaseException) -> None:
    for value in PHI:
        assert value not in str(exc)


def test_labels_on_another_grid(axial: Ref, tmp_path: Path) -> None:
    labels = _labels(axial)
    target = tmp_path / "seg.dcm"
    # larger array whose extra slice holds labels outside the image
    bigger = np.zeros((labels.spatial_shape[0] + 1, *labels.spatial_shape[1:]), np.uint8)
    bigger[:-1] = labels.array
    bigger[-1, 5, 5] = 1
    cases = {
        "larger": Volume(bigger, labels.affine, label_names=labels.label_names),
        "half voxel": Volume(
            labels.array,
            labels.affine @ np.array([[1, 0, 0, 0], [0, 1, 0, 0.5], [0, 0, 1, 0], [0, 0, 0, 1.0]]),
            label_names=labels.label_names,
        ),
        "spacing": Volume(
            labels.array,
            labels.affine @ np.diag([1.0, 1.0, 1.2, 1.0]),
            label_names=labels.label_names,
        ),
    }
    for name, vol in cases.items():
        with pytest.raises(MaskGridError, match="resample the labels onto the image first") as ei:
            write_seg(vol, axial.series, path=target)
        assert "shape" in str(ei.value) and "origin" in str(ei.value), name
        _assert_no_phi(ei.value)
    _no_leftovers(tmp_path)


def test_other_frame_of_reference(axial: Ref, tmp_path: Path) -> None:
    labels = _labels(axial)
    other = Volume(
        labels.array,
        labels.affine,
        frame_of_reference_uid="1.2.3.999",
        label_names=labels.label_names,
    )
    with pytest.raises(MaskGridError, match=r"1\.2\.3\.999") as ei:
        write_seg(other, axial.series, path=tmp_path / "seg.dcm")
    _assert_no_phi(ei.value)
    # no frame of reference on the labels: accepted (the grid decides)
    bare = Volume(labels.array, labels.affine, label_names=labels.label_names)
    assert write_seg(bare, axial.series, path=tmp_path / "ok.dcm").is_file()


def test_label_without_segment(axial: Ref, tmp_path: Path) -> None:
    labels = _labels(axial)
    segments = [Segment(1, "liver", "liver"), Segment(2, "spleen", "spleen"), Segment(3, "L1")]
    with pytest.raises(MaskError, match=r"label value\(s\) 4 ") as ei:
        write_seg(labels, axial.series, segments, path=tmp_path / "seg.dcm")
    _assert_no_phi(ei.value)
    unnamed = labels.with_array(labels.array, label_names={1: "liver", 2: "spleen"})
    with pytest.raises(MaskError, match=r"3, 4"):
        write_seg(unnamed, axial.series, path=tmp_path / "seg.dcm")
    nameless = labels.with_array(labels.array)
    with pytest.raises(MaskError, match="label_names"):
        write_seg(nameless, axial.series, path=tmp_path / "seg.dcm")
    _no_leftovers(tmp_path)


def test_bad_segments(axial: Ref, tmp_path: Path) -> None:
    with pytest.raises(MaskError, match=r"known structures: .*liver.*spleen"):
        Segment(1, "brain", "brain")
    with pytest.raises(MaskError, match="positive integer"):
        Segment(0, "liver", "liver")
    with pytest.raises(MaskError, match="SegmentLabel"):
        Segment(1, "x" * 65, "liver")
    with pytest.raises(MaskError, match="valid DICOM UID"):
        Segment(1, "L1", tracking_uid="not a uid")
    labels = _labels(axial)
    dup_label = [Segment(n, f"s{n}") for n in (1, 2, 3, 4)] + [Segment(4, "again")]
    with pytest.raises(MaskError, match="same label value 4"):
        write_seg(labels, axial.series, dup_label, path=tmp_path / "seg.dcm")
    dup_name = [Segment(n, "same" if n > 2 else f"s{n}") for n in (1, 2, 3, 4)]
    with pytest.raises(MaskError, match="same name 'same'"):
        write_seg(labels, axial.series, dup_name, path=tmp_path / "seg.dcm")
    dup_id = [Segment(n, f"s{n}", tracking_id="T1" if n > 2 else None) for n in (1, 2, 3, 4)]
    with pytest.raises(MaskError, match=r"tracking ID.*T1"):
        write_seg(labels, axial.series, dup_id, path=tmp_path / "seg.dcm")
    with pytest.raises(MaskError, match="ContentLabel"):
        write_seg(labels, axial.series, path=tmp_path / "seg.dcm", content_label="bad label")
    _no_leftovers(tmp_path)


def test_bad_label_arrays(axial: Ref, tmp_path: Path) -> None:
    labels = _labels(axial)
    frac = labels.with_array(labels.array * 0.5, label_names=labels.label_names)
    with pytest.raises(MaskError, match="non-integer"):
        write_seg(frac, axial.series, path=tmp_path / "seg.dcm")
    neg = labels.with_array(labels.array.astype(np.int16) - 1, label_names=labels.label_names)
    with pytest.raises(MaskError, match="negative"):
        write_seg(neg, axial.series, path=tmp_path / "seg.dcm")
    _no_leftovers(tmp_path)
    # boolean and integral float label maps are accepted
    as_bool = labels.with_array(labels.array == 1, label_names={1: "liver"})
    out = write_seg(as_bool, axial.series, path=tmp_path / "bool.dcm")
    np.testing.assert_array_equal(_segment_on(axial, out, 1), labels.array == 1)
    as_float = labels.with_array(labels.array.astype(np.float32), label_names=labels.label_names)
    out = write_seg(as_float, axial.series, path=tmp_path / "float.dcm")
    np.testing.assert_array_equal(_segment_on(axial, out, 4), labels.array == 4)


def test_output_path_errors(axial: Ref, tmp_path: Path) -> None:
    labels = _labels(axial)
    missing = tmp_path / "no" / "such" / "folder" / "seg.dcm"
    with pytest.raises(InputPathError, match="does not exist"):
        write_seg(labels, axial.series, path=missing)
    assert not (tmp_path / "no").exists()
    with pytest.raises(InputPathError, match="is a folder"):
        write_seg(labels, axial.series, path=tmp_path)


def test_failed_write_leaves_previous_file(axial: Ref, tmp_path: Path) -> None:
    labels = _labels(axial)
    target = tmp_path / "seg.dcm"
    write_seg(labels, axial.series, path=target)
    before = target.read_bytes()
    bad = Volume(labels.array, labels.affine @ np.diag([1.0, 1.0, 1.2, 1.0]), label_names={1: "x"})
    with pytest.raises(MaskGridError):
        write_seg(bad, axial.series, path=target)
    assert target.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["seg.dcm"]


def test_gantry_tilted_reference(tmp_path: Path) -> None:
    n = 6
    positions = [(-50.0, -40.0 + 0.6 * k, 10.0 + 2.5 * k) for k in range(n)]
    ref = tmp_path / "tilted"
    write_series(
        ref,
        np.zeros((n, 8, 9), np.int16),
        spacing_mm=(2.5, 1.0, 1.0),
        positions=positions,
        seed=3,
    )
    series = scan(ref).select()
    vol = load(series)  # tilt-corrected grid
    labels = vol.with_array(np.ones(vol.spatial_shape, np.uint8), label_names={1: "liver"})
    with pytest.raises(MaskGridError, match="gantry-tilted"):
        write_seg(labels, series, path=tmp_path / "seg.dcm")
    assert not (tmp_path / "seg.dcm").exists()


def test_folder_with_two_series(axial: Ref, tmp_path: Path) -> None:
    for seed in (1, 2):
        write_series(
            tmp_path / "two",
            np.zeros((3, 4, 5), np.int16),
            seed=seed,
            frame_of_reference_uid=axial.series.frame_of_reference_uid,
        )
    labels = _labels(axial)
    with pytest.raises(MultipleSeriesError):
        write_seg(labels, tmp_path / "two", path=tmp_path / "seg.dcm")
    assert not (tmp_path / "seg.dcm").exists()


def test_no_warnings_when_writing(axial: Ref, tmp_path: Path) -> None:
    labels = _labels(axial)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out = write_seg(labels, axial.series, path=tmp_path / "seg.dcm")
        hd.seg.segread(out).get_volume(segment_numbers=[1])

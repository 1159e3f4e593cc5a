"""The ``netvolume measure`` output folder: lesions.csv, study.json, NIfTI and DICOM SEG masks.

The measurement is built by hand on the real CT grid of the bundled sample study
(``data/sample_dicom/P001/T0/CT``, read only): the liver and spleen masks are the truth
label maps, and two cubic lesions are drawn in. The command line is tested with
``measure_study`` monkeypatched to return such a measurement.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from netvolume.errors import MaskError
from netvolume.io import masks
from netvolume.io.dicom import Series, load, scan
from netvolume.io.nifti import read_nifti
from netvolume.measure import _write
from netvolume.measure._records import (
    LESION_COLUMNS,
    LesionRecord,
    ReferenceVOI,
    StudyMeasurement,
)
from netvolume.measure._settings import MeasureSettings
from netvolume.measure._write import (
    OutputExistsError,
    format_cell,
    lesions_csv,
    write_measurement,
)
from netvolume.volume import Volume

STUDY = Path(__file__).resolve().parents[1] / "data" / "sample_dicom" / "P001" / "T0"
# two cubes: one inside the truth liver, one in the pelvis (a "node")
CUBE_LIVER = (slice(30, 33), slice(50, 54), slice(40, 44))
CUBE_NODE = (slice(8, 10), slice(60, 63), slice(90, 93))


@dataclasses.dataclass(frozen=True)
class Ref:
    series: Series
    ct: Volume
    liver: Volume
    spleen: Volume
    lesions: Volume


@pytest.fixture(scope="module")
def ref() -> Ref:
    if not (STUDY / "CT").is_dir():
        pytest.skip(f"sample study not found: {STUDY}")
    series = scan(STUDY / "CT").select()
    ct = load(series)
    liver = masks.read(STUDY / "truth" / "liver.nii.gz", ct)
    spleen = masks.read(STUDY / "truth" / "spleen.nii.gz", ct)
    arr = np.zeros(ct.spatial_shape, np.uint16)
    assert np.all(liver.array[CUBE_LIVER] == 1), "the liver cube must lie inside the liver"
    arr[CUBE_LIVER] = 1
    arr[CUBE_NODE] = 2
    lesions = ct.with_array(arr, units="label")
    return Ref(series, ct, liver, spleen, lesions)


def _lesion(lesion_id: int, **kw: Any) -> LesionRecord:
    base: dict[str, Any] = {
        "lesion_id": lesion_id,
        "name": f"L{lesion_id}",
        "organ": "liver",
        "nodal": False,
        "detected_by": "ct+pet",
        "volume_ml": 1.0 / 3.0,
        "voxels": 48,
        "ld_mm": 12.8 + 1e-12,
        "sa_mm": 9.05096679918781,
        "slice_index": 31,
        "ld_endpoints_mm": ((-10.5, 20.25, 100.0), (2.3, 20.25, 100.0)),
        "sa_endpoints_mm": ((-4.0, 15.0, 100.0), (-4.0, 24.1, 100.0)),
        "centroid_mm": (-4.1, 19.9, 100.000000001),
        "measurable": True,
        "recist_category": "measurable",
        "ct_mean_hu": 55.123456789,
        "ct_sd_hu": 11.0,
        "suv_max": 23.456789012345678,
        "suv_mean": 15.2,
        "suv_peak": 19.87654321,
        "activity_max_bqml": 123456.789,
        "activity_mean_bqml": 80000.0,
        "background_suv": 7.1,
        "tumour_to_liver": 3.3,
        "tumour_to_spleen": 0.9,
        "krenning_grade": 3,
        "sstr_positive": True,
        "qc_flags": (),
    }
    base.update(kw)
    return LesionRecord(**base)


def _measurement(ref: Ref, **kw: Any) -> StudyMeasurement:
    lesions = (
        _lesion(1),
        _lesion(
            2,
            name="N1",
            organ="lymph_node",
            nodal=True,
            detected_by="ct",
            volume_ml=np.float64(0.5),
            voxels=np.int64(18),
            measurable=False,
            recist_category="non_measurable",
            suv_max=None,
            suv_mean=None,
            suv_peak=None,
            activity_max_bqml=None,
            activity_mean_bqml=None,
            background_suv=None,
            tumour_to_liver=None,
            tumour_to_spleen=None,
            krenning_grade=None,
            sstr_positive=None,
            qc_flags=("touches_border", "outside_pet_fov"),
        ),
    )
    ct = ref.ct
    base: dict[str, Any] = {
        "study_dir": str(STUDY),
        "study_instance_uid": ref.series.study_instance_uid,
        "frame_of_reference_uid": ref.series.frame_of_reference_uid,
        "ct_series_uid": ref.series.uid,
        "pet_series_uid": "1.2.3.4",
        "grid": {
            "shape": list(ct.spatial_shape),
            "spacing_mm": list(ct.spacing),
            "affine": ct.affine.tolist(),
            "slice_thickness_mm": 5.0,
        },
        "lesions": lesions,
        "liver_volume_ml": 1500.25,
        "spleen_volume_ml": 210.5,
        "liver_tumour_volume_ml": 1.0 / 3.0,
        "liver_tumour_burden_pct": 100.0 / 3.0 / 1500.25,
        "n_liver_lesions": 1,
        "references": {
            "liver": ReferenceVOI(
                "liver", "sphere", (1.0, 2.0, 3.0), 15.0, 400, 14.1, 6.5, 1.1, 9.0, 25000.0
            )
        },
        "extrahepatic_disease": True,
        "sstr_positive_fraction": 1.0,
        "sstr_positive_volume_ml": 1.0 / 3.0,
        "sources": {"liver": "automatic", "lesions": "automatic"},
        "settings": MeasureSettings().to_dict(),
        "provenance": {"netvolume_version": "test", "ct_file_list_sha256": "ab" * 32},
        "notes": ("a note",),
        "qc_flags": (),
        "liver_mask": ref.liver.with_array(ref.liver.array != 0),
        "spleen_mask": ref.spleen,
        "lesion_labels": ref.lesions,
        "reference_series": ref.series,
    }
    base.update(kw)
    return StudyMeasurement(**base)


def _no_nan(text: str) -> Any:
    def refuse(name: str) -> Any:
        raise AssertionError(f"non-standard JSON constant {name}")

    return json.loads(text, parse_constant=refuse)


def _read_csv(path: Path) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        assert tuple(reader.fieldnames or ()) == LESION_COLUMNS
        return list(reader)


def _files(root: Path) -> list[str]:
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())


@pytest.fixture(scope="module")
def written(ref: Ref, tmp_path_factory: pytest.TempPathFactory) -> tuple[StudyMeasurement, Path]:
    m = _measurement(ref)
    out = tmp_path_factory.mktemp("measure") / "OUT"
    assert write_measurement(m, out) == out
    return m, out


# ---------------------------------------------------------------------------- folder
def test_folder_layout(written: tuple[StudyMeasurement, Path]) -> None:
    _, out = written
    assert _files(out) == [
        "lesions.csv",
        "masks/lesions.nii.gz",
        "masks/lesions.seg.dcm",
        "masks/liver.nii.gz",
        "masks/organs.seg.dcm",
        "masks/spleen.nii.gz",
        "study.json",
    ]
    assert not [p for p in out.parent.iterdir() if p.name.startswith(".")], "temp left over"


# ---------------------------------------------------------------------------- lesions.csv
def test_csv_header_and_values_round_trip(written: tuple[StudyMeasurement, Path]) -> None:
    m, out = written
    text = (out / "lesions.csv").read_text(encoding="utf-8")
    assert text.splitlines()[0] == ",".join(LESION_COLUMNS)
    rows = _read_csv(out / "lesions.csv")
    assert len(rows) == len(m.lesions)
    for les, row in zip(m.lesions, rows, strict=True):
        expected = les.to_row()
        for column in LESION_COLUMNS:
            value, cell = expected[column], row[column]
            if value is None:
                assert cell == "", column
            elif isinstance(value, bool | np.bool_):
                assert cell == ("true" if value else "false"), column
            elif isinstance(value, int | np.integer):
                assert int(cell) == value, column
            elif isinstance(value, float | np.floating):
                assert float(cell) == float(value), column  # full precision: exact
            else:
                assert cell == value, column
    assert rows[0]["suv_max"] == repr(23.456789012345678) == "23.456789012345677"
    assert rows[0]["ld_mm"] == repr(12.8 + 1e-12)
    assert rows[1]["krenning_grade"] == "" and rows[1]["sstr_positive"] == ""
    assert rows[1]["qc_flags"] == "touches_border;outside_pet_fov"
    assert rows[0]["qc_flags"] == ""
    assert rows[1]["voxels"] == "18" and rows[1]["volume_ml"] == "0.5"
    assert rows[1]["nodal"] == "true" and rows[0]["measurable"] == "true"
    assert rows[0]["centroid_z_mm"] == "100.000000001"


def test_csv_cells() -> None:
    assert format_cell(None) == ""
    assert format_cell(True) == "true" and format_cell(np.bool_(False)) == "false"
    assert format_cell(np.int64(7)) == "7"
    assert format_cell(np.float32(0.5)) == "0.5"
    assert format_cell(0.1) == "0.1"
    assert format_cell("a,b") == "a,b"
    for bad in (float("nan"), float("inf"), np.float64("nan")):
        with pytest.raises(ValueError, match="non-finite"):
            format_cell(bad)


def test_csv_quotes_a_name_with_a_comma() -> None:
    data = lesions_csv([_lesion(1, name='lesion "a", segment 4')])
    rows = list(csv.DictReader(io.StringIO(data.decode("utf-8"))))
    assert rows[0]["name"] == 'lesion "a", segment 4'


# ---------------------------------------------------------------------------- study.json
def test_study_json(written: tuple[StudyMeasurement, Path]) -> None:
    m, out = written
    text = (out / "study.json").read_text(encoding="utf-8")
    record = _no_nan(text)
    expected = json.loads(json.dumps(m.to_dict(), default=lambda v: v.item()))
    for key, value in expected.items():
        assert record[key] == value, key
    assert record["output_files"] == _files(out)
    assert record["outputs_not_written"] == {}
    assert record["output_notes"] == []
    assert list(record) == sorted(record)
    assert text.startswith('{\n  "')
    assert record["lesions"][1]["voxels"] == 18
    assert record["references"]["liver"]["centre_mm"] == [1.0, 2.0, 3.0]


def test_nan_in_study_is_refused_and_leaves_nothing(ref: Ref, tmp_path: Path) -> None:
    m = _measurement(ref, liver_tumour_burden_pct=float("nan"))
    with pytest.raises(ValueError, match="liver_tumour_burden_pct"):
        write_measurement(m, tmp_path / "OUT")
    assert list(tmp_path.iterdir()) == []
    m = _measurement(ref, lesions=(_lesion(1, suv_mean=float("nan")), _lesion(2, name="L2")))
    with pytest.raises(ValueError, match="lesion 1 column suv_mean"):
        write_measurement(m, tmp_path / "OUT")
    assert list(tmp_path.iterdir()) == []


# ---------------------------------------------------------------------------- NIfTI
def test_nifti_masks_read_back(ref: Ref, written: tuple[StudyMeasurement, Path]) -> None:
    _, out = written
    liver = read_nifti(out / "masks" / "liver.nii.gz")
    assert liver.array.dtype == np.uint8
    np.testing.assert_array_equal(liver.array, (ref.liver.array != 0).astype(np.uint8))
    np.testing.assert_allclose(liver.affine, ref.ct.affine, atol=1e-4)
    spleen = masks.read(out / "masks" / "spleen.nii.gz", ref.ct)
    assert spleen.label_names == {1: "spleen"}
    np.testing.assert_array_equal(spleen.array != 0, ref.spleen.array != 0)

    lesions = masks.read(out / "masks" / "lesions.nii.gz", ref.ct)
    np.testing.assert_array_equal(lesions.array, ref.lesions.array)
    assert lesions.label_names == {1: "L1", 2: "N1"}
    assert read_nifti(out / "masks" / "lesions.nii.gz").array.dtype == np.uint8


# ---------------------------------------------------------------------------- DICOM SEG
def test_segs_read_back(ref: Ref, written: tuple[StudyMeasurement, Path]) -> None:
    import pydicom

    _, out = written
    organs = masks.read(out / "masks" / "organs.seg.dcm", ref.ct)
    assert organs.label_names == {1: "liver", 2: "spleen"}
    np.testing.assert_array_equal(organs.array == 1, ref.liver.array != 0)
    np.testing.assert_array_equal(organs.array == 2, ref.spleen.array != 0)

    lesions = masks.read(out / "masks" / "lesions.seg.dcm", ref.ct)
    assert lesions.label_names == {1: "L1", 2: "N1"}
    np.testing.assert_array_equal(lesions.array, ref.lesions.array)

    ds = pydicom.dcmread(out / "masks" / "lesions.seg.dcm")
    assert ds.ReferencedSeriesSequence[0].SeriesInstanceUID == ref.series.series_instance_uid
    seg1, seg2 = ds.SegmentSequence
    assert (seg1.TrackingID, seg2.TrackingID) == ("L1", "N1")
    assert seg1.AnatomicRegionSequence[0].CodeMeaning == "Liver"
    assert seg2.AnatomicRegionSequence[0].CodeMeaning.lower() == "lymph node"
    assert "lymph_node" in seg2.SegmentDescription


def _dciodvfy(path: Path) -> list[str]:
    exe = shutil.which("dciodvfy")
    if exe is None:
        pytest.skip("dciodvfy (dicom3tools) is not installed; CI installs it")
    res = subprocess.run([exe, str(path)], capture_output=True, text=True, check=False)
    return (res.stdout + res.stderr).splitlines()


@pytest.mark.parametrize("name", ["organs.seg.dcm", "lesions.seg.dcm"])
def test_segs_pass_dciodvfy(written: tuple[StudyMeasurement, Path], name: str) -> None:
    _, out = written
    lines = _dciodvfy(out / "masks" / name)
    errors = [line for line in lines if line.startswith("Error")]
    assert errors == [], "\n".join(lines)


# ---------------------------------------------------------------------------- reduced studies
def test_ct_only_no_lesion_no_spleen(ref: Ref, tmp_path: Path) -> None:
    """A CT-only study with no lesion and no spleen: what is skipped is said, and why."""
    m = _measurement(
        ref,
        pet_series_uid=None,
        lesions=(),
        lesion_labels=None,
        spleen_mask=None,
        spleen_volume_ml=None,
        n_liver_lesions=0,
        liver_tumour_volume_ml=0.0,
        liver_tumour_burden_pct=0.0,
        sstr_positive_fraction=None,
        sstr_positive_volume_ml=None,
        references={},
        extrahepatic_disease=False,
        qc_flags=("no_pet",),
    )
    out = write_measurement(m, tmp_path / "OUT")
    assert _files(out) == [
        "lesions.csv",
        "masks/lesions.nii.gz",
        "masks/liver.nii.gz",
        "masks/organs.seg.dcm",
        "study.json",
    ]
    assert (out / "lesions.csv").read_text() == ",".join(LESION_COLUMNS) + "\n"
    record = _no_nan((out / "study.json").read_text())
    skipped = record["outputs_not_written"]
    assert set(skipped) == {"masks/spleen.nii.gz", "masks/lesions.seg.dcm"}
    assert "at least one segment" in skipped["masks/lesions.seg.dcm"]
    assert "spleen" in skipped["masks/spleen.nii.gz"]
    assert record["pet_series_uid"] is None
    lesions = read_nifti(out / "masks" / "lesions.nii.gz")
    assert lesions.array.shape == ref.ct.spatial_shape and not lesions.array.any()
    organs = masks.read(out / "masks" / "organs.seg.dcm", ref.ct)
    assert organs.label_names == {1: "liver"}


def test_no_reference_series_no_masks_at_all(ref: Ref, tmp_path: Path) -> None:
    """No reference series: no SEG. No mask at all: an empty lesion map on the grid."""
    m = _measurement(
        ref,
        lesions=(),
        lesion_labels=None,
        liver_mask=None,
        spleen_mask=None,
        reference_series=None,
    )
    out = write_measurement(m, tmp_path / "OUT")
    assert _files(out) == ["lesions.csv", "masks/lesions.nii.gz", "study.json"]
    skipped = json.loads((out / "study.json").read_text())["outputs_not_written"]
    assert "reference image series" in skipped["masks/organs.seg.dcm"]
    assert "reference image series" in skipped["masks/lesions.seg.dcm"]
    assert "liver" in skipped["masks/liver.nii.gz"]
    lesions = read_nifti(out / "masks" / "lesions.nii.gz")
    np.testing.assert_allclose(lesions.affine, ref.ct.affine, atol=1e-4)
    assert not lesions.array.any()


def test_spleen_only_is_segment_one(ref: Ref, tmp_path: Path) -> None:
    m = _measurement(ref, liver_mask=None)
    out = write_measurement(m, tmp_path / "OUT")
    organs = masks.read(out / "masks" / "organs.seg.dcm", ref.ct)
    assert organs.label_names == {1: "spleen"}
    np.testing.assert_array_equal(organs.array == 1, ref.spleen.array != 0)


def test_overlapping_organs_are_noted(ref: Ref, tmp_path: Path) -> None:
    spleen = ref.spleen.array.copy()
    spleen[CUBE_LIVER] = 1  # 48 voxels of liver claimed by the spleen too
    m = _measurement(ref, spleen_mask=ref.spleen.with_array(spleen))
    out = write_measurement(m, tmp_path / "OUT")
    notes = json.loads((out / "study.json").read_text())["output_notes"]
    assert len(notes) == 1 and "48 voxel(s)" in notes[0]
    organs = masks.read(out / "masks" / "organs.seg.dcm", ref.ct)
    assert np.all(organs.array[CUBE_LIVER] == 1)
    np.testing.assert_array_equal(
        read_nifti(out / "masks" / "spleen.nii.gz").array, (spleen != 0).astype(np.uint8)
    )


def test_long_lesion_name_is_shortened_for_the_seg(ref: Ref, tmp_path: Path) -> None:
    long_name = "x" * 70
    m = _measurement(ref, lesions=(_lesion(1, name=long_name), _lesion(2, name="a\\b")))
    out = write_measurement(m, tmp_path / "OUT")
    seg = masks.read(out / "masks" / "lesions.seg.dcm", ref.ct)
    assert seg.label_names == {1: "x" * 64, 2: "a/b"}
    notes = json.loads((out / "study.json").read_text())["output_notes"]
    assert len(notes) == 2
    rows = _read_csv(out / "lesions.csv")
    assert rows[0]["name"] == long_name  # the table keeps the name as it is


def test_inconsistent_measurement_is_refused(ref: Ref, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"value\(s\) \[2\] have no lesion record"):
        write_measurement(_measurement(ref, lesions=(_lesion(1),)), tmp_path / "A")
    with pytest.raises(ValueError, match="no lesion_labels"):
        write_measurement(_measurement(ref, lesion_labels=None), tmp_path / "B")
    with pytest.raises(ValueError, match=r"lesion_id\(s\) used by more than one"):
        write_measurement(
            _measurement(ref, lesions=(_lesion(1), _lesion(1, name="X"))), tmp_path / "C"
        )
    with pytest.raises(ValueError, match=r"name\(s\) used by more than one"):
        write_measurement(
            _measurement(ref, lesions=(_lesion(1), _lesion(2, name="L1"))), tmp_path / "C"
        )
    other = Volume(np.zeros((5, 6, 7), np.uint8), np.eye(4))
    with pytest.raises(ValueError, match="not on the measurement grid"):
        write_measurement(_measurement(ref, spleen_mask=other), tmp_path / "D")
    assert list(tmp_path.iterdir()) == []


# ---------------------------------------------------------------------------- overwrite / failure
def test_existing_output_is_refused_then_overwritten(ref: Ref, tmp_path: Path) -> None:
    out = tmp_path / "OUT"
    m = _measurement(ref, lesions=(), lesion_labels=None, reference_series=None)
    write_measurement(m, out)
    (out / "stale.txt").write_text("from an older run")
    with pytest.raises(OutputExistsError, match="already exists"):
        write_measurement(m, out)
    assert (out / "stale.txt").exists()
    write_measurement(m, out, overwrite=True)
    assert not (out / "stale.txt").exists()
    assert (out / "study.json").is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["OUT"]


def test_overwrite_refuses_a_folder_that_is_not_an_output(ref: Ref, tmp_path: Path) -> None:
    m = _measurement(ref, lesions=(), lesion_labels=None, reference_series=None)
    study = tmp_path / "study"
    study.mkdir()
    (study / "CT.dcm").write_bytes(b"precious")
    with pytest.raises(OutputExistsError, match="does not look like"):
        write_measurement(m, study, overwrite=True)
    assert (study / "CT.dcm").read_bytes() == b"precious"
    afile = tmp_path / "file.txt"
    afile.write_text("x")
    with pytest.raises(OutputExistsError, match="not a folder"):
        write_measurement(m, afile, overwrite=True)
    empty = tmp_path / "empty"
    empty.mkdir()
    write_measurement(m, empty, overwrite=True)
    assert (empty / "study.json").is_file()


def _failing_seg(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []
    real = _write.write_seg

    def fake(*args: Any, **kwargs: Any) -> Path:
        calls.append(1)
        if len(calls) == 2:  # the organ SEG is written, the lesion SEG fails
            raise MaskError("simulated SEG failure")
        return real(*args, **kwargs)

    monkeypatch.setattr(_write, "write_seg", fake)


def test_failure_midway_leaves_nothing(
    ref: Ref, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _failing_seg(monkeypatch)
    with pytest.raises(MaskError, match="simulated"):
        write_measurement(_measurement(ref), tmp_path / "sub" / "OUT")
    assert list((tmp_path / "sub").iterdir()) == []


def test_failure_midway_keeps_the_old_output(
    ref: Ref, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "OUT"
    m = _measurement(ref, lesions=(), lesion_labels=None, reference_series=None)
    write_measurement(m, out)
    before = {p: (out / p).read_bytes() for p in _files(out)}
    _failing_seg(monkeypatch)
    with pytest.raises(MaskError, match="simulated"):
        write_measurement(_measurement(ref), out, overwrite=True)
    assert {p: (out / p).read_bytes() for p in _files(out)} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["OUT"]


# ---------------------------------------------------------------------------- command line
@pytest.fixture
def fake_measure(ref: Ref, monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    import netvolume.measure

    calls: list[dict[str, Any]] = []

    def measure_study(study_dir: Any, **kwargs: Any) -> StudyMeasurement:
        calls.append({"study_dir": study_dir, **kwargs})
        return _measurement(ref)

    monkeypatch.setattr(netvolume.measure, "measure_study", measure_study, raising=False)
    return calls


def test_cli_writes_the_folder(
    run_cli: Callable[..., Any], fake_measure: list[dict[str, Any]], tmp_path: Path
) -> None:
    out = tmp_path / "OUT"
    res = run_cli(
        ["measure", STUDY, "-o", out, "--set", "min_lesion_ml=0.5", "--set",
         "organ_hu_range=70,150", "--lesion-roi", "a", "--lesion-roi", "b", "--register"]
    )  # fmt: skip
    assert res.code == 0, res.err
    assert "2 lesion(s) (liver 1, lymph_node 1), 1 measurable" in res.out
    assert "liver 1500.2 mL, spleen 210.5 mL" in res.out
    assert str(out) in res.out
    assert (out / "study.json").is_file() and (out / "masks" / "lesions.seg.dcm").is_file()
    (call,) = fake_measure
    assert call["study_dir"] == str(STUDY)
    settings = call["settings"]
    assert settings.min_lesion_ml == 0.5 and settings.organ_hu_range == (70.0, 150.0)
    assert call["lesion_roi"] == ["a", "b"] and call["register"] is True
    assert call["ct_series"] is None and call["liver_mask"] is None
    assert set(call) == {
        "study_dir", "settings", "ct_series", "pet_series", "liver_mask", "spleen_mask",
        "lesion_mask", "lesion_roi", "totalseg", "register",
    }  # fmt: skip


def test_cli_json_and_quiet(
    run_cli: Callable[..., Any], fake_measure: list[dict[str, Any]], tmp_path: Path
) -> None:
    out = tmp_path / "OUT"
    res = run_cli(["measure", STUDY, "-o", out, "--json", "--ct-series", "9.9"])
    assert res.code == 0, res.err
    lines = res.out.strip().splitlines()
    assert len(lines) == 1
    record = _no_nan(lines[0])
    assert record == json.loads((out / "study.json").read_text())
    assert fake_measure[0]["ct_series"] == "9.9"

    res = run_cli(["measure", STUDY, "-o", out, "--overwrite", "-q"])
    assert res.code == 0 and res.out == "", res.err


def test_cli_refuses_existing_output_before_measuring(
    run_cli: Callable[..., Any], fake_measure: list[dict[str, Any]], tmp_path: Path
) -> None:
    out = tmp_path / "OUT"
    out.mkdir()
    res = run_cli(["measure", STUDY, "-o", out])
    assert res.code == 3
    assert "already exists" in res.err and "--overwrite" in res.err
    assert fake_measure == []


def test_cli_missing_study_dir(
    run_cli: Callable[..., Any], fake_measure: list[dict[str, Any]], tmp_path: Path
) -> None:
    res = run_cli(["measure", tmp_path / "nope", "-o", tmp_path / "OUT"])
    assert res.code == 3 and "study folder not found" in res.err
    assert fake_measure == [] and not (tmp_path / "OUT").exists()


def test_cli_unknown_setting_is_a_usage_error(
    run_cli: Callable[..., Any], fake_measure: list[dict[str, Any]], tmp_path: Path
) -> None:
    res = run_cli(["measure", STUDY, "-o", tmp_path / "OUT", "--set", "no_such_thing=1"])
    assert res.code == 2
    assert res.err.startswith("netvolume: error: unknown measurement setting 'no_such_thing'")
    assert "min_lesion_ml" in res.err  # the known settings are listed
    res = run_cli(["measure", STUDY, "-o", tmp_path / "OUT", "--set", "min_lesion_ml=abc"])
    assert res.code == 2 and "min_lesion_ml" in res.err
    res = run_cli(["measure", STUDY, "-o", tmp_path / "OUT", "--set", "connectivity=5"])
    assert res.code == 2 and "6, 18 or 26" in res.err
    assert fake_measure == []
    assert not (tmp_path / "OUT").exists()


def test_cli_help_lists_measure(run_cli: Callable[..., Any]) -> None:
    res = run_cli(["--help"])
    assert res.code == 0 and "measure" in res.out
    res = run_cli(["measure", "--help"])
    assert res.code == 0 and "--lesion-mask" in res.out and "--totalseg" in res.out

"""The DICOM SR (TID 1500 Measurement Report) of a ``netvolume measure`` output folder.

The folders are real measurements of the bundled sample study
(``data/sample_dicom/P001/T0``, CT + PET, read only) with its truth masks imported, so
that they hold every organ kind (liver, lymph node, bone, other), graded and ungraded
lesions, and a lesion SEG that references the CT images. A CT-only copy gives a study
without SUVs or grades, and the same measurement with its lesions removed a study
without lesions. Every SR is read back with pydicom and highdicom and compared with
``lesions.csv`` parsed here independently, and checked with dciodvfy.
"""

from __future__ import annotations

import csv
import dataclasses
import hashlib
import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import highdicom as hd
import numpy as np
import pydicom
import pytest
from pydicom.sr.codedict import codes

from netvolume import __version__
from netvolume.errors import InputPathError, NetVolumeError
from netvolume.io.sr_write import (
    PRIVATE_SCHEME,
    MeasurementFolderError,
    write_measurement_sr,
)
from netvolume.measure import measure_study, write_measurement

STUDY = Path(__file__).resolve().parents[1] / "data" / "sample_dicom" / "P001" / "T0"
TRUTH = STUDY / "truth"

#: dciodvfy warnings that are understood and accepted. dciodvfy checks Coding Scheme
#: Designators against the standard's table (PS3.16 Table 8-1), which cannot list a
#: private scheme; PS3.16 section 8.2 reserves designators beginning with "99" for
#: private schemes, and the SR declares it in its CodingSchemeIdentificationSequence.
_ACCEPTED_WARNINGS = {
    f"Warning - Unrecognized defined term <{PRIVATE_SCHEME}> for value 1 of attribute "
    "<Coding Scheme Designator>",
}


# ---------------------------------------------------------------------------- fixtures
def _measure(study: Path, out: Path) -> Any:
    m = measure_study(
        study,
        liver_mask=TRUTH / "liver.nii.gz",
        spleen_mask=TRUTH / "spleen.nii.gz",
        lesion_mask=TRUTH / "lesions.nii.gz",
    )
    write_measurement(m, out)
    return m


@pytest.fixture(scope="module")
def petct(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The measure output folder of the sample PET/CT study."""
    if not (STUDY / "CT").is_dir():
        pytest.skip(f"sample study not found: {STUDY}")
    out = tmp_path_factory.mktemp("petct") / "measured"
    _measure(STUDY, out)
    return out


@pytest.fixture(scope="module")
def ct_only(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(measure folder of the CT-only copy, measure folder of it without lesions)."""
    if not (STUDY / "CT").is_dir():
        pytest.skip(f"sample study not found: {STUDY}")
    root = tmp_path_factory.mktemp("ct_only")
    shutil.copytree(STUDY / "CT", root / "study" / "CT")
    m = _measure(root / "study", root / "measured")
    assert m.pet_series_uid is None and m.lesions
    none = dataclasses.replace(m, lesions=(), lesion_labels=None)
    write_measurement(none, root / "no_lesions")
    assert not (root / "no_lesions" / "masks" / "lesions.seg.dcm").exists()
    return root / "measured", root / "no_lesions"


TRACKING = {2: "T-2", 5: "T-5"}


@pytest.fixture(scope="module")
def sr_file(petct: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("sr") / "measurements.sr.dcm"
    result = write_measurement_sr(
        petct,
        out,
        tracking=TRACKING,
        time_point="follow-up 1",
        time_point_date="2024-05-28",
        institution="Trial Site 7",
    )
    assert result == out
    return out


def _rows(folder: Path) -> list[dict[str, str]]:
    with (folder / "lesions.csv").open(newline="") as fh:
        return list(csv.DictReader(fh))


def _groups(path: Path) -> tuple[Any, list[Any], list[Any]]:
    sr = hd.sr.srread(path)
    assert isinstance(sr, hd.sr.Comprehensive3DSR)
    content = sr.content
    return (
        sr,
        content.get_volumetric_roi_measurement_groups(),
        (content.get_planar_roi_measurement_groups()),
    )


def _num(group: Any, name: Any, derivation: Any = None) -> list[Any]:
    found = [
        m
        for m in group.get_measurements(name=name)
        if (derivation is None and m.derivation is None)
        or (derivation is not None and m.derivation == derivation)
    ]
    return found


def _check_value(measurement: Any, cell: str, unit: str) -> None:
    """NumericValue (DS text) to its precision, FloatingPointValue exactly."""
    item = measurement[0].MeasuredValueSequence[0]
    expected = float(cell)
    assert float(item.NumericValue) == pytest.approx(expected, rel=1e-13, abs=1e-14)
    assert len(str(item.NumericValue)) <= 16
    assert float(item.FloatingPointValue) == expected
    assert item.MeasurementUnitsCodeSequence[0].CodeValue == unit
    assert item.MeasurementUnitsCodeSequence[0].CodingSchemeDesignator == "UCUM"


def _dciodvfy(path: Path) -> list[str]:
    exe = shutil.which("dciodvfy")
    if exe is None:
        pytest.skip("dciodvfy (dicom3tools) is not installed; CI installs it")
    res = subprocess.run([exe, str(path)], capture_output=True, text=True, check=False)
    return (res.stdout + res.stderr).splitlines()


def _assert_dciodvfy_clean(path: Path) -> None:
    lines = _dciodvfy(path)
    errors = [line for line in lines if line.startswith("Error")]
    assert errors == [], "\n".join(lines)
    unexplained = {line for line in lines if line.startswith("Warning")} - _ACCEPTED_WARNINGS
    assert unexplained == set(), "\n".join(sorted(unexplained))


# ---------------------------------------------------------------------------- content
def test_one_volumetric_group_per_lesion_with_the_table_values(petct: Path, sr_file: Path) -> None:
    rows = _rows(petct)
    assert len(rows) >= 5
    assert {r["organ"] for r in rows} == {"liver", "lymph_node", "bone", "other"}
    _, volumetric, _ = _groups(sr_file)
    assert len(volumetric) == len(rows)
    sites = {
        "liver": codes.SCT.Liver,
        "lymph_node": codes.SCT.LymphNode,
        "bone": codes.SCT.Bone,
        "other": None,
    }
    suv_seen = 0
    for row, group in zip(rows, volumetric, strict=True):
        lesion_id = int(row["lesion_id"])
        assert group.tracking_identifier == TRACKING.get(lesion_id, row["name"])
        assert group.finding_type == codes.SCT.Lesion
        site = sites[row["organ"]]
        found_sites = [s.value.value for s in group.finding_sites]
        assert found_sites == ([] if site is None else [site.value])

        (volume,) = _num(group, codes.SCT.Volume)
        _check_value(volume, row["volume_ml"], "ml")
        for column, derivation in (
            ("suv_max", codes.SCT.Maximum),
            ("suv_mean", codes.SCT.Mean),
            ("suv_peak", codes.DCM.PeakValueWithinROI),
        ):
            found = _num(group, codes.DCM.Suvbw, derivation)
            if row[column] == "":
                assert found == []
                continue
            (suv,) = found
            _check_value(suv, row[column], "g/ml{SUVbw}")
            suv_seen += 1
        # the axes are in the planar groups, not here
        assert _num(group, codes.SCT.LongAxis) == [] and _num(group, codes.SCT.ShortAxis) == []
    assert suv_seen == 3 * len(rows)


def test_tracking_uids_are_per_lesion_and_derived_from_study_and_tracking_id(
    petct: Path, sr_file: Path, tmp_path: Path
) -> None:
    _, volumetric, planar = _groups(sr_file)
    uids = [str(g.tracking_uid) for g in volumetric]
    assert len(set(uids)) == len(uids)
    assert sorted(str(g.tracking_uid) for g in planar) == sorted(uids * 2)
    # the UID follows the tracking identifier, not the lesion's position or the arguments
    other = write_measurement_sr(petct, tmp_path / "b.dcm", tracking={1: "T-2"})
    _, again, _ = _groups(other)
    assert str(again[0].tracking_uid) == uids[1]  # lesion 1 now tracked as "T-2"
    assert str(again[1].tracking_uid) not in uids  # lesion 2 by its name, new
    for n in range(2, len(uids)):  # lesion_id n + 1: the same name, the same UID
        assert (str(again[n].tracking_uid) == uids[n]) == (n + 1 not in TRACKING)


def test_calipers_are_scoord3d_polylines_at_the_axis_end_points(petct: Path, sr_file: Path) -> None:
    rows = _rows(petct)
    study = json.loads((petct / "study.json").read_text())
    _, volumetric, planar = _groups(sr_file)
    assert len(planar) == 2 * len(rows)
    for row, group in zip(rows, volumetric, strict=True):
        mine = [p for p in planar if p.tracking_uid == group.tracking_uid]
        assert len(mine) == 2
        for tag, name, length in (
            ("ld", codes.SCT.LongAxis, "ld_mm"),
            ("sa", codes.SCT.ShortAxis, "sa_mm"),
        ):
            (axis,) = [p for p in mine if p.get_measurements(name=name)]
            assert axis.tracking_identifier == group.tracking_identifier
            assert axis.method == codes.DCM.RECIST1Point1
            assert axis.get_measurements(name=codes.SCT.Volume) == []
            (measurement,) = axis.get_measurements(name=name)
            _check_value(measurement, row[length], "mm")
            region = axis.roi
            assert isinstance(region, hd.sr.ImageRegion3D)
            assert region.graphic_type == hd.sr.GraphicTypeValues3D.POLYLINE
            assert region.frame_of_reference_uid == study["frame_of_reference_uid"]
            expected = [
                [float(row[f"{tag}_{end}_{axis_}_mm"]) for axis_ in "xyz"]
                for end in ("start", "end")
            ]
            np.testing.assert_allclose(region.value, expected, atol=1e-3, rtol=0)
            # the caliper's length is the measurement
            assert float(np.linalg.norm(np.subtract(*expected))) == pytest.approx(
                float(row[length]), abs=1e-6
            )


def test_references_the_seg_segments_and_its_source_images(petct: Path, sr_file: Path) -> None:
    seg = pydicom.dcmread(petct / "masks" / "lesions.seg.dcm", stop_before_pixels=True)
    rows = _rows(petct)
    sr, volumetric, _ = _groups(sr_file)
    source_uids = {
        str(i.ReferencedSOPInstanceUID)
        for s in seg.ReferencedSeriesSequence
        for i in s.ReferencedInstanceSequence
    }
    number_of = {str(s.SegmentLabel): int(s.SegmentNumber) for s in seg.SegmentSequence}
    for row, group in zip(rows, volumetric, strict=True):
        ref = group.referenced_segment
        assert ref is not None
        item = ref[0].ReferencedSOPSequence[0]
        assert item.ReferencedSOPInstanceUID == seg.SOPInstanceUID
        assert item.ReferencedSOPClassUID == seg.SOPClassUID
        assert int(item.ReferencedSegmentNumber) == number_of[row["name"]]
        sources = {
            str(i.ReferencedSOPSequence[0].ReferencedSOPInstanceUID)
            for i in ref[1:]
            if i.name == codes.DCM.SourceImageForSegmentation
        }
        assert len(sources) == len(ref) - 1
        assert sources and sources <= source_uids
    # evidence: the SEG and the CT images, in the same study
    evidence = {
        str(i.ReferencedSOPInstanceUID)
        for study in sr.CurrentRequestedProcedureEvidenceSequence
        for series in study.ReferencedSeriesSequence
        for i in series.ReferencedSOPSequence
    }
    assert evidence == source_uids | {str(seg.SOPInstanceUID)}
    # patient and study attributes come from the SEG
    assert sr.StudyInstanceUID == seg.StudyInstanceUID
    assert sr.PatientID == seg.PatientID and sr.PatientName == seg.PatientName


def test_krenning_grade_and_recist_category_are_coded(petct: Path, sr_file: Path) -> None:
    rows = _rows(petct)
    sr, volumetric, _ = _groups(sr_file)
    grades = 0
    for row, group in zip(rows, volumetric, strict=True):
        found = {
            str(q.name.value): q.value
            for q in group.get_qualitative_evaluations()
            if q.name.scheme_designator == PRIVATE_SCHEME
        }
        assert row["krenning_grade"] != ""
        assert found["KRENNING"].value == f"KRENNING{row['krenning_grade']}"
        assert found["KRENNING"].meaning == f"Krenning grade {row['krenning_grade']}"
        grades += 1
        category = {
            "measurable": "RECISTMEAS",
            "non_measurable": "RECISTNONMEAS",
            "normal_node": "RECISTNORMALNODE",
        }
        assert found["RECISTCATEGORY"].value == category[row["recist_category"]]
    assert grades == len(rows)
    assert {r["recist_category"] for r in rows} >= {"measurable", "non_measurable"}
    (scheme,) = sr.CodingSchemeIdentificationSequence
    assert scheme.CodingSchemeDesignator == PRIVATE_SCHEME


def test_context_time_point_observer_and_dates(petct: Path, sr_file: Path) -> None:
    study = json.loads((petct / "study.json").read_text())
    ds = pydicom.dcmread(sr_file)
    _, volumetric, planar = _groups(sr_file)
    assert ds.SOPClassUID == "1.2.840.10008.5.1.4.1.1.88.34"
    assert ds.Modality == "SR" and ds.SeriesNumber == 901
    assert ds.InstitutionName == "Trial Site 7"
    assert ds.SoftwareVersions == __version__
    # the study's date, not the clock
    assert ds.ContentDate == study["study_date"].replace("-", "")
    assert ds.InstanceCreationDate == ds.ContentDate == ds.SeriesDate
    for equipment in ds.get("ContributingEquipmentSequence", []):
        if "ContributionDateTime" in equipment:
            assert str(equipment.ContributionDateTime).startswith(ds.ContentDate)
        # netvolume (the SEG's manufacturer) did not acquire the images
        assert equipment.PurposeOfReferenceCodeSequence[0].CodeValue != "109101"
    root = ds.ContentSequence
    by_name = {}
    for item in root:
        by_name.setdefault(item.ConceptNameCodeSequence[0].CodeMeaning, []).append(item)
    assert by_name["Device Observer Name"][0].TextValue == "netvolume"
    assert by_name["Device Observer Model Name"][0].TextValue == f"netvolume {__version__}"
    procedures = {i.ConceptCodeSequence[0].CodeValue for i in by_name["Procedure reported"]}
    assert procedures == {"44136-0", "25045-6"}  # PET and CT
    for group in [*volumetric, *planar]:
        texts = {
            i.ConceptNameCodeSequence[0].CodeMeaning: getattr(i, "TextValue", None)
            for i in group[0].ContentSequence
        }
        assert texts["Time Point"] == "follow-up 1"
        assert texts["Subject Time Point Identifier"] == "2024-05-28"
        assert texts["Algorithm Version"] == __version__


# ---------------------------------------------------------------------------- conformance
def test_dciodvfy_finds_no_error(sr_file: Path) -> None:
    _assert_dciodvfy_clean(sr_file)


def test_dciodvfy_sees_errors_in_a_broken_sr(sr_file: Path, tmp_path: Path) -> None:
    """The oracle is live: an SR without CompletionFlag, and with a content item deep in
    a measurement group without its concept name, gives Error lines. (dciodvfy checks
    the IOD and the content item macros; it does not check TID 1500's template rules.)"""
    ds = pydicom.dcmread(sr_file)
    del ds.CompletionFlag
    del ds.ContentSequence[-1].ContentSequence[0].ContentSequence[0].ConceptNameCodeSequence
    ds.save_as(tmp_path / "broken.dcm")
    errors = [line for line in _dciodvfy(tmp_path / "broken.dcm") if line.startswith("Error")]
    assert any("CompletionFlag" in line for line in errors), errors
    assert any("ConceptNameCodeSequence" in line for line in errors), errors


def test_same_inputs_give_the_same_bytes(petct: Path, sr_file: Path, tmp_path: Path) -> None:
    again = write_measurement_sr(
        petct,
        tmp_path / "again.dcm",
        tracking=TRACKING,
        time_point="follow-up 1",
        time_point_date="2024-05-28",
        institution="Trial Site 7",
    )
    assert again.read_bytes() == sr_file.read_bytes()
    other = write_measurement_sr(petct, tmp_path / "other.dcm", tracking=TRACKING)
    a, b = pydicom.dcmread(sr_file), pydicom.dcmread(other)
    assert a.SOPInstanceUID != b.SOPInstanceUID
    assert a.SeriesInstanceUID != b.SeriesInstanceUID
    assert (
        hashlib.sha256(other.read_bytes()).digest() != hashlib.sha256(again.read_bytes()).digest()
    )


# ---------------------------------------------------------------------------- errors
def _copy(folder: Path, dest: Path) -> Path:
    shutil.copytree(folder, dest)
    return dest


def test_folder_without_lesions_csv_names_it_and_leaves_nothing(
    petct: Path, tmp_path: Path
) -> None:
    folder = _copy(petct, tmp_path / "in")
    (folder / "lesions.csv").unlink()
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    with pytest.raises(InputPathError, match=r"lesions\.csv") as info:
        write_measurement_sr(folder, out_dir / "sr.dcm")
    assert folder / "lesions.csv" in info.value.files
    assert info.value.hint
    assert list(out_dir.iterdir()) == []


def test_malformed_cell_names_line_and_column(petct: Path, tmp_path: Path) -> None:
    folder = _copy(petct, tmp_path / "in")
    text = (folder / "lesions.csv").read_text().splitlines()
    header = text[0].split(",")
    cells = text[2].split(",")
    cells[header.index("volume_ml")] = "big"
    text[2] = ",".join(cells)
    (folder / "lesions.csv").write_text("\n".join(text) + "\n")
    with pytest.raises(MeasurementFolderError, match=r"line 3, column volume_ml: 'big'") as e:
        write_measurement_sr(folder, tmp_path / "sr.dcm")
    assert e.value.tag == "volume_ml"
    assert not (tmp_path / "sr.dcm").exists()


def test_seg_that_does_not_match_the_table_is_refused(petct: Path, tmp_path: Path) -> None:
    folder = _copy(petct, tmp_path / "in")
    lines = (folder / "lesions.csv").read_text().splitlines()
    (folder / "lesions.csv").write_text("\n".join(lines[:-1]) + "\n")  # one lesion fewer
    with pytest.raises(MeasurementFolderError, match="segment"):
        write_measurement_sr(folder, tmp_path / "sr.dcm")
    assert not (tmp_path / "sr.dcm").exists()


def test_failure_while_writing_keeps_the_old_file_and_no_temporary(
    petct: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "sr.dcm"
    out.write_bytes(b"previous")

    def broken_save(self: Any, filename: Any, *args: Any, **kwargs: Any) -> None:
        Path(filename).write_bytes(b"half")
        raise OSError("disk full")

    monkeypatch.setattr(hd.sr.Comprehensive3DSR, "save_as", broken_save)
    with pytest.raises(OSError, match="disk full"):
        write_measurement_sr(petct, out)
    assert out.read_bytes() == b"previous"
    assert [p.name for p in tmp_path.iterdir()] == ["sr.dcm"]


def test_bad_arguments(petct: Path, tmp_path: Path) -> None:
    out = tmp_path / "sr.dcm"
    with pytest.raises(ValueError, match="99"):
        write_measurement_sr(petct, out, tracking={99: "X"})
    with pytest.raises(ValueError, match="used by lesion_ids"):
        write_measurement_sr(petct, out, tracking={1: "X", 2: "X"})
    with pytest.raises(ValueError, match="without time_point"):
        write_measurement_sr(petct, out, time_point_date="2024-05-28")
    with pytest.raises(ValueError, match="ISO"):
        write_measurement_sr(petct, out, time_point="baseline", time_point_date="28.05.2024")
    with pytest.raises(InputPathError, match="does not exist"):
        write_measurement_sr(petct, tmp_path / "nowhere" / "sr.dcm")
    with pytest.raises(InputPathError, match="not found"):
        write_measurement_sr(tmp_path / "missing", out)
    assert list(tmp_path.iterdir()) == []


# ---------------------------------------------------------------------------- CT only, none
def test_ct_only_study_has_no_suv_and_no_grade(ct_only: tuple[Path, Path], tmp_path: Path) -> None:
    folder, _ = ct_only
    rows = _rows(folder)
    assert all(r["suv_max"] == "" and r["krenning_grade"] == "" for r in rows)
    out = write_measurement_sr(folder, tmp_path / "sr.dcm")
    _, volumetric, planar = _groups(out)
    assert len(volumetric) == len(rows) and len(planar) == 2 * len(rows)
    for row, group in zip(rows, volumetric, strict=True):
        assert group.get_measurements(name=codes.DCM.Suvbw) == []
        names = {str(q.name.value) for q in group.get_qualitative_evaluations()}
        assert "KRENNING" not in names and "RECISTCATEGORY" in names
        (volume,) = _num(group, codes.SCT.Volume)
        _check_value(volume, row["volume_ml"], "ml")
    ds = pydicom.dcmread(out)
    procedures = {
        i.ConceptCodeSequence[0].CodeValue
        for i in ds.ContentSequence
        if i.ConceptNameCodeSequence[0].CodeMeaning == "Procedure reported"
    }
    assert procedures == {"25045-6"}  # CT only
    _assert_dciodvfy_clean(out)


def test_study_without_lesions_reports_no_finding(
    ct_only: tuple[Path, Path], tmp_path: Path
) -> None:
    _, folder = ct_only
    assert _rows(folder) == []
    out = write_measurement_sr(folder, tmp_path / "sr.dcm")
    sr, volumetric, planar = _groups(out)
    assert volumetric == [] and planar == []
    (evaluations,) = [
        i
        for i in sr.ContentSequence
        if i.ConceptNameCodeSequence[0].CodeValue == "C0034375"  # Qualitative Evaluations
    ]
    (finding,) = evaluations.ContentSequence
    assert finding.ConceptNameCodeSequence[0].CodeValue == "121071"  # Finding
    assert finding.ConceptCodeSequence[0].CodeValue == "260413007"  # None
    organs = pydicom.dcmread(folder / "masks" / "organs.seg.dcm", stop_before_pixels=True)
    assert sr.PatientID == organs.PatientID
    assert sr.StudyInstanceUID == organs.StudyInstanceUID
    _assert_dciodvfy_clean(out)


def test_study_without_any_seg_is_refused(ct_only: tuple[Path, Path], tmp_path: Path) -> None:
    _, folder = ct_only
    folder = _copy(folder, tmp_path / "in")
    (folder / "masks" / "organs.seg.dcm").unlink()
    with pytest.raises(InputPathError, match="no DICOM SEG") as info:
        write_measurement_sr(folder, tmp_path / "sr.dcm")
    assert isinstance(info.value, NetVolumeError)
    assert not (tmp_path / "sr.dcm").exists()

"""The phantom cohort as written to disk: DICOM conformance, read-back, truth, determinism."""

from __future__ import annotations

import csv
import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import pydicom
import pytest
from scipy import ndimage

from netvolume import load, scan
from netvolume.cli import main as cli_main
from netvolume.errors import InputPathError
from netvolume.io.nifti import read_nifti
from netvolume.io.pet import load_suv, suv_factor
from netvolume.phantom import CLINICAL_COLUMNS, PhantomSettings, _cohort, generate_cohort

SETTINGS = PhantomSettings(patients=2, timepoints=2, seed=913, size="small")


@pytest.fixture(scope="module")
def cohort(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("phantom") / "cohort"
    generate_cohort(out, SETTINGS)
    return out


def _truth(study: Path) -> dict[str, Any]:
    return json.loads((study / "truth.json").read_text())


def _studies(root: Path) -> list[Path]:
    return sorted(p.parent for p in root.glob("P*/T*/truth.json"))


def test_layout_and_manifest(cohort: Path) -> None:
    assert sorted(p.name for p in cohort.iterdir()) == [
        "MANIFEST.sha256",
        "P001",
        "P002",
        "README.md",
        "clinical.csv",
        "cohort.json",
    ]
    for study in _studies(cohort):
        assert sorted(p.name for p in study.iterdir()) == ["CT", "PET", "truth", "truth.json"]
        assert sorted(p.name for p in (study / "truth").iterdir()) == [
            "lesions.nii.gz",
            "liver.nii.gz",
            "spleen.nii.gz",
        ]
    listed = (cohort / "MANIFEST.sha256").read_text().splitlines()
    files = [p for p in cohort.rglob("*") if p.is_file()]
    assert len(listed) == len(files) - 2  # all but the manifest and cohort.json
    assert not list(cohort.parent.glob(".cohort.*"))  # no temporary folder left


def test_same_seed_same_bytes_other_seed_other_bytes(cohort: Path, tmp_path: Path) -> None:
    again = tmp_path / "again"
    generate_cohort(again, SETTINGS)
    assert (again / "MANIFEST.sha256").read_bytes() == (cohort / "MANIFEST.sha256").read_bytes()
    for rel in ("P001/T1/truth.json", "clinical.csv", "cohort.json"):
        assert (again / rel).read_bytes() == (cohort / rel).read_bytes()
    other = tmp_path / "other"
    generate_cohort(other, PhantomSettings(patients=1, timepoints=1, seed=914))
    assert (other / "P001/T0/truth.json").read_bytes() != (
        cohort / "P001/T0/truth.json"
    ).read_bytes()


def test_every_file_passes_dciodvfy(cohort: Path) -> None:
    exe = shutil.which("dciodvfy")
    if exe is None:
        pytest.skip("dciodvfy (dicom3tools) is not installed; CI installs it")
    files = sorted(cohort.glob("P*/T*/*/*.dcm"))
    assert len(files) > 400
    bad = {}
    for path in files:
        res = subprocess.run([exe, str(path)], capture_output=True, text=True, check=False)
        errors = [
            line for line in (res.stdout + res.stderr).splitlines() if line.startswith("Error")
        ]
        if errors:
            bad[path.name] = errors
    assert not bad, list(bad.items())[:3]


def test_ct_reads_back_with_exact_geometry(cohort: Path) -> None:
    for study in _studies(cohort):
        truth = _truth(study)
        cat = scan(study / "CT")
        (series,) = cat.series
        assert series.uid == truth["ct"]["series_instance_uid"]
        assert series.frame_of_reference_uid == truth["frame_of_reference_uid"]
        ct = load(series)
        assert list(ct.array.shape) == truth["ct"]["shape"]
        assert ct.spacing == pytest.approx(truth["ct"]["spacing_mm"], abs=1e-9)
        assert ct.origin == pytest.approx(truth["ct"]["origin_mm"], abs=1e-9)
        liver = read_nifti(study / "truth" / "liver.nii.gz")
        np.testing.assert_allclose(liver.affine, ct.affine, atol=1e-9)
        # deep liver interior: the liver HU of the truth (noise averages out)
        deep = ndimage.binary_erosion(liver.array.astype(bool), iterations=2)
        lesions = read_nifti(study / "truth" / "lesions.nii.gz").array
        deep &= ndimage.distance_transform_edt(lesions == 0, sampling=ct.spacing) > 12.0
        hu = ct.array[deep].astype(float)
        assert hu.size > 500
        sem = truth["ct"]["noise_sd_hu"] / np.sqrt(hu.size)
        assert abs(hu.mean() - truth["tissues"]["liver"]["hu"]) < 5 * sem + 0.5


def _liver_region_on_pet(
    study: Path, pet_affine: np.ndarray, pet_shape: tuple[int, ...]
) -> np.ndarray:
    """PET voxels whose centre lies >= 15 mm inside the liver and >= 20 mm from lesions."""
    liver = read_nifti(study / "truth" / "liver.nii.gz")
    lesions = read_nifti(study / "truth" / "lesions.nii.gz").array
    inner = ndimage.distance_transform_edt(liver.array > 0, sampling=liver.spacing) > 15.0
    inner &= ndimage.distance_transform_edt(lesions == 0, sampling=liver.spacing) > 20.0
    k, j, i = np.indices(pet_shape).reshape(3, -1)
    lps = pet_affine @ np.vstack([k, j, i, np.ones_like(k)])
    idx = np.rint(np.linalg.inv(liver.affine) @ lps)[:3].astype(int)
    ok = np.all((idx >= 0) & (idx < np.array(liver.array.shape)[:, None]), axis=0)
    sel = np.zeros(k.size, dtype=bool)
    sel[ok] = inner[idx[0, ok], idx[1, ok], idx[2, ok]]
    return sel.reshape(pet_shape)


def test_pet_suv_reads_back_to_the_truth(cohort: Path) -> None:
    for study in _studies(cohort):
        truth = _truth(study)
        (series,) = scan(study / "PET").series
        assert series.frame_of_reference_uid == truth["frame_of_reference_uid"]
        vol = load_suv(series)
        factor = suv_factor(series)
        assert list(vol.array.shape) == truth["pet"]["shape"]
        assert vol.spacing == pytest.approx(truth["pet"]["spacing_mm"], abs=1e-9)
        assert vol.origin == pytest.approx(truth["pet"]["origin_mm"], abs=1e-9)
        # the SUV factor is the inverse of the generator's Bq/mL per SUV
        assert factor.factor == pytest.approx(1.0 / truth["pet"]["bqml_per_suv"], rel=1e-6)
        region = _liver_region_on_pet(study, vol.affine, vol.array.shape)
        assert region.sum() > 100
        measured = float(vol.array[region].mean())
        assert measured == pytest.approx(truth["reference"]["liver_suv"], rel=0.01)


def test_truth_json_agrees_with_the_label_maps(cohort: Path) -> None:
    for study in _studies(cohort):
        truth = _truth(study)
        liver = read_nifti(study / "truth" / "liver.nii.gz")
        spleen = read_nifti(study / "truth" / "spleen.nii.gz").array
        lesions = read_nifti(study / "truth" / "lesions.nii.gz").array
        voxel_ml = float(np.prod(liver.spacing)) / 1000.0
        assert int(liver.array.sum()) == truth["liver_voxels"]
        assert int(spleen.sum()) == truth["spleen_voxels"]
        assert not np.any((liver.array > 0) & (spleen > 0))
        # the voxel-count volume of an organ is close to the continuous one (3.2 mm pixels)
        assert truth["liver_voxels"] * voxel_ml == pytest.approx(truth["liver_volume_ml"], rel=0.02)
        assert truth["spleen_voxels"] * voxel_ml == pytest.approx(
            truth["spleen_volume_ml"], rel=0.05
        )
        ids, counts = np.unique(lesions[lesions > 0], return_counts=True)
        by_id = {r["id"]: r for r in truth["lesions"]}
        assert {int(i): int(c) for i, c in zip(ids, counts, strict=True)} == {
            r["id"]: r["ct_voxels"] for r in truth["lesions"] if r["ct_voxels"] > 0
        }
        for lid, count in zip(ids, counts, strict=True):
            r = by_id[int(lid)]
            if r["organ"] == "liver":  # liver lesions lie inside the liver mask
                assert np.all(liver.array[lesions == lid] > 0)
            if count > 200:  # large lesions: voxel centroid near the true centroid
                centre = liver.index_to_lps(np.argwhere(lesions == lid)).mean(axis=0)
                assert np.linalg.norm(centre - np.array(r["centroid_mm"])) < 1.0
                assert count * voxel_ml == pytest.approx(r["volume_ml"], rel=0.1)
            assert r["sa_mm"] <= r["ld_mm"]
            assert r["nodal"] == (r["organ"] == "lymph_node")
        tumour = sum(r["volume_ml"] for r in truth["lesions"] if r["organ"] == "liver")
        assert truth["liver_tumour_volume_ml"] == pytest.approx(tumour, abs=1e-5)
        assert truth["liver_tumour_burden_pct"] == pytest.approx(
            100 * tumour / truth["liver_volume_ml"], abs=1e-5
        )


def test_dicom_identity_dates_and_radiopharmaceutical(cohort: Path) -> None:
    clinical = list(csv.DictReader((cohort / "clinical.csv").read_text().splitlines()))
    assert tuple(clinical[0]) == CLINICAL_COLUMNS
    by_patient = {row["patient_id"]: row for row in clinical}
    for patient in ("P001", "P002"):
        dates = []
        for t, study in enumerate(sorted((cohort / patient).glob("T*"))):
            truth = _truth(study)
            ct = pydicom.dcmread(next((study / "CT").glob("*.dcm")), stop_before_pixels=True)
            pt = pydicom.dcmread(next((study / "PET").glob("*.dcm")), stop_before_pixels=True)
            assert ct.PatientID == pt.PatientID == truth["patient_id"]
            assert ct.StudyInstanceUID == pt.StudyInstanceUID == truth["study_instance_uid"]
            assert ct.StudyDate == truth["study_date"].replace("-", "")
            dates.append(truth["study_date"])
            rp = pt.RadiopharmaceuticalInformationSequence[0]
            assert float(rp.RadionuclideTotalDose) == pytest.approx(
                truth["pet"]["injected_dose_bq"]
            )
            assert float(rp.RadionuclideHalfLife) == truth["pet"]["half_life_s"]
            assert rp.RadionuclideCodeSequence[0].CodeMeaning == "^68^Gallium"
            assert float(pt.PatientWeight) == truth["pet"]["weight_kg"]
            if t == 0:
                row = by_patient[truth["patient_id"]]
                assert float(row["weight_kg"]) == float(pt.PatientWeight)
                assert row["baseline_scan_date"] == truth["study_date"]
        assert dates == sorted(dates) and len(set(dates)) == len(dates)


def test_scanner_change_and_course(cohort: Path) -> None:
    t0, t1 = _truth(cohort / "P002" / "T0"), _truth(cohort / "P002" / "T1")
    assert (t0["ct"]["scanner"], t1["ct"]["scanner"]) == ("A", "B")
    assert t0["ct"]["spacing_mm"] != t1["ct"]["spacing_mm"]
    assert t0["frame_of_reference_uid"] != t1["frame_of_reference_uid"]
    patient = json.loads((cohort / "P002" / "truth_patient.json").read_text())
    assert patient["course"] == "new_lesions"
    visits = patient["recist"]["visits"]
    assert visits[1]["overall_response"] == "PD" and visits[1]["new_lesion_ids"]
    assert t1["recist"]["overall_response"] == "PD"
    assert (t0["overall_response"], t1["overall_response"]) == (None, "PD")
    # lesion ids are stable across time points; new ones appear only later
    assert {r["id"] for r in t0["lesions"]} < {r["id"] for r in t1["lesions"]}
    first = json.loads((cohort / "P001" / "truth_patient.json").read_text())
    assert first["course"] == "response"
    assert first["recist"]["visits"][1]["overall_response"] == "PR"
    assert _truth(cohort / "P001" / "T1")["absent_lesion_ids"]  # a lesion has vanished


def test_every_krenning_grade_and_lesion_kind_occurs(cohort: Path) -> None:
    lesions = [r for s in _studies(cohort) for r in _truth(s)["lesions"]]
    assert {r["krenning_grade"] for r in lesions} == {0, 1, 2, 3, 4}
    assert {r["organ"] for r in lesions} == {"liver", "lymph_node", "bone", "other"}
    assert {"liver_hypo", "node", "bone_sclerotic", "bone_lytic", "primary"} <= {
        r["kind"] for r in lesions
    }
    lds = [r["ld_mm"] for r in lesions if r["organ"] == "liver"]
    assert min(lds) < 10 and max(lds) > 40
    assert any(r["touching"] for r in lesions) and any(r["subcapsular"] for r in lesions)
    assert all(2.0 <= r["suv_max"] <= 60.0 for r in lesions)  # the 2-60 SUV


def test_existing_output_is_refused_and_failure_leaves_nothing(
    cohort: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(InputPathError, match="--overwrite"):
        generate_cohort(cohort, SETTINGS)
    out = tmp_path / "broken"

    def fail(*args: object, **kwargs: object) -> None:
        raise RuntimeError("disk full")

    monkeypatch.setattr(_cohort, "write_pet", fail)
    with pytest.raises(RuntimeError, match="disk full"):
        generate_cohort(out, PhantomSettings(patients=1, timepoints=1))
    assert list(tmp_path.iterdir()) == []


def test_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "c"
    args = ["phantom", "-o", str(out), "--patients", "1", "--timepoints", "1", "--seed", "5"]
    assert cli_main(args) == 0
    assert "1 studies of 1 patients" in capsys.readouterr().out
    assert (out / "P001" / "T0" / "truth.json").exists()
    assert cli_main(args) == 3  # exists
    assert "--overwrite" in capsys.readouterr().err
    assert cli_main([*args, "--overwrite", "-q"]) == 0
    assert cli_main(["phantom", "-o", str(tmp_path / "d"), "--patients", "0"]) == 2
    assert "patients must be >= 1" in capsys.readouterr().err
    assert cli_main(["phantom", "-o", str(tmp_path / "d"), "--size", "huge"]) == 2

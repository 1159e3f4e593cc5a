"""``netvolume convert --suv`` and ``netvolume scan`` on PET series (the CLI contract).

Uses two IBSI/OncoRay DROs (``../shared/data/ibsi_suv_dro``): ``DRO_0_0`` (BQML, START)
and a copy of it edited in ``tmp_path`` to lack PatientWeight.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pydicom
import pytest
from _external import external_path

from netvolume.io import pet
from netvolume.io.dicom import scan
from netvolume.io.nifti import read_nifti

pytestmark = pytest.mark.conformance


def _dro(name: str = "DRO_0_0") -> Path:
    return external_path("ibsi_suv_dro", "DRO", name, "PT")


def _without_weight(tmp_path: Path) -> Path:
    folder = tmp_path / "noweight"
    shutil.copytree(_dro(), folder)
    for f in folder.iterdir():
        ds = pydicom.dcmread(f)
        del ds.PatientWeight
        ds.save_as(f)
    return folder


@pytest.mark.parametrize("norm", ["bw", "lbm-james", "lbm-janma", "bsa", "ibw"])
def test_convert_suv_writes_volume_and_audit_sidecar(run_cli, tmp_path: Path, norm: str) -> None:
    out = tmp_path / "suv.nii.gz"
    res = run_cli(["convert", _dro(), "-o", out, "--suv", norm, "--sex", "M"])
    assert res.code == 0, res.err
    assert f"SUV{norm}" in res.out
    written = read_nifti(out)
    expected = pet.load_suv(scan(_dro()).select(), norm, sex="M")
    np.testing.assert_allclose(written.array, expected.array, rtol=1e-6)
    np.testing.assert_allclose(written.affine, expected.affine, atol=1e-4)
    sidecar = json.loads((tmp_path / "suv.json").read_text())
    record = sidecar["provenance"]["settings"]["suv"]
    assert record["normalisation"] == norm
    assert record["factor"] == pytest.approx(expected.provenance.settings["suv"]["factor"])
    if norm in ("lbm-james", "lbm-janma", "ibw"):  # sex-specific: the override is used
        sex = next(i for i in record["inputs"] if i["name"] == "PatientSex")
        assert (sex["value"], sex["source"]) == ("M", "override")


def test_convert_suv_weight_override_is_recorded(run_cli, tmp_path: Path) -> None:
    base = tmp_path / "a.nii.gz"
    heavy = tmp_path / "b.nii.gz"
    assert run_cli(["convert", _dro(), "-o", base, "--suv", "bw"]).code == 0
    assert run_cli(["convert", _dro(), "-o", heavy, "--suv", "bw", "--weight-kg", "140"]).code == 0
    np.testing.assert_allclose(read_nifti(heavy).array, 2 * read_nifti(base).array, rtol=1e-6)
    record = json.loads((tmp_path / "b.json").read_text())["provenance"]["settings"]["suv"]
    weight = next(i for i in record["inputs"] if i["name"] == "PatientWeight")
    assert (weight["value"], weight["source"]) == (140.0, "override")
    assert "70" in weight["note"]  # the header value it replaced


def test_convert_suv_failure_leaves_nothing(run_cli, tmp_path: Path) -> None:
    out = tmp_path / "out" / "suv.nii.gz"
    res = run_cli(["convert", _without_weight(tmp_path), "-o", out, "--suv", "bw"])
    assert res.code == 1
    assert "PatientWeight (0010,1030)" in res.err
    assert "--weight-kg" in res.err
    out_dir = tmp_path / "out"
    assert not out_dir.exists() or not any(out_dir.iterdir())  # no NIfTI, sidecar or temp


def test_convert_suv_refuses_ct(run_cli, tmp_path: Path) -> None:
    sample = Path(__file__).resolve().parents[1] / "data" / "sample_dicom" / "P001" / "T0"
    series = next(s for s in scan(sample).series if s.modality == "CT")
    res = run_cli(
        ["convert", sample, "--series-uid", series.uid, "-o", tmp_path / "x.nii.gz", "--suv", "bw"]
    )
    assert res.code == 1
    assert "Modality" in res.err


def test_convert_bad_injection_datetime_is_a_usage_error(run_cli, tmp_path: Path) -> None:
    res = run_cli(
        ["convert", _dro(), "-o", tmp_path / "x.nii.gz", "--suv", "bw", "--injection-datetime", "x"]
    )
    assert res.code == 2
    assert "injection_datetime" in res.err
    assert not (tmp_path / "x.nii.gz").exists()


def test_convert_unknown_normalisation_is_a_usage_error(run_cli, tmp_path: Path) -> None:
    res = run_cli(["convert", _dro(), "-o", tmp_path / "x.nii.gz", "--suv", "lbm"])
    assert res.code == 2


def test_scan_json_shows_suv_inputs(run_cli) -> None:
    res = run_cli(["scan", "--json", _dro()])
    assert res.code == 0
    (entry,) = json.loads(res.out)["series"]
    info = entry["suv"]
    assert info["error"] is None
    assert info["method"] == "activity"
    assert info["suv_bw_factor"] == pytest.approx(70e3 / (368.08e6 * 2 ** (-3600 / 6586.2)))
    header = info["header"]
    assert header["Units"] == "BQML"
    assert header["RadionuclideTotalDose"] == 368.08e6
    assert header["radionuclide"] == "F-18"
    tags = {i["name"]: i["tag"] for i in info["inputs"]}
    assert tags["PatientWeight"] == "(0010,1030)"
    assert tags["RadionuclideHalfLife"] == "(0018,1075)"


def test_scan_reports_why_suv_is_not_computable(run_cli, tmp_path: Path) -> None:
    folder = _without_weight(tmp_path)
    res = run_cli(["scan", "--json", folder])
    assert res.code == 0  # scanning never fails on quantification
    (entry,) = json.loads(res.out)["series"]
    assert entry["suv"]["suv_bw_factor"] is None
    assert entry["suv"]["error_type"] == "MissingQuantityError"
    assert "PatientWeight" in entry["suv"]["error"]
    text = run_cli(["scan", folder])
    assert "SUV not computable" in text.out


def test_scan_text_shows_suv_factor(run_cli) -> None:
    res = run_cli(["scan", _dro("DRO_3_4")])
    assert res.code == 0
    assert "SUVbw = value x" in res.out
    assert "per slice" in res.out  # DecayCorrection NONE: one factor per frame


def test_ingest_pet_sidecar_carries_suv_summary(tmp_path: Path) -> None:
    import importlib.util

    path = Path(__file__).resolve().parents[1] / "pipelines" / "ingest.py"
    spec = importlib.util.spec_from_file_location("ingest_pet_test", path)
    assert spec is not None and spec.loader is not None
    ingest = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(ingest)
    out = tmp_path / "out"
    assert ingest.main([str(_dro("DRO_2_4")), "-o", str(out)]) == 0
    (row,) = json.loads((out / "ingest_report.json").read_text())["stacks"]
    assert row["suv_bw_factor"] == pytest.approx(0.0005)  # Philips SUVScaleFactor
    sidecar = json.loads((out / row["output"].replace(".nii.gz", ".json")).read_text())
    assert sidecar["units"] == "CNTS"  # the NIfTI keeps the stored units
    assert sidecar["suv"]["method"] == "philips-suv-scale"

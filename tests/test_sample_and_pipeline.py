"""The bundled sample study and the batch ingest pipeline (the README's main job)."""

from __future__ import annotations

import importlib.util
import json
import shutil
import sys
from pathlib import Path
from types import ModuleType

import nibabel as nib
import numpy as np
import pytest

from netvolume import load, load_folder, scan
from netvolume.io.dicom_write import write_series

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO / "data" / "sample_dicom"


def _module(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, REPO / "pipelines" / f"{name}.py")
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod
    spec.loader.exec_module(mod)
    return mod


make_sample = _module("make_sample_dicom")
ingest = _module("ingest")


def test_bundled_sample_is_what_the_generator_writes() -> None:
    cat = scan(SAMPLE)
    assert [s.description for s in cat.series] == ["TOPOGRAM", "ABDOMEN PORTAL VENOUS 8mm"]
    assert cat.series[0].is_localizer
    assert not cat.objects
    # the folder's README is catalogued as an unused file, not dropped silently
    assert [(u.path.name, u.reason) for u in cat.unused] == [("README.md", "not_dicom")]
    ct = load(cat.series[1])
    # the committed files hold exactly the generator's HU values on the declared grid
    np.testing.assert_array_equal(ct.array, make_sample.sample_ct_hu().astype(np.int16))
    assert ct.spacing == pytest.approx(make_sample.SPACING_MM)
    assert ct.origin == pytest.approx(make_sample.ORIGIN_LPS)
    assert ct.units == "HU" and ct.modality == "CT"
    assert ct.frame_of_reference_uid == cat.series[0].frame_of_reference_uid


def test_sample_lesion_is_where_the_generator_put_it() -> None:
    ct = load_folder(SAMPLE, series_uid=scan(SAMPLE).series[1].uid)
    idx = np.argwhere(ct.array == ct.array)  # every voxel index
    centres = ct.index_to_lps(idx)
    lesion = np.linalg.norm(centres - np.array(make_sample.LESION_CENTRE_LPS), axis=1) <= (
        make_sample.LESION_RADIUS_MM - 8.0
    )  # well inside the sphere: no partial volume
    values = ct.array.reshape(-1)[lesion]
    assert abs(float(values.mean()) - 60.0) < 3.0  # 60 HU lesion, noise sigma 12 HU


def test_generator_is_deterministic(tmp_path: Path) -> None:
    make_sample.write_sample(tmp_path)
    a = sorted(p.read_bytes() for p in tmp_path.glob("*.dcm"))
    b = sorted(p.read_bytes() for p in SAMPLE.glob("*.dcm"))
    assert a == b


def test_ingest_sample(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out"
    assert ingest.main([str(SAMPLE), "-o", str(out)]) == 0
    report = json.loads((out / "ingest_report.json").read_text())
    status = {r["description"]: r["status"] for r in report["stacks"]}
    assert status == {"TOPOGRAM": "skipped", "ABDOMEN PORTAL VENOUS 8mm": "converted"}
    row = next(r for r in report["stacks"] if r["status"] == "converted")
    img = nib.load(out / row["output"])
    data = np.asarray(img.dataobj)
    assert data.shape == (64, 64, 24)  # NIfTI order (i, j, k)
    np.testing.assert_array_equal(
        data.transpose(2, 1, 0), make_sample.sample_ct_hu().astype(np.int16)
    )
    # RAS affine: voxel (0,0,0) at the DICOM origin with x and y negated
    x, y, z = make_sample.ORIGIN_LPS
    np.testing.assert_allclose(img.affine[:3, 3], [-x, -y, z])
    sidecar = json.loads((out / row["output"].replace(".nii.gz", ".json")).read_text())
    prov = sidecar["provenance"]
    assert prov["series_instance_uid"] == row["uid"]
    assert len(prov["sop_instance_uids"]) == 24 and len(prov["file_list_sha256"]) == 64
    assert prov["netvolume_version"]
    assert json.loads((out / "catalogue.json").read_text())["num_files"] == 26  # 25 DICOM + README
    assert not list(out.glob("*.tmp*"))  # nothing half-written left behind
    assert "1 converted, 1 skipped" in capsys.readouterr().out


def test_ingest_goes_on_after_a_failing_series(tmp_path: Path) -> None:
    export = tmp_path / "export"
    shutil.copytree(SAMPLE, export)
    broken = np.zeros((4, 8, 8), dtype=np.int16)
    files = write_series(
        export / "broken",
        broken,
        spacing_mm=(5.0, 1.0, 1.0),
        seed=7,
        series_number=9,
        series_description="BROKEN",
    )
    ordered = sorted(
        files, key=lambda p: float(__import__("pydicom").dcmread(p).ImagePositionPatient[2])
    )
    ordered[1].unlink()  # a gap: slice 2 of 4 missing
    out = tmp_path / "out"
    assert ingest.main([str(export), "-o", str(out)]) == 1
    report = json.loads((out / "ingest_report.json").read_text())
    by_desc = {r["description"]: r for r in report["stacks"]}
    assert by_desc["BROKEN"]["status"] == "failed"
    assert by_desc["BROKEN"]["error"] == "MissingSliceError"
    assert by_desc["ABDOMEN PORTAL VENOUS 8mm"]["status"] == "converted"


def test_ingest_missing_folder(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert ingest.main([str(tmp_path / "nope"), "-o", str(tmp_path / "out")]) == 3
    assert "does not exist" in capsys.readouterr().err

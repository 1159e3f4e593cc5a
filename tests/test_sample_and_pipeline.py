"""The bundled sample cohort and the batch ingest pipeline (the README's main job)."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import shutil
import sys
from pathlib import Path
from types import ModuleType

import nibabel as nib
import numpy as np
import pytest

from netvolume.io.dicom_write import write_series
from netvolume.phantom import PhantomSettings, generate_cohort

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO / "data" / "sample_dicom"


def _module(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, REPO / "pipelines" / f"{name}.py")
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod
    spec.loader.exec_module(mod)
    return mod


ingest = _module("ingest")


def _manifest(root: Path) -> dict[str, str]:
    lines = (root / "MANIFEST.sha256").read_text().splitlines()
    return {line[66:]: line[:64] for line in lines}


def test_bundled_sample_files_match_their_manifest() -> None:
    manifest = _manifest(SAMPLE)
    files = {
        p.relative_to(SAMPLE).as_posix()
        for p in SAMPLE.rglob("*")
        if p.is_file() and p.name not in ("MANIFEST.sha256", "cohort.json")
    }
    assert set(manifest) == files
    for rel, digest in manifest.items():
        assert hashlib.sha256((SAMPLE / rel).read_bytes()).hexdigest() == digest, rel


def test_bundled_sample_is_what_the_documented_command_writes(tmp_path: Path) -> None:
    """``netvolume phantom -o data/sample_dicom`` (defaults) regenerates it bit for bit."""
    cohort = json.loads((SAMPLE / "cohort.json").read_text())
    assert cohort["settings"] == {**PhantomSettings().to_dict()}
    out = tmp_path / "sample"
    generate_cohort(out, PhantomSettings())
    fresh, committed = _manifest(out), _manifest(SAMPLE)
    changed = sorted(k for k in committed if fresh.get(k) != committed[k])
    assert not changed, (
        f"{len(changed)} files differ from a fresh generation (first: {changed[:3]}); if the "
        "phantom model changed on purpose, bump PHANTOM_MODEL_VERSION and regenerate with "
        "`netvolume phantom -o data/sample_dicom --overwrite`"
    )


def test_ingest_sample(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out"
    assert ingest.main([str(SAMPLE), "-o", str(out)]) == 0
    report = json.loads((out / "ingest_report.json").read_text())
    assert len(report["stacks"]) == 24  # 12 studies x (CT + PET)
    assert {r["status"] for r in report["stacks"]} == {"converted"}
    truth = json.loads((SAMPLE / "P002" / "T1" / "truth.json").read_text())
    row = next(r for r in report["stacks"] if r["uid"] == truth["ct"]["series_instance_uid"])
    img = nib.load(out / row["output"])
    data = np.asarray(img.dataobj)
    assert data.shape == tuple(reversed(truth["ct"]["shape"]))  # NIfTI order (i, j, k)
    # RAS affine: voxel (0,0,0) at the DICOM origin with x and y negated
    x, y, z = truth["ct"]["origin_mm"]
    np.testing.assert_allclose(img.affine[:3, 3], [-x, -y, z], atol=1e-6)
    sidecar = json.loads((out / row["output"].replace(".nii.gz", ".json")).read_text())
    prov = sidecar["provenance"]
    assert prov["series_instance_uid"] == row["uid"]
    assert len(prov["sop_instance_uids"]) == truth["ct"]["shape"][0]
    assert len(prov["file_list_sha256"]) == 64 and prov["netvolume_version"]
    pet = next(r for r in report["stacks"] if r["uid"] == truth["pet"]["series_instance_uid"])
    pet_sidecar = json.loads((out / pet["output"].replace(".nii.gz", ".json")).read_text())
    suv = pet_sidecar["suv"]
    assert suv["suv_bw_factor"] == pytest.approx(1 / truth["pet"]["bqml_per_suv"], rel=1e-6)
    assert suv["warnings"] == [] and suv["error"] is None
    assert not list(out.glob("*.tmp*"))  # nothing half-written left behind
    assert "24 converted" in capsys.readouterr().out


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
    assert {r["status"] for d, r in by_desc.items() if d != "BROKEN"} == {"converted"}


def test_ingest_missing_folder(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert ingest.main([str(tmp_path / "nope"), "-o", str(tmp_path / "out")]) == 3
    assert "does not exist" in capsys.readouterr().err

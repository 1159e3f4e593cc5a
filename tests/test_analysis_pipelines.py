"""The seed protocols' pipelines end to end on the bundled sample cohort, and the
``netvolume eligibility`` / ``protocols`` / ``analyse`` commands."""

from __future__ import annotations

import csv
import datetime
import json
import shutil
import subprocess
import sys
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest

from netvolume.analysis.eligibility import CRITERIA_COLUMNS, SUMMARY_COLUMNS
from netvolume.analysis.plans import PLANS
from netvolume.trials import load_protocol, protocol_names

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO / "data" / "sample_dicom"
CLINICAL = SAMPLE / "clinical.csv"
FOLDERS = ("P001", "P002", "P003", "P004")


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


@pytest.fixture(scope="module")
def ibi_out(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The ibi_response pipeline run in full (measure, assess, eligibility, analysis)."""
    from netvolume.cli import main

    out = tmp_path_factory.mktemp("ibi") / "out"
    code = main(
        [
            "analyse",
            "--pipeline",
            "ibi_response",
            str(SAMPLE),
            "--clinical",
            str(CLINICAL),
            "-o",
            str(out),
            "-q",
        ]
    )
    assert code == 0
    return out


def test_protocol_names_are_the_pipelines() -> None:
    assert (
        set(protocol_names())
        == set(PLANS)
        == {
            "ibi_response",
            "lesion_based_prrt",
            "retreatment",
            "volumetric_followup",
            "personalised_prrt",
        }
    )
    for name in PLANS:
        assert (REPO / "pipelines" / f"{name}.py").is_file()


def test_ibi_pipeline_outputs(ibi_out: Path) -> None:
    for name in (
        "criteria.csv",
        "summary.csv",
        "eligibility.json",
        "analysis.json",
        "patients.csv",
    ):
        assert (ibi_out / name).is_file(), name
    assert sorted(p.name for p in (ibi_out / "imaging").iterdir()) == list(FOLDERS)
    assert not list(ibi_out.parent.glob(".*tmp*")), "a temporary folder was left behind"

    criteria = _rows(ibi_out / "criteria.csv")
    assert tuple(criteria[0]) == CRITERIA_COLUMNS
    protocol = load_protocol("ibi_response")
    assert len(criteria) == 4 * len(protocol.criteria)
    assert {r["status"] for r in criteria} <= {"met", "not_met", "unknown", "needs_review"}
    for r in criteria:
        if r["status"] == "unknown":
            assert r["missing"], r
        # provenance cites the final folder, never the temporary one it was built in
        assert ".tmp-" not in r["provenance"]
    measurable = [r for r in criteria if r["criterion"] == "measurable_disease"]
    assert [r["status"] for r in measurable] == ["met"] * 4
    for r in measurable:
        assert "CT series 2.25." in r["evidence"] and "lesion L" in r["provenance"]

    summary = _rows(ibi_out / "summary.csv")
    assert tuple(summary[0]) == SUMMARY_COLUMNS
    assert [r["patient_id"] for r in summary] == [f"NV2026-{f}" for f in FOLDERS]
    # the sample's clinical table lacks consent, insurance, prior PRRT...: undetermined
    assert {r["verdict"] for r in summary} == {"undetermined"}

    doc = json.loads((ibi_out / "analysis.json").read_text())
    assert doc["analysed"] == [f"NV2026-{f}" for f in FOLDERS]
    assert len(doc["provenance"]["clinical"]["sha256"]) == 64
    for pid, info in doc["provenance"]["imaging"].items():
        assert info["folder"] == pid.split("-")[1]
        assert len(info["assessment_sha256"]) == 64
    for name, stat in doc["statistics"].items():
        if isinstance(stat, dict) and "status" in stat:
            assert stat["status"] in ("computed", "not_computed"), name
            if stat["status"] == "not_computed":
                assert stat["reason"], name


def test_ibi_pipeline_pfs_and_ibi(ibi_out: Path) -> None:
    """PFS, IBI and the statistics recomputed independently from the written tables."""
    clinical = {r["patient_id"]: r for r in _rows(CLINICAL)}
    patients = {r["patient_id"]: r for r in _rows(ibi_out / "patients.csv")}
    for pid, row in patients.items():
        folder = pid.split("-")[1]
        assessment = json.loads((ibi_out / "imaging" / folder / "assessment.json").read_text())
        course = assessment["patients"][folder]
        start = datetime.date.fromisoformat(clinical[pid]["prrt_start_date"])
        assert row["bor"] == course["best_overall_response"]
        if course["pd_date"]:
            pd_date = datetime.date.fromisoformat(course["pd_date"])
            assert int(row["pfs_days"]) == (pd_date - start).days
            assert row["pfs_event"] == "1"
        crp, alb = float(clinical[pid]["crp_mg_l"]), float(clinical[pid]["albumin_g_l"])
        assert int(row["ibi"]) == (crp > 10) + (alb < 35)
        assert int(row["mgps"]) == (0 if crp <= 10 else 1 if alb >= 35 else 2)

    lifelines = pytest.importorskip("lifelines")
    doc = json.loads((ibi_out / "analysis.json").read_text())
    km = doc["statistics"]["pfs_km"]["result"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit = lifelines.KaplanMeierFitter().fit(
            [float(r["pfs_days"]) for r in patients.values()],
            [int(r["pfs_event"]) for r in patients.values()],
        )
    for t, s in zip(km["time"], km["survival"], strict=True):
        assert s == pytest.approx(float(fit.survival_function_at_times(t).iloc[0]), abs=1e-12)

    acc = doc["statistics"]["ibi_positive_predicts_non_response"]["result"]
    tp = sum(
        1 for r in patients.values() if r["ibi_positive"] == "true" and r["non_response"] == "true"
    )
    fn = sum(
        1 for r in patients.values() if r["ibi_positive"] == "false" and r["non_response"] == "true"
    )
    assert (acc["tp"], acc["fn"]) == (tp, fn)


@pytest.mark.parametrize("name", sorted(set(PLANS) - {"ibi_response"}))
def test_other_pipelines_on_the_same_imaging(
    name: str, ibi_out: Path, tmp_path: Path, run_cli: Callable[[Sequence[str]], Any]
) -> None:
    """Every pipeline runs end to end on the sample (imaging reused, not measured again);
    the imaging is matched to the clinical table by an ``imaging_id`` column."""
    table = tmp_path / "clinical.csv"
    rows = _rows(CLINICAL)
    with table.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=[*rows[0], "imaging_id"], lineterminator="\n")
        writer.writeheader()
        for r in rows:
            writer.writerow({**r, "imaging_id": r["patient_id"].split("-")[1]})
    out = tmp_path / "out"
    result = run_cli(
        [
            "analyse",
            "--pipeline",
            name,
            "--imaging",
            ibi_out / "imaging",
            "--clinical",
            table,
            "-o",
            out,
        ]
    )
    assert result.code == 0, result.err
    doc = json.loads((out / "analysis.json").read_text())
    assert doc["pipeline"] == name
    for table_name, file in doc["tables"].items():
        assert (out / file).is_file(), table_name
    criteria = _rows(out / "criteria.csv")
    assert len(criteria) == 4 * len(load_protocol(name).criteria)
    # imaging criteria were evaluated from the imaging, not left unknown for lack of it
    assert not [r for r in criteria if r["missing"] == "imaging"]
    if name == "volumetric_followup":
        patients = _rows(out / "patients.csv")
        for r in patients:
            assert float(r["baseline_liver_tumour_volume_ml"]) > 0
            assert r["early_volume_change_pct"] != ""
    if name == "lesion_based_prrt":
        lesions = _rows(out / "lesions.csv")
        assert lesions and all(float(r["baseline_ld_mm"]) >= 20 for r in lesions)
        assert all(int(r["krenning_grade"]) >= 3 for r in lesions)


def test_eligibility_cli_with_imaging(
    ibi_out: Path, tmp_path: Path, run_cli: Callable[[Sequence[str]], Any]
) -> None:
    out = tmp_path / "elig"
    # imaging keys P001... match no clinical patient_id: warned, imaging criteria unknown
    result = run_cli(
        [
            "eligibility",
            "--protocol",
            "personalised_prrt",
            "--clinical",
            CLINICAL,
            "--imaging",
            ibi_out / "imaging",
            "-o",
            out,
        ]
    )
    assert result.code == 0
    assert "matched no clinical patient_id" in result.err
    assert "NV2026" not in result.err
    rows = _rows(out / "criteria.csv")
    assert {r["status"] for r in rows if r["criterion"] == "measurable_disease"} == {"unknown"}
    again = run_cli(
        ["eligibility", "--protocol", "personalised_prrt", "--clinical", CLINICAL, "-o", out]
    )
    assert again.code == 3 and "--overwrite" in again.err
    assert (
        run_cli(
            [
                "eligibility",
                "--protocol",
                "personalised_prrt",
                "--clinical",
                CLINICAL,
                "-o",
                out,
                "--overwrite",
                "-q",
            ]
        ).code
        == 0
    )


def test_cli_errors(tmp_path: Path, run_cli: Callable[[Sequence[str]], Any]) -> None:
    bad = run_cli(
        ["eligibility", "--protocol", "nope", "--clinical", CLINICAL, "-o", tmp_path / "x"]
    )
    assert bad.code == 1 and "ibi_response" in bad.err
    both = run_cli(
        ["analyse", "--pipeline", "retreatment", "--clinical", CLINICAL, "-o", tmp_path / "y"]
    )
    assert both.code == 2
    listing = run_cli(["protocols"])
    assert listing.code == 0
    for name in PLANS:
        assert name in listing.out
    one = run_cli(["protocols", "lesion_based_prrt"])
    assert "source:" in one.out and "uptake_lesion" in one.out
    schema = run_cli(["protocols", "--schema"])
    assert "hb_mmol_l" in schema.out


def test_failing_patient_does_not_stop_the_cohort(
    tmp_path: Path, run_cli: Callable[[Sequence[str]], Any]
) -> None:
    cohort = tmp_path / "cohort"
    shutil.copytree(SAMPLE / "P002", cohort / "P002")
    broken = cohort / "P003" / "T0"
    broken.mkdir(parents=True)
    (broken / "junk.dcm").write_bytes(b"not a dicom file")
    table = tmp_path / "clinical.csv"
    rows = [r for r in _rows(CLINICAL) if r["patient_id"].endswith(("P002", "P003"))]
    with table.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=[*rows[0], "imaging_id"], lineterminator="\n")
        writer.writeheader()
        for r in rows:
            writer.writerow({**r, "imaging_id": r["patient_id"].split("-")[1]})
    out = tmp_path / "out"
    result = run_cli(
        ["analyse", "--pipeline", "volumetric_followup", cohort, "--clinical", table, "-o", out]
    )
    assert result.code == 1
    doc = json.loads((out / "analysis.json").read_text())
    assert list(doc["failures"]) == ["NV2026-P003"]
    assert "P003" in result.err and "FAILED" in result.err
    assert doc["analysed"] == ["NV2026-P002", "NV2026-P003"]
    assert (out / "imaging" / "P002" / "assessment.json").is_file()
    # the failed patient's assess output says why (its studies' failures)
    failed = json.loads((out / "imaging" / "P003" / "assessment.json").read_text())
    assert failed["failures"] and not failed["patients"]


def test_pipeline_script_runs() -> None:
    proc = subprocess.run(
        [sys.executable, str(REPO / "pipelines" / "retreatment.py"), "--help"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("usage: netvolume analyse")
    assert "--clinical" in proc.stdout


def test_altered_lesion_table_is_an_error(ibi_out: Path, tmp_path: Path) -> None:
    """A non-finite number in an assess output is reported with its file, not read as
    'not available'."""
    from netvolume.errors import InputPathError
    from netvolume.trials import read_imaging

    folder = tmp_path / "P002"
    shutil.copytree(ibi_out / "imaging" / "P002", folder)
    assert len(read_imaging(folder)["P002"].scans) == 3
    table = folder / "studies" / "T0" / "lesions.csv"
    rows = _rows(table)
    rows[0]["ld_mm"] = "nan"
    with table.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]), lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    with pytest.raises(InputPathError, match=r"lesions\.csv line 2.*non-finite"):
        read_imaging(folder)

"""``netvolume assess --measurements TABLE.csv -o OUT``: the table reader, the outputs'
contract (file and column names, response words), failures of one patient not stopping
the others, and errors that name the line, column and value."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from netvolume.assess import read_measurement_table
from netvolume.cli import main
from netvolume.errors import AssessmentInputError

HEADER = "patient_id,date,lesion_id,organ,nodal,ld_mm,sa_mm,is_new,nontarget_status,target\n"

# P1: the guideline's continuing PR (165 -> 63 -> 65), a non-target lung lesion, and a node
# P2: PD by a new lesion at the second follow-up
# P3: a target missing at a follow-up (NE), then an impossible row (SA > LD) -> failure
TABLE = HEADER + (
    "P1,2024-01-01,L1,liver,false,100,60,false,,\n"
    "P1,2024-01-01,L2,lung,false,65,40,false,,\n"
    "P1,2024-01-01,N1,lymph_node,true,14,12,false,,\n"
    "P1,2024-03-01,L1,liver,false,40,25,false,,\n"
    "P1,2024-03-01,L2,lung,false,23,15,false,,\n"
    "P1,2024-03-01,N1,lymph_node,true,12,11,false,present,\n"
    "P1,2024-05-01,L1,liver,false,41,25,false,,\n"
    "P1,2024-05-01,L2,lung,false,24,15,false,,\n"
    "P1,2024-05-01,N1,lymph_node,true,12,11,false,present,\n"
    "P2,2024-01-10,A,liver,false,30,20,false,,\n"
    "P2,2024-03-10,A,liver,false,29,20,false,,\n"
    "P2,2024-05-10,A,liver,false,28,20,false,,\n"
    "P2,2024-05-10,B,bone,false,12,8,true,,\n"
    "P3,2024-01-01,X,liver,false,30,20,false,,\n"
    "P3,2024-01-01,Y,liver,false,25,20,false,,\n"
    "P3,2024-02-20,X,liver,false,20,10,false,,\n"
    "P3,2024-04-20,X,liver,false,20,25,false,,\n"
    "P3,2024-04-20,Y,liver,false,20,10,false,,\n"
)


def _write(tmp_path: Path, text: str, name: str = "m.csv") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as fh:
        return list(csv.DictReader(fh))


def test_cli_writes_the_contract(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    table = _write(tmp_path, TABLE)
    out = tmp_path / "out"
    code = main(["assess", "--measurements", str(table), "-o", str(out)])
    printed = capsys.readouterr()
    assert code == 1  # P3 failed, the others are written
    assert "P3: FAILED" in printed.err and "sa_mm=25" in printed.err
    rows = _rows(out / "timepoints.csv")
    for column in (
        "patient_id",
        "date",
        "sod_mm",
        "pct_from_baseline",
        "pct_from_nadir",
        "target_response",
        "nontarget_response",
        "new_lesions",
        "overall_response",
    ):
        assert column in rows[0], column
    p1 = [r for r in rows if r["patient_id"] == "P1"]
    assert [float(r["sod_mm"]) for r in p1] == [165, 63, 65]
    assert [r["overall_response"] for r in p1] == ["", "PR", "PR"]
    assert [r["nontarget_response"] for r in p1] == ["", "NON_CR_NON_PD", "NON_CR_NON_PD"]
    p2 = [r for r in rows if r["patient_id"] == "P2"]
    assert [r["overall_response"] for r in p2] == ["", "SD", "PD"]
    assert p2[2]["new_lesions"] == "B"
    words = {"CR", "PR", "SD", "PD", "NE", "NON_CR_NON_PD", ""}
    assert {r["overall_response"] for r in rows} <= words
    assert all(r["tgr_diameter_vs_baseline_pct_per_month"] for r in rows if r["role"] != "baseline")

    doc = json.loads((out / "assessment.json").read_text())
    assert set(doc["patients"]) == {"P1", "P2"}
    assert set(doc["failures"]) == {"P3"}
    p1d = doc["patients"]["P1"]
    assert [t["lesion_id"] for t in p1d["targets"]] == ["L1", "L2"]
    assert "largest first" in p1d["targets"][0]["reason"]
    assert p1d["best_overall_response"] == "PR"
    assert p1d["pd_date"] is None
    assert doc["patients"]["P2"]["pd_date"] == "2024-05-10"
    assert doc["patients"]["P2"]["best_overall_response"] == "SD"
    tgr = p1d["tgr"]["diameter"]
    assert tgr["tgr_first"]["tgr_pct_per_month"] < 0
    assert doc["provenance"]["inputs"]["measurements"].endswith(")")
    assert "sha256" in doc["provenance"]["inputs"]["measurements"]
    assert doc["settings"]["recist"]["max_targets"] == 5


def test_user_target_override_and_settings(tmp_path: Path) -> None:
    text = HEADER + (
        "P,2024-01-01,A,liver,false,50,30,false,,false\n"
        "P,2024-01-01,B,liver,false,20,10,false,,true\n"
        "P,2024-02-01,A,liver,false,50,30,false,,\n"
        "P,2024-02-01,B,liver,false,13,10,false,,\n"
    )
    out = tmp_path / "o"
    args = ["assess", "--measurements", str(_write(tmp_path, text)), "-o", str(out)]
    assert main([*args, "--set", "min_sd_days=60"]) == 0
    doc = json.loads((out / "assessment.json").read_text())
    p = doc["patients"]["P"]
    assert [t["lesion_id"] for t in p["targets"]] == ["B"]
    assert p["targets"][0]["reason"] == "chosen by the reader"
    assert p["timepoints"][1]["overall_response"] == "PR"  # 20 -> 13 is -35 %
    assert doc["settings"]["recist"]["min_sd_days"] == 60
    # an existing output needs --overwrite; an unknown setting is a usage error
    assert main(args) == 3
    assert main([*args, "--overwrite", "--set", "nonsense=1"]) == 2
    assert main([*args, "--overwrite", "--set", "confirm=true"]) == 0
    doc = json.loads((out / "assessment.json").read_text())
    assert doc["settings"]["recist"]["confirm"] is True
    assert doc["patients"]["P"]["best_overall_response"] == "NE"  # PR unconfirmed, 31 d


def test_pre_baseline_scan_gives_tgr0(tmp_path: Path) -> None:
    text = (
        "patient_id,date,lesion_id,organ,nodal,ld_mm,sa_mm,is_new,nontarget_status,baseline,"
        "volume_ml\n"
        "P,2023-10-01,A,liver,false,40,30,false,,false,20\n"
        "P,2024-01-01,A,liver,false,44,30,false,,true,26.6\n"
        "P,2024-04-01,A,liver,false,44,30,false,,,26.6\n"
    )
    out = tmp_path / "o"
    assert main(["assess", "--measurements", str(_write(tmp_path, text)), "-o", str(out)]) == 0
    rows = _rows(out / "timepoints.csv")
    assert [r["role"] for r in rows] == ["pre_baseline", "baseline", "follow_up"]
    doc = json.loads((out / "assessment.json").read_text())
    tgr0 = doc["patients"]["P"]["tgr"]["diameter"]["tgr0"]
    months = 92 * 12 / 365.25
    assert tgr0["tgr_pct_per_month"] == pytest.approx(100 * ((44 / 40) ** (3 / months) - 1))
    assert doc["patients"]["P"]["tgr"]["diameter"]["classification"]["tgr0"] == "high"
    vol = doc["patients"]["P"]["tgr"]["volume"]["tgr0"]
    assert vol["tgr_pct_per_month"] == pytest.approx(100 * ((26.6 / 20) ** (1 / months) - 1))
    assert rows[2]["volumetric_response"] == "SD"
    assert rows[2]["overall_response"] == "SD"


@pytest.mark.parametrize(
    ("row", "pattern"),
    [
        ("P,2024-01-01,A,liver,maybe,20,10,false,", "line 2, column nodal='maybe'"),
        ("P,2024-13-01,A,liver,false,20,10,false,", "line 2, column date='2024-13-01'"),
        ("P,2024-01-01,A,liver,false,-3,10,false,", "column ld_mm='-3'"),
        ("P,2024-01-01,A,liver,false,abc,10,false,", "column ld_mm='abc': not a number"),
        ("P,2024-01-01,A,liver,false,20,10,false,gone", "nontarget_status='gone'"),
        (",2024-01-01,A,liver,false,20,10,false,", "column patient_id='': empty"),
    ],
)
def test_bad_rows_name_line_column_value(tmp_path: Path, row: str, pattern: str) -> None:
    path = _write(tmp_path, HEADER.replace(",target", "") + row + "\n")
    with pytest.raises(AssessmentInputError) as info:
        read_measurement_table(path)
    assert pattern in str(info.value)
    assert str(path.name) in str(info.value)


def test_header_errors_and_tstm(tmp_path: Path) -> None:
    with pytest.raises(AssessmentInputError, match=r"missing column.*nontarget_status"):
        read_measurement_table(
            _write(tmp_path, "patient_id,date,lesion_id,organ,nodal,ld_mm,sa_mm,is_new\n")
        )
    with pytest.raises(AssessmentInputError, match=r"unknown column.*colour"):
        read_measurement_table(_write(tmp_path, HEADER.strip() + ",colour\n"))
    courses = read_measurement_table(
        _write(tmp_path, HEADER + "P,2024-01-01,A,liver,false,TSTM,,false,,\n")
    )
    (obs,) = courses["P"].timepoints[0].observations
    assert obs.too_small and obs.ld_mm is None


def test_usage_errors(tmp_path: Path) -> None:
    assert main(["assess", "-o", str(tmp_path / "o")]) == 2
    table = _write(tmp_path, TABLE)
    assert main(["assess", str(tmp_path), "--measurements", str(table), "-o", "x"]) == 2
    assert main(["assess", "--measurements", str(tmp_path / "none.csv"), "-o", "x"]) == 3


def test_patient_dir_with_an_unreadable_study_is_a_failure(tmp_path: Path) -> None:
    """A time point that cannot be measured: the patient is not assessed (a missing
    time point would change the answer), the reason is written, the exit code is 1."""
    patient = tmp_path / "PX"
    (patient / "T0").mkdir(parents=True)
    (patient / "T0" / "notes.txt").write_text("not DICOM")
    out = tmp_path / "out"
    assert main(["assess", str(patient), "-o", str(out), "-q"]) == 1
    doc = json.loads((out / "assessment.json").read_text())
    assert doc["patients"] == {}
    assert set(doc["failures"]) == {"PX", "PX/T0"}
    assert "PX/T0" in doc["failures"]["PX"]
    assert _rows(out / "timepoints.csv") == []
    assert not list(tmp_path.glob(".out.tmp-*"))
    # a PATIENT_DIR without sub-folders is a path error
    assert main(["assess", str(patient / "T0"), "-o", str(tmp_path / "o2")]) == 3

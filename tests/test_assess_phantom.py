"""Acceptance of ``netvolume assess PATIENT_DIR`` on multi-time-point phantom patients.

Each visit is measured with the truth's own liver, spleen and lesion masks imported
(so that this tests the longitudinal part: registration of visits acquired in different
poses and on different scanners, lesion tracking, and the RECIST 1.1 engine, not the
automatic segmentation, whose figures are issue 7's). Then:

* every measured lesion's tracking id maps to one truth lesion id, the same at every
  visit (the truth's lesion ids are stable across visits; a lesion's truth id is read
  from its label value in the imported mask);
* the overall response of every follow-up equals the truth's ``overall_response``
  (the phantom's RECIST oracle on the true axes, with its documented rule for
  unequivocal non-target progression: long axis >= 1.5 x baseline).

Patients: the bundled sample cohort (seed 2026) and a cohort generated here with a seed
no code was tuned on (seed 8113).
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from netvolume.io.nifti import read_nifti
from netvolume.longitudinal import assess_patient_dir
from netvolume.measure import measure_study, write_measurement
from netvolume.phantom import PhantomSettings, generate_cohort

SAMPLE = Path(__file__).resolve().parents[1] / "data" / "sample_dicom"

pytestmark = pytest.mark.slow


def _measured_patient(patient: Path, dest: Path) -> Path:
    """Measure every visit of a phantom patient with the truth masks imported."""
    for visit in sorted(p for p in patient.iterdir() if p.is_dir()):
        truth = visit / "truth"
        m = measure_study(
            visit,
            liver_mask=truth / "liver.nii.gz",
            spleen_mask=truth / "spleen.nii.gz",
            lesion_mask=truth / "lesions.nii.gz",
        )
        write_measurement(m, dest / visit.name)
    return dest


def _truth_ids(measured: Path, visit: str, cohort_patient: Path) -> dict[int, int]:
    """Measured lesion id -> truth lesion id (the label value under it in the truth)."""
    labels = np.asarray(read_nifti(measured / visit / "masks" / "lesions.nii.gz").array)
    truth = np.asarray(read_nifti(cohort_patient / visit / "truth" / "lesions.nii.gz").array)
    out = {}
    for lid in np.unique(labels[labels > 0]):
        values, counts = np.unique(truth[labels == lid], return_counts=True)
        out[int(lid)] = int(values[np.argmax(counts)])
    return out


def _check_patient(cohort_patient: Path, tmp: Path) -> dict[str, object]:
    measured = _measured_patient(cohort_patient, tmp / "in" / cohort_patient.name)
    out = tmp / "out" / cohort_patient.name
    result = assess_patient_dir(measured, out)
    assert not result.failures

    # tracking: each tracking id is one truth lesion at every visit; a fragment of a
    # lesion that split is tracked as a piece of it (one piece keeps the lesion's id, the
    # others get new ids with the lesion as their parent)
    track_to_truth: dict[str, int] = {}
    parent_of: dict[str, str] = {}
    with (out / "tracking.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    for row in rows:
        if not row["lesion_id"]:
            continue
        truth = json.loads((cohort_patient / row["study"] / "truth.json").read_text())
        origin = {
            les["id"]: les["split_from"] if les["split_from"] is not None else les["id"]
            for les in truth["lesions"]
        }
        truth_id = _truth_ids(measured, row["study"], cohort_patient)[int(row["lesion_id"])]
        if row["status"] == "split":
            parent_of[row["tracking_id"]] = row["related_tracking_id"]
        track = parent_of.get(row["tracking_id"], row["tracking_id"])
        assert track_to_truth.setdefault(track, origin[truth_id]) == origin[truth_id], (
            cohort_patient.name,
            row,
        )
    assert len(set(track_to_truth.values())) == len(track_to_truth)

    # responses equal the truth's
    computed = {
        r["date"]: r["overall_response"]
        for r in csv.DictReader((out / "timepoints.csv").read_text().splitlines())
    }
    expected = {}
    for visit in sorted(p for p in cohort_patient.iterdir() if p.is_dir()):
        truth = json.loads((visit / "truth.json").read_text())
        expected[truth["study_date"]] = truth["overall_response"] or ""
    assert computed == expected, (cohort_patient.name, computed, expected)
    patient_truth = json.loads((cohort_patient / "truth_patient.json").read_text())
    doc = json.loads((out / "assessment.json").read_text())
    (p,) = doc["patients"].values()
    assert p["best_overall_response"] == patient_truth["recist"]["best_overall_response"]
    assert p["pd_date"] == patient_truth["recist"]["progression_date"]
    return {"patient": cohort_patient.name, "responses": computed}


@pytest.mark.parametrize("patient", ["P001", "P002", "P003", "P004"])
def test_sample_cohort(patient: str, tmp_path: Path) -> None:
    _check_patient(SAMPLE / patient, tmp_path)


@pytest.fixture(scope="module")
def unseen(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("cohort") / "c"
    generate_cohort(out, PhantomSettings(seed=8113, patients=3, timepoints=3, size="small"))
    return out


@pytest.mark.parametrize("patient", ["P001", "P002", "P003"])
def test_unseen_seed(unseen: Path, patient: str, tmp_path: Path) -> None:
    _check_patient(unseen / patient, tmp_path)


def test_baseline_date_makes_earlier_visits_pre_baseline(tmp_path: Path) -> None:
    """P002 (lesions appear at T1): with T1 as the baseline, T0 is pre-baseline (TGR0),
    T1's lesions are baseline lesions (none is new there), and RECIST starts at T1."""
    patient = SAMPLE / "P002"
    dates = {
        v.name: json.loads((v / "truth.json").read_text())["study_date"]
        for v in sorted(p for p in patient.iterdir() if p.is_dir())
    }
    measured = _measured_patient(patient, tmp_path / "in" / "P002")
    out = tmp_path / "out"
    import datetime as dt

    result = assess_patient_dir(measured, out, baseline_date=dt.date.fromisoformat(dates["T1"]))
    assert not result.failures
    rows = list(csv.DictReader((out / "timepoints.csv").read_text().splitlines()))
    assert [r["role"] for r in rows] == ["pre_baseline", "baseline", "follow_up"]
    assert rows[1]["date"] == dates["T1"] and rows[1]["overall_response"] == ""
    doc = json.loads((out / "assessment.json").read_text())
    (p,) = doc["patients"].values()
    assert p["baseline_date"] == dates["T1"]
    assert p["tgr"]["diameter"]["tgr0"]["start_date"] == dates["T0"]
    assert p["timepoints"][0]["date"] == dates["T1"]
    with pytest.raises(Exception, match="is not the date of a study"):
        assess_patient_dir(measured, tmp_path / "o2", baseline_date=dt.date(2000, 1, 1))


def test_cli_patient_dir_with_matching_table(tmp_path: Path) -> None:
    """``netvolume assess PATIENT_DIR -o OUT --matching CSV --json`` end to end."""
    from netvolume.cli import main

    measured = _measured_patient(SAMPLE / "P003", tmp_path / "in" / "P003")
    out = tmp_path / "auto"
    assert main(["assess", str(measured), "-o", str(out), "-q"]) == 0
    auto = list(csv.DictReader((out / "tracking.csv").read_text().splitlines()))
    t1 = [r for r in auto if r["study"] == "T1" and r["lesion_id"]]
    first, second = t1[0], t1[1]
    # pin T1's first two lesions the other way round: the table wins
    table = tmp_path / "match.csv"
    table.write_text(
        "study,lesion_id,tracking_id\n"
        f"T1,{first['lesion_id']},{second['tracking_id']}\n"
        f"T1,{second['lesion_id']},{first['tracking_id']}\n"
    )
    pinned_out = tmp_path / "pinned"
    code = main(["assess", str(measured), "-o", str(pinned_out), "--matching", str(table), "-q"])
    assert code == 0
    rows = list(csv.DictReader((pinned_out / "tracking.csv").read_text().splitlines()))
    got = {r["lesion_id"]: (r["tracking_id"], r["pinned"]) for r in rows if r["study"] == "T1"}
    assert got[first["lesion_id"]] == (second["tracking_id"], "true")
    assert got[second["lesion_id"]] == (first["tracking_id"], "true")
    bad = tmp_path / "bad.csv"
    bad.write_text("study,lesion_id,tracking_id\nT9,1,L1\n")
    assert main(["assess", str(measured), "-o", str(tmp_path / "x"), "--matching", str(bad)]) == 1

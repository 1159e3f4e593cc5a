"""``netvolume run``: discovery, the cohort store, resumption, crash safety, Dask.

The batch runs on a small phantom cohort (2 patients x 2 PET/CT visits, seed 7, which
no segmentation setting was tuned on) written once per session. Every run shares one
pseudonym key so that two outputs can be compared folder by folder.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from netvolume.batch import BatchSettings, Store, StoreError, run_batch
from netvolume.batch import keys as batch_keys
from netvolume.batch.discover import discover
from netvolume.batch.store import (
    LATEST_VERSION,
    MEASUREMENT_COLUMNS,
    TIMEPOINT_STORE_COLUMNS,
)
from netvolume.cli import main
from netvolume.errors import InputPathError

pytestmark = pytest.mark.slow

KEY = "5e" * 32
PROTOCOLS = (
    "ibi_response",
    "lesion_based_prrt",
    "retreatment",
    "volumetric_followup",
    "personalised_prrt",
)


@pytest.fixture(scope="session")
def key_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    p = tmp_path_factory.mktemp("key") / "pseudonym.key"
    p.write_text(KEY + "\n")
    return p


@pytest.fixture(scope="session")
def cohort(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("batch") / "export"
    assert main(["phantom", "-o", str(root), "--patients", "2", "--timepoints", "2",
                 "--seed", "7", "-q"]) == 0  # fmt: skip
    return root


@pytest.fixture(scope="session")
def batch_out(cohort: Path, key_file: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("batch_out") / "out"
    result = run_batch(
        cohort, out, settings=BatchSettings(jobs=2, pseudonym_key_file=str(key_file))
    )
    assert result.ok, result.failures
    assert result.counts["study"]["done"] == 4
    assert result.counts["patient"]["done"] == 2
    return out


def _snapshot(out: Path) -> dict[str, int]:
    """Relative path -> mtime_ns of every result file (not the store)."""
    return {
        str(p.relative_to(out)): p.stat().st_mtime_ns
        for p in out.rglob("*")
        if p.is_file() and not p.name.startswith(("netvolume.sqlite", ".netvolume"))
    }


def _results(out: Path) -> dict[str, bytes]:
    """Bytes of the deterministic outputs (lesions, timepoints, tracking, SEG, masks)."""
    files: dict[str, bytes] = {}
    for pattern in (
        "studies/*/*/lesions.csv",
        "studies/*/*/masks/*.nii.gz",
        "studies/*/*/masks/*.seg.dcm",
        "studies/*/*/measurements.sr.dcm",
        "assessments/*/timepoints.csv",
        "assessments/*/tracking.csv",
        "eligibility/*/summary.csv",
        "tables/measurements.csv",
        "tables/assessments.csv",
        "tables/outcomes.csv",
        "tables/eligibility.csv",
    ):
        for p in sorted(out.glob(pattern)):
            files[str(p.relative_to(out))] = p.read_bytes()
    return files


def _copy_export(cohort: Path, dest: Path, patients: tuple[str, ...] = ("P001", "P002")) -> Path:
    dest.mkdir(parents=True)
    for p in patients:
        shutil.copytree(cohort / p, dest / p)
    return dest


# ----------------------------------------------------------------------------- units
def test_store_schema_matches_the_written_tables() -> None:
    from netvolume.assess.course import TIMEPOINT_COLUMNS
    from netvolume.measure._records import LESION_COLUMNS

    # a new lesions.csv / timepoints.csv column needs a store migration
    assert tuple(LESION_COLUMNS) == MEASUREMENT_COLUMNS
    assert tuple(TIMEPOINT_COLUMNS) == ("patient_id", *TIMEPOINT_STORE_COLUMNS)


def test_store_migrates_an_older_store_and_refuses_a_newer_one(tmp_path: Path) -> None:
    path = tmp_path / "s.sqlite"
    with Store(path, migrate_to=1) as old:
        assert old.version == 1
        assert "eligibility" not in [r[0] for r in old.db.execute("SELECT name FROM sqlite_master")]
        with old.transaction() as db:
            db.execute("INSERT INTO patients (patient_key) VALUES ('P-0123456789')")
    with Store(path) as new:
        assert new.version == LATEST_VERSION == 2
        assert [r["patient_key"] for r in new.rows("patients")] == ["P-0123456789"]
        assert new.rows("eligibility") == []
        assert new.db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    db = sqlite3.connect(path)
    db.execute("PRAGMA user_version = 99")
    db.close()
    with pytest.raises(StoreError, match="newer"):
        Store(path)
    other = tmp_path / "other.sqlite"
    db = sqlite3.connect(other)
    db.execute("CREATE TABLE x (a)")
    db.close()
    with pytest.raises(StoreError, match="not a netvolume store"):
        Store(other)
    (tmp_path / "junk.sqlite").write_bytes(b"not a database at all" * 100)
    with pytest.raises(StoreError):
        Store(tmp_path / "junk.sqlite")


def test_a_failed_transaction_leaves_nothing(tmp_path: Path) -> None:
    with Store(tmp_path / "s.sqlite") as store:
        with pytest.raises(RuntimeError), store.transaction() as db:
            db.execute("INSERT INTO patients (patient_key) VALUES ('P-1')")
            raise RuntimeError("boom")
        assert store.rows("patients") == []


def test_pseudonymous_keys(tmp_path: Path) -> None:
    a = batch_keys.patient_key(KEY, "HOSP-123")
    assert a == batch_keys.patient_key(KEY, "HOSP-123")
    assert a != batch_keys.patient_key("ab" * 32, "HOSP-123")
    assert a.startswith("P-") and len(a) == 12
    s = batch_keys.study_key(KEY, "1.2.3", "2024-05-01")
    assert s.startswith("2024-05-01_") and "1.2.3" not in s
    assert batch_keys.study_key(KEY, "1.2.3", None).startswith("undated_")
    bad = tmp_path / "k"
    bad.write_text("not hex")
    with pytest.raises(InputPathError, match="hex"):
        batch_keys.read_pseudonym_key(bad)
    bad.write_text("abcd")
    with pytest.raises(InputPathError, match="32 hex"):
        batch_keys.read_pseudonym_key(bad)


def test_discovery_does_not_depend_on_the_folder_layout(cohort: Path, tmp_path: Path) -> None:
    nested = discover(cohort)
    flat = tmp_path / "flat"
    flat.mkdir()
    for n, p in enumerate(sorted(cohort.rglob("*.dcm"))):
        shutil.copy2(p, flat / f"{n:05d}")  # every file of every study in one folder
    found = discover(flat)
    assert set(found.patients) == set(nested.patients)
    for pid, patient in nested.patients.items():
        assert set(found.patients[pid].studies) == set(patient.studies)
        for uid, study in patient.studies.items():
            other = found.patients[pid].studies[uid]
            assert other.study_date == study.study_date
            assert len(other.files) == len(study.files)
            assert other.series == study.series
    assert nested.num_studies == 4
    assert "clinical.csv" in " ".join(nested.unused)


def test_run_refuses_a_folder_that_is_not_its_output(cohort: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    with pytest.raises(InputPathError, match="not a previous"):
        run_batch(cohort, out)
    assert (out / "notes.txt").read_text() == "mine"
    with pytest.raises(InputPathError, match="does not exist"):
        run_batch(tmp_path / "missing", tmp_path / "o2")


# ----------------------------------------------------------------------------- outputs
def test_every_output_is_written(batch_out: Path) -> None:
    studies = sorted(batch_out.glob("studies/*/*"))
    assert len(studies) == 4
    for folder in studies:
        for name in (
            "lesions.csv",
            "study.json",
            "task.json",
            "masks/liver.nii.gz",
            "masks/spleen.nii.gz",
            "masks/lesions.nii.gz",
            "masks/organs.seg.dcm",
            "masks/lesions.seg.dcm",
            "measurements.sr.dcm",
            "keyimages/index.json",
        ):
            assert (folder / name).is_file(), f"{folder.name}/{name}"
        assert folder.name[:10].count("-") == 2  # <date>_<hash>
    for folder in batch_out.glob("assessments/*"):
        for name in ("assessment.json", "timepoints.csv", "tracking.csv", "task.json"):
            assert (folder / name).is_file()
    for protocol in PROTOCOLS:
        assert (batch_out / "eligibility" / protocol / "summary.csv").is_file()
    tables = ("patients", "studies", "series", "measurements", "lesions", "assessments",
              "eligibility", "outcomes", "tasks", "runs", "provenance", "failures")  # fmt: skip
    for table in tables:
        assert (batch_out / "tables" / f"{table}.csv").is_file()
        assert (batch_out / "tables" / f"{table}.parquet").is_file()
    assert (batch_out / "report" / "index.html").is_file()
    leftovers = [p for p in batch_out.rglob(".*") if p.name != ".netvolume.lock"]
    assert leftovers == []


def test_store_holds_what_the_files_say(batch_out: Path) -> None:
    with Store(batch_out / "netvolume.sqlite") as store:
        patients = store.rows("patients")
        assert [p["patient_id"] for p in patients] == [None, None]  # pseudonymous only
        assert all(p["patient_key"].startswith("P-") for p in patients)
        assert sorted(p["clinical_id"] for p in patients) == ["NV7-P001", "NV7-P002"]
        rows = store.rows("measurements")
        n = 0
        for folder in sorted(batch_out.glob("studies/*/*")):
            with (folder / "lesions.csv").open(newline="") as f:
                lesions = list(csv.DictReader(f))
            n += len(lesions)
            stored = {r["lesion_id"]: r for r in rows if r["study_key"] == folder.name}
            assert len(stored) == len(lesions)
            for les in lesions:
                r = stored[int(les["lesion_id"])]
                assert r["volume_ml"] == float(les["volume_ml"])
                assert r["ld_mm"] == (float(les["ld_mm"]) if les["ld_mm"] else None)
                assert r["organ"] == les["organ"]
                assert r["tracking_id"] is not None
        assert len(rows) == n
        # every tracked lesion's target flag agrees with the assessment
        for folder in batch_out.glob("assessments/*"):
            doc = json.loads((folder / "assessment.json").read_text())
            targets = {t["lesion_id"] for t in doc["patients"][folder.name]["targets"]}
            stored_targets = {
                r["tracking_id"]
                for r in store.rows("lesions")
                if r["patient_key"] == folder.name and r["target"]
            }
            assert stored_targets == targets
        assert {r["protocol"] for r in store.rows("eligibility")} == set(PROTOCOLS)
        assert len(store.rows("outcomes")) == 2
        assert all(t["status"] == "done" for t in store.tasks())
        run = store.rows("runs")[0]
        assert json.loads(run["settings_json"])["netvolume_version"]
        provenance = {(r["entity"], r["item"]) for r in store.rows("provenance")}
        assert len(provenance) == 6
    # the tables are the store
    with (batch_out / "tables" / "measurements.csv").open(newline="") as f:
        assert len(list(csv.DictReader(f))) == n
    import pyarrow.parquet as pq

    assert pq.read_table(batch_out / "tables" / "measurements.parquet").num_rows == n


def test_no_identifier_in_the_outputs(batch_out: Path, cohort: Path) -> None:
    import pydicom

    first = next(cohort.rglob("*.dcm"))
    name = str(pydicom.dcmread(first, stop_before_pixels=True).PatientName)
    assert name
    for p in batch_out.rglob("*"):
        if p.is_file() and p.suffix not in (".dcm", ".png", ".gz", ".parquet"):
            assert name.encode() not in p.read_bytes(), p


# ----------------------------------------------------------------------------- resumption
def test_rerun_does_no_work_and_deleting_one_study_redoes_only_it(
    batch_out: Path, cohort: Path, key_file: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    shutil.copytree(batch_out, out)
    before = _snapshot(out)
    reference = _results(out)
    again = run_batch(cohort, out, settings=BatchSettings(jobs=2, pseudonym_key_file=str(key_file)))
    assert again.ok and again.work_done == 0
    assert again.counts["study"] == {"done": 0, "skipped": 4, "recovered": 0, "failed": 0}
    assert again.counts["patient"]["skipped"] == 2 and again.counts["cohort"]["skipped"] == 1
    assert _snapshot(out) == before  # not one file rewritten

    victim = sorted(out.glob("studies/*/*"))[1]
    shutil.rmtree(victim)
    redo = run_batch(cohort, out, settings=BatchSettings(jobs=2, pseudonym_key_file=str(key_file)))
    assert redo.ok
    assert redo.counts["study"]["done"] == 1 and redo.counts["study"]["skipped"] == 3
    assert redo.counts["patient"]["skipped"] == 2  # the assessment was not redone
    after = _snapshot(out)
    changed = {k for k in after if after[k] != before.get(k)}
    assert changed and all(k.startswith(str(victim.relative_to(out))) for k in changed)
    assert _results(out) == reference  # the same bytes again, SR included
    with Store(out / "netvolume.sqlite") as store:
        assert all(r["tracking_id"] for r in store.rows("measurements"))
        assert len(store.rows("runs")) == 3


def test_changed_settings_redo_the_studies(cohort: Path, key_file: Path, tmp_path: Path) -> None:
    export = _copy_export(cohort, tmp_path / "export", ("P001",))
    out = tmp_path / "out"
    common = {"jobs": 2, "pseudonym_key_file": str(key_file), "report": False}
    first = run_batch(export, out, settings=BatchSettings(**common))
    assert first.ok and first.counts["study"]["done"] == 2
    changed = run_batch(
        export,
        out,
        settings=BatchSettings(**common, measure_settings={"min_lesion_ml": "0.2"}),
    )
    assert changed.ok and changed.counts["study"]["done"] == 2
    assert changed.counts["patient"]["done"] == 1
    # a changed input file is a changed study
    f = sorted((export / "P001" / "T1" / "CT").glob("*.dcm"))[0]
    os.utime(f, ns=(f.stat().st_atime_ns, f.stat().st_mtime_ns + 10**9))
    touched = run_batch(
        export,
        out,
        settings=BatchSettings(**common, measure_settings={"min_lesion_ml": "0.2"}),
    )
    assert touched.work_done == 0  # same bytes: the content key did not change
    data = bytearray(f.read_bytes())
    data[-2] ^= 0x01  # one pixel
    f.write_bytes(bytes(data))
    edited = run_batch(
        export,
        out,
        settings=BatchSettings(**common, measure_settings={"min_lesion_ml": "0.2"}),
    )
    assert edited.counts["study"]["done"] == 1 and edited.counts["study"]["skipped"] == 1


def test_one_bad_study_does_not_stop_the_others(
    cohort: Path, key_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    export = _copy_export(cohort, tmp_path / "export")
    ct = sorted((export / "P002" / "T1" / "CT").glob("*.dcm"))
    bad = ct[len(ct) // 2]
    bad.write_bytes(bad.read_bytes()[: bad.stat().st_size // 2])  # truncated pixel data
    out = tmp_path / "out"
    code = main(["run", str(export), "-o", str(out), "--jobs", "2",
                 "--pseudonym-key", str(key_file), "--no-report"])  # fmt: skip
    assert code == 1
    err = capsys.readouterr().err
    assert "FAILED study" in err and "FAILED patient" in err
    with Store(out / "netvolume.sqlite") as store:
        tasks = {(t["stage"], t["status"]) for t in store.tasks()}
        failed = [t for t in store.tasks() if t["status"] == "failed"]
    assert [t["stage"] for t in failed] == ["patient", "study"]
    study_failure = next(t for t in failed if t["stage"] == "study")
    assert study_failure["error_type"] and study_failure["message"]
    assert ("study", "done") in tasks and ("patient", "done") in tasks
    with (out / "tables" / "failures.csv").open(newline="") as f:
        rows = list(csv.DictReader(f))
    assert {r["stage"] for r in rows} == {"study", "patient"}
    assert len(list(out.glob("studies/*/*/lesions.csv"))) == 3
    assert len(list(out.glob("assessments/*/assessment.json"))) == 1


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-c", "import sys; from netvolume.cli import main; "
            "sys.exit(main(sys.argv[1:]))", *args]  # fmt: skip


def test_kill_9_then_the_same_command_finishes_the_job(
    cohort: Path, batch_out: Path, key_file: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    argv = _cli("run", str(cohort), "-o", str(out), "--jobs", "1", "--json-lines",
                "--pseudonym-key", str(key_file))  # fmt: skip
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, text=True, start_new_session=True)
    assert proc.stdout is not None
    deadline = time.monotonic() + 300
    killed_after = None
    for line in proc.stdout:
        event = json.loads(line)
        if event["event"] == "task" and event["status"] == "done":
            killed_after = event["item"]
            os.killpg(proc.pid, signal.SIGKILL)  # the coordinator and its workers
            break
        assert time.monotonic() < deadline
    proc.wait(timeout=60)
    proc.stdout.close()
    assert killed_after is not None and proc.returncode == -signal.SIGKILL
    # the interrupted state: complete study folders and maybe hidden temporaries
    done = subprocess.run(argv, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    events = [json.loads(x) for x in done.stdout.splitlines()]
    finished = events[-1]
    assert finished["event"] == "finished" and finished["ok"]
    assert finished["counts"]["study"]["skipped"] + finished["counts"]["study"]["recovered"] >= 1
    assert finished["counts"]["study"]["done"] <= 3
    leftovers = [p for p in out.rglob(".*") if p.name != ".netvolume.lock"]
    assert leftovers == []
    assert _results(out) == _results(batch_out)  # as if never interrupted
    with Store(out / "netvolume.sqlite") as store:
        keys = [(t["stage"], t["item"]) for t in store.tasks()]
        assert len(keys) == len(set(keys)) == 4 + 2 + 1
        n_rows = len(store.rows("measurements"))
    n_csv = sum(len(p.read_text().splitlines()) - 1 for p in out.glob("studies/*/*/lesions.csv"))
    assert n_rows == n_csv


def test_a_second_run_on_the_same_output_is_refused(batch_out: Path, cohort: Path) -> None:
    import fcntl

    fd = os.open(batch_out / ".netvolume.lock", os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        with pytest.raises(StoreError, match="another netvolume run"):
            run_batch(cohort, batch_out)
    finally:
        os.close(fd)


def test_json_lines_and_quiet_modes(
    batch_out: Path, cohort: Path, key_file: Path, tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    out = tmp_path / "out"
    shutil.copytree(batch_out, out)
    assert main(["run", str(cohort), "-o", str(out), "--json-lines",
                 "--pseudonym-key", str(key_file)]) == 0  # fmt: skip
    lines = capsys.readouterr().out.splitlines()
    events = [json.loads(x) for x in lines]
    assert events[0]["event"] == "start" and events[-1]["event"] == "finished"
    assert [e["status"] for e in events if e["event"] == "task"] == ["skipped"] * 7
    assert main(["run", str(cohort), "-o", str(out), "-q",
                 "--pseudonym-key", str(key_file)]) == 0  # fmt: skip
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err == ""
    assert main(["run", str(cohort), "-o", str(out), "--set", "no_such_setting=1"]) == 2


# ----------------------------------------------------------------------------- Dask
def test_dask_cluster_gives_the_same_results(
    cohort: Path, batch_out: Path, key_file: Path, tmp_path: Path
) -> None:
    distributed = pytest.importorskip("distributed")
    with (
        distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
        ) as cluster,
    ):
        address = cluster.scheduler_address
        assert address.startswith("tcp://")
        out = tmp_path / "out"
        result = run_batch(
            cohort,
            out,
            settings=BatchSettings(scheduler=address, pseudonym_key_file=str(key_file)),
        )
    assert result.ok, result.failures
    assert result.counts["study"]["done"] == 4
    with Store(out / "netvolume.sqlite") as store:
        assert store.rows("runs")[0]["executor"].startswith(f"dask ({address}, 2 workers")
    assert _results(out) == _results(batch_out)


def test_an_unreachable_scheduler_is_a_clear_error(cohort: Path, tmp_path: Path) -> None:
    pytest.importorskip("distributed")
    with pytest.raises(InputPathError, match="Dask scheduler"):
        run_batch(
            cohort,
            tmp_path / "out",
            settings=BatchSettings(scheduler="tcp://127.0.0.1:9"),
        )


def test_sr_tracking_uids_follow_a_lesion_over_time(batch_out: Path) -> None:
    import highdicom as hd

    for patient in sorted(batch_out.glob("studies/*")):
        uid_of: dict[str, set[str]] = {}
        for study in sorted(patient.iterdir()):
            sr = hd.sr.srread(study / "measurements.sr.dcm")
            groups = sr.content.get_volumetric_roi_measurement_groups()
            assert groups, study
            for g in groups:
                uid_of.setdefault(str(g.tracking_identifier), set()).add(str(g.tracking_uid))
        tracking = (batch_out / "assessments" / patient.name / "tracking.csv").read_text()
        assert all(tid in tracking for tid in uid_of)
        assert all(len(uids) == 1 for uids in uid_of.values()), uid_of
        assert any(len(x) for x in uid_of.values())


def test_any_folder_layout_gives_the_same_results(
    cohort: Path, batch_out: Path, key_file: Path, tmp_path: Path
) -> None:
    flat = tmp_path / "flat"
    flat.mkdir()
    for n, p in enumerate(sorted(cohort.rglob("*.dcm"))):
        shutil.copy2(p, flat / f"{n:05d}.dcm")  # all four studies in one folder
    shutil.copy2(cohort / "clinical.csv", flat / "clinical.csv")
    out = tmp_path / "out"
    result = run_batch(flat, out, settings=BatchSettings(jobs=2, pseudonym_key_file=str(key_file)))
    assert result.ok, result.failures
    assert result.counts["study"]["done"] == 4
    assert _results(out) == _results(batch_out)
    assert not (out / ".staging").exists()  # the per-study links are gone

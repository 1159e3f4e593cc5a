"""The cohort stage of a batch run: eligibility, outcomes, tables, report.

Runs in the coordinating process once every patient is done (it reads files and the
store; the heavy work is in the workers):

1. With clinical facts (``--clinical FILE``, or ``clinical.csv`` / ``clinical.json`` at
   the root of the export): each clinical row is matched to a patient by its
   ``imaging_id`` or ``patient_id`` equal to the DICOM PatientID (compared in memory,
   never written) or to the pseudonymous key; every bundled protocol is evaluated
   (:func:`netvolume.analysis.eligibility.run_eligibility`) into
   ``OUT/eligibility/<protocol>/``, and each patient's start, PFS and best overall
   response are derived by the rules of :func:`netvolume.analysis.plans.patient_outcome`.
2. Without clinical facts: PFS runs from the baseline scan (event: the RECIST PD date;
   otherwise censored at the last scan with an evaluable response).
3. Every store table is written as ``OUT/tables/<table>.csv`` and ``.parquet`` (pyarrow),
   except the pseudonym key and the file-hash cache, then the HTML report.
"""

from __future__ import annotations

import csv
import datetime
import json
import math
import os
import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from netvolume.batch.store import TABLES, Store, insert

__all__ = ["EXPORTED_TABLES", "best_sod_change_pct", "run_cohort_stage", "write_tables"]

#: Store tables written to ``OUT/tables`` (``meta`` holds the pseudonym key and
#: ``file_hashes`` only paths: neither is exported).
EXPORTED_TABLES: tuple[str, ...] = TABLES

#: Extra columns of ``tables/patients.csv`` derived from the other tables.
PATIENT_SUMMARY_COLUMNS = ("n_studies", "first_date", "last_date", "status")


def best_sod_change_pct(timepoints: Sequence[Mapping[str, Any]]) -> float | None:
    """The best (lowest) % change of the sum of diameters from baseline at a follow-up.

    None without a follow-up with a value. The waterfall plot's bar (Eisenhauer et al.
    2009, RECIST 1.1: % change = (SOD - SOD_baseline) / SOD_baseline x 100).
    """
    values = []
    for tp in timepoints:
        if tp.get("role") != "follow_up":
            continue
        v = tp.get("pct_from_baseline")
        if v is None or v == "":
            continue
        f = float(v)
        if math.isfinite(f):
            values.append(f)
    return min(values) if values else None


def _imaging_outcome(imaging: Any) -> dict[str, Any]:
    """PFS from the baseline scan, from the assessment alone (no clinical facts)."""
    scans = list(imaging.scans)
    start = scans[0].date if scans else None
    for tp in imaging.timepoints or ():
        if tp.get("role") == "baseline":
            start = datetime.date.fromisoformat(str(tp["date"])[:10])
    row: dict[str, Any] = {
        "start_date": start,
        "start_source": "baseline scan",
        "bor": imaging.best_overall_response,
    }
    if start is None:
        row.update(pfs_days=None, pfs_event=None, pfs_reason="no scan")
    elif imaging.pd_date is not None and imaging.pd_date > start:
        row.update(
            pfs_days=(imaging.pd_date - start).days,
            pfs_event=1,
            pfs_reason=f"RECIST PD (imaging) on {imaging.pd_date}",
        )
    else:
        evaluable = [s for s in scans if s.date > start and s.overall_response not in (None, "NE")]
        if evaluable:
            row.update(
                pfs_days=(evaluable[-1].date - start).days,
                pfs_event=0,
                pfs_reason="censored: last evaluable scan",
            )
        else:
            row.update(pfs_days=None, pfs_event=None, pfs_reason="no assessment after baseline")
    return row


def _iso(value: Any) -> Any:
    return value.isoformat() if isinstance(value, datetime.date) else value


def run_cohort_stage(
    store: Store,
    out: Path,
    *,
    patient_keys: Sequence[str],
    clinical: Path | None,
    match: Mapping[str, str],
    write_report: bool = True,
) -> dict[str, Any]:
    """Eligibility, outcomes, tables and report of the patients ``patient_keys``.

    Parameters
    ----------
    store
        The open store (eligibility and outcomes rows are replaced).
    out
        The batch output folder.
    patient_keys
        Patients of this run whose assessment is done.
    clinical
        The clinical facts file, or None.
    match
        Clinical patient_id -> patient key (made by the coordinator, which held the
        DICOM PatientIDs in memory).
    write_report
        Write ``OUT/report/``.

    Returns
    -------
    dict
        ``eligibility`` (protocol -> verdict counts), ``tables`` (written), ``report``
        (path or None), timings.
    """
    import time

    from netvolume.longitudinal._write import output_folder
    from netvolume.trials.imaging import read_imaging

    started = time.perf_counter()
    summary: dict[str, Any] = {"eligibility": {}, "report": None}
    assessments = out / "assessments"
    imaging: dict[str, Any] = {}
    for key in patient_keys:
        folder = assessments / key
        if (folder / "assessment.json").is_file():
            imaging.update(read_imaging(folder))
    outcome_rows: list[dict[str, Any]] = []
    key_to_clinical = {v: k for k, v in match.items()}
    if clinical is not None:
        from netvolume.analysis.eligibility import run_eligibility, write_eligibility
        from netvolume.analysis.plans import patient_outcome
        from netvolume.trials.clinical import read_clinical
        from netvolume.trials.protocol import load_protocol, protocol_names

        cohort = read_clinical(clinical)
        by_clinical = {cid: imaging[k] for cid, k in match.items() if k in imaging}
        with output_folder(out / "eligibility", overwrite=True, marker="protocols.json") as tmp:
            for name in protocol_names():
                run = run_eligibility(load_protocol(name), cohort, by_clinical)
                folder = tmp / name
                folder.mkdir()
                write_eligibility(folder, run)
                counts: dict[str, int] = {}
                for e in run.results:
                    counts[e.verdict.value] = counts.get(e.verdict.value, 0) + 1
                summary["eligibility"][name] = counts
            (tmp / "protocols.json").write_text(
                json.dumps(sorted(summary["eligibility"]), indent=1) + "\n"
            )
        with store.transaction() as db:
            db.execute("DELETE FROM eligibility")
            for name in protocol_names():
                with open(out / "eligibility" / name / "summary.csv", newline="") as f:
                    for row in csv.DictReader(f):
                        insert(
                            db,
                            "eligibility",
                            {
                                "protocol": name,
                                "clinical_id": row["patient_id"],
                                "patient_key": match.get(row["patient_id"]),
                                "verdict": row["verdict"],
                                "reason": row["reason"] or None,
                                "reference_date": row["reference_date"] or None,
                                "n_met": int(row["n_met"]),
                                "n_not_met": int(row["n_not_met"]),
                                "n_unknown": int(row["n_unknown"]),
                                "n_needs_review": int(row["n_needs_review"]),
                            },
                        )
        for facts in cohort.patients:
            pkey = match.get(facts.patient_id)
            if pkey is None or pkey not in patient_keys:
                continue
            row = patient_outcome(facts, imaging.get(pkey))
            row["clinical_id"] = facts.patient_id
            row["patient_key"] = pkey
            outcome_rows.append(row)
    else:
        if (out / "eligibility").is_dir() and (out / "eligibility" / "protocols.json").is_file():
            shutil.rmtree(out / "eligibility")
        with store.transaction() as db:
            db.execute("DELETE FROM eligibility")
        for key in patient_keys:
            if key in imaging:
                row = _imaging_outcome(imaging[key])
                row["patient_key"] = key
                row["clinical_id"] = key_to_clinical.get(key)
                outcome_rows.append(row)
    with store.transaction() as db:
        db.execute("DELETE FROM outcomes")
        for row in outcome_rows:
            tps = [
                r
                for r in store.db.execute(
                    "SELECT role, pct_from_baseline FROM assessments WHERE patient_key = ?",
                    (row["patient_key"],),
                )
            ]
            insert(
                db,
                "outcomes",
                {
                    "patient_key": row["patient_key"],
                    "clinical_id": row.get("clinical_id"),
                    "start_date": _iso(row.get("start_date")),
                    "start_source": row.get("start_source"),
                    "pfs_days": row.get("pfs_days"),
                    "pfs_event": row.get("pfs_event"),
                    "pfs_reason": row.get("pfs_reason"),
                    "best_overall_response": row.get("bor"),
                    "best_sod_change_pct": best_sod_change_pct(
                        [{"role": r, "pct_from_baseline": p} for r, p in tps]
                    ),
                },
            )
    t_analysis = time.perf_counter()
    summary["tables"] = write_tables(store, out / "tables")
    t_tables = time.perf_counter()
    if write_report:
        from netvolume.report.html import write_report as _write_report

        summary["report"] = str(_write_report(out))
    t_report = time.perf_counter()
    summary["timings"] = {
        "analysis_s": t_analysis - started,
        "tables_s": t_tables - t_analysis,
        "report_s": t_report - t_tables,
    }
    return summary


def _patient_rows(store: Store) -> list[dict[str, Any]]:
    rows = []
    for p in store.rows("patients"):
        studies = store.db.execute(
            "SELECT study_date FROM studies WHERE patient_key = ? ORDER BY study_date",
            (p["patient_key"],),
        ).fetchall()
        failed = store.db.execute(
            "SELECT count(*) FROM tasks WHERE patient_key = ? AND status = 'failed'",
            (p["patient_key"],),
        ).fetchone()[0]
        dates = [d for (d,) in studies if d]
        rows.append(
            {
                **p,
                "n_studies": len(studies),
                "first_date": dates[0] if dates else None,
                "last_date": dates[-1] if dates else None,
                "status": "failed" if failed else "ok",
            }
        )
    return rows


def write_tables(store: Store, folder: Path) -> list[str]:
    """Write every exported store table as CSV and Parquet, plus ``failures.csv``.

    Every row of the store is written, patients that failed included.

    The folder is built beside ``folder`` and renamed into place. ``patients.csv`` carries
    :data:`PATIENT_SUMMARY_COLUMNS`; ``failures.csv`` is the failed tasks (stage,
    patient_key, study_key, error_type, message).

    Returns
    -------
    list of str
        The file names written.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    from netvolume.longitudinal._write import csv_bytes, output_folder

    written: list[str] = []
    tables: dict[str, tuple[list[str], list[dict[str, Any]]]] = {}
    for name in EXPORTED_TABLES:
        cols = store.columns(name)
        if name == "patients":
            cols = cols + list(PATIENT_SUMMARY_COLUMNS)
            rows = _patient_rows(store)
        else:
            rows = store.rows(name)
        tables[name] = (cols, rows)
    failures = [
        {
            "stage": t["stage"],
            "patient_key": t["patient_key"],
            "study_key": t["item"] if t["stage"] == "study" else None,
            "error_type": t["error_type"],
            "message": t["message"],
        }
        for t in store.tasks()
        if t["status"] == "failed"
    ]
    tables["failures"] = (["stage", "patient_key", "study_key", "error_type", "message"], failures)
    with output_folder(folder, overwrite=True, marker="patients.csv") as tmp:
        for name, (cols, rows) in tables.items():
            (tmp / f"{name}.csv").write_bytes(csv_bytes(cols, rows))
            arrays = {}
            for c in cols:
                values = [r.get(c) for r in rows]
                try:
                    arrays[c] = pa.array(values)
                except (pa.ArrowInvalid, pa.ArrowTypeError):
                    arrays[c] = pa.array([None if v is None else str(v) for v in values])
            pq.write_table(pa.table(arrays) if cols else pa.table({}), tmp / f"{name}.parquet")
            written += [f"{name}.csv", f"{name}.parquet"]
    return written


def clinical_file(export_dir: Path, given: str | os.PathLike[str] | None) -> Path | None:
    """The clinical facts file: ``given``, else ``clinical.csv`` / ``.json`` in the export."""
    if given is not None:
        return Path(given)
    for name in ("clinical.csv", "clinical.json"):
        if (export_dir / name).is_file():
            return export_dir / name
    return None

"""``netvolume run EXPORT_DIR -o OUT``: the whole pipeline over an export, resumable.

Output layout::

    OUT/netvolume.sqlite                 the cohort store (:mod:`netvolume.batch.store`)
    OUT/studies/<patient>/<study>/       per study: lesions.csv, study.json, masks/*.nii.gz,
                                         masks/*.seg.dcm, measurements.sr.dcm (TID 1500),
                                         keyimages/, task.json
    OUT/assessments/<patient>/           per patient: assessment.json, timepoints.csv,
                                         tracking.csv, task.json
    OUT/eligibility/<protocol>/          with clinical facts: criteria.csv, summary.csv,
                                         eligibility.json
    OUT/tables/<table>.csv / .parquet    every store table, and failures.csv
    OUT/report/index.html                the report (opens from disk)

Order of work: discovery (headers only), content keys (file hashes, cached), then every
study not done with the same key is measured in the workers; a patient's assessment
(registration, tracking, RECIST, SR) is started as soon as all their studies are done;
the cohort stage (eligibility, outcomes, tables, report) runs last, and only when
something changed. A study or patient is *done* when the store records it done with the
same input key **and** its result folder holds a ``task.json`` with that key; a folder
that is complete but missing from the store (a run killed between the rename and the
commit) is adopted without recomputation. Failed tasks are retried on the next run.

One ``netvolume run`` at a time per output folder (an exclusive lock on
``OUT/.netvolume.lock``; the kernel releases it when the process dies, ``kill -9``
included).
"""

from __future__ import annotations

import contextlib
import csv
import fcntl
import json
import os
import re
import shutil
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from netvolume._version import __version__
from netvolume.batch import keys
from netvolume.batch.discover import IMAGE_MODALITIES, Discovery, FoundStudy, discover
from netvolume.batch.execute import DaskExecutor, Executor, LocalExecutor, WorkerLostError
from netvolume.batch.store import (
    MEASUREMENT_COLUMNS,
    STUDY_COLUMNS,
    TIMEPOINT_STORE_COLUMNS,
    Store,
    StoreError,
    insert,
    utc_now,
)
from netvolume.batch.tasks import (
    PatientSpec,
    StudySpec,
    read_task_file,
    run_patient,
    run_study,
    write_study_srs,
)
from netvolume.errors import InputPathError

__all__ = ["BatchResult", "BatchSettings", "run_batch"]

STORE_FILE = "netvolume.sqlite"
LOCK_FILE = ".netvolume.lock"
_TMP = re.compile(r"^\..+\.(tmp|old)-\d+$")

Event = dict[str, Any]


@dataclass(frozen=True)
class BatchSettings:
    """The settings of a batch run (recorded with every run).

    Attributes
    ----------
    jobs : int or None
        Local worker processes (None: one per core).
    scheduler : str or None
        A Dask scheduler address; the work then runs on that cluster.
    clinical : str or None
        Clinical facts file (default: ``clinical.csv`` / ``.json`` at the export root).
    measure_settings : dict of str -> str
        ``MeasureSettings`` overrides.
    register_pet : bool
        Register each study's PET to its CT when their frames differ.
    register_followups : bool
        Register follow-ups to the baseline before tracking.
    keep_identifiers : bool
        Store the real PatientID in ``patients.patient_id`` (default: pseudonymous only).
    pseudonym_key_file : str or None
        The pseudonym key to use (default: the store's own).
    key_images, sr, report : bool
        Make key images, TID 1500 SRs, the HTML report.
    """

    jobs: int | None = None
    scheduler: str | None = None
    clinical: str | None = None
    measure_settings: Mapping[str, str] = field(default_factory=dict)
    register_pet: bool = False
    register_followups: bool = True
    keep_identifiers: bool = False
    pseudonym_key_file: str | None = None
    key_images: bool = True
    sr: bool = True
    report: bool = True

    def content(self) -> dict[str, Any]:
        """The settings that change results (part of the content keys)."""
        return {
            "measure_settings": dict(sorted(self.measure_settings.items())),
            "register_pet": self.register_pet,
            "register_followups": self.register_followups,
            "key_images": self.key_images,
            "sr": self.sr,
            "netvolume_version": __version__,
        }

    def to_dict(self) -> dict[str, Any]:
        """Every setting, for the ``runs`` table."""
        return {
            "jobs": self.jobs,
            "scheduler": self.scheduler,
            "clinical": self.clinical,
            "keep_identifiers": self.keep_identifiers,
            "pseudonym_key_file": self.pseudonym_key_file,
            "report": self.report,
            **self.content(),
        }


@dataclass
class BatchResult:
    """What a run did.

    Attributes
    ----------
    out : Path
    run_id : int
    counts : dict
        stage -> {"done": n, "skipped": n, "recovered": n, "failed": n}.
    failures : list of dict
        stage, item, patient_key, error_type, message (this run's and still-failing ones).
    report : str or None
    seconds : float
    timings : dict
        Summed worker timings (``measure_s`` ...) and the coordinator's (``store_s``,
        ``cohort_s`` ...), seconds.
    """

    out: Path
    run_id: int = 0
    counts: dict[str, dict[str, int]] = field(default_factory=dict)
    failures: list[dict[str, Any]] = field(default_factory=list)
    report: str | None = None
    seconds: float = 0.0
    timings: dict[str, float] = field(default_factory=dict)
    unused_files: int = 0

    @property
    def ok(self) -> bool:
        """True when nothing failed."""
        return not self.failures

    @property
    def work_done(self) -> int:
        """Tasks computed in this run (not skipped or adopted)."""
        return sum(c.get("done", 0) + c.get("failed", 0) for c in self.counts.values())

    def to_dict(self) -> dict[str, Any]:
        """JSON-able summary."""
        return {
            "out": str(self.out),
            "run_id": self.run_id,
            "ok": self.ok,
            "counts": self.counts,
            "failures": self.failures,
            "report": self.report,
            "seconds": self.seconds,
            "timings": self.timings,
            "unused_files": self.unused_files,
        }


# ----------------------------------------------------------------------------- helpers
@contextlib.contextmanager
def _locked(out: Path) -> Iterator[None]:
    fd = os.open(out / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise StoreError(
                f"another netvolume run is writing to {out}",
                files=[out],
                hint="wait for it to finish, or choose another output folder",
            ) from None
        yield
    finally:
        os.close(fd)


def _check_out(out: Path, export_dir: Path) -> None:
    if out.exists() and not out.is_dir():
        raise InputPathError(
            f"output {out} exists and is not a folder", files=[out], hint="choose a new folder"
        )
    if out.is_dir() and any(out.iterdir()) and not (out / STORE_FILE).is_file():
        raise InputPathError(
            f"output folder {out} is not empty and holds no {STORE_FILE}: it is not a "
            "previous 'netvolume run' output, so nothing is written there",
            files=[out],
            hint="choose a new or empty output folder",
        )
    with contextlib.suppress(ValueError):
        export_dir.resolve().relative_to(out.resolve())
        raise InputPathError(
            f"the export {export_dir} lies inside the output folder {out}",
            files=[export_dir, out],
            hint="write the output somewhere else",
        )


def _clean_leftovers(out: Path) -> int:
    """Delete temporary folders and files a killed run left behind; return how many."""
    n = 0
    for folder in (out, out / "studies", out / "assessments", out / "tables", out / "report"):
        if not folder.is_dir():
            continue
        candidates = list(folder.iterdir())
        if folder.name == "studies":
            candidates += [c for p in folder.iterdir() if p.is_dir() for c in p.iterdir()]
        for p in candidates:
            if _TMP.match(p.name) or (folder == out and p.name == ".staging"):
                n += 1
                if p.is_dir() and not p.is_symlink():
                    shutil.rmtree(p, ignore_errors=True)
                else:
                    p.unlink(missing_ok=True)
    return n


def _pseudonym_key(store: Store, key_file: str | None) -> str:
    fingerprint = store.meta("pseudonym_key_sha256")
    if key_file is not None:
        key = keys.read_pseudonym_key(key_file)
    else:
        stored = store.meta("pseudonym_key")
        if stored is None and fingerprint is not None:
            raise StoreError(
                f"{store.path} was made with a pseudonym key file, and none was given",
                files=[store.path],
                hint="pass the same --pseudonym-key FILE as before",
            )
        key = stored or keys.new_pseudonym_key()
        if stored is None:
            store.set_meta("pseudonym_key", key)
    digest = keys.hash_json({"pseudonym_key": key})
    if fingerprint is None:
        store.set_meta("pseudonym_key_sha256", digest)
    elif fingerprint != digest:
        raise StoreError(
            f"the pseudonym key given differs from the one {store.path} was made with: its "
            "patient keys would change",
            files=[store.path],
            hint="pass the same --pseudonym-key FILE as before, or use a new output folder",
        )
    return key


def _file_hashes(store: Store, studies: Sequence[FoundStudy]) -> dict[str, str]:
    cache = store.cached_hashes()
    out: dict[str, str] = {}
    new: list[tuple[str, int, int, str]] = []
    for study in studies:
        for f in study.files:
            hit = cache.get(f.path)
            if hit is not None and hit[0] == f.size and hit[1] == f.mtime_ns:
                out[f.path] = hit[2]
            else:
                digest = keys.file_sha256(f.path)
                out[f.path] = digest
                new.append((f.path, f.size, f.mtime_ns, digest))
    store.cache_hashes(new)
    return out


def _sources(discovery: Discovery, out: Path, keyed: Mapping[str, str]) -> dict[str, str]:
    """StudyInstanceUID -> a folder holding exactly that study's files.

    The deepest folder common to a study's files, when no other study's file lies under
    it; otherwise a staging folder ``OUT/.staging/<study key>`` of symbolic links.
    """
    owner: dict[str, set[str]] = {}
    for p in discovery.patients.values():
        for s in p.studies.values():
            for f in s.files:
                owner.setdefault(str(Path(f.path).parent), set()).add(s.study_instance_uid)
    dirs = sorted(owner)
    sources: dict[str, str] = {}
    for p in discovery.patients.values():
        for s in p.studies.values():
            if not s.has_images:
                continue
            common = os.path.commonpath([str(Path(f.path).parent) for f in s.files])
            prefix = common.rstrip(os.sep) + os.sep
            clean = all(
                owner[d] == {s.study_instance_uid}
                for d in dirs
                if d == common or d.startswith(prefix)
            )
            if clean:
                sources[s.study_instance_uid] = common
                continue
            stage = out / ".staging" / keyed[s.study_instance_uid]
            stage.mkdir(parents=True, exist_ok=True)
            for i, f in enumerate(sorted(s.files, key=lambda x: x.path)):
                link = stage / f"{i:06d}_{Path(f.path).name}"
                if not link.is_symlink():
                    link.symlink_to(Path(f.path).absolute())
            sources[s.study_instance_uid] = str(stage)
    return sources


def _typed(text: str) -> Any:
    if text == "":
        return None
    if text in ("true", "false"):
        return int(text == "true")
    try:
        return int(text)
    except ValueError:
        pass
    try:
        return float(text)
    except ValueError:
        return text


def _read_csv(path: Path) -> list[dict[str, Any]]:
    with path.open(newline="", encoding="utf-8") as f:
        return [{k: _typed(v) for k, v in row.items()} for row in csv.DictReader(f)]


def _is_complete(folder: Path, input_hash: str) -> bool:
    record = read_task_file(folder)
    return record is not None and record.get("input_hash") == input_hash


# ----------------------------------------------------------------------------- recording
def _record_task(
    db: Any,
    *,
    stage: str,
    item: str,
    patient_key: str | None,
    input_hash: str,
    result: Mapping[str, Any],
    result_dir: str | None,
    run_id: int,
) -> None:
    insert(
        db,
        "tasks",
        {
            "stage": stage,
            "item": item,
            "patient_key": patient_key,
            "input_hash": input_hash,
            "status": result["status"],
            "result_dir": result_dir if result["status"] == "done" else None,
            "error_type": result.get("error_type"),
            "message": result.get("message"),
            "seconds": result.get("seconds"),
            "timings_json": json.dumps(result.get("timings", {}), sort_keys=True),
            "run_id": run_id,
            "finished_utc": utc_now(),
        },
    )


def _record_study(db: Any, spec: StudySpec, study: FoundStudy) -> None:
    folder = Path(spec.result_dir)
    facts = json.loads((folder / "study.json").read_text())
    row: dict[str, Any] = {
        "study_key": spec.study_key,
        "patient_key": spec.patient_key,
        "study_instance_uid": study.study_instance_uid,
        "study_date": study.study_date,
        "n_files": len(study.files),
        "modalities": ",".join(study.modalities),
        "input_hash": spec.input_hash,
    }
    for c in STUDY_COLUMNS:
        v = facts.get(c)
        row[c] = ",".join(v) if isinstance(v, list) else (int(v) if isinstance(v, bool) else v)
    insert(db, "studies", row)
    db.execute("DELETE FROM series WHERE study_key = ?", (spec.study_key,))
    for uid, (modality, n) in study.series.items():
        role = (
            "ct"
            if uid == facts.get("ct_series_uid")
            else ("pet" if uid == facts.get("pet_series_uid") else None)
        )
        insert(
            db,
            "series",
            {
                "series_instance_uid": uid,
                "study_key": spec.study_key,
                "modality": modality,
                "n_files": n,
                "role": role,
            },
        )
    db.execute("DELETE FROM measurements WHERE study_key = ?", (spec.study_key,))
    for les in _read_csv(folder / "lesions.csv"):
        insert(
            db,
            "measurements",
            {
                "patient_key": spec.patient_key,
                "study_key": spec.study_key,
                "tracking_id": None,
                **{c: les.get(c) for c in MEASUREMENT_COLUMNS},
            },
        )
    insert(
        db,
        "provenance",
        {
            "entity": "study",
            "item": spec.study_key,
            "record_json": json.dumps(
                {
                    "input_hash": spec.input_hash,
                    "study_instance_uid": study.study_instance_uid,
                    "series": study.series,
                    "measure": facts.get("provenance"),
                    "settings": facts.get("settings"),
                },
                sort_keys=True,
            ),
        },
    )


def _record_patient(db: Any, spec: PatientSpec) -> None:
    folder = Path(spec.result_dir)
    doc = json.loads((folder / "assessment.json").read_text())
    patient = (doc.get("patients") or {}).get(spec.patient_key, {})
    targets = {t["lesion_id"] for t in patient.get("targets", [])}
    tracking = _read_csv(folder / "tracking.csv")
    db.execute(
        "UPDATE measurements SET tracking_id = NULL WHERE patient_key = ?", (spec.patient_key,)
    )
    db.execute("DELETE FROM lesions WHERE patient_key = ?", (spec.patient_key,))
    tracks: dict[str, dict[str, Any]] = {}
    for r in tracking:
        tid = r.get("tracking_id")
        if tid is None:
            continue
        db.execute(
            "UPDATE measurements SET tracking_id = ? WHERE study_key = ? AND lesion_id = ?",
            (str(tid), str(r["study"]), r["lesion_id"]),
        )
        t = tracks.setdefault(
            str(tid),
            {"organ": r.get("organ"), "first_study_key": str(r["study"]), "n": 0},
        )
        t["n"] += 1
    for tid, t in tracks.items():
        insert(
            db,
            "lesions",
            {
                "patient_key": spec.patient_key,
                "tracking_id": tid,
                "organ": t["organ"],
                "first_study_key": t["first_study_key"],
                "n_studies": t["n"],
                "target": int(tid in targets),
            },
        )
    db.execute("DELETE FROM assessments WHERE patient_key = ?", (spec.patient_key,))
    for tp in _read_csv(folder / "timepoints.csv"):
        insert(
            db,
            "assessments",
            {"patient_key": spec.patient_key, **{c: tp.get(c) for c in TIMEPOINT_STORE_COLUMNS}},
        )
    insert(
        db,
        "provenance",
        {
            "entity": "patient",
            "item": spec.patient_key,
            "record_json": json.dumps(
                {
                    "input_hash": spec.input_hash,
                    "studies": list(spec.study_keys),
                    "assessment": doc.get("provenance"),
                    "settings": doc.get("settings"),
                },
                sort_keys=True,
            ),
        },
    )


# ----------------------------------------------------------------------------- the run
def _executor(settings: BatchSettings) -> Executor:
    if settings.scheduler:
        return DaskExecutor(settings.scheduler)
    from netvolume.batch.execute import default_jobs

    return LocalExecutor(settings.jobs or default_jobs())


def run_batch(
    export_dir: str | os.PathLike[str],
    out: str | os.PathLike[str],
    *,
    settings: BatchSettings | None = None,
    on_event: Callable[[Event], None] | None = None,
) -> BatchResult:
    """Run the whole pipeline over an export; resumable, keyed by content.

    Parameters
    ----------
    export_dir
        The DICOM export (any layout).
    out
        The output folder (new, empty, or a previous ``netvolume run`` output).
    settings
        See :class:`BatchSettings`.
    on_event
        Called with each progress event (``start``, ``discovered``, ``task``,
        ``cohort``, ``finished``; see ``docs/batch.md``).

    Returns
    -------
    BatchResult
        ``ok`` is False when any study or patient failed (the others are done).

    Raises
    ------
    InputPathError, StoreError, ClinicalDataError
        Problems that stop the whole run: a bad export or output folder, a store made by
        a newer netvolume or locked by another run, an unreadable clinical facts file.
    """
    s = settings or BatchSettings()
    emit = on_event or (lambda e: None)
    started = time.perf_counter()
    export = Path(export_dir)
    outp = Path(out)
    if not export.is_dir():
        raise InputPathError(
            f"export folder does not exist or is not a folder: {export}",
            files=[export],
            hint="give the folder holding the exported DICOM studies",
        )
    _check_out(outp, export)
    outp.mkdir(parents=True, exist_ok=True)
    from netvolume.batch.cohort import clinical_file

    clinical = clinical_file(export, s.clinical)
    if clinical is not None and not clinical.is_file():
        raise InputPathError(
            f"clinical facts file not found: {clinical}", files=[clinical], hint="check --clinical"
        )
    result = BatchResult(out=outp)
    with _locked(outp):
        cleaned = _clean_leftovers(outp)
        store = Store(outp / STORE_FILE)
        try:
            _run(store, export, outp, s, clinical, result, emit, cleaned)
        finally:
            store.close()
            shutil.rmtree(outp / ".staging", ignore_errors=True)  # links of mixed folders
    result.seconds = time.perf_counter() - started
    emit({"event": "finished", **result.to_dict()})
    return result


def _run(
    store: Store,
    export: Path,
    out: Path,
    s: BatchSettings,
    clinical: Path | None,
    result: BatchResult,
    emit: Callable[[Event], None],
    cleaned: int,
) -> None:
    key = _pseudonym_key(store, s.pseudonym_key_file)
    executor = _executor(s)
    run_id = store.start_run(
        export_dir=str(export.resolve()), settings=s.to_dict(), executor=executor.description
    )
    result.run_id = run_id
    emit(
        {
            "event": "start",
            "run_id": run_id,
            "executor": executor.description,
            "out": str(out),
            "cleaned_leftovers": cleaned,
        }
    )
    t_coord = 0.0
    try:
        t0 = time.perf_counter()
        discovery = discover(export)
        result.unused_files = len(discovery.unused)
        content = s.content()
        patients: dict[str, str] = {}  # patient key -> PatientID (memory only)
        studies: dict[str, tuple[str, FoundStudy]] = {}  # study key -> (patient key, study)
        for pid, p in discovery.patients.items():
            pkey = keys.patient_key(key, pid)
            imaged = [st for st in p.studies.values() if st.has_images]
            if not imaged:
                continue
            patients[pkey] = pid
            for st in imaged:
                studies[keys.study_key(key, st.study_instance_uid, st.study_date)] = (pkey, st)
        hashes = _file_hashes(store, [st for _, st in studies.values()])
        keyed = {st.study_instance_uid: skey for skey, (_, st) in studies.items()}
        sources = _sources(discovery, out, keyed)
        emit(
            {
                "event": "discovered",
                "patients": len(patients),
                "studies": len(studies),
                "files": discovery.num_files,
                "unused_files": len(discovery.unused),
            }
        )
        with store.transaction() as db:
            for pkey, pid in patients.items():
                exists = db.execute(
                    "SELECT 1 FROM patients WHERE patient_key = ?", (pkey,)
                ).fetchone()
                if exists is None:
                    insert(
                        db,
                        "patients",
                        {
                            "patient_key": pkey,
                            "patient_id": pid if s.keep_identifiers else None,
                            "clinical_id": None,
                            "first_run_id": run_id,
                        },
                    )
                else:
                    db.execute(
                        "UPDATE patients SET patient_id = ? WHERE patient_key = ?",
                        (pid if s.keep_identifiers else None, pkey),
                    )
        t_coord += time.perf_counter() - t0

        counts: dict[str, dict[str, int]] = {
            st: {"done": 0, "skipped": 0, "recovered": 0, "failed": 0}
            for st in ("study", "patient", "cohort")
        }
        result.counts = counts
        total = {"study": len(studies), "patient": len(patients)}
        finished = {"study": 0, "patient": 0}
        worker_timings: dict[str, float] = {}
        study_specs: dict[str, StudySpec] = {}
        study_state: dict[str, str] = {}  # study key -> done / failed
        by_patient: dict[str, list[str]] = {}
        for skey, (pkey, st) in sorted(studies.items()):
            by_patient.setdefault(pkey, []).append(skey)
            input_hash = keys.combine(
                (hashes[f.path] for f in st.files if f.modality in IMAGE_MODALITIES),
                {"stage": "study", **content},
            )
            study_specs[skey] = StudySpec(
                patient_key=pkey,
                study_key=skey,
                source=sources[st.study_instance_uid],
                input_hash=input_hash,
                result_dir=str(out / "studies" / pkey / skey),
                settings=dict(s.measure_settings),
                register=s.register_pet,
                key_images=s.key_images,
            )
        patient_hash = {
            pkey: keys.combine(
                (study_specs[k].input_hash for k in skeys), {"stage": "patient", **content}
            )
            for pkey, skeys in by_patient.items()
        }

        def note(stage: str, item: str, pkey: str | None, res: Mapping[str, Any]) -> None:
            status = str(res["status"])
            counts[stage][status] += 1
            finished[stage] += 1
            if status == "failed":
                result.failures.append(
                    {
                        "stage": stage,
                        "item": item,
                        "patient_key": pkey,
                        "error_type": res.get("error_type"),
                        "message": res.get("message"),
                    }
                )
            for k, v in (res.get("timings") or {}).items():
                worker_timings[k] = worker_timings.get(k, 0.0) + float(v)
            emit(
                {
                    "event": "task",
                    "stage": stage,
                    "item": item,
                    "patient_key": pkey,
                    "status": status,
                    "seconds": res.get("seconds"),
                    "error_type": res.get("error_type"),
                    "message": res.get("message"),
                    "finished": finished[stage],
                    "total": total[stage],
                }
            )

        pending: dict[Any, tuple[str, str, Any, int]] = {}
        touched: set[str] = set()  # patients with a study recorded in this run
        attempts: dict[tuple[str, str], int] = {}

        def submit(stage: str, item: str, spec: Any) -> None:
            fn = run_study if stage == "study" else run_patient
            attempts[(stage, item)] = attempts.get((stage, item), 0) + 1
            pending[executor.submit(fn, spec)] = (stage, item, spec, attempts[(stage, item)])

        def record(
            stage: str, item: str, spec: Any, res: Mapping[str, Any], shown: str | None = None
        ) -> None:
            nonlocal t_coord
            t = time.perf_counter()
            pkey = spec.patient_key
            try:
                with store.transaction() as db:
                    if res["status"] == "done":
                        if stage == "study":
                            _record_study(db, spec, studies[item][1])
                            touched.add(pkey)
                        else:
                            _record_patient(db, spec)
                    _record_task(
                        db,
                        stage=stage,
                        item=item,
                        patient_key=pkey,
                        input_hash=spec.input_hash,
                        result=res,
                        result_dir=spec.result_dir,
                        run_id=run_id,
                    )
            finally:
                t_coord += time.perf_counter() - t
            note(stage, item, pkey, {**res, "status": shown} if shown else res)

        def patient_ready(pkey: str) -> None:
            skeys = by_patient[pkey]
            if any(study_state.get(k) is None for k in skeys):
                return
            failed = [k for k in skeys if study_state[k] == "failed"]
            spec = PatientSpec(
                patient_key=pkey,
                studies_dir=str(out / "studies" / pkey),
                study_keys=tuple(skeys),
                input_hash=patient_hash[pkey],
                result_dir=str(out / "assessments" / pkey),
                register=s.register_followups,
                write_sr=s.sr,
            )
            if failed:
                record(
                    "patient",
                    pkey,
                    spec,
                    {
                        "status": "failed",
                        "error_type": "StudyFailed",
                        "message": "not assessed: "
                        + ", ".join(failed)
                        + " could not be measured (a missing time point would change "
                        "the assessment)",
                        "seconds": 0.0,
                    },
                )
                return
            folder = Path(spec.result_dir)
            task = store.task("patient", pkey)
            if _is_complete(folder, spec.input_hash):
                if s.sr:
                    # a study measured again after the assessment: only its SR is missing
                    write_study_srs(out / "studies" / pkey, folder, tuple(skeys), missing_only=True)
                if task and task["status"] == "done" and task["input_hash"] == spec.input_hash:
                    if pkey in touched:  # its studies' rows were rewritten: tracking ids
                        with store.transaction() as db:
                            _record_patient(db, spec)
                    note("patient", pkey, pkey, {"status": "skipped"})
                else:
                    record("patient", pkey, spec, {"status": "done", "seconds": 0.0}, "recovered")
                return
            submit("patient", pkey, spec)

        # studies: skip, adopt or submit
        for skey, spec in study_specs.items():
            pkey, st = studies[skey]
            if st.study_date is None:
                res = {
                    "status": "failed",
                    "error_type": "MissingDate",
                    "message": "the study has no StudyDate, SeriesDate or AcquisitionDate "
                    "[tag: StudyDate] -> fix the export's headers; a time point needs a date",
                    "seconds": 0.0,
                }
                record("study", skey, spec, res)
                study_state[skey] = "failed"
                continue
            task = store.task("study", skey)
            if _is_complete(Path(spec.result_dir), spec.input_hash):
                if task and task["status"] == "done" and task["input_hash"] == spec.input_hash:
                    note("study", skey, pkey, {"status": "skipped"})
                else:  # complete on disk, not in the store: a run killed before its commit
                    record("study", skey, spec, {"status": "done", "seconds": 0.0}, "recovered")
                study_state[skey] = "done"
                continue
            submit("study", skey, spec)
        for pkey in sorted(by_patient):
            patient_ready(pkey)

        while pending:
            done, _ = executor.wait_any(pending)
            for fut in sorted(done, key=lambda f: pending[f][1]):
                stage, item, spec, attempt = pending.pop(fut)
                try:
                    res = executor.result(fut)
                except WorkerLostError as exc:
                    if attempt < 2:
                        submit(stage, item, spec)
                        continue
                    res = {
                        "status": "failed",
                        "error_type": "WorkerLostError",
                        "message": f"the worker process died twice running it ({exc})",
                        "seconds": 0.0,
                    }
                record(stage, item, spec, res)
                if stage == "study":
                    study_state[item] = str(res["status"])
                    patient_ready(spec.patient_key)
    finally:
        executor.close()

    # cohort stage: only when something changed or its outputs are missing
    t0 = time.perf_counter()
    assessed = sorted(
        k
        for k in patients
        if (t := store.task("patient", k)) is not None
        and t["status"] == "done"
        and t["input_hash"] == patient_hash[k]
    )
    clinical_hash = keys.file_sha256(clinical) if clinical is not None else None
    match = _match_clinical(clinical, patients) if clinical is not None else {}
    with store.transaction() as db:
        db.execute("UPDATE patients SET clinical_id = NULL")
        for cid, pkey in match.items():
            db.execute("UPDATE patients SET clinical_id = ? WHERE patient_key = ?", (cid, pkey))
    cohort_hash = keys.hash_json(
        {
            "patients": {k: patient_hash[k] for k in assessed},
            "tasks": sorted(
                (t["stage"], t["item"], t["status"], t["input_hash"])
                for t in store.tasks()
                if t["stage"] != "cohort"
            ),
            "clinical": clinical_hash,
            "report": s.report,
            **content,
        }
    )
    cohort_task = store.task("cohort", "cohort")
    outputs_ok = (out / "tables" / "patients.csv").is_file() and (
        not s.report or (out / "report" / "index.html").is_file()
    )
    if (
        cohort_task is not None
        and cohort_task["status"] == "done"
        and cohort_task["input_hash"] == cohort_hash
        and outputs_ok
    ):
        total["cohort"], finished["cohort"] = 1, 0
        note("cohort", "cohort", None, {"status": "skipped"})
        report = out / "report" / "index.html"
        result.report = str(report) if report.is_file() else None
        emit({"event": "cohort", "status": "skipped"})
    else:
        from netvolume.batch.cohort import run_cohort_stage
        from netvolume.errors import NetVolumeError

        try:
            summary = run_cohort_stage(
                store,
                out,
                patient_keys=assessed,
                clinical=clinical,
                match=match,
                write_report=s.report,
            )
            cohort_res: dict[str, Any] = {
                "status": "done",
                "seconds": time.perf_counter() - t0,
                "timings": summary["timings"],
            }
            result.report = summary["report"]
        except NetVolumeError as exc:
            cohort_res = {
                "status": "failed",
                "error_type": type(exc).__name__,
                "message": str(exc),
                "seconds": time.perf_counter() - t0,
            }
            summary = {}
        with store.transaction() as db:
            _record_task(
                db,
                stage="cohort",
                item="cohort",
                patient_key=None,
                input_hash=cohort_hash,
                result=cohort_res,
                result_dir=str(out),
                run_id=run_id,
            )
        total["cohort"], finished["cohort"] = 1, 0
        note("cohort", "cohort", None, cohort_res)
        emit({"event": "cohort", "status": cohort_res["status"], **summary})
    t_coord += time.perf_counter() - t0
    # failures still standing from earlier runs (tasks of this export not redone)
    seen = {(f["stage"], f["item"]) for f in result.failures}
    for t in store.tasks():
        if t["status"] == "failed" and (t["stage"], t["item"]) not in seen:
            if t["stage"] == "study" and t["item"] not in studies:
                continue
            if t["stage"] == "patient" and t["item"] not in patients:
                continue
            result.failures.append(
                {
                    "stage": t["stage"],
                    "item": t["item"],
                    "patient_key": t["patient_key"],
                    "error_type": t["error_type"],
                    "message": t["message"],
                }
            )
    result.timings = {**worker_timings, "coordinator_s": t_coord}
    store.finish_run(run_id, "ok" if result.ok else "failures", result.to_dict())


def _match_clinical(clinical: Path, patients: Mapping[str, str]) -> dict[str, str]:
    """Clinical patient_id -> patient key, by imaging_id or patient_id equal to the DICOM
    PatientID or to the key (compared in memory; the PatientID is not returned)."""
    from netvolume.trials.clinical import read_clinical

    cohort = read_clinical(clinical)
    by_dicom = {pid: key for key, pid in patients.items()}
    match: dict[str, str] = {}
    for facts in cohort.patients:
        img = facts.get("imaging_id")
        candidates = ([str(img.value)] if img is not None else []) + [facts.patient_id]
        for c in candidates:
            key = by_dicom.get(c) or (c if c in patients else None)
            if key is not None:
                match[facts.patient_id] = key
                break
    return match

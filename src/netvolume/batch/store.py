"""The cohort store: one SQLite database (``OUT/netvolume.sqlite``) per batch output.

SQLite from the standard library, in WAL mode (readers never block the writer; a process
killed mid-transaction leaves the last committed state, SQLite's atomic commit). Only the
coordinating process writes; workers return their results to it, and each finished task
is recorded in one transaction together with its rows, so a task is either fully in the
store or not at all.

Schema (``PRAGMA user_version`` is its version; :data:`MIGRATIONS` brings an older store
up to date in one transaction each, and a store made by a newer netvolume is refused):

============== ==============================================================================
table          one row per
============== ==============================================================================
meta           setting of the store (``pseudonym_key`` unless kept in a file, ``created_utc``)
runs           invocation of ``netvolume run``: version, settings, executor, status, summary
file_hashes    input file: path, size, mtime_ns, SHA-256 (the cache behind content keys)
patients       patient: pseudonymous ``patient_key``; ``patient_id`` only with
               ``--keep-identifiers``; ``clinical_id`` (the clinical table's patient_id)
studies        study: ``study_key``, patient, StudyInstanceUID, date, files, input hash, the
               study-level figures of ``study.json``
series         image series of a study: SeriesInstanceUID, modality, files, role (ct / pet)
tasks          unit of work (stage ``study`` / ``patient`` / ``cohort``): input hash,
               status (``done`` / ``failed``), result folder, error type and message,
               timings
measurements   lesion at one study: every ``lesions.csv`` column, plus its tracking id
lesions        lesion tracked over time: patient, tracking id, organ, first study, target
assessments    time point of a patient's assessment: every ``timepoints.csv`` column
provenance     result's provenance record (JSON): package version, settings, input UIDs
eligibility    (v2) patient x protocol: verdict and counts (``summary.csv`` of eligibility)
outcomes       (v2) patient: start, PFS (days, event, reason), best overall response
============== ==============================================================================
"""

from __future__ import annotations

import contextlib
import datetime
import json
import sqlite3
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from netvolume.errors import InputPathError

__all__ = [
    "LATEST_VERSION",
    "MEASUREMENT_COLUMNS",
    "MIGRATIONS",
    "STUDY_COLUMNS",
    "TIMEPOINT_STORE_COLUMNS",
    "Store",
    "StoreError",
]


class StoreError(InputPathError):
    """The cohort store cannot be used (made by a newer netvolume, corrupt, locked): an
    output-path problem (exit code 3)."""


#: The ``lesions.csv`` columns stored per lesion and study (schema v1; a new column in
#: ``lesions.csv`` needs a migration, which a test enforces).
MEASUREMENT_COLUMNS: tuple[str, ...] = (
    "lesion_id",
    "name",
    "organ",
    "nodal",
    "detected_by",
    "volume_ml",
    "voxels",
    "ld_mm",
    "sa_mm",
    "slice_index",
    "centroid_x_mm",
    "centroid_y_mm",
    "centroid_z_mm",
    "ld_start_x_mm",
    "ld_start_y_mm",
    "ld_start_z_mm",
    "ld_end_x_mm",
    "ld_end_y_mm",
    "ld_end_z_mm",
    "sa_start_x_mm",
    "sa_start_y_mm",
    "sa_start_z_mm",
    "sa_end_x_mm",
    "sa_end_y_mm",
    "sa_end_z_mm",
    "measurable",
    "recist_category",
    "ct_mean_hu",
    "ct_sd_hu",
    "suv_max",
    "suv_mean",
    "suv_peak",
    "activity_max_bqml",
    "activity_mean_bqml",
    "background_suv",
    "tumour_to_liver",
    "tumour_to_spleen",
    "krenning_grade",
    "sstr_positive",
    "qc_flags",
)

#: Study-level figures of ``study.json`` kept in ``studies``.
STUDY_COLUMNS: tuple[str, ...] = (
    "ct_series_uid",
    "pet_series_uid",
    "frame_of_reference_uid",
    "liver_volume_ml",
    "spleen_volume_ml",
    "liver_tumour_volume_ml",
    "liver_tumour_burden_pct",
    "n_liver_lesions",
    "extrahepatic_disease",
    "sstr_positive_fraction",
    "sstr_positive_volume_ml",
    "qc_flags",
)

#: ``timepoints.csv`` columns kept in ``assessments`` (``patient_id`` is the key there).
TIMEPOINT_STORE_COLUMNS: tuple[str, ...] = (
    "date",
    "role",
    "days_from_baseline",
    "sod_mm",
    "sod_measured_mm",
    "nadir_mm",
    "pct_from_baseline",
    "pct_from_nadir",
    "target_response",
    "nontarget_response",
    "new_lesions",
    "overall_response",
    "target_volume_ml",
    "volume_ratio_to_baseline",
    "volume_ratio_to_nadir",
    "volumetric_response",
    "total_tumour_volume_ml",
    "liver_volume_ml",
    "liver_tumour_volume_ml",
    "liver_tumour_burden_pct",
    "tgr_diameter_vs_baseline_pct_per_month",
    "tgr_diameter_vs_previous_pct_per_month",
    "tgr_volume_vs_baseline_pct_per_month",
    "tgr_volume_vs_previous_pct_per_month",
    "notes",
)


def _cols(names: Sequence[str]) -> str:
    return ",\n    ".join(f'"{c}"' for c in names)


_V1 = f"""
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE runs (
    run_id INTEGER PRIMARY KEY AUTOINCREMENT,
    started_utc TEXT NOT NULL,
    finished_utc TEXT,
    netvolume_version TEXT NOT NULL,
    export_dir TEXT NOT NULL,
    settings_json TEXT NOT NULL,
    executor TEXT NOT NULL,
    status TEXT NOT NULL DEFAULT 'running',
    summary_json TEXT
);
CREATE TABLE file_hashes (
    path TEXT PRIMARY KEY,
    size INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL,
    sha256 TEXT NOT NULL
);
CREATE TABLE patients (
    patient_key TEXT PRIMARY KEY,
    patient_id TEXT,
    clinical_id TEXT,
    first_run_id INTEGER
);
CREATE TABLE studies (
    study_key TEXT PRIMARY KEY,
    patient_key TEXT NOT NULL REFERENCES patients(patient_key),
    study_instance_uid TEXT NOT NULL UNIQUE,
    study_date TEXT,
    n_files INTEGER NOT NULL,
    modalities TEXT NOT NULL,
    input_hash TEXT NOT NULL,
    {_cols(STUDY_COLUMNS)}
);
CREATE TABLE series (
    series_instance_uid TEXT NOT NULL,
    study_key TEXT NOT NULL REFERENCES studies(study_key) ON DELETE CASCADE,
    modality TEXT NOT NULL,
    n_files INTEGER NOT NULL,
    role TEXT,
    PRIMARY KEY (study_key, series_instance_uid)
);
CREATE TABLE tasks (
    stage TEXT NOT NULL,
    item TEXT NOT NULL,
    patient_key TEXT,
    input_hash TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('done', 'failed')),
    result_dir TEXT,
    error_type TEXT,
    message TEXT,
    seconds REAL,
    timings_json TEXT,
    run_id INTEGER REFERENCES runs(run_id),
    finished_utc TEXT NOT NULL,
    PRIMARY KEY (stage, item)
);
CREATE TABLE measurements (
    patient_key TEXT NOT NULL,
    study_key TEXT NOT NULL REFERENCES studies(study_key) ON DELETE CASCADE,
    tracking_id TEXT,
    {_cols(MEASUREMENT_COLUMNS)},
    PRIMARY KEY (study_key, lesion_id)
);
CREATE TABLE lesions (
    patient_key TEXT NOT NULL,
    tracking_id TEXT NOT NULL,
    organ TEXT,
    first_study_key TEXT,
    n_studies INTEGER,
    target INTEGER NOT NULL,
    PRIMARY KEY (patient_key, tracking_id)
);
CREATE TABLE assessments (
    patient_key TEXT NOT NULL,
    {_cols(TIMEPOINT_STORE_COLUMNS)},
    PRIMARY KEY (patient_key, date)
);
CREATE TABLE provenance (
    entity TEXT NOT NULL,
    item TEXT NOT NULL,
    record_json TEXT NOT NULL,
    PRIMARY KEY (entity, item)
);
"""

_V2 = """
CREATE TABLE eligibility (
    protocol TEXT NOT NULL,
    clinical_id TEXT NOT NULL,
    patient_key TEXT,
    verdict TEXT NOT NULL,
    reason TEXT,
    reference_date TEXT,
    n_met INTEGER,
    n_not_met INTEGER,
    n_unknown INTEGER,
    n_needs_review INTEGER,
    PRIMARY KEY (protocol, clinical_id)
);
CREATE TABLE outcomes (
    patient_key TEXT PRIMARY KEY,
    clinical_id TEXT,
    start_date TEXT,
    start_source TEXT,
    pfs_days INTEGER,
    pfs_event INTEGER,
    pfs_reason TEXT,
    best_overall_response TEXT,
    best_sod_change_pct REAL
);
"""

#: Schema migrations: entry i brings a store from version i to i + 1.
MIGRATIONS: tuple[str, ...] = (_V1, _V2)
LATEST_VERSION = len(MIGRATIONS)

#: Tables in the order they are exported.
TABLES: tuple[str, ...] = (
    "patients",
    "studies",
    "series",
    "measurements",
    "lesions",
    "assessments",
    "eligibility",
    "outcomes",
    "tasks",
    "runs",
    "provenance",
)


def utc_now() -> str:
    """The current UTC time, ISO 8601 to the second."""
    return datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")


class Store:
    """An open cohort store.

    Parameters
    ----------
    path
        The database file (created with the latest schema when missing).
    migrate_to
        Bring the schema to this version (default the latest; tests use an older one to
        exercise the migrations).

    Raises
    ------
    StoreError
        If the file is not a netvolume store, or was made by a newer netvolume.
    """

    def __init__(self, path: str | Path, *, migrate_to: int = LATEST_VERSION) -> None:
        self.path = Path(path)
        try:
            self.db = sqlite3.connect(self.path, isolation_level=None, timeout=30.0)
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("PRAGMA synchronous=NORMAL")
            self.db.execute("PRAGMA foreign_keys=ON")
            version = int(self.db.execute("PRAGMA user_version").fetchone()[0])
        except sqlite3.DatabaseError as exc:
            raise StoreError(
                f"{self.path} is not a usable SQLite database ({exc})",
                files=[self.path],
                hint="give a new output folder, or move the damaged file away",
            ) from None
        if version > LATEST_VERSION:
            self.db.close()
            raise StoreError(
                f"the cohort store {self.path} has schema version {version}, newer than "
                f"this netvolume knows ({LATEST_VERSION})",
                files=[self.path],
                hint="upgrade netvolume, or write to a new output folder",
            )
        if version == 0:
            tables = self.db.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]
            if tables:
                self.db.close()
                raise StoreError(
                    f"{self.path} is an SQLite database but not a netvolume store",
                    files=[self.path],
                    hint="give a new output folder",
                )
        for v in range(version, migrate_to):
            with self.transaction():
                for statement in MIGRATIONS[v].split(";"):
                    if statement.strip():
                        self.db.execute(statement)
                self.db.execute(f"PRAGMA user_version = {v + 1}")
        self.version = max(version, migrate_to)

    # ------------------------------------------------------------------ basics
    def close(self) -> None:
        """Close the connection."""
        self.db.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextlib.contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """``BEGIN IMMEDIATE`` ... ``COMMIT``; rolled back on any exception."""
        self.db.execute("BEGIN IMMEDIATE")
        try:
            yield self.db
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        self.db.execute("COMMIT")

    def meta(self, key: str) -> str | None:
        """A ``meta`` value, or None."""
        row = self.db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def set_meta(self, key: str, value: str) -> None:
        """Set a ``meta`` value (own transaction)."""
        with self.transaction() as db:
            db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key, value))

    def rows(self, table: str) -> list[dict[str, Any]]:
        """Every row of ``table`` as dicts, in primary-key order."""
        if table not in TABLES:
            raise ValueError(f"unknown table {table!r}")
        cur = self.db.execute(f'SELECT * FROM "{table}" ORDER BY 1, 2')
        names = [d[0] for d in cur.description]
        return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]

    def columns(self, table: str) -> list[str]:
        """Column names of ``table``."""
        return [str(r[1]) for r in self.db.execute(f'PRAGMA table_info("{table}")')]

    # ------------------------------------------------------------------ runs
    def start_run(self, *, export_dir: str, settings: Mapping[str, Any], executor: str) -> int:
        """Record a new run; return its id."""
        from netvolume._version import __version__

        with self.transaction() as db:
            cur = db.execute(
                "INSERT INTO runs (started_utc, netvolume_version, export_dir, settings_json, "
                "executor) VALUES (?, ?, ?, ?, ?)",
                (
                    utc_now(),
                    __version__,
                    export_dir,
                    json.dumps(settings, sort_keys=True),
                    executor,
                ),
            )
            return int(cur.lastrowid or 0)

    def finish_run(self, run_id: int, status: str, summary: Mapping[str, Any]) -> None:
        """Record the end of a run."""
        with self.transaction() as db:
            db.execute(
                "UPDATE runs SET finished_utc = ?, status = ?, summary_json = ? WHERE run_id = ?",
                (utc_now(), status, json.dumps(summary, sort_keys=True), run_id),
            )

    # ------------------------------------------------------------------ file hashes
    def cached_hashes(self) -> dict[str, tuple[int, int, str]]:
        """path -> (size, mtime_ns, sha256) of every cached file."""
        return {
            str(p): (int(s), int(m), str(h))
            for p, s, m, h in self.db.execute(
                "SELECT path, size, mtime_ns, sha256 FROM file_hashes"
            )
        }

    def cache_hashes(self, rows: Sequence[tuple[str, int, int, str]]) -> None:
        """Store (path, size, mtime_ns, sha256) rows."""
        if not rows:
            return
        with self.transaction() as db:
            db.executemany(
                "INSERT OR REPLACE INTO file_hashes (path, size, mtime_ns, sha256) "
                "VALUES (?, ?, ?, ?)",
                rows,
            )

    # ------------------------------------------------------------------ tasks
    def task(self, stage: str, item: str) -> dict[str, Any] | None:
        """The recorded task, or None."""
        cur = self.db.execute("SELECT * FROM tasks WHERE stage = ? AND item = ?", (stage, item))
        row = cur.fetchone()
        if row is None:
            return None
        return dict(zip([d[0] for d in cur.description], row, strict=True))

    def tasks(self, stage: str | None = None) -> list[dict[str, Any]]:
        """Every recorded task (of one stage)."""
        rows = self.rows("tasks")
        return [r for r in rows if stage is None or r["stage"] == stage]


def insert(db: sqlite3.Connection, table: str, row: Mapping[str, Any]) -> None:
    """``INSERT OR REPLACE`` one row given as a mapping (columns quoted)."""
    names = list(row)
    db.execute(
        f'INSERT OR REPLACE INTO "{table}" ({", ".join(f"{chr(34)}{n}{chr(34)}" for n in names)}) '
        f"VALUES ({', '.join('?' for _ in names)})",
        [row[n] for n in names],
    )

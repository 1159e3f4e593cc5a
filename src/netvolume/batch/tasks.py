"""The units of work of a batch run, executed in worker processes (local or Dask).

Each task is a top-level function of one picklable spec that returns a small JSON-able
dict; it never touches the store (the coordinating process records the result) and it
never raises for a bad study: a :class:`~netvolume.errors.NetVolumeError` (and any other
exception, which is a netvolume bug) becomes ``{"status": "failed", "error_type": ...,
"message": ...}`` so that one study never stops the others.

Crash safety: a task builds its whole result folder under a hidden temporary name beside
the final one (``.<name>.tmp-<pid>``, :func:`netvolume.longitudinal._write.output_folder`),
writes ``task.json`` (its input hash) last, and renames the folder into place; a previous
result is moved aside first (``.<name>.old-<pid>``) and deleted after. A process killed
at any point leaves the old complete folder, the new complete folder, or a hidden
temporary folder that the next run deletes.
"""

from __future__ import annotations

import contextlib
import csv
import json
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from netvolume.errors import NetVolumeError
from netvolume.longitudinal._write import output_folder

__all__ = [
    "TASK_FILE",
    "PatientSpec",
    "StudySpec",
    "init_worker",
    "run_patient",
    "run_study",
]

#: Written last into every result folder: stage, item, input hash, version, timings.
TASK_FILE = "task.json"
#: The TID 1500 SR of a study, written by the patient stage (it needs the tracking ids).
SR_FILE = "measurements.sr.dcm"


@dataclass(frozen=True)
class StudySpec:
    """One study to measure.

    Attributes
    ----------
    patient_key, study_key : str
    source : str
        The folder holding exactly this study's files (or a staging folder of links).
    input_hash : str
        Content key of the inputs and settings.
    result_dir : str
        The final result folder ``OUT/studies/<patient_key>/<study_key>``.
    settings : dict of str -> str
        ``MeasureSettings`` overrides (``--set NAME=VALUE``).
    register : bool
        Register the PET to the CT when their frames of reference differ.
    key_images : bool
        Render the key images.
    """

    patient_key: str
    study_key: str
    source: str
    input_hash: str
    result_dir: str
    settings: dict[str, str]
    register: bool = False
    key_images: bool = True


@dataclass(frozen=True)
class PatientSpec:
    """One patient to assess over time (after all their studies are measured).

    Attributes
    ----------
    patient_key : str
    studies_dir : str
        ``OUT/studies/<patient_key>``: one measure output per study.
    study_keys : tuple of str
        The studies to assess (each a folder of ``studies_dir``).
    input_hash : str
    result_dir : str
        ``OUT/assessments/<patient_key>``.
    register : bool
        Register follow-ups to the baseline.
    write_sr : bool
        Write each study's TID 1500 SR (needs the tracking ids).
    """

    patient_key: str
    studies_dir: str
    study_keys: tuple[str, ...]
    input_hash: str
    result_dir: str
    register: bool = True
    write_sr: bool = True


def init_worker(threads: int) -> None:
    """Limit a worker's SimpleITK and numba threads (``--jobs`` processes share the cores)."""
    import numba
    import SimpleITK as sitk

    sitk.ProcessObject.SetGlobalDefaultNumberOfThreads(max(1, threads))
    with contextlib.suppress(ValueError):
        numba.set_num_threads(max(1, min(threads, numba.config.NUMBA_NUM_THREADS)))  # type: ignore[attr-defined]


def _failure(exc: BaseException, started: float) -> dict[str, Any]:
    if isinstance(exc, NetVolumeError):
        error_type, message = type(exc).__name__, str(exc)
    else:
        frame = traceback.extract_tb(exc.__traceback__)[-1] if exc.__traceback__ else None
        where = f" at {Path(frame.filename).name}:{frame.lineno}" if frame else ""
        error_type = f"InternalError({type(exc).__name__})"
        message = f"{exc}{where} (a bug in netvolume: please report it)"
    return {
        "status": "failed",
        "error_type": error_type,
        "message": message,
        "seconds": time.perf_counter() - started,
        "timings": {},
    }


def _write_task_file(folder: Path, stage: str, item: str, input_hash: str, timings: dict) -> None:
    from netvolume._version import __version__

    record = {
        "stage": stage,
        "item": item,
        "input_hash": input_hash,
        "netvolume_version": __version__,
        "timings_s": timings,
    }
    (folder / TASK_FILE).write_text(json.dumps(record, indent=2, sort_keys=True) + "\n")


def read_task_file(folder: Path) -> dict[str, Any] | None:
    """The ``task.json`` of a result folder, or None when absent or unreadable."""
    try:
        value = json.loads((folder / TASK_FILE).read_text())
    except (OSError, ValueError):
        return None
    return value if isinstance(value, dict) else None


def run_study(spec: StudySpec) -> dict[str, Any]:
    """Measure one study and write its result folder; never raises for bad input.

    Returns
    -------
    dict
        ``status`` (``done`` / ``failed``), ``seconds``, ``timings`` (``measure_s``,
        ``write_s``, ``key_images_s``), ``n_lesions``; on failure ``error_type`` and
        ``message``.
    """
    started = time.perf_counter()
    try:
        from netvolume.measure import MeasureSettings, measure_study, write_measurement

        settings = MeasureSettings().with_overrides(dict(spec.settings))
        m = measure_study(spec.source, settings=settings, register=spec.register)
        t_measure = time.perf_counter()
        with output_folder(spec.result_dir, overwrite=True, marker=TASK_FILE) as tmp:
            write_measurement(m, tmp, overwrite=True)  # tmp is empty
            t_write = time.perf_counter()
            if spec.key_images:
                from netvolume.report.keyimage import render_key_images

                render_key_images(m, tmp / "keyimages")
            t_key = time.perf_counter()
            timings = {
                "measure_s": t_measure - started,
                "write_s": t_write - t_measure,
                "key_images_s": t_key - t_write,
            }
            _write_task_file(tmp, "study", spec.study_key, spec.input_hash, timings)
        return {
            "status": "done",
            "seconds": time.perf_counter() - started,
            "timings": timings,
            "n_lesions": len(m.lesions),
        }
    except Exception as exc:  # the folder's temporary is already gone (output_folder)
        return _failure(exc, started)


def _tracking_map(tracking_csv: Path) -> dict[str, dict[int, str]]:
    """study folder name -> {measure lesion_id: tracking id} from ``tracking.csv``."""
    out: dict[str, dict[int, str]] = {}
    if not tracking_csv.is_file():
        return out
    with tracking_csv.open(newline="") as f:
        for row in csv.DictReader(f):
            if row.get("lesion_id") and row.get("tracking_id"):
                out.setdefault(row["study"], {})[int(row["lesion_id"])] = row["tracking_id"]
    return out


def _roles(timepoints_csv: Path) -> dict[str, str]:
    """date -> role (``baseline``, ``follow-up``, ``pre-baseline``) from ``timepoints.csv``."""
    roles: dict[str, str] = {}
    if timepoints_csv.is_file():
        with timepoints_csv.open(newline="") as f:
            for row in csv.DictReader(f):
                roles[row["date"]] = row["role"]
    return roles


def write_study_srs(
    studies_dir: Path,
    assessment_dir: Path,
    study_keys: tuple[str, ...],
    *,
    missing_only: bool = False,
) -> list[str]:
    """Write each study's TID 1500 SR with the tracking ids and time points of an assessment.

    Parameters
    ----------
    studies_dir
        ``OUT/studies/<patient>``.
    assessment_dir
        The patient's assessment folder (``tracking.csv``, ``timepoints.csv``).
    study_keys
        The studies.
    missing_only
        Only the studies without an SR (a study measured again after its patient was
        assessed: the assessment is unchanged, its SR is rewritten).

    Returns
    -------
    list of str
        The studies whose SR was written.
    """
    from netvolume.io.sr_write import write_measurement_sr

    tracking = _tracking_map(assessment_dir / "tracking.csv")
    roles = _roles(assessment_dir / "timepoints.csv")
    written = []
    for key in study_keys:
        folder = studies_dir / key
        if missing_only and (folder / SR_FILE).is_file():
            continue
        study = json.loads((folder / "study.json").read_text())
        date = study.get("study_date")
        write_measurement_sr(
            folder,
            folder / SR_FILE,
            tracking=tracking.get(key, {}),
            time_point=roles.get(date or ""),
            time_point_date=date,
            tracking_namespace=studies_dir.name,  # the patient key: one UID per lesion
        )
        written.append(key)
    return written


def run_patient(spec: PatientSpec) -> dict[str, Any]:
    """Register, track and assess one patient; write each study's SR; never raises.

    Returns
    -------
    dict
        As :func:`run_study`, with timings ``assess_s`` and ``sr_s``.
    """
    started = time.perf_counter()
    try:
        from netvolume.longitudinal import assess_patient_dir

        studies = Path(spec.studies_dir)
        present = sorted(p.name for p in studies.iterdir() if p.is_dir() and p.name[0] != ".")
        if present != sorted(spec.study_keys):
            raise NetVolumeError(
                f"the studies folder {studies} holds {present}, expected {sorted(spec.study_keys)}",
                files=[studies],
                hint="run netvolume run again: it rebuilds the missing studies",
            )
        with output_folder(spec.result_dir, overwrite=True, marker=TASK_FILE) as tmp:
            result = assess_patient_dir(
                studies.resolve(), tmp, register=spec.register, overwrite=True
            )
            if result.failures:
                raise NetVolumeError(
                    "; ".join(f"{k}: {v}" for k, v in sorted(result.failures.items())),
                    files=[studies],
                )
            t_assess = time.perf_counter()
            if spec.write_sr:
                write_study_srs(studies, tmp, spec.study_keys)
            t_sr = time.perf_counter()
            timings = {"assess_s": t_assess - started, "sr_s": t_sr - t_assess}
            _write_task_file(tmp, "patient", spec.patient_key, spec.input_hash, timings)
        return {"status": "done", "seconds": time.perf_counter() - started, "timings": timings}
    except Exception as exc:  # the folder's temporary is already gone (output_folder)
        return _failure(exc, started)

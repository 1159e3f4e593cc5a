"""Run one protocol's pipeline on a cohort: imaging, eligibility, the planned analysis.

``run_pipeline("ibi_response", clinical="clinical.csv", cohort_dir="data/sample_dicom",
out="OUT")`` measures and assesses every patient folder of the cohort (``netvolume
assess``, one ``OUT/imaging/<folder>/`` each; or reuses ``imaging_dir``), evaluates the
protocol's eligibility (``OUT/criteria.csv``, ``OUT/summary.csv``,
``OUT/eligibility.json``), then runs the protocol's planned analysis on the analysed
population (``OUT/<table>.csv`` and ``OUT/analysis.json``). The output folder is built in
a temporary folder and renamed into place; a patient whose imaging fails is listed under
``failures`` and analysed without imaging (its imaging criteria are ``unknown``).

Patient folders are matched to the clinical table by the clinical ``imaging_id``, else by
``patient_id`` equal to the folder name, else by the DICOM PatientID of the folder's files
equal to ``patient_id`` (read, compared in memory, never written or logged).
"""

from __future__ import annotations

import datetime
import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from netvolume._version import __version__
from netvolume.analysis.eligibility import run_eligibility, write_eligibility
from netvolume.analysis.plans import PLANS, POPULATIONS, select_population
from netvolume.errors import InputPathError, NetVolumeError, ProtocolError
from netvolume.trials import ClinicalCohort, ImagingFacts, load_protocol, read_clinical
from netvolume.trials.imaging import read_imaging

__all__ = ["PipelineRun", "match_patient_folders", "run_pipeline"]


@dataclass
class PipelineRun:
    """What a pipeline run did."""

    name: str
    out: Path
    verdicts: dict[str, str] = field(default_factory=dict)
    failures: dict[str, str] = field(default_factory=dict)
    analysed: list[str] = field(default_factory=list)


def _patient_folders(cohort_dir: Path) -> list[Path]:
    """Sub-folders holding at least one sub-folder (a study)."""
    return sorted(
        p
        for p in cohort_dir.iterdir()
        if p.is_dir() and not p.name.startswith(".") and any(q.is_dir() for q in p.iterdir())
    )


def _dicom_patient_id(folder: Path) -> str | None:
    import pydicom

    for path in sorted(folder.rglob("*")):
        if not path.is_file() or path.suffix in (".json", ".csv", ".gz", ".nii", ".txt"):
            continue
        try:
            ds = pydicom.dcmread(path, stop_before_pixels=True, specific_tags=["PatientID"])
        except Exception:
            continue
        value = getattr(ds, "PatientID", None)
        if value:
            return str(value)
    return None


def match_patient_folders(cohort_dir: Path, cohort: ClinicalCohort) -> dict[str, Path]:
    """Clinical patient_id -> patient folder (see the module docstring for the rules)."""
    folders = _patient_folders(cohort_dir)
    by_name = {f.name: f for f in folders}
    out: dict[str, Path] = {}
    unmatched = []
    for facts in cohort.patients:
        key = facts.get("imaging_id")
        if key is not None and str(key.value) in by_name:
            out[facts.patient_id] = by_name[str(key.value)]
        elif facts.patient_id in by_name:
            out[facts.patient_id] = by_name[facts.patient_id]
        else:
            unmatched.append(facts.patient_id)
    if unmatched:
        taken = set(out.values())
        ids = {f: _dicom_patient_id(f) for f in folders if f not in taken}
        for pid in unmatched:
            hits = [f for f, dicom_id in ids.items() if dicom_id == pid]
            if len(hits) == 1:
                out[pid] = hits[0]
    return out


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime.date):
        return value.isoformat()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def run_pipeline(
    name: str,
    *,
    clinical: str | Path,
    out: str | Path,
    cohort_dir: str | Path | None = None,
    imaging_dir: str | Path | None = None,
    population: str = "not_excluded",
    overwrite: bool = False,
    register: bool = True,
) -> PipelineRun:
    """Run the pipeline ``name`` (a bundled protocol name) on a cohort.

    Parameters
    ----------
    name : str
        ``ibi_response``, ``lesion_based_prrt``, ``retreatment``, ``volumetric_followup``
        or ``personalised_prrt``.
    clinical : str or Path
        The cohort's clinical facts (CSV or JSON).
    out : str or Path
        Output folder.
    cohort_dir : str or Path, optional
        Folder of patient folders (each: one sub-folder per study) to measure and assess.
    imaging_dir : str or Path, optional
        Existing ``netvolume assess`` outputs to use instead (not measured again).
    population : {"not_excluded", "eligible", "all"}
        Which patients the analysis includes.
    overwrite : bool
        Replace a previous output of ``netvolume analyse`` in ``out``.
    register : bool
        Register follow-ups to the baseline when assessing.

    Returns
    -------
    PipelineRun
    """
    from netvolume.longitudinal import assess_patient_dir
    from netvolume.longitudinal._write import csv_bytes, output_folder

    if name not in PLANS:
        raise ProtocolError(
            f"no pipeline named {name!r}",
            tag="pipeline",
            hint=f"use one of {', '.join(sorted(PLANS))}",
        )
    if population not in POPULATIONS:
        raise ProtocolError(
            f"population {population!r} is not one of {', '.join(POPULATIONS)}",
            tag="population",
        )
    protocol = load_protocol(name)
    cohort = read_clinical(clinical)
    run = PipelineRun(name=name, out=Path(out))
    imaging: dict[str, ImagingFacts] = {}
    folders: dict[str, Path] = {}
    with output_folder(out, overwrite=overwrite, marker="analysis.json") as tmp:
        if imaging_dir is not None:
            found = read_imaging(imaging_dir)
            for facts in cohort.patients:
                key = facts.get("imaging_id")
                for k in ((str(key.value),) if key is not None else ()) + (facts.patient_id,):
                    if k in found:
                        imaging[facts.patient_id] = found[k]
                        break
        elif cohort_dir is not None:
            root = Path(cohort_dir)
            if not root.is_dir():
                raise InputPathError(
                    "cohort folder does not exist", files=[root], hint="give a folder of patients"
                )
            folders = match_patient_folders(root, cohort)
            for pid, folder in folders.items():
                dest = tmp / "imaging" / folder.name
                try:
                    result = assess_patient_dir(folder, dest, register=register)
                except NetVolumeError as exc:
                    run.failures[pid] = f"{folder.name}: {type(exc).__name__}: {exc.message}"
                    shutil.rmtree(dest, ignore_errors=True)
                    continue
                if result.failures:
                    run.failures[pid] = f"{folder.name}: " + "; ".join(
                        f"{k}: {v}" for k, v in result.failures.items()
                    )
                    continue
                facts_by_key = read_imaging(dest, shown_as=Path(out) / "imaging" / folder.name)
                imaging[pid] = next(iter(facts_by_key.values()))
        eligibility = run_eligibility(protocol, cohort, imaging)
        write_eligibility(tmp, eligibility)
        run.verdicts = {e.patient_id: str(e.verdict) for e in eligibility.results}
        patients = select_population(cohort, eligibility.results, population)
        run.analysed = [p.patient_id for p in patients]
        analysis = PLANS[name](protocol, patients, imaging)
        for table, (columns, rows) in analysis.tables.items():
            (tmp / f"{table}.csv").write_bytes(csv_bytes(columns, rows))
        doc = {
            "pipeline": name,
            "protocol": {
                "name": protocol.name,
                "version": protocol.version,
                "seed": protocol.seed,
                "sha256": protocol.sha256,
            },
            "population": population,
            "analysed": run.analysed,
            "verdicts": run.verdicts,
            "statistics": analysis.statistics,
            "tables": {t: f"{t}.csv" for t in analysis.tables},
            "notes": analysis.notes,
            "failures": run.failures,
            "provenance": {
                "netvolume_version": __version__,
                "clinical": {"file": str(clinical), "sha256": cohort.sha256},
                "cohort_dir": str(cohort_dir) if cohort_dir is not None else None,
                "imaging_dir": str(imaging_dir) if imaging_dir is not None else None,
                "imaging": {
                    pid: {
                        "folder": folders[pid].name if pid in folders else None,
                        "source": f.source,
                        "assessment_sha256": f.assessment_sha256,
                        "studies": [s.study_uid for s in f.scans],
                    }
                    for pid, f in imaging.items()
                },
                "registration": register,
            },
        }
        text = json.dumps(doc, indent=1, default=_json_default, allow_nan=False) + "\n"
        (tmp / "analysis.json").write_bytes(text.encode("utf-8"))
    return run

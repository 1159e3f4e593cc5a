"""Eligibility of a cohort for one protocol, written as ``criteria.csv``, ``summary.csv``
and ``eligibility.json`` (``netvolume eligibility``).

``criteria.csv`` has one row per patient and criterion: ``patient_id``, ``protocol``,
``criterion``, ``status`` (met / not_met / unknown / needs_review), ``evidence``, then
``kind``, ``missing`` (the facts an unknown lacks, ``;``-separated), ``provenance`` (the
clinical file and line, study, series and lesion each value came from, `` | ``-separated),
``rule``, ``text`` and ``source`` (the protocol's words). ``summary.csv`` has one row per
patient: ``patient_id``, ``protocol``, ``verdict`` (eligible / not_eligible /
undetermined), ``reason``, ``reference_date`` and the count of each status.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from netvolume._version import __version__
from netvolume.longitudinal._write import csv_bytes
from netvolume.trials import (
    ClinicalCohort,
    Eligibility,
    ImagingFacts,
    Protocol,
    Status,
    evaluate_cohort,
)

__all__ = [
    "CRITERIA_COLUMNS",
    "SUMMARY_COLUMNS",
    "EligibilityRun",
    "eligibility_rows",
    "run_eligibility",
    "write_eligibility",
]

CRITERIA_COLUMNS = (
    "patient_id",
    "protocol",
    "criterion",
    "status",
    "evidence",
    "kind",
    "missing",
    "provenance",
    "rule",
    "text",
    "source",
)
SUMMARY_COLUMNS = (
    "patient_id",
    "protocol",
    "verdict",
    "reason",
    "reference_date",
    "n_met",
    "n_not_met",
    "n_unknown",
    "n_needs_review",
)


@dataclass(frozen=True)
class EligibilityRun:
    """The eligibility of every patient of a cohort for one protocol."""

    protocol: Protocol
    cohort: ClinicalCohort
    results: tuple[Eligibility, ...]
    imaging_sources: Mapping[str, str]

    def provenance(self) -> dict[str, Any]:
        """Package version, protocol file and hash, clinical file hash, imaging sources."""
        return {
            "netvolume_version": __version__,
            "protocol": {
                "name": self.protocol.name,
                "version": self.protocol.version,
                "file": Path(self.protocol.path).name,
                "sha256": self.protocol.sha256,
                "seed": self.protocol.seed,
            },
            "clinical": {"file": str(self.cohort.path), "sha256": self.cohort.sha256},
            "imaging": dict(self.imaging_sources),
        }


def eligibility_rows(
    results: Sequence[Eligibility],
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The rows of ``criteria.csv`` and of ``summary.csv``."""
    criteria = []
    summary = []
    for e in results:
        for r in e.results:
            criteria.append(
                {
                    "patient_id": e.patient_id,
                    "protocol": e.protocol,
                    "criterion": r.criterion,
                    "status": str(r.status),
                    "evidence": r.evidence,
                    "kind": r.kind,
                    "missing": ";".join(r.missing),
                    "provenance": " | ".join(r.provenance),
                    "rule": r.rule,
                    "text": r.text,
                    "source": r.source,
                }
            )
        counts = {s: sum(1 for r in e.results if r.status == s) for s in Status}
        summary.append(
            {
                "patient_id": e.patient_id,
                "protocol": e.protocol,
                "verdict": str(e.verdict),
                "reason": e.reason,
                "reference_date": e.reference_date.isoformat() if e.reference_date else "",
                "n_met": counts[Status.MET],
                "n_not_met": counts[Status.NOT_MET],
                "n_unknown": counts[Status.UNKNOWN],
                "n_needs_review": counts[Status.NEEDS_REVIEW],
            }
        )
    return criteria, summary


def write_eligibility(folder: Path, run: EligibilityRun) -> None:
    """Write ``criteria.csv``, ``summary.csv`` and ``eligibility.json`` into ``folder``
    (the temporary folder of :func:`~netvolume.longitudinal._write.output_folder`, renamed
    into place when complete)."""
    criteria, summary = eligibility_rows(run.results)
    (folder / "criteria.csv").write_bytes(csv_bytes(CRITERIA_COLUMNS, criteria))
    (folder / "summary.csv").write_bytes(csv_bytes(SUMMARY_COLUMNS, summary))
    doc = {
        "provenance": run.provenance(),
        "patients": [e.to_dict() for e in run.results],
    }
    text = json.dumps(doc, indent=1, sort_keys=False, allow_nan=False) + "\n"
    (folder / "eligibility.json").write_bytes(text.encode("utf-8"))


def run_eligibility(
    protocol: Protocol,
    cohort: ClinicalCohort,
    imaging: Mapping[str, ImagingFacts] | None = None,
) -> EligibilityRun:
    """Evaluate ``protocol`` on every patient of ``cohort`` (imaging keyed by patient id
    or by the clinical ``imaging_id``)."""
    results = tuple(evaluate_cohort(protocol, cohort.patients, imaging))
    sources = {e.patient_id: e.imaging_source for e in results if e.imaging_source is not None}
    return EligibilityRun(protocol, cohort, results, sources)

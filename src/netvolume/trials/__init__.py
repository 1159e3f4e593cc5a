"""Trial protocols, clinical facts and the eligibility engine (domain layer: records).

* :mod:`~netvolume.trials.clinical`: the clinical facts schema (``clinical_schema.toml``,
  published as docs/clinical.md) and :func:`read_clinical` (CSV or JSON, units converted).
* :mod:`~netvolume.trials.protocol`: protocol definitions, data files under
  ``protocols/`` (one per seed protocol), read by :func:`load_protocol`.
* :mod:`~netvolume.trials.imaging`: imaging facts from ``netvolume assess`` outputs
  (:func:`read_imaging`) and the imaging checks a protocol can name.
* :mod:`~netvolume.trials.engine`: :func:`evaluate` -> :class:`Eligibility`, every
  criterion ``met`` / ``not_met`` / ``unknown`` / ``needs_review`` with its evidence and
  provenance, and the verdict.
"""

from __future__ import annotations

from netvolume.trials._status import CheckOutcome, Status, Verdict
from netvolume.trials.clinical import (
    AlternativeUnit,
    ClinicalCohort,
    Fact,
    FieldSpec,
    PatientFacts,
    clinical_schema,
    clinical_schema_markdown,
    field_spec,
    read_clinical,
)
from netvolume.trials.engine import CriterionResult, Eligibility, evaluate, evaluate_cohort
from netvolume.trials.imaging import (
    IMAGING_CHECKS,
    ImagedLesion,
    ImagedScan,
    ImagingFacts,
    read_imaging,
)
from netvolume.trials.protocol import Criterion, Protocol, load_protocol, protocol_names

__all__ = [
    "IMAGING_CHECKS",
    "AlternativeUnit",
    "CheckOutcome",
    "ClinicalCohort",
    "Criterion",
    "CriterionResult",
    "Eligibility",
    "Fact",
    "FieldSpec",
    "ImagedLesion",
    "ImagedScan",
    "ImagingFacts",
    "PatientFacts",
    "Protocol",
    "Status",
    "Verdict",
    "clinical_schema",
    "clinical_schema_markdown",
    "evaluate",
    "evaluate_cohort",
    "field_spec",
    "load_protocol",
    "protocol_names",
    "read_clinical",
    "read_imaging",
]

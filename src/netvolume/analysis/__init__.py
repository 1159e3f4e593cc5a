"""Cohort orchestration: eligibility of a cohort and the seed protocols' pipelines.

* :func:`~netvolume.analysis.eligibility.run_eligibility` /
  :func:`~netvolume.analysis.eligibility.write_eligibility`: ``netvolume eligibility``.
* :func:`~netvolume.analysis.runner.run_pipeline`: ``netvolume analyse --pipeline NAME``
  (imaging, eligibility, then the protocol's planned analysis from
  :data:`~netvolume.analysis.plans.PLANS`).
"""

from __future__ import annotations

from netvolume.analysis.eligibility import EligibilityRun, run_eligibility, write_eligibility
from netvolume.analysis.plans import PLANS, AnalysisResult, patient_outcome
from netvolume.analysis.runner import PipelineRun, run_pipeline

__all__ = [
    "PLANS",
    "AnalysisResult",
    "EligibilityRun",
    "PipelineRun",
    "patient_outcome",
    "run_eligibility",
    "run_pipeline",
    "write_eligibility",
]

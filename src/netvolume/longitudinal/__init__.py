"""One patient over time from images (orchestration): register each follow-up to the
baseline, track the lesions, and hand them to the longitudinal engines of
:mod:`netvolume.assess`; and the same engines on a measurement table.
"""

from __future__ import annotations

from netvolume.longitudinal.patient import (
    NON_MEASURABLE_ORGANS,
    AssessResult,
    assess_measurements,
    assess_patient_dir,
)

__all__ = ["NON_MEASURABLE_ORGANS", "AssessResult", "assess_measurements", "assess_patient_dir"]

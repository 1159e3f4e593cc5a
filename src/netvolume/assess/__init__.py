"""Longitudinal assessment on records (no images): RECIST 1.1, volumetric response,
tumour growth rate, and lesion tracking by optimal assignment.

The engines read :class:`Observation` / :class:`TimePoint` records, made either from a
measurement table (:func:`read_measurement_table`) or by the image pipeline
(:mod:`netvolume.longitudinal`), and return plain records with reasons.
"""

from __future__ import annotations

from netvolume.assess._records import NONTARGET_STATUSES, Observation, TimePoint
from netvolume.assess.recist import (
    RESPONSES,
    LesionDecision,
    PatientRecist,
    RecistSettings,
    TimePointResponse,
    assess_recist,
)
from netvolume.assess.table import PatientCourse, read_measurement_table

__all__ = [
    "NONTARGET_STATUSES",
    "RESPONSES",
    "LesionDecision",
    "Observation",
    "PatientCourse",
    "PatientRecist",
    "RecistSettings",
    "TimePoint",
    "TimePointResponse",
    "assess_recist",
    "read_measurement_table",
]

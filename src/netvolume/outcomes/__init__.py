"""Outcome statistics of neuroendocrine-tumour trials (domain layer: numbers in, records out).

Plain numbers or arrays in, frozen records out, each with a ``to_dict()`` that returns
JSON-ready plain types; no I/O. Bad input raises
:class:`~netvolume.errors.StatisticsInputError` naming the field and the bad value.

Public API
----------
Inflammation scores (:mod:`netvolume.outcomes.inflammation`)
    :class:`InflammationSettings`, :class:`InflammationScore`,
    :func:`inflammation_score` - IBI, GPS and mGPS from CRP and albumin.
Survival (:mod:`netvolume.outcomes.survival`)
    :func:`kaplan_meier` -> :class:`KaplanMeier` - product-limit curve, Greenwood SE,
    log-log / linear / log intervals, median and its interval.
    :func:`logrank_test` -> :class:`LogRank` - K-sample log-rank test.
    :func:`cox_ph` -> :class:`CoxResult` - Cox model (Efron / Breslow ties), Wald and
    likelihood-ratio tests, Harrell's C.
Diagnostic accuracy (:mod:`netvolume.outcomes.diagnostic`)
    :func:`wilson_interval` - Wilson score interval of a proportion.
    :func:`diagnostic_accuracy`, :meth:`DiagnosticAccuracy.from_counts` ->
    :class:`DiagnosticAccuracy` of :class:`Proportion` records - sensitivity,
    specificity, PPV, NPV, accuracy, prevalence.
    :func:`roc_auc` -> :class:`RocAuc` - AUC, ROC curve, DeLong interval.
Correlation (:mod:`netvolume.outcomes.correlation`)
    :func:`spearman` -> :class:`Spearman` - rho, p-value, Fisher-z interval.
"""

from __future__ import annotations

from netvolume.outcomes.correlation import Spearman, spearman
from netvolume.outcomes.diagnostic import (
    DiagnosticAccuracy,
    Proportion,
    RocAuc,
    diagnostic_accuracy,
    roc_auc,
    wilson_interval,
)
from netvolume.outcomes.inflammation import (
    InflammationScore,
    InflammationSettings,
    inflammation_score,
)
from netvolume.outcomes.survival import (
    CoxResult,
    KaplanMeier,
    LogRank,
    cox_ph,
    kaplan_meier,
    logrank_test,
)

__all__ = [
    "CoxResult",
    "DiagnosticAccuracy",
    "InflammationScore",
    "InflammationSettings",
    "KaplanMeier",
    "LogRank",
    "Proportion",
    "RocAuc",
    "Spearman",
    "cox_ph",
    "diagnostic_accuracy",
    "inflammation_score",
    "kaplan_meier",
    "logrank_test",
    "roc_auc",
    "spearman",
    "wilson_interval",
]

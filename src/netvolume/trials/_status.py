"""The vocabulary of eligibility: criterion statuses, verdicts, and one check's outcome."""

from __future__ import annotations

import enum
from dataclasses import dataclass

__all__ = ["CheckOutcome", "Status", "Verdict"]


class Status(enum.StrEnum):
    """The status of one criterion for one patient.

    A criterion is always written as what an eligible patient satisfies, so ``met`` is
    in favour of eligibility for an exclusion criterion too (the patient is clear of it).
    """

    MET = "met"
    NOT_MET = "not_met"
    UNKNOWN = "unknown"  # a fact is missing: the evidence says which
    NEEDS_REVIEW = "needs_review"  # investigator judgement: the evidence shows what is known


class Verdict(enum.StrEnum):
    """A patient's overall eligibility for one protocol."""

    ELIGIBLE = "eligible"  # every inclusion and exclusion criterion met
    NOT_ELIGIBLE = "not_eligible"  # at least one not met
    UNDETERMINED = "undetermined"  # none not met, some unknown or needing review


@dataclass(frozen=True)
class CheckOutcome:
    """What one rule found: status, one line of evidence, provenance, missing facts."""

    status: Status
    evidence: str
    provenance: tuple[str, ...] = ()
    missing: tuple[str, ...] = ()

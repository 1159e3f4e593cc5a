"""Lesion tracking across a patient's time points by optimal assignment (records only).

Input: every lesion of every time point with its centroid already mapped into the
baseline frame (LPS mm) and its volume, plus the overlaps of lesions of different time
points on the baseline grid (the image side, :mod:`netvolume.longitudinal`, computes them
after registering each follow-up to the baseline). Output: one stable tracking id per
lesion and what happened to it.

Method, time point by time point (t = 1, 2, ...):

1. Every track known so far is represented by its last appearance (so a lesion that
   disappeared and comes back is matched against where it was last seen).
2. Cost of pairing a track with a lesion of time point t: ``1 - f`` when they overlap,
   ``f`` = overlap / smaller volume >= ``min_overlap_fraction``; otherwise ``1 + d /
   max_distance_mm`` for a centroid distance ``d <= max_distance_mm``; otherwise the
   pair is not allowed. Any overlap therefore beats any distance.
3. The assignment of least total cost: :func:`scipy.optimize.linear_sum_assignment`
   (Kuhn-Munkres / Jonker-Volgenant; Crouse DF, IEEE Trans Aerosp Electron Syst
   2016;52:1679-1696).
4. A lesion left unmatched lying mostly (``fragment_fraction`` of its volume) inside the
   last extent of a track matched at t is a **fragment** of it (``split``); a track left
   unmatched lying mostly inside a lesion matched at t has **merged** into it;
   other unmatched lesions are **new**; other unmatched tracks have **disappeared**.
5. A user's matching table pins lesions to tracking ids before the assignment.

Tracking ids are ``L<n>``: baseline lesions keep their number (``L3`` for lesion 3);
new lesions and fragments take the next free numbers, in lesion order.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.optimize import linear_sum_assignment

from netvolume.errors import AssessmentInputError

__all__ = [
    "STATUSES",
    "TrackAssignment",
    "TrackInput",
    "TrackSettings",
    "TrackingResult",
    "track_lesions",
]

#: ``status`` of a :class:`TrackAssignment`.
STATUSES: tuple[str, ...] = ("baseline", "matched", "new", "split", "merged", "disappeared")
_FORBIDDEN = 1e6


@dataclass(frozen=True)
class TrackInput:
    """One lesion of one time point, in the baseline frame.

    Parameters
    ----------
    timepoint : int
        Index of the time point in date order (0 = baseline).
    lesion_id : int
        The lesion's id in its own study (label value in its lesion mask).
    centroid_mm : tuple of float
        Centroid mapped into the baseline frame, LPS mm.
    volume_ml : float
        Volume, mL (> 0).
    organ : str
        Organ, carried into the output.
    """

    timepoint: int
    lesion_id: int
    centroid_mm: tuple[float, float, float]
    volume_ml: float
    organ: str = ""


@dataclass(frozen=True)
class TrackSettings:
    """Thresholds of the tracker (all named, all configurable).

    Parameters
    ----------
    max_distance_mm : float
        Centroids farther apart than this (after registration) are never matched
        without overlap.
    min_overlap_fraction : float
        Overlap / smaller volume from which two lesions count as overlapping.
    fragment_fraction : float
        Share of an unmatched lesion's (or track's) volume inside a matched partner for
        it to be a fragment (split) or to have merged.
    """

    max_distance_mm: float = 20.0
    min_overlap_fraction: float = 0.1
    fragment_fraction: float = 0.5

    def __post_init__(self) -> None:
        if not (self.max_distance_mm > 0 and 0 < self.min_overlap_fraction <= 1):
            raise AssessmentInputError(
                f"tracking settings out of range: max_distance_mm={self.max_distance_mm!r} "
                f"must be > 0, min_overlap_fraction={self.min_overlap_fraction!r} in (0, 1]",
                tag="TrackSettings",
            )
        if not 0 < self.fragment_fraction <= 1:
            raise AssessmentInputError(
                f"fragment_fraction={self.fragment_fraction!r} must lie in (0, 1]",
                tag="TrackSettings",
            )

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready plain data."""
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class TrackAssignment:
    """What one lesion of one time point is, or what became of a track.

    ``status`` is one of :data:`STATUSES`. For ``disappeared`` and ``merged`` rows,
    ``lesion_id`` is None (the track has no lesion of its own at that time point) and
    ``related`` names the track it merged into; for ``split`` rows ``related`` is the
    track the fragment came from. ``overlap_fraction`` and ``distance_mm`` describe the
    match (or the fragment / merge relation); ``pinned`` marks a user's assignment.
    """

    timepoint: int
    lesion_id: int | None
    tracking_id: str
    status: str
    related: str | None = None
    overlap_fraction: float | None = None
    distance_mm: float | None = None
    pinned: bool = False

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready plain data."""
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class TrackingResult:
    """Every assignment, in time point then lesion order."""

    assignments: tuple[TrackAssignment, ...]
    settings: dict[str, Any]

    def at(self, timepoint: int) -> list[TrackAssignment]:
        """The assignments of one time point."""
        return [a for a in self.assignments if a.timepoint == timepoint]

    def tracking_id(self, timepoint: int, lesion_id: int) -> str:
        """The tracking id of a lesion of a time point."""
        for a in self.assignments:
            if a.timepoint == timepoint and a.lesion_id == lesion_id:
                return a.tracking_id
        raise KeyError((timepoint, lesion_id))


def _distance(a: Sequence[float], b: Sequence[float]) -> float:
    return math.dist(a, b)


def track_lesions(
    lesions: Sequence[TrackInput],
    overlap_ml: Mapping[tuple[int, int, int, int], float],
    n_timepoints: int,
    settings: TrackSettings | None = None,
    *,
    pinned: Mapping[tuple[int, int], str] | None = None,
) -> TrackingResult:
    """Give every lesion a stable tracking id across time points.

    Parameters
    ----------
    lesions : sequence of TrackInput
        All lesions of all time points.
    overlap_ml : mapping
        ``(t_a, lesion_a, t_b, lesion_b) -> mL`` of overlap on the baseline grid, for
        ``t_a < t_b``; pairs not listed do not overlap.
    n_timepoints : int
        Number of time points (some may have no lesion).
    settings : TrackSettings, optional
    pinned : mapping, optional
        ``(timepoint, lesion_id) -> tracking_id`` given by the user: applied first.

    Returns
    -------
    TrackingResult

    Raises
    ------
    AssessmentInputError
        A lesion listed twice, a volume <= 0, a time point out of range, a pinned
        lesion that does not exist, one tracking id pinned twice at a time point.
    """
    s = settings or TrackSettings()
    pinned = dict(pinned or {})
    by_tp: dict[int, list[TrackInput]] = {t: [] for t in range(n_timepoints)}
    keys: set[tuple[int, int]] = set()
    for les in lesions:
        key = (les.timepoint, les.lesion_id)
        if les.timepoint not in by_tp:
            raise AssessmentInputError(
                f"lesion {les.lesion_id}: time point {les.timepoint} is not in "
                f"0..{n_timepoints - 1}",
                tag="timepoint",
            )
        if key in keys:
            raise AssessmentInputError(
                f"time point {les.timepoint}: lesion {les.lesion_id} listed twice",
                tag="lesion_id",
            )
        if not les.volume_ml > 0:
            raise AssessmentInputError(
                f"time point {les.timepoint}, lesion {les.lesion_id}: volume_ml="
                f"{les.volume_ml!r} must be > 0",
                tag="volume_ml",
            )
        keys.add(key)
        by_tp[les.timepoint].append(les)
    for key in pinned:
        if key not in keys:
            raise AssessmentInputError(
                f"matching table: time point {key[0]} has no lesion {key[1]}",
                tag="lesion_id",
            )
    for t in by_tp:
        by_tp[t].sort(key=lambda les: les.lesion_id)
        ids = [pinned[(t, les.lesion_id)] for les in by_tp[t] if (t, les.lesion_id) in pinned]
        if len(ids) != len(set(ids)):
            raise AssessmentInputError(
                f"matching table: a tracking id is given to two lesions of time point {t}",
                tag="tracking_id",
            )

    out: list[TrackAssignment] = []
    last: dict[str, TrackInput] = {}  # track -> last appearance
    present: dict[str, bool] = {}
    numbers = [les.lesion_id for les in by_tp[0]]
    numbers += [
        int(tid[1:]) for tid in pinned.values() if tid.startswith("L") and tid[1:].isdigit()
    ]
    next_number = max(numbers, default=0) + 1

    def new_id() -> str:
        nonlocal next_number
        while f"L{next_number}" in last:
            next_number += 1
        tid = f"L{next_number}"
        next_number += 1
        return tid

    for les in by_tp[0]:
        tid = pinned.get((0, les.lesion_id), f"L{les.lesion_id}")
        if tid in last:
            raise AssessmentInputError(
                f"baseline: tracking id {tid} given twice", tag="tracking_id"
            )
        last[tid] = les
        present[tid] = True
        out.append(
            TrackAssignment(0, les.lesion_id, tid, "baseline", pinned=(0, les.lesion_id) in pinned)
        )

    def overlap(a: TrackInput, b: TrackInput) -> float:
        lo, hi = (a, b) if a.timepoint < b.timepoint else (b, a)
        return float(overlap_ml.get((lo.timepoint, lo.lesion_id, hi.timepoint, hi.lesion_id), 0.0))

    for t in range(1, n_timepoints):
        current = by_tp[t]
        matched: dict[str, TrackInput] = {}
        rows: list[TrackAssignment] = []
        free: list[TrackInput] = []
        for les in current:
            if (t, les.lesion_id) not in pinned:
                free.append(les)
                continue
            tid = pinned[(t, les.lesion_id)]
            status = "matched" if tid in last else "new"
            prev = last.get(tid)
            rows.append(
                TrackAssignment(
                    t,
                    les.lesion_id,
                    tid,
                    status,
                    overlap_fraction=None
                    if prev is None
                    else overlap(prev, les) / min(prev.volume_ml, les.volume_ml),
                    distance_mm=None
                    if prev is None
                    else _distance(prev.centroid_mm, les.centroid_mm),
                    pinned=True,
                )
            )
            matched[tid] = les
        tracks = [tid for tid in last if tid not in matched]
        if tracks and free:
            cost = np.full((len(tracks), len(free)), _FORBIDDEN)
            for i, tid in enumerate(tracks):
                prev = last[tid]
                for j, les in enumerate(free):
                    frac = overlap(prev, les) / min(prev.volume_ml, les.volume_ml)
                    d = _distance(prev.centroid_mm, les.centroid_mm)
                    if frac >= s.min_overlap_fraction:
                        cost[i, j] = 1.0 - min(frac, 1.0)
                    elif d <= s.max_distance_mm:
                        cost[i, j] = 1.0 + d / s.max_distance_mm
            rows_i, cols_j = linear_sum_assignment(cost)
            for i, j in zip(rows_i, cols_j, strict=True):
                if cost[i, j] >= _FORBIDDEN:
                    continue
                tid, les, prev = tracks[i], free[j], last[tracks[i]]
                rows.append(
                    TrackAssignment(
                        t,
                        les.lesion_id,
                        tid,
                        "matched",
                        overlap_fraction=overlap(prev, les) / min(prev.volume_ml, les.volume_ml),
                        distance_mm=_distance(prev.centroid_mm, les.centroid_mm),
                    )
                )
                matched[tid] = les
        taken = {a.lesion_id for a in rows}
        for les in free:
            if les.lesion_id in taken:
                continue
            # a fragment of a track matched now?
            best: tuple[float, str] | None = None
            for tid in matched:
                prev = last.get(tid)
                if prev is None:
                    continue
                share = overlap(prev, les) / les.volume_ml
                if share >= s.fragment_fraction and (best is None or share > best[0]):
                    best = (share, tid)
            if best is not None:
                tid = new_id()
                rows.append(
                    TrackAssignment(
                        t,
                        les.lesion_id,
                        tid,
                        "split",
                        related=best[1],
                        overlap_fraction=best[0],
                        distance_mm=_distance(last[best[1]].centroid_mm, les.centroid_mm),
                    )
                )
            else:
                tid = new_id()
                rows.append(TrackAssignment(t, les.lesion_id, tid, "new"))
            matched[tid] = les
        for tid in list(last):
            if tid in matched or not present.get(tid, False):
                continue
            prev = last[tid]
            best = None
            for other, les in matched.items():
                share = overlap(prev, les) / prev.volume_ml
                if share >= s.fragment_fraction and (best is None or share > best[0]):
                    best = (share, other)
            if best is not None:
                rows.append(
                    TrackAssignment(
                        t, None, tid, "merged", related=best[1], overlap_fraction=best[0]
                    )
                )
            else:
                rows.append(TrackAssignment(t, None, tid, "disappeared"))
            present[tid] = False
        for tid, les in matched.items():
            last[tid] = les
            present[tid] = True
        rows.sort(key=lambda a: (a.lesion_id is None, a.lesion_id or 0, a.tracking_id))
        out.extend(rows)
    return TrackingResult(tuple(out), s.to_dict())

"""Lesion tracking by optimal assignment (``netvolume.assess.tracking``) on records:
matched, new, disappeared, split, merged, reappeared, user-pinned, and the assignment
being globally optimal rather than greedy."""

from __future__ import annotations

import pytest

from netvolume.assess.tracking import TrackInput, TrackSettings, track_lesions
from netvolume.errors import AssessmentInputError


def T(t: int, lid: int, c: tuple[float, float, float], v: float = 1.0) -> TrackInput:  # noqa: N802
    return TrackInput(t, lid, c, v)


def statuses(result, t: int) -> dict[object, tuple[str, str, str | None]]:  # type: ignore[no-untyped-def]
    return {
        (a.lesion_id if a.lesion_id is not None else a.tracking_id): (
            a.tracking_id,
            a.status,
            a.related,
        )
        for a in result.at(t)
    }


def test_matched_new_disappeared_by_distance() -> None:
    lesions = [
        T(0, 1, (0, 0, 0)),
        T(0, 2, (50, 0, 0)),
        T(1, 7, (3, 1, 0)),  # lesion 1 moved 3 mm
        T(1, 8, (0, 80, 0)),  # far from everything: new
    ]
    r = track_lesions(lesions, {}, 2)
    assert statuses(r, 0) == {1: ("L1", "baseline", None), 2: ("L2", "baseline", None)}
    assert statuses(r, 1) == {
        7: ("L1", "matched", None),
        8: ("L3", "new", None),
        "L2": ("L2", "disappeared", None),
    }
    assert r.tracking_id(1, 7) == "L1"


def test_assignment_is_optimal_not_greedy() -> None:
    # greedy nearest-first would give b->A (distance 1) and leave a with B at 19 mm;
    # the optimum pairs a->A (2) and b->B (2)
    lesions = [
        T(0, 1, (0, 0, 0)),
        T(0, 2, (3, 0, 0)),
        T(1, 10, (2, 0, 0)),
        T(1, 11, (5, 0, 0)),
    ]
    r = track_lesions(lesions, {}, 2)
    assert r.tracking_id(1, 10) == "L1"
    assert r.tracking_id(1, 11) == "L2"


def test_overlap_beats_distance() -> None:
    lesions = [T(0, 1, (0, 0, 0)), T(0, 2, (10, 0, 0)), T(1, 5, (1, 0, 0), 2.0)]
    # lesion 5 is nearer to 1 but overlaps 2
    r = track_lesions(lesions, {(0, 2, 1, 5): 0.8}, 2)
    assert r.tracking_id(1, 5) == "L2"
    a = next(x for x in r.at(1) if x.lesion_id == 5)
    assert a.overlap_fraction == pytest.approx(0.8)


def test_split_and_merge() -> None:
    split = [
        T(0, 1, (0, 0, 0), 10.0),
        T(1, 1, (-5, 0, 0), 4.0),
        T(1, 2, (6, 0, 0), 3.0),
    ]
    r = track_lesions(split, {(0, 1, 1, 1): 4.0, (0, 1, 1, 2): 3.0}, 2)
    assert statuses(r, 1) == {1: ("L1", "matched", None), 2: ("L2", "split", "L1")}
    merge = [
        T(0, 1, (0, 0, 0), 4.0),
        T(0, 2, (8, 0, 0), 3.0),
        T(1, 9, (4, 0, 0), 12.0),
    ]
    r = track_lesions(merge, {(0, 1, 1, 9): 4.0, (0, 2, 1, 9): 3.0}, 2)
    assert statuses(r, 1) == {9: ("L1", "matched", None), "L2": ("L2", "merged", "L1")}


def test_reappearance_and_new_lesion_followed() -> None:
    lesions = [
        T(0, 1, (0, 0, 0)),
        T(1, 4, (100, 0, 0)),  # new at T1
        T(2, 3, (1, 0, 0)),  # lesion 1 back
        T(2, 5, (101, 0, 0)),  # the T1 new lesion again
    ]
    r = track_lesions(lesions, {}, 3)
    assert statuses(r, 1) == {4: ("L2", "new", None), "L1": ("L1", "disappeared", None)}
    assert statuses(r, 2) == {3: ("L1", "matched", None), 5: ("L2", "matched", None)}


def test_pinned_assignments_win() -> None:
    lesions = [T(0, 1, (0, 0, 0)), T(0, 2, (30, 0, 0)), T(1, 1, (1, 0, 0))]
    r = track_lesions(lesions, {}, 2, pinned={(1, 1): "L2"})
    assert statuses(r, 1)[1] == ("L2", "matched", None)
    assert next(a for a in r.at(1) if a.lesion_id == 1).pinned
    with pytest.raises(AssessmentInputError, match="has no lesion 9"):
        track_lesions(lesions, {}, 2, pinned={(1, 9): "L1"})


def test_distance_limit_and_bad_input() -> None:
    lesions = [T(0, 1, (0, 0, 0)), T(1, 1, (25, 0, 0))]
    assert statuses(track_lesions(lesions, {}, 2), 1)[1][1] == "new"
    wide = TrackSettings(max_distance_mm=30)
    assert statuses(track_lesions(lesions, {}, 2, wide), 1)[1][1] == "matched"
    with pytest.raises(AssessmentInputError, match="listed twice"):
        track_lesions([T(0, 1, (0, 0, 0)), T(0, 1, (0, 0, 0))], {}, 1)
    with pytest.raises(AssessmentInputError, match="volume_ml"):
        track_lesions([T(0, 1, (0, 0, 0), 0.0)], {}, 1)
    with pytest.raises(AssessmentInputError, match="max_distance_mm"):
        TrackSettings(max_distance_mm=0)

"""A tracked lesion keeps the category it was first seen with (``netvolume assess``).

The automatic measurement may call one lesion a lymph node at one visit and ``other`` at
the next (a node against the bowel on a thick-slice CT). RECIST 1.1 fixes a lesion's
nodal status when it is first recorded; the assessment refuses a course whose lesion
changes it. So the image path gives every observation of a track the organ and nodal
status of its first appearance, and says so in the time point's notes.
"""

from __future__ import annotations

import datetime
from pathlib import Path

from netvolume.assess.course import assess_course
from netvolume.assess.tracking import TrackAssignment, TrackingResult
from netvolume.longitudinal.patient import _Lesion, _observations, _Study


def _study(name: str, day: int, organ: str, nodal: bool) -> _Study:
    les = _Lesion(1, organ, nodal, 22.0, 16.0, 3.0, (0.0, 0.0, 0.0), frozenset())
    return _Study(
        name=name,
        folder=Path(name),
        date=datetime.date(2025, 1, day),
        lesions=[les],
        labels=None,
        slice_thickness_mm=2.0,
        liver_volume_ml=1500.0,
        liver_tumour_volume_ml=0.0,
        study_dir=Path(name),
        reference_uid=None,
        study_uid=f"1.2.{day}",
    )


def test_tracked_lesion_keeps_its_first_category() -> None:
    studies = [
        _study("T0", 1, "lymph_node", True),
        _study("T1", 20, "other", False),
        _study("T2", 28, "lymph_node", True),
    ]
    tracking = TrackingResult(
        tuple(TrackAssignment(t, 1, "L1", "baseline" if t == 0 else "matched") for t in range(3)),
        {},
    )
    tps = _observations(studies, tracking, studies[0].date)
    assert [(o.organ, o.nodal) for tp in tps for o in tp.observations] == [("lymph_node", True)] * 3
    assert tps[0].notes == () and tps[2].notes == ()
    (note,) = tps[1].notes
    assert "L1 (T1 lesion 1) was measured as other (nodal=False)" in note
    assert "lymph_node (nodal=True)" in note
    # the course is assessed (it was refused: nodal status differing over time)
    result = assess_course("P", tps)
    assert len(result.rows) == 3
    assert "was measured as other" in result.rows[1]["notes"]

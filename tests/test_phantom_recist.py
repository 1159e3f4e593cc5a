"""The RECIST 1.1 oracle of the phantom (netvolume.phantom._recist) on hand-computed courses.

Every expected value below was worked out by hand from the rules in the module docstring
(RECIST 1.1, Eisenhauer et al., Eur J Cancer 2009;45:228-247). The boundary cases sit
exactly on the thresholds (-30 %, +20 %, 5 mm, 10 / 15 mm nodes, 42 days) with a case
just on the other side, so that an off-by-one comparison fails a test.
"""

from __future__ import annotations

import dataclasses
import datetime
import json
import math
from typing import Any

import pytest

from netvolume.phantom._recist import (
    CourseAssessment,
    TruthLesion,
    Visit,
    VisitResponse,
    assess_course,
)

BASE_DATE = datetime.date(2024, 1, 1)


def day(n: int) -> datetime.date:
    """The date ``n`` days after baseline."""
    return BASE_DATE + datetime.timedelta(days=n)


def liver(lesion_id: int, ld: float, **kw: Any) -> TruthLesion:
    """A liver lesion with short axis half the long axis."""
    return TruthLesion(lesion_id, "liver", ld, ld / 2, **kw)


def node(lesion_id: int, sa: float, **kw: Any) -> TruthLesion:
    """A lymph node with long axis 1.5 times the short axis."""
    return TruthLesion(lesion_id, "lymph_node", sa * 1.5, sa, **kw)


def visit(days: int, *lesions: TruthLesion, thickness: float = 5.0) -> Visit:
    return Visit(day(days), thickness, lesions)


def one_target_course(*sods: float, every: int = 42) -> CourseAssessment:
    """A course with a single liver target whose long axis is the SOD at each visit."""
    return assess_course([visit(i * every, liver(1, ld)) for i, ld in enumerate(sods)])


# ------------------------------------------------------------------ baseline selection


def test_at_most_two_targets_per_organ() -> None:
    lesions = [
        liver(i, ld) for i, ld in zip((4, 1, 6, 2, 5, 3), (25, 50, 15, 40, 20, 30), strict=True)
    ]
    result = assess_course([visit(0, *lesions)])
    assert result.target_ids == (1, 2)
    assert result.nontarget_ids == (3, 4, 5, 6)
    assert result.visits[0].sod_mm == 90.0


def test_at_most_five_targets_in_all() -> None:
    lesions = [
        liver(1, 60),
        liver(2, 55),
        liver(3, 50),
        TruthLesion(20, "bone", 45, 30),  # soft-tissue component: measurable
        TruthLesion(30, "other", 42, 20),
        TruthLesion(31, "other", 41, 20),
        node(10, 40),
        node(11, 35),
    ]
    result = assess_course([visit(0, *lesions)])
    # by size: 1 (60), 2 (55), 3 (50, third liver: skipped), 20 (45), 30 (42), 31 (41),
    # which makes five; the nodes (sa 40, 35) come after and find no place
    assert result.target_ids == (1, 2, 20, 30, 31)
    assert result.nontarget_ids == (3, 10, 11)
    assert result.visits[0].sod_mm == 60 + 55 + 45 + 42 + 41


def test_lymph_nodes_count_as_one_organ() -> None:
    # three nodes at different stations are still one organ for the per-organ cap
    lesions = [node(10, 40), node(11, 35), node(12, 30), liver(1, 20)]
    result = assess_course([visit(0, *lesions)])
    assert result.target_ids == (10, 11, 1)
    assert result.nontarget_ids == (12,)
    assert result.visits[0].sod_mm == 40 + 35 + 20


def test_ties_broken_by_lower_id() -> None:
    result = assess_course([visit(0, liver(7, 20), liver(3, 20), liver(5, 20))])
    assert result.target_ids == (3, 5)
    assert result.nontarget_ids == (7,)


def test_nodes_ranked_by_short_axis() -> None:
    # node 9 has a 30 mm long axis but ranks by its 20 mm short axis, after the 25 mm liver
    lesions = [TruthLesion(9, "lymph_node", 30, 20), liver(4, 25)]
    result = assess_course([visit(0, *lesions)])
    assert result.target_ids == (4, 9)
    assert result.visits[0].sod_mm == 45.0


def test_node_categories_at_baseline() -> None:
    lesions = [node(1, 15), node(2, 14.9), node(3, 10), node(4, 9.9)]
    result = assess_course([visit(0, *lesions)])
    assert result.target_ids == (1,)  # sa >= 15: measurable
    assert result.nontarget_ids == (2, 3)  # 10 <= sa < 15: pathological non-target
    # node 4 (sa 9.9) is normal and recorded nowhere
    assert result.visits[0].sod_mm == 15.0


@pytest.mark.parametrize(
    ("thickness", "ld", "is_target"),
    [
        (7.0, 14.0, True),  # threshold 2 x 7 = 14 mm
        (7.0, 13.9, False),
        (5.0, 10.0, True),  # 5 mm is not "thicker than 5": threshold 10 mm
        (5.0, 9.9, False),
        (5.5, 11.0, True),  # threshold 11 mm
        (5.5, 10.9, False),
        (1.0, 10.0, True),
    ],
)
def test_measurability_threshold_follows_slice_thickness(
    thickness: float, ld: float, is_target: bool
) -> None:
    result = assess_course([visit(0, liver(1, ld), thickness=thickness)])
    assert result.target_ids == ((1,) if is_target else ())
    assert result.nontarget_ids == (() if is_target else (1,))


def test_unmeasurable_site_is_nontarget() -> None:
    lesions = [
        TruthLesion(1, "bone", 30, 20, measurable_site=False),
        TruthLesion(2, "bone", 30, 20),
        TruthLesion(3, "lymph_node", 30, 20, measurable_site=False),
    ]
    result = assess_course([visit(0, *lesions)])
    assert result.target_ids == (2,)
    assert result.nontarget_ids == (1, 3)


def test_baseline_visit_has_no_response() -> None:
    result = assess_course([visit(0, liver(1, 30), node(2, 12))])
    assert result.visits == (
        VisitResponse(
            date=BASE_DATE,
            sod_mm=30.0,
            nadir_mm=None,
            change_from_baseline_pct=None,
            change_from_nadir_pct=None,
            target_response=None,
            nontarget_response=None,
            new_lesion_ids=(),
            overall_response=None,
        ),
    )
    assert result.best_overall_response == "NE"
    assert result.progression_date is None


# ------------------------------------------------------------------ target response


@pytest.mark.parametrize(
    ("base", "follow", "expected"),
    [
        (100.0, 70.0, "PR"),  # exactly -30 %: PR (inclusive)
        (100.0, 70.1, "SD"),  # -29.9 %
        (16.5, 11.55, "PR"),  # exactly -30 %; float division gives -29.999999999999993
        (30.3, 21.21, "PR"),
    ],
)
def test_partial_response_boundary(base: float, follow: float, expected: str) -> None:
    response = one_target_course(base, follow).visits[1]
    assert response.target_response == expected
    assert response.overall_response == expected
    if expected == "PR":
        assert response.change_from_baseline_pct == -30.0


def test_boundaries_need_exact_arithmetic() -> None:
    # the naive float computation misses both boundaries; the oracle must not
    assert (11.55 - 16.5) / 16.5 * 100 > -30
    assert (36.36 - 30.3) / 30.3 * 100 < 20
    assert one_target_course(16.5, 11.55).visits[1].target_response == "PR"
    assert one_target_course(30.3, 36.36).visits[1].target_response == "PD"
    # a sum of two targets: 10.1 + 20.2 is 30.299999999999997 in floats
    result = assess_course(
        [visit(0, liver(1, 10.1), liver(2, 20.2)), visit(42, liver(1, 7.07), liver(2, 14.14))]
    )
    assert result.visits[0].sod_mm == 30.3
    assert result.visits[1].sod_mm == 21.21
    assert result.visits[1].change_from_baseline_pct == -30.0
    assert result.visits[1].target_response == "PR"


@pytest.mark.parametrize(
    ("base", "follow", "expected"),
    [
        (50.0, 60.0, "PD"),  # exactly +20 %, +10 mm
        (50.0, 59.9, "SD"),  # +19.8 %
        (20.0, 24.0, "SD"),  # exactly +20 % but only +4 mm
        (25.0, 30.0, "PD"),  # exactly +20 % and exactly +5 mm
        (24.9, 29.88, "SD"),  # exactly +20 % but +4.98 mm
        (30.3, 36.36, "PD"),  # exactly +20 %; float division gives 19.999999999999996
    ],
)
def test_progression_boundary(base: float, follow: float, expected: str) -> None:
    response = one_target_course(base, follow).visits[1]
    assert response.target_response == expected
    assert response.overall_response == expected
    assert response.nadir_mm == base


def test_progression_is_measured_from_the_nadir() -> None:
    result = one_target_course(100, 60, 72)  # 72 is -28 % from baseline, +20 % from nadir
    first, second = result.visits[1], result.visits[2]
    assert (first.target_response, first.nadir_mm) == ("PR", 100.0)
    assert first.change_from_baseline_pct == -40.0
    assert first.change_from_nadir_pct == -40.0
    assert (second.target_response, second.nadir_mm) == ("PD", 60.0)
    assert second.change_from_nadir_pct == 20.0
    assert second.change_from_baseline_pct == -28.0
    assert result.best_overall_response == "PR"
    assert result.progression_date == day(84)
    # just under +20 % from the nadir: not PD; -28.1 % from baseline is SD
    assert one_target_course(100, 60, 71.9).visits[2].target_response == "SD"


def test_eortc_example_165_63_65_stays_pr() -> None:
    result = one_target_course(165, 63, 65)
    assert [v.target_response for v in result.visits] == [None, "PR", "PR"]
    assert [v.overall_response for v in result.visits] == [None, "PR", "PR"]
    last = result.visits[2]
    assert last.nadir_mm == 63.0
    assert last.change_from_nadir_pct == pytest.approx(200 / 63, abs=1e-12)  # +3.17 %
    assert last.change_from_baseline_pct == pytest.approx(-10000 / 165, abs=1e-12)
    assert result.best_overall_response == "PR"
    assert result.progression_date is None


def test_complete_response_with_nodal_target_below_10mm() -> None:
    baseline = visit(0, liver(1, 30), node(2, 20))
    cr = visit(42, liver(1, 0), node(2, 9.9))
    result = assess_course([baseline, cr])
    response = result.visits[1]
    assert response.sod_mm == 9.9  # a CR with a non-zero sum: the node is normal
    assert response.target_response == "CR"
    assert response.nontarget_response is None
    assert response.overall_response == "CR"
    assert result.best_overall_response == "CR"
    # a node at exactly 10 mm is not normal: PR (50 -> 10 is -80 %)
    not_cr = assess_course([baseline, visit(42, liver(1, 0), node(2, 10))]).visits[1]
    assert not_cr.target_response == "PR"


def test_target_cr_with_persisting_nontarget_is_pr() -> None:
    baseline = visit(0, liver(1, 30), liver(3, 8))  # liver 3 (8 mm) is a non-target
    persisting = assess_course([baseline, visit(42, liver(3, 8))]).visits[1]
    assert persisting.target_response == "CR"
    assert persisting.nontarget_response == "NON_CR_NON_PD"
    assert persisting.overall_response == "PR"
    gone = assess_course([baseline, visit(42, liver(1, 0), liver(3, 0))]).visits[1]
    assert gone.nontarget_response == "CR"
    assert gone.overall_response == "CR"


def test_disappeared_target_counts_zero_and_nadir_zero() -> None:
    baseline = visit(0, liver(1, 30), liver(2, 20))
    partial = visit(42, liver(1, 0), liver(2, 20))  # listed at 0
    complete = visit(84, liver(2, 0))  # target 1 not listed at all
    result = assess_course([baseline, partial, complete, visit(126, liver(1, 5))])
    assert [v.sod_mm for v in result.visits] == [50.0, 20.0, 0.0, 5.0]
    assert [v.target_response for v in result.visits] == [None, "PR", "CR", "PD"]
    reappeared = result.visits[3]
    assert reappeared.nadir_mm == 0.0
    assert reappeared.change_from_nadir_pct is None  # undefined from a nadir of 0
    assert reappeared.change_from_baseline_pct == -90.0
    assert result.best_overall_response == "CR"
    assert result.progression_date == day(126)
    # from a nadir of 0, 4.9 mm is not PD: not CR either, and -90.2 % is PR
    small = assess_course([baseline, partial, complete, visit(126, liver(1, 4.9))])
    assert small.visits[3].target_response == "PR"
    assert small.progression_date is None


def test_split_target_is_summed() -> None:
    baseline = visit(0, liver(1, 40), liver(2, 20))
    split = visit(
        42,
        liver(11, 15, split_from=1),
        liver(12, 12, split_from=1),
        liver(2, 15),
    )
    gone = visit(84, liver(11, 0, split_from=1), liver(12, 0, split_from=1), liver(2, 0))
    result = assess_course([baseline, split, gone])
    assert result.visits[1].sod_mm == 42.0  # 15 + 12 + 15
    assert result.visits[1].change_from_baseline_pct == -30.0
    assert result.visits[1].target_response == "PR"
    assert result.visits[1].new_lesion_ids == ()  # fragments are not new lesions
    assert result.visits[2].target_response == "CR"


def test_split_fragment_growing_is_progression() -> None:
    baseline = visit(0, liver(1, 40))
    split = visit(42, liver(11, 30, split_from=1), liver(12, 18, split_from=1))
    response = assess_course([baseline, split]).visits[1]
    assert response.sod_mm == 48.0
    assert response.target_response == "PD"  # +20 %, +8 mm


def test_split_node_is_normal_when_every_piece_is() -> None:
    baseline = visit(0, node(1, 30))
    split = visit(42, node(11, 6, split_from=1), node(12, 7, split_from=1))
    response = assess_course([baseline, split]).visits[1]
    assert response.sod_mm == 13.0  # short axes summed
    assert response.target_response == "CR"  # each piece under 10 mm


# ------------------------------------------------------------------ new lesions


def test_new_lesion_is_progression() -> None:
    baseline = visit(0, liver(1, 30))
    follow = visit(42, liver(1, 30), liver(99, 5), liver(98, 0))  # 98 listed at 0: absent
    result = assess_course([baseline, follow])
    response = result.visits[1]
    assert response.target_response == "SD"
    assert response.new_lesion_ids == (99,)
    assert response.overall_response == "PD"
    assert result.best_overall_response == "PD"
    assert result.progression_date == day(42)


def test_normal_node_becoming_pathological_is_new() -> None:
    baseline = visit(0, liver(1, 30), node(5, 8))  # node 5 normal: not recorded
    result = assess_course(
        [baseline, visit(42, liver(1, 30), node(5, 9.9)), visit(84, liver(1, 30), node(5, 10))]
    )
    assert result.nontarget_ids == ()
    assert result.visits[1].new_lesion_ids == ()
    assert result.visits[1].overall_response == "SD"
    assert result.visits[2].new_lesion_ids == (5,)
    assert result.visits[2].target_response == "SD"
    assert result.visits[2].overall_response == "PD"
    assert result.best_overall_response == "SD"
    assert result.progression_date == day(84)


def test_lesion_absent_at_baseline_appearing_is_new() -> None:
    baseline = visit(0, liver(1, 30), liver(2, 0))  # listed at 0: not there, not recorded
    result = assess_course([baseline, visit(42, liver(1, 30), liver(2, 6))])
    assert result.nontarget_ids == ()
    assert result.visits[1].new_lesion_ids == (2,)
    assert result.visits[1].overall_response == "PD"


# ------------------------------------------------------------------ non-targets


def test_nontarget_unequivocal_progression() -> None:
    bone = TruthLesion(7, "bone", 30, 20, measurable_site=False)
    baseline = visit(0, liver(1, 30), bone)
    progressed = visit(42, liver(1, 15), dataclasses.replace(bone, unequivocal_progression=True))
    result = assess_course([baseline, progressed])
    response = result.visits[1]
    assert response.target_response == "PR"
    assert response.nontarget_response == "PD"
    assert response.overall_response == "PD"
    assert result.best_overall_response == "PD"
    assert result.progression_date == day(42)


def test_nontarget_fragment_unequivocal_progression() -> None:
    baseline = visit(0, liver(1, 30), liver(2, 8))
    follow = visit(
        42,
        liver(1, 30),
        liver(21, 4, split_from=2),
        liver(22, 5, split_from=2, unequivocal_progression=True),
    )
    response = assess_course([baseline, follow]).visits[1]
    assert response.nontarget_response == "PD"
    assert response.new_lesion_ids == ()
    assert response.overall_response == "PD"


def test_unequivocal_progression_flag_on_target_is_ignored() -> None:
    baseline = visit(0, liver(1, 30))
    follow = visit(42, liver(1, 30, unequivocal_progression=True))
    response = assess_course([baseline, follow]).visits[1]
    assert (response.target_response, response.overall_response) == ("SD", "SD")


def test_nontarget_only_patient() -> None:
    bone = TruthLesion(1, "bone", 30, 20, measurable_site=False)
    baseline = visit(0, bone, node(2, 12), liver(3, 8))
    stable = visit(49, bone, node(2, 11), liver(3, 6))
    complete = visit(98, dataclasses.replace(bone, ld_mm=0, sa_mm=0), node(2, 9.5))
    result = assess_course([baseline, stable, complete])
    assert result.target_ids == ()
    assert result.nontarget_ids == (1, 2, 3)
    response = result.visits[1]
    assert response == VisitResponse(
        date=day(49),
        sod_mm=0.0,
        nadir_mm=None,
        change_from_baseline_pct=None,
        change_from_nadir_pct=None,
        target_response=None,
        nontarget_response="NON_CR_NON_PD",
        new_lesion_ids=(),
        overall_response="NON_CR_NON_PD",
    )
    assert result.visits[2].nontarget_response == "CR"  # liver 3 not listed: gone
    assert result.visits[2].overall_response == "CR"
    assert result.best_overall_response == "CR"
    only_stable = assess_course([baseline, stable])
    assert only_stable.best_overall_response == "NON_CR_NON_PD"
    too_early = assess_course([baseline, dataclasses.replace(stable, date=day(41))])
    assert too_early.best_overall_response == "NE"


def test_no_recorded_lesions_is_not_evaluable() -> None:
    baseline = visit(0, node(1, 8))
    result = assess_course([baseline, visit(42, node(1, 8)), visit(84, node(1, 12))])
    assert result.target_ids == ()
    assert result.nontarget_ids == ()
    assert result.visits[1].overall_response == "NE"
    assert result.visits[2].overall_response == "PD"
    assert result.best_overall_response == "PD"
    assert assess_course([baseline, visit(42, node(1, 8))]).best_overall_response == "NE"


# ------------------------------------------------------------------ best overall response


def test_sd_before_min_days_then_pd_is_pd() -> None:
    result = one_target_course(50, 50, 70, every=28)  # SD at day 28, PD at day 56
    assert [v.overall_response for v in result.visits] == [None, "SD", "PD"]
    assert result.best_overall_response == "PD"
    assert result.progression_date == day(56)
    # the SD threshold is configurable and inclusive
    early = assess_course(
        [visit(0, liver(1, 50)), visit(28, liver(1, 50)), visit(56, liver(1, 70))],
        min_sd_days=28,
    )
    assert early.best_overall_response == "SD"
    assert early.settings == {"max_targets": 5, "max_per_organ": 2, "min_sd_days": 28}


@pytest.mark.parametrize(("sd_day", "expected"), [(42, "SD"), (41, "NE")])
def test_sd_minimum_duration_is_inclusive(sd_day: int, expected: str) -> None:
    result = assess_course([visit(0, liver(1, 50)), visit(sd_day, liver(1, 50))])
    assert result.best_overall_response == expected


def test_unconfirmed_pr_counts_at_any_time() -> None:
    result = assess_course([visit(0, liver(1, 50)), visit(14, liver(1, 30))])
    assert result.best_overall_response == "PR"


def test_responses_after_first_pd_are_ignored() -> None:
    baseline = visit(0, liver(1, 50))
    pd = visit(21, liver(1, 50), liver(9, 10))  # new lesion: PD at day 21
    later = [visit(63, liver(1, 30)), visit(105, liver(1, 0))]  # later PR and CR
    result = assess_course([baseline, pd, *later])
    # the visits after PD are still assessed (the new lesion 9 is not listed again)
    assert [v.overall_response for v in result.visits] == [None, "PD", "PR", "CR"]
    assert result.best_overall_response == "PD"
    assert result.progression_date == day(21)


def test_responses_after_first_pd_are_ignored_even_if_better() -> None:
    baseline = visit(0, liver(1, 50))
    course = [
        baseline,
        visit(21, liver(1, 50)),  # SD, too early
        visit(42, liver(1, 50), liver(9, 10)),  # PD (new lesion)
        visit(84, liver(1, 30)),  # -40 %: PR, after PD
        visit(126, liver(1, 0)),  # CR, after PD
    ]
    result = assess_course(course)
    assert [v.overall_response for v in result.visits] == [None, "SD", "PD", "PR", "CR"]
    assert result.best_overall_response == "PD"
    assert result.progression_date == day(42)


# ------------------------------------------------------------------ records


def test_to_dict_is_json_ready() -> None:
    result = assess_course([visit(0, liver(1, 40), node(2, 12)), visit(42, liver(1, 28))])
    data = result.to_dict()
    assert json.loads(json.dumps(data)) == data
    assert data == {
        "target_ids": [1],
        "nontarget_ids": [2],
        "visits": [
            {
                "date": "2024-01-01",
                "sod_mm": 40.0,
                "nadir_mm": None,
                "change_from_baseline_pct": None,
                "change_from_nadir_pct": None,
                "target_response": None,
                "nontarget_response": None,
                "new_lesion_ids": [],
                "overall_response": None,
            },
            {
                "date": "2024-02-12",
                "sod_mm": 28.0,
                "nadir_mm": 40.0,
                "change_from_baseline_pct": -30.0,
                "change_from_nadir_pct": -30.0,
                "target_response": "PR",
                "nontarget_response": "CR",
                "new_lesion_ids": [],
                "overall_response": "PR",
            },
        ],
        "best_overall_response": "PR",
        "progression_date": None,
        "settings": {"max_targets": 5, "max_per_organ": 2, "min_sd_days": 42},
    }
    visits = data["visits"]
    assert isinstance(visits, list)
    assert result.visits[1].to_dict() == visits[1]


def test_records_are_frozen() -> None:
    lesion = liver(1, 30)
    assert not lesion.nodal
    assert node(2, 15).nodal
    with pytest.raises(dataclasses.FrozenInstanceError):
        lesion.ld_mm = 10  # type: ignore[misc, unused-ignore]
    result = assess_course([visit(0, lesion)])
    with pytest.raises(dataclasses.FrozenInstanceError):
        result.best_overall_response = "CR"  # type: ignore[misc, unused-ignore]


def test_custom_caps() -> None:
    lesions = [liver(1, 50), liver(2, 40), liver(3, 30), node(4, 20)]
    result = assess_course([visit(0, *lesions)], max_targets=2, max_per_organ=3)
    assert result.target_ids == (1, 2)
    assert result.nontarget_ids == (3, 4)


# ------------------------------------------------------------------ validation


BASE = visit(0, liver(1, 30), node(2, 8))


@pytest.mark.parametrize(
    ("visits", "message"),
    [
        ([], r"no visits"),
        ([BASE, visit(0, liver(1, 30))], r"visit 2024-01-01: dates must be strictly"),
        ([BASE, visit(42, liver(1, 30)), visit(21, liver(1, 30))], r"visit 2024-01-22: dates"),
        ([BASE, visit(42, liver(1, -1))], r"visit 2024-02-12, lesion 1: ld_mm=-1 must be"),
        (
            [BASE, visit(42, TruthLesion(1, "liver", 30, math.nan))],
            r"visit 2024-02-12, lesion 1: sa_mm=nan must be finite",
        ),
        (
            [visit(0, TruthLesion(3, "liver", math.inf, 10))],
            r"visit 2024-01-01, lesion 3: ld_mm=inf must be finite",
        ),
        (
            [BASE, visit(42, TruthLesion(1, "liver", 10, 10.5))],
            r"visit 2024-02-12, lesion 1: sa_mm=10.5 is longer than ld_mm=10",
        ),
        (
            [BASE, visit(42, liver(1, 30), liver(1, 20))],
            r"visit 2024-02-12, lesion 1: lesion id listed more than once",
        ),
        (
            [visit(0, TruthLesion(4, "lung", 30, 20))],
            r"visit 2024-01-01, lesion 4: organ 'lung' is not one of",
        ),
        (
            [BASE, visit(42, liver(1, 30), liver(11, 10, split_from=99))],
            r"visit 2024-02-12, lesion 11: split_from=99 is not a lesion recorded at baseline",
        ),
        (  # node 2 is normal at baseline (sa 8): not recorded, cannot have fragments
            [BASE, visit(42, node(11, 12, split_from=2))],
            r"visit 2024-02-12, lesion 11: split_from=2 is not a lesion recorded at baseline",
        ),
        (
            [visit(0, liver(1, 30), liver(5, 10, split_from=1))],
            r"visit 2024-01-01, lesion 5: split_from=1 at baseline",
        ),
        (
            [BASE, visit(42, liver(11, 10, split_from=1)), visit(84, liver(11, 10))],
            r"visit 2024-03-25, lesion 11: split_from=None differs from split_from=1",
        ),
        (  # a fragment cannot reuse a baseline id
            [visit(0, liver(1, 30), liver(2, 20)), visit(42, liver(2, 10, split_from=1))],
            r"visit 2024-02-12, lesion 2: split_from=1 differs from split_from=None",
        ),
        (
            [BASE, visit(42, TruthLesion(1, "bone", 30, 10))],
            r"visit 2024-02-12, lesion 1: organ 'bone' differs from 'liver'",
        ),
        (
            [BASE, visit(42, TruthLesion(11, "other", 10, 5, split_from=1))],
            r"visit 2024-02-12, lesion 11: fragment organ 'other' differs .* of lesion 1",
        ),
        ([visit(0, liver(1, 30), thickness=0.0)], r"visit 2024-01-01: slice_thickness_mm=0.0"),
    ],
)
def test_invalid_input_is_rejected(visits: list[Visit], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        assess_course(visits)


@pytest.mark.parametrize(
    "settings", [{"max_targets": 0}, {"max_per_organ": 0}, {"min_sd_days": -1}]
)
def test_invalid_settings_are_rejected(settings: dict[str, int]) -> None:
    with pytest.raises(ValueError, match="settings out of range"):
        assess_course([BASE], **settings)

"""Acceptance tests of the eligibility engine on the five seed protocols.

For each protocol: a reference patient who meets every criterion; one variant per
criterion that fails exactly that criterion; one variant per fact (and imaging) the
protocol decides on, without it (-> unknown, or needs_review for an investigator's
decision); every numeric threshold on both sides, with the values written as the
protocol states them (canonical units, and alternative units through a CSV file);
``applies_if``; and the imaging look-back (nothing after the reference date counts).
"""

from __future__ import annotations

import dataclasses
import datetime
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from _trials import (
    MET,
    NEEDS_REVIEW,
    NOT_MET,
    REF,
    UNKNOWN,
    Case,
    before,
    counted_ids,
    imaging,
    lesion,
    read_patient_csv,
    review_rules,
    rule_facts,
    scan,
    statuses,
)

from netvolume.trials import (
    Eligibility,
    ImagingFacts,
    Protocol,
    Status,
    Verdict,
    evaluate,
    load_protocol,
    protocol_names,
)


@dataclass(frozen=True)
class Fail:
    """A variant failing one criterion; ``also``: criteria that cannot be kept apart."""

    case: Case
    also: frozenset[str] = frozenset()


def fail(case: Case, *also: str) -> Fail:
    return Fail(case, frozenset(also))


@dataclass(frozen=True)
class Gone:
    """Without the fact: the criteria that change and to what (others stay met).

    ``base``: the variant to remove it from, when the reference patient meets the
    criterion another way (a branch of an ``any``).
    """

    expect: Mapping[str, Status]
    base: Case | None = None


def gone(*unknown: str, review: tuple[str, ...] = (), base: Case | None = None) -> Gone:
    return Gone({**dict.fromkeys(unknown, UNKNOWN), **dict.fromkeys(review, NEEDS_REVIEW)}, base)


@dataclass(frozen=True)
class Spec:
    reference: Case
    fails: Mapping[str, Fail]
    missing: Mapping[str, Gone]
    information: Mapping[str, Status] = field(default_factory=dict)
    #: the reference patient's facts in alternative-unit columns (same values)
    csv_replace: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)


# ==========================================================================================
# ibi_response (seed 000)
# ==========================================================================================


def ibi_imaging(
    *,
    response: str = "SD",
    t1_days: int = 20,
    measurable: bool = True,
    ltb: float = 20.0,
    extra: tuple[Any, ...] = (),
) -> ImagingFacts:
    big, small = (30.0, 18.0) if measurable else (8.0, 6.0)
    t0 = scan(
        before(max(270, t1_days + 90)),
        lesion("L1", big),
        lesion("L2", small, krenning=3),
        study="T0",
        ltb=18.0,
    )
    t1 = scan(
        before(t1_days),
        lesion("L1", big + 2.0 if measurable else big),
        lesion("L2", small, krenning=3),
        study="T1",
        response=response,
        ltb=ltb,
    )
    return imaging(t0, t1, *extra)


IBI = Case(
    {
        "age_years": 64,
        "sex": "F",
        "grade": 2,
        "histology_confirmed": True,
        "primary_site": "small_intestine",
        "contraindication_lu177": False,
        "progression_date": before(100),
        "inclusion_date": REF,
        "social_security": True,
        "informed_consent": True,
        "prior_prrt": False,
        "bmi_kg_m2": 27.5,
        "active_inflammatory_disease": False,
        "carcinoid_heart_disease": False,
        "active_infection": False,
        "pregnant": False,
        "breastfeeding": False,
        "compliance_barrier": False,
        "legal_protection": False,
        # shown to the investigator (review criteria)
        "gfr_ml_min_1_73m2": 85,
        "hb_g_dl": 12.5,
        "platelets_10e9_l": 240,
        "ki67_pct": 5,
        "crp_mg_l": 4,
        "albumin_g_l": 40,
    },
    ibi_imaging(),
)

IBI_SPEC = Spec(
    reference=IBI,
    information={"liver_involvement": NOT_MET},  # 20 % liver tumour burden, reported only
    fails={
        "age": fail(IBI.but(age_years=17.9)),
        "grade_1_2": fail(IBI.but(grade=3)),
        "histology_confirmed": fail(IBI.but(histology_confirmed=False)),
        "midgut_primary": fail(IBI.but(primary_site="pancreas")),
        # one recorded fact settles both (eligible under the marketing authorisation /
        # no contraindication): they cannot fail apart
        "eligible_for_lu177": fail(IBI.but(contraindication_lu177=True), "no_contraindication"),
        "progression_12_months": fail(IBI.but(progression_date=before(400))),
        "measurable_disease": fail(IBI.but(imaging=ibi_imaging(measurable=False))),
        "social_security": fail(IBI.but(social_security=False)),
        "consent": fail(IBI.but(informed_consent=False)),
        "no_prior_lu177": fail(IBI.but(prior_prrt=True)),
        "no_contraindication": fail(IBI.but(contraindication_lu177=True), "eligible_for_lu177"),
        "bmi_40": fail(IBI.but(bmi_kg_m2=40.01)),
        "no_active_inflammation": fail(IBI.but(active_inflammatory_disease=True)),
        "no_carcinoid_heart": fail(IBI.but(carcinoid_heart_disease=True)),
        "no_active_infection": fail(IBI.but(active_infection=True)),
        "not_pregnant": fail(IBI.but(pregnant=True)),
        "not_breastfeeding": fail(IBI.but(breastfeeding=True)),
        "compliance": fail(IBI.but(compliance_barrier=True)),
        "no_legal_protection": fail(IBI.but(legal_protection=True)),
    },
    missing={
        "age_years": gone("age"),
        "grade": gone("grade_1_2"),
        "histology_confirmed": gone("histology_confirmed"),
        "primary_site": gone("midgut_primary"),
        "contraindication_lu177": gone(review=("eligible_for_lu177", "no_contraindication")),
        "progression_date": gone("progression_12_months"),
        "inclusion_date": gone("progression_12_months"),
        "social_security": gone("social_security"),
        "informed_consent": gone("consent"),
        "prior_prrt": gone("no_prior_lu177"),
        "bmi_kg_m2": gone("bmi_40"),
        "active_inflammatory_disease": gone(review=("no_active_inflammation",)),
        "carcinoid_heart_disease": gone("no_carcinoid_heart"),
        "active_infection": gone("no_active_infection"),
        "sex": gone("not_pregnant", "not_breastfeeding"),
        "pregnant": gone("not_pregnant"),
        "breastfeeding": gone("not_breastfeeding"),
        "compliance_barrier": gone(review=("compliance",)),
        "legal_protection": gone("no_legal_protection"),
        # progression is met by the date; measurable disease needs the scans
        "imaging": gone("measurable_disease"),
    },
    csv_replace={
        "bmi_kg_m2": {"weight_kg": 99.0, "height_m": 1.9},  # derived: 27.42 kg/m2
        "hb_g_dl": {"hb_g_l": 125},
        "platelets_10e9_l": {"platelets_per_mm3": 240000},
        "albumin_g_l": {"albumin_g_dl": 4.0},
        "crp_mg_l": {"crp_mg_dl": 0.4},
        "gfr_ml_min_1_73m2": {"gfr_ml_s_1_73m2": 1.4},
        "sex": {"sex": "female"},
        "primary_site": {"primary_site": "ileum"},
        "grade": {"grade": "G2"},
    },
)


# ==========================================================================================
# lesion_based_prrt (seed 001)
# ==========================================================================================


def lbp_imaging(
    *,
    l1_ld: float = 30.5,
    l1_nadir: float = 25.0,
    l1_krenning: int = 4,
    last_days: int = 12,
    response: str = "SD",
    new: tuple[str, ...] = (),
    extra_t1: tuple[Any, ...] = (),
    extra: tuple[Any, ...] = (),
) -> ImagingFacts:
    """T0 180 days and T1 ``last_days`` before the reference, both Ga-68 PET/CT; L1 grows
    from ``l1_nadir`` to ``l1_ld`` (reference: +22 %, +5.5 mm: progressive as a lesion,
    below the +30 % of SSTR progression, RECIST SD overall)."""
    t0 = scan(
        before(180),
        lesion("L1", l1_nadir),
        lesion("L2", 15.0, krenning=3),
        lesion("B1", 8.0, organ="bone", krenning=3),
        study="T0",
    )
    t1 = scan(
        before(last_days),
        lesion("L1", l1_ld, krenning=l1_krenning),
        lesion("L2", 15.0, krenning=3),
        lesion("B1", 8.0, organ="bone", krenning=3),
        *extra_t1,
        study="T1",
        response=response,
        new=new,
    )
    return imaging(t0, t1, *extra)


LBP = Case(
    {
        "age_years": 58,
        "sex": "F",
        "childbearing_potential": True,
        "contraception_agreed": True,
        "pregnancy_test_negative": True,
        "pregnancy_test_date": before(10),
        "histology_confirmed": True,
        "primary_site": "pancreas",
        "progression_date": before(150),
        "clinical_progression": False,
        "biochemical_progression": False,
        "refractory_to_ssa": True,
        "last_long_acting_ssa_date": before(35),
        "gfr_ml_min_1_73m2": 72,
        "hb_g_dl": 11.8,
        "neutrophils_10e9_l": 3.2,
        "platelets_10e9_l": 210,
        "bilirubin_umol_l": 10,
        "bilirubin_uln_umol_l": 17.1,
        "asat_u_l": 30,
        "asat_uln_u_l": 40,
        "alat_u_l": 28,
        "alat_uln_u_l": 45,
        "albumin_g_l": 38,
        "prothrombin_pct": 95,
        "ecog": 0,
        "informed_consent": True,
        "target_lesion_irradiated": False,
        "resectable_curative": False,
        "last_major_surgery_date": before(400),
        "last_locoregional_therapy_date": before(200),
        "diffuse_bone_marrow_infiltration": False,
        "prior_ebrt_kidney_or_marrow": False,
        "uncontrolled_brain_metastases": False,
        "uncontrolled_condition": False,
        "pregnant": False,
        "breastfeeding": False,
        "inclusion_date": REF,
    },
    lbp_imaging(),
)

#: progression by clinical + biochemical progression only (the date is too old)
LBP_CLINICAL = LBP.but(
    progression_date=before(400), clinical_progression=True, biochemical_progression=True
)

LBP_SPEC = Spec(
    reference=LBP,
    fails={
        "age": fail(LBP.but(age_years=17.9)),
        "histology": fail(LBP.but(primary_site="lung")),
        "progression_12_months": fail(LBP.but(progression_date=before(366))),
        "refractory": fail(LBP.but(refractory_to_ssa=False)),
        "ssa_washout": fail(LBP.but(last_long_acting_ssa_date=before(27))),
        "gfr": fail(LBP.but(gfr_ml_min_1_73m2=49.9)),
        "hb": fail(LBP.but(hb_g_dl=8.99)),
        "neutrophils": fail(LBP.but(neutrophils_10e9_l=1.49)),
        "platelets": fail(LBP.but(platelets_10e9_l=99.9)),
        "bilirubin": fail(LBP.but(bilirubin_umol_l=34.3)),
        "transaminases": fail(LBP.but(asat_u_l=200.1)),
        "albumin": fail(LBP.but(albumin_g_l=30)),
        "prothrombin": fail(LBP.but(prothrombin_pct=70)),
        "ecog": fail(LBP.but(ecog=2)),
        "contraception": fail(LBP.but(contraception_agreed=False)),
        "pregnancy_test": fail(LBP.but(pregnancy_test_negative=False)),
        "consent": fail(LBP.but(informed_consent=False)),
        "baseline_imaging_4_weeks": fail(LBP.but(imaging=lbp_imaging(last_days=29))),
        # the progressive target lesion is one of the uptake lesions: no uptake lesion,
        # no progressive one
        "target_lesion_uptake": fail(
            LBP.but(imaging=lbp_imaging(l1_krenning=2)), "target_lesion_progressive"
        ),
        "target_lesion_progressive": fail(LBP.but(imaging=lbp_imaging(l1_ld=29.9))),
        "target_not_irradiated": fail(LBP.but(target_lesion_irradiated=True)),
        "not_resectable": fail(LBP.but(resectable_curative=True)),
        "no_recent_surgery": fail(LBP.but(last_major_surgery_date=before(41))),
        "no_recent_therapy": fail(LBP.but(last_locoregional_therapy_date=before(83))),
        "no_diffuse_marrow": fail(LBP.but(diffuse_bone_marrow_infiltration=True)),
        "no_ebrt_kidney_marrow": fail(LBP.but(prior_ebrt_kidney_or_marrow=True)),
        "no_brain_metastases": fail(LBP.but(uncontrolled_brain_metastases=True)),
        "no_uncontrolled_condition": fail(LBP.but(uncontrolled_condition=True)),
        "not_pregnant": fail(LBP.but(pregnant=True)),
        "not_lactating": fail(LBP.but(breastfeeding=True)),
    },
    missing={
        "age_years": gone("age"),
        "sex": gone("pregnancy_test", "not_pregnant", "not_lactating"),
        "childbearing_potential": gone("contraception", "pregnancy_test"),
        "contraception_agreed": gone("contraception"),
        "pregnancy_test_negative": gone("pregnancy_test"),
        "pregnancy_test_date": gone("pregnancy_test"),
        "histology_confirmed": gone("histology"),
        "primary_site": gone("histology"),
        "progression_date": gone("progression_12_months"),
        "clinical_progression": gone("progression_12_months", base=LBP_CLINICAL),
        "biochemical_progression": gone("progression_12_months", base=LBP_CLINICAL),
        "refractory_to_ssa": gone(review=("refractory",)),
        "last_long_acting_ssa_date": gone("ssa_washout"),
        "gfr_ml_min_1_73m2": gone("gfr"),
        "hb_g_dl": gone("hb"),
        "neutrophils_10e9_l": gone("neutrophils"),
        "platelets_10e9_l": gone("platelets"),
        "bilirubin_umol_l": gone("bilirubin"),
        "bilirubin_uln_umol_l": gone("bilirubin"),
        "asat_u_l": gone("transaminases"),
        "asat_uln_u_l": gone("transaminases"),
        "alat_u_l": gone("transaminases"),
        "alat_uln_u_l": gone("transaminases"),
        "albumin_g_l": gone("albumin"),
        "prothrombin_pct": gone("prothrombin"),
        "ecog": gone("ecog"),
        "informed_consent": gone("consent"),
        "target_lesion_irradiated": gone("target_not_irradiated"),
        "resectable_curative": gone("not_resectable"),
        "last_major_surgery_date": gone("no_recent_surgery"),
        "last_locoregional_therapy_date": gone("no_recent_therapy"),
        "diffuse_bone_marrow_infiltration": gone(review=("no_diffuse_marrow",)),
        "prior_ebrt_kidney_or_marrow": gone("no_ebrt_kidney_marrow"),
        "uncontrolled_brain_metastases": gone("no_brain_metastases"),
        "uncontrolled_condition": gone(review=("no_uncontrolled_condition",)),
        "pregnant": gone("not_pregnant"),
        "breastfeeding": gone("not_lactating"),
        "inclusion_date": gone(
            "progression_12_months",
            "ssa_washout",
            "pregnancy_test",
            "baseline_imaging_4_weeks",
            "no_recent_surgery",
            "no_recent_therapy",
        ),
        "imaging": gone(
            "baseline_imaging_4_weeks", "target_lesion_uptake", "target_lesion_progressive"
        ),
    },
    csv_replace={
        "hb_g_dl": {"hb_g_l": 118},
        "neutrophils_10e9_l": {"neutrophils_per_mm3": 3200},
        "platelets_10e9_l": {"platelets_10e3_ul": 210},
        "albumin_g_l": {"albumin_g_dl": 3.8},
        "bilirubin_umol_l": {"bilirubin_mg_dl": 0.6},
        "bilirubin_uln_umol_l": {"bilirubin_uln_mg_dl": 1.0},
        "asat_u_l": {"asat_ukat_l": 0.5},
        "asat_uln_u_l": {"asat_uln_ukat_l": 0.67},
        "gfr_ml_min_1_73m2": {"gfr_ml_s_1_73m2": 1.2},
    },
)


# ==========================================================================================
# retreatment (seed 002)
# ==========================================================================================

RET_GRADES = (4, 3, 3, 2, 2, 3, 3, 2, 3, 1)  # 9 of 10 >= 2 (uptake >= liver): 90 %
RET_LDS = (25.0, 14.0, 12.0, 9.0, 8.0, 8.0, 7.0, 7.0, 6.0, 6.0)


def ret_imaging(
    *,
    grades: tuple[int, ...] = RET_GRADES,
    lds: tuple[float, ...] = RET_LDS,
    days: int = 60,
    extra: tuple[Any, ...] = (),
) -> ImagingFacts:
    """One SSTR PET/CT ``days`` before the reference with one lesion per grade/LD."""
    lesions = [
        lesion(f"L{i + 1}", ld, krenning=g)
        for i, (g, ld) in enumerate(zip(grades, lds, strict=True))
    ]
    return imaging(scan(before(days), *lesions, study="T1"), *extra)


RET = Case(
    {
        "age_years": 45,
        "sex": "F",
        "childbearing_potential": True,
        "pregnancy_test_negative": True,
        "pregnancy_test_date": before(2),
        "contraception_agreed": True,
        "grade": 1,
        "primary_site": "small_intestine",
        "histology_confirmed": True,
        "prior_prrt": True,
        "first_prrt_cycles": 4,
        "first_prrt_end_date": datetime.date(2021, 3, 1),
        "first_prrt_progression_date": datetime.date(2023, 1, 15),
        "retreatment_validated_by_board": True,
        "ecog": 1,
        "life_expectancy_months": 24,
        "hb_g_dl": 11.0,
        "neutrophils_10e9_l": 2.5,
        "platelets_10e9_l": 150,
        "informed_consent": True,
        "willing_to_comply": True,
        "social_security": True,
        "inclusion_date": REF,
    },
    ret_imaging(),
)

RET_SPEC = Spec(
    reference=RET,
    fails={
        "age": fail(RET.but(age_years=17.9)),
        "intestinal_g1_g2": fail(RET.but(grade=3)),
        "first_prrt_4_cycles": fail(RET.but(first_prrt_cycles=3)),
        "disease_control_12_months": fail(
            RET.but(first_prrt_progression_date=datetime.date(2022, 3, 1))  # 365 days
        ),
        # a progression before the end of the first PRRT is no disease control either
        "progression_after_first_prrt": fail(
            RET.but(first_prrt_progression_date=datetime.date(2021, 2, 28)),
            "disease_control_12_months",
        ),
        "board_validation": fail(RET.but(retreatment_validated_by_board=False)),
        "ecog": fail(RET.but(ecog=3)),
        "life_expectancy": fail(RET.but(life_expectancy_months=5.9)),
        "sstr_imaging_4_months": fail(
            RET.but(imaging=ret_imaging(grades=(4, 3, 3, 2, 2, 3, 3, 2, 1, 1)))
        ),
        "measurable_disease": fail(
            RET.but(imaging=ret_imaging(lds=(9.5, 9.0, 9.0, 9.0, 8.0, 8.0, 7.0, 7.0, 6.0, 6.0)))
        ),
        "hb": fail(RET.but(hb_g_dl=8)),
        "neutrophils": fail(RET.but(neutrophils_10e9_l=1.499)),
        "platelets": fail(RET.but(platelets_10e9_l=79.999)),
        "pregnancy_test": fail(RET.but(pregnancy_test_date=before(5))),
        "contraception": fail(RET.but(contraception_agreed=False)),
        "consent": fail(RET.but(informed_consent=False)),
        "compliance": fail(RET.but(willing_to_comply=False)),
        "social_security": fail(RET.but(social_security=False)),
    },
    missing={
        "age_years": gone("age"),
        "sex": gone("pregnancy_test"),
        "childbearing_potential": gone("pregnancy_test", "contraception"),
        "pregnancy_test_negative": gone("pregnancy_test"),
        "pregnancy_test_date": gone("pregnancy_test"),
        "contraception_agreed": gone("contraception"),
        "grade": gone("intestinal_g1_g2"),
        "primary_site": gone("intestinal_g1_g2"),
        "histology_confirmed": gone("intestinal_g1_g2"),
        "prior_prrt": gone("first_prrt_4_cycles"),
        "first_prrt_cycles": gone("first_prrt_4_cycles"),
        "first_prrt_end_date": gone("disease_control_12_months", "progression_after_first_prrt"),
        "first_prrt_progression_date": gone(
            "disease_control_12_months", "progression_after_first_prrt"
        ),
        "retreatment_validated_by_board": gone("board_validation"),
        "ecog": gone("ecog"),
        "life_expectancy_months": gone("life_expectancy"),
        "hb_g_dl": gone("hb"),
        "neutrophils_10e9_l": gone("neutrophils"),
        "platelets_10e9_l": gone("platelets"),
        "informed_consent": gone("consent"),
        "willing_to_comply": gone("compliance"),
        "social_security": gone("social_security"),
        # "within 4 months prior to inclusion" cannot be judged without the inclusion date
        "inclusion_date": gone("pregnancy_test", "sstr_imaging_4_months"),
        "imaging": gone("sstr_imaging_4_months", "measurable_disease"),
    },
    csv_replace={
        "hb_g_dl": {"hb_mmol_l": 6.826},  # x 1.6114 = 11.00 g/dL
        "neutrophils_10e9_l": {"neutrophils_per_mm3": 2500},
        "platelets_10e9_l": {"platelets_per_mm3": 150000},
        "sex": {"sex": "F"},
        "childbearing_potential": {"childbearing_potential": "yes"},
        "grade": {"grade": "g1"},
    },
)


# ==========================================================================================
# volumetric_followup (seed 003)
# ==========================================================================================

BASELINE = datetime.date(2023, 1, 10)


def vol_imaging(
    *,
    l1_ld: float = 22.0,
    later_ld: float = 23.0,
    baseline: bool = True,
    extra_t0: tuple[Any, ...] = (),
) -> ImagingFacts:
    """Baseline CT at the reference date (the baseline scan) and a follow-up 120 days on."""
    t1 = scan(
        BASELINE + datetime.timedelta(days=120),
        lesion("L1", later_ld, krenning=None),
        lesion("L2", 8.0, krenning=None),
        study="T1",
        pet=False,
        response="SD",
        ltb=13.0,
    )
    if not baseline:
        return imaging(t1)
    t0 = scan(
        BASELINE,
        lesion("L1", l1_ld, krenning=None),
        lesion("L2", 8.0, krenning=None),
        *extra_t0,
        study="T0",
        pet=False,
        ltb=12.0,
    )
    return imaging(t0, t1)


VOL = Case(
    {
        "primary_site": "small_intestine",
        "grade": 2,
        "differentiation": "well",
        "histology": "net",
        "invasive_liver_treatment": False,
        "systemic_chemotherapy": False,
        "baseline_scan_date": BASELINE,
        "last_followup_date": BASELINE + datetime.timedelta(days=400),
    },
    vol_imaging(),
)

VOL_SPEC = Spec(
    reference=VOL,
    fails={
        "well_differentiated_si_net": fail(VOL.but(differentiation="poor")),
        # a 9 mm liver lesion ("small target lesion") and a measurable node: no
        # measurable LIVER metastasis
        "measurable_liver_metastasis": fail(
            VOL.but(
                imaging=vol_imaging(
                    l1_ld=9.0,
                    extra_t0=(
                        lesion(
                            "N1", 25.0, organ="lymph_node", nodal=True, sa_mm=18.0, krenning=None
                        ),
                    ),
                )
            )
        ),
        "no_invasive_liver_treatment": fail(VOL.but(invasive_liver_treatment=True)),
        "no_systemic_chemotherapy": fail(VOL.but(systemic_chemotherapy=True)),
        "net_type": fail(VOL.but(histology="nec")),
        "sufficient_followup": fail(
            VOL.but(last_followup_date=BASELINE + datetime.timedelta(days=91))
        ),
    },
    missing={
        "primary_site": gone("well_differentiated_si_net"),
        "grade": gone("well_differentiated_si_net"),
        "differentiation": gone("well_differentiated_si_net"),
        "histology": gone("net_type"),
        "invasive_liver_treatment": gone("no_invasive_liver_treatment"),
        "systemic_chemotherapy": gone("no_systemic_chemotherapy"),
        "baseline_scan_date": gone("sufficient_followup"),
        "last_followup_date": gone("sufficient_followup"),
        "imaging": gone("measurable_liver_metastasis"),
    },
    csv_replace={  # no fact of this protocol has another unit: aliases and words instead
        "primary_site": {"primary_site": "Ileum"},
        "grade": {"grade": "G2"},
        "differentiation": {"differentiation": "well-differentiated"},
        "histology": {"histology": "NET"},
        "invasive_liver_treatment": {"invasive_liver_treatment": "no"},
        "systemic_chemotherapy": {"systemic_chemotherapy": "0"},
    },
)


# ==========================================================================================
# personalised_prrt (seed 004)
# ==========================================================================================


def pers_imaging(
    *,
    l2_krenning: int = 3,
    response: str = "SD",
    t1_days: int = 25,
    measurable: bool = True,
    extra: tuple[Any, ...] = (),
) -> ImagingFacts:
    l1, l2, node_sa = (30.0, 18.0, 16.0) if measurable else (8.0, 6.0, 9.0)

    def lesions(grade2: int) -> tuple[Any, ...]:
        return (
            lesion("L1", l1),
            lesion("L2", l2, krenning=grade2),
            lesion("N1", node_sa + 6, organ="lymph_node", nodal=True, sa_mm=node_sa, krenning=3),
        )

    t0 = scan(before(max(300, t1_days + 90)), *lesions(3), study="T0")
    t1 = scan(before(t1_days), *lesions(l2_krenning), study="T1", response=response)
    return imaging(t0, t1, *extra)


PERS = Case(
    {
        "age_years": 61,
        "informed_consent": True,
        "ecog": 1,
        "histology_confirmed": True,
        "histology": "net",
        "differentiation": "well",
        "resectable_curative": False,
        "progression_date": before(200),
        "last_antitumour_therapy_date": before(60),
        "prrt_treatment_of_choice": True,
        "gfr_ml_min_1_73m2": 78,
        "hb_g_dl": 12.1,
        "platelets_10e9_l": 190,
        "leukocytes_10e9_l": 5.4,
        "neutrophils_10e9_l": 3.1,
        "asat_u_l": 25,
        "asat_uln_u_l": 40,
        "alat_u_l": 30,
        "alat_uln_u_l": 45,
        "bilirubin_umol_l": 9,
        "bilirubin_uln_umol_l": 17.1,
        "albumin_g_l": 41,
        "sex": "F",
        "childbearing_potential": True,
        "contraception_agreed": True,
        "pregnant": False,
        "breastfeeding": False,
        "prior_prrt": False,
        "concomitant_antitumour_therapy": False,
        "capecitabine_contraindication": False,
        "uncontrolled_condition": False,
        "willing_to_comply": True,
        "inclusion_date": REF,
    },
    pers_imaging(),
)

PERS_SPEC = Spec(
    reference=PERS,
    fails={
        "age": fail(PERS.but(age_years=17.9)),
        "consent": fail(PERS.but(informed_consent=False)),
        "ecog": fail(PERS.but(ecog=2)),
        "histology": fail(PERS.but(histology="paraganglioma")),
        "sstr_above_liver": fail(PERS.but(imaging=pers_imaging(l2_krenning=2))),
        "progression_1_24_months": fail(PERS.but(progression_date=before(731))),
        "therapy_washout": fail(PERS.but(last_antitumour_therapy_date=before(27))),
        "measurable_disease": fail(PERS.but(imaging=pers_imaging(measurable=False))),
        "prrt_treatment_of_choice": fail(PERS.but(prrt_treatment_of_choice=False)),
        "gfr": fail(PERS.but(gfr_ml_min_1_73m2=50)),
        "hb": fail(PERS.but(hb_g_dl=9.0)),
        "platelets": fail(PERS.but(platelets_10e9_l=100)),
        "leukocytes": fail(PERS.but(leukocytes_10e9_l=3.0)),
        "neutrophils": fail(PERS.but(neutrophils_10e9_l=1.5)),
        "transaminases": fail(PERS.but(alat_u_l=135)),
        "bilirubin": fail(PERS.but(bilirubin_umol_l=34.2)),
        "albumin": fail(PERS.but(albumin_g_l=25)),
        "contraception": fail(PERS.but(contraception_agreed=False)),
        "not_pregnant": fail(PERS.but(pregnant=True)),
        "not_lactating": fail(PERS.but(breastfeeding=True)),
        "no_prior_prrt": fail(PERS.but(prior_prrt=True)),
        "no_concomitant_therapy": fail(PERS.but(concomitant_antitumour_therapy=True)),
        "no_capecitabine_contraindication": fail(PERS.but(capecitabine_contraindication=True)),
        # a lesion without uptake (grade 0) is also below the liver: both fail
        "no_discordance": fail(PERS.but(imaging=pers_imaging(l2_krenning=0)), "sstr_above_liver"),
        "no_uncontrolled_condition": fail(PERS.but(uncontrolled_condition=True)),
        "willing": fail(PERS.but(willing_to_comply=False)),
    },
    missing={
        "age_years": gone("age"),
        "informed_consent": gone("consent"),
        "ecog": gone("ecog"),
        "histology_confirmed": gone("histology"),
        "histology": gone("histology"),
        "differentiation": gone("histology"),
        "resectable_curative": gone("histology"),
        "progression_date": gone("progression_1_24_months"),
        "last_antitumour_therapy_date": gone("therapy_washout"),
        "prrt_treatment_of_choice": gone(review=("prrt_treatment_of_choice",)),
        "gfr_ml_min_1_73m2": gone("gfr"),
        "hb_g_dl": gone("hb"),
        "platelets_10e9_l": gone("platelets"),
        "leukocytes_10e9_l": gone("leukocytes"),
        "neutrophils_10e9_l": gone("neutrophils"),
        "asat_u_l": gone("transaminases"),
        "asat_uln_u_l": gone("transaminases"),
        "alat_u_l": gone("transaminases"),
        "alat_uln_u_l": gone("transaminases"),
        "bilirubin_umol_l": gone("bilirubin"),
        "bilirubin_uln_umol_l": gone("bilirubin"),
        "albumin_g_l": gone("albumin"),
        "sex": gone("contraception", "not_pregnant", "not_lactating"),
        "childbearing_potential": gone("contraception"),
        "contraception_agreed": gone("contraception"),
        "pregnant": gone("not_pregnant"),
        "breastfeeding": gone("not_lactating"),
        "prior_prrt": gone("no_prior_prrt"),
        "concomitant_antitumour_therapy": gone("no_concomitant_therapy"),
        "capecitabine_contraindication": gone(review=("no_capecitabine_contraindication",)),
        "uncontrolled_condition": gone(review=("no_uncontrolled_condition",)),
        "willing_to_comply": gone("willing"),
        "inclusion_date": gone("progression_1_24_months", "therapy_washout"),
        "imaging": gone("sstr_above_liver", "measurable_disease", "no_discordance"),
    },
    csv_replace={
        "hb_g_dl": {"hb_g_l": 121},
        "platelets_10e9_l": {"platelets_per_ul": 190000},
        "leukocytes_10e9_l": {"leukocytes_per_mm3": 5400},
        "neutrophils_10e9_l": {"neutrophils_10e3_ul": 3.1},
        "albumin_g_l": {"albumin_g_dl": 4.1},
        "alat_u_l": {"alat_ukat_l": 0.5},
        "alat_uln_u_l": {"alat_uln_ukat_l": 0.75},
        "bilirubin_umol_l": {"bilirubin_mg_dl": 0.5},
    },
)


SPECS: dict[str, Spec] = {
    "ibi_response": IBI_SPEC,
    "lesion_based_prrt": LBP_SPEC,
    "retreatment": RET_SPEC,
    "volumetric_followup": VOL_SPEC,
    "personalised_prrt": PERS_SPEC,
}
NAMES = sorted(SPECS)


def proto(name: str) -> Protocol:
    return load_protocol(name)


def all_met_but(protocol: Protocol, changed: Mapping[str, Status]) -> dict[str, Status]:
    return {c: changed.get(c, MET) for c in counted_ids(protocol)}


# ==========================================================================================
# coverage of the parametrisations
# ==========================================================================================


def test_every_bundled_protocol_has_a_spec() -> None:
    assert sorted(protocol_names()) == NAMES


@pytest.mark.parametrize("name", NAMES)
def test_every_criterion_has_a_failing_variant(name: str) -> None:
    """Adding a criterion to a protocol file without a test fails here."""
    assert set(SPECS[name].fails) == set(counted_ids(proto(name)))
    information = {c.id for c in proto(name).criteria if c.kind == "information"}
    assert set(SPECS[name].information) == information


@pytest.mark.parametrize("name", NAMES)
def test_every_fact_has_a_missing_variant(name: str) -> None:
    """Every fact a rule decides on, the first reference-date fact and imaging."""
    protocol = proto(name)
    uses = rule_facts(protocol)
    expected = set(uses.facts) | {protocol.reference_date[0]}
    if uses.imaging:
        expected.add("imaging")
    assert set(SPECS[name].missing) == expected
    for fact, spec in SPECS[name].missing.items():
        if fact in uses.facts and fact != protocol.reference_date[0]:
            # exactly the criteria that use it change
            assert set(spec.expect) == uses.facts[fact], fact
        elif fact == "imaging":
            assert set(spec.expect) <= uses.imaging
        else:
            assert set(spec.expect) >= uses.reference | uses.facts.get(fact, set())


# ==========================================================================================
# the reference patients
# ==========================================================================================


@pytest.mark.parametrize("name", NAMES)
def test_reference_patient_is_eligible(name: str) -> None:
    protocol = proto(name)
    spec = SPECS[name]
    result = spec.reference.evaluate(protocol)
    assert statuses(result, counted=False) == {**all_met_but(protocol, {}), **spec.information}
    for r in result.results:
        assert r.evidence, r.criterion
        assert not r.missing, r.criterion
        if r.kind != "information":
            assert r.provenance, r.criterion  # every status cites where it came from
    assert result.verdict == Verdict.ELIGIBLE, result.reason
    assert result.reason == f"all {len(counted_ids(protocol))} criteria met"
    assert result.reference_date == spec.reference.facts[protocol.reference_date[0]]
    assert result.imaging_source == "imaging/P1"


@pytest.mark.parametrize("name", NAMES)
def test_reference_patient_through_csv_with_other_units(name: str, tmp_path: Path) -> None:
    """The reference patient read from a CSV file, labs in alternative units."""
    protocol = proto(name)
    spec = SPECS[name]
    assert spec.csv_replace
    patient = read_patient_csv(tmp_path, spec.reference.facts, replace=spec.csv_replace)
    for canonical, cells in spec.csv_replace.items():
        assert patient.get(canonical) is not None, canonical
        if canonical not in cells:
            fact = patient.get(canonical)
            assert fact is not None, canonical
            assert fact.column in cells or fact.derived is not None, canonical
    result = evaluate(protocol, patient, spec.reference.imaging)
    assert statuses(result) == all_met_but(protocol, {}), result.reason
    assert result.verdict == Verdict.ELIGIBLE
    cited = " ".join(p for r in result.results for p in r.provenance)
    assert "c.csv line 2" in cited


# ==========================================================================================
# each criterion failed once
# ==========================================================================================

FAIL_PARAMS = [
    pytest.param(name, criterion, id=f"{name}-{criterion}")
    for name in NAMES
    for criterion in SPECS[name].fails
]


@pytest.mark.parametrize(("name", "criterion"), FAIL_PARAMS)
def test_variant_fails_exactly_one_criterion(name: str, criterion: str) -> None:
    protocol = proto(name)
    variant = SPECS[name].fails[criterion]
    result = variant.case.evaluate(protocol)
    expected = all_met_but(protocol, dict.fromkeys({criterion, *variant.also}, NOT_MET))
    assert statuses(result) == expected
    assert result.verdict == Verdict.NOT_ELIGIBLE
    assert criterion in result.reason
    r = result.result(criterion)
    assert r.evidence and not r.missing
    assert r.kind in ("inclusion", "exclusion")


# ==========================================================================================
# each fact missing once
# ==========================================================================================

MISSING_PARAMS = [
    pytest.param(name, fact, id=f"{name}-{fact}") for name in NAMES for fact in SPECS[name].missing
]


@pytest.mark.parametrize(("name", "fact"), MISSING_PARAMS)
def test_without_a_fact(name: str, fact: str) -> None:
    protocol = proto(name)
    spec = SPECS[name].missing[fact]
    base = spec.base or SPECS[name].reference
    assert base.evaluate(protocol).verdict == Verdict.ELIGIBLE
    if fact == "imaging":
        assert base.imaging is not None
    else:
        assert fact in base.facts
    result = base.but(fact).evaluate(protocol)
    assert statuses(result) == all_met_but(protocol, spec.expect)
    for criterion, status in spec.expect.items():
        r = result.result(criterion)
        if status == UNKNOWN:
            assert fact in r.missing, (criterion, r.missing)
            if fact != "imaging":
                assert fact in r.evidence, r.evidence
        else:
            assert not r.missing
    assert result.verdict == Verdict.UNDETERMINED
    assert all(c in result.reason for c in spec.expect)


# ==========================================================================================
# investigator review
# ==========================================================================================

REVIEW_PARAMS = [
    pytest.param(name, criterion, id=f"{name}-{criterion}")
    for name in NAMES
    for criterion in review_rules(proto(name))
]


def _shown(value: Any) -> str:
    """A value as the evidence shows it (numbers are read as floats: 85 -> "85")."""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, datetime.date):
        return value.isoformat()
    return str(value)


@pytest.mark.parametrize(("name", "criterion"), REVIEW_PARAMS)
def test_review_without_the_decision_shows_the_facts(name: str, criterion: str) -> None:
    protocol = proto(name)
    rule = review_rules(protocol)[criterion]
    assert rule.fact is not None
    reference = SPECS[name].reference
    recorded = reference.evaluate(protocol).result(criterion)
    assert recorded.status == MET
    assert "investigator's decision recorded" in recorded.evidence
    result = reference.but(rule.fact).evaluate(protocol)
    r = result.result(criterion)
    assert r.status == NEEDS_REVIEW
    assert r.evidence.startswith("investigator judgement: ")
    assert f"record it as {rule.fact} = {str(rule.value).lower()}" in r.evidence
    for shown in rule.show:
        value = reference.facts[shown]
        assert f"{shown} = {_shown(value)}" in r.evidence, (shown, r.evidence)
        assert any(f"{shown} = " in p for p in r.provenance), r.provenance
    assert result.verdict == Verdict.UNDETERMINED
    # the other way round: recorded against eligibility
    against = reference.but(**{rule.fact: not rule.value}).evaluate(protocol).result(criterion)
    assert against.status == NOT_MET
    assert f"{rule.fact} = {str(not rule.value).lower()}" in against.evidence


def test_review_shows_a_missing_shown_fact_as_not_given() -> None:
    protocol = proto("ibi_response")
    result = IBI.but("contraindication_lu177", "ki67_pct").evaluate(protocol)
    r = result.result("eligible_for_lu177")
    assert r.status == NEEDS_REVIEW
    assert "ki67_pct not given" in r.evidence
    assert "hb_g_dl = 12.5 g/dL" in r.evidence
    assert not r.missing  # a review is not unknown


def test_review_shows_the_imaging_evidence() -> None:
    """Diffuse marrow infiltration: the bone lesions found are shown for the reader."""
    protocol = proto("lesion_based_prrt")
    r = LBP.but("diffuse_bone_marrow_infiltration").evaluate(protocol).result("no_diffuse_marrow")
    assert r.status == NEEDS_REVIEW
    assert "imaging: 1 bone lesion(s) segmented on study T1" in r.evidence
    assert "B1 (bone" in r.evidence
    assert any("B1" in p for p in r.provenance)
    # without imaging: still to review, nothing to show from the scans
    r = LBP.but("diffuse_bone_marrow_infiltration", "imaging").evaluate(protocol)
    assert r.result("no_diffuse_marrow").status == NEEDS_REVIEW
    assert "imaging:" not in r.result("no_diffuse_marrow").evidence


# ==========================================================================================
# thresholds on both sides, canonical units
# ==========================================================================================

Row = tuple[str, str, Mapping[str, Any], Status]  # criterion, label, changes, status
D = datetime.date


def _rows(name: str, rows: list[Row]) -> list[Any]:
    """Variants of the reference patient: ``changes`` sets facts (``None`` drops one) and
    ``imaging``."""
    reference = SPECS[name].reference
    params = []
    for criterion, label, changes, status in rows:
        drop = [k for k, v in changes.items() if v is None]
        values = {k: v for k, v in changes.items() if v is not None}
        case = reference.but(*drop, **values)
        params.append(pytest.param(name, criterion, case, status, id=f"{name}-{criterion}-{label}"))
    return params


BOUNDARIES = [
    *_rows(
        "ibi_response",
        [
            ("age", "18", {"age_years": 18}, MET),
            ("age", "17.9", {"age_years": 17.9}, NOT_MET),
            ("bmi_40", "40", {"bmi_kg_m2": 40}, MET),
            ("bmi_40", "40.01", {"bmi_kg_m2": 40.01}, NOT_MET),
            # 12 months = 365.25 days
            ("progression_12_months", "date365d", {"progression_date": before(365)}, MET),
            ("progression_12_months", "date366d", {"progression_date": before(366)}, NOT_MET),
            ("progression_12_months", "date0d", {"progression_date": before(0)}, MET),
            ("progression_12_months", "date_after", {"progression_date": before(-1)}, NOT_MET),
            # RECIST PD on imaging (the date branch too old), same window
            (
                "progression_12_months",
                "pd365d",
                {
                    "progression_date": before(400),
                    "imaging": ibi_imaging(response="PD", t1_days=365),
                },
                MET,
            ),
            (
                "progression_12_months",
                "pd366d",
                {
                    "progression_date": before(400),
                    "imaging": ibi_imaging(response="PD", t1_days=366),
                },
                NOT_MET,
            ),
        ],
    ),
    *_rows(
        "lesion_based_prrt",
        [
            ("age", "18", {"age_years": 18}, MET),
            ("age", "17.9", {"age_years": 17.9}, NOT_MET),
            ("gfr", "50", {"gfr_ml_min_1_73m2": 50}, MET),
            ("gfr", "49.9", {"gfr_ml_min_1_73m2": 49.9}, NOT_MET),
            ("hb", "9.0", {"hb_g_dl": 9.0}, MET),
            ("hb", "8.99", {"hb_g_dl": 8.99}, NOT_MET),
            ("neutrophils", "1.5", {"neutrophils_10e9_l": 1.5}, MET),
            ("neutrophils", "1.49", {"neutrophils_10e9_l": 1.49}, NOT_MET),
            ("platelets", "100", {"platelets_10e9_l": 100}, MET),
            ("platelets", "99.9", {"platelets_10e9_l": 99.9}, NOT_MET),
            # ULN 17.1 umol/L: 2 x ULN = 34.2
            ("bilirubin", "34.2", {"bilirubin_umol_l": 34.2}, MET),
            ("bilirubin", "34.3", {"bilirubin_umol_l": 34.3}, NOT_MET),
            # ASAT ULN 40, ALAT ULN 45: 5 x ULN = 200, 225
            ("transaminases", "asat200", {"asat_u_l": 200}, MET),
            ("transaminases", "asat200.1", {"asat_u_l": 200.1}, NOT_MET),
            ("transaminases", "alat225", {"alat_u_l": 225}, MET),
            ("transaminases", "alat225.1", {"alat_u_l": 225.1}, NOT_MET),
            ("albumin", "30", {"albumin_g_l": 30}, NOT_MET),
            ("albumin", "30.1", {"albumin_g_l": 30.1}, MET),
            ("prothrombin", "70", {"prothrombin_pct": 70}, NOT_MET),
            ("prothrombin", "70.1", {"prothrombin_pct": 70.1}, MET),
            ("ecog", "1", {"ecog": 1}, MET),
            ("ecog", "2", {"ecog": 2}, NOT_MET),
            ("ssa_washout", "28d", {"last_long_acting_ssa_date": before(28)}, MET),
            ("ssa_washout", "27d", {"last_long_acting_ssa_date": before(27)}, NOT_MET),
            ("no_recent_surgery", "42d", {"last_major_surgery_date": before(42)}, MET),
            ("no_recent_surgery", "41d", {"last_major_surgery_date": before(41)}, NOT_MET),
            ("no_recent_therapy", "84d", {"last_locoregional_therapy_date": before(84)}, MET),
            ("no_recent_therapy", "83d", {"last_locoregional_therapy_date": before(83)}, NOT_MET),
            ("pregnancy_test", "28d", {"pregnancy_test_date": before(28)}, MET),
            ("pregnancy_test", "29d", {"pregnancy_test_date": before(29)}, NOT_MET),
            ("pregnancy_test", "after", {"pregnancy_test_date": before(-1)}, NOT_MET),
            ("progression_12_months", "date365d", {"progression_date": before(365)}, MET),
            ("progression_12_months", "date366d", {"progression_date": before(366)}, NOT_MET),
            ("baseline_imaging_4_weeks", "28d", {"imaging": lbp_imaging(last_days=28)}, MET),
            ("baseline_imaging_4_weeks", "29d", {"imaging": lbp_imaging(last_days=29)}, NOT_MET),
            ("target_lesion_uptake", "ld20.0", {"imaging": lbp_imaging(l1_ld=20.0)}, MET),
            ("target_lesion_uptake", "ld19.9", {"imaging": lbp_imaging(l1_ld=19.9)}, NOT_MET),
            ("target_lesion_uptake", "krenning3", {"imaging": lbp_imaging(l1_krenning=3)}, MET),
            ("target_lesion_uptake", "krenning2", {"imaging": lbp_imaging(l1_krenning=2)}, NOT_MET),
            # progressive: +20 % and +5 mm over the smallest earlier LD
            ("target_lesion_progressive", "25to30.0", {"imaging": lbp_imaging(l1_ld=30.0)}, MET),
            (
                "target_lesion_progressive",
                "25to29.9",
                {"imaging": lbp_imaging(l1_ld=29.9)},
                NOT_MET,
            ),
            (
                "target_lesion_progressive",
                "27to32.4",  # +20 % exactly, not lost to rounding
                {"imaging": lbp_imaging(l1_nadir=27.0, l1_ld=32.4)},
                MET,
            ),
            (
                "target_lesion_progressive",
                "30to35.9",  # +19.7 %, +5.9 mm
                {"imaging": lbp_imaging(l1_nadir=30.0, l1_ld=35.9)},
                NOT_MET,
            ),
            (
                "target_lesion_progressive",
                "20to24.9",  # +24.5 %, +4.9 mm
                {"imaging": lbp_imaging(l1_nadir=20.0, l1_ld=24.9)},
                NOT_MET,
            ),
            # SSTR-imaging progression: transaxial diameter increase of MORE than 30 %
            (
                "progression_12_months",
                "sstr20to26.0",
                {
                    "progression_date": before(400),
                    "imaging": lbp_imaging(l1_nadir=20.0, l1_ld=26.0),
                },
                NOT_MET,
            ),
            (
                "progression_12_months",
                "sstr21to27.3",  # +30 % exactly, not lost to rounding
                {
                    "progression_date": before(400),
                    "imaging": lbp_imaging(l1_nadir=21.0, l1_ld=27.3),
                },
                NOT_MET,
            ),
            (
                "progression_12_months",
                "sstr20to26.1",
                {
                    "progression_date": before(400),
                    "imaging": lbp_imaging(l1_nadir=20.0, l1_ld=26.1),
                },
                MET,
            ),
            (
                "progression_12_months",
                "sstr_new_lesion",
                {
                    "progression_date": before(400),
                    "imaging": lbp_imaging(extra_t1=(lesion("L9", 12.0),), new=("L9",)),
                },
                MET,
            ),
            (
                "progression_12_months",
                "recist_pd",
                {"progression_date": before(400), "imaging": lbp_imaging(response="PD")},
                MET,
            ),
            (
                "progression_12_months",
                "clinical_only",
                {"progression_date": before(400), "clinical_progression": True},
                NOT_MET,
            ),
            (
                "progression_12_months",
                "clinical_and_biochemical",
                {
                    "progression_date": before(400),
                    "clinical_progression": True,
                    "biochemical_progression": True,
                },
                MET,
            ),
        ],
    ),
    *_rows(
        "retreatment",
        [
            ("age", "18", {"age_years": 18}, MET),
            ("age", "17.9", {"age_years": 17.9}, NOT_MET),
            ("hb", "8", {"hb_g_dl": 8}, NOT_MET),
            ("hb", "8.01", {"hb_g_dl": 8.01}, MET),
            ("neutrophils", "1.5", {"neutrophils_10e9_l": 1.5}, MET),
            ("neutrophils", "1.499", {"neutrophils_10e9_l": 1.499}, NOT_MET),
            ("platelets", "80", {"platelets_10e9_l": 80}, MET),
            ("platelets", "79.999", {"platelets_10e9_l": 79.999}, NOT_MET),
            ("ecog", "2", {"ecog": 2}, MET),
            ("ecog", "3", {"ecog": 3}, NOT_MET),
            ("life_expectancy", "6", {"life_expectancy_months": 6}, MET),
            ("life_expectancy", "5.9", {"life_expectancy_months": 5.9}, NOT_MET),
            ("first_prrt_4_cycles", "4", {"first_prrt_cycles": 4}, MET),
            ("first_prrt_4_cycles", "3", {"first_prrt_cycles": 3}, NOT_MET),
            # first PRRT ended 2021-03-01; >= 12 months of 365.25/12 days: 366 days, not 365
            (
                "disease_control_12_months",
                "366d",
                {"first_prrt_progression_date": D(2022, 3, 2)},
                MET,
            ),
            (
                "disease_control_12_months",
                "365d",
                {"first_prrt_progression_date": D(2022, 3, 1)},
                NOT_MET,
            ),
            (
                "progression_after_first_prrt",
                "0d",
                {"first_prrt_progression_date": D(2021, 3, 1)},
                MET,
            ),
            (
                "progression_after_first_prrt",
                "before_end",
                {"first_prrt_progression_date": D(2021, 2, 28)},
                NOT_MET,
            ),
            ("pregnancy_test", "4d", {"pregnancy_test_date": before(4)}, MET),
            ("pregnancy_test", "5d", {"pregnancy_test_date": before(5)}, NOT_MET),
            ("pregnancy_test", "0d", {"pregnancy_test_date": before(0)}, MET),
            ("sstr_imaging_4_months", "122d", {"imaging": ret_imaging(days=122)}, MET),
            ("sstr_imaging_4_months", "123d", {"imaging": ret_imaging(days=123)}, NOT_MET),
            ("sstr_imaging_4_months", "9of10", {}, MET),
            (
                "sstr_imaging_4_months",
                "8of10",
                {"imaging": ret_imaging(grades=(4, 3, 3, 2, 2, 3, 3, 2, 1, 1))},
                NOT_MET,
            ),
            (
                "measurable_disease",
                "2lesions_ld10.0",
                {"imaging": ret_imaging(grades=(4, 3), lds=(10.0, 8.0))},
                MET,
            ),
            (
                "measurable_disease",
                "2lesions_ld9.9",
                {"imaging": ret_imaging(grades=(4, 3), lds=(9.9, 8.0))},
                NOT_MET,
            ),
            (
                "measurable_disease",
                "1lesion",
                {"imaging": ret_imaging(grades=(4,), lds=(25.0,))},
                NOT_MET,
            ),
        ],
    ),
    *_rows(
        "volumetric_followup",
        [
            # follow-up >= 3 months = 91.3125 days after the baseline scan (2023-01-10)
            ("sufficient_followup", "92d", {"last_followup_date": D(2023, 4, 12)}, MET),
            ("sufficient_followup", "91d", {"last_followup_date": D(2023, 4, 11)}, NOT_MET),
            ("measurable_liver_metastasis", "ld10", {"imaging": vol_imaging(l1_ld=10.0)}, MET),
            ("measurable_liver_metastasis", "ld9.9", {"imaging": vol_imaging(l1_ld=9.9)}, NOT_MET),
        ],
    ),
    *_rows(
        "personalised_prrt",
        [
            ("age", "18", {"age_years": 18}, MET),
            ("age", "17.9", {"age_years": 17.9}, NOT_MET),
            ("gfr", "50", {"gfr_ml_min_1_73m2": 50}, NOT_MET),
            ("gfr", "50.1", {"gfr_ml_min_1_73m2": 50.1}, MET),
            ("hb", "9.0", {"hb_g_dl": 9.0}, NOT_MET),  # Hb > 90 g/L
            ("hb", "9.01", {"hb_g_dl": 9.01}, MET),
            ("platelets", "100", {"platelets_10e9_l": 100}, NOT_MET),
            ("platelets", "100.1", {"platelets_10e9_l": 100.1}, MET),
            ("leukocytes", "3.0", {"leukocytes_10e9_l": 3.0}, NOT_MET),
            ("leukocytes", "3.01", {"leukocytes_10e9_l": 3.01}, MET),
            ("neutrophils", "1.5", {"neutrophils_10e9_l": 1.5}, NOT_MET),
            ("neutrophils", "1.51", {"neutrophils_10e9_l": 1.51}, MET),
            # ASAT ULN 40, ALAT ULN 45: 3 x ULN = 120, 135 (exactly 3 x ULN is not < 3 x ULN)
            ("transaminases", "asat120", {"asat_u_l": 120}, NOT_MET),
            ("transaminases", "asat119.9", {"asat_u_l": 119.9}, MET),
            ("transaminases", "alat135", {"alat_u_l": 135}, NOT_MET),
            ("transaminases", "alat134.9", {"alat_u_l": 134.9}, MET),
            # ULN 17.1: 2 x ULN = 34.2
            ("bilirubin", "34.2", {"bilirubin_umol_l": 34.2}, NOT_MET),
            ("bilirubin", "34.1", {"bilirubin_umol_l": 34.1}, MET),
            ("albumin", "25", {"albumin_g_l": 25}, NOT_MET),
            ("albumin", "25.1", {"albumin_g_l": 25.1}, MET),
            ("ecog", "1", {"ecog": 1}, MET),
            ("ecog", "2", {"ecog": 2}, NOT_MET),
            ("therapy_washout", "28d", {"last_antitumour_therapy_date": before(28)}, MET),
            ("therapy_washout", "27d", {"last_antitumour_therapy_date": before(27)}, NOT_MET),
            # 1-24 months of 365.25/12 days: [30.4375, 730.5] days
            ("progression_1_24_months", "date730d", {"progression_date": before(730)}, MET),
            ("progression_1_24_months", "date731d", {"progression_date": before(731)}, NOT_MET),
            ("progression_1_24_months", "date31d", {"progression_date": before(31)}, MET),
            ("progression_1_24_months", "date30d", {"progression_date": before(30)}, NOT_MET),
            # RECIST PD on imaging (the date branch too old): the same window
            (
                "progression_1_24_months",
                "pd730d",
                {
                    "progression_date": before(800),
                    "imaging": pers_imaging(response="PD", t1_days=730),
                },
                MET,
            ),
            (
                "progression_1_24_months",
                "pd731d",
                {
                    "progression_date": before(800),
                    "imaging": pers_imaging(response="PD", t1_days=731),
                },
                NOT_MET,
            ),
            (
                "progression_1_24_months",
                "pd31d",
                {
                    "progression_date": before(800),
                    "imaging": pers_imaging(response="PD", t1_days=31),
                },
                MET,
            ),
            (
                "progression_1_24_months",
                "pd30d",
                {
                    "progression_date": before(800),
                    "imaging": pers_imaging(response="PD", t1_days=30),
                },
                NOT_MET,
            ),
            ("sstr_above_liver", "krenning3", {"imaging": pers_imaging(l2_krenning=3)}, MET),
            ("sstr_above_liver", "krenning2", {"imaging": pers_imaging(l2_krenning=2)}, NOT_MET),
            ("no_discordance", "krenning1", {"imaging": pers_imaging(l2_krenning=1)}, MET),
            ("no_discordance", "krenning0", {"imaging": pers_imaging(l2_krenning=0)}, NOT_MET),
        ],
    ),
]


@pytest.mark.parametrize(("name", "criterion", "case", "status"), BOUNDARIES)
def test_threshold(name: str, criterion: str, case: Case, status: Status) -> None:
    protocol = proto(name)
    result = case.evaluate(protocol)
    r = result.result(criterion)
    assert r.status == status, r.evidence
    assert r.evidence and not r.missing
    if status == NOT_MET:
        assert result.verdict == Verdict.NOT_ELIGIBLE
        assert criterion in result.reason


def test_lesion_count_evidence() -> None:
    """Retreatment: ">= 1 lesion of >= 10 mm and >= 2 lesions" read from the evidence."""
    protocol = proto("retreatment")
    met = RET.but(imaging=ret_imaging(grades=(4, 3), lds=(10.0, 8.0))).evaluate(protocol)
    assert "2 lesion(s) on study T1" in met.result("measurable_disease").evidence
    assert "1 with LD >= 10 mm (required >= 1)" in met.result("measurable_disease").evidence
    short = RET.but(imaging=ret_imaging(grades=(4, 3), lds=(9.9, 8.0))).evaluate(protocol)
    assert "0 with LD >= 10 mm (required >= 1)" in short.result("measurable_disease").evidence
    alone = RET.but(imaging=ret_imaging(grades=(4,), lds=(25.0,))).evaluate(protocol)
    r = alone.result("measurable_disease")
    assert "[not_met] 1 lesion(s) on study T1" in r.evidence
    assert "(required >= 2)" in r.evidence


# ==========================================================================================
# thresholds through a CSV file, alternative units
# ==========================================================================================

CsvRow = tuple[str, str, Mapping[str, Mapping[str, Any]], Status]


def _csv_rows(name: str, rows: list[CsvRow]) -> list[Any]:
    return [
        pytest.param(name, criterion, replace, status, id=f"{name}-{criterion}-{label}")
        for criterion, label, replace, status in rows
    ]


CSV_BOUNDARIES = [
    *_csv_rows(
        "ibi_response",
        [
            # BMI derived from weight and height (2.0 m: BMI = weight / 4)
            ("bmi_40", "derived40", {"bmi_kg_m2": {"weight_kg": 160, "height_m": 2.0}}, MET),
            (
                "bmi_40",
                "derived40.01",
                {"bmi_kg_m2": {"weight_kg": 160.04, "height_m": 2.0}},
                NOT_MET,
            ),
            ("bmi_40", "40", {"bmi_kg_m2": {"bmi_kg_m2": 40}}, MET),
            ("bmi_40", "40.01", {"bmi_kg_m2": {"bmi_kg_m2": 40.01}}, NOT_MET),
            ("age", "18", {"age_years": {"age_years": 18}}, MET),
            ("age", "17.9", {"age_years": {"age_years": 17.9}}, NOT_MET),
        ],
    ),
    *_csv_rows(
        "lesion_based_prrt",
        [
            ("hb", "hb_g_l90", {"hb_g_dl": {"hb_g_l": 90}}, MET),
            ("hb", "hb_g_l89.9", {"hb_g_dl": {"hb_g_l": 89.9}}, NOT_MET),
            (
                "neutrophils",
                "per_mm3_1500",
                {"neutrophils_10e9_l": {"neutrophils_per_mm3": 1500}},
                MET,
            ),
            (
                "neutrophils",
                "per_mm3_1499",
                {"neutrophils_10e9_l": {"neutrophils_per_mm3": 1499}},
                NOT_MET,
            ),
            (
                "neutrophils",
                "10e3_ul_1.5",
                {"neutrophils_10e9_l": {"neutrophils_10e3_ul": 1.5}},
                MET,
            ),
            ("platelets", "10e3_ul_100", {"platelets_10e9_l": {"platelets_10e3_ul": 100}}, MET),
            (
                "platelets",
                "per_mm3_99999",
                {"platelets_10e9_l": {"platelets_per_mm3": 99999}},
                NOT_MET,
            ),
            ("albumin", "g_dl3.0", {"albumin_g_l": {"albumin_g_dl": 3.0}}, NOT_MET),
            ("albumin", "g_dl3.01", {"albumin_g_l": {"albumin_g_dl": 3.01}}, MET),
            (
                "bilirubin",
                "mg_dl2.0",
                {
                    "bilirubin_umol_l": {"bilirubin_mg_dl": 2.0},
                    "bilirubin_uln_umol_l": {"bilirubin_uln_mg_dl": 1.0},
                },
                MET,
            ),
            (
                "bilirubin",
                "mg_dl2.01",
                {
                    "bilirubin_umol_l": {"bilirubin_mg_dl": 2.01},
                    "bilirubin_uln_umol_l": {"bilirubin_uln_mg_dl": 1.0},
                },
                NOT_MET,
            ),
            # mL/s x 60: 0.84 -> 50.4, 0.83 -> 49.8 mL/min
            ("gfr", "ml_s0.84", {"gfr_ml_min_1_73m2": {"gfr_ml_s_1_73m2": 0.84}}, MET),
            ("gfr", "ml_s0.83", {"gfr_ml_min_1_73m2": {"gfr_ml_s_1_73m2": 0.83}}, NOT_MET),
        ],
    ),
    *_csv_rows(
        "retreatment",
        [
            ("hb", "hb_g_l80", {"hb_g_dl": {"hb_g_l": 80}}, NOT_MET),
            ("hb", "hb_g_l80.1", {"hb_g_dl": {"hb_g_l": 80.1}}, MET),
            (
                "neutrophils",
                "per_mm3_1500",
                {"neutrophils_10e9_l": {"neutrophils_per_mm3": 1500}},
                MET,
            ),
            (
                "neutrophils",
                "per_mm3_1499",
                {"neutrophils_10e9_l": {"neutrophils_per_mm3": 1499}},
                NOT_MET,
            ),
            ("platelets", "per_mm3_80000", {"platelets_10e9_l": {"platelets_per_mm3": 80000}}, MET),
            (
                "platelets",
                "per_mm3_79999",
                {"platelets_10e9_l": {"platelets_per_mm3": 79999}},
                NOT_MET,
            ),
        ],
    ),
    *_csv_rows(
        "volumetric_followup",
        [  # no fact of this protocol has another unit: dates as written
            (
                "sufficient_followup",
                "92d",
                {"last_followup_date": {"last_followup_date": "2023-04-12"}},
                MET,
            ),
            (
                "sufficient_followup",
                "91d",
                {"last_followup_date": {"last_followup_date": "2023-04-11"}},
                NOT_MET,
            ),
        ],
    ),
    *_csv_rows(
        "personalised_prrt",
        [
            ("hb", "hb_g_l90", {"hb_g_dl": {"hb_g_l": 90}}, NOT_MET),
            ("hb", "hb_g_l90.1", {"hb_g_dl": {"hb_g_l": 90.1}}, MET),
            (
                "platelets",
                "per_mm3_100000",
                {"platelets_10e9_l": {"platelets_per_mm3": 100000}},
                NOT_MET,
            ),
            (
                "platelets",
                "per_mm3_100001",
                {"platelets_10e9_l": {"platelets_per_mm3": 100001}},
                MET,
            ),
            (
                "leukocytes",
                "per_mm3_3000",
                {"leukocytes_10e9_l": {"leukocytes_per_mm3": 3000}},
                NOT_MET,
            ),
            (
                "leukocytes",
                "per_mm3_3001",
                {"leukocytes_10e9_l": {"leukocytes_per_mm3": 3001}},
                MET,
            ),
            (
                "neutrophils",
                "per_ul_1500",
                {"neutrophils_10e9_l": {"neutrophils_per_ul": 1500}},
                NOT_MET,
            ),
            (
                "neutrophils",
                "per_ul_1501",
                {"neutrophils_10e9_l": {"neutrophils_per_ul": 1501}},
                MET,
            ),
            ("albumin", "g_dl2.5", {"albumin_g_l": {"albumin_g_dl": 2.5}}, NOT_MET),
            ("albumin", "g_dl2.51", {"albumin_g_l": {"albumin_g_dl": 2.51}}, MET),
            # ukat/L x 60: 2.0 -> 120 U/L; ULN 0.67 -> 40.2 U/L (3 x = 120.6), 0.6 -> 40 (120)
            (
                "transaminases",
                "ukat_below",
                {"asat_u_l": {"asat_ukat_l": 2.0}, "asat_uln_u_l": {"asat_uln_ukat_l": 0.67}},
                MET,
            ),
            (
                "transaminases",
                "ukat_3xuln",
                {"asat_u_l": {"asat_ukat_l": 2.0}, "asat_uln_u_l": {"asat_uln_ukat_l": 0.6}},
                NOT_MET,
            ),
        ],
    ),
]


@pytest.mark.parametrize(("name", "criterion", "replace", "status"), CSV_BOUNDARIES)
def test_threshold_through_csv(
    name: str,
    criterion: str,
    replace: Mapping[str, Mapping[str, Any]],
    status: Status,
    tmp_path: Path,
) -> None:
    protocol = proto(name)
    reference = SPECS[name].reference
    patient = read_patient_csv(tmp_path, reference.facts, replace=replace)
    result = evaluate(protocol, patient, reference.imaging)
    expected = all_met_but(protocol, {criterion: status})
    assert statuses(result) == expected, result.result(criterion).evidence
    assert result.verdict == (Verdict.ELIGIBLE if status == MET else Verdict.NOT_ELIGIBLE)
    r = result.result(criterion)
    for cells in replace.values():
        for column in cells:
            assert any(f"c.csv line 2, {column} = " in p for p in r.provenance) or any(
                "derived from" in p and column in p for p in r.provenance
            ), r.provenance


def test_converted_value_is_cited_with_its_conversion(tmp_path: Path) -> None:
    patient = read_patient_csv(tmp_path, LBP.facts, replace={"hb_g_dl": {"hb_g_l": 89.9}})
    r = evaluate(proto("lesion_based_prrt"), patient, LBP.imaging).result("hb")
    assert r.status == NOT_MET
    assert r.evidence == "hb_g_dl = 8.99 g/dL; required >= 9 g/dL"
    assert r.provenance == ("c.csv line 2, hb_g_l = 89.9 (converted: 8.990 g/dL)",)


# ==========================================================================================
# information criteria, ULN evidence
# ==========================================================================================


@pytest.mark.parametrize(("ltb", "status"), [(50.0, NOT_MET), (50.1, MET)])
def test_liver_involvement_is_information_only(ltb: float, status: Status) -> None:
    """IBI protocol: liver involvement > 50 % is reported and does not count."""
    result = IBI.but(imaging=ibi_imaging(ltb=ltb)).evaluate(proto("ibi_response"))
    r = result.result("liver_involvement")
    assert r.kind == "information"
    assert r.status == status
    assert f"liver tumour burden {ltb:.1f} %" in r.evidence
    assert result.verdict == Verdict.ELIGIBLE
    assert "liver_involvement" not in result.reason


def test_information_unknown_does_not_count() -> None:
    assert IBI.imaging is not None
    no_ltb = imaging(
        *(dataclasses.replace(s, liver_tumour_burden_pct=None) for s in IBI.imaging.scans)
    )
    result = IBI.but(imaging=no_ltb).evaluate(proto("ibi_response"))
    r = result.result("liver_involvement")
    assert r.status == UNKNOWN
    assert r.missing == ("liver_tumour_burden_pct",)
    assert result.verdict == Verdict.ELIGIBLE


def test_times_uln_evidence_shows_the_limit() -> None:
    r = LBP.but(bilirubin_umol_l=34.3).evaluate(proto("lesion_based_prrt")).result("bilirubin")
    assert r.evidence == (
        "bilirubin_umol_l = 34.3 µmol/L; required <= 2 x bilirubin_uln_umol_l = 17.1 µmol/L = 34.2"
    )
    assert len(r.provenance) == 2


# ==========================================================================================
# applies_if: pregnancy and contraception
# ==========================================================================================

#: a man (no childbearing potential): pregnancy facts not given at all
MAN = {"sex": "M", "childbearing_potential": False}
PREGNANCY_FACTS = (
    "pregnant",
    "breastfeeding",
    "pregnancy_test_negative",
    "pregnancy_test_date",
    "contraception_agreed",
)


def _conditional(name: str) -> list[str]:
    return [c.id for c in proto(name).criteria if c.applies_if is not None]


def _uses_sex(name: str, criterion: str) -> bool:
    c = proto(name).criterion(criterion)
    return c.applies_if is not None and "sex" in c.applies_if.describe()


#: the criteria that apply by sex (pregnancy, lactation, pregnancy test)
BY_SEX_PARAMS = [
    pytest.param(name, criterion, id=f"{name}-{criterion}")
    for name in NAMES
    for criterion in _conditional(name)
    if _uses_sex(name, criterion)
]


@pytest.mark.parametrize("name", [n for n in NAMES if _conditional(n)])
def test_conditional_criteria_not_applicable_for_a_man(name: str) -> None:
    protocol = proto(name)
    reference = SPECS[name].reference
    case = reference.but(*PREGNANCY_FACTS, **MAN)
    result = case.evaluate(protocol)
    assert statuses(result) == all_met_but(protocol, {})
    for criterion in _conditional(name):
        r = result.result(criterion)
        assert r.status == MET
        assert r.evidence.startswith("not applicable: "), r.evidence
        assert not r.missing
    assert result.verdict == Verdict.ELIGIBLE


def test_pregnancy_criteria_apply_by_sex() -> None:
    by_sex = {p.values[1] for p in BY_SEX_PARAMS}
    assert {"not_pregnant", "not_breastfeeding", "not_lactating", "pregnancy_test"} <= by_sex


@pytest.mark.parametrize(("name", "criterion"), BY_SEX_PARAMS)
def test_conditional_criterion_unknown_without_sex(name: str, criterion: str) -> None:
    protocol = proto(name)
    reference = SPECS[name].reference
    r = reference.but("sex").evaluate(protocol).result(criterion)
    assert r.status == UNKNOWN
    assert "sex" in r.missing
    assert r.evidence.startswith("whether it applies: ")


def test_man_with_a_partner_of_childbearing_potential() -> None:
    """Lesion-based PRRT: contraception applies to him, the pregnancy test does not."""
    protocol = proto("lesion_based_prrt")
    man = LBP.but(*PREGNANCY_FACTS, sex="M", childbearing_potential=True)
    result = man.evaluate(protocol)
    assert result.result("pregnancy_test").status == MET
    assert result.result("pregnancy_test").evidence.startswith("not applicable")
    assert result.result("contraception").status == UNKNOWN
    assert result.result("contraception").missing == ("contraception_agreed",)
    result = man.but(contraception_agreed=True).evaluate(protocol)
    assert result.verdict == Verdict.ELIGIBLE


def test_woman_without_childbearing_potential() -> None:
    """No pregnancy test needed, but still not pregnant."""
    protocol = proto("retreatment")
    woman = RET.but(
        "pregnancy_test_negative",
        "pregnancy_test_date",
        "contraception_agreed",
        childbearing_potential=False,
    )
    result = woman.evaluate(protocol)
    assert result.verdict == Verdict.ELIGIBLE
    assert result.result("pregnancy_test").evidence.startswith("not applicable")
    protocol = proto("personalised_prrt")
    result = PERS.but("contraception_agreed", childbearing_potential=False).evaluate(protocol)
    assert result.verdict == Verdict.ELIGIBLE
    assert result.result("not_pregnant").evidence == "pregnant = false; required == false"


# ==========================================================================================
# imaging: the look-back, evidence and provenance
# ==========================================================================================


def test_progression_after_inclusion_is_not_prior_progression() -> None:
    protocol = proto("ibi_response")
    later = scan(
        before(-30), lesion("L1", 45.0), lesion("L2", 18.0, krenning=3), study="T2", response="PD"
    )
    # the date branch is not met (too old): only the scans can show progression
    old = before(400)
    result = IBI.but(progression_date=old, imaging=ibi_imaging(extra=(later,))).evaluate(protocol)
    r = result.result("progression_12_months")
    assert r.status == NOT_MET
    assert "T2" not in r.evidence and before(-30).isoformat() not in r.evidence
    assert result.verdict == Verdict.NOT_ELIGIBLE
    # the same PD before inclusion counts
    earlier = scan(
        before(30), lesion("L1", 45.0), lesion("L2", 18.0, krenning=3), study="T2", response="PD"
    )
    r = (
        IBI.but(progression_date=old, imaging=ibi_imaging(extra=(earlier,)))
        .evaluate(protocol)
        .result("progression_12_months")
    )
    assert r.status == MET
    assert "RECIST 1.1 PD on study T2" in r.evidence
    assert any("T2" in p for p in r.provenance)


def test_progression_date_after_inclusion_is_not_prior_progression() -> None:
    r = IBI.but(progression_date=before(-10)).evaluate(proto("ibi_response"))
    assert r.result("progression_12_months").status == NOT_MET


def test_sstr_progression_after_inclusion_does_not_count() -> None:
    protocol = proto("lesion_based_prrt")
    t2 = scan(before(-20), lesion("L1", 45.0), lesion("L9", 15.0), study="T2", new=("L9",))
    case = LBP.but(progression_date=before(400), imaging=lbp_imaging(extra=(t2,)))
    result = case.evaluate(protocol)
    assert result.result("progression_12_months").status == NOT_MET
    # the target lesion is judged on the last scan before inclusion (T1), not T2
    assert "study T1" in result.result("target_lesion_uptake").evidence
    assert "study T2" not in result.result("target_lesion_uptake").evidence


def test_a_later_scan_does_not_make_an_old_sstr_scan_recent() -> None:
    protocol = proto("retreatment")
    later = scan(before(-5), *(lesion(f"L{i}", 20.0, krenning=4) for i in range(1, 4)), study="T9")
    result = RET.but(imaging=ret_imaging(days=130, extra=(later,))).evaluate(protocol)
    r = result.result("sstr_imaging_4_months")
    assert r.status == NOT_MET
    assert "is 130 days before the reference date" in r.evidence
    # nor does it change the fraction: 3 positive lesions after inclusion are ignored
    result = RET.but(
        imaging=ret_imaging(grades=(4, 3, 3, 2, 2, 3, 3, 2, 1, 1), extra=(later,))
    ).evaluate(protocol)
    assert result.result("sstr_imaging_4_months").status == NOT_MET
    assert "8 of 10 lesions SSTR-positive" in result.result("sstr_imaging_4_months").evidence


def test_volumetric_baseline_only() -> None:
    """Retrospective cohort: evaluated at the baseline scan; the follow-up does not count."""
    protocol = proto("volumetric_followup")
    result = VOL.but(imaging=vol_imaging(l1_ld=9.0, later_ld=25.0)).evaluate(protocol)
    r = result.result("measurable_liver_metastasis")
    assert r.status == NOT_MET
    assert "study T0" in r.evidence
    # no scan on or before the baseline date: unknown
    result = VOL.but(imaging=vol_imaging(baseline=False)).evaluate(protocol)
    r = result.result("measurable_liver_metastasis")
    assert r.status == UNKNOWN
    assert r.missing == ("imaging scan",)
    assert result.verdict == Verdict.UNDETERMINED


def test_discordant_lesion_is_named() -> None:
    protocol = proto("personalised_prrt")
    r = PERS.but(imaging=pers_imaging(l2_krenning=0)).evaluate(protocol).result("no_discordance")
    assert r.status == NOT_MET
    assert "1 lesion(s) seen on CT without SSTR uptake (Krenning <= 0)" in r.evidence
    assert "L2 (liver, study T1 lesion L2)" in r.evidence
    assert any("lesion L2" in p for p in r.provenance)
    sstr = PERS.but(imaging=pers_imaging(l2_krenning=2)).evaluate(protocol)
    r = sstr.result("sstr_above_liver")
    assert "2 of 3 lesions SSTR-positive (Krenning >= 3)" in r.evidence
    assert "not positive: L2" in r.evidence


def test_uptake_needs_a_pet() -> None:
    protocol = proto("lesion_based_prrt")
    t1 = scan(before(12), lesion("L1", 30.5, krenning=None), study="T1", pet=False)
    t0 = scan(before(180), lesion("L1", 25.0), study="T0")
    r = LBP.but(imaging=imaging(t0, t1)).evaluate(protocol).result("target_lesion_uptake")
    assert r.status == UNKNOWN
    assert r.missing == ("SSTR PET",)


def test_imaging_provenance_names_study_and_lesion() -> None:
    result = LBP.evaluate(proto("lesion_based_prrt"))
    prov = result.result("target_lesion_progressive").provenance
    assert prov[0].startswith("imaging/P1/studies/T1: study T1 (")
    assert any(p.startswith("StudyInstanceUID ") for p in prov)
    assert any(p.startswith("lesion L1 (liver, study T1 lesion L1): LD 30.5 mm") for p in prov)


# ==========================================================================================
# the reference date
# ==========================================================================================


def test_reference_date_falls_back_to_prrt_start() -> None:
    protocol = proto("ibi_response")
    result = IBI.but("inclusion_date", prrt_start_date=REF).evaluate(protocol)
    assert result.verdict == Verdict.ELIGIBLE
    assert result.reference_date == REF
    assert "prrt_start_date" in result.reference_date_source


def test_no_reference_date_names_the_facts() -> None:
    protocol = proto("retreatment")
    result = RET.but("inclusion_date").evaluate(protocol)
    assert result.reference_date is None
    assert result.reference_date_source == "none of inclusion_date, prrt_start_date"
    r = result.result("sstr_imaging_4_months")
    assert r.status == UNKNOWN
    assert r.missing == ("inclusion_date", "prrt_start_date")


def test_evaluate_without_imaging_argument() -> None:
    result: Eligibility = evaluate(proto("volumetric_followup"), VOL.patient())
    assert result.result("measurable_liver_metastasis").status == UNKNOWN
    assert result.result("measurable_liver_metastasis").missing == ("imaging",)
    assert result.imaging_source is None


def test_met_by_one_branch_lists_nothing_missing() -> None:
    """``any``: met by the RECIST PD on the scans; the absent progression date is not
    reported as missing (``missing`` is for unknown criteria)."""
    case = IBI.but("progression_date", imaging=ibi_imaging(response="PD"))
    r = case.evaluate(proto("ibi_response")).result("progression_12_months")
    assert r.status == MET
    assert r.missing == ()
    assert r.evidence.startswith("[met] RECIST 1.1 PD on study T1")
    assert "[unknown] missing progression_date" in r.evidence

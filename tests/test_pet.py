"""PET/SPECT activity concentration and SUV (netvolume.io.pet) on synthetic PT series.

The rules and the test vector are those of ``../shared/docs/DOMAIN.md`` section 5
("PET SUV from DICOM"): SUVbw = A * W * 1000 / D with D = D_adm * 2**(-dt / T1/2) for
DecayCorrection START, the QIBA order of the decay reference time (with the OncoRay
frame-timing step), per-frame correction for DecayCorrection NONE, Philips CNTS, stored
SUVs (GML / CM2ML), and the James / Janmahasatian / Du Bois / IBW body-size formulas (with
the 120/148 swap of one public library as a known trap).

Every series is written by :func:`_pet.write_pet_series` (6 slices of 8 x 8, injection
2025-01-01 10:00, series and acquisition 11:00, 370 MBq F-18, 70 kg male of 1.75 m unless
a test says otherwise) and read with ``scan(folder).select()``. Analytic values are
compared with a relative tolerance of 1e-9 or better; the DOMAIN.md figures, given to 5-6
significant digits, to their last digit.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import os
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pydicom
import pydicom.uid
import pytest
from _pet import ge_private, philips_private, stored_array, write_pet_series

from netvolume.errors import (
    ContradictoryQuantityError,
    MissingQuantityError,
    NetVolumeError,
    QuantificationError,
    UncorrectedImageError,
    UnsupportedUnitsError,
)
from netvolume.io.dicom import Series, scan
from netvolume.io.dicom_write import write_series
from netvolume.io.pet import (
    HALF_LIFE_TABLE_S,
    ActivityFactor,
    SUVFactor,
    SUVInput,
    SUVOptions,
    activity_factor,
    bsa_dubois_m2,
    ibw_kg,
    identify_nuclide,
    lbm_james_kg,
    lbm_janmahasatian_kg,
    load_activity,
    load_suv,
    suv_factor,
    suv_summary,
)

T18 = 6586.2  # F-18 half-life in s, as written by default
LAM18 = math.log(2.0) / T18
DOSE = 370e6  # Bq
WEIGHT = 70.0  # kg
RTOL = 1e-12  # analytic factors: the same arithmetic up to rounding

# Hand-computed body-size values (exact rational arithmetic, then rounded to a float)
# for W = 82.5 kg, H = 1.68 m: BMI = 29.230..., (W / H_cm)**2 = 0.24114...
W2, H2 = 82.5, 1.68
JAMES_M128 = 59.88265306122449  # 1.10 W - 128 (W/H_cm)^2
JAMES_M120 = 61.81186224489796  # 1.10 W - 120 (W/H_cm)^2
JAMES_F148 = 52.58463010204082  # 1.07 W - 148 (W/H_cm)^2
JAMES_F120_SWAPPED = 59.33686224489796  # the cornerstone swap (female with 120): wrong
JAMES_M148_SWAPPED = 55.05963010204081  # the cornerstone swap (male with 148): wrong
JANMA_M = 58.857027305067575  # 9270 W / (6680 + 216 BMI)
JANMA_F = 48.062094461646  # 9270 W / (8780 + 244 BMI)
IBW_M = 64.96  # 48.0 + 1.06 (168 - 152)
IBW_F = 60.06  # 45.5 + 0.91 (168 - 152)
# The same formulas for the default patient (W = 70 kg, H = 1.75 m)
JAMES_M_70 = 56.52
JAMES_F_70 = 51.22
JANMA_M_70 = 55.857107722577474
JANMA_F_70 = 45.19701492537313
IBW_M_70 = 72.38
IBW_F_70 = 66.43


# ---------------------------------------------------------------------------- helpers
PetSeries = Callable[..., Series]


@pytest.fixture(scope="module")
def pet_series(tmp_path_factory: pytest.TempPathFactory) -> PetSeries:
    """``pet_series(**kw)``: the series of ``write_pet_series(folder, **kw)``, selected.

    Series are read-only once written, so one folder per distinct ``kw`` is written for
    the whole module and shared by the tests that ask for the same headers.
    """
    root = tmp_path_factory.mktemp("pet")
    cache: dict[str, Series] = {}

    def make(**kw: Any) -> Series:
        key = repr(sorted(kw.items()))
        if key not in cache:
            folder = root / f"s{len(cache):03d}"
            write_pet_series(folder, **kw)
            cache[key] = scan(folder).select()
        return cache[key]

    return make


def _bw(elapsed_s: float, *, w: float = WEIGHT, d: float = DOSE, t: float = T18) -> float:
    """SUVbw factor of BQML START data: W * 1000 / (D_adm * 2**(-elapsed / T1/2))."""
    return w * 1000.0 / (d * 2.0 ** (-elapsed_s / t))


def _tm(seconds: float) -> str:
    """DICOM TM for ``seconds`` after midnight (whole microseconds)."""
    t = dt.datetime(2025, 1, 1) + dt.timedelta(seconds=seconds)
    return t.strftime("%H%M%S.%f")


def _input(fac: SUVFactor | ActivityFactor, name: str) -> SUVInput:
    found = [i for i in fac.inputs if i.name == name]
    assert len(found) == 1, [i.name for i in fac.inputs]
    return found[0]


def _slice_factors(fac: SUVFactor | ActivityFactor, paths: list[Path]) -> np.ndarray:
    """The factor of each written file, in array (slice) order."""
    by_uid = {k[0]: f for k, f in zip(fac.image_keys, fac.image_factors, strict=True)}
    return np.array([by_uid[pydicom.dcmread(p).SOPInstanceUID] for p in paths])


def _check_error(info: pytest.ExceptionInfo[NetVolumeError], tag: str) -> None:
    """The error names ``tag`` (keyword and number) in its message and its tag field."""
    assert info.value.tag == tag
    assert tag in str(info.value)


def _frame_offset_s(duration_s: float, lam: float = LAM18) -> float:
    """ln(lT / (1 - exp(-lT))) / l: frame start -> time of the frame's mean activity."""
    x = lam * duration_s
    return math.log(x / (1.0 - math.exp(-x))) / lam


# ---------------------------------------------------------------------------- test vector
def test_domain_vector_suvbw_and_decayed_dose(pet_series: PetSeries) -> None:
    fac = suv_factor(pet_series())
    assert fac.elapsed_s == 3600.0
    assert fac.dose_administered_bq == DOSE
    assert fac.dose_at_reference_bq == pytest.approx(253.314e6, abs=0.0005e6)
    assert fac.factor is not None
    assert fac.factor * 5000.0 == pytest.approx(1.38168, abs=0.000005)
    # and the exact formula behind the rounded figures
    assert fac.factor == pytest.approx(WEIGHT * 1000.0 / (DOSE * 2.0 ** (-3600 / T18)), rel=RTOL)
    assert fac.dose_at_reference_bq == pytest.approx(DOSE * 2.0 ** (-3600 / T18), rel=RTOL)
    assert (fac.method, fac.suv_type, fac.unit, fac.quantity) == ("activity", "BW", "g/mL", "SUVbw")
    assert fac.reference_rule == "series"
    assert (fac.normaliser, fac.normaliser_unit) == (WEIGHT, "kg")


def test_domain_vector_body_size_male_70kg_175cm() -> None:
    assert lbm_janmahasatian_kg(70.0, 1.75, "M") == pytest.approx(55.857, abs=0.0005)
    assert lbm_james_kg(70.0, 1.75, "M") == pytest.approx(56.52, abs=0.005)
    assert bsa_dubois_m2(70.0, 1.75) == pytest.approx(1.8481, abs=0.00005)
    assert bsa_dubois_m2(70.0, 1.75) == pytest.approx(
        0.007184 * 70.0**0.425 * 175.0**0.725, rel=RTOL
    )
    assert ibw_kg(1.75, "M") == pytest.approx(IBW_M_70, rel=RTOL)


# ---------------------------------------------------------------------------- body size
@pytest.mark.parametrize(
    ("sex", "male_coeff", "expected", "swapped"),
    [
        ("M", 128.0, JAMES_M128, JAMES_M148_SWAPPED),
        ("M", 120.0, JAMES_M120, JAMES_M148_SWAPPED),
        ("F", 128.0, JAMES_F148, JAMES_F120_SWAPPED),
        ("F", 120.0, JAMES_F148, JAMES_F120_SWAPPED),  # male_coeff does not touch women
        ("f", 128.0, JAMES_F148, JAMES_F120_SWAPPED),
    ],
)
def test_lbm_james_both_sexes_against_hand_values(
    sex: str, male_coeff: float, expected: float, swapped: float
) -> None:
    got = lbm_james_kg(W2, H2, sex, male_coeff=male_coeff)
    assert got == pytest.approx(expected, rel=1e-9)
    assert got != pytest.approx(swapped, rel=1e-3)  # the 120/148 swap of cornerstone


def test_lbm_james_default_male_coefficient_is_128() -> None:
    assert lbm_james_kg(W2, H2, "M") == pytest.approx(JAMES_M128, rel=1e-9)


@pytest.mark.parametrize(("sex", "expected"), [("M", JANMA_M), ("F", JANMA_F)])
def test_lbm_janmahasatian_both_sexes(sex: str, expected: float) -> None:
    assert lbm_janmahasatian_kg(W2, H2, sex) == pytest.approx(expected, rel=1e-9)


@pytest.mark.parametrize(("sex", "expected"), [("M", IBW_M), ("F", IBW_F)])
def test_ibw_both_sexes(sex: str, expected: float) -> None:
    assert ibw_kg(H2, sex) == pytest.approx(expected, rel=1e-9)


@pytest.mark.parametrize(
    "call",
    [
        lambda s: lbm_james_kg(W2, H2, s),
        lambda s: lbm_janmahasatian_kg(W2, H2, s),
        lambda s: ibw_kg(H2, s),
    ],
    ids=["james", "janma", "ibw"],
)
@pytest.mark.parametrize("sex", ["", "O", "X"])
def test_body_size_functions_need_m_or_f(call: Any, sex: str) -> None:
    with pytest.raises(MissingQuantityError) as info:
        call(sex)
    _check_error(info, "PatientSex (0010,0040)")


@pytest.mark.parametrize(
    ("norm", "sex", "normaliser"),
    [
        ("lbm-james", "M", JAMES_M_70),
        ("lbm-james", "F", JAMES_F_70),
        ("lbm-james120", "M", 1.10 * 70 - 120 * (70 / 175) ** 2),
        ("lbm-james120", "F", JAMES_F_70),
        ("lbm-janma", "M", JANMA_M_70),
        ("lbm-janma", "F", JANMA_F_70),
        ("bsa", "F", 0.007184 * 70.0**0.425 * 175.0**0.725),
    ],
)
def test_suv_factor_lbm_and_bsa_from_header(
    pet_series: PetSeries, norm: str, sex: str, normaliser: float
) -> None:
    fac = suv_factor(pet_series(sex=sex), norm)
    scale = 1e4 if norm == "bsa" else 1000.0  # BSA in cm2, masses in g
    expected = normaliser * scale / (DOSE * 2.0 ** (-3600 / T18))
    assert fac.factor == pytest.approx(expected, rel=1e-9)
    assert fac.normaliser == pytest.approx(normaliser, rel=1e-9)
    assert fac.sex == (None if norm == "bsa" else sex)
    assert fac.height_m == 1.75


def test_lbm_james120_male_differs_from_james128(pet_series: PetSeries) -> None:
    s = pet_series()
    f128 = suv_factor(s, "lbm-james").normaliser
    f120 = suv_factor(s, "lbm-james120")
    assert f128 == pytest.approx(JAMES_M_70, rel=1e-12)
    assert f120.normaliser == pytest.approx(57.8, rel=1e-12)
    assert (f120.suv_type, suv_factor(s, "lbm-james").suv_type) == ("LBM", "LBMJAMES128")


def test_sex_override_replaces_header(pet_series: PetSeries) -> None:
    fac = suv_factor(pet_series(sex="M"), "lbm-janma", sex="F")
    assert fac.normaliser == pytest.approx(JANMA_F_70, rel=1e-12)
    inp = _input(fac, "PatientSex")
    assert (inp.value, inp.source, inp.note) == ("F", "override", "header value 'M'")


def test_ibw_capped_at_body_weight_by_default(pet_series: PetSeries) -> None:
    s = pet_series()  # male 1.75 m: IBW 72.38 kg > 70 kg
    fac = suv_factor(s, "ibw")
    assert fac.normaliser == WEIGHT
    assert fac.factor == pytest.approx(_bw(3600), rel=RTOL)
    assert "capped at the body weight" in _input(fac, "IBW").note


def test_ibw_not_capped_when_disabled(pet_series: PetSeries) -> None:
    fac = suv_factor(pet_series(), "ibw", ibw_cap_at_weight=False)
    assert fac.normaliser == pytest.approx(IBW_M_70, rel=RTOL)
    assert fac.factor == pytest.approx(_bw(3600, w=IBW_M_70), rel=RTOL)


def test_ibw_below_weight_is_not_capped(pet_series: PetSeries) -> None:
    fac = suv_factor(pet_series(sex="F", weight_kg=80.0), "ibw")
    assert fac.normaliser == pytest.approx(IBW_F_70, rel=RTOL)


def test_ibw_without_cap_does_not_need_weight(pet_series: PetSeries) -> None:
    s = pet_series(weight_kg=None)
    fac = suv_factor(s, "ibw", ibw_cap_at_weight=False)
    assert fac.weight_kg is None
    assert fac.normaliser == pytest.approx(IBW_M_70, rel=RTOL)


@pytest.mark.parametrize(
    ("norm", "normaliser"),
    [
        ("lbm-james", (JAMES_M_70 + JAMES_F_70) / 2),
        ("lbm-janma", (JANMA_M_70 + JANMA_F_70) / 2),
    ],
)
def test_sex_other_gives_mean_of_male_and_female(
    pet_series: PetSeries, norm: str, normaliser: float
) -> None:
    fac = suv_factor(pet_series(sex="O"), norm)
    assert fac.sex == "O"
    assert fac.normaliser == pytest.approx(normaliser, rel=1e-12)
    assert any("PatientSex (0010,0040) is O" in w for w in fac.warnings)


def test_sex_other_ibw_is_mean_uncapped(pet_series: PetSeries) -> None:
    fac = suv_factor(pet_series(sex="O"), "ibw", ibw_cap_at_weight=False)
    assert fac.normaliser == pytest.approx((IBW_M_70 + IBW_F_70) / 2, rel=1e-12)


def test_sex_other_ibw_mean_is_capped(pet_series: PetSeries) -> None:
    # mean IBW 69.405 kg: capped at a 60 kg body weight
    fac = suv_factor(pet_series(sex="O", weight_kg=60.0), "ibw")
    assert fac.normaliser == 60.0


@pytest.mark.parametrize("norm", ["lbm-james", "lbm-janma", "ibw"])
def test_sex_other_raises_with_sex_other_error(pet_series: PetSeries, norm: str) -> None:
    s = pet_series(sex="O")
    with pytest.raises(MissingQuantityError) as info:
        suv_factor(s, norm, sex_other="error")
    _check_error(info, "PatientSex (0010,0040)")


def test_sex_other_override_obeys_sex_other_error(pet_series: PetSeries) -> None:
    with pytest.raises(MissingQuantityError):
        suv_factor(pet_series(), "lbm-janma", sex="O", sex_other="error")
    fac = suv_factor(pet_series(), "lbm-janma", sex="O")
    assert fac.sex == "O"


@pytest.mark.parametrize("sex", ["", None])
@pytest.mark.parametrize("norm", ["lbm-james", "lbm-janma", "ibw"])
def test_empty_or_absent_sex_raises(pet_series: PetSeries, norm: str, sex: str | None) -> None:
    s = pet_series(sex=sex)
    with pytest.raises(MissingQuantityError) as info:
        suv_factor(s, norm)
    _check_error(info, "PatientSex (0010,0040)")


def test_bw_needs_neither_height_nor_sex(pet_series: PetSeries) -> None:
    s = pet_series(height_m=None, sex=None)
    fac = suv_factor(s, "bw")
    assert fac.factor == pytest.approx(_bw(3600), rel=RTOL)
    assert (fac.height_m, fac.sex) == (None, None)
    assert {i.name for i in fac.inputs}.isdisjoint({"PatientSize", "PatientSex"})


# ---------------------------------------------------------------------------- properties
def test_suvbw_linear_in_header_weight(pet_series: PetSeries) -> None:
    rng = np.random.default_rng(20250101)
    for w in np.round(rng.uniform(35.0, 150.0, size=4), 1):
        fac = suv_factor(pet_series(weight_kg=float(w)))
        assert fac.weight_kg == float(w)
        assert fac.factor == pytest.approx(_bw(3600, w=float(w)), rel=RTOL)


def test_suvbw_linear_in_weight_override(pet_series: PetSeries) -> None:
    s = pet_series()
    base = suv_factor(s).factor
    assert base is not None
    rng = np.random.default_rng(7)
    for w in rng.uniform(20.0, 250.0, size=6):
        fac = suv_factor(s, weight_kg=float(w))
        assert fac.factor == pytest.approx(base * w / WEIGHT, rel=RTOL)
        inp = _input(fac, "PatientWeight")
        assert (inp.value, inp.source, inp.note) == (float(w), "override", "header value 70.0")


def test_suvbw_inverse_in_dose(pet_series: PetSeries) -> None:
    rng = np.random.default_rng(11)
    for d in np.round(rng.uniform(1e8, 8e8, size=3)):
        fac = suv_factor(pet_series(dose_bq=float(d)))
        assert fac.factor == pytest.approx(_bw(3600, d=float(d)), rel=RTOL)
    s = pet_series()
    for d in rng.uniform(1e7, 1e10, size=5):
        fac = suv_factor(s, dose_bq=float(d))
        assert fac.factor * d == pytest.approx(_bw(3600) * DOSE, rel=RTOL)


def test_start_and_admin_differ_by_the_decay_factor(pet_series: PetSeries) -> None:
    rng = np.random.default_rng(3)
    for n, elapsed in enumerate(rng.integers(300, 30000, size=4)):
        t = _tm(10 * 3600 + int(elapsed))
        common = {"series_time": t, "seed": n}
        start = suv_factor(pet_series(decay_correction="START", **common))
        admin = suv_factor(pet_series(decay_correction="ADMIN", **common))
        assert start.elapsed_s == admin.elapsed_s == float(elapsed)
        assert admin.factor == pytest.approx(WEIGHT * 1000.0 / DOSE, rel=RTOL)
        assert start.factor / admin.factor == pytest.approx(2.0 ** (elapsed / T18), rel=RTOL)
        assert admin.dose_at_reference_bq == DOSE


def _none_series(
    folder: Path, rng: np.random.Generator, **kw: Any
) -> tuple[Series, list[Path], list[int], list[int]]:
    """DecayCorrection NONE with random per-slice acquisition times and frame durations.

    Returns the series, its files in slice order, the acquisition times in s after the
    injection and the frame durations in ms (both per slice).
    """
    offsets = sorted(int(v) for v in rng.integers(1800, 9000, size=6))
    durations = [int(v) for v in rng.integers(60, 600, size=6) * 1000]
    paths = write_pet_series(
        folder,
        decay_correction="NONE",
        corrected_image=("ATTN",),
        series_time=_tm(10 * 3600 + offsets[0]),
        acquisition_times=[_tm(10 * 3600 + o) for o in offsets],
        frame_duration_ms=durations,
        **kw,
    )
    return scan(folder).select(), paths, offsets, durations


def _none_expected(offsets: list[int], durations: list[int]) -> np.ndarray:
    """lT/(1-exp(-lT)) * exp(l (t_acq - t_adm)) * W * 1000 / D_adm per slice."""
    out = []
    for o, d in zip(offsets, durations, strict=True):
        x = LAM18 * d / 1000.0
        out.append(x / (1.0 - math.exp(-x)) * math.exp(LAM18 * o) * WEIGHT * 1000.0 / DOSE)
    return np.array(out)


def test_decay_none_per_slice_factors(tmp_path: Path) -> None:
    rng = np.random.default_rng(5)
    for n in range(3):
        s, paths, offsets, durations = _none_series(tmp_path / f"n{n}", rng, seed=n)
        fac = suv_factor(s)
        got = _slice_factors(fac, paths)
        np.testing.assert_allclose(got, _none_expected(offsets, durations), rtol=1e-9)
        assert fac.factor is None  # differs per slice
        assert fac.dose_at_reference_bq == DOSE
        assert fac.decay_correction == "NONE"


def test_load_suv_applies_per_slice_factor_and_slope(tmp_path: Path) -> None:
    rng = np.random.default_rng(9)
    slopes = [float(v) for v in np.round(rng.uniform(0.2, 4.0, size=6), 4)]
    s, _, offsets, durations = _none_series(tmp_path / "p", rng, slope=slopes)
    vol = load_suv(s)
    stored = stored_array(0).astype(np.float64)
    expected = stored * np.array(slopes)[:, None, None]
    expected *= _none_expected(offsets, durations)[:, None, None]
    assert vol.units == "SUVbw"
    assert vol.array.dtype == np.float32
    np.testing.assert_allclose(vol.array, expected, rtol=2e-6)
    assert vol.provenance.settings["suv"]["method"] == "activity"


def test_load_suv_start_with_per_slice_slopes(pet_series: PetSeries) -> None:
    slopes = [0.5, 1.25, 2.0, 3.5, 0.75, 1.0]
    s = pet_series(slope=slopes)
    vol = load_suv(s, "lbm-janma")
    expected = stored_array(0) * np.array(slopes)[:, None, None]
    expected = expected * _bw(3600, w=JANMA_M_70)
    np.testing.assert_allclose(vol.array, expected, rtol=2e-6)
    assert vol.units == "SUVlbm-janma"


# ---------------------------------------------------------------------------- reference time
LATE = {"series_time": "113000", "acquisition_times": "110000"}  # a post-processed series


def test_reference_series_when_not_after_acquisition(pet_series: PetSeries) -> None:
    s = pet_series(series_time="105500", acquisition_times="110000")
    fac = suv_factor(s)
    assert fac.reference_rule == "series"
    assert fac.reference_datetime == "2025-01-01T10:55:00"
    assert fac.elapsed_s == 3300.0
    assert fac.factor == pytest.approx(_bw(3300), rel=RTOL)


def test_reference_ge_private_when_series_later(pet_series: PetSeries) -> None:
    s = pet_series(private=ge_private("20250101105000.00"), **LATE)
    fac = suv_factor(s)
    assert fac.reference_rule == "ge-private"
    assert fac.reference_datetime == "2025-01-01T10:50:00"
    assert fac.elapsed_s == 3000.0
    assert fac.factor == pytest.approx(_bw(3000), rel=RTOL)
    assert _input(fac, "GE PETD scan datetime").tag == "(0009,100D)"


def test_reference_ge_private_found_through_its_creator_block(pet_series: PetSeries) -> None:
    private = {
        (0x0009, 0x0010): ("LO", "SOME OTHER CREATOR"),
        (0x0009, 0x100D): ("DT", "20250101104000"),  # not GE's: must be ignored
        **ge_private("20250101105000", block=0x11),
    }
    fac = suv_factor(pet_series(private=private, **LATE))
    assert fac.reference_rule == "ge-private"
    assert fac.elapsed_s == 3000.0
    assert _input(fac, "GE PETD scan datetime").tag == "(0009,110D)"


def test_reference_ge_private_without_creator_read_at_block_10(pet_series: PetSeries) -> None:
    s = pet_series(private=ge_private("20250101105000", creator=False), **LATE)
    fac = suv_factor(s)
    assert fac.reference_rule == "ge-private"
    assert fac.elapsed_s == 3000.0
    assert "absent" in _input(fac, "GE PETD scan datetime").note


def test_reference_ge_private_wins_over_frame_timing(pet_series: PetSeries) -> None:
    s = pet_series(
        private=ge_private("20250101105000"),
        frame_reference_time_ms=150000,
        **LATE,
    )
    assert suv_factor(s).reference_rule == "ge-private"


@pytest.mark.parametrize(("frt_ms", "dur_ms"), [(150000, 300000), (0, 300000), (600000, 120000)])
def test_reference_frame_timing_when_series_later(
    pet_series: PetSeries, frt_ms: int, dur_ms: int
) -> None:
    s = pet_series(frame_reference_time_ms=frt_ms, frame_duration_ms=dur_ms, **LATE)
    fac = suv_factor(s)
    assert fac.reference_rule == "frame-timing"
    expected = 3600.0 + _frame_offset_s(dur_ms / 1000.0) - frt_ms / 1000.0
    assert fac.elapsed_s == pytest.approx(expected, abs=1e-6)  # datetime has 1 us steps
    assert fac.factor == pytest.approx(_bw(expected), rel=1e-9)
    assert _input(fac, "FrameReferenceTime").value == [float(frt_ms)]


def test_reference_frame_timing_is_earliest_within_tolerance(pet_series: PetSeries) -> None:
    frt = [150000, 150200, 150500, 150100, 150000, 150300]  # spread 0.5 s < 1 s
    s = pet_series(frame_reference_time_ms=frt, **LATE)
    fac = suv_factor(s)
    assert fac.reference_rule == "frame-timing"
    # t_ref = min over slices of t_acq + offset - FrameReferenceTime: the largest FRT
    assert fac.elapsed_s == pytest.approx(3600.0 + _frame_offset_s(300.0) - 150.5, abs=1e-6)
    assert fac.warnings == ()


def test_reference_qiba_skips_frame_timing(pet_series: PetSeries) -> None:
    s = pet_series(frame_reference_time_ms=150000, **LATE)
    fac = suv_factor(s, reference_time="qiba")
    assert fac.reference_rule == "earliest-acquisition"
    assert fac.elapsed_s == 3600.0


def test_reference_earliest_acquisition_without_frame_timing(pet_series: PetSeries) -> None:
    acq = [_tm(11 * 3600 + 60 * k) for k in (3, 1, 4, 0, 5, 2)]  # earliest is slice 3
    s = pet_series(series_time="113000", acquisition_times=acq)
    fac = suv_factor(s)
    assert fac.reference_rule == "earliest-acquisition"
    assert fac.reference_datetime == "2025-01-01T11:00:00"
    assert fac.factor == pytest.approx(_bw(3600), rel=RTOL)


def test_reference_forced_series(pet_series: PetSeries) -> None:
    s = pet_series(private=ge_private("20250101105000"), **LATE)
    fac = suv_factor(s, reference_time="series")
    assert (fac.reference_rule, fac.elapsed_s) == ("series", 5400.0)


def test_reference_forced_acquisition(pet_series: PetSeries) -> None:
    s = pet_series(series_time="105000", acquisition_times="110000")
    fac = suv_factor(s, reference_time="acquisition")
    assert (fac.reference_rule, fac.elapsed_s) == ("earliest-acquisition", 3600.0)


def test_reference_forced_frame(pet_series: PetSeries) -> None:
    s = pet_series(frame_reference_time_ms=100000)  # series = acquisition
    fac = suv_factor(s, reference_time="frame")
    assert fac.reference_rule == "frame-timing"
    assert fac.elapsed_s == pytest.approx(3600.0 + _frame_offset_s(300.0) - 100.0, abs=1e-6)
    assert suv_factor(s).reference_rule == "series"  # the default keeps QIBA's first step


def test_reference_forced_frame_without_frame_reference_time(pet_series: PetSeries) -> None:
    s = pet_series()
    with pytest.raises(MissingQuantityError) as info:
        suv_factor(s, reference_time="frame")
    _check_error(info, "FrameReferenceTime (0054,1300)")


def test_reference_frame_timing_spread_falls_back_with_warning(pet_series: PetSeries) -> None:
    frt = [150000, 150000, 150000, 160000, 150000, 150000]  # 10 s apart: inconsistent
    s = pet_series(frame_reference_time_ms=frt, **LATE)
    fac = suv_factor(s)
    assert fac.reference_rule == "earliest-acquisition"
    assert any("frame timing not used" in w for w in fac.warnings)
    with pytest.raises(ContradictoryQuantityError) as info:
        suv_factor(s, reference_time="frame")
    _check_error(info, "FrameReferenceTime (0054,1300)")


def test_activity_stored_with_frame_rule_and_no_half_life_does_not_crash(
    pet_series: PetSeries,
) -> None:
    # decay_to="stored" only reports the timing; a missing half-life must give a warning
    # or a QuantificationError, never an AssertionError (nor a rule without a time)
    s = pet_series(half_life_s=None, frame_reference_time_ms=150000, **LATE)
    fac = activity_factor(s, reference_time="frame")
    assert fac.image_factors == (1.0,) * 6
    assert (fac.reference_rule is None) == (fac.reference_datetime is None)


# ---------------------------------------------------------------------------- injection
def test_injection_time_only_uses_series_date(pet_series: PetSeries) -> None:
    s = pet_series(injection_datetime=None, injection_time="100000")
    fac = suv_factor(s)
    assert fac.injection_datetime == "2025-01-01T10:00:00"
    assert fac.factor == pytest.approx(_bw(3600), rel=RTOL)
    inp = _input(fac, "RadiopharmaceuticalStartTime")
    assert (inp.tag, inp.source) == ("(0018,1072)", "header")
    assert "SeriesDate" in inp.note


def test_injection_time_only_across_midnight(pet_series: PetSeries) -> None:
    s = pet_series(
        injection_datetime=None,
        injection_time="233000",
        series_date="20250102",
        series_time="003000",
    )
    fac = suv_factor(s)
    assert fac.injection_datetime == "2025-01-01T23:30:00"
    assert fac.reference_datetime == "2025-01-02T00:30:00"
    assert fac.elapsed_s == 3600.0
    assert fac.factor == pytest.approx(_bw(3600), rel=RTOL)
    assert "day before" in _input(fac, "RadiopharmaceuticalStartTime").note


def test_injection_datetime_preferred_over_time(pet_series: PetSeries) -> None:
    s = pet_series(injection_datetime="20250101101500", injection_time="100000")
    assert suv_factor(s).elapsed_s == 2700.0


def test_injection_after_acquisition_is_contradictory(pet_series: PetSeries) -> None:
    s = pet_series(injection_datetime="20250101113000")
    with pytest.raises(ContradictoryQuantityError) as info:
        suv_factor(s)
    _check_error(info, "RadiopharmaceuticalStartDateTime (0018,1078)")


def test_injection_after_acquisition_refused_even_before_reference(pet_series: PetSeries) -> None:
    # reference forced to a post-processed SeriesTime (11:30): injection at 11:15 is
    # before t_ref but after the acquisition (11:00), which is impossible
    s = pet_series(injection_datetime="20250101111500", **LATE)
    with pytest.raises(ContradictoryQuantityError) as info:
        suv_factor(s, reference_time="series")
    _check_error(info, "RadiopharmaceuticalStartDateTime (0018,1078)")


def test_no_injection_time_is_missing(pet_series: PetSeries) -> None:
    s = pet_series(injection_datetime=None, injection_time=None)
    with pytest.raises(MissingQuantityError) as info:
        suv_factor(s)
    _check_error(info, "RadiopharmaceuticalStartTime (0018,1072)")
    assert "RadiopharmaceuticalStartDateTime (0018,1078)" in str(info.value)


def test_injection_datetime_without_time_of_day_is_missing(pet_series: PetSeries) -> None:
    s = pet_series(injection_datetime="20250101")
    with pytest.raises(MissingQuantityError) as info:
        suv_factor(s)
    _check_error(info, "RadiopharmaceuticalStartDateTime (0018,1078)")


def test_injection_override_recorded(pet_series: PetSeries) -> None:
    s = pet_series()
    fac = suv_factor(s, injection_datetime="2025-01-01T10:30:00")
    assert fac.elapsed_s == 1800.0
    assert fac.factor == pytest.approx(_bw(1800), rel=RTOL)
    inp = _input(fac, "RadiopharmaceuticalStartDateTime")
    assert (inp.tag, inp.value, inp.source) == ("(0018,1078)", "2025-01-01T10:30:00", "override")
    assert "20250101100000.000000" in inp.note  # the header value it replaced


def test_injection_override_supplies_missing_header(pet_series: PetSeries) -> None:
    s = pet_series(injection_datetime=None, injection_time=None)
    fac = suv_factor(s, injection_datetime=dt.datetime(2025, 1, 1, 10, 0, 0))
    assert fac.factor == pytest.approx(_bw(3600), rel=RTOL)


# ---------------------------------------------------------------------------- dose
def test_dose_in_mbq_detected_and_converted(pet_series: PetSeries) -> None:
    fac = suv_factor(pet_series(dose_bq=370.0))
    assert fac.dose_administered_bq == 370e6
    assert fac.factor == pytest.approx(_bw(3600), rel=RTOL)
    assert any("RadionuclideTotalDose (0018,1074) 370" in w and "MBq" in w for w in fac.warnings)
    inp = _input(fac, "RadionuclideTotalDose")
    assert (inp.value, inp.unit, inp.source) == (370e6, "Bq", "header")
    assert "MBq" in inp.note


@pytest.mark.parametrize("dose", [None, 0.0])
def test_dose_missing_or_zero(pet_series: PetSeries, dose: float | None) -> None:
    s = pet_series(dose_bq=dose)
    with pytest.raises(MissingQuantityError) as info:
        suv_factor(s)
    _check_error(info, "RadionuclideTotalDose (0018,1074)")


def test_dose_override_recorded(pet_series: PetSeries) -> None:
    s = pet_series(dose_bq=None)
    fac = suv_factor(s, dose_bq=250e6)
    assert fac.factor == pytest.approx(_bw(3600, d=250e6), rel=RTOL)
    inp = _input(fac, "RadionuclideTotalDose")
    assert (inp.value, inp.source, inp.note) == (250e6, "override", "header value None")


def test_dose_differing_per_slice_is_contradictory(pet_series: PetSeries) -> None:
    s = pet_series(dose_bq=[370e6] * 5 + [380e6])
    with pytest.raises(ContradictoryQuantityError) as info:
        suv_factor(s)
    _check_error(info, "RadionuclideTotalDose (0018,1074)")


@pytest.mark.parametrize(
    ("written", "override"),
    [
        ({"dose_bq": [370e6] * 5 + [380e6]}, {"dose_bq": 370e6}),
        ({"weight_kg": [70.0] * 5 + [71.0]}, {"weight_kg": 70.0}),
        ({"half_life_s": [6586.2] * 5 + [6588.0]}, {"half_life_s": 6586.2}),
        (
            {"injection_datetime": ["20250101100000"] * 5 + ["20250101100100"]},
            {"injection_datetime": "2025-01-01T10:00:00"},
        ),
        ({"height_m": [1.75] * 5 + [1.76]}, {"height_m": 1.75}),
        ({"sex": ["M"] * 5 + ["F"]}, {"sex": "M"}),
    ],
    ids=["dose", "weight", "half-life", "injection", "height", "sex"],
)
def test_override_resolves_values_differing_per_slice(
    pet_series: PetSeries, written: dict[str, Any], override: dict[str, Any]
) -> None:
    # The ContradictoryQuantityError raised without the override says "pass the value as
    # an override"; the override must then be used instead of the contradictory header.
    s = pet_series(**written)
    with pytest.raises(ContradictoryQuantityError, match="override"):
        suv_factor(s, "lbm-janma")
    fac = suv_factor(s, "lbm-janma", **override)
    assert fac.factor == pytest.approx(_bw(3600, w=JANMA_M_70), rel=RTOL)
    assert "override" in {i.source for i in fac.inputs}


# ---------------------------------------------------------------------------- weight, height
@pytest.mark.parametrize("weight", [None, 0.0])
def test_weight_missing_or_zero(pet_series: PetSeries, weight: float | None) -> None:
    s = pet_series(weight_kg=weight)
    with pytest.raises(MissingQuantityError) as info:
        suv_factor(s)
    _check_error(info, "PatientWeight (0010,1030)")


def test_weight_in_grams_is_contradictory(pet_series: PetSeries) -> None:
    s = pet_series(weight_kg=70000.0)
    with pytest.raises(ContradictoryQuantityError) as info:
        suv_factor(s)
    _check_error(info, "PatientWeight (0010,1030)")


def test_weight_differing_per_slice_is_contradictory(pet_series: PetSeries) -> None:
    s = pet_series(weight_kg=[70.0] * 3 + [71.0] * 3)
    with pytest.raises(ContradictoryQuantityError) as info:
        suv_factor(s)
    _check_error(info, "PatientWeight (0010,1030)")


def test_height_in_cm_converted_with_warning(pet_series: PetSeries) -> None:
    fac = suv_factor(pet_series(height_m=175.0), "bsa")
    assert fac.height_m == 1.75
    assert fac.normaliser == pytest.approx(bsa_dubois_m2(70.0, 1.75), rel=RTOL)
    assert any("PatientSize (0010,1020) 175 taken as cm" in w for w in fac.warnings)
    assert "converted" in _input(fac, "PatientSize").note


@pytest.mark.parametrize(
    ("height", "error"),
    [(None, MissingQuantityError), (17.5, ContradictoryQuantityError)],
)
def test_height_missing_or_implausible(
    pet_series: PetSeries, height: float | None, error: type
) -> None:
    s = pet_series(height_m=height)
    with pytest.raises(error) as info:
        suv_factor(s, "lbm-janma")
    _check_error(info, "PatientSize (0010,1020)")


# ---------------------------------------------------------------------------- half-life
@pytest.mark.parametrize(
    ("nuclide", "radiopharmaceutical", "name"),
    [
        ("^18^Fluorine", None, "F-18"),
        ("", "68Ga-DOTATATE", "Ga-68"),
        ("Gallium^68^", None, "Ga-68"),
        ("177 Lutetium", None, "Lu-177"),
    ],
)
def test_half_life_fallback_table(
    pet_series: PetSeries, nuclide: str, radiopharmaceutical: str | None, name: str
) -> None:
    s = pet_series(half_life_s=None, nuclide=nuclide, radiopharmaceutical=radiopharmaceutical)
    fac = suv_factor(s)
    t_half = HALF_LIFE_TABLE_S[name]
    assert fac.half_life_s == t_half
    assert fac.factor == pytest.approx(_bw(3600, t=t_half), rel=RTOL)
    inp = _input(fac, "RadionuclideHalfLife")
    assert (inp.value, inp.source) == (t_half, "fallback table")
    assert name in inp.note
    assert any("fallback table" in w for w in fac.warnings)


def test_half_life_header_preferred_over_table(pet_series: PetSeries) -> None:
    s = pet_series(half_life_s=4057.0, nuclide="^68^Gallium")
    fac = suv_factor(s)
    assert fac.half_life_s == 4057.0
    assert fac.factor == pytest.approx(_bw(3600, t=4057.0), rel=RTOL)
    assert fac.warnings == ()


def test_half_life_override_recorded(pet_series: PetSeries) -> None:
    fac = suv_factor(pet_series(), half_life_s=6600.0)
    assert fac.factor == pytest.approx(_bw(3600, t=6600.0), rel=RTOL)
    inp = _input(fac, "RadionuclideHalfLife")
    assert (inp.value, inp.source, inp.note) == (6600.0, "override", "header value 6586.2")


def test_half_life_table_values() -> None:
    assert HALF_LIFE_TABLE_S["F-18"] == 6586.2
    assert HALF_LIFE_TABLE_S["Lu-177"] == 574300.8
    # Ga-68: 4057 s (real headers) to 4069.8 s (DDEP); no single constant is assumed
    assert 4050.0 <= HALF_LIFE_TABLE_S["Ga-68"] <= 4075.0
    assert set(HALF_LIFE_TABLE_S) >= {"F-18", "Ga-68", "Cu-64", "Tc-99m", "In-111", "Lu-177"}


@pytest.mark.parametrize("nuclide", ["^99^Molybdenum", "", None])
def test_half_life_unknown_nuclide_is_missing(pet_series: PetSeries, nuclide: str | None) -> None:
    s = pet_series(half_life_s=None, nuclide=nuclide)
    with pytest.raises(MissingQuantityError) as info:
        suv_factor(s)
    _check_error(info, "RadionuclideHalfLife (0018,1075)")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("^18^Fluorine", "F-18"),
        ("Fluorodeoxyglucose", "F-18"),
        ("FDG", "F-18"),
        ("18F-PSMA-1007", "F-18"),
        ("F-18", "F-18"),
        ("68Ga-DOTATATE", "Ga-68"),
        ("Gallium^68^", "Ga-68"),
        ("Ga-68", "Ga-68"),
        ("177 Lutetium", "Lu-177"),
        ("177Lu-PSMA-617", "Lu-177"),
        ("Tc-99m", "Tc-99m"),
        ("99mTc-MDP", "Tc-99m"),
        ("^99m^Technetium", "Tc-99m"),
        ("In-111", "In-111"),
        ("111In-pentetreotide", "In-111"),
        ("Indium^111^", "In-111"),
        ("Cu-64", "Cu-64"),
        ("64Cu-DOTATATE", "Cu-64"),
        ("^64^Copper", "Cu-64"),
        ("injected in the left arm", None),  # the word "in" is not indium
        ("in 18 minutes", None),  # nor with a number that is not 111
        ("Tc-99", None),  # ground-state Tc-99 is not Tc-99m
        ("", None),
        ("^99^Molybdenum", None),
    ],
)
def test_identify_nuclide(text: str, expected: str | None) -> None:
    assert identify_nuclide(text) == expected


# ---------------------------------------------------------------------------- units
def test_gml_bw_gives_factor_one(pet_series: PetSeries) -> None:
    fac = suv_factor(pet_series(units="GML", suv_type="BW"))
    assert fac.factor == 1.0
    assert (fac.method, fac.units_in, fac.suv_type) == ("stored-suv", "GML", "BW")
    assert fac.warnings == ()


def test_gml_without_suv_type_is_bw_with_warning(pet_series: PetSeries) -> None:
    fac = suv_factor(pet_series(units="GML"))
    assert fac.factor == 1.0
    assert any("SUVType (0054,1006) empty" in w for w in fac.warnings)


def test_gml_bw_converted_to_lbm_janma(pet_series: PetSeries) -> None:
    fac = suv_factor(pet_series(units="GML", suv_type="BW"), "lbm-janma")
    assert fac.factor == pytest.approx(JANMA_M_70 / WEIGHT, rel=1e-12)
    assert fac.normaliser == pytest.approx(JANMA_M_70, rel=1e-12)


def test_gml_lbmjames128_converted_to_bw(pet_series: PetSeries) -> None:
    s = pet_series(units="GML", suv_type="LBMJAMES128")
    assert suv_factor(s, "bw").factor == pytest.approx(WEIGHT / JAMES_M_70, rel=1e-12)
    assert suv_factor(s, "lbm-james").factor == 1.0


def test_cm2ml_is_suvbsa(pet_series: PetSeries) -> None:
    s = pet_series(units="CM2ML")
    bsa = bsa_dubois_m2(70.0, 1.75)
    assert suv_factor(s, "bsa").factor == 1.0
    fac = suv_factor(s, "bw")
    assert fac.factor == pytest.approx(WEIGHT * 1000.0 / (bsa * 1e4), rel=1e-12)
    assert fac.unit == "g/mL"
    assert suv_factor(s, "bsa").unit == "cm2/mL"


def test_gml_with_suv_type_bsa_is_contradictory(pet_series: PetSeries) -> None:
    s = pet_series(units="GML", suv_type="BSA")
    with pytest.raises(ContradictoryQuantityError) as info:
        suv_factor(s)
    _check_error(info, "SUVType (0054,1006)")


def test_cm2ml_with_suv_type_bw_is_contradictory(pet_series: PetSeries) -> None:
    s = pet_series(units="CM2ML", suv_type="BW")
    with pytest.raises(ContradictoryQuantityError) as info:
        suv_factor(s)
    _check_error(info, "SUVType (0054,1006)")


@pytest.mark.parametrize("units", ["MGMINML", "CNTS", "PROPCNTS"])
def test_unsupported_units(pet_series: PetSeries, units: str) -> None:
    s = pet_series(units=units)
    with pytest.raises(UnsupportedUnitsError) as info:
        suv_factor(s)
    _check_error(info, "Units (0054,1001)")


def test_absent_units_refused_unless_overridden(pet_series: PetSeries) -> None:
    s = pet_series(units=None)
    with pytest.raises(UnsupportedUnitsError) as info:
        suv_factor(s)
    _check_error(info, "Units (0054,1001)")
    fac = suv_factor(s, units="bqml")
    assert fac.factor == pytest.approx(_bw(3600), rel=RTOL)
    inp = _input(fac, "Units")
    assert (inp.value, inp.source, inp.note) == ("BQML", "override", "absent in the header")


def test_philips_cnts_suv_scale_factor(pet_series: PetSeries) -> None:
    s = pet_series(units="CNTS", private=philips_private(suv_scale=0.000437))
    fac = suv_factor(s)
    assert fac.method == "philips-suv-scale"
    assert fac.factor == 0.000437
    inp = _input(fac, "SUVScaleFactor")
    assert (inp.tag, inp.value, inp.source) == ("(7053,1000)", 0.000437, "header")
    assert fac.activity is None


def test_philips_suv_scale_converted_to_lbm(pet_series: PetSeries) -> None:
    s = pet_series(units="CNTS", private=philips_private(suv_scale=0.000437))
    fac = suv_factor(s, "lbm-james")
    assert fac.factor == pytest.approx(0.000437 * JAMES_M_70 / WEIGHT, rel=1e-12)


def test_philips_cnts_activity_scale_factor(pet_series: PetSeries) -> None:
    s = pet_series(units="CNTS", private=philips_private(activity_scale=2.5))
    fac = suv_factor(s)
    assert fac.method == "activity"
    assert fac.factor == pytest.approx(2.5 * _bw(3600), rel=RTOL)
    assert fac.activity is not None
    assert fac.activity.method == "philips-activity-scale"
    inp = _input(fac, "ActivityConcentrationScaleFactor")
    assert (inp.tag, inp.value) == ("(7053,1009)", 2.5)
    act = activity_factor(s)
    assert (act.method, act.factor) == ("philips-activity-scale", 2.5)


def test_philips_zero_suv_scale_falls_back_to_activity_scale(pet_series: PetSeries) -> None:
    private = philips_private(suv_scale=0.0, activity_scale=2.5)
    fac = suv_factor(pet_series(units="CNTS", private=private))
    assert fac.method == "activity"
    assert fac.factor == pytest.approx(2.5 * _bw(3600), rel=RTOL)


def test_philips_private_without_creator_still_read(pet_series: PetSeries) -> None:
    private = philips_private(suv_scale=0.000437, creator=False)
    fac = suv_factor(pet_series(units="CNTS", private=private))
    assert (fac.method, fac.factor) == ("philips-suv-scale", 0.000437)
    note = _input(fac, "SUVScaleFactor").note
    assert "private creator 'Philips PET Private Group' absent" in note


def test_private_values_read_in_implicit_vr(pet_series: PetSeries) -> None:
    implicit = {"transfer_syntax": pydicom.uid.ImplicitVRLittleEndian}
    ph = philips_private(suv_scale=0.000437)
    fac = suv_factor(pet_series(units="CNTS", private=ph, **implicit))
    assert (fac.method, fac.factor) == ("philips-suv-scale", 0.000437)
    ge = ge_private("20250101105000")
    fac = suv_factor(pet_series(private=ge, **implicit, **LATE))
    assert (fac.reference_rule, fac.elapsed_s) == ("ge-private", 3000.0)


def test_philips_value_under_another_creator_is_not_read(pet_series: PetSeries) -> None:
    private = {
        (0x7053, 0x0010): ("LO", "SOME OTHER CREATOR"),
        (0x7053, 0x1000): ("DS", "0.000437"),
    }
    s = pet_series(units="CNTS", private=private)
    with pytest.raises(UnsupportedUnitsError) as info:
        suv_factor(s)
    _check_error(info, "Units (0054,1001)")


# ---------------------------------------------------------------------------- corrections
@pytest.mark.parametrize("corrected", [("ATTN",), ("DECY",), ("NORM", "DTIM"), None])
def test_uncorrected_image_refused(
    pet_series: PetSeries, corrected: tuple[str, ...] | None
) -> None:
    s = pet_series(corrected_image=corrected)
    with pytest.raises(UncorrectedImageError) as info:
        suv_factor(s)
    _check_error(info, "CorrectedImage (0028,0051)")
    with pytest.raises(UncorrectedImageError):
        activity_factor(s)


def test_uncorrected_image_accepted_with_reason(pet_series: PetSeries) -> None:
    s = pet_series(corrected_image=("DECY",))
    reason = "vendor confirms attenuation correction (ticket 42)"
    fac = suv_factor(s, accept_corrections=reason)
    assert fac.factor == pytest.approx(_bw(3600), rel=RTOL)
    assert any(reason in w and "lacks ATTN" in w for w in fac.warnings)
    inp = _input(fac, "accept_corrections")
    assert (inp.value, inp.source) == (reason, "override")


def test_decay_spelled_decay_is_accepted(pet_series: PetSeries) -> None:
    fac = suv_factor(pet_series(corrected_image=("ATTN", "DECAY")))
    assert fac.factor == pytest.approx(_bw(3600), rel=RTOL)


def test_decay_none_with_decy_is_contradictory(pet_series: PetSeries) -> None:
    s = pet_series(decay_correction="NONE")  # CorrectedImage ATTN\DECY
    with pytest.raises(ContradictoryQuantityError) as info:
        suv_factor(s)
    _check_error(info, "DecayCorrection (0054,1102)")
    assert "CorrectedImage (0028,0051)" in str(info.value)


@pytest.mark.parametrize("decay", ["", "DECAY"])
def test_decay_correction_unknown_value(pet_series: PetSeries, decay: str) -> None:
    s = pet_series(decay_correction=decay)
    with pytest.raises(MissingQuantityError) as info:
        suv_factor(s)
    _check_error(info, "DecayCorrection (0054,1102)")


# ---------------------------------------------------------------------------- activity
@pytest.mark.parametrize(
    ("decay", "decay_to", "factor", "decayed_to"),
    [
        ("START", "stored", 1.0, "reference"),
        ("START", "administration", 2.0 ** (3600 / T18), "administration"),
        ("START", "reference", 1.0, "reference"),
        ("ADMIN", "stored", 1.0, "administration"),
        ("ADMIN", "administration", 1.0, "administration"),
        ("ADMIN", "reference", 2.0 ** (-3600 / T18), "reference"),
    ],
)
def test_activity_factor_decay_to(
    pet_series: PetSeries, decay: str, decay_to: Any, factor: float, decayed_to: str
) -> None:
    s = pet_series(decay_correction=decay)
    fac = activity_factor(s, decay_to=decay_to)
    assert fac.factor == pytest.approx(factor, rel=RTOL)
    assert (fac.decayed_to, fac.decay_correction, fac.method) == (decayed_to, decay, "bqml")
    assert (fac.reference_rule, fac.reference_datetime) == ("series", "2025-01-01T11:00:00")


def test_activity_stored_does_not_need_injection_or_dose(pet_series: PetSeries) -> None:
    s = pet_series(injection_datetime=None, injection_time=None, dose_bq=None)
    fac = activity_factor(s)
    assert fac.factor == 1.0
    assert fac.injection_datetime is None
    with pytest.raises(MissingQuantityError):
        activity_factor(s, decay_to="administration")


def test_activity_stored_none_does_not_need_injection(pet_series: PetSeries) -> None:
    """DecayCorrection NONE kept as stored: no decay arithmetic, so no injection time."""
    s = pet_series(
        decay_correction="NONE",
        corrected_image=("ATTN",),
        injection_datetime=None,
        injection_time=None,
        dose_bq=None,
    )
    fac = activity_factor(s)
    assert fac.image_factors == (1.0,) * 6
    assert fac.decayed_to == "none"
    with pytest.raises(MissingQuantityError):
        activity_factor(s, decay_to="administration")


def test_activity_none_to_administration_per_slice(tmp_path: Path) -> None:
    rng = np.random.default_rng(17)
    s, paths, offsets, durations = _none_series(tmp_path / "p", rng)
    stored = activity_factor(s)
    assert (stored.factor, stored.decayed_to) == (1.0, "none")
    fac = activity_factor(s, decay_to="administration")
    got = _slice_factors(fac, paths)
    expected = _none_expected(offsets, durations) * DOSE / (WEIGHT * 1000.0)
    np.testing.assert_allclose(got, expected, rtol=1e-9)


def test_load_activity_values_and_units(pet_series: PetSeries) -> None:
    slopes = [1.5, 2.0, 0.25, 1.0, 3.0, 0.5]
    s = pet_series(slope=slopes)
    vol = load_activity(s, decay_to="administration")
    expected = stored_array(0) * np.array(slopes)[:, None, None] * 2.0 ** (3600 / T18)
    assert vol.units == "Bq/mL"
    np.testing.assert_allclose(vol.array, expected, rtol=2e-6)
    assert vol.provenance.settings["activity"]["decayed_to"] == "administration"


@pytest.mark.parametrize("units", ["GML", "CM2ML"])
def test_activity_of_stored_suv_is_unsupported(pet_series: PetSeries, units: str) -> None:
    s = pet_series(units=units)
    with pytest.raises(UnsupportedUnitsError) as info:
        activity_factor(s)
    _check_error(info, "Units (0054,1001)")
    with pytest.raises(UnsupportedUnitsError):
        load_activity(s)


# ---------------------------------------------------------------------------- records
def test_suv_factor_to_dict_is_json_and_lists_every_input(pet_series: PetSeries) -> None:
    s = pet_series(dose_bq=370.0, frame_reference_time_ms=150000, **LATE)
    fac = suv_factor(s, "lbm-janma", injection_datetime="2025-01-01T10:00:00")
    d = json.loads(json.dumps(fac.to_dict()))
    assert d["factor"] == pytest.approx(fac.factor, rel=1e-15)
    assert d["quantity"] == "SUVlbm-janma"
    assert d["options"]["injection_datetime"] == "2025-01-01T10:00:00"
    assert d["activity"]["method"] == "bqml"
    assert len(d["inputs"]) == len(fac.inputs)
    for item, inp in zip(d["inputs"], fac.inputs, strict=True):
        assert {"name", "tag", "value", "unit", "source", "note"} <= set(item)
        assert (item["name"], item["tag"], item["source"]) == (inp.name, inp.tag, inp.source)
    names = {i["name"] for i in d["inputs"]}
    expected_names = {
        "Units",
        "DecayCorrection",
        "CorrectedImage",
        "RadionuclideHalfLife",
        "SeriesDateTime",
        "FrameReferenceTime",
        "RadiopharmaceuticalStartDateTime",
        "RadionuclideTotalDose",
        "PatientWeight",
        "PatientSize",
        "PatientSex",
        "LBM",
    }
    assert expected_names <= names
    assert d["warnings"] == list(fac.warnings) and d["warnings"]


def test_suv_factor_to_dict_per_image_factors(tmp_path: Path) -> None:
    s, _, _, _ = _none_series(tmp_path / "p", np.random.default_rng(1))
    d = json.loads(json.dumps(suv_factor(s).to_dict()))
    assert d["factor"] is None
    assert len(d["image_factors"]) == 6
    assert d["factor_min"] < d["factor_max"]


def test_suv_summary_reports_error_instead_of_raising(pet_series: PetSeries) -> None:
    out = suv_summary(pet_series(weight_kg=None))
    assert out["suv_bw_factor"] is None
    assert out["error_type"] == "MissingQuantityError"
    assert "PatientWeight (0010,1030)" in out["error"]
    assert out["header"]["radionuclide"] == "F-18"
    json.dumps(out)


def test_suv_summary_of_good_series(pet_series: PetSeries) -> None:
    out = suv_summary(pet_series())
    assert out["error"] is None
    assert out["suv_bw_factor"] == pytest.approx(_bw(3600), rel=RTOL)
    assert out["reference_rule"] == "series"
    json.dumps(out)


@pytest.fixture(scope="module")
def ct_series(tmp_path_factory: pytest.TempPathFactory) -> Series:
    """A plain CT series from ``write_series`` (no PET attributes at all)."""
    folder = tmp_path_factory.mktemp("ct")
    write_series(folder, stored_array(0), modality="CT")
    return scan(folder).select()


@pytest.mark.parametrize("call", [suv_factor, activity_factor, load_suv, load_activity])
def test_non_pet_series_refused(ct_series: Series, call: Any) -> None:
    assert ct_series.modality == "CT"
    with pytest.raises(UnsupportedUnitsError) as info:
        call(ct_series)
    _check_error(info, "Modality (0008,0060)")


def test_suv_summary_of_non_pet_series_names_the_modality(ct_series: Series) -> None:
    out = suv_summary(ct_series)
    assert (out["suv_bw_factor"], out["error_type"]) == (None, "UnsupportedUnitsError")
    assert "Modality (0008,0060)" in out["error"]


def test_errors_are_quantification_errors() -> None:
    for cls in (
        MissingQuantityError,
        ContradictoryQuantityError,
        UnsupportedUnitsError,
        UncorrectedImageError,
    ):
        assert issubclass(cls, QuantificationError)


# ---------------------------------------------------------------------------- options
@pytest.mark.parametrize(
    "kwargs",
    [
        {"reference_time": "scanner"},
        {"weight_kg": -70.0},
        {"weight_kg": 0.0},
        {"height_m": float("nan")},
        {"dose_bq": float("inf")},
        {"half_life_s": -1.0},
        {"sex": "X"},
        {"injection_datetime": "01/01/2025 10:00"},
        {"sex_other": "male"},
    ],
)
def test_suv_options_validation(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match=next(iter(kwargs))):
        SUVOptions(**kwargs)


def test_suv_options_validated_through_overrides(pet_series: PetSeries) -> None:
    s = pet_series()
    with pytest.raises(ValueError, match="weight_kg"):
        suv_factor(s, weight_kg=-1.0)
    with pytest.raises(ValueError, match="reference_time"):
        suv_factor(s, options=SUVOptions(), reference_time="bogus")


def test_suv_options_object_and_overrides_combine(pet_series: PetSeries) -> None:
    s = pet_series()
    fac = suv_factor(s, options=SUVOptions(weight_kg=80.0), dose_bq=400e6)
    assert fac.factor == pytest.approx(_bw(3600, w=80.0, d=400e6), rel=RTOL)
    assert fac.options.weight_kg == 80.0 and fac.options.dose_bq == 400e6


def test_suv_factor_unknown_normalisation(pet_series: PetSeries) -> None:
    with pytest.raises(ValueError, match="normalisation"):
        suv_factor(pet_series(), "lbm")


# ---------------------------------------------------------------------------- malformed timing
@pytest.mark.parametrize(
    ("kw", "tag"),
    [
        (
            {"acquisition_times": ["110000", "110000", "1100XX", "110000", "110000", "110000"]},
            "AcquisitionDate/AcquisitionTime (0008,0022/0032)",
        ),
        (
            {"series_time": "25:99:00", "acquisition_times": ["110000"] * 6},
            "SeriesDate/SeriesTime (0008,0021/0031)",
        ),
        ({"private": ge_private("yesterday")}, "GE scan datetime (0009,100D)"),
    ],
)
def test_unreadable_timing_is_an_error_not_skipped(
    pet_series: PetSeries, kw: dict[str, Any], tag: str
) -> None:
    """A present but unreadable time is never dropped (which would move t_ref silently)."""
    with warnings.catch_warnings():  # pydicom warns when the test writes the bad value
        warnings.simplefilter("ignore", UserWarning)
        s = pet_series(**kw)
    with pytest.raises(MissingQuantityError) as info:
        suv_factor(s)
    _check_error(info, tag)
    # kept-as-stored activity only reports the timing: a warning, values untouched
    fac = activity_factor(s)
    assert fac.image_factors == (1.0,) * 6
    assert any(tag in w for w in fac.warnings)


def test_headers_read_once_until_a_file_changes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Bq/mL then SUV of one series read its headers once; a changed file (mtime) is read
    again, so an edited export is never measured from stale records."""
    from netvolume.io import pet as petio

    write_pet_series(tmp_path / "s")
    series = scan(tmp_path / "s").select()
    calls: list[int] = []
    real = petio._read_headers

    def counting(images: Any) -> Any:
        calls.append(len(images))
        return real(images)

    monkeypatch.setattr(petio, "_read_headers", counting)
    monkeypatch.setattr(petio, "_LAST_RECORDS", [])
    act = petio.activity_factor(series)
    suv = petio.suv_factor(series, "bw")
    assert len(calls) == 1
    assert petio.activity_factor(series).image_factors == act.image_factors
    assert len(calls) == 1
    path = series.images[0].path
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    assert petio.suv_factor(series, "bw").image_factors == suv.image_factors
    assert len(calls) == 2

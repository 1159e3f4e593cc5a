"""Spill-in correction of a lesion's uptake (``netvolume.measure._spill``).

A synthetic PET: a liver of SUV 6, a hot lesion (SUV 40) and 3 mm from it a cold,
SSTR-negative lesion (SUV 2), blurred by a 6.5 mm FWHM Gaussian like a PET scanner.
Without the correction the cold lesion's SUVmax is its hot neighbour's spill-in and it is
graded 3; measured away from hotter tissue it is graded 0, as it should be. A lesion
with nothing hotter near it keeps every voxel.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.ndimage as ndi

from netvolume.measure import MeasureSettings, SettingsError, krenning_grade
from netvolume.measure._spill import (
    SURROUNDINGS,
    edge_spill_fraction,
    hotter_tissue,
    spill_in_free,
)

SPACING = (2.0, 1.0, 1.0)  # slice, row, column (mm): anisotropic on purpose
FWHM_MM = 6.5
LIVER, SPLEEN, HOT, COLD = 6.0, 20.0, 40.0, 2.0
#: what a 4 mm PET voxel holds in voxels of SPACING
PET_VOXEL = math.ceil(4.0**3 / float(np.prod(SPACING)))


def _ball(
    shape: tuple[int, int, int], centre_mm: tuple[float, float, float], r_mm: float
) -> np.ndarray:
    g = np.indices(shape).astype(float)
    d2 = sum(((g[a] + 0.5) * SPACING[a] - centre_mm[a]) ** 2 for a in range(3))
    return d2 <= r_mm**2


def _blur(truth: np.ndarray) -> np.ndarray:
    sigma = [FWHM_MM / (2.0 * math.sqrt(2.0 * math.log(2.0))) / v for v in SPACING]
    return np.asarray(ndi.gaussian_filter(truth, sigma, mode="nearest"))


@pytest.fixture(scope="module")
def pair() -> tuple[np.ndarray, np.ndarray]:
    """Labels (1 hot, 2 cold, 3 mm apart) and the blurred PET, all inside the liver."""
    shape = (30, 60, 90)
    hot = _ball(shape, (30.0, 30.0, 25.0), 11.0)
    cold = _ball(shape, (30.0, 30.0, 25.0 + 11.0 + 3.0 + 10.0), 10.0)
    labels = np.zeros(shape, np.int32)
    labels[hot], labels[cold] = 1, 2
    truth = np.full(shape, LIVER)
    truth[hot], truth[cold] = HOT, COLD
    return labels, _blur(truth)


def _grade(suv: np.ndarray, mask: np.ndarray) -> int | None:
    return krenning_grade(float(suv[mask].max()), LIVER, LIVER, SPLEEN)


def _hotter(labels: np.ndarray, suv: np.ndarray, k: int) -> dict[str, np.ndarray]:
    present = [int(j) for j in np.unique(labels) if j]
    maxima = {j: float(suv[labels == j].max()) for j in present}
    return hotter_tissue(labels, k, maxima, float(suv[labels == k].mean()), LIVER, ["L1", "L2"])


def test_edge_spread_function_matches_a_blurred_step() -> None:
    assert edge_spill_fraction(0.0, FWHM_MM) == pytest.approx(0.5)
    assert edge_spill_fraction(FWHM_MM, FWHM_MM) == pytest.approx(0.0093, abs=5e-5)
    step = np.zeros(400)
    step[:200] = 1.0  # a hot half-space, 0.1 mm samples, edge at 20 mm
    sigma = FWHM_MM / (2.0 * math.sqrt(2.0 * math.log(2.0))) / 0.1
    blurred = ndi.gaussian_filter1d(step, sigma, mode="nearest")
    x = (np.arange(400) + 0.5) * 0.1 - 20.0
    for d in (1.0, 3.25, 6.5):
        assert np.interp(d, x, blurred) == pytest.approx(edge_spill_fraction(d, FWHM_MM), abs=2e-3)


def test_cold_lesion_beside_a_hot_one_is_graded_away_from_its_spill_in(
    pair: tuple[np.ndarray, np.ndarray],
) -> None:
    labels, suv = pair
    cold = labels == 2
    # uncorrected, the cold lesion's SUVmax is its neighbour's spill-in: above the liver
    assert suv[cold].max() > LIVER
    assert _grade(suv, cold) == 3
    hot = _hotter(labels, suv, 2)
    assert set(hot) == {"L1", SURROUNDINGS}  # the hot lesion and the liver around it
    sources = np.logical_or.reduce(list(hot.values()))
    use, residual = spill_in_free(cold, sources, SPACING, FWHM_MM, PET_VOXEL)
    assert not residual
    assert use.sum() >= PET_VOXEL and not (use & ~cold).any()
    # every voxel kept is more than one FWHM from hotter tissue
    dist = ndi.distance_transform_edt(~sources, sampling=SPACING)
    assert dist[use].min() > FWHM_MM
    assert suv[use].max() < LIVER
    assert _grade(suv, use) == 0
    # the hot neighbour alone, without the liver rim, already explains the wrong grade
    use_l1, _ = spill_in_free(cold, hot["L1"], SPACING, FWHM_MM, PET_VOXEL)
    assert _grade(suv, use_l1) == 0


def test_no_correction_switches_it_off(pair: tuple[np.ndarray, np.ndarray]) -> None:
    labels, suv = pair
    cold = labels == 2
    sources = np.logical_or.reduce(list(_hotter(labels, suv, 2).values()))
    use, residual = spill_in_free(cold, sources, SPACING, 0.0, PET_VOXEL)
    assert np.array_equal(use, cold) and not residual
    assert _grade(suv, use) == 3


def test_the_hot_lesion_beside_a_cold_one_is_unaffected(
    pair: tuple[np.ndarray, np.ndarray],
) -> None:
    labels, suv = pair
    assert _hotter(labels, suv, 1) == {}
    hot = labels == 1
    use, residual = spill_in_free(hot, np.zeros_like(hot), SPACING, FWHM_MM, PET_VOXEL)
    assert np.array_equal(use, hot) and not residual
    assert _grade(suv, use) == 4


def test_isolated_lesions_are_unaffected() -> None:
    shape = (30, 60, 60)
    les = _ball(shape, (30.0, 30.0, 30.0), 9.0)
    labels = les.astype(np.int32)
    for uptake, grade in ((HOT, 4), (14.0, 3), (4.5, 2)):
        truth = np.full(shape, 0.6)  # a node in fat: nothing around it is hotter
        truth[les] = uptake
        suv = _blur(truth)
        maxima = {1: float(suv[les].max())}
        assert hotter_tissue(labels, 1, maxima, float(suv[les].mean()), 0.6, ["L1"]) == {}
        use, residual = spill_in_free(les, np.zeros_like(les), SPACING, FWHM_MM, PET_VOXEL)
        assert np.array_equal(use, les) and not residual
        assert krenning_grade(float(suv[use].max()), 0.6, LIVER, SPLEEN) == grade


def test_a_hot_organ_counts_only_when_hotter_and_not_around_the_lesion() -> None:
    shape = (10, 30, 30)
    labels = np.zeros(shape, np.int32)
    labels[4:6, 10:14, 10:14] = 1
    spleen = np.zeros(shape, bool)
    spleen[:, :, 16:] = True
    found = hotter_tissue(labels, 1, {1: 10.0}, 8.0, 6.0, ["L1"], {"spleen": (spleen, 20.0)})
    assert set(found) == {"spleen"} and np.array_equal(found["spleen"], spleen)
    assert hotter_tissue(labels, 1, {1: 30.0}, 25.0, 6.0, ["L1"], {"spleen": (spleen, 20.0)}) == {}
    inside = np.ones(shape, bool)  # a splenic lesion: the spleen is its background
    assert hotter_tissue(labels, 1, {1: 10.0}, 8.0, None, ["L1"], {"spleen": (inside, 20.0)}) == {}


def test_a_lesion_too_thin_to_clear_the_spill_in_keeps_its_deepest_voxels() -> None:
    shape = (20, 40, 40)
    les = _ball(shape, (20.0, 20.0, 20.0), 5.0)
    sources = ~les  # colder than its surroundings: the rim is theirs
    use, residual = spill_in_free(les, sources, SPACING, FWHM_MM, PET_VOXEL)
    assert residual
    assert PET_VOXEL <= use.sum() < les.sum() and not (use & ~les).any()
    dist = ndi.distance_transform_edt(~sources, sampling=SPACING)
    assert dist[use].min() >= dist[les & ~use].max()  # the deepest ones


def test_settings_are_named_and_checked() -> None:
    s = MeasureSettings()
    assert s.pet_fwhm_mm == 7.0 and s.spill_in_distance_fwhm == 1.0
    assert s.spill_in_min_pet_voxels == 1.0
    assert s.with_overrides(["pet_fwhm_mm=10"]).pet_fwhm_mm == 10.0
    with pytest.raises(SettingsError, match="pet_fwhm_mm"):
        MeasureSettings(pet_fwhm_mm=0.0)
    with pytest.raises(SettingsError, match="spill_in_distance_fwhm"):
        MeasureSettings(spill_in_distance_fwhm=-1.0)


def test_a_lesion_outside_the_pet_field_of_view_is_neither_hotter_nor_corrected() -> None:
    labels = np.zeros((6, 20, 20), np.int32)
    labels[2:4, 4:8, 4:8] = 1
    labels[2:4, 4:8, 9:13] = 2
    names = ["L1", "L2"]
    # the neighbour has no uptake measured: it is not hotter tissue
    assert hotter_tissue(labels, 1, {1: 5.0, 2: None}, 4.0, 3.0, names) == {}
    # the lesion itself has none: nothing to correct, even beside a hotter lesion
    assert hotter_tissue(labels, 1, {1: None, 2: 9.0}, None, 3.0, names) == {}
    # with both measured the hotter neighbour is found (the same call is not vacuous)
    assert set(hotter_tissue(labels, 1, {1: 5.0, 2: 9.0}, 4.0, 3.0, names)) == {"L2"}

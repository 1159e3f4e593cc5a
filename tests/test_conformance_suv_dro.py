"""Conformance: the IBSI/OncoRay SUV digital reference objects (``ibsi_suv_dro``).

17 synthetic PET series, each testing one vendor quirk (``DRO/DRO_list.csv``): Units
BQML / GML / CM2ML / CNTS (Philips SUV and activity scale factors), a dose stored in MBq,
DecayCorrection ADMIN / NONE / START, a SeriesTime after the AcquisitionTime, the GE
private decay datetime, injection times without a date and across midnight, per-slice
rescale slopes and a Ga-68 half-life. Inside each series' mask the SUVbw must have
min / median / max 0.20 / 1.00 / 4.00 (the expected columns of the CSV; the DRO's own
Slicer submission reads them as SUVbw).

The mask is a NIfTI whose y axis is flipped relative to the DICOM grid: it is aligned by
its affine (checked to be an exact signed axis permutation of the PET grid, so nearest
resampling copies voxels), never by index.

One DRO cannot meet 0.5 %: ``DRO_2_3`` stores SUVbsa (Units CM2ML) with RescaleSlope 0.01,
so the stored values are 0.05 / 0.26 / 1.05 (true 0.0528 / 0.264 / 1.056, truncated). No
computation from the file can give SUVbw 0.20 +- 0.5 % from 0.05: the test checks that
the expected values lie inside the quantisation interval ``[v, v + slope)`` of the stored
value, converted exactly, and that the median is within 2 %.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
from _external import external_path

from netvolume.io import pet
from netvolume.io.dicom import scan
from netvolume.io.nifti import read_nifti
from netvolume.volume import Volume

pytestmark = pytest.mark.conformance

RTOL = 0.005  # the acceptance tolerance: 0.5 %


def _dro_root() -> Path:
    return external_path("ibsi_suv_dro", "DRO")


def _rows() -> list[dict[str, str]]:
    root = _dro_root()
    with open(root / "DRO_list.csv", newline="") as fh:
        return list(csv.DictReader(fh))


def _ids() -> list[str]:
    try:
        return [r["ID"] for r in _rows()]
    except pytest.skip.Exception:
        return ["DRO_0_0"]  # collected, then skipped by external_path in the test


def _mask_on(suv: Volume, path: Path) -> np.ndarray:
    mask = read_nifti(path)
    relation = np.linalg.inv(suv.affine) @ mask.affine
    lin = relation[:3, :3]
    assert np.allclose(np.abs(lin).sum(axis=0), 1.0, atol=1e-6), relation
    assert np.allclose(lin, np.round(lin), atol=1e-6), relation
    assert np.allclose(relation[:3, 3], np.round(relation[:3, 3]), atol=1e-6), relation
    on_grid = mask.resample(reference=suv, interpolation="nearest", fill_value=0)
    out = on_grid.array > 0.5
    assert out.sum() == (mask.array > 0.5).sum()  # nothing lost or invented
    return out


def _stats(dro: str, **options: object) -> tuple[np.ndarray, pet.SUVFactor]:
    root = _dro_root()
    series = scan(root / dro / "PT").select()
    suv = pet.load_suv(series, "bw", **options)
    mask = _mask_on(suv, root / dro / "mask" / "DRO_mask.nii.gz")
    values = suv.array[mask]
    fac = pet.suv_factor(series, "bw", **options)
    return np.array([values.min(), np.median(values), values.max()]), fac


@pytest.mark.parametrize("dro", _ids())
def test_dro_suvbw_min_median_max(dro: str) -> None:
    row = {r["ID"]: r for r in _rows()}[dro]
    expected = np.array(
        [
            float(row["SUVmin_expected"]),
            float(row["SUVmed_expected"]),
            float(row["SUVmax_expected"]),
        ]
    )
    got, fac = _stats(dro)
    if dro == "DRO_2_3":
        # stored SUVbsa quantised to the RescaleSlope (see the module docstring)
        slope = 0.01
        ratio = fac.image_factors[0]
        stored = got / ratio
        assert np.allclose(stored, [0.05, 0.26, 1.05], atol=1e-6)
        assert np.all(expected >= stored * ratio - 1e-9)
        assert np.all(expected < (stored + slope) * ratio)
        assert abs(got[1] / expected[1] - 1) < 0.02
        return
    np.testing.assert_allclose(got, expected, rtol=RTOL)


EXPECTED_METHOD = {
    "DRO_2_0": "stored-suv",
    "DRO_2_1": "stored-suv",
    "DRO_2_2": "stored-suv",
    "DRO_2_3": "stored-suv",
    "DRO_2_4": "philips-suv-scale",
}
EXPECTED_RULE = {"DRO_3_2": "frame-timing", "DRO_3_3": "series", "DRO_0_0": "series"}


@pytest.mark.parametrize("dro", _ids())
def test_dro_path_taken(dro: str) -> None:
    """Each quirk is handled by the intended route, recorded in the audit record."""
    series = scan(_dro_root() / dro / "PT").select()
    fac = pet.suv_factor(series, "bw")
    assert fac.method == EXPECTED_METHOD.get(dro, "activity")
    if dro in EXPECTED_RULE:
        assert fac.reference_rule == EXPECTED_RULE[dro]
    names = {i.name for i in fac.inputs}
    if fac.method == "activity":
        assert {"RadionuclideTotalDose", "RadionuclideHalfLife", "PatientWeight"} <= names
    if dro == "DRO_3_0":
        dose = next(i for i in fac.inputs if i.name == "RadionuclideTotalDose")
        assert dose.value == pytest.approx(368.08e6)
        assert "MBq" in dose.note
        assert any("MBq" in w for w in fac.warnings)
    if dro == "DRO_3_4":
        assert fac.decay_correction == "NONE"
        assert fac.factor is None  # per-slice factors: two frames, two decay corrections
        assert len(set(fac.image_factors)) == 2
    if dro == "DRO_4_2":
        assert fac.injection_datetime == "2025-01-01T23:30:00"
        assert fac.elapsed_s == pytest.approx(3600.0)
    if dro == "DRO_2_5":
        assert "ActivityConcentrationScaleFactor" in names
    if dro == "DRO_5_0":
        assert fac.half_life_s == pytest.approx(4057.7)


def test_dro_3_2_needs_frame_timing() -> None:
    """SeriesTime after AcquisitionTime: QIBA's earliest-acquisition fallback is 1.6 % off.

    The default rule (qiba-frame) uses FrameReferenceTime; ``reference_time="qiba"``
    falls back to the earliest acquisition (11:02:30 instead of 11:00:00), which the DRO
    shows to be wrong by 2**(150 s / 6586.2 s) = 1.0159.
    """
    got, fac = _stats("DRO_3_2")
    assert fac.reference_rule == "frame-timing"
    np.testing.assert_allclose(got, [0.2, 1.0, 4.0], rtol=RTOL)
    strict, fac_strict = _stats("DRO_3_2", reference_time="qiba")
    assert fac_strict.reference_rule == "earliest-acquisition"
    np.testing.assert_allclose(strict / got, 2 ** (150 / 6586.2), rtol=2e-4)


def test_dro_gml_requested_in_its_own_type_is_passed_through() -> None:
    """DRO_2_1 stores SUVlbm (James 128, male): asking for lbm-james gives factor 1."""
    series = scan(_dro_root() / "DRO_2_1" / "PT").select()
    fac = pet.suv_factor(series, "lbm-james")
    assert fac.factor == 1.0
    assert fac.weight_kg is None  # nothing from the patient was needed
    bw = pet.suv_factor(series, "bw")
    assert bw.factor == pytest.approx(70.0 / (1.10 * 70 - 128 * (70 / 175) ** 2))

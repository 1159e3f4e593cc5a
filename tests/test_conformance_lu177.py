"""Conformance: real quantitative Lu-177 DOTATATE SPECT (``../shared/data/lu177_spect``).

Siemens xSPECT reconstructions stored as PT: 199 slices of 256 x 256 at 1.95 mm, Units
BQML, DecayCorrection ADMIN (values decay-corrected to the administration), the same
patient 3.7 h and 27.7 h after 7.21 GBq. No reference numbers come with the data, so the
checks are physical: the field of view holds a plausible fraction of the administered
activity, less on day 2 than on day 1 once both are corrected to the administration
(biological clearance), undoing the decay correction multiplies by exactly
2**(-t / T1/2), and tumour SUVs are in the range reported for Lu-177 DOTATATE.
"""

from __future__ import annotations

import numpy as np
import pytest
from _external import external_path

from netvolume.io import pet
from netvolume.io.dicom import Series, load, scan

pytestmark = pytest.mark.conformance

DOSE_BQ = 7210425599.6395  # RadionuclideTotalDose of both time points
HALF_LIFE_S = 574300.0  # RadionuclideHalfLife in the headers


def _series(scan_name: str) -> Series:
    cat = scan(external_path("lu177_spect", scan_name))
    (series,) = [s for s in cat.series if s.modality == "PT"]
    assert [o.kind for o in cat.objects] == ["RTSTRUCT"]
    return series


@pytest.fixture(scope="module")
def loaded() -> dict[str, dict[str, object]]:
    out: dict[str, dict[str, object]] = {}
    for name in ("SCAN_001", "SCAN_002"):
        s = _series(name)
        out[name] = {
            "series": s,
            "stored": pet.load_activity(s),
            "reference": pet.load_activity(s, decay_to="reference"),
            "raw": load(s),
            "suv": pet.suv_factor(s, "bw"),
        }
    return out


@pytest.mark.parametrize("name", ["SCAN_001", "SCAN_002"])
def test_loads_in_bq_per_ml(loaded: dict, name: str) -> None:
    vol = loaded[name]["stored"]
    assert vol.units == "Bq/mL"
    assert vol.shape == (199, 256, 256)
    np.testing.assert_allclose(vol.spacing, 1.953125, atol=1e-4)
    assert vol.array.dtype == np.float32
    # BQML: activity is the rescaled value itself
    np.testing.assert_array_equal(vol.array, loaded[name]["raw"].array.astype(np.float32))
    assert float(vol.array.min()) >= 0.0
    act = vol.provenance.settings["activity"]
    assert act["decay_correction"] == "ADMIN"
    assert act["decayed_to"] == "administration"
    assert act["factor"] == 1.0


@pytest.mark.parametrize(("name", "hours"), [("SCAN_001", 3.7412), ("SCAN_002", 27.7255)])
def test_timing_and_decay(loaded: dict, name: str, hours: float) -> None:
    fac = loaded[name]["suv"]
    assert fac.injection_datetime == "2018-11-15T09:22:00"
    assert fac.elapsed_s / 3600 == pytest.approx(hours, abs=1e-3)
    assert fac.half_life_s == HALF_LIFE_S
    assert fac.dose_at_reference_bq == DOSE_BQ  # ADMIN: no decay of the dose
    # undoing the decay correction: activity present at the scan
    ratio = loaded[name]["reference"].array.sum(dtype=np.float64) / loaded[name][
        "stored"
    ].array.sum(dtype=np.float64)
    assert ratio == pytest.approx(2 ** (-fac.elapsed_s / HALF_LIFE_S), rel=1e-6)


def test_totals_are_physical(loaded: dict) -> None:
    totals = {}
    for name in ("SCAN_001", "SCAN_002"):
        vol = loaded[name]["stored"]
        totals[name] = vol.array.sum(dtype=np.float64) * vol.voxel_volume_ml
    # an abdominal field of view holds a sizeable part, never more than was given
    for total in totals.values():
        assert 0.05 * DOSE_BQ < total < DOSE_BQ
    # corrected to the administration, only biological clearance remains: day 2 < day 1
    assert totals["SCAN_002"] < 0.9 * totals["SCAN_001"]


@pytest.mark.parametrize("name", ["SCAN_001", "SCAN_002"])
def test_tumour_suv_range(loaded: dict, name: str) -> None:
    fac = loaded[name]["suv"]
    assert fac.weight_kg == pytest.approx(92.987)
    assert fac.factor == pytest.approx(92.987e3 / DOSE_BQ)
    suv_max = float(loaded[name]["stored"].array.max()) * fac.factor
    assert 5.0 < suv_max < 200.0

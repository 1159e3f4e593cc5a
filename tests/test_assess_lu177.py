"""Conformance: the two RTSTRUCT liver lesions of ``../shared/data/lu177_spect`` tracked
from SCAN_001 to SCAN_002 by ``assess_patient_dir``.

Each scan is measured with its RTSTRUCT imported (``measure_study(scan,
lesion_mask=rtstruct)``, quantitative SPECT, no CT), written as a ``netvolume measure``
output, and the patient folder of the two outputs is assessed: the SPECTs are
registered (no CT: the PET/SPECT path of the registration), the lesions tracked by
overlap and distance. The oracle is the structure names: the RTSTRUCTs name the lesions
("lesion1 liver R lobe", "lesion2 liver L lateral") at both time points, and tracking
never reads names. The figures are printed (``pytest -s``) and attached to the test.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from _external import external_path

from netvolume.longitudinal import assess_patient_dir
from netvolume.measure import measure_study, write_measurement

pytestmark = [pytest.mark.conformance, pytest.mark.slow]


def _rows(path: Path) -> list[dict[str, str]]:
    return list(csv.DictReader(path.read_text(encoding="utf-8").splitlines()))


def test_two_lesions_tracked_between_scans(
    tmp_path: Path, record_property: pytest.RecordProperty
) -> None:
    patient = tmp_path / "lu177"
    names: dict[tuple[str, int], str] = {}
    for scan in ("SCAN_001", "SCAN_002"):
        folder = external_path("lu177_spect", scan)
        (rtstruct,) = sorted((folder / "mask").glob("*.dcm"))
        write_measurement(measure_study(folder, lesion_mask=rtstruct), patient / scan)
        for row in _rows(patient / scan / "lesions.csv"):
            names[(scan, int(row["lesion_id"]))] = row["name"]
    out = tmp_path / "out"
    result = assess_patient_dir(patient, out)
    assert not result.failures

    rows = _rows(out / "tracking.csv")
    by_track: dict[str, set[str]] = {}
    for row in rows:
        assert row["lesion_id"], row  # nothing disappeared or merged
        name = names[(row["study"], int(row["lesion_id"]))]
        by_track.setdefault(row["tracking_id"], set()).add(name)
    assert by_track == {
        "L1": {"lesion1 liver R lobe"},
        "L2": {"lesion2 liver L lateral"},
    }
    follow = [r for r in rows if r["study"] == "SCAN_002"]
    assert {r["status"] for r in follow} == {"matched"}
    assert all(float(r["overlap_fraction"]) > 0.5 for r in follow)

    doc = json.loads((out / "assessment.json").read_text())
    reg = doc["provenance"]["inputs"]["registrations"]["SCAN_002"]
    (p,) = doc["patients"].values()
    assert [t["lesion_id"] for t in p["targets"]] == ["L1", "L2"]
    figures = {
        "overlap_fraction": {r["tracking_id"]: float(r["overlap_fraction"]) for r in follow},
        "centroid_distance_mm": {r["tracking_id"]: float(r["distance_mm"]) for r in follow},
        "registration": {k: reg.get(k) for k in ("stages", "metric")},
        "sod_mm": [t["sod_mm"] for t in p["timepoints"]],
        "overall_response": [t["overall_response"] for t in p["timepoints"]],
    }
    print(json.dumps(figures, indent=1))
    record_property("lu177_tracking", json.dumps(figures))
    # one day apart: the lesions have not changed enough for anything but SD
    assert p["timepoints"][1]["overall_response"] == "SD"
    assert p["best_overall_response"] == "NE"  # SD before the minimum 42 days

"""Conformance: ``measure_study`` on real Lu-177 DOTATATE SPECT (``../shared/data/lu177_spect``).

Each time point (``SCAN_001`` 3.7 h, ``SCAN_002`` 27.7 h after 7.21 GBq) holds one
quantitative SPECT stored as PT (Units BQML, no CT) and an RTSTRUCT with two neuroendocrine
liver metastases. ``measure_study(scan_dir, lesion_mask=rtstruct)`` measures them on the
SPECT grid. No reference numbers come with the data, so every figure is checked against an
oracle computed here, independently of the measurement code:

* the lesion masks: the RTSTRUCT read onto the SPECT grid with ``netvolume.io.masks.read``
  (the mask importer, tested on its own in ``test_masks*``);
* volume: voxel count x voxel volume; centroid: ``scipy.ndimage.center_of_mass`` mapped
  through the Volume's affine;
* activity: max and mean of ``netvolume.io.pet.load_activity`` over the mask (float64);
* SUV: the activity times ``netvolume.io.pet.suv_factor(series, "bw").factor``;
* long axis: a brute force over the pixel corners of the chosen slice (convex hull, all
  pairs; exact), the largest such value over every slice, the brute-force largest
  centre-to-centre distance (a lower bound), and scikit-image's ``feret_diameter_max``.

scikit-image measures on the 0.5-level contour of the convex-hull image, whose points are
edge midpoints of pixels whose centres lie in the hull of the region's pixel squares (ours):
they lie at most half a pixel outside our hull, so skimage <= ours + one pixel; and the
contour encloses the centres of the two pixels whose corners end our long axis, each half a
pixel diagonal from its corner, so ours <= skimage + one pixel diagonal. On these lesions
skimage is larger than ours for lesion 1 (by 0.06 pixel diagonal) and smaller for lesion 2
(docs/kernels.md measured -0.286 to +0.443 diagonals on discs and ellipses).

The measured table is printed (``pytest -s``) and attached to the test's
``user_properties``.
"""

from __future__ import annotations

import csv
import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pydicom
import pytest
from _external import external_path, report
from scipy import ndimage
from scipy.spatial import ConvexHull
from scipy.spatial.distance import pdist
from skimage.measure import regionprops

from netvolume.errors import NetVolumeError
from netvolume.io import masks, pet
from netvolume.io.dicom import Series, scan
from netvolume.measure import (
    LESION_COLUMNS,
    LesionRecord,
    StudyMeasurement,
    measure_study,
    write_measurement,
)
from netvolume.volume import Volume

pytestmark = pytest.mark.conformance

SCANS = ("SCAN_001", "SCAN_002")
#: Lesion names in the RTSTRUCTs, in the expected lesion_id order (organ, then volume:
#: lesion 1 is ~107 mL, lesion 2 ~3 mL at both time points).
LESIONS = ("lesion1 liver R lobe", "lesion2 liver L lateral")
MM_ATOL = 1e-6
ACTIVITY_RTOL = 1e-6
SUV_RTOL = 1e-6


@dataclass(frozen=True)
class TimePoint:
    """One time point: the measurement and the oracle inputs read independently."""

    name: str
    folder: Path
    rtstruct: Path
    series: Series
    activity: Volume
    labels: Volume
    measurement: StudyMeasurement

    def oracle_mask(self, lesion_name: str) -> np.ndarray:
        """The bool mask of one RTSTRUCT structure on the SPECT grid."""
        (value,) = [k for k, v in self.labels.label_names.items() if v == lesion_name]
        return np.asarray(self.labels.array) == value


def _load(name: str) -> TimePoint:
    folder = external_path("lu177_spect", name)
    (rtstruct,) = sorted((folder / "mask").glob("*.dcm"))
    (series,) = [s for s in scan(folder / "image").series if s.modality == "PT"]
    activity = pet.load_activity(series)
    labels = masks.read(rtstruct, activity)
    m = measure_study(folder, lesion_mask=rtstruct)
    return TimePoint(name, folder, rtstruct, series, activity, labels, m)


@pytest.fixture(scope="module")
def timepoints() -> dict[str, TimePoint]:
    return {name: _load(name) for name in SCANS}


def _cases() -> list[tuple[str, str]]:
    return [(scan_name, lesion) for scan_name in SCANS for lesion in LESIONS]


def _record(tp: TimePoint, lesion_name: str) -> LesionRecord:
    (rec,) = [r for r in tp.measurement.lesions if r.name == lesion_name]
    return rec


def _corner_diameter_px(mask2d: np.ndarray) -> float:
    """Largest distance (pixels) between corners of the pixel squares of a 2-D mask: the
    convex hull of all corners, then every pair of its vertices."""
    centres = np.argwhere(mask2d).astype(np.float64)
    offsets = np.array([[-0.5, -0.5], [-0.5, 0.5], [0.5, -0.5], [0.5, 0.5]])
    corners = (centres[:, None, :] + offsets[None, :, :]).reshape(-1, 2)
    hull = corners[ConvexHull(corners).vertices]
    return float(pdist(hull).max())


# --------------------------------------------------------------------------- the study


@pytest.mark.parametrize("name", SCANS)
def test_study_is_measured_on_the_spect_grid(timepoints: dict[str, TimePoint], name: str) -> None:
    tp = timepoints[name]
    m = tp.measurement
    assert m.ct_series_uid is None
    assert m.pet_series_uid == tp.series.uid
    assert m.reference_series is not None
    assert m.reference_series.series_instance_uid == tp.series.series_instance_uid
    assert m.grid["modality"] == "PT"
    assert tuple(m.grid["shape"]) == tp.activity.spatial_shape == (199, 256, 256)
    np.testing.assert_allclose(m.grid["affine"], tp.activity.affine, rtol=0, atol=MM_ATOL)
    assert any("no CT" in note and "PET/SPECT grid" in note for note in m.notes), m.notes
    assert m.sources == {"lesions": f"imported: {tp.rtstruct}"}
    # no organ masks were given and there is no CT to segment them on
    assert m.liver_mask is None and m.spleen_mask is None
    assert m.liver_volume_ml is None and m.liver_tumour_burden_pct is None
    assert m.references == {}
    assert m.n_liver_lesions == 2
    assert m.extrahepatic_disease is False
    assert "no_pet" not in m.qc_flags


def test_lesion_names_and_order_match_between_time_points(
    timepoints: dict[str, TimePoint],
) -> None:
    for tp in timepoints.values():
        assert [r.lesion_id for r in tp.measurement.lesions] == [1, 2]
        assert [r.name for r in tp.measurement.lesions] == list(LESIONS)
        assert set(tp.labels.label_names.values()) == set(LESIONS)


@pytest.mark.parametrize("name", SCANS)
def test_lesion_labels_equal_the_rtstruct(timepoints: dict[str, TimePoint], name: str) -> None:
    tp = timepoints[name]
    out = tp.measurement.lesion_labels
    assert out is not None
    assert out.spatial_shape == tp.activity.spatial_shape
    for rec in tp.measurement.lesions:
        np.testing.assert_array_equal(
            np.asarray(out.array) == rec.lesion_id, tp.oracle_mask(rec.name), err_msg=rec.name
        )
    assert out.label_names == {r.lesion_id: r.name for r in tp.measurement.lesions}


# --------------------------------------------------------------------------- per lesion


@pytest.mark.parametrize(("name", "lesion"), _cases())
def test_volume_and_centroid(timepoints: dict[str, TimePoint], name: str, lesion: str) -> None:
    tp = timepoints[name]
    rec = _record(tp, lesion)
    mask = tp.oracle_mask(lesion)
    count = int(mask.sum())
    assert count > 0
    assert rec.voxels == count
    assert rec.volume_ml == pytest.approx(count * tp.activity.voxel_volume_ml, rel=1e-12)
    centre_index = np.asarray(ndimage.center_of_mass(mask))
    centre_lps = (np.asarray(tp.activity.affine) @ np.r_[centre_index, 1.0])[:3]
    np.testing.assert_allclose(rec.centroid_mm, centre_lps, rtol=0, atol=MM_ATOL)


@pytest.mark.parametrize(("name", "lesion"), _cases())
def test_activity(timepoints: dict[str, TimePoint], name: str, lesion: str) -> None:
    tp = timepoints[name]
    rec = _record(tp, lesion)
    values = np.asarray(tp.activity.array, dtype=np.float64)[tp.oracle_mask(lesion)]
    assert np.all(np.isfinite(values))
    assert rec.activity_max_bqml == pytest.approx(values.max(), rel=ACTIVITY_RTOL)
    assert rec.activity_mean_bqml == pytest.approx(values.mean(), rel=ACTIVITY_RTOL)
    assert "outside_pet_fov" not in rec.qc_flags


@pytest.mark.parametrize(("name", "lesion"), _cases())
def test_suv(timepoints: dict[str, TimePoint], name: str, lesion: str) -> None:
    """SUVbw is computable from these headers (weight 92.987 kg, dose, times), so the SUV
    fields are set and equal the activity times the SUVbw factor; the Krenning grade and
    tumour-to-liver ratio need a liver reference VOI, and there is no liver mask: None."""
    tp = timepoints[name]
    rec = _record(tp, lesion)
    try:
        factor = pet.suv_factor(tp.series, "bw").factor
    except NetVolumeError as exc:  # pragma: no cover - not the case for this data
        assert rec.suv_max is None and rec.suv_mean is None and rec.suv_peak is None, exc
        return
    values = np.asarray(tp.activity.array, dtype=np.float64)[tp.oracle_mask(lesion)]
    assert rec.suv_max == pytest.approx(values.max() * factor, rel=SUV_RTOL)
    assert rec.suv_mean == pytest.approx(values.mean() * factor, rel=SUV_RTOL)
    assert rec.suv_peak is not None and math.isfinite(rec.suv_peak)
    # the 1 mL sphere's mean lies between the SUV of the lesion's mean and its max here
    assert rec.suv_mean < rec.suv_peak <= rec.suv_max
    assert 5.0 < rec.suv_max < 200.0  # published Lu-177 DOTATATE tumour range
    assert rec.background_suv is not None and 0.0 <= rec.background_suv < rec.suv_max
    assert rec.tumour_to_liver is None and rec.tumour_to_spleen is None
    assert rec.krenning_grade is None and rec.sstr_positive is None


@pytest.mark.parametrize(("name", "lesion"), _cases())
def test_organ_and_recist_category(
    timepoints: dict[str, TimePoint], name: str, lesion: str
) -> None:
    rec = _record(timepoints[name], lesion)
    assert rec.organ == "liver"  # from the structure name ("... liver ...")
    assert rec.nodal is False
    assert rec.detected_by == "imported"
    assert rec.ct_mean_hu is None and rec.ct_sd_hu is None
    assert rec.ld_mm >= 10.0 and rec.measurable and rec.recist_category == "measurable"
    assert "touches_border" not in rec.qc_flags


@pytest.mark.parametrize(("name", "lesion"), _cases())
def test_long_and_short_axis(timepoints: dict[str, TimePoint], name: str, lesion: str) -> None:
    tp = timepoints[name]
    rec = _record(tp, lesion)
    mask = tp.oracle_mask(lesion)
    _, dy, dx = tp.activity.spacing
    assert dy == dx, "the skimage cross-check below assumes square pixels"
    diagonal = math.hypot(dy, dx)
    on_slice = mask[rec.slice_index]
    assert on_slice.any()

    # exact: the largest corner-to-corner distance in the chosen slice
    corner = _corner_diameter_px(on_slice) * dy
    assert rec.ld_mm == pytest.approx(corner, abs=MM_ATOL)
    # the chosen slice is the one with the longest long axis
    per_slice = [_corner_diameter_px(s) * dy for s in mask if s.any()]
    assert rec.ld_mm >= max(per_slice) - MM_ATOL
    # lower bound: pixel centres
    centres = np.argwhere(on_slice).astype(np.float64) * (dy, dx)
    assert rec.ld_mm >= float(pdist(centres).max()) - MM_ATOL
    # scikit-image (contour of the convex-hull image): see the module docstring for bounds
    (props,) = regionprops(on_slice.astype(np.uint8))
    skimage_mm = float(props.feret_diameter_max) * dy
    assert -dy - MM_ATOL <= rec.ld_mm - skimage_mm <= diagonal + MM_ATOL, (
        rec.ld_mm,
        skimage_mm,
    )

    # the end points: on the chosen slice, ld_mm apart; the short axis perpendicular
    plane_z = (np.asarray(tp.activity.affine) @ np.r_[rec.slice_index, 0.0, 0.0, 1.0])[2]
    ld = np.asarray(rec.ld_endpoints_mm)
    sa = np.asarray(rec.sa_endpoints_mm)
    np.testing.assert_allclose(np.r_[ld[:, 2], sa[:, 2]], plane_z, rtol=0, atol=MM_ATOL)
    assert float(np.linalg.norm(ld[1] - ld[0])) == pytest.approx(rec.ld_mm, abs=MM_ATOL)
    assert float(np.linalg.norm(sa[1] - sa[0])) == pytest.approx(rec.sa_mm, abs=MM_ATOL)
    u = (ld[1] - ld[0]) / rec.ld_mm
    assert abs(float(u @ (sa[1] - sa[0]))) <= MM_ATOL
    assert 0.0 < rec.sa_mm <= rec.ld_mm + MM_ATOL


def test_print_table(timepoints: dict[str, TimePoint], request: pytest.FixtureRequest) -> None:
    header = (
        f"{'time point':10s} {'lesion':24s} {'volume_ml':>9s} {'ld_mm':>6s} {'sa_mm':>6s} "
        f"{'activity_mean_bqml':>18s} {'activity_max_bqml':>17s}"
    )
    lines = [header]
    for name in SCANS:
        for rec in timepoints[name].measurement.lesions:
            assert rec.activity_mean_bqml is not None and rec.activity_max_bqml is not None
            lines.append(
                f"{name:10s} {rec.name:24s} {rec.volume_ml:9.2f} {rec.ld_mm:6.1f} "
                f"{rec.sa_mm:6.1f} {rec.activity_mean_bqml:18.0f} {rec.activity_max_bqml:17.0f}"
            )
    assert len(lines) == 1 + len(SCANS) * len(LESIONS)
    report(request, "lesion_table", "\n" + "\n".join(lines))


# --------------------------------------------------------------------------- output


def test_write_measurement(timepoints: dict[str, TimePoint], tmp_path: Path) -> None:
    """SCAN_001 written: lesions.csv has the two lesions at full precision, the lesion SEG
    references the SPECT (PT) series and reads back to the RTSTRUCT's masks; the organ
    outputs are skipped with their reasons (no liver or spleen mask)."""
    tp = timepoints["SCAN_001"]
    m = tp.measurement
    out = write_measurement(m, tmp_path / "out")

    with (out / "lesions.csv").open(newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 2
    assert list(rows[0]) == list(LESION_COLUMNS)
    for row, rec in zip(rows, m.lesions, strict=True):
        assert int(row["lesion_id"]) == rec.lesion_id
        assert row["name"] == rec.name
        assert row["organ"] == "liver" and row["nodal"] == "false"
        for column in ("volume_ml", "ld_mm", "sa_mm", "activity_mean_bqml", "activity_max_bqml"):
            assert float(row[column]) == getattr(rec, column), column
        assert row["ct_mean_hu"] == "" and row["krenning_grade"] == ""

    study = json.loads((out / "study.json").read_text(encoding="utf-8"))
    assert study["output_files"] == [
        "lesions.csv",
        "masks/lesions.nii.gz",
        "masks/lesions.seg.dcm",
        "study.json",
    ]
    assert set(study["outputs_not_written"]) == {
        "masks/liver.nii.gz",
        "masks/spleen.nii.gz",
        "masks/organs.seg.dcm",
    }
    assert study["ct_series_uid"] is None
    assert study["pet_series_uid"] == tp.series.uid
    assert [les["name"] for les in study["lesions"]] == list(LESIONS)

    seg_path = out / "masks" / "lesions.seg.dcm"
    seg = pydicom.dcmread(seg_path)
    assert seg.Modality == "SEG"
    assert seg.ReferencedSeriesSequence[0].SeriesInstanceUID == tp.series.series_instance_uid
    assert seg.FrameOfReferenceUID == tp.activity.frame_of_reference_uid
    assert [(s.SegmentNumber, s.SegmentLabel, s.TrackingID) for s in seg.SegmentSequence] == [
        (1, LESIONS[0], LESIONS[0]),
        (2, LESIONS[1], LESIONS[1]),
    ]
    back = masks.read(seg_path, tp.activity)
    for value, lesion_name in back.label_names.items():
        np.testing.assert_array_equal(
            np.asarray(back.array) == value, tp.oracle_mask(lesion_name), err_msg=lesion_name
        )
    assert sorted(back.label_names.values()) == sorted(LESIONS)

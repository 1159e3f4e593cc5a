"""``measure_study`` and ``netvolume measure`` end to end on the bundled sample.

Imported truth masks must give the truth's own voxel figures; a CT-only study is measured
with grades "not available"; bad input (no CT, a mask on another grid) is a clear error.
The automatic segmentation's accuracy is tested at diagnostic resolution in
``test_measure_acceptance.py``; the sample's 3.2 x 3.2 x 5 mm CT is flagged ``coarse_ct``.
"""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from netvolume.cli import main
from netvolume.errors import MaskGridError, SeriesSelectionError
from netvolume.io.nifti import read_nifti
from netvolume.measure import LESION_COLUMNS, measure_study

SAMPLE = Path(__file__).resolve().parents[1] / "data" / "sample_dicom"
STUDY = SAMPLE / "P001" / "T0"


@pytest.fixture(scope="module")
def truth() -> dict:
    return json.loads((STUDY / "truth.json").read_text())


@pytest.fixture(scope="module")
def imported(truth: dict):
    t = STUDY / "truth"
    return measure_study(
        STUDY,
        liver_mask=t / "liver.nii.gz",
        spleen_mask=t / "spleen.nii.gz",
        lesion_mask=t / "lesions.nii.gz",
    )


def test_imported_truth_masks_give_the_truth_voxel_figures(imported, truth: dict) -> None:
    m = imported
    vox_ml = float(np.prod(truth["ct"]["spacing_mm"])) / 1000.0
    assert m.sources["liver"].startswith("imported")
    assert m.sources["lesions"].startswith("imported")
    assert m.liver_volume_ml == pytest.approx(truth["liver_voxels"] * vox_ml, rel=1e-9)
    assert m.spleen_volume_ml == pytest.approx(truth["spleen_voxels"] * vox_ml, rel=1e-9)
    tl = np.asarray(read_nifti(STUDY / "truth" / "lesions.nii.gz").array)
    lab = np.asarray(m.lesion_labels.array)
    by_id = {les["id"]: les for les in truth["lesions"]}
    seen = 0
    pixel_diag = float(np.hypot(*truth["ct"]["spacing_mm"][1:]))
    for rec in m.lesions:
        ids = np.unique(tl[lab == rec.lesion_id])
        assert ids.size == 1 and ids[0] > 0  # one truth lesion, exactly
        les = by_id[int(ids[0])]
        seen += 1
        assert rec.voxels == les["ct_voxels"]
        assert rec.volume_ml == pytest.approx(les["ct_voxels"] * vox_ml, rel=1e-9)
        assert rec.organ == les["organ"]
        # corner-to-corner on the voxel mask vs the continuous section: within a pixel
        # diagonal, plus the slice sampling of the long axis
        assert abs(rec.ld_mm - les["ld_mm_at_ct_slice"]) <= pixel_diag + 1e-6 or (
            rec.slice_index != les["ct_nearest_slice"]
        )
        assert np.linalg.norm(np.subtract(rec.centroid_mm, les["centroid_mm"])) <= max(
            truth["ct"]["spacing_mm"]
        )
        if les["ld_mm"] >= 15.0 and les["volume_ml"] > 2.0:
            assert rec.krenning_grade == les["krenning_grade"], (rec, les)
    assert seen == sum(1 for les in truth["lesions"] if les["ct_voxels"] > 0)
    # the study figures follow from the masks
    lt = sum(r.volume_ml for r in m.lesions if r.organ == "liver")
    assert m.liver_tumour_volume_ml == pytest.approx(lt)
    assert m.liver_tumour_burden_pct == pytest.approx(100 * lt / m.liver_volume_ml)
    assert m.references["liver"].suv_mean == pytest.approx(
        truth["reference"]["liver_suv"], rel=0.05
    )


def test_measurability_rules(imported, truth: dict) -> None:
    thick = truth["ct"]["slice_thickness_mm"]
    min_ld = max(10.0, 2 * thick) if thick > 5 else 10.0
    for rec in imported.lesions:
        if rec.nodal:
            want = (
                "measurable" if rec.sa_mm >= 15 else
                "non_measurable" if rec.sa_mm >= 10 else "normal_node"
            )  # fmt: skip
        else:
            want = "measurable" if rec.ld_mm >= min_ld else "non_measurable"
        assert rec.recist_category == want
        assert rec.measurable == (want == "measurable")


def test_cli_measure_writes_the_contract(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "out"
    assert main(["measure", str(STUDY), "-o", str(out), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["study_instance_uid"]
    for name in ("lesions.csv", "study.json", "masks/liver.nii.gz", "masks/spleen.nii.gz",
                 "masks/lesions.nii.gz", "masks/organs.seg.dcm"):  # fmt: skip
        assert (out / name).is_file(), name
    with (out / "lesions.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    assert tuple(rows[0].keys()) == LESION_COLUMNS
    for col in ("lesion_id", "organ", "volume_ml", "ld_mm", "sa_mm", "centroid_x_mm",
                "centroid_y_mm", "centroid_z_mm", "ct_mean_hu", "suv_max", "suv_mean",
                "suv_peak", "krenning_grade", "measurable"):  # fmt: skip
        assert col in rows[0]
    study = json.loads((out / "study.json").read_text())
    assert study["provenance"]["netvolume_version"]
    assert "coarse_ct" in study["qc_flags"]
    labels = np.asarray(read_nifti(out / "masks" / "lesions.nii.gz").array)
    assert sorted(int(v) for v in np.unique(labels) if v) == [int(r["lesion_id"]) for r in rows]


def test_ct_only_study_is_measured_without_grades(tmp_path: Path) -> None:
    study = tmp_path / "ct_only"
    shutil.copytree(STUDY / "CT", study / "CT")
    t = STUDY / "truth"
    m = measure_study(study, liver_mask=t / "liver.nii.gz", lesion_mask=t / "lesions.nii.gz")
    assert m.pet_series_uid is None
    assert "no_pet" in m.qc_flags
    assert m.lesions
    for rec in m.lesions:
        assert rec.suv_max is None and rec.krenning_grade is None
        assert rec.ct_mean_hu is not None
    assert m.references == {}


def test_study_without_ct_is_a_selection_error(tmp_path: Path) -> None:
    study = tmp_path / "pet_only"
    shutil.copytree(STUDY / "PET", study / "PET")
    with pytest.raises(SeriesSelectionError, match="CT"):
        measure_study(study)
    assert main(["measure", str(study), "-o", str(tmp_path / "o")]) == 4
    assert not (tmp_path / "o").exists()


def test_liver_mask_on_another_grid_is_refused(tmp_path: Path) -> None:
    other = SAMPLE / "P002" / "T1" / "truth" / "liver.nii.gz"  # scanner B, other grid
    with pytest.raises(MaskGridError):
        measure_study(STUDY, liver_mask=other)


def test_block_mean_equals_numpy() -> None:
    from netvolume.measure._segment import block_mean

    rng = np.random.default_rng(7)
    a = rng.integers(-1024, 3000, size=(11, 17, 23)).astype(np.int16)
    for block in ((1, 1, 1), (2, 4, 4), (3, 2, 5)):
        k, j, i = (n // b for n, b in zip(a.shape, block, strict=True))
        want = (
            a[: k * block[0], : j * block[1], : i * block[2]]
            .astype(np.float64)
            .reshape(k, block[0], j, block[1], i, block[2])
            .mean(axis=(1, 3, 5))
        )
        np.testing.assert_allclose(block_mean(a, block), want, rtol=1e-6)


@pytest.mark.parametrize(
    ("suv_max", "spleen", "grade"),
    [
        (0.5, 20.0, 0),  # at or below the local background (0.5)
        (0.51, 20.0, 1),
        (2.99, 20.0, 1),  # < 0.5 x liver (6)
        (3.0, 20.0, 2),  # 0.5 x liver is grade 2
        (6.0, 20.0, 2),  # equal to the liver: grade 2
        (6.01, 20.0, 3),
        (20.0, 20.0, 3),  # equal to the spleen: grade 3
        (20.01, 20.0, 4),
        (6.01, None, None),  # above the liver, no spleen reference: not available
        (5.0, None, 2),
    ],
)
def test_krenning_grade_boundaries(suv_max: float, spleen: float | None, grade: int | None) -> None:
    from netvolume.measure import krenning_grade

    assert krenning_grade(suv_max, 0.5, 6.0, spleen) == grade

"""The batch report (``netvolume.report``): key images and the static HTML pages.

The fixture builds a batch output folder with the layout of ``docs/report.md`` from the
bundled sample patient P001 (two visits, measured with the truth masks imported, so that
the figures do not depend on the automatic segmentation): each visit measured into
``studies/<key>/<study>/`` with its key images, ``netvolume assess`` on that folder into
``assessments/<key>/``, a copy of the patient under a second key, a patient whose
measurement failed, and the small tables written by hand.
"""

from __future__ import annotations

import csv
import dataclasses
import html.parser
import json
import shutil
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image
from scipy import ndimage

from netvolume.errors import InputPathError
from netvolume.longitudinal import assess_patient_dir
from netvolume.measure import StudyMeasurement, measure_study, write_measurement
from netvolume.report import ReportInputError, render_key_images, write_report
from netvolume.report import figures as report_figures
from netvolume.report.keyimage import CONTOUR_RGB, LD_RGB, PANEL_PX, SA_RGB

SAMPLE = Path(__file__).resolve().parents[1] / "data" / "sample_dicom" / "P001"
KEY_A = "P-00a1b2c3d4"  # the measured patient
KEY_B = "P-00e5f6a7b8"  # a copy of it under another key
KEY_F = "P-00deadbeef"  # a patient whose measurement failed
SCRIPT = "<script>alert('x')</script>"


@dataclasses.dataclass
class Batch:
    """The fixture: the batch folder, the baseline measurement and its key images."""

    root: Path
    baseline: StudyMeasurement
    baseline_key: str
    records: list[dict[str, Any]]


_BUILT: dict[int, Batch] = {}


def _measure(visit: Path) -> StudyMeasurement:
    truth = visit / "truth"
    return measure_study(
        visit,
        liver_mask=truth / "liver.nii.gz",
        spleen_mask=truth / "spleen.nii.gz",
        lesion_mask=truth / "lesions.nii.gz",
    )


def _write_csv(path: Path, header: list[str], rows: list[list[Any]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh, lineterminator="\n")
        w.writerow(header)
        w.writerows(rows)


def _build(root: Path) -> Batch:
    studies = root / "studies" / KEY_A
    baseline: StudyMeasurement | None = None
    records: list[dict[str, Any]] = []
    keys = {}
    for visit in ("T0", "T1"):
        m = _measure(SAMPLE / visit)
        key = f"{m.study_date}_{visit.lower()}0c0ffee"
        keys[visit] = key
        write_measurement(m, studies / key)
        recs = render_key_images(m, studies / key / "keyimages")
        if visit == "T0":
            baseline, records = m, recs
    assert baseline is not None
    assess_patient_dir(studies, root / "assessments" / KEY_A)
    doc = json.loads((root / "assessments" / KEY_A / "assessment.json").read_text())
    assert doc["provenance"]["inputs"]["patient_dir"] == str(studies)
    assert not any(s["measured_here"] for s in doc["provenance"]["inputs"]["studies"].values())
    # the same patient under a second key (a realistic folder, another row in the plots)
    shutil.copytree(studies, root / "studies" / KEY_B)
    shutil.copytree(root / "assessments" / KEY_A, root / "assessments" / KEY_B)

    tables = root / "tables"
    _write_csv(
        tables / "patients.csv",
        ["patient_key", "clinical_id", "n_studies", "first_date", "last_date", "status"],
        [
            [KEY_A, "NET-001", 2, "2024-05-28", "2024-08-11", "ok"],
            [KEY_B, "NET-002&co", 2, "2024-05-28", "2024-08-11", "ok"],
            [KEY_F, "", 1, "2024-02-01", "2024-02-01", "failed"],
        ],
    )
    _write_csv(
        tables / "outcomes.csv",
        [
            "patient_key",
            "start_date",
            "pfs_days",
            "pfs_event",
            "best_overall_response",
            "best_sod_change_pct",
        ],
        [
            [KEY_A, "2024-05-20", 83, "true", "PD", ""],
            [KEY_B, "2024-05-20", 200, "false", "PD", ""],
            [KEY_F, "2024-01-20", "", "", "", ""],
        ],
    )
    _write_csv(
        tables / "failures.csv",
        ["stage", "patient_key", "study_key", "error_type", "message"],
        [
            [
                "measure",
                KEY_F,
                "2024-02-01_0badf00d",
                "PixelDataError",
                f"pixel data truncated {SCRIPT} & more",
            ]
        ],
    )
    summary_header = ["patient_id", "protocol", "verdict", "reason", "reference_date",
                      "n_met", "n_not_met", "n_unknown", "n_needs_review"]  # fmt: skip
    _write_csv(
        root / "eligibility" / "NETTER-2" / "summary.csv",
        summary_header,
        [
            ["NET-001", "NETTER-2", "eligible", "all criteria met", "2024-05-20", 9, 0, 0, 0],
            ["NET-002&co", "NETTER-2", "not_eligible", "Ki-67 25 % > 20 %", "", 8, 1, 0, 0],
            ["NET-777", "NETTER-2", "undetermined", "no Ki-67", "", 8, 0, 1, 0],
        ],
    )
    _write_csv(
        root / "eligibility" / "COMPETE" / "summary.csv",
        summary_header,
        [["NET-001", "COMPETE", "undetermined", "eGFR missing", "", 7, 0, 1, 1]],
    )
    return Batch(root, baseline, keys["T0"], records)


def built_batch(factory: pytest.TempPathFactory) -> Batch:
    """The batch folder of this test session (built once, shared with the browser test)."""
    key = id(factory)
    if key not in _BUILT:
        _BUILT[key] = _build(factory.mktemp("batch"))
    return _BUILT[key]


@pytest.fixture(scope="session")
def batch(tmp_path_factory: pytest.TempPathFactory) -> Batch:
    return built_batch(tmp_path_factory)


@pytest.fixture(scope="session")
def report(batch: Batch) -> Path:
    index = write_report(batch.root)
    assert index == batch.root / "report" / "index.html"
    return index.parent


class _Page(html.parser.HTMLParser):
    """Collects the tags of a page that matter to the checks."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.imgs: list[dict[str, str | None]] = []
        self.links: list[str] = []
        self.ids: set[str] = set()
        self.tags: set[str] = set()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        self.tags.add(tag)
        if a.get("id"):
            self.ids.add(str(a["id"]))
        if tag == "img":
            self.imgs.append(a)
        if tag in ("a", "link") and a.get("href"):
            self.links.append(str(a["href"]))


def _parse(path: Path) -> _Page:
    page = _Page()
    page.feed(path.read_text(encoding="utf-8"))
    return page


def _tracking(batch: Batch, key: str = KEY_A) -> list[dict[str, str]]:
    with (batch.root / "assessments" / key / "tracking.csv").open(encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def _assessment(batch: Batch, key: str = KEY_A) -> dict[str, Any]:
    doc = json.loads((batch.root / "assessments" / key / "assessment.json").read_text())
    block: dict[str, Any] = doc["patients"][KEY_A]
    return block


# ----------------------------------------------------------------------------- pages
def test_report_files(report: Path, batch: Batch) -> None:
    assert (report / "index.html").is_file()
    for key in (KEY_A, KEY_B, KEY_F):
        assert (report / "patients" / f"{key}.html").is_file()
    manifest = json.loads((report / "report.json").read_text())
    assert set(manifest["patients"]) == {KEY_A, KEY_B, KEY_F}
    for rel in manifest["files"]:
        assert (report / rel).is_file(), rel
    assert not list(batch.root.glob(".report.*")), "temporary folder left behind"
    for path in report.rglob("*"):
        if path.is_file():
            assert not path.name.startswith("."), path  # no temporary file left


def test_every_image_resolves_and_has_alt_text(report: Path) -> None:
    pages = [report / "index.html", *sorted((report / "patients").glob("*.html"))]
    n_img = 0
    for page_path in pages:
        text = page_path.read_text(encoding="utf-8")
        assert "<script" not in text.lower()
        page = _parse(page_path)
        for img in page.imgs:
            src, alt = img.get("src"), img.get("alt")
            assert src and alt and alt.strip(), (page_path.name, img)
            assert "://" not in src and not src.startswith("/"), src
            target = (page_path.parent / src).resolve()
            assert target.is_file(), (page_path.name, src)
            assert report.resolve() in target.parents, src  # inside the report folder
            with Image.open(target) as im:
                assert im.format == "PNG" and im.width > 50 and im.height > 50
            n_img += 1
        for href in page.links:
            assert "://" not in href and not href.startswith("//"), href
            if not href.startswith("#"):
                assert (page_path.parent / href.split("#")[0]).is_file(), href
    assert n_img >= 8


def test_cohort_page_sections(report: Path) -> None:
    page = _parse(report / "index.html")
    assert {"patients", "waterfall", "spider", "pfs", "eligibility", "failures"} <= page.ids
    srcs = {str(i["src"]) for i in page.imgs}
    assert {"img/waterfall.png", "img/spider.png", "img/pfs_km.png"} <= srcs
    text = (report / "index.html").read_text(encoding="utf-8")
    alts = " ".join(str(i["alt"]) for i in page.imgs)
    assert "Kaplan-Meier curve of progression-free survival, 2 patients, 1 events" in alts
    # eligibility matrix: both protocols, the verdicts colour coded, an unmatched id
    assert '<span class="v-eligible">eligible</span>' in text
    assert '<span class="v-not_eligible">not eligible</span>' in text
    assert "COMPETE" in text and "NETTER-2" in text and "NET-777" in text
    assert "NET-002&amp;co" in text and "NET-002&co" not in text
    for key in (KEY_A, KEY_B, KEY_F):
        assert f'href="patients/{key}.html"' in text


def test_failure_message_is_escaped(report: Path) -> None:
    text = (report / "index.html").read_text(encoding="utf-8")
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt; &amp; more" in text
    assert SCRIPT not in text
    page = (report / "patients" / f"{KEY_F}.html").read_text(encoding="utf-8")
    assert "PixelDataError" in page and SCRIPT not in page and "&lt;script&gt;" in page


def test_patient_page_shows_each_target_key_image(report: Path, batch: Batch) -> None:
    targets = _assessment(batch)["targets"]
    assert targets
    base = _assessment(batch)["baseline_date"]
    lesion_of = {
        r["tracking_id"]: int(r["lesion_id"])
        for r in _tracking(batch)
        if r["date"] == base and r["lesion_id"]
    }
    page_path = report / "patients" / f"{KEY_A}.html"
    page = _parse(page_path)
    by_src = {str(i["src"]): str(i["alt"]) for i in page.imgs}
    for t in targets:
        lid = lesion_of[t["lesion_id"]]
        src = f"../img/{KEY_A}/key_{batch.baseline_key}_lesion_{lid}.png"
        assert src in by_src, (t["lesion_id"], sorted(by_src))
        assert by_src[src].startswith(f"Target lesion {t['lesion_id']} at baseline")
        original = batch.root / "studies" / KEY_A / batch.baseline_key / "keyimages"
        assert (page_path.parent / src).read_bytes() == (
            original / f"lesion_{lid}.png"
        ).read_bytes()
    assert {"summary", "timepoints", "keyimages", "lesions", "figures", "tgr"} <= page.ids
    assert f"../img/{KEY_A}/spider.png" in by_src
    assert f"../img/{KEY_A}/volumes.png" in by_src
    text = page_path.read_text(encoding="utf-8")
    # lesions over time: one row per tracking id
    for tid in {r["tracking_id"] for r in _tracking(batch)}:
        assert f'<th scope="row">{tid}</th>' in text
    assert "TGR diameter vs baseline (%/month)" in text


def test_failed_patient_page(report: Path) -> None:
    text = (report / "patients" / f"{KEY_F}.html").read_text(encoding="utf-8")
    assert "This patient has no assessment" in text
    assert "2024-02-01_0badf00d" in text


def test_missing_optional_inputs_are_said(batch: Batch, tmp_path: Path) -> None:
    root = tmp_path / "batch"
    shutil.copytree(batch.root, root, ignore=shutil.ignore_patterns("report", "masks"))
    shutil.rmtree(root / "eligibility")
    (root / "tables" / "outcomes.csv").unlink()
    index = write_report(root)
    text = index.read_text(encoding="utf-8")
    assert "tables/outcomes.csv is absent" in text
    assert "eligibility/ folder is absent" in text
    assert "img/pfs_km.png" not in text
    assert "img/waterfall.png" in text  # from the assessments
    assert not (index.parent / "img" / "pfs_km.png").exists()


def test_report_is_replaced_and_a_foreign_folder_is_kept(batch: Batch, tmp_path: Path) -> None:
    root = tmp_path / "batch"
    shutil.copytree(batch.root, root, ignore=shutil.ignore_patterns("report", "masks"))
    first = write_report(root).read_bytes()
    (root / "report" / "stale.html").write_text("old")
    assert write_report(root).read_bytes() == first
    assert not (root / "report" / "stale.html").exists()
    shutil.rmtree(root / "report")
    (root / "report").mkdir()
    (root / "report" / "notes.txt").write_text("mine")
    with pytest.raises(InputPathError, match="not a report written by netvolume"):
        write_report(root)
    assert (root / "report" / "notes.txt").read_text() == "mine"
    assert not list(root.glob(".report.*"))


@pytest.mark.parametrize(
    ("table", "content", "match"),
    [
        (
            "patients.csv",
            "patient_key,n_studies,first_date,last_date,status\nP-1,1,2024-01-01,,ok\n",
            "lacks the column.*clinical_id",
        ),
        (
            "patients.csv",
            "patient_key,clinical_id,n_studies,first_date,last_date,status\n"
            "P-1,,1,2024-01-01,,done\n",
            "line 2: status 'done'",
        ),
        (
            "outcomes.csv",
            "patient_key,start_date,pfs_days,pfs_event,best_overall_response,"
            "best_sod_change_pct\nP-1,2024-01-01,abc,true,PD,\n",
            "line 2: pfs_days 'abc' is not a number",
        ),
        (
            "failures.csv",
            "stage,patient_key,study_key,error_type,message\nmeasure,P-1,s,E,m,extra\n",
            "more cells than the 5 columns",
        ),
    ],
)
def test_malformed_table_is_an_error(tmp_path: Path, table: str, content: str, match: str) -> None:
    root = tmp_path / "batch"
    tables = root / "tables"
    tables.mkdir(parents=True)
    (tables / "patients.csv").write_text(
        "patient_key,clinical_id,n_studies,first_date,last_date,status\nP-1,,1,2024-01-01,,ok\n"
    )
    (tables / table).write_text(content)
    with pytest.raises(ReportInputError, match=match) as info:
        write_report(root)
    assert table in str(info.value)
    assert not (root / "report").exists()


def test_not_a_batch_folder(tmp_path: Path) -> None:
    with pytest.raises(InputPathError, match=r"tables/patients\.csv is missing"):
        write_report(tmp_path)
    with pytest.raises(InputPathError, match="not found"):
        write_report(tmp_path / "absent")


def test_figures_are_deterministic() -> None:
    entries = [("P-1", -40.0, "PR"), ("P-2", 25.0, "PD"), ("P-3", 0.0, "SD")]
    assert report_figures.waterfall(entries) == report_figures.waterfall(entries)
    data = report_figures.waterfall(entries)
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and b"Software" not in data


# ----------------------------------------------------------------------------- key images
def _expected_px(
    m: StudyMeasurement, rec: dict[str, Any], point: tuple[float, float, float]
) -> tuple[float, float]:
    """Panel pixel (x, y) of an LPS point, computed here from the affine and the crop."""
    assert m.lesion_labels is not None
    g = rec["geometry"]
    assert not (g["transpose"] or g["flip_rows"] or g["flip_cols"])  # the sample is SPL
    k, r, c, _ = np.linalg.inv(m.lesion_labels.affine) @ np.array([*point, 1.0])
    assert round(k) == rec["slice_index"]
    r0, r1 = g["crop_rows"]
    c0, c1 = g["crop_cols"]
    return (
        (c + 0.5 - c0) * PANEL_PX / (c1 - c0) - 0.5,
        (r + 0.5 - r0) * PANEL_PX / (r1 - r0) - 0.5,
    )


def _near(arr: np.ndarray, xy: tuple[float, float], colour: tuple[int, int, int]) -> bool:
    x, y = round(xy[0]), round(xy[1])
    patch = arr[max(y - 1, 0) : y + 2, max(x - 1, 0) : x + 2]
    return bool(np.all(patch == colour, axis=-1).any())


def test_key_images_index(batch: Batch) -> None:
    folder = batch.root / "studies" / KEY_A / batch.baseline_key / "keyimages"
    assert json.loads((folder / "index.json").read_text()) == batch.records
    drawn = {r["lesion_id"] for r in batch.records}
    assert drawn == {les.lesion_id for les in batch.baseline.lesions if les.ld_mm > 0}
    for rec in batch.records:
        assert rec["file"] == f"lesion_{rec['lesion_id']}.png"
        assert rec["pet"] is True
        assert rec["alt"].startswith("Axial CT and fused PET (SUV) through ")
        assert "long axis" in rec["alt"] and "SUVmax" in rec["alt"]
        with Image.open(folder / rec["file"]) as im:
            assert im.size == (2 * PANEL_PX, PANEL_PX) == (rec["width"], rec["height"])
        assert oct((folder / rec["file"]).stat().st_mode & 0o777) == oct(0o644)


def test_key_image_callipers_lie_on_the_projected_end_points(batch: Batch) -> None:
    m = batch.baseline
    folder = batch.root / "studies" / KEY_A / batch.baseline_key / "keyimages"
    lesions = {les.lesion_id: les for les in m.lesions}
    for rec in batch.records:
        les = lesions[rec["lesion_id"]]
        arr = np.asarray(Image.open(folder / rec["file"]).convert("RGB"))
        ct = arr[:, :PANEL_PX]
        assert les.slice_index == rec["slice_index"]
        for tag, colour, ends, length in (
            ("ld_px", LD_RGB, les.ld_endpoints_mm, les.ld_mm),
            ("sa_px", SA_RGB, les.sa_endpoints_mm, les.sa_mm),
        ):
            drawn = rec["geometry"][tag]
            expected = [_expected_px(m, rec, p) for p in ends]
            np.testing.assert_allclose(drawn, expected, atol=1e-6)
            # the drawn length in pixels times the pixel size is the axis length in mm
            px = float(np.hypot(*np.subtract(drawn[0], drawn[1])))
            assert px * rec["geometry"]["mm_per_px"] == pytest.approx(length, rel=0.02)
            for xy in expected:
                assert _near(ct, xy, colour), (rec["lesion_id"], tag, xy)
            mid = np.mean(expected, axis=0)
            if tag == "ld_px":  # the middle of the long axis (the short axis may cross it)
                assert _near(ct, (float(mid[0]), float(mid[1])), colour)
        # no calliper on the PET panel
        pet = arr[:, PANEL_PX:]
        assert not np.all(pet == LD_RGB, axis=-1).any()


def test_key_image_contour_is_the_lesion_boundary(batch: Batch) -> None:
    m = batch.baseline
    assert m.lesion_labels is not None
    labels = np.asarray(m.lesion_labels.array)
    folder = batch.root / "studies" / KEY_A / batch.baseline_key / "keyimages"
    for rec in batch.records:
        arr = np.asarray(Image.open(folder / rec["file"]).convert("RGB"))
        g = rec["geometry"]
        (r0, r1), (c0, c1) = g["crop_rows"], g["crop_cols"]
        mask = labels[rec["slice_index"], r0:r1, c0:c1] == rec["lesion_id"]
        rows = ((np.arange(PANEL_PX) + 0.5) * (r1 - r0) / PANEL_PX).astype(int)
        cols = ((np.arange(PANEL_PX) + 0.5) * (c1 - c0) / PANEL_PX).astype(int)
        inside = mask[rows[:, None], cols[None, :]]
        for panel in (arr[:, :PANEL_PX], arr[:, PANEL_PX:]):
            contour = np.all(panel == CONTOUR_RGB, axis=-1)
            assert contour.sum() > 20, rec["lesion_id"]
            # every contour pixel is on the lesion, next to its edge
            assert inside[contour].all()
            near_edge = inside & ~ndimage.binary_erosion(inside, iterations=3)
            assert near_edge[contour].all()


def test_key_image_without_pet_is_the_ct_panel_alone(batch: Batch, tmp_path: Path) -> None:
    m = batch.baseline
    assert m.inputs is not None
    ct_only = dataclasses.replace(
        m, inputs=dataclasses.replace(m.inputs, pet_suv=None, pet_bqml=None, pet_series=None)
    )
    lid = batch.records[0]["lesion_id"]
    (rec,) = render_key_images(ct_only, tmp_path, lesion_ids=[lid])
    assert rec["pet"] is False and rec["geometry"]["suv_scale_max"] is None
    assert rec["alt"].startswith("Axial CT through ") and rec["alt"].endswith("PET not available")
    with Image.open(tmp_path / rec["file"]) as im:
        assert im.size == (PANEL_PX, PANEL_PX)
        arr = np.asarray(im.convert("RGB"))
    assert np.all(arr == LD_RGB, axis=-1).any() and np.all(arr == CONTOUR_RGB, axis=-1).any()


def test_key_image_without_axes_draws_the_contour_only(batch: Batch, tmp_path: Path) -> None:
    m = batch.baseline
    les = m.lesions[0]
    bare = dataclasses.replace(les, ld_endpoints_mm=None, sa_endpoints_mm=None)
    m2 = dataclasses.replace(m, lesions=(bare, *m.lesions[1:]))
    (rec,) = render_key_images(m2, tmp_path, lesion_ids=[les.lesion_id])
    assert rec["geometry"]["ld_px"] is None and rec["geometry"]["sa_px"] is None
    arr = np.asarray(Image.open(tmp_path / rec["file"]).convert("RGB"))
    assert not np.all(arr == LD_RGB, axis=-1).any()
    assert not np.all(arr == SA_RGB, axis=-1).any()
    assert np.all(arr == CONTOUR_RGB, axis=-1).any()


def test_key_images_are_fast(batch: Batch, tmp_path: Path) -> None:
    render_key_images(batch.baseline, tmp_path / "warm")
    start = time.perf_counter()
    records = render_key_images(batch.baseline, tmp_path / "timed")
    elapsed = time.perf_counter() - start
    assert len(records) >= 5
    assert elapsed < 1.0, f"{len(records)} key images took {elapsed:.2f} s"


def test_key_images_need_the_images(batch: Batch, tmp_path: Path) -> None:
    with pytest.raises(ReportInputError, match="no lesion label map or no images"):
        render_key_images(dataclasses.replace(batch.baseline, inputs=None), tmp_path)
    with pytest.raises(ReportInputError, match=r"lesion ids \[999\] are not in the study"):
        render_key_images(batch.baseline, tmp_path, lesion_ids=[999])
    assert not list(tmp_path.iterdir())


def test_key_image_without_ct_is_the_pet_panel(batch: Batch, tmp_path: Path) -> None:
    m = batch.baseline
    assert m.inputs is not None
    pet_only = dataclasses.replace(m, inputs=dataclasses.replace(m.inputs, ct=None))
    lid = batch.records[0]["lesion_id"]
    (rec,) = render_key_images(pet_only, tmp_path, lesion_ids=[lid])
    assert rec["pet"] is True and rec["alt"].startswith("Axial PET (SUV) through ")
    with Image.open(tmp_path / rec["file"]) as im:
        assert im.size == (PANEL_PX, PANEL_PX)
        arr = np.asarray(im.convert("RGB"))
    assert np.all(arr == LD_RGB, axis=-1).any() and np.all(arr == CONTOUR_RGB, axis=-1).any()


def test_empty_batch_gives_a_report(tmp_path: Path) -> None:
    _write_csv(
        tmp_path / "tables" / "patients.csv",
        ["patient_key", "clinical_id", "n_studies", "first_date", "last_date", "status"],
        [],
    )
    _write_csv(
        tmp_path / "tables" / "failures.csv",
        ["stage", "patient_key", "study_key", "error_type", "message"],
        [],
    )
    text = write_report(tmp_path).read_text(encoding="utf-8")
    assert "No patient has a follow-up" in text and "No failures." in text
    assert "<img" not in text

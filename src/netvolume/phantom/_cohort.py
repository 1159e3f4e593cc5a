"""Write phantom cohorts: patients x time points of PET/CT studies with their truth.

Layout of a cohort folder::

    OUT/
      cohort.json            settings, provenance, the studies and their UIDs
      clinical.csv           one row of clinical facts per patient (canonical columns)
      MANIFEST.sha256        SHA-256 of every other file (same seed -> same bytes)
      README.md
      P001/
        truth_patient.json   course, lesion tracks, RECIST 1.1 per time point and BOR
        T0/                  one PET/CT visit
          CT/*.dcm  PET/*.dcm  truth.json  truth/{liver,spleen,lesions}.nii.gz
        T1/ ...

The cohort is built in a temporary sibling folder and renamed into place at the end, so
an interrupted run leaves no half-written cohort under ``OUT``.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
import json
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from netvolume._version import __version__
from netvolume.errors import InputPathError
from netvolume.io.nifti import write_nifti
from netvolume.phantom._anatomy import PatientModel, build_patient
from netvolume.phantom._dicom import write_ct, write_pet
from netvolume.phantom._recist import TruthLesion, Visit, assess_course
from netvolume.phantom._render import Pose
from netvolume.phantom._study import (
    GA68_HALF_LIFE_S,
    SCANNERS,
    Scanner,
    Timing,
    add_pet_noise,
    lesion_truth,
    render_ct,
    render_pet_suv,
    suv_to_bqml,
)
from netvolume.volume import Provenance, Volume

#: Version of the phantom model: changes whenever the same seed would give other bytes.
PHANTOM_MODEL_VERSION = "2"
SIZES = tuple(SCANNERS)
#: A non-target lesion whose long axis reaches this multiple of its baseline value is
#: unequivocal progression in the truth (volume x 3.4 for a sphere).
NONTARGET_PD_DIAMETER_RATIO = 1.5

CLINICAL_COLUMNS = (
    "patient_id",
    "sex",
    "age_years",
    "weight_kg",
    "height_cm",
    "ecog",
    "gfr_ml_min_1_73m2",
    "hb_g_dl",
    "neutrophils_10e9_l",
    "leukocytes_10e9_l",
    "platelets_10e9_l",
    "bilirubin_umol_l",
    "bilirubin_uln_umol_l",
    "asat_u_l",
    "asat_uln_u_l",
    "alat_u_l",
    "alat_uln_u_l",
    "albumin_g_l",
    "prothrombin_pct",
    "crp_mg_l",
    "cga_ug_l",
    "ki67_pct",
    "grade",
    "primary_site",
    "diagnosis_date",
    "baseline_scan_date",
    "prrt_start_date",
    "last_followup_date",
    "pregnant",
)


@dataclass(frozen=True)
class PhantomSettings:
    """What to generate. ``scanner_change``: patient 2, 6, ... changes scanner at T1."""

    patients: int = 4
    timepoints: int = 3
    seed: int = 2026
    size: str = "small"
    scanner_change: bool = True

    def __post_init__(self) -> None:
        if self.patients < 1:
            raise ValueError(f"patients must be >= 1; got {self.patients}")
        if self.timepoints < 1:
            raise ValueError(f"timepoints must be >= 1; got {self.timepoints}")
        if self.size not in SCANNERS:
            raise ValueError(f"size must be one of {', '.join(SCANNERS)}; got {self.size!r}")
        if self.seed < 0:
            raise ValueError(f"seed must be >= 0; got {self.seed}")

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready settings."""
        return {
            "patients": self.patients,
            "timepoints": self.timepoints,
            "seed": self.seed,
            "size": self.size,
            "scanner_change": self.scanner_change,
            "phantom_model_version": PHANTOM_MODEL_VERSION,
        }


@dataclass(frozen=True)
class StudyRecord:
    """Where one generated study is and what identifies it."""

    patient_id: str
    folder: str
    timepoint: int
    date: str
    study_instance_uid: str
    ct_series_uid: str
    pet_series_uid: str
    scanner: str


def _uid(seed: int, *parts: object) -> str:
    digest = hashlib.sha256("/".join(["netvolume.phantom", str(seed), *map(str, parts)]).encode())
    return "2.25." + str(int.from_bytes(digest.digest()[:15], "big"))


def _rounded(obj: Any) -> Any:
    """Floats rounded to 1e-6 (mm, mL, SUV): the same text on every machine."""
    if isinstance(obj, float):
        return round(obj, 6) + 0.0
    if isinstance(obj, dict):
        return {k: _rounded(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_rounded(v) for v in obj]
    return obj


def _json_bytes(obj: Any) -> bytes:
    return (json.dumps(_rounded(obj), indent=2, allow_nan=False) + "\n").encode("utf-8")


def _write_bytes(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


# -- per patient -------------------------------------------------------------------------


@dataclass(frozen=True)
class _Patient:
    model: PatientModel
    patient_id: str
    folder: str
    clinical: dict[str, Any]
    dates: tuple[dt.date, ...]
    timings: tuple[Timing, ...]
    weights: tuple[float, ...]
    scanners: tuple[Scanner, ...]
    poses: tuple[Pose, ...]
    scan_centre_z: tuple[float, ...]


def _patient(settings: PhantomSettings, index: int) -> _Patient:
    model = build_patient(settings.seed, index, settings.timepoints)
    rng = np.random.default_rng(np.random.SeedSequence([settings.seed, index, 2]))
    folder = f"P{index + 1:03d}"
    patient_id = f"NV{settings.seed}-{folder}"
    baseline = dt.date(2024, 1, 8) + dt.timedelta(days=int(rng.integers(0, 300)))
    dates = [baseline]
    for _ in range(1, settings.timepoints):
        dates.append(dates[-1] + dt.timedelta(days=84 + int(rng.integers(-10, 11))))
    progressing = model.course in ("progression", "new_lesions")
    weights, timings, poses, centres = [], [], [], []
    scanners = []
    pair = SCANNERS[settings.size]
    for t, day in enumerate(dates):
        drift = (-1.2 if progressing else 0.3) * t + rng.uniform(-0.8, 0.8)
        w = round(model.weight_kg + (drift if t else 0.0), 1)  # baseline = clinical.csv
        weights.append(w)
        injection = dt.datetime.combine(day, dt.time(8, 30)) + dt.timedelta(
            minutes=int(rng.integers(0, 240)), seconds=int(rng.integers(0, 60))
        )
        uptake = dt.timedelta(minutes=float(rng.uniform(55.0, 70.0)))
        pet_start = (injection + uptake).replace(microsecond=0)
        dose = float(np.round(min(200.0, max(100.0, 2.0 * w)) * rng.uniform(0.93, 1.07), 1)) * 1e6
        timings.append(
            Timing(injection, pet_start - dt.timedelta(minutes=4), pet_start, 150.0, dose)
        )
        poses.append(
            Pose(
                (
                    round(float(rng.uniform(-8, 8)), 2),
                    round(float(rng.uniform(-10, 10)), 2),
                    round(float(-520.0 + rng.uniform(-20, 20)), 2),
                ),
                float(np.deg2rad(rng.uniform(-2.0, 2.0))),
            )
        )
        centres.append(poses[-1].translation_mm[2] + float(rng.uniform(-5, 5)))
        change = settings.scanner_change and index % 4 == 1 and t >= 1
        scanners.append(pair[1] if change else pair[0])
    clinical = _clinical(rng, model, patient_id, dates)
    return _Patient(
        model,
        patient_id,
        folder,
        clinical,
        tuple(dates),
        tuple(timings),
        tuple(weights),
        tuple(scanners),
        tuple(poses),
        tuple(centres),
    )


def _clinical(
    rng: np.random.Generator, model: PatientModel, patient_id: str, dates: list[dt.date]
) -> dict[str, Any]:
    """Baseline clinical facts, plausible for a small-intestine NET before PRRT."""
    inflamed = model.course in ("progression", "new_lesions")
    grade = 1 if rng.uniform() < 0.5 else 2
    ki67 = round(float(rng.uniform(0.5, 2.9) if grade == 1 else rng.uniform(3.0, 18.0)), 1)
    u = rng.uniform
    return {
        "patient_id": patient_id,
        "sex": model.sex,
        "age_years": int(rng.integers(42, 80)),
        "weight_kg": round(model.weight_kg, 1),
        "height_cm": int(model.height_cm),
        "ecog": int(rng.integers(0, 2)),
        "gfr_ml_min_1_73m2": int(u(55, 105)),
        "hb_g_dl": round(float(u(10.5, 14.8)), 1),
        "neutrophils_10e9_l": round(float(u(1.8, 6.5)), 2),
        "leukocytes_10e9_l": round(float(u(3.6, 9.5)), 2),
        "platelets_10e9_l": int(u(140, 380)),
        "bilirubin_umol_l": round(float(u(4.0, 19.0)), 1),
        "bilirubin_uln_umol_l": 21.0,
        "asat_u_l": int(u(14, 60)),
        "asat_uln_u_l": 35,
        "alat_u_l": int(u(10, 55)),
        "alat_uln_u_l": 45,
        "albumin_g_l": round(float(u(29.0, 36.0) if inflamed else u(36.0, 46.0)), 1),
        "prothrombin_pct": int(u(75, 110)),
        "crp_mg_l": round(float(u(11.0, 40.0) if inflamed else u(0.5, 9.0)), 1),
        "cga_ug_l": int(u(150, 2500) if inflamed else u(60, 600)),
        "ki67_pct": ki67,
        "grade": grade,
        "primary_site": "small_intestine",
        "diagnosis_date": (dates[0] - dt.timedelta(days=int(rng.integers(200, 1500)))).isoformat(),
        "baseline_scan_date": dates[0].isoformat(),
        "prrt_start_date": (dates[0] + dt.timedelta(days=int(rng.integers(10, 28)))).isoformat(),
        "last_followup_date": (
            dates[-1] + dt.timedelta(days=int(rng.integers(30, 120)))
        ).isoformat(),
        "pregnant": "false",
    }


# -- truth -------------------------------------------------------------------------------


def _recist_visits(p: _Patient, lesion_tables: list[list[dict[str, Any]]]) -> list[Visit]:
    visits = []
    base_ld = {r["id"]: r["ld_mm"] for r in lesion_tables[0]}
    for t, table in enumerate(lesion_tables):
        rows = []
        for r in table:
            origin = r["split_from"] if r["split_from"] is not None else r["id"]
            grown = (
                origin in base_ld
                and r["split_from"] is None
                and (r["ld_mm"] >= NONTARGET_PD_DIAMETER_RATIO * base_ld[origin])
            )
            rows.append(
                TruthLesion(
                    lesion_id=int(r["id"]),
                    organ=str(r["organ"]),
                    ld_mm=float(r["ld_mm"]),
                    sa_mm=float(r["sa_mm"]),
                    split_from=r["split_from"],
                    measurable_site=r["organ"] != "bone",
                    unequivocal_progression=bool(t > 0 and grown),
                )
            )
        visits.append(Visit(p.dates[t], p.scanners[t].ct_slice_mm, tuple(rows)))
    return visits


# -- writing -----------------------------------------------------------------------------


def _write_study(
    root: Path, p: _Patient, t: int, settings: PhantomSettings
) -> tuple[StudyRecord, list[dict[str, Any]], dict[str, Any]]:
    model, scanner, pose, timing = p.model, p.scanners[t], p.poses[t], p.timings[t]
    folder = root / p.folder / f"T{t}"
    rng = np.random.default_rng(np.random.SeedSequence([settings.seed, model.index, 3, t]))
    uids = {
        "study": _uid(settings.seed, model.index, t, "study"),
        "frame_of_reference": _uid(settings.seed, model.index, t, "for"),
        "ct_series": _uid(settings.seed, model.index, t, "ct"),
        "pet_series": _uid(settings.seed, model.index, t, "pet"),
    }
    ct_grid = scanner.ct_grid(p.scan_centre_z[t])
    pet_grid = scanner.pet_grid(p.scan_centre_z[t])
    noise_hu = float(rng.uniform(*scanner.ct_noise_hu))
    hu, organs, lesion_map, voxels = render_ct(model, t, ct_grid, pose, noise_hu, rng)
    stored = np.clip(np.rint(hu), -1024, 3071).astype(np.int16) + np.int16(1024)
    del hu
    liver_suv = model.tissues["liver"].suv
    cov = float(rng.uniform(0.08, 0.12))
    suv = add_pet_noise(
        render_pet_suv(model, t, pet_grid, pose, scanner.pet_fwhm_mm), liver_suv, cov, rng
    )
    factor = suv_to_bqml(p.weights[t], timing)
    bqml = suv * np.float32(factor)

    identity = {
        "patient_name": f"PHANTOM^{p.folder}",
        "patient_id": p.patient_id,
        "sex": model.sex,
        "age_years": p.clinical["age_years"],
        "weight_kg": p.weights[t],
        "height_cm": model.height_cm,
        "study_id": f"T{t}",
        "software": f"netvolume phantom model {PHANTOM_MODEL_VERSION}",
    }
    seed_files = settings.seed * 1000 + model.index * 10 + t
    write_ct(
        folder / "CT",
        stored,
        ct_grid,
        identity=identity,
        scanner=scanner,
        timing=timing,
        uids=uids,
        seed=seed_files,
    )
    write_pet(
        folder / "PET",
        bqml,
        pet_grid,
        identity=identity,
        scanner=scanner,
        timing=timing,
        uids=uids,
        seed=seed_files,
    )

    prov = Provenance(source=f"netvolume phantom {p.folder}/T{t}", settings=settings.to_dict())
    truth_dir = folder / "truth"
    for name, arr in (
        ("liver", (organs == 1).astype(np.uint8)),
        ("spleen", (organs == 2).astype(np.uint8)),
        ("lesions", lesion_map),
    ):
        write_nifti(Volume(arr, ct_grid.affine, provenance=prov), truth_dir / f"{name}.nii.gz")

    present = [les for les in model.lesions if les.at(t) is not None]
    lesions = [lesion_truth(les, t, pose, ct_grid, model, voxels[les.lesion_id]) for les in present]
    absent = [
        les.lesion_id
        for les in model.lesions
        if les.at(t) is None and any(s is not None for s in les.scales[:t])
    ]
    liver_ml = model.organ("liver").shape.volume_ml()  # type: ignore[union-attr]
    liver_tumour_ml = sum(float(r["volume_ml"]) for r in lesions if r["organ"] == "liver")
    truth = {
        "phantom_model_version": PHANTOM_MODEL_VERSION,
        "generator": {**settings.to_dict(), "patient_index": model.index, "timepoint": t},
        "patient_id": p.patient_id,
        "timepoint": t,
        "study_date": p.dates[t].isoformat(),
        "days_from_baseline": (p.dates[t] - p.dates[0]).days,
        "study_instance_uid": uids["study"],
        "frame_of_reference_uid": uids["frame_of_reference"],
        "course": model.course,
        "pose": {
            "translation_mm": list(pose.translation_mm),
            "rotation_about_z_deg": float(np.rad2deg(pose.angle_rad)),
        },
        "ct": {
            "series_instance_uid": uids["ct_series"],
            "scanner": scanner.name,
            "shape": list(ct_grid.shape),
            "spacing_mm": list(ct_grid.spacing_mm),
            "origin_mm": list(ct_grid.origin_mm),
            "slice_thickness_mm": scanner.ct_slice_mm,
            "noise_sd_hu": noise_hu,
            "stored": "int16, HU = stored - 1024",
        },
        "pet": {
            "series_instance_uid": uids["pet_series"],
            "scanner": scanner.name,
            "shape": list(pet_grid.shape),
            "spacing_mm": list(pet_grid.spacing_mm),
            "origin_mm": list(pet_grid.origin_mm),
            "psf_fwhm_mm": scanner.pet_fwhm_mm,
            "noise_cov_in_liver": cov,
            "radiopharmaceutical": "Ga-68 DOTATATE",
            "injected_dose_bq": timing.injected_dose_bq,
            "injection_datetime": timing.injection.isoformat(),
            "series_datetime": timing.pet_start.isoformat(),
            "half_life_s": GA68_HALF_LIFE_S,
            "weight_kg": p.weights[t],
            "height_cm": model.height_cm,
            "bqml_per_suv": factor,
            "decay_correction": "START",
        },
        "tissues": {k: {"hu": v.hu, "suv": v.suv} for k, v in model.tissues.items()},
        "reference": {"liver_suv": liver_suv, "spleen_suv": model.tissues["spleen"].suv},
        "liver_volume_ml": liver_ml,
        "spleen_volume_ml": model.organ("spleen").shape.volume_ml(),  # type: ignore[union-attr]
        "liver_voxels": int((organs == 1).sum()),
        "spleen_voxels": int((organs == 2).sum()),
        "liver_tumour_volume_ml": liver_tumour_ml,
        "liver_tumour_burden_pct": 100.0 * liver_tumour_ml / liver_ml,
        "lesions": lesions,
        "absent_lesion_ids": absent,
    }
    record = StudyRecord(
        p.patient_id,
        f"{p.folder}/T{t}",
        t,
        p.dates[t].isoformat(),
        uids["study"],
        uids["ct_series"],
        uids["pet_series"],
        scanner.name,
    )
    return record, lesions, truth


def _write_patient(root: Path, p: _Patient, settings: PhantomSettings) -> list[StudyRecord]:
    records, tables, truths = [], [], []
    for t in range(settings.timepoints):
        record, lesions, truth = _write_study(root, p, t, settings)
        records.append(record)
        tables.append(lesions)
        truths.append(truth)
    course = assess_course(_recist_visits(p, tables))
    for t, truth in enumerate(truths):
        visit = course.visits[t].to_dict()
        # the RECIST 1.1 overall response of this visit (None at baseline), also below
        truth["overall_response"] = visit["overall_response"]
        truth["recist"] = {
            **visit,
            "target_ids": list(course.target_ids),
            "nontarget_ids": list(course.nontarget_ids),
        }
        _write_bytes(root / p.folder / f"T{t}" / "truth.json", _json_bytes(truth))
    tracks = {}
    for les in p.model.lesions:
        tracks[str(les.lesion_id)] = {
            "organ": les.organ,
            "site": les.site,
            "kind": les.kind,
            "present": [s is not None for s in les.scales],
            "split_from": les.split_from,
            "diameter_scale": list(les.scales),
        }
    patient_truth = {
        "phantom_model_version": PHANTOM_MODEL_VERSION,
        "patient_id": p.patient_id,
        "course": p.model.course,
        "timepoints": [
            {"folder": f"T{t}", "date": d.isoformat(), "scanner": s.name}
            for t, (d, s) in enumerate(zip(p.dates, p.scanners, strict=True))
        ],
        "recist": {
            **course.to_dict(),
            "nontarget_pd_rule": f"long axis >= {NONTARGET_PD_DIAMETER_RATIO} x baseline",
        },
        "lesion_tracks": tracks,
    }
    _write_bytes(root / p.folder / "truth_patient.json", _json_bytes(patient_truth))
    return records


def _clinical_csv(rows: list[dict[str, Any]]) -> bytes:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=CLINICAL_COLUMNS, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow(row)
    return buf.getvalue().encode("utf-8")


_README = """# netvolume phantom cohort

Synthetic PET/CT studies of neuroendocrine-tumour patients with known ground truth,
written by netvolume's phantom generator (phantom model version {model}). No real patient
data: names, IDs and dates are invented.

Regenerate these exact bytes with:

    netvolume phantom -o OUT --patients {patients} --timepoints {timepoints} \\
        --seed {seed} --size {size}{change}

- `clinical.csv`: clinical facts per patient (canonical netvolume column names).
- `P###/T#/CT`, `P###/T#/PET`: CT Image Storage and PET Image Storage (Ga-68 DOTATATE,
  Units BQML, decay-corrected to the series start, full radiopharmaceutical sequence).
- `P###/T#/truth.json` and `truth/*.nii.gz`: the truth of that visit (lesions, organ
  volumes, RECIST 1.1 response); `P###/truth_patient.json`: the course over time.
- `MANIFEST.sha256`: SHA-256 of every file (check with `sha256sum -c MANIFEST.sha256`).

See docs/phantom.md in the netvolume repository for the model and every field.
"""


def generate_cohort(
    out_dir: str | os.PathLike[str],
    settings: PhantomSettings | None = None,
    *,
    overwrite: bool = False,
    progress: Callable[[str], None] | None = None,
) -> list[StudyRecord]:
    """Generate a phantom cohort into ``out_dir`` (see the module docstring).

    Parameters
    ----------
    out_dir
        Target folder. It must not exist unless ``overwrite`` (then it is replaced,
        after the new cohort is complete).
    settings
        Patients, time points, seed, size and scanner change.
    overwrite
        Replace an existing ``out_dir``.
    progress
        Called with a short message after each study.

    Returns
    -------
    list of StudyRecord
        One per study, in patient then time-point order.
    """
    settings = settings or PhantomSettings()
    out = Path(out_dir)
    if out.exists() and not overwrite:
        raise InputPathError(
            f"{out} already exists",
            hint="choose a new folder, or pass --overwrite to replace it",
        )
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.parent / f".{out.name}.partial-{os.getpid()}"
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir()
    try:
        records: list[StudyRecord] = []
        clinical = []
        for index in range(settings.patients):
            p = _patient(settings, index)
            clinical.append(p.clinical)
            for record in _write_patient(tmp, p, settings):
                records.append(record)
                if progress is not None:
                    progress(f"{record.folder} written ({record.date}, scanner {record.scanner})")
        _write_bytes(tmp / "clinical.csv", _clinical_csv(clinical))
        cohort = {
            "description": "netvolume synthetic NET PET/CT phantom cohort",
            "settings": settings.to_dict(),
            "provenance": {
                "netvolume_version": __version__,
                "phantom_model_version": PHANTOM_MODEL_VERSION,
            },
            "studies": [r.__dict__ for r in records],
        }
        _write_bytes(tmp / "cohort.json", _json_bytes(cohort))
        change = "" if settings.scanner_change else " --no-scanner-change"
        _write_bytes(
            tmp / "README.md",
            _README.format(
                model=PHANTOM_MODEL_VERSION,
                patients=settings.patients,
                timepoints=settings.timepoints,
                seed=settings.seed,
                size=settings.size,
                change=change,
            ).encode("utf-8"),
        )
        _write_bytes(tmp / "MANIFEST.sha256", _manifest(tmp))
        if out.exists():
            old = out.parent / f".{out.name}.old-{os.getpid()}"
            os.replace(out, old)
            os.replace(tmp, out)
            shutil.rmtree(old)
        else:
            os.replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return records


def _manifest(root: Path) -> bytes:
    lines = []
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        rel = path.relative_to(root).as_posix()
        if rel in ("MANIFEST.sha256", "cohort.json"):
            continue
        lines.append(f"{hashlib.sha256(path.read_bytes()).hexdigest()}  {rel}\n")
    return "".join(lines).encode("utf-8")

"""Accuracy of ``measure_study`` against the phantom's ground truth, over several seeds.

``tests/test_measure_acceptance.py`` checks issue 7's thresholds on one seed (4242). This
script measures the same figures on any seeds, so a change to the segmentation can be
judged on phantoms it was not developed on, and prints every lesion that misses a
threshold (with its kind, size and whether it lies under the liver capsule):

* liver Dice >= 0.95 and spleen Dice >= 0.90 per study;
* lesions >= 10 mm (truth long axis): detection sensitivity >= 95 % and no false positive
  (a measured lesion with no truth voxel); a truth lesion is detected when measured
  lesions cover at least half of its voxels, and its match is the one covering most;
* volume error <= 5 % and long-axis error <= 1.5 mm for each detected lesion >= 10 mm;
* Krenning grade equal to the truth for detected lesions >= 15 mm;
* the organ a detected lesion >= 10 mm is assigned to (liver, lymph node, bone, other)
  equal to the truth's.

Usage::

    python benchmarks/validate_measure.py [--seeds 11 13 17] [--patients 2] [--timepoints 2]
                                          [--keep DIR]

``--keep DIR`` generates the cohorts into ``DIR/s<seed>`` and reuses them on the next run
(otherwise a temporary folder is used and deleted). Exit status 0 when every threshold is
met on every seed, 1 otherwise.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from netvolume.io.nifti import read_nifti
from netvolume.measure import StudyMeasurement, measure_study
from netvolume.phantom import PhantomSettings, generate_cohort

MIN_LIVER_DICE = 0.95
MIN_SPLEEN_DICE = 0.90
MIN_SENSITIVITY = 0.95
MAX_VOLUME_ERROR_PCT = 5.0
MAX_LD_ERROR_MM = 1.5
DETECT_MIN_LD_MM = 10.0
GRADE_MIN_LD_MM = 15.0


def _dice(a: np.ndarray, b: np.ndarray) -> float:
    total = int(a.sum() + b.sum())
    return float(2.0 * (a & b).sum() / total) if total else 1.0


def score_study(study: Path, m: StudyMeasurement) -> dict[str, Any]:
    """Compare one measurement with the study's ``truth.json`` and ``truth/*.nii.gz``."""
    truth = json.loads((study / "truth.json").read_text())
    t_liver = read_nifti(study / "truth" / "liver.nii.gz").array > 0
    t_spleen = read_nifti(study / "truth" / "spleen.nii.gz").array > 0
    t_lab = np.asarray(read_nifti(study / "truth" / "lesions.nii.gz").array)
    lab = np.asarray(m.lesion_labels.array)
    liver = m.liver_mask.array > 0 if m.liver_mask is not None else np.zeros_like(t_liver)
    spleen = m.spleen_mask.array > 0 if m.spleen_mask is not None else np.zeros_like(t_spleen)
    out: dict[str, Any] = {
        "liver_dice": _dice(liver, t_liver),
        "spleen_dice": _dice(spleen, t_spleen),
        "false_positives": [
            f"L{r.lesion_id} {r.organ} {r.volume_ml:.2f} mL"
            for r in m.lesions
            if not (t_lab[lab == r.lesion_id] > 0).any()
        ],
        "lesions": [],
    }
    for les in truth["lesions"]:
        if les["ld_mm"] < DETECT_MIN_LD_MM:
            continue
        hit = lab[t_lab == les["id"]]
        covered = hit[hit > 0]
        row: dict[str, Any] = {
            "id": les["id"],
            "kind": les["kind"],
            "ld_mm": les["ld_mm"],
            "subcapsular": bool(les.get("subcapsular")),
            "detected": covered.size >= 0.5 * hit.size,
        }
        if row["detected"]:
            ids, counts = np.unique(covered, return_counts=True)
            rec = m.lesions[int(ids[np.argmax(counts)]) - 1]
            row["volume_error_pct"] = 100.0 * (rec.volume_ml / les["volume_ml"] - 1.0)
            row["ld_error_mm"] = rec.ld_mm - les["ld_mm"]
            row["grade"] = rec.krenning_grade
            row["true_grade"] = les["krenning_grade"]
            row["organ"] = rec.organ
            row["true_organ"] = les["organ"]
        out["lesions"].append(row)
    return out


def _problems(row: dict[str, Any]) -> list[str]:
    if not row["detected"]:
        return ["missed"]
    out = []
    if row["organ"] != row["true_organ"]:
        out.append(f"organ {row['organ']} (truth {row['true_organ']})")
    if abs(row["volume_error_pct"]) > MAX_VOLUME_ERROR_PCT:
        out.append(f"volume {row['volume_error_pct']:+.1f} %")
    if abs(row["ld_error_mm"]) > MAX_LD_ERROR_MM:
        out.append(f"long axis {row['ld_error_mm']:+.2f} mm")
    if row["ld_mm"] >= GRADE_MIN_LD_MM and row["grade"] != row["true_grade"]:
        out.append(f"Krenning {row['grade']} (truth {row['true_grade']})")
    return out


def validate_seed(root: Path, seed: int, patients: int, timepoints: int) -> dict[str, Any]:
    """Generate (or reuse) one seed's cohort, measure every study, and score it."""
    cohort = root / f"s{seed}"
    if not (cohort / "P001").is_dir():
        generate_cohort(
            cohort,
            PhantomSettings(patients=patients, timepoints=timepoints, seed=seed, size="full"),
        )
    studies = sorted(p.parent for p in cohort.glob("P*/T*/truth.json"))
    scores = []
    seconds = 0.0
    for study in studies:
        t0 = time.perf_counter()
        m = measure_study(study)
        seconds += time.perf_counter() - t0
        score = score_study(study, m)
        score["study"] = f"{study.parent.name}/{study.name}"
        scores.append(score)
    return {"seed": seed, "studies": scores, "measure_seconds": seconds}


def _worst(values: list[float], fmt: str) -> str:
    """The value of largest magnitude, formatted; "none detected" for no values."""
    return fmt.format(max(values, key=abs)) if values else "none detected"


def summarise(res: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """One summary row and the failing items of a seed."""
    rows = [(s["study"], r) for s in res["studies"] for r in s["lesions"]]
    found = [r for _, r in rows if r["detected"]]
    graded = [r for r in found if r["ld_mm"] >= GRADE_MIN_LD_MM]
    fps = [f"{s['study']} {fp}" for s in res["studies"] for fp in s["false_positives"]]
    summary = {
        "seed": res["seed"],
        "studies": len(res["studies"]),
        "liver_dice_min": min(s["liver_dice"] for s in res["studies"]),
        "spleen_dice_min": min(s["spleen_dice"] for s in res["studies"]),
        "lesions": len(rows),
        "sensitivity": f"{100 * len(found) / len(rows):.1f} %" if rows else "no lesions",
        "false_positives": len(fps),
        "volume_error_worst": _worst([r["volume_error_pct"] for r in found], "{:+.1f} %"),
        "ld_error_worst": _worst([r["ld_error_mm"] for r in found], "{:+.2f} mm"),
        "grades_equal": f"{sum(r['grade'] == r['true_grade'] for r in graded)}/{len(graded)}",
        "seconds_per_study": res["measure_seconds"] / max(1, len(res["studies"])),
    }
    failing = [f"seed {res['seed']} {fp}: false positive" for fp in fps]
    for study, r in rows:
        probs = _problems(r)
        if probs:
            where = "subcapsular " if r["subcapsular"] else ""
            failing.append(
                f"seed {res['seed']} {study} lesion {r['id']} {where}{r['kind']} "
                f"{r['ld_mm']:.1f} mm: {', '.join(probs)}"
            )
    for s in res["studies"]:
        if s["liver_dice"] < MIN_LIVER_DICE:
            failing.append(f"seed {res['seed']} {s['study']}: liver Dice {s['liver_dice']:.3f}")
        if s["spleen_dice"] < MIN_SPLEEN_DICE:
            failing.append(f"seed {res['seed']} {s['study']}: spleen Dice {s['spleen_dice']:.3f}")
    return summary, failing


def main(argv: list[str] | None = None) -> int:
    """Validate the given seeds; return 0 when every threshold is met, else 1."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[11, 13, 17])
    parser.add_argument("--patients", type=int, default=2)
    parser.add_argument("--timepoints", type=int, default=2)
    parser.add_argument("--keep", type=Path, default=None, help="generate into / reuse DIR")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="netvolume-validate-") as tmp:
        root = args.keep if args.keep is not None else Path(tmp)
        root.mkdir(parents=True, exist_ok=True)
        summaries, failing = [], []
        for seed in args.seeds:
            s, f = summarise(validate_seed(root, seed, args.patients, args.timepoints))
            summaries.append(s)
            failing.extend(f)
    head = (
        "| seed | studies | liver Dice min | spleen Dice min | lesions >= 10 mm | sensitivity "
        "| false pos. | worst volume error | worst long-axis error | Krenning equal (>= 15 mm) "
        "| s / study |"
    )
    print(head)
    print("|" + "---|" * 11)
    for s in summaries:
        print(
            f"| {s['seed']} | {s['studies']} | {s['liver_dice_min']:.3f} | "
            f"{s['spleen_dice_min']:.3f} | {s['lesions']} | {s['sensitivity']} | "
            f"{s['false_positives']} | {s['volume_error_worst']} | "
            f"{s['ld_error_worst']} | {s['grades_equal']} | "
            f"{s['seconds_per_study']:.1f} |"
        )
    print()
    if not failing:
        print("every threshold met on every seed")
        return 0
    print(f"{len(failing)} items miss a threshold:")
    for line in failing:
        print(f"  {line}")
    return 1


if __name__ == "__main__":
    sys.exit(main())

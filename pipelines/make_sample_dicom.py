"""Write the bundled sample study in ``data/sample_dicom/`` (deterministic).

A small abdominal CT (64 x 64 x 24, 6 mm pixels, 8 mm slices: body, liver, spleen, one
hypo-attenuating liver lesion, seeded noise) plus a one-slice localizer, written with
:func:`netvolume.io.dicom_write.write_series`. The voxel truth of the shapes is analytic,
so the tests can check what ingestion reads back. This sample only exercises ingestion;
the full NET phantom (CT + Ga-68 PET, several time points) will replace it.

Usage::

    python pipelines/make_sample_dicom.py [OUT_DIR]   # default: data/sample_dicom
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
from pydicom.uid import generate_uid

from netvolume.io.dicom_write import write_series

#: Geometry of the sample CT, array order (slice, row, column), mm.
SHAPE = (24, 64, 64)
SPACING_MM = (8.0, 6.0, 6.0)
ORIGIN_LPS = (-189.0, -189.0, -92.0)
#: Lesion centre (LPS mm) and radius (mm): a hypo-attenuating liver metastasis.
LESION_CENTRE_LPS = (-75.0, -20.0, 20.0)
LESION_RADIUS_MM = 24.0
SEED = 20261122


def sample_ct_hu() -> np.ndarray:
    """Return the sample CT in HU, ``[slice, row, column]`` (noise seeded)."""
    k, j, i = np.indices(SHAPE, dtype=np.float64)
    x = ORIGIN_LPS[0] + i * SPACING_MM[2]
    y = ORIGIN_LPS[1] + j * SPACING_MM[1]
    z = ORIGIN_LPS[2] + k * SPACING_MM[0]
    hu = np.full(SHAPE, -1000.0)
    body = (x / 170.0) ** 2 + (y / 120.0) ** 2 <= 1.0
    hu[body] = -100.0  # fat
    muscle = body & ((x / 150.0) ** 2 + (y / 100.0) ** 2 <= 1.0)
    hu[muscle] = 50.0
    # liver: right side of the patient (negative x in LPS), a lumpy ellipsoid
    liver = ((x + 70) / 80.0) ** 2 + ((y + 10) / 60.0) ** 2 + ((z - 10) / 70.0) ** 2 <= 1.0 + (
        0.12 * np.sin(x / 17.0) * np.cos(y / 23.0)
    )
    hu[liver] = 110.0
    spleen = ((x - 95) / 35.0) ** 2 + ((y - 40) / 45.0) ** 2 + ((z - 20) / 50.0) ** 2 <= 1.0
    hu[spleen] = 120.0
    lx, ly, lz = LESION_CENTRE_LPS
    lesion = (x - lx) ** 2 + (y - ly) ** 2 + (z - lz) ** 2 <= LESION_RADIUS_MM**2
    hu[lesion] = 60.0
    rng = np.random.default_rng(SEED)
    hu += rng.normal(0.0, 12.0, SHAPE)
    return np.clip(np.rint(hu), -1024, 3071)


def write_sample(out_dir: Path) -> None:
    """Write the sample study into ``out_dir`` (replacing the DICOM files there)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    for old in out_dir.glob("*.dcm"):
        old.unlink()
    study_uid = generate_uid(entropy_srcs=["netvolume sample study", str(SEED)])
    frame_uid = generate_uid(entropy_srcs=["netvolume sample frame", str(SEED)])
    hu = sample_ct_hu()
    stored = (hu + 1024).astype(np.int16)
    files = write_series(
        out_dir,
        stored,
        spacing_mm=SPACING_MM,
        origin_lps=ORIGIN_LPS,
        modality="CT",
        rescale_intercept=-1024.0,
        series_number=2,
        series_description="ABDOMEN PORTAL VENOUS 8mm",
        study_instance_uid=study_uid,
        frame_of_reference_uid=frame_uid,
        seed=SEED,
    )
    # a coronal localizer in the same study (one slice, ImageType LOCALIZER)
    topogram = np.clip(stored.mean(axis=1, keepdims=True).astype(np.int16), 0, 4095)[::-1]
    loc = np.ascontiguousarray(np.transpose(topogram, (1, 0, 2)))  # (1, slices, columns)
    write_series(
        out_dir,
        loc,
        spacing_mm=(1.0, SPACING_MM[0], SPACING_MM[2]),
        origin_lps=(ORIGIN_LPS[0], 0.0, ORIGIN_LPS[2] + SPACING_MM[0] * (SHAPE[0] - 1)),
        orientation=(1.0, 0.0, 0.0, 0.0, 0.0, -1.0),
        modality="CT",
        rescale_intercept=-1024.0,
        series_number=1,
        series_description="TOPOGRAM",
        image_type=("ORIGINAL", "PRIMARY", "LOCALIZER"),
        study_instance_uid=study_uid,
        frame_of_reference_uid=frame_uid,
        seed=SEED + 1,
        file_names=["topogram.dcm"],
    )
    print(f"wrote {len(files) + 1} files to {out_dir}")


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out_dir", nargs="?", default="data/sample_dicom", type=Path)
    args = parser.parse_args(argv)
    write_sample(args.out_dir)
    return 0


if __name__ == "__main__":
    sys.exit(main())

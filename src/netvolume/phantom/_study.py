"""One time point of a phantom patient: scanner geometry, CT and PET images, and truth.

The CT is the model rasterised on the CT grid with partial-volume edges plus white
Gaussian noise. The PET is the model's uptake (SUV) rasterised on a grid twice as fine as
the PET grid, blurred by the scanner's Gaussian point-spread function, averaged over
2 x 2 x 2 blocks (the 4 mm voxel), given spatially correlated Gaussian noise whose
standard deviation grows with the square root of the local uptake (Poisson-like), and
finally converted to activity concentration (Bq/mL) at the series start time:
``C = SUV * D_inj * exp(-lambda (t_start - t_inj)) / W`` (the body-weight SUV definition,
Thie, J Nucl Med 2004;45:1431, inverted).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
from scipy import ndimage

from netvolume.phantom._anatomy import LesionPlan, PatientModel, krenning_grade
from netvolume.phantom._render import Grid, Pose, paint
from netvolume.phantom._shapes import StarShape

FloatArray = npt.NDArray[np.float64]

#: Ga-68 half-life (s): 67.71 min (DDEP / NNDC, 67.71 +- 0.08 min).
GA68_HALF_LIFE_S = 4062.6
#: Ga-68 positron fraction (beta+ branching, DDEP).
GA68_POSITRON_FRACTION = 0.8891
#: FWHM of a Gaussian = 2 sqrt(2 ln 2) sigma.
FWHM_PER_SIGMA = 2.0 * np.sqrt(2.0 * np.log(2.0))


@dataclass(frozen=True)
class Scanner:
    """Acquisition geometry of one PET/CT scanner (a phantom size has two of them)."""

    name: str
    model: str
    ct_matrix: int
    ct_pixel_mm: float
    ct_slice_mm: float
    ct_slices: int
    pet_matrix: int
    pet_voxel_mm: float
    pet_slices: int
    pet_fwhm_mm: float
    ct_noise_hu: tuple[float, float]

    def ct_grid(self, centre_z_mm: float) -> Grid:
        """CT grid centred on the gantry axis (x = y = 0) and on ``centre_z_mm``."""
        return _grid(
            self.ct_matrix, self.ct_pixel_mm, self.ct_slices, self.ct_slice_mm, centre_z_mm
        )

    def pet_grid(self, centre_z_mm: float) -> Grid:
        """PET grid centred on the gantry axis and on ``centre_z_mm``."""
        return _grid(
            self.pet_matrix, self.pet_voxel_mm, self.pet_slices, self.pet_voxel_mm, centre_z_mm
        )


def _grid(matrix: int, pixel: float, slices: int, thickness: float, centre_z: float) -> Grid:
    xy0 = round(-(matrix - 1) / 2.0 * pixel, 4)
    z0 = round(centre_z - (slices - 1) / 2.0 * thickness, 2)
    return Grid((slices, matrix, matrix), (thickness, pixel, pixel), (xy0, xy0, z0))


#: Scanners per phantom size: time points use the first, or alternate with a scanner change.
SCANNERS: dict[str, tuple[Scanner, Scanner]] = {
    "small": (
        Scanner("A", "netvolume PET/CT A", 120, 3.2, 5.0, 54, 96, 4.0, 68, 6.5, (12.0, 18.0)),
        Scanner("B", "netvolume PET/CT B", 112, 3.4, 4.0, 68, 94, 4.07, 67, 6.8, (10.0, 15.0)),
    ),
    "full": (
        Scanner(
            "A", "netvolume PET/CT A", 512, 0.78125, 1.25, 300, 108, 4.0, 94, 6.5, (12.0, 18.0)
        ),
        Scanner(
            "B", "netvolume PET/CT B", 512, 0.8203125, 2.0, 188, 104, 4.07, 93, 6.8, (10.0, 15.0)
        ),
    ),
}


@dataclass(frozen=True)
class Timing:
    """Clock times of one PET/CT visit (naive local datetimes, as DICOM stores them)."""

    injection: dt.datetime
    ct_start: dt.datetime
    pet_start: dt.datetime
    bed_duration_s: float
    injected_dose_bq: float


def lesion_layers(les: LesionPlan, t: int) -> list[tuple[StarShape, float, float]]:
    """(shape, HU, SUV) layers of a lesion at time point ``t`` (rim, then necrotic core)."""
    shape = les.at(t)
    if shape is None:
        return []
    out: list[tuple[StarShape, float, float]] = [(shape, les.hu, les.suv)]
    core = les.core(t)
    if core is not None:
        out.append((core, les.core_hu, les.suv * les.core_suv_ratio))
    return out


def render_ct(
    model: PatientModel, t: int, grid: Grid, pose: Pose, noise_hu: float, rng: np.random.Generator
) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.uint8], npt.NDArray[np.uint16], dict[int, int]]:
    """CT in HU with truth label maps, and each lesion's voxel count."""
    hu = np.full(grid.shape, np.float32(model.tissues["air"].hu), dtype=np.float32)
    organs = np.zeros(grid.shape, dtype=np.uint8)
    lesions = np.zeros(grid.shape, dtype=np.uint16)
    truth_label = {"liver": 1, "spleen": 2}
    for organ in model.organs:
        if organ.label:
            paint(
                hu,
                organ.shape,
                organ.tissue.hu,
                grid,
                pose,
                labels=organs,
                label=truth_label[organ.label],
            )
        else:
            paint(hu, organ.shape, organ.tissue.hu, grid, pose)
    voxels: dict[int, int] = {}
    for les in model.lesions:
        for n, (shape, value, _suv) in enumerate(lesion_layers(les, t)):
            if n == 0:
                voxels[les.lesion_id] = paint(
                    hu,
                    shape,
                    value,
                    grid,
                    pose,
                    labels=lesions,
                    label=les.lesion_id,
                )
            else:
                paint(hu, shape, value, grid, pose)
    hu += rng.standard_normal(grid.shape, dtype=np.float32) * np.float32(noise_hu)
    return hu, organs, lesions, voxels


def _noise_kernel_norm(sigma_vox: float) -> float:
    """Root of the sum of squared weights of ``ndimage.gaussian_filter`` at ``sigma_vox``."""
    delta = np.zeros((15, 15, 15))
    delta[7, 7, 7] = 1.0
    w = ndimage.gaussian_filter(delta, sigma_vox, mode="constant")
    return float(np.sqrt((w**2).sum()))


def render_pet_suv(
    model: PatientModel, t: int, grid: Grid, pose: Pose, fwhm_mm: float
) -> npt.NDArray[np.float32]:
    """Noise-free PET in SUV on ``grid``: fine-grid uptake, PSF blur, 2x2x2 averaging."""
    fine = grid.refined(2)
    suv = np.zeros(fine.shape, dtype=np.float32)
    for organ in model.organs:
        paint(suv, organ.shape, organ.tissue.suv, fine, pose)
    for les in model.lesions:
        for shape, _hu, value in lesion_layers(les, t):
            paint(suv, shape, value, fine, pose)
    sigma = [fwhm_mm / FWHM_PER_SIGMA / s for s in fine.spacing_mm]
    blurred = ndimage.gaussian_filter(suv, sigma, mode="constant", truncate=3.5)
    k, j, i = grid.shape
    out = blurred.reshape(k, 2, j, 2, i, 2).mean(axis=(1, 3, 5), dtype=np.float64)
    return np.asarray(out, dtype=np.float32)


def add_pet_noise(
    suv: npt.NDArray[np.float32], liver_suv: float, cov: float, rng: np.random.Generator
) -> npt.NDArray[np.float32]:
    """Correlated noise with sd ``cov * sqrt(SUV * liver_suv)`` (``cov`` in the liver)."""
    sigma_vox = 0.6
    white = rng.standard_normal(suv.shape, dtype=np.float32)
    field = ndimage.gaussian_filter(white, sigma_vox, mode="constant", truncate=3.5)
    field /= np.float32(_noise_kernel_norm(sigma_vox))
    sd = np.float32(cov) * np.sqrt(np.maximum(suv, 0.0) * np.float32(liver_suv))
    return np.maximum(suv + sd * field, np.float32(0.0))


def decay_factor(elapsed_s: float, half_life_s: float = GA68_HALF_LIFE_S) -> float:
    """Fraction of activity left after ``elapsed_s``: ``exp(-ln 2 t / T_1/2)``."""
    return float(np.exp(-np.log(2.0) * elapsed_s / half_life_s))


def suv_to_bqml(weight_kg: float, timing: Timing) -> float:
    """Factor from SUVbw to Bq/mL at the PET series start (decay-corrected to it)."""
    elapsed = (timing.pet_start - timing.injection).total_seconds()
    dose_at_start = timing.injected_dose_bq * decay_factor(elapsed)
    return float(f"{dose_at_start / (weight_kg * 1000.0):.12g}")


def lesion_truth(
    les: LesionPlan, t: int, pose: Pose, ct: Grid, model: PatientModel, voxels: int
) -> dict[str, Any]:
    """The truth record of a lesion present at time point ``t``."""
    shape = les.at(t)
    assert shape is not None
    ld, sa, direction = shape.axial_axes_mm()
    centre_lps = pose.to_lps(np.asarray([shape.centre_mm]))[0]
    # the section on the CT slice plane nearest to the largest section
    z = ct.axis_mm(0)
    dz = z - centre_lps[2]
    half_height = shape.half_height_mm()
    k = int(np.argmin(np.abs(dz)))
    ld_k, sa_k, _ = shape.axial_axes_mm(float(dz[k]))
    liver = model.tissues["liver"].suv
    spleen = model.tissues["spleen"].suv
    background = model.tissues[les.background].suv
    grade = krenning_grade(les.suv_max, background, liver, spleen)
    dir_lps = pose.rotation[:2, :2] @ direction
    return {
        "id": les.lesion_id,
        "organ": les.organ,
        "site": les.site,
        "kind": les.kind,
        "nodal": les.nodal,
        "volume_ml": shape.volume_ml(),
        "ld_mm": ld,
        "sa_mm": sa,
        "ld_direction_lps": [float(dir_lps[0]), float(dir_lps[1]), 0.0],
        "centroid_mm": [float(v) for v in centre_lps],
        "semi_axes_mm": list(shape.semi_axes_mm),
        "half_height_mm": half_height,
        "ct_hu": les.hu,
        "necrotic_core_fraction": les.necrosis,
        "suv_max": les.suv_max,
        "suv_mean": les.suv_mean,
        "background_suv": background,
        "tumour_to_liver": les.suv_max / liver,
        "tumour_to_spleen": les.suv_max / spleen,
        "krenning_grade": grade,
        "ct_voxels": voxels,
        "ct_nearest_slice": k,
        "ld_mm_at_ct_slice": ld_k,
        "sa_mm_at_ct_slice": sa_k,
        "split_from": les.split_from,
        "touching": les.touching,
        "subcapsular": les.subcapsular,
    }

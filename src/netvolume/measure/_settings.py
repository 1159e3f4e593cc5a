"""Every threshold of ``netvolume measure``, named, documented and overridable.

The defaults are chosen for portal-venous abdominal CT and Ga-68 DOTA-peptide PET; each is
a field of :class:`MeasureSettings` (Python) and can be overridden from the command line
with ``--set NAME=VALUE``. Values are recorded in every ``study.json``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Literal

from netvolume.errors import NetVolumeError

__all__ = ["MeasureSettings", "SettingsError"]


class SettingsError(NetVolumeError):
    """A measurement setting with an unknown name or an impossible value."""


@dataclass(frozen=True)
class MeasureSettings:
    """Settings of the single-study measurement (units in the names).

    Segmentation (classical, deterministic)
    ---------------------------------------
    coarse_target_mm : size of the blocks averaged into one voxel of the coarse analysis
        grid, on which organs are found and lesions detected (block = round(target /
        spacing) voxels per axis, at least 1).
    body_min_hu : voxels above this are inside the body outline.
    organ_hu_range : CT window of liver / spleen parenchyma on the coarse grid (portal-venous
        phase).
    liver_pet_max_ratio : with PET, a liver voxel's SUV is below this multiple of the liver
        estimate (excludes the spleen and kidneys, whose uptake is 2-4 times the liver's).
    spleen_pet_min_ratio : with PET, a spleen voxel's SUV is at least this multiple of the
        liver's.
    organ_erosion_mm : erosion that cuts thin bridges between touching organs before the
        largest component is taken (then undone by reconstruction).
    min_spleen_ml : smaller spleen candidates are ignored (splenectomy, accessory spleen).
    liver_lesion_min_contrast_hu : a coarse voxel inside the liver whose CT differs from the
        parenchyma by more than this is a lesion candidate.
    liver_lesion_enclosure : a non-fat region next to the liver parenchyma is a liver
        lesion (and part of the liver) when at least this fraction of its outer surface
        touches parenchyma.
    lesion_min_contrast_hu : a PET hot spot is a lesion only when its CT differs from its
        surroundings by at least this (else it is uptake in normal tissue, or noise).
    bone_min_hu : bone on the coarse grid.
    bone_lesion_min_contrast_hu : a voxel inside bone differing from the bone's median
        by more than this is a bone-lesion candidate.
    pet_hotspot_bg_ratio : an extra-hepatic PET hot spot exceeds this multiple of the body's
        soft-tissue background SUV.
    pet_hotspot_min_suv : and this absolute SUV.
    hotspot_split_fraction : hot spots blurred together are split at their saddle when
        each peak rises this fraction of the hot-spot threshold above it.
    hotspot_refine_fraction : a hot spot whose CT region runs on into a larger structure
        (a small-bowel primary in a loop of bowel whose physiological uptake is above the
        hot-spot threshold too) is searched again for hotter spots: its voxels above its
        median SUV plus this fraction of the way to its SUVmax (0.5: the half-maximum
        above the spot's own background).
    pet_lesion_ct_margin_mm : (first, second) distance a PET-detected lesion's CT region
        may reach beyond its hot spot; the second is tried when the region runs on past
        the first (a node with faint uptake is larger than its part above the threshold).
    max_node_ml : a soft-tissue nodule enclosed by fat in a hot spot (next to a hotter
        lesion) is a lymph node up to this volume.
    liver_pet_lesion_ratio : a liver voxel whose SUV exceeds this multiple of the liver
        reference is a PET-detected liver lesion candidate (CT-isoattenuating lesions).
    organ_spill_margin_mm : PET hot spots within this distance of liver, spleen, kidneys
        and bone are not extra-hepatic lesion candidates (spill-out of physiological
        uptake); lesions there are still found by their CT.
    soft_tissue_hu_range : the CT of a PET-detected extra-hepatic lesion lies in this range
        (excludes blood pool and kidneys, 140-180 HU in portal-venous phase).
    blood_pool_min_hu : CT of contrast-enhanced blood and kidney (excluded from hot spots).
    smoothing_sigma_mm : Gaussian denoising of the CT before lesions are delineated; the
        shift it gives a curved lesion boundary (about sigma^2 / R inwards) is undone at
        the boundary (docs/measure.md); 0 switches both off.
    min_lesion_ml : detected components smaller than this are dropped.
    split_min_depth_mm : two lesions touching each other are split when each is at least
        this much thicker (distance-transform depth) than the neck between them.
    pet_contour_fraction : a PET-only lesion is delineated at this fraction of its local
        SUVmax above background (41 % is the EANM convention).

    Measurement
    -----------
    suv_peak_sphere_ml : PERCIST SUVpeak sphere volume.
    liver_reference_diameter_mm, spleen_reference_diameter_mm : reference spheres.
    reference_margin_mm : the sphere keeps this distance from lesions and organ edges.
    reference_denominator : "mean" or "max" of the reference VOI in the T/L and T/S ratios
        and in the Krenning grade.
    background_shell_mm : inner and outer distance of the shell whose median SUV is a
        lesion's local background (Krenning grade 0).
    pet_fwhm_mm : spatial resolution of the PET (or SPECT) image as reconstructed, full
        width at half maximum of its point-spread function. DICOM has no attribute for it
        (ConvolutionKernel is vendor text naming at most the post-filter), so it is a
        setting: 7 mm, of the order of post-filtered clinical whole-body PET/CT
        reconstructions (the phantom's scanners: 6.5 and 6.8 mm); set the value measured
        on your scanner and protocol (for SPECT it is larger, roughly 10-15 mm).
    spill_in_distance_fwhm : spill-in correction (Soret, Bacharach and Buvat, J Nucl Med
        2007;48:932, partial-volume effect and spill-over): a lesion's uptake (SUV and
        Bq/mL statistics, ratios, Krenning grade) is measured over its voxels farther
        than this multiple of ``pet_fwhm_mm`` from hotter tissue: another lesion with a
        higher SUVmax, the spleen when its reference exceeds the lesion's SUVmax, and the
        lesion's own surroundings when the lesion is colder than them (SUVmean below the
        background: a photopenic lesion's rim shows the parenchyma). 1.0: the Gaussian
        edge-spread function leaves 0.5 erfc(2 sqrt(ln 2)) = 0.9 % of a hot region's
        contrast at one FWHM from its edge (12 % at half a FWHM). 0 turns the correction
        off. The lesion is flagged ``spill_in``.
    spill_in_min_pet_voxels : when fewer voxels than this many PET voxels' volume lie that
        far, the lesion is measured over this volume of its voxels farthest from the
        hotter tissue and also flagged ``spill_in_residual`` (1.0: one PET voxel, the
        smallest independent sample of the uptake).
    liver_reference_suv_range : a liver reference SUVmean outside this range is flagged.
    sstr_positive_min_grade : Krenning grade from which a lesion counts as SSTR-positive
        (3: uptake above liver; 2 for ">= liver" criteria).
    recist_min_ld_mm, recist_node_target_sa_mm, recist_node_pathological_sa_mm,
    recist_thick_slice_mm : RECIST 1.1 measurability (10 mm, nodes 15 / 10 mm short axis,
        2 x slice thickness when it exceeds 5 mm).
    connectivity : voxel connectivity of lesion components (6, 18 or 26).
    validated_max_pixel_mm, validated_max_slice_mm : the automatic segmentation is
        validated on CT voxels up to this size; a coarser CT is measured with the study
        flag ``coarse_ct`` and a note.
    """

    coarse_target_mm: float = 3.0
    body_min_hu: float = -400.0
    organ_hu_range: tuple[float, float] = (80.0, 145.0)
    liver_pet_max_ratio: float = 1.8
    spleen_pet_min_ratio: float = 1.8
    organ_erosion_mm: float = 4.0
    min_spleen_ml: float = 30.0
    liver_lesion_min_contrast_hu: float = 20.0
    liver_lesion_enclosure: float = 0.5
    lesion_min_contrast_hu: float = 20.0
    bone_min_hu: float = 300.0
    bone_lesion_min_contrast_hu: float = 200.0
    pet_hotspot_bg_ratio: float = 2.5
    pet_hotspot_min_suv: float = 1.0
    hotspot_split_fraction: float = 0.5
    hotspot_refine_fraction: float = 0.5
    pet_lesion_ct_margin_mm: tuple[float, float] = (5.0, 10.0)
    max_node_ml: float = 60.0
    liver_pet_lesion_ratio: float = 1.5
    organ_spill_margin_mm: float = 8.0
    soft_tissue_hu_range: tuple[float, float] = (-30.0, 130.0)
    blood_pool_min_hu: float = 135.0
    smoothing_sigma_mm: float = 0.6
    min_lesion_ml: float = 0.1
    split_min_depth_mm: float = 3.0
    pet_contour_fraction: float = 0.41
    suv_peak_sphere_ml: float = 1.0
    liver_reference_diameter_mm: float = 30.0
    spleen_reference_diameter_mm: float = 20.0
    reference_margin_mm: float = 5.0
    reference_denominator: Literal["mean", "max"] = "mean"
    background_shell_mm: tuple[float, float] = (6.0, 12.0)
    pet_fwhm_mm: float = 7.0
    spill_in_distance_fwhm: float = 1.0
    spill_in_min_pet_voxels: float = 1.0
    liver_reference_suv_range: tuple[float, float] = (3.0, 15.0)
    sstr_positive_min_grade: int = 3
    recist_min_ld_mm: float = 10.0
    recist_node_target_sa_mm: float = 15.0
    recist_node_pathological_sa_mm: float = 10.0
    recist_thick_slice_mm: float = 5.0
    connectivity: int = 26
    validated_max_pixel_mm: float = 1.0
    validated_max_slice_mm: float = 2.5

    def __post_init__(self) -> None:
        positive = (
            "coarse_target_mm",
            "organ_erosion_mm",
            "liver_lesion_min_contrast_hu",
            "bone_lesion_min_contrast_hu",
            "pet_hotspot_bg_ratio",
            "hotspot_split_fraction",
            "liver_pet_max_ratio",
            "spleen_pet_min_ratio",
            "liver_pet_lesion_ratio",
            "suv_peak_sphere_ml",
            "liver_reference_diameter_mm",
            "spleen_reference_diameter_mm",
            "recist_min_ld_mm",
            "recist_node_target_sa_mm",
            "recist_node_pathological_sa_mm",
            "recist_thick_slice_mm",
            "pet_fwhm_mm",
        )
        for name in positive:
            value = getattr(self, name)
            if not (isinstance(value, int | float) and value > 0):
                raise SettingsError(f"setting {name} = {value!r}; expected a positive number")
        for name in (
            "organ_spill_margin_mm",
            "smoothing_sigma_mm",
            "min_lesion_ml",
            "split_min_depth_mm",
            "reference_margin_mm",
            "min_spleen_ml",
            "pet_hotspot_min_suv",
            "spill_in_distance_fwhm",
            "spill_in_min_pet_voxels",
        ):
            value = getattr(self, name)
            if not (isinstance(value, int | float) and value >= 0):
                raise SettingsError(f"setting {name} = {value!r}; expected a number >= 0")
        for name in (
            "organ_hu_range",
            "soft_tissue_hu_range",
            "background_shell_mm",
            "liver_reference_suv_range",
        ):
            lo, hi = getattr(self, name)
            if not lo < hi:
                raise SettingsError(f"setting {name} = {(lo, hi)!r}; expected low < high")
        first, second = self.pet_lesion_ct_margin_mm
        if not 0.0 < first <= second:
            raise SettingsError(
                f"setting pet_lesion_ct_margin_mm = {(first, second)!r}; expected "
                "0 < first <= second"
            )
        if not 0.0 < self.hotspot_refine_fraction < 1.0:
            raise SettingsError(
                f"setting hotspot_refine_fraction = {self.hotspot_refine_fraction!r}; expected 0-1"
            )
        if not 0.0 < self.pet_contour_fraction < 1.0:
            raise SettingsError(
                f"setting pet_contour_fraction = {self.pet_contour_fraction!r}; expected 0-1"
            )
        if self.reference_denominator not in ("mean", "max"):
            raise SettingsError(
                f"setting reference_denominator = {self.reference_denominator!r}; "
                "expected 'mean' or 'max'"
            )
        if self.sstr_positive_min_grade not in (1, 2, 3, 4):
            raise SettingsError(
                f"setting sstr_positive_min_grade = {self.sstr_positive_min_grade!r}; "
                "expected a Krenning grade 1-4"
            )
        if self.connectivity not in (6, 18, 26):
            raise SettingsError(
                f"setting connectivity = {self.connectivity!r}; expected 6, 18 or 26"
            )

    def to_dict(self) -> dict[str, Any]:
        """The settings as JSON-serialisable values."""
        return {
            k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(self).items()
        }

    def with_overrides(self, pairs: list[str] | dict[str, str]) -> MeasureSettings:
        """A copy with ``NAME=VALUE`` overrides (command line ``--set``).

        Tuples are written ``LOW,HIGH``; the value is converted to the field's type.

        Raises
        ------
        SettingsError
            On an unknown name or a value that does not convert.
        """
        items = list(pairs.items()) if isinstance(pairs, dict) else [_split_pair(p) for p in pairs]
        current = self.to_dict()
        changes: dict[str, Any] = {}
        for name, text in items:
            if name not in current:
                known = ", ".join(sorted(current))
                raise SettingsError(
                    f"unknown measurement setting {name!r}",
                    hint=f"known settings: {known}",
                )
            old = current[name]
            try:
                if isinstance(old, list):
                    parts = [float(p) for p in str(text).split(",")]
                    if len(parts) != 2:
                        raise ValueError("expected two comma-separated numbers")
                    changes[name] = (parts[0], parts[1])
                elif isinstance(old, int):
                    changes[name] = int(text)
                elif isinstance(old, float):
                    changes[name] = float(text)
                else:
                    changes[name] = str(text)
            except ValueError as exc:
                raise SettingsError(
                    f"setting {name}={text!r}: {exc}",
                    hint=f"the current value is {old!r}",
                ) from None
        return dataclasses.replace(self, **changes)


def _split_pair(pair: str) -> tuple[str, str]:
    name, sep, value = pair.partition("=")
    if not sep or not name.strip():
        raise SettingsError(f"--set {pair!r}: expected NAME=VALUE")
    return name.strip(), value.strip()

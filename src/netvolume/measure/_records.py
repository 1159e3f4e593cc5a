"""The records ``measure_study`` returns: one per lesion, one per reference VOI, one per
study. Plain frozen dataclasses (numbers and strings); the masks ride along on the study
record but are left out of :meth:`StudyMeasurement.to_dict`.

Coordinates are LPS millimetres (DICOM patient coordinates); ``None`` means "not
available" (no PET, no reference), never a silent default.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from netvolume.io.dicom import Series
from netvolume.volume import Volume

if TYPE_CHECKING:
    from netvolume.measure._inputs import StudyInputs

__all__ = ["LESION_COLUMNS", "LesionRecord", "ReferenceVOI", "StudyMeasurement"]

Point = tuple[float, float, float]

#: Organ categories of a lesion.
ORGANS = ("liver", "lymph_node", "bone", "other")


@dataclass(frozen=True)
class LesionRecord:
    """One lesion of one study.

    Attributes
    ----------
    lesion_id : int
        Its value in ``masks/lesions.nii.gz`` (1..N, ordered by organ then volume).
    name : str
        ``"L<id>"``, or the structure name of an imported mask.
    organ : str
        ``liver``, ``lymph_node``, ``bone`` or ``other``.
    nodal : bool
        A lymph node (RECIST: measured by its short axis).
    detected_by : str
        ``ct``, ``pet``, ``ct+pet`` (found on CT, confirmed by uptake) or ``imported``.
    volume_ml, voxels
        Mask volume (voxel count times voxel volume) and voxel count.
    ld_mm, sa_mm
        RECIST long axis and the perpendicular short axis in the axial slice where the long
        axis is longest, pixel corner to corner (DOMAIN.md section 10).
    slice_index : int
        Index of that slice in the CT series (0 = first slice along the slice normal).
    ld_endpoints_mm, sa_endpoints_mm
        The two end points of each axis, LPS mm.
    centroid_mm
        Centre of mass of the mask, LPS mm.
    measurable : bool
        RECIST 1.1 measurable at baseline: non-nodal LD >= 10 mm (2 x slice thickness
        when that exceeds 5 mm), nodes SA >= 15 mm.
    recist_category : str
        ``measurable``, ``non_measurable`` (LD below the limit; node SA 10-15 mm) or
        ``normal_node`` (SA < 10 mm).
    ct_mean_hu, ct_sd_hu
        CT attenuation in the mask (None for a study without CT).
    suv_max, suv_mean, suv_peak
        Body-weight SUV (PET resampled onto the measurement grid; SUVpeak: PERCIST 1 mL
        sphere). With the QC flag ``spill_in``, these and the fields up to
        ``sstr_positive`` are measured on the lesion's voxels away from hotter tissue.
    activity_max_bqml, activity_mean_bqml
        The same voxels in Bq/mL (decay-corrected as stored).
    background_suv
        Median SUV in a shell around the lesion (liver lesions: the liver reference).
    tumour_to_liver, tumour_to_spleen
        SUVmax over the reference VOI's SUVmean (or max, a setting).
    krenning_grade : int or None
        0-4 (DOMAIN.md section 10); None without PET or without the needed reference.
    sstr_positive : bool or None
        Krenning grade >= the ``sstr_positive_min_grade`` setting.
    qc_flags : tuple of str
        ``touches_border``, ``smaller_than_two_pet_voxels``, ``outside_pet_fov`` (partly),
        ``liver_reference_out_of_range``, ``no_spleen_reference`` (grade above 2 not
        available), ``no_local_background`` (no PET voxel in the background shell: no
        grade), ``spill_in`` (part of the lesion lies within ``spill_in_distance_fwhm`` x
        ``pet_fwhm_mm`` of hotter tissue, whose spill-in would raise its uptake: its
        uptake is measured on the rest), ``spill_in_residual`` (no PET voxel of it lies
        that far: measured on its voxels farthest from the hotter tissue).
    """

    lesion_id: int
    name: str
    organ: str
    nodal: bool
    detected_by: str
    volume_ml: float
    voxels: int
    ld_mm: float
    sa_mm: float
    slice_index: int
    ld_endpoints_mm: tuple[Point, Point]
    sa_endpoints_mm: tuple[Point, Point]
    centroid_mm: Point
    measurable: bool
    recist_category: str
    ct_mean_hu: float | None = None
    ct_sd_hu: float | None = None
    suv_max: float | None = None
    suv_mean: float | None = None
    suv_peak: float | None = None
    activity_max_bqml: float | None = None
    activity_mean_bqml: float | None = None
    background_suv: float | None = None
    tumour_to_liver: float | None = None
    tumour_to_spleen: float | None = None
    krenning_grade: int | None = None
    sstr_positive: bool | None = None
    qc_flags: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable record (tuples as lists)."""
        d = dataclasses.asdict(self)
        d["ld_endpoints_mm"] = [list(p) for p in self.ld_endpoints_mm]
        d["sa_endpoints_mm"] = [list(p) for p in self.sa_endpoints_mm]
        d["centroid_mm"] = list(self.centroid_mm)
        d["qc_flags"] = list(self.qc_flags)
        return d

    def to_row(self) -> dict[str, Any]:
        """One row of ``lesions.csv``: the columns of :data:`LESION_COLUMNS`."""
        (l1, l2), (s1, s2) = self.ld_endpoints_mm, self.sa_endpoints_mm
        row: dict[str, Any] = {
            "lesion_id": self.lesion_id,
            "name": self.name,
            "organ": self.organ,
            "nodal": self.nodal,
            "detected_by": self.detected_by,
            "volume_ml": self.volume_ml,
            "voxels": self.voxels,
            "ld_mm": self.ld_mm,
            "sa_mm": self.sa_mm,
            "slice_index": self.slice_index,
            "centroid_x_mm": self.centroid_mm[0],
            "centroid_y_mm": self.centroid_mm[1],
            "centroid_z_mm": self.centroid_mm[2],
        }
        for tag, (p, q) in (("ld", (l1, l2)), ("sa", (s1, s2))):
            for k, axis in enumerate("xyz"):
                row[f"{tag}_start_{axis}_mm"] = p[k]
            for k, axis in enumerate("xyz"):
                row[f"{tag}_end_{axis}_mm"] = q[k]
        row.update(
            measurable=self.measurable,
            recist_category=self.recist_category,
            ct_mean_hu=self.ct_mean_hu,
            ct_sd_hu=self.ct_sd_hu,
            suv_max=self.suv_max,
            suv_mean=self.suv_mean,
            suv_peak=self.suv_peak,
            activity_max_bqml=self.activity_max_bqml,
            activity_mean_bqml=self.activity_mean_bqml,
            background_suv=self.background_suv,
            tumour_to_liver=self.tumour_to_liver,
            tumour_to_spleen=self.tumour_to_spleen,
            krenning_grade=self.krenning_grade,
            sstr_positive=self.sstr_positive,
            qc_flags=";".join(self.qc_flags),
        )
        return row


#: Column order of ``lesions.csv`` (a contract: documented in the README).
LESION_COLUMNS: tuple[str, ...] = (
    "lesion_id", "name", "organ", "nodal", "detected_by", "volume_ml", "voxels",
    "ld_mm", "sa_mm", "slice_index",
    "centroid_x_mm", "centroid_y_mm", "centroid_z_mm",
    "ld_start_x_mm", "ld_start_y_mm", "ld_start_z_mm",
    "ld_end_x_mm", "ld_end_y_mm", "ld_end_z_mm",
    "sa_start_x_mm", "sa_start_y_mm", "sa_start_z_mm",
    "sa_end_x_mm", "sa_end_y_mm", "sa_end_z_mm",
    "measurable", "recist_category", "ct_mean_hu", "ct_sd_hu",
    "suv_max", "suv_mean", "suv_peak", "activity_max_bqml", "activity_mean_bqml",
    "background_suv", "tumour_to_liver", "tumour_to_spleen", "krenning_grade",
    "sstr_positive", "qc_flags",
)  # fmt: skip


@dataclass(frozen=True)
class ReferenceVOI:
    """A reference region of normal tissue (PERCIST-style sphere, or its fallback).

    Attributes
    ----------
    organ : str
        ``liver`` or ``spleen``.
    method : str
        ``sphere`` (centred where the organ, lesions excluded, is deepest), or
        ``eroded_mask`` (the organ eroded, lesions and their 10 mm surroundings excluded)
        when no sphere fits.
    centre_mm : (x, y, z) or None
        Sphere centre, LPS mm.
    radius_mm : float or None
    voxels, volume_ml
        Size of the VOI on the measurement grid.
    suv_mean, suv_sd, suv_max
        SUV statistics in the VOI.
    activity_mean_bqml
        Mean activity concentration.
    """

    organ: str
    method: str
    centre_mm: Point | None
    radius_mm: float | None
    voxels: int
    volume_ml: float
    suv_mean: float | None
    suv_sd: float | None
    suv_max: float | None
    activity_mean_bqml: float | None

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable record."""
        d = dataclasses.asdict(self)
        d["centre_mm"] = list(self.centre_mm) if self.centre_mm is not None else None
        return d


@dataclass(frozen=True)
class StudyMeasurement:
    """Everything ``netvolume measure`` found in one study.

    Attributes
    ----------
    study_dir : str
    study_instance_uid, frame_of_reference_uid : str
    ct_series_uid : str or None
        The anatomical series measured on (None when lesions were measured on the PET /
        SPECT grid of a study without CT).
    pet_series_uid : str or None
    grid : dict
        ``shape``, ``spacing_mm`` (slice, row, column), ``affine`` (index -> LPS) and
        ``slice_thickness_mm`` of the measurement grid.
    lesions : tuple of LesionRecord
    liver_volume_ml, spleen_volume_ml : float or None
        Whole organ, lesions inside included; None when the organ was not segmented.
    liver_tumour_volume_ml : float or None
    liver_tumour_burden_pct : float or None
        Liver tumour volume / liver volume x 100.
    n_liver_lesions : int
    references : dict of str -> ReferenceVOI
    extrahepatic_disease : bool
        Any lesion outside the liver.
    sstr_positive_fraction : float or None
        SSTR-positive lesions / graded lesions.
    sstr_positive_volume_ml : float or None
    sources : dict of str -> str
        Where each mask came from: ``automatic`` or ``imported: <file>``.
    settings : dict
    provenance : dict
        Package version, input series UIDs and file-list hashes, the time.
    notes : tuple of str
        Warnings and decisions worth reading (series chosen, degraded results).
    study_date : str or None
        Acquisition date of the measured series (ISO ``YYYY-MM-DD``): the time point's
        date for ``netvolume assess``.
    qc_flags : tuple of str
        Study-level flags: ``no_pet``, ``coarse_ct``, ``liver_reference_out_of_range``,
        ``no_liver_reference``, ``no_spleen_reference``.
    liver_mask, spleen_mask, lesion_labels : Volume or None
        The masks on the measurement grid (not serialised).
    reference_series : Series or None
        The image series of the measurement grid, which DICOM SEG output references (not
        serialised).
    inputs : StudyInputs or None
        The loaded images (CT, PET in Bq/mL and SUV on its own grid, the PET-to-CT
        transform), kept for pictures of the measurement such as the batch report's key
        images (not serialised; ``StudyInputs.pet_on`` resamples the PET onto any part of
        the grid).
    """

    study_dir: str
    study_instance_uid: str
    frame_of_reference_uid: str
    ct_series_uid: str | None
    pet_series_uid: str | None
    grid: dict[str, Any]
    lesions: tuple[LesionRecord, ...]
    liver_volume_ml: float | None
    spleen_volume_ml: float | None
    liver_tumour_volume_ml: float | None
    liver_tumour_burden_pct: float | None
    n_liver_lesions: int
    references: dict[str, ReferenceVOI]
    extrahepatic_disease: bool
    sstr_positive_fraction: float | None
    sstr_positive_volume_ml: float | None
    sources: dict[str, str]
    settings: dict[str, Any]
    provenance: dict[str, Any]
    notes: tuple[str, ...] = ()
    qc_flags: tuple[str, ...] = ()
    study_date: str | None = None
    liver_mask: Volume | None = field(default=None, repr=False, compare=False)
    spleen_mask: Volume | None = field(default=None, repr=False, compare=False)
    lesion_labels: Volume | None = field(default=None, repr=False, compare=False)
    reference_series: Series | None = field(default=None, repr=False, compare=False)
    inputs: StudyInputs | None = field(default=None, repr=False, compare=False)

    def to_dict(self) -> dict[str, Any]:
        """The study facts (``study.json``), masks left out."""
        out: dict[str, Any] = {}
        for f in dataclasses.fields(self):
            if f.name in (
                "liver_mask",
                "spleen_mask",
                "lesion_labels",
                "reference_series",
                "inputs",
            ):
                continue
            value = getattr(self, f.name)
            if f.name == "lesions":
                value = [les.to_dict() for les in value]
            elif f.name == "references":
                value = {k: v.to_dict() for k, v in value.items()}
            elif isinstance(value, tuple):
                value = list(value)
            out[f.name] = value
        return out

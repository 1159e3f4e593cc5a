"""``measure_study``: one study in, every lesion measured.

Order of work: load and check the series (:mod:`netvolume.measure._inputs`), import the
masks given, segment what was not imported (:mod:`netvolume.measure._segment`), number the
lesions (organ, then volume), measure each (kernels: :func:`~netvolume.kernels.
lesion_table`, :func:`~netvolume.kernels.suv_peak`), place the reference VOIs, grade the
uptake, and sum up the study.
"""

from __future__ import annotations

import hashlib
import math
import time
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import scipy.ndimage as ndi

from netvolume._version import __version__
from netvolume.errors import InputPathError, NetVolumeError
from netvolume.io import masks as mask_io
from netvolume.io.dicom import Series
from netvolume.kernels import (
    axial_diameters,
    bbox,
    dilate_ball,
    erode_ball,
    region_stats,
    suv_peak,
)
from netvolume.measure._inputs import StudyInputs, load_study
from netvolume.measure._pool import submit, worker_pool
from netvolume.measure._records import ORGANS, LesionRecord, ReferenceVOI, StudyMeasurement
from netvolume.measure._segment import SegmentationError, block_mean, segment
from netvolume.measure._settings import MeasureSettings
from netvolume.measure._spill import hotter_tissue, spill_in_free
from netvolume.volume import Volume

__all__ = ["krenning_grade", "measure_study"]


def krenning_grade(
    suv_max: float, background: float, liver: float, spleen: float | None
) -> int | None:
    """Krenning grade from PET (DOMAIN.md section 10).

    0: no uptake above the local background; 1: below half the liver; 2: up to the liver;
    3: above the liver, up to the spleen; 4: above the spleen. Krenning et al., Ann N Y
    Acad Sci 733 (1994) 416-424, adapted to PET with reference VOIs (Hope et al., JNM
    60 (2019) suppl. 1, 1535). None when the grade needs a spleen reference that is absent.
    """
    if suv_max <= background:
        return 0
    if suv_max < 0.5 * liver:
        return 1
    if suv_max <= liver:
        return 2
    if spleen is None:
        return None
    return 3 if suv_max <= spleen else 4


def _series_hash(series: Series | None) -> str | None:
    if series is None:
        return None
    h = hashlib.sha256()
    for im in sorted(series.images, key=lambda i: (i.sop_instance_uid, i.frame)):
        h.update(f"{im.sop_instance_uid}#{im.frame}\n".encode())
    return h.hexdigest()


def _read_label(
    path: str | Path, grid: Volume, what: str, roi: Sequence[str] | None = None
) -> Volume:
    try:
        return mask_io.read(path, grid, roi=list(roi) if roi else None)
    except NetVolumeError as exc:
        raise type(exc)(
            f"{what} {path}: {exc.message}", files=exc.files, tag=exc.tag, hint=exc.hint
        ) from None


def _organ_of_name(name: str, centroid_in_liver: bool) -> str:
    structure = mask_io.infer_structure(name)
    if structure == "liver_lesion":
        return "liver"
    if structure == "bone_lesion":
        return "bone"
    if structure in ("lymph_node_lesion", "lymph_node"):
        return "lymph_node"
    return "liver" if centroid_in_liver else "other"


def _organ_from_ct(
    labels: np.ndarray, k: int, bbox: np.ndarray, ct: Volume, s: MeasureSettings
) -> str:
    """Organ of an unnamed imported lesion outside the liver, from the CT around it: in or
    of bone (``bone_min_hu``) -> bone; surrounded by fat (median of a 2-4 mm shell below
    ``soft_tissue_hu_range``) -> lymph node; else other. ``bbox``: the label's
    :attr:`~netvolume.kernels.RegionStats.bbox` row."""
    sl = tuple(slice(int(bbox[a]), int(bbox[a + 3])) for a in range(3))
    m = [int(np.ceil(5.0 / v)) for v in ct.spacing]
    box = tuple(
        slice(max(0, a.start - mm), min(n, a.stop + mm))
        for a, mm, n in zip(sl, m, labels.shape, strict=True)
    )
    les = labels[box] == k
    hu = np.asarray(ct.array[box], dtype=np.float32)
    shell = dilate_ball(les, 4.0, ct.spacing) & ~dilate_ball(les, 2.0, ct.spacing)
    inner, around = float(np.median(hu[les])), float(np.median(hu[shell]))
    if inner >= s.bone_min_hu or around >= s.bone_min_hu:
        return "bone"
    if around < s.soft_tissue_hu_range[0]:
        return "lymph_node"
    return "other"


def _sphere_voxels(
    grid: Volume, centre_lps: np.ndarray, radius_mm: float
) -> tuple[tuple[slice, slice, slice], np.ndarray]:
    """Crop box and mask (voxel centres within ``radius_mm``) of a sphere on ``grid``."""
    c = grid.lps_to_index(centre_lps)
    sp = np.asarray(grid.spacing)
    r = radius_mm / sp
    lo = np.maximum(np.floor(c - r).astype(int), 0)
    hi = np.minimum(np.ceil(c + r).astype(int) + 1, grid.spatial_shape)
    box = tuple(slice(int(a), int(b)) for a, b in zip(lo, hi, strict=True))
    g = np.ogrid[box[0], box[1], box[2]]
    d2 = sum(((gg - cc) * ss) ** 2 for gg, cc, ss in zip(g, c, sp, strict=True))
    return box, np.asarray(d2 <= radius_mm**2 + 1e-9)  # type: ignore[return-value]


@dataclass(frozen=True)
class _PetCrop:
    """One lesion's crop of the measurement grid with the PET on it (Bq/mL, SUV)."""

    box: tuple[slice, slice, slice]
    spacing: tuple[float, float, float]
    labels: np.ndarray
    lesion: np.ndarray
    bqml: np.ndarray
    suv: np.ndarray | None
    max_bqml: float | None  # None: no voxel of the lesion inside the PET field of view
    mean_bqml: float | None

    @classmethod
    def of(
        cls, box: tuple[slice, slice, slice], labels: np.ndarray, k: int, m: _Measurer
    ) -> _PetCrop:
        lab = labels[box]
        les = lab == k
        bq = m.pet(box, "bqml")
        assert bq is not None
        inside = bq[les]
        inside = inside[np.isfinite(inside)]
        return cls(
            box=box,
            spacing=m.grid.spacing,
            labels=lab,
            lesion=les,
            bqml=bq,
            suv=m.pet(box, "suv"),
            max_bqml=float(inside.max()) if inside.size else None,
            mean_bqml=float(inside.mean()) if inside.size else None,
        )


class _Measurer:
    def __init__(self, inp: StudyInputs, grid: Volume, s: MeasureSettings) -> None:
        self.inp = inp
        self.grid = grid
        self.s = s
        self.notes: list[str] = []
        self.on_pet_grid = inp.ct is None

    def pet(self, box: tuple[slice, slice, slice], quantity: str) -> np.ndarray | None:
        if self.on_pet_grid:
            src = self.inp.pet_suv if quantity == "suv" else self.inp.pet_bqml
            return None if src is None else np.asarray(src.array[box], dtype=np.float32)
        vol = self.inp.pet_on(self.grid.crop(box), quantity=quantity)  # type: ignore[arg-type]
        return None if vol is None else np.asarray(vol.array, dtype=np.float32)

    def reference(
        self,
        organ: str,
        mask: np.ndarray,
        lesions: np.ndarray,
        diameter_mm: float,
        notes: list[str],
    ) -> ReferenceVOI | None:
        """A sphere of ``diameter_mm`` where ``mask`` minus lesions is deepest (right half
        of the organ preferred), else the organ eroded minus lesions dilated by 10 mm.
        What to tell the user goes to ``notes`` (one list per call: calls may run on
        several threads)."""
        if self.inp.pet_bqml is None or not mask.any():
            return None
        s, grid = self.s, self.grid
        radius = diameter_mm / 2.0
        block = tuple(max(1, round(3.0 / v)) for v in grid.spacing)
        csp: tuple[float, float, float] = tuple(  # type: ignore[assignment]
            v * b for v, b in zip(grid.spacing, block, strict=True)
        )
        # work on the organ's blocks, grown by the lesion margin and one block more (every
        # block there is outside the organ, so not free, and the result is the whole
        # grid's); c0 is the crop's first coarse index
        mbox = bbox(mask)
        assert mbox is not None
        grow = [1 + math.ceil(s.reference_margin_mm / c) for c in csp]
        n_blocks = [n // b for n, b in zip(grid.spatial_shape, block, strict=True)]
        c0 = np.array(
            [max(0, sl.start // b - g) for sl, b, g in zip(mbox, block, grow, strict=True)]
        )
        c1 = [
            min(nb, -(-sl.stop // b) + g)
            for sl, b, g, nb in zip(mbox, block, grow, n_blocks, strict=True)
        ]
        fbox = tuple(slice(a * b, e * b) for a, e, b in zip(c0, c1, block, strict=True))
        normal = (mask[fbox] > 0) & (lesions[fbox] == 0)
        frac = block_mean(normal.astype(np.uint8), block)  # type: ignore[arg-type]
        lesc = block_mean((lesions[fbox] > 0).astype(np.uint8), block) > 0  # type: ignore[arg-type]
        free = (frac >= 0.99) & ~dilate_ball(lesc, s.reference_margin_mm, csp)
        depth = np.asarray(ndi.distance_transform_edt(free, sampling=csp))
        need = radius + s.reference_margin_mm
        ok = depth >= need
        method = "sphere"
        if ok.any():
            idx = np.argwhere(ok).astype(np.float64)
            depth_at = depth[tuple(idx.astype(int).T)]
            idx += c0
            centres = grid.index_to_lps(idx * np.asarray(block) + (np.asarray(block) - 1) / 2.0)
            if organ == "liver":
                # the right lobe: the patient's right is -x in LPS
                right = centres[:, 0] <= float(np.median(centres[:, 0]))
                if right.any():
                    centres, depth_at = centres[right], depth_at[right]
            best = int(np.argmax(depth_at))  # first deepest in raster order: deterministic
            centre = centres[best]
            box, sphere = _sphere_voxels(grid, centre, radius)
            voi = sphere & (mask[box] > 0) & (lesions[box] == 0)
            centre_out: tuple[float, float, float] | None = tuple(float(v) for v in centre)  # type: ignore[assignment]
            radius_out: float | None = radius
        else:
            method = "eroded_mask"
            normal_all = (mask > 0) & (lesions == 0)
            full = erode_ball(normal_all, s.reference_margin_mm, grid.spacing) & ~dilate_ball(
                lesions > 0, 10.0, grid.spacing
            )
            if not full.any():
                notes.append(f"no {organ} reference VOI: no normal {organ} parenchyma left")
                return None
            box = tuple(slice(int(a.min()), int(a.max()) + 1) for a in np.nonzero(full))  # type: ignore[assignment]
            voi = full[box]
            centre_out, radius_out = None, None
            notes.append(
                f"{organ} reference: no {diameter_mm:.0f} mm sphere fits in normal "
                f"parenchyma; the eroded {organ} without lesions is used"
            )
        suv = self.pet(box, "suv")
        bq = self.pet(box, "bqml")
        assert bq is not None
        bq_vals = bq[voi]
        bq_vals = bq_vals[np.isfinite(bq_vals)]
        if bq_vals.size == 0:
            notes.append(f"the {organ} reference VOI lies outside the PET field of view")
            return None
        suv_vals = None
        if suv is not None:
            suv_vals = suv[voi]
            suv_vals = suv_vals[np.isfinite(suv_vals)]
        return ReferenceVOI(
            organ=organ,
            method=method,
            centre_mm=centre_out,
            radius_mm=radius_out,
            voxels=int(voi.sum()),
            volume_ml=float(voi.sum() * grid.voxel_volume_ml),
            suv_mean=float(suv_vals.mean()) if suv_vals is not None else None,
            suv_sd=float(suv_vals.std()) if suv_vals is not None else None,
            suv_max=float(suv_vals.max()) if suv_vals is not None else None,
            activity_mean_bqml=float(bq_vals.mean()),
        )


def _away_from_hotter(
    crops: Sequence[_PetCrop],
    k: int,
    background_bqml: float | None,
    spleen: np.ndarray | None,
    spleen_ref: ReferenceVOI | None,
    names: Sequence[str],
    s: MeasureSettings,
    pet_voxel_in_voxels: float,
) -> tuple[np.ndarray, list[str], list[str]]:
    """Voxels of lesion ``k`` to measure its uptake on, its spill-in QC flags and notes.

    The lesion's voxels farther than ``spill_in_distance_fwhm`` x ``pet_fwhm_mm`` from
    hotter tissue (:func:`~netvolume.measure._spill.hotter_tissue`: hotter lesions, the
    spleen, its own surroundings when it is colder than them); the whole lesion when
    none lies that close.
    """
    c = crops[k - 1]
    les = c.lesion
    spill_mm = s.spill_in_distance_fwhm * s.pet_fwhm_mm
    organs: dict[str, tuple[np.ndarray, float]] = {}
    if spleen is not None and spleen_ref is not None and spleen_ref.activity_mean_bqml is not None:
        organs["the spleen"] = (spleen[c.box], spleen_ref.activity_mean_bqml)
    present = [int(j) for j in np.unique(c.labels) if j]
    hot = hotter_tissue(
        c.labels,
        k,
        {j: crops[j - 1].max_bqml for j in present},
        c.mean_bqml,
        background_bqml,
        names,
        organs,
    )
    if not hot or spill_mm <= 0:
        return les, [], []
    near = dilate_ball(les, spill_mm, c.spacing)
    reach = [name for name, mask in hot.items() if (mask & near).any()]
    if not reach:
        return les, [], []
    hotter = np.logical_or.reduce([hot[name] for name in reach])
    min_voxels = math.ceil(s.spill_in_min_pet_voxels * pet_voxel_in_voxels)
    use, residual = spill_in_free(les, hotter, c.spacing, spill_mm, min_voxels)
    dist = f"{spill_mm:.1f} mm ({s.spill_in_distance_fwhm:g} x pet_fwhm_mm)"
    what = ", ".join(reach)
    kept = 100.0 * float(use.sum()) / float(les.sum())
    if not residual:
        note = (
            f"{names[k - 1]}: {_pct(100.0 - kept)} of its voxels lie within {dist} of "
            f"{what}; its uptake is measured on the other {_pct(kept)} (spill_in)"
        )
        return use, ["spill_in"], [note]
    note = (
        f"{names[k - 1]}: less than {s.spill_in_min_pet_voxels:g} PET voxel(s) of it lie "
        f"farther than {dist} from {what}; its uptake is measured on the {_pct(kept)} of "
        "its voxels farthest from them and may still be raised by spill-in (spill_in, "
        "spill_in_residual)"
    )
    return use, ["spill_in", "spill_in_residual"], [note]


def _pct(value: float) -> str:
    """A share in whole percent, ``< 1 %`` or ``> 99 %`` rather than a rounded 0 or 100."""
    if 0.0 < value < 0.5:
        return "< 1 %"
    if 99.5 <= value < 100.0:
        return "> 99 %"
    return f"{value:.0f} %"


def measure_study(
    path: str | Path,
    *,
    settings: MeasureSettings | None = None,
    ct_series: str | None = None,
    pet_series: str | None = None,
    liver_mask: str | Path | None = None,
    spleen_mask: str | Path | None = None,
    lesion_mask: str | Path | None = None,
    lesion_roi: Sequence[str] | None = None,
    totalseg: str | Path | None = None,
    register: bool = False,
) -> StudyMeasurement:
    """Measure one study: organs, lesions, uptake, Krenning grade, study summary.

    Parameters
    ----------
    path : str or Path
        One patient's study at one time point: a folder with its CT (or MR) and,
        optionally, its Ga-68 PET (same frame of reference, or ``register=True``).
    settings : MeasureSettings, optional
        Every threshold (see :class:`MeasureSettings`).
    ct_series, pet_series : str, optional
        Series overrides (SeriesInstanceUID or stack id).
    liver_mask, spleen_mask : path, optional
        Imported organ masks (NIfTI, NRRD, SEG, RTSTRUCT, label folder) on the CT; they
        replace the automatic stages.
    lesion_mask : path, optional
        Imported lesions: a label map (each value a lesion; a binary mask is split into
        connected components) or a SEG / RTSTRUCT (each structure a lesion). With it, no
        automatic lesion detection runs; a study without CT is then measured on the PET
        grid.
    lesion_roi : sequence of str, optional
        Only these structures of ``lesion_mask``.
    totalseg : path, optional
        A TotalSegmentator output folder: its ``liver`` and ``spleen`` masks are imported
        (unless ``liver_mask`` / ``spleen_mask`` are given).
    register : bool
        Register the PET to the CT when their frames of reference differ.

    Returns
    -------
    StudyMeasurement

    Raises
    ------
    netvolume.errors.NetVolumeError
        Bad input: no CT (without ``lesion_mask``), PET of another patient or frame,
        masks on another grid, a stage that found nothing (with what to do).
    """
    t0 = time.perf_counter()
    s = settings if settings is not None else MeasureSettings()
    root = Path(path)
    if not root.exists():
        raise InputPathError(f"study folder {root} does not exist", files=[root])
    inp = load_study(
        root,
        ct_series=ct_series,
        pet_series=pet_series,
        register=register,
        require_ct=lesion_mask is None,
    )
    notes = list(inp.notes)
    sources: dict[str, str] = {}
    if inp.ct is not None:
        grid = inp.ct
        reference_series = inp.ct_series
    else:
        assert inp.pet_bqml is not None
        grid = inp.pet_bqml
        reference_series = inp.pet_series
        notes.append("no CT: the imported lesions are measured on the PET/SPECT grid")
    if totalseg is not None:
        ts = Path(totalseg)
        if not ts.is_dir():
            raise InputPathError(f"--totalseg {ts} is not a folder", files=[ts])
        for organ in ("liver", "spleen"):
            f = ts / f"{organ}.nii.gz"
            if not f.exists():
                raise InputPathError(
                    f"TotalSegmentator folder {ts} has no {organ}.nii.gz",
                    files=[ts],
                    hint="run TotalSegmentator with its default task, or pass the mask itself",
                )
        liver_mask = liver_mask if liver_mask is not None else ts / "liver.nii.gz"
        spleen_mask = spleen_mask if spleen_mask is not None else ts / "spleen.nii.gz"

    def organ_mask(src: str | Path | None, name: str) -> np.ndarray | None:
        if src is None:
            return None
        vol = _read_label(src, grid, f"{name} mask")
        m = np.asarray(vol.array) > 0
        if not m.any():
            raise NetVolumeError(
                f"{name} mask {src} is empty on the image grid",
                files=[Path(src)],
                hint="check that the mask belongs to this study",
            )
        sources[name] = f"imported: {src}"
        return m

    liver = organ_mask(liver_mask, "liver")
    spleen = organ_mask(spleen_mask, "spleen")
    imported_labels: np.ndarray | None = None
    imported_names: dict[int, str] = {}
    if lesion_mask is not None:
        vol = _read_label(lesion_mask, grid, "lesion mask", lesion_roi)
        arr = np.asarray(vol.array)
        if arr.size and int(arr.max()) > 1:
            # a label map: each value is one lesion
            imported_labels = arr.astype(np.uint16)
            imported_names = {
                int(v): vol.label_names.get(int(v), f"lesion {int(v)}")
                for v in np.unique(arr)
                if v > 0
            }
        else:
            # one binary mask: each connected component is one lesion
            lab, n_cc = ndi.label(arr > 0, structure=np.ones((3, 3, 3)))
            imported_labels = lab.astype(np.uint16)
            base = next(iter(vol.label_names.values()), "lesion")
            imported_names = {k: f"{base} {k}" if n_cc > 1 else base for k in range(1, n_cc + 1)}
        sources["lesions"] = f"imported: {lesion_mask}"

    is_ct = inp.ct is not None and (inp.ct_series is not None and inp.ct_series.modality == "CT")
    seg_est: dict[str, float] = {}
    organs: list[str] = []
    detected: list[str] = []
    sampler = None
    if inp.pet_suv is not None and inp.ct is not None:

        def sampler(ref: Volume) -> np.ndarray:
            vol = inp.pet_on(ref, quantity="suv")
            assert vol is not None
            return np.asarray(vol.array)

    t_seg = time.perf_counter()
    if inp.ct is not None and (liver is None or spleen is None or imported_labels is None):
        if not is_ct:
            raise SegmentationError(
                "automatic segmentation needs a CT in HU; this study's anatomical series is "
                f"{inp.ct_series.modality if inp.ct_series else '?'}",
                hint="pass --liver-mask, --spleen-mask and --lesion-mask for MR studies",
            )
        seg = segment(
            inp.ct, sampler, s, liver=liver, spleen=spleen, lesions_auto=imported_labels is None
        )
        notes.extend(seg.notes)
        seg_est = seg.estimates
        if liver is None:
            liver = seg.liver
            sources["liver"] = "automatic"
        if spleen is None:
            spleen = seg.spleen
            sources["spleen"] = "automatic" if seg.spleen is not None else "not found"
        if imported_labels is None:
            labels = seg.lesions
            organs, detected = seg.organs, seg.detected_by
            sources["lesions"] = "automatic"
    t_seg = time.perf_counter() - t_seg
    study_flags: list[str] = []
    if inp.ct is not None and sources.get("lesions") == "automatic":
        sp_ct = inp.ct.spacing
        if max(sp_ct[1:]) > s.validated_max_pixel_mm or sp_ct[0] > s.validated_max_slice_mm:
            study_flags.append("coarse_ct")
            notes.append(
                f"the CT voxels ({sp_ct[1]:.2f} x {sp_ct[2]:.2f} x {sp_ct[0]:.2f} mm) are "
                f"coarser than those the automatic segmentation is validated on "
                f"({s.validated_max_pixel_mm} mm in-plane, {s.validated_max_slice_mm} mm "
                "slices): small lesions may be missed or split; review the masks"
            )
    if imported_labels is not None:
        labels = imported_labels
        n_imp = int(labels.max()) if labels.size else 0
        st_imp = region_stats(labels, n_imp, spacing=grid.spacing) if n_imp else None
        for k in range(1, n_imp + 1):
            in_liver = False
            if st_imp is not None and liver is not None and st_imp.voxels[k - 1] > 0:
                c = np.round(st_imp.centroid_index[k - 1]).astype(int)
                in_liver = bool(liver[tuple(c)])
            organ = _organ_of_name(imported_names.get(k, ""), in_liver)
            if (
                organ == "other"
                and inp.ct is not None
                and is_ct
                and st_imp is not None
                and st_imp.voxels[k - 1] > 0
            ):
                organ = _organ_from_ct(labels, k, st_imp.bbox[k - 1], inp.ct, s)
            organs.append(organ)
            detected.append("imported")

    # ---- number the lesions: organ order, then volume (largest first)
    n = len(organs)
    # the label map is this function's own (the segmentation's, or the import's copy):
    # renumbered in place, inside the lesions' box only (the rest of the grid is 0)
    lbox = bbox(labels) if n else None
    counts = np.zeros(n, dtype=np.int64)
    if lbox is not None:
        counts = np.bincount(labels[lbox].ravel(), minlength=n + 1)[1 : n + 1]
    order = sorted(range(n), key=lambda i: (ORGANS.index(organs[i]), -int(counts[i]), i))
    present = [i for i in order if counts[i] > 0]
    lut = np.zeros(n + 1, dtype=np.uint16)
    for new, old in enumerate(present, start=1):
        lut[old + 1] = new
    if lbox is not None:
        labels[lbox] = lut[labels[lbox]]
    names_old = [imported_names.get(i + 1) for i in range(n)]
    organs = [organs[i] for i in present]
    detected = [detected[i] for i in present]
    names = [names_old[i] or f"L{k}" for k, i in enumerate(present, start=1)]
    n = len(present)

    m = _Measurer(inp, grid, s)
    t_meas = time.perf_counter()
    references: dict[str, ReferenceVOI] = {}
    with worker_pool() as pool:
        records = _measure_lesions(
            m,
            pool,
            labels,
            n,
            liver,
            spleen,
            organs,
            detected,
            names,
            references,
            study_flags,
            notes,
        )
    t_meas = time.perf_counter() - t_meas

    # ---- the study
    vox_ml = grid.voxel_volume_ml
    liver_ml = float(np.count_nonzero(liver) * vox_ml) if liver is not None else None
    spleen_ml = float(np.count_nonzero(spleen) * vox_ml) if spleen is not None else None
    liver_lesions = [r for r in records if r.organ == "liver"]
    lt_ml = float(sum(r.volume_ml for r in liver_lesions)) if liver is not None else None
    graded = [r for r in records if r.krenning_grade is not None]
    pos = [r for r in graded if r.sstr_positive]
    grid_info = {
        "shape": list(grid.spatial_shape),
        "spacing_mm": list(grid.spacing),
        "affine": np.asarray(grid.affine).tolist(),
        "slice_thickness_mm": inp.slice_thickness_mm,
        "modality": grid.modality,
    }
    provenance = {
        "netvolume_version": __version__,
        "ct_series_uid": inp.ct_series.series_instance_uid if inp.ct_series else None,
        "ct_instances_sha256": _series_hash(inp.ct_series),
        "pet_series_uid": inp.pet_series.series_instance_uid if inp.pet_series else None,
        "pet_instances_sha256": _series_hash(inp.pet_series),
        "registration": inp.registration,
        "estimates": seg_est,
        "seconds": {
            "total": time.perf_counter() - t0,
            "segmentation": t_seg,
            "measurement": t_meas,
        },
    }
    study_uid = (
        inp.ct_series.study_instance_uid
        if inp.ct_series
        else (inp.pet_series.study_instance_uid if inp.pet_series else "")
    )
    ref_series = inp.ct_series or inp.pet_series
    acquired = ref_series.acquisition_datetime if ref_series is not None else None
    return StudyMeasurement(
        study_date=acquired[:10] if acquired else None,
        study_dir=str(root),
        study_instance_uid=study_uid,
        frame_of_reference_uid=grid.frame_of_reference_uid or "",
        ct_series_uid=inp.ct_series.uid if inp.ct_series else None,
        pet_series_uid=inp.pet_series.uid if inp.pet_series else None,
        grid=grid_info,
        lesions=tuple(records),
        liver_volume_ml=liver_ml,
        spleen_volume_ml=spleen_ml,
        liver_tumour_volume_ml=lt_ml,
        liver_tumour_burden_pct=(100.0 * lt_ml / liver_ml)
        if lt_ml is not None and liver_ml
        else None,
        n_liver_lesions=len(liver_lesions),
        references=references,
        extrahepatic_disease=any(r.organ != "liver" for r in records),
        sstr_positive_fraction=(len(pos) / len(graded)) if graded else None,
        sstr_positive_volume_ml=float(sum(r.volume_ml for r in pos)) if graded else None,
        sources=sources,
        settings=s.to_dict(),
        provenance=provenance,
        notes=tuple(notes + m.notes),
        qc_flags=tuple(dict.fromkeys(study_flags)),
        liver_mask=_mask_volume(liver, grid, "liver"),
        spleen_mask=_mask_volume(spleen, grid, "spleen"),
        lesion_labels=Volume(
            labels,
            grid.affine,
            frame_of_reference_uid=grid.frame_of_reference_uid,
            units="label",
            label_names={k: names[k - 1] for k in range(1, n + 1)},
        ),
        reference_series=reference_series,
        inputs=inp,
    )


def _mask_volume(mask: np.ndarray | None, grid: Volume, name: str) -> Volume | None:
    if mask is None:
        return None
    return Volume(
        mask.view(np.uint8) if mask.dtype == np.bool_ else mask.astype(np.uint8),
        grid.affine,
        frame_of_reference_uid=grid.frame_of_reference_uid,
        units="label",
        label_names={1: name},
    )


def _measure_lesions(
    m: _Measurer,
    pool: ThreadPoolExecutor | None,
    labels: np.ndarray,
    n: int,
    liver: np.ndarray | None,
    spleen: np.ndarray | None,
    organs: Sequence[str],
    detected: Sequence[str],
    names: Sequence[str],
    references: dict[str, ReferenceVOI],
    study_flags: list[str],
    notes: list[str],
) -> list[LesionRecord]:
    """Every lesion's record, the reference VOIs (into ``references``) and the study's
    flags and notes (into ``study_flags``, ``notes`` and ``m.notes``).

    The reference VOIs and each lesion's PET crop, then each lesion's uptake, are worked
    out on ``pool`` (they read only the inputs, the labels and the masks); flags, notes
    and records are gathered in lesion order, so the result is the same with or without
    a pool.
    """
    inp, s, grid = m.inp, m.s, m.grid
    spacing = grid.spacing
    ct_values = np.asarray(inp.ct.array) if inp.ct is not None else None

    # ---- reference VOIs, on the pool while the lesions' geometry is measured here
    if inp.pet_bqml is None:
        study_flags.append("no_pet")
    ref_jobs: list[tuple[str, list[str], Future[ReferenceVOI | None]]] = []
    for organ, mask, diameter in (
        ("liver", liver, s.liver_reference_diameter_mm),
        ("spleen", spleen, s.spleen_reference_diameter_mm),
    ):
        if mask is not None:
            ref_notes: list[str] = []
            job = submit(pool, m.reference, organ, mask, labels, diameter, ref_notes)
            ref_jobs.append((organ, ref_notes, job))
    stats = region_stats(labels, n, spacing=spacing, values=ct_values) if n else None
    objs = (
        [tuple(slice(int(b[a]), int(b[a + 3])) for a in range(3)) for b in stats.bbox]
        if stats is not None
        else []
    )

    # ---- every lesion's PET first: which neighbour is hotter needs all their SUVmax
    pet_voxel_ml = inp.pet_bqml.voxel_volume_ml if inp.pet_bqml is not None else None
    peak_r = (3.0 * 1000.0 * s.suv_peak_sphere_ml / (4.0 * math.pi)) ** (1.0 / 3.0)
    spill_mm = s.spill_in_distance_fwhm * s.pet_fwhm_mm
    crop_jobs: list[Future[_PetCrop]] = []
    if pet_voxel_ml is not None:
        reach_mm = max(peak_r, s.background_shell_mm[1], spill_mm)
        margin = [math.ceil(reach_mm / v) + 1 for v in spacing]
        for k in range(1, n + 1):
            sl = objs[k - 1]
            box: tuple[slice, slice, slice] = tuple(  # type: ignore[assignment]
                slice(max(0, a.start - mm), min(dim, a.stop + mm))
                for a, mm, dim in zip(sl, margin, labels.shape, strict=True)
            )
            crop_jobs.append(submit(pool, _PetCrop.of, box, labels, k, m))
    axes = axial_diameters(labels, n, spacing=spacing) if n else None

    for organ, ref_notes, job in ref_jobs:
        ref = job.result()
        m.notes.extend(ref_notes)
        if ref is not None:
            references[organ] = ref
    liver_ref = references.get("liver")
    spleen_ref = references.get("spleen")

    def ref_value(r: ReferenceVOI | None) -> float | None:
        if r is None:
            return None
        return r.suv_mean if s.reference_denominator == "mean" else r.suv_max

    liver_ref_suv = ref_value(liver_ref)
    spleen_ref_suv = ref_value(spleen_ref)
    lesion_flags_all: list[str] = []
    if liver_ref is not None and liver_ref.suv_mean is not None:
        lo, hi = s.liver_reference_suv_range
        if not lo <= liver_ref.suv_mean <= hi:
            study_flags.append("liver_reference_out_of_range")
            lesion_flags_all.append("liver_reference_out_of_range")
            notes.append(
                f"liver reference SUVmean {liver_ref.suv_mean:.2f} is outside the expected "
                f"{lo}-{hi}: check the SUV inputs (dose, weight, times) before trusting grades"
            )
    if inp.pet_suv is not None and liver_ref is None:
        study_flags.append("no_liver_reference")
    if inp.pet_suv is not None and spleen_ref is None:
        study_flags.append("no_spleen_reference")
    crops = [job.result() for job in crop_jobs]

    def uptake(i: int) -> tuple[dict[str, Any], list[str], list[str]]:
        """Lesion ``i + 1``'s PET columns, QC flags and notes."""
        assert stats is not None and pet_voxel_ml is not None
        k = i + 1
        rec: dict[str, Any] = {}
        flags: list[str] = []
        if float(stats.volume_ml[i]) < 2.0 * pet_voxel_ml:
            flags.append("smaller_than_two_pet_voxels")
        c = crops[i]
        lab_crop, les, bq, suv = c.labels, c.lesion, c.bqml, c.suv
        if not np.all(np.isfinite(bq[les])):
            flags.append("outside_pet_fov")
        shell: np.ndarray | None = None
        if organs[i] == "liver" and liver_ref is not None and liver_ref.suv_mean is not None:
            bg_bqml: float | None = liver_ref.activity_mean_bqml
        else:
            outer = dilate_ball(les, s.background_shell_mm[1], spacing)
            inner = dilate_ball(les, s.background_shell_mm[0], spacing)
            shell = outer & ~inner & (lab_crop == 0) & np.isfinite(bq)
            bg_bqml = float(np.median(bq[shell])) if shell.any() else None
        # ---- spill-in: the uptake is measured away from hotter tissue
        use, spill_flags, spill_notes = _away_from_hotter(
            crops, k, bg_bqml, spleen, spleen_ref, names, s, pet_voxel_ml / grid.voxel_volume_ml
        )
        flags.extend(spill_flags)
        inside = bq[use]
        finite = np.isfinite(inside)
        if finite.any():
            rec["activity_max_bqml"] = float(inside[finite].max())
            rec["activity_mean_bqml"] = float(inside[finite].mean())
        if suv is not None and finite.any():
            sv = suv[use][finite]
            rec["suv_max"] = float(sv.max())
            rec["suv_mean"] = float(sv.mean())
            filled = np.where(np.isfinite(suv), suv, 0.0).astype(np.float32)
            pk = suv_peak(
                filled, use.astype(np.uint8), 1, spacing=spacing, sphere_ml=s.suv_peak_sphere_ml
            )
            rec["suv_peak"] = float(pk.peak[0])
            if shell is None:
                assert liver_ref is not None and liver_ref.suv_mean is not None
                bg = float(liver_ref.suv_mean)
            else:
                bg = float(np.median(suv[shell])) if shell.any() else float("nan")
            rec["background_suv"] = bg if math.isfinite(bg) else None
            if rec["background_suv"] is None:
                flags.append("no_local_background")
            if liver_ref_suv is not None:
                rec["tumour_to_liver"] = rec["suv_max"] / liver_ref_suv
                if spleen_ref_suv is not None:
                    rec["tumour_to_spleen"] = rec["suv_max"] / spleen_ref_suv
                if rec["background_suv"] is not None:
                    g = krenning_grade(
                        rec["suv_max"], rec["background_suv"], liver_ref_suv, spleen_ref_suv
                    )
                    rec["krenning_grade"] = g
                    if g is None:
                        flags.append("no_spleen_reference")
                    else:
                        rec["sstr_positive"] = g >= s.sstr_positive_min_grade
        return rec, flags, spill_notes

    uptakes = [submit(pool, uptake, i) for i in range(n)] if pet_voxel_ml is not None else []

    # ---- per lesion, in order
    thick = inp.slice_thickness_mm
    min_ld = s.recist_min_ld_mm
    if thick is not None and thick > s.recist_thick_slice_mm:
        min_ld = max(min_ld, 2.0 * thick)
    records: list[LesionRecord] = []
    for k in range(1, n + 1):
        assert stats is not None and axes is not None
        i = k - 1
        sl = objs[i]
        flags: list[str] = list(lesion_flags_all)
        if any(a.start == 0 or a.stop == dim for a, dim in zip(sl, labels.shape, strict=True)):
            flags.append("touches_border")
        organ = organs[i]
        nodal = organ == "lymph_node"
        ld, sa = float(axes.ld_mm[i]), float(axes.sa_mm[i])
        if nodal:
            if sa >= s.recist_node_target_sa_mm:
                category = "measurable"
            elif sa >= s.recist_node_pathological_sa_mm:
                category = "non_measurable"
            else:
                category = "normal_node"
        else:
            category = "measurable" if ld >= min_ld else "non_measurable"
        ld_end = grid.index_to_lps(axes.ld_endpoints[i])
        sa_end = grid.index_to_lps(axes.sa_endpoints[i])
        centroid = grid.index_to_lps(stats.centroid_index[i])
        rec: dict[str, Any] = {}
        if uptakes:
            rec, pet_flags, spill_notes = uptakes[i].result()
            flags.extend(pet_flags)
            m.notes.extend(spill_notes)
        records.append(
            LesionRecord(
                lesion_id=k,
                name=names[i],
                organ=organ,
                nodal=nodal,
                detected_by=detected[i],
                volume_ml=float(stats.volume_ml[i]),
                voxels=int(stats.voxels[i]),
                ld_mm=ld,
                sa_mm=sa,
                slice_index=int(axes.slice[i]),
                ld_endpoints_mm=(tuple(map(float, ld_end[0])), tuple(map(float, ld_end[1]))),  # type: ignore[arg-type]
                sa_endpoints_mm=(tuple(map(float, sa_end[0])), tuple(map(float, sa_end[1]))),  # type: ignore[arg-type]
                centroid_mm=tuple(map(float, centroid)),  # type: ignore[arg-type]
                measurable=category == "measurable",
                recist_category=category,
                ct_mean_hu=float(stats.mean[i])
                if ct_values is not None and stats.mean is not None
                else None,
                ct_sd_hu=float(stats.std[i])
                if ct_values is not None and stats.std is not None
                else None,
                qc_flags=tuple(dict.fromkeys(flags)),
                **rec,
            )
        )
    return records

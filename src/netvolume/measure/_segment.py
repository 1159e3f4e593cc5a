"""Classical, deterministic segmentation of liver, spleen and lesions on CT (+ PET).

Two grids
---------
Organs are found and lesions detected on a *coarse* grid: the CT averaged over blocks of
about 3 mm (:func:`block_mean`; 4 x 4 x 2 voxels of a 0.78 x 0.78 x 1.25 mm CT), which
divides the noise by about 5 and the work by 32. Each lesion is then delineated on the
full CT grid in a crop around it, at the half-way attenuation between the lesion and the
tissue around it (the 50 % partial-volume iso-surface), and organ surfaces are refined on
the full grid the same way in a band one coarse voxel either side of the coarse surface.

Stages (every threshold a field of :class:`~netvolume.measure.MeasureSettings`)
-------------------------------------------------------------------------------
1. body: CT above ``body_min_hu``, largest component, holes filled.
2. liver: coarse voxels in the ``organ_hu_range`` window (with PET: SUV below
   ``liver_pet_max_ratio`` times the window's median SUV, which separates the liver from
   the spleen and kidneys), opened by ``organ_erosion_mm`` and the largest component kept;
   regions next to it that are neither fat nor parenchyma and lie mostly against
   parenchyma (``liver_lesion_enclosure``) join it, holes are filled: lesions are liver.
3. spleen: with PET, window voxels with SUV at least ``spleen_pet_min_ratio`` times the
   liver's, largest component; without PET, the largest window component more than 60 mm
   to the patient's left of the liver's centre. Ignored below ``min_spleen_ml``.
4. liver lesions (CT): coarse voxels of the liver at least one coarse voxel deep whose CT
   differs from the parenchyma's median by more than ``liver_lesion_min_contrast_hu``;
   (PET): SUV above ``liver_pet_lesion_ratio`` times the liver median with no CT lesion.
5. bone lesions: coarse voxels inside bone (``bone_min_hu``) differing from bone's median
   by more than ``bone_lesion_min_contrast_hu``; a lytic lesion is delineated half-way
   between it and the bone and, on the other side, half-way between it and the muscle
   and fat around the bone (so it cannot run on into them where it breaks the cortex); one
   that still runs along the edge of the bone outline widened by a coarse voxel is
   delineated again inside the outline itself.
6. other lesions (PET): hot spots above ``pet_hotspot_min_suv`` and
   ``pet_hotspot_bg_ratio`` times the soft-tissue background, away from liver, spleen,
   kidneys and bone (``organ_spill_margin_mm``) and from the blood pool, whose CT is soft
   tissue (``soft_tissue_hu_range``); delineated on CT against their surroundings within
   ``pet_lesion_ct_margin_mm`` of the spot; a spot whose CT region runs on into a larger
   structure is searched again for its hotter core (``hotspot_refine_fraction``: a
   primary in a bowel loop with physiological uptake); a lesion surrounded by fat is a
   lymph node, else ``other``.
7. touching liver lesions are split by a watershed on the distance transform when both
   parts are ``split_min_depth_mm`` deeper than the neck between them (and the neck is
   narrower than half the smaller part's depth).

These rules are made for portal-venous CT and Ga-68 DOTA PET and are checked against the
phantom's ground truth (``tests/test_measure_acceptance.py``); they are not a substitute
for a trained model on real anatomy. Every stage can be replaced by an imported mask.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field

import numba
import numpy as np
import scipy.ndimage as ndi

from netvolume.errors import NetVolumeError
from netvolume.kernels import (
    bbox,
    connected_to,
    count_neighbours,
    dilate_ball,
    erode_ball,
    erode_neighbours,
    fill_holes,
    label,
    largest_component,
)
from netvolume.measure._pool import submit, worker_pool
from netvolume.measure._settings import MeasureSettings
from netvolume.volume import Volume

__all__ = ["CoarseGrid", "Segmentation", "SegmentationError", "block_mean", "segment"]


# --------------------------------------------------------------------------- coarse grid


@numba.njit(cache=True, nogil=True)
def _block_mean_kernel(a: np.ndarray, bk: int, bj: int, bi: int, out: np.ndarray) -> None:
    nk, nj, ni = out.shape
    inv = 1.0 / (bk * bj * bi)
    acc = np.zeros(ni, dtype=np.float64)
    for k in range(nk):
        for j in range(nj):
            acc[:] = 0.0
            for dk in range(bk):
                for dj in range(bj):
                    row = a[k * bk + dk, j * bj + dj]
                    for i in range(ni):
                        s = 0.0
                        for di in range(bi):
                            s += row[i * bi + di]
                        acc[i] += s
            for i in range(ni):
                out[k, j, i] = acc[i] * inv


@numba.njit(cache=True, nogil=True)
def _gather_kernel(
    a: np.ndarray, ik: np.ndarray, ij: np.ndarray, ii: np.ndarray, out: np.ndarray
) -> None:
    """``out = a[np.ix_(ik, ij, ii)]`` (about 4 x faster than numpy's fancy indexing)."""
    for p in range(ik.size):
        ap = a[ik[p]]
        for q in range(ij.size):
            aq = ap[ij[q]]
            o = out[p, q]
            for r in range(ii.size):
                o[r] = aq[ii[r]]


@numba.njit(cache=True, nogil=True)
def _uncurve_kernel(
    u: np.ndarray, r: np.ndarray, h: np.ndarray, var: np.ndarray, out: np.ndarray
) -> None:
    """:meth:`_Segmenter._uncurved` on a crop: at every voxel whose 3 x 3 x 3 neighbourhood
    (within the crop) holds both region and background, ``out = u - (lap - across) / 2``
    (the curvature part of the kernel-weighted Laplacian, see there), from the derivatives
    of ``np.gradient`` applied twice (central differences, 2 voxels apart for the second
    derivatives; the crop's edge repeated beyond it)."""
    nk, nj, ni = u.shape
    shape = (nk, nj, ni)
    # any / all of the 3 x 3 x 3 neighbourhood (within the crop), one axis at a time: the
    # cube is separable
    hi = r.astype(np.uint8)
    lo = hi.copy()
    for axis in range(3):
        hx = np.moveaxis(hi, axis, 2)
        lx = np.moveaxis(lo, axis, 2)
        hy = hx.copy()
        ly = lx.copy()
        n0, n1, n2 = hx.shape
        for x in range(n0):
            for y in range(n1):
                for z in range(n2 - 1):
                    hy[x, y, z] = max(hy[x, y, z], hx[x, y, z + 1])
                    ly[x, y, z] = min(ly[x, y, z], lx[x, y, z + 1])
                    hy[x, y, z + 1] = max(hy[x, y, z + 1], hx[x, y, z])
                    ly[x, y, z + 1] = min(ly[x, y, z + 1], lx[x, y, z])
        hi = np.ascontiguousarray(np.moveaxis(hy, 2, axis))
        lo = np.ascontiguousarray(np.moveaxis(ly, 2, axis))
    pos = np.zeros(3, dtype=np.int64)
    d = np.zeros(3, dtype=np.int64)
    g = np.zeros(3)
    gv = np.zeros(3)
    for k in range(nk):
        for j in range(nj):
            for i in range(ni):
                if hi[k, j, i] == lo[k, j, i]:
                    continue
                pos[0], pos[1], pos[2] = k, j, i
                centre = np.float64(u[k, j, i])
                for a in range(3):
                    d[:] = 0
                    d[a] = 1
                    g[a] = (_at(u, pos, d, 1, shape) - _at(u, pos, d, -1, shape)) / (2.0 * h[a])
                    gv[a] = var[a] * g[a]
                norm2 = gv[0] * g[0] + gv[1] * g[1] + gv[2] * g[2] + 1e-12
                lap = 0.0
                across = 0.0
                for a in range(3):
                    for b in range(a, 3):
                        d[:] = 0
                        if a == b:
                            d[a] = 2
                            hab = (
                                _at(u, pos, d, 1, shape) - 2.0 * centre + _at(u, pos, d, -1, shape)
                            ) / (4.0 * h[a] * h[a])
                            lap += var[a] * hab
                            across += gv[a] * gv[a] * hab
                        else:
                            d[a] = 1
                            d[b] = 1
                            pp = _at(u, pos, d, 1, shape)
                            mm = _at(u, pos, d, -1, shape)
                            d[b] = -1
                            pm = _at(u, pos, d, 1, shape)
                            mp = _at(u, pos, d, -1, shape)
                            hab = (pp - pm - mp + mm) / (4.0 * h[a] * h[b])
                            across += 2.0 * gv[a] * gv[b] * hab
                out[k, j, i] = centre - 0.5 * (lap - across / norm2)


@numba.njit(cache=True, nogil=True, inline="always")
def _at(u: np.ndarray, pos: np.ndarray, d: np.ndarray, sign: int, shape: tuple) -> float:
    """``u`` at ``pos + sign * d``, each index clamped to the array (edge padding)."""
    k = min(max(pos[0] + sign * d[0], 0), shape[0] - 1)
    j = min(max(pos[1] + sign * d[1], 0), shape[1] - 1)
    i = min(max(pos[2] + sign * d[2], 0), shape[2] - 1)
    return np.float64(u[k, j, i])


@numba.njit(cache=True, nogil=True)
def _fill_axial_kernel(mask: np.ndarray, out: np.ndarray) -> None:
    """Per slice: flood the background 4-connected to the slice's border; the rest is
    ``out``."""
    nk, nj, ni = mask.shape
    stack = np.empty(nj * ni, dtype=np.int64)
    outside = np.zeros((nj, ni), dtype=np.uint8)
    for k in range(nk):
        m = mask[k]
        outside[:] = 0
        top = 0
        for j in range(nj):
            for i in range(ni):
                border = j == 0 or j == nj - 1 or i == 0 or i == ni - 1
                if border and not m[j, i] and not outside[j, i]:
                    outside[j, i] = 1
                    stack[top] = j * ni + i
                    top += 1
        while top > 0:  # each voxel is pushed once (marked first)
            top -= 1
            p = stack[top]
            j = p // ni
            i = p - j * ni
            for jj, ii in ((j - 1, i), (j + 1, i), (j, i - 1), (j, i + 1)):
                if 0 <= jj < nj and 0 <= ii < ni and not m[jj, ii] and not outside[jj, ii]:
                    outside[jj, ii] = 1
                    stack[top] = jj * ni + ii
                    top += 1
        for j in range(nj):
            for i in range(ni):
                out[k, j, i] = outside[j, i] == 0


def _fill_holes_axial(mask: np.ndarray) -> np.ndarray:
    """Holes filled in every axial slice on its own: background not 4-connected to the
    slice's border (``scipy.ndimage.binary_fill_holes`` per slice, tested; a flood fill
    from the border)."""
    out = np.empty(mask.shape, dtype=bool)
    _fill_axial_kernel(np.ascontiguousarray(mask, dtype=bool), out)
    return out


def block_mean(array: np.ndarray, block: tuple[int, int, int]) -> np.ndarray:
    """Mean over non-overlapping blocks (float32); a partial last block is left out.

    Equal to ``array[:K*bk, :J*bj, :I*bi].reshape(K, bk, J, bj, I, bi).mean((1, 3, 5))``
    (tested), in one pass.
    """
    bk, bj, bi = block
    shape = (array.shape[0] // bk, array.shape[1] // bj, array.shape[2] // bi)
    out = np.empty(shape, dtype=np.float32)
    if min(shape) == 0:
        return out
    _block_mean_kernel(np.ascontiguousarray(array), bk, bj, bi, out)
    return out


@dataclass(frozen=True)
class CoarseGrid:
    """The block-averaged analysis grid of a CT Volume."""

    block: tuple[int, int, int]
    shape: tuple[int, int, int]
    spacing_mm: tuple[float, float, float]
    affine: np.ndarray

    @classmethod
    def of(cls, ct: Volume, target_mm: float) -> CoarseGrid:
        """Blocks of about ``target_mm`` (at least one voxel) over ``ct``'s grid."""
        sp = ct.spacing
        block = tuple(max(1, round(target_mm / s)) for s in sp)
        shape = tuple(n // b for n, b in zip(ct.spatial_shape, block, strict=True))
        aff = np.array(ct.affine, dtype=np.float64)
        aff[:3, :3] = aff[:3, :3] * np.asarray(block, dtype=np.float64)
        aff[:3, 3] = ct.index_to_lps((np.asarray(block, dtype=np.float64) - 1.0) / 2.0)
        return cls(
            block=block,  # type: ignore[arg-type]
            shape=shape,  # type: ignore[arg-type]
            spacing_mm=tuple(s * b for s, b in zip(sp, block, strict=True)),  # type: ignore[arg-type]
            affine=aff,
        )

    def volume_like(self, array: np.ndarray, ct: Volume) -> Volume:
        """A Volume on this grid (for resampling onto it)."""
        return Volume(array, self.affine, frame_of_reference_uid=ct.frame_of_reference_uid)


# --------------------------------------------------------------------------- helpers


def _grow(
    sl: tuple[slice, slice, slice], margin: tuple[int, int, int], shape: tuple[int, ...]
) -> tuple[slice, slice, slice]:
    return tuple(  # type: ignore[return-value]
        slice(max(0, s.start - m), min(n, s.stop + m))
        for s, m, n in zip(sl, margin, shape, strict=True)
    )


def _median(values: np.ndarray) -> float:
    return float(np.median(values)) if values.size else float("nan")


# --------------------------------------------------------------------------- results


@dataclass
class Segmentation:
    """Masks on the full CT grid and what was estimated on the way.

    Attributes
    ----------
    liver, spleen : ndarray of bool or None
    lesions : ndarray of uint16
        0 background, 1..n lesions.
    organs, detected_by : list of str
        Per lesion (index ``label - 1``).
    estimates : dict
        Tissue values estimated from the image (liver HU and SUV, spleen SUV, bone HU,
        soft-tissue background SUV).
    notes : list of str
    """

    liver: np.ndarray | None
    spleen: np.ndarray | None
    lesions: np.ndarray
    organs: list[str]
    detected_by: list[str]
    estimates: dict[str, float] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


# --------------------------------------------------------------------------- segmenter

#: A PET hot spot to examine: (coarse box, spot mask, its whole component's mask, depth).
_HotPart = tuple[tuple[slice, slice, slice], np.ndarray, np.ndarray, int]


@dataclass
class _HotPlan:
    """What :meth:`_Segmenter._plan_hot` found for one hot spot.

    ``outcome``: ``bone`` / ``fat`` / ``contrast`` (rejected for that reason) or
    ``delineated``; ``core``: the spot's core on the full-grid crop ``box`` (to check it is
    not already a lesion); ``region`` / ``organ``: the lesion to add (None when every
    margin ran on into a larger structure: ``leaked``, with the ``hotter`` spots inside to
    examine instead); ``cbox``, ``c_whole``, ``sm``: the coarse crop, the component on it
    and the smoothed CT, for the nodes in the hot component.
    """

    outcome: str
    box: tuple[slice, slice, slice] | None = None
    core: np.ndarray | None = None
    cbox: tuple[slice, slice, slice] | None = None
    c_whole: np.ndarray | None = None
    sm: np.ndarray | None = None
    region: np.ndarray | None = None
    organ: str = "other"
    leaked: bool = False
    hotter: list[_HotPart] = field(default_factory=list)


@dataclass
class _PetSearch:
    """The PET hot spots being planned (:meth:`_Segmenter.pet_search`)."""

    threshold: float
    bone_hull: np.ndarray
    plans: list[Future[_HotPlan]]


class _Crops:
    """Smoothed CT crops by box, each computed once however many threads ask for it."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._made: dict[tuple[int, ...], Future[np.ndarray]] = {}

    def get(self, key: tuple[int, ...], make: Callable[[], np.ndarray]) -> np.ndarray:
        with self._lock:
            future = self._made.get(key)
            mine = future is None
            if future is None:
                future = self._made[key] = Future()
        if mine:
            try:
                future.set_result(make())
            except BaseException as exc:
                future.set_exception(exc)
                raise
        return future.result()


class SegmentationError(NetVolumeError):
    """An automatic segmentation stage that found nothing usable (say which, and what to do)."""


def _shell(
    mask: np.ndarray, inner_mm: float, outer_mm: float, spacing: tuple[float, float, float]
) -> np.ndarray:
    """Voxels more than ``inner_mm`` and at most ``outer_mm`` from ``mask``."""
    return dilate_ball(mask, outer_mm, spacing) & ~dilate_ball(mask, inner_mm, spacing)


def _side(img: np.ndarray, half_hu: float, sign: float) -> np.ndarray:
    """Voxels on the lesion's side of ``half_hu``: above it (``sign`` > 0) or below it
    (``sign`` < 0), compared in ``img``'s own precision; none for ``sign`` 0."""
    h = img.dtype.type(half_hu)
    if sign > 0:
        return np.asarray(img > h)
    if sign < 0:
        return np.asarray(img < h)
    return np.zeros(img.shape, dtype=bool)


def _in_box(region: np.ndarray, fn: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
    """``fn`` applied to ``region``'s bounding box grown by one voxel, pasted back (for
    operations whose result outside that box is the input's: erosion, hole filling, the
    3 x 3 x 3 neighbour count)."""
    box = bbox(region, margin=1)
    out = np.zeros(region.shape, dtype=bool)
    if box is not None:
        out[box] = fn(region[box])
    return out


def _gaussian_variance_mm2(
    sigma_mm: float, spacing: tuple[float, float, float]
) -> tuple[float, float, float]:
    """Variance (mm^2) per axis of ``ndimage.gaussian_filter``'s discrete kernel at
    ``sigma_mm`` (below about half a voxel it is much narrower than sigma^2)."""
    out = []
    for sp in spacing:
        if sigma_mm <= 0:
            out.append(0.0)
            continue
        half = int(4.0 * sigma_mm / sp + 0.5) + 1
        delta = np.zeros(2 * half + 1)
        delta[half] = 1.0
        w = ndi.gaussian_filter1d(delta, sigma_mm / sp, mode="constant")
        k = np.arange(-half, half + 1, dtype=np.float64)
        out.append(float((w * k * k).sum()) * sp * sp)
    return (out[0], out[1], out[2])


def _smooth_surface(region: np.ndarray, edge: np.ndarray | None = None) -> np.ndarray:
    """Holes filled, then single noisy voxels neither stick out of the surface (they would
    lengthen the long axis) nor dent it: a voxel with at most 9 of its 26 neighbours inside
    leaves, one with at least 17 inside joins (symmetric about 13, so a flat surface, a
    45-degree staircase or a gently curved surface keeps its volume; a single voxel on a
    flat surface has 9 neighbours inside, a single dent 17).

    ``edge``: voxels next to the edge of the region the lesion was confined to (a liver
    lesion to the liver without its rim), where its surface is a cut, not a boundary, and
    thin: there only a voxel with at most 8 neighbours inside leaves, and one with at least
    19 joins."""
    region = fill_holes(region, connectivity=6)
    count = count_neighbours(region)
    if edge is None:
        return np.asarray((region & (count > 10.5)) | (~region & (count > 16.5)))
    leave = np.where(edge, 9.5, 10.5)
    join = np.where(edge, 18.5, 16.5)
    return np.asarray((region & (count > leave)) | (~region & (count > join)))


class _Segmenter:
    """One study's segmentation (see the module docstring for the stages)."""

    def __init__(
        self,
        ct: Volume,
        pet_sampler: Callable[[Volume], np.ndarray] | None,
        settings: MeasureSettings,
    ) -> None:
        self.ct = ct
        self.a = ct.array
        self.s = settings
        self.sp_full = ct.spacing
        self.grid = CoarseGrid.of(ct, settings.coarse_target_mm)
        self.sp = self.grid.spacing_mm
        # one coarse voxel in every direction (the 6 face neighbours): the blocks are not
        # cubes (e.g. 4.0 x 3.3 x 3.3 mm for 2 mm slices), so a ball of the in-plane size
        # alone would leave out the slices above and below
        self.voxel_mm = max(self.sp)
        self.kernel_var_mm2 = _gaussian_variance_mm2(settings.smoothing_sigma_mm, ct.spacing)
        self.ctc = block_mean(self.a, self.grid.block)
        self._whole: tuple[slice, slice, slice] = tuple(  # type: ignore[assignment]
            slice(0, n) for n in self.grid.shape
        )
        if int(np.prod(self.grid.block)) < 16:
            # thick voxels: the blocks average too few voxels to quieten the noise, so
            # smooth the coarse grid (one voxel) instead
            self.ctc = np.asarray(ndi.gaussian_filter(self.ctc, 1.0, mode="nearest"))
        self.pet_sampler = pet_sampler
        self.petc: np.ndarray | None = None
        if pet_sampler is not None:
            petc = np.asarray(pet_sampler(self.grid.volume_like(self.ctc, ct)), dtype=np.float32)
            self.petc = np.where(np.isfinite(petc), petc, 0.0).astype(np.float32)
        self.est: dict[str, float] = {}
        self.notes: list[str] = []
        self.labels = np.zeros(self.a.shape, dtype=np.uint16)
        self.organs: list[str] = []
        self.detected_by: list[str] = []

    # ------------------------------------------------------------------ organs
    def body(self) -> np.ndarray:
        body = largest_component(self.ctc > self.s.body_min_hu, connectivity=6)
        if not body.any():
            raise SegmentationError(
                f"no voxel above body_min_hu = {self.s.body_min_hu} HU: not a CT in HU?"
            )
        self.bodyc = fill_holes(body, connectivity=6)
        lo, hi = self.s.organ_hu_range
        self.window = self.bodyc & (self.ctc >= lo) & (self.ctc <= hi)
        return self.bodyc

    def liver_coarse(self) -> tuple[np.ndarray, np.ndarray]:
        """(liver core without lesions, liver hull with lesions) on the coarse grid."""
        s, sp = self.s, self.sp
        lo, hi = s.organ_hu_range
        if not self.window.any():
            raise SegmentationError(
                f"the liver could not be found: no voxel in organ_hu_range {lo}-{hi} HU",
                hint="check the series is a portal-venous abdominal CT, adjust "
                "organ_hu_range with --set, or pass --liver-mask",
            )
        liver_like = self.window
        if self.petc is not None:
            ref = _median(self.petc[self.window])
            self.est["window_median_suv"] = ref
            liver_like = self.window & (self.petc < s.liver_pet_max_ratio * ref)
        core = largest_component(erode_ball(liver_like, s.organ_erosion_mm, sp), connectivity=6)
        if not core.any():
            raise SegmentationError(
                "the liver could not be found: no region of the organ window is thicker "
                f"than organ_erosion_mm = {s.organ_erosion_mm} mm",
                hint="pass --liver-mask",
            )
        liver = largest_component(
            dilate_ball(core, s.organ_erosion_mm, sp) & liver_like, connectivity=6
        )
        deep = erode_ball(liver, self.voxel_mm, sp)
        inner = deep if deep.sum() >= 27 else liver
        self.est["liver_hu"] = _median(self.ctc[inner])
        if self.petc is not None:
            self.est["liver_suv_coarse"] = _median(self.petc[inner])
        # lesions are liver too: regions that are neither fat nor liver parenchyma and are
        # mostly enclosed by parenchyma (their 1-voxel outer ring lies in the liver for at
        # least liver_lesion_enclosure), then holes filled
        around = self.surroundings_hu(liver, "liver")
        self.est["liver_surroundings_hu"] = around
        not_fat = self.bodyc & (self.ctc > (self.est["liver_hu"] + around) / 2.0)
        other = not_fat & ~liver & ~(self.window & ~liver_like)
        # one coarse voxel of erosion cuts partial-volume bridges to neighbouring organs
        # (a lesion near the surface would otherwise join the kidney or bowel beyond)
        cut = erode_ball(other, self.voxel_mm, sp)
        near = dilate_ball(liver, 2 * self.voxel_mm, sp)
        lab, n = label(cut, connectivity=6)
        hull = liver.copy()
        if n:
            objs = ndi.find_objects(lab)
            ring_st = ndi.generate_binary_structure(3, 1)
            for k in range(1, n + 1):
                sl = _grow(objs[k - 1], (2, 2, 2), self.grid.shape)
                core_k = lab[sl] == k
                if not (core_k & near[sl]).any():
                    continue
                comp = np.asarray(ndi.binary_dilation(core_k, ring_st)) & other[sl]
                ring = np.asarray(ndi.binary_dilation(comp, ring_st)) & ~comp
                # parenchyma-like CT counts as liver in the ring: next to a lesion with
                # high uptake, the PET spill-over lifts normal liver out of liver_like
                enclosing = liver[sl] | self.window[sl]
                if ring.any() and enclosing[ring].mean() >= s.liver_lesion_enclosure:
                    hull[sl] |= comp
                    hull[sl] |= ring & self.window[sl]
        hull = fill_holes(hull, connectivity=6)
        return liver, hull

    def spleen_coarse(self, liver_hull: np.ndarray) -> np.ndarray | None:
        s, sp = self.s, self.sp
        cand = self.window & ~dilate_ball(liver_hull, self.voxel_mm, sp)
        if self.petc is not None:
            cand &= self.petc >= s.spleen_pet_min_ratio * self.est["liver_suv_coarse"]
        else:
            x = self._lps_x()
            cx = float(np.mean(x[liver_hull]))
            cand &= x > cx + 60.0
        cand = largest_component(erode_ball(cand, s.organ_erosion_mm / 2, sp), connectivity=6)
        if not cand.any():
            self.notes.append("no spleen found (splenectomy, or outside the field of view)")
            return None
        spleen = largest_component(
            dilate_ball(cand, s.organ_erosion_mm / 2, sp) & self.window, connectivity=6
        )
        vol_ml = float(spleen.sum() * np.prod(sp) / 1000.0)
        if vol_ml < s.min_spleen_ml:
            self.notes.append(
                f"spleen candidate of {vol_ml:.1f} mL is below min_spleen_ml = "
                f"{s.min_spleen_ml} and is ignored"
            )
            return None
        return fill_holes(spleen, connectivity=6)

    def _lps_x(self) -> np.ndarray:
        """LPS x (mm) of every coarse voxel centre."""
        k, j, i = np.indices(self.grid.shape, dtype=np.float64)
        aff = self.grid.affine
        return np.asarray(aff[0, 0] * k + aff[0, 1] * j + aff[0, 2] * i + aff[0, 3])

    def surroundings_hu(self, organ: np.ndarray, what: str) -> float:
        """Median coarse HU of the body between one and two coarse voxels outside ``organ``."""
        sp = self.sp
        shell = _shell(organ, self.voxel_mm, 2 * self.voxel_mm, sp) & self.bodyc
        if not shell.any():
            raise SegmentationError(
                f"the {what} fills the whole body outline: no surrounding tissue to set its "
                "boundary against",
                hint="check the series is an abdominal CT in HU, or import the masks",
            )
        return _median(self.ctc[shell])

    def refine_organ(self, hull: np.ndarray, organ_hu: float) -> np.ndarray:
        """The organ on the full grid: above the half-way HU to its surroundings, connected
        to the coarse organ's interior, within one coarse voxel of its surface."""
        sp = self.sp
        low = (organ_hu + self.surroundings_hu(hull, "organ")) / 2.0
        inner = erode_ball(hull, self.voxel_mm, sp)
        outer = dilate_ball(hull, self.voxel_mm, sp)
        box = bbox(outer)
        out = np.zeros(self.a.shape, dtype=bool)
        if box is None:
            return out
        fbox = tuple(
            slice(sl.start * b, n if sl.stop == g else sl.stop * b)
            for sl, b, n, g in zip(box, self.grid.block, self.a.shape, self.grid.shape, strict=True)
        )
        up_outer = self._up_local(outer, self._whole, fbox)  # type: ignore[arg-type]
        up_inner = self._up_local(inner, self._whole, fbox)  # type: ignore[arg-type]
        cand = up_outer & (self.a[fbox] > low)
        organ = connected_to(cand, up_inner, connectivity=6)
        organ = fill_holes(organ, connectivity=6)
        out[fbox] = organ
        return out

    # ------------------------------------------------------------------ lesions
    def _smoothed(self, box: tuple[slice, slice, slice]) -> np.ndarray:
        sig = [self.s.smoothing_sigma_mm / s for s in self.sp_full]
        crop = self.a[box].astype(np.float32)
        if self.s.smoothing_sigma_mm <= 0:
            return crop
        return np.asarray(ndi.gaussian_filter(crop, sig, mode="nearest"))

    def _smoothed_within(
        self,
        box: tuple[slice, slice, slice],
        organ: np.ndarray,
        where: np.ndarray,
        sm: np.ndarray,
    ) -> np.ndarray:
        """``sm`` (:meth:`_smoothed` of the crop ``box``) with the voxels ``where`` (inside
        ``organ``; bool arrays of the crop) smoothed over ``organ`` only.

        Normalised convolution (Knutsson and Westin, Proc CVPR 1993:515): the Gaussian of
        the CT times the organ mask divided by the Gaussian of the mask, so that a voxel
        is a weighted mean of organ voxels alone. Near the liver's surface the ordinary
        Gaussian mixes in the fat beyond it (-100 HU), which pulls parenchyma next to the
        surface below the half-way HU of a hypodense lesion touching it: the lesion ran on
        along the surface (+5 % on a 10 mm subcapsular lesion). Elsewhere the two agree.
        """
        if self.s.smoothing_sigma_mm <= 0:
            return sm
        sig = [self.s.smoothing_sigma_mm / v for v in self.sp_full]
        w = organ.astype(np.float32)
        num = ndi.gaussian_filter(self.a[box].astype(np.float32) * w, sig, mode="nearest")
        den = ndi.gaussian_filter(w, sig, mode="nearest")
        use = where & (den > 1e-3)  # in the organ: at least the voxel's own weight
        out = sm.copy()
        out[use] = num[use] / den[use]
        return out

    def _smoothed_at(
        self, box: tuple[slice, slice, slice], masks: tuple[np.ndarray, ...]
    ) -> list[np.ndarray]:
        """:meth:`_smoothed` of the crop ``box`` at each of ``masks`` (bool arrays of the
        crop), smoothing only the masks' bounding box grown by the kernel's radius: the
        same values (the Gaussian is separable and truncated at 4 sigma; where the grown
        box meets the crop's edge, the edge is the same)."""
        union = masks[0].copy()
        for m in masks[1:]:
            union |= m
        radius = tuple(
            int(4.0 * self.s.smoothing_sigma_mm / s + 0.5) if self.s.smoothing_sigma_mm > 0 else 0
            for s in self.sp_full
        )
        sub = bbox(union, margin=radius)
        if sub is None:
            return [np.zeros(0, dtype=np.float32) for _ in masks]
        sm = self._smoothed(
            tuple(  # type: ignore[arg-type]
                slice(b.start + c.start, b.start + c.stop) for b, c in zip(box, sub, strict=True)
            )
        )
        return [sm[m[sub]] for m in masks]

    def _full_box(self, coarse_mask: np.ndarray, margin_mm: float) -> tuple[slice, slice, slice]:
        cb = bbox(coarse_mask)
        assert cb is not None
        fb = tuple(
            slice(sl.start * b, sl.stop * b) for sl, b in zip(cb, self.grid.block, strict=True)
        )
        m = tuple(math.ceil(margin_mm / s) for s in self.sp_full)
        return _grow(fb, m, self.a.shape)  # type: ignore[arg-type]

    def delineate(
        self,
        seed: np.ndarray,
        box: tuple[slice, slice, slice],
        bg_hu: float,
        allowed: np.ndarray | None,
        *,
        adapt_bg: bool = False,
        sm: np.ndarray | None = None,
        floor_hu: float | None = None,
    ) -> tuple[np.ndarray, float, float]:
        """The region at the half-way HU between lesion and ``bg_hu``, grown from ``seed``.

        ``floor_hu``: for a lesion darker than its host but brighter than the tissue
        beyond the host (a lytic bone lesion: bone, lesion, then muscle and fat), the
        region also stops at the half-way HU between the lesion and ``floor_hu``, so it
        cannot run on into the darker tissue outside.

        ``seed``, ``allowed``: bool arrays of the crop ``box``. Returns the crop mask (holes
        filled), the lesion's HU estimate (median of the mask's interior) and the
        background HU used (with ``adapt_bg``: the median of a 1.5-3 mm ring around the
        region, re-estimated with the region).
        """
        if sm is None:
            sm = self._smoothed(box)
        vals = sm[seed]
        if vals.size == 0:
            return np.zeros(seed.shape, dtype=bool), float("nan"), bg_hu
        lesion_hu = _median(vals)
        if allowed is not None:
            # the region never leaves ``allowed``: work in its box (grown by 2 voxels, so
            # the erosion and surface smoothing see the same neighbours), paste back
            sub = bbox(allowed, margin=2)
            out = np.zeros(seed.shape, dtype=bool)
            if sub is None:
                return out, lesion_hu, bg_hu
            out[sub], lesion_hu, bg_hu = self._grow_region(
                seed[sub], sm[sub], lesion_hu, bg_hu, allowed[sub], adapt_bg, floor_hu
            )
            return out, lesion_hu, bg_hu
        return self._grow_region(seed, sm, lesion_hu, bg_hu, None, adapt_bg, floor_hu)

    def _grow_region(
        self,
        seed: np.ndarray,
        sm: np.ndarray,
        lesion_hu: float,
        bg_hu: float,
        allowed: np.ndarray | None,
        adapt_bg: bool,
        floor_hu: float | None,
    ) -> tuple[np.ndarray, float, float]:
        """:meth:`delineate`'s iteration from the seeds' median HU ``lesion_hu``."""
        sign = 1.0 if lesion_hu >= bg_hu else -1.0
        region = np.zeros(seed.shape, dtype=bool)

        def grow(lesion: float, bg: float, img: np.ndarray) -> np.ndarray:
            # the lesion's side of the half-way HU to each neighbour, connected to the seed
            beyond = _side(img, (bg + lesion) / 2.0, sign)
            if floor_hu is not None and sign < 0 and lesion > floor_hu:
                beyond &= img > (lesion + floor_hu) / 2.0
            if allowed is not None:
                beyond &= allowed
            return connected_to(beyond, seed, connectivity=self.s.connectivity)

        used = (lesion_hu, bg_hu)
        for _ in range(4):
            used = (lesion_hu, bg_hu)
            region = grow(*used, sm)
            interior = _in_box(region, erode_neighbours)
            if interior.sum() < 8:
                break
            new = _median(sm[interior])
            new_bg = bg_hu
            if adapt_bg:
                ring = _shell(region, 1.5, 3.0, self.sp_full)
                if allowed is not None:
                    ring &= allowed
                if ring.sum() >= 8:
                    new_bg = _median(sm[ring])
            if abs(new - lesion_hu) < 0.5 and abs(new_bg - bg_hu) < 0.5:
                lesion_hu, bg_hu = new, new_bg
                break
            lesion_hu, bg_hu = new, new_bg
        if region.any() and self.s.smoothing_sigma_mm > 0:
            # the final boundary on the CT with the smoothing's curvature shift undone
            region = grow(*used, self._uncurved(region, sm))
        if region.any():
            box = bbox(region, margin=1)
            assert box is not None
            edge = None
            if allowed is not None:
                edge = ~erode_neighbours(allowed[box], 26, border_value=True)
            smoothed = _smooth_surface(region[box], edge)
            region = np.zeros_like(region)
            region[box] = smoothed
        return region, lesion_hu, bg_hu

    def _uncurved(self, region: np.ndarray, sm: np.ndarray) -> np.ndarray:
        """``sm`` with the shrinkage of curved surfaces by the denoising Gaussian undone
        within one voxel of ``region``'s surface.

        A Gaussian of variance ``V = diag(v)`` is the heat flow ``u + 1/2 div(V grad u)``
        to first order (Koenderink, Biol Cybern 1984;50:363). In coordinates where the
        kernel is isotropic, the Laplacian splits into the second derivative across the
        level surface, which leaves a symmetric edge's half-way surface in place, and the
        tangential part ``|grad u| curv``, which moves it along its mean curvature
        (Alvarez, Guichard, Lions and Morel, Arch Ration Mech Anal 1993;123:199): a ball of
        radius R shrinks by about sigma^2 / R, 4 % of the volume of a 10 mm lesion at
        sigma = 0.6 mm. The tangential part is subtracted again (with ``v`` the variance
        of the discrete kernel per axis, mm^2); the voxel's own partial volume is not
        changed. Returns a copy of ``sm``."""
        out = sm.copy()
        box = bbox(region, margin=1)
        if box is None:
            return out
        h = np.asarray(self.sp_full, dtype=np.float64)
        var = np.asarray(self.kernel_var_mm2, dtype=np.float64)
        crop = np.ascontiguousarray(sm[box])
        fixed = crop.copy()
        _uncurve_kernel(crop, np.ascontiguousarray(region[box]), h, var, fixed)
        out[box] = fixed
        return out

    @staticmethod
    def leaks(region: np.ndarray, allowed: np.ndarray, fraction: float = 0.1) -> bool:
        """True when ``region`` runs along the edge of ``allowed`` for more than ``fraction``
        of its surface: it continues into a larger structure (bowel, muscle)."""
        box = bbox(region, margin=1)
        if box is None:
            return False
        # both erosions are needed at ``region``'s voxels only: its box grown by one voxel
        # gives them their 6 neighbours (where the box meets the array's edge, the edge is
        # the same)
        r, a = region[box], allowed[box]
        edge = a & ~erode_neighbours(a)
        surface = r & ~erode_neighbours(r)
        return bool((r & edge).sum() > fraction * max(1, int(surface.sum())))

    def split(self, region: np.ndarray, box: tuple[slice, slice, slice]) -> list[np.ndarray]:
        """Split touching lesions by a watershed of the distance transform (h-maxima markers)."""
        if self.s.split_min_depth_mm <= 0 or region.sum() < 16:
            return [region]
        # on the region's box grown by one voxel: every voxel of the region has its
        # nearest background voxel there (the frame is background), and the markers and
        # watershed are confined to the region, so the parts are the whole crop's
        sub = bbox(region, margin=1)
        assert sub is not None
        parts = self._split_box(np.ascontiguousarray(region[sub]))
        if len(parts) == 1:
            return [region]
        out = []
        for p in parts:
            full = np.zeros(region.shape, dtype=bool)
            full[sub] = p
            out.append(full)
        return out

    def _split_box(self, region: np.ndarray) -> list[np.ndarray]:
        """:meth:`split` of a region whose box has a background frame one voxel wide."""
        from skimage.morphology import h_maxima
        from skimage.segmentation import watershed

        edt = ndi.distance_transform_edt(region, sampling=self.sp_full)
        peaks = h_maxima(edt, self.s.split_min_depth_mm)
        markers, n = ndi.label(peaks & region, structure=np.ones((3, 3, 3)))
        if n <= 1:
            return [region]
        ws = watershed(-edt, markers, mask=region)
        # merge back pieces joined by a wide neck: two lesions touch through a narrow
        # waist (neck depth below half the smaller piece's depth); an irregular lesion
        # over-split by the watershed does not
        peak = ndi.maximum(edt, ws, index=np.arange(1, n + 1))
        parent = list(range(n + 1))

        def find(a: int) -> int:
            while parent[a] != a:
                a = parent[a]
            return a

        for axis in range(3):
            a = np.moveaxis(ws, axis, 0)
            e = np.moveaxis(edt, axis, 0)
            lo, hi = a[:-1], a[1:]
            sel = (lo != hi) & (lo > 0) & (hi > 0)
            if not sel.any():
                continue
            neck = np.minimum(e[:-1], e[1:])[sel]
            for p_, q_, d in zip(lo[sel], hi[sel], neck, strict=True):
                i, j = find(int(p_)), find(int(q_))
                if i != j and d >= 0.5 * min(peak[int(p_) - 1], peak[int(q_) - 1]):
                    parent[max(i, j)] = min(i, j)
        roots = np.array([find(k) for k in range(n + 1)])
        merged = roots[ws]
        return [merged == r for r in np.unique(roots[1:]) if (merged == r).any()]

    def add(
        self, region: np.ndarray, box: tuple[slice, slice, slice], organ: str, how: str
    ) -> bool:
        """Paint a lesion unless it is mostly an earlier one; True when added."""
        min_vox = self.s.min_lesion_ml * 1000.0 / float(np.prod(self.sp_full))
        sub = bbox(region)
        if sub is None:
            return False
        # the region's own box within ``box`` (painting touches nothing else)
        box = tuple(  # type: ignore[assignment]
            slice(b.start + c.start, b.start + c.stop) for b, c in zip(box, sub, strict=True)
        )
        region = region[sub]
        view = self.labels[box]
        free = region & (view == 0)
        if free.sum() < max(1.0, min_vox) or free.sum() < 0.5 * region.sum():
            return False
        if len(self.organs) >= np.iinfo(np.uint16).max:
            raise SegmentationError("more than 65535 lesions: segmentation is not plausible")
        view[free] = len(self.organs) + 1
        self.organs.append(organ)
        self.detected_by.append(how)
        return True

    def _ct_lesions(
        self,
        cand: np.ndarray,
        host_hu: float,
        min_contrast_hu: float,
        allowed_full: Callable[[tuple[slice, slice, slice]], np.ndarray],
        organ: str,
        hot: np.ndarray | None,
        floor_hu: float | None = None,
        narrow_full: Callable[[tuple[slice, slice, slice]], np.ndarray] | None = None,
        capsule: tuple[np.ndarray, np.ndarray] | None = None,
    ) -> None:
        """Delineate every coarse candidate component against the host tissue's HU.

        Brighter and darker candidates are separate components (two touching lesions of
        opposite contrast), the larger first (a necrotic core then falls inside its
        lesion's filled mask and is not a lesion of its own)."""
        jobs: list[tuple[int, np.ndarray, int, tuple[slice, slice, slice]]] = []
        for side in (cand & (self.ctc > host_hu), cand & (self.ctc < host_hu)):
            lab, n = label(side, connectivity=26)
            sizes = np.bincount(lab.ravel(), minlength=n + 1)
            for k, sl in enumerate(ndi.find_objects(lab), start=1):
                if sl is not None:
                    jobs.append((int(sizes[k]), lab, k, sl))
        jobs.sort(key=lambda j: -j[0])
        for _size, lab, k, sl in jobs:
            cbox = _grow(sl, (2, 2, 2), self.grid.shape)
            comp = lab[cbox] == k
            box = self._full_of(cbox)
            sign = 1.0 if float(np.median(self.ctc[cbox][comp])) > host_hu else -1.0
            allowed = allowed_full(box)
            sm = self._smoothed(box)
            if capsule is not None:
                # the lesion is delineated on the CT smoothed within the liver: the fat
                # beyond its surface does not darken the parenchyma next to it
                sm = self._smoothed_within(box, capsule[1][box], allowed, sm)
            seed = self._up_local(comp, cbox, box) & ((sm - host_hu) * sign > min_contrast_hu)
            region, lesion_hu, _ = self.delineate(
                seed, box, host_hu, allowed, sm=sm, floor_hu=floor_hu
            )
            if capsule is not None and math.isfinite(lesion_hu):
                region = self._to_capsule(region, box, sm, lesion_hu, *capsule)
            if narrow_full is not None and self.leaks(region, allowed):
                # it ran on along the edge of the allowed region (the partial-volume rim
                # around a bone): delineate it again within the narrower region
                narrow = narrow_full(box)
                region, _, _ = self.delineate(
                    seed & narrow, box, host_hu, narrow, sm=sm, floor_hu=floor_hu
                )
            how = "ct"
            if hot is not None and bool(hot[cbox][dilate_ball(comp, self.voxel_mm, self.sp)].any()):
                how = "ct+pet"
            parts = self.split(region, box) if organ == "liver" else [region]
            if len(parts) > 1:
                parts = self._own_boundaries(parts, box, sm, host_hu, allowed)
            for part in parts:
                self.add(part, box, organ, how)

    def _own_boundaries(
        self,
        parts: list[np.ndarray],
        box: tuple[slice, slice, slice],
        sm: np.ndarray,
        host_hu: float,
        allowed: np.ndarray,
    ) -> list[np.ndarray]:
        """Touching lesions split apart (:meth:`split`), each delineated again at the
        half-way HU between its own attenuation and the host's, within ``allowed`` less
        the other lesions; its voxels outside ``allowed`` (completed to the capsule) stay.

        Together they were delineated at one half-way HU, set by the median of the pair's
        interior: the larger lesion's. A smaller lesion of weaker contrast lost its
        partial-volume shell (seeds 11, 19, 23: 5-12 % of its volume), one of stronger
        contrast gained one (seed 17: +5.5 %).
        """
        out = []
        for i, part in enumerate(parts):
            others = np.zeros_like(part)
            for j, other in enumerate(parts):
                if j != i:
                    others |= other
            inner = _in_box(part, erode_neighbours)
            seed = inner if inner.sum() >= 8 else part
            region, _, _ = self.delineate(seed, box, host_hu, allowed & ~others, sm=sm)
            # a part with no seed left inside ``allowed`` (all of it completed to the
            # capsule) keeps the shape the split gave it
            out.append(region | (part & ~allowed) if region.any() else part)
        return out

    def _to_capsule(
        self,
        region: np.ndarray,
        box: tuple[slice, slice, slice],
        sm: np.ndarray,
        lesion_hu: float,
        inside: np.ndarray,
        liver: np.ndarray,
    ) -> np.ndarray:
        """A liver lesion under the capsule, completed out to the liver's surface.

        Liver lesions are delineated in the liver without its partial-volume rim
        (``inside``), where liver and fat blend to lesion-like values, so that they cannot
        run on along the surface. A lesion that reaches that rim loses the rim, and the
        part of a bulging lesion beyond the liver mask (a coarse-grid organ surface does
        not follow a small bulge). Here it is completed outwards, the partial-volume
        boundary of a third material taken into account: voxels outside ``inside``

        * whose nearest ``inside`` voxel is the lesion's (not the parenchyma's),
        * within the lesion's equivalent-sphere radius of it,
        * on the lesion's side of the half-way HU between the lesion and the tissue just
          outside the liver next to it (fat, diaphragm: the median of the voxels outside
          ``liver``, 1.5 to 6 mm from the lesion, whose nearest ``inside`` voxel is
          parenchyma), when the two differ by ``liver_lesion_min_contrast_hu`` at least,
        * connected to the lesion.

        The completed voxels are added to the liver mask (the lesion is liver). ``region``,
        ``sm``: arrays of the crop ``box``; ``inside``, ``liver``: whole-grid masks.
        """
        sp = self.sp_full
        inside_b = inside[box]
        if not region.any() or not (region & ~erode_ball(inside_b, max(sp), sp)).any():
            return region  # deep: it does not reach the rim
        outside = ~inside_b
        if not outside.any():
            return region
        idx = ndi.distance_transform_edt(
            outside, sampling=sp, return_distances=False, return_indices=True
        )
        owned = outside & region[tuple(idx)]
        ring = _shell(region, 1.5, 6.0, sp) & ~liver[box] & ~owned & (self.labels[box] == 0)
        if ring.sum() < 8:
            return region
        out_hu = _median(sm[ring])
        if abs(lesion_hu - out_hu) < self.s.liver_lesion_min_contrast_hu:
            return region
        sign = 1.0 if lesion_hu > out_hu else -1.0
        r_eq_mm = (3.0 * float(region.sum()) * float(np.prod(sp)) / (4.0 * math.pi)) ** (1 / 3)
        cand = (
            owned
            & ((sm - (lesion_hu + out_hu) / 2.0) * sign > 0)
            & dilate_ball(region, r_eq_mm, sp)
            & (self.labels[box] == 0)
        )
        grown = connected_to(cand | region, region, connectivity=6)
        liver[box] |= grown
        return grown

    def liver_lesions(self, liver_full: np.ndarray, hull: np.ndarray) -> None:
        s, sp = self.s, self.sp
        liver_hu = self.est["liver_hu"]
        # one coarse voxel in-plane (not across slices, where a coarse voxel of thick
        # slices is deeper than a flat subcapsular lesion)
        deep = erode_ball(hull, sp[1], sp)
        cand = deep & (np.abs(self.ctc - liver_hu) > s.liver_lesion_min_contrast_hu)
        hot = None
        if self.petc is not None:
            hot = self.petc > s.liver_pet_lesion_ratio * self.est["liver_suv_coarse"]
        # the liver without its partial-volume rim: a subcapsular lesion must not run on
        # along the surface, where liver and fat blend to lesion-like values
        inside = erode_ball(liver_full, max(self.sp_full[1:]), self.sp_full)
        self._ct_lesions(
            cand,
            liver_hu,
            s.liver_lesion_min_contrast_hu,
            lambda b: inside[b],
            "liver",
            hot,
            capsule=(inside, liver_full),
        )
        if hot is not None:
            self._pet_liver_lesions(hot & deep, liver_full)

    def _pet_liver_lesions(self, hot: np.ndarray, liver_full: np.ndarray) -> None:
        """Hot spots in the liver with no CT lesion: delineated on PET (41 % of max)."""
        lab, n = label(hot, connectivity=26)
        for k in range(1, n + 1):
            comp = lab == k
            box = self._full_box(comp, 10.0)
            if (self.labels[box][self._up_local(comp, self._whole, box)] > 0).any():
                continue  # the CT lesion it belongs to is already there
            pet = self._pet_crop(box)
            bg = self.est["liver_suv_coarse"]
            seed = self._up_local(comp, self._whole, box)
            peak = float(np.nanmax(np.where(seed, pet, np.nan)))
            t = bg + self.s.pet_contour_fraction * (peak - bg)
            region = connected_to((pet >= t) & liver_full[box], seed & (pet >= t), connectivity=26)
            for part in self.split(region, box):
                self.add(part, box, "liver", "pet")

    def _pet_crop(self, box: tuple[slice, slice, slice]) -> np.ndarray:
        assert self.pet_sampler is not None
        crop = self.ct.crop(box)
        return np.asarray(self.pet_sampler(crop), dtype=np.float32)

    def bone_hull(self) -> np.ndarray:
        """Bone (``bone_min_hu``) with its holes filled, axially (lytic lesions open on one
        side), then in 3-D; coarse grid."""
        bone = self.bodyc & (self.ctc >= self.s.bone_min_hu)
        if not bone.any():
            return bone
        return fill_holes(_fill_holes_axial(bone), connectivity=6)

    def bone_lesions(self, hull: np.ndarray) -> None:
        """Lesions in the bone ``hull`` (:meth:`bone_hull`)."""
        s, sp = self.s, self.sp
        bone = self.bodyc & (self.ctc >= s.bone_min_hu)
        if not bone.any():
            self.notes.append(f"no bone above bone_min_hu = {s.bone_min_hu} HU")
            return
        inner = erode_ball(hull, self.voxel_mm, sp)
        self.est["bone_hu"] = bone_hu = (
            _median(self.ctc[inner & bone]) if (inner & bone).any() else _median(self.ctc[bone])
        )
        cand = inner & (np.abs(self.ctc - bone_hu) > s.bone_lesion_min_contrast_hu)
        hot = self.petc > self._hot_threshold() if self.petc is not None else None
        hull_wide = dilate_ball(hull, self.voxel_mm, sp)
        floor: float | None = None
        try:
            # muscle and fat around the bone: a lytic lesion stops half-way to them
            floor = self.est["bone_surroundings_hu"] = self.surroundings_hu(hull, "bone")
        except SegmentationError:
            self.notes.append(
                "no tissue around the bone: lytic bone lesions are bounded by the bone "
                "outline alone"
            )
        self._ct_lesions(
            cand,
            bone_hu,
            s.bone_lesion_min_contrast_hu,
            lambda b: self._up_local(hull_wide[self._coarse_of(b)], self._coarse_of(b), b),
            "bone",
            hot,
            floor_hu=floor,
            narrow_full=lambda b: self._up_local(hull[self._coarse_of(b)], self._coarse_of(b), b),
        )

    def _hot_threshold(self) -> float:
        if "soft_tissue_suv" not in self.est:
            assert self.petc is not None
            soft = self.bodyc & (self.ctc > -200) & (self.ctc < self.s.organ_hu_range[0])
            if soft.any():
                self.est["soft_tissue_suv"] = _median(self.petc[soft])
            else:
                self.est["soft_tissue_suv"] = 0.0
                self.notes.append(
                    "no fat or muscle in the body to estimate the soft-tissue background SUV: "
                    f"PET hot spots are thresholded at pet_hotspot_min_suv = "
                    f"{self.s.pet_hotspot_min_suv} alone"
                )
        return max(
            self.s.pet_hotspot_min_suv, self.s.pet_hotspot_bg_ratio * self.est["soft_tissue_suv"]
        )

    def _full_of(self, cbox: tuple[slice, slice, slice]) -> tuple[slice, slice, slice]:
        return tuple(  # type: ignore[return-value]
            slice(sl.start * b, n if sl.stop == g else sl.stop * b)
            for sl, b, n, g in zip(
                cbox, self.grid.block, self.a.shape, self.grid.shape, strict=True
            )
        )

    def pet_search(
        self,
        liver_hull: np.ndarray,
        spleen: np.ndarray | None,
        bone_hull: np.ndarray,
        pool: ThreadPoolExecutor | None,
    ) -> _PetSearch | None:
        """Extra-hepatic lesions, first half: PET hot spots with a soft-tissue CT
        correlate, planned (:meth:`_plan_hot`) on ``pool`` while the liver and bone
        lesions are searched on this thread; :meth:`pet_lesions` adds them. None when
        there is no hot spot.

        Each spot is delineated on a worker thread (what it finds depends on the CT and
        PET only) and then added in order (what depends on the lesions found so far): the
        same lesions, in the same order, as one spot after the other (tested). A
        component's spots share one smoothed crop; the hotter cores of spots that ran on
        into a larger structure follow, in the same way.
        """
        assert self.petc is not None
        s, sp = self.s, self.sp
        thr = self._hot_threshold()
        hot = self.bodyc & (self.petc > thr)
        blood = (self.ctc >= s.blood_pool_min_hu) & (self.ctc < s.bone_min_hu)
        kidney = blood & (self.petc >= self.est["liver_suv_coarse"]) & ~liver_hull
        organs = liver_hull | kidney
        if spleen is not None:
            organs |= spleen
        hot &= ~dilate_ball(organs, s.organ_spill_margin_mm, sp)
        hot &= ~dilate_ball(blood & ~kidney, 0.5 * s.organ_spill_margin_mm, sp)
        lab, n = label(hot, connectivity=26)
        if n == 0:
            return None
        objs = ndi.find_objects(lab)
        parts: list[_HotPart] = []
        for k in range(1, n + 1):
            sl = objs[k - 1]
            if sl is not None:
                whole = lab[sl] == k
                parts.extend((sl, m, whole, 0) for m in self._split_hot(whole, self.petc[sl], thr))
        return _PetSearch(thr, bone_hull, self._plan_parts(parts, thr, bone_hull, pool))

    def pet_lesions(self, search: _PetSearch, pool: ThreadPoolExecutor | None) -> None:
        """Extra-hepatic lesions, second half: the planned hot spots added in order."""
        s = self.s
        lo, hi = s.soft_tissue_hu_range
        thr = search.threshold
        rejected = {"fat": 0, "contrast": 0, "bone": 0, "leak": 0, "refined": 0}
        plans = search.plans
        while plans:
            subs = [p for plan in plans for p in self._commit_hot(plan.result(), thr, rejected)]
            plans = self._plan_parts(subs, thr, search.bone_hull, pool)
        refined = rejected.pop("refined")
        total = sum(rejected.values())
        if total:
            self.notes.append(
                f"{total} PET hot spots were not taken as lesions: {rejected['fat']} with a CT "
                f"outside soft_tissue_hu_range {lo}-{hi} HU (fat, blood), "
                f"{rejected['contrast']} without CT contrast to their surroundings (or "
                "without surroundings to compare with), "
                f"{rejected['bone']} in bone (left to the CT bone-lesion path), "
                f"{rejected['leak']} whose CT region ran on into a larger structure"
            )
        if refined:
            self.notes.append(
                f"{refined} PET hot spots whose CT region ran on into a larger structure were "
                f"searched again for hotter spots inside them (hotspot_refine_fraction = "
                f"{s.hotspot_refine_fraction})"
            )

    def _plan_parts(
        self,
        parts: list[_HotPart],
        thr: float,
        bone_hull: np.ndarray,
        pool: ThreadPoolExecutor | None,
    ) -> list[Future[_HotPlan]]:
        """:meth:`_plan_hot` of every spot, submitted to ``pool`` (largest components
        first: they take longest), or done here without one; in the order of ``parts``."""
        crops = _Crops()
        futures: dict[int, Future[_HotPlan]] = {}
        order = sorted(range(len(parts)), key=lambda i: -int(parts[i][2].sum()))
        for i in order if pool is not None else range(len(parts)):
            if pool is not None:
                futures[i] = pool.submit(self._plan_hot, *parts[i], thr, bone_hull, crops)
            else:
                futures[i] = Future()
                futures[i].set_result(self._plan_hot(*parts[i], thr, bone_hull, crops))
        return [futures[i] for i in range(len(parts))]

    def _plan_hot(
        self,
        sl: tuple[slice, slice, slice],
        comp_l: np.ndarray,
        whole_l: np.ndarray,
        depth: int,
        thr: float,
        bone_hull: np.ndarray,
        crops: _Crops,
    ) -> _HotPlan:
        """One hot spot ``comp_l`` (coarse box ``sl``, of the hot component ``whole_l``):
        everything :meth:`_commit_hot` needs that does not depend on the lesions found so
        far (so spots can be planned on several threads): delineated on CT, kept when its
        CT region stays near it.

        When its CT region ran on into a larger structure (a primary in a bowel loop whose
        physiological uptake is above the threshold too), the plan holds the hotter spots
        inside it to examine in its place: ``comp_l`` re-thresholded at its median SUV plus
        ``hotspot_refine_fraction`` of the way to its SUVmax (once: ``depth`` 0 only).
        ``crops``: the smoothed CT crops, shared by the spots of a component.
        """
        assert self.petc is not None
        s, sp = self.s, self.sp
        lo, hi = s.soft_tissue_hu_range
        pet_l = self.petc[sl]
        peak = float(pet_l[comp_l].max())
        core_l = comp_l & (pet_l >= thr + 0.5 * (peak - thr))
        if bone_hull[sl][core_l].any():
            return _HotPlan("bone")  # uptake of bone or a bone lesion: the CT bone path decides
        core_hu = _median(self.ctc[sl][core_l])
        if not lo <= core_hu <= hi:
            return _HotPlan("fat")
        # work in a local box: the component, dilated
        small, large = s.pet_lesion_ct_margin_mm
        m = tuple(math.ceil((large + 2.0) / v) + 1 for v in sp)
        cbox = _grow(sl, m, self.grid.shape)  # type: ignore[arg-type]
        inner_sl = tuple(
            slice(a.start - b.start, a.stop - b.start) for a, b in zip(sl, cbox, strict=True)
        )
        c_comp = np.zeros(tuple(c.stop - c.start for c in cbox), dtype=bool)
        c_comp[inner_sl] = comp_l
        c_whole = np.zeros_like(c_comp)
        c_whole[inner_sl] = whole_l
        c_core = np.zeros_like(c_comp)
        c_core[inner_sl] = core_l
        box = self._full_of(cbox)
        core = self._up_local(c_core, cbox, box)
        plan = _HotPlan("contrast", box=box, core=core)
        # the CT background: a ring one coarse voxel wide, one coarse voxel out
        region_c = dilate_ball(c_comp, self.voxel_mm, sp)
        ring_c = dilate_ball(region_c, self.voxel_mm, sp) & ~region_c
        ring = self._up_local(ring_c, cbox, box)
        seed_hu, ring_hu = self._smoothed_at(box, (core, ring))
        lesion_hu, bg_hu = _median(seed_hu), _median(ring_hu)
        if not math.isfinite(bg_hu) or abs(lesion_hu - bg_hu) < s.lesion_min_contrast_hu:
            return plan
        sm = crops.get(
            tuple(v for b in box for v in (b.start, b.stop)), lambda: self._smoothed(box)
        )
        seed = np.zeros(core.shape, dtype=bool)
        cb = bbox(core)
        if cb is not None:
            side = _side(sm[cb], (lesion_hu + bg_hu) / 2.0, float(np.sign(lesion_hu - bg_hu)))
            seed[cb] = core[cb] & side
        plan.outcome, plan.cbox, plan.c_whole, plan.sm = "delineated", cbox, c_whole, sm
        # the lesion may reach ``small`` mm beyond its hot spot, or ``large`` mm when the
        # whole hot spot is smaller than a ball of that radius (a node with faint uptake
        # is larger than its part above the threshold; a large hot structure given that
        # much room would take in whole bowel loops) or is the hotter core of a larger
        # hot structure (depth 1: the half-maximum core of a primary in a bowel loop)
        whole_mm3 = float(whole_l.sum() * np.prod(sp))
        wide = depth > 0 or whole_mm3 < 4.0 / 3.0 * math.pi * large**3
        margins = (small, large) if wide else (small,)
        for margin in margins:
            allowed = self._up_local(dilate_ball(c_whole, margin, sp), cbox, box)
            region, _, bg = self.delineate(seed, box, bg_hu, allowed, adapt_bg=True, sm=sm)
            if not self.leaks(region, allowed):
                # in fat: a lymph node; a hot spot inside a larger hot structure (bowel
                # with physiological uptake, depth 1) or in soft tissue: other
                plan.region = region
                plan.organ = "lymph_node" if bg < lo and depth == 0 else "other"
                return plan
        plan.leaked = True
        if depth == 0:
            base = _median(pet_l[comp_l])
            t2 = base + s.hotspot_refine_fraction * (peak - base)
            hotter = comp_l & (pet_l >= t2)
            if t2 > thr and hotter.sum() < comp_l.sum():
                lab, _ = label(hotter, connectivity=26)
                for k, ssl in enumerate(ndi.find_objects(lab), start=1):
                    if ssl is None:
                        continue
                    g = (
                        slice(ssl[0].start + sl[0].start, ssl[0].stop + sl[0].start),
                        slice(ssl[1].start + sl[1].start, ssl[1].stop + sl[1].start),
                        slice(ssl[2].start + sl[2].start, ssl[2].stop + sl[2].start),
                    )
                    sub = lab[ssl] == k
                    plan.hotter.append((g, sub, sub, 1))
        return plan

    def _commit_hot(self, plan: _HotPlan, thr: float, rejected: dict[str, int]) -> list[_HotPart]:
        """Add a planned hot spot's lesion unless its core is already a lesion; look for
        nodes in its hot component; return the hotter spots to examine in its place."""
        if plan.outcome in ("bone", "fat"):
            rejected[plan.outcome] += 1
            return []
        assert plan.box is not None and plan.core is not None
        if (self.labels[plan.box][plan.core] > 0).mean() > 0.5:
            return []  # already a lesion (liver or bone)
        if plan.outcome == "contrast":
            rejected["contrast"] += 1
            return []
        assert plan.cbox is not None and plan.c_whole is not None and plan.sm is not None
        if plan.region is not None:
            self.add(plan.region, plan.box, plan.organ, "pet")
        self._nodes_in_hot(plan.c_whole, plan.cbox, plan.box, plan.sm, thr)
        if not plan.leaked:
            return []
        if plan.hotter:
            rejected["refined"] += 1
            return plan.hotter
        rejected["leak"] += 1
        return []

    def _coarse_of(self, box: tuple[slice, slice, slice]) -> tuple[slice, slice, slice]:
        """The coarse box covering the full-grid box ``box``."""
        return tuple(  # type: ignore[return-value]
            slice(min(f.start // b, g - 1), min(g, (f.stop - 1) // b + 1))
            for f, b, g in zip(box, self.grid.block, self.grid.shape, strict=True)
        )

    def _nodes_in_hot(
        self,
        c_comp: np.ndarray,
        cbox: tuple[slice, slice, slice],
        box: tuple[slice, slice, slice],
        sm: np.ndarray,
        thr: float,
    ) -> None:
        """Soft-tissue nodules enclosed by fat inside a hot spot that holds a hotter lesion
        (a node on the shoulder of a brighter one): each is a lymph node when its own
        uptake exceeds the threshold."""
        assert self.petc is not None
        lo, hi = self.s.soft_tissue_hu_range
        allowed = self._up_local(
            dilate_ball(c_comp, self.s.pet_lesion_ct_margin_mm[1], self.sp), cbox, box
        )
        soft = allowed & (sm >= lo) & (sm <= hi) & (self.labels[box] == 0)
        lab, n = label(soft, connectivity=26)
        if n == 0:
            return
        max_vox = self.s.max_node_ml * 1000.0 / float(np.prod(self.sp_full))
        min_vox = self.s.min_lesion_ml * 1000.0 / float(np.prod(self.sp_full))
        for k, sl in enumerate(ndi.find_objects(lab), start=1):
            if sl is None:
                continue
            blob = lab[sl] == k
            nvox = int(blob.sum())
            if nvox < min_vox or nvox > max_vox:
                continue
            # the coarse masks on the blob's box only (``sub``: the same box on the grid)
            sub = tuple(
                slice(b.start + c.start, b.start + c.stop) for b, c in zip(box, sl, strict=True)
            )
            if not self._up_local(c_comp, cbox, sub)[blob].any():  # type: ignore[arg-type]
                continue
            # 2 erosions of ``allowed``: its crop around the blob, 2 voxels wider, holds
            # every neighbour they look at (where it meets the box's edge, the edge is the
            # same)
            wide = _grow(sl, (2, 2, 2), allowed.shape)
            inner = erode_neighbours(erode_neighbours(allowed[wide]))
            at = tuple(
                slice(c.start - w.start, c.stop - w.start) for c, w in zip(sl, wide, strict=True)
            )
            if float(inner[at][blob].mean()) < 0.9:
                continue  # part of a larger structure (bowel, muscle) or not hot
            pet = self._up_local(self.petc[cbox], cbox, sub)  # type: ignore[arg-type]
            if float(pet[blob].max()) <= thr:
                continue
            seed = np.zeros(sm.shape, dtype=bool)
            seed[sl] = erode_neighbours(blob) if nvox > 27 else blob
            lesion_hu = _median(sm[seed])
            ring = _shell(lab == k, 1.5, 3.0, self.sp_full)
            bg_hu = _median(sm[ring])
            if abs(lesion_hu - bg_hu) < self.s.lesion_min_contrast_hu:
                continue
            near = dilate_ball(lab == k, 2.0, self.sp_full)
            region, _, bg_hu = self.delineate(seed, box, bg_hu, near, adapt_bg=True, sm=sm)
            if self.leaks(region, near):
                continue
            organ = "lymph_node" if bg_hu < lo else "other"
            self.add(region, box, organ, "pet")

    def _split_hot(self, comp: np.ndarray, pet: np.ndarray, thr: float) -> list[np.ndarray]:
        """Hot spots blurred into one component, split at their PET saddles (watershed of
        the SUV from maxima at least ``hotspot_split_fraction`` x threshold high)."""
        from skimage.morphology import h_maxima
        from skimage.segmentation import watershed

        if comp.sum() < 4:
            return [comp]
        vals = np.where(comp, pet, 0.0).astype(np.float64)
        peaks = h_maxima(vals, self.s.hotspot_split_fraction * thr) & comp
        markers, n = ndi.label(peaks, structure=np.ones((3, 3, 3)))
        if n <= 1:
            return [comp]
        ws = watershed(-vals, markers, mask=comp)
        return [ws == k for k in range(1, n + 1) if (ws == k).any()]

    def _up_local(
        self,
        coarse_local: np.ndarray,
        cbox: tuple[slice, slice, slice],
        box: tuple[slice, slice, slice],
    ) -> np.ndarray:
        """A mask of the coarse box ``cbox`` on the full-grid box ``box``."""
        idx = [
            np.minimum(np.arange(f.start, f.stop) // b, g - 1) - c.start
            for f, b, g, c in zip(box, self.grid.block, self.grid.shape, cbox, strict=True)
        ]
        out = np.empty((idx[0].size, idx[1].size, idx[2].size), dtype=coarse_local.dtype)
        _gather_kernel(np.ascontiguousarray(coarse_local), idx[0], idx[1], idx[2], out)
        return out


def segment(
    ct: Volume,
    pet_sampler: Callable[[Volume], np.ndarray] | None,
    settings: MeasureSettings,
    *,
    liver: np.ndarray | None = None,
    spleen: np.ndarray | None = None,
    lesions_auto: bool = True,
) -> Segmentation:
    """Segment liver, spleen and lesions of one CT (PET sampled by ``pet_sampler``).

    Parameters
    ----------
    ct : Volume
        CT in HU, axis 0 the axial slice.
    pet_sampler : callable or None
        ``pet_sampler(reference_volume) -> ndarray``: SUV resampled onto the grid of a
        Volume (NaN outside the PET field of view); None for a CT-only study.
    settings : MeasureSettings
    liver, spleen : ndarray of bool, optional
        Imported masks on the CT grid; they replace the automatic stages.
    lesions_auto : bool
        Run lesion detection (False when lesions are imported).

    Returns
    -------
    Segmentation
    """
    sg = _Segmenter(ct, pet_sampler, settings)
    with worker_pool() as pool:
        return _segment(sg, pool, liver, spleen, lesions_auto)


def _segment(
    sg: _Segmenter,
    pool: ThreadPoolExecutor | None,
    liver: np.ndarray | None,
    spleen: np.ndarray | None,
    lesions_auto: bool,
) -> Segmentation:
    """:func:`segment`'s stages; the liver's refinement on the full grid and the bone hull
    run on ``pool`` while the spleen is found (they depend only on the CT and the coarse
    liver), the PET hot spots while the liver and bone lesions are searched."""
    sg.body()
    if liver is None or lesions_auto:
        _core, hull = sg.liver_coarse()
    if liver is None:
        liver_job = submit(pool, sg.refine_organ, hull, sg.est["liver_hu"])
    else:
        hull = block_mean(liver.astype(np.uint8), sg.grid.block) >= 0.5
    bone_job = submit(pool, sg.bone_hull) if lesions_auto else None
    if sg.petc is not None and "liver_suv_coarse" not in sg.est:
        sg.est["liver_suv_coarse"] = _median(sg.petc[hull])
    spleen_full = spleen
    if spleen is None:
        sc = sg.spleen_coarse(hull)
        if sc is not None:
            sg.est["spleen_hu"] = _median(
                sg.ctc[erode_ball(sc, sg.voxel_mm, sg.sp)] if sc.sum() > 50 else sg.ctc[sc]
            )
            spleen_full = sg.refine_organ(sc, sg.est["spleen_hu"])
    else:
        sc = block_mean(spleen.astype(np.uint8), sg.grid.block) >= 0.5
    liver_full = liver_job.result() if liver is None else liver
    if bone_job is not None:
        bone_hull = bone_job.result()
        # the PET hot spots are delineated on the pool while the liver and bone
        # lesions are searched here; they are added after them, in order
        search = sg.pet_search(hull, sc, bone_hull, pool) if sg.petc is not None else None
        sg.liver_lesions(liver_full, hull)
        sg.bone_lesions(bone_hull)
        if search is not None:
            sg.pet_lesions(search, pool)
        elif sg.petc is None:
            sg.notes.append(
                "CT-only study: lesions outside liver and bone (lymph nodes, primary) are "
                "found on PET and were not searched for; import them with --lesion-mask"
            )
    return Segmentation(
        liver=liver_full,
        spleen=spleen_full,
        lesions=sg.labels,
        organs=sg.organs,
        detected_by=sg.detected_by,
        estimates=sg.est,
        notes=sg.notes,
    )

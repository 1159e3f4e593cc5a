"""Spill-in: the voxels of a lesion that hotter tissue nearby does not reach.

A PET image is the true uptake blurred by the point-spread function (PSF) of the scanner
and reconstruction, so activity from a hot structure "spills in" to the voxels around it
(Soret, Bacharach and Buvat, J Nucl Med 2007;48:932-945, partial-volume effect and
spill-over). A lesion's SUVmax next to a hotter lesion or organ, or at the rim of a lesion
colder than the parenchyma it sits in, then measures its neighbour rather than the lesion.

For a Gaussian PSF of full width at half maximum ``FWHM``, the fraction of a large uniform
hot region's contrast found at distance ``d`` outside its edge is the edge-spread function
``0.5 * erfc(2 * sqrt(ln 2) * d / FWHM)``: 12 % at ``d = FWHM / 2``, 0.9 % at
``d = FWHM``. :func:`hotter_tissue` finds the tissue that can raise a lesion's uptake and
:func:`spill_in_free` keeps the lesion voxels farther than a distance tied to the FWHM
from it (``netvolume.measure._measure`` uses both, with the settings ``pet_fwhm_mm`` and
``spill_in_distance_fwhm``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
import scipy.ndimage as ndi

__all__ = ["edge_spill_fraction", "hotter_tissue", "spill_in_free"]

#: The name :func:`hotter_tissue` gives a lesion's own surroundings.
SURROUNDINGS = "its hotter surroundings"


def edge_spill_fraction(distance_mm: float, fwhm_mm: float) -> float:
    """Fraction of a hot half-space's contrast at ``distance_mm`` outside its edge.

    Parameters
    ----------
    distance_mm : float
        Distance from the edge of the hot region, mm (>= 0).
    fwhm_mm : float
        FWHM of the Gaussian point-spread function, mm.

    Returns
    -------
    float
        ``0.5 * erfc(2 * sqrt(ln 2) * distance_mm / fwhm_mm)``: 0.5 at the edge, 0.0093 at
        one FWHM.
    """
    return 0.5 * math.erfc(2.0 * math.sqrt(math.log(2.0)) * distance_mm / fwhm_mm)


def spill_in_free(
    lesion: np.ndarray,
    sources: np.ndarray,
    spacing: tuple[float, float, float],
    distance_mm: float,
    min_voxels: int = 1,
) -> tuple[np.ndarray, bool]:
    """The voxels of ``lesion`` farther than ``distance_mm`` from every voxel of ``sources``.

    Parameters
    ----------
    lesion : ndarray of bool
        The lesion's mask (a crop of the measurement grid).
    sources : ndarray of bool, same shape
        The hotter tissue whose spill-in is to be avoided (voxels outside ``lesion``).
        The crop must reach ``distance_mm`` beyond the lesion, or sources outside it are
        not seen.
    spacing : (float, float, float)
        Voxel size along the three array axes, mm.
    distance_mm : float
        Lesion voxels at this distance or closer to a source are dropped (0: none is).
    min_voxels : int
        When fewer voxels than this are left, the ``min_voxels`` lesion voxels farthest
        from the sources (ties included) are returned instead.

    Returns
    -------
    mask : ndarray of bool
        The voxels to measure the lesion's uptake on: ``lesion`` itself when no source
        lies within ``distance_mm``.
    residual : bool
        True when no ``min_voxels`` voxels were that far, so the mask is the lesion's
        farthest voxels and still receives some spill-in.
    """
    lesion = np.asarray(lesion, dtype=bool)
    sources = np.asarray(sources, dtype=bool) & ~lesion
    if distance_mm <= 0 or not sources.any() or not lesion.any():
        return lesion, False
    dist = np.asarray(ndi.distance_transform_edt(~sources, sampling=spacing))
    free = lesion & (dist > distance_mm)
    if int(free.sum()) >= max(1, min_voxels):
        return free, False
    inside = np.sort(dist[lesion])[::-1]
    cut = inside[min(max(1, min_voxels), inside.size) - 1]
    return lesion & (dist >= cut), True


def hotter_tissue(
    labels: np.ndarray,
    k: int,
    max_by_label: Mapping[int, float | None],
    mean: float | None,
    background: float | None,
    names: Sequence[str],
    organs: Mapping[str, tuple[np.ndarray, float]] | None = None,
) -> dict[str, np.ndarray]:
    """The tissue around lesion ``k`` whose spill-in can raise its measured uptake.

    Blurring is a weighted average, so a neighbour lifts a lesion's SUVmax only when it
    is hotter than that SUVmax; and a lesion colder than its surroundings (a photopenic
    lesion) shows their uptake at its rim. Values are in any one unit (Bq/mL or SUV).

    Parameters
    ----------
    labels : ndarray of int
        Lesion label map (a crop of the measurement grid; 0 outside lesions).
    k : int
        The lesion's label.
    max_by_label : mapping of int to float or None
        Measured maximum of every lesion in ``labels`` (the lesion's own included); None
        for a lesion with no voxel in the PET field of view (never counted as hotter).
    mean : float or None
        The lesion's measured mean (None: outside the PET field of view).
    background : float or None
        The level of the tissue it sits in (liver lesions: the liver reference; others:
        the median of a shell around them); None when unknown.
    names : sequence of str
        Lesion names, ``names[j - 1]`` for label ``j``.
    organs : mapping of str to (mask, level), optional
        Hot organs (the spleen): a mask on the crop and its uptake. An organ the lesion
        overlaps is its surroundings, not a neighbour, and is skipped.

    Returns
    -------
    dict of str to ndarray of bool
        Name -> voxels: each lesion ``j`` with ``max_by_label[j] > max_by_label[k]``,
        each organ whose level exceeds the lesion's maximum, and :data:`SURROUNDINGS`
        (every voxel outside lesions) when ``mean < background``. Empty when none, and
        when the lesion itself has no uptake measured (``max_by_label[k]`` None).
    """
    lesion = labels == k
    own = max_by_label[k]
    out: dict[str, np.ndarray] = {}
    if own is None or mean is None:
        return out
    for j in map(int, np.unique(labels)):
        other = max_by_label[j] if j not in (0, k) else None
        if other is not None and other > own:
            out[names[j - 1]] = labels == j
    for name, (mask, level) in (organs or {}).items():
        if level > own and mask.any() and not (mask & lesion).any():
            out[name] = mask & (labels == 0)
    if background is not None and mean < background:
        out[SURROUNDINGS] = labels == 0
    return out

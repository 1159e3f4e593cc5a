"""Put a label array that carries its own affine onto a reference image grid.

Two grids are *the same* when the reference index of every mask voxel centre is an
integer (within ``tolerance_voxels``) and the mask's axes map onto the reference axes by
a permutation with flips: then the voxels are copied, never interpolated, whatever the
axis order or direction each file was stored in (a y-flipped NIfTI, an RAS NRRD, a SEG
covering three of 300 slices). Any other grid is resampled by nearest neighbour, and the
result says so. A mask that reaches outside the reference image is an error unless
resampling is allowed, in which case what falls outside is dropped and counted.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from netvolume.errors import MaskGridError
from netvolume.volume import Volume

logger = logging.getLogger(__name__)

__all__ = ["Placement", "describe_grid", "grids_coincide", "label_values", "place_on_reference"]


@dataclass
class Placement:
    """A label array on the reference grid and how it got there."""

    array: np.ndarray
    method: str  # "exact" or "nearest"
    notes: list[str] = field(default_factory=list)
    dropped_voxels: int = 0  # labelled mask voxels outside the reference image


def describe_grid(shape: Sequence[int], affine: np.ndarray) -> str:
    """One line naming a grid: shape, origin (LPS mm), spacing (mm), axis directions."""
    sp = np.linalg.norm(affine[:3, :3], axis=0)
    direction = affine[:3, :3] / sp
    letters = []
    for col in direction.T:
        a = int(np.argmax(np.abs(col)))
        letters.append(("L", "P", "S")[a] if col[a] > 0 else ("R", "A", "I")[a])
    origin = ", ".join(f"{v:.2f}" for v in affine[:3, 3])
    spacing = " x ".join(f"{v:.4g}" for v in sp)
    return (
        f"shape {tuple(int(n) for n in shape[:3])}, origin ({origin}) mm, spacing {spacing} mm, "
        f"axes towards {''.join(letters)}"
    )


def _exact_map(
    affine: np.ndarray, shape: Sequence[int], reference: Volume, tol: float
) -> tuple[list[int], list[int], list[int]] | None:
    """Return (source axis, sign, start) per reference axis when the grids coincide."""
    m = np.linalg.inv(reference.affine) @ affine
    rot = m[:3, :3]
    perm = np.round(rot)
    if not (
        np.all(np.isin(perm, (-1.0, 0.0, 1.0)))
        and np.all(np.abs(perm).sum(axis=0) == 1)
        and np.all(np.abs(perm).sum(axis=1) == 1)
    ):
        return None
    shift = np.round(m[:3, 3])
    # largest deviation over the corners of the mask grid, in reference voxels
    n = np.asarray(shape[:3], dtype=np.float64) - 1
    corners = np.array([[a, b, c] for a in (0, n[0]) for b in (0, n[1]) for c in (0, n[2])])
    exact = corners @ rot.T + m[:3, 3]
    snapped = corners @ perm.T + shift
    if np.abs(exact - snapped).max() > tol:
        return None
    src_axes: list[int] = []
    signs: list[int] = []
    starts: list[int] = []
    for r in range(3):
        s = int(np.argmax(np.abs(perm[r])))
        sign = int(perm[r, s])
        src_axes.append(s)
        signs.append(sign)
        start = int(shift[r]) if sign > 0 else int(shift[r]) - (int(shape[s]) - 1)
        starts.append(start)
    return src_axes, signs, starts


def grids_coincide(
    affine: np.ndarray,
    shape: Sequence[int],
    reference: Volume,
    *,
    tolerance_voxels: float = 0.01,
) -> bool:
    """True when every voxel centre of the grid ``(shape, affine)`` is a voxel centre of
    ``reference``'s grid (any axis order / direction), i.e. placement needs no
    interpolation (it may still need cropping)."""
    return _exact_map(affine, shape, reference, tolerance_voxels) is not None


def place_on_reference(
    array: np.ndarray,
    affine: np.ndarray,
    reference: Volume,
    *,
    what: str,
    files: Sequence[str | Path] = (),
    allow_resample: bool = False,
    tolerance_voxels: float = 0.01,
) -> Placement:
    """Copy (or, when the grids differ, nearest-resample) a label array onto ``reference``.

    Parameters
    ----------
    array
        Integer label array in array order ``[slice, row, column]`` of its own grid.
    affine
        4x4 index-to-LPS-mm matrix of ``array`` (netvolume convention).
    reference
        The image whose grid the result takes.
    what
        How to name the mask in messages (a file name, "segment 'Liver' of SEG ...").
    files
        Files to name in errors.
    allow_resample
        Accept a mask that reaches outside the reference image (what falls outside is
        dropped and counted in :attr:`Placement.dropped_voxels`).
    tolerance_voxels
        Largest distance, in reference voxels, between a mask voxel centre and a reference
        voxel centre for the two grids to count as the same.

    Returns
    -------
    Placement
        Its ``array`` is ``array`` itself (not a copy) when the mask is already on the
        reference grid, same axes and directions.

    Raises
    ------
    MaskGridError
        If the mask reaches outside the reference image and ``allow_resample`` is False.
    """
    ref_shape = reference.spatial_shape
    mapping = _exact_map(affine, array.shape, reference, tolerance_voxels)
    if (
        mapping is not None
        and list(mapping[0]) == [0, 1, 2]
        and all(v > 0 for v in mapping[1])
        and all(v == 0 for v in mapping[2])
        and tuple(array.shape[:3]) == tuple(ref_shape)
    ):
        return Placement(array, "exact")  # the reference grid itself: nothing to copy
    out = np.zeros(ref_shape, dtype=array.dtype)
    if mapping is not None:
        src_axes, signs, starts = mapping
        arr = np.transpose(array, src_axes)
        for r in range(3):
            if signs[r] < 0:
                arr = np.flip(arr, axis=r)
        lo = np.asarray(starts)
        hi = lo + np.asarray(arr.shape)
        inside = bool(np.all(lo >= 0) and np.all(hi <= np.asarray(ref_shape)))
        clip_lo = np.maximum(lo, 0)
        clip_hi = np.minimum(hi, ref_shape)
        nonempty = bool(np.all(clip_hi > clip_lo))
        dst = tuple(slice(int(x), int(y)) for x, y in zip(clip_lo, clip_hi, strict=True))
        src = tuple(
            slice(int(x - o), int(y - o)) for x, o, y in zip(clip_lo, lo, clip_hi, strict=True)
        )
        kept = arr[src] if nonempty else arr[:0, :0, :0]
        dropped = 0
        if not inside:
            dropped = int(np.count_nonzero(arr)) - int(np.count_nonzero(kept))
            _outside(what, array.shape, affine, reference, files, dropped, allow_resample)
        if nonempty:
            out[dst] = kept
        notes = []
        if src_axes != [0, 1, 2] or any(s < 0 for s in signs):
            notes.append(
                f"{what}: same grid as the reference with axes stored in another order or "
                "direction; voxels copied by affine (no interpolation)"
            )
        if dropped or not inside:
            notes.append(f"{what}: {dropped} labelled voxel(s) outside the reference image dropped")
        return Placement(out, "exact", notes, dropped)

    # different grids: nearest neighbour, after checking the extent
    inv = np.linalg.inv(reference.affine) @ affine
    n = np.asarray(array.shape[:3], dtype=np.float64)
    corners = np.array(
        [
            [a, b, c]
            for a in (-0.5, n[0] - 0.5)
            for b in (-0.5, n[1] - 0.5)
            for c in (-0.5, n[2] - 0.5)
        ]
    )
    ref_idx = corners @ inv[:3, :3].T + inv[:3, 3]
    limit_hi = np.asarray(ref_shape, dtype=np.float64) - 0.5
    slack = 0.5 + tolerance_voxels  # half a voxel of the coarser grid is rounding, not extent
    inside = bool(np.all(ref_idx >= -0.5 - slack) and np.all(ref_idx <= limit_hi + slack))
    dropped = 0
    if not inside:
        idx = np.argwhere(array != 0).astype(np.float64)
        if idx.size:
            r = idx @ inv[:3, :3].T + inv[:3, 3]
            out_of = np.any((r < -0.5) | (r >= np.asarray(ref_shape) - 0.5), axis=1)
            dropped = int(out_of.sum())
        _outside(what, array.shape, affine, reference, files, dropped, allow_resample)
    moving = Volume(array, affine)
    res = moving.resample(reference=reference, interpolation="nearest", fill_value=0)
    note = (
        f"{what}: grid differs from the reference ({describe_grid(array.shape, affine)}); "
        "resampled by nearest neighbour onto the reference grid"
    )
    logger.warning(note)
    notes = [note]
    if dropped or not inside:
        notes.append(f"{what}: {dropped} labelled voxel(s) outside the reference image dropped")
    return Placement(np.asarray(res.array, dtype=array.dtype), "nearest", notes, dropped)


def _outside(
    what: str,
    shape: Sequence[int],
    affine: np.ndarray,
    reference: Volume,
    files: Sequence[str | Path],
    dropped: int,
    allow_resample: bool,
) -> None:
    if allow_resample:
        return
    raise MaskGridError(
        f"{what} ({describe_grid(shape, affine)}) reaches outside the reference image "
        f"({describe_grid(reference.spatial_shape, reference.affine)}); {dropped} labelled "
        "voxel(s) fall outside it",
        files=files,
        hint="check that the mask belongs to this image; allow resampling "
        "(allow_resample=True, CLI --allow-resample) to crop it to the image",
    )


def nonzero_box(array: np.ndarray) -> tuple[slice, slice, slice] | None:
    """Bounding box of the non-zero voxels of a 3-D array (None when all zero).

    The slices holding any are found on the whole array as one ``any`` per slice (a
    contiguous array is read once, 8 bytes at a time where the slice allows); rows and
    columns from the bitwise OR of those slices (one more pass over them, no temporary
    mask), or from ``!= 0`` for a float or non-contiguous array.
    """
    nk = array.shape[0]
    contiguous = np.ascontiguousarray(array)
    flat = contiguous.reshape(nk, -1)
    if flat.dtype.itemsize == 1 and flat.shape[1] % 8 == 0:
        flat = flat.view(np.uint64)
    ks = np.flatnonzero(flat.any(axis=1))
    if ks.size == 0:
        return None
    k0, k1 = int(ks[0]), int(ks[-1]) + 1
    slab = contiguous[k0:k1]
    if slab.dtype.kind in "biu":
        if slab.dtype.kind == "b":
            slab = slab.view(np.uint8)
        plane = np.bitwise_or.reduce(slab, axis=0) != 0
    else:
        plane = (slab != 0).any(axis=0)
    js = np.flatnonzero(plane.any(axis=1))
    is_ = np.flatnonzero(plane.any(axis=0))
    return (
        slice(k0, k1),
        slice(int(js[0]), int(js[-1]) + 1),
        slice(int(is_[0]), int(is_[-1]) + 1),
    )


def label_values(array: np.ndarray, *, slab: int = 32) -> list[int]:
    """The distinct non-zero values of an integer label array, sorted.

    Only the non-zero voxels are passed to ``np.unique``, ``slab`` slices (first axis) at
    a time: on a label map that is mostly background this is many times faster than
    ``np.unique`` of the whole array, and the temporary mask is at most ``slab`` slices.

    Parameters
    ----------
    array
        Integer (or boolean) label array, at least 1-D.
    slab
        Number of slices along the first axis handled at once.

    Returns
    -------
    list of int
        The non-zero values present, increasing.
    """
    if array.ndim == 3:
        box = nonzero_box(array)
        if box is None:
            return []
        array = array[box]  # the labelled voxels' box: all that is scanned below
    values: set[int] = set()
    for k in range(0, array.shape[0], slab):
        part = array[k : k + slab]
        values.update(int(v) for v in np.unique(part[part != 0]).tolist())
    return sorted(values)

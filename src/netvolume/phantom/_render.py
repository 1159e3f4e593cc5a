"""Rasterise the continuous phantom onto image grids, with partial-volume edges.

A :class:`Grid` is an axis-aligned LPS image grid (array order ``[slice, row, column]``,
ImageOrientationPatient ``1\\0\\0\\0\\1\\0``, like an axial CT or PET stack). A patient
:class:`Pose` maps the body frame of the model to LPS: ``p_lps = R_z(theta) p_body + t``.

:func:`paint` blends one shape into an image: each voxel takes the fraction
``f = clip(1/2 - d / w, 0, 1)`` of the shape's value, where ``d`` is the first-order signed
distance of the voxel centre (mm) and ``w = sum_i |n_i| spacing_i`` the voxel's width along
the surface normal ``n``: the area fraction of a voxel cut by a plane, linearised
(a partial-volume model of a box-shaped voxel). Voxel centres with ``d < 0`` are inside:
the same test gives the truth masks, so the masks agree exactly with the continuous shapes.

Elliptic cylinders are evaluated once on the in-plane grid and broadcast along z (the
body outline, wall, spine and vessels cover the whole stack); star-shaped bodies are
evaluated on their bounding box, slab by slab to bound memory.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from netvolume.phantom._shapes import EllipticCylinder, Shape, apply, rotation_z

FloatArray = npt.NDArray[np.float64]

#: Voxels evaluated at once for star-shaped bodies (bounds the temporaries to ~100 MB).
_CHUNK_VOXELS = 1 << 21


@dataclass(frozen=True)
class Grid:
    """An axial LPS image grid.

    Attributes
    ----------
    shape
        ``(slices, rows, columns)``.
    spacing_mm
        ``(slice, row, column)`` spacing in mm (row spacing is along y, column along x).
    origin_mm
        LPS position of the centre of voxel ``(0, 0, 0)``.
    """

    shape: tuple[int, int, int]
    spacing_mm: tuple[float, float, float]
    origin_mm: tuple[float, float, float]

    @property
    def affine(self) -> FloatArray:
        """4x4 matrix mapping ``[k, j, i, 1]`` to LPS mm (netvolume's Volume convention)."""
        a = np.zeros((4, 4))
        a[2, 0] = self.spacing_mm[0]
        a[1, 1] = self.spacing_mm[1]
        a[0, 2] = self.spacing_mm[2]
        a[:3, 3] = self.origin_mm
        a[3, 3] = 1.0
        return a

    def axis_mm(self, axis: int) -> FloatArray:
        """LPS coordinate (x for columns, y for rows, z for slices) of each index."""
        coord = {0: 2, 1: 1, 2: 0}[axis]
        return np.asarray(
            self.origin_mm[coord] + np.arange(self.shape[axis]) * self.spacing_mm[axis],
            dtype=np.float64,
        )

    @property
    def voxel_ml(self) -> float:
        """Voxel volume in mL."""
        return float(np.prod(self.spacing_mm)) / 1000.0

    def refined(self, factor: int) -> Grid:
        """The grid subdivided ``factor`` times per axis (same covered box)."""
        sp = tuple(s / factor for s in self.spacing_mm)
        shift = [(s - f) / 2.0 for s, f in zip(self.spacing_mm, sp, strict=True)]
        origin = (
            self.origin_mm[0] - shift[2],
            self.origin_mm[1] - shift[1],
            self.origin_mm[2] - shift[0],
        )
        shape = tuple(n * factor for n in self.shape)
        return Grid(shape, sp, origin)  # type: ignore[arg-type]


@dataclass(frozen=True)
class Pose:
    """Where the patient lies in the scanner: ``p_lps = R_z(angle) p_body + translation``."""

    translation_mm: tuple[float, float, float]
    angle_rad: float = 0.0

    @property
    def rotation(self) -> FloatArray:
        """The 3x3 rotation ``R_z(angle)``."""
        return rotation_z(self.angle_rad)

    def to_lps(self, points_body: FloatArray) -> FloatArray:
        """Body-frame points (N, 3) to LPS mm."""
        return apply(np.asarray(points_body), self.rotation.T) + np.asarray(self.translation_mm)

    def to_body(self, points_lps: FloatArray) -> FloatArray:
        """LPS points (N, 3) to the body frame."""
        return apply(np.asarray(points_lps) - np.asarray(self.translation_mm), self.rotation)


def _index_box(
    grid: Grid, pose: Pose, low: FloatArray, high: FloatArray, margin_mm: float
) -> tuple[slice, slice, slice] | None:
    """Index slices ``(k, j, i)`` covering a body-frame box (plus margin), or None."""
    corners = np.array(
        [[x, y, z] for x in (low[0], high[0]) for y in (low[1], high[1]) for z in (low[2], high[2])]
    )
    lps = pose.to_lps(corners)
    lo = lps.min(axis=0) - margin_mm
    hi = lps.max(axis=0) + margin_mm
    out = []
    for axis, coord in ((0, 2), (1, 1), (2, 0)):
        o, s, n = grid.origin_mm[coord], grid.spacing_mm[axis], grid.shape[axis]
        a = max(0, int(np.floor((lo[coord] - o) / s)))
        b = min(n, int(np.ceil((hi[coord] - o) / s)) + 1)
        if a >= b:
            return None
        out.append(slice(a, b))
    return out[0], out[1], out[2]


def _box_points(grid: Grid, pose: Pose, box: tuple[slice, slice, slice]) -> FloatArray:
    """Body-frame coordinates (N, 3) of the voxel centres of ``box`` (raster order)."""
    z = grid.axis_mm(0)[box[0]]
    y = grid.axis_mm(1)[box[1]]
    x = grid.axis_mm(2)[box[2]]
    zz, yy, xx = np.meshgrid(z, y, x, indexing="ij")
    lps = np.stack([xx.ravel(), yy.ravel(), zz.ravel()], axis=1)
    return pose.to_body(lps)


def _slabs(box: tuple[slice, slice, slice]) -> Iterator[tuple[slice, slice, slice]]:
    """Split a box into runs of whole slices of at most ``_CHUNK_VOXELS`` voxels."""
    k0, k1 = box[0].start, box[0].stop
    per_slice = (box[1].stop - box[1].start) * (box[2].stop - box[2].start)
    step = max(1, _CHUNK_VOXELS // max(per_slice, 1))
    for k in range(k0, k1, step):
        yield slice(k, min(k + step, k1)), box[1], box[2]


def _fraction(
    d: FloatArray, normal_body: FloatArray, grid: Grid, pose: Pose
) -> npt.NDArray[np.float32]:
    """Partial-volume fraction ``clip(1/2 - d/w, 0, 1)`` of each voxel."""
    n = apply(normal_body, pose.rotation.T)  # normal in LPS
    w = (
        np.abs(n[:, 0]) * grid.spacing_mm[2]
        + np.abs(n[:, 1]) * grid.spacing_mm[1]
        + np.abs(n[:, 2]) * grid.spacing_mm[0]
    )
    return np.clip(0.5 - d / w, 0.0, 1.0).astype(np.float32)


def coverage(
    shape: Shape, grid: Grid, pose: Pose
) -> Iterator[tuple[tuple[slice, slice, slice], npt.NDArray[np.float32], npt.NDArray[np.bool_]]]:
    """Yield ``(box, fraction, inside)`` blocks covering a shape on a grid.

    ``fraction`` is the partial-volume fraction of each voxel of the box, ``inside`` the
    voxel-centre inside test (``d < 0``); both have the box's shape.
    """
    low, high = shape.bounding_box()
    margin = float(max(grid.spacing_mm))
    box = _index_box(grid, pose, low, high, margin)
    if box is None:
        return
    if isinstance(shape, EllipticCylinder):
        yield from _cylinder_coverage(shape, grid, pose, box)
        return
    for slab in _slabs(box):
        pts = _box_points(grid, pose, slab)
        d, normal = shape.distance(pts)
        dims = tuple(s.stop - s.start for s in slab)
        frac = _fraction(d, normal, grid, pose).reshape(dims)
        yield slab, frac, (d < 0).reshape(dims)


def _cylinder_coverage(
    shape: EllipticCylinder, grid: Grid, pose: Pose, box: tuple[slice, slice, slice]
) -> Iterator[tuple[tuple[slice, slice, slice], npt.NDArray[np.float32], npt.NDArray[np.bool_]]]:
    """Coverage of a z-aligned cylinder: in-plane fraction times the z-end fraction."""
    # the pose rotates about z only, so the cylinder stays z-aligned: evaluate one plane
    y = grid.axis_mm(1)[box[1]]
    x = grid.axis_mm(2)[box[2]]
    yy, xx = np.meshgrid(y, x, indexing="ij")
    z_mid = 0.5 * (shape.z_range_mm[0] + shape.z_range_mm[1])
    lps = np.stack([xx.ravel(), yy.ravel(), np.zeros(xx.size)], axis=1)
    body = pose.to_body(lps)
    body[:, 2] = z_mid
    d, normal = shape.distance(body)
    f_xy = _fraction(d, normal, grid, pose).reshape(xx.shape)
    in_xy = (d < 0).reshape(xx.shape)
    z_lps = grid.axis_mm(0)[box[0]]
    z_body = z_lps - pose.translation_mm[2]
    dz = np.maximum(shape.z_range_mm[0] - z_body, z_body - shape.z_range_mm[1])
    f_z = np.clip(0.5 - dz / grid.spacing_mm[0], 0.0, 1.0).astype(np.float32)
    frac = f_z[:, None, None] * f_xy[None, :, :]
    inside = (dz < 0)[:, None, None] & in_xy[None, :, :]
    yield box, frac, inside


def paint(
    image: npt.NDArray[np.float32],
    shape: Shape,
    value: float,
    grid: Grid,
    pose: Pose,
    *,
    labels: npt.NDArray[np.integer] | None = None,
    label: int = 1,
) -> int:
    """Blend ``value`` into ``image`` over ``shape``; optionally write ``label`` inside.

    Returns the number of voxel centres inside the shape. With ``labels``, a voxel
    already holding another nonzero label raises ``ValueError`` (the phantom's truth
    shapes must not overlap).
    """
    count = 0
    for box, frac, inside in coverage(shape, grid, pose):
        view = image[box]
        view += frac * (np.float32(value) - view)
        if labels is not None:
            lab = labels[box]
            clash = inside & (lab != 0) & (lab != label)
            if clash.any():
                raise ValueError(
                    f"phantom shapes overlap: label {label} meets label "
                    f"{int(lab[clash][0])} on the grid (a bug in the model layout)"
                )
            lab[inside] = label
        count += int(inside.sum())
    return count

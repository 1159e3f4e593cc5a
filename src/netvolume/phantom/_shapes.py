"""Continuous shapes of the phantom: smooth star-shaped bodies and elliptic cylinders.

Every organ and lesion of the phantom is one of two kinds of shape, defined in the
patient's *body frame* (mm; +x patient left, +y posterior, +z superior, origin at the
body centre):

* :class:`StarShape`: ``{c + R A (s u) : |u| = 1, 0 <= s <= r(u)}``, an ellipsoid with
  semi-axes ``A = diag(a, b, c)`` and rotation ``R`` whose radius along each direction
  ``u`` of the unit sphere is modulated by ``r(u) = 1 + sum_m k_m u^m``, a polynomial of
  low degree in the components of ``u`` (so ``r`` is smooth on the sphere). ``r == 1`` is
  an ellipsoid, for which volume and axial sections are closed-form.
* :class:`EllipticCylinder`: an elliptic cross-section extruded along z between two
  heights (body outline, abdominal wall, spine, aorta, muscles).

Each shape gives, for points, a first-order signed distance ``d`` (mm, negative inside)
``d = F / |grad s|`` with ``F = s - r(u)`` (Taubin's approximation [T]_ ``F / |grad F|``
with the small gradient of ``r`` neglected: exact for ellipsoids to first order, within
about 20 % of the distance near the surface of the irregular organs), used for the
inside test (``d < 0`` exactly when the point is inside, so the truth masks are exact) and
for the partial-volume fraction of a voxel, and the unit outward normal.

Volumes are integrated on the sphere: ``V = det(A)/3 * integral r(u)^3 dOmega``
(volume of a star-shaped body in polar coordinates), with Gauss-Legendre nodes in
``cos(theta)`` and the trapezoidal rule in ``phi``: for these polynomial radii the
quadrature is exact to rounding (spectral convergence), so ``volume_ml`` is the volume
of the continuous shape.

References
----------
.. [T] G. Taubin, "Estimation of planar curves, surfaces, and nonplanar space curves
   defined by implicit equations", IEEE PAMI 13(11):1115-1138, 1991 (first-order
   distance F/|grad F|).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]

#: Exponents (px, py, pz) of the monomials u_x^px u_y^py u_z^pz used in r(u), degree 1..3.
MONOMIALS: tuple[tuple[int, int, int], ...] = tuple(
    (px, py, pz)
    for deg in (1, 2, 3)
    for px in range(deg, -1, -1)
    for py in range(deg - px, -1, -1)
    for pz in (deg - px - py,)
)


def quantise(values: FloatArray | float, decimals: int = 12) -> FloatArray:
    """Round model parameters so that last-bit differences between machines vanish.

    Trigonometric and LAPACK results may differ in the last bit between CPUs; the model
    rounds every derived parameter (rotation matrices, radii coefficients) so that the
    same seed gives the same bytes everywhere.
    """
    return np.asarray(
        np.round(np.asarray(values, dtype=np.float64), decimals) + 0.0, dtype=np.float64
    )


def rotation_z(angle_rad: float) -> FloatArray:
    """Rotation matrix about +z by ``angle_rad`` (right-handed), quantised."""
    c, s = math.cos(angle_rad), math.sin(angle_rad)
    return quantise(np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]]))


def rotation_x(angle_rad: float) -> FloatArray:
    """Rotation matrix about +x by ``angle_rad`` (right-handed), quantised."""
    c, s = math.cos(angle_rad), math.sin(angle_rad)
    return quantise(np.array([[1.0, 0.0, 0.0], [0.0, c, -s], [0.0, s, c]]))


def apply(points: FloatArray, m: FloatArray) -> FloatArray:
    """``points @ m`` for (N, 3) points, written out so that no BLAS kernel is involved.

    BLAS kernels differ between CPUs (FMA or not), which would change the rendered
    images in the last bit; elementwise numpy operations are IEEE-exact everywhere.
    """
    p = np.asarray(points, dtype=np.float64)
    out = np.empty((len(p), 3))
    for j in range(3):
        out[:, j] = p[:, 0] * m[0, j] + p[:, 1] * m[1, j] + p[:, 2] * m[2, j]
    return out


def norm3(v: FloatArray) -> FloatArray:
    """Row norms of (N, 3) vectors (explicit sum of squares)."""
    return np.sqrt(v[:, 0] * v[:, 0] + v[:, 1] * v[:, 1] + v[:, 2] * v[:, 2])


def sphere_quadrature(n_mu: int = 48, n_phi: int = 96) -> tuple[FloatArray, FloatArray]:
    """Unit vectors and weights integrating smooth functions over the unit sphere.

    Gauss-Legendre in ``mu = cos(theta)`` times the trapezoidal rule in ``phi``; the
    weights sum to ``4 pi``.
    """
    mu, w_mu = np.polynomial.legendre.leggauss(n_mu)
    phi = np.arange(n_phi) * (2.0 * np.pi / n_phi)
    sin_t = np.sqrt(1.0 - mu**2)
    u = np.stack(
        [
            (sin_t[:, None] * np.cos(phi)[None, :]).ravel(),
            (sin_t[:, None] * np.sin(phi)[None, :]).ravel(),
            np.repeat(mu, n_phi),
        ],
        axis=1,
    )
    w = np.repeat(w_mu, n_phi) * (2.0 * np.pi / n_phi)
    return u, w


@dataclass(frozen=True)
class StarShape:
    """A smooth star-shaped body (an ellipsoid when ``coeffs`` is all zero).

    Attributes
    ----------
    centre_mm
        Centre ``c`` in the body frame (mm).
    semi_axes_mm
        Semi-axes ``(a, b, c)`` of the base ellipsoid along the columns of ``rotation``.
    rotation
        3x3 rotation matrix ``R`` (columns = the shape's axes in the body frame).
    coeffs
        Coefficients ``k_m`` of :data:`MONOMIALS` in ``r(u)``; empty for an ellipsoid.
    """

    centre_mm: tuple[float, float, float]
    semi_axes_mm: tuple[float, float, float]
    rotation: FloatArray = field(default_factory=lambda: np.eye(3))
    coeffs: tuple[float, ...] = ()

    def __post_init__(self) -> None:
        if min(self.semi_axes_mm) <= 0:
            raise ValueError(f"semi-axes must be positive; got {self.semi_axes_mm}")
        if self.coeffs and len(self.coeffs) != len(MONOMIALS):
            raise ValueError(f"coeffs must have {len(MONOMIALS)} values; got {len(self.coeffs)}")

    @property
    def is_ellipsoid(self) -> bool:
        """True when ``r(u) == 1``."""
        return not any(self.coeffs)

    def radial(self, u: FloatArray) -> FloatArray:
        """``r(u)`` at unit vectors ``u`` (N, 3) of the shape's normalised frame."""
        if self.is_ellipsoid:
            return np.ones(len(u))
        # accumulate term by term: no (N, n_monomials) temporary on large voxel boxes
        ux, uy, uz = u[:, 0], u[:, 1], u[:, 2]
        px = [None, ux, ux * ux, ux * ux * ux]
        py = [None, uy, uy * uy, uy * uy * uy]
        pz = [None, uz, uz * uz, uz * uz * uz]
        r = np.ones(len(u))
        for k, (a, b, c) in zip(self.coeffs, MONOMIALS, strict=True):
            if k == 0.0:
                continue
            term = np.full(len(u), k)
            for powers, e in ((px, a), (py, b), (pz, c)):
                if e:
                    term *= powers[e]
            r += term
        return r

    def max_radial(self) -> float:
        """Upper bound of ``r(u)`` over the sphere (dense sampling plus 2 % margin)."""
        if self.is_ellipsoid:
            return 1.0
        u, _ = sphere_quadrature(64, 128)
        return float(self.radial(u).max()) * 1.02

    def scaled(self, factor: float) -> StarShape:
        """The same shape with every semi-axis multiplied by ``factor`` (same centre)."""
        return StarShape(
            self.centre_mm,
            tuple(float(a) * factor for a in self.semi_axes_mm),  # type: ignore[arg-type]
            self.rotation,
            self.coeffs,
        )

    def moved(self, centre_mm: FloatArray | tuple[float, float, float]) -> StarShape:
        """The same shape at another centre."""
        c = tuple(float(v) for v in centre_mm)
        return StarShape(c, self.semi_axes_mm, self.rotation, self.coeffs)  # type: ignore[arg-type]

    # -- geometry on points --------------------------------------------------------------

    def _normalised(self, points: FloatArray) -> tuple[FloatArray, FloatArray]:
        """``(s, u)``: radius and direction of points in the normalised frame."""
        q = apply(np.asarray(points, dtype=float) - np.asarray(self.centre_mm), self.rotation)
        q /= np.asarray(self.semi_axes_mm)
        s = norm3(q)
        u = q / np.where(s > 0, s, 1.0)[:, None]
        u[s == 0] = (1.0, 0.0, 0.0)
        return s, u

    def distance(self, points: FloatArray) -> tuple[FloatArray, FloatArray]:
        """First-order signed distance (mm, < 0 inside) and outward unit normal.

        ``F = s - r(u)`` and ``grad s = R (u / A)``; the gradient of ``r`` is neglected in
        the normal (the radii are smooth and close to 1), not in the sign, so ``d < 0``
        exactly when ``s < r(u)``.
        """
        s, u = self._normalised(points)
        grad = apply(u / np.asarray(self.semi_axes_mm), self.rotation.T)
        norm = norm3(grad)
        d = (s - self.radial(u)) / norm
        return d, grad / norm[:, None]

    def contains(self, points: FloatArray) -> npt.NDArray[np.bool_]:
        """True for points strictly inside (``s < r(u)``)."""
        s, u = self._normalised(points)
        return np.asarray(s < self.radial(u))

    def surface_points(self, n_mu: int = 24, n_phi: int = 48) -> FloatArray:
        """Points on the surface (body frame mm), on a Gauss-Legendre sphere grid."""
        u, _ = sphere_quadrature(n_mu, n_phi)
        q = u * self.radial(u)[:, None] * np.asarray(self.semi_axes_mm)
        return apply(q, self.rotation.T) + np.asarray(self.centre_mm)

    def bounding_box(self) -> tuple[FloatArray, FloatArray]:
        """Axis-aligned (body frame) box containing the shape: ``(low, high)`` mm."""
        m = self.rotation * np.asarray(self.semi_axes_mm)[None, :]
        half = np.sqrt((m**2).sum(axis=1)) * self.max_radial()
        c = np.asarray(self.centre_mm)
        return c - half, c + half

    def support(self, direction: FloatArray) -> float:
        """Support function ``max_p <p - c, v>`` over the base ellipsoid (times max r)."""
        v = np.asarray(direction, dtype=float)
        w = (v @ self.rotation) * np.asarray(self.semi_axes_mm)
        return float(np.linalg.norm(w)) * self.max_radial()

    # -- truth ----------------------------------------------------------------------------

    def volume_mm3(self) -> float:
        """Volume of the continuous shape (mm^3), ``det(A)/3 * integral r^3 dOmega``."""
        det = float(np.prod(self.semi_axes_mm))
        if self.is_ellipsoid:
            return 4.0 / 3.0 * np.pi * det
        u, w = sphere_quadrature()
        return det / 3.0 * float(w @ self.radial(u) ** 3)

    def volume_ml(self) -> float:
        """Volume in mL (1 mL = 1000 mm^3)."""
        return self.volume_mm3() / 1000.0

    def _quadric(self) -> FloatArray:
        """``M = R A^2 R^T`` of the base ellipsoid ``{p: (p-c)^T M^-1 (p-c) <= 1}``."""
        a2 = np.asarray(self.semi_axes_mm) ** 2
        return np.asarray((self.rotation * a2[None, :]) @ self.rotation.T)

    def half_height_mm(self) -> float:
        """Half of the ellipsoid's extent along z (mm)."""
        return float(np.sqrt(self._quadric()[2, 2]))

    def axial_axes_mm(self, dz_mm: float = 0.0) -> tuple[float, float, FloatArray]:
        """Long and short axis (mm) of the ellipsoid's section by the plane ``z = c_z + dz``.

        The section of an ellipsoid by a plane is an ellipse. With ``Q = M^-1``, the
        section ``z = c_z + dz`` has the quadratic form of the top-left 2x2 block of
        ``Q`` scaled by ``1 - dz^2 / M_zz`` (Schur complement), so its semi-axes are
        ``sqrt((1 - dz^2/M_zz) / eig(Q_2x2))``. The central section (``dz = 0``) is the
        largest: that is the RECIST long and short axis in the axial plane. Returns
        ``(ld_mm, sa_mm, long_axis_direction_xy)``; zeros when the plane misses it.
        Only defined for ellipsoids.
        """
        if not self.is_ellipsoid:
            raise ValueError("axial_axes_mm is closed-form only for ellipsoids")
        m = self._quadric()
        scale = 1.0 - dz_mm**2 / m[2, 2]
        if scale <= 0:
            return 0.0, 0.0, np.array([1.0, 0.0])
        q2 = np.linalg.inv(m)[:2, :2]
        eig, vec = np.linalg.eigh(q2)  # ascending: eig[0] gives the long axis
        ld = 2.0 * np.sqrt(scale / eig[0])
        sa = 2.0 * np.sqrt(scale / eig[1])
        return float(ld), float(sa), np.asarray(vec[:, 0])


@dataclass(frozen=True)
class EllipticCylinder:
    """An elliptic cylinder along z: ``((x-cx)/a)^2 + ((y-cy)/b)^2 <= 1``, ``z0 <= z <= z1``.

    The ellipse may be rotated in-plane by ``angle_rad``. The z ends are flat; the
    signed distance is the in-plane first-order distance combined with the distance to
    the end planes (max of the two, exact sign).
    """

    centre_xy_mm: tuple[float, float]
    semi_axes_mm: tuple[float, float]
    z_range_mm: tuple[float, float]
    angle_rad: float = 0.0

    def distance(self, points: FloatArray) -> tuple[FloatArray, FloatArray]:
        """First-order signed distance (mm, < 0 inside) and outward unit normal."""
        p = np.asarray(points, dtype=float)
        c, s = math.cos(self.angle_rad), math.sin(self.angle_rad)
        dx = p[:, 0] - self.centre_xy_mm[0]
        dy = p[:, 1] - self.centre_xy_mm[1]
        lx = (c * dx + s * dy) / self.semi_axes_mm[0]
        ly = (-s * dx + c * dy) / self.semi_axes_mm[1]
        rho = np.sqrt(lx**2 + ly**2)
        safe = np.where(rho > 0, rho, 1.0)
        gx_l = lx / safe / self.semi_axes_mm[0]
        gy_l = ly / safe / self.semi_axes_mm[1]
        gx = c * gx_l - s * gy_l
        gy = s * gx_l + c * gy_l
        on_axis = rho == 0
        if on_axis.any():
            # on the axis the gradient vanishes: the nearest wall is at the minor semi-axis,
            # along the minor axis direction
            a, b = self.semi_axes_mm
            gx = np.where(on_axis, c if a <= b else -s, gx)
            gy = np.where(on_axis, s if a <= b else c, gy)
        gnorm = np.sqrt(gx**2 + gy**2)
        d_xy = np.where(on_axis, -min(self.semi_axes_mm), (rho - 1.0) / gnorm)
        z0, z1 = self.z_range_mm
        d_z = np.maximum(z0 - p[:, 2], p[:, 2] - z1)
        normal = np.stack([gx / gnorm, gy / gnorm, np.zeros_like(gx)], axis=1)
        use_z = d_z > d_xy
        normal[use_z] = 0.0
        normal[use_z, 2] = np.where(p[use_z, 2] > 0.5 * (z0 + z1), 1.0, -1.0)
        return np.maximum(d_xy, d_z), normal

    def contains(self, points: FloatArray) -> npt.NDArray[np.bool_]:
        """True for points strictly inside."""
        d, _ = self.distance(points)
        return np.asarray(d < 0)

    def bounding_box(self) -> tuple[FloatArray, FloatArray]:
        """Axis-aligned (body frame) box containing the cylinder: ``(low, high)`` mm."""
        c, s = np.cos(self.angle_rad), np.sin(self.angle_rad)
        a, b = self.semi_axes_mm
        hx = np.hypot(a * c, b * s)
        hy = np.hypot(a * s, b * c)
        cx, cy = self.centre_xy_mm
        z0, z1 = self.z_range_mm
        return np.array([cx - hx, cy - hy, z0]), np.array([cx + hx, cy + hy, z1])

    def volume_mm3(self) -> float:
        """Volume (mm^3): ``pi a b (z1 - z0)``."""
        return float(np.pi * self.semi_axes_mm[0] * self.semi_axes_mm[1]) * (
            self.z_range_mm[1] - self.z_range_mm[0]
        )


Shape = StarShape | EllipticCylinder

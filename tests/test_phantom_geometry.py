"""The phantom's continuous shapes and rasteriser against independent oracles.

The phantom's truth (volumes, RECIST axes, label maps) is the oracle for netvolume's
measurement code, so the truth is checked here against things computed independently of
``netvolume.phantom._shapes`` / ``_render``: closed-form volumes, a higher-order quadrature
and a seeded Monte Carlo estimate, the exact distance along an ellipsoid's normal, a
brute-force Feret diameter of a densely sampled section, analytic support functions and
a direct inside test on every voxel centre.

Tolerances are derived next to each assertion (sampling step, standard error, Taylor
remainder); every random generator is seeded.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.spatial import ConvexHull, cKDTree

from netvolume.phantom import _render
from netvolume.phantom._anatomy import krenning_grade
from netvolume.phantom._render import Grid, Pose, coverage, paint
from netvolume.phantom._shapes import (
    MONOMIALS,
    EllipticCylinder,
    StarShape,
    rotation_x,
    sphere_quadrature,
)

# ------------------------------------------------------------------------------ helpers


def random_rotation(rng: np.random.Generator) -> np.ndarray:
    """A random proper rotation (det +1): QR of a seeded Gaussian matrix."""
    q, r = np.linalg.qr(rng.normal(size=(3, 3)))
    q = q * np.sign(np.diag(r))[None, :]
    if np.linalg.det(q) < 0:
        q[:, 0] = -q[:, 0]
    return q


def random_unit(rng: np.random.Generator, n: int) -> np.ndarray:
    u = rng.normal(size=(n, 3))
    return u / np.linalg.norm(u, axis=1)[:, None]


def radial_oracle(coeffs: tuple[float, ...], u: np.ndarray) -> np.ndarray:
    """``r(u) = 1 + sum_m k_m u_x^px u_y^py u_z^pz``, written independently of the module."""
    r = np.ones(len(u))
    for k, (px, py, pz) in zip(coeffs, MONOMIALS, strict=True):
        r = r + k * u[:, 0] ** px * u[:, 1] ** py * u[:, 2] ** pz
    return r


def irregular_shape(seed: int) -> StarShape:
    """A rotated star-shaped body with radial modulation of amplitude ~0.2."""
    rng = np.random.default_rng(seed)
    coeffs = tuple(float(k) for k in rng.uniform(-0.2, 0.2, len(MONOMIALS)))
    return StarShape((4.0, -3.0, 7.5), (13.0, 9.0, 11.0), random_rotation(rng), coeffs)


def tilted_ellipsoid(seed: int, semi_axes=(12.0, 8.0, 10.0), centre=(3.0, -4.0, 5.0)):
    rng = np.random.default_rng(seed)
    return StarShape(centre, semi_axes, random_rotation(rng))


def all_voxel_centres_body(grid: Grid, pose: Pose) -> np.ndarray:
    """Body-frame coordinates of every voxel centre of ``grid`` (raster order [k, j, i])."""
    z, y, x = grid.axis_mm(0), grid.axis_mm(1), grid.axis_mm(2)
    zz, yy, xx = np.meshgrid(z, y, x, indexing="ij")
    return pose.to_body(np.stack([xx.ravel(), yy.ravel(), zz.ravel()], axis=1))


def direct_inside(shape, grid: Grid, pose: Pose) -> np.ndarray:
    """The voxel-centre inside test evaluated on every voxel of the grid."""
    return shape.contains(all_voxel_centres_body(grid, pose)).reshape(grid.shape)


def assemble(shape, grid: Grid, pose: Pose) -> tuple[np.ndarray, np.ndarray]:
    """``coverage``'s blocks written into full-grid fraction and inside arrays."""
    frac = np.zeros(grid.shape, np.float32)
    inside = np.zeros(grid.shape, bool)
    hits = np.zeros(grid.shape, np.int32)
    for box, f, ins in coverage(shape, grid, pose):
        frac[box] = f
        inside[box] = ins
        hits[box] += 1
    assert hits.max() <= 1, "coverage blocks overlap"
    return frac, inside


# ----------------------------------------------------------------- 0. radial function


def test_monomials_are_the_19_distinct_monomials_of_degree_1_to_3() -> None:
    assert len(MONOMIALS) == 19
    assert len(set(MONOMIALS)) == 19
    assert sorted({sum(m) for m in MONOMIALS}) == [1, 2, 3]
    assert sum(1 for m in MONOMIALS if sum(m) == 3) == 10


def test_radial_matches_independent_polynomial() -> None:
    shape = irregular_shape(11)
    u = random_unit(np.random.default_rng(12), 5000)
    np.testing.assert_allclose(shape.radial(u), radial_oracle(shape.coeffs, u), rtol=0, atol=1e-13)


def test_max_radial_bounds_dense_sampling() -> None:
    # max_radial samples 64x128 directions plus 2 %: it must bound r on a far denser set
    shape = irregular_shape(13)
    u_dense, _ = sphere_quadrature(300, 600)
    u_rand = random_unit(np.random.default_rng(14), 200_000)
    true_max = max(radial_oracle(shape.coeffs, u_dense).max(), shape.radial(u_rand).max())
    assert shape.max_radial() >= true_max
    # ... and not grossly: the margin is 2 % of the sampled maximum
    assert shape.max_radial() <= 1.021 * true_max


# ------------------------------------------------------------------------------ 1. volume


def test_ellipsoid_volume_is_closed_form() -> None:
    shape = tilted_ellipsoid(1, (12.3, 7.1, 9.4))
    assert shape.volume_mm3() == pytest.approx(4.0 / 3.0 * math.pi * 12.3 * 7.1 * 9.4, rel=1e-12)
    assert shape.volume_ml() == pytest.approx(shape.volume_mm3() / 1000.0, rel=1e-15)
    # all-zero coefficients are an ellipsoid too
    zero = StarShape(shape.centre_mm, shape.semi_axes_mm, shape.rotation, (0.0,) * 19)
    assert zero.is_ellipsoid
    assert zero.volume_mm3() == pytest.approx(shape.volume_mm3(), rel=1e-12)


@pytest.mark.parametrize("k", [0.3, -0.25])
def test_volume_closed_form_for_single_monomials(k: float) -> None:
    # r = 1 + k u_z: integral (1 + k u_z)^3 dOmega = 4 pi (1 + k^2)   (odd moments vanish,
    # integral u_z^2 = 4 pi / 3);  r = 1 + k u_x^2: moments of u_x^2n are 4 pi / (2n + 1),
    # so the integral is 4 pi (1 + k + 3 k^2 / 5 + k^3 / 7).  V = abc/3 * integral.
    a, b, c = 11.0, 7.0, 9.0
    rot = random_rotation(np.random.default_rng(2))
    for mono, factor in (
        ((0, 0, 1), 1 + k**2),
        ((2, 0, 0), 1 + k + 3 * k**2 / 5 + k**3 / 7),
    ):
        coeffs = tuple(k if m == mono else 0.0 for m in MONOMIALS)
        shape = StarShape((1.0, 2.0, 3.0), (a, b, c), rot, coeffs)
        expected = a * b * c / 3.0 * 4.0 * math.pi * factor
        assert shape.volume_mm3() == pytest.approx(expected, rel=1e-12)


def test_irregular_volume_matches_higher_order_quadrature() -> None:
    shape = irregular_shape(3)
    u, w = sphere_quadrature(96, 192)
    r = radial_oracle(shape.coeffs, u)
    assert r.min() > 0.5  # a genuine star-shaped body
    assert r.max() - r.min() > 0.3  # and genuinely irregular
    # r^3 is a polynomial of degree 9 on the sphere: both rules are exact up to rounding
    expected = float(np.prod(shape.semi_axes_mm)) / 3.0 * float(w @ r**3)
    assert shape.volume_mm3() == pytest.approx(expected, rel=1e-9)
    assert abs(shape.volume_mm3() / (4 / 3 * math.pi * 13 * 9 * 11) - 1) > 0.01


def test_irregular_volume_matches_monte_carlo() -> None:
    shape = irregular_shape(4)
    low, high = shape.bounding_box()
    rng = np.random.default_rng(5)
    n = 2_000_000
    pts = low + rng.random((n, 3)) * (high - low)
    p = shape.contains(pts).mean()
    box = float(np.prod(high - low))
    estimate = box * p
    se = box * math.sqrt(p * (1 - p) / n)
    assert se / estimate < 2e-3  # the check has teeth: 4 SE is under 1 % of the volume
    assert abs(estimate - shape.volume_mm3()) < 4 * se


# ------------------------------------------------------------------- 2. signed distance


def test_sign_of_distance_is_exactly_contains() -> None:
    shape = irregular_shape(6)
    low, high = shape.bounding_box()
    mid, half = (low + high) / 2, (high - low) / 2
    rng = np.random.default_rng(7)
    pts = mid + rng.uniform(-1.2, 1.2, (300_000, 3)) * half
    # plus points within 1e-6 mm of the surface along the radius, on both sides
    surf = shape.surface_points(40, 80)
    c = np.asarray(shape.centre_mm)
    radial_dir = (surf - c) / np.linalg.norm(surf - c, axis=1)[:, None]
    eps = rng.uniform(-1e-6, 1e-6, len(surf))
    pts = np.concatenate([pts, surf + eps[:, None] * radial_dir, c[None, :]])
    d, normal = shape.distance(pts)
    inside = shape.contains(pts)
    np.testing.assert_array_equal(d < 0, inside)
    assert 0.1 < inside.mean() < 0.9
    np.testing.assert_allclose(np.linalg.norm(normal, axis=1), 1.0, rtol=0, atol=1e-12)
    # a star-shaped body: scaling a surface point towards the centre goes inside
    assert shape.contains(c + 0.999 * (surf - c)).all()
    assert not shape.contains(c + 1.001 * (surf - c)).any()


def test_surface_points_have_zero_distance() -> None:
    for shape in (irregular_shape(8), tilted_ellipsoid(8)):
        d, _ = shape.distance(shape.surface_points())
        assert np.abs(d).max() < 1e-9


def test_sphere_distance_is_exact() -> None:
    rng = np.random.default_rng(9)
    centre = np.array([2.0, -5.0, 1.5])
    sphere = StarShape(tuple(centre), (7.5, 7.5, 7.5), random_rotation(rng))
    pts = centre + rng.uniform(-20, 20, (100_000, 3))
    d, normal = sphere.distance(pts)
    dist = np.linalg.norm(pts - centre, axis=1)
    np.testing.assert_allclose(d, dist - 7.5, rtol=0, atol=1e-12)
    np.testing.assert_allclose(normal, (pts - centre) / dist[:, None], rtol=0, atol=1e-12)


def test_ellipsoid_distance_is_first_order_exact_near_surface() -> None:
    # Points p + delta * n on the normal of a surface point p have true distance |delta|
    # exactly when |delta| is below the smallest radius of curvature (b_min^2 / a_max =
    # 64/12 = 5.3 mm here). Taylor expansion of F = s - 1 along the normal gives
    # d = delta - (F_nn / 2 g) delta^2 + O(delta^3) with F_nn <= 1/a_min^2 and
    # g = |grad s| >= 1/a_max, so |d - delta| <= (a_max / (2 a_min^2)) delta^2 + O(delta^3);
    # the bound below doubles that coefficient to cover the cubic term at |delta| <= 0.5.
    semi = np.array([12.0, 8.0, 10.0])
    shape = tilted_ellipsoid(10, tuple(semi))
    rng = np.random.default_rng(10)
    u = random_unit(rng, 100_000)
    q = u * semi  # surface points in the ellipsoid frame
    n_loc = u / semi  # outward normal (gradient of the quadric), unnormalised
    n_loc /= np.linalg.norm(n_loc, axis=1)[:, None]
    delta = rng.uniform(-0.5, 0.5, len(u))
    rot, c = shape.rotation, np.asarray(shape.centre_mm)
    pts = (q + delta[:, None] * n_loc) @ rot.T + c
    d, _ = shape.distance(pts)
    bound = semi.max() / semi.min() ** 2 * delta**2
    assert np.all(np.abs(d - delta) <= bound + 1e-12)
    # first order: relative error -> 0 as delta -> 0
    small = np.abs(delta) < 0.01
    assert np.all(np.abs(d[small] - delta[small]) <= 2e-3 * np.abs(delta[small]) + 1e-12)
    # the returned normal is the exact outward normal at surface points
    _, n_surf = shape.distance(q @ rot.T + c)
    np.testing.assert_allclose(n_surf, n_loc @ rot.T, rtol=0, atol=1e-12)

    # brute force: nearest point of a dense surface sampling (a subset of the points).
    # 400 x 800 directions: neighbouring samples are at most a_max * pi/400 apart on the
    # surface, so the nearest one is within t = a_max * pi / (400 sqrt 2) tangentially and
    # overestimates the distance by at most t^2 (1 + |delta| kappa_max) / (2 |delta|),
    # kappa_max = a_max / a_min^2; evaluated at the smallest |delta| used, 0.2 mm.
    dense = shape.surface_points(400, 800)
    tree = cKDTree(dense)
    far = np.abs(delta) >= 0.2
    idx = np.flatnonzero(far)[:2000]
    brute, _ = tree.query(pts[idx])
    t = semi.max() * math.pi / (400 * math.sqrt(2))
    kappa = semi.max() / semi.min() ** 2
    tol = t**2 * (1 + 0.5 * kappa) / (2 * 0.2)
    excess = brute - np.abs(delta[idx])
    assert np.all(excess >= -1e-9)  # no sample is closer than the exact distance
    assert np.all(excess < tol), (excess.max(), tol)


# -------------------------------------------------------------------- 3. axial axes


def _section_oracle(shape: StarShape, dz: float, h: float) -> tuple[float, float, np.ndarray]:
    """Brute-force RECIST axes of the section ``z = c_z + dz`` sampled on an ``h`` grid.

    Feret diameter = max pairwise distance of the convex hull of the inside grid points;
    short axis = longest chord of that hull perpendicular to the Feret direction.
    """
    low, high = shape.bounding_box()
    xs = np.arange(low[0] - h, high[0] + h, h)
    ys = np.arange(low[1] - h, high[1] + h, h)
    yy, xx = np.meshgrid(ys, xs, indexing="ij")
    z = shape.centre_mm[2] + dz
    pts = np.stack([xx.ravel(), yy.ravel(), np.full(xx.size, z)], axis=1)
    inside = shape.contains(pts).reshape(xx.shape)
    if not inside.any():
        return 0.0, 0.0, np.array([1.0, 0.0])
    pad = np.pad(inside, 1)
    interior = pad[:-2, 1:-1] & pad[2:, 1:-1] & pad[1:-1, :-2] & pad[1:-1, 2:]
    boundary = inside & ~interior
    xy = np.stack([xx[boundary], yy[boundary]], axis=1)
    hull = ConvexHull(xy)
    v = xy[hull.vertices]
    dist = np.linalg.norm(v[:, None, :] - v[None, :, :], axis=2)
    i, j = np.unravel_index(np.argmax(dist), dist.shape)
    ld = float(dist[i, j])
    e = (v[j] - v[i]) / ld
    perp = np.array([-e[1], e[0]])
    normals, offsets = hull.equations[:, :2], hull.equations[:, 2]
    t = np.linspace(0.0, ld, 4001)
    base = v[i][None, :] + t[:, None] * e[None, :]
    a = normals @ perp  # (facets,)
    b = base @ normals.T + offsets[None, :]  # (t, facets): a s + b <= 0 inside
    with np.errstate(divide="ignore"):
        bound = -b / a[None, :]
    upper = np.where(a[None, :] > 0, bound, np.inf).min(axis=1)
    lower = np.where(a[None, :] < 0, bound, -np.inf).max(axis=1)
    sa = float(np.clip(upper - lower, 0.0, None).max())
    return ld, sa, e


def test_axial_axes_match_brute_force_sections() -> None:
    # Sampling step h: every inside grid point lies strictly inside the (convex) section,
    # so the hull's Feret diameter never exceeds the true long axis; and a disc of radius
    # h/sqrt(2) tangent inside each axis end (allowed while h/sqrt(2) is below the
    # section's smallest radius of curvature, asserted) holds a grid point, so each end
    # loses at most h*sqrt(2): |oracle - closed form| <= 2 sqrt(2) h < 3 h.
    h = 0.04
    shape = tilted_ellipsoid(21, (14.0, 9.0, 6.0), (1.5, -2.5, 4.0))
    hh = shape.half_height_mm()
    ld0, sa0, _ = shape.axial_axes_mm(0.0)
    assert ld0 / sa0 > 1.1  # elongated: the direction comparison is meaningful
    for dz in (0.0, 0.45 * hh, -0.8 * hh):
        ld, sa, vec = shape.axial_axes_mm(dz)
        assert (sa / 2) ** 2 / (ld / 2) > h / math.sqrt(2)  # min radius of curvature
        ld_o, sa_o, e_o = _section_oracle(shape, dz, h)
        assert ld_o <= ld + 1e-9
        assert ld - ld_o < 3 * h, (dz, ld, ld_o)
        assert abs(sa - sa_o) < 3 * h, (dz, sa, sa_o)
        assert sa <= ld
        # direction: Feret(theta) ~ ld (1 - theta^2 (1 - (sa/ld)^2) / 2), so a length error
        # eta = 2 sqrt(2) h moves its argmax by at most sqrt(2 eta / (ld (1 - (sa/ld)^2)))
        eta = 2 * math.sqrt(2) * h
        tol = math.sqrt(2 * eta / (ld * (1 - (sa / ld) ** 2)))
        assert np.linalg.norm(vec) == pytest.approx(1.0, abs=1e-12)
        assert math.acos(min(1.0, abs(float(vec @ e_o)))) < tol
        # parallel sections of an ellipsoid are homothetic
        assert ld == pytest.approx(ld0 * math.sqrt(1 - dz**2 / hh**2), rel=1e-12)
        assert sa == pytest.approx(sa0 * math.sqrt(1 - dz**2 / hh**2), rel=1e-12)
        assert ld <= ld0 and sa <= sa0


def test_half_height_and_beyond() -> None:
    shape = tilted_ellipsoid(22, (14.0, 9.0, 6.0))
    hh = shape.half_height_mm()
    # half height = max z extent of the surface (dense sampling; angular step pi/400
    # gives a relative error below (pi/400)^2 / 2 = 3.1e-5)
    surf = shape.surface_points(400, 800)
    z_ext = surf[:, 2].max() - shape.centre_mm[2]
    assert z_ext <= hh + 1e-9
    assert z_ext == pytest.approx(hh, rel=4e-5)
    assert shape.centre_mm[2] - surf[:, 2].min() == pytest.approx(hh, rel=4e-5)
    for dz in (hh * 1.0001, -hh * 1.0001, -hh * 1.5, 3 * hh):
        ld, sa, _ = shape.axial_axes_mm(dz)
        assert (ld, sa) == (0.0, 0.0)
    ld_in, sa_in, _ = shape.axial_axes_mm(0.99 * hh)
    assert 0 < sa_in <= ld_in
    ld0, _, _ = shape.axial_axes_mm()
    assert ld_in == pytest.approx(ld0 * math.sqrt(1 - 0.99**2), rel=1e-12)
    # the oracle agrees: no inside point just beyond the half height
    assert _section_oracle(shape, 1.001 * hh, 0.1)[0] == 0.0


def test_axial_axes_of_axis_aligned_ellipsoid() -> None:
    # no rotation: the central axial section has semi-axes a, b
    shape = StarShape((0.0, 0.0, 0.0), (6.0, 10.0, 4.0))
    ld, sa, vec = shape.axial_axes_mm()
    assert (ld, sa) == (pytest.approx(20.0, rel=1e-12), pytest.approx(12.0, rel=1e-12))
    assert abs(vec[1]) == pytest.approx(1.0, abs=1e-12)
    # rotation about x by 90 degrees swaps y and z: the section has semi-axes a and c
    tilted = StarShape((0.0, 0.0, 0.0), (6.0, 10.0, 4.0), rotation_x(math.pi / 2))
    ld, sa, vec = tilted.axial_axes_mm()
    assert (ld, sa) == (pytest.approx(12.0, rel=1e-12), pytest.approx(8.0, rel=1e-12))
    assert tilted.half_height_mm() == pytest.approx(10.0, rel=1e-12)


def test_axial_axes_refuse_irregular_shapes() -> None:
    with pytest.raises(ValueError, match="ellipsoid"):
        irregular_shape(23).axial_axes_mm()


# ------------------------------------------------------------ 4. bounding box, support


def test_bounding_box_contains_irregular_surface() -> None:
    for seed in (30, 31, 32):
        shape = irregular_shape(seed)
        low, high = shape.bounding_box()
        surf = shape.surface_points(200, 400)
        assert np.all(surf >= low) and np.all(surf <= high)


def test_ellipsoid_bounding_box_and_support_are_tight() -> None:
    # For an ellipsoid both are exact: extent along v is sqrt(v^T R A^2 R^T v). A surface
    # sampled with angular step pi/200 reaches the maximum of the linear function
    # <A u, R^T v> within |.| (1 - cos theta) <= |.| theta^2 / 2, theta <= pi/(200 sqrt 2):
    # relative 6.2e-5; allow 1e-4.
    shape = tilted_ellipsoid(33, (12.0, 5.0, 9.0))
    rot, semi = shape.rotation, np.asarray(shape.semi_axes_mm)
    c = np.asarray(shape.centre_mm)
    m = rot @ np.diag(semi**2) @ rot.T
    low, high = shape.bounding_box()
    np.testing.assert_allclose(high - c, np.sqrt(np.diag(m)), rtol=1e-12)
    np.testing.assert_allclose(c - low, np.sqrt(np.diag(m)), rtol=1e-12)
    surf = shape.surface_points(200, 400)
    np.testing.assert_allclose(surf.max(axis=0), high, rtol=0, atol=1e-4 * semi.max())
    np.testing.assert_allclose(surf.min(axis=0), low, rtol=0, atol=1e-4 * semi.max())
    for v in random_unit(np.random.default_rng(34), 20):
        exact = math.sqrt(float(v @ m @ v))
        s = shape.support(v)
        assert s == pytest.approx(exact, rel=1e-12)
        sampled = float(((surf - c) @ v).max())
        assert sampled <= s + 1e-9
        assert s - sampled <= 1e-4 * s


def test_support_bounds_irregular_surface() -> None:
    rng = np.random.default_rng(35)
    for seed in (36, 37):
        shape = irregular_shape(seed)
        c = np.asarray(shape.centre_mm)
        surf = shape.surface_points(200, 400)
        for v in random_unit(rng, 50):
            assert shape.support(v) >= float(((surf - c) @ v).max())


# ----------------------------------------------------------------- 5. elliptic cylinder


def _cylinder_oracle_inside(cyl: EllipticCylinder, pts: np.ndarray) -> np.ndarray:
    c, s = math.cos(cyl.angle_rad), math.sin(cyl.angle_rad)
    dx, dy = pts[:, 0] - cyl.centre_xy_mm[0], pts[:, 1] - cyl.centre_xy_mm[1]
    local = np.stack([c * dx + s * dy, -s * dx + c * dy], axis=1)  # the ellipse's own axes
    a, b = cyl.semi_axes_mm
    z0, z1 = cyl.z_range_mm
    return (
        ((local[:, 0] / a) ** 2 + (local[:, 1] / b) ** 2 < 1) & (pts[:, 2] > z0) & (pts[:, 2] < z1)
    )


def test_elliptic_cylinder_inside_box_and_volume() -> None:
    cyl = EllipticCylinder((3.0, -2.0), (14.0, 6.0), (-7.3, 12.6), 0.7)
    low, high = cyl.bounding_box()
    rng = np.random.default_rng(40)
    n = 1_000_000
    pts = low - 3 + rng.random((n, 3)) * (high - low + 6)
    d, normal = cyl.distance(pts)
    inside = _cylinder_oracle_inside(cyl, pts)
    np.testing.assert_array_equal(d < 0, inside)
    np.testing.assert_array_equal(cyl.contains(pts), inside)
    np.testing.assert_allclose(np.linalg.norm(normal, axis=1), 1.0, rtol=0, atol=1e-12)
    # volume: closed form and Monte Carlo (4 standard errors)
    assert cyl.volume_mm3() == pytest.approx(math.pi * 14 * 6 * 19.9, rel=1e-12)
    box = float(np.prod(high - low + 6))
    p = inside.mean()
    se = box * math.sqrt(p * (1 - p) / n)
    assert abs(box * p - cyl.volume_mm3()) < 4 * se
    # bounding box: contains the rim and is tight (rim sampled every 2 pi / 20000 rad)
    t = np.linspace(0, 2 * np.pi, 20_000, endpoint=False)
    c, s = math.cos(0.7), math.sin(0.7)
    rim = np.stack([14 * np.cos(t), 6 * np.sin(t)], axis=1) @ np.array([[c, s], [-s, c]])
    rim += np.array([3.0, -2.0])
    assert np.all(rim >= low[:2] - 1e-12) and np.all(rim <= high[:2] + 1e-12)
    np.testing.assert_allclose(rim.max(axis=0), high[:2], rtol=0, atol=14 * (np.pi / 20_000) ** 2)
    np.testing.assert_allclose(rim.min(axis=0), low[:2], rtol=0, atol=14 * (np.pi / 20_000) ** 2)
    assert (low[2], high[2]) == (-7.3, 12.6)


def test_circular_cylinder_distance_is_exact() -> None:
    cyl = EllipticCylinder((1.0, 2.0), (5.0, 5.0), (-10.0, 10.0), 0.4)
    rng = np.random.default_rng(41)
    pts = rng.uniform(-15, 15, (100_000, 3))
    d, _ = cyl.distance(pts)
    rho = np.hypot(pts[:, 0] - 1.0, pts[:, 1] - 2.0)
    d_z = np.abs(pts[:, 2]) - 10.0
    # max(radial, axial) is the exact distance inside and wherever one term dominates
    np.testing.assert_allclose(d, np.maximum(rho - 5.0, d_z), rtol=0, atol=1e-12)


# ----------------------------------------------------------------------- 6. grid, pose


def test_grid_affine_axes_and_voxel_volume() -> None:
    grid = Grid((5, 7, 9), (2.5, 0.7, 0.9), (-10.3, 4.2, 7.7))
    rng = np.random.default_rng(50)
    kji = np.stack([rng.integers(0, n, 50) for n in grid.shape], axis=1).astype(float)
    lps = (grid.affine @ np.c_[kji, np.ones(50)].T).T
    np.testing.assert_allclose(lps[:, 0], -10.3 + kji[:, 2] * 0.9, rtol=0, atol=1e-12)
    np.testing.assert_allclose(lps[:, 1], 4.2 + kji[:, 1] * 0.7, rtol=0, atol=1e-12)
    np.testing.assert_allclose(lps[:, 2], 7.7 + kji[:, 0] * 2.5, rtol=0, atol=1e-12)
    np.testing.assert_array_equal(lps[:, 3], 1.0)
    np.testing.assert_allclose(grid.axis_mm(0), 7.7 + 2.5 * np.arange(5), rtol=0, atol=1e-12)
    np.testing.assert_allclose(grid.axis_mm(1), 4.2 + 0.7 * np.arange(7), rtol=0, atol=1e-12)
    np.testing.assert_allclose(grid.axis_mm(2), -10.3 + 0.9 * np.arange(9), rtol=0, atol=1e-12)
    assert grid.voxel_ml == pytest.approx(2.5 * 0.7 * 0.9 / 1000, rel=1e-12)


@pytest.mark.parametrize("factor", [2, 3])
def test_refined_grid_covers_the_same_box(factor: int) -> None:
    grid = Grid((4, 5, 6), (2.5, 0.7, 0.9), (-10.3, 4.2, 7.7))
    fine = grid.refined(factor)
    assert fine.shape == (4 * factor, 5 * factor, 6 * factor)
    np.testing.assert_allclose(fine.spacing_mm, np.array(grid.spacing_mm) / factor, rtol=1e-15)
    for axis in range(3):
        s = grid.spacing_mm[axis]
        coarse_ax, fine_ax = grid.axis_mm(axis), fine.axis_mm(axis)
        # the covered box (voxel edges) is the same
        assert fine_ax[0] - s / factor / 2 == pytest.approx(coarse_ax[0] - s / 2, abs=1e-12)
        assert fine_ax[-1] + s / factor / 2 == pytest.approx(coarse_ax[-1] + s / 2, abs=1e-12)
        if factor == 2:  # first fine centre: a quarter voxel inside the coarse corner
            assert fine_ax[0] == pytest.approx(coarse_ax[0] - s / 4, abs=1e-12)
        # block-averaging fine centres gives the coarse centres
        blocks = fine_ax.reshape(-1, factor).mean(axis=1)
        np.testing.assert_allclose(blocks, coarse_ax, rtol=0, atol=1e-12)
    # the same for a linear function of the LPS position sampled on the 3-D grid
    z, y, x = np.meshgrid(*(fine.axis_mm(a) for a in range(3)), indexing="ij")
    f = 0.3 * x - 1.7 * y + 2.1 * z + 5.0
    n0, n1, n2 = grid.shape
    avg = f.reshape(n0, factor, n1, factor, n2, factor).mean(axis=(1, 3, 5))
    zc, yc, xc = np.meshgrid(*(grid.axis_mm(a) for a in range(3)), indexing="ij")
    np.testing.assert_allclose(avg, 0.3 * xc - 1.7 * yc + 2.1 * zc + 5.0, rtol=0, atol=1e-10)


def test_pose_round_trip_and_rotation_about_z() -> None:
    pose = Pose((12.0, -7.5, 30.25), 0.37)
    rng = np.random.default_rng(51)
    pts = rng.uniform(-200, 200, (1000, 3))
    lps = pose.to_lps(pts)
    # the model quantises rotation entries to 1e-12 (netvolume.phantom._shapes.quantise), so
    # R^T R = I only to ~1e-12: the round trip of points within 350 mm holds to 1e-9 mm
    np.testing.assert_allclose(pose.to_body(lps), pts, rtol=0, atol=1e-9)
    np.testing.assert_allclose(pose.to_lps(pose.to_body(pts)), pts, rtol=0, atol=1e-9)
    np.testing.assert_array_equal(lps[:, 2], pts[:, 2] + 30.25)  # z kept exactly
    np.testing.assert_allclose(
        np.linalg.norm(lps[:, :2] - (12.0, -7.5), axis=1),
        np.linalg.norm(pts[:, :2], axis=1),
        rtol=0,
        atol=1e-9,
    )
    # right-handed: +x turns towards +y
    quarter = Pose((1.0, 2.0, 3.0), math.pi / 2)
    np.testing.assert_allclose(
        quarter.to_lps(np.array([[1.0, 0.0, 0.0]])), [[1, 3, 3]], rtol=0, atol=1e-12
    )
    np.testing.assert_allclose(quarter.to_lps(np.zeros((1, 3))), [[1, 2, 3]], rtol=0, atol=0)
    assert np.linalg.det(pose.rotation) == pytest.approx(1.0, abs=1e-12)


# ------------------------------------------------------------------- 7. paint, coverage


def test_paint_count_equals_direct_inside_count() -> None:
    shape = irregular_shape(60)
    pose = Pose((5.5, -3.25, 12.0), 0.4)
    grid = Grid((22, 40, 36), (2.0, 0.9, 1.1), (-10.3, -17.6, 3.7))
    image = np.zeros(grid.shape, np.float32)
    labels = np.zeros(grid.shape, np.int16)
    count = paint(image, shape, 1.0, grid, pose, labels=labels, label=3)
    expected = direct_inside(shape, grid, pose)
    # the grid must hold the whole shape for the test to cover the full body
    surf = pose.to_lps(shape.surface_points())
    lo = np.array([grid.axis_mm(2)[0], grid.axis_mm(1)[0], grid.axis_mm(0)[0]])
    hi = np.array([grid.axis_mm(2)[-1], grid.axis_mm(1)[-1], grid.axis_mm(0)[-1]])
    assert np.all(surf.min(axis=0) > lo) and np.all(surf.max(axis=0) < hi)
    assert count == int(expected.sum()) > 1000
    np.testing.assert_array_equal(labels == 3, expected)
    assert set(np.unique(labels)) == {0, 3}
    # the partial-volume image is consistent with the inside test (f = 1/2 at d = 0)
    assert np.all(image[expected] >= 0.5)
    assert np.all(image[~expected] <= 0.5)
    assert image.min() >= 0.0 and image.max() <= 1.0


def test_paint_count_on_a_grid_that_clips_the_shape() -> None:
    shape = irregular_shape(61)
    pose = Pose((-2.0, 1.0, 5.0), -1.1)
    grid = Grid((9, 30, 25), (1.7, 1.2, 0.8), (-3.1, -20.4, 4.3))
    labels = np.zeros(grid.shape, np.uint8)
    count = paint(np.zeros(grid.shape, np.float32), shape, 2.0, grid, pose, labels=labels)
    expected = direct_inside(shape, grid, pose)
    assert count == int(expected.sum()) > 100
    assert not expected.all()
    np.testing.assert_array_equal(labels == 1, expected)


def test_paint_is_independent_of_slab_size(monkeypatch: pytest.MonkeyPatch) -> None:
    shape = irregular_shape(62)
    pose = Pose((1.0, 2.0, 3.0), 0.2)
    grid = Grid((30, 36, 36), (1.0, 1.0, 1.0), (-15.0, -15.0, -10.0))

    def render() -> tuple[np.ndarray, np.ndarray, int]:
        image = np.full(grid.shape, 0.25, np.float32)
        labels = np.zeros(grid.shape, np.int16)
        n = paint(image, shape, 3.0, grid, pose, labels=labels, label=2)
        return image, labels, n

    ref = render()
    monkeypatch.setattr(_render, "_CHUNK_VOXELS", 700)  # forces one-slice slabs
    small = render()
    np.testing.assert_array_equal(small[0], ref[0])
    np.testing.assert_array_equal(small[1], ref[1])
    assert small[2] == ref[2] > 0


def test_paint_blends_the_documented_fraction_on_every_voxel() -> None:
    # f = clip(1/2 - d / w, 0, 1), w = sum_i |n_i| spacing_i with n the LPS normal, blended
    # as image + f (value - image); evaluated here on every voxel of the grid, so a voxel
    # with f > 0 left out of the evaluated box would show up.
    shape = irregular_shape(63)
    pose = Pose((2.0, -1.5, 4.0), 0.9)
    grid = Grid((20, 44, 40), (2.0, 0.9, 1.1), (-24.0, -22.0, -8.0))
    background = np.full(grid.shape, 0.25, np.float32)
    image = background.copy()
    paint(image, shape, 3.0, grid, pose)
    d, normal = shape.distance(all_voxel_centres_body(grid, pose))
    c, s = math.cos(0.9), math.sin(0.9)
    n_lps = normal @ np.array([[c, s, 0.0], [-s, c, 0.0], [0.0, 0.0, 1.0]])
    w = np.abs(n_lps) @ np.array([1.1, 0.9, 2.0])
    f = np.clip(0.5 - d / w, 0.0, 1.0).reshape(grid.shape)
    expected = background + f * (3.0 - background)
    np.testing.assert_allclose(image, expected, rtol=0, atol=1e-6)  # float32 rounding
    assert ((f > 0) & (f < 1)).sum() > 1000
    assert (f == 0).sum() > 1000  # the grid is wider than the shape


def test_partial_volume_sum_of_a_sphere() -> None:
    # Linearised box-voxel partial volume: sum(f) approximates the volume to second order
    # in spacing/radius; observed ~0.15 % at 1 mm / 20 mm, assert 1 % (the phantom asks 2 %).
    radius = 20.0
    centre = np.array([0.3, -0.2, 0.1])
    sphere = StarShape(tuple(centre), (radius,) * 3)
    grid = Grid((48, 48, 48), (1.0, 1.0, 1.0), (-23.7, -23.4, -23.2))
    pose = Pose((0.0, 0.0, 0.0))
    image = np.zeros(grid.shape, np.float32)
    paint(image, sphere, 1.0, grid, pose)
    assert abs(image.sum() * grid.voxel_ml / sphere.volume_ml() - 1) < 0.01
    assert image.min() >= 0.0 and image.max() <= 1.0
    r = np.linalg.norm(all_voxel_centres_body(grid, pose) - centre, axis=1).reshape(grid.shape)
    # w = |n|_1 * 1 mm <= sqrt(3) mm: f = 1 for d <= -sqrt(3)/2, 0 for d >= sqrt(3)/2
    half_w = math.sqrt(3) / 2
    assert np.all(image[r < radius - half_w] == 1.0)
    assert np.all(image[r > radius + half_w] == 0.0)
    assert (r < radius - half_w).sum() > 20_000
    # values in between really are fractional, and ~f = 1/2 - d/w
    edge = np.abs(r - radius) < 0.3
    assert np.all((image[edge] > 0.0) & (image[edge] < 1.0))


def test_partial_volume_sum_anisotropic_rotated() -> None:
    # 3 mm slices, 0.8 mm pixels, rotated and shifted pose: observed < 0.4 %, assert 1 %
    sphere = StarShape((0.3, -0.2, 0.1), (20.0, 20.0, 20.0))
    for origin in ((-24.7, -24.4, -30.2), (-24.1, -24.9, -31.6), (-24.45, -24.05, -29.1)):
        grid = Grid((22, 64, 64), (3.0, 0.8, 0.8), origin)
        image = np.zeros(grid.shape, np.float32)
        paint(image, sphere, 1.0, grid, Pose((0.2, 0.1, -0.3), 0.3))
        assert abs(image.sum() * grid.voxel_ml / sphere.volume_ml() - 1) < 0.01


def test_voxel_count_volume_converges_with_resolution() -> None:
    # Lattice-point counting error of a smooth convex body shrinks with the spacing;
    # observed mean errors ~0.44 %, 0.17 %, 0.04 % at 2, 1, 0.5 mm.
    shape = tilted_ellipsoid(70, (12.0, 8.0, 10.0), (0.0, 0.0, 0.0))
    volume = shape.volume_mm3()
    rng = np.random.default_rng(71)
    pose = Pose((0.0, 0.0, 0.0))
    means = []
    for h in (2.0, 1.0, 0.5):
        errors = []
        for _ in range(6):
            offset = rng.uniform(0.0, h, 3)
            n = int(np.ceil(30.0 / h)) + 1
            grid = Grid((n, n, n), (h, h, h), tuple(-15.0 - offset))
            count = paint(np.zeros(grid.shape, np.float32), shape, 1.0, grid, pose)
            errors.append(abs(count * h**3 / volume - 1))
        means.append(float(np.mean(errors)))
    assert means[0] > means[1] > means[2], means
    assert means[2] < 0.01


def test_paint_rejects_overlap_and_accepts_touching() -> None:
    grid = Grid((15, 15, 30), (1.0, 1.0, 1.0), (-7.0, -7.0, -7.0))
    pose = Pose((0.0, 0.0, 0.0))
    a = StarShape((0.0, 0.0, 0.0), (5.0, 5.0, 5.0))
    # touching at (5, 0, 0), which is a voxel centre lying on both surfaces
    b = StarShape((10.0, 0.0, 0.0), (5.0, 5.0, 5.0))
    labels = np.zeros(grid.shape, np.int16)
    image = np.zeros(grid.shape, np.float32)
    na = paint(image, a, 1.0, grid, pose, labels=labels, label=1)
    nb = paint(image, b, 2.0, grid, pose, labels=labels, label=2)
    assert na == nb == int(direct_inside(a, grid, pose).sum()) > 400
    assert labels[7, 7, 12] == 0  # the touching point (x = 5) is in neither
    # painting the same label again is not an overlap
    assert paint(image, a, 1.0, grid, pose, labels=labels, label=1) == na
    # overlapping by a 0.2 mm lens (4.8 < x < 5.0) that holds one voxel centre, x = 4.9
    grid2 = Grid((15, 15, 30), (1.0, 1.0, 1.0), (-7.1, -7.0, -7.0))
    c = StarShape((9.8, 0.0, 0.0), (5.0, 5.0, 5.0))
    centres = all_voxel_centres_body(grid2, pose)
    lens = a.contains(centres) & c.contains(centres)
    assert lens.sum() == 1
    labels2 = np.zeros(grid2.shape, np.int16)
    paint(np.zeros(grid2.shape, np.float32), a, 1.0, grid2, pose, labels=labels2, label=1)
    with pytest.raises(ValueError, match="overlap"):
        paint(np.zeros(grid2.shape, np.float32), c, 1.0, grid2, pose, labels=labels2, label=2)


def test_cylinder_fast_path_matches_direct_inside_test() -> None:
    cyl = EllipticCylinder((3.0, -2.0), (14.0, 9.0), (-7.3, 12.6), 0.5)
    grid = Grid((40, 50, 50), (1.5, 0.9, 0.8), (-20.0, -22.0, -30.0))
    for pose in (Pose((1.0, 2.0, -0.4), 0.3), Pose((0.0, 0.0, 0.0)), Pose((-2.0, 0.5, 3.0), 2.0)):
        _, inside = assemble(cyl, grid, pose)
        expected = direct_inside(cyl, grid, pose)
        np.testing.assert_array_equal(inside, expected)
        # both z ends fall inside the grid, and the rim is inside in-plane
        for axes in ((1, 2), (0, 2), (0, 1)):
            hit = expected.any(axis=axes)
            assert hit.any() and not hit[0] and not hit[-1]
        labels = np.zeros(grid.shape, np.int16)
        image = np.zeros(grid.shape, np.float32)
        assert paint(image, cyl, 1.0, grid, pose, labels=labels) == int(expected.sum())
        np.testing.assert_array_equal(labels == 1, expected)
        # partial volume: z-end ramps sum exactly to L / slice; in-plane error ~0.1 %
        assert abs(image.sum() * grid.voxel_ml * 1000 / cyl.volume_mm3() - 1) < 0.01


def test_cylinder_fast_path_on_exact_boundaries() -> None:
    # z ends and the in-plane rim vertices pass exactly through voxel centres: those centres
    # lie on the surface (d == 0), so they are outside for both the fast path and
    # ``contains``. (The axis, x = 0.5, is kept off the voxel centres: see the next test.)
    grid = Grid((20, 21, 23), (1.5, 1.0, 1.0), (-12.0, -10.0, -11.0))
    cyl = EllipticCylinder((0.5, 0.0), (5.5, 4.0), (-9.5, 7.0), 0.0)
    for pose in (Pose((0.0, 0.0, 0.0)), Pose((1.0, -2.0, 3.0), math.pi / 2)):
        _, inside = assemble(cyl, grid, pose)
        expected = direct_inside(cyl, grid, pose)
        np.testing.assert_array_equal(inside, expected)
        # the slices at the z ends and the rim vertices are on the boundary, not inside
        z_body = grid.axis_mm(0) - pose.translation_mm[2]
        on_end = (z_body == -9.5) | (z_body == 7.0)
        assert on_end.sum() == 2
        assert not inside[on_end].any()
        interior = (z_body > -9.5) & (z_body < 7.0)
        assert inside[interior].sum(axis=(1, 2)).min() > 50
        body = all_voxel_centres_body(grid, pose).reshape((*grid.shape, 3))
        vertex = (np.abs(np.abs(body[..., 0] - 0.5) - 5.5) < 1e-9) & (np.abs(body[..., 1]) < 1e-9)
        assert vertex[interior].sum() == 2 * interior.sum()
        assert not inside[vertex].any()


def test_cylinder_voxel_centre_on_the_axis() -> None:
    # On the cylinder's axis (rho == 0) the in-plane gradient vanishes. ``distance`` must
    # still return a unit normal and an inside depth between the semi-axes (the true
    # distance there is the short semi-axis), and painting a grid with a voxel centre on
    # the axis must not divide by a zero voxel width (pytest turns the RuntimeWarning
    # into an error). The phantom's body, wall and cavity cylinders are centred at body
    # (0, 0), which the pose maps to LPS (t_x, t_y): a voxel centre can sit there.
    cyl = EllipticCylinder((1.0, -2.0), (6.0, 4.0), (-9.0, 7.5), 0.3)
    d, normal = cyl.distance(np.array([[1.0, -2.0, 0.0], [1.0, -2.0, 5.0]]))
    assert d[0] == -4.0  # the short semi-axis: nearer than the end caps (7.5, 9 mm)
    assert d[1] == -2.5 and normal[1].tolist() == [0.0, 0.0, 1.0]  # the top cap is nearer
    np.testing.assert_allclose(np.linalg.norm(normal, axis=1), 1.0, rtol=0, atol=1e-12)
    # a PET-like grid (4 mm pixels) with a voxel centre on the axis: that voxel is full
    grid = Grid((8, 9, 9), (3.0, 4.0, 4.0), (-15.0, -18.0, -10.5))
    image = np.zeros(grid.shape, np.float32)
    labels = np.zeros(grid.shape, np.int16)
    count = paint(image, cyl, 1.0, grid, Pose((0.0, 0.0, 0.0)), labels=labels)
    assert count == int(direct_inside(cyl, grid, Pose((0.0, 0.0, 0.0))).sum())
    k = int(np.argmin(np.abs(grid.axis_mm(0) - 0.0)))
    assert grid.axis_mm(2)[4] == 1.0 and grid.axis_mm(1)[4] == -2.0
    assert image[k, 4, 4] == 1.0


@pytest.mark.parametrize("angle", [0.0, math.pi / 2])
def test_partial_volume_fraction_across_axis_aligned_surfaces(angle: float) -> None:
    # A surface crossing a box voxel perpendicular to one grid axis covers exactly
    # clip(1/2 - d / spacing_axis, 0, 1) of it, and the linearised model is exact there.
    # A sphere of radius 4000 mm is that plane to within a sag of (2.5^2 + 1.1^2) / (8 *
    # 4000) = 2.3e-4 mm across a voxel; its normal at voxel centres on the grid line through
    # its centre is exactly the axis, so the model must reproduce the plane formula to
    # float32 rounding (1e-6). The pose rotated by 90 degrees maps body x to LPS y: the
    # width must use the LPS spacing.
    radius = 4000.0
    grid = Grid((9, 11, 13), (2.5, 0.7, 1.1), (-5.5, -3.5, -10.0))
    pose = Pose((0.0, 0.0, 0.0), angle)
    line = np.array([grid.axis_mm(2)[6], grid.axis_mm(1)[5], grid.axis_mm(0)[4]])  # LPS
    for lps_axis, array_axis in ((0, 2), (1, 1), (2, 0)):
        spacing = grid.spacing_mm[array_axis]
        e = np.zeros(3)
        e[lps_axis] = 1.0
        crossing = line + 0.37 * spacing * e
        centre_lps = crossing - radius * e
        sphere = StarShape(tuple(pose.to_body(centre_lps[None, :])[0]), (radius,) * 3)
        image = np.zeros(grid.shape, np.float32)
        paint(image, sphere, 1.0, grid, pose)
        index = [4, 5, 6]
        index[array_axis] = slice(None)
        got = image[tuple(index)]
        coord = grid.axis_mm(array_axis)
        d = coord - crossing[lps_axis]
        expected = np.clip(0.5 - d / spacing, 0.0, 1.0)
        np.testing.assert_allclose(got, expected, rtol=0, atol=1e-6)
        assert ((got > 0) & (got < 1)).sum() == 1  # the surface cuts one voxel of the line


# --------------------------------------------------------------------- 8. Krenning grade


@pytest.mark.parametrize(
    ("suv", "grade"),
    [
        (0.5, 0),
        (1.0, 0),  # == background
        (float(np.nextafter(1.0, 2.0)), 1),
        (2.0, 1),
        (float(np.nextafter(3.0, 0.0)), 1),
        (3.0, 2),  # == half the liver: no longer "below half"
        (6.0, 2),  # == liver
        (float(np.nextafter(6.0, 7.0)), 3),
        (20.0, 3),  # == spleen
        (float(np.nextafter(20.0, 21.0)), 4),
        (45.0, 4),
    ],
)
def test_krenning_grade_boundaries(suv: float, grade: int) -> None:
    assert krenning_grade(suv, background_suv=1.0, liver_suv=6.0, spleen_suv=20.0) == grade

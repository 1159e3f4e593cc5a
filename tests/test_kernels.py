"""Tests of the connected-component kernels of :mod:`netvolume.kernels`: ``label``,
``largest_component``, ``fill_holes`` and ``dust``.

Oracles, never the code's own output:

* ``label`` against ``scipy.ndimage.label`` with the matching structure
  (``generate_binary_structure(ndim, 1 | 2 | 3)``), compared *exactly*: both number the
  components 1..n in raster (C) order of their first voxel;
* component counts of constructed shapes worked out by hand (checkerboards, voxels touching
  by a face / an edge / a corner only, grids of isolated dots);
* ``largest_component`` against scipy's labels + ``np.bincount`` arg-max (lowest label on
  ties, i.e. first in raster order);
* ``fill_holes`` against ``scipy.ndimage.binary_fill_holes`` with the background structure;
* ``dust`` against a scipy-based reference (components with fewer than ``min_voxels``
  voxels set to 0, the rest copied unchanged).
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from scipy import ndimage

from netvolume import kernels
from netvolume.errors import KernelInputError

#: connectivity -> rank argument of ``ndimage.generate_binary_structure``
_RANK = {(3, 6): 1, (3, 18): 2, (3, 26): 3, (2, 4): 1, (2, 8): 2}
CONN_3D = (6, 18, 26)
CONN_2D = (4, 8)
INT_DTYPES = (
    np.bool_,
    np.uint8,
    np.int8,
    np.uint16,
    np.int16,
    np.int32,
    np.uint32,
    np.int64,
    np.uint64,
)


# --------------------------------------------------------------------------- helpers
def _structure(ndim: int, connectivity: int) -> np.ndarray:
    return ndimage.generate_binary_structure(ndim, _RANK[(ndim, connectivity)])


def _smallest_uint(n: int) -> type:
    for dt in (np.uint8, np.uint16, np.uint32):
        if n <= np.iinfo(dt).max:
            return dt
    return np.uint64


def _scipy_label(mask: np.ndarray, connectivity: int) -> tuple[np.ndarray, int]:
    ref, n = ndimage.label(np.asarray(mask) != 0, structure=_structure(mask.ndim, connectivity))
    return ref, int(n)


def _check_label(mask: np.ndarray, connectivity: int | None = None) -> tuple[np.ndarray, int]:
    """Run ``kernels.label`` and compare it with scipy (exact labels, n, dtype, shape)."""
    before = np.array(mask, copy=True)
    if connectivity is None:
        labels, n = kernels.label(mask)
        ref_conn = 26 if mask.ndim == 3 else 8  # the default 26 is read as 8 on 2-D masks
    else:
        labels, n = kernels.label(mask, connectivity=connectivity)
        ref_conn = connectivity
    ref, n_ref = _scipy_label(mask, ref_conn)
    assert type(n) is int, type(n)
    assert n == n_ref, (n, n_ref)
    assert isinstance(labels, np.ndarray)
    assert labels.shape == mask.shape
    assert labels.dtype == _smallest_uint(n), (labels.dtype, n)
    if not np.array_equal(labels, ref):
        bad = np.argwhere(labels != ref)
        idx = tuple(bad[0])
        raise AssertionError(
            f"{len(bad)} voxels differ from scipy; first at {idx}: got {labels[idx]}, "
            f"expected {ref[idx]} (connectivity {ref_conn}, shape {mask.shape})"
        )
    np.testing.assert_array_equal(mask, before)  # the input is left alone
    return labels, n


def _fill_nonzero(shape: tuple[int, ...], dtype: type, density: float, seed: int) -> np.ndarray:
    """A seeded mask of ``dtype`` whose foreground holds awkward nonzero values: negative
    ones and ones whose low byte(s) are zero (256, 2**32, 2**63...)."""
    rng = np.random.default_rng(seed)
    fg = rng.random(shape) < density
    out = np.zeros(shape, dtype=dtype)
    if dtype is np.bool_:
        out[fg] = True
        return out
    info = np.iinfo(dtype)
    candidates = [1, info.max, info.min, -1, 256, -256, 2**16, 2**24, 2**32, -(2**40), 2**63]
    pool = [v for v in candidates if v != 0 and info.min <= v <= info.max]
    out[fg] = np.array(pool, dtype=dtype)[rng.integers(0, len(pool), size=int(fg.sum()))]
    return out


# --------------------------------------------------------------------------- label
@pytest.mark.parametrize("density", [0.1, 0.3, 0.5, 0.7])
@pytest.mark.parametrize("connectivity", CONN_3D)
def test_label_random_3d_equals_scipy(connectivity: int, density: float) -> None:
    """Seeded random 3-D bool masks at several densities: labels == scipy.ndimage.label."""
    seed = int(density * 100) + connectivity
    mask = np.random.default_rng(seed).random((17, 23, 29)) < density
    _check_label(mask, connectivity)


@pytest.mark.parametrize("density", [0.1, 0.3, 0.5, 0.7])
@pytest.mark.parametrize("connectivity", [*CONN_2D, None])
def test_label_random_2d_equals_scipy(connectivity: int | None, density: float) -> None:
    """Seeded random 2-D masks with connectivity 4, 8 and the default (26, read as 8):
    labels == scipy.ndimage.label with the 4- / 8-structure."""
    seed = int(density * 100) + (connectivity or 0) + 7
    mask = np.random.default_rng(seed).random((37, 45)) < density
    _check_label(mask, connectivity)


@pytest.mark.parametrize("dtype", INT_DTYPES, ids=lambda d: np.dtype(d).name)
def test_label_every_integer_dtype(dtype: type) -> None:
    """Every accepted dtype; nonzero is foreground, including negative values and values
    whose low byte is 0 (256, 2**32, 2**63, ...). Oracle: scipy on ``mask != 0``."""
    mask = _fill_nonzero((9, 14, 19), dtype, 0.35, seed=11)
    for conn in CONN_3D:
        _check_label(mask, conn)
    mask2 = _fill_nonzero((21, 27), dtype, 0.45, seed=12)
    for conn in CONN_2D:
        _check_label(mask2, conn)


@pytest.mark.parametrize(
    "view",
    ["transpose", "strided", "reversed", "fortran", "int16_strided"],
)
def test_label_non_contiguous_inputs(view: str) -> None:
    """Transposed, strided, negatively strided and Fortran-ordered views: scipy oracle on the
    same view."""
    base = np.random.default_rng(3).random((20, 26, 34)) < 0.4
    if view == "transpose":
        mask = base.transpose(2, 0, 1)
    elif view == "strided":
        mask = base[::2, 1::3, ::2]
    elif view == "reversed":
        mask = base[::-1, :, ::-1]
    elif view == "fortran":
        mask = np.asfortranarray(base)
    else:
        mask = _fill_nonzero((20, 26, 34), np.int16, 0.4, seed=4)[1::2, :, ::3]
    assert not mask.flags.c_contiguous
    for conn in CONN_3D:
        _check_label(mask, conn)
    _check_label(mask[3], 4)
    _check_label(mask[:, 2, :].T, 8)


@pytest.mark.parametrize(
    "shape", [(7, 9, 13), (5, 11, 1), (3, 3, 17), (6, 5, 63), (4, 4, 65), (2, 3, 7), (1, 1, 9)]
)
def test_label_odd_widths(shape: tuple[int, ...]) -> None:
    """Row lengths that are not a multiple of 8 (and 1-wide axes): scipy oracle."""
    mask = np.random.default_rng(sum(shape)).random(shape) < 0.45
    for conn in CONN_3D:
        _check_label(mask, conn)
    _check_label(mask[0], 4)
    _check_label(mask[0], 8)


def test_label_empty_and_full() -> None:
    """Empty mask: n == 0, all zeros, dtype uint8. Full mask: n == 1, all ones, uint8."""
    for shape in [(4, 5, 6), (1, 1, 1), (6, 7)]:
        conns = CONN_3D if len(shape) == 3 else CONN_2D
        for conn in conns:
            labels, n = _check_label(np.zeros(shape, bool), conn)
            assert n == 0 and labels.dtype == np.uint8 and not labels.any()
            labels, n = _check_label(np.ones(shape, np.uint8), conn)
            assert n == 1 and labels.dtype == np.uint8 and (labels == 1).all()


@pytest.mark.parametrize(
    "index", [(0, 0, 0), (3, 4, 5), (6, 8, 10), (0, 8, 0), (6, 0, 10), (0, 0, 10)]
)
def test_label_single_voxel(index: tuple[int, int, int]) -> None:
    """One voxel (inside, and in corners of the array): n == 1 at exactly that voxel."""
    mask = np.zeros((7, 9, 11), bool)
    mask[index] = True
    for conn in CONN_3D:
        labels, n = _check_label(mask, conn)
        assert n == 1 and labels[index] == 1 and labels.sum() == 1


@pytest.mark.parametrize("axis", [0, 1, 2])
def test_label_planes_each_orientation(axis: int) -> None:
    """1-voxel-thick planes normal to each axis: one plane -> n == 1; two planes one voxel
    apart -> n == 2 for every connectivity; adjacent planes -> n == 1."""
    shape = (8, 9, 10)
    for planes, n_expected in [((3,), 1), ((2, 4), 2), ((0, 7), 2), ((4, 5), 1)]:
        mask = np.zeros(shape, bool)
        for p in planes:
            sl = [slice(None)] * 3
            sl[axis] = slice(p, p + 1)
            mask[tuple(sl)] = True
        for conn in CONN_3D:
            _, n = _check_label(mask, conn)
            assert n == n_expected, (planes, conn, n)


def test_label_diagonal_only_contacts() -> None:
    """Two voxels touching by an edge only: 6 -> 2 components, 18 and 26 -> 1. By a corner
    only: 6 and 18 -> 2, 26 -> 1. 2-D pixels touching by a corner: 4 -> 2, 8 -> 1.
    (Counts by hand, labels checked against scipy.)"""
    edge = np.zeros((4, 4, 4), bool)
    edge[1, 1, 1] = edge[1, 2, 2] = True
    corner = np.zeros((4, 4, 4), bool)
    corner[1, 1, 1] = corner[2, 2, 2] = True
    for mask, expected in [(edge, {6: 2, 18: 1, 26: 1}), (corner, {6: 2, 18: 2, 26: 1})]:
        for conn, n_exp in expected.items():
            _, n = _check_label(mask, conn)
            assert n == n_exp, (conn, n)
    # an anti-diagonal: the second voxel comes first in raster order
    anti = np.zeros((3, 3, 3), bool)
    anti[0, 0, 2] = anti[1, 1, 1] = anti[2, 2, 0] = True
    assert _check_label(anti, 26)[1] == 1
    assert _check_label(anti, 18)[1] == 3
    px = np.zeros((5, 5), bool)
    px[1, 2] = px[2, 1] = True
    assert _check_label(px, 4)[1] == 2
    assert _check_label(px, 8)[1] == 1
    assert _check_label(px)[1] == 1  # default on 2-D is 8


def test_label_checkerboard_3d_many_components() -> None:
    """Checkerboard 20x20x20: 6-connectivity gives one component per voxel (n = 4000 ->
    uint16); 18 and 26 connect all of it through edges (n = 1 -> uint8)."""
    idx = np.indices((20, 20, 20)).sum(axis=0)
    mask = (idx % 2 == 0).astype(np.uint8)
    labels, n = _check_label(mask, 6)
    assert n == 4000 and labels.dtype == np.uint16
    for conn in (18, 26):
        labels, n = _check_label(mask, conn)
        assert n == 1 and labels.dtype == np.uint8


def test_label_dtype_thresholds_uint8_uint16() -> None:
    """n == 255 -> uint8 and n == 256 -> uint16 (a 2-D grid of isolated dots, 8-conn), and
    a 24x24 2-D checkerboard with 4-connectivity (n = 288 -> uint16)."""
    dots = np.zeros((32, 32), bool)
    dots[::2, ::2] = True  # 16 * 16 = 256 isolated dots
    labels, n = _check_label(dots, 8)
    assert n == 256 and labels.dtype == np.uint16
    dots[30, 30] = False
    labels, n = _check_label(dots, 8)
    assert n == 255 and labels.dtype == np.uint8
    assert labels.max() == 255
    cb = np.indices((24, 24)).sum(axis=0) % 2 == 1
    labels, n = _check_label(cb, 4)
    assert n == 288 and labels.dtype == np.uint16


def test_label_dtype_thresholds_uint16_uint32() -> None:
    """A 3-D grid of 65536 isolated dots -> uint32; one dot less (65535) -> uint16."""
    dots = np.zeros((32, 128, 128), bool)
    dots[::2, ::2, ::2] = True
    labels, n = _check_label(dots, 26)
    assert n == 65536 and labels.dtype == np.uint32
    dots[-2, -2, -2] = False
    labels, n = _check_label(dots, 26)
    assert n == 65535 and labels.dtype == np.uint16


def test_label_checkerboard_uint32() -> None:
    """Checkerboard 52^3 with 6-connectivity: n = 70304 isolated voxels -> uint32."""
    mask = np.indices((52, 52, 52)).sum(axis=0) % 2 == 0
    labels, n = _check_label(mask, 6)
    assert n == 70304 and labels.dtype == np.uint32


@pytest.mark.parametrize("connectivity", [6, 26])
def test_label_large_volume_slab_stitching(connectivity: int) -> None:
    """A 64x128x130 volume at density 0.3 (exercises multi-threaded slab stitching):
    exact equality with scipy."""
    mask = np.random.default_rng(64 + connectivity).random((64, 128, 130)) < 0.3
    _check_label(mask, connectivity)


def test_label_components_crossing_every_slab() -> None:
    """Components that cross every slab boundary: a serpentine made of z-columns joined
    alternately at the first and the last slice (one component), a U that only merges at
    the bottom slice, an inverted U merging only at the top slice, and columns that never
    merge, over seeded sparse noise. Oracle: scipy, and the component counts by hand."""
    nz = 70
    mask = np.zeros((nz, 12, 40), bool)
    cols = list(range(0, 40, 2))
    for c in cols:  # serpentine in row 0
        mask[:, 0, c] = True
    for i, (a, b) in enumerate(itertools.pairwise(cols)):
        z = 0 if i % 2 else nz - 1
        mask[z, 0, a : b + 1] = True
    mask[:, 4, 3] = mask[:, 4, 30] = True  # U: joined at the bottom slice only
    mask[nz - 1, 4, 3:31] = True
    mask[:, 8, 5] = mask[:, 8, 25] = True  # inverted U: joined at the top slice only
    mask[0, 8, 5:26] = True
    mask[:, 10, 10] = mask[:, 10, 12] = True  # two columns that never merge
    for conn in CONN_3D:
        _, n = _check_label(mask, conn)
        assert n == 5, (conn, n)
    noisy = mask | (np.random.default_rng(70).random(mask.shape) < 0.05)
    noisy[:, 2:4, :] = False  # keep the serpentine separated from the U
    for conn in CONN_3D:
        _check_label(noisy, conn)


def test_label_helix_and_late_merges() -> None:
    """A helix around the z axis (one component spanning all slices) and many short stubs
    starting at slice 0 that are joined one by one in later and later slices (each merge
    renumbers labels that were allocated early). Oracle: scipy."""
    nz = 60
    mask = np.zeros((nz, 24, 24), bool)
    for z in range(nz):
        a = z * 2 * np.pi / nz
        r, c = round(11 + 8 * np.sin(a)), round(11 + 8 * np.cos(a))
        mask[z, r - 1 : r + 2, c - 1 : c + 2] = True
    stubs = np.zeros((nz, 5, 30), bool)
    for k in range(15):
        stubs[: 4 * k + 3, 0, 2 * k] = True
        stubs[4 * k + 2, 0, 2 * k : 2 * k + 3] = True
    for conn in CONN_3D:
        _, n = _check_label(mask, conn)
        assert n == 1
        _check_label(stubs, conn)


@pytest.mark.parametrize(
    ("shape", "dtype", "connectivity"),
    [
        ((4, 5, 6), np.float32, 26),
        ((4, 5, 6), np.float64, 6),
        ((4, 5), np.float64, 8),
        ((10,), np.bool_, 26),
        ((10,), np.uint8, 6),
        ((2, 3, 4, 5), np.bool_, 26),
        ((2, 3, 4, 5), np.uint8, 6),
        ((4, 5, 6), np.bool_, 5),
        ((4, 5, 6), np.bool_, 4),
        ((4, 5, 6), np.bool_, 8),
        ((4, 5, 6), np.bool_, 0),
        ((4, 5), np.bool_, 18),
        ((4, 5), np.bool_, 6),
        ((4, 5), np.bool_, 5),
    ],
)
def test_label_rejects_bad_input(shape: tuple[int, ...], dtype: type, connectivity: int) -> None:
    """Float masks, 1-D / 4-D masks and connectivities not valid for the dimension raise
    KernelInputError (a ValueError)."""
    mask = np.zeros(shape, dtype)
    with pytest.raises(KernelInputError):
        kernels.label(mask, connectivity=connectivity)
    assert issubclass(KernelInputError, ValueError)


def test_label_rejects_float_mask_default_connectivity() -> None:
    """A float mask with the default connectivity (even if it only holds 0 / 1)."""
    with pytest.raises(KernelInputError):
        kernels.label(np.ones((3, 4, 5), np.float32))


# --------------------------------------------------------------------------- largest_component
def _ref_largest(mask: np.ndarray, connectivity: int) -> np.ndarray:
    ref, n = _scipy_label(mask, connectivity)
    if n == 0:
        return np.zeros(mask.shape, bool)
    counts = np.bincount(ref.ravel())[1:]
    return ref == int(np.argmax(counts)) + 1  # argmax: first max -> lowest label


@pytest.mark.parametrize("density", [0.2, 0.3, 0.5])
@pytest.mark.parametrize("connectivity", [*CONN_3D, None])
def test_largest_component_random(connectivity: int | None, density: float) -> None:
    """Seeded random masks: the result equals scipy label + bincount arg-max."""
    mask = (
        np.random.default_rng(int(density * 10) + (connectivity or 1)).random((15, 18, 21))
        < density
    )
    if connectivity is None:
        got = kernels.largest_component(mask)
        ref = _ref_largest(mask, 26)
    else:
        got = kernels.largest_component(mask, connectivity=connectivity)
        ref = _ref_largest(mask, connectivity)
    assert got.dtype == np.bool_ and got.shape == mask.shape
    np.testing.assert_array_equal(got, ref)


def test_largest_component_ties_and_empty() -> None:
    """Two components of equal size -> the one first in raster order; empty -> all False;
    integer input with negative values counts as foreground; connectivity changes the
    answer (a diagonal pair is one component under 26 only)."""
    mask = np.zeros((6, 7, 8), np.int16)
    mask[4, 1:4, 1] = -3  # 3 voxels, first voxel at (4, 1, 1)
    mask[1, 5, 5:8] = 9  # 3 voxels, first voxel at (1, 5, 5): first in raster order
    got = kernels.largest_component(mask, connectivity=6)
    expected = np.zeros(mask.shape, bool)
    expected[1, 5, 5:8] = True
    np.testing.assert_array_equal(got, expected)
    np.testing.assert_array_equal(got, _ref_largest(mask, 6))
    assert not kernels.largest_component(np.zeros((3, 4, 5), bool)).any()
    diag = np.zeros((5, 5, 5), bool)
    diag[0, 0, 4] = True  # 1 voxel, first in raster order
    diag[2, 2, 2] = diag[3, 3, 3] = True  # 2 voxels by a corner
    exp26 = np.zeros_like(diag)
    exp26[2, 2, 2] = exp26[3, 3, 3] = True
    np.testing.assert_array_equal(kernels.largest_component(diag), exp26)
    exp6 = np.zeros_like(diag)
    exp6[0, 0, 4] = True
    np.testing.assert_array_equal(kernels.largest_component(diag, connectivity=6), exp6)


# --------------------------------------------------------------------------- fill_holes
def _hollow_sphere(n: int = 21, r_out: float = 8.0, r_in: float = 5.0) -> np.ndarray:
    d = np.sqrt(((np.indices((n, n, n)) - n // 2) ** 2).sum(axis=0))
    return (d <= r_out) & (d > r_in)


@pytest.mark.parametrize("density", [0.55, 0.65, 0.75])
@pytest.mark.parametrize("connectivity", [*CONN_3D, None])
def test_fill_holes_random_3d(connectivity: int | None, density: float) -> None:
    """Seeded random dense masks (many small cavities): equals
    scipy.ndimage.binary_fill_holes with the background structure (default 6)."""
    mask = (
        np.random.default_rng(int(density * 100) + (connectivity or 2)).random((14, 17, 19))
        < density
    )
    if connectivity is None:
        got = kernels.fill_holes(mask)
        ref = ndimage.binary_fill_holes(mask, structure=_structure(3, 6))
    else:
        got = kernels.fill_holes(mask, connectivity=connectivity)
        ref = ndimage.binary_fill_holes(mask, structure=_structure(3, connectivity))
    assert got.shape == mask.shape and got.dtype == np.bool_
    np.testing.assert_array_equal(got, ref)
    assert (got >= mask).all()


@pytest.mark.parametrize("density", [0.6, 0.7])
@pytest.mark.parametrize("connectivity", CONN_2D)
def test_fill_holes_random_2d(connectivity: int, density: float) -> None:
    """2-D masks with background connectivity 4 / 8: equals binary_fill_holes."""
    mask = np.random.default_rng(int(density * 10) + connectivity).random((40, 33)) < density
    got = kernels.fill_holes(mask, connectivity=connectivity)
    ref = ndimage.binary_fill_holes(mask, structure=_structure(2, connectivity))
    np.testing.assert_array_equal(got, ref)


def test_fill_holes_hollow_sphere_and_border() -> None:
    """A hollow sphere is filled to the solid ball; a cavity touching the array border is
    not a hole; a cavity joined to the outside by a diagonal-only channel is a hole for
    background connectivity 6 but not for 26. Oracles: the analytic sets and scipy."""
    shell = _hollow_sphere()
    d = np.sqrt(((np.indices(shell.shape) - 10) ** 2).sum(axis=0))
    for conn in CONN_3D:
        got = kernels.fill_holes(shell, connectivity=conn)
        np.testing.assert_array_equal(got, d <= 8.0)
    # a shell cut by the array border: the open cavity stays background
    cut = shell[:, :, 10:]
    for conn in CONN_3D:
        got = kernels.fill_holes(cut, connectivity=conn)
        np.testing.assert_array_equal(got, cut)
        np.testing.assert_array_equal(got, ndimage.binary_fill_holes(cut, _structure(3, conn)))
    # a closed box whose cavity reaches the outside through one corner-touching voxel
    box = np.ones((7, 7, 7), bool)
    box[2:5, 2:5, 2:5] = False  # cavity
    box[5, 5, 5] = False  # touches the cavity (4,4,4) by a corner only
    box[6, 6, 6] = False  # border voxel touching (5,5,5) by a corner only
    exp6 = np.ones_like(box)
    exp6[6, 6, 6] = False
    np.testing.assert_array_equal(kernels.fill_holes(box), exp6)
    np.testing.assert_array_equal(kernels.fill_holes(box, connectivity=6), exp6)
    np.testing.assert_array_equal(kernels.fill_holes(box, connectivity=26), box)
    for conn in CONN_3D:
        np.testing.assert_array_equal(
            kernels.fill_holes(box, connectivity=conn),
            ndimage.binary_fill_holes(box, _structure(3, conn)),
        )


def test_fill_holes_2d_ring_and_border_hole() -> None:
    """2-D: a ring is filled; a notch open to the border is not; a hole reaching out by a
    corner only is filled under 4- but not 8-connectivity. Oracle: binary_fill_holes."""
    img = np.zeros((20, 20), bool)
    img[2:9, 2:9] = True
    img[4:7, 4:7] = False  # closed hole
    img[12:19, 0:6] = True
    img[14:17, 0:3] = False  # open to the left border
    img[10:15, 10:15] = True
    img[11:14, 11:14] = False
    img[14, 14] = False  # open to the outside; touches the hole (13, 13) by a corner only
    for conn in CONN_2D:
        got = kernels.fill_holes(img, connectivity=conn)
        np.testing.assert_array_equal(got, ndimage.binary_fill_holes(img, _structure(2, conn)))
    got4 = kernels.fill_holes(img, connectivity=4)
    got8 = kernels.fill_holes(img, connectivity=8)
    assert got4[5, 5] and got8[5, 5]
    assert not got4[15, 1] and not got8[15, 1]
    assert got4[12, 12] and not got8[12, 12]


def test_fill_holes_rejects_bad_connectivity() -> None:
    """Connectivity not valid for the dimension -> KernelInputError."""
    with pytest.raises(KernelInputError):
        kernels.fill_holes(np.ones((3, 4, 5), bool), connectivity=4)
    with pytest.raises(KernelInputError):
        kernels.fill_holes(np.ones((4, 5), bool), connectivity=18)
    with pytest.raises(KernelInputError):
        kernels.fill_holes(np.ones((3, 4, 5), bool), connectivity=7)


# --------------------------------------------------------------------------- dust
def _ref_dust(mask: np.ndarray, min_voxels: int, connectivity: int) -> np.ndarray:
    ref, _ = _scipy_label(mask, connectivity)
    sizes = np.bincount(ref.ravel())
    keep = sizes >= min_voxels
    keep[0] = False
    out = np.array(mask, copy=True)
    out[~keep[ref]] = 0
    return out


@pytest.mark.parametrize("min_voxels", [0, 1, 2, 3, 5, 12])
@pytest.mark.parametrize("connectivity", [*CONN_3D, None])
def test_dust_random(connectivity: int | None, min_voxels: int) -> None:
    """Seeded random uint16 masks with several nonzero values: components (of nonzero
    voxels, whatever their value) with fewer than min_voxels voxels become 0, the rest keep
    their values; dtype preserved, input unchanged. Oracle: scipy label + bincount."""
    rng = np.random.default_rng(min_voxels + (connectivity or 3))
    mask = (rng.random((13, 16, 19)) < 0.25) * rng.integers(1, 5000, (13, 16, 19))
    mask = mask.astype(np.uint16)
    before = mask.copy()
    if connectivity is None:
        got = kernels.dust(mask, min_voxels)
        ref = _ref_dust(mask, min_voxels, 26)
    else:
        got = kernels.dust(mask, min_voxels, connectivity=connectivity)
        ref = _ref_dust(mask, min_voxels, connectivity)
    assert got.dtype == np.uint16 and got.shape == mask.shape
    np.testing.assert_array_equal(got, ref)
    np.testing.assert_array_equal(mask, before)
    if min_voxels <= 1:
        np.testing.assert_array_equal(got, mask)
    assert got is not mask


@pytest.mark.parametrize(
    "dtype", [np.bool_, np.uint8, np.int16, np.int64], ids=lambda d: np.dtype(d).name
)
def test_dust_dtypes_and_threshold_boundary(dtype: type) -> None:
    """A component of exactly min_voxels voxels is kept, one voxel fewer is removed; the
    dtype and the (negative) values are kept; connectivity 6 splits a diagonal pair."""
    mask = np.zeros((6, 8, 9), dtype)
    v = True if dtype is np.bool_ else -2 if np.issubdtype(dtype, np.signedinteger) else 7
    mask[1, 1, 1:5] = v  # 4 voxels
    mask[4, 5, 2:5] = v  # 3 voxels
    mask[2, 6, 7] = mask[3, 7, 8] = v  # 2 voxels touching by a corner
    got = kernels.dust(mask, 4)
    assert got.dtype == mask.dtype
    exp = np.zeros_like(mask)
    exp[1, 1, 1:5] = v
    np.testing.assert_array_equal(got, exp)
    got = kernels.dust(mask, 2)
    exp[4, 5, 2:5] = v
    exp[2, 6, 7] = exp[3, 7, 8] = v
    np.testing.assert_array_equal(got, exp)
    got6 = kernels.dust(mask, 2, connectivity=6)
    exp[2, 6, 7] = exp[3, 7, 8] = 0
    np.testing.assert_array_equal(got6, exp)
    np.testing.assert_array_equal(kernels.dust(mask, 0), mask)


def test_dust_rejects_negative_threshold() -> None:
    """min_voxels < 0 -> KernelInputError."""
    with pytest.raises(KernelInputError):
        kernels.dust(np.ones((3, 4, 5), bool), -1)

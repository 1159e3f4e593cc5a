"""Tests of the Euclidean ball morphology, bounding box and flood fill of
:mod:`netvolume.kernels` (``dilate_ball``, ``erode_ball``, ``ball_offsets``, ``bbox``,
``connected_to``) and of ``fill_holes`` cropped to the mask's box.

Oracles, never the code's own output:

* ``dilate_ball`` / ``erode_ball`` against a threshold of
  ``scipy.ndimage.distance_transform_edt`` with ``sampling=spacing`` (the exact Euclidean
  distance transform), compared exactly, on random blobs with anisotropic spacings,
  radii on and between voxel distances, and masks touching the array border;
* ``ball_offsets`` against counts worked out by hand (the 7-, 19- and 27-voxel
  neighbourhoods of radius 1, sqrt 2 and sqrt 3 on a unit grid);
* ``connected_to`` against ``scipy.ndimage.label`` with the matching structure, keeping the
  components that hold a seed voxel;
* ``bbox`` against ``numpy.nonzero``; ``fill_holes`` against
  ``scipy.ndimage.binary_fill_holes``;
* ``erode_neighbours`` against ``scipy.ndimage.binary_erosion`` (6- and 26-neighbourhood,
  either border value), ``count_neighbours`` against 27 x ``uniform_filter``.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import ndimage

from netvolume import kernels
from netvolume.errors import KernelInputError

SPACINGS = [(1.0, 1.0, 1.0), (1.25, 0.78, 0.78), (3.75, 3.125, 3.125), (2.5, 0.5, 1.0)]
RADII = [0.5, 0.78, 1.0, 1.25, 2.0, 3.0, 3.125, 4.0, 7.5]


def _blob(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    return ndimage.gaussian_filter(rng.random(shape), rng.uniform(0.5, 2.0)) > rng.uniform(
        0.45, 0.55
    )


def _edt_dilate(m: np.ndarray, r: float, sp: tuple[float, ...]) -> np.ndarray:
    return ndimage.distance_transform_edt(~m, sampling=sp) <= r + 1e-9


def _edt_erode(m: np.ndarray, r: float, sp: tuple[float, ...]) -> np.ndarray:
    d = ndimage.distance_transform_edt(np.pad(m, 1), sampling=sp)
    return d[1:-1, 1:-1, 1:-1] > r + 1e-9


@pytest.mark.parametrize("spacing", SPACINGS)
@pytest.mark.parametrize("radius", RADII)
def test_ball_morphology_equals_distance_transform(
    spacing: tuple[float, float, float], radius: float
) -> None:
    rng = np.random.default_rng(int(1000 * radius) + int(100 * sum(spacing)))
    for _ in range(6):
        shape = tuple(int(v) for v in rng.integers(2, 18, 3))
        m = _blob(rng, shape)
        if not m.any():
            continue
        assert np.array_equal(
            kernels.dilate_ball(m, radius, spacing), _edt_dilate(m, radius, spacing)
        )
        assert np.array_equal(
            kernels.erode_ball(m, radius, spacing), _edt_erode(m, radius, spacing)
        )


def test_ball_morphology_small_mask_in_large_array() -> None:
    """Only the box around the mask is worked on; the result must not depend on it."""
    rng = np.random.default_rng(3)
    m = np.zeros((60, 70, 80), bool)
    m[20:32, 5:25, 50:78] = _blob(rng, (12, 20, 28))
    m[0, 0, 0] = True  # a lone voxel in the corner widens the box to the whole array
    sp = (1.25, 0.78, 0.78)
    for r in (1.0, 3.0, 6.0):
        assert np.array_equal(kernels.dilate_ball(m, r, sp), _edt_dilate(m, r, sp))
        assert np.array_equal(kernels.erode_ball(m, r, sp), _edt_erode(m, r, sp))
        m2 = m.copy()
        m2[0, 0, 0] = False
        assert np.array_equal(kernels.dilate_ball(m2, r, sp), _edt_dilate(m2, r, sp))
        assert np.array_equal(kernels.erode_ball(m2, r, sp), _edt_erode(m2, r, sp))


def test_ball_morphology_edge_cases() -> None:
    sp = (1.0, 1.0, 1.0)
    empty = np.zeros((4, 5, 6), bool)
    full = np.ones((4, 5, 6), bool)
    assert not kernels.dilate_ball(empty, 2.0, sp).any()
    assert not kernels.erode_ball(empty, 2.0, sp).any()
    assert kernels.dilate_ball(full, 2.0, sp).all()
    # the image outside counts as background: a full image erodes from its faces
    assert np.array_equal(kernels.erode_ball(full, 1.0, sp), _edt_erode(full, 1.0, sp))
    assert kernels.erode_ball(full, 1.0, sp).sum() == 2 * 3 * 4
    m = np.zeros((5, 5, 5), bool)
    m[2, 2, 2] = True
    for r in (0.0, -1.0):
        assert np.array_equal(kernels.dilate_ball(m, r, sp), m)
        assert np.array_equal(kernels.erode_ball(m, r, sp), m)
    with pytest.raises(KernelInputError, match="3-D bool"):
        kernels.dilate_ball(m.astype(np.uint8), 1.0, sp)
    with pytest.raises(KernelInputError, match="spacing"):
        kernels.erode_ball(m, 1.0, (1.0, 0.0, 1.0))


@pytest.mark.parametrize(
    ("radius", "count"), [(0.5, 1), (1.0, 7), (math.sqrt(2), 19), (math.sqrt(3), 27), (2.0, 33)]
)
def test_ball_offsets_counts(radius: float, count: int) -> None:
    offs = kernels.ball_offsets(radius, (1.0, 1.0, 1.0))
    assert offs.shape == (count, 3)
    assert np.all(np.sqrt((offs.astype(float) ** 2).sum(axis=1)) <= radius + 1e-9)


def test_ball_offsets_anisotropic() -> None:
    # 1.25 mm slices, 0.78 mm pixels, radius 0.78: the four in-plane neighbours and the centre
    offs = kernels.ball_offsets(0.78, (1.25, 0.78, 0.78))
    assert sorted(map(tuple, offs.tolist())) == [
        (0, -1, 0),
        (0, 0, -1),
        (0, 0, 0),
        (0, 0, 1),
        (0, 1, 0),
    ]


@pytest.mark.parametrize("connectivity", [6, 18, 26])
def test_connected_to_equals_scipy_components(connectivity: int) -> None:
    rng = np.random.default_rng(connectivity)
    rank = {6: 1, 18: 2, 26: 3}[connectivity]
    for _ in range(20):
        shape = tuple(int(v) for v in rng.integers(1, 20, 3))
        m = rng.random(shape) < rng.uniform(0.2, 0.6)
        seed = rng.random(shape) < 0.02
        lab, _n = ndimage.label(m, structure=ndimage.generate_binary_structure(3, rank))
        hit = np.unique(lab[seed & m])
        expected = np.isin(lab, hit[hit > 0])
        assert np.array_equal(kernels.connected_to(m, seed, connectivity=connectivity), expected)


def test_connected_to_large_component_and_errors() -> None:
    # one component of 64 000 voxels: the fill's stack must grow past its first 4096
    m = np.ones((40, 40, 40), bool)
    seed = np.zeros_like(m)
    seed[20, 20, 20] = True
    assert kernels.connected_to(m, seed).all()
    assert not kernels.connected_to(m, np.zeros_like(m)).any()
    with pytest.raises(KernelInputError, match="same shape"):
        kernels.connected_to(m, seed[:-1])
    with pytest.raises(KernelInputError, match="connectivity"):
        kernels.connected_to(m, seed, connectivity=8)


@pytest.mark.parametrize("width", [7, 8, 16, 24, 64])
def test_bbox_sparse_rows_equal_nonzero(width: int) -> None:
    """Rows a whole number of 8-byte words long are scanned a word at a time: single
    voxels at every position of a word, at the row's ends, and empty arrays."""
    rng = np.random.default_rng(width)
    for density in (0.0, 0.001, 0.01, 0.2):
        for _ in range(20):
            shape = (int(rng.integers(1, 7)), int(rng.integers(1, 7)), width)
            a = rng.random(shape) < density
            nz = np.nonzero(a)
            expected = tuple(slice(int(v.min()), int(v.max()) + 1) for v in nz) if a.any() else None
            assert kernels.bbox(a) == expected
    a = np.zeros((3, 4, width), bool)
    for i in range(width):
        a[:] = False
        a[1, 2, i] = True
        assert kernels.bbox(a) == (slice(1, 2), slice(2, 3), slice(i, i + 1))


def test_bbox_equals_nonzero() -> None:
    rng = np.random.default_rng(5)
    for dtype in (bool, np.uint8, np.uint16, np.int32):
        a = np.zeros((9, 10, 11), dtype)
        assert kernels.bbox(a) is None
        idx = tuple(rng.integers(0, n, 4) for n in a.shape)
        a[idx] = 1
        nz = np.nonzero(a)
        expected = tuple(slice(int(v.min()), int(v.max()) + 1) for v in nz)
        assert kernels.bbox(a) == expected
        grown = kernels.bbox(a, margin=2)
        assert grown == tuple(
            slice(max(0, s.start - 2), min(n, s.stop + 2))
            for s, n in zip(expected, a.shape, strict=True)
        )


def test_fill_holes_in_box_equals_scipy() -> None:
    """fill_holes works on the mask's box grown by one voxel; holes, cavities open to the
    array border and masks touching the border must come out as scipy's."""
    rng = np.random.default_rng(11)
    for _ in range(30):
        big = np.zeros((30, 32, 34), bool)
        shape = tuple(int(v) for v in rng.integers(4, 16, 3))
        at = tuple(int(rng.integers(0, n - s + 1)) for n, s in zip(big.shape, shape, strict=True))
        sl = tuple(slice(a, a + s) for a, s in zip(at, shape, strict=True))
        shell = np.ones(shape, bool)
        shell[tuple(slice(1, -1) for _ in shape)] = rng.random(tuple(s - 2 for s in shape)) < 0.4
        big[sl] = shell
        assert np.array_equal(kernels.fill_holes(big), ndimage.binary_fill_holes(big))


@pytest.mark.parametrize(
    ("shift_max", "factor"), [(0, 0), (0, 10**9), (10**9, 0)], ids=["edt", "paint", "shift"]
)
def test_all_strategies_equal_distance_transform(
    monkeypatch: pytest.MonkeyPatch, shift_max: int, factor: int
) -> None:
    """Shifted copies of the box (shift_max 10**9: always), painting (factor 10**9: always
    cheaper) and the box's distance transform (factor 0) must give the same answer; the
    automatic choice between them is only about speed."""
    from netvolume.kernels import _morph

    monkeypatch.setattr(_morph, "_SHIFT_MAX_OFFSETS", shift_max)
    monkeypatch.setattr(_morph, "_PAINT_PER_EDT_VOXEL", factor)
    rng = np.random.default_rng(factor % 97 + shift_max % 89)
    for sp in SPACINGS:
        for r in (0.78, 2.0, 5.0, 7.5):
            m = np.zeros((20, 24, 26), bool)
            m[3:17, 4:20, 2:24] = _blob(rng, (14, 16, 22))
            if not m.any():
                continue
            assert np.array_equal(kernels.dilate_ball(m, r, sp), _edt_dilate(m, r, sp))
            assert np.array_equal(kernels.erode_ball(m, r, sp), _edt_erode(m, r, sp))


@pytest.mark.parametrize("connectivity", [6, 26])
@pytest.mark.parametrize("border_value", [False, True])
def test_erode_neighbours_equals_scipy(connectivity: int, border_value: bool) -> None:
    """Shifted ANDs (the cube as three separable lines) must equal scipy's erosion by the
    6- or 26-neighbourhood, with either value beyond the array's edge."""
    structure = ndimage.generate_binary_structure(3, 1 if connectivity == 6 else 3)
    rng = np.random.default_rng(connectivity + 2 * border_value)
    for _ in range(25):
        shape = tuple(int(v) for v in rng.integers(1, 14, 3))
        m = ndimage.gaussian_filter(rng.random(shape), 1.0) > rng.uniform(0.3, 0.6)
        expected = ndimage.binary_erosion(m, structure, border_value=int(border_value))
        got = kernels.erode_neighbours(m, connectivity, border_value=border_value)
        assert np.array_equal(got, expected)
    # twice = scipy's iterations=2
    m = np.zeros((9, 10, 11), bool)
    m[1:8, 1:9, 2:10] = True
    twice = kernels.erode_neighbours(kernels.erode_neighbours(m))
    assert np.array_equal(twice, ndimage.binary_erosion(m, iterations=2))


def test_count_neighbours_equals_uniform_filter() -> None:
    """The 3 x 3 x 3 count (zero beyond the edge) must equal 27 x scipy's uniform filter."""
    rng = np.random.default_rng(5)
    for _ in range(25):
        shape = tuple(int(v) for v in rng.integers(1, 14, 3))
        m = rng.random(shape) < rng.uniform(0.1, 0.9)
        expected = ndimage.uniform_filter(m.astype(np.float64), 3, mode="constant") * 27.0
        got = kernels.count_neighbours(m)
        assert got.dtype == np.uint8
        assert np.array_equal(got, np.rint(expected).astype(np.uint8))
    assert kernels.count_neighbours(np.ones((3, 3, 3), bool))[1, 1, 1] == 27


def test_neighbour_kernels_reject_bad_input() -> None:
    with pytest.raises(KernelInputError, match="3-D bool"):
        kernels.erode_neighbours(np.zeros((3, 3), bool))
    with pytest.raises(KernelInputError, match="connectivity"):
        kernels.erode_neighbours(np.zeros((3, 3, 3), bool), 18)
    with pytest.raises(KernelInputError, match="3-D bool"):
        kernels.count_neighbours(np.zeros((3, 3, 3), np.uint8))


def test_ball_lines_cover_the_ball_once() -> None:
    """The ball as lines along the last axis: every offset in exactly one line, each line
    symmetric and contiguous."""
    from netvolume.kernels._morph import _line_runs

    for sp in SPACINGS:
        for r in (0.5, 1.5, 3.0, 7.5):
            offs = kernels.ball_offsets(r, sp)
            lines = _line_runs(offs)
            covered = {(dk, dj, di) for dk, dj, w in lines for di in range(-w, w + 1)}
            assert covered == {tuple(o) for o in offs.tolist()}
            assert len(covered) == sum(2 * w + 1 for _, _, w in lines)

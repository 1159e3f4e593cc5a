"""Tests of the measurement kernels of :mod:`netvolume.kernels`: ``region_stats``,
``suv_peak`` and ``sphere_mean``.

Oracles, never the code's own output:

* ``region_stats`` against ``scipy.ndimage`` (``sum_labels`` / label counts, ``minimum``,
  ``maximum``, ``mean``, ``standard_deviation``, ``maximum_position``, ``find_objects``,
  ``center_of_mass``), ``skimage.measure.regionprops`` (bbox, centroid, area) and plain
  numpy per label (``np.std`` with ddof=0; the first raster index of the maximum, since
  scipy's ``maximum_position`` does *not* return the first one on ties);
* ``suv_peak`` against a numpy brute force written from the PERCIST definition (mean over
  the in-image voxels whose centre is within r of a label voxel's centre, r from the sphere
  volume) and against ``scipy.ndimage.correlate`` of the values and of ones with the sphere
  footprint (``mode='constant', cval=0``);
* ``sphere_mean`` against a numpy brute force (voxel centres within the radius, minus the
  excluded ones).
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
from scipy import ndimage
from skimage.measure import regionprops

from netvolume import kernels
from netvolume.errors import EmptyRegionError, KernelInputError

SPACING = (2.5, 0.7, 0.9)


# --------------------------------------------------------------------------- helpers
def _random_labels(shape: tuple[int, int, int], n: int, seed: int, dtype: type) -> np.ndarray:
    """Blobby seeded label map with labels 0..n (smoothed noise, arg-max over n channels)."""
    rng = np.random.default_rng(seed)
    noise = ndimage.gaussian_filter(rng.random((n + 1, *shape)), sigma=(0, 1.2, 1.2, 1.2))
    labels = np.argmax(noise, axis=0)
    return labels.astype(dtype)


def _ref_first_argmax(values: np.ndarray, sel: np.ndarray) -> tuple[int, int, int]:
    """Index of the maximum of values[sel], the first in raster (C) order on ties."""
    flat = np.flatnonzero(sel.ravel())
    v = values.ravel()[flat]
    return tuple(int(i) for i in np.unravel_index(flat[np.argmax(v)], values.shape))


def _check_geometry(rs: object, labels: np.ndarray, n: int, spacing: tuple) -> None:
    """voxels, volume_ml, bbox, centroid_index, centroid_mm against scipy / skimage / numpy."""
    lab = labels.astype(np.int64)
    counts = np.bincount(lab.ravel(), minlength=n + 1)[1:]
    present = np.flatnonzero(counts) + 1
    assert rs.n == n and type(rs.n) is int
    assert isinstance(rs.spacing, tuple)
    assert rs.spacing == tuple(float(s) for s in spacing)
    assert rs.voxels.shape == (n,) and rs.voxels.dtype == np.int64
    np.testing.assert_array_equal(rs.voxels, counts)
    sums = ndimage.sum_labels(np.ones(labels.shape), lab, index=np.arange(1, n + 1))
    np.testing.assert_array_equal(rs.voxels, sums.astype(np.int64))
    assert rs.volume_ml.dtype == np.float64
    np.testing.assert_allclose(rs.volume_ml, counts * math.prod(spacing) / 1000, rtol=1e-12)
    assert rs.bbox.shape == (n, 6) and rs.bbox.dtype == np.int64
    assert rs.centroid_index.shape == (n, 3) and rs.centroid_index.dtype == np.float64
    assert rs.centroid_mm.shape == (n, 3) and rs.centroid_mm.dtype == np.float64
    objects = ndimage.find_objects(lab, max_label=n)
    com = ndimage.center_of_mass(np.ones(labels.shape), lab, index=list(present))
    props = {p.label: p for p in regionprops(lab)}
    for k, lbl in enumerate(present):
        i = lbl - 1
        sl = objects[i]
        bbox_sp = tuple(s.start for s in sl) + tuple(s.stop for s in sl)
        assert tuple(rs.bbox[i]) == bbox_sp, (lbl, rs.bbox[i], bbox_sp)
        assert tuple(rs.bbox[i]) == tuple(props[lbl].bbox)
        assert props[lbl].area == rs.voxels[i]
        np.testing.assert_allclose(rs.centroid_index[i], com[k], rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(rs.centroid_index[i], props[lbl].centroid, rtol=1e-12)
        np.testing.assert_allclose(
            rs.centroid_mm[i], np.asarray(com[k]) * np.asarray(spacing), rtol=1e-12, atol=1e-12
        )
    for lbl in sorted(set(range(1, n + 1)) - set(present.tolist())):
        i = lbl - 1
        assert rs.voxels[i] == 0 and rs.volume_ml[i] == 0
        np.testing.assert_array_equal(rs.bbox[i], 0)
        assert np.isnan(rs.centroid_index[i]).all() and np.isnan(rs.centroid_mm[i]).all()


def _check_values(rs: object, labels: np.ndarray, n: int, values: np.ndarray) -> None:
    """min, max, mean, std, argmax against scipy.ndimage and numpy per label."""
    lab = labels.astype(np.int64)
    v64 = values.astype(np.float64)
    present = np.flatnonzero(np.bincount(lab.ravel(), minlength=n + 1)[1:]) + 1
    for name in ("min", "max", "mean", "std"):
        arr = getattr(rs, name)
        assert arr.shape == (n,) and arr.dtype == np.float64, name
    assert rs.argmax.shape == (n, 3) and rs.argmax.dtype == np.int64
    idx = list(present)
    with np.errstate(invalid="ignore", divide="ignore"):  # scipy divides for absent labels
        ref_std = ndimage.standard_deviation(v64, lab, idx)
        ref_mean = ndimage.mean(v64, lab, idx)
    np.testing.assert_array_equal(rs.min[present - 1], ndimage.minimum(v64, lab, idx))
    np.testing.assert_array_equal(rs.max[present - 1], ndimage.maximum(v64, lab, idx))
    np.testing.assert_allclose(rs.mean[present - 1], ref_mean, rtol=1e-12)
    np.testing.assert_allclose(rs.std[present - 1], ref_std, rtol=1e-9, atol=1e-12)
    for lbl in present:
        sel = lab == lbl
        np.testing.assert_allclose(rs.std[lbl - 1], np.std(v64[sel]), rtol=1e-9, atol=1e-12)
        assert tuple(rs.argmax[lbl - 1]) == _ref_first_argmax(v64, sel), lbl
    for lbl in sorted(set(range(1, n + 1)) - set(present.tolist())):
        i = lbl - 1
        for name in ("min", "max", "mean", "std"):
            assert np.isnan(getattr(rs, name)[i]), (name, lbl)
        np.testing.assert_array_equal(rs.argmax[i], -1)


# --------------------------------------------------------------------------- region_stats
@pytest.mark.parametrize("label_dtype", [np.uint8, np.uint16, np.int32, np.int64])
def test_region_stats_float32_values(label_dtype: type) -> None:
    """Seeded random label map (labels 1..9, 4 and 9 absent, n = 10 so 10 is absent too),
    float32 values (no ties), anisotropic spacing. Oracles: scipy.ndimage, skimage
    regionprops, numpy; maximum_position must agree as there are no ties."""
    labels = _random_labels((11, 14, 16), 9, seed=5, dtype=label_dtype)
    labels[labels == 4] = 0
    labels[labels == 9] = 0
    n = 10
    rng = np.random.default_rng(6)
    values = (rng.normal(50.0, 20.0, labels.shape)).astype(np.float32)
    rs = kernels.region_stats(labels, n, spacing=SPACING, values=values)
    _check_geometry(rs, labels, n, SPACING)
    _check_values(rs, labels, n, values)
    lab = labels.astype(np.int64)
    present = [k for k in range(1, n + 1) if (lab == k).any()]
    pos = ndimage.maximum_position(values.astype(np.float64), lab, present)
    for k, p in zip(present, pos, strict=True):
        assert tuple(rs.argmax[k - 1]) == tuple(int(x) for x in p)


def test_region_stats_int16_values_with_ties() -> None:
    """int16 values (many ties): min/max/mean/std against scipy and numpy, argmax the
    first maximum in raster order (numpy oracle)."""
    labels = _random_labels((9, 13, 15), 6, seed=8, dtype=np.uint16)
    rng = np.random.default_rng(9)
    values = rng.integers(-1000, 30, labels.shape).astype(np.int16)
    values[rng.random(labels.shape) < 0.2] = 29  # many voxels share the maximum
    rs = kernels.region_stats(labels, 6, spacing=(1.0, 1.0, 1.0), values=values)
    _check_geometry(rs, labels, 6, (1.0, 1.0, 1.0))
    _check_values(rs, labels, 6, values)


def test_region_stats_spacing_and_no_values() -> None:
    """values=None: min/max/mean/std/argmax are None; geometry as with values. Spacing given
    as a list comes back as a tuple; volume_ml = voxels * prod(spacing) / 1000;
    centroid_mm = centroid_index * spacing."""
    labels = _random_labels((8, 12, 10), 4, seed=10, dtype=np.uint8)
    spacing = [2.5, 0.7, 0.9]
    rs = kernels.region_stats(labels, 4, spacing=spacing)
    for name in ("min", "max", "mean", "std", "argmax"):
        assert getattr(rs, name) is None, name
    _check_geometry(rs, labels, 4, tuple(spacing))
    assert dataclasses.is_dataclass(rs)
    with pytest.raises(dataclasses.FrozenInstanceError):
        rs.n = 5  # type: ignore[misc]


def test_region_stats_absent_labels() -> None:
    """Labels in 1..n with no voxel: voxels 0, volume 0, bbox 0, centroid NaN,
    min/max/mean/std NaN, argmax -1 (hand-made map: only labels 2 and 5 of n = 6)."""
    labels = np.zeros((4, 5, 6), np.uint8)
    labels[1, 2, 3] = 2
    labels[2:4, 0:2, 4:6] = 5
    values = np.arange(labels.size, dtype=np.float64).reshape(labels.shape)
    rs = kernels.region_stats(labels, 6, spacing=(2.0, 1.0, 0.5), values=values)
    np.testing.assert_array_equal(rs.voxels, [0, 1, 0, 0, 8, 0])
    np.testing.assert_allclose(rs.volume_ml, [0, 1e-3, 0, 0, 8e-3, 0], rtol=1e-12)
    np.testing.assert_array_equal(rs.bbox[1], [1, 2, 3, 2, 3, 4])
    np.testing.assert_array_equal(rs.bbox[4], [2, 0, 4, 4, 2, 6])
    np.testing.assert_allclose(rs.centroid_index[4], [2.5, 0.5, 4.5])
    np.testing.assert_allclose(rs.centroid_mm[4], [5.0, 0.5, 2.25])
    np.testing.assert_array_equal(rs.argmax[4], [3, 1, 5])
    for i in (0, 2, 3, 5):
        np.testing.assert_array_equal(rs.bbox[i], 0)
        np.testing.assert_array_equal(rs.argmax[i], -1)
        assert np.isnan(rs.centroid_index[i]).all()
        assert np.isnan([rs.min[i], rs.max[i], rs.mean[i], rs.std[i]]).all()
    _check_geometry(rs, labels, 6, (2.0, 1.0, 0.5))
    _check_values(rs, labels, 6, values)


def test_region_stats_n_zero() -> None:
    """An all-background map with n = 0 gives length-0 arrays."""
    rs = kernels.region_stats(
        np.zeros((3, 4, 5), np.uint8), 0, spacing=(1, 1, 1), values=np.ones((3, 4, 5))
    )
    assert rs.n == 0
    assert rs.voxels.shape == (0,) and rs.bbox.shape == (0, 6)
    assert rs.centroid_index.shape == (0, 3) and rs.mean.shape == (0,)
    assert rs.argmax.shape == (0, 3)


def test_region_stats_std_large_offset() -> None:
    """Values 1e6 + noise of std 0.01 (float64): std equals numpy's two-pass np.std(ddof=0)
    to rel 1e-9 (a one-pass sum-of-squares formula fails this by orders of magnitude);
    mean to rel 1e-14."""
    labels = _random_labels((10, 12, 14), 3, seed=12, dtype=np.uint8)
    rng = np.random.default_rng(13)
    values = 1e6 + rng.normal(0.0, 0.01, labels.shape)
    rs = kernels.region_stats(labels, 3, spacing=(1.0, 1.0, 1.0), values=values)
    for k in range(1, 4):
        sel = labels == k
        np.testing.assert_allclose(rs.std[k - 1], np.std(values[sel]), rtol=1e-9)
        np.testing.assert_allclose(rs.mean[k - 1], np.mean(values[sel]), rtol=1e-14)
    # a constant region: std exactly 0 (no negative variance, no NaN)
    const = np.full(labels.shape, 1e6 + 0.1)
    rs = kernels.region_stats(labels, 3, spacing=(1.0, 1.0, 1.0), values=const)
    assert (rs.std >= 0).all()
    np.testing.assert_allclose(rs.std, 0.0, atol=1e-9)


def test_region_stats_argmax_ties_first_in_raster_order() -> None:
    """All maxima equal: argmax is the label's first voxel in raster order (scipy's
    maximum_position returns another one here, so the oracle is the definition)."""
    labels = np.zeros((5, 6, 7), np.uint8)
    labels[1:4, 2:5, 1:6] = 1
    labels[4, 5, :] = 2
    values = np.zeros(labels.shape, np.float32)
    values[labels == 1] = 3.0
    values[3, 4, 5] = values[2, 2, 1] = values[1, 3, 2] = 7.5  # three tied maxima
    values[4, 5, 2] = values[4, 5, 6] = -1.0  # label 2: maximum 0.0 at (4, 5, 0) first
    rs = kernels.region_stats(labels, 2, spacing=(1.0, 1.0, 1.0), values=values)
    np.testing.assert_array_equal(rs.argmax[0], [1, 3, 2])
    np.testing.assert_array_equal(rs.argmax[1], [4, 5, 0])
    assert rs.max[0] == 7.5 and rs.min[1] == -1.0


@pytest.mark.parametrize(
    "case",
    [
        "2d",
        "4d",
        "shape_mismatch",
        "label_above_n",
        "negative_label",
        "spacing_zero",
        "spacing_negative",
        "spacing_len2",
    ],
)
def test_region_stats_rejects_bad_input(case: str) -> None:
    """Wrong ndim, values of another shape, labels above n, negative labels, non-positive
    or wrong-length spacing -> KernelInputError."""
    labels = np.zeros((3, 4, 5), np.int16)
    labels[1, 1, 1] = 2
    n, spacing, values = 2, (1.0, 1.0, 1.0), None
    if case == "2d":
        labels = labels[1]
    elif case == "4d":
        labels = labels[None]
    elif case == "shape_mismatch":
        values = np.zeros((3, 4, 6))
    elif case == "label_above_n":
        n = 1
    elif case == "negative_label":
        labels[0, 0, 0] = -1
    elif case == "spacing_zero":
        spacing = (1.0, 0.0, 1.0)
    elif case == "spacing_negative":
        spacing = (1.0, 1.0, -0.5)
    else:
        spacing = (1.0, 1.0)
    with pytest.raises(KernelInputError):
        kernels.region_stats(labels, n, spacing=spacing, values=values)


# --------------------------------------------------------------------------- suv_peak
def _radius(sphere_ml: float) -> float:
    return (3 * 1000 * sphere_ml / (4 * math.pi)) ** (1 / 3)


def _offsets(spacing: tuple, radius: float) -> np.ndarray:
    k = [math.floor(radius / s) + 1 for s in spacing]
    grid = np.stack(
        np.meshgrid(*[np.arange(-kk, kk + 1) for kk in k], indexing="ij"), axis=-1
    ).reshape(-1, 3)
    d2 = ((grid * np.asarray(spacing)) ** 2).sum(axis=1)
    return grid[d2 <= radius**2 + 1e-9]


def _ref_sphere_means(values: np.ndarray, centres: np.ndarray, spacing: tuple, sphere_ml: float):
    """Brute force: for each centre, mean and count of the in-image sphere voxels."""
    offs = _offsets(spacing, _radius(sphere_ml))
    shape = np.asarray(values.shape)
    means, counts = [], []
    for c in centres:
        p = c + offs
        ok = ((p >= 0) & (p < shape)).all(axis=1)
        p = p[ok]
        means.append(values[p[:, 0], p[:, 1], p[:, 2]].astype(np.float64).mean())
        counts.append(len(p))
    return np.array(means), np.array(counts)


def _ref_suv_peak(values, labels, n, spacing, sphere_ml):
    peak = np.full(n, np.nan)
    centre = np.full((n, 3), -1, np.int64)
    voxels = np.zeros(n, np.int64)
    means_by_label = {}
    for k in range(1, n + 1):
        cs = np.argwhere(labels == k)  # raster order
        if len(cs) == 0:
            continue
        means, counts = _ref_sphere_means(values, cs, spacing, sphere_ml)
        j = int(np.argmax(means))  # first maximum
        peak[k - 1], centre[k - 1], voxels[k - 1] = means[j], cs[j], counts[j]
        means_by_label[k] = (means, cs)
    return peak, centre, voxels, means_by_label


def _suv_volume(seed: int, shape=(12, 15, 17)):
    """Seeded PET-like values with hot spots; labels 1 (inside), 2 (touching three borders),
    3 (a single voxel in a corner), 4 absent, 5 (sparse voxels)."""
    rng = np.random.default_rng(seed)
    values = rng.gamma(2.0, 1.5, shape)
    values = ndimage.gaussian_filter(values, 1.0)
    values[5, 7, 8] += 25.0
    values[0, 0, 14] += 30.0
    labels = np.zeros(shape, np.uint8)
    labels[4:8, 5:10, 6:11] = 1
    labels[0:3, 0:4, 12:17] = 2
    labels[-1, -1, -1] = 3
    labels[(rng.random(shape) < 0.02) & (labels == 0)] = 5
    return values, labels, 5


@pytest.mark.parametrize(
    ("spacing", "sphere_ml"),
    [
        ((2.0, 1.5, 1.0), 1.0),
        ((2.0, 1.5, 1.0), 0.5),
        ((4.0, 4.0, 4.0), 1.0),
        ((3.27, 0.98, 0.98), 1.0),
        ((1.0, 1.0, 1.0), 0.5),
    ],
)
def test_suv_peak_against_brute_force(spacing: tuple, sphere_ml: float) -> None:
    """peak, centre_index and voxels against the numpy brute force (rel 1e-9), including
    lesions at the image border (the mean is over in-image voxels only) and an absent label
    (NaN / -1 / 0)."""
    values, labels, n = _suv_volume(seed=int(sphere_ml * 10 + spacing[0] * 7))
    got = kernels.suv_peak(values, labels, n, spacing=spacing, sphere_ml=sphere_ml)
    peak, centre, voxels, means_by_label = _ref_suv_peak(values, labels, n, spacing, sphere_ml)
    assert got.peak.shape == (n,) and got.peak.dtype == np.float64
    assert got.centre_index.shape == (n, 3) and got.centre_index.dtype == np.int64
    assert got.voxels.shape == (n,) and got.voxels.dtype == np.int64
    np.testing.assert_allclose(got.peak, peak, rtol=1e-9)  # NaN == NaN for label 4
    for k, (means, _) in means_by_label.items():
        top2 = np.sort(means)[-2:] if len(means) > 1 else np.array([-np.inf, means[0]])
        if top2[1] - top2[0] > 1e-9 * abs(top2[1]):  # a unique winner: its centre exactly
            np.testing.assert_array_equal(got.centre_index[k - 1], centre[k - 1])
        np.testing.assert_array_equal(got.voxels[k - 1], voxels[k - 1])
    np.testing.assert_array_equal(got.centre_index[3], -1)
    assert np.isnan(got.peak[3]) and got.voxels[3] == 0
    # a corner voxel sees fewer sphere voxels than the full sphere
    assert got.voxels[2] < len(_offsets(spacing, _radius(sphere_ml)))


@pytest.mark.parametrize(("spacing", "sphere_ml"), [((2.0, 1.5, 1.0), 1.0), ((4, 4, 4), 0.5)])
def test_suv_peak_against_correlate(spacing: tuple, sphere_ml: float) -> None:
    """Second oracle: correlate(values, sphere) / correlate(ones, sphere), both with
    mode='constant', cval=0; the peak is the max of the ratio over the label's voxels."""
    values, labels, n = _suv_volume(seed=31)
    offs = _offsets(spacing, _radius(sphere_ml))
    k = np.abs(offs).max(axis=0)
    fp = np.zeros(tuple(2 * k + 1))
    fp[tuple((offs + k).T)] = 1.0
    num = ndimage.correlate(values, fp, mode="constant", cval=0.0)
    den = ndimage.correlate(np.ones_like(values), fp, mode="constant", cval=0.0)
    ratio = num / den
    got = kernels.suv_peak(values, labels, n, spacing=spacing, sphere_ml=sphere_ml)
    for lbl in range(1, n + 1):
        sel = labels == lbl
        if not sel.any():
            assert np.isnan(got.peak[lbl - 1])
            continue
        np.testing.assert_allclose(got.peak[lbl - 1], ratio[sel].max(), rtol=1e-9)
        c = tuple(got.centre_index[lbl - 1])
        assert labels[c] == lbl
        np.testing.assert_allclose(ratio[c], got.peak[lbl - 1], rtol=1e-9)
        assert got.voxels[lbl - 1] == round(den[c])


def test_suv_peak_ties_first_in_raster_order() -> None:
    """Exact ties (integer values, so every sphere sum is exact): the centre is the first
    tied candidate in raster order. Two identical hot spots far apart, candidate centres
    whose full in-image spheres each hold one of them (mean 8/N for all four): the winner
    is (5, 6, 17), first in raster order although it is near the second hot spot.
    Constant values 2.0: every mean is 2.0, so the centre is the label's first voxel even
    where border spheres have fewer voxels."""
    values = np.zeros((14, 14, 24))
    values[6, 6, 5] = values[6, 6, 17] = 8.0
    labels = np.zeros(values.shape, np.uint8)
    for c in [(6, 6, 5), (6, 6, 8), (6, 6, 17), (5, 6, 17), (10, 10, 10)]:
        labels[c] = 1
    got = kernels.suv_peak(values, labels, 1, spacing=(1.0, 1.0, 1.0), sphere_ml=0.5)
    peak, centre, _, _ = _ref_suv_peak(values, labels, 1, (1.0, 1.0, 1.0), 0.5)
    np.testing.assert_array_equal(centre[0], [5, 6, 17])  # the oracle itself
    np.testing.assert_array_equal(got.centre_index[0], [5, 6, 17])
    np.testing.assert_allclose(got.peak[0], peak[0], rtol=1e-12)
    assert got.peak[0] == 8.0 / len(_offsets((1.0, 1.0, 1.0), _radius(0.5)))
    const = np.full((6, 7, 8), 2.0)
    lab2 = np.zeros(const.shape, np.uint8)
    lab2[0:3, 3:7, 2:8] = 1
    got = kernels.suv_peak(const, lab2, 1, spacing=(2.0, 1.5, 1.0), sphere_ml=1.0)
    assert got.peak[0] == 2.0
    np.testing.assert_array_equal(got.centre_index[0], [0, 3, 2])


def test_suv_peak_rejects_bad_input() -> None:
    """values and labels of different shapes, 2-D input, labels above n, bad spacing ->
    KernelInputError."""
    values = np.ones((4, 5, 6))
    labels = np.zeros((4, 5, 6), np.uint8)
    labels[1, 1, 1] = 1
    with pytest.raises(KernelInputError):
        kernels.suv_peak(values[:, :, :5], labels, 1, spacing=(1, 1, 1))
    with pytest.raises(KernelInputError):
        kernels.suv_peak(values[0], labels[0], 1, spacing=(1, 1, 1))
    with pytest.raises(KernelInputError):
        kernels.suv_peak(values, labels * 2, 1, spacing=(1, 1, 1))
    with pytest.raises(KernelInputError):
        kernels.suv_peak(values, labels, 1, spacing=(1, 0, 1))


# --------------------------------------------------------------------------- sphere_mean
def _ref_sphere(values, centre_mm, radius, spacing, exclude=None):
    idx = np.indices(values.shape).reshape(3, -1).T
    d2 = (((idx * np.asarray(spacing)) - np.asarray(centre_mm)) ** 2).sum(axis=1)
    sel = (d2 <= radius**2 + 1e-9).reshape(values.shape)
    if exclude is not None:
        sel &= ~exclude
    v = values[sel].astype(np.float64)
    return v.mean(), v.std(), int(sel.sum())


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_sphere_mean_against_brute_force(seed: int) -> None:
    """Random centres (also off-grid and partly outside the image), radii and exclude masks:
    mean, std (ddof=0), voxels and volume_ml against numpy."""
    rng = np.random.default_rng(seed)
    spacing = (2.0, 0.8, 1.1) if seed % 2 else (3.0, 3.0, 3.0)
    shape = (10, 25, 22)
    values = rng.normal(100.0, 15.0, shape).astype(np.float32)
    ext = np.asarray(shape) * np.asarray(spacing)
    centre = rng.uniform(-0.1 * ext, 1.1 * ext)
    centre[0] = ext[0] / 2  # stay within reach of the image along the coarse axis
    radius = float(rng.uniform(4.0, 9.0))
    exclude = rng.random(shape) < 0.3 if seed < 2 else None
    mean, std, count = _ref_sphere(values, centre, radius, spacing, exclude)
    assert count > 0
    got = kernels.sphere_mean(values, tuple(centre), radius, spacing=spacing, exclude=exclude)
    np.testing.assert_allclose(got.mean, mean, rtol=1e-9)
    np.testing.assert_allclose(got.std, std, rtol=1e-9)
    assert isinstance(got.voxels, int | np.integer) and int(got.voxels) == count
    np.testing.assert_allclose(got.volume_ml, count * math.prod(spacing) / 1000, rtol=1e-12)


def test_sphere_mean_inclusion_boundary() -> None:
    """Voxel centres exactly at the radius are in (<= r^2 + 1e-9): centre on voxel
    (3, 3, 3) with unit spacing and radius 1 gives the 7-voxel cross; radius 0.1 gives the
    voxel itself; values 0..n so mean/std follow by hand."""
    values = np.arange(7 * 7 * 7, dtype=np.float64).reshape(7, 7, 7)
    got = kernels.sphere_mean(values, (3.0, 3.0, 3.0), 1.0, spacing=(1.0, 1.0, 1.0))
    cross = [
        values[3, 3, 3],
        values[2, 3, 3],
        values[4, 3, 3],
        values[3, 2, 3],
        values[3, 4, 3],
        values[3, 3, 2],
        values[3, 3, 4],
    ]
    assert int(got.voxels) == 7
    np.testing.assert_allclose(got.mean, np.mean(cross), rtol=1e-12)
    np.testing.assert_allclose(got.std, np.std(cross), rtol=1e-12)
    got = kernels.sphere_mean(values, (6.0, 4.5, 3.0), 1.5, spacing=(2.0, 1.5, 1.0))
    mean, _, count = _ref_sphere(values, (6.0, 4.5, 3.0), 1.5, (2.0, 1.5, 1.0))
    assert int(got.voxels) == count == 5  # (3,3,3), (3,2,3), (3,4,3), (3,3,2), (3,3,4)
    np.testing.assert_allclose(got.mean, mean, rtol=1e-12)
    got = kernels.sphere_mean(values, (3.0, 3.0, 3.0), 0.1, spacing=(1.0, 1.0, 1.0))
    assert int(got.voxels) == 1 and got.mean == values[3, 3, 3] and got.std == 0.0
    ex = np.zeros(values.shape, bool)
    ex[3, 3, 3] = True
    got = kernels.sphere_mean(values, (3.0, 3.0, 3.0), 1.0, spacing=(1.0, 1.0, 1.0), exclude=ex)
    assert int(got.voxels) == 6
    np.testing.assert_allclose(got.mean, np.mean(cross[1:]), rtol=1e-12)


def test_sphere_mean_empty_region() -> None:
    """EmptyRegionError (a KernelInputError) when every voxel is excluded, when the sphere
    misses the image, and when a small sphere falls between voxel centres; the message
    names the radius."""
    values = np.ones((5, 6, 7))
    with pytest.raises(EmptyRegionError) as info:
        kernels.sphere_mean(
            values,
            (4.0, 5.0, 6.0),
            2.5,
            spacing=(2.0, 2.0, 2.0),
            exclude=np.ones(values.shape, bool),
        )
    assert "2.5" in str(info.value)
    with pytest.raises(EmptyRegionError) as info:
        kernels.sphere_mean(values, (-100.0, 5.0, 6.0), 2.5, spacing=(2.0, 2.0, 2.0))
    assert "2.5" in str(info.value) and "100" in str(info.value)
    with pytest.raises(EmptyRegionError):
        kernels.sphere_mean(values, (1.0, 1.0, 1.0), 0.25, spacing=(2.0, 2.0, 2.0))
    assert issubclass(EmptyRegionError, KernelInputError)


def test_sphere_mean_rejects_bad_input() -> None:
    """exclude of another shape, 2-D values, non-positive spacing -> KernelInputError."""
    values = np.ones((5, 6, 7))
    with pytest.raises(KernelInputError):
        kernels.sphere_mean(
            values, (2, 2, 2), 3.0, spacing=(1, 1, 1), exclude=np.zeros((5, 6, 6), bool)
        )
    with pytest.raises(KernelInputError):
        kernels.sphere_mean(values[0], (2, 2, 2), 3.0, spacing=(1, 1, 1))
    with pytest.raises(KernelInputError):
        kernels.sphere_mean(values, (2, 2, 2), 3.0, spacing=(1, -1, 1))


# --------------------------------------------------------------------------- lesion_table
@pytest.mark.parametrize("connectivity", [6, 18, 26])
@pytest.mark.parametrize("density", [0.05, 0.3, 0.6])
def test_lesion_table_equals_the_three_separate_kernels(connectivity: int, density: float) -> None:
    """``lesion_table`` (measured from the labelling runs) equals ``label`` +
    ``region_stats`` + ``axial_diameters`` on the label map, and ``label`` equals scipy."""
    rng = np.random.default_rng(int(density * 100) + connectivity)
    mask = rng.random((17, 33, 29)) < density
    values = rng.normal(100.0, 20.0, mask.shape).astype(np.float32)
    table = kernels.lesion_table(
        mask, spacing=SPACING, values=values, connectivity=connectivity
    )
    ref, n_ref = ndimage.label(
        mask, ndimage.generate_binary_structure(3, {6: 1, 18: 2, 26: 3}[connectivity])
    )
    assert table.n == n_ref
    np.testing.assert_array_equal(table.labels, ref)
    stats = kernels.region_stats(table.labels, table.n, spacing=SPACING, values=values)
    axes = kernels.axial_diameters(table.labels, table.n, spacing=SPACING)
    for field in dataclasses.fields(stats):
        a = getattr(table.stats, field.name)
        b = getattr(stats, field.name)
        if field.name == "std":
            np.testing.assert_allclose(a, b, rtol=1e-12)
        else:
            np.testing.assert_array_equal(a, b)
    for field in dataclasses.fields(axes):
        np.testing.assert_array_equal(getattr(table.axes, field.name), getattr(axes, field.name))


def test_lesion_table_without_values_and_empty_mask() -> None:
    """No values: value fields None; an empty mask: n = 0 and empty arrays."""
    mask = np.zeros((4, 9, 11), bool)
    table = kernels.lesion_table(mask, spacing=SPACING)
    assert table.n == 0 and table.labels.dtype == np.uint8 and not table.labels.any()
    assert table.stats.voxels.shape == (0,) and table.axes.ld_mm.shape == (0,)
    assert table.stats.mean is None
    mask[1, 2:5, 3:9] = True
    table = kernels.lesion_table(mask, spacing=(1.0, 1.0, 1.0))
    assert table.n == 1 and table.stats.voxels[0] == 18
    assert table.axes.ld_mm[0] == pytest.approx(math.hypot(3, 6), abs=1e-12)


def test_lesion_table_rejects_2d_and_nan_values() -> None:
    """A 2-D mask and NaN values inside a lesion are KernelInputErrors naming the problem."""
    with pytest.raises(KernelInputError, match="expected 3"):
        kernels.lesion_table(np.ones((4, 4), bool), spacing=SPACING)
    mask = np.zeros((3, 5, 5), bool)
    mask[1, 1:3, 1:3] = True
    values = np.zeros(mask.shape)
    values[1, 2, 2] = np.nan
    with pytest.raises(KernelInputError, match="NaN at 1 voxel"):
        kernels.lesion_table(mask, spacing=SPACING, values=values)


def test_results_do_not_depend_on_the_thread_count() -> None:
    """Bit-identical statistics, axes and labels with 1 and with all numba threads (the
    row chunks, and so the order in which float sums are merged, are fixed)."""
    import numba

    rng = np.random.default_rng(11)
    mask = rng.random((23, 40, 37)) < 0.2
    values = rng.normal(1e4, 50.0, mask.shape).astype(np.float32)
    threads = numba.get_num_threads()
    try:
        numba.set_num_threads(1)
        one = kernels.lesion_table(mask, spacing=SPACING, values=values)
    finally:
        numba.set_num_threads(threads)
    every = kernels.lesion_table(mask, spacing=SPACING, values=values)
    np.testing.assert_array_equal(one.labels, every.labels)
    for part in ("stats", "axes"):
        for field in dataclasses.fields(getattr(one, part)):
            np.testing.assert_array_equal(
                getattr(getattr(one, part), field.name), getattr(getattr(every, part), field.name)
            )

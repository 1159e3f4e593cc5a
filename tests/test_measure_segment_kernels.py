"""The segmenter's fast helpers against plain numpy / scipy versions of the same operation.

Each helper replaced a slower whole-array expression; the oracle is that expression:

* ``_gather_kernel`` against ``a[np.ix_(ik, ij, ii)]``;
* ``_fill_holes_axial`` against ``scipy.ndimage.binary_fill_holes`` slice by slice;
* ``_uncurve_kernel`` against the derivatives of ``np.gradient`` applied twice on the
  crop padded with its edge, evaluated at the band ``binary_dilation(r, cube) &
  ~binary_erosion(r, cube, border_value=1)`` (the formula of ``_Segmenter._uncurved``);
* ``_Segmenter._smoothed_at`` against ``_Segmenter._smoothed(box)[mask]``, with masks
  touching the crop's edge;
* ``_Segmenter.leaks`` against the erosions of the whole arrays.
"""

from __future__ import annotations

import numpy as np
import pytest
import scipy.ndimage as ndi

from netvolume.measure import MeasureSettings
from netvolume.measure._segment import (
    _fill_holes_axial,
    _gather_kernel,
    _Segmenter,
    _uncurve_kernel,
)
from netvolume.volume import Volume


def _blob(rng: np.random.Generator, shape: tuple[int, ...], level: float = 0.5) -> np.ndarray:
    return np.asarray(ndi.gaussian_filter(rng.random(shape), 1.2) > level)


@pytest.mark.parametrize("dtype", [bool, np.float32, np.uint16])
def test_gather_equals_fancy_indexing(dtype: type) -> None:
    rng = np.random.default_rng(3)
    a = (rng.random((7, 9, 11)) * 1000).astype(dtype)
    for _ in range(20):
        idx = [np.sort(rng.integers(0, n, int(rng.integers(1, 3 * n)))) for n in a.shape]
        out = np.empty(tuple(v.size for v in idx), dtype=a.dtype)
        _gather_kernel(a, *idx, out)
        assert np.array_equal(out, a[np.ix_(*idx)])


def test_fill_holes_axial_equals_scipy_per_slice() -> None:
    rng = np.random.default_rng(4)
    for _ in range(100):
        shape = tuple(int(v) for v in rng.integers(1, 14, 3))
        m = rng.random(shape) > rng.uniform(0.2, 0.8)
        ref = np.stack([ndi.binary_fill_holes(s) for s in m])
        assert np.array_equal(_fill_holes_axial(m), ref)
    ring = np.zeros((1, 7, 7), bool)
    ring[0, 1:6, 1:6] = True
    ring[0, 2:5, 2:5] = False
    assert _fill_holes_axial(ring)[0, 3, 3]  # an enclosed hole is filled
    ring[0, 3, 5] = False  # opened to the border
    assert not _fill_holes_axial(ring)[0, 3, 3]


def _uncurved_numpy(
    sm: np.ndarray, r: np.ndarray, h: tuple[float, ...], var: tuple[float, ...]
) -> np.ndarray:
    cube = np.ones((3, 3, 3), bool)
    band = ndi.binary_dilation(r, cube) & ~ndi.binary_erosion(r, cube, border_value=1)
    u = np.pad(sm.astype(np.float64), 2, mode="edge")
    k, j, i = (a + 2 for a in np.nonzero(band))
    unit = np.eye(3, dtype=np.int64)

    def at(d: np.ndarray) -> np.ndarray:
        return np.asarray(u[k + d[0], j + d[1], i + d[2]])

    centre = u[k, j, i]
    g = [(at(e) - at(-e)) / (2.0 * h[a]) for a, e in enumerate(unit)]
    gv = [var[a] * g[a] for a in range(3)]
    norm2 = gv[0] * g[0] + gv[1] * g[1] + gv[2] * g[2] + 1e-12
    lap = np.zeros_like(centre)
    across = np.zeros_like(centre)
    for a in range(3):
        for b in range(a, 3):
            if a == b:
                two = 2 * unit[a]
                hab = (at(two) - 2.0 * centre + at(-two)) / (4.0 * h[a] * h[a])
                lap += var[a] * hab
                across += gv[a] * gv[a] * hab
            else:
                pp, pm = unit[a] + unit[b], unit[a] - unit[b]
                hab = (at(pp) - at(pm) - at(-pm) + at(-pp)) / (4.0 * h[a] * h[b])
                across += 2.0 * gv[a] * gv[b] * hab
    out = sm.copy()
    out[band] = (centre - 0.5 * (lap - across / norm2)).astype(out.dtype)
    return out


def test_uncurve_kernel_equals_numpy_formula() -> None:
    rng = np.random.default_rng(5)
    for h, var in (((1.25, 0.78, 0.78), (0.2, 0.33, 0.33)), ((2.0, 0.8, 0.8), (0.01, 0.3, 0.3))):
        for _ in range(10):
            shape = tuple(int(v) for v in rng.integers(3, 16, 3))
            r = _blob(rng, shape)
            sm = (ndi.gaussian_filter(rng.normal(0, 50, shape), 1.0) + 60 * r).astype(np.float32)
            out = sm.copy()
            _uncurve_kernel(sm, r, np.asarray(h), np.asarray(var), out)
            np.testing.assert_allclose(out, _uncurved_numpy(sm, r, h, var), rtol=0, atol=1e-4)
            assert not np.array_equal(out, sm) or not r.any() or r.all()


@pytest.fixture(scope="module")
def segmenter() -> _Segmenter:
    rng = np.random.default_rng(6)
    ct = np.round(ndi.gaussian_filter(rng.normal(40, 80, (24, 40, 40)), 1.0)).astype(np.int16)
    vol = Volume(ct, np.diag([1.25, 0.78, 0.78, 1.0]), frame_of_reference_uid="1.2", units="HU")
    return _Segmenter(vol, None, MeasureSettings())


def test_smoothed_at_equals_smoothed_crop(segmenter: _Segmenter) -> None:
    rng = np.random.default_rng(7)
    shape = segmenter.a.shape
    for _ in range(20):
        lo = [int(rng.integers(0, n // 2)) for n in shape]
        hi = [int(rng.integers(a + 2, n + 1)) for a, n in zip(lo, shape, strict=True)]
        box = tuple(slice(a, b) for a, b in zip(lo, hi, strict=True))
        crop = tuple(b - a for a, b in zip(lo, hi, strict=True))
        masks = (rng.random(crop) > 0.97, _blob(rng, crop, 0.55))
        full = segmenter._smoothed(box)  # type: ignore[arg-type]
        got = segmenter._smoothed_at(box, masks)  # type: ignore[arg-type]
        for m, values in zip(masks, got, strict=True):
            assert np.array_equal(values, full[m])


def test_leaks_equals_whole_array_erosions() -> None:
    rng = np.random.default_rng(8)
    for _ in range(40):
        shape = tuple(int(v) for v in rng.integers(4, 20, 3))
        allowed = _blob(rng, shape, 0.45)
        region = allowed & _blob(rng, shape, 0.5)
        edge = allowed & ~ndi.binary_erosion(allowed)
        surface = region & ~ndi.binary_erosion(region)
        for fraction in (0.05, 0.1, 0.3):
            ref = bool((region & edge).sum() > fraction * max(1, int(surface.sum())))
            if not region.any():
                ref = False
            assert _Segmenter.leaks(region, allowed, fraction) is ref

"""Automatic segmentation (``netvolume.measure._segment.segment``) on a synthetic abdomen.

A body of fat with a liver, a spleen, a lymph node in the fat, a loop of bowel with
physiological uptake carrying a primary, a hyperdense liver lesion bulging through the
liver capsule and another under a thin cover of parenchyma. The CT is blurred (a 0.7 mm
Gaussian point-spread function, so the half-way iso-surface lies on the true edge) and
noisy (SD 12 HU, seeded); the PET is the uptake map blurred to 7 mm FWHM, the bowel's
uptake patchy. Truth: the analytic shapes, sampled at voxel centres. The CT has 1.25 mm
or 2 mm slices: on 2 mm slices the coarse grid's blocks are 4.0 x 3.3 x 3.3 mm, deeper
than a 3 mm ring (every PET hot spot's CT background was once NaN there, and no node or
primary was found).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
import scipy.ndimage as ndi

from netvolume.measure import MeasureSettings
from netvolume.measure._segment import Segmentation, block_mean, segment
from netvolume.volume import Volume

PIXEL_MM = 0.8
SHAPE_XY = 240  # 192 mm
HEIGHT_MM = 120.0
FAT_HU, LIVER_HU, SPLEEN_HU, NODE_HU, BOWEL_HU, PRIMARY_HU, HYPER_HU = (
    -95.0, 105.0, 117.0, 50.0, 36.0, 80.0, 177.0,
)  # fmt: skip

# shapes: centre (x, y, z) mm and semi-axes (x, y, z) mm
LIVER = ((66.0, 91.0, 60.0), (30.0, 40.0, 45.0))
SPLEEN = ((136.0, 91.0, 60.0), (14.0, 24.0, 30.0))
NODE = ((30.0, 150.0, 60.0), (7.0, 7.0, 7.0))
BOWEL = ((96.0, 163.0, 60.0), (45.0, 14.0, 50.0))
PRIMARY = ((96.0, 149.0, 60.0), (9.0, 9.0, 9.0))
# under the capsule: bulging 3.5 mm through the surface (x = 36 mm), and covered by
# 1.5 mm of parenchyma (surface at y = 51 mm)
SUBCAPSULAR = ((39.5, 91.0, 60.0), (7.0, 7.0, 7.0))
COVERED = ((66.0, 59.5, 60.0), (7.0, 7.0, 7.0))


def _inside(grid: tuple[np.ndarray, ...], shape: tuple) -> np.ndarray:
    (cx, cy, cz), (ax, ay, az) = shape
    z, y, x = grid
    return ((x - cx) / ax) ** 2 + ((y - cy) / ay) ** 2 + ((z - cz) / az) ** 2 <= 1.0


def _abdomen_inputs(dz: float) -> tuple[Volume, Callable[[Volume], np.ndarray], dict]:
    """The synthetic abdomen's CT, PET sampler and truth masks, with ``dz`` mm slices."""
    nz = round(HEIGHT_MM / dz)
    spacing = (dz, PIXEL_MM, PIXEL_MM)
    grid = np.meshgrid(
        np.arange(nz) * dz,
        np.arange(SHAPE_XY) * PIXEL_MM,
        np.arange(SHAPE_XY) * PIXEL_MM,
        indexing="ij",
        sparse=True,
    )
    _, y, x = grid
    body = (x - 96.0) ** 2 + (y - 96.0) ** 2 <= 94.0**2
    body = np.broadcast_to(body, (nz, SHAPE_XY, SHAPE_XY))
    truth = {
        "liver": _inside(grid, LIVER),
        "spleen": _inside(grid, SPLEEN),
        "node": _inside(grid, NODE),
        "bowel": _inside(grid, BOWEL),
        "primary": _inside(grid, PRIMARY),
        "subcapsular": _inside(grid, SUBCAPSULAR),
        "covered": _inside(grid, COVERED),
    }
    truth["liver"] = truth["liver"] | truth["subcapsular"]  # the lesion is liver
    rng = np.random.default_rng(20261122)
    ct = np.full(body.shape, -1000.0, dtype=np.float32)
    suv = np.zeros(body.shape, dtype=np.float32)
    # physiological bowel uptake: SUV 1.3 +- 50 % in 6 mm patches (above and below the
    # hot-spot threshold, as in the phantom and in patients)
    field = ndi.gaussian_filter(rng.normal(size=body.shape), [6.0 / s for s in spacing])
    bowel_suv = 1.3 * (1.0 + 0.5 * field / field.std())
    for name, hu, uptake in (
        ("body", FAT_HU, 0.4),
        ("liver", LIVER_HU, 6.0),
        ("spleen", SPLEEN_HU, 20.0),
        ("node", NODE_HU, 8.0),
        ("bowel", BOWEL_HU, bowel_suv),
        ("primary", PRIMARY_HU, 12.0),
        ("subcapsular", HYPER_HU, 9.0),
        ("covered", HYPER_HU, 9.0),
    ):
        mask = body if name == "body" else truth[name]
        ct[mask] = hu
        suv[mask] = uptake[mask] if isinstance(uptake, np.ndarray) else uptake
    ct = ndi.gaussian_filter(ct, [0.7 / s for s in spacing]) + rng.normal(0, 12.0, ct.shape)
    ct_vol = Volume(
        np.round(ct).astype(np.int16),
        np.diag([dz, PIXEL_MM, PIXEL_MM, 1.0]),
        frame_of_reference_uid="1.2.3",
        units="HU",
    )
    sigma_mm = 7.0 / (2.0 * np.sqrt(2.0 * np.log(2.0)))
    pet = ndi.gaussian_filter(suv, [sigma_mm / s for s in spacing])

    def sampler(ref: Volume) -> np.ndarray:
        block = tuple(round(r / s) for r, s in zip(ref.spacing, spacing, strict=True))
        out = block_mean(pet, block)
        return out[tuple(slice(0, n) for n in ref.spatial_shape)]

    return ct_vol, sampler, truth


@pytest.fixture(scope="module", params=[1.25, 2.0], ids=["1.25mm", "2mm"])
def abdomen(request: pytest.FixtureRequest) -> tuple[float, dict, Segmentation]:
    dz = float(request.param)
    ct_vol, sampler, truth = _abdomen_inputs(dz)
    seg = segment(ct_vol, sampler, MeasureSettings())
    return dz, truth, seg


def test_same_lesions_on_one_or_several_threads(monkeypatch: pytest.MonkeyPatch) -> None:
    """PET hot spots are planned on worker threads and added in order: one thread and
    three give the same label map, organs, detection routes and notes (the abdomen's node,
    bowel loop with its primary found as the hotter core, and hot liver lesions)."""
    from netvolume.errors import NetVolumeError
    from netvolume.measure import _pool

    ct_vol, sampler, _ = _abdomen_inputs(1.25)
    runs = {}
    for threads in ("1", "3"):
        monkeypatch.setenv("NETVOLUME_THREADS", threads)
        runs[threads] = segment(ct_vol, sampler, MeasureSettings())
        if threads == "3" and _pool.workers() != 3:
            pytest.skip("numba's threading layer may not be entered from several threads")
    one, three = runs["1"], runs["3"]
    assert one.organs and "lymph_node" in one.organs
    assert np.array_equal(one.lesions, three.lesions)
    assert (one.organs, one.detected_by, one.notes) == (
        three.organs,
        three.detected_by,
        three.notes,
    )
    for bad in ("0", "two", "-1"):
        monkeypatch.setenv("NETVOLUME_THREADS", bad)
        with pytest.raises(NetVolumeError, match="NETVOLUME_THREADS"):
            _pool.workers()


def _match(seg: Segmentation, truth_mask: np.ndarray) -> int:
    """The lesion label covering most of ``truth_mask`` (0 when under half is covered)."""
    hit = seg.lesions[truth_mask]
    hit = hit[hit > 0]
    if hit.size < 0.5 * truth_mask.sum():
        return 0
    ids, counts = np.unique(hit, return_counts=True)
    return int(ids[np.argmax(counts)])


def _dice(a: np.ndarray, b: np.ndarray) -> float:
    return float(2.0 * (a & b).sum() / (a.sum() + b.sum()))


def test_organs(abdomen: tuple[float, dict, Segmentation]) -> None:
    _, truth, seg = abdomen
    assert seg.liver is not None and seg.spleen is not None
    assert _dice(seg.liver, truth["liver"]) >= 0.97
    assert _dice(seg.spleen, truth["spleen"]) >= 0.95


_PRIMARY_XFAIL = pytest.mark.xfail(
    strict=True,
    reason="known (issue 7 left open): a lesion between two darker tissues (this primary "
    "on the bowel, 36 HU, and in the fat, -95 HU) is delineated at the half-way HU to the "
    "median of the ring around it, a mixture of the two: on 2 mm slices the region runs "
    "on into the bowel (not found), on 1.25 mm slices it is 11 % small. The phantom's "
    "primaries, deeper in the bowel, are found (benchmarks/validate_measure.py)",
)


_BULGE_XFAIL = pytest.mark.xfail(
    strict=True,
    reason="known (issue 7 left open): a liver lesion bulging through the capsule with no "
    "parenchyma over it is delineated against the parenchyma's HU on its fat side too "
    "(only the outermost voxel is completed against the fat): 12-14 % small. One under a "
    "thin parenchymal cover, as in the phantom, is within 2 %",
)


@pytest.mark.parametrize(
    ("name", "organ"),
    [
        ("node", "lymph_node"),
        pytest.param("primary", "other", marks=_PRIMARY_XFAIL),
        ("covered", "liver"),
        pytest.param("subcapsular", "liver", marks=_BULGE_XFAIL),
    ],
)
def test_lesion_found_with_its_organ_and_volume(
    abdomen: tuple[float, dict, Segmentation], name: str, organ: str
) -> None:
    dz, truth, seg = abdomen
    t = truth[name]
    label = _match(seg, t)
    assert label, f"{name} not found ({dz} mm slices)"
    assert seg.organs[label - 1] == organ
    found = seg.lesions == label
    err = 100.0 * (found.sum() / t.sum() - 1.0)
    assert abs(err) <= 8.0, f"{name}: volume {err:+.1f} % ({dz} mm slices)"
    assert _dice(found, t) >= 0.85


def test_no_false_positive(abdomen: tuple[float, dict, Segmentation]) -> None:
    _, truth, seg = abdomen
    lesion = truth["node"] | truth["primary"] | truth["subcapsular"] | truth["covered"]
    for label in range(1, len(seg.organs) + 1):
        assert (lesion[seg.lesions == label]).mean() >= 0.5, (label, seg.organs[label - 1])


def test_subcapsular_lesion_is_liver(abdomen: tuple[float, dict, Segmentation]) -> None:
    _, truth, seg = abdomen
    assert seg.liver is not None
    label = _match(seg, truth["subcapsular"])
    assert label
    # the bulge beyond the capsule is lesion and liver: the lesion mask lies in the liver
    assert (seg.liver[seg.lesions == label]).all()

"""Two touching liver lesions of different attenuation keep their own boundaries
(``_Segmenter._own_boundaries``).

Oracle: two balls rendered with exact partial volume (125 sub-samples per voxel, no
noise) in parenchyma of 105 HU, 0.8 mm apart (the phantom's touching pairs are 0.5-1 mm
apart), on a 1.25 x 0.78 x 0.78 mm grid: an 8 mm ball of 200 HU and a 5.5 mm ball of
170 HU; analytic volumes 4/3 pi r^3. Delineated together, the pair's threshold is the
half-way HU of the larger, brighter ball (152 HU), at which the smaller one's
partial-volume shell is lost (about -20 %); split and delineated again, each at its own
half-way HU, both are within 4 %.
"""

from __future__ import annotations

import numpy as np

from netvolume.measure import MeasureSettings
from netvolume.measure._segment import _Segmenter
from netvolume.volume import Volume

HOST_HU = 105.0
BIG = (8.0, 200.0)  # radius mm, HU
SMALL = (5.5, 170.0)
GAP_MM = 0.8
SPACING = (1.25, 0.78125, 0.78125)


def _pair() -> tuple[Volume, np.ndarray, list[np.ndarray]]:
    """CT, seed (both balls' cores) and each ball's exact-volume indicator (>= half)."""
    n = (28, 56, 56)
    c_big = np.array([11.13, 14.07, 16.91])
    axis = np.array([0.0, 0.6, 0.8])
    c_small = c_big + (BIG[0] + SMALL[0] + GAP_MM) * axis
    sub = 5
    offsets = (np.arange(sub) + 0.5) / sub - 0.5
    idx = np.indices(n, dtype=np.float64)
    fracs = [np.zeros(n), np.zeros(n)]
    for a in offsets:
        for b in offsets:
            for c in offsets:
                pos = [
                    (idx[ax] + o) * SPACING[ax] for ax, o in zip(range(3), (a, b, c), strict=True)
                ]
                for f, (centre, (r, _)) in zip(
                    fracs, ((c_big, BIG), (c_small, SMALL)), strict=True
                ):
                    f += sum((p - cc) ** 2 for p, cc in zip(pos, centre, strict=True)) <= r * r
    fracs = [f / sub**3 for f in fracs]
    arr = HOST_HU + fracs[0] * (BIG[1] - HOST_HU) + fracs[1] * (SMALL[1] - HOST_HU)
    ct = Volume(arr.astype(np.float32), np.diag([SPACING[2], SPACING[1], SPACING[0], 1.0]))
    centre_pos = [idx[ax] * SPACING[ax] for ax in range(3)]
    seed = np.zeros(n, bool)
    for centre, (r, _) in ((c_big, BIG), (c_small, SMALL)):
        seed |= (
            sum((p - cc) ** 2 for p, cc in zip(centre_pos, centre, strict=True)) <= (r - 2.0) ** 2
        )
    return ct, seed, fracs


def test_touching_pair_each_at_its_own_half_way() -> None:
    ct, seed, fracs = _pair()
    sg = _Segmenter(ct, None, MeasureSettings())
    box = tuple(slice(0, s) for s in seed.shape)
    allowed = np.ones(seed.shape, bool)
    sm = sg._smoothed(box)  # type: ignore[arg-type]
    together, lesion_hu, _ = sg.delineate(seed, box, HOST_HU, allowed, sm=sm)  # type: ignore[arg-type]
    assert lesion_hu > 185.0  # the pair's interior: mostly the big ball
    parts = sg.split(together, box)  # type: ignore[arg-type]
    assert len(parts) == 2
    voxel_mm3 = float(np.prod(SPACING))
    truth = {r: 4.0 / 3.0 * np.pi * r**3 for r, _ in (BIG, SMALL)}

    def errors(masks: list[np.ndarray]) -> dict[float, float]:
        out = {}
        for m in masks:
            # which ball: the one holding most of the part
            r = BIG[0] if (fracs[0][m].sum() > fracs[1][m].sum()) else SMALL[0]
            out[r] = float(m.sum()) * voxel_mm3 / truth[r] - 1.0
        return out

    before = errors(parts)
    assert before[SMALL[0]] < -0.10  # the shared threshold cuts the small ball's shell
    own = sg._own_boundaries(parts, box, sm, HOST_HU, allowed)  # type: ignore[arg-type]
    after = errors(own)
    assert set(after) == {BIG[0], SMALL[0]}
    for r, err in after.items():
        assert abs(err) <= 0.04, f"ball r = {r} mm: volume error {100 * err:+.2f} %"
    assert not (own[0] & own[1]).any()

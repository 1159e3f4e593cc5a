"""The patient model: organs, lesions and how they evolve between time points.

Everything here is continuous geometry in the body frame (mm; +x patient left, +y
posterior, +z superior; origin at the centre of the abdomen) plus tissue values (CT HU,
Ga-68 DOTA uptake in SUV). It is drawn from a seeded :class:`numpy.random.Generator`, so a
seed gives the same patient on any machine.

Layout (before the per-patient size factor): an abdominal cavity of 148 x 103 mm
semi-axes inside a 10 mm muscular wall and a 10-22 mm subcutaneous fat layer (the body
outline); vertebral column, paraspinal muscles and aorta as cylinders; liver,
spleen and small-bowel region as smooth irregular star-shaped bodies; kidneys as
ellipsoids. Organs are placed so that none overlaps another (checked on their surfaces
with a 2 mm margin); the model is redrawn when a check fails.

Tissue values: portal-venous CT (liver ~110 HU, spleen ~120, kidney ~160, aorta ~160,
fat ~-100, muscle ~50, bone ~700) and Ga-68 DOTATATE uptake (liver 5.5-7.5, spleen 19-28,
kidneys 11-18, blood pool ~1.8, background ~0.4-0.6), as seen on clinical studies
(Kuyumcu et al., Eur J Nucl Med Mol Imaging 2013;40:1245; Prasad & Baum, Q J Nucl Med Mol
Imaging 2010;54:61).

Lesions are ellipsoids (closed-form volume and axial axes): liver metastases (3-80 mm,
hypo- or hyper-attenuating, large ones with a necrotic core), lymph nodes (short axis
8-25 mm), vertebral bone lesions (sclerotic or lytic), and the small-bowel primary. Their
uptake is chosen per Krenning grade with a margin from every grade boundary, so each of
the grades 0-4 is unambiguous (see :func:`krenning_grade`).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import numpy.typing as npt

from netvolume.phantom._shapes import (
    MONOMIALS,
    EllipticCylinder,
    Shape,
    StarShape,
    quantise,
    rotation_x,
    rotation_z,
    sphere_quadrature,
)

FloatArray = npt.NDArray[np.float64]

#: Courses of disease a patient can follow (assigned in this order, cycling).
COURSES: tuple[str, ...] = ("response", "new_lesions", "stable", "progression")

#: Organ names of lesions (the measurement layer's categories) and their sites.
LESION_ORGANS = ("liver", "lymph_node", "bone", "other")

#: Cylinders extend this far beyond any scanned range (mm, body frame).
_Z_FAR = 600.0
#: Margin kept between organs (mm).
ORGAN_MARGIN_MM = 2.0
#: Smallest gap between two lesions, except the designated touching pair (mm).
LESION_GAP_MM = 3.0


class LayoutError(RuntimeError):
    """The random draw could not place the model (internal; the caller redraws)."""


@dataclass(frozen=True)
class Tissue:
    """One tissue of the model: its CT value (HU) and its Ga-68 uptake (SUV)."""

    name: str
    hu: float
    suv: float


@dataclass(frozen=True)
class Organ:
    """A named shape filled with one tissue; ``label`` names its truth mask (or "")."""

    name: str
    shape: Shape
    tissue: Tissue
    label: str = ""


@dataclass(frozen=True)
class LesionPlan:
    """A lesion over the whole course of a patient.

    ``scales[t]`` multiplies the baseline semi-axes at time point ``t``; ``None`` means
    the lesion is absent (not yet appeared, disappeared, or split into fragments).
    """

    lesion_id: int
    organ: str
    site: str
    kind: str
    shape: StarShape
    hu: float
    suv: float
    grade: int
    background: str
    scales: tuple[float | None, ...]
    necrosis: float = 0.0
    core_hu: float = 25.0
    core_suv_ratio: float = 0.25
    split_from: int | None = None
    touching: int | None = None
    subcapsular: bool = False

    @property
    def nodal(self) -> bool:
        """True for lymph nodes."""
        return self.organ == "lymph_node"

    @property
    def envelope(self) -> StarShape:
        """The lesion at its largest over the course."""
        return self.shape.scaled(max(s for s in self.scales if s is not None))

    def at(self, t: int) -> StarShape | None:
        """The lesion's shape at time point ``t`` (None when absent)."""
        s = self.scales[t]
        return None if s is None else self.shape.scaled(s)

    def core(self, t: int) -> StarShape | None:
        """The necrotic core at time point ``t`` (None without necrosis or when absent)."""
        s = self.scales[t]
        if s is None or self.necrosis <= 0:
            return None
        return self.shape.scaled(s * self.necrosis)

    @property
    def suv_max(self) -> float:
        """Highest uptake in the lesion (the viable rim)."""
        return self.suv

    @property
    def suv_mean(self) -> float:
        """Mean uptake over the continuous lesion (rim and core by volume fraction)."""
        f3 = self.necrosis**3
        return self.suv * (1.0 - f3) + self.suv * self.core_suv_ratio * f3


@dataclass(frozen=True)
class PatientModel:
    """One synthetic patient: organs (in painting order), lesions, tissues, course."""

    index: int
    course: str
    organs: tuple[Organ, ...]
    lesions: tuple[LesionPlan, ...]
    tissues: dict[str, Tissue]
    n_timepoints: int
    sex: str
    weight_kg: float
    height_cm: float
    size_factor: float

    def organ(self, name: str) -> Organ:
        """The organ called ``name``."""
        for o in self.organs:
            if o.name == name:
                return o
        raise KeyError(name)


def krenning_grade(
    suv_max: float, background_suv: float, liver_suv: float, spleen_suv: float
) -> int:
    """Krenning grade of a lesion from its SUVmax (netvolume's PET adaptation).

    0: no uptake above the local background; 1: below half the liver reference; 2: up
    to the liver; 3: above the liver up to the spleen; 4: above the spleen (DOMAIN
    section 10; Krenning et al., Ann N Y Acad Sci 1994;733:496; Hope et al., JNM
    2019;60(suppl 1):1535).
    """
    if suv_max <= background_suv:
        return 0
    if suv_max < 0.5 * liver_suv:
        return 1
    if suv_max <= liver_suv:
        return 2
    if suv_max <= spleen_suv:
        return 3
    return 4


def _grade_suv(rng: np.random.Generator, grade: int, tissues: dict[str, Tissue], bg: str) -> float:
    """An uptake that gives ``grade`` with a wide margin from every boundary."""
    liver, spleen = tissues["liver"].suv, tissues["spleen"].suv
    background = tissues[bg].suv
    if grade == 0:  # only used inside the liver (background >= 5.5)
        return float(rng.uniform(2.0, 0.45 * background))
    if grade == 1:
        return float(rng.uniform(max(1.5 * background, 2.0), 0.42 * liver))
    if grade == 2:
        return float(liver * rng.uniform(0.65, 0.82))
    if grade == 3:
        return float(rng.uniform(1.6 * liver, 0.65 * spleen))
    return float(min(60.0, spleen * rng.uniform(1.45, 2.1)))


def _tissues(rng: np.random.Generator) -> dict[str, Tissue]:
    def t(name: str, hu: float, hu_sd: float, suv: float, suv_sd: float = 0.0) -> Tissue:
        return Tissue(
            name, float(hu + rng.uniform(-hu_sd, hu_sd)), float(suv + rng.uniform(-suv_sd, suv_sd))
        )

    return {
        "air": Tissue("air", -1000.0, 0.0),
        "fat": t("fat", -100.0, 8.0, 0.35, 0.05),
        "muscle": t("muscle", 50.0, 6.0, 0.6, 0.1),
        "visceral_fat": t("visceral_fat", -95.0, 8.0, 0.45, 0.05),
        "bone": t("bone", 700.0, 40.0, 1.0, 0.15),
        "blood": t("blood", 160.0, 15.0, 1.8, 0.3),
        "bowel": t("bowel", 40.0, 8.0, 1.3, 0.2),
        "kidney": t("kidney", 160.0, 15.0, 14.5, 3.5),
        "spleen": t("spleen", 120.0, 8.0, 23.5, 4.5),
        "liver": t("liver", 110.0, 8.0, 6.5, 1.0),
    }


def _irregular(rng: np.random.Generator, amplitude: float) -> tuple[float, ...]:
    """Coefficients of a smooth radius ``r(u)`` with ``max |r - 1| == amplitude``."""
    raw = rng.uniform(-1.0, 1.0, len(MONOMIALS))
    probe = StarShape((0.0, 0.0, 0.0), (1.0, 1.0, 1.0), np.eye(3), tuple(float(v) for v in raw))
    u, _ = sphere_quadrature(32, 64)
    dev = float(np.abs(probe.radial(u) - 1.0).max())
    return tuple(float(v) for v in quantise(raw * (amplitude / dev)))


def _clear(a: Shape, b: Shape, margin: float) -> bool:
    """True when shapes ``a`` and ``b`` are at least ``margin`` apart (surface samples)."""
    for p, q in ((a, b), (b, a)):
        if isinstance(p, StarShape):
            d, _ = q.distance(p.surface_points())
            if float(d.min()) < margin:
                return False
    return True


def _inside(inner: StarShape, outer: Shape, margin: float) -> bool:
    """True when ``inner`` lies inside ``outer`` with at least ``margin`` to spare."""
    d, _ = outer.distance(inner.surface_points())
    return bool(float(d.max()) <= -margin)


def _organs(rng: np.random.Generator, tissues: dict[str, Tissue], s: float) -> tuple[Organ, ...]:
    """Draw the organ layout (body frame) for size factor ``s``; redraw on overlap."""
    zr = (-_Z_FAR, _Z_FAR)
    cavity_ab = (148.0 * s, 103.0 * s)
    wall = 10.0 * s
    fat = float(rng.uniform(10.0, 22.0))
    wall_ab = (cavity_ab[0] + wall, cavity_ab[1] + wall)
    body = EllipticCylinder((0.0, 0.0), (wall_ab[0] + fat, wall_ab[1] + fat), zr)
    wall_c = EllipticCylinder((0.0, 0.0), wall_ab, zr)
    cavity = EllipticCylinder((0.0, 0.0), cavity_ab, zr)
    spine = EllipticCylinder((0.0, 62.0 * s), (17.0 * s, 16.0 * s), zr)
    psoas_l = EllipticCylinder((32.0 * s, 98.0 * s), (22.0 * s, 17.0 * s), zr)
    psoas_r = EllipticCylinder((-32.0 * s, 98.0 * s), (22.0 * s, 17.0 * s), zr)
    aorta = EllipticCylinder((14.0 * s, 31.0 * s), (11.0 * s, 11.0 * s), zr)
    fixed: list[Shape] = [spine, psoas_l, psoas_r, aorta]

    def draw(
        centre: tuple[float, float, float],
        axes: tuple[float, float, float],
        angle: float,
        amplitude: float,
    ) -> StarShape:
        c = tuple(float(v * s + rng.uniform(-4.0, 4.0)) for v in centre)
        a = tuple(float(v * s * rng.uniform(0.94, 1.06)) for v in axes)
        coeffs = _irregular(rng, amplitude) if amplitude > 0 else ()
        return StarShape(c, a, rotation_z(angle), coeffs)  # type: ignore[arg-type]

    for _attempt in range(200):
        liver = draw((-62.0, -12.0, 45.0), (64.0, 60.0, 72.0), rng.uniform(-0.15, 0.15), 0.2)
        spleen = draw((68.0, 36.0, 50.0), (22.0, 40.0, 44.0), rng.uniform(-0.75, -0.45), 0.12)
        bowel = draw((8.0, -40.0, -85.0), (88.0, 38.0, 40.0), rng.uniform(-0.1, 0.1), 0.12)
        placed: list[Shape] = [liver, spleen, bowel]
        if not all(_inside(o, cavity, ORGAN_MARGIN_MM) for o in placed):  # type: ignore[arg-type]
            continue
        if not all(_clear(o, f, ORGAN_MARGIN_MM) for o in placed for f in fixed):
            continue
        if not (
            _clear(liver, spleen, ORGAN_MARGIN_MM)
            and _clear(liver, bowel, ORGAN_MARGIN_MM)
            and _clear(spleen, bowel, ORGAN_MARGIN_MM)
        ):
            continue
        kidneys = []
        for side in (1.0, -1.0):
            base = draw((62.0 * side, 58.0, -30.0), (23.0, 20.0, 50.0), 0.45 * side, 0.0)
            tilt = quantise(rotation_z(0.45 * side) @ rotation_x(-0.15))
            k = StarShape(base.centre_mm, base.semi_axes_mm, tilt)
            while not all(_clear(k, o, ORGAN_MARGIN_MM) for o in (*placed, *fixed)):
                k = k.moved((k.centre_mm[0], k.centre_mm[1], k.centre_mm[2] - 5.0))
                if k.centre_mm[2] < -140.0:
                    break
            kidneys.append(k)
        if any(k.centre_mm[2] < -140.0 for k in kidneys) or not all(
            _inside(k, cavity, ORGAN_MARGIN_MM) for k in kidneys
        ):
            continue
        return (
            Organ("body", body, tissues["fat"]),
            Organ("wall", wall_c, tissues["muscle"]),
            Organ("cavity", cavity, tissues["visceral_fat"]),
            Organ("psoas_left", psoas_l, tissues["muscle"]),
            Organ("psoas_right", psoas_r, tissues["muscle"]),
            Organ("spine", spine, tissues["bone"]),
            Organ("aorta", aorta, tissues["blood"]),
            Organ("bowel", bowel, tissues["bowel"]),
            Organ("kidney_left", kidneys[0], tissues["kidney"]),
            Organ("kidney_right", kidneys[1], tissues["kidney"]),
            Organ("spleen", spleen, tissues["spleen"], label="spleen"),
            Organ("liver", liver, tissues["liver"], label="liver"),
        )
    raise LayoutError("could not place the organs without overlap in 200 draws")


# -- lesions -----------------------------------------------------------------------------


def _random_rotation(rng: np.random.Generator, tilt_max: float) -> FloatArray:
    """A rotation about z by a uniform angle, after a tilt of at most ``tilt_max`` rad."""
    return np.asarray(
        quantise(rotation_z(rng.uniform(0, np.pi)) @ rotation_x(rng.uniform(-tilt_max, tilt_max)))
    )


def _course_steps(rng: np.random.Generator, course: str, n: int) -> list[float]:
    """Cumulative diameter factors of a lesion at each time point (1 at baseline)."""
    lo, hi = {
        "response": (0.55, 0.68),
        "new_lesions": (0.95, 1.05),
        "stable": (0.94, 1.05),
        "progression": (1.14, 1.3),
    }[course]
    out, f = [1.0], 1.0
    for _ in range(1, n):
        f *= rng.uniform(lo, hi)
        out.append(float(f))
    return out


@dataclass
class _Draft:
    """A lesion while the plan is being built (mutable)."""

    organ: str
    site: str
    kind: str
    semi: tuple[float, float, float]
    rotation: FloatArray
    hu: float
    grade: int
    background: str
    scales: list[float | None]
    necrosis: float = 0.0
    split_at: int | None = None
    touching_index: int | None = None
    subcapsular: bool = False
    centre: tuple[float, float, float] | None = None


def _liver_kind(rng: np.random.Generator) -> tuple[str, float]:
    if rng.uniform() < 0.3:
        return "liver_hyper", float(rng.uniform(165.0, 190.0))
    return "liver_hypo", float(rng.uniform(50.0, 70.0))


def _plan_lesions(rng: np.random.Generator, course: str, n_tp: int) -> list[_Draft]:
    """What lesions the patient has and how they change (no positions yet)."""
    drafts: list[_Draft] = []

    def liver_met(ld: float, grade: int, scales: list[float | None]) -> _Draft:
        kind, hu = _liver_kind(rng) if grade > 0 else ("liver_hypo", float(rng.uniform(45.0, 65.0)))
        a = ld / 2.0
        semi = (a, a * rng.uniform(0.62, 0.92), a * rng.uniform(0.7, 1.05))
        necrosis = float(rng.uniform(0.35, 0.55)) if ld >= 40.0 else 0.0
        return _Draft(
            "liver",
            "liver",
            kind,
            semi,
            _random_rotation(rng, 0.35),
            hu,
            grade,
            "liver",
            scales,
            necrosis,
        )

    steps = _course_steps(rng, course, n_tp)

    def jitter() -> list[float | None]:
        return [float(s * rng.uniform(0.97, 1.03)) if t else 1.0 for t, s in enumerate(steps)]

    # liver metastases: one large, a few medium, some small; grades mostly 3-4, one 0
    # baseline sizes such that no lesion outgrows 80 mm (the liver) over the course
    top = max(steps) * 1.03
    sizes = [
        rng.uniform(45.0, 80.0) / top,
        rng.uniform(22.0, 38.0) / top,
        rng.uniform(16.0, 30.0) / top,
        rng.uniform(10.0, 16.0),
        rng.uniform(3.0, 8.0),
    ]
    grades = [4, 3, 4, 3, 3]
    for ld, g in zip(sizes, grades, strict=True):
        drafts.append(liver_met(float(ld), g, jitter()))
    drafts.append(liver_met(float(rng.uniform(18.0, 26.0)), 0, jitter()))  # SSTR-negative
    # a touching pair and a subcapsular lesion
    drafts[2].touching_index = 1
    drafts[3].subcapsular = True
    # lymph nodes (in-plane short axis 8-25 mm, elongated craniocaudally)
    for sa, g in (
        (rng.uniform(16.0, 25.0), 2),
        (rng.uniform(11.0, 14.0), 1),
        (rng.uniform(8.0, 9.5), 4),
    ):
        b = float(sa) / 2.0
        semi = (b * rng.uniform(1.1, 1.5), b, b * rng.uniform(1.3, 1.9))
        drafts.append(
            _Draft(
                "lymph_node",
                "retroperitoneal_node",
                "node",
                semi,
                _random_rotation(rng, 0.1),
                float(rng.uniform(40.0, 55.0)),
                g,
                "visceral_fat",
                jitter(),
            )
        )
    # bone lesions in the vertebral column
    bone_kinds = (("bone_sclerotic", 1100.0, 4), ("bone_lytic", 180.0, 1))
    for kind, hu, g in bone_kinds:
        r = float(rng.uniform(5.0, 8.5))
        drafts.append(
            _Draft(
                "bone",
                "vertebra",
                kind,
                (r, r * rng.uniform(0.8, 1.0), r * 0.9),
                _random_rotation(rng, 0.2),
                hu + rng.uniform(-40, 40),
                g,
                "bone",
                jitter(),
            )
        )
    # the primary in the small bowel
    ld = float(rng.uniform(16.0, 28.0))
    drafts.append(
        _Draft(
            "other",
            "small_bowel",
            "primary",
            (ld / 2, ld / 2 * 0.8, ld / 2 * 0.75),
            _random_rotation(rng, 0.3),
            float(rng.uniform(70.0, 85.0)),
            3,
            "bowel",
            jitter(),
        )
    )

    # course events
    if n_tp >= 2 and course == "response":
        drafts[4].scales = [1.0] + [None] * (n_tp - 1)  # the small lesion disappears
        if n_tp >= 3:
            drafts[0].split_at = 2
    if n_tp >= 2 and course == "new_lesions":
        for t0, draft in ((1, liver_met(float(rng.uniform(12.0, 20.0)), 3, jitter())),):
            late: list[float | None] = [None] * t0
            draft.scales = late + draft.scales[t0:]
            drafts.append(draft)
        b = float(rng.uniform(6.0, 7.5))
        node = _Draft(
            "lymph_node",
            "retroperitoneal_node",
            "node",
            (b * 1.2, b, b * 1.5),
            _random_rotation(rng, 0.1),
            45.0,
            3,
            "visceral_fat",
            [None, *(1.0 + 0.35 * t for t in range(1, n_tp))],
        )
        drafts.append(node)
    if course == "progression" and n_tp >= 2:
        # the pathological (non-target) node grows unequivocally: x1.5 in diameter, then more
        drafts[7].scales = [1.0, *(1.5 + 0.25 * (t - 1) for t in range(1, n_tp))]
    return drafts


def _separated(a: StarShape, b: StarShape, gap: float) -> bool:
    """Sufficient test: a plane normal to the centre line separates them by ``gap``."""
    v = np.asarray(b.centre_mm) - np.asarray(a.centre_mm)
    dist = float(np.linalg.norm(v))
    if dist == 0:
        return False
    v /= dist
    return dist >= a.support(v) + b.support(v) + gap


def _candidate(
    rng: np.random.Generator, d: _Draft, organs: dict[str, Organ]
) -> tuple[float, float, float]:
    """A random centre inside the region where the lesion kind lives."""
    if d.organ == "liver":
        lo, hi = organs["liver"].shape.bounding_box()
    elif d.organ == "lymph_node":
        a = organs["aorta"].shape
        assert isinstance(a, EllipticCylinder)
        cx, cy = a.centre_xy_mm
        lo = np.array([cx - 55.0, cy - 45.0, -110.0])
        hi = np.array([cx + 55.0, cy + 15.0, 20.0])
    elif d.organ == "bone":
        sp = organs["spine"].shape
        assert isinstance(sp, EllipticCylinder)
        cx, cy = sp.centre_xy_mm
        lo = np.array([cx - 8.0, cy - 8.0, -110.0])
        hi = np.array([cx + 8.0, cy + 8.0, 110.0])
    else:
        lo, hi = organs["bowel"].shape.bounding_box()
    return tuple(float(v) for v in rng.uniform(lo, hi))  # type: ignore[return-value]


def _fits(env: StarShape, d: _Draft, organs: dict[str, Organ]) -> bool:
    """Whether a lesion envelope sits in its organ (or, for nodes, in free fat)."""
    if d.organ == "liver":
        liver = organs["liver"].shape
        if d.subcapsular:
            dd, _ = liver.distance(env.surface_points())
            return bool(-2.0 <= float(dd.max()) <= -0.8)
        return _inside(env, liver, 2.5)
    if d.organ == "bone":
        return _inside(env, organs["spine"].shape, 1.0)
    if d.organ == "other":
        return _inside(env, organs["bowel"].shape, 2.0)
    if not _inside(env, organs["cavity"].shape, 3.0):
        return False
    solid = (
        "spine",
        "aorta",
        "bowel",
        "kidney_left",
        "kidney_right",
        "spleen",
        "liver",
        "psoas_left",
        "psoas_right",
    )
    return all(_clear(env, organs[n].shape, 2.0) for n in solid)


def _place(rng: np.random.Generator, drafts: list[_Draft], organs: dict[str, Organ]) -> None:
    """Give every draft a centre: inside its organ, apart from every other lesion."""
    order = sorted(range(len(drafts)), key=lambda i: -max(drafts[i].semi))
    placed: list[int] = []

    def env_of(i: int, centre: tuple[float, float, float]) -> StarShape:
        d = drafts[i]
        top = max(s for s in d.scales if s is not None)
        return StarShape(centre, tuple(v * top for v in d.semi), d.rotation)  # type: ignore[arg-type]

    for i in order:
        d = drafts[i]
        partner = d.touching_index
        for _attempt in range(4000):
            if partner is not None and drafts[partner].centre is not None:
                # put it against its partner, 0.5-1 mm apart (support planes)
                other = env_of(partner, drafts[partner].centre)  # type: ignore[arg-type]
                ang = rng.uniform(0, 2 * np.pi)
                v = np.array([np.cos(ang), np.sin(ang), rng.uniform(-0.3, 0.3)])
                v /= np.linalg.norm(v)
                probe = env_of(i, (0.0, 0.0, 0.0))
                dist = other.support(v) + probe.support(v) + rng.uniform(0.5, 1.0)
                centre = tuple(float(c) for c in np.asarray(other.centre_mm) + dist * v)
            else:
                centre = _candidate(rng, d, organs)
            env = env_of(i, centre)  # type: ignore[arg-type]
            if not _fits(env, d, organs):
                continue
            ok = True
            for j in placed:
                gap = 0.4 if j == partner or drafts[j].touching_index == i else LESION_GAP_MM
                if not _separated(env_of(j, drafts[j].centre), env, gap):  # type: ignore[arg-type]
                    ok = False
                    break
            if ok:
                d.centre = centre  # type: ignore[assignment]
                placed.append(i)
                break
        else:
            raise LayoutError(f"could not place a {d.kind} lesion of {2 * max(d.semi):.0f} mm")


def _split(
    drafts: list[_Draft],
) -> list[tuple[int, tuple[float, float, float], list[float | None]]]:
    """Fragments of lesions that split: two halves along the long axis from ``split_at``.

    Returns ``(parent index, centre, scales)`` per fragment (same semi-axes and rotation
    as the parent, scaled by 0.45) and ends the parent at ``split_at``.
    """
    out: list[tuple[int, tuple[float, float, float], list[float | None]]] = []
    for i, d in enumerate(drafts):
        if d.split_at is None:
            continue
        t0 = d.split_at
        a_axis = d.rotation[:, 0]  # the longest semi-axis is the first
        child_scales: list[float | None] = [None] * len(d.scales)
        for t in range(t0, len(d.scales)):
            s = d.scales[t]
            child_scales[t] = None if s is None else 0.45 * s
        parent_top = max(s for s in d.scales[t0:] if s is not None)
        assert d.centre is not None
        for sign in (-1.0, 1.0):
            offset = (0.45 * d.semi[0] * parent_top + 0.6) * sign
            c = np.asarray(d.centre) + offset * a_axis
            out.append((i, (float(c[0]), float(c[1]), float(c[2])), list(child_scales)))
        d.scales = d.scales[:t0] + [None] * (len(d.scales) - t0)
    return out


def build_patient(
    seed: int, index: int, n_timepoints: int, *, course: str | None = None
) -> PatientModel:
    """Draw patient ``index`` of a cohort with ``seed`` (deterministic)."""
    if n_timepoints < 1:
        raise ValueError(f"n_timepoints must be >= 1; got {n_timepoints}")
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), int(index), 1]))
    course = course or COURSES[index % len(COURSES)]
    if course not in COURSES:
        raise ValueError(f"course must be one of {COURSES}; got {course!r}")
    sex = "F" if rng.uniform() < 0.5 else "M"
    height_cm = float(np.round(rng.normal(164.0 if sex == "F" else 177.0, 6.0), 0))
    s = round(float(np.clip(rng.normal(1.0, 0.03), 0.94, 1.05)), 6)
    bmi = float(rng.uniform(20.0, 29.0))
    weight_kg = float(np.round(bmi * (height_cm / 100.0) ** 2, 1))
    tissues = _tissues(rng)
    for _attempt in range(20):
        try:
            organs = _organs(rng, tissues, s)
            organ_map = {o.name: o for o in organs}
            drafts = _plan_lesions(rng, course, n_timepoints)
            _place(rng, drafts, organ_map)
            break
        except LayoutError:
            continue
    else:
        raise LayoutError(f"could not lay out patient {index} of seed {seed}")
    fragments = _split(drafts)
    lesions: list[LesionPlan] = []
    ids: dict[int, int] = {}
    for i, d in enumerate(drafts):
        ids[i] = len(lesions) + 1
        assert d.centre is not None
        suv = _grade_suv(rng, d.grade, tissues, d.background)
        lesions.append(
            LesionPlan(
                lesion_id=ids[i],
                organ=d.organ,
                site=d.site,
                kind=d.kind,
                shape=StarShape(d.centre, d.semi, d.rotation),
                hu=float(d.hu),
                suv=suv,
                grade=d.grade,
                background=d.background,
                scales=tuple(d.scales),
                necrosis=d.necrosis,
                touching=None,
                subcapsular=d.subcapsular,
            )
        )
    for i, d in enumerate(drafts):
        if d.touching_index is not None:
            lesions[i] = replace(lesions[i], touching=ids[d.touching_index])
    for parent, centre, scales in fragments:
        p = lesions[ids[parent] - 1]
        lesions.append(
            LesionPlan(
                lesion_id=len(lesions) + 1,
                organ=p.organ,
                site=p.site,
                kind=p.kind,
                shape=StarShape(centre, drafts[parent].semi, drafts[parent].rotation),
                hu=p.hu,
                suv=p.suv,
                grade=p.grade,
                background=p.background,
                scales=tuple(scales),
                split_from=p.lesion_id,
            )
        )
    _check_lesions(lesions, {o.name: o for o in organs}, n_timepoints)
    return PatientModel(
        index=index,
        course=course,
        organs=organs,
        lesions=tuple(lesions),
        tissues=tissues,
        n_timepoints=n_timepoints,
        sex=sex,
        weight_kg=weight_kg,
        height_cm=height_cm,
        size_factor=s,
    )


def _check_lesions(lesions: list[LesionPlan], organs: dict[str, Organ], n_tp: int) -> None:
    """Every time point: lesions disjoint; grades as planned (a bug guard)."""
    tissues = {o.tissue.name: o.tissue for o in organs.values()}
    liver, spleen = tissues["liver"].suv, tissues["spleen"].suv
    for les in lesions:
        bg = tissues[les.background].suv
        if krenning_grade(les.suv_max, bg, liver, spleen) != les.grade:
            raise AssertionError(
                f"lesion {les.lesion_id}: uptake {les.suv_max} is not grade {les.grade}"
            )
    for t in range(n_tp):
        present = [(les, les.at(t)) for les in lesions if les.at(t) is not None]
        for a in range(len(present)):
            for b in range(a + 1, len(present)):
                sa, sb = present[a][1], present[b][1]
                assert sa is not None and sb is not None
                if not _separated(sa, sb, 0.3):
                    raise AssertionError(
                        f"lesions {present[a][0].lesion_id} and {present[b][0].lesion_id} "
                        f"overlap at time point {t}"
                    )

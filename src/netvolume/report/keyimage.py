"""Key images of a study's lesions: one small PNG per lesion, rendered right after the
measurement (the batch's per-study worker), where the images are still in memory.

Each ``lesion_<id>.png`` shows the axial slice of the lesion's RECIST long axis, cropped to
a square field of view around the lesion (its extent plus a margin on each side, at least
:data:`MIN_FOV_MM`), in two panels of :data:`PANEL_PX` pixels side by side:

* left, **CT** in a soft-tissue window (W400 / L40 HU) with the lesion's contour (the
  boundary of its label on that slice) and both RECIST callipers: the long axis and the
  perpendicular short axis, drawn between their end points (LPS mm mapped to pixels with
  the inverse of the grid's affine);
* right, **PET SUV fused on the CT**: the SUV in the ``hot`` colour map over the grey CT
  (opacity rising from 0 at SUV 0 to :data:`PET_ALPHA` at 10 % of the scale), with the
  same contour. The SUV scale runs from 0 to the larger of twice the liver reference's
  SUVmean and the lesion's SUVmax (without a liver reference: the lesion's SUVmax), so
  a lesion above twice the liver is at the top of the scale; the scale is printed on a
  colour bar in the panel.

A study without PET (or without SUV) gets the CT panel alone; a study without CT
(lesions measured on the PET grid) gets one PET panel. A lesion whose axes are not
known gets its contour only. Panels are shown in the radiological convention (patient's
right on the image's left, anterior at the top) whatever the stack's in-plane order.

Everything is drawn with numpy and Pillow (no matplotlib): rendering all lesions of a
study costs a few tens of milliseconds.
"""

from __future__ import annotations

import functools
import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from netvolume.report._common import ReportInputError, atomic_file, write_json_atomic
from netvolume.volume import Volume

if TYPE_CHECKING:
    from netvolume.measure import LesionRecord, StudyMeasurement

__all__ = [
    "CONTOUR_RGB",
    "CT_WINDOW_HU",
    "LD_RGB",
    "MIN_FOV_MM",
    "PANEL_PX",
    "PET_ALPHA",
    "SA_RGB",
    "render_key_images",
]

logger = logging.getLogger(__name__)

#: CT display window (level, width) in HU: soft tissue.
CT_WINDOW_HU: tuple[float, float] = (40.0, 400.0)
#: Side of one panel in pixels (the PNG is ``PANEL_PX`` high, one or two panels wide).
PANEL_PX = 300
#: Smallest side of the field of view in mm.
MIN_FOV_MM = 60.0
#: Margin around the lesion on each side: this fraction of its extent, at least 15 mm.
MARGIN_FRACTION = 0.3
MARGIN_MIN_MM = 15.0
#: Largest opacity of the PET over the CT.
PET_ALPHA = 0.65
#: Colours (RGB) of the lesion contour and of the long-axis and short-axis callipers.
CONTOUR_RGB: tuple[int, int, int] = (0, 230, 0)
LD_RGB: tuple[int, int, int] = (0, 170, 255)
SA_RGB: tuple[int, int, int] = (255, 0, 200)
_WHITE = (255, 255, 255)
#: zlib level of the PNGs: 3 encodes twice as fast as the default 6 for ~15 % more bytes.
PNG_COMPRESS_LEVEL = 3

_ORGAN_WORDS = {"liver": "liver", "lymph_node": "lymph node", "bone": "bone", "other": ""}


@dataclass(frozen=True)
class _Window:
    """A crop of one slice: rows ``r0:r1``, columns ``c0:c1`` of slice ``k`` (array
    order), and how it is turned for display (transpose, then flips)."""

    k: int
    r0: int
    r1: int
    c0: int
    c1: int
    transpose: bool
    flip_rows: bool
    flip_cols: bool


@functools.lru_cache(maxsize=4)
def _font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    try:
        return ImageFont.load_default(size=size)
    except (ImportError, OSError):  # Pillow without FreeType: the bitmap font
        return ImageFont.load_default()


@functools.lru_cache(maxsize=1)
def _hot_lut() -> np.ndarray:
    """256 x 3 float table of matplotlib's ``hot`` colour map (black-red-yellow-white)."""
    x = np.linspace(0.0, 1.0, 256)
    r = np.clip(x / 0.365079, 0.0, 1.0)
    g = np.clip((x - 0.365079) / (0.746032 - 0.365079), 0.0, 1.0)
    b = np.clip((x - 0.746032) / (1.0 - 0.746032), 0.0, 1.0)
    return np.stack([r, g, b], axis=1)


def _display_turn(affine: np.ndarray) -> tuple[bool, bool, bool]:
    """(transpose, flip rows, flip columns) that show a slice of this grid with the
    patient's right on the left and anterior at the top."""
    direction = affine[:3, :3] / np.linalg.norm(affine[:3, :3], axis=0)
    row_dir, col_dir = direction[:, 1], direction[:, 2]
    transpose = int(np.argmax(np.abs(row_dir))) == 0  # rows run right-left
    if transpose:
        row_dir, col_dir = col_dir, row_dir
    flip_rows = bool(row_dir[1] < 0)  # rows run towards anterior
    flip_cols = bool(col_dir[0] < 0)  # columns run towards the patient's right
    return transpose, flip_rows, flip_cols


def _turn(a: np.ndarray, w: _Window) -> np.ndarray:
    if w.transpose:
        a = a.T
    if w.flip_rows:
        a = a[::-1]
    if w.flip_cols:
        a = a[:, ::-1]
    return np.ascontiguousarray(a)


def _finite(value: Any) -> bool:
    return value is not None and isinstance(value, int | float) and math.isfinite(value)


def _as_float(value: Any) -> float | None:
    """A finite number as float, else None."""
    return float(value) if _finite(value) else None


def _axis_points(points: Any) -> tuple[tuple[float, ...], tuple[float, ...]] | None:
    """The two LPS end points of an axis, or None when missing or not finite."""
    if points is None:
        return None
    try:
        p, q = points
        a = tuple(float(v) for v in p)
        b = tuple(float(v) for v in q)
    except (TypeError, ValueError):
        return None
    if len(a) != 3 or len(b) != 3 or not all(math.isfinite(v) for v in (*a, *b)):
        return None
    return a, b


def _choose_slice(lesion: LesionRecord, labels: np.ndarray) -> int | None:
    """The lesion's long-axis slice, else the slice where its label is largest."""
    k = lesion.slice_index
    n = labels.shape[0]
    if (
        isinstance(k, int | np.integer)
        and 0 <= int(k) < n
        and (labels[int(k)] == lesion.lesion_id).any()
    ):
        return int(k)
    areas = (labels == lesion.lesion_id).sum(axis=(1, 2))
    if not areas.any():
        return None
    return int(np.argmax(areas))


def _window(
    grid: Volume, k: int, mask2d: np.ndarray, extra_rc: Sequence[tuple[float, float]]
) -> _Window:
    """A square field of view (mm) around the lesion's pixels and calliper ends."""
    _, row_mm, col_mm = grid.spacing
    n_rows, n_cols = mask2d.shape
    rr, cc = np.nonzero(mask2d)
    lo_r, hi_r = float(rr.min()) - 0.5, float(rr.max()) + 0.5  # pixel edges
    lo_c, hi_c = float(cc.min()) - 0.5, float(cc.max()) + 0.5
    for r, c in extra_rc:
        lo_r, hi_r = min(lo_r, r), max(hi_r, r)
        lo_c, hi_c = min(lo_c, c), max(hi_c, c)
    extent = max((hi_r - lo_r) * row_mm, (hi_c - lo_c) * col_mm)
    fov = max(MIN_FOV_MM, extent + 2 * max(MARGIN_MIN_MM, MARGIN_FRACTION * extent))
    fov = min(fov, n_rows * row_mm, n_cols * col_mm)

    def span(lo: float, hi: float, size_mm: float, step: float, n: int) -> tuple[int, int]:
        length = max(1, min(n, round(size_mm / step)))
        start = round((lo + hi + 1.0) / 2.0 - length / 2.0)  # centre, in edge units
        start = min(max(start, 0), n - length)
        return int(start), int(start + length)

    r0, r1 = span(lo_r, hi_r, fov, row_mm, n_rows)
    c0, c1 = span(lo_c, hi_c, fov, col_mm, n_cols)
    return _Window(k, r0, r1, c0, c1, *_display_turn(grid.affine))


def _to_panel(
    w: _Window, rc: tuple[float, float], scale: tuple[float, float]
) -> tuple[float, float]:
    """A continuous (row, column) index of the grid -> (x, y) pixel of the panel."""
    r = rc[0] + 0.5 - w.r0  # edge units inside the crop
    c = rc[1] + 0.5 - w.c0
    h, wd = w.r1 - w.r0, w.c1 - w.c0
    if w.transpose:
        r, c = c, r
        h, wd = wd, h
    if w.flip_rows:
        r = h - r
    if w.flip_cols:
        c = wd - c
    return (c * scale[1] - 0.5, r * scale[0] - 0.5)


def _nearest(a: np.ndarray, size: int) -> np.ndarray:
    """Nearest-neighbour resize of a 2D array to ``size`` x ``size``."""
    rows = np.minimum((np.arange(size) + 0.5) * a.shape[0] / size, a.shape[0] - 1e-9)
    cols = np.minimum((np.arange(size) + 0.5) * a.shape[1] / size, a.shape[1] - 1e-9)
    return a[rows.astype(int)[:, None], cols.astype(int)[None, :]]


def _bilinear(a: np.ndarray, size: int) -> np.ndarray:
    img = Image.fromarray(np.ascontiguousarray(a, dtype=np.float32))
    return np.asarray(img.resize((size, size), Image.Resampling.BILINEAR), dtype=np.float32)


def _erode(mask: np.ndarray) -> np.ndarray:
    """Binary erosion by the 4-neighbourhood (outside the array counts as background)."""
    out = mask.copy()
    out[1:, :] &= mask[:-1, :]
    out[:-1, :] &= mask[1:, :]
    out[:, 1:] &= mask[:, :-1]
    out[:, :-1] &= mask[:, 1:]
    out[0, :] = out[-1, :] = False
    out[:, 0] = out[:, -1] = False
    return out


def _boundary(mask: np.ndarray, width: int = 2) -> np.ndarray:
    inner = mask
    for _ in range(width):
        inner = _erode(inner)
    return mask & ~inner


def _ct_grey(hu: np.ndarray) -> np.ndarray:
    level, width = CT_WINDOW_HU
    return np.clip((hu - (level - width / 2.0)) / width, 0.0, 1.0)


def _label(draw: ImageDraw.ImageDraw, xy: tuple[float, float], text: str, size: int = 13) -> None:
    """White text on a black box."""
    font = _font(size)
    box = draw.textbbox(xy, text, font=font)
    draw.rectangle((box[0] - 2, box[1] - 2, box[2] + 2, box[3] + 2), fill=(0, 0, 0))
    draw.text(xy, text, fill=_WHITE, font=font)


def _calliper(
    draw: ImageDraw.ImageDraw,
    p: tuple[float, float],
    q: tuple[float, float],
    colour: tuple[int, int, int],
) -> None:
    """A line with short perpendicular ticks at both ends."""
    draw.line([p, q], fill=colour, width=2)
    dx, dy = q[0] - p[0], q[1] - p[1]
    norm = math.hypot(dx, dy)
    if norm == 0:
        return
    tx, ty = -dy / norm * 4.0, dx / norm * 4.0
    for x, y in (p, q):
        draw.line([(x - tx, y - ty), (x + tx, y + ty)], fill=colour, width=2)


def _scale_bar(draw: ImageDraw.ImageDraw, mm_per_px: float, size: int) -> None:
    """A bar of a round length (5, 10, 20 or 50 mm) at the bottom right."""
    fov = mm_per_px * size
    length = next((v for v in (50.0, 20.0, 10.0, 5.0) if v <= fov / 4.0), 5.0)
    px = length / mm_per_px
    x1, y = size - 10, size - 12
    draw.line([(x1 - px, y), (x1, y)], fill=_WHITE, width=3)
    _label(draw, (x1 - px, y - 20), f"{length:g} mm", size=12)


def _colour_bar(draw: ImageDraw.ImageDraw, vmax: float, size: int) -> None:
    lut = (_hot_lut() * 255).astype(np.uint8)
    top, height, x = 30, 110, size - 18
    for i in range(height):
        colour = tuple(int(v) for v in lut[int(255 * (1 - i / (height - 1)))])
        draw.line([(x, top + i), (x + 8, top + i)], fill=colour)
    draw.rectangle((x - 1, top - 1, x + 9, top + height), outline=_WHITE)
    font = _font(11)
    for text, yy in ((f"{vmax:.1f}", top - 2), ("0", top + height - 10)):
        box = draw.textbbox((0, 0), text, font=font)
        _label(draw, (x - 6 - (box[2] - box[0]), yy), text, size=11)


def _fmt_mm(value: Any) -> str | None:
    return f"{float(value):.1f} mm" if _finite(value) and float(value) > 0 else None


def _alt_text(lesion: LesionRecord, k: int, modality: str | None, has_ct: bool) -> str:
    organ = _ORGAN_WORDS.get(lesion.organ, lesion.organ.replace("_", " "))
    where = f"{organ} lesion {lesion.name}".strip()
    facts = []
    ld, sa = _fmt_mm(lesion.ld_mm), _fmt_mm(lesion.sa_mm)
    if ld:
        facts.append(f"long axis {ld}")
    if sa:
        facts.append(f"short axis {sa}")
    if not ld and not sa:
        facts.append("axes not measured: contour only")
    suv_max = _as_float(lesion.suv_max)
    if modality is not None and suv_max is not None:
        facts.append(f"SUVmax {suv_max:.1f}")
    kind = "SPECT" if modality == "NM" else "PET"
    if has_ct and modality is not None:
        head = f"Axial CT and fused {kind} (SUV) through {where}"
    elif has_ct:
        head = f"Axial CT through {where}"
    else:
        head = f"Axial {kind} (SUV) through {where}"
    tail = "" if modality is not None or not has_ct else "; PET not available"
    return f"{head} ({', '.join(facts)}), slice {k}{tail}"


def _render(
    lesion: LesionRecord,
    k: int,
    grid: Volume,
    labels: np.ndarray,
    ct: Volume | None,
    pet_on: Any,
    liver_ref: float | None,
) -> tuple[Image.Image, dict[str, Any], bool]:
    """One lesion's picture, its geometry record, and whether a PET panel was drawn."""
    mask2d = labels[k] == lesion.lesion_id
    axes: dict[str, tuple[tuple[float, float], tuple[float, float]] | None] = {}
    for tag, pts in (("ld", lesion.ld_endpoints_mm), ("sa", lesion.sa_endpoints_mm)):
        ends = _axis_points(pts)
        if ends is None:
            axes[tag] = None
            continue
        idx = grid.lps_to_index(np.asarray(ends))
        axes[tag] = ((float(idx[0, 1]), float(idx[0, 2])), (float(idx[1, 1]), float(idx[1, 2])))
    extra = [p for a in axes.values() if a is not None for p in a]
    w = _window(grid, k, mask2d, extra)
    crop = grid.crop([(k, k + 1), (w.r0, w.r1), (w.c0, w.c1)])
    rows, cols = w.r1 - w.r0, w.c1 - w.c0
    _, row_mm, col_mm = grid.spacing
    if w.transpose:
        rows, cols, row_mm, col_mm = cols, rows, col_mm, row_mm
    scale = (PANEL_PX / rows, PANEL_PX / cols)  # panel px per crop px (rows, columns)
    mm_per_px = col_mm / scale[1]
    size = PANEL_PX

    mask = _nearest(_turn(mask2d[w.r0 : w.r1, w.c0 : w.c1], w), size)
    edge = _boundary(mask)
    grey: np.ndarray | None = None
    if ct is not None:
        hu = np.asarray(ct.array[k, w.r0 : w.r1, w.c0 : w.c1], dtype=np.float32)
        grey = _ct_grey(_bilinear(_turn(hu, w), size))

    suv_max_scale: float | None = None
    fused: np.ndarray | None = None
    pet = pet_on(crop) if pet_on is not None else None
    if pet is not None:
        values = np.nan_to_num(np.asarray(pet.array[0], dtype=np.float32), nan=0.0)
        suv = _bilinear(_turn(values, w), size)
        lesion_max = _as_float(lesion.suv_max)
        top = [lesion_max] if lesion_max is not None else []
        if liver_ref is not None:
            top.append(2.0 * liver_ref)
        vmax = max(top) if top else float(np.nanmax(suv))
        vmax = max(vmax, 1.0)
        suv_max_scale = vmax
        norm = np.clip(suv / vmax, 0.0, 1.0)
        colour = _hot_lut()[np.round(norm * 255).astype(np.intp)]
        if grey is None:
            fused = colour
        else:
            alpha = (PET_ALPHA * np.clip(norm / 0.1, 0.0, 1.0))[..., None]
            fused = grey[..., None] * (1.0 - alpha) + colour * alpha

    panels: list[tuple[str, np.ndarray, bool]] = []
    if grey is not None:
        panels.append(("CT  W400 L40", np.repeat(grey[..., None], 3, axis=2), True))
    if fused is not None:
        title = "PET SUV" if grey is None else "PET SUV (fused on CT)"
        panels.append((title, fused, grey is None))
    canvas = Image.new("RGB", (size * len(panels), size))
    for n, (title, rgb, with_axes) in enumerate(panels):
        arr = np.round(rgb * 255).astype(np.uint8)
        arr[edge] = CONTOUR_RGB
        panel = Image.fromarray(arr)
        pdraw = ImageDraw.Draw(panel)
        if with_axes:
            for tag, line_rgb in (("sa", SA_RGB), ("ld", LD_RGB)):
                ends = axes[tag]
                if ends is not None:
                    _calliper(
                        pdraw,
                        _to_panel(w, ends[0], scale),
                        _to_panel(w, ends[1], scale),
                        line_rgb,
                    )
            _scale_bar(pdraw, mm_per_px, size)
            _label(pdraw, (4, size / 2 - 8), "R", size=12)
            _label(pdraw, (size - 14, size / 2 - 8), "L", size=12)
            facts = [lesion.name]
            for tag, value in (("LD", lesion.ld_mm), ("SA", lesion.sa_mm)):
                text = _fmt_mm(value)
                if text and axes[tag.lower()] is not None:
                    facts.append(f"{tag} {text}")
            _label(pdraw, (6, size - 22), "  ".join(facts), size=12)
        if suv_max_scale is not None and n == len(panels) - 1:
            _colour_bar(pdraw, suv_max_scale, size)
        _label(pdraw, (6, 5), title, size=13)
        canvas.paste(panel, (n * size, 0))

    def ends_px(tag: str) -> list[list[float]] | None:
        ends = axes[tag]
        if ends is None:
            return None
        return [list(_to_panel(w, e, scale)) for e in ends]

    geometry = {
        "crop_rows": [w.r0, w.r1],
        "crop_cols": [w.c0, w.c1],
        "transpose": w.transpose,
        "flip_rows": w.flip_rows,
        "flip_cols": w.flip_cols,
        "panel_px": size,
        "mm_per_px": mm_per_px,
        "ld_px": ends_px("ld"),
        "sa_px": ends_px("sa"),
        "suv_scale_max": suv_max_scale,
    }
    return canvas, geometry, fused is not None


def render_key_images(
    m: StudyMeasurement,
    out_dir: str | Path,
    *,
    lesion_ids: Sequence[int] | None = None,
) -> list[dict[str, Any]]:
    """Write one key image per lesion (``lesion_<id>.png``) and ``index.json``.

    Parameters
    ----------
    m : StudyMeasurement
        What :func:`netvolume.measure.measure_study` returned: its ``lesion_labels`` and
        ``inputs`` (the loaded CT and PET) are used, so this runs in the same process as
        the measurement.
    out_dir : str or Path
        Folder to write into (created). Every file is written through a temporary file
        and a rename.
    lesion_ids : sequence of int, optional
        The lesions to draw. Default: every lesion with a long axis (``ld_mm > 0``).

    Returns
    -------
    list of dict
        One per image, in lesion order: ``lesion_id``, ``name``, ``organ``, ``file`` (the
        PNG's name, relative to ``out_dir``), ``slice_index`` (axial slice of the grid
        drawn), ``alt`` (alt text), ``width`` and ``height`` (pixels), ``pet`` (whether
        a PET panel was drawn) and ``geometry``: ``crop_rows`` / ``crop_cols`` (the
        grid's index range shown), ``transpose`` / ``flip_rows`` / ``flip_cols`` (how the
        crop was turned for display), ``panel_px``, ``mm_per_px`` (mm per panel pixel),
        ``ld_px`` / ``sa_px`` (the callipers' end points as panel pixel (x, y), None when
        not drawn) and ``suv_scale_max`` (top of the SUV scale, g/mL). The same list is
        written to ``out_dir/index.json``.

    Raises
    ------
    ReportInputError
        The measurement carries no lesion label map or no images (a record rebuilt from
        ``study.json``), the CT and the label map are on different grids, or a lesion id
        asked for is not in the study.
    """
    out = Path(out_dir)
    labels_vol = m.lesion_labels
    inputs = m.inputs
    where = m.study_dir or "the study"
    if labels_vol is None or inputs is None:
        raise ReportInputError(
            f"the measurement of {where} carries no lesion label map or no images",
            files=[m.study_dir] if m.study_dir else [],
            hint="render key images from the StudyMeasurement that measure_study "
            "returned, in the same process",
        )
    ct = inputs.ct
    if ct is not None and ct.spatial_shape != labels_vol.spatial_shape:
        raise ReportInputError(
            f"the CT {ct.spatial_shape} and the lesion label map "
            f"{labels_vol.spatial_shape} are not on one grid",
            files=[m.study_dir] if m.study_dir else [],
            hint="pass the StudyMeasurement measure_study returned, unchanged",
        )
    if ct is None and inputs.pet_suv is None:
        raise ReportInputError(
            f"{where} has neither a CT nor a PET in SUV: nothing to draw",
            files=[m.study_dir] if m.study_dir else [],
            hint="key images need the CT or the PET (SUV) the lesions were measured on",
        )
    grid = ct if ct is not None else labels_vol
    labels = np.asarray(labels_vol.array)
    pet_series = inputs.pet_series
    has_suv = inputs.pet_suv is not None
    modality = (pet_series.modality if pet_series is not None else "PT") if has_suv else None
    liver = m.references.get("liver")
    liver_ref = liver.suv_mean if liver is not None and _finite(liver.suv_mean) else None

    by_id = {les.lesion_id: les for les in m.lesions}
    if lesion_ids is None:
        chosen = [les for les in m.lesions if _finite(les.ld_mm) and les.ld_mm > 0]
    else:
        unknown = [i for i in lesion_ids if i not in by_id]
        if unknown:
            raise ReportInputError(
                f"lesion ids {unknown} are not in the study (it has "
                f"{sorted(by_id) or 'no lesions'})",
                files=[m.study_dir] if m.study_dir else [],
                tag="lesion_ids",
            )
        chosen = [by_id[i] for i in dict.fromkeys(lesion_ids)]

    out.mkdir(parents=True, exist_ok=True)
    records: list[dict[str, Any]] = []
    for les in chosen:
        k = _choose_slice(les, labels)
        if k is None:
            logger.warning(
                "lesion %s of %s has no voxel in the label map: no key image", les.name, where
            )
            continue
        image, geometry, with_pet = _render(
            les, k, grid, labels, ct, inputs.pet_on if has_suv else None, liver_ref
        )
        name = f"lesion_{les.lesion_id}.png"
        with atomic_file(out / name) as tmp:
            image.save(tmp, format="PNG", compress_level=PNG_COMPRESS_LEVEL)
        records.append(
            {
                "lesion_id": int(les.lesion_id),
                "name": les.name,
                "organ": les.organ,
                "file": name,
                "slice_index": k,
                "alt": _alt_text(les, k, modality if with_pet else None, ct is not None),
                "width": image.width,
                "height": image.height,
                "pet": with_pet,
                "geometry": geometry,
            }
        )
    write_json_atomic(out / "index.json", records)
    return records

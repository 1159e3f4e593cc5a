"""The report's figures, drawn with matplotlib's object API (``Figure`` on the Agg canvas,
no pyplot and so no global state) and returned as PNG bytes.

* :func:`waterfall` - best % change of the sum of diameters per patient, bars coloured by
  the best overall response;
* :func:`spider` - % change of the sum of diameters from baseline over days, one line per
  patient, one patient highlighted (or all coloured by response);
* :func:`km_plot` - Kaplan-Meier curve of progression-free survival with its pointwise
  confidence band and censoring marks;
* :func:`volume_plot` - one patient's target, total and liver tumour volumes and liver
  tumour burden over days.

Each figure is about 100 dpi and a few tens of kB. The PNGs carry no software version or
time stamp, so the same data give the same bytes with one matplotlib.
"""

from __future__ import annotations

import io
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from netvolume.outcomes.survival import KaplanMeier

__all__ = [
    "DPI",
    "RESPONSE_COLOURS",
    "PatientSeries",
    "km_plot",
    "response_colour",
    "spider",
    "volume_plot",
    "waterfall",
]

#: Resolution of every figure (dots per inch).
DPI = 100
#: Colour of each RECIST response (and of an unknown one: ``"?"``).
RESPONSE_COLOURS: dict[str, str] = {
    "CR": "#1b7837",
    "PR": "#7fbf7b",
    "SD": "#f1a340",
    "NON_CR_NON_PD": "#4393c3",
    "PD": "#b2182b",
    "NE": "#9e9e9e",
    "?": "#bdbdbd",
}
#: RECIST 1.1 thresholds drawn as guides: PR at -30 %, PD at +20 % (of the nadir).
PR_PCT, PD_PCT = -30.0, 20.0


def response_colour(response: str | None) -> str:
    """Colour of a response code (grey for an unknown or missing one)."""
    return RESPONSE_COLOURS.get(response or "?", RESPONSE_COLOURS["?"])


@dataclass(frozen=True)
class PatientSeries:
    """One patient's course for the spider plot: days from baseline and % change of the
    sum of diameters from baseline (0 at baseline), and the best overall response."""

    label: str
    days: tuple[float, ...]
    pct: tuple[float, ...]
    response: str | None


def _png(fig: Figure) -> bytes:
    FigureCanvasAgg(fig)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI, metadata={"Software": None})
    return buf.getvalue()


def _figure(width_in: float, height_in: float) -> Figure:
    fig = Figure(figsize=(width_in, height_in), dpi=DPI, layout="constrained")
    fig.patch.set_facecolor("white")
    return fig


def _legend_for(responses: Sequence[str | None]) -> list[Patch]:
    order = [r for r in RESPONSE_COLOURS if r in {x or "?" for x in responses}]
    names = {"?": "not assessed", "NON_CR_NON_PD": "non-CR/non-PD"}
    return [Patch(color=RESPONSE_COLOURS[r], label=names.get(r, r)) for r in order]


def waterfall(entries: Sequence[tuple[str, float, str | None]]) -> bytes:
    """Waterfall plot of the best change of the sum of diameters.

    Parameters
    ----------
    entries : sequence of (label, pct, response)
        Patient label, best (lowest) % change of the SOD from baseline (%), and best
        overall response (colours the bar).

    Returns
    -------
    bytes
        The PNG.
    """
    ordered = sorted(entries, key=lambda e: -e[1])
    n = len(ordered)
    fig = _figure(max(4.5, min(11.0, 2.0 + 0.35 * n)), 3.6)
    ax = fig.add_subplot()
    xs = list(range(n))
    ax.bar(
        xs,
        [e[1] for e in ordered],
        color=[response_colour(e[2]) for e in ordered],
        edgecolor="#333333",
        linewidth=0.5,
    )
    for y, text in ((PD_PCT, "+20 %"), (PR_PCT, "-30 %")):
        ax.axhline(y, color="#555555", linestyle="--", linewidth=0.8)
        ax.annotate(
            text,
            (1.0, y),
            xycoords=("axes fraction", "data"),
            xytext=(2, 0),
            textcoords="offset points",
            va="center",
            fontsize=7,
        )
    ax.axhline(0.0, color="black", linewidth=0.8)
    ax.set_xticks(xs, [e[0] for e in ordered], rotation=60, ha="right", fontsize=7)
    ax.set_xlabel("Patient (sorted by best change)")
    ax.set_ylabel("Best change of SOD from baseline (%)")
    low = min([e[1] for e in ordered] + [PR_PCT]) - 10
    high = max([e[1] for e in ordered] + [PD_PCT]) + 10
    ax.set_ylim(max(low, -105.0), high)
    ax.set_xlim(-0.7, n - 0.3)
    ax.legend(
        handles=_legend_for([e[2] for e in ordered]),
        fontsize=7,
        loc="upper right",
        title="Best overall response",
        title_fontsize=7,
    )
    ax.grid(axis="y", linewidth=0.3, alpha=0.6)
    return _png(fig)


def spider(series: Sequence[PatientSeries], *, highlight: str | None = None) -> bytes:
    """Spider plot: % change of the sum of diameters from baseline over days.

    Parameters
    ----------
    series : sequence of PatientSeries
        One per patient (days from baseline, % change, best overall response).
    highlight : str, optional
        Label of the patient drawn thick in its response colour; the others thin grey.
        None: every patient in its response colour.

    Returns
    -------
    bytes
        The PNG.
    """
    fig = _figure(6.0, 3.6)
    ax = fig.add_subplot()
    ax.axhline(0.0, color="black", linewidth=0.8)
    for y in (PD_PCT, PR_PCT):
        ax.axhline(y, color="#555555", linestyle="--", linewidth=0.8)
    front: list[PatientSeries] = []
    for s in series:
        if highlight is not None and s.label == highlight:
            front.append(s)
            continue
        colour = "#c8c8c8" if highlight is not None else response_colour(s.response)
        ax.plot(s.days, s.pct, color=colour, linewidth=1.0, marker="o", markersize=2.5)
    for s in front:
        ax.plot(
            s.days,
            s.pct,
            color=response_colour(s.response),
            linewidth=2.5,
            marker="o",
            markersize=5,
            markeredgecolor="black",
            label=s.label,
        )
    ax.set_xlabel("Days from baseline")
    ax.set_ylabel("Change of SOD from baseline (%)")
    handles: list[Any] = list(_legend_for([s.response for s in (front or series)]))
    if front:
        handles = [
            Line2D(
                [],
                [],
                color=response_colour(front[0].response),
                linewidth=2.5,
                marker="o",
                markeredgecolor="black",
                label=f"{front[0].label} ({front[0].response or 'not assessed'})",
            ),
            Line2D([], [], color="#c8c8c8", linewidth=1.0, label="other patients"),
        ]
    ax.legend(handles=handles, fontsize=7, loc="best")
    ax.grid(linewidth=0.3, alpha=0.6)
    values = [v for s in series for v in s.pct]
    if values:
        ax.set_ylim(max(min([*values, PR_PCT]) - 10, -105.0), max([*values, PD_PCT]) + 10)
    return _png(fig)


def km_plot(km: KaplanMeier, *, time_unit: str = "days") -> bytes:
    """Kaplan-Meier curve of progression-free survival.

    Parameters
    ----------
    km : KaplanMeier
        From :func:`netvolume.outcomes.survival.kaplan_meier` (times in ``time_unit``).
    time_unit : str
        Unit of the times, for the axis label.

    Returns
    -------
    bytes
        The PNG: the right-continuous step function from S(0) = 1, its pointwise
        confidence band (shaded), a ``+`` at every censoring time, the median as a dotted
        line when reached.
    """
    t = [0.0, *km.time]
    s = [1.0, *km.survival]
    lo = [1.0, *km.ci_lower]
    hi = [1.0, *km.ci_upper]
    fig = _figure(6.0, 3.6)
    ax = fig.add_subplot()
    pct = round(100 * km.conf_level)
    ax.fill_between(
        t,
        lo,
        hi,
        step="post",
        color="#4393c3",
        alpha=0.25,
        linewidth=0,
        label=f"{pct} % CI ({km.conf_type})",
    )
    ax.step(t, s, where="post", color="#2166ac", linewidth=1.8, label="PFS (Kaplan-Meier)")
    cens_t = [km.time[i] for i, c in enumerate(km.n_censored) if c > 0]
    cens_s = [km.survival[i] for i, c in enumerate(km.n_censored) if c > 0]
    if cens_t:
        ax.plot(
            cens_t,
            cens_s,
            linestyle="none",
            marker="+",
            markersize=9,
            color="black",
            markeredgewidth=1.4,
            label="censored",
        )
    if km.median is not None:
        ax.plot(
            [0, km.median, km.median],
            [0.5, 0.5, 0.0],
            color="#555555",
            linestyle=":",
            linewidth=1.0,
            label=f"median {km.median:g} {time_unit}",
        )
    ax.set_ylim(-0.02, 1.05)
    ax.set_xlim(0, max(t) * 1.05 if max(t) > 0 else 1.0)
    ax.set_xlabel(f"Time from start of treatment ({time_unit})")
    ax.set_ylabel("Progression-free probability")
    events = sum(km.n_events)
    ax.set_title(f"n = {km.n}, events = {events}", fontsize=9)
    ax.legend(fontsize=7, loc="upper right")
    ax.grid(linewidth=0.3, alpha=0.6)
    return _png(fig)


def volume_plot(
    days: Sequence[float],
    target_ml: Sequence[float | None],
    total_ml: Sequence[float | None],
    liver_tumour_ml: Sequence[float | None],
    burden_pct: Sequence[float | None],
) -> bytes:
    """One patient's volumes over time (left, mL) and liver tumour burden (right, %).

    Parameters
    ----------
    days : sequence of float
        Days from baseline of each time point.
    target_ml, total_ml, liver_tumour_ml : sequence of float or None
        Summed volume of the target lesions, of every lesion, of the liver lesions (mL);
        None where not available.
    burden_pct : sequence of float or None
        Liver tumour volume / liver volume x 100 (%).

    Returns
    -------
    bytes
        The PNG.
    """
    fig = _figure(7.0, 2.8)
    left, right = fig.subplots(1, 2)

    def line(ax: Any, values: Sequence[float | None], label: str, style: str, colour: str) -> None:
        pts = [(d, v) for d, v in zip(days, values, strict=True) if v is not None]
        if pts:
            ax.plot(
                [p[0] for p in pts],
                [p[1] for p in pts],
                style,
                color=colour,
                label=label,
                markersize=4,
                linewidth=1.5,
            )

    line(left, target_ml, "target lesions", "o-", "#2166ac")
    line(left, total_ml, "all lesions", "s--", "#762a83")
    line(left, liver_tumour_ml, "liver lesions", "^:", "#b35806")
    left.set_xlabel("Days from baseline")
    left.set_ylabel("Tumour volume (mL)")
    left.set_ylim(bottom=0)
    if left.get_legend_handles_labels()[0]:
        left.legend(fontsize=7, loc="best")
    left.grid(linewidth=0.3, alpha=0.6)
    line(right, burden_pct, "liver tumour burden", "o-", "#b35806")
    right.set_xlabel("Days from baseline")
    right.set_ylabel("Liver tumour burden (%)")
    right.set_ylim(bottom=0)
    right.grid(linewidth=0.3, alpha=0.6)
    finite = [v for v in burden_pct if v is not None and math.isfinite(v)]
    if not finite:
        right.text(0.5, 0.5, "not available", transform=right.transAxes, ha="center")
    return _png(fig)

"""The static HTML report of a batch run: ``OUT/report/``.

:func:`write_report` reads a batch output folder (layout in ``docs/report.md``) and
writes::

    OUT/report/index.html               the cohort page
    OUT/report/patients/<key>.html      one page per patient
    OUT/report/img/...                  the figures and the target lesions' key images
    OUT/report/report.json              what was written (marks the folder as a report)

Plain HTML with inline CSS: no JavaScript, no resource from outside the folder (a
Content-Security-Policy in every page forbids them), relative links only, so that the
report opens from disk (``file://``) and can be copied or zipped as a whole. Every text
read from the batch's files is HTML-escaped. The report is built in ``OUT/.report.tmp-<pid>``
and renamed onto ``OUT/report`` when complete, so a reader never sees half a report.
"""

from __future__ import annotations

import hashlib
import html
import math
import os
import re
import shutil
import urllib.parse
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from netvolume._version import __version__
from netvolume.assess.recist import natural_key
from netvolume.errors import InputPathError
from netvolume.report._common import write_bytes_atomic, write_json_atomic
from netvolume.report._read import BatchData, Failure, PatientData, read_batch

if TYPE_CHECKING:  # matplotlib is imported only when a report is written, not by the
    # key images of the per-study worker
    from netvolume.report import figures

__all__ = ["REPORT_MARKER", "write_report"]

#: The file that marks a folder as a report written here (``OUT/report`` is replaced
#: only when it holds it, or is empty).
REPORT_MARKER = "report.json"

_SAFE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,79}$")
_SOURCE_RE = re.compile(r"^(?P<study>.+) lesion (?P<lesion>\d+)$")
_RESPONSE_WORDS = {"NON_CR_NON_PD": "non-CR/non-PD", "NE": "NE (not evaluable)"}
_RESPONSE_CLASSES = ("CR", "PR", "SD", "PD", "NE", "NON_CR_NON_PD")
_VERDICT_WORDS = {
    "eligible": "eligible",
    "not_eligible": "not eligible",
    "undetermined": "undetermined",
}

_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,Helvetica,Arial,sans-serif;
margin:0;color:#1d1d1d;background:#fafafa;line-height:1.4}
header{background:#22313f;color:#fff;padding:0.8em 1.5em}
header h1{margin:0.2em 0;font-size:1.5em}
header a{color:#cfe3ff}
nav ul{list-style:none;margin:0;padding:0;display:flex;flex-wrap:wrap;gap:1em}
main{padding:0.5em 1.5em 2em;max-width:1400px}
section{margin:1.5em 0}
h2{border-bottom:2px solid #22313f;padding-bottom:0.2em}
table{border-collapse:collapse;margin:0.5em 0;background:#fff;font-size:0.9em}
caption{text-align:left;font-weight:bold;padding:0.3em 0}
th,td{border:1px solid #c8c8c8;padding:0.25em 0.5em;vertical-align:top}
th{background:#eef1f4;text-align:left}
th[scope=row]{white-space:nowrap}
td.num{text-align:right;font-variant-numeric:tabular-nums}
td.nw{white-space:nowrap}
.scroll{overflow-x:auto}
figure{margin:0.8em 0;display:inline-block;vertical-align:top;background:#fff;
border:1px solid #ddd;padding:0.5em}
figcaption{font-size:0.85em;max-width:620px;color:#444}
img{max-width:100%;height:auto}
.note{background:#fff8e1;border-left:4px solid #f1a340;padding:0.4em 0.8em;margin:0.5em 0}
.badge{display:inline-block;padding:0 0.45em;border-radius:3px;color:#fff;font-weight:bold;
font-size:0.85em}
.r-CR{background:#1b7837}.r-PR{background:#4d9a4d}.r-SD{background:#b86e00}
.r-PD{background:#b2182b}.r-NE,.r-none{background:#767676}.r-NON_CR_NON_PD{background:#2f74a8}
.v-eligible{background:#d9f0d3}.v-not_eligible{background:#f8d0cc}
.v-undetermined{background:#fdebb3}.v-missing{background:#eeeeee;color:#555}
.failed{color:#b2182b;font-weight:bold}
pre.msg{white-space:pre-wrap;margin:0;font-size:0.9em;max-width:60em}
dl.facts{display:grid;grid-template-columns:max-content auto;gap:0.2em 1em}
dl.facts dt{font-weight:bold}
dl.facts dd{margin:0}
td.target{font-weight:bold}
details summary{cursor:pointer}
footer{color:#666;font-size:0.8em;padding:1em 1.5em}
"""

#: Eligibility reasons longer than this are folded (``<details>``) in the matrix.
_SHORT_REASON = 60
#: Table cells up to this many characters do not wrap (dates, numbers, codes).
_NOWRAP_CHARS = 24

#: Content-Security-Policy of every page: no script, no frame, no font, no request at all
#: but the report's own images (``file:`` for browsers that give each local file its own
#: origin) and the inline style sheet.
_CSP = (
    "default-src 'none'; img-src 'self' file:; style-src 'unsafe-inline'; "
    "base-uri 'none'; form-action 'none'"
)


class Markup(str):
    """HTML that is inserted as is (already escaped or built here)."""

    __slots__ = ()


def esc(value: Any) -> Markup:
    """HTML-escape any value (quotes too); :class:`Markup` passes unchanged."""
    if isinstance(value, Markup):
        return value
    return Markup(html.escape("" if value is None else str(value), quote=True))


def _num(value: float | None, digits: int = 1, unit: str = "", *, sign: bool = False) -> str:
    if value is None or not math.isfinite(value):
        return "—"
    text = f"{value:+.{digits}f}" if sign else f"{value:.{digits}f}"
    return f"{text} {unit}".rstrip() if unit else text


def _slug(key: str) -> str:
    """A file name for a key: the key when it is plain, else a cleaned one + a hash."""
    if _SAFE.match(key):
        return key
    clean = re.sub(r"[^A-Za-z0-9._-]", "_", key)[:60].lstrip("._") or "x"
    return f"{clean}-{hashlib.sha256(key.encode()).hexdigest()[:8]}"


def _href(*parts: str) -> str:
    return "/".join(urllib.parse.quote(p) for p in parts)


def _word(code: str | None) -> str:
    """A response code as shown in a table cell ("—" when there is none)."""
    if not code:
        return "—"
    return "non-CR/non-PD" if code == "NON_CR_NON_PD" else code


def _response(code: str | None) -> Markup:
    if not code:
        return Markup('<span class="badge r-none">not assessed</span>')
    cls = code if code in _RESPONSE_CLASSES else "none"
    return Markup(f'<span class="badge r-{esc(cls)}">{esc(_RESPONSE_WORDS.get(code, code))}</span>')


def _table(
    headers: Sequence[str],
    rows: Iterable[Sequence[Any]],
    *,
    caption: str,
    numeric: Sequence[int] = (),
    row_header: bool = True,
) -> Markup:
    """A table: every cell escaped unless it is :class:`Markup`; the first cell of each
    row is its header cell when ``row_header``."""
    out = ['<div class="scroll"><table>', f"<caption>{esc(caption)}</caption>", "<thead><tr>"]
    out += [f'<th scope="col">{esc(h)}</th>' for h in headers]
    out.append("</tr></thead><tbody>")
    for row in rows:
        out.append("<tr>")
        for i, cell in enumerate(row):
            if i == 0 and row_header:
                out.append(f'<th scope="row">{esc(cell)}</th>')
            else:
                classes = ["num"] if i in numeric else []
                if not isinstance(cell, Markup) and len(str(cell)) <= _NOWRAP_CHARS:
                    classes.append("nw")
                cls = f' class="{" ".join(classes)}"' if classes else ""
                out.append(f"<td{cls}>{esc(cell)}</td>")
        out.append("</tr>")
    out.append("</tbody></table></div>")
    return Markup("".join(out))


def _figure(src: str, alt: str, caption: str, size: tuple[int, int] | None = None) -> Markup:
    dims = f' width="{size[0]}" height="{size[1]}"' if size else ""
    return Markup(
        f'<figure><img src="{esc(src)}" alt="{esc(alt)}"{dims}>'
        f"<figcaption>{esc(caption)}</figcaption></figure>"
    )


def _note(text: str) -> Markup:
    return Markup(f'<p class="note">{esc(text)}</p>')


def _page(title: str, nav: Sequence[tuple[str, str]], body: Sequence[str]) -> bytes:
    links = "".join(f'<li><a href="{esc(h)}">{esc(t)}</a></li>' for h, t in nav)
    doc = (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f'<meta http-equiv="Content-Security-Policy" content="{_CSP}">\n'
        f"<title>{esc(title)}</title>\n<style>{_CSS}</style>\n</head>\n<body>\n"
        f'<header><nav aria-label="sections"><ul>{links}</ul></nav>'
        f"<h1>{esc(title)}</h1></header>\n<main>\n" + "\n".join(body) + "\n</main>\n"
        f"<footer>Written by netvolume {esc(__version__)} from the batch output folder. "
        "Patients are shown by their pseudonymous key (and trial code where given); "
        "no image or table here holds a name, a hospital ID or a birth date.</footer>\n"
        "</body>\n</html>\n"
    )
    return doc.encode("utf-8")


def _png_size(data: bytes) -> tuple[int, int] | None:
    if data[:8] != b"\x89PNG\r\n\x1a\n" or len(data) < 24:
        return None
    return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")


# ------------------------------------------------------------------------- the course
@dataclass(frozen=True)
class _Course:
    """One patient's response summary, from the assessment (and outcomes.csv)."""

    days: tuple[float, ...]
    pct: tuple[float, ...]
    bor: str | None
    best_pct: float | None
    n_targets: int | None


def _course(p: PatientData) -> _Course:
    days: list[float] = []
    pct: list[float] = []
    for row in p.timepoints:
        if row["role"] == "baseline":
            days.append(float(row["days_from_baseline"] or 0.0))
            pct.append(0.0)
        elif row["role"] == "follow_up" and row["pct_from_baseline"] is not None:
            days.append(float(row["days_from_baseline"]))
            pct.append(float(row["pct_from_baseline"]))
    follow = [
        r["pct_from_baseline"]
        for r in p.timepoints
        if r["role"] == "follow_up" and r["pct_from_baseline"] is not None
    ]
    a = p.assessment
    return _Course(
        tuple(days),
        tuple(pct),
        str(a.get("best_overall_response") or "") or None if a else None,
        min(follow) if follow else None,
        len(a["targets"]) if a else None,
    )


# ------------------------------------------------------------------------- the builder
class _Builder:
    """Writes every page and figure of one report into ``dest``."""

    def __init__(self, batch: BatchData, dest: Path) -> None:
        from netvolume.report import figures

        self.fig = figures
        self.batch = batch
        self.dest = dest
        self.files: list[str] = []
        self.courses = {p.key: _course(p) for p in batch.patients}
        self.slugs = {p.key: _slug(p.key) for p in batch.patients}

    # -- files
    def _write(self, rel: str, data: bytes) -> str:
        write_bytes_atomic(self.dest / rel, data)
        self.files.append(rel)
        return rel

    def _bor(self, key: str) -> str | None:
        """The best overall response: the assessment's, else ``tables/outcomes.csv``'s."""
        if self.courses[key].bor:
            return self.courses[key].bor
        o = (self.batch.outcomes or {}).get(key)
        return o.best_overall_response or None if o is not None else None

    def _best_pct(self, key: str) -> float | None:
        """Best (lowest) % change of the SOD: the assessment's, else the outcomes'."""
        if self.courses[key].best_pct is not None:
            return self.courses[key].best_pct
        o = (self.batch.outcomes or {}).get(key)
        return o.best_sod_change_pct if o is not None else None

    def _series(self) -> list[figures.PatientSeries]:
        return [
            self.fig.PatientSeries(p.key, c.days, c.pct, self._bor(p.key))
            for p in self.batch.patients
            if len((c := self.courses[p.key]).days) >= 1
        ]

    def build(self) -> list[str]:
        series = self._series()
        for p in self.batch.patients:
            self._write(f"patients/{self.slugs[p.key]}.html", self._patient_page(p, series))
        self._write("index.html", self._cohort_page(series))
        return self.files

    # -- cohort page
    def _cohort_page(self, series: list[figures.PatientSeries]) -> bytes:
        b = self.batch
        body: list[str] = [self._overview()]
        body.append(self._patients_table())
        body.append(self._waterfall())
        body.append(self._spider_cohort(series))
        body.append(self._pfs())
        body.append(self._eligibility())
        body.append(self._failures_section(b.failures, cohort=True))
        nav = [
            ("#overview", "Overview"),
            ("#patients", "Patients"),
            ("#waterfall", "Waterfall"),
            ("#spider", "Spider"),
            ("#pfs", "PFS"),
            ("#eligibility", "Eligibility"),
            ("#failures", "Failures"),
        ]
        return _page(f"Batch report: {b.root.name}", nav, body)

    def _overview(self) -> Markup:
        b = self.batch
        n_ok = sum(1 for p in b.patients if p.status == "ok")
        n_failed = sum(1 for p in b.patients if p.status == "failed")
        n_studies = sum(len(p.studies) for p in b.patients)
        tally: dict[str, int] = {}
        for p in b.patients:
            bor = self._bor(p.key)
            if bor:
                tally[bor] = tally.get(bor, 0) + 1
        out = ['<section id="overview"><h2>Overview</h2><dl class="facts">']
        facts = [
            ("Patients", f"{len(b.patients)} ({n_ok} ok, {n_failed} failed)"),
            ("Studies measured", str(n_studies)),
            (
                "Best overall response",
                ", ".join(f"{k}: {v}" for k, v in sorted(tally.items())) or "none assessed",
            ),
            ("Failures", "table absent" if b.failures is None else str(len(b.failures))),
        ]
        out += [f"<dt>{esc(k)}</dt><dd>{esc(v)}</dd>" for k, v in facts]
        out.append("</dl>")
        if b.outcomes is None:
            out.append(
                _note(
                    "No clinical outcomes: tables/outcomes.csv is absent (the batch was run "
                    "without clinical facts), so there is no progression-free survival; the "
                    "waterfall and spider plots use the imaging assessments."
                )
            )
        if b.eligibility is None:
            out.append(
                _note(
                    "No eligibility: the eligibility/ folder is absent (the batch was run "
                    "without clinical facts or without protocols)."
                )
            )
        out += [_note(n) for n in b.notes]
        out.append("</section>")
        return Markup("".join(out))

    def _patients_table(self) -> Markup:
        rows = []
        for p in self.batch.patients:
            link = Markup(
                f'<a href="{esc(_href("patients", self.slugs[p.key] + ".html"))}">{esc(p.key)}</a>'
            )
            o = (self.batch.outcomes or {}).get(p.key)
            if o is None or o.pfs_days is None:
                pfs = "—" if o is None else "not evaluable"
            else:
                pfs = f"{o.pfs_days:g} ({'event' if o.pfs_event else 'censored'})"
            status = (
                Markup('<span class="failed">failed</span>') if p.status == "failed" else p.status
            )
            c = self.courses[p.key]
            rows.append(
                [
                    link,
                    p.clinical_id or "—",
                    "—" if p.n_studies is None else str(p.n_studies),
                    p.first_date or "—",
                    p.last_date or "—",
                    status,
                    "—" if c.n_targets is None else str(c.n_targets),
                    _response(self._bor(p.key)),
                    _num(self._best_pct(p.key), 1, "%", sign=True),
                    pfs,
                ]
            )
        headers = [
            "Patient",
            "Clinical ID",
            "Studies",
            "First study",
            "Last study",
            "Status",
            "Target lesions",
            "Best overall response",
            "Best SOD change",
            "PFS (days)",
        ]
        table = _table(headers, rows, caption="Patients of the batch", numeric=(2, 6, 8))
        return Markup(f'<section id="patients"><h2>Patients</h2>{table}</section>')

    def _waterfall(self) -> Markup:
        entries = [
            (p.key, pct, self._bor(p.key))
            for p in self.batch.patients
            if (pct := self._best_pct(p.key)) is not None
        ]
        head = '<section id="waterfall"><h2>Waterfall: best change of the sum of diameters</h2>'
        if not entries:
            return Markup(
                head + _note("No patient has a follow-up with a sum of diameters.") + "</section>"
            )
        rel = self._write("img/waterfall.png", self.fig.waterfall(entries))
        ordered = sorted(entries, key=lambda e: -e[1])
        alt = "Waterfall plot of the best change of the sum of target diameters per patient: " + (
            "; ".join(f"{k} {pct:+.1f} % ({bor or 'not assessed'})" for k, pct, bor in ordered)
        )
        fig = _figure(
            rel,
            alt,
            f"Best (lowest) change of the sum of target lesion diameters from baseline per "
            f"patient (%), bars coloured by best overall response; dashed lines at -30 % "
            f"(PR) and +20 % (PD). {len(entries)} patients (from the assessments, else "
            "tables/outcomes.csv).",
        )
        return Markup(head + fig + "</section>")

    def _spider_cohort(self, series: list[figures.PatientSeries]) -> Markup:
        head = '<section id="spider"><h2>Spider plot</h2>'
        if not any(len(s.days) > 1 for s in series):
            return Markup(
                head + _note("No patient has a follow-up with a sum of diameters.") + "</section>"
            )
        rel = self._write("img/spider.png", self.fig.spider(series))
        alt = (
            "Spider plot of the change of the sum of target diameters from baseline over days "
            f"for {len(series)} patients, coloured by best overall response"
        )
        fig = _figure(
            rel,
            alt,
            "Change of the sum of target lesion diameters from baseline (%) against days "
            "from baseline, one line per patient coloured by best overall response.",
        )
        return Markup(head + fig + "</section>")

    def _pfs(self) -> Markup:
        head = '<section id="pfs"><h2>Progression-free survival</h2>'
        outcomes = self.batch.outcomes
        if outcomes is None:
            return Markup(
                head
                + _note(
                    "Not available: tables/outcomes.csv is absent (no clinical facts were given)."
                )
                + "</section>"
            )
        evaluable = [o for o in outcomes.values() if o.pfs_days is not None]
        if not evaluable:
            return Markup(
                head
                + _note("No patient is evaluable for PFS (pfs_days empty for all).")
                + "</section>"
            )
        from netvolume.outcomes.survival import kaplan_meier

        km = kaplan_meier(
            [float(o.pfs_days or 0.0) for o in evaluable],
            [bool(o.pfs_event) for o in evaluable],
        )
        rel = self._write("img/pfs_km.png", self.fig.km_plot(km))
        n_events = sum(km.n_events)
        median = (
            "not reached"
            if km.median is None
            else f"{km.median:g} days (95 % CI {_num(km.median_ci_lower, 0)} to "
            f"{_num(km.median_ci_upper, 0)})"
        )
        alt = (
            f"Kaplan-Meier curve of progression-free survival, {km.n} patients, {n_events} "
            f"events, median {median}"
        )
        fig = _figure(
            rel,
            alt,
            f"Kaplan-Meier estimate of PFS (days from start of treatment) with its "
            f"{round(100 * km.conf_level)} % pointwise confidence band ({km.conf_type}); "
            f"+ marks a censored patient. Not evaluable: "
            f"{len(outcomes) - len(evaluable)} patients.",
        )
        rows = [
            [
                f"{t:g}",
                str(km.n_at_risk[i]),
                str(km.n_events[i]),
                str(km.n_censored[i]),
                f"{km.survival[i]:.3f}",
                f"{km.ci_lower[i]:.3f} to {km.ci_upper[i]:.3f}",
            ]
            for i, t in enumerate(km.time)
        ]
        table = _table(
            ["Day", "At risk", "Events", "Censored", "PFS probability", "95 % CI"],
            rows,
            caption="Kaplan-Meier table",
            numeric=(1, 2, 3, 4),
        )
        facts = (
            f'<dl class="facts"><dt>Evaluable patients</dt><dd>{km.n}</dd><dt>Events</dt>'
            f"<dd>{n_events}</dd><dt>Median PFS</dt><dd>{esc(median)}</dd></dl>"
        )
        return Markup(
            head + facts + fig + f"<details><summary>Kaplan-Meier table</summary>{table}"
            "</details></section>"
        )

    def _eligibility(self) -> Markup:
        head = '<section id="eligibility"><h2>Eligibility</h2>'
        elig = self.batch.eligibility
        if elig is None:
            return Markup(
                head
                + _note(
                    "Not available: the eligibility/ folder is absent (no "
                    "clinical facts were given)."
                )
                + "</section>"
            )
        if not elig:
            return Markup(head + _note("The eligibility/ folder holds no protocol.") + "</section>")
        protocols = sorted(elig, key=natural_key)

        def cell(pid: str, protocol: str) -> Markup:
            row = elig[protocol].get(pid)
            if row is None:
                return Markup('<span class="v-missing">not evaluated</span>')
            verdict = row["verdict"].strip()
            word = _VERDICT_WORDS.get(verdict, verdict)
            reason = row.get("reason", "").strip()
            if len(reason) > _SHORT_REASON:
                detail = f"<details><summary>why</summary><small>{esc(reason)}</small></details>"
            else:
                detail = f"<br><small>{esc(reason)}</small>" if reason else ""
            return Markup(f'<span class="v-{esc(verdict)}">{esc(word)}</span>{detail}')

        rows: list[list[Any]] = []
        listed: set[str] = set()
        for p in self.batch.patients:
            if p.clinical_id:
                listed.add(p.clinical_id)
                rows.append([p.key, p.clinical_id, *(cell(p.clinical_id, pr) for pr in protocols)])
            else:
                missing = Markup('<span class="v-missing">no clinical ID</span>')
                rows.append([p.key, "—", *(missing for _ in protocols)])
        extra = sorted({pid for t in elig.values() for pid in t} - listed, key=natural_key)
        for pid in extra:
            rows.append(["(not in this batch)", pid, *(cell(pid, pr) for pr in protocols)])
        table = _table(
            ["Patient", "Clinical ID", *protocols],
            rows,
            caption="Eligibility verdict per patient and protocol (with the reason)",
        )
        legend = (
            '<p>Verdicts: <span class="v-eligible">eligible</span> (every criterion met), '
            '<span class="v-not_eligible">not eligible</span> (a criterion not met), '
            '<span class="v-undetermined">undetermined</span> (a fact missing or needing '
            "review).</p>"
        )
        return Markup(head + legend + table + "</section>")

    def _failures_section(self, failures: list[Failure] | None, *, cohort: bool) -> Markup:
        head = '<section id="failures"><h2>Failures</h2>'
        if failures is None:
            return Markup(head + _note("tables/failures.csv is absent.") + "</section>")
        if not failures:
            return Markup(head + "<p>No failures.</p></section>")
        rows = []
        for f in failures:
            patient: Any = f.patient_key or "—"
            if cohort and f.patient_key in self.slugs:
                href = _href("patients", self.slugs[f.patient_key] + ".html")
                patient = Markup(f'<a href="{esc(href)}">{esc(f.patient_key)}</a>')
            reason = Markup(
                f'<strong>{esc(f.error_type)}</strong><pre class="msg">{esc(f.message)}</pre>'
            )
            rows.append([f.stage, patient, f.study_key or "—", reason])
        table = _table(
            ["Stage", "Patient", "Study", "Reason"], rows, caption="What could not be processed"
        )
        return Markup(head + table + "</section>")

    # -- patient page
    def _patient_page(self, p: PatientData, series: list[figures.PatientSeries]) -> bytes:
        body: list[str] = [self._patient_summary(p)]
        body.append(self._timepoint_table(p))
        body.append(self._key_images(p))
        body.append(self._lesion_table(p))
        body.append(self._patient_figures(p, series))
        body.append(self._tgr(p))
        fails = [f for f in self.batch.failures or [] if f.patient_key == p.key]
        for name, message in sorted(p.assessment_failures.items()):
            study = name.split("/", 1)[1] if "/" in name else ""
            fails.append(Failure("assess", p.key, study, "assessment", message))
        body.append(self._failures_section(fails, cohort=False))
        nav = [
            ("../index.html", "Cohort"),
            ("#summary", "Summary"),
            ("#timepoints", "Time points"),
            ("#keyimages", "Key images"),
            ("#lesions", "Lesions"),
            ("#figures", "Figures"),
            ("#tgr", "Growth rates"),
            ("#failures", "Failures"),
        ]
        return _page(f"Patient {p.key}", nav, body)

    def _patient_summary(self, p: PatientData) -> Markup:
        a = p.assessment or {}
        c = self.courses[p.key]
        first = p.studies[0] if p.studies else None
        last = p.studies[-1] if p.studies else None
        burden = "—"
        if first is not None and last is not None:
            burden = (
                f"{_num(first.liver_tumour_burden_pct, 1, '%')} ({first.study_date or '?'}) → "
                f"{_num(last.liver_tumour_burden_pct, 1, '%')} ({last.study_date or '?'})"
            )
        o = (self.batch.outcomes or {}).get(p.key)
        facts: list[tuple[str, Any]] = [
            ("Clinical ID", p.clinical_id or "—"),
            ("Status", p.status),
            (
                "Studies",
                ", ".join(f"{s.study_key} ({s.study_date or 'no date'})" for s in p.studies)
                or "none found",
            ),
            ("Baseline", a.get("baseline_date") or "—"),
            ("Best overall response", _response(self._bor(p.key))),
            ("Why", a.get("bor_reason") or "—"),
            ("Progression date", a.get("pd_date") or "—"),
            ("Target lesions", "—" if c.n_targets is None else str(c.n_targets)),
            ("Lesions at baseline", str(first.n_lesions) if first else "—"),
            ("Lesions at last study", str(last.n_lesions) if last else "—"),
            ("Liver tumour burden", burden),
        ]
        if o is not None:
            pfs = (
                "not evaluable"
                if o.pfs_days is None
                else f"{o.pfs_days:g} days ({'event' if o.pfs_event else 'censored'})"
            )
            facts.append(("PFS", pfs))
        out = ['<section id="summary"><h2>Summary</h2><dl class="facts">']
        out += [f"<dt>{esc(k)}</dt><dd>{esc(v)}</dd>" for k, v in facts]
        out.append("</dl>")
        if p.assessment is None:
            out.append(_note("This patient has no assessment (see Failures)."))
        for n in a.get("notes") or []:
            out.append(_note(str(n)))
        out.append("</section>")
        return Markup("".join(out))

    def _study_by_date(self, p: PatientData) -> dict[str, str]:
        """Date -> study key, from the assessment inputs, tracking and study folders."""
        out: dict[str, str] = {}
        for s in p.studies:
            if s.study_date:
                out.setdefault(s.study_date, s.study_key)
        for r in p.tracking:
            if r["date"]:
                out[r["date"]] = r["study"]
        for name, info in p.assessment_studies.items():
            if isinstance(info, dict) and isinstance(info.get("date"), str):
                out[info["date"][:10]] = str(name)
        return out

    def _timepoint_table(self, p: PatientData) -> Markup:
        head = '<section id="timepoints"><h2>Time points</h2>'
        by_date = self._study_by_date(p)
        studies = {s.study_key: s for s in p.studies}
        tps = {r["date"]: r for r in p.timepoints}
        dates = sorted(set(tps) | {s.study_date for s in p.studies if s.study_date})
        if not dates:
            return Markup(head + _note("No study of this patient was measured.") + "</section>")
        rows = []
        for d in dates:
            r = tps.get(d, {})
            s = studies.get(by_date.get(d, ""))
            ltb = r.get("liver_tumour_burden_pct")
            if ltb is None and s is not None:
                ltb = s.liver_tumour_burden_pct
            rows.append(
                [
                    by_date.get(d, "—"),
                    d,
                    (r.get("role") or "—").replace("_", " "),
                    _num(r.get("days_from_baseline"), 0),
                    str(s.n_lesions) if s is not None else "—",
                    _num(r.get("sod_mm"), 1),
                    _num(r.get("pct_from_baseline"), 1, sign=True),
                    _num(r.get("pct_from_nadir"), 1, sign=True),
                    _word(r.get("target_response")),
                    _word(r.get("nontarget_response")),
                    r.get("new_lesions") or "—",
                    _response(r.get("overall_response")) if r.get("overall_response") else "—",
                    _word(r.get("volumetric_response")),
                    _num(r.get("target_volume_ml"), 2),
                    _num(s.liver_volume_ml if s else r.get("liver_volume_ml"), 0),
                    _num(s.liver_tumour_volume_ml if s else r.get("liver_tumour_volume_ml"), 2),
                    _num(ltb, 2),
                ]
            )
        headers = [
            "Study",
            "Date",
            "Role",
            "Day",
            "Lesions",
            "SOD (mm)",
            "vs baseline (%)",
            "vs nadir (%)",
            "Target",
            "Non-target",
            "New lesions",
            "Overall",
            "Volumetric",
            "Target volume (mL)",
            "Liver (mL)",
            "Liver tumour (mL)",
            "Liver tumour burden (%)",
        ]
        table = _table(
            headers,
            rows,
            caption="Studies and RECIST 1.1 response at each time point",
            numeric=(3, 4, 5, 6, 7, 13, 14, 15, 16),
        )
        return Markup(head + table + "</section>")

    def _baseline_lesion(self, p: PatientData, target: dict[str, Any]) -> tuple[str, int] | None:
        tid = str(target.get("lesion_id", ""))
        base = str((p.assessment or {}).get("baseline_date") or "")
        for r in p.tracking:
            if r["tracking_id"] == tid and r["date"] == base and r["lesion_id"] is not None:
                return str(r["study"]), int(r["lesion_id"])
        m = _SOURCE_RE.match(str(target.get("source") or ""))
        if m:
            return m["study"], int(m["lesion"])
        return None

    def _key_images(self, p: PatientData) -> Markup:
        head = '<section id="keyimages"><h2>Key images of the target lesions (baseline)</h2>'
        if p.assessment is None:
            return Markup(head + _note("No assessment, hence no target lesions.") + "</section>")
        targets = p.assessment.get("targets") or []
        if not targets:
            return Markup(head + _note("No target lesion at baseline.") + "</section>")
        studies = {s.study_key: s for s in p.studies}
        out = [head]
        for t in targets:
            tid = str(t.get("lesion_id", "?"))
            found = self._baseline_lesion(p, t)
            if found is None:
                out.append(_note(f"Target {tid}: its baseline lesion is not in tracking.csv."))
                continue
            study_key, lesion_id = found
            s = studies.get(study_key)
            rec = (s.keyimages or {}).get(lesion_id) if s is not None else None
            src = s.folder / "keyimages" / str(rec["file"]) if s is not None and rec else None
            if s is None or rec is None or src is None or not src.is_file():
                why = (
                    "the study folder is missing"
                    if s is None
                    else "keyimages/index.json is absent"
                    if s.keyimages is None
                    else "no key image was drawn for it"
                    if rec is None
                    else f"{rec['file']} is missing"
                )
                out.append(
                    _note(
                        f"Target {tid} (study {study_key}, lesion {lesion_id}): key image not "
                        f"available ({why})."
                    )
                )
                continue
            data = src.read_bytes()
            rel = self._write(
                f"img/{self.slugs[p.key]}/key_{_slug(study_key)}_lesion_{lesion_id}.png", data
            )
            alt = f"Target lesion {tid} at baseline ({study_key}): {rec['alt']}"
            ld = t.get("ld_mm")
            sa = t.get("sa_mm")
            caption = (
                f"Target {tid}, {str(t.get('organ') or '').replace('_', ' ')}: LD "
                f"{_num(ld if isinstance(ld, int | float) else None, 1, 'mm')}, SA "
                f"{_num(sa if isinstance(sa, int | float) else None, 1, 'mm')} "
                f"(study {study_key}, lesion {lesion_id}, slice {rec.get('slice_index', '?')}). "
                "Left: CT W400/L40 with the contour (green) and the long (blue) and short "
                "(magenta) axes; right: PET SUV on the CT."
            )
            out.append(_figure("../" + rel, alt, caption, _png_size(data)))
        out.append("</section>")
        return Markup("".join(out))

    def _lesion_table(self, p: PatientData) -> Markup:
        head = '<section id="lesions"><h2>Lesions over time</h2>'
        if not p.tracking:
            return Markup(
                head + _note("No tracking table (tracking.csv) for this patient.") + "</section>"
            )
        dates = sorted({r["date"] for r in p.tracking if r["date"]})
        by_date = self._study_by_date(p)
        cells: dict[tuple[str, str], dict[str, Any]] = {}
        organ: dict[str, str] = {}
        for r in p.tracking:
            cells.setdefault((r["tracking_id"], r["date"]), r)
            if r.get("organ"):
                organ.setdefault(r["tracking_id"], r["organ"])
        a = p.assessment or {}
        role: dict[str, str] = {}
        for name, key in (
            ("target", "targets"),
            ("non-target", "nontargets"),
            ("not recorded", "not_recorded"),
        ):
            for d in a.get(key) or []:
                if isinstance(d, dict):
                    role[str(d.get("lesion_id"))] = name
                    organ.setdefault(str(d.get("lesion_id")), str(d.get("organ") or ""))
        tids = sorted({r["tracking_id"] for r in p.tracking}, key=natural_key)
        rows = []
        for tid in tids:
            new = any(r["status"] == "new" for r in p.tracking if r["tracking_id"] == tid)
            kind = role.get(tid) or ("new after baseline" if new else "—")
            row: list[Any] = [tid, kind, organ.get(tid, "—").replace("_", " ")]
            for d in dates:
                cell = cells.get((tid, d))
                if cell is None:
                    row.append("—")
                elif cell["lesion_id"] is None:
                    rel = cell.get("related_tracking_id") or ""
                    row.append(f"{cell['status']}" + (f" into {rel}" if rel else ""))
                else:
                    text = f"{_num(cell['ld_mm'], 1, 'mm')} / {_num(cell['volume_ml'], 2, 'mL')}"
                    if cell["status"] not in ("matched", "baseline"):
                        text += f" ({cell['status']})"
                    row.append(text)
            rows.append(row)
        headers = ["Lesion (tracking ID)", "Role", "Organ"]
        headers += [f"{by_date.get(d, '?')} {d}" for d in dates]
        table = _table(
            headers,
            rows,
            caption="Long axis (mm) / volume (mL) of each tracked lesion at each study",
        )
        return Markup(head + table + "</section>")

    def _patient_figures(self, p: PatientData, series: list[figures.PatientSeries]) -> Markup:
        head = '<section id="figures"><h2>Course</h2>'
        c = self.courses[p.key]
        slug = self.slugs[p.key]
        out = [head]
        if len(c.days) > 1:
            rel = self._write(f"img/{slug}/spider.png", self.fig.spider(series, highlight=p.key))
            points = ", ".join(f"day {d:g}: {v:+.1f} %" for d, v in zip(c.days, c.pct, strict=True))
            out.append(
                _figure(
                    "../" + rel,
                    f"Spider plot: change of the sum of target diameters of patient {p.key} "
                    f"from baseline ({points}), other patients in grey",
                    "Change of the sum of target lesion diameters from baseline (%) against "
                    "days from baseline; this patient in its best-response colour, the "
                    "cohort in grey; dashed lines at -30 % and +20 %.",
                )
            )
        else:
            out.append(_note("No follow-up with a sum of diameters: no spider plot."))
        rows = [r for r in p.timepoints if r["days_from_baseline"] is not None]
        if rows:
            days = [float(r["days_from_baseline"]) for r in rows]
            data = self.fig.volume_plot(
                days,
                [r["target_volume_ml"] for r in rows],
                [r["total_tumour_volume_ml"] for r in rows],
                [r["liver_tumour_volume_ml"] for r in rows],
                [r["liver_tumour_burden_pct"] for r in rows],
            )
            rel = self._write(f"img/{slug}/volumes.png", data)
            text = "; ".join(
                f"day {d:g}: targets {_num(r['target_volume_ml'], 1, 'mL')}, liver tumour "
                f"{_num(r['liver_tumour_volume_ml'], 1, 'mL')}, burden "
                f"{_num(r['liver_tumour_burden_pct'], 1, '%')}"
                for d, r in zip(days, rows, strict=True)
            )
            out.append(
                _figure(
                    "../" + rel,
                    f"Tumour volumes and liver tumour burden of patient {p.key} over time: " + text,
                    "Left: summed volume of the target lesions, of all lesions and of the "
                    "liver lesions (mL); right: liver tumour burden (liver tumour volume / "
                    "liver volume, %), against days from baseline.",
                )
            )
        out.append("</section>")
        return Markup("".join(out))

    def _tgr(self, p: PatientData) -> Markup:
        head = '<section id="tgr"><h2>Tumour growth rates</h2>'
        rows = [r for r in p.timepoints if r["role"] != "baseline"]
        columns = (
            "tgr_diameter_vs_baseline_pct_per_month",
            "tgr_diameter_vs_previous_pct_per_month",
            "tgr_volume_vs_baseline_pct_per_month",
            "tgr_volume_vs_previous_pct_per_month",
        )
        if not rows or all(r[c] is None for r in rows for c in columns):
            return Markup(
                head + _note("No growth rate (no follow-up with target lesions).") + "</section>"
            )
        by_date = self._study_by_date(p)
        table = _table(
            [
                "Study",
                "Date",
                "Day",
                "TGR diameter vs baseline (%/month)",
                "TGR diameter vs previous (%/month)",
                "TGR volume vs baseline (%/month)",
                "TGR volume vs previous (%/month)",
            ],
            [
                [
                    by_date.get(r["date"], "—"),
                    r["date"],
                    _num(r["days_from_baseline"], 0),
                    *(_num(r[c], 1, sign=True) for c in columns),
                ]
                for r in rows
            ],
            caption="Tumour growth rate (Ferté 2014) of the targets' sum of diameters and of "
            "their summed volume, per month",
            numeric=(2, 3, 4, 5, 6),
        )
        summary = []
        tgr = (p.assessment or {}).get("tgr") or {}
        for kind in ("diameter", "volume"):
            block = tgr.get(kind) if isinstance(tgr, dict) else None
            if not isinstance(block, dict):
                continue
            for name, label in (
                ("tgr0", "TGR0 (pre-baseline)"),
                ("tgr_first", "TGRfirst"),
                ("tgr3m", "TGR3m"),
            ):
                period = block.get(name)
                if isinstance(period, dict):
                    value = period.get("tgr_pct_per_month")
                    value = value if isinstance(value, int | float) else None
                    summary.append(f"{label} {kind}: {_num(value, 1, '%/month', sign=True)}")
        extra = f"<p>{esc('; '.join(summary))}.</p>" if summary else ""
        return Markup(head + extra + table + "</section>")


# ------------------------------------------------------------------------- entry point
def _check_replaceable(final: Path) -> None:
    if final.is_symlink() or (final.exists() and not final.is_dir()):
        raise InputPathError(
            "OUT/report exists and is not a folder", files=[final], hint="move it away"
        )
    if final.is_dir() and any(final.iterdir()) and not (final / REPORT_MARKER).is_file():
        raise InputPathError(
            f"OUT/report exists and is not a report written by netvolume (no {REPORT_MARKER})",
            files=[final],
            hint="move the folder away; it is not replaced",
        )


def write_report(out_dir: str | Path) -> Path:
    """Write the HTML report of a batch output folder into ``OUT/report/``.

    Parameters
    ----------
    out_dir : str or Path
        The batch output folder ``OUT`` (``studies/``, ``assessments/``, ``tables/``,
        optionally ``eligibility/``; see ``docs/report.md``).

    Returns
    -------
    Path
        ``OUT/report/index.html``, the cohort page.

    Raises
    ------
    InputPathError
        ``OUT`` is not a batch output folder (no ``tables/patients.csv``), or
        ``OUT/report`` exists and is not a previous report.
    ReportInputError
        A table or JSON file of the batch is malformed (file, line and field named).
    """
    root = Path(out_dir)
    batch = read_batch(root)
    final = root / "report"
    _check_replaceable(final)
    tmp = root / f".report.tmp-{os.getpid()}"
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir()
    try:
        files = _Builder(batch, tmp).build()
        write_json_atomic(
            tmp / REPORT_MARKER,
            {
                "netvolume_version": __version__,
                "patients": [p.key for p in batch.patients],
                "files": sorted(files),
            },
        )
        _check_replaceable(final)
        if final.exists():
            old = root / f".report.old-{os.getpid()}"
            if old.exists():
                shutil.rmtree(old)
            os.replace(final, old)
            os.replace(tmp, final)
            shutil.rmtree(old)
        else:
            os.replace(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return final / "index.html"

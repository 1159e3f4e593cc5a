"""Imaging facts for the eligibility engine: what ``netvolume assess`` found, as records.

:func:`read_imaging` reads the output folder of ``netvolume assess`` (one patient's
``assessment.json``, ``tracking.csv`` and ``studies/<name>/{lesions.csv,study.json}``,
or a ``--measurements`` assessment of many patients) into one :class:`ImagingFacts` per
patient. The imaging checks a protocol can name (:data:`IMAGING_CHECKS`) work on these
records and on the date the patient is evaluated at: only scans on or before that date
are looked at, so an eligibility verdict never depends on what was seen after inclusion.

Every check returns a :class:`CheckOutcome`: a status (``met``, ``not_met``, ``unknown``,
``needs_review``), one line of evidence a reader can verify, and provenance down to the
study, series and lesion (tracking id, measure lesion id, study folder).
"""

from __future__ import annotations

import csv
import datetime
import hashlib
import itertools
import json
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

from netvolume.errors import InputPathError, ProtocolError
from netvolume.trials._status import CheckOutcome, Status

__all__ = [
    "DAYS_PER_MONTH",
    "IMAGING_CHECKS",
    "ImagedLesion",
    "ImagedScan",
    "ImagingCheck",
    "ImagingFacts",
    "read_imaging",
]

#: Days in a month when a protocol states a window in months (365.25 / 12, the convention
#: of :mod:`netvolume.assess.tgr` and of Ferté et al. 2014).
DAYS_PER_MONTH = 365.25 / 12


@dataclass(frozen=True)
class ImagedLesion:
    """One lesion on one scan, as measured by ``netvolume measure``.

    ``lesion_id`` is the tracking id over time (``L3``) where the patient was tracked,
    else the measure lesion id; ``measure_id`` is the label value in that study's
    ``lesions.nii.gz``.
    """

    lesion_id: str
    measure_id: str
    study: str
    organ: str
    nodal: bool
    ld_mm: float | None
    sa_mm: float | None
    volume_ml: float | None
    measurable: bool | None
    krenning_grade: int | None
    suv_max: float | None
    tumour_to_liver: float | None

    def describe(self) -> str:
        """``L3 (liver, study T0 lesion 3): LD 34.2 mm, SA 20.1 mm, Krenning 4, T/L 3.10``."""
        parts = [f"{self.lesion_id} ({self.organ}, study {self.study} lesion {self.measure_id})"]
        sizes = []
        if self.ld_mm is not None:
            sizes.append(f"LD {self.ld_mm:.1f} mm")
        if self.sa_mm is not None:
            sizes.append(f"SA {self.sa_mm:.1f} mm")
        if self.measurable is not None:
            sizes.append("measurable" if self.measurable else "not measurable")
        if self.krenning_grade is not None:
            sizes.append(f"Krenning {self.krenning_grade}")
        if self.tumour_to_liver is not None:
            sizes.append(f"T/L {self.tumour_to_liver:.2f}")
        return parts[0] + (": " + ", ".join(sizes) if sizes else "")


@dataclass(frozen=True)
class ImagedScan:
    """One time point of a patient: its study, series, lesions and RECIST response.

    ``lesions`` is ``None`` where lesion-level measurements are not available (an
    assessment of a measurement table); ``has_pet`` is ``None`` where unknown.
    ``overall_response`` is the RECIST 1.1 overall response of this time point against
    the patient's first scan (``None`` at that baseline).
    """

    study: str
    date: datetime.date
    study_uid: str | None
    ct_series_uid: str | None
    pet_series_uid: str | None
    source: str
    lesions: tuple[ImagedLesion, ...] | None
    has_pet: bool | None
    overall_response: str | None
    new_lesions: tuple[str, ...] = ()
    liver_tumour_burden_pct: float | None = None
    liver_tumour_volume_ml: float | None = None
    liver_volume_ml: float | None = None
    n_liver_lesions: int | None = None
    extrahepatic_disease: bool | None = None

    def describe(self) -> str:
        """``study T0 (2024-05-28, CT series 2.25..., PET series 2.25...)``."""
        parts = [self.date.isoformat()]
        if self.ct_series_uid:
            parts.append(f"CT series {self.ct_series_uid}")
        if self.pet_series_uid:
            parts.append(f"PET series {self.pet_series_uid}")
        return f"study {self.study} ({', '.join(parts)})"


@dataclass(frozen=True)
class ImagingFacts:
    """The imaging record of one patient (all scans, sorted by date)."""

    patient_key: str
    source: str
    scans: tuple[ImagedScan, ...]
    best_overall_response: str | None = None
    pd_date: datetime.date | None = None
    assessment_sha256: str | None = None
    timepoints: tuple[Mapping[str, Any], ...] | None = None
    tgr: Mapping[str, Any] | None = None

    def scans_until(self, date: datetime.date | None) -> tuple[ImagedScan, ...]:
        """The scans on or before ``date`` (all of them when ``date`` is None)."""
        if date is None:
            return self.scans
        return tuple(s for s in self.scans if s.date <= date)

    def latest(self, date: datetime.date | None) -> ImagedScan | None:
        """The last scan on or before ``date``, or None."""
        scans = self.scans_until(date)
        return scans[-1] if scans else None


# --- reading the assess output -----------------------------------------------------------


def _opt_float(text: str | None) -> float | None:
    if text is None or text.strip() == "":
        return None
    value = float(text)
    if not math.isfinite(value):  # measure never writes one: the file was altered
        raise ValueError(f"non-finite number {text!r}")
    return value


def _opt_bool(text: str | None) -> bool | None:
    if text is None or text.strip() == "":
        return None
    return text.strip().lower() == "true"


def _read_lesions(path: Path, study: str, tracks: Mapping[str, str]) -> tuple[ImagedLesion, ...]:
    lesions = []
    with path.open(newline="", encoding="utf-8") as fh:
        for line, row in enumerate(csv.DictReader(fh), start=2):
            try:
                lesions.append(_lesion(row, study, tracks))
            except (KeyError, ValueError) as exc:
                raise InputPathError(
                    f"{path.name} line {line}: unreadable lesion row ({type(exc).__name__}: {exc})",
                    files=[path],
                    hint="re-run `netvolume assess`; lesions.csv is its output, not an input",
                ) from None
    return tuple(lesions)


def _lesion(row: Mapping[str, str], study: str, tracks: Mapping[str, str]) -> ImagedLesion:
    """One ``lesions.csv`` row (``lesion_id`` is the label in that study's masks)."""
    measure_id = row["lesion_id"]
    grade = row.get("krenning_grade", "")
    return ImagedLesion(
        lesion_id=tracks.get(measure_id, f"{study}:{measure_id}"),
        measure_id=measure_id,
        study=study,
        organ=row.get("organ", "") or "unknown",
        nodal=_opt_bool(row.get("nodal")) is True,
        ld_mm=_opt_float(row.get("ld_mm")),
        sa_mm=_opt_float(row.get("sa_mm")),
        volume_ml=_opt_float(row.get("volume_ml")),
        measurable=_opt_bool(row.get("measurable")),
        krenning_grade=int(grade) if grade and grade.strip() else None,
        suv_max=_opt_float(row.get("suv_max")),
        tumour_to_liver=_opt_float(row.get("tumour_to_liver")),
    )


def _tracking(path: Path) -> dict[str, dict[str, str]]:
    """study -> measure lesion id -> tracking id."""
    out: dict[str, dict[str, str]] = {}
    if not path.is_file():
        return out
    with path.open(newline="", encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            out.setdefault(row["study"], {})[row["lesion_id"]] = row["tracking_id"]
    return out


def _study_folder(
    root: Path, name: str, info: Mapping[str, Any], inputs: Mapping[str, Any]
) -> Path | None:
    here = root / "studies" / name
    if (here / "lesions.csv").is_file():
        return here
    patient_dir = inputs.get("patient_dir")
    if patient_dir and not info.get("measured_here", True):
        there = Path(patient_dir) / name
        if (there / "lesions.csv").is_file():
            return there
    return None


def _one_assessment(root: Path, shown: Path) -> list[ImagingFacts]:
    path = root / "assessment.json"
    raw = path.read_bytes()
    doc = json.loads(raw)
    sha = hashlib.sha256(raw).hexdigest()
    inputs = doc.get("provenance", {}).get("inputs", {})
    studies = inputs.get("studies") or {}
    tracks = _tracking(root / "tracking.csv")
    facts = []
    for key, patient in (doc.get("patients") or {}).items():
        responses = {tp["date"]: tp for tp in patient.get("timepoints", [])}
        scans: list[ImagedScan] = []
        if studies:
            for name, info in studies.items():
                folder = _study_folder(root, name, info, inputs)
                where = (
                    shown / folder.relative_to(root)
                    if folder is not None and folder.is_relative_to(root)
                    else folder
                )
                study_doc: dict[str, Any] = {}
                lesions: tuple[ImagedLesion, ...] | None = None
                if folder is not None:
                    study_doc = json.loads((folder / "study.json").read_text(encoding="utf-8"))
                    lesions = _read_lesions(folder / "lesions.csv", name, tracks.get(name, {}))
                tp = responses.get(info["date"], {})
                n_liver = study_doc.get("n_liver_lesions")
                scans.append(
                    ImagedScan(
                        study=name,
                        date=datetime.date.fromisoformat(info["date"]),
                        study_uid=info.get("study_instance_uid"),
                        ct_series_uid=study_doc.get("ct_series_uid")
                        or info.get("reference_series_uid"),
                        pet_series_uid=study_doc.get("pet_series_uid"),
                        source=str(where) if where is not None else str(shown / path.name),
                        lesions=lesions,
                        has_pet=(study_doc.get("pet_series_uid") is not None)
                        if study_doc
                        else None,
                        overall_response=tp.get("overall_response"),
                        new_lesions=tuple(tp.get("new_lesions") or ()),
                        liver_tumour_burden_pct=study_doc.get("liver_tumour_burden_pct"),
                        liver_tumour_volume_ml=study_doc.get("liver_tumour_volume_ml"),
                        liver_volume_ml=study_doc.get("liver_volume_ml"),
                        n_liver_lesions=int(n_liver) if n_liver is not None else None,
                        extrahepatic_disease=study_doc.get("extrahepatic_disease"),
                    )
                )
        else:  # an assessment of a measurement table: responses, no lesion measurements
            for tp in patient.get("timepoints", []):
                scans.append(
                    ImagedScan(
                        study=tp["date"],
                        date=datetime.date.fromisoformat(tp["date"]),
                        study_uid=None,
                        ct_series_uid=None,
                        pet_series_uid=None,
                        source=str(shown / path.name),
                        lesions=None,
                        has_pet=None,
                        overall_response=tp.get("overall_response"),
                        new_lesions=tuple(tp.get("new_lesions") or ()),
                    )
                )
        scans.sort(key=lambda s: s.date)
        pd_date = patient.get("pd_date")
        facts.append(
            ImagingFacts(
                patient_key=str(key),
                source=str(shown),
                scans=tuple(scans),
                best_overall_response=patient.get("best_overall_response"),
                pd_date=datetime.date.fromisoformat(pd_date) if pd_date else None,
                assessment_sha256=sha,
                timepoints=tuple(patient.get("timepoints", [])),
                tgr=patient.get("tgr"),
            )
        )
    return facts


def read_imaging(
    folder: str | Path, *, shown_as: str | Path | None = None
) -> dict[str, ImagingFacts]:
    """Read ``netvolume assess`` outputs into imaging facts, keyed by patient key.

    Parameters
    ----------
    folder : str or Path
        One assess output folder (holds ``assessment.json``), or a folder of them (one
        sub-folder per patient, as the pipelines write).

    Returns
    -------
    dict
        Patient key (the assessed folder's name or the table's ``patient_id``) to
        :class:`ImagingFacts`.
    shown_as : str or Path, optional
        The path to cite in evidence and provenance instead of ``folder`` (a folder
        read in a temporary place before it is renamed into place).

    Raises
    ------
    InputPathError
        The folder does not exist or holds no assess output.
    """
    root = Path(folder)
    if not root.is_dir():
        raise InputPathError(
            f"imaging folder {root} does not exist or is not a folder",
            files=[root],
            hint="give the output folder of `netvolume assess` (or a folder of them)",
        )
    roots = (
        [root]
        if (root / "assessment.json").is_file()
        else sorted(p for p in root.iterdir() if (p / "assessment.json").is_file())
    )
    if not roots:
        raise InputPathError(
            f"no assessment.json in {root} nor in its sub-folders",
            files=[root],
            hint="run `netvolume assess` first and give its output folder",
        )
    out: dict[str, ImagingFacts] = {}
    shown = Path(shown_as) if shown_as is not None else root
    for r in roots:
        for facts in _one_assessment(r, shown if r == root else shown / r.name):
            if facts.patient_key in out:
                raise InputPathError(
                    f"patient key {facts.patient_key!r} is assessed twice: in "
                    f"{out[facts.patient_key].source} and in {r}",
                    files=[r],
                    hint="keep one assess output per patient in the imaging folder",
                )
            out[facts.patient_key] = facts
    return out


# --- the checks ---------------------------------------------------------------------------


@dataclass(frozen=True)
class ImagingCheck:
    """An imaging check a protocol can name: its function and its parameters (defaults)."""

    name: str
    description: str
    params: Mapping[str, Any]
    func: Callable[[ImagingFacts, datetime.date | None, Mapping[str, Any]], CheckOutcome] = field(
        repr=False
    )


def _no_imaging(imaging: ImagingFacts | None, reference: datetime.date | None) -> CheckOutcome:
    if imaging is None:
        return CheckOutcome(
            Status.UNKNOWN,
            "no imaging result for this patient",
            missing=("imaging",),
        )
    when = f" on or before {reference.isoformat()}" if reference else ""
    return CheckOutcome(
        Status.UNKNOWN,
        f"no scan{when} in {imaging.source}",
        missing=("imaging scan",),
    )


def _lesions_or_unknown(scan: ImagedScan) -> tuple[ImagedLesion, ...] | CheckOutcome:
    if scan.lesions is None:
        return CheckOutcome(
            Status.UNKNOWN,
            f"{scan.describe()}: lesion measurements not available (assessed from a table)",
            provenance=(scan.source,),
            missing=("lesion measurements",),
        )
    return scan.lesions


def _exact(value: float) -> Fraction:
    """A measurement as the decimal it is written as (``27.3`` is 273/10), so that a
    change of exactly 30 % or 20 % is not moved across the threshold by binary noise."""
    return Fraction(repr(value)) if isinstance(value, float) else Fraction(value)


def _prov(scan: ImagedScan, lesions: Sequence[ImagedLesion] = ()) -> tuple[str, ...]:
    base = [f"{scan.source}: {scan.describe()}"]
    if scan.study_uid:
        base.append(f"StudyInstanceUID {scan.study_uid}")
    base.extend(f"lesion {les.describe()}" for les in lesions)
    return tuple(base)


def _list(lesions: Sequence[ImagedLesion], limit: int = 5) -> str:
    shown = "; ".join(les.describe() for les in lesions[:limit])
    more = len(lesions) - limit
    return shown + (f"; and {more} more" if more > 0 else "")


def _scan_age(
    scan: ImagedScan, reference: datetime.date | None, params: Mapping[str, Any]
) -> CheckOutcome | None:
    limit = params.get("max_scan_age_days")
    if limit is None:
        return None
    if reference is None:  # "within N days before inclusion" cannot be judged
        return CheckOutcome(
            Status.UNKNOWN,
            f"latest scan {scan.describe()}: no reference date to count its age from (the "
            f"protocol allows at most {limit} days)",
            provenance=_prov(scan),
            missing=("reference date",),
        )
    age = (reference - scan.date).days
    if age > limit:
        return CheckOutcome(
            Status.NOT_MET,
            f"latest scan {scan.describe()} is {age} days before the reference date "
            f"{reference.isoformat()}; the protocol allows at most {limit} days",
            provenance=_prov(scan),
        )
    return None


def _latest_lesions(
    imaging: ImagingFacts,
    reference: datetime.date | None,
    params: Mapping[str, Any],
    *,
    pet: bool,
) -> tuple[ImagedScan, tuple[ImagedLesion, ...]] | CheckOutcome:
    """The latest scan on or before ``reference`` and its lesions, or the outcome that
    stops a check: no scan, a scan older than ``max_scan_age_days`` (when the check has
    that parameter), no lesion measurements, or (with ``pet``) no SSTR PET."""
    scan = imaging.latest(reference)
    if scan is None:
        return _no_imaging(imaging, reference)
    stop = _scan_age(scan, reference, params)
    if stop is None:
        lesions = _lesions_or_unknown(scan)
        if isinstance(lesions, CheckOutcome):
            return lesions
        stop = _needs_pet(scan) if pet else None
        if stop is None:
            return scan, lesions
    return stop


def _check_measurable(
    imaging: ImagingFacts, reference: datetime.date | None, params: Mapping[str, Any]
) -> CheckOutcome:
    found = _latest_lesions(imaging, reference, params, pet=False)
    if isinstance(found, CheckOutcome):
        return found
    scan, lesions = found
    organ = params.get("organ")
    pool = [les for les in lesions if organ is None or les.organ == organ]
    measurable = [les for les in pool if les.measurable]
    where = f" {organ}" if organ else ""
    if measurable:
        measurable.sort(key=lambda les: -(les.ld_mm or 0.0))
        return CheckOutcome(
            Status.MET,
            f"{len(measurable)} RECIST 1.1 measurable{where} lesion(s) on {scan.describe()}: "
            + _list(measurable),
            provenance=_prov(scan, measurable[:5]),
        )
    return CheckOutcome(
        Status.NOT_MET,
        f"no RECIST 1.1 measurable{where} lesion on {scan.describe()} "
        f"({len(pool)}{where} lesion(s) found, none measurable)",
        provenance=_prov(scan, pool[:5]),
    )


def _needs_pet(scan: ImagedScan) -> CheckOutcome | None:
    if scan.has_pet is False:
        return CheckOutcome(
            Status.UNKNOWN,
            f"{scan.describe()} has no SSTR PET: uptake grades are not available",
            provenance=_prov(scan),
            missing=("SSTR PET",),
        )
    return None


def _lesion_progressive(
    imaging: ImagingFacts, lesion: ImagedLesion, scan: ImagedScan, params: Mapping[str, Any]
) -> bool | None:
    """Did this tracked lesion grow by >= pd_pct % and >= pd_min_mm over its smallest
    earlier LD (RECIST 1.1's PD rule applied to one lesion)? None: no earlier scan."""
    earlier = [s for s in imaging.scans if s.date < scan.date and s.lesions is not None]
    if not earlier:
        return None
    sizes = [
        les.ld_mm
        for s in earlier
        for les in (s.lesions or ())
        if les.lesion_id == lesion.lesion_id and les.ld_mm is not None
    ]
    if lesion.ld_mm is None:
        return None
    nadir = _exact(min(sizes)) if sizes else Fraction(0)  # not seen before: new, progressive
    grow = _exact(lesion.ld_mm) - nadir
    pct = _exact(params["pd_pct"])
    return grow >= _exact(params["pd_min_mm"]) and (nadir == 0 or grow / nadir * 100 >= pct)


def _check_uptake_lesion(
    imaging: ImagingFacts, reference: datetime.date | None, params: Mapping[str, Any]
) -> CheckOutcome:
    found = _latest_lesions(imaging, reference, params, pet=True)
    if isinstance(found, CheckOutcome):
        return found
    scan, lesions = found
    min_ld = params["min_ld_mm"]
    min_grade = params["min_krenning"]
    hits = [
        les
        for les in lesions
        if les.ld_mm is not None
        and les.ld_mm >= min_ld
        and les.krenning_grade is not None
        and les.krenning_grade >= min_grade
    ]
    rule = f"LD >= {min_ld:g} mm with Krenning grade >= {min_grade}"
    if params["require_measurable"]:
        hits = [les for les in hits if les.measurable]
        rule += ", RECIST measurable"
    if not hits:
        return CheckOutcome(
            Status.NOT_MET,
            f"no lesion with {rule} on {scan.describe()} ({len(lesions)} lesion(s))",
            provenance=_prov(scan),
        )
    hits.sort(key=lambda les: -(les.ld_mm or 0.0))
    if params["require_progressive"]:
        flags = [_lesion_progressive(imaging, les, scan, params) for les in hits]
        progressive = [les for les, f in zip(hits, flags, strict=True) if f]
        rule += (
            f", progressive (LD +{params['pd_pct']:g} % and +{params['pd_min_mm']:g} mm "
            "over its smallest earlier LD)"
        )
        if progressive:
            return CheckOutcome(
                Status.MET,
                f"{len(progressive)} lesion(s) with {rule}: " + _list(progressive),
                provenance=_prov(scan, progressive[:5]),
            )
        if any(f is None for f in flags):
            return CheckOutcome(
                Status.UNKNOWN,
                f"{len(hits)} lesion(s) {rule.split(', progressive')[0]} on "
                f"{scan.describe()}, but no earlier scan to judge progression: " + _list(hits),
                provenance=_prov(scan, hits[:5]),
                missing=("an earlier scan of the same lesions",),
            )
        return CheckOutcome(
            Status.NOT_MET,
            "lesion(s) with uptake and size found but none progressive: " + _list(hits),
            provenance=_prov(scan, hits[:5]),
        )
    return CheckOutcome(
        Status.MET,
        f"{len(hits)} lesion(s) with {rule} on {scan.describe()}: " + _list(hits),
        provenance=_prov(scan, hits[:5]),
    )


def _check_sstr_fraction(
    imaging: ImagingFacts, reference: datetime.date | None, params: Mapping[str, Any]
) -> CheckOutcome:
    found = _latest_lesions(imaging, reference, params, pet=True)
    if isinstance(found, CheckOutcome):
        return found
    scan, lesions = found
    graded = [les for les in lesions if les.krenning_grade is not None]
    if not graded:
        return CheckOutcome(
            Status.UNKNOWN,
            f"no graded lesion on {scan.describe()}",
            provenance=_prov(scan),
            missing=("Krenning grades",),
        )
    min_grade = params["min_krenning"]
    positive = [les for les in graded if les.krenning_grade >= min_grade]
    negative = [les for les in graded if les not in positive]
    fraction = len(positive) / len(graded)
    need = params["min_fraction"]
    text = (
        f"{len(positive)} of {len(graded)} lesions SSTR-positive (Krenning >= {min_grade}) "
        f"= {fraction:.0%} on {scan.describe()}; required >= {need:.0%}"
    )
    if negative:
        text += "; not positive: " + _list(negative)
    status = Status.MET if len(positive) >= need * len(graded) - 1e-12 else Status.NOT_MET
    return CheckOutcome(status, text, provenance=_prov(scan, negative[:5]))


def _check_lesion_count(
    imaging: ImagingFacts, reference: datetime.date | None, params: Mapping[str, Any]
) -> CheckOutcome:
    found = _latest_lesions(imaging, reference, params, pet=False)
    if isinstance(found, CheckOutcome):
        return found
    scan, lesions = found
    n = len(lesions)
    big = sorted(
        (les for les in lesions if (les.ld_mm or 0.0) >= params["min_largest_ld_mm"]),
        key=lambda les: -(les.ld_mm or 0.0),
    )
    text = (
        f"{n} lesion(s) on {scan.describe()} (required >= {params['min_lesions']}), "
        f"{len(big)} with LD >= {params['min_largest_ld_mm']:g} mm (required >= 1)"
    )
    ok = n >= params["min_lesions"] and bool(big)
    return CheckOutcome(
        Status.MET if ok else Status.NOT_MET,
        text + (": " + _list(big, 3) if big else ""),
        provenance=_prov(scan, big[:3]),
    )


_OPS: dict[str, Callable[[float, float], bool]] = {
    ">": lambda a, b: a > b,
    ">=": lambda a, b: a >= b,
    "<": lambda a, b: a < b,
    "<=": lambda a, b: a <= b,
}


def _check_ltb(
    imaging: ImagingFacts, reference: datetime.date | None, params: Mapping[str, Any]
) -> CheckOutcome:
    scan = imaging.latest(reference)
    if scan is None:
        return _no_imaging(imaging, reference)
    ltb = scan.liver_tumour_burden_pct
    if ltb is None:
        return CheckOutcome(
            Status.UNKNOWN,
            f"liver tumour burden not measured on {scan.describe()}",
            provenance=_prov(scan),
            missing=("liver_tumour_burden_pct",),
        )
    op, value = params["op"], params["value_pct"]
    ok = _OPS[op](ltb, value)
    return CheckOutcome(
        Status.MET if ok else Status.NOT_MET,
        f"liver tumour burden {ltb:.1f} % (liver {scan.liver_volume_ml or 0:.0f} mL, "
        f"{scan.n_liver_lesions} liver lesion(s)) on {scan.describe()}; criterion {op} "
        f"{value:g} %",
        provenance=_prov(scan),
    )


def _window(
    reference: datetime.date, params: Mapping[str, Any]
) -> tuple[datetime.date, datetime.date]:
    """The first and last scan dates at most ``within_months`` and at least ``min_months``
    before the reference date, counted in whole days as an interval rule counts them
    (months of DAYS_PER_MONTH days, bounds inclusive: 12 months admits 365 days, not 366;
    1 month admits 31 days, not 30)."""
    longest = math.floor(params["within_months"] * DAYS_PER_MONTH + 1e-9)
    shortest = math.ceil(params["min_months"] * DAYS_PER_MONTH - 1e-9)
    lo = reference - datetime.timedelta(days=longest)
    hi = reference - datetime.timedelta(days=shortest)
    return lo, hi


def _check_recist_progression(
    imaging: ImagingFacts, reference: datetime.date | None, params: Mapping[str, Any]
) -> CheckOutcome:
    if reference is None:
        return CheckOutcome(
            Status.UNKNOWN,
            "no reference date to count the progression window from",
            missing=("reference date",),
        )
    scans = imaging.scans_until(reference)
    if len(scans) < 2:
        return CheckOutcome(
            Status.UNKNOWN,
            f"{len(scans)} scan(s) on or before {reference.isoformat()}: RECIST progression "
            "needs two (a baseline and a later scan)",
            provenance=tuple(f"{s.source}: {s.describe()}" for s in scans),
            missing=("a second scan before the reference date",),
        )
    lo, hi = _window(reference, params)
    window = f"{lo.isoformat()} to {hi.isoformat()}"
    pd = [s for s in scans if s.overall_response == "PD" and lo <= s.date <= hi]
    if pd:
        s = pd[-1]
        new = f", new lesions {', '.join(s.new_lesions)}" if s.new_lesions else ""
        return CheckOutcome(
            Status.MET,
            f"RECIST 1.1 PD on {s.describe()} (against {scans[0].describe()}{new}), inside "
            f"the window {window}",
            provenance=_prov(s) + _prov(scans[0]),
        )
    seen = ", ".join(f"{s.date.isoformat()} {s.overall_response or 'baseline'}" for s in scans)
    return CheckOutcome(
        Status.NOT_MET,
        f"no RECIST 1.1 PD in the window {window} (responses: {seen})",
        provenance=tuple(f"{s.source}: {s.describe()}" for s in scans),
    )


def _check_sstr_progression(
    imaging: ImagingFacts, reference: datetime.date | None, params: Mapping[str, Any]
) -> CheckOutcome:
    if reference is None:
        return CheckOutcome(
            Status.UNKNOWN, "no reference date for the window", missing=("reference date",)
        )
    scans = [s for s in imaging.scans_until(reference) if s.has_pet]
    if len(scans) < 2:
        return CheckOutcome(
            Status.UNKNOWN,
            f"{len(scans)} SSTR PET/CT scan(s) on or before {reference.isoformat()}: "
            "progression on SSTR imaging needs two",
            missing=("a second SSTR PET/CT before the reference date",),
        )
    lo, hi = _window(reference, params)
    pct = params["min_increase_pct"]
    findings: list[str] = []
    prov: list[str] = []
    for earlier, later in itertools.pairwise(scans):
        if not lo <= later.date <= hi or later.lesions is None or earlier.lesions is None:
            continue
        before = {les.lesion_id: les for les in earlier.lesions}
        for les in later.lesions:
            old = before.get(les.lesion_id)
            if old is None:
                if les.lesion_id in later.new_lesions:
                    findings.append(f"new lesion {les.describe()} on {later.describe()}")
                    prov.append(f"{later.source}: lesion {les.describe()}")
                continue
            if (
                old.ld_mm
                and les.ld_mm
                and (_exact(les.ld_mm) - _exact(old.ld_mm)) / _exact(old.ld_mm) * 100 > _exact(pct)
            ):
                findings.append(
                    f"{les.lesion_id} LD {old.ld_mm:.1f} -> {les.ld_mm:.1f} mm "
                    f"(+{(les.ld_mm - old.ld_mm) / old.ld_mm * 100:.0f} %) from "
                    f"{earlier.date.isoformat()} to {later.date.isoformat()}"
                )
                prov.append(f"{later.source}: lesion {les.describe()}")
    window = f"{lo.isoformat()} to {hi.isoformat()}"
    if findings:
        return CheckOutcome(
            Status.MET,
            f"progression on SSTR PET/CT inside {window}: " + "; ".join(findings[:5]),
            provenance=tuple(prov[:5]),
        )
    return CheckOutcome(
        Status.NOT_MET,
        f"no new lesion and no lesion LD increase > {pct:g} % between SSTR PET/CT scans "
        f"inside {window}",
        provenance=tuple(f"{s.source}: {s.describe()}" for s in scans),
    )


def _check_without_uptake(
    imaging: ImagingFacts, reference: datetime.date | None, params: Mapping[str, Any]
) -> CheckOutcome:
    found = _latest_lesions(imaging, reference, params, pet=True)
    if isinstance(found, CheckOutcome):
        return found
    scan, lesions = found
    limit = params["max_krenning"]
    cold = [
        les for les in lesions if les.krenning_grade is not None and les.krenning_grade <= limit
    ]
    if cold:
        return CheckOutcome(
            Status.NOT_MET,
            f"{len(cold)} lesion(s) seen on CT without SSTR uptake (Krenning <= {limit}) on "
            f"{scan.describe()}: " + _list(cold, 10),
            provenance=_prov(scan, cold[:10]),
        )
    return CheckOutcome(
        Status.MET,
        f"every one of {len(lesions)} lesion(s) on {scan.describe()} has SSTR uptake "
        f"(Krenning > {limit})",
        provenance=_prov(scan),
    )


def _check_bone_lesions(
    imaging: ImagingFacts, reference: datetime.date | None, params: Mapping[str, Any]
) -> CheckOutcome:
    found = _latest_lesions(imaging, reference, params, pet=False)
    if isinstance(found, CheckOutcome):
        return found
    scan, lesions = found
    bone = [les for les in lesions if les.organ == "bone"]
    text = (
        f"{len(bone)} bone lesion(s) segmented on {scan.describe()}"
        + (": " + _list(bone) if bone else "")
        + "; diffuse marrow infiltration is not a focal lesion and is not detected by the "
        "lesion segmentation: read the PET (and MRI)"
    )
    return CheckOutcome(Status.NEEDS_REVIEW, text, provenance=_prov(scan, bone[:5]))


def _check(
    name: str,
    description: str,
    func: Callable[[ImagingFacts, datetime.date | None, Mapping[str, Any]], CheckOutcome],
    **params: Any,
) -> ImagingCheck:
    return ImagingCheck(name, description, params, func)


#: Every imaging check a protocol file can name (``check = "..."``), with its parameters
#: and their defaults. A parameter the protocol does not give takes its default.
IMAGING_CHECKS: dict[str, ImagingCheck] = {
    c.name: c
    for c in (
        _check(
            "measurable_disease",
            "at least one RECIST 1.1 measurable lesion on the latest scan (optionally in one "
            "organ, optionally a scan at most max_scan_age_days old)",
            _check_measurable,
            organ=None,
            max_scan_age_days=None,
        ),
        _check(
            "uptake_lesion",
            "at least one lesion with LD >= min_ld_mm and Krenning grade >= min_krenning "
            "(optionally RECIST measurable, optionally progressive over its smallest earlier "
            "LD by pd_pct % and pd_min_mm)",
            _check_uptake_lesion,
            min_ld_mm=20.0,
            min_krenning=3,
            require_measurable=False,
            require_progressive=False,
            pd_pct=20.0,
            pd_min_mm=5.0,
            max_scan_age_days=None,
        ),
        _check(
            "sstr_positive_fraction",
            "at least min_fraction of the graded lesions have Krenning grade >= min_krenning",
            _check_sstr_fraction,
            min_fraction=0.9,
            min_krenning=2,
            max_scan_age_days=None,
        ),
        _check(
            "lesion_count",
            "at least min_lesions lesions, one of them with LD >= min_largest_ld_mm",
            _check_lesion_count,
            min_lesions=2,
            min_largest_ld_mm=10.0,
        ),
        _check(
            "liver_tumour_burden",
            "liver tumour burden (%) compared with value_pct by op",
            _check_ltb,
            op=">",
            value_pct=50.0,
        ),
        _check(
            "recist_progression",
            "RECIST 1.1 PD at a scan between within_months and min_months before the "
            "reference date",
            _check_recist_progression,
            within_months=12.0,
            min_months=0.0,
        ),
        _check(
            "sstr_progression",
            "on SSTR PET/CT, a new lesion or a lesion LD increase > min_increase_pct % "
            "between consecutive scans, inside the window",
            _check_sstr_progression,
            within_months=12.0,
            min_months=0.0,
            min_increase_pct=30.0,
        ),
        _check(
            "lesions_without_uptake",
            "no lesion seen on CT with Krenning grade <= max_krenning (CT/PET discordance)",
            _check_without_uptake,
            max_krenning=0,
        ),
        _check(
            "bone_lesions",
            "bone lesions on the latest PET/CT, shown for the investigator (needs_review)",
            _check_bone_lesions,
        ),
    )
}


def check_params(name: str, given: Mapping[str, Any], where: str) -> dict[str, Any]:
    """The parameters of imaging check ``name``: defaults overridden by ``given``.

    Raises
    ------
    ProtocolError
        Unknown check or parameter, or a value of the wrong type.
    """
    check = IMAGING_CHECKS.get(name)
    if check is None:
        raise ProtocolError(
            f"{where}: unknown imaging check {name!r}",
            tag="check",
            hint=f"use one of {', '.join(sorted(IMAGING_CHECKS))}",
        )
    params = dict(check.params)
    for key, value in given.items():
        if key not in params:
            raise ProtocolError(
                f"{where}: imaging check {name!r} has no parameter {key!r}",
                tag=key,
                hint=f"its parameters are {', '.join(sorted(params)) or '(none)'}",
            )
        default = params[key]
        if isinstance(default, bool) and not isinstance(value, bool):
            raise ProtocolError(f"{where}: {key} must be true or false, got {value!r}", tag=key)
        if (
            isinstance(default, int | float)
            and not isinstance(default, bool)
            and (isinstance(value, bool) or not isinstance(value, int | float))
        ):
            raise ProtocolError(f"{where}: {key} must be a number, got {value!r}", tag=key)
        if key == "op" and value not in _OPS:
            raise ProtocolError(f"{where}: op {value!r} is not one of {', '.join(_OPS)}", tag=key)
        params[key] = value
    return params

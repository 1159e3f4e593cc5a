"""One patient over time from images, and the engine alone on a measurement table.

:func:`assess_patient_dir` (``netvolume assess PATIENT_DIR``):

1. Every sub-folder of ``PATIENT_DIR`` is one time point: a ``netvolume measure`` output
   (it holds ``study.json`` and ``lesions.csv``) is read as is; any other folder is a
   DICOM study, measured with :func:`netvolume.measure.measure_study` and written to
   ``OUT/studies/<name>/``. The time points are ordered by the measured series' date.
2. Each follow-up's reference image (the CT; a PET / SPECT when there is no CT) is
   registered to the baseline's, rigid then affine
   (:func:`netvolume.longitudinal._register.register_followup`); its lesion centroids are
   mapped into the baseline frame and its lesion label map resampled onto the baseline
   grid (nearest neighbour) to measure overlaps.
3. Lesions are tracked (:func:`netvolume.assess.tracking.track_lesions`); a user's
   matching table pins lesions first.
4. The tracked lesions become :class:`~netvolume.assess.Observation` records: tracking id
   as lesion id, a lesion not found at a follow-up counts as disappeared (LD 0), a
   fragment carries ``split_from``, a lesion that merged ``merged_into``; bone lesions are
   on a site that is not measured (blastic NET metastases, RECIST 1.1); a lesion touching
   the image border is not reproducible. Then :func:`netvolume.assess.course.assess_course`.

:func:`assess_measurements` (``netvolume assess --measurements TABLE.csv``) runs step 4's
engine on every patient of a table; a patient whose records are contradictory is listed
under ``failures`` and the others are still assessed.

The patient key written in the outputs is the ``PATIENT_DIR`` folder name (or the
table's ``patient_id``): the DICOM PatientID never appears in outputs or messages.
"""

from __future__ import annotations

import csv
import dataclasses
import datetime
import itertools
import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from netvolume.assess._records import Observation, TimePoint
from netvolume.assess.course import AssessSettings, PatientAssessment, assess_course
from netvolume.assess.table import read_measurement_table
from netvolume.assess.tracking import TrackingResult, TrackInput, track_lesions
from netvolume.errors import AssessmentInputError, InputPathError, NetVolumeError
from netvolume.io.nifti import read_nifti
from netvolume.longitudinal._register import (
    Registration,
    identity_registration,
    labels_on_baseline,
    register_followup,
)
from netvolume.longitudinal._write import (
    assessment_json,
    output_folder,
    timepoints_csv,
    tracking_csv,
)
from netvolume.volume import Volume

__all__ = [
    "NON_MEASURABLE_ORGANS",
    "AssessResult",
    "assess_measurements",
    "assess_patient_dir",
]

logger = logging.getLogger(__name__)

#: Lesions on these organs are never targets: NET bone metastases are mostly
#: osteoblastic, which RECIST 1.1 lists as non-measurable.
NON_MEASURABLE_ORGANS: frozenset[str] = frozenset({"bone"})


@dataclass
class AssessResult:
    """What ``netvolume assess`` produced: one assessment per patient, the failures (key
    -> reason), and for images the tracking."""

    assessments: list[PatientAssessment]
    failures: dict[str, str]
    tracking: TrackingResult | None = None
    registrations: dict[str, Any] = field(default_factory=dict)


# --------------------------------------------------------------------------- table


def assess_measurements(
    table: str | Path,
    out: str | Path,
    *,
    settings: AssessSettings | None = None,
    overwrite: bool = False,
) -> AssessResult:
    """Assess every patient of a measurement table and write ``OUT``.

    Parameters
    ----------
    table : str or Path
        The CSV (columns: :mod:`netvolume.assess.table`).
    out : str or Path
        Output folder: ``timepoints.csv`` and ``assessment.json``.
    settings : AssessSettings, optional
    overwrite : bool
        Replace a previous assess output.

    Returns
    -------
    AssessResult

    Raises
    ------
    InputPathError
        The table cannot be read, or ``out`` may not be written.
    AssessmentInputError
        The table as a whole is unusable (header, a value that does not parse). A
        patient whose records contradict RECIST is listed in ``failures`` instead.
    """
    s = settings or AssessSettings()
    courses = read_measurement_table(table)
    assessments: list[PatientAssessment] = []
    failures: dict[str, str] = {}
    for pid, course in courses.items():
        try:
            assessments.append(
                assess_course(
                    pid,
                    course.timepoints,
                    s,
                    baseline_date=course.baseline_date,
                    source=course.source,
                )
            )
        except AssessmentInputError as exc:
            failures[pid] = str(exc)
            logger.warning("patient %s not assessed: %s", pid, exc)
    source = next(iter(courses.values())).source
    with output_folder(out, overwrite=overwrite) as tmp:
        (tmp / "timepoints.csv").write_bytes(timepoints_csv(assessments))
        (tmp / "assessment.json").write_bytes(
            assessment_json(
                assessments,
                failures=failures,
                settings=s.to_dict(),
                inputs={"measurements": source},
            )
        )
    return AssessResult(assessments, failures)


# --------------------------------------------------------------------------- images


@dataclass
class _Lesion:
    lesion_id: int
    organ: str
    nodal: bool
    ld_mm: float
    sa_mm: float
    volume_ml: float
    centroid_mm: tuple[float, float, float]
    qc_flags: frozenset[str]


@dataclass
class _Study:
    name: str
    folder: Path
    date: datetime.date
    lesions: list[_Lesion]
    labels: Volume | None
    slice_thickness_mm: float | None
    liver_volume_ml: float | None
    liver_tumour_volume_ml: float | None
    study_dir: Path
    reference_uid: str | None
    study_uid: str
    reference_image: Volume | None = None
    measured_here: bool = False


def _is_measurement(folder: Path) -> bool:
    return (folder / "study.json").is_file() and (folder / "lesions.csv").is_file()


def _date_of(text: str | None, where: Path) -> datetime.date:
    if not text:
        raise AssessmentInputError(
            "the study has no acquisition date, so it cannot be placed in time",
            files=[where],
            tag="AcquisitionDate",
            hint="name the dates in a measurement table and use --measurements",
        )
    return datetime.date.fromisoformat(text[:10])


def _float(text: str) -> float | None:
    return float(text) if text not in ("", None) else None


def _read_output(name: str, folder: Path) -> _Study:
    """A ``netvolume measure`` output folder."""
    doc = json.loads((folder / "study.json").read_text(encoding="utf-8"))
    lesions = []
    with (folder / "lesions.csv").open(encoding="utf-8", newline="") as fh:
        for row in csv.DictReader(fh):
            lesions.append(
                _Lesion(
                    lesion_id=int(row["lesion_id"]),
                    organ=row["organ"],
                    nodal=row["nodal"] == "true",
                    ld_mm=float(row["ld_mm"]),
                    sa_mm=float(row["sa_mm"]),
                    volume_ml=float(row["volume_ml"]),
                    centroid_mm=(
                        float(row["centroid_x_mm"]),
                        float(row["centroid_y_mm"]),
                        float(row["centroid_z_mm"]),
                    ),
                    qc_flags=frozenset(f for f in row.get("qc_flags", "").split(";") if f),
                )
            )
    mask = folder / "masks" / "lesions.nii.gz"
    labels = read_nifti(mask) if mask.is_file() else None
    if lesions and labels is None:
        raise InputPathError(
            "measurement output without masks/lesions.nii.gz",
            files=[folder],
            hint="re-run netvolume measure on the study",
        )
    return _Study(
        name=name,
        folder=folder,
        date=_date_of(doc.get("study_date"), folder / "study.json"),
        lesions=lesions,
        labels=labels,
        slice_thickness_mm=(doc.get("grid") or {}).get("slice_thickness_mm"),
        liver_volume_ml=doc.get("liver_volume_ml"),
        liver_tumour_volume_ml=doc.get("liver_tumour_volume_ml"),
        study_dir=Path(doc.get("study_dir", "")),
        reference_uid=doc.get("ct_series_uid") or doc.get("pet_series_uid"),
        study_uid=doc.get("study_instance_uid", ""),
    )


def _measure(name: str, folder: Path, out: Path) -> _Study:
    """Measure a DICOM study, write its output under ``out``, and read it back."""
    from netvolume.measure import measure_study, write_measurement

    m = measure_study(folder)
    write_measurement(m, out)
    study = _read_output(name, out)
    study.measured_here = True
    return study


def _reference_image(study: _Study) -> Volume:
    """The image the registration uses: the measured CT, or the PET / SPECT."""
    if study.reference_image is not None:
        return study.reference_image
    from netvolume.io import dicom, pet

    if not study.study_dir.is_dir():
        raise InputPathError(
            "the source images of a measurement output are not found (study_dir in its "
            "study.json), so the follow-up cannot be registered",
            files=[study.folder / "study.json", study.study_dir],
            hint="keep the DICOM study where it was measured, or pass --no-register "
            "when the studies share a frame of reference",
        )
    catalogue = dicom.scan(study.study_dir)
    series = next((s for s in catalogue.series if s.uid == study.reference_uid), None)
    if series is None:
        raise InputPathError(
            f"the measured series {study.reference_uid} is no longer in the study folder",
            files=[study.study_dir],
            hint="re-run netvolume measure on the study",
        )
    image = pet.load_activity(series) if series.modality in ("PT", "NM") else dicom.load(series)
    study.reference_image = image
    return image


def _discover(folder: Path) -> list[Path]:
    subs = sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not subs:
        raise InputPathError(
            "PATIENT_DIR has no sub-folders: it must hold one folder per time point",
            files=[folder],
            hint="put each study (DICOM, or a netvolume measure output) in its own folder",
        )
    return subs


def _read_matching(path: Path, names: Sequence[str]) -> dict[tuple[int, int], str]:
    index = {n: i for i, n in enumerate(names)}
    pinned: dict[tuple[int, int], str] = {}
    with path.open(encoding="utf-8-sig", newline="") as fh:
        reader = csv.DictReader(fh)
        need = {"study", "lesion_id", "tracking_id"}
        if not need <= set(reader.fieldnames or []):
            raise AssessmentInputError(
                "matching table needs the columns study, lesion_id, tracking_id",
                files=[path],
                tag="header",
            )
        for line, row in enumerate(reader, start=2):
            study = (row["study"] or "").strip()
            if study not in index:
                raise AssessmentInputError(
                    f"line {line}: study {study!r} is not one of {', '.join(names)}",
                    files=[path],
                    tag="study",
                )
            try:
                lesion = int(row["lesion_id"])
            except ValueError:
                raise AssessmentInputError(
                    f"line {line}: lesion_id {row['lesion_id']!r} is not an integer",
                    files=[path],
                    tag="lesion_id",
                ) from None
            tid = (row["tracking_id"] or "").strip()
            if not tid:
                raise AssessmentInputError(
                    f"line {line}: empty tracking_id", files=[path], tag="tracking_id"
                )
            pinned[(index[study], lesion)] = tid
    return pinned


def _overlaps(
    arrays: Sequence[np.ndarray], voxel_ml: float
) -> dict[tuple[int, int, int, int], float]:
    """Overlap (mL) of every pair of lesions of different time points, same grid."""
    out: dict[tuple[int, int, int, int], float] = {}
    for a in range(len(arrays)):
        for b in range(a + 1, len(arrays)):
            both = (arrays[a] > 0) & (arrays[b] > 0)
            if not both.any():
                continue
            la = arrays[a][both].astype(np.int64)
            lb = arrays[b][both].astype(np.int64)
            keys, counts = np.unique(la * (int(lb.max()) + 1) + lb, return_counts=True)
            for key, count in zip(keys, counts, strict=True):
                i, j = divmod(int(key), int(lb.max()) + 1)
                out[(a, i, b, j)] = float(count) * voxel_ml
    return out


def _observations(
    studies: Sequence[_Study], tracking: TrackingResult, baseline_date: datetime.date
) -> list[TimePoint]:
    """Tracked lesions as Observation records, one TimePoint per study."""
    state: dict[str, str] = {}  # tracking id -> present / gone / merged:<id>
    parent: dict[str, str] = {}
    seen: dict[str, Observation] = {}  # tracking id -> its last observation with a lesion
    # tracking id -> (organ, nodal) where first seen: a tracked lesion keeps its category
    # (RECIST 1.1: a node stays a node), whatever a later automatic measurement calls it
    category: dict[str, tuple[str, bool]] = {}
    tps: list[TimePoint] = []
    for t, study in enumerate(studies):
        lesion = {les.lesion_id: les for les in study.lesions}
        obs: list[Observation] = []
        notes: list[str] = []
        for a in tracking.at(t):
            if a.lesion_id is None:
                state[a.tracking_id] = f"merged:{a.related}" if a.status == "merged" else "gone"
                continue
            les = lesion[a.lesion_id]
            if a.status == "split" and a.related is not None:
                parent[a.tracking_id] = parent.get(a.related, a.related)
            split_from = parent.get(a.tracking_id)
            state[a.tracking_id] = "present"
            organ, nodal = category.setdefault(
                a.tracking_id, category.get(split_from or "", (les.organ, les.nodal))
            )
            if (organ, nodal) != (les.organ, les.nodal):
                notes.append(
                    f"{a.tracking_id} ({study.name} lesion {les.lesion_id}) was measured as "
                    f"{les.organ} (nodal={les.nodal}); it keeps the category it was first "
                    f"seen with, {organ} (nodal={nodal})"
                )
            obs.append(
                Observation(
                    lesion_id=a.tracking_id,
                    organ=organ,
                    nodal=nodal,
                    ld_mm=les.ld_mm,
                    sa_mm=les.sa_mm,
                    # new only after the RECIST baseline (a lesion first seen on the
                    # baseline scan, after a pre-baseline one, is a baseline lesion)
                    is_new=a.status == "new" and study.date > baseline_date and not nodal,
                    split_from=split_from,
                    measurable_site=organ not in NON_MEASURABLE_ORGANS,
                    reproducible="touches_border" not in les.qc_flags,
                    volume_ml=les.volume_ml,
                    source=f"{study.name} lesion {les.lesion_id}",
                )
            )
        for o in obs:
            seen[o.lesion_id] = o
        listed = {o.lesion_id for o in obs}
        for tid, st in state.items():
            if tid in listed or st == "present":
                continue
            last = seen[tid]
            merged = st.startswith("merged:")
            obs.append(
                Observation(
                    tid,
                    last.organ,
                    last.nodal,
                    None if merged else 0.0,
                    None if merged else 0.0,
                    merged_into=st.removeprefix("merged:") if merged else None,
                    split_from=parent.get(tid),
                    volume_ml=None if merged else 0.0,
                    source=f"{study.name}: " + ("merged" if merged else "not found (disappeared)"),
                )
            )
        tps.append(
            TimePoint(
                date=study.date,
                observations=tuple(obs),
                slice_thickness_mm=study.slice_thickness_mm,
                liver_volume_ml=study.liver_volume_ml,
                liver_tumour_volume_ml=study.liver_tumour_volume_ml,
                source=f"{study.name} (StudyInstanceUID {study.study_uid})",
                notes=tuple(notes),
            )
        )
    # on a pre-baseline scan, a lesion first seen later was not there yet: 0 mm (the
    # image was looked at), so that the targets' sum, hence TGR0, is defined
    first: dict[str, Observation] = {}
    for tp in tps:
        for o in tp.observations:
            first.setdefault(o.lesion_id, o)
    for i, tp in enumerate(tps):
        if tp.date >= baseline_date:
            break
        listed = {o.lesion_id for o in tp.observations}
        absent = [
            Observation(
                tid,
                o.organ,
                o.nodal,
                0.0,
                0.0,
                volume_ml=0.0,
                source=f"{studies[i].name}: not there yet (pre-baseline)",
            )
            for tid, o in first.items()
            if tid not in listed and o.split_from is None and o.merged_into is None
        ]
        tps[i] = dataclasses.replace(tp, observations=(*tp.observations, *absent))
    return tps


def _tracking_rows(
    patient: str, studies: Sequence[_Study], tracking: TrackingResult
) -> list[dict[str, Any]]:
    rows = []
    for a in tracking.assignments:
        study = studies[a.timepoint]
        les = next((x for x in study.lesions if x.lesion_id == a.lesion_id), None)
        rows.append(
            {
                "patient_id": patient,
                "date": study.date.isoformat(),
                "study": study.name,
                "lesion_id": a.lesion_id,
                "tracking_id": a.tracking_id,
                "status": a.status,
                "related_tracking_id": a.related,
                "overlap_fraction": a.overlap_fraction,
                "distance_mm": a.distance_mm,
                "pinned": a.pinned,
                "organ": les.organ if les else None,
                "ld_mm": les.ld_mm if les else None,
                "sa_mm": les.sa_mm if les else None,
                "volume_ml": les.volume_ml if les else None,
                "centroid_x_mm": les.centroid_mm[0] if les else None,
                "centroid_y_mm": les.centroid_mm[1] if les else None,
                "centroid_z_mm": les.centroid_mm[2] if les else None,
            }
        )
    return rows


def assess_patient_dir(
    folder: str | Path,
    out: str | Path,
    *,
    settings: AssessSettings | None = None,
    baseline_date: datetime.date | None = None,
    matching: str | Path | None = None,
    register: bool = True,
    overwrite: bool = False,
) -> AssessResult:
    """Measure (where needed), register, track and assess one patient's studies.

    Parameters
    ----------
    folder : str or Path
        ``PATIENT_DIR``: one sub-folder per time point (DICOM study or measure output).
    out : str or Path
        Output folder: ``timepoints.csv``, ``assessment.json``, ``tracking.csv``,
        ``studies/<name>/`` for the studies measured here.
    settings : AssessSettings, optional
    baseline_date : datetime.date, optional
        The baseline; earlier studies are pre-baseline (TGR0). Default: the first.
    matching : str or Path, optional
        A CSV (``study``, ``lesion_id``, ``tracking_id``) pinning lesions to tracks.
    register : bool
        Register follow-ups to the baseline (False: identity, for studies sharing one
        frame of reference or fully matched by hand).
    overwrite : bool
        Replace a previous assess output.

    Returns
    -------
    AssessResult
        ``failures`` lists studies that could not be measured or read (the patient is
        then not assessed: a missing time point would change the answer).

    Raises
    ------
    InputPathError, AssessmentInputError, RegistrationError
        The folder, the matching table or a registration is unusable.
    """
    folder = Path(folder)
    s = settings or AssessSettings()
    patient = folder.resolve().name
    subs = _discover(folder)
    failures: dict[str, str] = {}
    with output_folder(out, overwrite=overwrite) as tmp:
        studies: list[_Study] = []
        for sub in subs:
            try:
                if _is_measurement(sub):
                    studies.append(_read_output(sub.name, sub))
                else:
                    studies.append(_measure(sub.name, sub, tmp / "studies" / sub.name))
            except NetVolumeError as exc:
                failures[f"{patient}/{sub.name}"] = str(exc)
                logger.warning("study %s failed: %s", sub.name, exc)
        if failures:
            failures[patient] = (
                "not assessed: " + ", ".join(sorted(failures)) + " could not be measured"
            )
            (tmp / "assessment.json").write_bytes(
                assessment_json(
                    [], failures=failures, settings=s.to_dict(), inputs={"patient_dir": str(folder)}
                )
            )
            (tmp / "timepoints.csv").write_bytes(timepoints_csv([]))
            return AssessResult([], failures)

        studies.sort(key=lambda st: st.date)
        for a, b in itertools.pairwise(studies):
            if a.date == b.date:
                raise AssessmentInputError(
                    f"studies {a.name} and {b.name} have the same date {a.date.isoformat()}",
                    files=[a.folder, b.folder],
                    tag="AcquisitionDate",
                    hint="one time point per date: remove the duplicate study",
                )
        names = [st.name for st in studies]
        base = studies[0]
        registrations: list[Registration] = [identity_registration()]
        for st in studies[1:]:
            if register:
                fixed, moving = _reference_image(base), _reference_image(st)
                # on CT (or MR) rigid then affine; a PET / SPECT without CT rigid only:
                # its uptake changes between visits and an affine stage takes that for
                # a scaling of the body (7 % along z on the Lu-177 pair)
                stages = ("rigid",) if fixed.modality in ("PT", "NM") else ("rigid", "affine")
                registrations.append(register_followup(fixed, moving, stages=stages))
            else:
                registrations.append(identity_registration())
            st.reference_image = None  # free the follow-up's image

        lesions: list[TrackInput] = []
        for t, (st, reg) in enumerate(zip(studies, registrations, strict=True)):
            for les in st.lesions:
                centre = reg.followup_to_baseline(np.asarray([les.centroid_mm]))[0]
                lesions.append(
                    TrackInput(
                        t,
                        les.lesion_id,
                        (float(centre[0]), float(centre[1]), float(centre[2])),
                        les.volume_ml,
                        les.organ,
                    )
                )
        overlap: dict[tuple[int, int, int, int], float] = {}
        grids = [st.labels for st in studies]
        if base.labels is not None:
            arrays = [
                np.zeros(base.labels.spatial_shape, np.int32)
                if g is None
                else (
                    np.asarray(g.array, dtype=np.int32)
                    if t == 0
                    else labels_on_baseline(g, base.labels, registrations[t]).astype(np.int32)
                )
                for t, g in enumerate(grids)
            ]
            overlap = _overlaps(arrays, base.labels.voxel_volume_ml)
        pinned = _read_matching(Path(matching), names) if matching is not None else None
        tracking = track_lesions(lesions, overlap, len(studies), s.tracking, pinned=pinned)
        if baseline_date is not None and baseline_date not in {st.date for st in studies}:
            raise AssessmentInputError(
                f"--baseline-date {baseline_date.isoformat()} is not the date of a study ("
                + ", ".join(f"{st.name} {st.date.isoformat()}" for st in studies)
                + ")",
                tag="baseline_date",
            )
        tps = _observations(studies, tracking, baseline_date or studies[0].date)
        assessment = assess_course(
            patient,
            tps,
            s,
            baseline_date=baseline_date,
            source=f"{folder} ({len(studies)} studies)",
        )
        (tmp / "tracking.csv").write_bytes(tracking_csv(_tracking_rows(patient, studies, tracking)))
        (tmp / "timepoints.csv").write_bytes(timepoints_csv([assessment]))
        regs = {st.name: r.to_dict() for st, r in zip(studies, registrations, strict=True)}
        (tmp / "assessment.json").write_bytes(
            assessment_json(
                [assessment],
                failures={},
                settings=s.to_dict(),
                inputs={
                    "patient_dir": str(folder),
                    "studies": {
                        st.name: {
                            "date": st.date.isoformat(),
                            "study_instance_uid": st.study_uid,
                            "reference_series_uid": st.reference_uid,
                            "measured_here": st.measured_here,
                        }
                        for st in studies
                    },
                    "registrations": regs,
                    "tracking": tracking.settings,
                },
            )
        )
    return AssessResult([assessment], {}, tracking, regs)

"""Patients and time points of a whole export tree, from the DICOM headers alone.

:func:`discover` walks ``EXPORT_DIR`` (any layout: one folder per patient, per study, per
series, or everything in one folder), reads each file's header up to the few tags it
needs, and groups the files by PatientID and StudyInstanceUID. The folder names play no
part: a study split over two folders is one study, two studies in one folder are two.

The real PatientID is held in memory only (:attr:`FoundPatient.patient_id`); everything
written from here on uses the pseudonymous key of :mod:`netvolume.batch.keys`.
"""

from __future__ import annotations

import datetime
import os
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pydicom
from pydicom.errors import InvalidDicomError

from netvolume.errors import InputPathError

__all__ = ["Discovery", "FoundFile", "FoundPatient", "FoundStudy", "discover"]

#: Tags read from every file (header only, up to the last of these).
_TAGS = (
    "PatientID",
    "StudyInstanceUID",
    "StudyDate",
    "SeriesDate",
    "AcquisitionDate",
    "SeriesInstanceUID",
    "Modality",
    "SOPInstanceUID",
)

#: Modalities measured as images; other objects (SEG, RTSTRUCT, SR, PR...) are kept with
#: their study but do not make a study on their own.
IMAGE_MODALITIES = frozenset({"CT", "MR", "PT", "NM"})


@dataclass(frozen=True)
class FoundFile:
    """One DICOM file: path, size (bytes) and modification time (ns) for the hash cache."""

    path: str
    size: int
    mtime_ns: int
    series_instance_uid: str
    modality: str


@dataclass
class FoundStudy:
    """One study (time point) of one patient.

    ``study_date`` is the StudyDate, else the earliest SeriesDate / AcquisitionDate of its
    images (ISO); None when none of them is present (the study is then a failure).
    """

    study_instance_uid: str
    study_date: str | None
    files: list[FoundFile] = field(default_factory=list)

    @property
    def modalities(self) -> list[str]:
        """Modalities present, sorted."""
        return sorted({f.modality for f in self.files})

    @property
    def series(self) -> dict[str, tuple[str, int]]:
        """SeriesInstanceUID -> (modality, number of files)."""
        n = Counter(f.series_instance_uid for f in self.files)
        mod = {f.series_instance_uid: f.modality for f in self.files}
        return {uid: (mod[uid], n[uid]) for uid in sorted(n)}

    @property
    def has_images(self) -> bool:
        """True when at least one CT / MR / PT / NM file is in the study."""
        return any(f.modality in IMAGE_MODALITIES for f in self.files)


@dataclass
class FoundPatient:
    """One patient: the real PatientID (memory only) and their studies by UID."""

    patient_id: str
    studies: dict[str, FoundStudy] = field(default_factory=dict)


@dataclass
class Discovery:
    """What :func:`discover` found.

    Attributes
    ----------
    root : Path
    patients : dict of str -> FoundPatient
        Keyed by the real PatientID (never written).
    unused : dict of str -> str
        Path -> reason (``not_dicom``, ``unreadable``, ``unreadable folder``,
        ``missing PatientID`` ...).
    num_files : int
        Files looked at.
    """

    root: Path
    patients: dict[str, FoundPatient]
    unused: dict[str, str]
    num_files: int

    @property
    def num_studies(self) -> int:
        """Studies with at least one image."""
        return sum(1 for p in self.patients.values() for s in p.studies.values() if s.has_images)


def _walk(root: Path, unused: dict[str, str]) -> Iterator[Path]:
    """Every file under ``root``, symbolic links followed, each real folder once; a folder
    or entry that cannot be read is recorded in ``unused`` with its reason."""
    seen: set[tuple[int, int]] = set()
    stack = [root]
    while stack:
        folder = stack.pop()
        try:
            st = folder.stat()
        except OSError as exc:
            unused[str(folder)] = f"unreadable folder: {type(exc).__name__}"
            continue
        if (st.st_dev, st.st_ino) in seen:
            continue
        seen.add((st.st_dev, st.st_ino))
        try:
            entries = sorted(os.scandir(folder), key=lambda e: e.name)
        except OSError as exc:
            unused[str(folder)] = f"unreadable folder: {type(exc).__name__}"
            continue
        subs = []
        for e in entries:
            if e.name.startswith(".") and e.is_dir():
                continue  # hidden folders (editors' and netvolume's own temporary ones)
            try:
                if e.is_dir():
                    subs.append(Path(e.path))
                elif e.is_file():
                    yield Path(e.path)
            except OSError as exc:
                unused[e.path] = f"unreadable: {type(exc).__name__}"
        stack.extend(reversed(subs))


def _iso(text: str) -> str | None:
    text = text.strip()
    if len(text) < 8 or not text[:8].isdigit():
        return None
    try:
        return datetime.date(int(text[:4]), int(text[4:6]), int(text[6:8])).isoformat()
    except ValueError:
        return None


def discover(export_dir: str | os.PathLike[str]) -> Discovery:
    """Group every DICOM file under ``export_dir`` by patient and study.

    Parameters
    ----------
    export_dir
        The export tree (walked recursively, symbolic links followed without loops,
        hidden folders skipped).

    Returns
    -------
    Discovery

    Raises
    ------
    InputPathError
        If ``export_dir`` does not exist or is not a folder.
    """
    root = Path(export_dir)
    if not root.is_dir():
        raise InputPathError(
            f"export folder does not exist or is not a folder: {root}",
            files=[root],
            hint="give the folder holding the exported DICOM studies",
        )
    patients: dict[str, FoundPatient] = {}
    unused: dict[str, str] = {}
    dates: dict[tuple[str, str], list[str]] = defaultdict(list)
    n = 0
    for path in _walk(root, unused):
        n += 1
        try:
            st = path.stat()
            ds = pydicom.dcmread(path, stop_before_pixels=True, specific_tags=list(_TAGS))
        except InvalidDicomError:
            unused[str(path)] = "not_dicom"
            continue
        except PermissionError:
            unused[str(path)] = "permission_denied"
            continue
        except (OSError, ValueError, EOFError, AttributeError, KeyError, TypeError) as exc:
            unused[str(path)] = f"unreadable: {type(exc).__name__}"
            continue
        missing = [k for k in ("PatientID", "StudyInstanceUID") if not str(ds.get(k, "") or "")]
        if missing:
            unused[str(path)] = "missing " + " and ".join(missing)
            continue
        pid = str(ds.PatientID)
        suid = str(ds.StudyInstanceUID)
        patient = patients.setdefault(pid, FoundPatient(pid))
        study = patient.studies.get(suid)
        if study is None:
            study = patient.studies[suid] = FoundStudy(suid, _iso(str(ds.get("StudyDate", ""))))
        if study.study_date is None:
            for tag in ("SeriesDate", "AcquisitionDate"):
                d = _iso(str(ds.get(tag, "") or ""))
                if d:
                    dates[(pid, suid)].append(d)
        study.files.append(
            FoundFile(
                str(path),
                st.st_size,
                st.st_mtime_ns,
                str(ds.get("SeriesInstanceUID", "") or ""),
                str(ds.get("Modality", "") or "").upper(),
            )
        )
    for (pid, suid), found in dates.items():
        study = patients[pid].studies[suid]
        if study.study_date is None and found:
            study.study_date = min(found)
    return Discovery(root, patients, unused, n)

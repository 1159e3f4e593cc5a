"""Input records of the longitudinal engines: one lesion observation, one time point.

These are plain, immutable records with no image in them: the measurement table
(``netvolume assess --measurements``) and the image pipeline (tracking) both produce
them, and the RECIST 1.1, volumetric and growth-rate engines read them.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass, field

__all__ = ["NONTARGET_STATUSES", "Observation", "TimePoint"]

#: Values of :attr:`Observation.nontarget_status` (the radiologist's reading of a
#: non-target lesion at a follow-up).
NONTARGET_STATUSES: frozenset[str] = frozenset({"present", "absent", "unequivocal_progression"})


@dataclass(frozen=True)
class Observation:
    """One lesion at one time point.

    Parameters
    ----------
    lesion_id : str
        Identity of the lesion, stable across the patient's time points (a tracking id).
    organ : str
        Organ or site (``liver``, ``lymph_node``, ``bone``, ...). All nodal lesions count
        as one organ for target selection whatever this says.
    nodal : bool
        A lymph node: measured by its short axis.
    ld_mm : float or None
        Long axis in the axial plane, mm. None: not measured; 0: disappeared.
    sa_mm : float or None
        Short axis perpendicular to it, mm. None: not measured.
    too_small : bool
        "Too small to measure": present but not measurable; counts as
        :attr:`RecistSettings.too_small_mm` only because no number was recorded.
    is_new : bool
        Reported as an unequivocal new lesion at this time point.
    equivocal_new : bool
        Reported as a possible (equivocal) new lesion: not PD yet; if the same lesion is
        confirmed as new later, progression is dated to this time point.
    nontarget_status : str or None
        ``present``, ``absent`` or ``unequivocal_progression`` for a non-target lesion;
        None: derive it from the measurements.
    target : bool or None
        At baseline, a user's target selection (overrides the automatic choice); None:
        automatic.
    split_from : str or None
        For a fragment of a lesion that split: the id of the lesion it came from.
    merged_into : str or None
        For a lesion that coalesced with another: the id of the lesion that now carries
        the merged diameter (this one then counts 0 mm).
    measurable_site : bool
        False for a site that cannot be measured reproducibly (bone without soft-tissue
        component, a lesion seen only on PET, ...): never a target.
    reproducible : bool
        False puts the lesion after the reproducible ones in the automatic target choice
        (a lesion touching the image border, for example).
    volume_ml : float or None
        Volume, mL (for the volumetric response); None: not available.
    source : str
        Where the observation came from (a table row, a study and its lesion id):
        provenance carried into the assessment's evidence.
    """

    lesion_id: str
    organ: str
    nodal: bool
    ld_mm: float | None
    sa_mm: float | None
    too_small: bool = False
    is_new: bool = False
    equivocal_new: bool = False
    nontarget_status: str | None = None
    target: bool | None = None
    split_from: str | None = None
    merged_into: str | None = None
    measurable_site: bool = True
    reproducible: bool = True
    volume_ml: float | None = None
    source: str = ""


@dataclass(frozen=True)
class TimePoint:
    """One imaging time point of a patient.

    Parameters
    ----------
    date : datetime.date
        Date of the scan.
    observations : tuple of Observation
        Every lesion seen (or looked for) at this time point.
    slice_thickness_mm : float or None
        Reconstructed slice thickness; at baseline it sets the measurability threshold
        (twice the thickness above 5 mm). None: assumed 5 mm or thinner.
    liver_volume_ml, liver_tumour_volume_ml : float or None
        From the image measurement, for the liver tumour burden over time.
    source : str
        Provenance: the study (UID or folder) or the table the time point came from.
    """

    date: datetime.date
    observations: tuple[Observation, ...]
    slice_thickness_mm: float | None = None
    liver_volume_ml: float | None = None
    liver_tumour_volume_ml: float | None = None
    source: str = ""
    notes: tuple[str, ...] = field(default=())

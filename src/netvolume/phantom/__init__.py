"""A synthetic NET patient phantom: CT + Ga-68 DOTATATE PET DICOM studies with known truth.

No public Ga-68 DOTATATE PET/CT comes with liver, spleen and lesion masks, so netvolume
makes its own ground truth: a deterministic generator of patients (body, liver, spleen,
kidneys, aorta, spine, bowel; liver metastases, lymph nodes, bone lesions and a small-bowel
primary) followed over several time points, written as DICOM with ``truth.json`` and
truth label maps beside each study. See ``docs/phantom.md``.

Example
-------
>>> from netvolume.phantom import PhantomSettings, generate_cohort
>>> records = generate_cohort("out/phantom", PhantomSettings(patients=2, timepoints=2))
... # doctest: +SKIP
"""

from netvolume.phantom._anatomy import COURSES, PatientModel, build_patient, krenning_grade
from netvolume.phantom._cohort import (
    CLINICAL_COLUMNS,
    PHANTOM_MODEL_VERSION,
    SIZES,
    PhantomSettings,
    StudyRecord,
    generate_cohort,
)
from netvolume.phantom._recist import CourseAssessment, TruthLesion, Visit, assess_course
from netvolume.phantom._render import Grid, Pose
from netvolume.phantom._shapes import EllipticCylinder, StarShape
from netvolume.phantom._study import SCANNERS, Scanner

__all__ = [
    "CLINICAL_COLUMNS",
    "COURSES",
    "PHANTOM_MODEL_VERSION",
    "SCANNERS",
    "SIZES",
    "CourseAssessment",
    "EllipticCylinder",
    "Grid",
    "PatientModel",
    "PhantomSettings",
    "Pose",
    "Scanner",
    "StarShape",
    "StudyRecord",
    "TruthLesion",
    "Visit",
    "assess_course",
    "build_patient",
    "generate_cohort",
    "krenning_grade",
]

"""Single-study measurement: ``netvolume measure STUDY_DIR``.

:func:`measure_study` loads a study's CT (or MR) and Ga-68 PET, segments liver, spleen and
lesions (or imports the masks given), and measures every lesion (volume, RECIST axes,
CT attenuation, SUVmax / mean / peak, Krenning grade); :func:`write_measurement` writes
``lesions.csv``, ``study.json`` and the masks (NIfTI and DICOM SEG). See
``docs/measure.md``.
"""

from netvolume.measure._inputs import StudyInputs, load_study, pet_on_grid, select_series
from netvolume.measure._measure import krenning_grade, measure_study
from netvolume.measure._records import LESION_COLUMNS, LesionRecord, ReferenceVOI, StudyMeasurement
from netvolume.measure._segment import SegmentationError
from netvolume.measure._settings import MeasureSettings, SettingsError
from netvolume.measure._write import write_measurement

__all__ = [
    "LESION_COLUMNS",
    "LesionRecord",
    "MeasureSettings",
    "ReferenceVOI",
    "SegmentationError",
    "SettingsError",
    "StudyInputs",
    "StudyMeasurement",
    "krenning_grade",
    "load_study",
    "measure_study",
    "pet_on_grid",
    "select_series",
    "write_measurement",
]

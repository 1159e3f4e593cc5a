"""The static HTML report of a batch run, and the key images of each study's lesions.

* :func:`render_key_images` draws, for each lesion of a freshly measured study, a small
  PNG (CT with the lesion's contour and RECIST callipers, PET SUV fused on the CT) and
  its alt text; the batch's per-study worker calls it right after the measurement.
* :func:`write_report` reads a batch output folder (studies, assessments, eligibility,
  tables) and writes ``OUT/report/``: a cohort page, one page per patient and the
  figures, plain HTML with inline CSS that opens from disk. See ``docs/report.md``.
"""

from netvolume.report._common import ReportInputError
from netvolume.report.html import write_report
from netvolume.report.keyimage import render_key_images

__all__ = ["ReportInputError", "render_key_images", "write_report"]

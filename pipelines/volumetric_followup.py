"""Pipeline of the seed protocol ``volumetric_followup`` (003_db8c85ca762135cc.txt).

Volumetric imaging follow-up of liver metastases of small-intestine NET.

Measures and assesses every patient of a cohort, evaluates the protocol's eligibility and
runs its planned analysis (see docs/trials.md)::

    python pipelines/volumetric_followup.py COHORT_DIR --clinical FACTS.csv -o OUT
    python pipelines/volumetric_followup.py --imaging ASSESS_OUTPUTS --clinical FACTS.csv -o OUT

The same as ``netvolume analyse --pipeline volumetric_followup ...``; every option of that command
applies (``--population``, ``--overwrite``, ``--no-register``, ``-q``).
"""

from __future__ import annotations

import sys

from netvolume.cli import main

if __name__ == "__main__":
    sys.exit(main(["analyse", "--pipeline", "volumetric_followup", *sys.argv[1:]]))

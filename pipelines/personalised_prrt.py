"""Pipeline of the seed protocol ``personalised_prrt`` (004_975c2c22f2c3e1d5.txt).

Personalised (dosimetry-based) versus non-personalised PRRT in NEN.

Measures and assesses every patient of a cohort, evaluates the protocol's eligibility and
runs its planned analysis (see docs/trials.md)::

    python pipelines/personalised_prrt.py COHORT_DIR --clinical FACTS.csv -o OUT
    python pipelines/personalised_prrt.py --imaging ASSESS_OUTPUTS --clinical FACTS.csv -o OUT

The same as ``netvolume analyse --pipeline personalised_prrt ...``; every option of that command
applies (``--population``, ``--overwrite``, ``--no-register``, ``-q``).
"""

from __future__ import annotations

import sys

from netvolume.cli import main

if __name__ == "__main__":
    sys.exit(main(["analyse", "--pipeline", "personalised_prrt", *sys.argv[1:]]))

"""Pipeline of the seed protocol ``lesion_based_prrt`` (001_884f8d14586512f2.txt).

Lesion-based PRRT with Lu-177 octreotate in progressive GEP-NET.

Measures and assesses every patient of a cohort, evaluates the protocol's eligibility and
runs its planned analysis (see docs/trials.md)::

    python pipelines/lesion_based_prrt.py COHORT_DIR --clinical FACTS.csv -o OUT
    python pipelines/lesion_based_prrt.py --imaging ASSESS_OUTPUTS --clinical FACTS.csv -o OUT

The same as ``netvolume analyse --pipeline lesion_based_prrt ...``; every option of that command
applies (``--population``, ``--overwrite``, ``--no-register``, ``-q``).
"""

from __future__ import annotations

import sys

from netvolume.cli import main

if __name__ == "__main__":
    sys.exit(main(["analyse", "--pipeline", "lesion_based_prrt", *sys.argv[1:]]))

"""Pipeline of the seed protocol ``retreatment`` (002_8be5153c9b3c3482.txt).

Retreatment with Lutathera (Lu-177 DOTATATE): two more cycles vs active surveillance.

Measures and assesses every patient of a cohort, evaluates the protocol's eligibility and
runs its planned analysis (see docs/trials.md)::

    python pipelines/retreatment.py COHORT_DIR --clinical FACTS.csv -o OUT
    python pipelines/retreatment.py --imaging ASSESS_OUTPUTS --clinical FACTS.csv -o OUT

The same as ``netvolume analyse --pipeline retreatment ...``; every option of that command
applies (``--population``, ``--overwrite``, ``--no-register``, ``-q``).
"""

from __future__ import annotations

import sys

from netvolume.cli import main

if __name__ == "__main__":
    sys.exit(main(["analyse", "--pipeline", "retreatment", *sys.argv[1:]]))

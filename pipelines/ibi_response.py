"""Pipeline of the seed protocol ``ibi_response`` (000_c074da4235c81f12.txt).

Inflammation-based index (IBI) as a predictor of response to Lu-177 oxodotreotide.

Measures and assesses every patient of a cohort, evaluates the protocol's eligibility and
runs its planned analysis (see docs/trials.md)::

    python pipelines/ibi_response.py COHORT_DIR --clinical FACTS.csv -o OUT
    python pipelines/ibi_response.py --imaging ASSESS_OUTPUTS --clinical FACTS.csv -o OUT

The same as ``netvolume analyse --pipeline ibi_response ...``; every option of that command
applies (``--population``, ``--overwrite``, ``--no-register``, ``-q``).
"""

from __future__ import annotations

import sys

from netvolume.cli import main

if __name__ == "__main__":
    sys.exit(main(["analyse", "--pipeline", "ibi_response", *sys.argv[1:]]))

"""netvolume: the imaging pipeline for neuroendocrine-tumour (NET) trials.

DICOM studies (CT/MR and Ga-68 DOTA PET) in, the numbers NET trials run on out.
The public entry points of the data layer are re-exported here::

    from netvolume import scan, load, load_folder, Volume, write_nifti

See ``docs/architecture.md`` for the layers and ``volume.py`` for the one axis
convention used everywhere inside the package.
"""

from netvolume._version import __version__
from netvolume.io.dicom import load, load_files, load_folder, scan
from netvolume.io.nifti import read_nifti, write_nifti
from netvolume.volume import Provenance, Volume

__all__ = [
    "Provenance",
    "Volume",
    "__version__",
    "load",
    "load_files",
    "load_folder",
    "read_nifti",
    "scan",
    "write_nifti",
]

"""Direction cosines shared by the tests that write oblique DICOM series."""

from __future__ import annotations

import numpy as np


def oblique_iop(about_z_deg: float, tilt_deg: float) -> tuple[float, ...]:
    """ImageOrientationPatient of an oblique plane, orthonormal by construction.

    The row cosine is turned ``about_z_deg`` about z; the column cosine is also tilted
    ``tilt_deg`` out of the axial plane.
    """
    a, b = np.deg2rad(about_z_deg), np.deg2rad(tilt_deg)
    return (
        float(np.cos(a)),
        float(np.sin(a)),
        0.0,
        float(-np.sin(a) * np.cos(b)),
        float(np.cos(a) * np.cos(b)),
        float(-np.sin(b)),
    )

"""Helpers for the conformance tests on real DICOM written by other projects.

The material lives *beside* the repository, read in place and never copied into it
(see ``../shared/data/README.md``):

* :func:`external_root` finds it: ``$NETVOLUME_EXTERNAL_DATA`` if set, else
  ``<repo root>/../shared/data``; :func:`external_path` returns a path inside it and skips
  the calling test, with the reason, only when the whole folder is absent. A missing file
  *inside* a present folder is an error (an incomplete copy must not pass silently).
* :func:`volume_to_nib` turns a netvolume :class:`~netvolume.volume.Volume` into a
  ``nibabel`` image *without* going through netvolume's own NIfTI writer, so a test can
  compare the loader alone against a reference.
* :func:`canonical` / :func:`compare_canonical` reorient images to the closest canonical
  (RAS+) orientation with ``nibabel.as_closest_canonical`` and compare grid and voxels.
* :func:`match_reference_lps` compares a Volume with a reference NIfTI directly in LPS, in
  netvolume's array order: the reference affine is converted RAS -> LPS and the index map
  between the two grids must be a signed axis permutation (no resampling).

Tolerances (used by the tests): grid positions agree to ``AFFINE_ATOL_MM = 1e-3`` mm. The
references store their affine as float32 (NIfTI sform), which rounds coordinates of a few
hundred mm to ~1e-5 mm, and both sides read the same decimal strings from the DICOM
headers, so honest agreement is ~1e-5 mm; 1e-3 mm is two orders above that and still
~400 times smaller than the finest voxel in the data (0.418 mm). A wrong sign, axis or a
half-voxel shift is off by >= 0.2 mm and fails.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np
import pytest

#: Environment variable that points at the external data folder.
ENV_VAR = "NETVOLUME_EXTERNAL_DATA"
#: The repository root (this file is ``<root>/tests/_external.py``).
REPO_ROOT = Path(__file__).resolve().parents[1]
#: Agreement required of voxel-to-world maps, in mm (see the module docstring).
AFFINE_ATOL_MM = 1e-3
#: LPS <-> RAS (its own inverse).
LPS_TO_RAS = np.diag([-1.0, -1.0, 1.0, 1.0])


def external_root() -> Path:
    """Return the external data folder (it may not exist)."""
    env = os.environ.get(ENV_VAR)
    if env:
        return Path(env).expanduser().resolve()
    return (REPO_ROOT.parent / "shared" / "data").resolve()


def external_path(*parts: str) -> Path:
    """Return ``external_root()/parts``; skip when the data folder itself is absent.

    Fails (does not skip) when the folder exists but the requested entry does not.
    """
    root = external_root()
    if not root.is_dir():
        how = f"${ENV_VAR}" if os.environ.get(ENV_VAR) else f"<repo>/../shared/data (or ${ENV_VAR})"
        pytest.skip(f"external DICOM test data not found at {root} (looked in {how})")
    path = root.joinpath(*parts)
    if not path.exists():
        pytest.fail(f"external data folder {root} is present but lacks {path}: incomplete copy?")
    return path


def dcm2niix_binary() -> str | None:
    """Path of the ``dcm2niix`` executable (the PyPI wheel's, else PATH), or None."""
    try:
        import dcm2niix  # type: ignore[import-untyped]

        candidate = Path(dcm2niix.bin)
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    except (ImportError, AttributeError):
        pass
    return shutil.which("dcm2niix")


# --------------------------------------------------------------------------- images


def volume_to_nib(volume: Any) -> nib.Nifti1Image:
    """A nibabel image of ``volume`` built here, independently of ``netvolume.io.nifti``.

    The array keeps netvolume's order ``[k, j, i(, c)]``; nibabel accepts any axis order
    as long as the affine maps the same indices, so the affine is simply the Volume's
    LPS affine turned into RAS.
    """
    arr = np.asarray(volume.array)
    if arr.dtype == np.bool_:
        arr = arr.astype(np.uint8)
    affine = LPS_TO_RAS @ np.asarray(volume.affine, dtype=np.float64)
    return nib.Nifti1Image(arr, affine)


def image_data(img: nib.spatialimages.SpatialImage) -> np.ndarray:
    """Voxel data of a nibabel image as a plain array.

    NIfTI RGB24 / RGBA32 (a structured dtype with fields R, G, B[, A]) becomes a trailing
    channel axis ``(..., 3)`` of uint8; an alpha channel, when present, must be opaque
    (255 everywhere) and is dropped. Other images are returned with scaling applied only
    if the header asks for it (``scl_slope`` set), else in their stored dtype.
    """
    raw = np.asanyarray(img.dataobj)
    names = raw.dtype.names
    if names:
        assert names[:3] == ("R", "G", "B"), f"unexpected structured dtype {raw.dtype}"
        if "A" in names:
            assert np.all(raw["A"] == 255), "reference RGBA image has a non-opaque alpha"
        return np.stack([raw["R"], raw["G"], raw["B"]], axis=-1)
    return np.asarray(raw)


def canonical(img: nib.spatialimages.SpatialImage) -> tuple[np.ndarray, np.ndarray]:
    """``(data, affine)`` after ``nib.as_closest_canonical`` (RAS+, axis flips/swaps only)."""
    can = nib.as_closest_canonical(img)
    return image_data(can), np.asarray(can.affine, dtype=np.float64)


@dataclass(frozen=True)
class Agreement:
    """How closely two voxel arrays agree (reported by the tests via ``record_property``)."""

    max_abs_diff: float
    frac_equal: float
    frac_within_1: float
    n_voxels: int

    def as_dict(self) -> dict[str, float]:
        return {
            "max_abs_diff": self.max_abs_diff,
            "frac_equal": self.frac_equal,
            "frac_within_1": self.frac_within_1,
            "n_voxels": float(self.n_voxels),
        }


def agreement(ours: np.ndarray, ref: np.ndarray) -> Agreement:
    """Voxelwise agreement of two same-shaped arrays (compared in float64)."""
    a = np.asarray(ours, dtype=np.float64)
    b = np.asarray(ref, dtype=np.float64)
    assert a.shape == b.shape, f"shape {a.shape} != reference {b.shape}"
    diff = np.abs(a - b)
    return Agreement(
        max_abs_diff=float(diff.max()) if diff.size else 0.0,
        frac_equal=float(np.mean(diff == 0)) if diff.size else 1.0,
        frac_within_1=float(np.mean(diff <= 1.0)) if diff.size else 1.0,
        n_voxels=int(diff.size),
    )


def assert_voxels_close(
    ours: np.ndarray, ref: np.ndarray, *, rtol: float = 0.01, atol: float = 1.0
) -> Agreement:
    """Assert ``|ours - ref| <= atol + rtol * |ref|`` everywhere; return the agreement."""
    stats = agreement(ours, ref)
    a = np.asarray(ours, dtype=np.float64)
    b = np.asarray(ref, dtype=np.float64)
    bad = np.abs(a - b) > atol + rtol * np.abs(b)
    if bad.any():
        first = tuple(int(x) for x in np.argwhere(bad)[0])
        raise AssertionError(
            f"{int(bad.sum())} of {bad.size} voxels differ beyond rtol={rtol}, atol={atol}; "
            f"first at {first}: ours {a[first]} vs reference {b[first]}; {stats}"
        )
    return stats


def compare_canonical(
    ours: nib.spatialimages.SpatialImage,
    ref: nib.spatialimages.SpatialImage,
    *,
    affine_atol: float = AFFINE_ATOL_MM,
    rtol: float = 0.01,
    atol: float = 1.0,
) -> Agreement:
    """Reorient both images to closest canonical; assert same grid and close voxels."""
    ours_data, ours_aff = canonical(ours)
    ref_data, ref_aff = canonical(ref)
    assert ours_data.shape == ref_data.shape, (
        f"canonical shape {ours_data.shape} != reference {ref_data.shape}"
    )
    np.testing.assert_allclose(
        ours_aff, ref_aff, rtol=0, atol=affine_atol, err_msg="canonical affine differs (mm)"
    )
    return assert_voxels_close(ours_data, ref_data, rtol=rtol, atol=atol)


# ------------------------------------------------------------------ direct LPS check


def reference_in_volume_order(
    volume: Any, ref: nib.spatialimages.SpatialImage, *, affine_atol: float = AFFINE_ATOL_MM
) -> np.ndarray:
    """The reference's voxels laid out on ``volume``'s grid, by a signed axis permutation.

    The reference affine is converted RAS -> LPS. The map from the Volume's index
    ``[k, j, i]`` to the reference's index ``(i', j', k')`` must be a signed permutation
    with whole-voxel offsets: both grids are the same set of points. The Volume's affine
    must then equal ``ref_lps @ P`` to ``affine_atol`` mm (checked here).
    """
    ref_lps = LPS_TO_RAS @ np.asarray(ref.affine, dtype=np.float64)
    vol_aff = np.asarray(volume.affine, dtype=np.float64)
    m = np.linalg.solve(ref_lps, vol_aff)  # Volume index -> reference index
    perm = np.rint(m[:3, :3])
    assert np.allclose(np.abs(perm).sum(axis=0), 1) and np.allclose(np.abs(perm).sum(axis=1), 1), (
        f"reference and Volume grids are not related by an axis permutation:\n{m}"
    )
    spatial = tuple(volume.array.shape[:3])
    # translation: +1 axes start at 0, -1 axes at n-1 (n = our length along that axis)
    p = np.eye(4)
    p[:3, :3] = perm
    for a in range(3):
        b = int(np.argmax(np.abs(perm[a])))
        p[a, 3] = 0.0 if perm[a, b] > 0 else spatial[b] - 1
    np.testing.assert_allclose(
        vol_aff,
        ref_lps @ p,
        rtol=0,
        atol=affine_atol,
        err_msg="Volume affine (LPS) differs from the reference affine converted RAS->LPS",
    )
    data = image_data(ref)
    # reorder reference axes into Volume order, then flip where the permutation is -1
    order = [int(np.argmax(np.abs(perm[:, b]))) for b in range(3)]
    extra = list(range(3, data.ndim))
    out = np.transpose(data, order + extra)
    for b in range(3):
        if perm[order[b], b] < 0:
            out = np.flip(out, axis=b)
    assert out.shape[:3] == spatial, f"reference grid {out.shape} != Volume grid {spatial}"
    return out


def report(request: pytest.FixtureRequest, key: str, value: Any) -> None:
    """Attach a measured figure to the test (``user_properties``) and print it (``-s``).

    ``record_property`` is avoided: it warns under junit_family xunit2, and this project
    turns warnings into errors.
    """
    request.node.user_properties.append((key, value))
    print(f"\n[{request.node.name}] {key} = {value}")

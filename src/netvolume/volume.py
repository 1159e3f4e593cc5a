"""The one image object of netvolume: an array that never travels without its geometry.

Axis convention
---------------
This is the only convention inside netvolume; other conventions (NIfTI RAS, SimpleITK's
x-first index) are converted at the edge, in :mod:`netvolume.io`.

* ``array`` is indexed ``array[slice, row, column]`` (``k, j, i``), the order in which a
  DICOM stack is naturally stacked and the order of ``SimpleITK.GetArrayFromImage``.
  An optional trailing channel axis holds RGB samples: ``array[k, j, i, c]``.
* ``affine`` is a 4x4 matrix mapping the homogeneous index *in array order*,
  ``affine @ [k, j, i, 1]``, to patient coordinates in **LPS millimetres** (the DICOM
  patient coordinate system: +x towards the patient's left, +y posterior, +z superior).
  Index ``(0, 0, 0)`` is the *centre* of the first voxel.
* ``spacing`` is in array order too: ``(slice_mm, row_mm, column_mm)``.

For a DICOM stack: column 2 of the affine is the row direction cosine (first three values
of ImageOrientationPatient) times the column spacing (PixelSpacing[1]); column 1 is the
column direction cosine times the row spacing (PixelSpacing[0]); column 0 is the slice
normal (row x column) times the slice spacing; the translation is ImagePositionPatient of
the first slice (DICOM PS3.3 C.7.6.2.1.1).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from netvolume._version import __version__
from netvolume.errors import VolumeError

__all__ = ["Provenance", "Volume"]

#: Largest deviation from orthogonality accepted between affine columns (cosine).
ORTHOGONALITY_TOL = 1e-4

_AXIS_LETTERS = {"L": (0, 1), "R": (0, -1), "P": (1, 1), "A": (1, -1), "S": (2, 1), "I": (2, -1)}


@dataclass(frozen=True)
class Provenance:
    """Where a Volume came from and what was done to it.

    Attributes
    ----------
    series_instance_uid
        SeriesInstanceUID of the source series ("" when not from DICOM).
    sop_instance_uids
        SOPInstanceUIDs of the instances used, in slice order.
    file_list_sha256
        SHA-256 over the ordered list of (SOPInstanceUID, frame, file size in bytes) of the
        inputs: identifies the input set without hashing the pixel bytes, and does not
        change when an export is moved to another folder.
    netvolume_version
        Version of netvolume that produced the Volume.
    source
        Human-readable origin: a folder, a file, or the operation that derived it.
    settings
        The settings (tolerances, options) in force when the Volume was produced.
    notes
        What was handled on the way (dropped duplicates, tilt correction, resampling).
    """

    series_instance_uid: str = ""
    sop_instance_uids: tuple[str, ...] = ()
    file_list_sha256: str = ""
    netvolume_version: str = __version__
    source: str = ""
    settings: dict[str, Any] = field(default_factory=dict)
    notes: tuple[str, ...] = ()

    def derive(self, note: str, **settings: Any) -> Provenance:
        """Return a copy with one more note (and settings) describing a derivation."""
        merged = dict(self.settings)
        merged.update(settings)
        return dataclasses.replace(
            self, notes=(*self.notes, note), settings=merged, netvolume_version=__version__
        )

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-serialisable dictionary."""
        d = dataclasses.asdict(self)
        d["sop_instance_uids"] = list(self.sop_instance_uids)
        d["notes"] = list(self.notes)
        return d


class Volume:
    """A 3D image: array + affine (index -> LPS mm) + frame of reference + provenance.

    The constructor validates its inputs; a Volume is valid once it exists. Operations
    that change the grid (:meth:`crop`, :meth:`resample`, :meth:`reorient`) return a new
    Volume with the matching affine, so data and geometry never come apart.

    Parameters
    ----------
    array
        Voxel values, shape ``(slices, rows, columns)`` or ``(slices, rows, columns, 3)``.
    affine
        4x4 matrix mapping ``[k, j, i, 1]`` to LPS millimetres. Its 3x3 part must have
        non-zero, mutually orthogonal columns (a sheared grid is resampled at load time).
    frame_of_reference_uid
        DICOM FrameOfReferenceUID; Volumes are only comparable within one frame.
    modality
        DICOM Modality (``"CT"``, ``"MR"``, ``"PT"``, ``"NM"``...), ``""`` if unknown.
    units
        Units of the voxel values (``"HU"``, ``"BQML"``, ``"CNTS"``, ``"1"``...).
    provenance
        Where the Volume came from.
    label_names
        For a label map: the name of each label value (``{1: "liver", 2: "spleen"}``);
        empty for an image. Carried through :meth:`crop`, :meth:`reorient` and
        nearest-neighbour :meth:`resample`.

    Raises
    ------
    VolumeError
        If the array is not 3D (+ optional channel axis of 3), the affine is not a finite
        4x4 matrix with last row ``[0, 0, 0, 1]``, or its axes are zero or not orthogonal.
    """

    __slots__ = (
        "_affine",
        "_array",
        "frame_of_reference_uid",
        "label_names",
        "modality",
        "provenance",
        "units",
    )

    def __init__(
        self,
        array: npt.ArrayLike,
        affine: npt.ArrayLike,
        *,
        frame_of_reference_uid: str | None = None,
        modality: str = "",
        units: str = "",
        provenance: Provenance | None = None,
        label_names: Mapping[int, str] | None = None,
    ) -> None:
        arr = np.asarray(array)
        if arr.ndim == 4 and arr.shape[3] != 3:
            raise VolumeError(
                f"A 4D Volume array must have a trailing RGB channel axis of length 3; got "
                f"shape {arr.shape}",
                hint="pass one 3D array per channel or time point",
            )
        if arr.ndim not in (3, 4):
            raise VolumeError(
                f"Volume array must be 3D (slice, row, column); got {arr.ndim}D with shape "
                f"{arr.shape}",
                hint="add a slice axis with array[np.newaxis] for a single 2D image",
            )
        if min(arr.shape[:3]) < 1:
            raise VolumeError(f"Volume array has an empty axis: shape {arr.shape}")
        if arr.dtype.kind not in "biuf":
            raise VolumeError(f"Volume array must be boolean or numeric; got dtype {arr.dtype}")
        aff = np.array(affine, dtype=np.float64)
        if aff.shape != (4, 4):
            raise VolumeError(f"affine must be 4x4; got shape {aff.shape}")
        if not np.all(np.isfinite(aff)):
            raise VolumeError(f"affine has non-finite values:\n{aff}")
        if not np.array_equal(aff[3], [0.0, 0.0, 0.0, 1.0]):
            raise VolumeError(f"affine's last row must be [0, 0, 0, 1]; got {aff[3].tolist()}")
        norms = np.linalg.norm(aff[:3, :3], axis=0)
        if np.any(norms <= 0):
            raise VolumeError(f"affine has a zero-length axis: column norms {norms.tolist()}")
        unit = aff[:3, :3] / norms
        gram = unit.T @ unit
        off = np.abs(gram - np.eye(3)).max()
        if off > ORTHOGONALITY_TOL:
            raise VolumeError(
                f"affine axes are not orthogonal (largest cosine between axes {off:.2e}, "
                f"tolerance {ORTHOGONALITY_TOL:.0e})",
                hint="a sheared grid (gantry tilt) must be resampled first: "
                "netvolume.io.dicom.load does this with correct_tilt=True",
            )
        aff.setflags(write=False)
        self._array = arr
        self._affine = aff
        self.frame_of_reference_uid = frame_of_reference_uid
        self.modality = modality
        self.units = units
        self.provenance = provenance if provenance is not None else Provenance()
        names = dict(label_names or {})
        for value, name in names.items():
            if isinstance(value, bool) or not isinstance(value, int | np.integer) or value <= 0:
                raise VolumeError(
                    f"label_names keys must be positive integer label values; got {value!r}"
                )
            if not isinstance(name, str):
                raise VolumeError(f"label_names values must be strings; got {name!r}")
        self.label_names: dict[int, str] = {int(k): v for k, v in sorted(names.items())}

    # ------------------------------------------------------------------ properties
    @property
    def array(self) -> np.ndarray:
        """Voxel values, indexed ``[slice, row, column]`` (+ channel)."""
        return self._array

    @property
    def affine(self) -> np.ndarray:
        """Read-only 4x4 matrix mapping ``[k, j, i, 1]`` to LPS mm."""
        return self._affine

    @property
    def shape(self) -> tuple[int, ...]:
        """Shape of :attr:`array`."""
        return tuple(self._array.shape)

    @property
    def spatial_shape(self) -> tuple[int, int, int]:
        """The three spatial dimensions ``(slices, rows, columns)``."""
        s = self._array.shape
        return (int(s[0]), int(s[1]), int(s[2]))

    @property
    def spacing(self) -> tuple[float, float, float]:
        """Voxel spacing in mm, array order ``(slice, row, column)``."""
        n = np.linalg.norm(self._affine[:3, :3], axis=0)
        return (float(n[0]), float(n[1]), float(n[2]))

    @property
    def origin(self) -> tuple[float, float, float]:
        """LPS position in mm of the centre of voxel ``[0, 0, 0]``."""
        t = self._affine[:3, 3]
        return (float(t[0]), float(t[1]), float(t[2]))

    @property
    def direction(self) -> np.ndarray:
        """3x3 matrix whose columns are the unit LPS directions of the array axes."""
        return self._affine[:3, :3] / np.linalg.norm(self._affine[:3, :3], axis=0)

    @property
    def voxel_volume_ml(self) -> float:
        """Volume of one voxel in millilitres (1 mL = 1000 mm^3)."""
        return float(abs(np.linalg.det(self._affine[:3, :3])) / 1000.0)

    def __repr__(self) -> str:
        sp = ", ".join(f"{s:.4g}" for s in self.spacing)
        return (
            f"Volume(shape={self.shape}, dtype={self._array.dtype}, spacing_mm=({sp}), "
            f"modality={self.modality!r}, units={self.units!r}, "
            f"orientation={self.orientation_code()!r})"
        )

    # ------------------------------------------------------------------ coordinates
    def index_to_lps(self, index: npt.ArrayLike) -> np.ndarray:
        """Map continuous indices ``(..., 3)`` in array order to LPS mm ``(..., 3)``."""
        idx = np.asarray(index, dtype=np.float64)
        return idx @ self._affine[:3, :3].T + self._affine[:3, 3]

    def lps_to_index(self, points_mm: npt.ArrayLike) -> np.ndarray:
        """Map LPS points ``(..., 3)`` in mm to continuous indices in array order."""
        pts = np.asarray(points_mm, dtype=np.float64)
        inv = np.linalg.inv(self._affine)
        return pts @ inv[:3, :3].T + inv[:3, 3]

    def orientation_code(self) -> str:
        """Letters of the LPS directions each array axis points *towards*, in array order.

        A standard axial CT stack is ``"SPL"``: slices run towards superior, rows towards
        posterior, columns towards the patient's left (nibabel's "towards" semantics).
        """
        letters = []
        for col in self.direction.T:
            a = int(np.argmax(np.abs(col)))
            sign = col[a] > 0
            letters.append(("L", "P", "S")[a] if sign else ("R", "A", "I")[a])
        return "".join(letters)

    # ------------------------------------------------------------------ derivation
    def with_array(
        self,
        array: npt.ArrayLike,
        *,
        units: str | None = None,
        note: str = "",
        label_names: Mapping[int, str] | None = None,
    ) -> Volume:
        """Return a Volume on the same grid with other voxel values (e.g. a mask).

        ``label_names`` names the label values of the new array (none by default: the
        new values are not this Volume's labels).

        Raises
        ------
        VolumeError
            If the spatial shape differs from this Volume's.
        """
        arr = np.asarray(array)
        if tuple(arr.shape[:3]) != self.spatial_shape:
            raise VolumeError(
                f"with_array needs spatial shape {self.spatial_shape}; got {arr.shape}"
            )
        prov = self.provenance.derive(note) if note else self.provenance
        return Volume(
            arr,
            self._affine,
            frame_of_reference_uid=self.frame_of_reference_uid,
            modality=self.modality,
            units=self.units if units is None else units,
            provenance=prov,
            label_names=label_names,
        )

    def crop(self, bounds: Sequence[tuple[int, int] | slice]) -> Volume:
        """Return the sub-volume ``[k0:k1, j0:j1, i0:i1]`` with its affine shifted.

        Parameters
        ----------
        bounds
            Three ``(start, stop)`` pairs or three ``slice`` objects with step 1, in array
            order; negative and out-of-range values are clipped like numpy slicing.

        Raises
        ------
        VolumeError
            If a step is not 1 or a resulting axis is empty.
        """
        if len(bounds) != 3:
            raise VolumeError(f"crop needs 3 bounds (slice, row, column); got {len(bounds)}")
        slices: list[slice] = []
        for axis, b in enumerate(bounds):
            if not isinstance(b, slice):
                if any(not float(v).is_integer() for v in b):
                    raise VolumeError(f"crop bounds must be whole indices; got {b} on axis {axis}")
                b = slice(int(b[0]), int(b[1]))
            s = b
            start, stop, step = s.indices(self.spatial_shape[axis])
            if step != 1:
                raise VolumeError(f"crop needs step 1; axis {axis} has step {step}")
            if stop <= start:
                raise VolumeError(
                    f"crop gives an empty axis {axis}: {start}:{stop} of {self.spatial_shape}"
                )
            slices.append(slice(start, stop))
        offset = np.array([s.start for s in slices], dtype=np.float64)
        aff = self._affine.copy()
        aff[:3, 3] = self.index_to_lps(offset)
        return Volume(
            self._array[slices[0], slices[1], slices[2]],
            aff,
            frame_of_reference_uid=self.frame_of_reference_uid,
            modality=self.modality,
            units=self.units,
            provenance=self.provenance.derive(f"cropped to {[(s.start, s.stop) for s in slices]}"),
            label_names=self.label_names,
        )

    def reorient(self, code: str = "SPL") -> Volume:
        """Return the same voxels with axes permuted/flipped to a target orientation.

        No interpolation: only axis permutations and flips, with the affine updated so
        every voxel keeps its LPS position.

        Parameters
        ----------
        code
            Three letters, in array order, of the direction each axis should point
            towards (``"SPL"``: slices to superior, rows to posterior, columns to left).

        Raises
        ------
        VolumeError
            If the code is not a permutation of one letter per anatomical axis.
        """
        code = code.upper()
        if len(code) != 3 or any(c not in _AXIS_LETTERS for c in code):
            raise VolumeError(f"orientation code must be 3 of L/R/P/A/S/I; got {code!r}")
        targets = [_AXIS_LETTERS[c] for c in code]
        if sorted(t[0] for t in targets) != [0, 1, 2]:
            raise VolumeError(f"orientation code {code!r} names an anatomical axis twice")
        direction = self.direction
        # which array axis is closest to each LPS axis
        lps_axis_of = np.argmax(np.abs(direction), axis=0)  # per array axis
        if sorted(lps_axis_of.tolist()) != [0, 1, 2]:
            raise VolumeError(
                "cannot reorient: two array axes are closest to the same anatomical axis "
                f"(direction matrix {direction.round(3).tolist()})",
                hint="resample onto an axis-aligned grid first",
            )
        perm: list[int] = []
        flips: list[bool] = []
        for lps_axis, sign in targets:
            src = int(np.where(lps_axis_of == lps_axis)[0][0])
            perm.append(src)
            flips.append(bool(np.sign(direction[lps_axis, src]) != sign))
        arr = self._array
        aff = self._affine.copy()
        # flips first (in source axis numbering), then transpose
        shape = self.spatial_shape
        for out_axis, src in enumerate(perm):
            if flips[out_axis]:
                arr = np.flip(arr, axis=src)
                aff[:3, 3] = aff[:3, 3] + aff[:3, src] * (shape[src] - 1)
                aff[:3, src] = -aff[:3, src]
        axes = (*perm, 3) if arr.ndim == 4 else tuple(perm)
        arr = np.ascontiguousarray(np.transpose(arr, axes))
        new_aff = np.eye(4)
        new_aff[:3, :3] = aff[:3, perm]
        new_aff[:3, 3] = aff[:3, 3]
        return Volume(
            arr,
            new_aff,
            frame_of_reference_uid=self.frame_of_reference_uid,
            modality=self.modality,
            units=self.units,
            provenance=self.provenance.derive(f"reoriented to {code}"),
            label_names=self.label_names,
        )

    def resample(
        self,
        *,
        reference: Volume | None = None,
        spacing_mm: Sequence[float] | None = None,
        interpolation: Literal["nearest", "linear", "bspline"] = "linear",
        fill_value: float | None = None,
    ) -> Volume:
        """Resample onto another grid with SimpleITK.

        Exactly one of ``reference`` (take its grid; frames of reference must match) or
        ``spacing_mm`` (same orientation and extent, new spacing in array order) is given.

        Parameters
        ----------
        reference
            Volume whose grid (shape + affine) the result takes.
        spacing_mm
            New spacing ``(slice, row, column)`` in mm; the field of view is kept from the
            first voxel's outer corner, so the number of voxels is rounded.
        interpolation
            ``"nearest"`` for labels, ``"linear"`` (default) or ``"bspline"`` (3rd order).
        fill_value
            Value outside the source field of view; default the array's minimum.

        Raises
        ------
        VolumeError
            On a bad argument combination or mismatching frames of reference.
        """
        import SimpleITK as sitk

        if (reference is None) == (spacing_mm is None):
            raise VolumeError("resample needs exactly one of reference= or spacing_mm=")
        if self._array.ndim != 3:
            raise VolumeError("resample supports scalar (3D) Volumes only; got RGB")
        if reference is not None:
            if (
                reference.frame_of_reference_uid
                and self.frame_of_reference_uid
                and reference.frame_of_reference_uid != self.frame_of_reference_uid
            ):
                raise VolumeError(
                    "cannot resample across frames of reference: source "
                    f"{self.frame_of_reference_uid} vs reference "
                    f"{reference.frame_of_reference_uid}",
                    hint="register the images first",
                )
            target_shape = reference.spatial_shape
            target_aff = reference.affine
        else:
            assert spacing_mm is not None
            new_sp = np.asarray(spacing_mm, dtype=np.float64)
            if new_sp.shape != (3,) or np.any(new_sp <= 0):
                raise VolumeError(f"spacing_mm must be 3 positive values; got {spacing_mm}")
            old_sp = np.asarray(self.spacing)
            extent = old_sp * np.asarray(self.spatial_shape)
            target_shape_arr = np.maximum(1, np.round(extent / new_sp)).astype(int)
            target_shape = (
                int(target_shape_arr[0]),
                int(target_shape_arr[1]),
                int(target_shape_arr[2]),
            )
            target_aff = np.eye(4)
            target_aff[:3, :3] = self.direction * new_sp
            # keep the outer corner of voxel 0 fixed
            corner = self.index_to_lps([-0.5, -0.5, -0.5])
            target_aff[:3, 3] = corner + (self.direction * new_sp) @ np.full(3, 0.5)
        interp = {
            "nearest": sitk.sitkNearestNeighbor,
            "linear": sitk.sitkLinear,
            "bspline": sitk.sitkBSpline,
        }.get(interpolation)
        if interp is None:
            raise VolumeError(
                f"interpolation must be nearest, linear or bspline; got {interpolation!r}"
            )
        src = self.to_sitk()
        ref_img = sitk.Image(
            [int(target_shape[2]), int(target_shape[1]), int(target_shape[0])], sitk.sitkUInt8
        )
        _set_sitk_geometry(ref_img, target_aff)
        default = float(np.min(self._array)) if fill_value is None else float(fill_value)
        pixel_type = src.GetPixelID() if interpolation == "nearest" else sitk.sitkFloat32
        out = sitk.Resample(src, ref_img, sitk.Transform(), interp, default, pixel_type)
        arr = sitk.GetArrayFromImage(out)
        return Volume(
            arr,
            target_aff,
            frame_of_reference_uid=self.frame_of_reference_uid,
            modality=self.modality,
            units=self.units,
            provenance=self.provenance.derive(
                f"resampled ({interpolation}) to shape {target_shape}",
                resample_interpolation=interpolation,
            ),
            label_names=self.label_names if interpolation == "nearest" else None,
        )

    # ------------------------------------------------------------------ SimpleITK
    def to_sitk(self) -> Any:
        """Return a ``SimpleITK.Image`` with the same voxels and LPS geometry.

        SimpleITK indexes ``(x=column, y=row, z=slice)``; its array view
        (``GetArrayFromImage``) is ``[slice, row, column]``, our order, so no copy of the
        axes is reordered: only the geometry is translated.
        """
        import SimpleITK as sitk

        arr = self._array
        if arr.dtype == np.bool_:
            arr = arr.astype(np.uint8)
        img = sitk.GetImageFromArray(arr, isVector=arr.ndim == 4)
        _set_sitk_geometry(img, self._affine)
        return img

    @classmethod
    def from_sitk(
        cls,
        image: Any,
        *,
        frame_of_reference_uid: str | None = None,
        modality: str = "",
        units: str = "",
        provenance: Provenance | None = None,
    ) -> Volume:
        """Build a Volume from a 3D ``SimpleITK.Image`` (LPS, x-first index)."""
        import SimpleITK as sitk

        if image.GetDimension() != 3:
            raise VolumeError(f"from_sitk needs a 3D image; got {image.GetDimension()}D")
        arr = sitk.GetArrayFromImage(image)
        sp = np.asarray(image.GetSpacing(), dtype=np.float64)  # x, y, z
        d = np.asarray(image.GetDirection(), dtype=np.float64).reshape(3, 3)  # columns x,y,z
        aff = np.eye(4)
        # array axis 0 = z, 1 = y, 2 = x
        aff[:3, 0] = d[:, 2] * sp[2]
        aff[:3, 1] = d[:, 1] * sp[1]
        aff[:3, 2] = d[:, 0] * sp[0]
        aff[:3, 3] = image.GetOrigin()
        return cls(
            arr,
            aff,
            frame_of_reference_uid=frame_of_reference_uid,
            modality=modality,
            units=units,
            provenance=provenance,
        )


def _set_sitk_geometry(img: Any, affine: np.ndarray) -> None:
    """Write an array-order LPS affine into a SimpleITK image's origin/spacing/direction."""
    sp = np.linalg.norm(affine[:3, :3], axis=0)  # k, j, i
    unit = affine[:3, :3] / sp
    direction = np.stack([unit[:, 2], unit[:, 1], unit[:, 0]], axis=1)  # x, y, z columns
    img.SetSpacing((float(sp[2]), float(sp[1]), float(sp[0])))
    img.SetDirection(tuple(float(v) for v in direction.ravel()))
    img.SetOrigin(tuple(float(v) for v in affine[:3, 3]))

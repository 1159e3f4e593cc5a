"""Label maps with their own affine: NIfTI, NRRD (incl. 3D Slicer ``.seg.nrrd``) and
TotalSegmentator output (a folder of ``<structure>.nii.gz`` or one multilabel file whose
class map is in the NIfTI header extension or a separate file)."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np

from netvolume.errors import InputPathError, MaskError, MaskOverlapError
from netvolume.io.nifti import read_nifti

__all__ = [
    "LabelMap",
    "is_label_map_file",
    "list_mask_folder",
    "read_class_map",
    "read_label_map",
]

_NIFTI_SUFFIXES = (".nii.gz", ".nii")
_NRRD_SUFFIXES = (".nrrd", ".nhdr")


@dataclass
class LabelMap:
    """An integer label array on its own grid, with the names of its values."""

    array: np.ndarray  # [slice, row, column], integer, >= 0
    affine: np.ndarray  # netvolume convention: [k, j, i, 1] -> LPS mm
    names: dict[int, str]
    names_source: str  # "header extension", "class map", "NRRD segment metadata", "generic"


def is_label_map_file(path: Path) -> bool:
    """True for a file name netvolume reads as a label map (NIfTI or NRRD)."""
    name = path.name.lower()
    return name.endswith(_NIFTI_SUFFIXES + _NRRD_SUFFIXES)


def structure_name(path: Path) -> str:
    """Name of a structure stored as one file: the file name without its extension."""
    name = path.name
    for suffix in (".seg.nrrd", *_NIFTI_SUFFIXES, *_NRRD_SUFFIXES):
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return path.stem


def list_mask_folder(folder: Path) -> list[Path]:
    """The label-map files of a folder (TotalSegmentator layout), sorted by name."""
    return sorted(p for p in folder.iterdir() if p.is_file() and is_label_map_file(p))


def _as_labels(data: np.ndarray, path: Path) -> np.ndarray:
    """Check that voxel values are non-negative integers; return the smallest uint array."""
    if data.dtype.kind == "b":
        return data.astype(np.uint8)
    if data.dtype.kind == "f":
        finite = np.isfinite(data)
        if not finite.all() or not np.array_equal(data, np.round(data)):
            bad = data[~finite | (data != np.round(data))]
            raise MaskError(
                f"{path.name} is not a label map: it holds non-integer values (e.g. "
                f"{float(bad.flat[0])!r})",
                files=[path],
                hint="threshold a probability map into labels first",
            )
    if data.size and data.min() < 0:
        raise MaskError(
            f"{path.name} is not a label map: it holds negative values (minimum {data.min()})",
            files=[path],
            hint="label values must be 0 (background) or positive integers",
        )
    top = int(data.max()) if data.size else 0
    return data.astype(smallest_label_dtype(top), copy=False)


def smallest_label_dtype(max_value: int) -> np.dtype:
    """Smallest unsigned integer dtype holding ``max_value``."""
    for dt in (np.uint8, np.uint16, np.uint32):
        if max_value <= np.iinfo(dt).max:
            return np.dtype(dt)
    return np.dtype(np.uint64)


def _caret_label_table(img: Any) -> dict[int, str]:
    """Label names from a NIfTI CaretExtension XML label table (TotalSegmentator ``--ml``)."""
    names: dict[int, str] = {}
    for ext in img.header.extensions:
        raw = getattr(ext, "content", None)  # nibabel >= 5.3: the raw bytes
        if raw is None:
            try:
                raw = ext.get_content()
            except NotImplementedError:
                continue
        if not isinstance(raw, bytes | str):
            continue
        text = raw.decode("utf-8", errors="replace") if isinstance(raw, bytes) else raw
        if "<LabelTable" not in text:
            continue
        try:
            root = ET.fromstring(text.strip().rstrip("\x00").strip())
        except ET.ParseError:
            continue
        for label in root.iter("Label"):
            key = label.get("Key")
            if key is None or not key.strip().lstrip("-").isdigit():
                continue
            value = int(key)
            if value > 0:
                names[value] = (label.text or "").strip() or f"label_{value}"
    return names


def read_class_map(source: Mapping[int, str] | Mapping[str, Any] | str | Path) -> dict[int, str]:
    """Read a class map: label value -> structure name.

    Accepts a mapping, a JSON file (``{"1": "spleen", ...}``, or TotalSegmentator's
    ``{"spleen": 1, ...}``), or a text / CSV file with one ``value name`` (or
    ``value,name``) per line; lines starting with ``#`` are comments (ITK-SNAP and 3D
    Slicer colour tables, whose extra columns are ignored, read this way).

    Raises
    ------
    MaskError
        If the file cannot be parsed or a value is not a positive integer.
    """
    if isinstance(source, Mapping):
        return _normalise_map(dict(source), "class map")
    path = Path(source)
    if not path.is_file():
        raise InputPathError(f"class map file not found: {path}", files=[path])
    text = path.read_text(encoding="utf-8", errors="replace")
    if path.suffix.lower() == ".json":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise MaskError(
                f"class map {path.name} is not valid JSON: {exc}", files=[path]
            ) from exc
        if not isinstance(data, dict):
            raise MaskError(f"class map {path.name} must be a JSON object", files=[path])
        return _normalise_map(data, path.name, files=[path])
    pairs: dict[Any, Any] = {}
    for lineno, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        parts = [p for p in line.replace(",", " ").replace("\t", " ").split(" ") if p]
        if len(parts) < 2:
            raise MaskError(
                f"class map {path.name} line {lineno}: expected 'value name', got {line!r}",
                files=[path],
            )
        pairs[parts[0]] = parts[1].strip('"')
    return _normalise_map(pairs, path.name, files=[path])


def _normalise_map(
    data: dict[Any, Any], what: str, files: list[Path] | None = None
) -> dict[int, str]:
    out: dict[int, str] = {}
    for k, v in data.items():
        key, name = (v, k) if isinstance(v, int) and not isinstance(k, int) else (k, v)
        try:
            value = int(str(key))
        except ValueError:
            raise MaskError(
                f"{what}: label value {key!r} is not an integer", files=files or []
            ) from None
        if value <= 0:
            if value == 0:
                continue  # background entry
            raise MaskError(f"{what}: label value {value} is negative", files=files or [])
        out[value] = str(name)
    return out


def read_label_map(path: Path, class_map: Mapping[int, str] | None = None) -> LabelMap:
    """Read a NIfTI or NRRD label map with its affine and label names.

    Names come from, in order: ``class_map``; the NIfTI CaretExtension label table
    (TotalSegmentator) or 3D Slicer's ``SegmentN_Name`` NRRD fields; else ``label_N``.
    """
    name = path.name.lower()
    if name.endswith(_NIFTI_SUFFIXES):
        vol = read_nifti(path)
        if vol.array.ndim != 3:
            raise MaskError(f"{path.name} is an RGB image, not a label map", files=[path])
        array = _as_labels(np.asarray(vol.array), path)
        affine = np.array(vol.affine)
        header_names = _caret_label_table(nib.load(str(path)))
        source = "header extension"
    elif name.endswith(_NRRD_SUFFIXES):
        array, affine, header_names = _read_nrrd(path)
        source = "NRRD segment metadata"
    else:
        raise MaskError(
            f"{path.name}: not a NIfTI (.nii, .nii.gz) or NRRD (.nrrd, .nhdr) file",
            files=[path],
        )
    values = [int(v) for v in np.unique(array) if v != 0]
    if class_map:
        names = dict(class_map)
        missing = [v for v in values if v not in names]
        if missing:
            raise MaskError(
                f"{path.name} holds label value(s) {missing[:10]} that the class map does not "
                f"name (it names {sorted(names)[:20]})",
                files=[path],
                hint="give the class map that belongs to this file",
            )
        source = "class map"
    elif header_names:
        names = dict(header_names)
        unnamed = [v for v in values if v not in names]
        if unnamed:
            names.update({v: f"label_{v}" for v in unnamed})
            names = dict(sorted(names.items()))
            source = f"header extension (values {unnamed[:10]} not in it: named label_N)"
    else:
        names = {v: f"label_{v}" for v in values}
        source = "generic"
    return LabelMap(array, affine, names, source)


def _read_nrrd(path: Path) -> tuple[np.ndarray, np.ndarray, dict[int, str]]:
    """Read an NRRD label map through SimpleITK (which converts the space to LPS)."""
    import SimpleITK as sitk

    from netvolume.volume import Volume

    try:
        img = sitk.ReadImage(str(path))
    except RuntimeError as exc:
        raise InputPathError(f"cannot read NRRD file {path}: {exc}", files=[path]) from exc
    if img.GetDimension() != 3:
        raise MaskError(
            f"{path.name}: expected a 3D label map; got {img.GetDimension()}D", files=[path]
        )
    keys = set(img.GetMetaDataKeys())
    n_comp = img.GetNumberOfComponentsPerPixel()
    meta: dict[int, dict[str, str]] = {}
    for key in keys:
        if key.startswith("Segment") and "_" in key:
            idx_text, field_name = key[len("Segment") :].split("_", 1)
            if idx_text.isdigit():
                meta.setdefault(int(idx_text), {})[field_name] = img.GetMetaData(key)
    if n_comp > 1:
        # 3D Slicer .seg.nrrd with several layers: segments may overlap across layers
        arr4 = sitk.GetArrayFromImage(img)  # [k, j, i, layer]
        vol = Volume.from_sitk(sitk.VectorIndexSelectionCast(img, 0))  # the geometry
        out = np.zeros(arr4.shape[:3], dtype=np.uint16)
        names: dict[int, str] = {}
        for n, seg in sorted(meta.items()):
            layer = int(seg.get("Layer", "0"))
            value = int(seg.get("LabelValue", "1"))
            hit = arr4[..., layer] == value
            if np.any(out[hit] != 0):
                raise MaskOverlapError(
                    f"{path.name}: segment {seg.get('Name', n)!r} overlaps another segment "
                    "(they are stored in different layers)",
                    files=[path],
                    hint="export the segments one at a time, or choose one with roi=",
                )
            out[hit] = n + 1
            names[n + 1] = seg.get("Name", f"segment_{n}")
        return _as_labels(out, path), np.array(vol.affine), names
    vol = Volume.from_sitk(img)
    names = {}
    for _, seg in sorted(meta.items()):
        text = seg.get("LabelValue")
        if text is not None and text.strip().isdigit() and int(text) > 0:
            names[int(text)] = seg.get("Name", f"label_{text}")
    return _as_labels(np.asarray(vol.array), path), np.array(vol.affine), names

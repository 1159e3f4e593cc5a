"""NIfTI-1 in and out, converting between netvolume's LPS array-order affine and NIfTI's RAS.

A NIfTI file indexes its data ``(i, j, k)`` with ``i`` fastest on disk and maps it to RAS
millimetres through the sform (NIfTI-1 header, fields ``srow_x/y/z``). netvolume indexes
``[k, j, i]`` and maps to LPS. The conversion is therefore an axis reversal plus
``diag(-1, -1, 1, 1)``, done here and nowhere else. Files written here open in nibabel,
ITK-SNAP and 3D Slicer in the right place (sform and qform both set, code 1 = scanner
anatomical).
"""

from __future__ import annotations

import functools
import io
import struct
import zlib
from pathlib import Path

import nibabel as nib
import numpy as np

from netvolume.errors import InputPathError, VolumeError
from netvolume.io._atomic import atomic_path
from netvolume.volume import Provenance, Volume

__all__ = [
    "LPS_TO_RAS",
    "nifti_bytes",
    "nifti_parts",
    "read_nifti",
    "volume_to_nifti",
    "write_nifti",
    "write_nifti_bytes",
    "write_nifti_parts",
]

#: Flip of the first two world axes: LPS <-> RAS (its own inverse).
LPS_TO_RAS = np.diag([-1.0, -1.0, 1.0, 1.0])
#: Reverses array order (k, j, i) <-> NIfTI order (i, j, k) in a homogeneous index.
_REVERSE = np.array([[0, 0, 1, 0], [0, 1, 0, 0], [1, 0, 0, 0], [0, 0, 0, 1]], dtype=np.float64)
#: The gzip member header nibabel (Python's GzipFile) writes at level 1: deflate, no file
#: name, mtime 0, XFL 4 (fastest), OS 255 (unknown).
_GZIP_HEADER = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x04\xff"


def volume_to_nifti(volume: Volume) -> nib.Nifti1Image:
    """Return a ``nibabel.Nifti1Image`` of the Volume with its RAS affine.

    RGB volumes are written as NIfTI RGB24 (``intent`` none, datatype 128). A label
    Volume (non-empty ``label_names``) carries its names in a CaretExtension label table
    (extension code 30), the form TotalSegmentator's ``--ml`` output uses, so 3D Slicer,
    TotalSegmentator's tools and :func:`netvolume.io.masks.read` find the names again.
    """
    arr = volume.array
    if arr.dtype == np.bool_:
        arr = arr.astype(np.uint8)
    if arr.ndim == 4:
        if arr.dtype != np.uint8:
            raise VolumeError(
                f"NIfTI RGB24 holds 8-bit channels; got an RGB Volume of dtype {arr.dtype}",
                hint="scale the channels to 0-255 and convert to uint8 first",
            )
        rgb = np.ascontiguousarray(arr)
        rgb_dtype = np.dtype([("R", "u1"), ("G", "u1"), ("B", "u1")])
        data = rgb.view(rgb_dtype)[..., 0].transpose(2, 1, 0)
    else:
        data = arr.transpose(2, 1, 0)
    ras_affine = LPS_TO_RAS @ volume.affine @ _REVERSE
    img = nib.Nifti1Image(data, ras_affine)
    img.set_sform(ras_affine, code=1)
    img.set_qform(ras_affine, code=1)
    img.header.set_xyzt_units(xyz="mm", t="sec")
    descrip = f"netvolume {volume.provenance.netvolume_version} {volume.modality}"
    img.header["descrip"] = descrip.encode("ascii", "replace")[:79]
    if volume.label_names:
        img.header.extensions.append(nib.nifti1.Nifti1Extension(30, _label_table_xml(volume)))
        img.header.set_intent("label")
    return img


def _label_table_xml(volume: Volume) -> bytes:
    """A CaretExtension XML label table (label value -> name, with a fixed colour cycle)."""
    from xml.sax.saxutils import escape, quoteattr

    colours = (
        (1.0, 0.0, 0.0),
        (0.0, 1.0, 0.0),
        (0.0, 0.0, 1.0),
        (1.0, 1.0, 0.0),
        (0.0, 1.0, 1.0),
        (1.0, 0.0, 1.0),
        (1.0, 0.5, 0.0),
        (0.5, 0.0, 1.0),
    )
    rows = []
    for value, name in volume.label_names.items():
        r, g, b = colours[value % len(colours)]
        rows.append(
            f'<Label Key="{value}" Red="{r}" Green="{g}" Blue="{b}" Alpha="1">'
            f"{escape(name)}</Label>"
        )
    body = "".join(rows)
    xml = (
        '<?xml version="1.0" encoding="UTF-8"?><CaretExtension>'
        f"<VolumeInformation Index={quoteattr('0')}><LabelTable>{body}</LabelTable>"
        "<VolumeType>Label</VolumeType></VolumeInformation></CaretExtension>"
    )
    return xml.encode("utf-8")


#: Data types whose bytes nibabel writes unscaled (scl_slope 1, scl_inter 0) when the
#: array already has the header's type: :func:`nifti_parts` writes those itself.
_PLAIN_DTYPES = frozenset(np.dtype(t) for t in ("u1", "i1", "u2", "i2", "u4", "i4", "f4", "f8"))
#: Uncompressed bytes per piece when compressing (a quarter of a 512 x 512 one-byte slice).
_PIECE = 1 << 16


def nifti_parts(volume: Volume) -> tuple[bytes, np.ndarray]:
    """A ``.nii`` file of the Volume as (header, data): the file is ``header`` followed by
    ``data``'s bytes in C order (NIfTI's ``i``-fastest order is netvolume's ``[k, j, i]``
    C order, so a C-contiguous array is written without a copy).

    ``header`` holds the NIfTI-1 header, its extensions and the padding up to
    ``vox_offset``, as ``nibabel`` writes them; for data ``nibabel`` would scale (or RGB)
    it is the whole file and ``data`` is empty. Together they are the bytes of
    :func:`nifti_bytes` (tested).
    """
    img = volume_to_nifti(volume)
    data = np.asarray(img.dataobj)
    if data.ndim != 3 or data.dtype not in _PLAIN_DTYPES or data.dtype != img.get_data_dtype():
        return img.to_bytes(), np.zeros(0, np.uint8)
    img.update_header()
    header = img.header
    header.set_slope_inter(1.0, 0.0)
    buf = io.BytesIO()
    header.write_to(buf)
    head = buf.getvalue()
    offset = int(header["vox_offset"])
    if offset < len(head):
        return img.to_bytes(), np.zeros(0, np.uint8)  # not expected: nibabel's own writer
    body = np.ascontiguousarray(data.transpose(2, 1, 0)).astype(
        data.dtype.newbyteorder("<"), copy=False
    )
    return head + b"\0" * (offset - len(head)), body


def nifti_bytes(volume: Volume) -> bytes:
    """The bytes of an uncompressed NIfTI-1 file (``.nii``) of the Volume."""
    head, body = nifti_parts(volume)
    return head + body.tobytes()


def write_nifti_bytes(data: bytes, path: str | Path) -> Path:
    """Write the bytes of a ``.nii`` file (:func:`nifti_bytes`), atomically (see
    :func:`write_nifti_parts`)."""
    return write_nifti_parts(data, np.zeros(0, np.uint8), path)


def write_nifti_parts(head: bytes, body: np.ndarray, path: str | Path) -> Path:
    """Write a ``.nii`` file given as :func:`nifti_parts`, atomically.

    Parameters
    ----------
    head
        The file's first bytes (header, extensions, padding).
    body
        The data that follow (its bytes in C order).
    path
        Target file, ending in ``.nii`` or ``.nii.gz``. Written to a temporary file in
        the same folder first and renamed, so no half-written file is ever left behind.

    Returns
    -------
    Path
        The path written.

    Notes
    -----
    ``.nii.gz`` is one gzip member, deflated at level 1 (nibabel's default) in pieces
    of 64 KiB. A piece that is all zeros (most of a mask) is not compressed again: the
    deflate stream is flushed to a byte boundary with its history dropped
    (``Z_FULL_FLUSH``), and the stored stream of one zero piece is inserted instead,
    as parallel gzip compressors join independently compressed pieces (RFC 1951
    sections 3.2.3-3.2.4; pigz). The file decodes to the same bytes; zlib releases the
    GIL while it compresses and checksums, so this runs well on another thread.
    """
    path = Path(path)
    suffix = _nifti_suffix(path)
    data = np.ascontiguousarray(body).reshape(-1).view(np.uint8).data
    with atomic_path(path, suffix=suffix) as tmp, open(tmp, "wb") as fh:
        if suffix == ".nii":
            fh.write(head)
            fh.write(data)
            return path
        fh.write(_GZIP_HEADER)
        deflate = zlib.compressobj(1, zlib.DEFLATED, -15)
        fh.write(deflate.compress(head))
        crc = zlib.crc32(data, zlib.crc32(head))
        n_full = len(data) // _PIECE
        zero = np.zeros(0, dtype=bool)
        if n_full:
            words = np.frombuffer(data, dtype=np.uint64, count=n_full * _PIECE // 8)
            zero = np.logical_not(words.reshape(n_full, _PIECE // 8).any(axis=1))
        start = 0  # first byte not yet compressed
        for run_start, run_stop in _runs(zero):  # runs of whole zero pieces
            a, b = run_start * _PIECE, run_stop * _PIECE
            fh.write(deflate.compress(data[start:a]))
            fh.write(deflate.flush(zlib.Z_FULL_FLUSH))
            fh.write(_zero_piece() * (run_stop - run_start))
            start = b
        fh.write(deflate.compress(data[start:]))
        fh.write(deflate.flush(zlib.Z_FINISH))
        size = len(head) + len(data)
        fh.write(struct.pack("<II", crc & 0xFFFFFFFF, size & 0xFFFFFFFF))
    return path


def _runs(flags: np.ndarray) -> list[tuple[int, int]]:
    """(start, stop) of each run of True in a 1-D bool array."""
    if flags.size == 0:
        return []
    edges = np.flatnonzero(np.diff(np.concatenate(([0], flags.view(np.int8), [0]))))
    return [(int(a), int(b)) for a, b in zip(edges[::2], edges[1::2], strict=True)]


@functools.cache
def _zero_piece() -> bytes:
    """The raw deflate stream (level 1) of one piece of zeros, from an empty history and
    ending on a byte boundary with a non-final block (``Z_FULL_FLUSH``)."""
    deflate = zlib.compressobj(1, zlib.DEFLATED, -15)
    return deflate.compress(bytes(_PIECE)) + deflate.flush(zlib.Z_FULL_FLUSH)


def write_nifti(volume: Volume, path: str | Path) -> Path:
    """Write a Volume as NIfTI-1 (``.nii`` or ``.nii.gz``), atomically.

    Parameters
    ----------
    volume
        The Volume to write (any numeric dtype; booleans become uint8).
    path
        Target file; the suffix chooses compression (``.nii.gz``: gzip level 1, see
        :func:`write_nifti_parts`). Written to a temporary file in the same folder first
        and renamed, so no half-written file is ever left behind.

    Returns
    -------
    Path
        The path written.

    Notes
    -----
    The file decodes to what ``nibabel.save`` writes (same header, extensions and data).
    :func:`nifti_parts` and :func:`write_nifti_parts` are the two steps, for a caller
    that encodes on one thread and compresses on another.
    """
    _nifti_suffix(Path(path))  # refuse a wrong name before encoding
    return write_nifti_parts(*nifti_parts(volume), path)


def _nifti_suffix(path: Path) -> str:
    """``".nii.gz"`` or ``".nii"``; a :class:`VolumeError` for any other file name."""
    name = path.name.lower()
    if name.endswith(".nii.gz"):
        return ".nii.gz"
    if name.endswith(".nii"):
        return ".nii"
    raise VolumeError(
        f"NIfTI output must end in .nii or .nii.gz; got {path.name!r}",
        hint="choose an output name like OUT.nii.gz",
    )


def read_nifti(
    path: str | Path,
    *,
    frame_of_reference_uid: str | None = None,
    modality: str = "",
    units: str = "",
) -> Volume:
    """Read a 3D NIfTI-1/2 file into a Volume (LPS, array order).

    The sform is used when its code is non-zero, else the qform (nibabel's
    ``get_best_affine``). Scaling (``scl_slope``/``scl_inter``) is applied when present.

    Raises
    ------
    InputPathError
        If the file does not exist or cannot be read.
    VolumeError
        If the image is not 3D (a 4D file with one volume is accepted).
    """
    path = Path(path)
    if not path.is_file():
        raise InputPathError(f"NIfTI file not found: {path}", files=[path])
    try:
        img = nib.load(str(path))
    except Exception as exc:  # nibabel raises several unrelated types
        raise InputPathError(
            f"cannot read NIfTI file {path}: {exc}", files=[path], hint="check the file"
        ) from exc
    if not isinstance(img, nib.Nifti1Image | nib.Nifti2Image):
        raise InputPathError(
            f"{path.name} is a {type(img).__name__}, not a NIfTI image",
            files=[path],
            hint="convert it to NIfTI (.nii / .nii.gz) first",
        )
    data = np.asanyarray(img.dataobj)
    if data.dtype.names is not None and data.dtype.names[:3] == ("R", "G", "B"):
        # RGB24 or RGBA32: the alpha channel, if any, is not image data and is dropped
        data = np.stack([data["R"], data["G"], data["B"]], axis=-1)
        data = data.transpose(2, 1, 0, 3)
    else:
        if data.ndim == 4 and data.shape[3] == 1:
            data = data[..., 0]
        if data.ndim == 2:
            data = data[..., np.newaxis]
        if data.ndim != 3:
            raise VolumeError(
                f"{path.name}: expected a 3D image; got shape {data.shape}",
                files=[path],
                hint="split 4D files into 3D volumes first",
            )
        data = data.transpose(2, 1, 0)
    affine = LPS_TO_RAS @ img.header.get_best_affine() @ _REVERSE
    return Volume(
        np.ascontiguousarray(data),
        affine,
        frame_of_reference_uid=frame_of_reference_uid,
        modality=modality,
        units=units,
        provenance=Provenance(source=str(path)),
    )

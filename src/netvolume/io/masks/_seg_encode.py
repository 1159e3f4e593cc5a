"""Fast path of :func:`~netvolume.io.masks._seg_write.write_seg`: the per-frame parts.

highdicom builds a SEG in time proportional to the number of source images (it checks,
sorts and describes every source image for every SEG) and pydicom writes the thousands of
small items of its PerFrameFunctionalGroupsSequence one Dataset at a time. For a series of
single-frame source images the same file is made here in three steps:

1. highdicom builds the SEG on the *first* source image only, with one empty plane: every
   attribute that does not depend on the other source images or on the frames (patient,
   study, equipment, segment descriptions, dimension index, shared functional groups) is
   highdicom's own.
2. The attributes that depend on all source images or on the frames are computed here as
   highdicom computes them (:class:`SourcePlanes`, :func:`seg_frames`): the frame order
   (segment, then plane sorted along the normal), the Dimension Index Values, the slice
   spacing of the Pixel Measures, the Dimension Organization Type, the source image
   references and the bit-packed Pixel Data.
3. pydicom writes the dataset without those large elements; their bytes, encoded here in
   Explicit VR Little Endian exactly as pydicom encodes them (defined lengths, UI padded
   with NUL, text padded with a space), are inserted at their place in tag order
   (:func:`write_with_encoded`).

The result is byte-identical to highdicom + ``Dataset.save_as`` (checked in
``tests/test_seg_encode.py``); any input outside the supported case (a multi-frame
source, source images that highdicom would refuse) is left to the full highdicom path by
the caller.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from pydicom.dataset import Dataset
from pydicom.filebase import DicomBytesIO
from pydicom.filewriter import dcmwrite, write_dataset
from pydicom.valuerep import DS, format_number_as_ds

from netvolume.io.dicom import _ds_texts, _Image

__all__ = [
    "EncodedFrames",
    "SourcePlanes",
    "encode_item",
    "seg_frames",
    "source_planes",
    "write_with_encoded",
]

# tags (group << 16 | element)
_REFERENCED_SERIES_SEQUENCE = 0x00081115
_REFERENCED_INSTANCE_SEQUENCE = 0x0008114A
_REFERENCED_SOP_CLASS_UID = 0x00081150
_REFERENCED_SOP_INSTANCE_UID = 0x00081155
_SOURCE_IMAGE_SEQUENCE = 0x00082112
_DERIVATION_IMAGE_SEQUENCE = 0x00089124
_DERIVATION_CODE_SEQUENCE = 0x00089215
_SERIES_INSTANCE_UID = 0x0020000E
_IMAGE_POSITION_PATIENT = 0x00200032
_FRAME_CONTENT_SEQUENCE = 0x00209111
_PLANE_POSITION_SEQUENCE = 0x00209113
_DIMENSION_INDEX_VALUES = 0x00209157
_SPATIAL_LOCATIONS_PRESERVED = 0x0028135A
_PURPOSE_OF_REFERENCE_CODE_SEQUENCE = 0x0040A170
_SEGMENT_IDENTIFICATION_SEQUENCE = 0x0062000A
_REFERENCED_SEGMENT_NUMBER = 0x0062000B
_PER_FRAME_FUNCTIONAL_GROUPS_SEQUENCE = 0x52009230
_PIXEL_DATA = 0x7FE00010

_ITEM_TAG = b"\xfe\xff\x00\xe0"  # (FFFE,E000), little endian
_LONG_VRS = frozenset(
    {b"OB", b"OD", b"OF", b"OL", b"OV", b"OW", b"SQ", b"SV", b"UC", b"UN", b"UR", b"UT", b"UV"}
)


# ---------------------------------------------------------------------------- encoding
def _tag(tag: int) -> bytes:
    return struct.pack("<HH", tag >> 16, tag & 0xFFFF)


def _element(tag: int, vr: bytes, value: bytes) -> bytes:
    """One Explicit VR Little Endian element of defined length (value already padded)."""
    if vr in _LONG_VRS:
        return _tag(tag) + vr + b"\0\0" + struct.pack("<L", len(value)) + value
    return _tag(tag) + vr + struct.pack("<H", len(value)) + value


def _item(content: bytes) -> bytes:
    """A sequence item of defined length, as pydicom writes a Dataset in a Sequence."""
    return _ITEM_TAG + struct.pack("<L", len(content)) + content


def _sequence(tag: int, items: Iterable[bytes]) -> bytes:
    """An SQ element of defined length holding the encoded ``items`` (item contents)."""
    return _element(tag, b"SQ", b"".join(_item(i) for i in items))


def _ui(tag: int, uid: str) -> bytes:
    value = uid.encode("ascii")
    return _element(tag, b"UI", value + b"\0" if len(value) % 2 else value)


def _text(tag: int, vr: bytes, text: str) -> bytes:
    value = text.encode("ascii")
    return _element(tag, vr, value + b" " if len(value) % 2 else value)


def encode_item(ds: Dataset) -> bytes:
    """The content of a sequence item (no item header) as pydicom writes it.

    Parameters
    ----------
    ds
        The item dataset.

    Returns
    -------
    bytes
        Explicit VR Little Endian encoding of the item's elements.
    """
    fp = DicomBytesIO()
    fp.is_little_endian = True
    fp.is_implicit_VR = False
    write_dataset(fp, ds)
    return fp.getvalue()


# ---------------------------------------------------------------------------- sources
@dataclass(frozen=True)
class SourcePlanes:
    """What every SEG of one single-frame source series shares, encoded once.

    Attributes
    ----------
    positions
        ImagePositionPatient of each source image (mm), shape (N, 3), in source order.
    sort_index
        Source indices in the order highdicom gives the frames of one segment (increasing
        distance along the slice normal).
    derivation
        Per source image: the encoded DerivationImageSequence element of a frame made
        from it (source image reference and derivation code).
    plane_position
        Per source image: the encoded PlanePositionSequence element.
    references
        Per source image: its encoded ReferencedSOPClassUID and ReferencedSOPInstanceUID.
    series_instance_uid
        The source images' SeriesInstanceUID.
    orientation
        ImageOrientationPatient of the first source image (direction cosines).
    """

    positions: np.ndarray
    sort_index: np.ndarray
    derivation: tuple[bytes, ...]
    plane_position: tuple[bytes, ...]
    references: tuple[bytes, ...]
    series_instance_uid: str
    orientation: tuple[float, ...]

    def source_image_sequence(self, n: int | None = None) -> bytes:
        """The encoded SourceImageSequence element (the first ``n`` source images)."""
        return _sequence(_SOURCE_IMAGE_SEQUENCE, self.references[:n])

    def referenced_series_sequence(self, n: int | None = None) -> bytes:
        """The encoded ReferencedSeriesSequence element (the first ``n`` source images)."""
        item = _sequence(_REFERENCED_INSTANCE_SEQUENCE, self.references[:n]) + _ui(
            _SERIES_INSTANCE_UID, self.series_instance_uid
        )
        return _sequence(_REFERENCED_SERIES_SEQUENCE, [item])

    def frame_item(self, plane: int, index: int, rank: int, segment: int | None) -> bytes:
        """The content of the PerFrameFunctionalGroupsSequence item of one frame.

        Parameters
        ----------
        plane
            Source image (plane) index.
        index, rank
            The Dimension Index Values: segment index (1-based, SegmentSequence order)
            and rank of the plane among the planes written (1-based).
        segment
            The segment number, or None when there is one segment (highdicom then puts
            the Segment Identification in the shared functional groups).
        """
        content = _sequence(
            _FRAME_CONTENT_SEQUENCE,
            [_element(_DIMENSION_INDEX_VALUES, b"UL", struct.pack("<2L", index, rank))],
        )
        segment_id = (
            b""
            if segment is None
            else _sequence(
                _SEGMENT_IDENTIFICATION_SEQUENCE,
                [_element(_REFERENCED_SEGMENT_NUMBER, b"US", struct.pack("<H", segment))],
            )
        )
        return self.derivation[plane] + content + self.plane_position[plane] + segment_id


def source_planes(
    first: Dataset, images: Sequence[_Image], purpose_code: Dataset, derivation_code: Dataset
) -> SourcePlanes | None:
    """Encode the per-source parts of a SEG on ``images``, or None if unsupported.

    The values of each source image are those :func:`~netvolume.io.dicom.scan` kept from
    its header (its image record), so that the headers need not be read again; those of
    the first image must equal its header ``first``. The checks highdicom makes on the
    source images are made here too (same study, series, SOP class, matrix and frame of
    reference, one orientation, no two images at the same position along the normal):
    where one fails, None is returned and the caller has highdicom build the SEG, which
    raises its own error.

    Parameters
    ----------
    first
        Header of the first source image.
    images
        Records of the single-frame source images, in the order of the SEG's planes.
    purpose_code, derivation_code
        The PurposeOfReferenceCodeSequence and DerivationCodeSequence items highdicom
        puts in each frame (taken from a SEG it built, so that they are its own).

    Returns
    -------
    SourcePlanes or None
    """
    from highdicom.image import (  # the functions highdicom itself uses
        VOLUME_INDEX_CONVENTION,
        _get_slice_distances,
        get_normal_vector,
    )

    key = _uniqueness(first)
    iop = first.get("ImageOrientationPatient")
    if key is None or iop is None or not images:
        return None
    try:
        orientation = tuple(float(v) for v in iop)
        im0 = images[0]
        header0 = (
            first[0x00080016].value,
            first[0x00080018].value,
            key[0],
            key[4],
            key[2],
            key[3],
            orientation,
            _ds_texts(first.get("ImagePositionPatient")),
        )
    except (KeyError, TypeError, ValueError):
        return None
    record0 = (
        im0.sop_class_uid,
        im0.sop_instance_uid,
        im0.study_instance_uid,
        im0.frame_of_reference_uid,
        im0.rows,
        im0.columns,
        im0.orientation,
        im0.position_text,
    )
    if len(orientation) != 6 or header0 != record0:
        return None  # the file changed since it was scanned, or an unexpected value
    purpose = encode_item(purpose_code)
    derivation_code_bytes = _sequence(_DERIVATION_CODE_SEQUENCE, [encode_item(derivation_code)])
    positions = np.empty((len(images), 3))
    derivation: list[bytes] = []
    plane_position: list[bytes] = []
    references: list[bytes] = []
    try:
        for n, im in enumerate(images):
            if (
                im.n_frames != 1
                or im.position_text is None
                or len(im.position_text) != 3
                or not im.sop_instance_uid
                or (im.sop_class_uid, im.study_instance_uid, im.frame_of_reference_uid)
                != (record0[0], record0[2], record0[3])
                or (im.rows, im.columns, im.orientation) != record0[4:7]
            ):
                return None
            # as highdicom's PlanePositionSequence: DS(value, auto_format=True)
            texts: list[Any] = [DS(DS(v), auto_format=True) for v in im.position_text]
            positions[n] = [float(v) for v in texts]
            ds_text = "\\".join(getattr(v, "original_string", str(v)) for v in texts)
            reference = _ui(_REFERENCED_SOP_CLASS_UID, str(im.sop_class_uid)) + _ui(
                _REFERENCED_SOP_INSTANCE_UID, im.sop_instance_uid
            )
            source_item = (
                reference
                + _text(_SPATIAL_LOCATIONS_PRESERVED, b"CS", "YES")
                + _sequence(_PURPOSE_OF_REFERENCE_CODE_SEQUENCE, [purpose])
            )
            derivation.append(
                _sequence(
                    _DERIVATION_IMAGE_SEQUENCE,
                    [_sequence(_SOURCE_IMAGE_SEQUENCE, [source_item]) + derivation_code_bytes],
                )
            )
            plane_position.append(
                _sequence(
                    _PLANE_POSITION_SEQUENCE, [_text(_IMAGE_POSITION_PATIENT, b"DS", ds_text)]
                )
            )
            references.append(reference)
    except (TypeError, ValueError, UnicodeEncodeError):
        return None
    normal = get_normal_vector(iop, index_convention=VOLUME_INDEX_CONVENTION)
    distances = _get_slice_distances(positions, normal)
    _, sort_index = np.unique(distances, return_index=True)
    if len(sort_index) != len(images):
        return None  # highdicom: "Plane positions must not contain duplicates."
    return SourcePlanes(
        positions=positions,
        sort_index=sort_index,
        derivation=tuple(derivation),
        plane_position=tuple(plane_position),
        references=tuple(references),
        series_instance_uid=str(key[1]),
        orientation=tuple(float(v) for v in iop),
    )


def template_encoding(planes: SourcePlanes, n_segments: int) -> list[bytes]:
    """What :func:`encoded_template` gives for a SEG built on the first source image only.

    That SEG (one empty plane, every frame kept) has one frame per segment, all on
    source image 0, and references source image 0 only.
    """
    single = n_segments == 1
    out = [planes.source_image_sequence(1), planes.referenced_series_sequence(1)]
    for number in range(1, n_segments + 1):
        out.append(planes.frame_item(0, number, 1, None if single else number))
    return out


def encoded_template(seg: Dataset) -> list[bytes]:
    """pydicom's encoding of the source references and frames of a SEG (see above)."""
    out = []
    for keyword in ("SourceImageSequence", "ReferencedSeriesSequence"):
        one = Dataset()
        one[keyword] = seg[keyword]
        out.append(encode_item(one))
    out.extend(encode_item(item) for item in seg.PerFrameFunctionalGroupsSequence)
    return out


def _uniqueness(ds: Dataset) -> tuple[Any, ...] | None:
    """The values highdicom requires all source images to share (None: one is missing)."""
    try:
        return (
            ds.StudyInstanceUID,
            ds.SeriesInstanceUID,
            ds.Rows,
            ds.Columns,
            getattr(ds, "FrameOfReferenceUID", None),
        )
    except AttributeError:
        return None


# ---------------------------------------------------------------------------- frames
@dataclass(frozen=True)
class EncodedFrames:
    """The frames of one SEG, encoded.

    Attributes
    ----------
    number_of_frames
        NumberOfFrames.
    per_frame
        The encoded PerFrameFunctionalGroupsSequence element.
    pixel_data
        The encoded PixelData element (OB, bit-packed frames).
    spacing_between_slices
        The SpacingBetweenSlices highdicom computes from all plane positions (DS text),
        or None where the planes are not regularly spaced.
    three_dimensional
        Whether highdicom gives the SEG DimensionOrganizationType "3D".
    """

    number_of_frames: int
    per_frame: bytes
    pixel_data: bytes
    spacing_between_slices: str | None
    three_dimensional: bool


def seg_frames(
    planes: SourcePlanes,
    seg_array: np.ndarray,
    segment_numbers: Sequence[int],
    *,
    omit_empty_frames: bool,
) -> EncodedFrames:
    """Encode the frames of a BINARY SEG of a label array, in highdicom's order.

    Parameters
    ----------
    planes
        The source planes (:func:`source_planes`).
    seg_array
        Segment numbers (0 = background), shape (N, rows, columns), plane ``k`` on source
        image ``k``; values outside ``segment_numbers`` must have been refused before.
    segment_numbers
        The described segment numbers, in SegmentSequence order.
    omit_empty_frames
        Leave out the frames where a segment has no pixel (all frames are kept when the
        whole array is empty, as highdicom does).

    Returns
    -------
    EncodedFrames
    """
    from highdicom.image import get_volume_positions

    n_planes = seg_array.shape[0]
    flat = seg_array.reshape(n_planes, -1)
    nonempty = np.flatnonzero(flat.any(axis=1))
    if omit_empty_frames and nonempty.size == 0:
        omit_empty_frames = False
    if omit_empty_frames:
        included = nonempty
        keep = np.zeros(n_planes, dtype=bool)
        keep[included] = True
        sort_index = [int(p) for p in planes.sort_index if keep[p]]
    else:
        included = np.arange(n_planes)
        sort_index = [int(p) for p in planes.sort_index]

    numbers = [int(s) for s in segment_numbers]
    top = max(numbers)
    # present[k, s]: segment s has a pixel on plane k
    present = np.zeros((n_planes, top + 1), dtype=bool)
    for z in nonempty:
        plane = flat[z]
        present[z, plane[plane != 0]] = True

    single = len(numbers) == 1
    frame_pixels = seg_array.shape[1] * seg_array.shape[2]
    packed: list[bytes] = []
    bits: list[np.ndarray] = []
    items: list[bytes] = []
    for index, number in enumerate(numbers, start=1):
        for rank, k in enumerate(sort_index, start=1):
            if omit_empty_frames and not present[k, number]:
                continue
            items.append(planes.frame_item(k, index, rank, None if single else number))
            mask = flat[k] == number
            if frame_pixels % 8 == 0:
                packed.append(np.packbits(mask, bitorder="little").tobytes())
            else:
                bits.append(mask)
    if bits:
        packed = [np.packbits(np.concatenate(bits), bitorder="little").tobytes()]
    pixels = b"".join(packed)
    if len(pixels) % 2:
        pixels += b"0"  # highdicom pads odd Pixel Data with an ASCII zero

    # highdicom passes the positions as an (N, 3) array
    positions: Any = planes.positions
    orientation = list(planes.orientation)
    spacing, _ = get_volume_positions(image_positions=positions, image_orientation=orientation)
    three_d = False
    if len(included) > 1 and single:
        regular, _ = get_volume_positions(
            image_positions=positions[included, :],
            image_orientation=orientation,
            sort=False,
        )
        three_d = regular is not None and regular > 0.0
    return EncodedFrames(
        number_of_frames=len(items),
        per_frame=_sequence(_PER_FRAME_FUNCTIONAL_GROUPS_SEQUENCE, items),
        pixel_data=_element(_PIXEL_DATA, b"OB", pixels),
        spacing_between_slices=None if spacing is None else format_number_as_ds(spacing),
        three_dimensional=three_d,
    )


# ---------------------------------------------------------------------------- writing
def write_with_encoded(
    ds: Dataset, encoded: dict[int, bytes], path: str | os.PathLike[str]
) -> bool:
    """Write ``ds`` as pydicom does, with some top-level elements already encoded.

    pydicom writes ``ds`` (which must not hold the tags of ``encoded``) to memory; each
    encoded element is then inserted before the first top-level element of a larger tag,
    where pydicom would have written it. Top-level elements are written one after the
    other in tag order with no enclosing length, so the result is what pydicom writes for
    the whole dataset.

    Parameters
    ----------
    ds
        The dataset, with file meta information, Explicit VR Little Endian.
    encoded
        Tag -> the element's full encoding (tag, VR, length, value).
    path
        Output file.

    Returns
    -------
    bool
        True when written; False (nothing written) when the pydicom output cannot be
        walked (an element of undefined length before an insertion point).
    """
    buf = DicomBytesIO()
    dcmwrite(buf, ds, enforce_file_format=True)
    data = buf.getvalue()
    # preamble (128) + "DICM" + (0002,0000) UL element (12 bytes) + the group it counts
    if data[128:132] != b"DICM" or data[132:136] != b"\x02\x00\x00\x00":
        return False
    pos = 132 + 12 + struct.unpack_from("<L", data, 140)[0]
    pending = sorted(encoded.items())
    parts: list[bytes] = []
    start = 0
    while pending and pos < len(data):
        group, elem = struct.unpack_from("<HH", data, pos)
        tag = group << 16 | elem
        while pending and pending[0][0] < tag:
            parts.append(data[start:pos])
            parts.append(pending.pop(0)[1])
            start = pos
        if not pending:
            break
        if tag == pending[0][0]:
            return False  # the dataset holds an element given as encoded
        end = _skip_element(data, pos)
        if end is None:
            return False
        pos = end
    parts.append(data[start:pos])
    parts.extend(value for _, value in pending)
    parts.append(data[pos:])
    with open(path, "wb") as fp:
        for part in parts:
            fp.write(part)
    return True


def _skip_element(data: bytes, pos: int) -> int | None:
    """The offset after the Explicit VR Little Endian element at ``pos`` (None: unknown).

    Elements of undefined length (a sequence pydicom keeps as read) are walked item by
    item to their Sequence Delimitation Item.
    """
    if pos + 8 > len(data):
        return None
    vr = data[pos + 4 : pos + 6]
    if vr in _LONG_VRS:
        length = struct.unpack_from("<L", data, pos + 8)[0]
        pos += 12
    else:
        length = struct.unpack_from("<H", data, pos + 6)[0]
        pos += 8
    if length != 0xFFFFFFFF:
        return pos + length if pos + length <= len(data) else None
    if vr != b"SQ":
        return None  # encapsulated pixel data: not expected before the inserted elements
    while pos + 8 <= len(data):
        tag = data[pos : pos + 4]
        item_length = struct.unpack_from("<L", data, pos + 4)[0]
        pos += 8
        if tag == b"\xfe\xff\xdd\xe0":  # Sequence Delimitation Item
            return pos
        if tag != _ITEM_TAG:
            return None
        if item_length != 0xFFFFFFFF:
            pos += item_length
            continue
        while data[pos : pos + 4] != b"\xfe\xff\x0d\xe0":  # up to Item Delimitation
            end = _skip_element(data, pos)
            if end is None:
                return None
            pos = end
        pos += 8
    return None

"""The SEG fast path (:mod:`netvolume.io.masks._seg_encode`) writes highdicom's bytes.

Every SEG here is written twice: by the fast path of ``write_seg`` (highdicom builds the
SEG on the first source image, netvolume encodes the frames and source references) and
by highdicom building every frame and pydicom writing the whole dataset
(``_write_seg(..., fast_path=False)``, what ``write_seg`` did before). The two files must
be equal byte for byte.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pydicom
import pytest
from _orientation import oblique_iop
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.filebase import DicomBytesIO
from pydicom.filewriter import dcmwrite
from pydicom.sequence import Sequence as DicomSequence
from pydicom.uid import ExplicitVRLittleEndian

from netvolume.io.dicom import Series, scan
from netvolume.io.dicom_write import write_series
from netvolume.io.masks import _seg_encode, _seg_write
from netvolume.io.masks._seg_write import (
    Segment,
    SegReference,
    load_seg_reference,
    write_seg,
)
from netvolume.volume import Volume


# ---------------------------------------------------------------------------- helpers
def _series(folder: Path, shape: tuple[int, int, int], seed: int, **kwargs: Any) -> Series:
    rng = np.random.default_rng(seed)
    write_series(folder, rng.integers(0, 3000, size=shape).astype(np.int16), seed=seed, **kwargs)
    return scan(folder).select()


def _blobs(shape: tuple[int, ...], n_labels: int, seed: int) -> np.ndarray:
    """Random boxes of labels 1..n_labels (later ones overwrite earlier ones)."""
    rng = np.random.default_rng(seed)
    arr = np.zeros(shape, dtype=np.uint8 if n_labels < 256 else np.uint16)
    for value in range(1, n_labels + 1):
        lo = [int(rng.integers(0, s)) for s in shape]
        hi = [
            min(s, a + int(rng.integers(1, max(2, s // 2)))) for a, s in zip(lo, shape, strict=True)
        ]
        arr[lo[0] : hi[0], lo[1] : hi[1], lo[2] : hi[2]] = value
    return arr


class _Spy:
    """Counts the SEGs the fast path wrote (calls of ``write_with_encoded``)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.calls = 0
        real: Callable[..., bool] = _seg_encode.write_with_encoded

        def spy(*args: Any, **kwargs: Any) -> bool:
            self.calls += 1
            return real(*args, **kwargs)

        monkeypatch.setattr(_seg_write, "write_with_encoded", spy)


def _both(
    labels: Volume,
    reference: SegReference | Series,
    segments: list[Segment] | None,
    folder: Path,
    name: str,
    **kwargs: Any,
) -> tuple[bytes, bytes]:
    """The SEG written by the fast path and by highdicom + pydicom alone."""
    out = []
    for fast in (True, False):
        path = folder / f"{name}-{'fast' if fast else 'highdicom'}.dcm"
        _seg_write._write_seg(
            labels,
            reference,
            segments,
            path=path,
            series_number=kwargs.get("series_number", 900),
            series_description=kwargs.get("series_description", "netvolume segmentation"),
            content_label=kwargs.get("content_label", "NETVOLUME"),
            fast_path=fast,
        )
        out.append(path.read_bytes())
    return out[0], out[1]


def _assert_same(fast: bytes, slow: bytes) -> None:
    if fast != slow:
        at = next(i for i, (a, b) in enumerate(zip(fast, slow, strict=False)) if a != b)
        pytest.fail(f"fast SEG differs from highdicom's at byte {at} ({len(fast)} vs {len(slow)})")


@pytest.fixture(scope="module")
def axial(tmp_path_factory: pytest.TempPathFactory) -> Series:
    return _series(
        tmp_path_factory.mktemp("axial"),
        (14, 20, 24),
        seed=31,
        spacing_mm=(2.5, 0.8, 0.7),
        origin_lps=(-100.5, -80.25, 30.0),
    )


# ---------------------------------------------------------------------------- equality
@pytest.mark.parametrize("n_labels", [1, 2, 7])
def test_fast_path_equals_highdicom(
    n_labels: int, axial: Series, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    spy = _Spy(monkeypatch)
    reference = load_seg_reference(axial)
    vol = reference.volume
    arr = _blobs(vol.spatial_shape, n_labels, seed=n_labels)
    names = {v: f"L{v}" for v in range(1, n_labels + 1)}
    labels = vol.with_array(arr, label_names=names)
    fast, slow = _both(labels, reference, None, tmp_path, "seg")
    _assert_same(fast, slow)
    assert spy.calls == 1
    ds = pydicom.dcmread(tmp_path / "seg-fast.dcm")
    if n_labels == 1:  # one segment: a "3D" dimension organisation, shared segment id
        assert ds.DimensionOrganizationType == "3D"
        assert "SegmentIdentificationSequence" in ds.SharedFunctionalGroupsSequence[0]


def test_several_segs_on_one_reference(
    axial: Series, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The encoded source planes are made once and serve every SEG of the reference."""
    spy = _Spy(monkeypatch)
    reference = load_seg_reference(axial)
    vol = reference.volume
    for n, seed in ((3, 1), (4, 2), (1, 3)):
        labels = vol.with_array(
            _blobs(vol.spatial_shape, n, seed), label_names={v: f"S{v}" for v in range(1, n + 1)}
        )
        _assert_same(*_both(labels, reference, None, tmp_path, f"seg{seed}", series_number=seed))
    assert spy.calls == 3
    assert len(reference.planes) == 1 and reference.planes[0] is not None


def test_only_the_first_header_is_read(
    axial: Series, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The other source images' values come from their scan records."""
    read: list[Path] = []
    real = _seg_write._read_source

    def counting(path: Path) -> Dataset:
        read.append(path)
        return real(path)

    monkeypatch.setattr(_seg_write, "_read_source", counting)
    reference = load_seg_reference(axial)
    vol = reference.volume
    for n in (2, 3):
        labels = vol.with_array(
            _blobs(vol.spatial_shape, n, n), label_names={v: f"L{v}" for v in range(1, n + 1)}
        )
        write_seg(labels, reference, path=tmp_path / f"{n}.dcm")
    assert read == [reference.images[0].path]
    # highdicom's own path reads every header, once
    _seg_write._write_seg(
        labels,
        reference,
        None,
        path=tmp_path / "slow.dcm",
        series_number=900,
        series_description="netvolume segmentation",
        content_label="NETVOLUME",
        fast_path=False,
    )
    assert sorted(read) == sorted(im.path for im in reference.images)
    assert (tmp_path / "slow.dcm").read_bytes() == (tmp_path / "3.dcm").read_bytes()


def test_first_header_changed_since_the_scan(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Scan records that disagree with the header read now: highdicom builds the SEG."""
    series = _series(tmp_path / "ct", (5, 8, 10), seed=47, spacing_mm=(2.0, 1.0, 1.0))
    reference = load_seg_reference(series)
    first = reference.images[0].path
    ds = pydicom.dcmread(first)
    ds.ImagePositionPatient = [f"{float(v)}0" for v in ds.ImagePositionPatient]  # same values
    ds.save_as(first)
    spy = _Spy(monkeypatch)
    labels = reference.volume.with_array(
        _blobs(reference.volume.spatial_shape, 2, seed=9), label_names={1: "L1", 2: "L2"}
    )
    _assert_same(*_both(labels, reference, None, tmp_path, "changed"))
    assert spy.calls == 0 and reference.planes == [None]


def test_empty_segment_empty_map_and_crop(
    axial: Series, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    spy = _Spy(monkeypatch)
    reference = load_seg_reference(axial)
    vol = reference.volume
    arr = _blobs(vol.spatial_shape, 3, seed=5)
    arr[arr == 2] = 0
    segments = [Segment(v, f"L{v}") for v in (1, 2, 3)]
    labels = vol.with_array(arr)
    # segment 2 has no voxel: described, without frames
    _assert_same(*_both(labels, reference, segments, tmp_path, "empty-segment"))
    # nothing labelled: every (empty) frame of every segment is written
    blank = vol.with_array(np.zeros_like(arr))
    _assert_same(*_both(blank, reference, segments, tmp_path, "blank"))
    # a crop of the grid holding every labelled voxel
    nz = np.argwhere(arr)
    lo, hi = nz.min(axis=0), nz.max(axis=0) + 1
    crop = labels.crop([(int(a), int(b)) for a, b in zip(lo, hi, strict=True)])
    assert crop.spatial_shape != labels.spatial_shape
    _assert_same(*_both(crop, reference, segments, tmp_path, "crop"))
    assert spy.calls == 3


@pytest.mark.parametrize(
    "kwargs",
    [
        {"orientation": (0.0, 1.0, 0.0, 0.0, 0.0, -1.0)},  # sagittal
        {"orientation": oblique_iop(20.0, 35.0)},
        {"extra": {"SpacingBetweenSlices": "2.5"}},  # the source gives the spacing
        # slices stored from head to feet: the frame order differs from the file order
        {"positions": [(0.0, 0.0, -2.5 * k) for k in range(9)]},
        # not regularly spaced (within netvolume's 1 %, not highdicom's tolerance)
        {"positions": [(0.0, 0.0, 2.5 * k + (0.02 if k == 4 else 0.0)) for k in range(9)]},
        # DS text of more than 16 characters, which highdicom writes reformatted
        {
            "per_slice_extra": [
                {"ImagePositionPatient": ["-0.12345678901234567", "1.0", f"{2.5 * k}00000000001"]}
                for k in range(9)
            ]
        },
    ],
    ids=["sagittal", "oblique", "spacing", "descending", "irregular", "long-ds"],
)
@pytest.mark.filterwarnings("ignore::UserWarning")  # pydicom, writing the long DS source
def test_geometries(
    kwargs: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    spy = _Spy(monkeypatch)
    series = _series(tmp_path / "ct", (9, 12, 10), seed=41, spacing_mm=(2.5, 1.0, 1.1), **kwargs)
    reference = load_seg_reference(series)
    vol = reference.volume
    for n in (1, 3):
        labels = vol.with_array(
            _blobs(vol.spatial_shape, n, seed=n + 7),
            label_names={v: f"L{v}" for v in range(1, n + 1)},
        )
        _assert_same(*_both(labels, reference, None, tmp_path, f"n{n}"))
    assert spy.calls == 2


def test_frames_not_a_multiple_of_eight_pixels(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """7 x 9 pixels a frame: the bits of a frame run on into the next byte, odd padding."""
    spy = _Spy(monkeypatch)
    series = _series(tmp_path / "ct", (6, 7, 9), seed=43, spacing_mm=(3.0, 1.0, 1.0))
    reference = load_seg_reference(series)
    vol = reference.volume
    for n, seed in ((2, 1), (3, 2), (1, 4)):
        labels = vol.with_array(
            _blobs(vol.spatial_shape, n, seed), label_names={v: f"L{v}" for v in range(1, n + 1)}
        )
        _assert_same(*_both(labels, reference, None, tmp_path, f"odd{seed}"))
    assert spy.calls == 3


def test_more_than_255_segments(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    spy = _Spy(monkeypatch)
    series = _series(tmp_path / "ct", (4, 16, 18), seed=44, spacing_mm=(3.0, 1.0, 1.0))
    reference = load_seg_reference(series)
    vol = reference.volume
    arr = (np.arange(int(np.prod(vol.spatial_shape))) % 300).reshape(vol.spatial_shape) + 1
    labels = vol.with_array(arr.astype(np.uint16))
    segments = [Segment(v, f"L{v}") for v in range(1, 301)]
    _assert_same(*_both(labels, reference, segments, tmp_path, "many"))
    assert spy.calls == 1


def test_multiframe_reference_uses_highdicom(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import highdicom as hd

    series = _series(tmp_path / "ct", (5, 8, 10), seed=45, spacing_mm=(2.0, 1.0, 1.0))
    legacy = [pydicom.dcmread(p) for p in sorted(series.files)]
    enhanced = hd.legacy.LegacyConvertedEnhancedCTImage(legacy, hd.UID(), 5, hd.UID(), 1)
    (tmp_path / "enhanced").mkdir()
    enhanced.save_as(tmp_path / "enhanced" / "e.dcm", enforce_file_format=True)
    reference = load_seg_reference(scan(tmp_path / "enhanced").select())
    spy = _Spy(monkeypatch)
    labels = reference.volume.with_array(
        _blobs(reference.volume.spatial_shape, 2, seed=3), label_names={1: "L1", 2: "L2"}
    )
    _assert_same(*_both(labels, reference, None, tmp_path, "enhanced"))
    assert spy.calls == 0


def test_sources_highdicom_refuses_are_left_to_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An image of another study in the series: highdicom's error, as before."""
    series = _series(
        tmp_path / "ct",
        (4, 8, 8),
        seed=46,
        spacing_mm=(2.0, 1.0, 1.0),
        per_slice_extra=[{}, {}, {"StudyInstanceUID": "1.2.3.4"}, {}],
    )
    reference = load_seg_reference(series)
    labels = reference.volume.with_array(np.ones(reference.volume.spatial_shape, np.uint8))
    for fast in (True, False):
        with pytest.raises(_seg_write.MaskError, match="highdicom cannot build a SEG"):
            _seg_write._write_seg(
                labels,
                reference,
                [Segment(1, "L1")],
                path=tmp_path / "seg.dcm",
                series_number=900,
                series_description="d",
                content_label="C",
                fast_path=fast,
            )
    assert reference.planes == [None]


# ---------------------------------------------------------------------------- writer
def _file_dataset() -> Dataset:
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.66.4"
    ds.file_meta.MediaStorageSOPInstanceUID = "1.2.3.4.5"
    ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.66.4"
    ds.SOPInstanceUID = "1.2.3.4.5"
    ds.PatientName = "A^B"
    ds.BitsAllocated = 1
    return ds


def _element_bytes(keyword: str, value: Any) -> bytes:
    one = Dataset()
    setattr(one, keyword, value)
    return _seg_encode.encode_item(one)


@pytest.mark.parametrize("undefined", [False, True])
def test_write_with_encoded_equals_dcmwrite(tmp_path: Path, undefined: bool) -> None:
    """Elements encoded apart and inserted give dcmwrite's bytes, also after a sequence
    of undefined length (as pydicom keeps one it read) before the insertion point."""
    item = Dataset()
    item.CodeValue = "1"
    inner = Dataset()
    inner.CodeMeaning = "x"
    item.ConceptNameCodeSequence = DicomSequence([inner])
    whole = _file_dataset()
    whole.ContentSequence = DicomSequence([item])  # (0040,A730)
    whole.ReferencedSeriesSequence = DicomSequence([item])  # (0008,1115)
    whole.Rows = 3
    whole.PixelData = b"\x01\x02"
    if undefined:
        whole["ContentSequence"].is_undefined_length = True
        whole.ContentSequence[0].is_undefined_length_sequence_item = True
    buf = DicomBytesIO()
    dcmwrite(buf, whole, enforce_file_format=True)

    part = _file_dataset()
    part.ContentSequence = whole.ContentSequence
    part["ContentSequence"].is_undefined_length = undefined
    part.Rows = 3
    encoded = {
        0x00081115: _element_bytes("ReferencedSeriesSequence", DicomSequence([item])),
        0x7FE00010: struct.pack("<HH", 0x7FE0, 0x0010) + b"OB\0\0" + struct.pack("<L", 2) + b"\1\2",
    }
    assert _seg_encode.write_with_encoded(part, encoded, tmp_path / "x.dcm")
    assert (tmp_path / "x.dcm").read_bytes() == buf.getvalue()


def test_encoded_text_padding() -> None:
    """UI values are padded with NUL, CS and DS values with a space, as pydicom does."""
    for uid in ("1.2.3", "1.2.34"):
        assert _seg_encode._ui(0x00081155, uid) == _element_bytes("ReferencedSOPInstanceUID", uid)
    for text in ("YES", "NO"):
        assert _seg_encode._text(0x0028135A, b"CS", text) == _element_bytes(
            "SpatialLocationsPreserved", text
        )
    for ds in ("1\\2\\3", "-1.5\\2\\3.25"):
        assert _seg_encode._text(0x00200032, b"DS", ds) == _element_bytes(
            "ImagePositionPatient", ds.split("\\")
        )

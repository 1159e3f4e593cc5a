"""Tests of :mod:`netvolume.io.masks` (reading label maps, TotalSegmentator output and
RTSTRUCT onto a reference image) and of the ``netvolume mask`` command.

Oracles, never the code's own output:

* ``fill_even_odd`` against ``skimage.draw.polygon`` (pixel centre inside the polygon) and
  against analytic masks of axis-aligned rectangles;
* RTSTRUCT rasterisation against the analytic set of voxel centres (their LPS position)
  inside rectangles drawn in patient coordinates, edges between pixel centres;
* label maps against the array they were written from, in other axis orders, cropped,
  on a wider grid, or on a grid of half the spacing (each voxel split in 2x2x2).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np
import pytest
import SimpleITK as sitk
from _masks import write_rtstruct
from skimage.draw import polygon as sk_polygon

from netvolume.errors import (
    ContourError,
    InputPathError,
    MaskError,
    MaskGridError,
    MaskOverlapError,
    RoiNotFoundError,
    VolumeError,
)
from netvolume.io.dicom import load_folder
from netvolume.io.dicom_write import write_series
from netvolume.io.masks import list_structures, read
from netvolume.io.masks._rtstruct import fill_even_odd
from netvolume.io.nifti import read_nifti, write_nifti
from netvolume.volume import Volume

SHAPE = (8, 30, 40)
SPACING = (2.5, 0.9, 0.8)
ORIGIN = (-20.1, -15.3, 40.0)
SAGITTAL_IOP = (0.0, 1.0, 0.0, 0.0, 0.0, -1.0)
FOR_AXIAL = "1.2.826.0.1.3680043.8.498.7001"
FOR_SAGITTAL = "1.2.826.0.1.3680043.8.498.7002"
FOR_OTHER = "1.2.826.0.1.3680043.8.498.7999"
SERIES_AXIAL = "1.2.826.0.1.3680043.8.498.7101"
SERIES_SAGITTAL = "1.2.826.0.1.3680043.8.498.7102"
LPS_TO_RAS = np.diag([-1.0, -1.0, 1.0, 1.0])
NAMES = {1: "liver", 2: "spleen", 5: "lesion"}


# --------------------------------------------------------------------------- helpers
@dataclass
class Image:
    """A synthetic DICOM image series on disk and the Volume loaded from it."""

    folder: Path
    volume: Volume
    frame: str
    series: str


def _write_ct(folder: Path, *, orientation: tuple[float, ...], frame: str, series: str) -> Image:
    """Write a seeded 8 x 30 x 40 CT series and load it.

    Parameters
    ----------
    folder
        Where the series goes.
    orientation
        ImageOrientationPatient.
    frame, series
        FrameOfReferenceUID and SeriesInstanceUID.

    Returns
    -------
    Image
    """
    rng = np.random.default_rng(11)
    arr = rng.integers(0, 3000, size=SHAPE).astype(np.int16)
    write_series(
        folder,
        arr,
        spacing_mm=SPACING,
        origin_lps=ORIGIN,
        orientation=orientation,
        frame_of_reference_uid=frame,
        series_instance_uid=series,
        seed=3,
    )
    return Image(folder, load_folder(folder), frame, series)


@pytest.fixture(scope="module")
def axial(tmp_path_factory: pytest.TempPathFactory) -> Image:
    """The axial reference CT."""
    img = _write_ct(
        tmp_path_factory.mktemp("ct_axial"),
        orientation=(1.0, 0.0, 0.0, 0.0, 1.0, 0.0),
        frame=FOR_AXIAL,
        series=SERIES_AXIAL,
    )
    # the geometry the oracles rely on, straight from the writer's parameters
    expected = np.eye(4)
    expected[:3, 0] = (0.0, 0.0, SPACING[0])
    expected[:3, 1] = (0.0, SPACING[1], 0.0)
    expected[:3, 2] = (SPACING[2], 0.0, 0.0)
    expected[:3, 3] = ORIGIN
    np.testing.assert_allclose(img.volume.affine, expected, atol=1e-9)
    assert img.volume.frame_of_reference_uid == FOR_AXIAL
    return img


@pytest.fixture(scope="module")
def sagittal(tmp_path_factory: pytest.TempPathFactory) -> Image:
    """A sagittal reference CT (rows towards inferior, columns towards posterior)."""
    img = _write_ct(
        tmp_path_factory.mktemp("ct_sagittal"),
        orientation=SAGITTAL_IOP,
        frame=FOR_SAGITTAL,
        series=SERIES_SAGITTAL,
    )
    expected = np.eye(4)
    expected[:3, 0] = (-SPACING[0], 0.0, 0.0)  # normal = row x column = -x (towards R)
    expected[:3, 1] = (0.0, 0.0, -SPACING[1])
    expected[:3, 2] = (0.0, SPACING[2], 0.0)
    expected[:3, 3] = ORIGIN
    np.testing.assert_allclose(img.volume.affine, expected, atol=1e-9)
    return img


def _centres(vol: Volume) -> np.ndarray:
    """LPS position (mm) of every voxel centre, shape ``(*spatial_shape, 3)``.

    Parameters
    ----------
    vol
        The grid.

    Returns
    -------
    numpy.ndarray
    """
    idx = np.indices(vol.spatial_shape).reshape(3, -1).T
    return vol.index_to_lps(idx).reshape(*vol.spatial_shape, 3)


def _rect(
    vol: Volume, k: float, rows: tuple[float, float], cols: tuple[float, float]
) -> np.ndarray:
    """Corners (LPS mm) of a rectangle in the plane of slice ``k``, given in index units.

    Parameters
    ----------
    vol
        The grid the rectangle is drawn on.
    k
        Slice index of the plane (fractional for a contour between slices).
    rows, cols
        Extent in row and column index units (fractional: between pixel centres).

    Returns
    -------
    numpy.ndarray
        ``(4, 3)`` points.
    """
    (r0, r1), (c0, c1) = rows, cols
    return vol.index_to_lps([[k, r0, c0], [k, r0, c1], [k, r1, c1], [k, r1, c0]])


def _inside_rect(centres: np.ndarray, corners: np.ndarray) -> np.ndarray:
    """Voxel centres inside an axis-aligned (in LPS) planar rectangle: the analytic oracle.

    Parameters
    ----------
    centres
        ``(..., 3)`` LPS positions.
    corners
        ``(4, 3)`` rectangle corners; along exactly one LPS axis all are equal (the plane).

    Returns
    -------
    numpy.ndarray
        Boolean mask: in the rectangle's plane (within 1 um) and strictly inside it.
    """
    lo = corners.min(axis=0)
    hi = corners.max(axis=0)
    flat = np.isclose(lo, hi, atol=1e-9)
    assert flat.sum() == 1, corners
    out = np.ones(centres.shape[:-1], dtype=bool)
    for a in range(3):
        if flat[a]:
            out &= np.abs(centres[..., a] - lo[a]) < 1e-3
        else:
            out &= (centres[..., a] > lo[a]) & (centres[..., a] < hi[a])
    return out


def _closed(points: np.ndarray) -> tuple[str, np.ndarray]:
    """A CLOSED_PLANAR contour item.

    Parameters
    ----------
    points
        ``(n, 3)`` LPS mm.

    Returns
    -------
    tuple
    """
    return ("CLOSED_PLANAR", np.asarray(points, dtype=np.float64))


def _rs(path: Path, img: Image, rois: list[Any], frame: str | None = None) -> Path:
    """Write an RTSTRUCT drawn on ``img``.

    Parameters
    ----------
    path
        Output file.
    img
        The image series it references.
    rois
        ROIs as :func:`_masks.write_rtstruct` takes them.
    frame
        FrameOfReferenceUID; the image's by default.

    Returns
    -------
    pathlib.Path
    """
    return write_rtstruct(
        path,
        frame_of_reference_uid=frame or img.frame,
        series_instance_uid=img.series,
        rois=rois,
        seed=5,
    )


def _liver_tumour(vol: Volume) -> tuple[list[Any], np.ndarray]:
    """Two ROIs (ROINumber 3 "Liver" on slices 2-4, 7 "Tumour" on 5-6) and their expectation.

    Parameters
    ----------
    vol
        The reference grid the contours are drawn on.

    Returns
    -------
    rois, expected
        ROIs for :func:`write_rtstruct` and the expected uint8 label array.
    """
    centres = _centres(vol)
    expected = np.zeros(vol.spatial_shape, dtype=np.uint8)
    liver, tumour = [], []
    for k in (2, 3, 4):
        pts = _rect(vol, k, (4.4 + k, 20.7), (3.3, 15.6 + k))
        liver.append(_closed(pts))
        expected[_inside_rect(centres, pts)] = 3
    for k in (5, 6):
        pts = _rect(vol, k, (2.6, 10.3), (20.2 - k, 35.8))
        tumour.append(_closed(pts))
        expected[_inside_rect(centres, pts)] = 7
    return [(3, "Liver", liver), (7, "Tumour", tumour)], expected


def _labels(ref: Volume, seed: int = 0, named: bool = True) -> Volume:
    """A seeded label Volume on the grid of ``ref``: values 1, 2, 5.

    Parameters
    ----------
    ref
        The grid.
    seed
        Seed of the scattered voxels of value 5.
    named
        Carry NAMES as ``label_names`` (written by ``write_nifti`` as a CaretExtension).

    Returns
    -------
    Volume
    """
    rng = np.random.default_rng(seed)
    arr = np.zeros(ref.spatial_shape, dtype=np.uint8)
    arr[1:5, 3:12, 4:20] = 1
    arr[2:7, 15:27, 22:37] = 2
    arr[(rng.random(arr.shape) < 0.03) & (arr == 0)] = 5
    return Volume(arr, ref.affine, label_names=NAMES if named else None)


def _ras_image(array: np.ndarray, affine_lps: np.ndarray, dtype: Any = np.int16) -> Any:
    """A nibabel image built by hand: NIfTI axes = the given array's axes, no reordering.

    Parameters
    ----------
    array
        Data, its index ``[a, b, c]`` mapped by ``affine_lps`` to LPS mm.
    affine_lps
        4x4 index -> LPS mm.
    dtype
        Stored data type.

    Returns
    -------
    nibabel.Nifti1Image
    """
    ras = LPS_TO_RAS @ np.asarray(affine_lps, dtype=np.float64)
    img = nib.Nifti1Image(np.asarray(array, dtype=dtype), ras)
    img.set_sform(ras, code=1)
    img.set_qform(ras, code=1)
    return img


def _totalseg_xml(label_map: dict[int, str]) -> bytes:
    """A CaretExtension label table laid out as TotalSegmentator's ``--ml`` output writes it.

    Parameters
    ----------
    label_map
        Value -> name.

    Returns
    -------
    bytes
        UTF-8 XML with the names in CDATA sections.
    """
    colours = [(1.0, 0.0, 0.0), (0.0, 1.0, 0.0), (0.0, 0.0, 1.0), (1.0, 1.0, 0.0)]
    head = (
        '<?xml version="1.0" encoding="UTF-8"?> <CaretExtension>  '
        "<Date><![CDATA[2013-07-14T05:45:09]]></Date>   "
        '<VolumeInformation Index="0">   <LabelTable>'
    )
    rows = ""
    for value, name in label_map.items():
        r, g, b = colours[value % len(colours)]
        rows += (
            f'<Label Key="{value}" Red="{r}" Green="{g}" Blue="{b}" Alpha="1">'
            f"<![CDATA[{name}]]></Label>\n"
        )
    tail = (
        "  </LabelTable>  <StudyMetaDataLinkSet>  </StudyMetaDataLinkSet>  "
        "<VolumeType><![CDATA[Label]]></VolumeType>   </VolumeInformation></CaretExtension>"
    )
    return (head + "\n" + rows + "\n" + tail + "\n              ").encode("utf-8")


def _notes(vol: Volume) -> str:
    """All provenance notes of a Volume as one string.

    Parameters
    ----------
    vol
        The Volume.

    Returns
    -------
    str
    """
    return "\n".join(vol.provenance.notes)


# --------------------------------------------------------------------------- fill_even_odd
def _random_polygon(rng: np.random.Generator, star: bool) -> np.ndarray:
    """A seeded simple polygon: convex (on a circle) or star-shaped, float vertices.

    Parameters
    ----------
    rng
        Seeded generator.
    star
        Star-shaped (random radius per vertex) instead of convex.

    Returns
    -------
    numpy.ndarray
        ``(n, 2)`` (row, column) vertices.
    """
    n = int(rng.integers(3, 14))
    angles = np.sort(rng.uniform(0, 2 * np.pi, n))
    centre = rng.uniform([5, 5], [45, 55])
    radius = rng.uniform(3, 25)
    radii = rng.uniform(0.3, 1.0, n) * radius if star else np.full(n, radius)
    return np.stack(
        [centre[0] + radii * np.sin(angles), centre[1] + radii * np.cos(angles)], axis=1
    )


def _skimage_mask(poly: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """The oracle: pixels whose centre ``skimage.draw.polygon`` finds inside.

    Parameters
    ----------
    poly
        ``(n, 2)`` (row, column) vertices.
    shape
        Output shape.

    Returns
    -------
    numpy.ndarray
    """
    out = np.zeros(shape, dtype=bool)
    rr, cc = sk_polygon(poly[:, 0], poly[:, 1], shape)
    out[rr, cc] = True
    return out


def _grid_rect(shape: tuple[int, int], rows: tuple[float, float], cols: tuple[float, float]):
    """Analytic mask of pixel centres strictly inside an axis-aligned rectangle.

    Parameters
    ----------
    shape
        Grid shape.
    rows, cols
        Rectangle extent.

    Returns
    -------
    numpy.ndarray
    """
    r = np.arange(shape[0])[:, None]
    c = np.arange(shape[1])[None, :]
    return (r > rows[0]) & (r < rows[1]) & (c > cols[0]) & (c < cols[1])


def _square(rows: tuple[float, float], cols: tuple[float, float]) -> np.ndarray:
    """Vertices of an axis-aligned rectangle, (row, column).

    Parameters
    ----------
    rows, cols
        Extent.

    Returns
    -------
    numpy.ndarray
    """
    (r0, r1), (c0, c1) = rows, cols
    return np.array([[r0, c0], [r0, c1], [r1, c1], [r1, c0]], dtype=np.float64)


@pytest.mark.parametrize("star", [False, True], ids=["convex", "star"])
def test_fill_even_odd_matches_skimage(star: bool) -> None:
    shape = (50, 60)
    for seed in range(25):
        rng = np.random.default_rng(1000 * int(star) + seed)
        poly = _random_polygon(rng, star)
        got = fill_even_odd([poly], shape)
        want = _skimage_mask(poly, shape)
        assert got.dtype == np.bool_
        assert got.shape == shape
        assert want.any()
        np.testing.assert_array_equal(got, want, err_msg=f"seed {seed}")


def test_fill_even_odd_reversed_vertex_order() -> None:
    rng = np.random.default_rng(7)
    poly = _random_polygon(rng, star=True)
    np.testing.assert_array_equal(
        fill_even_odd([poly[::-1]], (50, 60)), _skimage_mask(poly, (50, 60))
    )


def test_fill_even_odd_hole_island_and_disjoint() -> None:
    shape = (48, 52)
    outer = ((2.3, 40.6), (3.7, 45.2))
    middle = ((8.4, 34.3), (9.1, 38.8))
    inner = ((14.6, 27.2), (15.3, 30.9))
    ring = fill_even_odd([_square(*outer), _square(*middle)], shape)
    want_ring = _grid_rect(shape, *outer) & ~_grid_rect(shape, *middle)
    np.testing.assert_array_equal(ring, want_ring)
    assert not ring[20, 20]  # the hole

    nested = fill_even_odd([_square(*outer), _square(*middle), _square(*inner)], shape)
    want_nested = want_ring | _grid_rect(shape, *inner)
    np.testing.assert_array_equal(nested, want_nested)
    assert nested[20, 20] and not nested[11, 12]

    a = ((1.2, 10.8), (1.4, 12.6))
    b = ((20.3, 44.7), (30.2, 50.6))
    both = fill_even_odd([_square(*a), _square(*b)], shape)
    np.testing.assert_array_equal(both, _grid_rect(shape, *a) | _grid_rect(shape, *b))


def test_fill_even_odd_clips_outside_grid() -> None:
    shape = (20, 60)
    rows, cols = (-5.5, 10.3), (50.2, 80.7)
    got = fill_even_odd([_square(rows, cols)], shape)
    want = np.zeros(shape, dtype=bool)
    want[0:11, 51:60] = True
    np.testing.assert_array_equal(got, want)
    # entirely outside: nothing, no error
    assert not fill_even_odd([_square((-9.5, -2.5), (3.3, 7.7))], shape).any()
    assert not fill_even_odd([_square((3.3, 7.7), (61.2, 70.1))], shape).any()


def test_fill_even_odd_area_of_200_gon() -> None:
    r = 20.3
    t = np.linspace(0, 2 * np.pi, 200, endpoint=False)
    poly = np.stack([31.37 + r * np.sin(t), 33.71 + r * np.cos(t)], axis=1)
    count = int(fill_even_odd([poly], (64, 70)).sum())
    assert abs(count - np.pi * r**2) <= 2 * np.pi * r * 1.0


# --------------------------------------------------------------------------- RTSTRUCT
def test_rtstruct_axial_matches_analytic(axial: Image, tmp_path: Path) -> None:
    rois, expected = _liver_tumour(axial.volume)
    rs = _rs(tmp_path / "RS.dcm", axial, rois)
    got = read(rs, axial.volume)
    np.testing.assert_array_equal(got.array, expected)
    assert got.label_names == {3: "Liver", 7: "Tumour"}
    assert got.modality == "RTSTRUCT"
    np.testing.assert_array_equal(got.affine, axial.volume.affine)
    assert got.frame_of_reference_uid == FOR_AXIAL
    # hand check of one slice: rows 6.4..20.7 -> 7..20, columns 3.3..17.6 -> 4..17
    block = np.zeros(SHAPE[1:], dtype=np.uint8)
    block[7:21, 4:18] = 3
    np.testing.assert_array_equal(got.array[2], block)
    assert not got.array[[0, 1, 7]].any()


def test_rtstruct_sagittal_matches_analytic(sagittal: Image, tmp_path: Path) -> None:
    vol = sagittal.volume
    rois, expected = _liver_tumour(vol)
    assert (expected == 3).sum() > 100 and (expected == 7).sum() > 50
    rs = _rs(tmp_path / "RS.dcm", sagittal, rois)
    got = read(rs, vol)
    np.testing.assert_array_equal(got.array, expected)
    assert got.label_names == {3: "Liver", 7: "Tumour"}


def test_rtstruct_sagittal_contours_drawn_in_mm(sagittal: Image, tmp_path: Path) -> None:
    """Contours written directly in LPS mm (x = slice plane, y/z rectangle), not via index."""
    vol = sagittal.volume
    x = ORIGIN[0] - 3 * SPACING[0]  # slice 3
    y0, y1 = -11.17, 3.91  # columns: (y + 15.3) / 0.8 -> 5.16 .. 24.01 -> 6..24
    z0, z1 = 28.63, 37.21  # rows: (40 - z) / 0.9 -> 12.63 .. 3.1 -> 4..12
    pts = np.array([[x, y0, z0], [x, y1, z0], [x, y1, z1], [x, y0, z1]])
    rs = _rs(tmp_path / "RS.dcm", sagittal, [(4, "Box", [_closed(pts)])])
    got = read(rs, vol)
    want = np.zeros(SHAPE, dtype=np.uint8)
    want[3, 4:13, 6:25] = 4
    np.testing.assert_array_equal(got.array, want)


def test_rtstruct_hole_gives_ring(axial: Image, tmp_path: Path) -> None:
    vol = axial.volume
    outer = _rect(vol, 4, (3.2, 25.7), (5.4, 33.6))
    inner = _rect(vol, 4, (9.3, 18.4), (12.7, 24.2))
    rs = _rs(tmp_path / "RS.dcm", axial, [(2, "Ring", [_closed(outer), _closed(inner)])])
    got = read(rs, vol)
    c = _centres(vol)
    want = (_inside_rect(c, outer) & ~_inside_rect(c, inner)).astype(np.uint8) * 2
    np.testing.assert_array_equal(got.array, want)
    assert got.array[4, 14, 18] == 0 and got.array[4, 4, 6] == 2


@pytest.fixture
def three_rois(axial: Image, tmp_path: Path) -> Path:
    """An RTSTRUCT with Liver (3), Tumour (7) and Spleen (9, slice 0)."""
    rois, _ = _liver_tumour(axial.volume)
    spleen = _closed(_rect(axial.volume, 0, (1.5, 6.5), (1.5, 6.5)))
    return _rs(tmp_path / "rs" / "RS.dcm", axial, [*rois, (9, "Spleen", [spleen])])


def test_rtstruct_roi_selection(axial: Image, three_rois: Path) -> None:
    _, expected = _liver_tumour(axial.volume)
    got = read(three_rois, axial.volume, roi="Tumour")
    np.testing.assert_array_equal(got.array, np.where(expected == 7, 7, 0))
    assert got.label_names == {7: "Tumour"}
    got = read(three_rois, axial.volume, roi=["tUMOUR", "liver"])  # case-insensitive
    np.testing.assert_array_equal(got.array, expected)
    assert got.label_names == {3: "Liver", 7: "Tumour"}
    everything = read(three_rois, axial.volume)
    assert everything.label_names == {3: "Liver", 7: "Tumour", 9: "Spleen"}
    assert int((everything.array == 9).sum()) == 25
    # a folder holding the one RTSTRUCT reads the same
    np.testing.assert_array_equal(read(three_rois.parent, axial.volume).array, everything.array)


def test_rtstruct_unknown_and_repeated_roi(axial: Image, three_rois: Path) -> None:
    with pytest.raises(RoiNotFoundError) as info:
        read(three_rois, axial.volume, roi=["Liver", "Kidney"])
    text = str(info.value)
    assert "Kidney" in text
    for name in ("Liver", "Tumour", "Spleen"):
        assert name in text
    with pytest.raises(MaskError, match="twice") as twice:
        read(three_rois, axial.volume, roi=["Liver", "liver"])
    assert not isinstance(twice.value, RoiNotFoundError)


def _one_roi(axial: Image, tmp_path: Path, contours: list[Any], **kw: Any) -> Volume:
    """Write one ROI (number 1, "R") and read it.

    Parameters
    ----------
    axial
        Reference image.
    tmp_path
        Folder.
    contours
        Contour items.
    kw
        Passed to :func:`read`.

    Returns
    -------
    Volume
    """
    rs = _rs(tmp_path / "RS.dcm", axial, [(1, "R", contours)])
    return read(rs, axial.volume, **kw)


def test_rtstruct_empty_contour_data(axial: Image, tmp_path: Path) -> None:
    good = _closed(_rect(axial.volume, 3, (2.5, 9.5), (2.5, 9.5)))
    with pytest.raises(ContourError, match="empty"):
        _one_roi(axial, tmp_path, [good, ("CLOSED_PLANAR", np.zeros((0, 3)))])


def test_rtstruct_two_point_contour(axial: Image, tmp_path: Path) -> None:
    pts = _rect(axial.volume, 3, (2.5, 9.5), (2.5, 9.5))[:2]
    with pytest.raises(ContourError):
        _one_roi(axial, tmp_path, [_closed(pts)])


def test_rtstruct_point_only_roi(axial: Image, tmp_path: Path) -> None:
    p = axial.volume.index_to_lps([[3.0, 5.0, 5.0]])
    with pytest.raises(ContourError, match="POINT"):
        _one_roi(axial, tmp_path, [("POINT", p), ("POINT", p + 1.0)])


def test_rtstruct_contour_between_slices_is_noted(axial: Image, tmp_path: Path) -> None:
    vol = axial.volume
    on2 = _rect(vol, 2, (2.6, 9.4), (3.3, 11.7))
    on3 = _rect(vol, 3, (4.6, 12.4), (5.3, 13.7))
    between = _rect(vol, 4.5, (2.6, 9.4), (3.3, 11.7))
    got = _one_roi(axial, tmp_path, [_closed(on2), _closed(between), _closed(on3)])
    c = _centres(vol)
    want = (_inside_rect(c, on2) | _inside_rect(c, on3)).astype(np.uint8)
    np.testing.assert_array_equal(got.array, want)
    assert "miss the reference slices" in _notes(got)


def test_rtstruct_all_contours_missing(axial: Image, tmp_path: Path) -> None:
    vol = axial.volume
    between = _rect(vol, 4.5, (2.6, 9.4), (3.3, 11.7))
    below = _rect(vol, -3, (2.6, 9.4), (3.3, 11.7))
    above = _rect(vol, 9, (2.6, 9.4), (3.3, 11.7))
    with pytest.raises(ContourError):
        _one_roi(axial, tmp_path, [_closed(between), _closed(below), _closed(above)])


def test_rtstruct_tilted_contour(axial: Image, tmp_path: Path) -> None:
    vol = axial.volume
    # centred on slice 3 (mean index 3.0) but spanning 0.6 slice spacings across it
    corners = [[2.7, 3.5, 3.5], [2.7, 3.5, 12.5], [3.3, 12.5, 12.5], [3.3, 12.5, 3.5]]
    with pytest.raises(ContourError):
        _one_roi(axial, tmp_path, [_closed(vol.index_to_lps(corners))])
    flat = [[3.0, r, c] for _, r, c in corners]  # the same contour in the slice plane reads
    assert _one_roi(axial, tmp_path, [_closed(vol.index_to_lps(flat))]).array[3].sum() == 81


def test_rtstruct_other_frame_of_reference(axial: Image, tmp_path: Path) -> None:
    rois, expected = _liver_tumour(axial.volume)
    rs = _rs(tmp_path / "RS.dcm", axial, rois, frame=FOR_OTHER)
    with pytest.raises(MaskGridError) as info:
        read(rs, axial.volume)
    assert FOR_OTHER in str(info.value) and FOR_AXIAL in str(info.value)
    got = read(rs, axial.volume, allow_other_frame=True)
    np.testing.assert_array_equal(got.array, expected)
    notes = _notes(got)
    assert FOR_OTHER in notes and "allowed" in notes


def test_rtstruct_overlap(axial: Image, tmp_path: Path) -> None:
    vol = axial.volume
    a = _rect(vol, 3, (2.6, 14.4), (3.3, 20.7))
    b = _rect(vol, 3, (10.6, 22.4), (15.3, 30.7))
    rs = _rs(tmp_path / "RS.dcm", axial, [(1, "A", [_closed(a)]), (2, "B", [_closed(b)])])
    with pytest.raises(MaskOverlapError):
        read(rs, vol)
    c = _centres(vol)
    for value, name, pts in ((1, "A", a), (2, "B", b)):
        got = read(rs, vol, roi=name)
        np.testing.assert_array_equal(got.array, _inside_rect(c, pts).astype(np.uint8) * value)


# --------------------------------------------------------------------------- NIfTI / NRRD
@pytest.mark.parametrize("code", ["SPL", "IAR", "LSA", "PIR"])
def test_nifti_any_axis_order(axial: Image, tmp_path: Path, code: str) -> None:
    labels = _labels(axial.volume, named=False)
    path = write_nifti(labels.reorient(code), tmp_path / f"labels_{code}.nii.gz")
    got = read(path, axial.volume)
    np.testing.assert_array_equal(got.array, labels.array)
    assert sorted(got.label_names) == [1, 2, 5]
    reordered = "another order or direction" in _notes(got)
    assert reordered == (code != "SPL")


@pytest.mark.parametrize("code", ["SPL", "IAR", "LSA", "PIR"])
def test_nifti_names_from_write_nifti(axial: Image, tmp_path: Path, code: str) -> None:
    """write_nifti stores label_names as a CaretExtension (code 30); read finds them."""
    labels = _labels(axial.volume)
    path = write_nifti(labels.reorient(code), tmp_path / f"named_{code}.nii.gz")
    got = read(path, axial.volume)
    np.testing.assert_array_equal(got.array, labels.array)
    assert got.label_names == NAMES
    assert list_structures(path) == list(NAMES.values())


@pytest.mark.parametrize("flip_rows", [False, True], ids=["kji", "kji-flipped"])
def test_nifti_written_by_hand(axial: Image, tmp_path: Path, flip_rows: bool) -> None:
    labels = _labels(axial.volume, seed=4)
    arr = labels.array
    aff = np.array(labels.affine)
    if flip_rows:
        n = arr.shape[1]
        arr = arr[:, ::-1, :]
        flip = np.eye(4)
        flip[1, 1] = -1.0
        flip[1, 3] = n - 1
        aff = aff @ flip
    # NIfTI axis 0 = our slice axis (no reversal): a different on-disk axis order
    path = tmp_path / "hand.nii.gz"
    nib.save(_ras_image(arr, aff), str(path))
    got = read(path, axial.volume)
    np.testing.assert_array_equal(got.array, labels.array)
    assert sorted(got.label_names) == [1, 2, 5]
    assert "another order or direction" in _notes(got)


def test_nifti_cropped_subgrid(axial: Image, tmp_path: Path) -> None:
    labels = _labels(axial.volume, seed=1, named=False)
    crop = labels.crop([(1, 6), (2, 20), (10, 33)])
    path = write_nifti(crop.reorient("IAR"), tmp_path / "crop.nii.gz")
    got = read(path, axial.volume)
    want = np.zeros(SHAPE, dtype=np.uint8)
    want[1:6, 2:20, 10:33] = labels.array[1:6, 2:20, 10:33]
    np.testing.assert_array_equal(got.array, want)
    assert sorted(got.label_names) == [1, 2, 5]


def test_nifti_reaching_outside(axial: Image, tmp_path: Path) -> None:
    ref = axial.volume
    rng = np.random.default_rng(21)
    big = rng.integers(0, 4, size=(12, 36, 40)).astype(np.uint8)
    big[rng.random(big.shape) < 0.6] = 0
    aff = np.array(ref.affine)
    aff[:3, 3] = ref.index_to_lps([-2.0, -3.0, 5.0])  # big[a, b, c] = ref[a-2, b-3, c+5]
    path = write_nifti(Volume(big, aff), tmp_path / "big.nii.gz")
    with pytest.raises(MaskGridError) as info:
        read(path, ref)
    text = str(info.value)
    assert text.count("shape (") >= 2
    assert "shape (12, 36, 40)" in text and "shape (8, 30, 40)" in text
    got = read(path, ref, allow_resample=True)
    want = np.zeros(SHAPE, dtype=np.uint8)
    want[:, :, 5:] = big[2:10, 3:33, 0:35]
    np.testing.assert_array_equal(got.array, want)
    dropped = int(np.count_nonzero(big)) - int(np.count_nonzero(big[2:10, 3:33, 0:35]))
    assert dropped > 0
    assert f"{dropped} labelled voxel(s) outside" in _notes(got)


def test_nifti_half_spacing_nearest(axial: Image, tmp_path: Path) -> None:
    ref = axial.volume
    labels = _labels(ref, seed=2, named=False)
    fine = labels.array.repeat(2, axis=0).repeat(2, axis=1).repeat(2, axis=2)
    aff = np.array(ref.affine)
    aff[:3, :3] = ref.affine[:3, :3] / 2.0
    aff[:3, 3] = ref.index_to_lps([-0.25, -0.25, -0.25])  # same outer corner
    path = tmp_path / "fine.nii.gz"
    nib.save(_ras_image(fine, aff, dtype=np.uint8), str(path))
    got = read(path, ref)
    np.testing.assert_array_equal(got.array, labels.array)
    assert sorted(got.label_names) == [1, 2, 5]
    assert "resampled by nearest neighbour" in _notes(got)


def test_nifti_float_fraction_rejected(axial: Image, tmp_path: Path) -> None:
    arr = np.zeros(SHAPE, dtype=np.float32)
    arr[2, 3:5, 4:9] = 0.5
    arr[3, 3:5, 4:9] = 1.0
    path = tmp_path / "prob.nii.gz"
    nib.save(_ras_image(arr, axial.volume.affine, dtype=np.float32), str(path))
    with pytest.raises(MaskError, match="non-integer"):
        read(path, axial.volume)


def test_nifti_float_integral_values_accepted(axial: Image, tmp_path: Path) -> None:
    labels = _labels(axial.volume, seed=6)
    path = tmp_path / "float.nii.gz"
    nib.save(_ras_image(labels.array, labels.affine, dtype=np.float32), str(path))
    np.testing.assert_array_equal(read(path, axial.volume).array, labels.array)


def test_nifti_negative_rejected(axial: Image, tmp_path: Path) -> None:
    arr = np.zeros(SHAPE, dtype=np.int16)
    arr[2, 3:5, 4:9] = -1
    arr[3, 3:5, 4:9] = 2
    path = tmp_path / "neg.nii.gz"
    nib.save(_ras_image(arr, axial.volume.affine), str(path))
    with pytest.raises(MaskError, match="negative"):
        read(path, axial.volume)


@pytest.mark.parametrize("code", ["SPL", "IAR"])
def test_nrrd_exact(axial: Image, tmp_path: Path, code: str) -> None:
    labels = _labels(axial.volume, seed=8)
    path = tmp_path / "labels.nrrd"
    sitk.WriteImage(labels.reorient(code).to_sitk(), str(path))
    got = read(path, axial.volume)
    np.testing.assert_array_equal(got.array, labels.array)
    assert sorted(got.label_names) == [1, 2, 5]


def test_slicer_seg_nrrd_names(axial: Image, tmp_path: Path) -> None:
    labels = _labels(axial.volume, seed=9)
    img = labels.to_sitk()
    for n, (value, name) in enumerate(NAMES.items()):
        img.SetMetaData(f"Segment{n}_Name", name)
        img.SetMetaData(f"Segment{n}_LabelValue", str(value))
        img.SetMetaData(f"Segment{n}_Layer", "0")
    path = tmp_path / "Segmentation.seg.nrrd"
    sitk.WriteImage(img, str(path))
    got = read(path, axial.volume)
    np.testing.assert_array_equal(got.array, labels.array)
    assert got.label_names == NAMES
    assert list_structures(path) == list(NAMES.values())
    lesion = read(path, axial.volume, roi="Lesion")
    np.testing.assert_array_equal(lesion.array, np.where(labels.array == 5, 5, 0))
    assert lesion.label_names == {5: "lesion"}


def _two_layer_seg_nrrd(ref: Volume, path: Path, *, overlap: bool) -> tuple[np.ndarray, ...]:
    """A 3D Slicer .seg.nrrd with two layers (vector components): layer 0 holds "liver"
    (value 1) and "spleen" (value 2), layer 1 holds "lesion" (value 1) inside the liver
    when ``overlap`` is True, else beside it."""
    liver = np.zeros(ref.spatial_shape, dtype=bool)
    liver[1:4, 2:7, 2:8] = True
    spleen = np.zeros(ref.spatial_shape, dtype=bool)
    spleen[1:3, 8:10, 10:13] = True
    lesion = np.zeros(ref.spatial_shape, dtype=bool)
    if overlap:
        lesion[2, 3:5, 3:5] = True
    else:
        lesion[4, 8:10, 2:4] = True
    layer0 = ref.with_array(liver.astype(np.uint8) + 2 * spleen.astype(np.uint8)).to_sitk()
    layer1 = ref.with_array(lesion.astype(np.uint8)).to_sitk()
    img = sitk.Compose(layer0, layer1)
    for n, (name, layer, value) in enumerate([("liver", 0, 1), ("spleen", 0, 2), ("lesion", 1, 1)]):
        img.SetMetaData(f"Segment{n}_Name", name)
        img.SetMetaData(f"Segment{n}_Layer", str(layer))
        img.SetMetaData(f"Segment{n}_LabelValue", str(value))
    sitk.WriteImage(img, str(path))
    return liver, spleen, lesion


def test_slicer_seg_nrrd_layers(axial: Image, tmp_path: Path) -> None:
    """Segments in several layers: one label per segment (index + 1), names kept."""
    path = tmp_path / "layers.seg.nrrd"
    liver, spleen, lesion = _two_layer_seg_nrrd(axial.volume, path, overlap=False)
    got = read(path, axial.volume)
    assert got.label_names == {1: "liver", 2: "spleen", 3: "lesion"}
    expected = liver * 1 + spleen * 2 + lesion * 3
    np.testing.assert_array_equal(got.array, expected)


def test_slicer_seg_nrrd_overlapping_layers(axial: Image, tmp_path: Path) -> None:
    path = tmp_path / "overlap.seg.nrrd"
    _two_layer_seg_nrrd(axial.volume, path, overlap=True)
    with pytest.raises(MaskOverlapError, match="'lesion' overlaps"):
        read(path, axial.volume)


# --------------------------------------------------------------------------- TotalSegmentator
def _binary(ref: Volume, region: tuple[slice, slice, slice] | None) -> Volume:
    """A 0/1 uint8 mask on the grid of ``ref`` (empty when ``region`` is None).

    Parameters
    ----------
    ref
        The grid.
    region
        Where the mask is 1.

    Returns
    -------
    Volume
    """
    arr = np.zeros(ref.spatial_shape, dtype=np.uint8)
    if region is not None:
        arr[region] = 1
    return Volume(arr, ref.affine)


LIVER = (slice(1, 5), slice(3, 12), slice(4, 20))
SPLEEN = (slice(2, 7), slice(15, 27), slice(22, 37))


@pytest.fixture
def ts_folder(axial: Image, tmp_path: Path) -> Path:
    """A TotalSegmentator-style folder: liver, spleen and an empty kidney_left."""
    folder = tmp_path / "segmentations"
    folder.mkdir()
    ref = axial.volume
    write_nifti(_binary(ref, LIVER).reorient("IAR"), folder / "liver.nii.gz")
    write_nifti(_binary(ref, SPLEEN), folder / "spleen.nii.gz")
    write_nifti(_binary(ref, None), folder / "kidney_left.nii.gz")
    return folder


def test_totalseg_folder(axial: Image, ts_folder: Path) -> None:
    got = read(ts_folder, axial.volume)
    want = np.zeros(SHAPE, dtype=np.uint8)
    want[LIVER] = 2
    want[SPLEEN] = 3
    np.testing.assert_array_equal(got.array, want)
    assert got.label_names == {1: "kidney_left", 2: "liver", 3: "spleen"}
    empty = [n for n in got.provenance.notes if "empty" in n]
    assert empty and "kidney_left" in empty[0]
    assert list_structures(ts_folder) == ["kidney_left", "liver", "spleen"]


def test_totalseg_folder_roi_order(axial: Image, ts_folder: Path) -> None:
    got = read(ts_folder, axial.volume, roi=["spleen", "liver"])
    want = np.zeros(SHAPE, dtype=np.uint8)
    want[SPLEEN] = 1
    want[LIVER] = 2
    np.testing.assert_array_equal(got.array, want)
    assert got.label_names == {1: "spleen", 2: "liver"}


def test_totalseg_folder_overlap(axial: Image, ts_folder: Path) -> None:
    big = (slice(0, 8), slice(10, 20), slice(15, 30))  # crosses liver and spleen
    write_nifti(_binary(axial.volume, big), ts_folder / "stomach.nii.gz")
    with pytest.raises(MaskOverlapError):
        read(ts_folder, axial.volume)
    got = read(ts_folder, axial.volume, roi=["stomach"])
    want = np.zeros(SHAPE, dtype=np.uint8)
    want[big] = 1
    np.testing.assert_array_equal(got.array, want)


def _multilabel(axial: Image, path: Path, label_map: dict[int, str] | None) -> Volume:
    """Write a multilabel NIfTI by hand, with a TotalSegmentator-style extension (code 0).

    Parameters
    ----------
    axial
        Reference image.
    path
        Output file.
    label_map
        Names for the extension; None writes no extension.

    Returns
    -------
    Volume
        The labels written (values 1, 2, 5).
    """
    labels = _labels(axial.volume, seed=12)
    # NIfTI order (i, j, k): reverse our axes and the affine's columns
    rev = np.array([[0, 0, 1, 0], [0, 1, 0, 0], [1, 0, 0, 0], [0, 0, 0, 1]], dtype=np.float64)
    img = _ras_image(labels.array.transpose(2, 1, 0), labels.affine @ rev, dtype=np.uint8)
    if label_map is not None:
        img.header.extensions.append(nib.nifti1.Nifti1Extension(0, _totalseg_xml(label_map)))
    nib.save(img, str(path))
    return labels


def test_totalseg_multilabel_extension(axial: Image, tmp_path: Path) -> None:
    path = tmp_path / "totalseg_ml.nii.gz"
    labels = _multilabel(axial, path, {1: "liver", 2: "spleen", 5: "kidney_right"})
    got = read(path, axial.volume)
    np.testing.assert_array_equal(got.array, labels.array)
    assert got.label_names == {1: "liver", 2: "spleen", 5: "kidney_right"}
    assert list_structures(path) == ["liver", "spleen", "kidney_right"]
    spleen = read(path, axial.volume, roi="Spleen")
    np.testing.assert_array_equal(spleen.array, np.where(labels.array == 2, 2, 0))


def test_class_map_forms(axial: Image, tmp_path: Path) -> None:
    path = tmp_path / "ml.nii.gz"
    labels = _multilabel(axial, path, None)
    want = {1: "liver", 2: "spleen", 5: "lesion"}
    (tmp_path / "map.json").write_text(json.dumps({"1": "liver", "2": "spleen", "5": "lesion"}))
    (tmp_path / "inv.json").write_text(json.dumps({"liver": 1, "spleen": 2, "lesion": 5}))
    (tmp_path / "map.txt").write_text("# value name\n1 liver\n2 spleen\n\n5 lesion\n")
    for class_map in (
        want,
        tmp_path / "map.json",
        str(tmp_path / "inv.json"),
        tmp_path / "map.txt",
    ):
        got = read(path, axial.volume, class_map=class_map)
        np.testing.assert_array_equal(got.array, labels.array)
        assert got.label_names == want, class_map


def test_class_map_overrides_header(axial: Image, tmp_path: Path) -> None:
    path = tmp_path / "ml.nii.gz"
    _multilabel(axial, path, {1: "a", 2: "b", 5: "c"})
    got = read(path, axial.volume, class_map={1: "liver", 2: "spleen", 5: "lesion"})
    assert got.label_names == {1: "liver", 2: "spleen", 5: "lesion"}


def test_class_map_missing_value(axial: Image, tmp_path: Path) -> None:
    path = tmp_path / "ml.nii.gz"
    _multilabel(axial, path, None)
    with pytest.raises(MaskError, match="5"):
        read(path, axial.volume, class_map={1: "liver", 2: "spleen"})


def test_header_names_cover_every_value(axial: Image, tmp_path: Path) -> None:
    """A label table that does not name a value present in the file (5): the result must
    still name every value it holds (or refuse the file), never carry an unnamed label."""
    path = tmp_path / "partial.nii.gz"
    _multilabel(axial, path, {1: "liver", 2: "spleen"})
    try:
        got = read(path, axial.volume)
    except MaskError:
        return
    present = {int(v) for v in np.unique(got.array) if v != 0}
    assert present == {1, 2, 5}
    assert present <= set(got.label_names), got.label_names


# --------------------------------------------------------------------------- list_structures
def test_list_structures(axial: Image, three_rois: Path, tmp_path: Path) -> None:
    assert list_structures(three_rois) == ["Liver", "Tumour", "Spleen"]
    path = tmp_path / "ts.nii.gz"
    _multilabel(axial, path, {1: "liver", 2: "spleen", 5: "lesion"})
    assert list_structures(path) == ["liver", "spleen", "lesion"]
    path = write_nifti(_labels(axial.volume, named=False), tmp_path / "unnamed.nii.gz")
    assert list_structures(path) == ["label_1", "label_2", "label_5"]
    with pytest.raises(InputPathError):
        list_structures(tmp_path / "missing.nii.gz")


# --------------------------------------------------------------------------- Volume.label_names
def test_volume_label_names_carried(axial: Image) -> None:
    labels = _labels(axial.volume)
    assert labels.reorient("IAR").label_names == NAMES
    assert labels.crop([(0, 4), (0, 10), (0, 10)]).label_names == NAMES
    near = labels.resample(spacing_mm=(5.0, 1.8, 1.6), interpolation="nearest", fill_value=0)
    assert near.label_names == NAMES
    lin = labels.resample(spacing_mm=(5.0, 1.8, 1.6), interpolation="linear", fill_value=0)
    assert lin.label_names == {}
    assert labels.with_array(labels.array).label_names == {}


@pytest.mark.parametrize("key", [0, -1, "a"])
def test_volume_label_names_invalid(key: Any) -> None:
    with pytest.raises(VolumeError):
        Volume(np.zeros((2, 3, 4), dtype=np.uint8), np.eye(4), label_names={key: "x"})


# --------------------------------------------------------------------------- CLI
@pytest.fixture
def cli_rs(axial: Image, tmp_path: Path) -> tuple[Path, np.ndarray]:
    """An RTSTRUCT in its own folder and the expected labels."""
    rois, expected = _liver_tumour(axial.volume)
    return _rs(tmp_path / "rs" / "RS.dcm", axial, rois), expected


def _no_outputs(folder: Path) -> None:
    """Assert that ``folder`` holds no output and no temporary file.

    Parameters
    ----------
    folder
        Output folder.
    """
    left = sorted(p.name for p in folder.iterdir()) if folder.exists() else []
    assert left == [], left


def test_cli_mask_rtstruct(
    run_cli: Callable[..., Any], axial: Image, cli_rs: tuple[Path, np.ndarray], tmp_path: Path
) -> None:
    rs, expected = cli_rs
    out = tmp_path / "out" / "out.nii.gz"
    res = run_cli(["mask", rs, "--reference", axial.folder, "-o", out])
    assert res.code == 0, res.err
    sidecar = out.parent / "out.json"
    assert out.is_file() and sidecar.is_file()
    written = read_nifti(out)
    np.testing.assert_array_equal(written.array, expected)
    np.testing.assert_allclose(written.affine, axial.volume.affine, atol=1e-5)
    record = json.loads(sidecar.read_text())
    voxel_ml = SPACING[0] * SPACING[1] * SPACING[2] / 1000.0
    rows = {row["value"]: row for row in record["labels"]}
    assert set(rows) == {3, 7}
    for value, name in ((3, "Liver"), (7, "Tumour")):
        n = int((expected == value).sum())
        assert rows[value]["name"] == name
        assert rows[value]["voxels"] == n
        assert rows[value]["volume_ml"] == pytest.approx(n * voxel_ml, rel=1e-9)
    assert "provenance" in record
    assert "notes" in record["provenance"]


def test_cli_mask_output_keeps_names(
    run_cli: Callable[..., Any], axial: Image, cli_rs: tuple[Path, np.ndarray], tmp_path: Path
) -> None:
    rs, expected = cli_rs
    out = tmp_path / "out" / "out.nii.gz"
    assert run_cli(["mask", rs, "--reference", axial.folder, "-o", out]).code == 0
    again = read(out, axial.volume)  # the NIfTI written by the CLI is a mask source itself
    np.testing.assert_array_equal(again.array, expected)
    assert again.label_names == {3: "Liver", 7: "Tumour"}


def test_cli_mask_roi_twice(
    run_cli: Callable[..., Any], axial: Image, three_rois: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out" / "two.nii"
    res = run_cli(
        [
            *("mask", three_rois, "--reference", axial.folder),
            *("--roi", "Spleen", "--roi", "liver", "-o", out),
        ]
    )
    assert res.code == 0, res.err
    record = json.loads((out.parent / "two.json").read_text())
    assert [(r["value"], r["name"]) for r in record["labels"]] == [(3, "Liver"), (9, "Spleen")]
    assert set(np.unique(read_nifti(out).array).tolist()) == {0, 3, 9}


def test_cli_mask_unknown_roi(
    run_cli: Callable[..., Any], axial: Image, three_rois: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out" / "out.nii.gz"
    res = run_cli(["mask", three_rois, "--reference", axial.folder, "--roi", "Kidney", "-o", out])
    assert res.code == 4
    for name in ("Liver", "Tumour", "Spleen"):
        assert name in res.err
    _no_outputs(out.parent)


def test_cli_mask_usage_and_path_errors(
    run_cli: Callable[..., Any], axial: Image, cli_rs: tuple[Path, np.ndarray], tmp_path: Path
) -> None:
    rs, _ = cli_rs
    outdir = tmp_path / "out"
    res = run_cli(["mask", rs, "-o", outdir / "out.nii.gz"])
    assert res.code == 2
    res = run_cli(["mask", rs, "--reference", axial.folder, "-o", outdir / "x.txt"])
    assert res.code == 2
    res = run_cli(
        ["mask", tmp_path / "nope.dcm", "--reference", axial.folder, "-o", outdir / "o.nii.gz"]
    )
    assert res.code == 3
    _no_outputs(outdir)


def test_cli_mask_data_error_leaves_nothing(
    run_cli: Callable[..., Any], axial: Image, tmp_path: Path
) -> None:
    tilted = axial.volume.index_to_lps([[2.7, 3.5, 3.5], [2.7, 3.5, 9.5], [3.3, 9.5, 9.5]])
    rs = _rs(tmp_path / "rs" / "RS.dcm", axial, [(1, "Tilted", [_closed(tilted)])])
    out = tmp_path / "out" / "out.nii.gz"
    res = run_cli(["mask", rs, "--reference", axial.folder, "-o", out])
    assert res.code == 1
    assert "Tilted" in res.err
    _no_outputs(out.parent)


def test_cli_mask_list(run_cli: Callable[..., Any], three_rois: Path) -> None:
    res = run_cli(["mask", three_rois, "--list"])
    assert res.code == 0, res.err
    assert res.out.split() == ["Liver", "Tumour", "Spleen"]

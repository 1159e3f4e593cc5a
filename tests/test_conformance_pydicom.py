"""Conformance on pydicom's test files and a scan of the whole external data tree.

``../shared/data/pydicom_extra`` (pydicom-data) and the files bundled in pydicom's wheel
(``pydicom.data.get_testdata_file``, offline). References are computed here with pydicom
directly (``pixel_array`` x RescaleSlope + RescaleIntercept, geometry from the headers or
the functional groups), never with netvolume. What the files are (checked with pydicom):

* ``693_UNCR`` / ``693_J2KR``: one 512x512 CT, uncompressed and J2K lossless; ``693_UNCI``
  / ``693_J2KI``: J2K lossy and its decompressed twin (BitsStored 14).
* ``eCT_Supplemental``: Enhanced CT, 2 frames, shared PlaneOrientation (-1,0,0,0,1,0),
  PixelMeasures 0.388672 mm, per-frame PlanePosition z = -159 / -149, rescale -1024 in the
  shared Pixel Value Transformation group.
* ``emri_small*``: Enhanced MR, 10 frames, uncompressed / RLE / J2K / JPEG-LS lossless, but
  *without any functional groups*: no position, orientation or pixel spacing anywhere. They
  cannot be placed in 3D: MissingGeometryError, not a made-up grid.
* ``MR_truncated``: PixelData 8130 bytes where 8192 are declared: ``scan`` lists it unused
  ("truncated"); ``load_files`` raises PixelDataError.
* ``bad_sequence``: JPEG lossless CT whose Derivation Code Sequence is malformed (implicit
  VR inside, VR UN) and whose UIDs are not valid UIDs; pydicom reads it: it must load.
* ``explicit_VR-UN``: J2K CT in which almost every element has VR UN; pydicom resolves the
  VRs from its dictionary: it must load (IOP 1,0,0,0,-1,0).
* ``J2K_pixelrep_mismatch``: PixelRepresentation 1 but an unsigned 13-bit J2K codestream;
  pydicom converts to the header's signedness (values -2000...): we must agree with it.
* ``liver_nonbyte_aligned_j2k``: a DICOM SEG (1 segment "Liver", 3 frames, 1-bit J2K):
  catalogued by ``scan`` as a non-image object "SEG". Forced through ``load_files`` it is a
  regular 3-frame binary stack and loads as such, with the per-frame geometry (decided
  here: right values rather than an error, since every frame belongs to one segment).
"""

from __future__ import annotations

import os
import warnings
from collections import Counter
from pathlib import Path

import numpy as np
import pydicom
import pytest
from _external import external_path, external_root, report

pytestmark = pytest.mark.conformance


def _extra(name: str) -> Path:
    return external_path("pydicom_extra", name)


def _bundled(name: str) -> Path:
    from pydicom.data import get_testdata_file

    path = get_testdata_file(name, download=False)
    if path is None:
        pytest.skip(f"{name} is not bundled with this pydicom ({pydicom.__version__})")
    return Path(path)


def _pydicom_values(path: Path) -> np.ndarray:
    """``pixel_array * slope + intercept`` with pydicom alone, as (frames, rows, cols)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pydicom's own notes (padding, invalid UIDs)
        ds = pydicom.dcmread(path)
        arr = ds.pixel_array.astype(np.float64)
    slope = float(ds.get("RescaleSlope", 1) or 1)
    intercept = float(ds.get("RescaleIntercept", 0) or 0)
    pvt = None
    if "SharedFunctionalGroupsSequence" in ds:
        shared = ds.SharedFunctionalGroupsSequence[0]
        if "PixelValueTransformationSequence" in shared:
            pvt = shared.PixelValueTransformationSequence[0]
    if pvt is not None:
        slope, intercept = float(pvt.RescaleSlope), float(pvt.RescaleIntercept)
    values = arr * slope + intercept
    n_frames = int(ds.get("NumberOfFrames", 1) or 1)
    return values.reshape(n_frames, int(ds.Rows), int(ds.Columns))


def _single_slice_affine(path: Path) -> np.ndarray:
    """The contract's affine of a one-slice file, from its header (slice column ignored)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ds = pydicom.dcmread(path, stop_before_pixels=True)
    iop = np.array(ds.ImageOrientationPatient, dtype=np.float64)
    # cosines written with few decimals are not exactly unit (J2K_pixelrep_mismatch:
    # |col| = 1.00001): normalised, as the loader is entitled to
    iop[:3] /= np.linalg.norm(iop[:3])
    iop[3:] /= np.linalg.norm(iop[3:])
    row_sp, col_sp = (float(x) for x in ds.PixelSpacing)
    aff = np.eye(4)
    aff[:3, 1] = iop[3:] * row_sp
    aff[:3, 2] = iop[:3] * col_sp
    aff[:3, 3] = [float(x) for x in ds.ImagePositionPatient]
    return aff


def _load_one(path: Path):  # -> Volume
    from netvolume import load_files

    return load_files([path], allow_single_slice=True)


def _assert_single_slice_geometry(vol, path: Path) -> None:
    expected = _single_slice_affine(path)
    np.testing.assert_allclose(vol.affine[:3, 1:], expected[:3, 1:], atol=1e-6)
    normal = np.cross(expected[:3, 2], expected[:3, 1])
    normal /= np.linalg.norm(normal)
    np.testing.assert_allclose(vol.direction[:, 0], normal, atol=1e-6)


# ----------------------------------------------------------------- 693: J2K vs raw


def test_693_j2k_lossless_equals_uncompressed_exactly() -> None:
    raw = _load_one(_extra("693_UNCR.dcm"))
    j2k = _load_one(_extra("693_J2KR.dcm"))
    assert j2k.shape == raw.shape == (1, 512, 512)
    assert j2k.array.dtype == raw.array.dtype
    np.testing.assert_array_equal(j2k.array, raw.array)
    np.testing.assert_array_equal(j2k.affine, raw.affine)
    np.testing.assert_array_equal(raw.array[0], _pydicom_values(_extra("693_UNCR.dcm"))[0])
    _assert_single_slice_geometry(raw, _extra("693_UNCR.dcm"))


def test_693_j2k_lossy_close_to_its_decompressed_twin(request: pytest.FixtureRequest) -> None:
    """J2KI (irreversible J2K) vs UNCI (its decompressed twin).

    UNCI holds the lossy image already decompressed, so the only honest difference is the
    decoder's rounding of the 9/7 wavelet: at most 1 stored unit. Measured with
    pylibjpeg-openjpeg 2.6: identical (max |difference| 0 HU).
    """
    lossy = _load_one(_extra("693_J2KI.dcm"))
    twin = _load_one(_extra("693_UNCI.dcm"))
    diff = np.abs(lossy.array.astype(np.float64) - twin.array.astype(np.float64))
    report(request, "693_J2KI_max_abs_diff", float(diff.max()))
    report(request, "693_J2KI_rmse", float(np.sqrt(np.mean(diff**2))))
    assert diff.max() <= 1.0
    assert np.mean(diff == 0) >= 0.99
    np.testing.assert_array_equal(lossy.affine, twin.affine)


# -------------------------------------------------------------- enhanced multi-frame


def test_enhanced_ct_geometry_from_functional_groups() -> None:
    path = _extra("eCT_Supplemental.dcm")
    vol = _load_one(path)
    ds = pydicom.dcmread(path)
    shared = ds.SharedFunctionalGroupsSequence[0]
    iop = np.array(shared.PlaneOrientationSequence[0].ImageOrientationPatient, np.float64)
    row_sp, col_sp = (float(x) for x in shared.PixelMeasuresSequence[0].PixelSpacing)
    ipps = np.array(
        [
            [float(x) for x in fr.PlanePositionSequence[0].ImagePositionPatient]
            for fr in ds.PerFrameFunctionalGroupsSequence
        ]
    )
    normal = np.cross(iop[:3], iop[3:])
    order = np.argsort(ipps @ normal)  # frame 1 (z -149) comes first along (0, 0, -1)
    assert order.tolist() == [1, 0]
    spacing = float(np.diff(ipps[order] @ normal)[0])
    assert spacing == pytest.approx(10.0)

    expected = np.eye(4)
    expected[:3, 0] = normal * spacing
    expected[:3, 1] = iop[3:] * row_sp
    expected[:3, 2] = iop[:3] * col_sp
    expected[:3, 3] = ipps[order[0]]
    assert vol.shape == (2, 512, 512)
    np.testing.assert_allclose(vol.affine, expected, atol=1e-6)
    assert vol.spacing == pytest.approx((10.0, row_sp, col_sp))
    np.testing.assert_array_equal(vol.array, _pydicom_values(path)[order])
    assert vol.array.min() == -1024  # shared Pixel Value Transformation applied


@pytest.mark.parametrize(
    "name",
    [
        "emri_small.dcm",
        "emri_small_RLE.dcm",
        "emri_small_jpeg_2k_lossless.dcm",
        "emri_small_jpeg_ls_lossless.dcm",
    ],
)
def test_enhanced_mr_without_functional_groups_has_no_geometry(name: str) -> None:
    """These four files carry no Plane Position / Orientation / Pixel Measures at all.

    So no volume can be placed in patient space: MissingGeometryError naming the file.
    (Their pixel data do decode identically with pydicom; checked as a precondition.)
    """
    from netvolume.errors import MissingGeometryError

    path = _extra(name)
    ds = pydicom.dcmread(path)
    assert "PerFrameFunctionalGroupsSequence" not in ds
    assert "SharedFunctionalGroupsSequence" not in ds
    assert "ImagePositionPatient" not in ds
    np.testing.assert_array_equal(
        ds.pixel_array, pydicom.dcmread(_extra("emri_small.dcm")).pixel_array
    )
    with pytest.raises(MissingGeometryError) as info:
        _load_one(path)
    assert any(f.name == name or name in str(f) for f in info.value.files)


# --------------------------------------------------------------------- broken files


def test_truncated_mr_is_unused_by_scan_and_a_pixel_data_error() -> None:
    from netvolume import load_files, scan
    from netvolume.errors import PixelDataError

    path = _extra("MR_truncated.dcm")
    cat = scan(path.parent)
    entries = [u for u in cat.unused if u.path.name == path.name]
    assert len(entries) == 1
    assert entries[0].reason == "truncated"
    assert all(path.name not in {p.name for p in s.files} for s in cat.series)

    with pytest.raises(PixelDataError) as info:
        load_files([path], allow_single_slice=True)
    assert info.value.files and info.value.files[0].name == path.name


@pytest.mark.parametrize(
    "name", ["bad_sequence.dcm", "explicit_VR-UN.dcm", "J2K_pixelrep_mismatch.dcm"]
)
def test_odd_but_readable_files_load_like_pydicom(name: str) -> None:
    path = _extra(name)
    vol = _load_one(path)
    expected = _pydicom_values(path)
    assert vol.shape == expected.shape
    np.testing.assert_array_equal(vol.array, expected)
    _assert_single_slice_geometry(vol, path)


def test_j2k_pixel_representation_mismatch_values() -> None:
    """Signed header, unsigned codestream: values as pydicom's own regression test has them."""
    vol = _load_one(_extra("J2K_pixelrep_mismatch.dcm"))
    arr = vol.array[0]  # RescaleIntercept 0, slope 1
    assert arr[0, 0] == -2000
    assert arr[47:57, 279].tolist() == [621, 412, 138, -193, -520, -767, -907, -966, -988, -995]
    assert arr[328:338, 106].tolist() == [-377, -121, 141, 383, 633, 910, 1198, 1455, 1638, 1732]


def test_explicit_vr_un_orientation() -> None:
    vol = _load_one(_extra("explicit_VR-UN.dcm"))
    # IOP (1, 0, 0, 0, -1, 0): columns run towards -y (anterior)
    np.testing.assert_allclose(vol.direction[:, 1], [0, -1, 0], atol=1e-9)
    np.testing.assert_allclose(vol.direction[:, 2], [1, 0, 0], atol=1e-9)
    np.testing.assert_allclose(vol.origin, [0, 0, -121], atol=1e-9)


def test_nonbyte_aligned_seg_is_catalogued_and_loads_as_mask() -> None:
    from netvolume import scan

    path = _extra("liver_nonbyte_aligned_j2k.dcm")
    cat = scan(path.parent)
    objs = [o for o in cat.objects if o.path.name == path.name]
    assert len(objs) == 1
    assert objs[0].kind == "SEG"
    assert objs[0].sop_class_uid == "1.2.840.10008.5.1.4.1.1.66.4"
    assert all(path.name not in {p.name for p in s.files} for s in cat.series)

    ds = pydicom.dcmread(path)
    assert len(ds.SegmentSequence) == 1
    ipps = np.array(
        [
            [float(x) for x in fr.PlanePositionSequence[0].ImagePositionPatient]
            for fr in ds.PerFrameFunctionalGroupsSequence
        ]
    )
    shared = ds.SharedFunctionalGroupsSequence[0]
    iop = np.array(shared.PlaneOrientationSequence[0].ImageOrientationPatient, np.float64)
    normal = np.cross(iop[:3], iop[3:])
    order = np.argsort(ipps @ normal)

    vol = _load_one(path)
    assert vol.shape == (3, 510, 510)
    np.testing.assert_array_equal(vol.array, ds.pixel_array[order])
    assert set(np.unique(vol.array).tolist()) <= {0, 1}
    np.testing.assert_allclose(vol.origin, ipps[order[0]], atol=1e-6)
    assert vol.spacing[0] == pytest.approx(float(np.diff(ipps[order] @ normal)[0]))


# ---------------------------------------------------------- pydicom's bundled files


@pytest.mark.parametrize(
    "name",
    [
        "MR_small.dcm",
        "MR_small_implicit.dcm",
        "MR_small_bigendian.dcm",
        "MR_small_expb.dcm",
        "MR_small_padded.dcm",
        "MR_small_RLE.dcm",
        "MR_small_jp2klossless.dcm",
        "MR_small_jpeg_ls_lossless.dcm",
    ],
)
def test_bundled_mr_small_encodings_equal(name: str) -> None:
    """Every encoding of MR_small (incl. big endian and padded) gives the same Volume."""
    ref = _load_one(_bundled("MR_small.dcm"))
    vol = _load_one(_bundled(name))
    np.testing.assert_array_equal(vol.array, ref.array)
    np.testing.assert_allclose(vol.affine, ref.affine, atol=1e-9)
    np.testing.assert_array_equal(vol.array, _pydicom_values(_bundled(name)))


def test_bundled_ct_small() -> None:
    path = _bundled("CT_small.dcm")
    vol = _load_one(path)
    np.testing.assert_array_equal(vol.array, _pydicom_values(path))
    _assert_single_slice_geometry(vol, path)
    assert vol.modality == "CT"


def test_bundled_small_ct_series() -> None:
    """dicomdirtests/98892001/CT5N: 5 CT slices, files in descending z."""
    from netvolume import load_folder

    folder = _bundled("CT_small.dcm").parent / "dicomdirtests" / "98892001" / "CT5N"
    if not folder.is_dir():
        pytest.skip("pydicom's dicomdirtests series is not bundled")
    files = sorted(folder.iterdir())
    dss = [pydicom.dcmread(p) for p in files]
    z = np.array([float(ds.ImagePositionPatient[2]) for ds in dss])
    order = np.argsort(z)  # IOP is axial (1,0,0,0,1,0): the normal is +z
    vol = load_folder(folder)
    assert vol.shape == (5, 16, 16)
    assert vol.spacing[0] == pytest.approx(2.5)
    np.testing.assert_allclose(vol.origin[2], z.min(), atol=1e-6)
    expected = np.stack([_pydicom_values(files[i])[0] for i in order])
    np.testing.assert_array_equal(vol.array, expected)


# ------------------------------------------------------------ scan of the whole tree


def test_scan_whole_external_tree_accounts_for_every_file(request: pytest.FixtureRequest) -> None:
    """scan(../shared/data): completes; every file appears exactly once.

    Series files + non-image objects + unused files == every regular file of the tree.
    Non-DICOM files (NIfTI, CSV, NRRD, PNG, licences...) are unused with reason
    "not_dicom"; RTSTRUCTs of ibsi_suv_dro and lu177_spect and the SEGs of dicom_seg are
    non-image objects of the right kind.
    """
    from netvolume import scan

    root = external_path()
    all_files = {(Path(dp) / f).resolve() for dp, _dn, fn in os.walk(root) for f in fn}
    cat = scan(root)

    listed: list[Path] = [p.resolve() for s in cat.series for p in s.files]
    listed += [o.path.resolve() for o in cat.objects]
    listed += [u.path.resolve() for u in cat.unused]
    counts = Counter(listed)
    twice = sorted(str(p) for p, c in counts.items() if c > 1)
    assert not twice, f"listed more than once: {twice[:10]}"
    missing = sorted(str(p.relative_to(root)) for p in all_files - set(counts))
    assert not missing, f"{len(missing)} files dropped silently: {missing[:20]}"
    extra = sorted(str(p) for p in set(counts) - all_files)
    assert not extra, f"scan listed files that are not in the tree: {extra[:10]}"

    # every non-DICOM file is unused, with a reason
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        not_dicom = set()
        for p in all_files:
            try:
                pydicom.dcmread(p, stop_before_pixels=True)
            except Exception:
                not_dicom.add(p)
    unused = {u.path.resolve(): u for u in cat.unused}
    for p in not_dicom:
        assert p in unused, f"non-DICOM file not reported unused: {p}"
        assert unused[p].reason == "not_dicom", (p, unused[p].reason)
    assert {".gz", ".nrrd", ".csv", ".md", ".png", ".jpg"} <= {p.suffix for p in not_dicom}
    for u in cat.unused:
        assert u.reason in {
            "not_dicom",
            "unreadable",
            "truncated",
            "no_pixel_data",
            "duplicate",
            "permission_denied",
        }

    kinds = {o.path.resolve(): o.kind for o in cat.objects}
    rtstructs = [
        p
        for p in all_files
        if p.suffix == ".dcm"
        and ("/RS/" in str(p) or "/mask/" in str(p))
        and ("ibsi_suv_dro" in str(p) or "lu177_spect" in str(p))
    ]
    assert len(rtstructs) == 17 + 2
    for p in rtstructs:
        assert kinds.get(p) == "RTSTRUCT", (p, kinds.get(p))
    seg_uids = {"1.2.840.10008.5.1.4.1.1.66.4", "1.2.840.10008.5.1.4.1.1.66.7"}
    segs = []
    for p in all_files - not_dicom:
        if "dicom_seg" in str(p):
            sop = str(pydicom.dcmread(p, stop_before_pixels=True).SOPClassUID)
            if sop in seg_uids:
                segs.append(p)
    assert len(segs) >= 10
    for p in segs:
        # a SEG that duplicates another's SOP Instance UID may be listed as a duplicate
        if p in kinds:
            assert kinds[p] == "SEG", (p, kinds[p])
        else:
            assert unused[p].reason == "duplicate", (p, unused.get(p))
    srs = [o for o in cat.objects if o.kind == "SR"]
    assert len(srs) >= 2  # highdicom's TID 1500 documents

    # the DRO PET series are there: 17 stacks of 20 slices
    pet = [s for s in cat.series if s.modality == "PT" and s.num_images == 20]
    assert len(pet) >= 17
    report(
        request,
        "scan_counts",
        {
            "files": len(all_files),
            "series": len(cat.series),
            "objects": len(cat.objects),
            "unused": len(cat.unused),
            "unused_by_reason": dict(Counter(u.reason for u in cat.unused)),
        },
    )
    assert external_root() == root

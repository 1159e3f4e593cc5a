"""Every route from stored pixel values to rescaled values, against numpy arithmetic.

The loader picks its route from the header (BitsStored, PixelRepresentation, slopes and
intercepts) and, when the declared range would need int32, optimistically tries int16
slice by slice. Each route is checked here on values chosen to exercise it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pydicom
import pytest

from netvolume import load_folder
from netvolume.io.dicom_write import write_series

RNG = np.random.default_rng(1234)


def _write(tmp_path: Path, stored: np.ndarray, **kw: object) -> Path:
    folder = tmp_path / "s"
    write_series(folder, stored, spacing_mm=(2.0, 1.0, 1.0), seed=3, **kw)  # type: ignore[arg-type]
    return folder


def test_int16_full_range_declared_but_values_fit_int16(tmp_path: Path) -> None:
    stored = RNG.integers(0, 3000, (4, 6, 7)).astype(np.int16)
    vol = load_folder(_write(tmp_path, stored, rescale_intercept=-1024.0))
    assert vol.array.dtype == np.int16
    np.testing.assert_array_equal(vol.array, stored.astype(np.int32) - 1024)


def test_values_that_overflow_int16_fall_back_to_int32(tmp_path: Path) -> None:
    stored = RNG.integers(0, 65535, (4, 6, 7)).astype(np.uint16)
    stored[2, 3, 3] = 65535
    vol = load_folder(_write(tmp_path, stored, rescale_intercept=-1024.0))
    assert vol.array.dtype == np.int32
    np.testing.assert_array_equal(vol.array, stored.astype(np.int64) - 1024)


def test_negative_overflow_falls_back(tmp_path: Path) -> None:
    stored = RNG.integers(-32768, 32767, (3, 5, 5)).astype(np.int16)
    stored[0, 0, 0] = -32768
    vol = load_folder(_write(tmp_path, stored, rescale_slope=2.0, rescale_intercept=-1024.0))
    assert vol.array.dtype == np.int32
    np.testing.assert_array_equal(vol.array, stored.astype(np.int64) * 2 - 1024)


def test_fractional_slope_per_slice_gives_float32(tmp_path: Path) -> None:
    stored = RNG.integers(0, 30000, (3, 5, 5)).astype(np.uint16)
    slopes, inters = [0.5, 0.25, 1.75], [0.0, -3.5, 10.0]
    vol = load_folder(_write(tmp_path, stored, rescale_slope=slopes, rescale_intercept=inters))
    assert vol.array.dtype == np.float32
    expected = stored * np.array(slopes)[:, None, None] + np.array(inters)[:, None, None]
    np.testing.assert_allclose(vol.array, expected, rtol=1e-6)


@pytest.mark.parametrize("signed", [False, True])
def test_bits_above_bits_stored_are_ignored(tmp_path: Path, signed: bool) -> None:
    """12-bit data with junk in the 4 high bits (overlay bits of old scanners)."""
    if signed:
        true = RNG.integers(-2048, 2048, (3, 4, 4)).astype(np.int16)
        junk = (true.astype(np.uint16) & 0x0FFF) | np.uint16(0xA000)  # 12-bit two's compl.
        stored = junk.view(np.int16)
    else:
        true = RNG.integers(0, 4096, (3, 4, 4)).astype(np.uint16)
        stored = true | np.uint16(0x5000)
    folder = _write(
        tmp_path, stored, rescale_intercept=-1024.0, extra={"BitsStored": 12, "HighBit": 11}
    )
    ds = pydicom.dcmread(next(folder.iterdir()))
    assert ds.BitsStored == 12
    vol = load_folder(folder)
    np.testing.assert_array_equal(vol.array, true.astype(np.int32) - 1024)

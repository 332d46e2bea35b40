"""The land-cover map is read and checked a band of rows at a time: the bands change neither the map nor the
messages, and the whole map is held as 2 bytes per pixel (codes and validity), not in its file's dtype."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest
import rasterio

from changeanywhere_qgis.engine.errors import InputError
from changeanywhere_qgis.engine.io import rasters, read_semantic


def _write(path, data, profile, **extra):
    with rasterio.open(path, "w", **{**profile, "dtype": data.dtype.name, **extra}) as dst:
        dst.write(data, 1)
    return path


def test_bands_change_neither_map_nor_validity(houston_label_path, oem_scheme, tmp_path, monkeypatch):
    with rasterio.open(houston_label_path) as src:
        labels, profile = src.read(1), src.profile
    floats = labels.astype(np.float32)
    floats[:40, :40] = np.nan  # a float map with NaN as nodata, the harder reading
    path = _write(tmp_path / "float.tif", floats, profile, nodata=float("nan"), tiled=True, blockxsize=16, blockysize=16)
    whole = read_semantic(path, oem_scheme)
    monkeypatch.setattr(rasters, "READ_PIXELS", 7 * 512)  # 16 rows a band: one row of the file's blocks
    banded = read_semantic(path, oem_scheme)
    assert np.array_equal(banded.labels, whole.labels) and np.array_equal(banded.valid, whole.valid)
    assert not banded.valid[:40, :40].any() and banded.valid.sum() == (labels != 0).sum() - (labels[:40, :40] != 0).sum()


def test_a_bad_code_in_a_late_band_is_still_found(houston_label_path, oem_scheme, tmp_path, monkeypatch):
    with rasterio.open(houston_label_path) as src:
        labels, profile = src.read(1), src.profile
    labels[500, 500] = 42
    path = _write(tmp_path / "bad.tif", labels, profile)
    monkeypatch.setattr(rasters, "READ_PIXELS", 16 * 512)
    with pytest.raises(InputError, match=r"codes the model's class scheme does not know: \[42\]"):
        read_semantic(path, oem_scheme)
    wide = labels.astype(np.int16)
    wide[10, 10], wide[400, 3] = 300, -4
    path = _write(tmp_path / "wide.tif", wide, profile)
    with pytest.raises(InputError, match=r"outside 0\.\.255 \(\[-4, 300\]\)"):
        read_semantic(path, oem_scheme)


def test_a_float64_map_is_held_as_two_bytes_a_pixel(houston_label_path, oem_scheme, tmp_path, monkeypatch):
    with rasterio.open(houston_label_path) as src:
        labels, profile = src.read(1), src.profile
    path = _write(tmp_path / "f64.tif", labels.astype(np.float64), profile,  # 8 bytes a pixel on disk, 16-row blocks
                  tiled=True, blockxsize=16, blockysize=16)
    monkeypatch.setattr(rasters, "READ_PIXELS", 8 * 512, raising=False)
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        read_semantic(path, oem_scheme)
        peak = tracemalloc.get_traced_memory()[1] / labels.size
    finally:
        tracemalloc.stop()
    assert peak < 3.5, peak  # 2 for the map and its validity, the rest one band's temporaries

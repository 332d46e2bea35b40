"""Detection on real images: a real detector package (trained a few steps here), real GeoTIFFs and the real LEVIR-CD /
WHU-CD pairs. The outputs lie on image A's grid and CRS, no data is respected, and every bad input (grids, bands, data
type, threshold, output folder) is refused with the problem named, leaving nothing."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyogrio
import pytest
import rasterio
from detector_package import REPO, SAMPLES, detector_package
from rasterio.windows import Window

from changeanywhere_qgis.engine.detection import detect_changes, load_detector
from changeanywhere_qgis.engine.errors import Cancelled, InputError
from changeanywhere_qgis.engine.progress import Progress

HOUSTON = SAMPLES / "houston_image.tif"  # 512 x 512, EPSG:4326


@pytest.fixture(scope="session")
def package(tmp_path_factory) -> Path:
    return detector_package(tmp_path_factory.mktemp("detector"))


def write_like(path: Path, data: np.ndarray, source: Path = HOUSTON, **changes) -> Path:
    with rasterio.open(source) as src:
        profile = {**src.profile, **changes, "count": data.shape[0], "dtype": data.dtype.name}
        if "width" not in changes:
            profile.update(width=data.shape[2], height=data.shape[1])
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(data)
    return path


def houston() -> np.ndarray:
    with rasterio.open(HOUSTON) as src:
        return src.read((1, 2, 3))


def after_image(tmp_path: Path) -> Path:
    """The Houston image with a bright 'new building' painted in: real change on the same grid."""
    image = houston().copy()
    image[:, 200:260, 300:380] = np.array([230, 225, 215], np.uint8)[:, None, None]
    return write_like(tmp_path / "after.tif", image)


def grid_of(path: Path):
    with rasterio.open(path) as ds:
        return ds.width, ds.height, ds.transform, ds.crs


def test_outputs_lie_on_image_a_grid_and_crs(package, tmp_path):
    out = tmp_path / "out"
    result = detect_changes(HOUSTON, after_image(tmp_path), package, out)
    assert sorted(p.name for p in out.iterdir()) == ["change_mask.tif", "change_probability.tif", "changes.gpkg", "detection.json"]
    for name in ("change_probability.tif", "change_mask.tif"):
        assert grid_of(out / name) == grid_of(HOUSTON)
    with rasterio.open(out / "change_probability.tif") as ds:
        prob = ds.read(1)
        assert ds.dtypes[0] == "float32" and ds.nodata == -1
    with rasterio.open(out / "change_mask.tif") as ds:
        mask = ds.read(1)
        assert ds.nodata == 255
    assert 0 <= prob.min() and prob.max() <= 1
    assert np.array_equal(mask, (prob > result["threshold"]).astype(np.uint8))  # the mask is the probability thresholded
    assert result["threshold"] == load_detector(package).threshold
    info = pyogrio.read_info(out / "changes.gpkg", layer="changes")
    assert info["crs"] == "EPSG:4326" and info["features"] == result["polygons"]
    report = json.loads((out / "detection.json").read_text())
    assert report["changed_pixels"] == int(mask.sum()) and report["size"] == [512, 512]


def test_tiles_are_blended_into_every_pixel_of_a_raster_that_is_no_multiple_of_the_tile(package, tmp_path):
    # 150 x 130 px: tiles of 64 px pushed back to the edges, overlapping by 16, their probabilities mixed with feathered
    # weights where they overlap (as generation's tiles are): the output equals that mix, computed here tile by tile
    from changeanywhere_qgis.engine.diffusion.tiling import TileGrid

    image = houston()[:, :150, :130]
    turned = np.ascontiguousarray(image[:, :, ::-1])
    a = write_like(tmp_path / "a.tif", image)
    b = write_like(tmp_path / "b.tif", turned)
    detect_changes(a, b, package, tmp_path / "out", polygons=False)
    with rasterio.open(tmp_path / "out" / "change_probability.tif") as ds:
        prob = ds.read(1)
    det = load_detector(package)
    grid = TileGrid(150, 130, det.tile_size, det.overlap)
    assert len(grid.tiles) == 9
    acc, wsum, weight = np.zeros((150, 130)), np.zeros((150, 130)), grid.weight()
    for t in grid.tiles:
        rows, cols = t.slices
        acc[rows, cols] += weight * det.probability(image[None, :, rows, cols], turned[None, :, rows, cols])[0]
        wsum[rows, cols] += weight
    assert np.allclose(prob, acc / wsum, atol=1e-5)


def test_real_levir_pair_without_crs(package, tmp_path):
    name = "test_2_0000_0000.png"
    pair = REPO / "data" / "levir-cd"
    result = detect_changes(pair / "A" / name, pair / "B" / name, package, tmp_path / "out")
    with rasterio.open(tmp_path / "out" / "change_mask.tif") as ds:
        assert (ds.width, ds.height) == (256, 256) and ds.crs is None
    assert result["valid_pixels"] == 256 * 256


def test_nodata_of_either_image_is_no_data_in_every_output(package, tmp_path):
    image = houston()
    a = image.copy()
    a[:, :100, :] = 0  # nodata 0 in every band: no data
    path_a = write_like(tmp_path / "a.tif", a, nodata=0)
    b = image.copy()
    b[:, :, 400:] = 0
    path_b = write_like(tmp_path / "b.tif", b, nodata=0)
    result = detect_changes(path_a, path_b, package, tmp_path / "out")
    with rasterio.open(tmp_path / "out" / "change_mask.tif") as ds:
        mask = ds.read(1)
    with rasterio.open(tmp_path / "out" / "change_probability.tif") as ds:
        prob = ds.read(1)
    assert (mask[:100] == 255).all() and (mask[:, 400:] == 255).all() and (prob[:100] == -1).all()
    assert set(np.unique(mask[100:, :400])) <= {0, 1}
    assert result["valid_pixels"] == 412 * 400


def test_a_pair_whose_grids_differ_is_refused_naming_the_difference(package, tmp_path):
    shifted = write_like(tmp_path / "b.tif", houston(), transform=grid_of(HOUSTON)[2] * rasterio.Affine.translation(10, 0))
    out = tmp_path / "out"
    with pytest.raises(InputError, match=r"not on image A's grid \(pixels shifted by up to 10 px.*--resample"):
        detect_changes(HOUSTON, shifted, package, out)
    assert not out.exists() and [p.name for p in tmp_path.iterdir()] == ["b.tif"]
    smaller = write_like(tmp_path / "c.tif", houston()[:, :256, :256])
    with pytest.raises(InputError, match=r"size 256x256 vs 512x512"):
        detect_changes(HOUSTON, smaller, package, out)


def test_resample_puts_b_on_a_grid_and_no_data_where_b_does_not_reach(package, tmp_path):
    # B: the right part of the image, half a pixel off A's grid (another size, another origin)
    b = write_like(tmp_path / "b.tif", houston()[:, :, 200:].copy(), transform=grid_of(HOUSTON)[2] * rasterio.Affine.translation(200.5, 0))
    out = tmp_path / "out"
    with pytest.raises(InputError, match="--resample"):
        detect_changes(HOUSTON, b, package, out)
    result = detect_changes(HOUSTON, b, package, out, resample=True)
    assert result["resampled"] and "size 312x512 vs 512x512" in result["grid_differences"][0]
    assert grid_of(out / "change_mask.tif") == grid_of(HOUSTON)
    with rasterio.open(out / "change_mask.tif") as ds:
        mask = ds.read(1)
    assert (mask[:, :200] == 255).all() and (mask[:, 202:] != 255).all()  # left of B's edge (col 200.5), B has no data


@pytest.mark.parametrize("case", ["one band", "uint16", "two bands after"])
def test_band_counts_and_data_types_are_checked(package, tmp_path, case):
    image = houston()
    if case == "one band":
        a, b = write_like(tmp_path / "a.tif", image[:1]), HOUSTON
        words = r"Image A \(before\) .* has 1 band\(s\); the detector reads 3"
    elif case == "uint16":
        a, b = write_like(tmp_path / "a.tif", image.astype(np.uint16) * 256), HOUSTON
        words = r"is uint16; the detector works on 8-bit images"
    else:
        a, b = HOUSTON, write_like(tmp_path / "b.tif", image[:2])
        words = r"Image B \(after\) .* has 2 band\(s\)"
    with pytest.raises(InputError, match=words):
        detect_changes(a, b, package, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_four_band_image_reads_its_first_three(package, tmp_path):
    image = houston()
    rgba = np.concatenate([image, np.full_like(image[:1], 255)])
    detect_changes(write_like(tmp_path / "a.tif", rgba), HOUSTON, package, tmp_path / "out", polygons=False)
    with rasterio.open(tmp_path / "out" / "change_mask.tif") as ds:
        assert (ds.read(1) != 255).all()


def test_threshold_out_of_range_and_a_cancel_leave_nothing(package, tmp_path):
    with pytest.raises(InputError, match="between 0 and 1"):
        detect_changes(HOUSTON, HOUSTON, package, tmp_path / "out", threshold=1.5)
    calls = []
    progress = Progress(lambda f, m: calls.append(f), is_cancelled=lambda: len(calls) > 3)
    with pytest.raises(Cancelled):
        detect_changes(HOUSTON, HOUSTON, package, tmp_path / "out", progress=progress)
    assert list(tmp_path.iterdir()) == []


def test_overwrite_replaces_a_detection_but_not_a_users_folder(package, tmp_path):
    out = tmp_path / "out"
    detect_changes(HOUSTON, HOUSTON, package, out, polygons=False)
    with pytest.raises(InputError, match="already exists"):
        detect_changes(HOUSTON, HOUSTON, package, out)
    first = json.loads((out / "detection.json").read_text())
    detect_changes(HOUSTON, HOUSTON, package, out, overwrite=True, threshold=0.9)
    assert json.loads((out / "detection.json").read_text())["threshold"] == 0.9 != first["threshold"]
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("mine")
    with pytest.raises(InputError, match="not a change detection made by this tool"):
        detect_changes(HOUSTON, HOUSTON, package, mine, overwrite=True)
    assert [p.name for p in mine.iterdir()] == ["notes.txt"]


def test_large_raster_is_read_and_written_by_window(package, tmp_path):
    # 1500 x 1300 px: several bands of block rows and of vectorised rows; the result equals the same detection's
    # rows read back, whole, from a run on a copy cut into two halves at a block edge
    image = np.tile(houston(), (1, 3, 3))[:, :1500, :1300]
    a = write_like(tmp_path / "a.tif", image)
    b = write_like(tmp_path / "b.tif", np.ascontiguousarray(image[:, :, ::-1]))
    result = detect_changes(a, b, package, tmp_path / "out")
    with rasterio.open(tmp_path / "out" / "change_mask.tif") as ds:
        mask = ds.read(1)
        top = ds.read(1, window=Window(0, 0, 1300, 256))
    assert mask.shape == (1500, 1300) and np.array_equal(top, mask[:256])
    assert result["changed_pixels"] == int((mask == 1).sum())

"""Change polygons from pre/post maps, and their GeoPackage for QGIS 3.22 (GDAL 3.6)."""

import sqlite3
import subprocess
from pathlib import Path

import numpy as np
import pyogrio
import pytest
import rasterio.features
from rasterio.crs import CRS
from rasterio.transform import from_origin

from changeanywhere_qgis.engine.errors import InputError
from changeanywhere_qgis.engine.events import change_mask, change_polygons, events_from_polygons, random_events, write_change_polygons

SYSTEM_OGRINFO = Path("/usr/bin/ogrinfo")


@pytest.fixture(scope="module")
def drawn(_houston_label_cached, houston_changes_path, oem_scheme):
    labels, transform, crs, nodata = _houston_label_cached
    post = events_from_polygons(labels, transform, crs, oem_scheme, houston_changes_path, "target", nodata=nodata).post
    return labels, post, transform, crs


def _check_attributes_match(pre, post, transform, polygons):
    union = np.zeros(pre.shape, dtype=bool)
    for geom, a, b in polygons:
        px = rasterio.features.rasterize([(geom, 1)], out_shape=pre.shape, transform=transform) > 0
        assert px.any()
        assert (pre[px] == a).all() and (post[px] == b).all()
        assert not (union & px).any()  # no pixel in two polygons
        union |= px
    return union


def test_polygons_carry_the_from_and_to_classes(drawn):
    pre, post, transform, _ = drawn
    polygons = change_polygons(pre, post, transform)
    assert polygons and {b for _, _, b in polygons} == {6, 8}
    union = _check_attributes_match(pre, post, transform, polygons)
    assert (union == (change_mask(pre, post) == 1)).all()


def test_random_event_polygons_and_nodata_left_out(_houston_label_cached, oem_scheme):
    labels, transform, _, _ = _houston_label_cached
    pre = labels[:256, :256].copy()
    post = random_events(pre, oem_scheme, 5, nodata=0).post
    pre_nd = pre.copy()
    changed_rows = np.nonzero((post != pre).any(axis=1))[0]
    pre_nd[changed_rows[:5]] = 0  # pretend some changed rows were nodata before
    polygons = change_polygons(pre_nd, post, transform, nodata=0)
    union = _check_attributes_match(pre_nd, post, transform, polygons)
    assert (union == (change_mask(pre_nd, post, nodata=0) == 1)).all()
    assert change_polygons(pre, pre, transform) == []


def test_geopackage_reads_back(drawn, oem_scheme, tmp_path):
    pre, post, transform, crs = drawn
    polygons = change_polygons(pre, post, transform)
    path = tmp_path / "changes.gpkg"
    write_change_polygons(path, polygons, crs, oem_scheme, transform=transform)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["changes.gpkg"]  # no temporary file left

    gdf = pyogrio.read_dataframe(path, layer="changes")
    assert len(gdf) == len(polygons)
    assert gdf.crs.to_epsg() == 4326
    assert list(gdf["from_class"]) == [a for _, a, _ in polygons]
    assert list(gdf["to_class"]) == [b for _, _, b in polygons]
    assert set(gdf["to_name"]) == {"water", "building"}
    assert all(oem_scheme.resolve(n) == c for n, c in zip(gdf["from_name"], gdf["from_class"]))
    assert gdf["area_px"].sum() == (pre != post).sum()
    # About 0.50 m x 0.44 m per pixel at 29.86 N.
    per_px = gdf["area_m2"].sum() / gdf["area_px"].sum()
    assert 0.18 < per_px < 0.26, per_px

    # GeoPackage 1.2 (user_version 10200), so GDAL 3.6 opens it without complaint.
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == 10200

    # Writing again replaces the file.
    write_change_polygons(path, polygons[:1], crs, oem_scheme)
    assert len(pyogrio.read_dataframe(path, layer="changes")) == 1


@pytest.mark.skipif(not SYSTEM_OGRINFO.exists(), reason="no system GDAL here")
def test_system_gdal_opens_it(drawn, oem_scheme, tmp_path):
    pre, post, transform, crs = drawn
    path = tmp_path / "changes.gpkg"
    write_change_polygons(path, change_polygons(pre, post, transform), crs, oem_scheme, transform=transform)
    done = subprocess.run([str(SYSTEM_OGRINFO), "-so", str(path), "changes"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "Warning" not in done.stderr and "ERROR" not in done.stderr, done.stderr
    for field in ("from_class: Integer", "to_class: Integer", "from_name: String", "to_name: String", "area_px"):
        assert field in done.stdout
    assert "Geometry: Polygon" in done.stdout


def test_empty_and_projected_and_no_crs(oem_scheme, tmp_path):
    write_change_polygons(tmp_path / "empty.gpkg", [], CRS.from_epsg(4326), oem_scheme)
    empty = pyogrio.read_info(tmp_path / "empty.gpkg", layer="changes")
    assert empty["features"] == 0 and "from_name" in list(empty["fields"])

    from shapely.geometry import box

    polys = [(box(0, 0, 20, 10), 2, 8)]
    write_change_polygons(tmp_path / "utm.gpkg", polys, CRS.from_epsg(32615), oem_scheme, transform=from_origin(0, 10, 0.5, 0.5))
    gdf = pyogrio.read_dataframe(tmp_path / "utm.gpkg", layer="changes")
    assert gdf["area"][0] == 200 and gdf["area_m2"][0] == 200 and gdf["area_px"][0] == 800
    write_change_polygons(tmp_path / "none.gpkg", polys, None, oem_scheme)
    gdf = pyogrio.read_dataframe(tmp_path / "none.gpkg", layer="changes")
    assert gdf.crs is None and np.isnan(gdf["area_m2"][0])


def test_bad_output_folder(oem_scheme, tmp_path):
    with pytest.raises(InputError, match="does not exist"):
        write_change_polygons(tmp_path / "nope" / "c.gpkg", [], None, oem_scheme)
    with pytest.raises(InputError, match="same grid|one grid"):
        change_polygons(np.zeros((4, 4), np.uint8), np.zeros((4, 5), np.uint8), from_origin(0, 4, 1, 1))


"""Change events on the real Houston OpenEarthMap label: drawn polygons and random object events."""

import json
import warnings

import geopandas as gpd
import numpy as np
import pytest
import rasterio.features
from shapely import make_valid
from shapely.geometry import LineString, Point, Polygon, box

from changeanywhere_qgis.engine.errors import InputError
from changeanywhere_qgis.engine.events import ChangeEvent, ChangeResult, change_mask, default_table, events_from_polygons, load_table, random_events

WATER, BUILDING, TREE = 6, 8, 5


@pytest.fixture(scope="module")
def changes_gdf(houston_changes_path):
    return gpd.read_file(houston_changes_path)


@pytest.fixture(scope="module")
def derived(tmp_path_factory, changes_gdf, houston_label_path):
    """Variants of the sample change layer, written once per module."""
    d = tmp_path_factory.mktemp("vectors")
    out = {}
    g = changes_gdf

    out["gpkg_3857"] = d / "changes_3857.gpkg"
    g.to_crs("EPSG:3857").to_file(out["gpkg_3857"], layer="changes", driver="GPKG")
    out["shp"] = d / "changes.shp"
    g.to_file(out["shp"])
    out["lines"] = d / "lines.geojson"
    gpd.GeoDataFrame({"target": ["water"]}, geometry=[LineString(g.geometry[0].exterior.coords)], crs=g.crs).to_file(
        out["lines"]
    )
    out["points"] = d / "points.gpkg"
    gpd.GeoDataFrame({"target": ["water"]}, geometry=[Point(g.geometry[0].centroid)], crs=g.crs).to_file(out["points"])
    out["far"] = d / "far.geojson"  # the same polygons moved 1 degree east
    gpd.GeoDataFrame(g[["target"]], geometry=g.geometry.translate(xoff=1.0), crs=g.crs).to_file(out["far"])
    out["no_field"] = d / "no_field.geojson"
    g.rename(columns={"target": "klass"}).to_file(out["no_field"])
    out["lava"] = d / "lava.geojson"
    gpd.GeoDataFrame({"target": ["water", "lava"]}, geometry=g.geometry, crs=g.crs).to_file(out["lava"])
    out["empty"] = d / "empty.gpkg"
    g.iloc[0:0].to_file(out["empty"], layer="changes", driver="GPKG")
    out["no_crs"] = d / "no_crs.shp"  # a Shapefile without its .prj (GeoJSON always has CRS84)
    gpd.GeoDataFrame(g[["target"]], geometry=g.geometry, crs=None).to_file(out["no_crs"])
    out["no_crs"].with_suffix(".prj").unlink(missing_ok=True)
    out["two_layers"] = d / "two_layers.gpkg"
    g.to_file(out["two_layers"], layer="first", driver="GPKG")
    g.iloc[[1]].to_file(out["two_layers"], layer="second", driver="GPKG")
    out["not_vector"] = houston_label_path
    out["text"] = d / "notes.geojson"
    out["text"].write_text("this is not a vector file")
    return out


def _run(houston_label, vector, **kw):
    labels, transform, crs, nodata = houston_label
    kw.setdefault("nodata", nodata)
    return events_from_polygons(labels, transform, crs, kw.pop("scheme"), vector, kw.pop("field", "target"), **kw)


def _burn(houston_label, geoms):
    labels, transform, _, _ = houston_label
    return rasterio.features.rasterize([(geom, 1) for geom in geoms], out_shape=labels.shape, transform=transform) > 0


# ---------------------------------------------------------------------------------------------
# drawn polygons


def test_geojson_polygons_change_the_land_inside_them(houston_label, houston_changes_path, changes_gdf, oem_scheme):
    labels = houston_label[0]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # CRS84 vs EPSG:4326 is no reason to warn
        result = _run(houston_label, houston_changes_path, scheme=oem_scheme)
    post = result.post
    assert post.dtype == np.uint8 and post.shape == labels.shape
    inside0, inside1 = (_burn(houston_label, [g]) for g in changes_gdf.geometry)
    assert (post[inside0] == WATER).all() and (post[inside1] == BUILDING).all()
    assert (post[~(inside0 | inside1)] == labels[~(inside0 | inside1)]).all()

    assert [e.kind for e in result.events] == ["polygon", "polygon"]
    water, building = result.events
    assert (water.to_code, water.source) == (WATER, "feature 0")
    assert (building.to_code, building.source) == (BUILDING, "feature 1")
    # The drawn notes: a building becomes water, trees are cleared for a building.
    assert BUILDING in water.from_codes and TREE in building.from_codes
    changed = post != labels
    assert water.pixels + building.pixels == changed.sum()
    assert water.pixels == (inside0 & (labels != WATER)).sum()
    assert set(water.from_codes) == set(np.unique(labels[changed & inside0]).tolist())
    json.dumps(ChangeResult(post, result.events).to_dict())  # JSON-serialisable


def test_reprojected_geopackage_and_shapefile_give_the_same_change(houston_label, derived, houston_changes_path, oem_scheme):
    labels = houston_label[0]
    ref = _run(houston_label, houston_changes_path, scheme=oem_scheme).post != labels
    for key in ("gpkg_3857", "shp"):
        got = _run(houston_label, derived[key], scheme=oem_scheme).post != labels
        iou = (got & ref).sum() / (got | ref).sum()
        assert iou > 0.98, (key, iou)
    # A QGIS layer source string names the layer.
    got = _run(houston_label, f"{derived['gpkg_3857']}|layername=changes", scheme=oem_scheme)
    assert len(got.events) == 2


def test_later_features_win(houston_label, changes_gdf, oem_scheme):
    g = changes_gdf
    layer = gpd.GeoDataFrame({"target": ["water", "tree"]}, geometry=[g.geometry[0], g.geometry[0].buffer(-2e-5)], crs=g.crs)
    result = _run(houston_label, layer, scheme=oem_scheme)
    inner = _burn(houston_label, [g.geometry[0].buffer(-2e-5)])
    assert (result.post[inner] == TREE).all()
    assert [e.to_code for e in result.events] == [WATER, TREE]


def test_only_from_limits_the_classes_that_change(houston_label, houston_changes_path, changes_gdf, oem_scheme):
    labels = houston_label[0]
    with pytest.warns(UserWarning, match="change no pixel.*feature 1"):
        result = _run(houston_label, houston_changes_path, scheme=oem_scheme, only_from=[BUILDING])
    changed = result.post != labels
    assert changed.any() and (labels[changed] == BUILDING).all()
    inside0 = _burn(houston_label, [changes_gdf.geometry[0]])
    assert (result.post[inside0 & (labels == BUILDING)] == WATER).all()
    assert [e.from_codes for e in result.events] == [[BUILDING]]
    with pytest.warns(UserWarning, match="change no pixel"):
        by_name = _run(houston_label, houston_changes_path, scheme=oem_scheme, only_from=["building"])
    assert (by_name.post == result.post).all()


def test_nodata_never_changes(houston_label, houston_changes_path, oem_scheme):
    labels = houston_label[0]
    labels[:, :30] = 0  # a no-data strip across half the water polygon (nodata = 0 in the sample)
    labels[300:, :] = 255  # and a band of another nodata value
    result = _run(houston_label, houston_changes_path, scheme=oem_scheme, nodata=255)
    assert (result.post[:300, :30] == 0).all() and (result.post[300:] == 255).all()
    assert (result.post[:, 30:60] == WATER).any() and len(result.events) == 2
    mask = change_mask(labels, result.post, nodata=0)
    assert (mask[:300, :30] == 255).all()


def test_self_intersecting_polygon_is_repaired(houston_label, oem_scheme):
    labels, transform, crs, nodata = houston_label
    x0, y0 = transform * (100, 100)
    x1, y1 = transform * (200, 200)
    bowtie = Polygon([(x0, y0), (x1, y1), (x1, y0), (x0, y1)])
    assert not bowtie.is_valid
    layer = gpd.GeoDataFrame({"target": ["water"]}, geometry=[bowtie], crs="EPSG:4326")
    result = _run(houston_label, layer, scheme=oem_scheme)
    burnt = _burn(houston_label, [make_valid(bowtie)])
    # Both triangles (left and right of the crossing) are burnt: about 2 x 100*100/4 pixels.
    assert burnt[150, 110] and burnt[150, 190] and not burnt[110, 150]
    assert 4500 < burnt.sum() < 5500
    assert (result.post[burnt] == WATER).all() and (result.post[~burnt] == labels[~burnt]).all()


def test_missing_crs_warns_and_assumes_the_same(houston_label, derived, oem_scheme):
    with pytest.warns(UserWarning, match="no CRS"):
        result = _run(houston_label, derived["no_crs"], scheme=oem_scheme)
    assert len(result.events) == 2


def test_several_layers_use_the_first_or_the_named_one(houston_label, derived, oem_scheme):
    with pytest.warns(UserWarning, match="2 layers"):
        assert len(_run(houston_label, derived["two_layers"], scheme=oem_scheme).events) == 2
    assert len(_run(houston_label, derived["two_layers"], scheme=oem_scheme, layer="second").events) == 1
    with pytest.raises(InputError, match="no layer 'third'.*first, second"):
        _run(houston_label, derived["two_layers"], scheme=oem_scheme, layer="third")


@pytest.mark.parametrize(
    "key, field, words",
    [
        ("missing", "target", ["does not exist", "GeoPackage"]),
        ("not_vector", "target", ["cannot be read", "GeoPackage"]),
        ("text", "target", ["cannot be read"]),
        ("empty", "target", ["no features", "Draw"]),
        ("lines", "target", ["LineString", "draw polygons"]),
        ("points", "target", ["Point", "buffer"]),
        ("no_field", "target", ["no field 'target'", "klass, note"]),
        ("lava", "target", ["Feature 1", "'lava'", "6=water"]),
        ("far", "target", ["outside the raster", "x -94.644", "x -95.644"]),
    ],
)
def test_unusable_layers_say_what_and_how(houston_label, derived, tmp_path, oem_scheme, key, field, words):
    vector = derived.get(key, tmp_path / "missing.gpkg")
    labels = houston_label[0]
    before = labels.copy()
    with pytest.raises(InputError) as err:
        _run(houston_label, vector, scheme=oem_scheme, field=field)
    for w in words:
        assert w in str(err.value), str(err.value)
    assert (labels == before).all()


def test_polygons_that_change_nothing(houston_label, houston_changes_path, oem_scheme):
    labels, transform, crs, nodata = houston_label
    once = _run(houston_label, houston_changes_path, scheme=oem_scheme).post
    with pytest.raises(InputError, match="change no pixel.*already have the target class"):
        events_from_polygons(once, transform, crs, oem_scheme, houston_changes_path, "target", nodata=nodata)
    with pytest.raises(InputError, match="not of the only_from classes.*widen only_from"):
        _run(houston_label, houston_changes_path, scheme=oem_scheme, only_from=[1])  # no bareland here
    tiny = gpd.GeoDataFrame({"target": [6]}, geometry=[box(*(transform * (10.2, 10.2)), *(transform * (10.4, 10.4)))])
    with pytest.raises(InputError, match="no pixel centre"):
        _run(houston_label, tiny.set_crs("EPSG:4326"), scheme=oem_scheme)


# ---------------------------------------------------------------------------------------------
# random events


def _crop(houston_label, rows=slice(0, 256), cols=slice(0, 256)):
    return np.ascontiguousarray(houston_label[0][rows, cols])


def test_random_events_are_reproducible(houston_label, oem_scheme):
    labels = houston_label[0]
    a = random_events(labels, oem_scheme, 7, nodata=0)
    b = random_events(labels, oem_scheme, np.random.default_rng(7), nodata=0)
    c = random_events(labels, oem_scheme, 8, nodata=0)
    assert (a.post == b.post).all() and [e.to_dict() for e in a.events] == [e.to_dict() for e in b.events]
    assert (a.post != c.post).any()
    assert (labels == houston_label[0]).all()  # input untouched


def test_random_events_change_a_sensible_share(houston_label, oem_scheme):
    full = houston_label[0]
    for labels in (full, _crop(houston_label), _crop(houston_label, slice(256, 512), slice(256, 512))):
        fractions = []
        for seed in range(4):
            result = random_events(labels, oem_scheme, seed, nodata=0)
            changed = result.post != labels
            fractions.append(changed.mean())
            assert result.changed_pixels == changed.sum()
            assert {e.kind for e in result.events} <= {"add", "remove", "transition"}
            json.dumps(result.to_dict())
        assert all(0.03 <= f <= 0.3 for f in fractions), fractions


def test_every_changed_pixel_obeys_the_table(houston_label, oem_scheme):
    labels = houston_label[0]
    allow = default_table(oem_scheme).matrix()
    for seed in range(3):
        post = random_events(labels, oem_scheme, seed, nodata=0, add_objects=4, remove_objects=4).post
        changed = post != labels
        assert allow[labels[changed], post[changed]].all()
    # A restrictive table: only buildings may change, and only into water.
    strict = {c.name: [] for c in oem_scheme.classes}
    strict["building"] = ["water"]
    result = random_events(labels, oem_scheme, 1, table=strict, transition_probability=1.0, add_objects=0, remove_objects=0)
    changed = result.post != labels
    assert changed.any() and (labels[changed] == BUILDING).all() and (result.post[changed] == WATER).all()
    assert all(e.kind == "transition" and e.from_codes == [BUILDING] and e.to_code == WATER for e in result.events)


def test_event_kinds_and_their_effects(houston_label, oem_scheme):
    labels = _crop(houston_label)
    only_add = random_events(labels, oem_scheme, 3, transition_probability=0, add_objects=3, remove_objects=0)
    assert [e.kind for e in only_add.events] == ["add"] * 3
    for e in only_add.events:
        assert e.to_code not in e.from_codes
    only_remove = random_events(labels, oem_scheme, 3, transition_probability=0, add_objects=0, remove_objects=3)
    assert [e.kind for e in only_remove.events] == ["remove"] * 3
    changed = only_remove.post != labels
    assert sum(e.pixels for e in only_remove.events) == changed.sum()
    assert set(np.unique(only_remove.post[changed])) <= set(oem_scheme.codes)
    only_transition = random_events(labels, oem_scheme, 3, add_objects=0, remove_objects=0, transition_probability=1.0)
    assert only_transition.events and {e.kind for e in only_transition.events} == {"transition"}
    table = load_table(None, oem_scheme)
    for e in only_transition.events:
        assert table.allows(e.from_codes[0], e.to_code)


def test_random_events_never_touch_nodata(houston_label, oem_scheme):
    labels = houston_label[0]
    labels[100:300, 100:300] = 0
    for seed in range(3):
        post = random_events(labels, oem_scheme, seed, nodata=0, add_objects=6, remove_objects=6).post
        assert (post[100:300, 100:300] == 0).all()
        assert ((post == 0) == (labels == 0)).all()
    all_nodata = np.zeros((64, 64), np.uint8)
    assert random_events(all_nodata, oem_scheme, 0).events == []


def test_small_objects_stay(houston_label, oem_scheme):
    labels = _crop(houston_label)
    result = random_events(labels, oem_scheme, 0, min_object_pixels=10**6)
    assert result.events == [] and (result.post == labels).all()


def test_random_event_options_are_checked(houston_label, oem_scheme):
    labels = _crop(houston_label)
    with pytest.raises(InputError, match="transition_probability"):
        random_events(labels, oem_scheme, 0, transition_probability=1.5)
    with pytest.raises(InputError, match="add_objects"):
        random_events(labels, oem_scheme, 0, add_objects=-1)
    with pytest.raises(InputError, match="unknown class 'lava'"):
        random_events(labels, oem_scheme, 0, table={"lava": ["water"]})
    with pytest.raises(InputError, match="single band"):
        random_events(labels[None, None], oem_scheme, 0)


# ---------------------------------------------------------------------------------------------
# change mask and events


def test_change_mask_values(houston_label):
    pre = houston_label[0]
    post = pre.copy()
    post[10:20, 10:20] = WATER if pre[15, 15] != WATER else TREE
    pre = pre.copy()
    pre[0:5] = 0
    mask = change_mask(pre, post, nodata=0)
    assert mask.dtype == np.uint8 and set(np.unique(mask)) == {0, 1, 255}
    assert (mask[0:5] == 255).all() and mask[15, 15] == 1 and mask[100, 100] == 0
    assert set(np.unique(change_mask(pre, post))) == {0, 1}
    with pytest.raises(InputError, match="same grid"):
        change_mask(pre, post[:10])


def test_event_to_dict():
    e = ChangeEvent("polygon", np.uint8(6), [np.int64(8)], np.int64(12), "feature 3")
    assert json.loads(json.dumps(e.to_dict())) == {
        "kind": "polygon", "to_code": 6, "from_codes": [8], "pixels": 12, "source": "feature 3"
    }

"""End to end through the engine's pipeline, on the real OpenEarthMap sample and the tiny model package."""

import json
import warnings

import numpy as np
import pytest
import rasterio
from rasterio.windows import Window

from changeanywhere_qgis.engine.errors import Cancelled, InputError
from changeanywhere_qgis.engine.pipeline import OUTPUTS, ChangeSpec, GenerateSettings, generate, simulate
from changeanywhere_qgis.engine.progress import Progress

FAST = dict(steps=3, batch_size=8, threads=2)


def _run(tiny_model_dir, semantic, out, image=None, changes=None, **settings):
    spec = changes or ChangeSpec(random=True)
    return generate(semantic, out, spec, image=image, model=tiny_model_dir,
                    settings=GenerateSettings(**{**FAST, "device": "cpu", "seed": 5, **settings}))


def _read(path, band=None):
    with rasterio.open(path) as ds:
        return (ds.read(band) if band else ds.read()), ds.profile, ds


def _no_leftovers(parent):
    return [p.name for p in parent.iterdir() if ".partial-" in p.name or ".old-" in p.name]


@pytest.fixture(scope="module")
def polygon_sample(tiny_model_dir, tmp_path_factory, houston_label_path, houston_image_path, houston_changes_path):
    out = tmp_path_factory.mktemp("gen") / "sample"
    result = _run(tiny_model_dir, houston_label_path, out, image=houston_image_path,
                  changes=ChangeSpec(vector=str(houston_changes_path), class_field="target"))
    return out, result


def test_generate_writes_the_six_outputs_on_the_input_grid(polygon_sample, houston_label_path):
    out, result = polygon_sample
    assert sorted(p.name for p in out.iterdir()) == sorted(OUTPUTS)
    assert not _no_leftovers(out.parent)
    with rasterio.open(houston_label_path) as src:
        crs, transform, shape = src.crs, src.transform, src.shape
    for name in ("t1_image.tif", "t2_image.tif", "t1_semantic.tif", "t2_semantic.tif", "change_mask.tif"):
        with rasterio.open(out / name) as ds:
            assert ds.crs == crs and ds.transform.almost_equals(transform) and ds.shape == shape, name
            assert ds.dtypes[0] == "uint8"
    rgb, profile, _ = _read(out / "t2_image.tif")
    assert rgb.shape[0] == 3 and rgb.std() > 1  # an image, not a constant


def test_maps_mask_and_colour_table_agree(polygon_sample, oem_scheme):
    out, result = polygon_sample
    pre, _, _ = _read(out / "t1_semantic.tif", 1)
    post, _, _ = _read(out / "t2_semantic.tif", 1)
    mask, profile, _ = _read(out / "change_mask.tif", 1)
    valid = pre != 0
    assert np.array_equal(mask[valid] == 1, pre[valid] != post[valid])
    assert set(np.unique(mask)) <= {0, 1, 255} and (mask == 1).any()
    assert np.all(mask[~valid] == 255) and profile["nodata"] == 255
    # The first polygon turns a building into water.
    assert ((pre == 8) & (post == 6)).sum() > 100
    with rasterio.open(out / "t2_semantic.tif") as ds:
        cmap = ds.colormap(1)
        assert ds.nodata == 0
    for c in oem_scheme.classes:
        assert cmap[c.code][:3] == c.color


def test_sample_json_records_the_run(polygon_sample):
    out, result = polygon_sample
    record = json.loads((out / "sample.json").read_text())
    assert record["seed"] == 5 and record["steps"] == 3 and record["device"] == "cpu"
    assert 0.7 <= record["correlation_s"] <= 1.0 and record["correlation_drawn"]
    assert record["tiles"] > 1  # 512 px with 256 px tiles: tiled
    assert [e["kind"] for e in record["events"]] == ["polygon", "polygon"]
    assert record["changed_fraction"] > 0 and set(record["timings"]) >= {"pre_event_s", "post_event_s"}


def test_a_guidance_scale_given_is_used_and_recorded(tiny_model_dir, tmp_path, houston_label_path):
    _run(tiny_model_dir, houston_label_path, tmp_path / "own")
    _run(tiny_model_dir, houston_label_path, tmp_path / "off", guidance=1.0)
    own, off = (json.loads((tmp_path / n / "sample.json").read_text()) for n in ("own", "off"))
    assert own["guidance_scale"] == 2.0 and off["guidance_scale"] == 1.0  # tiny.toml exports 2
    assert not np.array_equal(_read(tmp_path / "own" / "t2_image.tif")[0], _read(tmp_path / "off" / "t2_image.tif")[0])
    with pytest.raises(InputError, match="guidance scale must be between 1"):
        _run(tiny_model_dir, houston_label_path, tmp_path / "bad", guidance=0.0)
    assert not (tmp_path / "bad").exists()


def test_the_pre_event_image_is_made_as_the_default_says(polygon_sample, houston_image_path):
    """Without --pre-event the pre-event image is the input image itself ("real", the default by check U5 of
    docs/research/usefulness-checks.md; check U1 had chosen "redrawn" with model 0.1.0); tests/engine/test_pre_event.py checks
    both choices."""
    from changeanywhere_qgis.engine.diffusion import DEFAULT_PRE_EVENT

    out, result = polygon_sample
    assert result["pre_event"] == DEFAULT_PRE_EVENT == "real"
    assert np.array_equal(_read(out / "t1_image.tif")[0], _read(houston_image_path)[0])


def test_same_seed_same_sample_other_seed_other_sample(tiny_model_dir, tmp_path, houston_label_path):
    a = _run(tiny_model_dir, houston_label_path, tmp_path / "a")
    b = _run(tiny_model_dir, houston_label_path, tmp_path / "b")
    _run(tiny_model_dir, houston_label_path, tmp_path / "c", seed=6)
    for name in ("t1_image.tif", "t2_image.tif", "change_mask.tif"):
        assert np.array_equal(_read(tmp_path / "a" / name)[0], _read(tmp_path / "b" / name)[0]), name
    assert not np.array_equal(_read(tmp_path / "a" / "t2_image.tif")[0], _read(tmp_path / "c" / "t2_image.tif")[0])
    assert a["correlation_s"] == b["correlation_s"]


def test_an_existing_output_folder_needs_overwrite(tiny_model_dir, tmp_path, houston_label_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("user data")
    with pytest.raises(InputError, match="--overwrite"):
        _run(tiny_model_dir, houston_label_path, out)
    assert (out / "keep.txt").read_text() == "user data"
    with pytest.raises(InputError, match="not a change sample"):  # --overwrite replaces only what this tool wrote
        generate(houston_label_path, out, ChangeSpec(random=True), model=tiny_model_dir, overwrite=True,
                 settings=GenerateSettings(**FAST, device="cpu", seed=1))
    assert (out / "keep.txt").read_text() == "user data"
    (out / "keep.txt").unlink()
    for seed in (1, 2):  # an earlier sample is replaced
        generate(houston_label_path, out, ChangeSpec(random=True), model=tiny_model_dir, overwrite=True,
                 settings=GenerateSettings(**FAST, device="cpu", seed=seed))
    assert sorted(p.name for p in out.iterdir()) == sorted(OUTPUTS)
    assert json.loads((out / "sample.json").read_text())["seed"] == 2
    assert not _no_leftovers(tmp_path)


def test_unknown_codes_are_listed_and_nothing_is_written(tiny_model_dir, tmp_path, houston_label_path):
    labels, profile, _ = _read(houston_label_path, 1)
    labels[:10, :10] = 42
    labels[20:30, :10] = 17
    bad = tmp_path / "bad.tif"
    with rasterio.open(bad, "w", **profile) as ds:
        ds.write(labels, 1)
    with pytest.raises(InputError, match=r"\[17, 42\].*--remap"):
        _run(tiny_model_dir, bad, tmp_path / "out")
    assert not (tmp_path / "out").exists() and not _no_leftovers(tmp_path)


def test_an_image_on_another_grid_is_refused(tiny_model_dir, tmp_path, houston_label_path, houston_image_path):
    with rasterio.open(houston_image_path) as src:
        profile = src.profile | {"width": 256, "height": 256, "transform": src.window_transform(Window(0, 0, 256, 256))}
        data = src.read(window=Window(0, 0, 256, 256))
    cropped = tmp_path / "crop.tif"
    with rasterio.open(cropped, "w", **profile) as dst:
        dst.write(data)
    with pytest.raises(InputError, match="grid.*size 256x256"):
        _run(tiny_model_dir, houston_label_path, tmp_path / "out", image=cropped)
    assert not (tmp_path / "out").exists()


def test_a_raster_without_crs_warns_and_writes_outputs_without_crs(tiny_model_dir, tmp_path, houston_label_path):
    labels, profile, _ = _read(houston_label_path, 1)
    plain = tmp_path / "nocrs.tif"
    with rasterio.open(plain, "w", **{**profile, "crs": None}) as ds:
        ds.write(labels, 1)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        _run(tiny_model_dir, plain, tmp_path / "out")
    assert any("no CRS" in str(w.message) for w in caught)
    with rasterio.open(tmp_path / "out" / "t2_image.tif") as ds:
        assert ds.crs is None


def test_nodata_in_the_input_stays_nodata(tiny_model_dir, tmp_path, houston_label_path):
    labels, profile, _ = _read(houston_label_path, 1)
    labels[:, :40] = 0  # a strip outside the mapped area
    holes = tmp_path / "holes.tif"
    with rasterio.open(holes, "w", **profile) as ds:
        ds.write(labels, 1)
    _run(tiny_model_dir, holes, tmp_path / "out")
    post, _, _ = _read(tmp_path / "out" / "t2_semantic.tif", 1)
    mask, _, _ = _read(tmp_path / "out" / "change_mask.tif", 1)
    assert np.all(post[:, :40] == 0) and np.all(mask[:, :40] == 255)
    with rasterio.open(tmp_path / "out" / "t2_image.tif") as ds:
        assert np.all(ds.dataset_mask()[:, :40] == 0) and np.all(ds.dataset_mask()[:, 60:] == 255)


def test_cancel_leaves_nothing(tiny_model_dir, tmp_path, houston_label_path):
    calls = []

    def cancelled():
        calls.append(1)
        return len(calls) > 5

    with pytest.raises(Cancelled):
        generate(houston_label_path, tmp_path / "out", ChangeSpec(random=True), model=tiny_model_dir,
                 settings=GenerateSettings(**FAST, device="cpu", seed=1), progress=Progress(is_cancelled=cancelled))
    assert list(tmp_path.iterdir()) == []


def test_progress_reaches_the_end(tiny_model_dir, tmp_path, houston_label_path):
    seen = []
    generate(houston_label_path, tmp_path / "out", ChangeSpec(random=True), model=tiny_model_dir,
             settings=GenerateSettings(**FAST, device="cpu", seed=1), progress=Progress(lambda f, m: seen.append((f, m))))
    fractions = [f for f, _ in seen]
    assert fractions == sorted(fractions) and fractions[-1] == pytest.approx(1.0)
    assert any("post-event" in m for _, m in seen)


def test_simulate_on_a_loveda_png_with_the_builtin_remap(tiny_model_dir, tmp_path):
    from pathlib import Path

    loveda = Path(__file__).resolve().parents[2] / "data" / "train" / "loveda" / "labels" / "0.png"
    with pytest.raises(InputError, match="remap"):
        # LoveDA codes are not all OpenEarthMap codes: without the remap the scheme check fails or mislabels.
        simulate(loveda, tmp_path / "raw", ChangeSpec(random=True), model=tiny_model_dir, seed=1, remap={"2": 99})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = simulate(loveda, tmp_path / "sim", ChangeSpec(random=True), model=tiny_model_dir, seed=1, remap="loveda")
    pre, _, _ = _read(tmp_path / "sim" / "t1_semantic.tif", 1)
    raw = _read(loveda, 1)[0]
    assert np.all(pre[raw == 2] == 8) and np.all(pre[raw == 6] == 5)  # building, forest -> tree
    assert (tmp_path / "sim" / "changes.gpkg").is_file() and result["changed_fraction"] > 0


def test_change_polygons_given_as_a_geodataframe(tiny_model_dir, tmp_path, houston_label_path, houston_changes_path):
    import geopandas as gpd

    layer = gpd.read_file(houston_changes_path)
    result = _run(tiny_model_dir, houston_label_path, tmp_path / "out", changes=ChangeSpec(vector=layer, class_field="target"), steps=1)
    assert result["inputs"]["changes"]["vector"] == "in-memory layer" and result["changed_fraction"] > 0

"""The sampler and the sampler's tile as a user sets them: recorded in sample.json and the dataset spec, bad
values are clear errors, and the tile plan never cuts a raster that fits in one tile (a dataset of before the options
resumes: tests/engine/dataset/test_resume_settings.py).
The real Houston sample, the tiny model (64 px tile, size granule 8) and the bundled model's manifest."""

from __future__ import annotations

import json

import pytest

from changeanywhere_qgis.engine.dataset import DatasetSettings, generate_dataset
from changeanywhere_qgis.engine.diffusion import DEFAULT_SAMPLER, SAMPLERS, default_model_dir, load_model_package, plan
from changeanywhere_qgis.engine.errors import InputError
from changeanywhere_qgis.engine.pipeline import ChangeSpec, GenerateSettings, generate


@pytest.fixture(scope="module")
def tiny(tiny_model_dir):
    return load_model_package(tiny_model_dir, device="cpu")


def test_the_default_is_ddim_everywhere():
    # DEFAULT_SAMPLER changes only by check S1 of docs/research/map-following-checks.md
    assert DEFAULT_SAMPLER == "ddim" and SAMPLERS == ("ddim", "dpmpp-2m")
    assert GenerateSettings().sampler == DatasetSettings(count=2).sampler == DEFAULT_SAMPLER
    assert GenerateSettings().tile_size is None and DatasetSettings(count=2).sampler_tile is None


def test_today_s_tiling_is_kept_and_a_raster_that_fits_is_one_tile(tiny):
    bundled = load_model_package(default_model_dir(), device="cpu")
    assert plan(bundled, 512, 512, 50).tiles == 9  # the default: 256 px tiles, 64 px overlap
    one = plan(bundled, 512, 512, 50, tile_px=512)
    assert one.tiles == 1 and one.grid.tile_shape == (128, 128)
    assert plan(bundled, 300, 260, 50, tile_px=512).tiles == 1  # fits: one tile of the padded canvas, never cut
    assert plan(bundled, 1024, 1024, 50, tile_px=512).tiles == 9  # larger rasters are still cut, into fewer tiles
    assert plan(bundled, 1024, 1024, 50).tiles == 25
    assert plan(tiny, 128, 128, 2).tiles == 9 and plan(tiny, 128, 128, 2, tile_px=128).tiles == 1


@pytest.mark.parametrize("tile_px, why", [(100, "multiple of 8"), (32, "at least the model's tile of 64 px"), (True, "whole number")])
def test_a_bad_sampler_tile_is_a_clear_error(tiny, tile_px, why):
    with pytest.raises(InputError, match=why):
        plan(tiny, 128, 128, 2, tile_px=tile_px)


def test_unknown_samplers_and_eta_with_the_multistep_solver_are_clear_errors(tiny):
    with pytest.raises(InputError, match="Unknown sampler 'euler'.*ddim, dpmpp-2m"):
        GenerateSettings(sampler="euler").check()
    with pytest.raises(InputError, match="eta is a DDIM setting"):
        GenerateSettings(sampler="dpmpp-2m", eta=0.5).check()
    with pytest.raises(InputError, match="eta is a DDIM setting"):
        DatasetSettings(count=2, sampler="dpmpp-2m", eta=1.0).check()
    with pytest.raises(InputError, match="Unknown sampler"):
        plan(tiny, 64, 64, 2, sampler="DDIM")


def test_sample_json_records_the_sampler_and_the_tile(tmp_path, tiny, tiny_model_dir, houston_label_path):
    records = {}
    for name, kw in {"default": {}, "dpmpp": {"sampler": "dpmpp-2m", "tile_size": 256}}.items():
        result = generate(houston_label_path, tmp_path / name, ChangeSpec(random=True), model=tiny_model_dir,
                          settings=GenerateSettings(steps=3, seed=4, correlation=0.8, device="cpu", threads=2, **kw))
        records[name] = json.loads((tmp_path / name / "sample.json").read_text())
        assert records[name]["tiles"] == result["tiles"]
    assert (records["default"]["sampler"], records["default"]["tile_size_px"]) == ("ddim", 64)
    assert (records["dpmpp"]["sampler"], records["dpmpp"]["tile_size_px"]) == ("dpmpp-2m", 256)
    h, w = records["default"]["grid"]["height"], records["default"]["grid"]["width"]
    assert records["default"]["tiles"] == plan(tiny, h, w, 3).tiles
    assert records["dpmpp"]["tiles"] == plan(tiny, h, w, 3, tile_px=256).tiles < records["default"]["tiles"] / 10


def test_datasets_record_a_new_sampler_and_keep_the_spec_of_before(tmp_path, tiny_model_dir, houston_label_path):
    old = tmp_path / "ddim"
    generate_dataset(houston_label_path, old, DatasetSettings(count=2, tile=64, steps=2, seed=3), model=tiny_model_dir, workers=1)
    spec = json.loads((old / "dataset.json").read_text())["settings"]
    assert "sampler" not in spec and "sampler_tile" not in spec  # a DDIM dataset's spec is the spec of before the option
    card = (old / "README.md").read_text()
    assert "2 DDIM steps (eta 0.0" in card and "--sampler" not in card
    new = tmp_path / "dpmpp"
    settings = DatasetSettings(count=2, tile=128, steps=2, seed=3, sampler="dpmpp-2m", sampler_tile=128)
    generate_dataset(houston_label_path, new, settings, model=tiny_model_dir, workers=1)
    spec = json.loads((new / "dataset.json").read_text())["settings"]
    assert (spec["sampler"], spec["sampler_tile"]) == ("dpmpp-2m", 128)
    card = (new / "README.md").read_text()
    assert "2 DPM-Solver++ 2M steps (dpmpp-2m, 128 px sampler tiles" in card
    assert "--sampler dpmpp-2m --tile-size 128" in card
    with pytest.raises(InputError, match="settings.sampler was 'dpmpp-2m'"):
        generate_dataset(houston_label_path, new, DatasetSettings(count=2, tile=128, steps=2, seed=3, sampler_tile=128),
                         model=tiny_model_dir, workers=1)
    with pytest.raises(InputError, match="multiple of 8"):
        generate_dataset(houston_label_path, tmp_path / "bad", DatasetSettings(count=2, tile=64, sampler_tile=70),
                         model=tiny_model_dir, workers=1)
    assert not (tmp_path / "bad").exists()


@pytest.mark.parametrize("default, model_tile, asked, resolved", [
    (None, 256, None, None),  # None: the model's own tile
    (None, 256, 512, 512),
    (512, 256, None, 512),
    (500, 256, None, 512),  # raised to a multiple of the size granule (32 here)
    (512, 512, None, None),  # a model whose tile is not smaller than the default keeps its own
    (512, 1024, None, None),
    (512, 256, 256, None),  # the model's tile asked for by number is the model's tile
    (512, 256, 768, 768)])
def test_a_run_s_tile_resolves_against_the_default_and_the_model(monkeypatch, default, model_tile, asked, resolved):
    from changeanywhere_qgis.engine.diffusion import raster_plan

    monkeypatch.setattr(raster_plan, "DEFAULT_TILE_PX", default)
    assert raster_plan.resolve_tile_px(model_tile, 32, asked) == resolved


def test_a_new_default_tile_reaches_generate_and_datasets_and_an_older_dataset_still_resumes(
        tmp_path, monkeypatch, tiny_model_dir, houston_label_path):
    """Should check S2 make a larger tile the default: generate and new datasets use it, a dataset begun at the
    model's tile is refused on resume with the flag that finishes it, and that flag finishes it."""
    from changeanywhere_qgis.engine.diffusion import raster_plan

    old = tmp_path / "old"
    generate_dataset(houston_label_path, old, DatasetSettings(count=2, tile=128, steps=2, seed=3), model=tiny_model_dir, workers=1)
    assert "sampler_tile" not in json.loads((old / "dataset.json").read_text())["settings"]
    assert "--tile-size 64" in (old / "README.md").read_text()  # the card names the tile whatever the default becomes
    monkeypatch.setattr(raster_plan, "DEFAULT_TILE_PX", 128)

    generate(houston_label_path, tmp_path / "sample", ChangeSpec(random=True), model=tiny_model_dir,
             settings=GenerateSettings(steps=2, seed=4, correlation=0.8, device="cpu", threads=2))
    assert json.loads((tmp_path / "sample" / "sample.json").read_text())["tile_size_px"] == 128
    new = tmp_path / "new"
    generate_dataset(houston_label_path, new, DatasetSettings(count=2, tile=128, steps=2, seed=3), model=tiny_model_dir, workers=1)
    assert json.loads((new / "dataset.json").read_text())["settings"]["sampler_tile"] == 128

    with pytest.raises(InputError, match=r"To finish it, add --tile-size 64 \(Processing: \"Sampler tile, px\": 64\)"):
        generate_dataset(houston_label_path, old, DatasetSettings(count=3, tile=128, steps=2, seed=3), model=tiny_model_dir, workers=1)
    result = generate_dataset(houston_label_path, old, DatasetSettings(count=3, tile=128, steps=2, seed=3, sampler_tile=64),
                              model=tiny_model_dir, workers=1)
    assert result["skipped"] == 2 and result["generated"] == 1

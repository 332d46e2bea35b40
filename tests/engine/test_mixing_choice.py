"""Latent mixing as a user sets it (issue #34): "latent" (the paper's) or "prediction" reaches the sampler from every
entry of the engine (a raster, a change pair, a series, a dataset), is recorded in sample.json and in a dataset's spec
and card, and a bad value is a clear error (a dataset of before the option resumes: tests/engine/dataset/test_resume_settings.py).
The real Houston sample and the tiny model (64 px tile)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from changeanywhere_qgis.engine.dataset import DatasetSettings, dataset_command, generate_dataset
from changeanywhere_qgis.engine.diffusion import (DEFAULT_MIXING, MIXINGS, change_pair, change_series, load_model_package,
                                                  plan)
from changeanywhere_qgis.engine.errors import InputError
from changeanywhere_qgis.engine.events import change_mask, random_events
from changeanywhere_qgis.engine.pipeline import ChangeSpec, GenerateSettings, generate


@pytest.fixture(scope="module")
def tiny(tiny_model_dir):
    return load_model_package(tiny_model_dir, device="cpu")


def test_the_default_stays_the_paper_s_latent_mixing_everywhere(tiny):
    # prediction mixing by rule (1) of check S2 (docs/research/map-following-checks.md): DDIM 50 kept its figures
    assert DEFAULT_MIXING == "prediction" and MIXINGS == ("latent", "prediction")
    assert GenerateSettings().mixing == DatasetSettings(count=2).mixing == DEFAULT_MIXING
    assert plan(tiny, 128, 128, 2).sampler.mixing == DEFAULT_MIXING
    p = plan(tiny, 128, 128, 2, mixing="prediction", autoencoder_tile_px=128)
    assert p.sampler.mixing == p.coder_settings.mixing == "prediction"


def test_an_unknown_mixing_is_a_clear_error(tiny):
    with pytest.raises(InputError, match="Unknown latent mixing 'noise'.*latent, prediction"):
        GenerateSettings(mixing="noise").check()
    with pytest.raises(InputError, match="Unknown latent mixing 'Latent'"):
        DatasetSettings(count=2, mixing="Latent").check()
    with pytest.raises(InputError, match="Unknown latent mixing"):
        plan(tiny, 64, 64, 2, mixing="pred")


def _pair_maps(houston_label, scheme, seed: int = 5):
    pre = np.ascontiguousarray(houston_label[0][:128, :128])
    result = random_events(pre, scheme, np.random.default_rng(seed), nodata=scheme.nodata_code)
    return pre, result.post, change_mask(pre, result.post, nodata=scheme.nodata_code)


def test_a_change_pair_and_a_series_take_the_mixing(tiny, houston_label):
    scheme = tiny.scheme
    pre, post, mask = _pair_maps(houston_label, scheme)
    assert 0 < (mask == 1).mean() < 0.9
    kw = dict(steps=3, batch_size=4)
    pairs = {m: change_pair(tiny, pre, post, mask, 0.9, np.random.default_rng(1), mixing=m, **kw) for m in MIXINGS}
    assert np.array_equal(change_pair(tiny, pre, post, mask, 0.9, np.random.default_rng(1), **kw)[1], pairs["prediction"][1])
    assert np.array_equal(pairs["latent"][0], pairs["prediction"][0])  # the pre-event image is no mixing's
    assert not np.array_equal(pairs["latent"][1], pairs["prediction"][1])
    third = random_events(post, scheme, np.random.default_rng(6), nodata=scheme.nodata_code).post
    masks = [mask, change_mask(post, third, nodata=scheme.nodata_code)]
    series = {m: change_series(tiny, [pre, post, third], masks, [0.9, 0.9], [np.random.default_rng(1), np.random.default_rng(2)],
                               mixing=m, **kw) for m in MIXINGS}
    assert np.array_equal(series["prediction"][1], pairs["prediction"][1])  # a series' date 2 is the pair's
    assert not np.array_equal(series["latent"][2], series["prediction"][2])


def test_sample_json_records_the_mixing_and_a_series_takes_it(tmp_path, tiny, tiny_model_dir, houston_label_path):
    records, images = {}, {}
    for mixing in MIXINGS:
        out = tmp_path / mixing
        generate(houston_label_path, out, ChangeSpec(random=True), model=tiny_model_dir,
                 settings=GenerateSettings(steps=2, seed=4, correlation=0.9, device="cpu", dates=3, mixing=mixing))
        records[mixing] = json.loads((out / "sample.json").read_text())
        images[mixing] = [(out / f"t{k}_image.tif").read_bytes() for k in (1, 2, 3)]
    assert records["latent"]["mixing"] == "latent" and records["prediction"]["mixing"] == "prediction"
    assert list(records["latent"]).index("mixing") == list(records["latent"]).index("sampler") + 1
    assert images["latent"][0] == images["prediction"][0]  # T1 is generated from the map: no mixing
    assert images["latent"][1] != images["prediction"][1] and images["latent"][2] != images["prediction"][2]


def test_a_dataset_records_prediction_mixing_and_refuses_a_resume_under_the_other(tmp_path, tiny_model_dir, houston_label_path):
    base = dict(count=2, tile=64, steps=2, seed=3)
    latent = tmp_path / "latent"
    generate_dataset(houston_label_path, latent, DatasetSettings(**base, mixing="latent"), model=tiny_model_dir, workers=1)
    spec = json.loads((latent / "dataset.json").read_text())
    assert "mixing" not in spec["settings"]  # a latent-mixing dataset's spec is the spec of before the option
    card = (latent / "README.md").read_text()
    assert "mixing" not in card.split("## Sources")[0] and " --mixing latent " in card  # named: the default changed
    new = tmp_path / "prediction"
    generate_dataset(houston_label_path, new, DatasetSettings(**base), model=tiny_model_dir, workers=1)  # the default
    spec = json.loads((new / "dataset.json").read_text())
    assert spec["settings"]["mixing"] == "prediction"
    card = (new / "README.md").read_text()
    assert "2 DDIM steps (eta 0.0, prediction mixing, " in card and " --mixing prediction " in card
    assert dataset_command(spec, 2, ".").count("--mixing prediction") == 1
    a = sorted((latent / "A").iterdir())
    assert [p.read_bytes() for p in a] == [p.read_bytes() for p in sorted((new / "A").iterdir())]
    assert [p.read_bytes() for p in sorted((latent / "B").iterdir())] != [p.read_bytes() for p in sorted((new / "B").iterdir())]
    with pytest.raises(InputError, match=r"settings\.mixing was 'prediction', now 'latent'.*To finish it, add --mixing prediction "
                                         r"\(Processing: \"Latent mixing\": prediction\)"):
        generate_dataset(houston_label_path, new, DatasetSettings(**base, mixing="latent"), model=tiny_model_dir, workers=1)
    with pytest.raises(InputError, match=r"settings\.mixing was 'latent', now 'prediction'.*To finish it, add --mixing latent "):
        generate_dataset(houston_label_path, latent, DatasetSettings(**base), model=tiny_model_dir, workers=1)  # the default

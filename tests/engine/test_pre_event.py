"""--pre-event: with a real image, the pre-event image is the image itself ("real") or the model's
autoencoder's copy of it ("redrawn"), in generate, in the in-memory pair and in datasets."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import rasterio

from changeanywhere_qgis.engine.dataset import DatasetSettings, generate_dataset
from changeanywhere_qgis.engine.diffusion import change_pair, load_model_package
from changeanywhere_qgis.engine.errors import InputError
from changeanywhere_qgis.engine.pipeline import ChangeSpec, GenerateSettings, generate
from changeanywhere_qgis.engine.quality import psnr


def _generate(tiny_model_dir, out, semantic, image, pre_event):
    return generate(semantic, out, ChangeSpec(random=True), image=image, model=tiny_model_dir,
                    settings=GenerateSettings(steps=2, seed=4, device="cpu", threads=2, pre_event=pre_event))


def _read(path):
    with rasterio.open(path) as ds:
        return ds.read()


def test_redrawn_is_the_autoencoders_copy_and_leaves_the_post_event_image_alone(tmp_path, tiny_model_dir, houston_label_path,
                                                                                houston_image_path):
    real = _generate(tiny_model_dir, tmp_path / "real", houston_label_path, houston_image_path, "real")
    redrawn = _generate(tiny_model_dir, tmp_path / "redrawn", houston_label_path, houston_image_path, "redrawn")
    image = _read(houston_image_path)
    t1_real, t1_redrawn = _read(tmp_path / "real" / "t1_image.tif"), _read(tmp_path / "redrawn" / "t1_image.tif")
    assert np.array_equal(t1_real, image)
    assert not np.array_equal(t1_redrawn, image)
    assert psnr(t1_redrawn, image) > 12  # a copy of this image (the tiny model's autoencoder is coarse), not another one
    # the post-event image does not depend on how the pre-event image is shown
    assert np.array_equal(_read(tmp_path / "real" / "t2_image.tif"), _read(tmp_path / "redrawn" / "t2_image.tif"))
    assert (real["pre_event"], redrawn["pre_event"]) == ("real", "redrawn")
    assert json.loads((tmp_path / "redrawn" / "sample.json").read_text())["pre_event"] == "redrawn"
    with rasterio.open(tmp_path / "redrawn" / "t1_image.tif") as out, rasterio.open(houston_image_path) as src:
        assert out.transform == src.transform and out.crs == src.crs


def test_without_an_image_the_pre_event_image_is_generated_whatever_the_choice(tmp_path, tiny_model_dir, houston_label_path):
    result = _generate(tiny_model_dir, tmp_path / "gen", houston_label_path, None, "redrawn")
    assert result["pre_event"] == "generated"


def test_in_memory_pairs_follow_the_choice(tiny_model_dir, houston_label):
    labels = houston_label[0][:128, :128]
    pkg = load_model_package(tiny_model_dir, "cpu", threads=2)
    image = _read_window()
    post = labels.copy()
    post[:32, :32] = 6
    mask = (post != labels).astype(np.uint8)
    pairs = {mode: change_pair(pkg, labels, post, mask, 0.9, np.random.default_rng(1), image=image, steps=2, pre_event=mode)
             for mode in ("real", "redrawn")}
    assert np.array_equal(pairs["real"][0], image) and not np.array_equal(pairs["redrawn"][0], image)
    assert np.array_equal(pairs["real"][1], pairs["redrawn"][1])
    with pytest.raises(InputError, match="'real'.*'redrawn'"):
        change_pair(pkg, labels, post, mask, 0.9, np.random.default_rng(1), image=image, steps=2, pre_event="copy")


def _read_window():
    with rasterio.open(Path(__file__).resolve().parents[2] / "changeanywhere_qgis" / "samples" / "houston_image.tif") as src:
        return src.read((1, 2, 3), window=((0, 128), (0, 128)))


def test_datasets_record_the_choice_and_refuse_to_resume_with_another(tmp_path, tiny_model_dir, houston_label_path,
                                                                      houston_image_path):
    out = tmp_path / "ds"
    settings = DatasetSettings(count=2, tile=64, steps=1, seed=3, pre_event="redrawn")
    generate_dataset(houston_label_path, out, settings, images=houston_image_path, model=tiny_model_dir, workers=1)
    spec = json.loads((out / "dataset.json").read_text())
    assert spec["settings"]["pre_event"] == "redrawn"
    card = (out / "README.md").read_text()
    assert "autoencoder's copies of the real images" in card and "--pre-event redrawn" in card
    record = json.loads((out / "manifest.jsonl").read_text().splitlines()[0])
    a = _read(out / record["files"]["A"])
    w = record["window"]
    with rasterio.open(houston_image_path) as src:
        window = src.read((1, 2, 3), window=((w["row"], w["row"] + 64), (w["col"], w["col"] + 64)))
    assert a.shape == window.shape and not np.array_equal(a, window) and psnr(a, window) > 12
    # resumed under today's default ("real" since check U5): refused, and the message names the flag that finishes it
    with pytest.raises(InputError, match="other settings.*To finish it, add --pre-event redrawn "):
        generate_dataset(houston_label_path, out, DatasetSettings(count=2, tile=64, steps=1, seed=3),
                         images=houston_image_path, model=tiny_model_dir, workers=1)
    with pytest.raises(InputError, match="pre-event image"):
        DatasetSettings(count=2, pre_event="copy").check()


def test_without_images_the_choice_does_not_stop_a_resume(tmp_path, tiny_model_dir, houston_label_path):
    """Without images the pre-event image is generated from the map and the choice changes nothing: a dataset begun
    under the old default ("redrawn", which its dataset.json records) finishes under the new one, the same bytes."""
    whole, out = tmp_path / "whole", tmp_path / "resumed"
    generate_dataset(houston_label_path, whole, DatasetSettings(count=3, tile=64, steps=1, seed=5), model=tiny_model_dir, workers=1)
    generate_dataset(houston_label_path, out, DatasetSettings(count=2, tile=64, steps=1, seed=5, pre_event="redrawn"),
                     model=tiny_model_dir, workers=1)
    assert json.loads((out / "dataset.json").read_text())["settings"]["pre_event"] == "redrawn"
    result = generate_dataset(houston_label_path, out, DatasetSettings(count=3, tile=64, steps=1, seed=5), model=tiny_model_dir,
                              workers=1)
    assert (result["generated"], result["skipped"]) == (1, 2)

    def pairs(root):
        return {str(f.relative_to(root)): f.read_bytes() for d in ("A", "B", "label") for f in sorted((root / d).iterdir())}
    assert pairs(out) == pairs(whole) and len(pairs(out)) == 9


def test_real_datasets_keep_the_spec_of_before(tmp_path, tiny_model_dir, houston_label_path, houston_image_path):
    """A "real" dataset writes no pre_event setting: folders made before the option existed still resume."""
    out = tmp_path / "ds"
    generate_dataset(houston_label_path, out, DatasetSettings(count=2, tile=64, steps=1, pre_event="real"), images=houston_image_path,
                     model=tiny_model_dir, workers=1)
    assert "pre_event" not in json.loads((out / "dataset.json").read_text())["settings"]
    assert "--pre-event real" in (out / "README.md").read_text()


def test_the_autoencoder_copy_is_what_a_redrawn_dataset_holds(tmp_path, tiny_model_dir, houston_label_path, houston_image_path):
    """The evaluation redraws the pre-event images of a "real" dataset with autoencoder_copy: the same bytes as
    the dataset made with pre_event="redrawn" (so one generated dataset serves both variants)."""
    from changeanywhere_qgis.engine.diffusion import autoencoder_copy

    made = {}
    for mode in ("real", "redrawn"):
        out = tmp_path / mode
        generate_dataset(houston_label_path, out, DatasetSettings(count=2, tile=64, steps=1, seed=8, pre_event=mode),
                         images=houston_image_path, model=tiny_model_dir, workers=1)
        made[mode] = [(_read(out / r["files"]["A"]), _read(out / r["files"]["B"]))
                      for r in map(json.loads, (out / "manifest.jsonl").read_text().splitlines())]
    pkg = load_model_package(tiny_model_dir, "cpu", threads=2)
    for (a_real, b_real), (a_redrawn, b_redrawn) in zip(made["real"], made["redrawn"]):
        assert np.array_equal(b_real, b_redrawn)
        assert np.array_equal(autoencoder_copy(pkg, a_real), a_redrawn)

"""Per-window map-following: the right crop of each held-out window, scored as the checks define it."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from model_export.evaluation import segmentation
from model_export.evaluation.map_following import central, colour_against, main
from model_export.training.data import image_to_tensor_range
from training_helpers import REPO, TINY_CONFIG, TRAIN, read_tif


def test_central_crop_of_a_window():
    assert central((768, 1024), (0, 658), 256) == (slice(768, 1024), slice(201, 457))
    assert central((0, 100), (10, 50), 256) == (slice(0, 100), slice(10, 50))  # smaller than the crop: all of it


@pytest.fixture(scope="module")
def judge(tmp_path_factory):
    out = tmp_path_factory.mktemp("judge")
    assert segmentation.main(["--data", str(TRAIN / "oem"), "--config", str(TINY_CONFIG), "--out", str(out),
                              "--max-steps", "3", "--threads", "1"]) == 0
    return out


def test_rows_score_the_windows_real_crop_with_the_judge(judge, tmp_path, capsys):
    out = tmp_path / "mf.json"
    assert main(["--model", str(REPO / "tests" / "data" / "tiny_model"), "--judge", str(judge), "--config", str(TINY_CONFIG),
                 "--data", str(TRAIN / "oem"), "--seeds", "0", "--steps", "2", "--size", "128", "--threads", "1",
                 "--json", str(out), "--images", str(tmp_path / "look")]) == 0
    (row,) = json.loads(out.read_text())["rows"]
    assert (row["source"], row["stem"], row["rows"], row["cols"]) == ("oem", "houston_16", [832, 960], [832, 960])
    image = read_tif(TRAIN / "oem" / "images" / "houston_16.tif")[832:960, 832:960, :3]
    label = read_tif(TRAIN / "oem" / "labels" / "houston_16.tif")[832:960, 832:960, 0]
    pred = segmentation.predict(segmentation.load(judge), image_to_tensor_range(image))
    assert row["real_miou_map"] == pytest.approx(segmentation.miou(pred, label)[0])
    assert row["real_miou_rotated"] == pytest.approx(segmentation.miou(pred, np.rot90(label, 2))[0])
    assert row["per_seed"] == [row["generated_miou_map"]]  # one seed, one generated image
    assert "| oem | houston_16 832:960, 832:960 |" in capsys.readouterr().out
    look = np.asarray(Image.open(tmp_path / "look" / "oem_houston_16.png"))
    assert look.shape == (128, 3 * 128, 3) and (look[:, :128] == image).all()  # real | copy | generated
    generated = look[:, 256:]
    assert row["colour_offset"] == pytest.approx(colour_against([generated], image)["colour_offset"], abs=0.01)
    assert row["contrast_ratio"] == pytest.approx(colour_against([generated], image)["contrast_ratio"], abs=0.001)


def test_colour_against_the_real_window_sees_shifts_and_harsher_contrast():
    real = np.random.default_rng(0).integers(60, 180, (32, 32, 3)).astype(np.uint8)
    assert colour_against([real], real) == {"colour_offset": 0.0, "contrast_ratio": 1.0}
    brighter = real + np.array([10, 20, 30], dtype=np.uint8)
    assert colour_against([brighter], real)["colour_offset"] == pytest.approx(20.0)
    harsher = np.clip((real.astype(float) - 120) * 2 + 120, 0, 255).astype(np.uint8)
    assert colour_against([harsher], real)["contrast_ratio"] == pytest.approx(2.0, abs=0.05)
    assert colour_against([real, brighter], real)["colour_offset"] == pytest.approx(10.0)  # averaged over the images


def test_a_window_whose_tile_is_missing_is_named(judge, capsys):
    code = main(["--model", str(REPO / "tests" / "data" / "tiny_model"), "--judge", str(judge),
                 "--data", str(TRAIN / "oem"), "--seeds", "0", "--steps", "1"])  # default.toml's windows: 3 are elsewhere
    assert code == 2
    assert "'2'" in capsys.readouterr().err


def test_the_int8_denoiser_is_asked_for_by_precision_and_refused_where_the_package_has_none(tmp_path, capsys):
    # the judges score the int8 denoiser with --precision int8; the tiny package has none: refused before any work
    assert main(["--model", str(REPO / "tests" / "data" / "tiny_model"), "--judge", str(tmp_path), "--config",
                 str(TINY_CONFIG), "--data", str(TRAIN / "oem"), "--precision", "int8"]) == 2
    assert "model_export.export.quantize --package" in capsys.readouterr().err

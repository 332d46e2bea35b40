"""dataset --appearance-shift: each image B shifted after decoding, from its own stream (A, labels and the unshifted B are
the same bytes as without it), recorded in the manifest, and reproduced byte for byte by the engine's one function."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from test_dataset import _files, _make

from changeanywhere_qgis.engine.dataset import AppearanceShift, DatasetSettings, appearance_shift, draw_appearance_shift
from changeanywhere_qgis.engine.dataset import appearance as appearance_module
from changeanywhere_qgis.engine.errors import InputError
from changeanywhere_qgis.engine.io import read_raster

REPO = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="module")
def pair_of_datasets(tmp_path_factory, tiny_model_dir, houston_label_path, houston_image_path):
    root = tmp_path_factory.mktemp("appearance")
    for name, shifted in (("plain", False), ("shifted", True)):
        _make(root / name, tiny_model_dir, houston_label_path, count=6, layout="both", seed=4, images=houston_image_path,
              appearance_shift=shifted)
    return root / "plain", root / "shifted"


def _manifest(root: Path) -> list[dict]:
    return [json.loads(line) for line in (root / "manifest.jsonl").read_text().splitlines()]


def test_only_b_changes_and_each_samples_shift_is_recorded(pair_of_datasets):
    plain, shifted = pair_of_datasets
    a, b = _files(plain), _files(shifted)
    assert a.keys() == b.keys()
    differ = sorted({name.split("/")[0] for name in a if a[name] != b[name]})
    # the card says the images were shifted, the spec has the setting, the manifest each shift
    assert differ == ["B", "README.md", "dataset.json", "im2", "manifest.jsonl"], differ
    for name in a:
        if name.startswith(("B/", "im2/")):
            assert a[name] != b[name], name
    records = _manifest(shifted)
    assert all("appearance_shift" not in r for r in _manifest(plain))
    assert [{k: v for k, v in r.items() if k != "appearance_shift"} for r in records] == _manifest(plain)
    assert len({json.dumps(r["appearance_shift"]) for r in records}) == len(records)  # one draw per sample
    for r in records:
        assert r["appearance_shift"] == draw_appearance_shift(r["seed"]).to_dict()
    card, plain_card = (shifted / "README.md").read_text(), (plain / "README.md").read_text()
    # a pair dataset's command names its shifts either way: their default changed (U2 on, U5 off), the card's command may not
    assert "random appearance shift" in card and " --appearance-shift " in card and "--no-appearance-shift" not in card
    assert "random appearance shift" not in plain_card and "--no-appearance-shift" in plain_card
    assert json.loads((shifted / "dataset.json").read_text())["settings"]["appearance_shift"] is True
    assert "appearance_shift" not in json.loads((plain / "dataset.json").read_text())["settings"]  # off: the spec as before


@pytest.mark.parametrize("given", ["record", "seed"])
def test_the_engine_function_reproduces_the_datasets_b_byte_for_byte(pair_of_datasets, given):
    plain, shifted = pair_of_datasets
    for r in _manifest(shifted):
        unshifted = read_raster(plain / r["files"]["B"])
        want = read_raster(shifted / r["files"]["B"])
        got = appearance_shift(unshifted, r["appearance_shift"] if given == "record" else r["seed"])
        assert got.dtype == np.uint8 and got.tobytes() == want.tobytes(), r["name"]
        assert read_raster(shifted / r["files"]["im2"]).tobytes() == want.tobytes()


def test_draws_stay_in_their_ranges_and_come_from_the_seed():
    shifts = [draw_appearance_shift(seed) for seed in range(400)]
    assert draw_appearance_shift(17) == shifts[17] and shifts[17] != shifts[18]
    colour = np.array([s.colour for s in shifts])
    np.testing.assert_allclose(colour.mean(axis=1), 1.0, rtol=1e-12)  # the colour change alone keeps the brightness
    assert colour.min() > 0.84 and colour.max() < 1.17  # after the normalisation: within the real pairs' max deviation, 0.176
    brightness = np.array([s.brightness for s in shifts])
    haze = np.array([s.haze for s in shifts])
    assert appearance_module.BRIGHTNESS_RANGE[0] <= brightness.min() and brightness.max() <= appearance_module.BRIGHTNESS_RANGE[1]
    assert 0.0 <= haze.min() and haze.max() <= appearance_module.HAZE_RANGE[1]
    offsets = {s.shift for s in shifts}
    assert offsets == {(dy, dx) for dy in range(-2, 3) for dx in range(-2, 3)}  # every shift of up to 2 px, no more


def test_misregistration_moves_b_and_replicates_the_edges(houston_image_path):
    image = read_raster(houston_image_path)[:3, :64, :64]
    shift = AppearanceShift((1.0, 1.0, 1.0), 1.0, 0.0, (0.0, 0.0, 0.0), (2, -1))
    moved = appearance_shift(image, shift)
    assert moved.shape == image.shape
    assert np.array_equal(moved[:, 2:, :-1], image[:, :-2, 1:])  # content moved 2 px down and 1 px left
    assert np.array_equal(moved[:, 0], moved[:, 2]) and np.array_equal(moved[:, :, -1], moved[:, :, -2])  # edges replicated
    assert np.array_equal(appearance_shift(image, AppearanceShift((1.0, 1.0, 1.0), 1.0, 0.0, (0.0, 0.0, 0.0), (0, 0))), image)
    with pytest.raises(InputError, match="uint8"):
        appearance_shift(image.astype(np.float32), shift)


def test_haze_lowers_the_contrast_towards_a_bright_blue_grey(houston_image_path):
    image = read_raster(houston_image_path)[:3]
    hazy = appearance_shift(image, AppearanceShift((1.0, 1.0, 1.0), 1.0, 0.3, appearance_module.HAZE_COLOUR, (0, 0)))
    ratio = hazy.reshape(3, -1).std(axis=1) / image.reshape(3, -1).std(axis=1)
    np.testing.assert_allclose(ratio, 0.7, atol=0.01)
    assert hazy[2].mean() - image[2].mean() > hazy[0].mean() - image[0].mean() > 0  # brighter, bluer


def test_resume_with_other_appearance_settings_is_refused(pair_of_datasets, tiny_model_dir, houston_label_path,
                                                          houston_image_path):
    _, shifted = pair_of_datasets
    before = _files(shifted)
    done = subprocess.run([sys.executable, "-m", "changeanywhere_qgis", "dataset", "--semantic", str(houston_label_path),
                           "--image", str(houston_image_path), "--count", "6", "--tile", "64", "--steps", "2", "--seed", "4",
                           "--layout", "both", "--model", str(tiny_model_dir), "--workers", "1",
                           "--out", str(shifted)], cwd=REPO, capture_output=True, text=True, timeout=300)
    # shifts are off by default since check U5: a dataset begun with them (the default from U2 to U5) is refused, and the
    # message names the flag that finishes it
    assert done.returncode == 2 and "appearance_shift" in done.stderr and "add --appearance-shift " in done.stderr, done.stderr
    assert "tick \"Random appearance shifts\"" in done.stderr and "--pre-event" not in done.stderr
    assert _files(shifted) == before


def test_off_by_default():
    assert DatasetSettings(count=2).appearance_shift is False  # check U5, docs/research/usefulness-checks.md
    assert DatasetSettings(count=2, appearance_shift=False).appearance_shift is False
    assert DatasetSettings(count=2, dates=3).appearance_shift is False  # a series takes none yet, and is not refused
    DatasetSettings(count=2, dates=3).check()
    with pytest.raises(InputError, match="takes no style image or appearance shift yet"):
        DatasetSettings(count=2, dates=3, appearance_shift=True).check()


STYLE = REPO / "data" / "whu-cd" / "B" / "000121_0512_0512.png"  # a real post-event image of another city and sensor


def test_dataset_style_changes_only_b_and_is_part_of_the_spec(pair_of_datasets, tmp_path, tiny_model_dir, houston_label_path,
                                                              houston_image_path):
    plain, _ = pair_of_datasets
    styled = tmp_path / "styled"
    _make(styled, tiny_model_dir, houston_label_path, count=6, layout="both", seed=4, images=houston_image_path,
          style=str(STYLE), style_strength=0.8, appearance_shift=False)  # beside the plain one: the style alone
    a, b = _files(plain), _files(styled)
    differ = sorted({name.split("/")[0] for name in a if a[name] != b[name]})
    assert differ == ["B", "README.md", "dataset.json", "im2"], differ  # the manifest lines are the same
    spec = json.loads((styled / "dataset.json").read_text())
    assert spec["style"]["sha256"] == hashlib.sha256(STYLE.read_bytes()).hexdigest()
    assert spec["settings"]["style"] == str(STYLE) and spec["settings"]["style_strength"] == 0.8
    card = (styled / "README.md").read_text()
    assert "took the appearance of the style image" in card and "--style-strength 0.8" in card
    # its B images are nearer the style image's colours than the unstyled ones
    target = read_raster(STYLE)[:3].reshape(3, -1).mean(axis=1)
    names = [r["files"]["B"] for r in _manifest(plain)]
    before = np.mean([np.abs(read_raster(plain / n).reshape(3, -1).mean(axis=1) - target).mean() for n in names])
    after = np.mean([np.abs(read_raster(styled / n).reshape(3, -1).mean(axis=1) - target).mean() for n in names])
    assert after < 0.5 * before, (before, after)


def test_dataset_style_is_checked_before_anything_is_written(tmp_path, tiny_model_dir, houston_label_path):
    with pytest.raises(InputError, match="Style image .* band"):
        _make(tmp_path / "bad", tiny_model_dir, houston_label_path, count=2, style=str(houston_label_path))
    with pytest.raises(InputError, match="style strength"):
        _make(tmp_path / "bad", tiny_model_dir, houston_label_path, count=2, style=str(STYLE), style_strength=3.0)
    assert not (tmp_path / "bad").exists()


def test_resume_with_another_style_image_is_refused(tmp_path, tiny_model_dir, houston_label_path):
    _make(tmp_path / "ds", tiny_model_dir, houston_label_path, count=2, steps=1, style=str(STYLE))
    other = tmp_path / "style.png"
    other.write_bytes((REPO / "data" / "levir-cd" / "B" / "test_12_0512_0768.png").read_bytes())
    with pytest.raises(InputError, match="style"):
        _make(tmp_path / "ds", tiny_model_dir, houston_label_path, count=2, steps=1, style=str(other))

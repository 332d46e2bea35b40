"""Data folders: clear errors for unusable folders; remaps; held-out windows never reach a crop."""

from __future__ import annotations

import json

import numpy as np
import pytest

from model_export.training.data import Window, load_tile, random_crop_origin, sample_image_crops, scan_folder
from model_export.training.errors import DataError
from model_export.training.train import main

from training_helpers import TINY_CONFIG, TRAIN, write_png, write_tif


def test_empty_folder_error(tmp_path):
    (tmp_path / "images").mkdir()
    with pytest.raises(DataError, match=r"No images found in .*images.*labels"):
        scan_folder(str(tmp_path))


def test_missing_folder_error_through_cli(tmp_path, capsys):
    code = main(["--stage", "autoencoder", "--config", str(TINY_CONFIG), "--data", str(tmp_path / "nope"),
                 "--out", str(tmp_path / "out"), "--max-steps", "1"])
    assert code == 2
    assert "No images found" in capsys.readouterr().err


def test_label_values_outside_scheme_are_listed(tmp_path):
    write_png(tmp_path / "images" / "a.png", np.zeros((16, 16, 3), np.uint8))
    label = np.full((16, 16), 2, np.uint8)
    label[0, 0], label[0, 1] = 12, 255
    write_png(tmp_path / "labels" / "a.png", label)
    with pytest.raises(DataError, match=r"values \[12, 255\] outside the OpenEarthMap scheme 0\.\.8.*remap"):
        scan_folder(str(tmp_path))


def test_image_label_size_mismatch(tmp_path):
    write_tif(tmp_path / "images" / "a.tif", np.zeros((32, 32, 3), np.uint8))
    write_tif(tmp_path / "labels" / "a.tif", np.zeros((16, 32), np.uint8))
    with pytest.raises(DataError, match=r"is 32x32 pixels but its label .* is 16x32"):
        scan_folder(str(tmp_path))


def test_loveda_and_json_remaps(tmp_path):
    write_png(tmp_path / "images" / "a.png", np.zeros((8, 8, 3), np.uint8))
    write_png(tmp_path / "labels" / "a.png", np.arange(8, dtype=np.uint8).repeat(8).reshape(8, 8))
    (tile,) = scan_folder(f"{tmp_path}@loveda")
    _, label = load_tile(tile)
    assert label[:, 0].tolist() == [0, 2, 8, 4, 6, 1, 5, 7]
    mapping = tmp_path / "map.json"
    mapping.write_text(json.dumps({str(i): 8 - i for i in range(8)}))
    (tile,) = scan_folder(f"{tmp_path}@{mapping}")
    assert load_tile(tile)[1][:, 0].tolist() == [8, 7, 6, 5, 4, 3, 2, 1]
    with pytest.raises(DataError, match="Unknown label remap"):
        scan_folder(f"{tmp_path}@nosuchscheme")


def test_unlabelled_images_are_kept_for_the_autoencoder(tmp_path):
    write_png(tmp_path / "images" / "a.png", np.full((64, 64, 3), 200, np.uint8))
    (tile,) = scan_folder(str(tmp_path))
    assert tile.label_path is None
    crops = sample_image_crops(np.random.default_rng(0), [tile], 32, 3, [])
    assert crops.shape == (3, 3, 32, 32) and np.allclose(crops, 200 / 127.5 - 1)


def test_holdout_window_never_cropped(small_data):
    (tile,) = scan_folder(small_data[0])
    window = Window(tile.stem, (128, 256), (128, 256))
    rng = np.random.default_rng(0)
    origins = [random_crop_origin(rng, tile, 64, [window]) for _ in range(300)]
    assert all(o is not None for o in origins)
    assert not any(window.intersects(r, c, 64) for r, c in origins)
    # Every crop origin that avoids the window is allowed: some crops do touch rows below 128.
    assert max(r for r, _ in origins) > 64


def test_source_balance_weighs_every_data_folder_alike_and_tiles_by_area():
    from model_export.training.data import scan_folders, tile_weights

    tiles = scan_folders([str(TRAIN / "oem"), f"{TRAIN / 'dubai'}@{TRAIN / 'dubai' / 'training_remap.json'}"])
    w = tile_weights(tiles, "source")
    oem = np.array([t.source.endswith("oem") for t in tiles])
    assert w.sum() == pytest.approx(1.0)
    assert w[oem].sum() == pytest.approx(0.5) and w[~oem].sum() == pytest.approx(0.5)  # 2 tiles against 36
    dubai = [(t, p) for t, p in zip(tiles, w) if not t.source.endswith("oem")]
    (big, pb), (small, ps) = max(dubai, key=lambda x: x[0].height * x[0].width), min(dubai, key=lambda x: x[0].height * x[0].width)
    assert pb / ps == pytest.approx(big.height * big.width / (small.height * small.width))
    assert tile_weights(tiles, "tile") is None  # the old draw, the same random stream


def test_an_unknown_balance_is_refused():
    from model_export.training.errors import DataError
    from model_export.training.data import tile_weights

    with pytest.raises(DataError, match="balance"):
        tile_weights([], "pixels")

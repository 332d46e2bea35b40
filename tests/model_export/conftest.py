"""Small real data folders (crops of the bundled tiles) and one tiny training run shared by the tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from training_helpers import TINY_CONFIG, TRAIN, read_tif, write_png, write_tif


@pytest.fixture(scope="session")
def small_data(tmp_path_factory) -> list[str]:
    """Two data folders: a 256x256 crop of houston_16 (GeoTIFF, OEM codes) and of LoveDA tile 0 (PNG)."""
    root = tmp_path_factory.mktemp("data")
    image = read_tif(TRAIN / "oem" / "images" / "houston_16.tif")[:256, :256]
    label = read_tif(TRAIN / "oem" / "labels" / "houston_16.tif")[:256, :256, 0]
    write_tif(root / "oem" / "images" / "houston_16.tif", image)
    write_tif(root / "oem" / "labels" / "houston_16.tif", label)
    lv_image = np.asarray(Image.open(TRAIN / "loveda" / "images" / "0.png"))[:256, :256]
    lv_label = np.asarray(Image.open(TRAIN / "loveda" / "labels" / "0.png"))[:256, :256]
    write_png(root / "loveda" / "images" / "0.png", lv_image)
    write_png(root / "loveda" / "labels" / "0.png", lv_label)
    return [str(root / "oem"), f"{root / 'loveda'}@loveda"]


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory, small_data) -> Path:
    """A tiny autoencoder run and a tiny diffusion run on the small data (about 20 s on 2 cores)."""
    from model_export.training.train import main

    run = tmp_path_factory.mktemp("run")
    common = ["--config", str(TINY_CONFIG), "--data", *small_data, "--seed", "0"]
    assert main(["--stage", "autoencoder", *common, "--out", str(run / "ae"), "--max-steps", "40"]) == 0
    assert main(["--stage", "diffusion", *common, "--autoencoder", str(run / "ae"), "--out", str(run / "dm"),
                 "--max-steps", "40"]) == 0
    return run

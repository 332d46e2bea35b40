"""A land-cover map without land (every pixel nodata), or with too little for the random events, is refused before
any network runs, by generate, simulate and dataset (issue #36: an all-nodata map used to run the whole diffusion
and exit 0 with an empty sample). Real GeoTIFFs on the bundled sample's grid."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import rasterio

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture()
def maps(tmp_path, houston_label_path):
    with rasterio.open(houston_label_path) as src:
        profile, labels = src.profile, src.read(1)
    assert profile["nodata"] == 0
    made = {}
    for name, land in (("nodata", 0), ("speck", 9)):
        codes = np.zeros_like(labels)
        codes.flat[:land] = 5  # a few tree pixels in one corner row
        with rasterio.open(tmp_path / f"{name}.tif", "w", **profile) as dst:
            dst.write(codes, 1)
        made[name] = tmp_path / f"{name}.tif"
    return made


def cli(*args):
    start = time.monotonic()
    done = subprocess.run([sys.executable, "-m", "changeanywhere_qgis", *map(str, args)], capture_output=True, text=True,
                          cwd=REPO, timeout=600)
    return done, time.monotonic() - start


def assert_refused(done, *words):
    assert done.returncode == 2, (done.returncode, done.stdout[-1000:], done.stderr[-2000:])
    assert "Traceback" not in done.stderr
    last = done.stderr.strip().splitlines()[-1]
    for word in words:
        assert word in last, (word, last)
    assert "estimate:" not in done.stderr  # refused before the long work is even estimated


@pytest.mark.parametrize("command", ["generate", "simulate"])
def test_an_all_nodata_map_is_refused(command, maps, tmp_path, tiny_model_dir):
    out = tmp_path / "out"
    extra = ["--model", tiny_model_dir] if command == "generate" else []
    done, _ = cli(command, "--semantic", maps["nodata"], "--random-events", "--seed", "1", "--out", out, *extra)
    assert_refused(done, f"Semantic raster {maps['nodata']} holds no land: every pixel is nodata", "nothing was run")
    assert not out.exists()


@pytest.mark.parametrize("command", ["generate", "simulate"])
def test_too_little_land_for_the_events_is_refused(command, maps, tmp_path, tiny_model_dir):
    out = tmp_path / "out"
    extra = ["--model", tiny_model_dir] if command == "generate" else []
    done, _ = cli(command, "--semantic", maps["speck"], "--random-events", "--seed", "1", "--out", out, *extra)
    assert_refused(done, "changed no pixel", "9 pixels of labelled land")
    assert not out.exists()


def test_a_dataset_of_an_all_nodata_map_is_refused(maps, tmp_path, tiny_model_dir):
    out = tmp_path / "ds"
    done, _ = cli("dataset", "--semantic", maps["nodata"], "--count", "2", "--tile", "64", "--model", tiny_model_dir,
                  "--workers", "1", "--out", out)
    assert_refused(done, "mostly nodata")
    assert not out.exists()

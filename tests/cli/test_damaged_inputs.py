"""An input GeoTIFF cut short (a copy or download that stopped) is named as an input that could not be read,
not taken for a failed write ("Writing into OUT failed ... check the disk"): issue #36. Real truncated files."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SAMPLES = REPO / "changeanywhere_qgis" / "samples"


def cut_short(source: Path, target: Path, keep: float) -> Path:
    """The first ``keep`` share of the file: its header and first tiles, the rest missing."""
    data = source.read_bytes()
    target.write_bytes(data[: int(len(data) * keep)])
    return target


@pytest.fixture()
def damaged(tmp_path):
    return {"label": cut_short(SAMPLES / "houston_label.tif", tmp_path / "label_cut.tif", 0.45),
            "image": cut_short(SAMPLES / "houston_image.tif", tmp_path / "image_cut.tif", 0.1)}


def cli(*args):
    return subprocess.run([sys.executable, "-m", "changeanywhere_qgis", *map(str, args)], capture_output=True, text=True,
                          cwd=REPO, timeout=600)


def assert_names_the_input(done, path: Path, what: str, out: Path) -> None:
    assert done.returncode == 2, (done.returncode, done.stderr[-2000:])
    assert "Traceback" not in done.stderr, done.stderr[-3000:]
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith(f"error: {what} {path} could not be read"), last
    assert "damaged or incomplete" in last
    assert "Writing into" not in done.stderr and "disk" not in last


@pytest.mark.parametrize("command", ["generate", "simulate"])
def test_a_cut_short_land_cover_map_is_named(command, damaged, tmp_path, tiny_model_dir):
    out = tmp_path / "out"
    extra = ["--steps", "1", "--model", tiny_model_dir] if command == "generate" else []
    done = cli(command, "--semantic", damaged["label"], "--random-events", "--seed", "1", "--out", out, *extra)
    assert_names_the_input(done, damaged["label"], "Semantic raster", out)
    assert not out.exists()


def test_a_cut_short_image_is_named(damaged, tmp_path, tiny_model_dir):
    out = tmp_path / "out"
    done = cli("generate", "--semantic", SAMPLES / "houston_label.tif", "--image", damaged["image"], "--random-events",
               "--seed", "1", "--steps", "1", "--model", tiny_model_dir, "--out", out)
    assert_names_the_input(done, damaged["image"], "Image", out)
    assert not out.exists()


@pytest.mark.parametrize("workers", [1, 2])
def test_a_dataset_names_its_cut_short_image(workers, damaged, tmp_path, tiny_model_dir):
    """Read by the samples (in this process, or in worker processes), the image is named as well."""
    out = tmp_path / "ds"
    done = cli("dataset", "--semantic", SAMPLES / "houston_label.tif", "--image", damaged["image"], "--count", "4",
               "--tile", "64", "--steps", "1", "--model", tiny_model_dir, "--workers", workers, "--out", out)
    assert_names_the_input(done, damaged["image"], "Image", out)

"""Shared fixtures: the bundled real OpenEarthMap sample and its class scheme."""

from __future__ import annotations

import shutil
import signal
from pathlib import Path

import numpy as np
import pytest
import rasterio

from changeanywhere_qgis.engine.landcover import ClassScheme

# A shell that starts a job in the background (`make test &` in a script) starts it with Ctrl-C ignored, and an
# ignored signal stays ignored in every child: the Ctrl-C fault tests would then signal programs that cannot hear it.
# A handled signal is reset to the default in a child, so handling it here gives their children Python's own.
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)

REPO = Path(__file__).resolve().parents[1]
SAMPLES = REPO / "changeanywhere_qgis" / "samples"

# The 8 OpenEarthMap classes (code 0 = unknown), as a model manifest lists them.
OEM_MANIFEST = {
    "nodata_code": 0,
    "classes": [
        {"code": 1, "name": "bareland", "color": [128, 0, 0]},
        {"code": 2, "name": "rangeland", "color": [0, 255, 36]},
        {"code": 3, "name": "developed space", "color": [148, 148, 148]},
        {"code": 4, "name": "road", "color": [255, 255, 255]},
        {"code": 5, "name": "tree", "color": [34, 97, 38]},
        {"code": 6, "name": "water", "color": [0, 69, 255]},
        {"code": 7, "name": "agriculture land", "color": [75, 181, 73]},
        {"code": 8, "name": "building", "color": [222, 31, 7]},
    ],
}


@pytest.fixture(scope="session")
def oem_scheme() -> ClassScheme:
    return ClassScheme.from_manifest(OEM_MANIFEST)


@pytest.fixture(scope="session")
def houston_label_path() -> Path:
    return SAMPLES / "houston_label.tif"


@pytest.fixture(scope="session")
def houston_changes_path() -> Path:
    return SAMPLES / "houston_changes.geojson"


@pytest.fixture(scope="session")
def _houston_label_cached(houston_label_path):
    with rasterio.open(houston_label_path) as src:
        return src.read(1), src.transform, src.crs, src.nodata


@pytest.fixture()
def houston_label(_houston_label_cached):
    """(labels uint8 [512, 512], transform, crs, nodata) of the real sample; a fresh array per test."""
    labels, transform, crs, nodata = _houston_label_cached
    return np.array(labels, copy=True), transform, crs, None if nodata is None else int(nodata)


TINY_MODEL = REPO / "tests" / "data" / "tiny_model"


@pytest.fixture(scope="session")
def tiny_model_dir() -> Path:
    """A tiny model package made by `make tiny-model` (model_export, a few training steps) and committed."""
    assert (TINY_MODEL / "model.json").is_file(), "tests/data/tiny_model is missing: run `make tiny-model`"
    return TINY_MODEL


@pytest.fixture(scope="session")
def int8_model_dir(tiny_model_dir, tmp_path_factory) -> Path:
    """A copy of the tiny package with its int8 denoiser, made once per test session by the real quantise command (a
    second or two): the committed packages carry none (the repository's size budget)."""
    pytest.importorskip("onnx")  # onnxruntime.quantization needs it (a development package)
    from model_export.export.quantize import main as quantize

    package = shutil.copytree(tiny_model_dir, tmp_path_factory.mktemp("int8") / "model")
    assert quantize(["--package", str(package), "--tiles", "2", "--timesteps", "3", "--threads", "2"]) == 0
    return package


@pytest.fixture(scope="session")
def houston_image_path() -> Path:
    return SAMPLES / "houston_image.tif"


@pytest.fixture()
def flip_default(monkeypatch):
    """A function that gives a default (e.g. ``flip("DEFAULT_POST_EVENT", "inpaint")``) another value in every loaded module
    of the package that holds it by name, as a quality check that changed it at home would: a test of code that copied
    it at import then sees the change too. Undone after the test."""
    import sys

    def flip(name: str, value) -> None:
        holders = [m for n, m in list(sys.modules.items()) if n.split(".")[0] == "changeanywhere_qgis"
                   and name in getattr(m, "__dict__", {})]
        assert holders, f"no loaded module holds {name}"
        for module in holders:
            monkeypatch.setattr(module, name, value)

    return flip

"""A broken change-detector package is refused on load with the problem named and the fix: a real package (trained a
few steps here), copied and broken as a disk, a hand edit or a mix-up would break it."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pytest
from detector_package import REPO, SAMPLES, detector_package

from changeanywhere_qgis.engine.detection import detect_changes, load_detector
from changeanywhere_qgis.engine.errors import ModelError


@pytest.fixture(scope="session")
def package(tmp_path_factory) -> Path:
    return detector_package(tmp_path_factory.mktemp("detector"))


@pytest.fixture()
def copy(package, tmp_path) -> Path:
    return Path(shutil.copytree(package, tmp_path / "pkg"))


def edit(folder: Path, **keys) -> None:
    path = folder / "detector.json"
    manifest = json.loads(path.read_text())
    manifest.update(keys)
    path.write_text(json.dumps(manifest))


def rehash(folder: Path) -> None:
    """The manifest's hash made to match the graph again (a tampered package with a consistent manifest)."""
    manifest = json.loads((folder / "detector.json").read_text())
    manifest["files"]["detector"]["sha256"] = hashlib.sha256((folder / "detector.onnx").read_bytes()).hexdigest()
    (folder / "detector.json").write_text(json.dumps(manifest))


def test_the_package_loads_and_says_what_it_is(package):
    det = load_detector(package)
    assert det.bands == 3 and det.tile_size == 64 and det.overlap == 16 and 0 < det.threshold < 1
    assert set(det.describe()["scores"]) >= {"levir-cd", "whu-cd"}


def test_missing_graph(copy):
    (copy / "detector.onnx").unlink()
    with pytest.raises(ModelError, match="graph .*detector.onnx is missing. Copy the whole detector folder"):
        load_detector(copy)


def test_corrupt_graph_fails_its_hash(copy):
    data = bytearray((copy / "detector.onnx").read_bytes())
    data[len(data) // 2] ^= 0xFF
    (copy / "detector.onnx").write_bytes(bytes(data))
    with pytest.raises(ModelError, match="does not match the sha256 in detector.json: the file is corrupt"):
        load_detector(copy)


def test_a_graph_onnxruntime_cannot_read(copy):
    (copy / "detector.onnx").write_bytes(b"not an onnx graph")
    rehash(copy)
    with pytest.raises(ModelError, match="onnxruntime cannot load the detector graph detector.onnx"):
        load_detector(copy)


def test_wrong_input_shape_is_named(copy):
    # the manifest says 4 bands, the graph takes 3 (a manifest of another detector)
    manifest = json.loads((copy / "detector.json").read_text())
    edit(copy, input={**manifest["input"], "bands": 4})
    with pytest.raises(ModelError, match="input 'after' takes 3 bands but detector.json says 4|input 'before' takes 3 bands"):
        load_detector(copy)


def test_graph_with_other_inputs(copy):
    onnx = pytest.importorskip("onnx")  # a development package: QGIS 3.40's chroot (make test-qgis-lts) has none
    model = onnx.load(copy / "detector.onnx")
    model.graph.input[0].name = "image"
    for node in model.graph.node:
        node.input[:] = ["image" if n == "before" else n for n in node.input]
    onnx.save(model, copy / "detector.onnx")
    rehash(copy)
    with pytest.raises(ModelError, match=r"takes inputs \['after', 'image'\], the contract says \['before', 'after'\]"):
        load_detector(copy)


@pytest.mark.parametrize("change, words", [
    ({"format": "changeanywhere-detector/9"}, r"Detector format 'changeanywhere-detector/9' .* is not one this plugin reads"),
    ({"threshold": {"value": 1.5}}, r"threshold.value must be a number between 0 and 1, got 1.5"),
    ({"tile": {"size": 64, "overlap": 64}}, r"a whole overlap smaller than the size"),
    ({"input": {"bands": 3, "scale": "x / 65535"}}, r"input.scale 'x / 65535' is not one this plugin knows"),
    ({"files": {"detector": {"path": "../detector.onnx", "sha256": "0"}}}, r"points outside the detector folder"),
])
def test_hand_edited_manifests_are_refused_named(copy, change, words):
    edit(copy, **change)
    with pytest.raises(ModelError, match=words):
        load_detector(copy)


def test_not_a_package(tmp_path, copy):
    with pytest.raises(ModelError, match="does not exist"):
        load_detector(tmp_path / "nowhere")
    with pytest.raises(ModelError, match="is a file; the detector is a package folder"):
        load_detector(copy / "detector.json")
    (copy / "detector.json").write_text("{ not json")
    with pytest.raises(ModelError, match="is not valid JSON"):
        load_detector(copy)
    generator = REPO / "tests" / "data" / "tiny_model"
    with pytest.raises(ModelError, match="holds model.json: that is a generator model package, not a change detector"):
        load_detector(generator)


def test_a_broken_package_writes_nothing(copy, tmp_path):
    (copy / "detector.onnx").write_bytes(b"x")
    image = SAMPLES / "houston_image.tif"
    with pytest.raises(ModelError):
        detect_changes(image, image, copy, tmp_path / "out")
    assert not (tmp_path / "out").exists()

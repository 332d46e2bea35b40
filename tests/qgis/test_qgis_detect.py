"""Detection and detector training as a QGIS user meets them: the Processing algorithms in qgis_process.bin (headless,
the plugin linked into a throw-away profile) and in QGIS's own Processing (outputs loaded and styled)."""

from __future__ import annotations

import importlib.util
import json
import os
from pathlib import Path

import pytest
import rasterio
from detector_package import SAMPLES, detector_package
from qgis_helpers import QGIS_PROCESS, linked_plugin, qgis_process

REPO = Path(__file__).resolve().parents[2]
HOUSTON = SAMPLES / "houston_image.tif"
needs_qgis_process = pytest.mark.skipif(not os.access(QGIS_PROCESS, os.X_OK), reason=f"{QGIS_PROCESS} is missing")
# Training runs from a repository checkout with PyTorch; make test-qgis-lts's tree holds only tests/ and the plugin
# installed from its zip, and its Python has no PyTorch (as in test_qgis_adapt.py): detection is what runs there.
needs_checkout = pytest.mark.skipif(not (REPO / "model_export").is_dir(), reason=f"{REPO} is not a repository checkout")
needs_torch = pytest.mark.skipif(importlib.util.find_spec("torch") is None, reason="PyTorch is not installed for this Python")


@pytest.fixture(scope="session")
def package(tmp_path_factory) -> Path:
    return detector_package(tmp_path_factory.mktemp("detector"))


@pytest.fixture(scope="module")
def plugin_env(tmp_path_factory):
    root = tmp_path_factory.mktemp("qgis_process_detect")
    # qgis_process.bin names its Python from PATH (dependencies.qgis_python): QGIS's own, as in test_qgis_adapt.py
    return linked_plugin(root, REPO / "changeanywhere_qgis", path_first="/usr/bin"), root


def _grid(path):
    with rasterio.open(path) as ds:
        return ds.width, ds.height, ds.transform, ds.crs


@needs_qgis_process
def test_detect_headless_writes_every_output_on_image_a_grid(plugin_env, package):
    env, root = plugin_env
    out = root / "detect"
    ran = qgis_process(["--json", "run", "changeanywhere:detectchanges", "--", f"BEFORE={HOUSTON}", f"AFTER={HOUSTON}",
                        f"DETECTOR={package}", "THRESHOLD=0.3", f"OUTPUT_PROBABILITY={out / 'prob.tif'}",
                        f"OUTPUT_MASK={out / 'mask.tif'}", f"OUTPUT_POLYGONS={out / 'changes.gpkg'}",
                        f"OUTPUT_RECORD={out / 'detection.json'}"], env)
    assert ran.returncode == 0, ran.stdout[-2000:] + ran.stderr[-2000:]
    results = json.loads(ran.stdout)["results"]
    assert results["THRESHOLD_USED"] == 0.3 and 0 <= results["CHANGED_SHARE"] <= 1
    for name in ("prob.tif", "mask.tif"):
        assert _grid(out / name) == _grid(HOUSTON)
    assert (out / "changes.gpkg").is_file() and json.loads((out / "detection.json").read_text())["threshold"] == 0.3


@needs_qgis_process
def test_detect_headless_refuses_a_broken_package_and_mismatched_grids(plugin_env, package, tmp_path):
    env, root = plugin_env
    out = root / "refused"
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "detector.json").write_text((package / "detector.json").read_text())
    ran = qgis_process(["run", "changeanywhere:detectchanges", "--", f"BEFORE={HOUSTON}", f"AFTER={HOUSTON}", f"DETECTOR={broken}",
                        f"OUTPUT_PROBABILITY={out / 'prob.tif'}", f"OUTPUT_MASK={out / 'mask.tif'}"], env)
    assert ran.returncode != 0 and "detector.onnx is missing" in ran.stdout + ran.stderr
    other = REPO / "data" / "train" / "oem" / "images" / "houston_16.tif"
    ran = qgis_process(["run", "changeanywhere:detectchanges", "--", f"BEFORE={HOUSTON}", f"AFTER={other}", f"DETECTOR={package}",
                        f"OUTPUT_PROBABILITY={out / 'prob.tif'}", f"OUTPUT_MASK={out / 'mask.tif'}"], env)
    assert ran.returncode != 0 and "not on image A's grid (size 1024x1024 vs 512x512" in ran.stdout + ran.stderr
    assert not out.exists() or not any(out.iterdir())
    ran = qgis_process(["--json", "run", "changeanywhere:detectchanges", "--", f"BEFORE={HOUSTON}", f"AFTER={other}",
                        f"DETECTOR={package}", "RESAMPLE=true", f"OUTPUT_PROBABILITY={out / 'prob.tif'}",
                        f"OUTPUT_MASK={out / 'mask.tif'}"], env)
    assert ran.returncode == 0, ran.stdout[-2000:] + ran.stderr[-2000:]
    assert _grid(out / "mask.tif") == _grid(HOUSTON)


@needs_qgis_process
@needs_checkout
@needs_torch
def test_train_headless_then_detect_with_its_package(plugin_env, tmp_path_factory):
    """The whole loop in Processing: train on a generated dataset (the child process of QGIS's Python), then detect."""
    from detector_package import generated_dataset

    env, root = plugin_env
    dataset = generated_dataset(tmp_path_factory.mktemp("dataset"))
    out = root / "trained"
    ran = qgis_process(["--json", "run", "changeanywhere:traindetector", "--", f"DATASET={dataset}", "STEPS=2",
                        f"REPOSITORY={REPO}", f"OUTPUT={out}"], env, timeout=600)
    assert ran.returncode == 0, ran.stdout[-3000:] + ran.stderr[-3000:]
    assert json.loads(ran.stdout)["results"]["DETECTOR"] == str(out)
    manifest = json.loads((out / "detector.json").read_text())
    assert manifest["training"]["steps"] == 2 and {"levir-cd", "whu-cd"} <= set(manifest["scores"])
    ran = qgis_process(["--json", "run", "changeanywhere:detectchanges", "--", f"BEFORE={HOUSTON}", f"AFTER={HOUSTON}",
                        f"DETECTOR={out}", f"OUTPUT_PROBABILITY={root / 'loop' / 'prob.tif'}", f"OUTPUT_MASK={root / 'loop' / 'mask.tif'}"], env)
    assert ran.returncode == 0, ran.stdout[-2000:] + ran.stderr[-2000:]
    assert _grid(root / "loop" / "mask.tif") == _grid(HOUSTON)


@needs_qgis_process
@needs_checkout
def test_train_without_torch_says_how_to_get_it(plugin_env, tmp_path):
    env, _ = plugin_env
    blocker = tmp_path / "no_torch"
    blocker.mkdir()
    (blocker / "sitecustomize.py").write_text("import sys\nsys.modules['torch'] = None  # a Python without PyTorch\n")
    blocked = {**env, "PYTHONPATH": os.pathsep.join([str(blocker), env["PYTHONPATH"]])}
    listed = qgis_process(["list"], blocked)
    assert "changeanywhere:traindetector" in listed.stdout and "changeanywhere:detectchanges" in listed.stdout
    ran = qgis_process(["run", "changeanywhere:traindetector", "--", f"DATASET={tmp_path}", "STEPS=1", f"REPOSITORY={REPO}",
                        f"OUTPUT={tmp_path / 'pkg'}"], blocked)
    text = ran.stdout + ran.stderr
    assert ran.returncode != 0 and "Training a change detector needs PyTorch" in text and "lacks torch" in text
    assert "--index-url https://download.pytorch.org/whl/cpu torch" in text and not (tmp_path / "pkg").exists()


def test_detect_in_qgis_loads_and_styles_the_outputs(processing_run, clean_project, package, tmp_path):
    from qgis.core import QgsProcessingContext, QgsProcessingFeedback, QgsProject, QgsSingleBandPseudoColorRenderer

    context = QgsProcessingContext()
    context.setProject(QgsProject.instance())
    out = tmp_path / "out"
    results = processing_run("changeanywhere:detectchanges", {
        "BEFORE": str(HOUSTON), "AFTER": str(HOUSTON), "DETECTOR": str(package),
        "OUTPUT_PROBABILITY": str(out / "prob.tif"), "OUTPUT_MASK": str(out / "mask.tif"), "OUTPUT_POLYGONS": str(out / "changes.gpkg"),
    }, context=context, feedback=QgsProcessingFeedback())
    assert _grid(results["OUTPUT_PROBABILITY"]) == _grid(HOUSTON)
    # what the toolbox does after a run: load the outputs, each through its post-processor (its style)
    for path, details in context.layersToLoadOnCompletion().items():
        from qgis.core import QgsRasterLayer, QgsVectorLayer

        layer = QgsRasterLayer(path, details.name) if path.endswith(".tif") else QgsVectorLayer(path, details.name)
        assert layer.isValid()
        details.postProcessor().postProcessLayer(layer, context, QgsProcessingFeedback())
        if path.endswith("prob.tif"):
            assert isinstance(layer.renderer(), QgsSingleBandPseudoColorRenderer)

"""The "Adapt the model to my area" algorithm in qgis_process.bin: a real adaptation of the tiny package on a crop
of the bundled sample, and, with PyTorch made unimportable for QGIS's Python, the refusal that says how to
install it while the rest of the plugin works."""

from __future__ import annotations

import importlib.util
import json
import os
import re
import sys
from pathlib import Path

import pytest
import rasterio
from qgis_helpers import QGIS_PROCESS, linked_plugin, qgis_process
from rasterio.windows import Window

from changeanywhere_qgis.processing.adaptation import CPU_INDEX, model_packages

REPO = Path(__file__).resolve().parents[2]
SAMPLES = REPO / "changeanywhere_qgis" / "samples"
pytestmark = pytest.mark.skipif(not os.access(QGIS_PROCESS, os.X_OK),
                                reason=f"{QGIS_PROCESS} is missing: apt-get install qgis (Debian's package holds it)")

# Adaptation trains from a repository checkout with PyTorch; make test-qgis-lts's tree holds only tests/ and the
# plugin installed from its zip, and its Python has no PyTorch: there the refusal is what can be tested.
CHECKOUT = (REPO / "model_export").is_dir()
needs_checkout = pytest.mark.skipif(not CHECKOUT, reason=f"{REPO} is not a repository checkout (no model_export/): "
                                    "adaptation runs from one")
needs_torch = pytest.mark.skipif(importlib.util.find_spec("torch") is None, reason="PyTorch is not installed for this Python")

# Put first on PYTHONPATH, this makes `import torch` fail in every Python started with it: QGIS's own and the
# child it runs (a sitecustomize found before the distribution's).
BLOCK_TORCH = "import sys\nsys.modules['torch'] = None  # the test's stand-in for a Python without PyTorch\n"


def crop(src: Path, dst: Path, size: int) -> Path:
    with rasterio.open(src) as s:
        w = Window(0, 0, size, size)
        with rasterio.open(dst, "w", **{**s.profile, "width": size, "height": size, "transform": s.window_transform(w)}) as d:
            d.write(s.read(window=w))
    return dst


@pytest.fixture(scope="module")
def plugin_env(tmp_path_factory):
    root = tmp_path_factory.mktemp("qgis_adapt")
    # qgis_process.bin names its Python from PATH (dependencies.qgis_python); this machine's PATH starts with a
    # pyenv shim, another Python than the one QGIS embeds
    env = linked_plugin(root, REPO / "changeanywhere_qgis", path_first="/usr/bin")
    pair = (crop(SAMPLES / "houston_label.tif", root / "map.tif", 256), crop(SAMPLES / "houston_image.tif", root / "image.tif", 256))
    return env, root, pair


def adapt_args(pair, out: Path, model: Path) -> list[str]:
    return ["--json", "run", "changeanywhere:adaptmodel", "--", f"SEMANTIC={pair[0]}", f"IMAGE={pair[1]}",
            f"MODEL={model}", "STEPS=3", "SEED=1", f"OUTPUT={out}"]


@needs_checkout
@needs_torch
def test_the_algorithm_adapts_the_model_end_to_end(plugin_env, tiny_model_dir):
    """The linked plugin finds the checkout above it; the child's output becomes the algorithm's result."""
    env, root, pair = plugin_env
    out = root / "models" / "mine"
    # the tiny package predates `architecture`: it is read back with its recipe
    ran = qgis_process([*adapt_args(pair, out, tiny_model_dir), f"CONFIG={REPO / 'model_export' / 'configs' / 'tiny.toml'}",
                        "DECODER_STEPS=2", "KEEP=1"], env, timeout=600)
    assert ran.returncode == 0, ran.stdout[-3000:] + ran.stderr[-3000:]
    assert json.loads(ran.stdout)["results"]["MODEL"] == str(out)
    doc = json.loads((out / "model.json").read_text())
    assert doc["adaptation"]["steps"] == 3 and doc["adaptation"]["base_model"]["name"] == "ChangeAnywhere tiny test model"
    assert doc["adaptation"]["decoder"]["steps"] == 2  # the decoder step ran, whether or not the block kept it
    assert doc["adaptation"]["kept"] == {"rule": "last step", "step": 3}  # KEEP=1: the last step's denoiser
    assert model_packages(out.parent) == [out]


@needs_checkout
def test_without_pytorch_it_refuses_with_the_install_command_and_the_rest_works(plugin_env, tiny_model_dir, tmp_path):
    env, root, pair = plugin_env
    blocker = tmp_path / "no_torch"
    blocker.mkdir()
    (blocker / "sitecustomize.py").write_text(BLOCK_TORCH)
    blocked = {**env, "PYTHONPATH": os.pathsep.join([str(blocker), env["PYTHONPATH"]])}
    out = tmp_path / "never"
    # the checkout named: under make test-qgis-lts the plugin is the installed zip, found above no checkout
    ran = qgis_process([*adapt_args(pair, out, tiny_model_dir), f"REPOSITORY={REPO}"], blocked)
    text = ran.stdout + ran.stderr
    assert ran.returncode != 0
    assert "lacks torch" in text
    # the command for QGIS's own Python, by path, into the folder the plugin puts on the child's path
    command = re.search(r"^ +(\S+) -m pip install .*--target (\S+) --upgrade --index-url (\S+) torch$", text, re.M)
    assert command, text
    assert command[1].startswith("/usr/bin/python3") and command[3] == CPU_INDEX
    # QGIS's Python is the one these tests run on (Debian's): the folder is named by its version
    assert command[2].endswith(f"changeanywhere-libs/py{sys.version_info.major}.{sys.version_info.minor}")
    assert not out.exists() and not Path(f"{out}.adapt-run").exists()
    # the plugin's other algorithms do not need PyTorch
    info = qgis_process(["--json", "run", "changeanywhere:modelinformation", "--", f"MODEL={tiny_model_dir}", "DEVICE=1"], blocked)
    assert info.returncode == 0, info.stdout[-2000:] + info.stderr[-2000:]
    assert json.loads(info.stdout)["results"]["MODEL_NAME"].startswith("ChangeAnywhere tiny test model")


@needs_checkout
@needs_torch
def test_cancel_stops_the_training_with_a_checkpoint_that_resume_goes_on_from(processing_run, tiny_model_dir, tmp_path):
    """In QGIS's process (Processing from Python): Cancel while the bar runs sends the child Ctrl-C; it leaves a
    checkpoint and no package, and the same run with "Go on with an interrupted run" finishes it."""
    import torch
    from qgis.core import QgsProcessingException, QgsProcessingFeedback

    class CancelWhileTraining(QgsProcessingFeedback):
        def setProgressText(self, text):
            super().setProgressText(text)
            if "step=" in text:
                self.cancel()

    pair = (crop(SAMPLES / "houston_label.tif", tmp_path / "map.tif", 256), crop(SAMPLES / "houston_image.tif", tmp_path / "image.tif", 256))
    out = tmp_path / "mine"
    params = {"SEMANTIC": str(pair[0]), "IMAGE": str(pair[1]), "MODEL": str(tiny_model_dir), "STEPS": 100000,
              "CONFIG": str(REPO / "model_export" / "configs" / "tiny.toml"), "OUTPUT": str(out)}
    feedback = CancelWhileTraining()
    with pytest.raises(QgsProcessingException, match="Cancelled: the checkpoint is in"):
        processing_run("changeanywhere:adaptmodel", params, feedback=feedback)
    ckpt = torch.load(Path(f"{out}.adapt-run") / "last.pt", weights_only=False)
    assert ckpt["step"] >= 1 and not ckpt["finished"] and not out.exists()
    done = processing_run("changeanywhere:adaptmodel", {**params, "STEPS": ckpt["step"] + 2, "RESUME": True},
                          feedback=QgsProcessingFeedback())
    assert done["MODEL"] == str(out)
    assert json.loads((out / "model.json").read_text())["adaptation"]["steps"] == ckpt["step"] + 2


def test_without_a_checkout_it_says_how_to_get_one(plugin_env, tiny_model_dir, tmp_path):
    """A "Repository folder" that is no checkout is refused by name, not replaced by the checkout the plugin sits in."""
    env, root, pair = plugin_env
    not_a_checkout = tmp_path / "somewhere"
    not_a_checkout.mkdir()
    out = tmp_path / "never"
    ran = qgis_process([*adapt_args(pair, out, tiny_model_dir), f"REPOSITORY={not_a_checkout}"], env)
    assert ran.returncode != 0
    assert f"{not_a_checkout} holds no model_export/adapt.py" in ran.stdout + ran.stderr
    assert not out.exists() and not Path(f"{out}.adapt-run").exists()

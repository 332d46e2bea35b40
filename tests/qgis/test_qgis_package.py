"""`make package`: the installable zip holds the plugin folder (real metadata.txt, licence, bundled model),
no tests or caches, and QGIS (qgis_process) finds the provider in the unpacked plugin."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from qgis_helpers import QGIS_PROCESS, qgis_process, qgis_process_env

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def plugin_zip(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    ran = subprocess.run([sys.executable, str(REPO / "scripts" / "package_plugin.py"), "--out", str(out)],
                         cwd=REPO, capture_output=True, text=True, timeout=300)
    assert ran.returncode == 0, ran.stderr
    version = next(line.split("=", 1)[1].strip() for line in (REPO / "metadata.txt").read_text().splitlines()
                   if line.startswith("version="))
    path = out / f"changeanywhere_qgis-{version}.zip"
    assert path.is_file()
    return path


def test_make_package_target_exists():
    ran = subprocess.run(["make", "-n", "package"], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert ran.returncode == 0 and "package_plugin.py" in ran.stdout


def test_zip_contents(plugin_zip, tmp_path):
    with zipfile.ZipFile(plugin_zip) as zf:
        names = zf.namelist()
        zf.extractall(tmp_path)
    assert {n.split("/")[0] for n in names} == {"changeanywhere_qgis"}
    root = tmp_path / "changeanywhere_qgis"
    for required in ("__init__.py", "plugin.py", "icon.png", "LICENSE", "metadata.txt", "processing/provider.py",
                     "gui/dock.py", "engine/pipeline.py", "samples/houston_label.tif", "samples/README.md"):
        assert (root / required).is_file(), required
    metadata = root / "metadata.txt"
    assert not metadata.is_symlink() and metadata.read_text() == (REPO / "metadata.txt").read_text()
    assert "GNU GENERAL PUBLIC LICENSE" in (root / "LICENSE").read_text()
    for name in names:
        parts = name.split("/")
        assert "__pycache__" not in parts and "tests" not in parts, name
        assert not name.endswith((".pyc", ".aux.xml")) and not any(p.startswith(".") for p in parts), name
    if (REPO / "changeanywhere_qgis" / "models" / "default" / "model.json").is_file():
        manifest = root / "models" / "default" / "model.json"
        assert manifest.is_file(), "the bundled model is missing from the zip"
        assert any(n.startswith("changeanywhere_qgis/models/default/") and n.endswith(".onnx") for n in names)


@pytest.mark.skipif(not os.access(QGIS_PROCESS, os.X_OK), reason=f"{QGIS_PROCESS} is missing: apt-get install qgis")
def test_qgis_finds_the_provider_in_the_unpacked_zip(plugin_zip, tmp_path):
    plugins, home = tmp_path / "plugins", tmp_path / "home"
    plugins.mkdir()
    home.mkdir()
    with zipfile.ZipFile(plugin_zip) as zf:
        zf.extractall(plugins)
    env = qgis_process_env(plugins, home)
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    enabled = qgis_process(["plugins", "enable", "changeanywhere_qgis"], env)
    assert enabled.returncode == 0, enabled.stdout + enabled.stderr
    listed = qgis_process(["list"], env)
    assert "changeanywhere:generatechangesample" in listed.stdout
    assert "changeanywhere:modelinformation" in listed.stdout

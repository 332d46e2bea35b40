"""qgis_process.bin, headless: the plugin folder linked into a throw-away profile's plugin path (the
development set-up), enabled, its algorithms listed and run."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from qgis_helpers import QGIS_PROCESS, assert_same_grid, linked_plugin, qgis_process

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.skipif(not os.access(QGIS_PROCESS, os.X_OK),
                                reason=f"{QGIS_PROCESS} is missing: apt-get install qgis (Debian's package holds it)")


@pytest.fixture(scope="module")
def linked_plugin_env(tmp_path_factory):
    root = tmp_path_factory.mktemp("qgis_process")
    return linked_plugin(root, REPO / "changeanywhere_qgis"), root


def test_linked_plugin_lists_its_algorithms(linked_plugin_env):
    env, _ = linked_plugin_env
    listed = qgis_process(["list"], env)
    assert listed.returncode == 0, listed.stderr
    for alg in ("changeanywhere:generatechangesample", "changeanywhere:simulatechangeevents", "changeanywhere:modelinformation"):
        assert alg in listed.stdout


def test_generate_headless(linked_plugin_env, tiny_model_dir, houston_label_path, houston_image_path,
                           houston_changes_path, label_layer_info):
    env, root = linked_plugin_env
    out = root / "generate"
    ran = qgis_process([
        "--json", "run", "changeanywhere:generatechangesample", "--",
        f"SEMANTIC={houston_label_path}", f"IMAGE={houston_image_path}", f"CHANGES={houston_changes_path}",
        "CLASS_FIELD=target", f"MODEL={tiny_model_dir}", "STEPS=2", "SEED=4", "DEVICE=1",
        f"OUTPUT_PRE_IMAGE={out / 'pre.tif'}", f"OUTPUT_POST_IMAGE={out / 'post.tif'}",
        f"OUTPUT_PRE_MAP={out / 'pre_map.tif'}", f"OUTPUT_POST_MAP={out / 'post_map.tif'}",
        f"OUTPUT_CHANGE_MASK={out / 'mask.tif'}",
    ], env)
    assert ran.returncode == 0, ran.stdout[-2000:] + ran.stderr[-2000:]
    results = json.loads(ran.stdout)["results"]
    assert results["DEVICE"] == "cpu" and results["SEED"] == 4
    for name in ("pre", "post", "pre_map", "post_map", "mask"):
        assert results[{"pre": "OUTPUT_PRE_IMAGE", "post": "OUTPUT_POST_IMAGE", "pre_map": "OUTPUT_PRE_MAP",
                        "post_map": "OUTPUT_POST_MAP", "mask": "OUTPUT_CHANGE_MASK"}[name]] == str(out / f"{name}.tif")
        assert_same_grid(out / f"{name}.tif", label_layer_info)


def test_generate_with_a_style_image_headless(linked_plugin_env, tiny_model_dir, houston_label_path, label_layer_info):
    # the style is a PNG of another place and sensor, not on the map's grid: an appearance reference
    style = REPO / "data" / "whu-cd" / "B" / "000121_0512_0512.png"
    env, root = linked_plugin_env
    out = root / "styled"
    ran = qgis_process([
        "--json", "run", "changeanywhere:generatechangesample", "--",
        f"SEMANTIC={houston_label_path}", "RANDOM_EVENTS=true", f"STYLE={style}", "STYLE_STRENGTH=0.8",
        f"MODEL={tiny_model_dir}", "STEPS=2", "SEED=4", "DEVICE=1",
        f"OUTPUT_PRE_IMAGE={out / 'pre.tif'}", f"OUTPUT_POST_IMAGE={out / 'post.tif'}",
        f"OUTPUT_POST_MAP={out / 'post_map.tif'}", f"OUTPUT_CHANGE_MASK={out / 'mask.tif'}", f"OUTPUT_RECORD={out / 'sample.json'}",
    ], env)
    assert ran.returncode == 0, ran.stdout[-2000:] + ran.stderr[-2000:]
    record = json.loads((out / "sample.json").read_text())
    assert record["style"]["path"] == str(style) and record["style"]["strength"] == 0.8
    assert_same_grid(out / "post.tif", label_layer_info)

    ran = qgis_process([
        "run", "changeanywhere:generatechangesample", "--", f"SEMANTIC={houston_label_path}", "RANDOM_EVENTS=true",
        f"STYLE={houston_label_path}", f"MODEL={tiny_model_dir}", "STEPS=2", "DEVICE=1",
        f"OUTPUT_PRE_IMAGE={root / 'bad-style' / 'pre.tif'}", f"OUTPUT_POST_IMAGE={root / 'bad-style' / 'post.tif'}",
        f"OUTPUT_POST_MAP={root / 'bad-style' / 'post_map.tif'}", f"OUTPUT_CHANGE_MASK={root / 'bad-style' / 'mask.tif'}",
    ], env)
    assert ran.returncode != 0 and "needs 3 or more" in ran.stdout + ran.stderr
    assert not (root / "bad-style").exists() or not any((root / "bad-style").iterdir())


def test_bad_input_fails_with_the_engine_message(linked_plugin_env, tiny_model_dir, houston_image_path):
    env, root = linked_plugin_env
    ran = qgis_process([
        "run", "changeanywhere:simulatechangeevents", "--", f"SEMANTIC={houston_image_path}", "RANDOM_EVENTS=true",
        f"MODEL={tiny_model_dir}", f"OUTPUT_POST_MAP={root / 'bad' / 'p.tif'}", f"OUTPUT_CHANGE_MASK={root / 'bad' / 'm.tif'}",
        f"OUTPUT_CHANGES={root / 'bad' / 'c.gpkg'}",
    ], env)
    assert ran.returncode != 0
    assert "remap" in ran.stdout + ran.stderr
    assert not (root / "bad").exists() or not any((root / "bad").iterdir())


def test_simulate_and_model_information_headless(linked_plugin_env, tiny_model_dir, houston_label_path,
                                                 houston_changes_path, label_layer_info):
    from qgis.core import QgsVectorLayer

    env, root = linked_plugin_env
    out = root / "simulate"
    ran = qgis_process([
        "--json", "run", "changeanywhere:simulatechangeevents", "--", f"SEMANTIC={houston_label_path}",
        f"CHANGES={houston_changes_path}", "CLASS_FIELD=target", f"MODEL={tiny_model_dir}", "SEED=9",
        f"OUTPUT_POST_MAP={out / 'post_map.tif'}", f"OUTPUT_CHANGE_MASK={out / 'mask.tif'}",
        f"OUTPUT_CHANGES={out / 'changes.gpkg'}",
    ], env)
    assert ran.returncode == 0, ran.stdout[-2000:] + ran.stderr[-2000:]
    results = json.loads(ran.stdout)["results"]
    assert results["EVENTS"] == 2 and results["SEED"] == 9
    assert_same_grid(out / "post_map.tif", label_layer_info)
    assert_same_grid(out / "mask.tif", label_layer_info)
    changes = QgsVectorLayer(str(out / "changes.gpkg"), "changes", "ogr")
    assert changes.isValid() and changes.featureCount() > 0 and changes.crs().authid() == label_layer_info[0]

    ran = qgis_process(["--json", "run", "changeanywhere:modelinformation", "--", f"MODEL={tiny_model_dir}", "DEVICE=0"], env)
    assert ran.returncode == 0, ran.stderr[-2000:]
    results = json.loads(ran.stdout)["results"]
    assert results["CLASS_COUNT"] == 8 and results["DEVICE_USED"] in ("cpu", "cuda") and results["DEVICE_NOTE"]

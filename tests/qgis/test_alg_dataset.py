"""Processing algorithm "Generate change-detection dataset" through processing.run, on the real sample."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import rasterio
from qgis.core import QgsProcessingException


def test_listed_by_the_provider(provider):
    alg = next(a for a in provider.algorithms() if a.id() == "changeanywhere:generatechangedataset")
    assert alg.displayName() == "Generate change-detection dataset" and "LEVIR-CD" in alg.shortHelpString()


def test_dataset_through_processing(processing_run, tiny_model_dir, houston_label_path, houston_image_path, tmp_path):
    out = tmp_path / "ds"
    params = {"SEMANTIC": [str(houston_label_path)], "IMAGES": [str(houston_image_path)], "COUNT": 3, "TILE": 64,
              "LAYOUT": 2, "FORMAT": 1, "SEED": 4, "MODEL": str(tiny_model_dir), "STEPS": 1, "DEVICE": 1,
              "ETA": 0.5, "GUIDANCE": 1.5, "WORKERS": 1, "OUTPUT": str(out)}
    result = processing_run("changeanywhere:generatechangedataset", params)
    assert result["COUNT"] == 3 and result["GENERATED"] == 3 and result["SKIPPED"] == 0
    assert result["OUTPUT"] == str(out.resolve())
    lines = [json.loads(x) for x in (out / "manifest.jsonl").read_text().splitlines()]
    assert len(lines) == 3 and (out / "README.md").is_file()
    assert "--eta 0.5 --guidance 1.5" in (out / "README.md").read_text()  # the sampler options reach the engine
    for folder in ("A", "B", "label", "im1", "im2", "label1", "label2"):
        assert len(list((out / folder).glob("*.tif"))) == 3
    with rasterio.open(out / lines[0]["files"]["B"]) as ds, rasterio.open(houston_label_path) as src:
        assert ds.crs == src.crs and ds.width == 64  # GeoTIFF tiles keep the georeferencing
    again = processing_run("changeanywhere:generatechangedataset", params)  # resumes: nothing left to do
    assert again["GENERATED"] == 0 and again["SKIPPED"] == 3


def test_engine_errors_surface(processing_run, tiny_model_dir, houston_label_path, tmp_path):
    with pytest.raises(QgsProcessingException, match="multiple of 8"):
        processing_run("changeanywhere:generatechangedataset", {
            "SEMANTIC": [str(houston_label_path)], "COUNT": 2, "TILE": 60, "MODEL": str(tiny_model_dir),
            "WORKERS": 1, "OUTPUT": str(tmp_path / "bad")})
    assert not (tmp_path / "bad").exists()


def test_split_folders_second_mapping_and_shares_reach_the_engine(processing_run, tiny_model_dir, houston_label_path, tmp_path):
    mapping = tmp_path / "second.json"
    mapping.write_text(json.dumps({"bareland": "ground", "rangeland": "low vegetation", "developed space": "ground",
                                   "road": "building", "tree": "tree", "water": "water", "agriculture land": "low vegetation",
                                   "building": "building"}))
    out = tmp_path / "all"
    params = {"SEMANTIC": [str(houston_label_path)], "COUNT": 5, "TILE": 64, "LAYOUT": 4, "SEED": 2, "MODEL": str(tiny_model_dir),
              "STEPS": 1, "DEVICE": 1, "WORKERS": 1, "SPLIT_FOLDERS": True, "SPLIT_TRAIN": 0.6, "SPLIT_VAL": 0.0,
              "SPLIT_TEST": 0.4, "SECOND_CLASSES": str(mapping), "SKIP_HIDDEN_CHANGE": True, "OUTPUT": str(out)}
    result = processing_run("changeanywhere:generatechangedataset", params)
    spec = json.loads((out / "dataset.json").read_text())["settings"]
    assert spec["layout"] == "all" and spec["split_folders"] and spec["split_fractions"] == [0.6, 0.0, 0.4]
    assert spec["second_classes"] == str(mapping) and spec["skip_hidden_change"]
    records = [json.loads(x) for x in (out / "manifest.jsonl").read_text().splitlines()]
    assert len(records) == result["COUNT"] >= 2 and not (out / "A").exists() and not (out / "val").exists()
    for r in records:
        for folder in ("A", "label", "label1", "label2_wo_cm", "label1_full", "class1"):
            assert (out / r["split"] / folder / f"{r['name']}.png").is_file()
    card = (out / "README.md").read_text()
    assert "--split-folders" in card and f"--second-classes {mapping}" in card and "| road | building |" in card


STYLE = Path(__file__).resolve().parents[2] / "data" / "whu-cd" / "B" / "000121_0512_0512.png"


def test_appearance_shifts_and_the_style_reach_the_engine(processing_run, tiny_model_dir, houston_label_path, tmp_path):
    out = tmp_path / "shifted"
    result = processing_run("changeanywhere:generatechangedataset", {
        "SEMANTIC": [str(houston_label_path)], "COUNT": 2, "TILE": 64, "SEED": 4, "MODEL": str(tiny_model_dir), "STEPS": 1,
        "DEVICE": 1, "WORKERS": 1, "APPEARANCE_SHIFT": True, "STYLE": str(STYLE), "STYLE_STRENGTH": 0.5, "OUTPUT": str(out)})
    assert result["GENERATED"] == 2
    lines = [json.loads(x) for x in (out / "manifest.jsonl").read_text().splitlines()]
    assert all(set(r["appearance_shift"]) == {"colour", "brightness", "haze", "haze_colour", "shift"} for r in lines)
    card = (out / "README.md").read_text()
    assert "random appearance shift" in card and " --appearance-shift " in card and "--no-appearance-shift" not in card
    spec = json.loads((out / "dataset.json").read_text())
    assert spec["style"]["path"] == str(STYLE) and spec["settings"]["style_strength"] == 0.5


def test_appearance_shifts_are_off_by_default_and_can_be_ticked(processing_run, tiny_model_dir, houston_label_path, tmp_path):
    common = {"SEMANTIC": [str(houston_label_path)], "COUNT": 2, "TILE": 64, "SEED": 4, "MODEL": str(tiny_model_dir), "STEPS": 1,
              "DEVICE": 1, "WORKERS": 1}
    processing_run("changeanywhere:generatechangedataset", {**common, "OUTPUT": str(tmp_path / "default")})
    processing_run("changeanywhere:generatechangedataset", {**common, "APPEARANCE_SHIFT": True, "OUTPUT": str(tmp_path / "on")})
    default, on = ([json.loads(x) for x in (tmp_path / name / "manifest.jsonl").read_text().splitlines()] for name in ("default", "on"))
    assert not any("appearance_shift" in r for r in default) and all("appearance_shift" in r for r in on)  # check U5
    assert "--no-appearance-shift" in (tmp_path / "default" / "README.md").read_text()

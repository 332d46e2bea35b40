"""python -m model_export.evaluation.dataset_report: the report of a small dataset without torch, and its command line."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from changeanywhere_qgis.engine.dataset import DatasetSettings, generate_dataset
from changeanywhere_qgis.engine.errors import InputError
from model_export.evaluation.dataset_report import EvaluateSettings, evaluate_dataset

REPO = Path(__file__).resolve().parents[3]


def test_report_without_torch(tmp_path, tiny_model_dir, houston_label_path):
    ds = tmp_path / "ds"
    generate_dataset(houston_label_path, ds, DatasetSettings(count=3, tile=128, steps=2, seed=4), model=tiny_model_dir, workers=1)
    result = evaluate_dataset(ds, report=tmp_path / "q" / "quality.md", settings=EvaluateSettings(use_torch=False, command="x"))
    text = (tmp_path / "q" / "quality.md").read_text()
    assert "Measured by `x`." in text and "## Unchanged land stays consistent" in text and "## No seams" in text
    assert "skipped: --no-torch" in text and "![samples](figures/samples.jpg)" in text
    assert (tmp_path / "q" / "figures" / "samples.jpg").is_file() and (tmp_path / "q" / "figures" / "results.json").is_file()
    r = result["results"]["datasets"]["ds"]
    assert r["maps_rebuilt_mismatch"] == 0 and r["seams"]["applies"] and r["seams"]["t2"]["n"] == 3
    assert r["consistency"]["unchanged"]["psnr"]["n"] == 3
    # new notes without measuring again
    again = evaluate_dataset(ds, report=tmp_path / "q" / "quality.md",
                             settings=EvaluateSettings(rerender=True, notes=["**Note.**"], command="y"))
    text2 = (tmp_path / "q" / "quality.md").read_text()
    assert "Measured by `x`; this text written by `y`." in text2 and "**Note.**" in text2
    assert again["results"]["datasets"]["ds"]["consistency"] == r["consistency"]
    with pytest.raises(InputError, match="not a dataset"):
        evaluate_dataset(tmp_path / "q")


def test_several_datasets_are_reported_each_and_together(tmp_path, tiny_model_dir, houston_label_path):
    """One dataset per source: each gets its own rows, and the overall figures pool their samples."""
    for name, seed, count in (("oem", 1, 2), ("more", 2, 3)):
        generate_dataset(houston_label_path, tmp_path / name, DatasetSettings(count=count, tile=64, steps=1, seed=seed),
                         model=tiny_model_dir, workers=1)
    result = evaluate_dataset([tmp_path / "oem", tmp_path / "more"], report=tmp_path / "r.md",
                              settings=EvaluateSettings(use_torch=False))
    r = result["results"]
    assert list(r["datasets"]) == ["oem", "more"] and r["samples"] == 5
    n = {name: d["consistency"]["unchanged"]["psnr"]["n"] for name, d in r["datasets"].items()}
    assert r["overall"]["consistency"]["unchanged"]["psnr"]["n"] == sum(n.values())
    text = (tmp_path / "r.md").read_text()
    assert "| oem | unchanged |" in text and "| more | unchanged |" in text and "| **all** | unchanged |" in text


def test_evaluate_command_writes_the_report_and_refuses_a_non_dataset(tmp_path, tiny_model_dir, houston_label_path):
    ds = tmp_path / "ds"
    generate_dataset(houston_label_path, ds, DatasetSettings(count=2, tile=64, steps=1, seed=1), model=tiny_model_dir, workers=1)
    run = lambda *a: subprocess.run([sys.executable, "-m", "model_export.evaluation.dataset_report", *a], cwd=REPO, capture_output=True, text=True)  # noqa: E731
    done = run(str(ds), "--no-torch", "--report", str(tmp_path / "r.md"))
    assert done.returncode == 0, done.stderr
    assert "Measured by `python -m model_export.evaluation.dataset_report " in (tmp_path / "r.md").read_text()
    bad = run(str(tmp_path))
    assert bad.returncode == 2 and "error:" in bad.stderr and "not a dataset" in bad.stderr and "Traceback" not in bad.stderr


def test_comparing_pre_events_needs_real_ones(tmp_path, tiny_model_dir, houston_label_path, houston_image_path):
    ds = tmp_path / "ds"
    generate_dataset(houston_label_path, ds, DatasetSettings(count=2, tile=64, steps=1, pre_event="redrawn"), images=houston_image_path,
                     model=tiny_model_dir, workers=1)
    with pytest.raises(InputError, match="already hold redrawn ones"):
        evaluate_dataset(ds, report=tmp_path / "r.md", settings=EvaluateSettings(compare_pre_event=True))



def test_the_stored_arm_is_named_as_made_and_mixed_arms_are_refused(tmp_path, tiny_model_dir, houston_label_path, houston_image_path):
    """The change-detection net trained on the datasets' own images is one arm, named after how they were made."""
    from model_export.evaluation.dataset_report import _open_dataset, _stored_arm

    made = {}
    for name, pre, shift in (("real", "real", False), ("redrawn-shifted", "redrawn", True)):
        generate_dataset(houston_label_path, tmp_path / name, DatasetSettings(count=2, tile=64, steps=1, pre_event=pre, appearance_shift=shift),
                         images=houston_image_path, model=tiny_model_dir, workers=1)
        made[name] = _open_dataset(tmp_path / name)[1]
    assert _stored_arm([made["real"]]) == "real"
    assert _stored_arm([made["redrawn-shifted"]]) == "redrawn, B appearance-shifted"
    with pytest.raises(InputError, match=r"made in different ways \(real; redrawn, B appearance-shifted\)"):
        evaluate_dataset([tmp_path / "real", tmp_path / "redrawn-shifted"], report=tmp_path / "r.md",
                         settings=EvaluateSettings(use_segmentation=False, few_shot_k=()))
    assert not (tmp_path / "r.md").exists()  # refused before anything was trained or written
    with pytest.raises(InputError, match="--nets-per-arm must be at least 1, not 0"):
        evaluate_dataset(tmp_path / "real", report=tmp_path / "r.md", settings=EvaluateSettings(nets_per_arm=0))

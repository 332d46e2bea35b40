"""`python -m model_export.detector train` for real: a generated dataset, real steps, real signals. Ctrl-C leaves a
checkpoint from which --resume ends exactly where an uninterrupted run ends; the package records its threshold, data
and scores; fine-tuning on real pairs marks that set as not held out; bad inputs are one error line."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from detector_package import REPO, TRAIN_ARGS, generated_dataset, run

from changeanywhere_qgis.engine.detection import load_detector

ARGS = [a for a in TRAIN_ARGS]
ARGS[ARGS.index("--steps") + 1] = "40"


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    return generated_dataset(tmp_path_factory.mktemp("dataset"))


def train(dataset, out, *extra, test_sets=("data/whu-cd",)):
    return run(["-m", "model_export.detector", "train", "--dataset", dataset, "--out", out, *ARGS, "--test-sets", *test_sets, *extra])


def weights(out: Path) -> dict:
    return torch.load(out.with_name(out.name + ".training") / "checkpoint.pt", weights_only=False)["net"]


def test_ctrl_c_checkpoints_and_resume_ends_where_an_uninterrupted_run_ends(dataset, tmp_path):
    whole = tmp_path / "whole"
    done = train(dataset, whole, "--checkpoint-every", "5")
    assert done.returncode == 0, done.stderr[-3000:]

    cut = tmp_path / "cut"
    command = [sys.executable, "-m", "model_export.detector", "train", "--dataset", dataset, "--out", cut, *ARGS,
               "--test-sets", "data/whu-cd", "--checkpoint-every", "5"]
    proc = subprocess.Popen(list(map(str, command)), cwd=REPO, stderr=subprocess.PIPE, text=True,
                            env={**__import__("os").environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"})
    checkpoint = tmp_path / "cut.training" / "checkpoint.pt"
    deadline = time.monotonic() + 120
    while not checkpoint.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err[-2000:]
    assert "rerun the same command with --resume" in err and not cut.exists()
    stopped_at = torch.load(checkpoint, weights_only=False)["step"]
    assert 0 < stopped_at < 40

    again = train(dataset, cut, "--checkpoint-every", "5")
    assert again.returncode == 2 and "Pass --resume to go on from it" in again.stderr
    resumed = train(dataset, cut, "--checkpoint-every", "5", "--resume")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    a, b = weights(whole), weights(cut)
    assert all(torch.equal(a[k], b[k]) for k in a), "the resumed run must end with the uninterrupted run's weights"
    assert json.loads((cut / "detector.json").read_text())["threshold"] == json.loads((whole / "detector.json").read_text())["threshold"]


def test_the_package_records_its_threshold_data_and_scores(dataset, tmp_path):
    out = tmp_path / "pkg"
    done = train(dataset, out, test_sets=("data/levir-cd", "data/whu-cd"))
    assert done.returncode == 0, done.stderr[-3000:]
    manifest = json.loads((out / "detector.json").read_text())
    assert manifest["format"] == "changeanywhere-detector/1"
    assert manifest["threshold"]["value"] in [round(0.05 * i, 2) for i in range(1, 20)]
    assert "validation split" in manifest["threshold"]["chosen_on"]
    data = manifest["training"]["datasets"][0]
    assert data["samples"] == {"train": 6, "val": 2, "test": 2}
    assert data["command"].startswith("python -m changeanywhere_qgis dataset ") and "--count 10" in data["command"]
    assert manifest["export"]["max_difference_from_torch"] <= 1e-4
    for name, pairs in (("levir-cd", 15), ("whu-cd", 12)):
        row = manifest["scores"][name]
        assert row["pairs"] == pairs and row["held_out"] and {"detector", "everything_changed", "image_difference"} <= set(row)
    assert manifest["scores"]["levir-cd"]["everything_changed"]["recall"] == 1.0
    assert load_detector(out).threshold == manifest["threshold"]["value"]


def test_finetuning_on_real_pairs_marks_that_set_as_seen(dataset, tmp_path):
    out = tmp_path / "tuned"
    done = train(dataset, out, "--finetune", "data/whu-cd", "--finetune-steps", "2", test_sets=("data/levir-cd", "data/whu-cd"))
    assert done.returncode == 0, done.stderr[-3000:]
    manifest = json.loads((out / "detector.json").read_text())
    assert manifest["training"]["finetune"]["pairs"] == 12 and manifest["training"]["finetune"]["steps"] == 2
    assert manifest["scores"]["whu-cd"]["held_out"] is False and manifest["scores"]["levir-cd"]["held_out"] is True


def test_bad_inputs_are_one_error_line(dataset, tmp_path):
    done = train(tmp_path, tmp_path / "x")
    assert done.returncode == 2 and "holds no manifest.jsonl" in done.stderr and "Traceback" not in done.stderr
    done = train(dataset, tmp_path / "y", "--finetune", str(tmp_path))
    assert done.returncode == 2 and "not a folder of real pairs in LEVIR-CD's layout" in done.stderr
    done = train(dataset, tmp_path / "z", "--resume")
    assert done.returncode == 2 and "no checkpoint" in done.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_any_layout_the_dataset_command_writes_trains(tmp_path):
    # SECOND's layout in one folder per split: the pairs are im1/im2, the change where label1_full and label2_full differ
    from detector_package import SAMPLES

    ds = tmp_path / "second"
    made = run(["-m", "changeanywhere_qgis", "dataset", "--semantic", SAMPLES / "houston_label.tif", "--image",
                SAMPLES / "houston_image.tif", "--model", REPO / "tests" / "data" / "tiny_model", "--count", "10", "--tile", "64",
                "--steps", "2", "--workers", "1", "--layout", "second", "--split-folders", "--out", ds])
    assert made.returncode == 0, made.stderr[-2000:]
    assert (ds / "train" / "im1").is_dir() and not (ds / "A").exists()
    done = run(["-m", "model_export.detector", "train", "--dataset", ds, "--out", tmp_path / "pkg", *TRAIN_ARGS, "--test-sets"])
    assert done.returncode == 0, done.stderr[-3000:]
    manifest = json.loads((tmp_path / "pkg" / "detector.json").read_text())
    assert manifest["training"]["datasets"][0]["samples"]["train"] > 0 and manifest["scores"] == {
        "note": manifest["scores"]["note"]}

"""A small real change-detector package for the tests: a dataset of 10 generated pairs (the tiny model, 2 steps), a
few training steps of `python -m model_export.detector train` and its export, made once per test session."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SAMPLES = REPO / "changeanywhere_qgis" / "samples"
_MADE: dict[str, Path] = {}


def run(args: list, timeout: float = 600, **kw) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, *map(str, args)], cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout, **kw)


def generated_dataset(root: Path) -> Path:
    """10 generated 64 px pairs in the LEVIR-CD layout (the tiny model: quick, not good)."""
    if "dataset" not in _MADE:
        out = root / "dataset"
        done = run(["-m", "changeanywhere_qgis", "dataset", "--semantic", SAMPLES / "houston_label.tif", "--image",
                    SAMPLES / "houston_image.tif", "--model", REPO / "tests" / "data" / "tiny_model", "--count", "10", "--tile", "64",
                    "--steps", "2", "--workers", "1", "--out", out])
        assert done.returncode == 0, done.stderr[-3000:]
        _MADE["dataset"] = out
    return _MADE["dataset"]


TRAIN_ARGS = ["--steps", "4", "--batch", "2", "--crop", "64", "--widths", "4", "8", "8", "16", "--tile", "64", "--overlap", "16",
              "--threads", "1"]


def detector_package(root: Path) -> Path:
    """The package trained on :func:`generated_dataset` (4 steps), scored on data/levir-cd and data/whu-cd."""
    if "package" not in _MADE:
        dataset = generated_dataset(root)
        out = root / "detector"
        done = run(["-m", "model_export.detector", "train", "--dataset", dataset, "--out", out, *TRAIN_ARGS])
        assert done.returncode == 0, done.stderr[-3000:]
        _MADE["package"] = out
    return _MADE["package"]

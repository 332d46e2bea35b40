"""A small real change-detector package for the tests: a dataset of 10 generated pairs (the tiny model, 2 steps), a
few training steps of `python -m model_export.detector train` and its export. It is committed (tests/data/tiny_detector,
92 KB; `python tests/detector_package.py` makes it again) so that detection is tested where PyTorch is not installed."""

from __future__ import annotations

import os
import shutil
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


COMMITTED = REPO / "tests" / "data" / "tiny_detector"  # made by `python tests/detector_package.py` (below)


def train_package(root: Path) -> Path:
    """A package trained on :func:`generated_dataset` (4 steps), scored on data/levir-cd and data/whu-cd (needs PyTorch)."""
    dataset = generated_dataset(root)
    out = root / "detector"
    done = run(["-m", "model_export.detector", "train", "--dataset", dataset, "--out", out, *TRAIN_ARGS])
    assert done.returncode == 0, done.stderr[-3000:]
    return out


def detector_package(root: Path) -> Path:
    """A copy (the tests may damage it) of the committed package that :func:`train_package` made: the engine's and the
    plugin's tests need no PyTorch, so they also run where there is none (QGIS 3.40 LTR's chroot, make test-qgis-lts)."""
    if "package" not in _MADE:
        out = root / "detector"
        shutil.copytree(COMMITTED, out)
        _MADE["package"] = out
    return _MADE["package"]


if __name__ == "__main__":  # remake the committed package: python tests/detector_package.py
    import tempfile

    with tempfile.TemporaryDirectory() as scratch:
        made = train_package(Path(scratch))
        shutil.rmtree(COMMITTED, ignore_errors=True)
        shutil.copytree(made, COMMITTED)
    print(f"wrote {COMMITTED}")

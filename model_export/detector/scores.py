"""The decision threshold, picked on the validation split, and the package's scores on real test pairs.

Scores are measured on the exported package through the plugin's own code (onnxruntime, the engine's detector),
so they are the figures of what a user runs, not of the torch net. F1, IoU, precision and recall of the change class
over all pixels of a test set (as LEVIR-CD papers report them), beside two baselines that need no training: every
pixel called changed, and image differencing (mean absolute RGB difference, its threshold picked on the same
validation split as the detector's).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from changeanywhere_qgis.engine.detection import load_detector

from model_export.evaluation.usefulness import best_threshold, image_difference, scores

from .data import Pair

THRESHOLDS = np.round(np.linspace(0.05, 0.95, 19), 2)
DIFFERENCE_THRESHOLDS = np.arange(1, 256, 2, dtype=np.float32)


def probability(package, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """The package's change probability [H, W] of one pair (padded by mirroring to its size granule, then cut back)."""
    m = package.multiple_of
    h, w = a.shape[1:]
    pad = ((0, 0), (0, -h % m), (0, -w % m))
    return package.probability(np.pad(a, pad, mode="symmetric")[None], np.pad(b, pad, mode="symmetric")[None])[0, :h, :w]


def _flat(pairs: list[Pair], package):
    """(detector probability, image difference, truth), every pixel of every pair, flattened (pairs may differ in size)."""
    prob, diff, truth = [], [], []
    for pair in pairs:
        a, b, y = pair.load()
        prob.append(probability(package, a, b).ravel()), diff.append(image_difference(a[None], b[None]).ravel()), truth.append(y.ravel())
    return np.concatenate(prob), np.concatenate(diff), np.concatenate(truth)


def _rounded(row: dict) -> dict:
    return {k: round(v, 4) for k, v in row.items()}


def pick_thresholds(package_dir: Path, validation: list[Pair]) -> dict:
    """The detector's and image differencing's thresholds, each the one of highest F1 on the validation pairs."""
    prob, diff, truth = _flat(validation, load_detector(package_dir))
    return {"detector": best_threshold(prob, truth, THRESHOLDS), "image_difference": best_threshold(diff, truth, DIFFERENCE_THRESHOLDS),
            "pairs": len(validation)}


def score_test_sets(package_dir: Path, test_sets: dict[str, list[Pair]], threshold: float, difference_threshold: float,
                    seen: set[str] = frozenset()) -> dict:
    """name -> the detector's and the baselines' scores on every pair of the set (``seen``: sets it was fine-tuned on)."""
    package = load_detector(package_dir)
    out = {}
    for name, pairs in test_sets.items():
        prob, diff, y = _flat(pairs, package)
        out[name] = {
            "pairs": len(pairs), "path": str(pairs[0].root), "changed_share": round(float(y.mean()), 4),
            "held_out": name not in seen,
            "detector": _rounded(scores(prob > threshold, y)),
            "everything_changed": _rounded(scores(np.ones_like(y), y)),
            "image_difference": {**_rounded(scores(diff > difference_threshold, y)), "threshold": difference_threshold},
        }
    return out

"""evaluate: PSNR/SSIM on known images, and the report of a small dataset without torch (engine side only)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from changeanywhere_qgis.engine.dataset import DatasetSettings, generate_dataset
from changeanywhere_qgis.engine.evaluate import EvaluateSettings, evaluate_dataset, psnr, region_consistency, ssim_map
from changeanywhere_qgis.engine.errors import InputError

REPO = Path(__file__).resolve().parents[2]


def test_psnr_and_ssim_on_known_images():
    rng = np.random.default_rng(0)
    a = rng.integers(0, 256, (3, 48, 48)).astype(np.uint8)
    assert ssim_map(a, a) == pytest.approx(np.ones((48, 48)))
    b = a.astype(np.int16)
    b[:, :, :] += 10
    b = np.clip(b, 0, 255).astype(np.uint8)
    mask = (a < 245).all(axis=0)  # where +10 did not clip: the error is exactly 10
    assert psnr(a, b, mask) == pytest.approx(20 * np.log10(255 / 10))
    noisy = np.clip(a + rng.normal(0, 40, a.shape), 0, 255).astype(np.uint8)
    s_small, s_big = ssim_map(a, b).mean(), ssim_map(a, noisy).mean()
    assert 1 > s_small > s_big and ssim_map(a, noisy).mean() == pytest.approx(ssim_map(noisy, a).mean())
    # regions: only the changed half differs
    t2 = a.copy()
    t2[:, :, 24:] = 255 - t2[:, :, 24:]
    changed = np.zeros((48, 48), bool)
    changed[:, 24:] = True
    r = region_consistency(a, t2, changed, np.ones((48, 48), bool))
    assert r["unchanged"]["psnr"] == pytest.approx(100.0) and r["changed"]["psnr"] < 10
    assert r["unchanged"]["ssim"] > r["changed"]["ssim"]


def test_report_without_torch(tmp_path, tiny_model_dir, houston_label_path):
    ds = tmp_path / "ds"
    generate_dataset(houston_label_path, ds, DatasetSettings(count=3, tile=128, steps=2, seed=4), model=tiny_model_dir, workers=1)
    result = evaluate_dataset(ds, report=tmp_path / "q" / "quality.md", settings=EvaluateSettings(use_torch=False, command="x"))
    text = (tmp_path / "q" / "quality.md").read_text()
    assert "Measured by `x`." in text and "## Unchanged land stays consistent" in text and "## No seams" in text
    assert "skipped: --no-torch" in text and "![samples](figures/samples.png)" in text
    assert (tmp_path / "q" / "figures" / "samples.png").is_file() and (tmp_path / "q" / "figures" / "results.json").is_file()
    r = result["results"]
    assert r["maps_rebuilt_mismatch"] == 0 and r["seams"]["applies"] and r["seams"]["t2"]["n"] == 3
    assert r["consistency"]["unchanged"]["psnr"]["n"] == 3
    # new notes without measuring again
    again = evaluate_dataset(ds, report=tmp_path / "q" / "quality.md",
                             settings=EvaluateSettings(rerender=True, notes=["**Note.**"], command="y"))
    text2 = (tmp_path / "q" / "quality.md").read_text()
    assert "Measured by `x`; this text written by `y`." in text2 and "**Note.**" in text2
    assert again["results"]["consistency"] == r["consistency"]
    with pytest.raises(InputError, match="not a dataset"):
        evaluate_dataset(tmp_path / "q")


def test_evaluate_imports_no_torch():
    code = ("import sys; import changeanywhere_qgis.engine.evaluate, changeanywhere_qgis.engine.dataset, "
            "changeanywhere_qgis.engine.dataset_cli; assert 'torch' not in sys.modules, 'torch imported'")
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr

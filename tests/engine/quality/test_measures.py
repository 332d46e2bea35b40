"""PSNR and SSIM, inside regions, on images whose answer is known."""

from __future__ import annotations

import numpy as np
import pytest

from changeanywhere_qgis.engine.quality import psnr, region_consistency, ssim_map


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

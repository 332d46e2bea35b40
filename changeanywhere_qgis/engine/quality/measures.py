"""How alike two images are, inside a region: PSNR and SSIM in numpy and scipy (the dataset evaluation uses them)."""

from __future__ import annotations

import numpy as np
from scipy import ndimage

MIN_REGION_PX = 64  # a region smaller than this is left out of the PSNR/SSIM means


def psnr(a: np.ndarray, b: np.ndarray, mask: np.ndarray | None = None) -> float:
    """PSNR (dB, peak 255, at most 100 for identical pixels) of two uint8 [C, H, W] images over ``mask`` (all when None)."""
    diff = (a.astype(np.float64) - b.astype(np.float64)) ** 2
    mse = diff.mean() if mask is None else diff[:, mask].mean()
    return float(10 * np.log10(255.0**2 / max(mse, 255.0**2 * 1e-10)))


def ssim_map(a: np.ndarray, b: np.ndarray, sigma: float = 1.5) -> np.ndarray:
    """Per-pixel SSIM (Wang et al. 2004: Gaussian window sigma 1.5, K1 0.01, K2 0.03, L 255), mean over bands."""
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    maps = []
    for x, y in zip(a.astype(np.float64), b.astype(np.float64)):
        f = lambda v: ndimage.gaussian_filter(v, sigma, truncate=3.5, mode="reflect")  # noqa: E731 (11x11 window)
        mx, my = f(x), f(y)
        vx, vy, cxy = f(x * x) - mx * mx, f(y * y) - my * my, f(x * y) - mx * my
        maps.append(((2 * mx * my + c1) * (2 * cxy + c2)) / ((mx * mx + my * my + c1) * (vx + vy + c2)))
    return np.mean(maps, axis=0)


def region_consistency(t1: np.ndarray, t2: np.ndarray, changed: np.ndarray, valid: np.ndarray) -> dict:
    """PSNR and SSIM of t1 vs t2 inside the unchanged and inside the changed land (None for a tiny region)."""
    smap = ssim_map(t1, t2)
    out = {}
    for name, region in (("unchanged", valid & ~changed), ("changed", valid & changed)):
        ok = int(region.sum()) >= MIN_REGION_PX
        out[name] = {"psnr": psnr(t1, t2, region) if ok else None, "ssim": float(smap[region].mean()) if ok else None,
                     "pixels": int(region.sum())}
    return out

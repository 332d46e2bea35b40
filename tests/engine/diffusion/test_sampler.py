"""The sampler with the tiny model's real onnxruntime sessions: latent mixing, tiled decoding."""

import numpy as np
import pytest
import rasterio
from rasterio.windows import Window

from changeanywhere_qgis.engine.diffusion import KnownContent, SamplerSettings, decode, encode, latent_grid, load_model_package, sample
from changeanywhere_qgis.engine.progress import Progress


@pytest.fixture(scope="module")
def real_crop(houston_image_path, houston_label_path):
    window = Window(0, 0, 192, 160)
    with rasterio.open(houston_image_path) as ds:
        image = ds.read(window=window).astype(np.float32) / 127.5 - 1
    with rasterio.open(houston_label_path) as ds:
        labels = ds.read(1, window=window)
    return image, labels


def test_latent_mixing_pins_unchanged_cells_to_the_pre_event_latent(pkg, real_crop):
    image, labels = real_crop
    settings = SamplerSettings(steps=10, tile_overlap_px=16, batch_size=8)
    grid = latent_grid(pkg, *labels.shape, settings.tile_overlap_px)
    pre = encode(pkg, lambda r, c, h, w: image[:, r : r + h, c : c + w], grid, settings, Progress())
    unchanged = np.ones((grid.height, grid.width), dtype=np.float32)
    unchanged[8:24, 8:24] = 0  # a changed square
    keep = unchanged == 1
    error = {}
    for s in (0.0, 1.0):
        known = KnownContent(pre, unchanged, s)
        x = sample(pkg, labels, grid, settings, np.random.default_rng(0), Progress(), known)
        error[s] = np.abs(x - pre)[:, keep].mean()
    assert error[1.0] < 0.6 * error[0.0]


def test_mixing_steps_follow_s():
    known = KnownContent(np.zeros((3, 4, 4)), np.ones((4, 4)), 0.75)
    assert known.mixing_steps(50) == 37 and KnownContent(known.latent, known.unchanged, 1.0).mixing_steps(50) == 50


def test_tiled_decode_writes_every_row_once_in_order(pkg, real_crop):
    image, labels = real_crop
    settings = SamplerSettings(steps=1, tile_overlap_px=16, batch_size=3)
    grid = latent_grid(pkg, *labels.shape, settings.tile_overlap_px)
    assert len(grid.tiles) > 4
    latent = encode(pkg, lambda r, c, h, w: image[:, r : r + h, c : c + w], grid, settings, Progress())
    written = []
    decode(pkg, latent, grid, settings, lambda row, rgb: written.append((row, rgb)), Progress())
    rows = [r for r, _ in written]
    assert rows == sorted(rows) and rows[0] == 0
    assert sum(rgb.shape[1] for _, rgb in written) == labels.shape[0]
    assert all(rgb.shape[2] == labels.shape[1] and np.isfinite(rgb).all() for _, rgb in written)
    for (r0, a), (r1, _) in zip(written, written[1:]):
        assert r0 + a.shape[1] == r1


def test_change_pair_in_memory_matches_its_inputs(pkg, real_crop):
    from changeanywhere_qgis.engine.diffusion import change_pair

    image, labels = real_crop
    pre_rgb = np.round((image + 1) * 127.5).astype(np.uint8)
    post = labels.copy()
    post[40:80, 40:80] = 6  # water
    mask = (post != labels).astype(np.uint8)
    t1, t2 = change_pair(pkg, labels, post, mask, 0.9, np.random.default_rng(1), image=pre_rgb, steps=2, pre_event="real")
    assert t1 is pre_rgb and t2.shape == pre_rgb.shape and t2.dtype == np.uint8
    g1, g2 = change_pair(pkg, labels, post, mask, 0.9, np.random.default_rng(1), steps=2)
    assert g1.shape == g2.shape == pre_rgb.shape and g1.std() > 0


def test_io_binding_path_gives_the_same_latents(tiny_model_dir, real_crop):
    """The CUDA path keeps conditioning on the device through I/O binding. No GPU here, so the same
    binding code runs against the CPU device; on a CUDA machine `device='cuda'` takes it for real."""
    import dataclasses

    _, labels = real_crop
    plain = load_model_package(tiny_model_dir, device="cpu")
    bound = dataclasses.replace(plain, bind_device="cpu")
    settings = SamplerSettings(steps=3, tile_overlap_px=16, batch_size=4)
    grid = latent_grid(plain, *labels.shape, settings.tile_overlap_px)
    a = sample(plain, labels, grid, settings, np.random.default_rng(3), Progress())
    b = sample(bound, labels, grid, settings, np.random.default_rng(3), Progress())
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5)


def test_cuda_sampling_matches_cpu(tiny_model_dir, real_crop):
    from changeanywhere_qgis.engine.diffusion import cuda_unavailable_reason

    reason = cuda_unavailable_reason()
    if reason is not None:
        pytest.skip(f"needs a CUDA machine: {reason}")
    _, labels = real_crop
    cpu, gpu = load_model_package(tiny_model_dir, device="cpu"), load_model_package(tiny_model_dir, device="cuda")
    assert gpu.device == "cuda"
    settings = SamplerSettings(steps=3, tile_overlap_px=16, batch_size=4)
    grid = latent_grid(cpu, *labels.shape, settings.tile_overlap_px)
    a = sample(cpu, labels, grid, settings, np.random.default_rng(3), Progress())
    b = sample(gpu, labels, grid, settings, np.random.default_rng(3), Progress())
    np.testing.assert_allclose(a, b, rtol=1e-3, atol=1e-3)

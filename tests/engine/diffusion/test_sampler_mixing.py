"""Latent mixing with the multistep solver (DPM-Solver++ 2M), with the tiny model's real onnxruntime sessions.

The denoiser is wrapped in a recorder, so the test sees the state the sampler hands the network at every
step: in the known (unchanged) area it must be the pre-event latent noised with that step's draw; the first
free step must start from the first-order update of the last replaced state there (the replaced cells have no
history of their own), while the changed area keeps the full second-order update; an empty known mask must
give exactly the plain run.
"""

import numpy as np
import pytest

from changeanywhere_qgis.engine.diffusion import DPMSolverPP2M, KnownContent, SamplerSettings, sample
from changeanywhere_qgis.engine.progress import Progress

SEED = 5


@pytest.fixture(scope="module")
def scene(one_tile):
    labels, grid, pre, overlap = one_tile
    settings = SamplerSettings(steps=12, tile_overlap_px=overlap, sampler="dpmpp-2m", mixing="latent")  # the paper's
    unchanged = np.ones((grid.height, grid.width), dtype=np.float32)
    unchanged[4:12, 2:10] = 0  # a changed block
    return labels, grid, settings, pre, unchanged


def test_known_area_is_the_noised_pre_event_latent_at_every_mixing_step(pkg, scene, denoiser_recorder):
    labels, grid, settings, pre, unchanged = scene
    known = KnownContent(pre, unchanged, 0.75)
    mixing = known.mixing_steps(settings.steps)
    assert 1 < mixing < settings.steps
    spy = denoiser_recorder(pkg)
    sample(spy, labels, grid, settings, np.random.default_rng(SEED), Progress(), known)
    assert len(spy.calls) == settings.steps

    # The sampler's draws, replayed: the starting noise, then one noise per mixing step (DPM-Solver++ draws no other).
    rng = np.random.default_rng(SEED)
    shape = pre.shape
    rng.standard_normal(shape, dtype=np.float32)
    keep = unchanged == 1
    for i in range(mixing):
        latent, t, _ = spy.calls[i]
        noised = pkg.schedule.q_sample(pre, t, rng.standard_normal(shape, dtype=np.float32))
        np.testing.assert_array_equal(latent[:, keep], noised[:, keep], err_msg=f"mixing step {i}")

    # The first free step starts from the solver's update of the last mixed state: first order where that state
    # was replaced, second order (the previous prediction is on the same trajectory there) where it was not.
    first, second = DPMSolverPP2M(pkg.schedule, settings.steps), DPMSolverPP2M(pkg.schedule, settings.steps)
    for i in range(mixing - 1):
        second.step(i, spy.calls[i][0], spy.calls[i][2])
    x, _, pred = spy.calls[mixing - 1]
    want_second = second.step(mixing - 1, x, pred)
    want_first = first.step(mixing - 1, x, pred)  # no history: the first-order update
    got = spy.calls[mixing][0]
    assert np.abs(want_first - want_second)[:, keep].max() > 1e-3  # the two orders differ here, so the check can tell
    np.testing.assert_allclose(got[:, keep], want_first[:, keep], atol=1e-5)
    np.testing.assert_allclose(got[:, ~keep], want_second[:, ~keep], atol=1e-5)


@pytest.mark.parametrize("sampler", ["dpmpp-2m", "ddim"])
def test_mixing_with_an_empty_known_mask_is_the_plain_run(pkg, scene, sampler):
    labels, grid, settings, pre, unchanged = scene
    settings = SamplerSettings(steps=settings.steps, tile_overlap_px=settings.tile_overlap_px, sampler=sampler)
    plain = sample(pkg, labels, grid, settings, np.random.default_rng(SEED), Progress())
    empty = KnownContent(pre, np.zeros_like(unchanged), 1.0)  # every step mixes, nothing is known
    mixed = sample(pkg, labels, grid, settings, np.random.default_rng(SEED), Progress(), empty)
    np.testing.assert_array_equal(mixed, plain)


def test_the_two_solvers_differ_and_both_follow_the_known_area(pkg, scene):
    """Not a copy of DDIM: the multistep solver's result differs, and both hold the unchanged land to the pre-event latent."""
    labels, grid, settings, pre, unchanged = scene
    keep = unchanged == 1
    results = {}
    for sampler in ("ddim", "dpmpp-2m"):
        st = SamplerSettings(steps=settings.steps, tile_overlap_px=settings.tile_overlap_px, sampler=sampler)
        free = sample(pkg, labels, grid, st, np.random.default_rng(SEED), Progress())
        held = sample(pkg, labels, grid, st, np.random.default_rng(SEED), Progress(), KnownContent(pre, unchanged, 1.0))
        results[sampler] = held
        assert np.abs(held - pre)[:, keep].mean() < 0.6 * np.abs(free - pre)[:, keep].mean()
    assert np.abs(results["ddim"] - results["dpmpp-2m"]).max() > 1e-3

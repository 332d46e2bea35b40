"""Prediction mixing (``SamplerSettings(mixing="prediction")``, issue #34), with the tiny model's real onnxruntime sessions.

While a cell is held, the solver must get the pre-event latent as that cell's clean-latent prediction, and nothing
else may differ from the solver's own update: the whole run is replayed step by step from the recorded network calls,
through the schedule's DDIM step and a fresh DPM-Solver++ 2M (its full second-order update everywhere: a held cell's
state is the solver's own, so no first-order fallback). Held for every step, a cell ends as the pre-event latent
exactly (the paper's latent mixing only comes near it).
"""

import numpy as np
import pytest

from changeanywhere_qgis.engine.diffusion import DPMSolverPP2M, KnownContent, SamplerSettings, check_mixing, sample
from changeanywhere_qgis.engine.errors import InputError
from changeanywhere_qgis.engine.progress import Progress

SEED = 11
STEPS = 10


@pytest.fixture(scope="module")
def scene(one_tile):
    labels, grid, pre, overlap = one_tile
    unchanged = np.ones((grid.height, grid.width), dtype=np.float32)
    unchanged[3:11, 5:13] = 0  # a changed block
    return labels, grid, pre, unchanged, overlap


def _settings(sampler: str, mixing: str, overlap: int) -> SamplerSettings:
    return SamplerSettings(steps=STEPS, tile_overlap_px=overlap, sampler=sampler, mixing=mixing)


@pytest.mark.parametrize("sampler", ["ddim", "dpmpp-2m"])
def test_held_cells_hand_the_solver_the_pre_event_latent_and_nothing_else_changes(pkg, scene, sampler, denoiser_recorder):
    labels, grid, pre, unchanged, overlap = scene
    known = KnownContent(pre, unchanged, 0.6)
    mixing = known.mixing_steps(STEPS)
    assert 1 < mixing < STEPS - 1
    spy = denoiser_recorder(pkg)
    out = sample(spy, labels, grid, _settings(sampler, "prediction", overlap), np.random.default_rng(SEED), Progress(), known)
    assert len(spy.calls) == STEPS

    # The starting noise is the run's only draw: no fresh noise at the mixing steps (the paper's mixing draws one each).
    start = np.random.default_rng(SEED).standard_normal(pre.shape, dtype=np.float32)
    np.testing.assert_array_equal(spy.calls[0][0], start)

    schedule, keep = pkg.schedule, unchanged == 1
    solver = DPMSolverPP2M(schedule, STEPS)
    timesteps = schedule.timesteps(STEPS)
    for i, (x, t, network) in enumerate(spy.calls):
        used = network.copy()
        if i < mixing:  # held: the prediction whose clean latent is the pre-event latent
            used[:, keep] = schedule.prediction_for(x, t, pre)[:, keep]
            x0, _ = schedule.split_prediction(x, t, used)
            np.testing.assert_allclose(x0[:, keep], pre[:, keep], atol=1e-4)
        if sampler == "ddim":
            want = schedule.ddim_step(x, t, schedule.previous_timestep(t, STEPS), used)
        else:
            want = solver.step(i, x, used)
        got = spy.calls[i + 1][0] if i + 1 < STEPS else out
        np.testing.assert_allclose(got, want, atol=2e-5, err_msg=f"step {i} (timestep {timesteps[i]})")


@pytest.mark.parametrize("sampler", ["ddim", "dpmpp-2m"])
def test_held_for_every_step_the_unchanged_cells_end_as_the_pre_event_latent(pkg, scene, sampler):
    labels, grid, pre, unchanged, overlap = scene
    keep = unchanged == 1
    out = {}
    for mixing in ("latent", "prediction"):
        out[mixing] = sample(pkg, labels, grid, _settings(sampler, mixing, overlap), np.random.default_rng(SEED), Progress(),
                             KnownContent(pre, unchanged, 1.0))
    np.testing.assert_allclose(out["prediction"][:, keep], pre[:, keep], atol=1e-5)
    assert np.abs(out["latent"] - pre)[:, keep].max() > 1e-2  # the paper's mixing only comes near it
    free = ~keep  # the changed land is drawn, under both, by the same network from the same start
    assert np.abs(out["prediction"] - pre)[:, free].mean() > 0.1


@pytest.mark.parametrize("sampler", ["ddim", "dpmpp-2m"])
def test_without_mixing_steps_both_mixings_are_the_plain_run(pkg, scene, sampler):
    labels, grid, pre, unchanged, overlap = scene
    plain = sample(pkg, labels, grid, _settings(sampler, "latent", overlap), np.random.default_rng(SEED), Progress())
    for mixing in ("latent", "prediction"):
        none = sample(pkg, labels, grid, _settings(sampler, mixing, overlap), np.random.default_rng(SEED), Progress(),
                      KnownContent(pre, unchanged, 0.0))
        np.testing.assert_array_equal(none, plain)


def test_an_unknown_mixing_is_refused_by_name():
    with pytest.raises(InputError, match="latent, prediction"):
        check_mixing("x0")

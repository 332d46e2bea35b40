"""The engine's numpy schedule and DDIM step equal diffusers' on the same inputs (the training side)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from diffusers import DDIMScheduler

from changeanywhere_qgis.engine.diffusion import DiffusionSchedule
from model_export.training.diffusion import noise_scheduler

DCFG = {"num_train_timesteps": 1000, "beta_start": 0.0015, "beta_end": 0.0205}


def ddim(prediction: str) -> DDIMScheduler:
    return DDIMScheduler(num_train_timesteps=1000, beta_schedule="linear", beta_start=0.0015, beta_end=0.0205,
                         timestep_spacing="trailing", set_alpha_to_one=True, clip_sample=False,
                         prediction_type=prediction)


@pytest.mark.parametrize("prediction", ["epsilon", "v_prediction"])
def test_alphas_and_timesteps(prediction):
    engine = DiffusionSchedule(prediction=prediction)
    train = noise_scheduler({**DCFG, "prediction": prediction})
    np.testing.assert_allclose(engine.alphas_cumprod, train.alphas_cumprod.double().numpy(), rtol=1e-6)
    for steps in (1, 10, 50, 200, 1000):
        ref = ddim(prediction)
        ref.set_timesteps(steps)
        np.testing.assert_array_equal(engine.timesteps(steps), ref.timesteps.numpy())


@pytest.mark.parametrize("prediction", ["epsilon", "v_prediction"])
def test_q_sample_equals_training_add_noise(prediction):
    engine = DiffusionSchedule(prediction=prediction)
    train = noise_scheduler({**DCFG, "prediction": prediction})
    rng = np.random.default_rng(0)
    x0 = rng.standard_normal((1, 3, 8, 8)).astype(np.float32)
    noise = rng.standard_normal(x0.shape).astype(np.float32)
    for t in (0, 1, 499, 999):
        want = train.add_noise(torch.from_numpy(x0), torch.from_numpy(noise), torch.tensor([t])).numpy()
        np.testing.assert_allclose(engine.q_sample(x0, t, noise), want, atol=1e-5)
    if prediction == "v_prediction":
        # The training target v and the engine's split of a perfect v back into (x0, noise).
        t = 321
        v = train.get_velocity(torch.from_numpy(x0), torch.from_numpy(noise), torch.tensor([t])).numpy()
        x0_hat, eps_hat = engine.split_prediction(engine.q_sample(x0, t, noise), t, v)
        np.testing.assert_allclose(x0_hat, x0, atol=1e-4)
        np.testing.assert_allclose(eps_hat, noise, atol=1e-4)


@pytest.mark.parametrize("prediction", ["epsilon", "v_prediction"])
@pytest.mark.parametrize("steps", [10, 50])
@pytest.mark.parametrize("eta", [0.0, 0.5, 1.0])  # 0 is the engine's default, 1 the authors'
def test_ddim_step_equals_diffusers(prediction, steps, eta):
    engine = DiffusionSchedule(prediction=prediction)
    ref = ddim(prediction)
    ref.set_timesteps(steps)
    rng = np.random.default_rng(steps)
    timesteps = engine.timesteps(steps)
    for i in (0, steps // 2, steps - 1):  # first (pure noise), middle, last (to alpha_bar = 1)
        t = int(timesteps[i])
        x = rng.standard_normal((2, 3, 8, 8)).astype(np.float32)
        pred = rng.standard_normal(x.shape).astype(np.float32)
        noise = rng.standard_normal(x.shape).astype(np.float32)
        got = engine.ddim_step(x, t, engine.previous_timestep(t, steps), pred, eta=eta, noise=noise if eta > 0 else None)
        want = ref.step(torch.from_numpy(pred), t, torch.from_numpy(x), eta=eta,
                        variance_noise=torch.from_numpy(noise)).prev_sample.numpy()
        np.testing.assert_allclose(got, want, atol=1e-4, rtol=1e-4)

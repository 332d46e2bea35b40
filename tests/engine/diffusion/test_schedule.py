"""The numpy schedule: timesteps, forward noising and DDIM updates behave as the formulas say."""

import numpy as np
import pytest

from changeanywhere_qgis.engine.errors import ModelError
from changeanywhere_qgis.engine.diffusion import DiffusionSchedule


def test_trailing_timesteps_start_at_pure_noise_and_descend():
    s = DiffusionSchedule()
    ts = s.timesteps(50)
    assert len(ts) == 50 and ts[0] == 999 and np.all(np.diff(ts) < 0)
    assert s.previous_timestep(int(ts[-1]), 50) < 0  # the last step lands on the clean image


@pytest.mark.parametrize("prediction", ["epsilon", "v_prediction"])
def test_exact_prediction_recovers_the_clean_latent(prediction):
    """With the true noise (or v) as the prediction, deterministic DDIM returns x0 exactly."""
    s = DiffusionSchedule(prediction=prediction)
    rng = np.random.default_rng(0)
    x0 = rng.standard_normal((3, 8, 8))
    noise = rng.standard_normal((3, 8, 8))
    x = s.q_sample(x0, 999, noise)
    for t in s.timesteps(10):
        a = s.alphas_cumprod[t]
        if prediction == "epsilon":
            pred = (x - np.sqrt(a) * x0) / np.sqrt(1 - a)
        else:
            eps = (x - np.sqrt(a) * x0) / np.sqrt(1 - a)
            pred = np.sqrt(a) * eps - np.sqrt(1 - a) * x0
        x = s.ddim_step(x, int(t), s.previous_timestep(int(t), 10), pred, eta=0.0)
    np.testing.assert_allclose(x, x0, atol=1e-9)


def test_stochastic_step_needs_noise_and_uses_it():
    s = DiffusionSchedule()
    x = np.ones((1, 4, 4))
    with pytest.raises(ValueError):
        s.ddim_step(x, 500, 480, np.zeros_like(x), eta=1.0)
    a = s.ddim_step(x, 500, 480, np.zeros_like(x), eta=1.0, noise=np.zeros_like(x))
    b = s.ddim_step(x, 500, 480, np.zeros_like(x), eta=1.0, noise=np.ones_like(x))
    assert np.all(b > a)


def test_unknown_prediction_and_schedule_are_refused():
    with pytest.raises(ModelError, match="prediction"):
        DiffusionSchedule(prediction="sample")
    with pytest.raises(ModelError, match="beta schedule"):
        DiffusionSchedule(beta_schedule="cosine")

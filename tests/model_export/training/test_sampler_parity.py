"""The engine's DPM-Solver++ 2M equals diffusers' DPMSolverMultistepScheduler on the same model outputs.

diffusers is configured as the engine's solver is written (schedule.py): algorithm_type "dpmsolver++",
solver_order 2, solver_type "midpoint", timestep_spacing "trailing" (DDIM's timesteps, the first step from
t = 999), final_sigmas_type "zero" (the last step lands on alpha_bar = 1, first order), lower_order_final
True, no thresholding, no Karras sigmas. The model outputs are the tiny model package's real denoiser on a
real land-cover crop; both solvers are given the same state at every step, so a difference in the history
(the previous clean-latent prediction) shows at the step that uses it.
"""

from __future__ import annotations

import numpy as np
import pytest
import rasterio
import torch
from diffusers import DPMSolverMultistepScheduler

from changeanywhere_qgis.engine.diffusion import DiffusionSchedule, DPMSolverPP2M, load_model_package

REPO_SAMPLES = "changeanywhere_qgis/samples"


def dpmpp(prediction: str) -> DPMSolverMultistepScheduler:
    return DPMSolverMultistepScheduler(
        num_train_timesteps=1000, beta_schedule="linear", beta_start=0.0015, beta_end=0.0205, prediction_type=prediction,
        algorithm_type="dpmsolver++", solver_order=2, solver_type="midpoint", timestep_spacing="trailing",
        final_sigmas_type="zero", lower_order_final=True, thresholding=False, use_karras_sigmas=False)


@pytest.fixture(scope="module")
def denoiser(tiny_model_dir, houston_label_path):
    pkg = load_model_package(tiny_model_dir, device="cpu")
    with rasterio.open(houston_label_path) as ds:
        labels = ds.read(1, window=((0, pkg.tile_size), (0, pkg.tile_size)))
    condition = pkg.condition(pkg.scheme.one_hot(labels))
    return pkg, lambda x, t: pkg.denoise_with(x, np.array([t], dtype=np.int64), condition)


@pytest.mark.parametrize("steps", [1, 5, 10, 14, 15, 20, 25, 50, 999])
def test_timesteps_equal_diffusers(steps):
    ref = dpmpp("v_prediction")
    ref.set_timesteps(steps)
    np.testing.assert_array_equal(DPMSolverPP2M(DiffusionSchedule(), steps).timesteps, ref.timesteps.numpy())


@pytest.mark.parametrize("prediction", ["v_prediction", "epsilon"])  # the tiny model is v; its outputs read as noise too
@pytest.mark.parametrize("steps", [10, 20, 25])  # under 15 steps diffusers' lower-order rules differ; 20 is the bench's
def test_dpmpp_2m_steps_equal_diffusers(denoiser, prediction, steps):
    pkg, net = denoiser
    engine = DPMSolverPP2M(DiffusionSchedule(prediction=prediction), steps)
    ref = dpmpp(prediction)
    ref.set_timesteps(steps)
    size = pkg.tile_size // pkg.downsample
    x = np.random.default_rng(steps).standard_normal((1, pkg.latent_channels, size, size), dtype=np.float32)
    for i, t in enumerate(engine.timesteps):
        out = net(x, int(t))
        want = ref.step(torch.from_numpy(out), int(t), torch.from_numpy(x)).prev_sample.numpy()
        got = engine.step(i, x, out)
        np.testing.assert_allclose(got, want, atol=2e-4, rtol=1e-4, err_msg=f"step {i} (t={t})")
        x = got
    assert np.isfinite(x).all()

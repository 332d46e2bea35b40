"""The diffusion noise schedule and the two solvers of the reverse process (DDIM, DPM-Solver++ 2M), in numpy.

Kept as small as a diffusers scheduler: the network is elsewhere, the sampling loop is elsewhere.
DDIM follows diffusers' ``DDIMScheduler`` with ``timestep_spacing="trailing"`` and ``set_alpha_to_one=True``;
DPM-Solver++ 2M follows ``DPMSolverMultistepScheduler`` with ``algorithm_type="dpmsolver++"``, ``solver_order=2``,
``solver_type="midpoint"``, ``timestep_spacing="trailing"`` (the same timesteps as DDIM) and
``final_sigmas_type="zero"`` (the last step lands on alpha_bar = 1, as DDIM's does);
``tests/model_export/training/test_training_schedule_parity.py`` and ``test_sampler_parity.py`` (same folder) check they agree.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import InputError, ModelError

PREDICTIONS = ("epsilon", "v_prediction")

# The default DDIM eta everywhere (engine, command line, Processing). 0 (deterministic updates) rather
# than the authors' 1: at 50 steps the bundled model follows its map clearly better with 0
# (docs/reference/model-card.md, the DDIM eta table); eta 1 injects fresh noise at every step, which at so few steps
# blurs the layout the map asks for.
DEFAULT_ETA = 0.0

# The solvers of the reverse process. "ddim": one model call per step, first order. "dpmpp-2m": DPM-Solver++
# (Lu et al. 2022), second-order multistep on the predicted clean latent: the same one call per step, but
# meant to reach DDIM's quality in fewer steps. The default stays DDIM 50 by checks S1 and S2 of
# docs/research/map-following-checks.md: at 10, 15 or 20 steps, with either mixing and either tile, DPM-Solver++ followed
# the map less well or held the unchanged land less closely than DDIM 50.
SAMPLERS = ("ddim", "dpmpp-2m")
DEFAULT_SAMPLER = "ddim"
DEFAULT_STEPS = 50  # the default sampler's steps; every entry point (command line, Processing, dock, datasets) takes it


def check_sampler(sampler: str, eta: float = 0.0) -> None:
    """A solver the engine knows, and eta only where it means something (DDIM)."""
    if sampler not in SAMPLERS:
        raise InputError(f"Unknown sampler {sampler!r}. Choose one of {', '.join(SAMPLERS)} "
                         "(ddim: the default; dpmpp-2m: DPM-Solver++ 2M, for fewer steps).")
    if sampler != "ddim" and eta != 0.0:
        raise InputError(f"eta is a DDIM setting: the {sampler} sampler is deterministic and takes no eta, got {eta}. "
                         "Leave eta at 0 or choose the ddim sampler.")


@dataclass(frozen=True)
class DiffusionSchedule:
    num_train_timesteps: int = 1000
    beta_schedule: str = "linear"
    beta_start: float = 0.0015
    beta_end: float = 0.0205
    prediction: str = "epsilon"

    def __post_init__(self) -> None:
        if self.prediction not in PREDICTIONS:
            raise ModelError(
                f"Unknown diffusion prediction {self.prediction!r} in the model manifest; "
                f"the engine knows {', '.join(PREDICTIONS)}. Re-export the model or update the plugin."
            )
        n = self.num_train_timesteps
        if self.beta_schedule == "linear":
            betas = np.linspace(self.beta_start, self.beta_end, n, dtype=np.float64)
        elif self.beta_schedule == "scaled_linear":
            betas = np.linspace(self.beta_start**0.5, self.beta_end**0.5, n, dtype=np.float64) ** 2
        else:
            raise ModelError(
                f"Unknown beta schedule {self.beta_schedule!r} in the model manifest; "
                "the engine knows 'linear' and 'scaled_linear'."
            )
        object.__setattr__(self, "alphas_cumprod", np.cumprod(1.0 - betas))

    @classmethod
    def from_manifest(cls, diffusion: dict) -> "DiffusionSchedule":
        return cls(
            num_train_timesteps=int(diffusion["num_train_timesteps"]),
            beta_schedule=str(diffusion["beta_schedule"]),
            beta_start=float(diffusion["beta_start"]),
            beta_end=float(diffusion["beta_end"]),
            prediction=str(diffusion.get("prediction", "epsilon")),
        )

    # -- timesteps -------------------------------------------------------------------------
    def timesteps(self, num_steps: int) -> np.ndarray:
        """Descending timesteps, 'trailing' spacing: the first step starts from pure noise."""
        n = self.num_train_timesteps
        if not 1 <= num_steps <= n:
            raise ValueError(f"steps must be between 1 and {n}, got {num_steps}")
        return (np.round(np.arange(n, 0, -n / num_steps)).astype(np.int64) - 1)[:num_steps]

    def previous_timestep(self, t: int, num_steps: int) -> int:
        return int(t) - self.num_train_timesteps // num_steps

    def _alpha(self, t: int) -> float:
        # t < 0 is "after the last step": alpha_bar = 1 (diffusers' set_alpha_to_one=True).
        return float(self.alphas_cumprod[t]) if t >= 0 else 1.0

    # -- forward process -------------------------------------------------------------------
    def q_sample(self, x0: np.ndarray, t: int, noise: np.ndarray) -> np.ndarray:
        """Noise a clean latent to timestep t."""
        a = self._alpha(t)
        return (np.sqrt(a) * x0 + np.sqrt(1.0 - a) * noise).astype(x0.dtype, copy=False)

    # -- reverse process -------------------------------------------------------------------
    def split_prediction(self, x: np.ndarray, t: int, pred: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Return (predicted clean latent, predicted noise) from the network output."""
        a = self._alpha(t)
        sa, sb = np.sqrt(a), np.sqrt(1.0 - a)
        if self.prediction == "epsilon":
            eps = pred
            x0 = (x - sb * eps) / sa
        else:  # v_prediction
            x0 = sa * x - sb * pred
            eps = sa * pred + sb * x
        return x0, eps

    def prediction_for(self, x: np.ndarray, t: int, x0: np.ndarray) -> np.ndarray:
        """The network output that :meth:`split_prediction` turns into the clean latent ``x0`` at ``x``: what a cell held
        to a known latent hands the solver (its noise is then the one ``x`` already carries, so its trajectory stays
        the solver's own)."""
        a = self._alpha(t)
        sa, sb = np.sqrt(a), np.sqrt(1.0 - a)
        if self.prediction == "epsilon":
            return ((x - sa * x0) / sb).astype(x.dtype, copy=False)
        return ((sa * x - x0) / sb).astype(x.dtype, copy=False)  # v_prediction: x0 = sa x - sb v

    def ddim_step(
        self,
        x: np.ndarray,
        t: int,
        t_prev: int,
        pred: np.ndarray,
        eta: float = 0.0,
        noise: np.ndarray | None = None,
        clip_x0: float | None = None,
    ) -> np.ndarray:
        """One DDIM update x_t -> x_{t_prev}. ``noise`` is needed when eta > 0."""
        a_t, a_prev = self._alpha(t), self._alpha(t_prev)
        x0, eps = self.split_prediction(x, t, pred)
        if clip_x0 is not None:
            x0 = np.clip(x0, -clip_x0, clip_x0)
            # Keep eps consistent with the clipped x0, as diffusers does.
            eps = (x - np.sqrt(a_t) * x0) / np.sqrt(1.0 - a_t)
        variance = (1.0 - a_prev) / (1.0 - a_t) * (1.0 - a_t / a_prev)
        std = eta * np.sqrt(max(variance, 0.0))
        direction = np.sqrt(max(1.0 - a_prev - std**2, 0.0)) * eps
        x_prev = np.sqrt(a_prev) * x0 + direction
        if std > 0:
            if noise is None:
                raise ValueError("ddim_step needs noise when eta > 0")
            x_prev = x_prev + std * noise
        return x_prev.astype(x.dtype, copy=False)


class DPMSolverPP2M:
    """DPM-Solver++ 2M over one run's timesteps: holds the previous clean-latent prediction between steps.

    Step i goes from ``timesteps[i]`` to ``timesteps[i + 1]`` (after the last: alpha_bar = 1). Written in
    sigma/alpha ratios rather than log-SNRs, so the last step (sigma 0, log-SNR infinite) needs no special case:
    with h = lambda_next - lambda_now, exp(-h) = (sigma_next / alpha_next) / (sigma_now / alpha_now).
    """

    def __init__(self, schedule: DiffusionSchedule, num_steps: int):
        self.schedule = schedule
        self.timesteps = schedule.timesteps(num_steps)
        a = np.append(schedule.alphas_cumprod[self.timesteps], 1.0)  # float64; the last target is alpha_bar = 1
        self.alpha, self.sigma = np.sqrt(a), np.sqrt(1.0 - a)
        with np.errstate(divide="ignore"):
            self.lam = np.log(self.alpha) - np.log(self.sigma)  # log-SNR; +inf at the end
        self.previous: np.ndarray | None = None  # the last step's predicted clean latent

    def step(self, i: int, x: np.ndarray, pred: np.ndarray, fresh: np.ndarray | None = None) -> np.ndarray:
        """x at ``timesteps[i]`` and the network's output there -> x at the next timestep (the history kept here).

        ``fresh`` (1 where ``x`` was just replaced, 0 elsewhere; broadcast over channels) marks cells whose state
        does not come from the previous step (latent mixing): the previous prediction was made on another state
        there, so the second-order correction, a difference of the two predictions, would mix two unrelated draws.
        Those cells take the first-order (DDIM) update; the others keep the full second-order one.
        """
        x_next, self.previous = self.update(i, x, pred, self.previous, fresh)
        return x_next

    def update(self, i: int, x: np.ndarray, pred: np.ndarray, previous: np.ndarray | None,
               fresh: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """As ``step``, with the history given (``previous``: the last step's clean-latent prediction, None at the
        first step): (x at the next timestep, this step's clean-latent prediction). Element by element, so a large
        canvas can be stepped one window at a time."""
        n = len(self.timesteps)
        x0, _ = self.schedule.split_prediction(x, int(self.timesteps[i]), pred)
        alpha_t, sigma_t, sigma_s = self.alpha[i + 1], self.sigma[i + 1], self.sigma[i]
        ratio = (sigma_t / alpha_t) / (sigma_s / self.alpha[i])  # exp(-h)
        # First order at the first step (no history) and at the last (diffusers: final_sigmas_type "zero").
        if previous is None or i == n - 1:
            data = x0
        else:
            h, h0 = self.lam[i + 1] - self.lam[i], self.lam[i] - self.lam[i - 1]
            d1 = (h / h0) * (x0 - previous)
            if fresh is not None:
                d1 = d1 * (1.0 - fresh)
            data = x0 + 0.5 * d1  # the midpoint solver: D0 + D1 / 2
        return ((sigma_t / sigma_s) * x - alpha_t * (ratio - 1.0) * data).astype(x.dtype, copy=False), x0

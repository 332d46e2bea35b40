"""The adaptation's training loop: the base package's denoiser fine-tuned on the latent cache of the user's area.

It is ``training.diffusion.run``'s step (v-prediction, classifier-free dropout, EMA, AdamW, warm-up and cosine
decay) with what a user's run needs besides: a bar with the loss and the time left, a step or minute budget
that spans resumed runs, and a clean stop on Ctrl-C or SIGTERM that leaves a checkpoint to ``--resume`` from.
Checkpoints have the diffusion stage's format, so ``export.package.export`` writes the package from them.
"""

from __future__ import annotations

import copy
import signal
import time
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from tqdm import tqdm

from model_export.adaptation.area import draw_batch
from model_export.networks.denoiser import SemanticUNet
from model_export.training.checkpoints import load_if_present, rng_state, save_atomic
from model_export.training.data import NUM_CLASSES
from model_export.training.diffusion import denoising_step, noise_scheduler, resume_denoiser
from model_export.training.provenance import hardware
from model_export.training.schedules import EMA, warmup_cosine

CHECKPOINT = "last.pt"
# Every this many steps the EMA denoiser (what the package gets) is scored on the held-out block: the curve shows
# a user whether a longer run still helps their area or has begun to fit the training part more than the block.
WATCH_EVERY = 250


class Interrupted(BaseException):
    """Ctrl-C or SIGTERM: the run stops (after saving a checkpoint when it was training)."""

    def __init__(self, signum: int, step: int | None = None):
        super().__init__(signal.Signals(signum).name)
        self.signum, self.step = signum, step


class Stopper:
    """SIGINT and SIGTERM handlers for the whole run: while training, a signal is noted and the loop stops after
    its step with a checkpoint; before or after training it interrupts at once (nothing to save)."""

    def __init__(self) -> None:
        self.signum: int | None = None
        self.deferring = False

    def __enter__(self) -> "Stopper":
        # SIGBREAK: what Ctrl-Break (and QGIS's Cancel, on Windows) sends to a process group there
        kinds = (signal.SIGINT, signal.SIGTERM, *([signal.SIGBREAK] if hasattr(signal, "SIGBREAK") else []))
        self.saved = {s: signal.getsignal(s) for s in kinds}
        for s in self.saved:
            signal.signal(s, self._handle)
        return self

    def __exit__(self, *exc) -> None:
        for s, h in self.saved.items():
            signal.signal(s, h)

    def _handle(self, signum, frame) -> None:
        self.signum = signum
        if not self.deferring:
            raise Interrupted(signum)


class StepBudget:
    """A run's budget in steps or minutes, counted over all its resumed parts (``spent_s`` came before)."""

    def __init__(self, steps: int | None, minutes: float | None, spent_s: float):
        self.steps, self.seconds, self.spent_s = steps, (60.0 * minutes if minutes else None), spent_s
        self.start = time.monotonic()

    def wall(self) -> float:
        return self.spent_s + time.monotonic() - self.start

    def progress(self, step: int) -> float:
        return min(1.0, step / self.steps if self.steps else self.wall() / self.seconds)

    def done(self, step: int) -> bool:
        return step >= self.steps if self.steps else self.wall() >= self.seconds


def run_steps(budget: StepBudget, step: int, one_step: Callable[[int], float], state: Callable[[int, bool], dict],
              checkpoint: Path, save_minutes: float, stopper: Stopper, bar, show: Callable[[int, float], None]) -> int:
    """An adaptation's training loop (the denoiser's, the decoder's): ``one_step(step)`` returns its loss, until the
    budget is spent; a checkpoint every ``save_minutes`` and on Ctrl-C or SIGTERM, which then raises Interrupted;
    ``show(step, loss)`` updates the bar, closed at the end. Returns the last step."""
    last_save = time.monotonic()
    stopper.deferring = True
    try:
        while not budget.done(step):
            if stopper.signum is not None:
                save_atomic(state(step, False), checkpoint)
                raise Interrupted(stopper.signum, step)
            loss = one_step(step)
            step += 1
            show(step, loss)
            if time.monotonic() - last_save > 60 * save_minutes:
                save_atomic(state(step, False), checkpoint)
                last_save = time.monotonic()
    finally:
        stopper.deferring = False
        bar.close()
    return step


def train(cfg: dict, base, cache: dict, run_dir: Path, device: str, seed: int, steps: int | None,
          minutes: float | None, data: list[str], stopper: Stopper,
          on_batch: Callable[[list], None] | None = None,
          watch: Callable[[torch.nn.Module], float] | None = None, start_score: float | None = None,
          keep: str = "last") -> dict:
    """Fine-tune the base's denoiser; returns the finished checkpoint (also saved as RUN/last.pt).

    ``watch(ema_model)``, when given, scores the EMA weights every WATCH_EVERY steps and at the end (lower is
    better); the scores are the checkpoint's ``held_out_curve``, a list of [step, score], starting with
    [0, start_score], the base's. ``keep="best"``: the finished checkpoint's EMA weights are those of the lowest
    score, the base's included (a small area is soon fitted more closely than the land held out of it); its
    ``kept`` says which step they are from."""
    dcfg = cfg["diffusion"]
    rng = np.random.default_rng(seed)
    torch.manual_seed(seed)
    unet = SemanticUNet(dcfg, num_classes=NUM_CLASSES).to(device)
    unet.load_state_dict(base.networks.unet.state_dict())
    ema = EMA(unet, dcfg["ema_decay"])  # the package holds the EMA weights: they start both
    opt = torch.optim.AdamW(unet.parameters(), lr=dcfg["lr"], weight_decay=0.01)
    sched = noise_scheduler(dcfg)
    step, wall, history = 0, 0.0, []
    curve = [[0, start_score]] if watch is not None and start_score is not None else []
    best = {"step": 0, "ema": copy.deepcopy(ema.model.state_dict())}  # the base's weights until a step does better
    ckpt = load_if_present(run_dir / CHECKPOINT)
    if ckpt is not None:
        step, wall, history = resume_denoiser(ckpt, unet, ema, opt, rng)
        curve, best = ckpt.get("held_out_curve", curve), ckpt.get("best", best)
        print(f"resuming at step {step} ({wall / 60:.1f} min done) from {run_dir / CHECKPOINT}")
    budget = StepBudget(steps, minutes, wall)

    def state(step: int, finished: bool) -> dict:
        return {"stage": "diffusion", "config": cfg, "unet": unet.state_dict(), "ema": ema.model.state_dict(),
                "opt": opt.state_dict(), "step": step, "planned_steps": steps, "wall_seconds": budget.wall(),
                "history": history, "held_out_curve": curve, "best": best, "rng": rng_state(rng), "finished": finished,
                "autoencoder": base.autoencoder_record(), "data": data, "hardware": hardware(device),
                "base_model": base.provenance()}

    # the bar counts steps, or seconds under --minutes: either way tqdm shows the time left
    bar = tqdm(total=steps or int(budget.seconds), initial=step if steps else int(wall), desc="adapting",
               unit="step" if steps else "s", mininterval=2, dynamic_ncols=True)
    autocast = torch.autocast("cuda", dtype=torch.bfloat16, enabled=device == "cuda")

    def one_step(step: int) -> float:
        for g in opt.param_groups:
            g["lr"] = dcfg["lr"] * warmup_cosine(step, dcfg["warmup_steps"], budget.progress(step))
        x0, labels, where = draw_batch(rng, cache, dcfg["crop"], dcfg["batch_size"])
        if on_batch is not None:
            on_batch(where)
        loss = denoising_step(unet, unet, ema, opt, sched, dcfg, x0.to(device), labels, step, autocast)
        history.append(loss)
        return loss

    def show(step: int, loss: float) -> None:
        bar.set_postfix(step=step, loss=f"{loss:.4f}", avg100=f"{np.mean(history[-100:]):.4f}", refresh=False)
        bar.update(1 if steps else int(budget.wall()) - bar.n)
        if watch is not None and step % WATCH_EVERY == 0:
            score(step)

    def score(step: int) -> None:
        value = watch(ema.model)
        if all(value < v for _, v in curve):
            best.update(step=step, ema=copy.deepcopy(ema.model.state_dict()))
        curve.append([step, value])

    unet.train()
    step = run_steps(budget, step, one_step, state, run_dir / CHECKPOINT, dcfg["checkpoint_minutes"], stopper, bar, show)
    if watch is not None and (not curve or curve[-1][0] != step):
        score(step)
    final = state(step, True)
    if keep == "best" and watch is not None:
        final = {**final, "ema": best["ema"], "kept": {"rule": "lowest held-out denoising loss", "step": best["step"]}}
    else:
        final = {**final, "kept": {"rule": "last step", "step": step}}
    save_atomic(final, run_dir / CHECKPOINT)
    return final

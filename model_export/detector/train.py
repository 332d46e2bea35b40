"""The training loop: random crops of the pairs, turned, mirrored and swapped in time, BCE + Dice, Adam with a one-cycle
schedule over ``steps``. Stopped by the step count; a checkpoint every ``checkpoint_every`` steps and on Ctrl-C (or
SIGTERM, at the end of the step under way), from which ``--resume`` goes on with the same schedule, optimiser and
random state."""

from __future__ import annotations

import random
import signal
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from model_export.networks.change_detection import FCSiamDiff

from .data import Pair

CHECKPOINT = "checkpoint.pt"


def make_net(widths) -> FCSiamDiff:
    return FCSiamDiff(tuple(widths))


def to_tensor(pixels: np.ndarray, device) -> torch.Tensor:
    """uint8 -> the package's input range (input.scale ``x / 127.5 - 1``)."""
    return torch.from_numpy(pixels.astype(np.float32) / 127.5 - 1.0).to(device)


def loss_of(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """BCE + Dice (changed land is a small share of most pairs: Dice keeps the net from calling everything unchanged)."""
    p = torch.sigmoid(logits)
    dice = 1 - (2 * (p * target).sum() + 1) / (p.sum() + target.sum() + 1)
    return F.binary_cross_entropy_with_logits(logits, target) + dice


def crops(pairs: list[Pair], rng: np.random.Generator, batch: int, crop: int):
    """A batch of random crops: (A, B uint8 [N, 3, c, c], change float32 [N, c, c])."""
    out_a, out_b, out_y = [], [], []
    for i in rng.integers(0, len(pairs), batch):
        a, b, y = pairs[int(i)].load()
        c = min(crop, a.shape[1], a.shape[2])
        r, q = int(rng.integers(0, a.shape[1] - c + 1)), int(rng.integers(0, a.shape[2] - c + 1))
        a, b, y = a[:, r : r + c, q : q + c], b[:, r : r + c, q : q + c], y[r : r + c, q : q + c]
        k = int(rng.integers(4))
        a, b, y = np.rot90(a, k, (1, 2)), np.rot90(b, k, (1, 2)), np.rot90(y, k)
        if rng.random() < 0.5:
            a, b, y = a[:, :, ::-1], b[:, :, ::-1], y[:, ::-1]
        if rng.random() < 0.5:  # change is symmetric in time
            a, b = b, a
        out_a.append(np.ascontiguousarray(a)), out_b.append(np.ascontiguousarray(b)), out_y.append(np.ascontiguousarray(y))
    return np.stack(out_a), np.stack(out_b), np.stack(out_y).astype(np.float32)


class Trainer:
    """One net, its optimiser and schedule over ``steps``, and the random state: all saved in a checkpoint."""

    def __init__(self, net, steps: int, lr: float, seed: int, device: str) -> None:
        self.net, self.steps, self.device = net.to(device), int(steps), device
        self.opt = torch.optim.Adam(self.net.parameters(), lr=lr)
        self.sched = torch.optim.lr_scheduler.OneCycleLR(self.opt, max_lr=lr, total_steps=max(self.steps, 2), pct_start=0.1)
        self.rng = np.random.default_rng(seed)
        self.step = 0
        self.losses: list[float] = []

    def run(self, pairs: list[Pair], batch: int, crop: int, checkpoint: Path, checkpoint_every: int, progress=None, extra=None) -> dict:
        """Train up to ``steps``. Ctrl-C or SIGTERM stops at the end of the step under way: the checkpoint then holds whole
        steps only (weights, optimiser and random state of the same step), so --resume goes on exactly as if never
        stopped; KeyboardInterrupt is then raised."""
        start = time.monotonic()
        self.net.train()
        stop = []
        handlers = {sig: signal.signal(sig, lambda signum, frame: stop.append(signum)) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            while self.step < self.steps and not stop:
                a, b, y = crops(pairs, self.rng, batch, crop)
                loss = loss_of(self.net(to_tensor(a, self.device), to_tensor(b, self.device))[:, 0], torch.from_numpy(y).to(self.device))
                self.opt.zero_grad(set_to_none=True)
                loss.backward()
                self.opt.step()
                if self.step < max(self.steps, 2) - 1:
                    self.sched.step()
                self.step += 1
                self.losses.append(float(loss.item()))
                if progress is not None:
                    progress(self.step, self.steps, float(np.mean(self.losses[-20:])))
                if checkpoint_every and self.step % checkpoint_every == 0:
                    self.save(checkpoint, extra)
        finally:
            for sig, handler in handlers.items():
                signal.signal(sig, handler)
        self.save(checkpoint, extra)
        if stop:
            raise KeyboardInterrupt
        self.net.eval()
        return {"steps": self.step, "seconds": round(time.monotonic() - start, 1),
                "loss_first": self.losses[0] if self.losses else None,
                "loss_last": float(np.mean(self.losses[-20:])) if self.losses else None}

    def save(self, path: Path, extra=None) -> None:
        """Written under a temporary name and moved into place: a kill while saving leaves the last good checkpoint."""
        path.parent.mkdir(parents=True, exist_ok=True)
        state = {"net": self.net.state_dict(), "opt": self.opt.state_dict(), "sched": self.sched.state_dict(), "step": self.step,
                 "steps": self.steps, "losses": self.losses, "rng": self.rng.bit_generator.state,
                 "torch_rng": torch.get_rng_state(), "python_rng": random.getstate(), "extra": extra or {}}
        tmp = path.with_name(path.name + ".partial")
        torch.save(state, tmp)
        tmp.replace(path)

    def load(self, path: Path) -> dict:
        state = torch.load(path, map_location=self.device, weights_only=False)
        self.net.load_state_dict(state["net"])
        self.opt.load_state_dict(state["opt"])
        self.sched.load_state_dict(state["sched"])
        self.step, self.losses = int(state["step"]), list(state["losses"])
        self.rng.bit_generator.state = state["rng"]
        torch.set_rng_state(state["torch_rng"])
        random.setstate(state["python_rng"])
        return state.get("extra", {})

"""Learning-rate schedule, EMA and a step budget shared by both training stages."""

from __future__ import annotations

import copy
import math
import time

import torch


def warmup_cosine(step: int, warmup: int, progress: float, floor: float = 0.1) -> float:
    """LR multiplier: linear warm-up over ``warmup`` steps, then cosine decay to ``floor`` at progress 1."""
    if step < warmup:
        return (step + 1) / warmup
    return floor + (1.0 - floor) * 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))


class EMA:
    """Exponential moving average of a model's weights (decay ramps up over the first steps)."""

    def __init__(self, model: torch.nn.Module, decay: float):
        self.model = copy.deepcopy(model).eval().requires_grad_(False)
        self.decay = decay

    @torch.no_grad()
    def update(self, model: torch.nn.Module, step: int) -> None:
        d = min(self.decay, (1 + step) / (10 + step))
        for e, p in zip(self.model.parameters(), model.parameters()):
            e.lerp_(p.detach().float(), 1.0 - d)


class Budget:
    """Stops a run at a step count or a wall-clock deadline, whichever comes first.

    ``progress`` (0..1) drives the LR decay and late-starting losses. It follows the clock when
    there is a deadline, because on a shared CPU the step rate is not known in advance.
    """

    def __init__(self, planned_steps: int, max_minutes: float | None):
        self.planned_steps = planned_steps
        self.start = time.monotonic()
        self.deadline = self.start + 60.0 * max_minutes if max_minutes else None
        self._first = self._last = None  # (step, time) of the first and last ``done`` check

    def progress(self, step: int) -> float:
        p = step / self.planned_steps
        if self.deadline is not None:
            p = max(p, (time.monotonic() - self.start) / (self.deadline - self.start))
        return min(1.0, p)

    def done(self, step: int) -> bool:
        now = time.monotonic()
        self._first, self._last = self._first or (step, now), (step, now)
        return step >= self.planned_steps or (self.deadline is not None and time.monotonic() >= self.deadline)

    def elapsed(self) -> float:
        return time.monotonic() - self.start

    def steps_per_second(self) -> float | None:
        """Training speed of this session: steps between the first and last ``done`` checks over their time."""
        if self._first is None or self._last[0] == self._first[0]:
            return None
        return (self._last[0] - self._first[0]) / (self._last[1] - self._first[1])

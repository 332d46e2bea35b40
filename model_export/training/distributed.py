"""Training on several processes: ``torchrun --nproc_per_node N -m model_export.training.train ...``.

Under torchrun with N > 1 processes (ranks) the training loops run DistributedDataParallel: NCCL between
GPUs (one per rank, ``LOCAL_RANK``), gloo between CPU processes. Each rank draws its own crops from its
own shard of the tiles with its own random streams (seeded by the run's seed, the rank and the step it
starts at); gradients are averaged across ranks, so every rank holds the same weights (checked at the
end). Rank 0 alone prints, shows progress and writes checkpoints and summaries, and the checkpoints
hold the unwrapped modules, so a run resumes on any number of ranks. Rank 0 also decides when the
budget is spent (steps or ``--max-minutes``): all ranks stop at the same step.

The config's ``batch_size`` is per rank: N ranks train on N times the batch at the same learning rate.

Without torchrun (or with one process) nothing here does anything and a run is what it always was.
"""

from __future__ import annotations

import os
import random
import sys

import numpy as np
import torch
import torch.distributed as tdist

_device = torch.device("cpu")  # where collectives' tensors live: the rank's GPU under NCCL


def requested() -> bool:
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def active() -> bool:
    return tdist.is_available() and tdist.is_initialized()


def rank() -> int:
    return tdist.get_rank() if active() else 0


def world_size() -> int:
    return tdist.get_world_size() if active() else 1


def is_main() -> bool:
    return rank() == 0


def setup(device: str) -> None:
    """Join the process group when started by torchrun with more than one process."""
    global _device
    if not requested() or active():
        return
    if device == "cuda":
        local = int(os.environ.get("LOCAL_RANK", "0"))
        if local >= torch.cuda.device_count():
            raise SystemExit(f"error: rank {rank()} wants GPU {local} but this machine has "
                             f"{torch.cuda.device_count()}; give torchrun --nproc_per_node at most that many.")
        torch.cuda.set_device(local)  # "cuda" in the loops then means this rank's GPU
        _device = torch.device("cuda", local)
        tdist.init_process_group("nccl")
    else:
        tdist.init_process_group("gloo")
    if not is_main():  # one log: rank 0's (the loops show progress bars on rank 0 only)
        sys.stdout = open(os.devnull, "w")


def teardown() -> None:
    if active():
        tdist.destroy_process_group()


def wrap(module: torch.nn.Module) -> torch.nn.Module:
    """The module for the training forward pass: DistributedDataParallel across ranks, else itself.
    Keep the unwrapped module for checkpoints."""
    if not active():
        return module
    ids = [_device.index] if _device.type == "cuda" else None
    return torch.nn.parallel.DistributedDataParallel(module, device_ids=ids)


def shard(items: list) -> list:
    """This rank's share (every N-th item); all items when there are fewer than ranks."""
    n = world_size()
    return items[rank()::n] if len(items) >= n else items


def cache_name(name: str) -> str:
    """A per-rank file name for caches of a rank's shard (``latents.pt`` on one process)."""
    if not active():
        return name
    stem, dot, suffix = name.rpartition(".")
    return f"{stem}-rank{rank()}-of-{world_size()}{dot}{suffix}"


def rank_streams(np_rng: np.random.Generator, seed: int, step: int) -> None:
    """Give this rank its own numpy, torch and Python random streams (also after a resume, which
    restores rank 0's streams on every rank)."""
    if not active():
        return
    state = np.random.SeedSequence([seed, rank(), step])
    np_rng.bit_generator.state = np.random.default_rng(state).bit_generator.state
    value = int(state.generate_state(1, np.uint32)[0])
    torch.manual_seed(value)
    random.seed(value)


class AgreedBudget:
    """A ``Budget`` whose answers (done, progress) are rank 0's, broadcast each step: clocks differ
    between ranks, and ranks that disagree would hang in the next all-reduce or use other learning rates."""

    def __init__(self, budget):
        self.budget, self.planned_steps = budget, budget.planned_steps
        self._step, self._progress = None, 0.0

    def done(self, step: int) -> bool:
        answer = torch.tensor([self.budget.progress(step), float(self.budget.done(step))], dtype=torch.float64,
                              device=_device)
        tdist.broadcast(answer, 0)
        self._step, self._progress = step, float(answer[0])
        return bool(answer[1] > 0)

    def progress(self, step: int) -> float:
        if step != self._step:
            self.done(step)
        return self._progress

    def elapsed(self) -> float:
        return self.budget.elapsed()

    def steps_per_second(self) -> float | None:
        return self.budget.steps_per_second()


def agreed(budget):
    return AgreedBudget(budget) if active() else budget


def images_per_second(budget, batch_size: int) -> float | None:
    """Training crops per second over all ranks in this session (None when it made no step)."""
    rate = budget.steps_per_second()
    return None if rate is None else round(rate * batch_size * world_size(), 2)


def _sum_(t: torch.Tensor) -> None:
    buf = t.to(_device)
    tdist.all_reduce(buf)
    t.copy_(buf)


def _from_main_(t: torch.Tensor) -> None:
    buf = t.detach().to(_device)
    tdist.broadcast(buf, 0)
    t.data.copy_(buf)


def codebook_sync() -> dict:
    """Keyword arguments for ``CodebookUsage``: count code hits over all ranks' batches, and give every
    rank rank 0's re-seeded codes (each rank re-seeds from its own batch)."""
    return {"sum_across": _sum_, "from_main": _from_main_} if active() else {}


@torch.no_grad()
def verify_replicas(*modules: torch.nn.Module | None) -> None:
    """Raise if any rank's weights differ from rank 0's (gradients not averaged, or a buffer edited on one rank)."""
    if not active():
        return
    for module in (m for m in modules if m is not None):
        mine = torch.stack([torch.cat([p.detach().double().flatten() for p in module.parameters()]).sum(),
                            torch.cat([p.detach().double().flatten() ** 2 for p in module.parameters()]).sum()]).to(_device)
        main = mine.clone()
        tdist.broadcast(main, 0)
        if not torch.equal(mine, main):
            raise RuntimeError(f"rank {rank()}'s {type(module).__name__} weights differ from rank 0's after training "
                               f"(checksums {mine.tolist()} against {main.tolist()}): the ranks trained apart.")

"""Checkpoints that survive being killed: written to a temporary name, then renamed into place."""

from __future__ import annotations

import os
import random
from pathlib import Path

import numpy as np
import torch


def save_atomic(obj: dict, path: Path) -> None:
    tmp = path.with_name(path.name + ".tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def load_if_present(path: Path) -> dict | None:
    return torch.load(path, map_location="cpu", weights_only=False) if path.is_file() else None


def rng_state(np_rng: np.random.Generator) -> dict:
    return {"numpy": np_rng.bit_generator.state, "torch": torch.get_rng_state(), "python": random.getstate()}


def restore_rng(state: dict, np_rng: np.random.Generator) -> None:
    np_rng.bit_generator.state = state["numpy"]
    torch.set_rng_state(state["torch"])
    random.setstate(state["python"])

"""What a training run records about itself (copied into model.json's "training")."""

from __future__ import annotations

import json
import os
import platform
from pathlib import Path

import torch


def hardware(device: str) -> str:
    if device == "cuda":
        return f"{torch.cuda.get_device_name(0)} (CUDA), torch {torch.__version__}"
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{cpu}, {torch.get_num_threads()} threads (of {os.cpu_count()} cores), torch {torch.__version__} CPU"


def loss_summary(history: list[float]) -> dict:
    """Mean loss over the first and the last tenth of the steps (a run's loss must fall)."""
    if not history:
        return {}
    k = max(1, len(history) // 10)
    return {"first": sum(history[:k]) / k, "last": sum(history[-k:]) / k}


def write_summary(out: Path, summary: dict) -> None:
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")

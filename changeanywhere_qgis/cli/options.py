"""Command-line options that several commands share, so their help and defaults cannot drift."""

from __future__ import annotations

import argparse

from ..engine.diffusion import DEFAULT_ETA


def add_sampler_arguments(p: argparse.ArgumentParser) -> None:
    """--steps, --eta and --guidance (None: the model's own scale, which `info` shows)."""
    p.add_argument("--steps", type=int, default=50, help="DDIM steps (default 50)")
    p.add_argument("--eta", type=float, default=DEFAULT_ETA, help=f"DDIM eta, 0 = deterministic updates (default {DEFAULT_ETA:g})")
    p.add_argument("--guidance", type=float,
                   help="classifier-free guidance scale, 1 = none; higher follows the map more closely but saturates colours "
                        "(default: the model's own, which `info` shows)")

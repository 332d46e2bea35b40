"""The model package's pixel range: uint8 pixels <-> float32 in [-1, 1] (``x / 127.5 - 1``, docs/reference/model-package.md)."""

from __future__ import annotations

import numpy as np


def to_model_range(image: np.ndarray) -> np.ndarray:
    """uint8 pixels -> float32 in [-1, 1], what the encoder takes."""
    return image.astype(np.float32) / 127.5 - 1.0


def to_uint8(image: np.ndarray) -> np.ndarray:
    """[-1, 1] floats (what the decoder gives) -> uint8 pixels."""
    return np.clip(np.round((image + 1.0) * 127.5), 0, 255).astype(np.uint8)

"""Remapping a raster's codes into the model's scheme: built-in tables (``remaps/<name>.json``) or the user's JSON.

A table maps "their code" to "our code"; codes it does not name keep their value (and are then
checked against the scheme). Keys starting with ``_`` are comments (a table's source and reasons).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ..errors import InputError

TABLES = Path(__file__).resolve().parent / "remaps"


def builtin_remaps() -> list[str]:
    """The names ``--remap`` accepts besides a file, e.g. ``loveda``."""
    return sorted(p.stem for p in TABLES.glob("*.json"))


def _read_table(path: Path) -> dict:
    try:
        mapping = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, OSError) as exc:
        raise InputError(f"Remap file {path} is not valid JSON ({exc}). Expected {{\"from\": to, ...}}.") from exc
    if not isinstance(mapping, dict):
        raise InputError(f"Remap file {path} must hold a JSON object mapping codes to codes.")
    return {k: v for k, v in mapping.items() if not str(k).startswith("_")}


def load_remap(spec: str | Path | dict | None) -> np.ndarray | None:
    """A remap given by built-in name, JSON file ({"from": to, ...}) or dict -> a 256-entry lookup table."""
    if spec is None or spec == "":
        return None
    if isinstance(spec, dict):
        mapping = spec
    elif str(spec).lower() in builtin_remaps():
        mapping = _read_table(TABLES / f"{str(spec).lower()}.json")
    else:
        path = Path(spec)
        if not path.is_file():
            raise InputError(
                f"Remap {spec!r} is neither a built-in table ({', '.join(builtin_remaps())}) nor a file. "
                'Give a JSON file like {"1": 2, "2": 8}.'
            )
        mapping = _read_table(path)
    lut = np.arange(256, dtype=np.uint8)
    for src, dst in mapping.items():
        try:
            s, d = int(src), int(dst)
        except (TypeError, ValueError) as exc:
            raise InputError(f"Remap entry {src!r}: {dst!r} is not a pair of integer codes.") from exc
        if not (0 <= s <= 255 and 0 <= d <= 255):
            raise InputError(f"Remap entry {s}: {d} is outside 0..255 (land-cover rasters are uint8).")
        lut[s] = d
    return lut

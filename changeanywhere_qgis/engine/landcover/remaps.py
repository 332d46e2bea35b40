"""Remapping a raster's codes into the model's scheme: built-in tables (``remaps/<name>.json``) or the user's JSON.

A table maps "their code" to "our code"; codes it does not name keep their value (and are then
checked against the scheme). Keys starting with ``_`` are not codes: ``_about`` says where the
scheme comes from and why each choice is what it is; ``_mask_colours`` lists the colours of the
scheme's colour-coded masks, as some datasets ship them (:func:`codes_from_colours` reads those).
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


def _read_json(path: Path) -> dict:
    try:
        mapping = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, OSError) as exc:
        raise InputError(f"Remap file {path} is not valid JSON ({exc}). Expected {{\"from\": to, ...}}.") from exc
    if not isinstance(mapping, dict):
        raise InputError(f"Remap file {path} must hold a JSON object mapping codes to codes.")
    return mapping


def _codes(mapping: dict, comments: bool = True) -> dict[int, int]:
    """{their code: our code} of a table; a table's ``_`` keys (comments, mask colours) are left out, a dict's are errors."""
    codes = {}
    for src, dst in mapping.items():
        if comments and str(src).startswith("_"):
            continue
        try:
            s, d = int(src), int(dst)
        except (TypeError, ValueError) as exc:
            raise InputError(f"Remap entry {src!r}: {dst!r} is not a pair of integer codes.") from exc
        if not (0 <= s <= 255 and 0 <= d <= 255):
            raise InputError(f"Remap entry {s}: {d} is outside 0..255 (land-cover rasters are uint8).")
        codes[s] = d
    return codes


def _builtin_path(name: str) -> Path:
    if name.lower() not in builtin_remaps():
        raise InputError(f"No built-in remap {name!r}; the built-in ones are {', '.join(builtin_remaps())}.")
    return TABLES / f"{name.lower()}.json"


def builtin_remap(name: str) -> dict[int, int]:
    """The built-in table ``name`` as {their code: our code} (e.g. for the training side's data reader)."""
    return _codes(_read_json(_builtin_path(name)))


def read_remap_file(path: str | Path) -> dict[int, int]:
    """A user's JSON table ({"their code": our code}, ``_`` keys allowed as comments) as {their code: our code}."""
    return _codes(_read_json(Path(path)))


def load_remap(spec: str | Path | dict | None) -> np.ndarray | None:
    """A remap given by built-in name, JSON file ({"from": to, ...}) or dict -> a 256-entry lookup table."""
    if spec is None or spec == "":
        return None
    if isinstance(spec, dict):
        mapping = _codes(spec, comments=False)
    elif str(spec).lower() in builtin_remaps():
        mapping = builtin_remap(str(spec))
    else:
        path = Path(spec)
        if not path.is_file():
            raise InputError(
                f"Remap {spec!r} is neither a built-in table ({', '.join(builtin_remaps())}) nor a file. "
                'Give a JSON file like {"1": 2, "2": 8}.'
            )
        mapping = read_remap_file(path)
    lut = np.arange(256, dtype=np.uint8)
    for s, d in mapping.items():
        lut[s] = d
    return lut


def mask_colours(name: str) -> dict[tuple[int, int, int], int]:
    """The built-in scheme ``name``'s mask colours -> its codes (empty when the table lists none)."""
    table = _read_json(_builtin_path(name))
    return {tuple(int(h.lstrip("#")[i : i + 2], 16) for i in (0, 2, 4)): int(code)
            for h, code in table.get("_mask_colours", {}).items()}


def codes_from_colours(rgb: np.ndarray, colours: dict[tuple[int, int, int], int], what: str = "The mask") -> np.ndarray:
    """An [H, W, 3] colour-coded mask -> uint8 [H, W] codes; a colour not in ``colours`` is an error that names it."""
    packed = (rgb[..., 0].astype(np.uint32) << 16) | (rgb[..., 1].astype(np.uint32) << 8) | rgb[..., 2]
    values, inverse = np.unique(packed, return_inverse=True)
    lookup = {(r << 16) | (g << 8) | b: code for (r, g, b), code in colours.items()}
    unknown = [f"#{int(v):06x}" for v in values if int(v) not in lookup]
    if unknown:
        raise InputError(f"{what} holds colours that its scheme does not list: {', '.join(unknown[:10])}. "
                         f"Known: {', '.join(f'#{r:02x}{g:02x}{b:02x}={c}' for (r, g, b), c in colours.items())}.")
    return np.array([lookup[int(v)] for v in values], dtype=np.uint8)[inverse].reshape(packed.shape)

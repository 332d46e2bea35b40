"""Land-cover class schemes: codes, names and colours, as the model's manifest lists them.

The classes come from the model's manifest, never from code: a model trained on another scheme
brings its own. Rasters labelled in another scheme are remapped on reading (``remaps.py``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from ..errors import InputError


@dataclass(frozen=True)
class LandCoverClass:
    code: int
    name: str
    color: tuple[int, int, int]


def _normalise(name: str) -> str:
    return re.sub(r"[\s_\-]+", " ", name.strip().lower())


@dataclass(frozen=True)
class ClassScheme:
    classes: tuple[LandCoverClass, ...]
    nodata_code: int = 0

    @classmethod
    def from_manifest(cls, manifest: dict) -> "ClassScheme":
        classes = tuple(
            LandCoverClass(int(c["code"]), str(c["name"]), tuple(int(v) for v in c["color"]))
            for c in manifest["classes"]
        )
        return cls(classes, int(manifest.get("nodata_code", 0)))

    @property
    def codes(self) -> list[int]:
        return [c.code for c in self.classes]

    def name_of(self, code: int) -> str:
        if code == self.nodata_code:
            return "unknown"
        for c in self.classes:
            if c.code == code:
                return c.name
        return f"code {code}"

    def resolve(self, value) -> int:
        """A class given as a code (int or numeric text) or a name (any case) -> its code."""
        if isinstance(value, (int, np.integer)) or (isinstance(value, str) and value.strip().isdigit()):
            code = int(value)
            if code in self.codes:
                return code
        elif isinstance(value, str):
            wanted = _normalise(value)
            for c in self.classes:
                if _normalise(c.name) == wanted:
                    return c.code
        known = ", ".join(f"{c.code}={c.name}" for c in self.classes)
        raise InputError(f"Unknown target class {value!r}. Use one of the model's classes (code or name): {known}.")

    def check_codes(self, labels: np.ndarray, nodata: int | None = None, what: str = "The semantic raster") -> None:
        """Raise if the raster holds codes the scheme does not know (nodata aside)."""
        present = np.unique(labels)
        allowed = set(self.codes) | {self.nodata_code}
        if nodata is not None:
            allowed.add(int(nodata))
        unknown = sorted(int(v) for v in present if int(v) not in allowed)
        if unknown:
            known = ", ".join(f"{c.code}={c.name}" for c in self.classes)
            raise InputError(
                f"{what} holds codes the model's class scheme does not know: {unknown}. "
                f"The model knows {known} (and {self.nodata_code} = unknown). If the raster uses another "
                "scheme, pass a remap (--remap loveda, or a JSON file mapping its codes to these)."
            )

    def one_hot(self, labels: np.ndarray) -> np.ndarray:
        """[N, H, W] (or [H, W]) codes -> float32 [N, K, H, W]; unknown/nodata pixels are all zero."""
        batch = labels[None] if labels.ndim == 2 else labels
        out = np.zeros((batch.shape[0], len(self.classes)) + batch.shape[1:], dtype=np.float32)
        for k, c in enumerate(self.classes):
            out[:, k] = batch == c.code
        return out

    def colormap(self) -> dict[int, tuple[int, int, int, int]]:
        """Colour table for GeoTIFF palettes (code -> RGBA); nodata is transparent black."""
        table = {self.nodata_code: (0, 0, 0, 0)}
        table.update({c.code: (*c.color, 255) for c in self.classes})
        return table

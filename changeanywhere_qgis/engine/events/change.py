"""Change events on a semantic (land-cover) mask, step 2 of the method: what they are and the mask they leave.

Two ways to turn the pre-event map into a post-event map live beside this module, in this room:

* ``polygons.events_from_polygons``: the user draws polygons, each carrying the class the land becomes.
* ``random_objects.random_events``: object-level random events (add copies of objects, remove objects, turn
  objects into another class under a transition table), seeded and reproducible.

Pixels equal to the raster's nodata value or to the scheme's nodata code never change.
No QGIS import here: the adapters turn :class:`InputError` into QGIS messages.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..errors import InputError
from ..landcover import ClassScheme

EVENT_KINDS = ("polygon", "add", "remove", "transition")


@dataclass
class ChangeEvent:
    """One simulated or drawn event."""

    kind: str  # "polygon" | "add" | "remove" | "transition"
    to_code: int
    from_codes: list[int]  # classes the changed pixels had before
    pixels: int  # pixels actually changed
    source: str | None = None  # "feature 3" for polygons; the pixel window for random events

    def to_dict(self) -> dict:
        return {
            "kind": str(self.kind),
            "to_code": int(self.to_code),
            "from_codes": [int(c) for c in self.from_codes],
            "pixels": int(self.pixels),
            "source": self.source,
        }


@dataclass
class ChangeResult:
    post: np.ndarray  # uint8 post-event map, same shape as the input
    events: list[ChangeEvent]

    @property
    def changed_pixels(self) -> int:
        return int(sum(e.pixels for e in self.events))

    def to_dict(self) -> dict:
        return {"changed_pixels": self.changed_pixels, "events": [e.to_dict() for e in self.events]}


# Helpers shared by polygons.py and random_objects.py (this room only).


def as_labels(labels) -> np.ndarray:
    arr = np.asarray(labels)
    if arr.ndim == 3 and arr.shape[0] == 1:
        arr = arr[0]
    if arr.ndim != 2:
        raise InputError(
            f"The semantic raster must be a single band [rows, columns]; got an array of shape {arr.shape}. "
            "Give a one-band land-cover raster."
        )
    if arr.dtype == np.uint8:
        return arr
    if not np.issubdtype(arr.dtype, np.integer) or (arr.size and (arr.min() < 0 or arr.max() > 255)):
        raise InputError(
            f"The semantic raster holds {arr.dtype} values outside the land-cover codes 0..255. "
            "Give a uint8 raster of class codes (remap it first if it uses another scheme)."
        )
    return arr.astype(np.uint8)


def frozen_pixels(labels: np.ndarray, scheme: ClassScheme, nodata) -> np.ndarray:
    """Pixels that never change: the scheme's nodata code and the raster's nodata value."""
    mask = labels == scheme.nodata_code
    if nodata is not None:
        try:
            value = float(nodata)
        except (TypeError, ValueError):
            value = math.nan
        if math.isfinite(value) and value.is_integer() and 0 <= value <= 255:
            mask |= labels == int(value)
    return mask


def class_names(scheme: ClassScheme, codes) -> str:
    return ", ".join(f"{scheme.name_of(int(c))} ({int(c)})" for c in codes)


def window_text(slc: tuple[slice, slice]) -> str:
    return f"rows {slc[0].start}-{slc[0].stop - 1}, cols {slc[1].start}-{slc[1].stop - 1}"


def change_mask(pre, post, nodata=None) -> np.ndarray:
    """uint8 change mask: 1 changed, 0 unchanged, 255 where ``pre`` is nodata."""
    pre = np.asarray(pre)
    post = np.asarray(post)
    if pre.shape != post.shape:
        raise InputError(
            f"The pre- and post-event maps differ in shape ({pre.shape} vs {post.shape}). "
            "Give two maps of the same grid."
        )
    out = (pre != post).astype(np.uint8)
    if nodata is not None:
        out[pre == nodata] = 255
    return out

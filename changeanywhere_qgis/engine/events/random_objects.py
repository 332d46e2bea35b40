"""Random object-level change events: add copies of objects, remove objects, and turn objects
into another class under a transition table; seeded and reproducible.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from ..errors import InputError
from .change import ChangeEvent, ChangeResult, as_labels, frozen_pixels, window_text
from ..landcover import ClassScheme
from .transitions import TransitionTable, load_table


_CROSS = ndimage.generate_binary_structure(2, 1)


_ROWS_PIXELS = 1 << 20  # whole-raster passes go a band of rows at a time: no whole-raster int64 or bool temporaries


@dataclass
class _Object:
    code: int
    slc: tuple[slice, slice]
    packed: np.ndarray  # the bool mask over slc, packed 8 pixels a byte: thousands of objects stay small
    size: int

    @property
    def mask(self) -> np.ndarray:
        h, w = self.slc[0].stop - self.slc[0].start, self.slc[1].stop - self.slc[1].start
        return np.unpackbits(self.packed, count=h * w).reshape(h, w).view(bool)


def _row_bands(height: int, width: int):
    rows = max(1, _ROWS_PIXELS // max(width, 1))
    return [slice(r, min(r + rows, height)) for r in range(0, height, rows)]


def _objects(labels: np.ndarray, valid: np.ndarray, codes, min_pixels: int) -> list[_Object]:
    """4-connected objects of each class with more than ``min_pixels`` pixels, in a fixed order."""
    found = []
    bands = _row_bands(*labels.shape)
    region = np.empty(labels.shape, dtype=bool)
    lab = np.empty(labels.shape, dtype=np.int32)
    for code in codes:
        for b in bands:
            np.logical_and(labels[b] == code, valid[b], out=region[b])
        n = ndimage.label(region, structure=_CROSS, output=lab)
        if n == 0:
            continue
        sizes = np.zeros(n + 1, dtype=np.int64)
        for b in bands:  # np.bincount of the whole int32 image would make an int64 copy of it
            sizes += np.bincount(lab[b].ravel(), minlength=n + 1)
        for k, slc in enumerate(ndimage.find_objects(lab), start=1):
            if slc is not None and sizes[k] > min_pixels:
                found.append(_Object(int(code), slc, np.packbits(lab[slc] == k, axis=None), int(sizes[k])))
    return found


def _changeable(labels: np.ndarray, scheme: ClassScheme, nodata, codes) -> np.ndarray:
    """Valid land a table lets change: not nodata, of a class the table knows (a band of rows at a time)."""
    out = np.empty(labels.shape, dtype=bool)
    for b in _row_bands(*labels.shape):
        out[b] = ~frozen_pixels(labels[b], scheme, nodata) & np.isin(labels[b], codes)
    return out


def _pad(slc, shape, pad=1):
    r, c = slc
    return (
        slice(max(r.start - pad, 0), min(r.stop + pad, shape[0])),
        slice(max(c.start - pad, 0), min(c.stop + pad, shape[1])),
    )


def _count(value, n_valid: int, rng: np.random.Generator, what: str) -> int:
    """How many add/remove events: given, or a small random number scaled by the valid area."""
    if value is None:
        per_tile = max(1, math.ceil(2 * n_valid / 65536))  # 1..2 per 256x256 tile of valid land
        return int(rng.integers(1, per_tile + 1))
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
        raise InputError(f"Option {what} must be a whole number >= 0 (or empty for automatic); got {value!r}.")
    return int(value)


def random_events(
    labels,
    scheme: ClassScheme,
    seed_or_rng,
    nodata=None,
    table=None,
    transition_probability: float = 0.3,
    add_objects: int | None = None,
    remove_objects: int | None = None,
    min_object_pixels: int = 64,
    max_changed_fraction: float = 0.3,
) -> ChangeResult:
    """Object-level random change events, reproducible from ``seed_or_rng``.

    Objects are 4-connected regions of one class larger than ``min_object_pixels``. In order:

    1. remove ``remove_objects`` objects, filling each with the most frequent class on its border
       that the table lets it become (never nodata);
    2. add ``add_objects`` copies of objects (shapes rotated/flipped at random, at most 1/16 of the
       valid area) at random free places: untouched, valid land not of the copied class, which the
       table lets become that class, and not touching the same class;
    3. turn each remaining object, with ``transition_probability``, into a class the table allows.

    ``add_objects``/``remove_objects`` None: 1..N each, N = 2 per 256x256 px of valid land.
    ``table``: TransitionTable, dict, JSON path/text, or None for :func:`default_table`. Every
    changed pixel obeys the table. Events that would push the changed pixels above
    ``max_changed_fraction`` of the valid pixels are skipped.
    """
    labels = as_labels(labels)
    rng = seed_or_rng if isinstance(seed_or_rng, np.random.Generator) else np.random.default_rng(seed_or_rng)
    if not (0.0 <= float(transition_probability) <= 1.0):
        raise InputError(f"Option transition_probability must lie in 0..1; got {transition_probability!r}.")
    if not (0.0 < float(max_changed_fraction) <= 1.0):
        raise InputError(f"Option max_changed_fraction must lie in (0, 1]; got {max_changed_fraction!r}.")
    if isinstance(min_object_pixels, bool) or not isinstance(min_object_pixels, (int, np.integer)) or min_object_pixels < 0:
        raise InputError(f"Option min_object_pixels must be a whole number >= 0; got {min_object_pixels!r}.")
    tbl: TransitionTable = load_table(table, scheme)
    allow = tbl.matrix()

    valid = _changeable(labels, scheme, nodata, tbl.codes)
    n_valid = int(valid.sum())
    n_remove = _count(remove_objects, n_valid, rng, "remove_objects")
    n_add = _count(add_objects, n_valid, rng, "add_objects")
    post = labels.copy()
    if n_valid == 0:
        return ChangeResult(post, [])
    budget = int(max_changed_fraction * n_valid)
    changed = np.zeros(labels.shape, dtype=bool)
    objects = _objects(labels, valid, tbl.codes, int(min_object_pixels))
    events: list[ChangeEvent] = []
    total = 0

    # 1. remove objects
    done = 0
    for k in rng.permutation(len(objects)) if n_remove else []:
        if done >= n_remove:
            break
        obj = objects[k]
        if total + obj.size > budget:
            continue
        win = _pad(obj.slc, labels.shape)
        r0, c0 = obj.slc[0].start - win[0].start, obj.slc[1].start - win[1].start
        mask = np.zeros((win[0].stop - win[0].start, win[1].stop - win[1].start), dtype=bool)
        mask[r0 : r0 + obj.mask.shape[0], c0 : c0 + obj.mask.shape[1]] = obj.mask
        if changed[win][mask].any():
            continue
        ring = ndimage.binary_dilation(mask, structure=_CROSS) & ~mask & valid[win] & ~changed[win]
        neigh = labels[win][ring]
        neigh = neigh[allow[obj.code, neigh]]
        if neigh.size == 0:
            continue
        fill = int(np.argmax(np.bincount(neigh)))
        post[win][mask] = fill
        changed[win] |= mask
        total += obj.size
        done += 1
        events.append(ChangeEvent("remove", fill, [obj.code], obj.size, window_text(obj.slc)))

    # 2. add copies of objects
    max_copy = max(min_object_pixels + 1, n_valid // 16)
    sources = [o for o in objects if o.size <= max_copy]
    height, width = labels.shape
    done = 0
    tries = 0
    while sources and done < n_add and tries < 40 * n_add:
        tries += 1
        obj = sources[int(rng.integers(len(sources)))]
        shape = np.rot90(obj.mask, int(rng.integers(4)))
        if rng.random() < 0.5:
            shape = shape[:, ::-1]
        h, w = shape.shape
        if h > height or w > width or total + obj.size > budget:
            continue
        r, c = int(rng.integers(0, height - h + 1)), int(rng.integers(0, width - w + 1))
        dest = (slice(r, r + h), slice(c, c + w))
        under = post[dest][shape]
        if not (valid[dest][shape].all() and not changed[dest][shape].any() and allow[under, obj.code].all()):
            continue
        win = _pad(dest, labels.shape)
        big = np.zeros((win[0].stop - win[0].start, win[1].stop - win[1].start), dtype=bool)
        big[r - win[0].start : r - win[0].start + h, c - win[1].start : c - win[1].start + w] = shape
        if (post[win][ndimage.binary_dilation(big, structure=_CROSS)] == obj.code).any():
            continue  # would merge with an object of the same class
        froms = sorted(int(v) for v in np.unique(under))
        post[dest][shape] = obj.code
        changed[dest] |= shape
        total += obj.size
        done += 1
        events.append(ChangeEvent("add", obj.code, froms, obj.size, window_text(dest)))

    # 3. random transitions of whole objects
    p = float(transition_probability)
    for k in rng.permutation(len(objects)) if p > 0 else []:
        if rng.random() >= p:
            continue
        obj = objects[k]
        if total + obj.size > budget or changed[obj.slc][obj.mask].any():
            continue
        options = tbl.targets(obj.code)
        if not options:
            continue
        to = int(options[int(rng.integers(len(options)))])
        post[obj.slc][obj.mask] = to
        changed[obj.slc] |= obj.mask
        total += obj.size
        events.append(ChangeEvent("transition", to, [obj.code], obj.size, window_text(obj.slc)))

    return ChangeResult(post, events)

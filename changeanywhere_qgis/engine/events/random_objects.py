"""Random object-level change events: add copies of objects, remove objects, and turn objects
into another class under a transition table; seeded and reproducible.
"""

from __future__ import annotations

import math
from collections import OrderedDict

import numpy as np
from scipy import ndimage

from ..errors import InputError
from ..io import Scratch, is_scratch, row_bands
from .change import ChangeEvent, ChangeResult, as_labels, frozen_pixels, window_text
from .components import CROSS, WINDOW, Components, find_components
from ..landcover import ClassScheme
from .transitions import TransitionTable, load_table


_ROWS_PIXELS = 1 << 20  # whole-raster passes go a band of rows at a time: no whole-raster int64 or bool temporaries
_OBJECT_PIXELS = 1 << 20  # an object's window is read and written in bands of rows of about this many pixels
_LARGEST_COPY = 1 << 22  # px of the box of an object copied on a large map
_CACHE_BYTES = 1 << 25  # shapes of copied objects kept for their next copy


def _changeable(labels, scheme: ClassScheme, nodata, codes, scratch: Scratch):
    """Valid land a table lets change: not nodata, of a class the table knows (a band of rows at a time); and its count."""
    out = scratch.empty(bool, "changeable")
    count = 0
    for b in row_bands(*labels.shape, pixels=_ROWS_PIXELS):
        lab = labels[b, :]
        band = ~frozen_pixels(lab, scheme, nodata) & np.isin(lab, codes)
        out[b, :] = band
        count += int(np.count_nonzero(band))
    return out, count


def _bands(win, halo: int = 0):
    """(band, band with ``halo`` rows above and below inside ``win``) of the window's rows, about _OBJECT_PIXELS each."""
    rows = win[0]
    step = max(1, _OBJECT_PIXELS // max(win[1].stop - win[1].start, 1))
    for a in range(rows.start, rows.stop, step):
        b = min(a + step, rows.stop)
        yield slice(a, b), slice(max(a - halo, rows.start), min(b + halo, rows.stop))


class _Objects:
    """The components the events work on, read and written through the map stores window by window."""

    def __init__(self, comps: Components, post, changed) -> None:
        self.comps, self.post, self.changed = comps, post, changed
        self._shapes: OrderedDict[int, np.ndarray] = OrderedDict()
        self._cached = 0

    def shape(self, k: int) -> np.ndarray:
        """bool mask of component ``k`` over its bounding box (kept for the next copy of it)."""
        if k in self._shapes:
            self._shapes.move_to_end(k)
            return self._shapes[k]
        found = self.comps.mask(k, *self.comps.slices(k))
        self._shapes[k] = found
        self._cached += found.size
        while self._cached > _CACHE_BYTES and len(self._shapes) > 1:
            self._cached -= self._shapes.popitem(last=False)[1].size
        return found

    def touches_changed(self, k: int, win) -> bool:
        return any(self.changed[band, win[1]][self.comps.mask(k, band, win[1])].any() for band, _ in _bands(win))

    def set(self, k: int, win, code: int) -> None:
        """Component ``k`` becomes ``code`` in the post-event map, and counts as changed."""
        for band, _ in _bands(win):
            mask = self.comps.mask(k, band, win[1])
            if mask.any():
                post, changed = self.post[band, win[1]], self.changed[band, win[1]]
                post[mask] = code
                changed |= mask
                self.post[band, win[1]], self.changed[band, win[1]] = post, changed


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
    scratch: Scratch | None = None,
    window: int = WINDOW,
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

    ``labels`` is a uint8 array or, for a large map, a ScratchRaster; ``scratch`` makes the whole-raster arrays
    (the post-event map returned is of the same kind). The components are found in ``window`` px windows
    (:mod:`.components`): the events do not depend on it.
    """
    labels = labels if is_scratch(labels) else as_labels(labels)
    scratch = scratch or Scratch(None, labels.shape)
    rng = seed_or_rng if isinstance(seed_or_rng, np.random.Generator) else np.random.default_rng(seed_or_rng)
    if not (0.0 <= float(transition_probability) <= 1.0):
        raise InputError(f"Option transition_probability must lie in 0..1; got {transition_probability!r}.")
    if not (0.0 < float(max_changed_fraction) <= 1.0):
        raise InputError(f"Option max_changed_fraction must lie in (0, 1]; got {max_changed_fraction!r}.")
    if isinstance(min_object_pixels, bool) or not isinstance(min_object_pixels, (int, np.integer)) or min_object_pixels < 0:
        raise InputError(f"Option min_object_pixels must be a whole number >= 0; got {min_object_pixels!r}.")
    tbl: TransitionTable = load_table(table, scheme)
    allow = tbl.matrix()

    valid, n_valid = _changeable(labels, scheme, nodata, tbl.codes, scratch)
    n_remove = _count(remove_objects, n_valid, rng, "remove_objects")
    n_add = _count(add_objects, n_valid, rng, "add_objects")
    post = scratch.copy(labels, "post")
    if n_valid == 0:
        return ChangeResult(post, [])
    budget = int(max_changed_fraction * n_valid)
    changed = scratch.zeros(bool, "changed")
    comps = find_components(labels, valid, tbl.codes, scratch, window)
    objects = np.flatnonzero(comps.size > int(min_object_pixels))  # in the components' order
    state = _Objects(comps, post, changed)
    events: list[ChangeEvent] = []
    total = 0

    # 1. remove objects
    done = 0
    for k in rng.permutation(len(objects)) if n_remove else []:
        if done >= n_remove:
            break
        obj = int(objects[k])
        code, size, slc = int(comps.code[obj]), int(comps.size[obj]), comps.slices(obj)
        if total + size > budget:
            continue
        win = _pad(slc, labels.shape)
        if state.touches_changed(obj, win):
            continue
        counts = np.zeros(allow.shape[1], dtype=np.int64)
        for band, around in _bands(win, halo=1):
            mask = comps.mask(obj, around, win[1])
            grown = ndimage.binary_dilation(mask, structure=CROSS)
            inner = slice(band.start - around.start, band.stop - around.start)
            ring = grown[inner] & ~mask[inner] & valid[band, win[1]] & ~changed[band, win[1]]
            counts += np.bincount(labels[band, win[1]][ring], minlength=allow.shape[1])
        counts[~allow[code]] = 0  # only the neighbours the table lets this class become
        if not counts.any():
            continue
        fill = int(np.argmax(counts))
        state.set(obj, win, fill)
        total += size
        done += 1
        events.append(ChangeEvent("remove", fill, [code], size, window_text(slc)))

    # 2. add copies of objects. A copy's shape and its place are held whole: on a large map (arrays on disk) no object
    # whose box exceeds _LARGEST_COPY is copied, so memory stays bounded (a map held in memory has no such limit)
    max_copy = max(min_object_pixels + 1, n_valid // 16)
    box_pixels = (comps.box[:, 1] - comps.box[:, 0]) * (comps.box[:, 3] - comps.box[:, 2])
    largest = _LARGEST_COPY if scratch.on_disk else labels.size
    sources = [int(o) for o in objects if comps.size[o] <= max_copy and box_pixels[o] <= largest]
    height, width = labels.shape
    done = 0
    tries = 0
    while sources and done < n_add and tries < 40 * n_add:
        tries += 1
        obj = sources[int(rng.integers(len(sources)))]
        code, size = int(comps.code[obj]), int(comps.size[obj])
        shape = np.rot90(state.shape(obj), int(rng.integers(4)))
        if rng.random() < 0.5:
            shape = shape[:, ::-1]
        h, w = shape.shape
        if h > height or w > width or total + size > budget:
            continue
        r, c = int(rng.integers(0, height - h + 1)), int(rng.integers(0, width - w + 1))
        dest = (slice(r, r + h), slice(c, c + w))
        if not valid[dest][shape].all():
            continue
        changed_here = changed[dest]
        if changed_here[shape].any():
            continue
        win = _pad(dest, labels.shape)
        around = post[win]
        inner = (slice(r - win[0].start, r - win[0].start + h), slice(c - win[1].start, c - win[1].start + w))
        under = around[inner][shape]
        if not allow[under, code].all():
            continue
        big = np.zeros(around.shape, dtype=bool)
        big[inner] = shape
        if (around[ndimage.binary_dilation(big, structure=CROSS)] == code).any():
            continue  # would merge with an object of the same class
        froms = sorted(int(v) for v in np.unique(under))
        copied = around[inner].copy()
        copied[shape] = code
        post[dest] = copied
        changed_here |= shape
        changed[dest] = changed_here
        total += size
        done += 1
        events.append(ChangeEvent("add", code, froms, size, window_text(dest)))

    # 3. random transitions of whole objects
    p = float(transition_probability)
    for k in rng.permutation(len(objects)) if p > 0 else []:
        if rng.random() >= p:
            continue
        obj = int(objects[k])
        code, size, slc = int(comps.code[obj]), int(comps.size[obj]), comps.slices(obj)
        if total + size > budget or state.touches_changed(obj, slc):
            continue
        options = tbl.targets(code)
        if not options:
            continue
        to = int(options[int(rng.integers(len(options)))])
        state.set(obj, slc, to)
        total += size
        events.append(ChangeEvent("transition", to, [code], size, window_text(slc)))

    return ChangeResult(post, events)

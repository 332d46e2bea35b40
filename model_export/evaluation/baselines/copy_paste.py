"""The copy-paste baseline (after Self-Pair, Seo et al., WACV 2023): change made of real pixels, no model.

For each sample the pre-event image A is the real window (the one the dataset command's sample of the same index
has). The post-event image B is the same window where, in turns drawn at random:

* **paste**: a real object (a 4-connected region of one class, as the engine's change events take them) cut out of
  ANOTHER window of the same maps (any place whose box does not overlap this window) is pasted, pixels and class,
  turned by a multiple of 90 degrees and maybe mirrored, onto valid land of another class that it does not touch
  (so it stays one object, as the engine's "add" events keep it);
* **paint**: a real object of the window is painted over with real ground: the pixels of a place in another window
  where the class most frequent around the object (its ground: what the engine's "remove" events fill it with)
  covers the object's whole shape; if no such place exists for that class, the next class around it.

Events go on until the changed share of the window reaches the share the dataset command's sample of the same index
has (its events are simulated from the maps alone, :func:`sources.generated_changed_share`), or ``changed_share``.
Then the whole of B gets one mild global appearance jitter (a colour gain per band and a brightness offset: a
look-up table per band, recorded in the manifest), standing in for another date's light.

The change label is exactly the pixels pasted or painted. Each B pixel's origin (raster, row, column) is kept while
the sample is made (:class:`CopyPasteSample.origin`): B is read through it, so a B pixel is either its own A pixel
or a copied one, never anything else, before the jitter.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage
from scipy.signal import fftconvolve

from changeanywhere_qgis.engine.dataset import sample_seed

from .sources import Sources, class_pixels, generated_changed_share, sample_rng

STREAM = 1  # this baseline's random stream of a sample (sources.sample_rng)
GAIN = 0.08  # jitter at strength 1: each band's gain in 1 +- GAIN,
OFFSET = 10.0  # a brightness offset in +- OFFSET grey levels shared by the bands,
BAND_OFFSET = 4.0  # and one of +- BAND_OFFSET per band
CROSS = ndimage.generate_binary_structure(2, 1)  # 4-connectivity, as the engine's objects


@dataclass(frozen=True)
class CopyPasteSettings:
    changed_share: float | None = None  # every sample's target share of changed pixels; None: the generated sample's
    transitions: str | None = None  # the transition table the generated datasets used (to match their shares)
    jitter: float = 1.0  # strength of the global appearance jitter of B (0: none)
    min_object_pixels: int = 64  # objects are larger than this, as the engine's change events take them
    max_failures: int = 60  # events that found no object or place before a sample stops short of its share

    def check(self) -> None:
        from changeanywhere_qgis.engine.errors import InputError

        if self.changed_share is not None and not 0.0 <= self.changed_share < 1.0:
            raise InputError(f"--changed-share must lie in [0, 1), got {self.changed_share}.")
        if not 0.0 <= self.jitter <= 3.0:
            raise InputError(f"--jitter must lie in 0..3 (1 = mild: gains within 8 %, brightness within 10 grey levels), got {self.jitter}.")

    def recorded(self) -> dict:
        return {"changed_share": self.changed_share if self.changed_share is not None else "each generated sample's",
                "transitions": self.transitions, "jitter": self.jitter, "min_object_pixels": self.min_object_pixels}


# ----------------------------------------------------------------------------------------------
# the global appearance jitter


def draw_jitter(rng: np.random.Generator, strength: float) -> dict:
    gain = 1.0 + strength * rng.uniform(-GAIN, GAIN, 3)
    offset = strength * (rng.uniform(-OFFSET, OFFSET) + rng.uniform(-BAND_OFFSET, BAND_OFFSET, 3))
    return {"gain": [float(g) for g in gain], "offset": [float(o) for o in offset]}


def jitter_table(jitter: dict) -> np.ndarray:
    """uint8 [3, 256]: each band's look-up table (a pixel's new value depends on its old value alone)."""
    levels = np.arange(256, dtype=np.float64)
    return np.stack([np.clip(np.rint(levels * g + o), 0, 255) for g, o in zip(jitter["gain"], jitter["offset"])]).astype(np.uint8)


def apply_jitter(image: np.ndarray, jitter: dict) -> np.ndarray:
    table = jitter_table(jitter)
    return np.stack([table[b][image[b]] for b in range(3)])


# ----------------------------------------------------------------------------------------------
# real objects of all the maps, the donors of the paste events


@dataclass
class Donors:
    raster: np.ndarray  # int [N]
    code: np.ndarray  # int [N]
    box: np.ndarray  # int [N, 4]: row0, row1, col0, col1
    size: np.ndarray  # int [N]
    masks: list  # bool [h, w] each


def find_donors(sources: Sources, settings: CopyPasteSettings) -> Donors:
    """Every object of every map small enough to paste: larger than ``min_object_pixels``, at most 1/16 of a tile
    (the engine's largest copy), its box inside a tile."""
    tile = sources.tile
    largest = tile * tile // 16
    raster, code, box, size, masks = [], [], [], [], []
    for k, src in enumerate(sources.rasters):
        for c in np.unique(src.labels[src.valid]):
            labelled, _ = ndimage.label((src.labels == c) & src.valid, structure=CROSS)
            sizes = np.bincount(labelled.ravel())
            for i, slc in enumerate(ndimage.find_objects(labelled), start=1):
                if slc is None or not settings.min_object_pixels < sizes[i] <= largest:
                    continue
                if slc[0].stop - slc[0].start > tile or slc[1].stop - slc[1].start > tile:
                    continue
                raster.append(k), code.append(int(c)), size.append(int(sizes[i]))
                box.append((slc[0].start, slc[0].stop, slc[1].start, slc[1].stop))
                masks.append(labelled[slc] == i)
    return Donors(np.array(raster, dtype=np.int64), np.array(code, dtype=np.int64), np.array(box, dtype=np.int64).reshape(-1, 4),
                  np.array(size, dtype=np.int64), masks)


# ----------------------------------------------------------------------------------------------
# one sample


@dataclass
class CopyPasteSample:
    t1: np.ndarray  # uint8 [3, T, T]: the real window
    t2: np.ndarray  # uint8 [3, T, T]: pasted and painted, then jittered
    pre: np.ndarray  # the window's map
    post: np.ndarray  # the map of B: each pixel's class at its origin
    mask: np.ndarray  # 1 pasted or painted, 0 not, 255 no data
    origin: np.ndarray  # int [3, T, T]: (raster, row, column) each B pixel was read from
    record: dict


class _Window:
    """The sample being made: where each B pixel comes from, its map and what has changed."""

    def __init__(self, sources: Sources, index: int):
        self.sources = sources
        self.k, self.rows, self.cols = sources.window(index)
        src = sources.rasters[self.k]
        self.pre = src.labels[self.rows, self.cols]
        self.valid = src.valid[self.rows, self.cols]
        t = sources.tile
        rr, cc = np.mgrid[self.rows, self.cols]
        self.origin = np.stack([np.full((t, t), self.k), rr, cc]).astype(np.int64)
        self.post = self.pre.copy()
        self.changed = np.zeros((t, t), dtype=bool)

    def overlaps(self, raster: np.ndarray, box: np.ndarray) -> np.ndarray:
        """Whether boxes (row0, row1, col0, col1) of rasters overlap this window."""
        return ((raster == self.k) & (box[:, 0] < self.rows.stop) & (box[:, 1] > self.rows.start)
                & (box[:, 2] < self.cols.stop) & (box[:, 3] > self.cols.start))

    def take(self, dest: tuple[slice, slice], shape: np.ndarray, raster: int, rows: np.ndarray, cols: np.ndarray, code: int) -> None:
        """B's pixels under ``shape`` at ``dest`` now come from ``raster`` at (rows, cols) [shape's size], of class ``code``."""
        for band, value in enumerate((raster, rows, cols)):
            o = self.origin[band][dest]
            o[shape] = value if np.isscalar(value) else value[shape]
        self.post[dest][shape] = code
        self.changed[dest] |= shape


def _paste(w: _Window, donors: Donors, rng: np.random.Generator, limit: int, tries: int = 12) -> dict | None:
    eligible = np.flatnonzero((donors.size <= limit) & ~w.overlaps(donors.raster, donors.box))
    if not eligible.size:
        return None
    d = int(eligible[rng.integers(eligible.size)])
    r0, r1, c0, c1 = (int(v) for v in donors.box[d])
    code = int(donors.code[d])
    rot, flip = int(rng.integers(4)), bool(rng.random() < 0.5)
    rr, cc = np.mgrid[r0:r1, c0:c1]

    def turn(a):
        a = np.rot90(a, rot)
        return a[:, ::-1] if flip else a

    shape, rr, cc = turn(donors.masks[d]), turn(rr), turn(cc)
    h, wd = shape.shape
    t = w.sources.tile
    for _ in range(tries):
        r, c = int(rng.integers(0, t - h + 1)), int(rng.integers(0, t - wd + 1))
        dest = (slice(r, r + h), slice(c, c + wd))
        if not (w.valid[dest][shape].all() and not w.changed[dest][shape].any() and (w.post[dest][shape] != code).all()):
            continue
        around = np.zeros((t, t), dtype=bool)
        around[dest] = shape
        if (w.post[ndimage.binary_dilation(around, structure=CROSS)] == code).any():
            continue  # it would merge with an object of its class
        w.take(dest, shape, int(donors.raster[d]), rr, cc, code)
        return {"kind": "paste", "class": code, "pixels": int(shape.sum()), "to": [r, c],
                "from": {"raster": int(donors.raster[d]), "box": [r0, r1, c0, c1], "rot90": rot, "flip": flip}}
    return None


def _ground_place(sources: Sources, w: _Window, code: int, shape: np.ndarray, rng: np.random.Generator) -> tuple[int, int, int] | None:
    """(raster, row, col) of a place outside this window where ``code`` covers all of ``shape``, or None."""
    for k in rng.permutation(len(sources.rasters)):
        src = sources.rasters[int(k)]
        ground = ((src.labels == code) & src.valid).astype(np.float32)
        if k == w.k:
            ground[w.rows, w.cols] = 0  # never this window's own ground
        if ground.shape[0] < shape.shape[0] or ground.shape[1] < shape.shape[1]:
            continue
        cover = fftconvolve(ground, shape[::-1, ::-1].astype(np.float32), mode="valid")
        places = np.flatnonzero(cover > shape.sum() - 0.5)
        if places.size:
            r, c = np.unravel_index(int(places[rng.integers(places.size)]), cover.shape)
            return int(k), int(r), int(c)
    return None


def _paint(w: _Window, rng: np.random.Generator, limit: int, min_pixels: int, nodata: int) -> dict | None:
    objects = []
    for c in np.unique(w.pre[w.valid & ~w.changed]):
        labelled, _ = ndimage.label((w.pre == c) & w.valid & ~w.changed, structure=CROSS)
        sizes = np.bincount(labelled.ravel())
        objects += [(int(c), labelled, i, slc) for i, slc in enumerate(ndimage.find_objects(labelled), start=1)
                    if slc is not None and min_pixels < sizes[i] <= limit]
    if not objects:
        return None
    code, labelled, i, slc = objects[int(rng.integers(len(objects)))]
    whole = labelled == i
    ring = ndimage.binary_dilation(whole, structure=CROSS) & ~whole & w.valid & ~w.changed
    counts = np.bincount(w.post[ring], minlength=256)
    counts[[code, nodata]] = 0
    shape = whole[slc]
    for ground in [int(g) for g in np.argsort(-counts, kind="stable")[:3] if counts[g]]:
        place = _ground_place(w.sources, w, ground, shape, rng)
        if place is None:
            continue
        k, r, c = place
        rr, cc = np.mgrid[r : r + shape.shape[0], c : c + shape.shape[1]]
        w.take(slc, shape, k, rr, cc, ground)
        return {"kind": "paint", "class": code, "ground": ground, "pixels": int(shape.sum()), "to": [slc[0].start, slc[1].start],
                "from": {"raster": k, "box": [r, r + shape.shape[0], c, c + shape.shape[1]]}}
    return None


def copy_paste_sample(sources: Sources, donors: Donors, index: int, settings: CopyPasteSettings) -> CopyPasteSample:
    st = sources.settings
    w = _Window(sources, index)
    rng = sample_rng(st.seed, index, STREAM)
    share = settings.changed_share if settings.changed_share is not None else generated_changed_share(sources, index, settings.transitions)
    n_valid = int(w.valid.sum())
    target = int(round(share * n_valid))
    nodata = sources.scheme.nodata_code
    events, total, failures = [], 0, 0
    # an event may overshoot what is left by a fifth: objects come in their own sizes
    while target - total > settings.min_object_pixels and failures < settings.max_failures:
        limit = int((target - total) * 1.2)
        if rng.random() < 0.5:
            event = _paste(w, donors, rng, limit)
        else:
            event = _paint(w, rng, limit, settings.min_object_pixels, nodata)
        if event is None:
            failures += 1
            continue
        events.append(event)
        total += event["pixels"]
    t2 = np.empty((3, *w.pre.shape), dtype=np.uint8)
    post = np.empty_like(w.pre)
    for k in np.unique(w.origin[0]):  # B and its map read through each pixel's origin
        here = w.origin[0] == k
        src = sources.rasters[int(k)]
        t2[:, here] = src.pixels[:, w.origin[1][here], w.origin[2][here]]
        post[here] = src.labels[w.origin[1][here], w.origin[2][here]]
    jitter = draw_jitter(rng, settings.jitter)
    t2 = apply_jitter(t2, jitter)
    mask = w.changed.astype(np.uint8)
    mask[~w.valid] = 255
    src = sources.rasters[w.k]
    for e in events:
        e["from"]["semantic"] = sources.rasters[e["from"]["raster"]].semantic
    record = {
        "index": index, "seed": sample_seed(st.seed, index), "seed_from": [st.seed, index], "method": "copy-paste",
        "source": {"semantic": src.semantic, "image": src.image, "band": st.band},
        "window": {"row": w.rows.start, "col": w.cols.start, "height": sources.tile, "width": sources.tile},
        "target_changed_fraction": share, "events": events, "jitter": jitter,
        "class_pixels": {"pre": class_pixels(w.pre, w.valid), "post": class_pixels(post, w.valid)},
    }
    return CopyPasteSample(src.pixels[:, w.rows, w.cols].copy(), t2, w.pre.copy(), post, mask, w.origin, record)

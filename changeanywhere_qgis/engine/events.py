"""Change-event simulation on a semantic (land-cover) mask: step 2 of the method.

Two ways to turn the pre-event map into a post-event map:

* :func:`events_from_polygons`: the user draws polygons, each carrying the class the land becomes.
* :func:`random_events`: object-level random events (add copies of objects, remove objects, turn
  objects into another class under a transition table), seeded and reproducible.

Pixels equal to the raster's nodata value or to the scheme's nodata code never change.
No QGIS import here: the adapters turn :class:`InputError` into QGIS messages.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy import ndimage

from .errors import InputError
from .scheme import ClassScheme
from .transitions import TransitionTable, load_table

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


# ----------------------------------------------------------------------------------------------
# shared helpers


def _as_labels(labels) -> np.ndarray:
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


def _frozen(labels: np.ndarray, scheme: ClassScheme, nodata) -> np.ndarray:
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


def _names(scheme: ClassScheme, codes) -> str:
    return ", ".join(f"{scheme.name_of(int(c))} ({int(c)})" for c in codes)


def _window(slc: tuple[slice, slice]) -> str:
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


# ----------------------------------------------------------------------------------------------
# drawn polygons


def _read_vector(vector, layer):
    """-> (GeoDataFrame indexed by feature id, display name)."""
    import geopandas as gpd

    if isinstance(vector, gpd.GeoDataFrame):
        return vector, "the given layer"
    text = str(vector)
    if "|layername=" in text and layer is None:  # a QGIS layer source string
        text, layer = text.split("|layername=", 1)
        layer = layer.split("|", 1)[0]
    path = Path(text)
    name = str(path)
    if not text.startswith("/vsi") and not path.exists():
        raise InputError(
            f"The change-polygon file {name} does not exist. Check the path, or save the drawn "
            "polygons as a GeoPackage, GeoJSON or Shapefile first."
        )
    import pyogrio

    try:
        layers = [str(row[0]) for row in pyogrio.list_layers(text)]
    except Exception as exc:  # pyogrio raises its own DataSourceError and friends
        raise InputError(
            f"The change-polygon file {name} cannot be read as a vector layer ({exc}). "
            "Give a GeoPackage, GeoJSON or Shapefile of polygons."
        ) from exc
    if layer is not None and str(layer) not in layers:
        raise InputError(
            f"The change-polygon file {name} has no layer {layer!r}; its layers are: {', '.join(layers) or 'none'}. "
            "Pick one of them."
        )
    if layer is None:
        if not layers:
            raise InputError(f"The change-polygon file {name} holds no layer. Draw at least one polygon in it.")
        if len(layers) > 1:
            warnings.warn(
                f"{name} holds {len(layers)} layers ({', '.join(layers)}); using the first, {layers[0]!r}. "
                "Name the layer to use another.",
                stacklevel=3,
            )
        layer = layers[0]
    try:
        gdf = pyogrio.read_dataframe(text, layer=layer, fid_as_index=True)
    except Exception as exc:
        raise InputError(
            f"The change-polygon layer {layer!r} of {name} cannot be read ({exc}). "
            "Give a GeoPackage, GeoJSON or Shapefile of polygons."
        ) from exc
    if not isinstance(gdf, gpd.GeoDataFrame) or gdf.geometry is None:
        raise InputError(f"The layer {layer!r} of {name} is a table without geometries. Give a polygon layer.")
    return gdf, name if len(layers) == 1 else f"{name} (layer {layer})"


def _find_field(gdf, class_field: str, name: str) -> str:
    fields = [c for c in gdf.columns if c != gdf.geometry.name]
    if class_field in fields:
        return class_field
    folded = [f for f in fields if str(f).lower() == str(class_field).lower()]
    if len(folded) == 1:
        return folded[0]
    raise InputError(
        f"The change polygons in {name} have no field {class_field!r}; their fields are: "
        f"{', '.join(map(str, fields)) or 'none'}. Choose the field that holds each polygon's target class "
        "(a class name or code), or add such a field."
    )


def _target_code(value, scheme: ClassScheme, where: str) -> int:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        raise InputError(f"{where} has no target class (the field is empty). Fill it with a class name or code.")
    if isinstance(value, (float, np.floating)) and float(value).is_integer():
        value = int(value)
    try:
        return scheme.resolve(value)
    except InputError as exc:
        raise InputError(f"{where}: {exc}") from None


def _polygonal(geom):
    """The polygonal part of a geometry (repairing it first), or None."""
    import shapely
    from shapely.geometry import MultiPolygon, Polygon

    if geom is None or geom.is_empty:
        return None
    if not geom.is_valid:
        geom = shapely.make_valid(geom)
    if isinstance(geom, (Polygon, MultiPolygon)):
        return None if geom.is_empty else geom
    parts = [p for p in shapely.get_parts(geom) if isinstance(p, (Polygon, MultiPolygon)) and not p.is_empty]
    if not parts:
        return None
    merged = shapely.union_all(parts)
    return merged if isinstance(merged, (Polygon, MultiPolygon)) else None


def _fmt_bounds(b) -> str:
    return f"x {b[0]:.10g} .. {b[2]:.10g}, y {b[1]:.10g} .. {b[3]:.10g}"


def events_from_polygons(
    labels,
    transform,
    crs,
    scheme: ClassScheme,
    vector,
    class_field: str,
    nodata=None,
    only_from=None,
    layer=None,
) -> ChangeResult:
    """Burn user-drawn change polygons into the land-cover map.

    ``vector``: a vector file path (GeoPackage, GeoJSON, Shapefile, anything OGR reads; a QGIS
    source ``file.gpkg|layername=x`` works too) or a GeoDataFrame. Each polygon's ``class_field``
    holds the class the land becomes (name or code). Later features win where polygons overlap.
    ``only_from``: classes (codes or names) that may change; None or [] means all. Raises
    :class:`InputError` (nothing changed) for every unusable input.
    """
    import shapely
    from rasterio.crs import CRS
    from rasterio.features import rasterize
    from rasterio.transform import array_bounds

    labels = _as_labels(labels)
    gdf, name = _read_vector(vector, layer)
    if len(gdf) == 0:
        raise InputError(f"The change polygons in {name} hold no features. Draw at least one polygon.")
    field = _find_field(gdf, class_field, name)

    ids = [str(i) for i in gdf.index]
    geoms = list(gdf.geometry.values)
    present = [i for i, g in enumerate(geoms) if g is not None and not g.is_empty]
    if not present:
        raise InputError(f"The change polygons in {name} have no geometry (all features are empty). Draw polygons.")
    present_set = set(present)
    skipped = [ids[i] for i in range(len(geoms)) if i not in present_set]
    if skipped:
        warnings.warn(f"Change polygons without geometry ignored: feature {', '.join(skipped)}.", stacklevel=2)

    bad: dict[str, list[str]] = {}
    for i in present:
        g = geoms[i]
        kinds = {g.geom_type} if g.geom_type != "GeometryCollection" else {p.geom_type for p in shapely.get_parts(g)}
        for kind in kinds - {"Polygon", "MultiPolygon"}:
            bad.setdefault(kind, []).append(ids[i])
    if bad:
        listed = "; ".join(f"{k}: feature {', '.join(v[:10])}{' ...' if len(v) > 10 else ''}" for k, v in bad.items())
        raise InputError(
            f"The change layer {name} holds non-polygon geometries ({listed}). Change events need areas: "
            "draw polygons, or buffer the points/lines into polygons first."
        )

    targets = {i: _target_code(gdf[field].iloc[i], scheme, f"Feature {ids[i]} of {name}") for i in present}
    only_codes = None
    if only_from is not None and len(only_from) > 0:
        only_codes = []
        for v in only_from:
            try:
                only_codes.append(scheme.resolve(v))
            except InputError as exc:
                raise InputError(f"Option only_from: {exc}") from None

    # Bring the polygons into the raster's CRS.
    series = gdf.geometry.iloc[present]
    if crs is None or gdf.crs is None:
        if crs is None and gdf.crs is None:
            warnings.warn(
                "Neither the raster nor the change polygons have a CRS; assuming they share coordinates.",
                stacklevel=2,
            )
        else:
            missing, other = ("raster", gdf.crs.to_string()) if crs is None else ("change polygons", str(crs))
            warnings.warn(
                f"The {missing} have no CRS; assuming both are in {other}. Set the CRS if the polygons land in the wrong place.",
                stacklevel=2,
            )
    else:
        raster_crs = CRS.from_user_input(crs)
        if not gdf.crs.equals(raster_crs.to_wkt()):
            try:
                series = series.to_crs(raster_crs.to_wkt())
            except Exception as exc:
                raise InputError(
                    f"The change polygons in {name} cannot be reprojected from {gdf.crs.to_string()} to the raster's "
                    f"CRS {raster_crs.to_string()} ({exc}). Reproject the layer to the raster's CRS first."
                ) from exc

    height, width = labels.shape
    west, south, east, north = array_bounds(height, width, transform)
    raster_box = shapely.box(min(west, east), min(south, north), max(west, east), max(south, north))
    repaired = {i: _polygonal(g) for i, g in zip(present, series.values)}
    usable = [i for i in present if repaired[i] is not None]
    if not usable:
        raise InputError(
            f"The change polygons in {name} have no area left after repairing their geometry. Redraw them as simple polygons."
        )
    inside = [i for i in usable if repaired[i].intersects(raster_box)]
    if not inside:
        poly_bounds = shapely.union_all([repaired[i] for i in usable]).bounds
        raise InputError(
            f"The change polygons in {name} lie wholly outside the raster: in the raster's CRS they cover "
            f"{_fmt_bounds(poly_bounds)}, the raster covers {_fmt_bounds(raster_box.bounds)}. Draw the polygons "
            "over the raster, or fix the layer's CRS if they were meant to be there."
        )
    inside_set = set(inside)
    outside = [ids[i] for i in usable if i not in inside_set]
    if outside:
        warnings.warn(f"Change polygons outside the raster ignored: feature {', '.join(outside)}.", stacklevel=2)

    shapes = [(repaired[i], n + 1) for n, i in enumerate(inside)]
    burn = rasterize(shapes, out_shape=(height, width), transform=transform, fill=0, dtype="int32")
    lut = np.zeros(len(inside) + 1, dtype=np.uint8)
    for n, i in enumerate(inside):
        lut[n + 1] = targets[i]
    target = lut[burn]
    covered = burn > 0
    frozen = _frozen(labels, scheme, nodata)
    may = covered & ~frozen
    if only_codes is not None:
        may &= np.isin(labels, only_codes)
    change = may & (labels != target)

    if not change.any():
        n_cov = int(covered.sum())
        if n_cov == 0:
            why = "they cover no pixel centre (each is smaller than a pixel or a sliver at the edge)"
            fix = "Draw larger polygons."
        else:
            parts = [f"{int((covered & frozen).sum())} are no-data"]
            parts.append(f"{int((covered & ~frozen & (labels == target)).sum())} already have the target class")
            if only_codes is not None:
                parts.append(
                    f"{int((covered & ~frozen & (labels != target) & ~np.isin(labels, only_codes)).sum())} are not of "
                    f"the only_from classes ({_names(scheme, only_codes)})"
                )
            why = f"of the {n_cov} pixels they cover, " + ", ".join(parts)
            fix = "Draw them over land of another class" + (", or widen only_from." if only_codes is not None else ".")
        raise InputError(f"The change polygons in {name} change no pixel: {why}. {fix}")

    post = labels.copy()
    post[change] = target[change]

    feature_of = burn[change]
    from_of = labels[change].astype(np.int64)
    counts = np.bincount(feature_of, minlength=len(inside) + 1)
    pairs = np.unique(feature_of.astype(np.int64) * 256 + from_of)
    froms: dict[int, list[int]] = {}
    for p in pairs:
        froms.setdefault(int(p // 256), []).append(int(p % 256))
    events = []
    idle = []
    for n, i in enumerate(inside):
        if counts[n + 1] == 0:
            idle.append(ids[i])
            continue
        events.append(ChangeEvent("polygon", int(lut[n + 1]), froms[n + 1], int(counts[n + 1]), f"feature {ids[i]}"))
    if idle:
        warnings.warn(
            f"Change polygons that change no pixel (covered by later polygons, too small, or already of "
            f"the target class): feature {', '.join(idle)}.",
            stacklevel=2,
        )
    return ChangeResult(post, events)


# ----------------------------------------------------------------------------------------------
# random object-level events

_CROSS = ndimage.generate_binary_structure(2, 1)


@dataclass
class _Object:
    code: int
    slc: tuple[slice, slice]
    mask: np.ndarray  # bool, over slc
    size: int


def _objects(labels: np.ndarray, valid: np.ndarray, codes, min_pixels: int) -> list[_Object]:
    """4-connected objects of each class with more than ``min_pixels`` pixels, in a fixed order."""
    found = []
    for code in codes:
        lab, n = ndimage.label((labels == code) & valid, structure=_CROSS)
        if n == 0:
            continue
        sizes = np.bincount(lab.ravel())
        for k, slc in enumerate(ndimage.find_objects(lab), start=1):
            if slc is not None and sizes[k] > min_pixels:
                found.append(_Object(int(code), slc, lab[slc] == k, int(sizes[k])))
    return found


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
    labels = _as_labels(labels)
    rng = seed_or_rng if isinstance(seed_or_rng, np.random.Generator) else np.random.default_rng(seed_or_rng)
    if not (0.0 <= float(transition_probability) <= 1.0):
        raise InputError(f"Option transition_probability must lie in 0..1; got {transition_probability!r}.")
    if not (0.0 < float(max_changed_fraction) <= 1.0):
        raise InputError(f"Option max_changed_fraction must lie in (0, 1]; got {max_changed_fraction!r}.")
    if isinstance(min_object_pixels, bool) or not isinstance(min_object_pixels, (int, np.integer)) or min_object_pixels < 0:
        raise InputError(f"Option min_object_pixels must be a whole number >= 0; got {min_object_pixels!r}.")
    tbl: TransitionTable = load_table(table, scheme)
    allow = tbl.matrix()

    valid = ~_frozen(labels, scheme, nodata) & np.isin(labels, tbl.codes)
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
        events.append(ChangeEvent("remove", fill, [obj.code], obj.size, _window(obj.slc)))

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
        events.append(ChangeEvent("add", obj.code, froms, obj.size, _window(dest)))

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
        events.append(ChangeEvent("transition", to, [obj.code], obj.size, _window(obj.slc)))

    return ChangeResult(post, events)

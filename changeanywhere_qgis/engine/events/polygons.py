"""Change events drawn by the user: polygons, each carrying the class the land becomes.

Any OGR vector file (or a QGIS layer source string, or a GeoDataFrame); polygons in another CRS
are reprojected, invalid ones repaired; later polygons win where they overlap.
"""

from __future__ import annotations

import math
import warnings
from pathlib import Path

import numpy as np

from ..errors import InputError
from ..io import BAND_PIXELS, row_bands
from .change import ChangeEvent, ChangeResult, as_labels, class_names, frozen_pixels
from ..landcover import ClassScheme


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
    scratch=None,
) -> ChangeResult:
    """Burn user-drawn change polygons into the land-cover map.

    ``vector``: a vector file path (GeoPackage, GeoJSON, Shapefile, anything OGR reads; a QGIS
    source ``file.gpkg|layername=x`` works too) or a GeoDataFrame. Each polygon's ``class_field``
    holds the class the land becomes (name or code). Later features win where polygons overlap.
    ``only_from``: classes (codes or names) that may change; None or [] means all. Raises
    :class:`InputError` (nothing changed) for every unusable input. ``scratch`` (a large map's, its ``labels`` a
    ScratchRaster): the polygons are burnt one band of rows at a time and the post-event map is a scratch file.
    """
    import shapely
    from rasterio.crs import CRS
    from rasterio import Affine
    from rasterio.transform import array_bounds

    if scratch is None:
        labels = as_labels(labels)
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
    lut = np.zeros(len(inside) + 1, dtype=np.uint8)
    for n, i in enumerate(inside):
        lut[n + 1] = targets[i]
    tally = _Tally(len(inside) + 1)
    if scratch is None:
        post = labels.copy()
        _burn_band(labels, post, shapes, transform, lut, scheme, nodata, only_codes, tally)
    else:  # a large map: the polygons burnt one band of rows at a time, the post-event map a scratch file
        post = scratch.empty(np.uint8, "post")
        for rows in row_bands(height, width, BAND_PIXELS):
            band = labels[rows, :]
            out = band.copy()
            _burn_band(band, out, shapes, transform * Affine.translation(0, rows.start), lut, scheme, nodata, only_codes, tally)
            post[rows, :] = out

    if tally.changed == 0:
        n_cov = tally.covered
        if n_cov == 0:
            why = "they cover no pixel centre (each is smaller than a pixel or a sliver at the edge)"
            fix = "Draw larger polygons."
        else:
            parts = [f"{tally.covered_frozen} are no-data"]
            parts.append(f"{tally.covered_target} already have the target class")
            if only_codes is not None:
                parts.append(f"{tally.covered_not_from} are not of the only_from classes ({class_names(scheme, only_codes)})")
            why = f"of the {n_cov} pixels they cover, " + ", ".join(parts)
            fix = "Draw them over land of another class" + (", or widen only_from." if only_codes is not None else ".")
        raise InputError(f"The change polygons in {name} change no pixel: {why}. {fix}")

    counts = tally.counts
    froms: dict[int, list[int]] = {}
    for p in sorted(tally.pairs):
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


class _Tally:
    """What the burnt bands changed, summed over the bands: pixels per feature, (feature, from-class) pairs, and the
    counts the "change no pixel" message gives."""

    def __init__(self, features: int) -> None:
        self.counts = np.zeros(features, dtype=np.int64)
        self.pairs: set[int] = set()
        self.changed = self.covered = self.covered_frozen = self.covered_target = self.covered_not_from = 0


def _burn_band(labels: np.ndarray, post: np.ndarray, shapes, transform, lut: np.ndarray, scheme: ClassScheme, nodata,
               only_codes, tally: _Tally) -> None:
    """Burn the polygons into one band of the map (``transform``: the band's); its changes into ``post`` and ``tally``."""
    from rasterio.features import rasterize

    burn = rasterize(shapes, out_shape=labels.shape, transform=transform, fill=0, dtype="int32")
    target = lut[burn]
    covered = burn > 0
    frozen = frozen_pixels(labels, scheme, nodata)
    may = covered & ~frozen
    if only_codes is not None:
        may &= np.isin(labels, only_codes)
    change = may & (labels != target)
    post[change] = target[change]
    feature_of = burn[change]
    tally.counts += np.bincount(feature_of, minlength=len(tally.counts))
    tally.pairs.update(int(v) for v in np.unique(feature_of.astype(np.int64) * 256 + labels[change].astype(np.int64)))
    tally.changed += int(np.count_nonzero(change))
    tally.covered += int(np.count_nonzero(covered))
    tally.covered_frozen += int(np.count_nonzero(covered & frozen))
    tally.covered_target += int(np.count_nonzero(covered & ~frozen & (labels == target)))
    if only_codes is not None:
        tally.covered_not_from += int(np.count_nonzero(covered & ~frozen & (labels != target) & ~np.isin(labels, only_codes)))

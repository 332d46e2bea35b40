"""Vector output of the simulated change: one polygon per connected region of one from->to pair.

Written as a GeoPackage layer ``changes`` that QGIS 3.22 (GDAL 3.6) opens without warnings.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np

from ..errors import InputError
from ..landcover import ClassScheme

LAYER = "changes"


def change_polygons(pre, post, transform, nodata=None) -> list[tuple[object, int, int]]:
    """Polygons of changed pixels: [(shapely Polygon in the raster's CRS, from_code, to_code)].

    Neighbouring pixels merge only when they share both codes (4-connectivity). Pixels where
    ``pre`` is ``nodata`` are left out.
    """
    from rasterio.features import shapes
    from shapely.geometry import shape

    pre = np.asarray(pre)
    post = np.asarray(post)
    if pre.shape != post.shape or pre.ndim != 2:
        raise InputError(
            f"The pre- and post-event maps must be two single-band rasters of one grid; got shapes "
            f"{pre.shape} and {post.shape}."
        )
    changed = pre != post
    if nodata is not None:
        changed &= pre != nodata
    if not changed.any():
        return []
    key = pre.astype(np.uint16) << 8  # from * 256 + to, in 2 bytes a pixel (uint8 codes)
    key |= post.astype(np.uint16)
    out = []
    for geom, value in shapes(key, mask=changed, transform=transform, connectivity=4):
        v = int(value)
        out.append((shape(geom), v // 256, v % 256))
    return out


def change_polygons_by_window(pre, post, transform, nodata=None, window: int = 2048):
    """For a large map (arrays or ScratchRasters): the change polygons of each ``window`` px window, one list a window.

    A region that crosses a window edge comes out as one polygon on each side (same from/to codes, sharing the
    edge): the whole-raster polygons would need every polygon in memory at once.
    """
    from rasterio.windows import transform as window_transform
    from rasterio.windows import Window

    from ..io import windows

    for rows, cols in windows(*pre.shape, window):
        yield change_polygons(pre[rows, cols], post[rows, cols],
                              window_transform(Window(cols.start, rows.start, cols.stop - cols.start, rows.stop - rows.start), transform),
                              nodata=nodata)


def area_m2(geoms, crs):
    """Areas in square metres (geodesic for a geographic CRS), or None where the CRS is unknown."""
    if crs is None:
        return None
    import pyproj
    from rasterio.crs import CRS

    try:
        pcrs = pyproj.CRS.from_user_input(CRS.from_user_input(crs).to_wkt())
    except Exception:
        return None
    if pcrs.is_geographic:
        geod = pcrs.get_geod()
        return [abs(geod.geometry_area_perimeter(g)[0]) for g in geoms]
    try:
        factor = float(pcrs.axis_info[0].unit_conversion_factor)
    except (IndexError, AttributeError, TypeError):
        return None
    return [g.area * factor * factor for g in geoms]


def write_change_polygons(path, polygons, crs, scheme: ClassScheme, transform=None, chunks=None) -> None:
    """Write ``polygons`` (from :func:`change_polygons`) to a GeoPackage layer ``changes``.

    Fields: from_class, to_class (codes), from_name, to_name, area (CRS units), area_m2 (square
    metres, geodesic for a geographic CRS; empty without a CRS) and, when ``transform`` is given,
    area_px. ``chunks`` (instead of ``polygons``): lists of polygons written one after another, so a large map's
    polygons are never all in memory (:func:`change_polygons_by_window`). GeoPackage 1.2, written to a temporary name and moved into place, so a failed write
    leaves no half file (and an old file stays until the new one is complete).
    """
    path = Path(path)
    if not path.parent.is_dir():
        raise InputError(f"The folder {path.parent} for the change polygons does not exist. Create it or pick another.")
    tmp = path.with_name(f".{path.stem}.{os.getpid()}.partial.gpkg")
    try:
        for index, part in enumerate([polygons] if chunks is None else chunks):
            if index == 0 or part:
                _write_frame(tmp, _frame(part, crs, scheme, transform), append=index > 0)
        os.replace(tmp, path)
    except Exception as exc:
        raise InputError(f"Cannot write the change polygons to {path} ({exc}). Pick a writable folder and file name.") from exc
    finally:
        for leftover in (tmp, Path(f"{tmp}-journal"), Path(f"{tmp}-wal"), Path(f"{tmp}-shm")):
            if leftover.exists():
                leftover.unlink()


def _frame(polygons, crs, scheme: ClassScheme, transform):
    import geopandas as gpd
    from rasterio.crs import CRS

    geoms = [g for g, _, _ in polygons]
    froms = [int(a) for _, a, _ in polygons]
    tos = [int(b) for _, _, b in polygons]
    columns = {
        "from_class": np.array(froms, dtype=np.int32),
        "to_class": np.array(tos, dtype=np.int32),
        "from_name": np.array([scheme.name_of(a) for a in froms], dtype=object),
        "to_name": np.array([scheme.name_of(b) for b in tos], dtype=object),
        "area": np.array([g.area for g in geoms], dtype=np.float64),
    }
    areas = area_m2(geoms, crs)
    columns["area_m2"] = np.array(areas if areas is not None else [np.nan] * len(geoms), dtype=np.float64)
    if transform is not None:
        pixel = abs(transform.a * transform.e - transform.b * transform.d)
        columns["area_px"] = np.array([round(g.area / pixel) for g in geoms], dtype=np.int64)
    crs_out = None
    if crs is not None:
        rcrs = CRS.from_user_input(crs)
        epsg = rcrs.to_epsg()
        crs_out = f"EPSG:{epsg}" if epsg else rcrs.to_wkt()
    return gpd.GeoDataFrame(columns, geometry=gpd.GeoSeries(geoms, crs=crs_out), crs=crs_out)


def _write_frame(tmp: Path, gdf, append: bool) -> None:
    import pyogrio

    with warnings.catch_warnings():
        # A raster without a CRS (e.g. a PNG tile) gives polygons without one: expected here.
        warnings.filterwarnings("ignore", message=".*'crs' was not provided", category=UserWarning)
        options = {} if append else {"dataset_options": {"VERSION": "1.2"}, "layer_options": {"SPATIAL_INDEX": "YES"}}
        pyogrio.write_dataframe(gdf, tmp, layer=LAYER, driver="GPKG", geometry_type="Polygon", promote_to_multi=False,
                                append=append, **options)

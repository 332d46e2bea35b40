"""A detection's outputs, written window by window on image A's grid: the change probability and the binary change
mask (GeoTIFFs), the change polygons (GeoPackage) and ``detection.json`` (what was run, on what, with what result).

A detection folder is a kind of output folder of its own (replace_guard.py): ``--overwrite`` replaces one only when
it holds ``detection.json`` and nothing but these files.
"""

from __future__ import annotations

import re
import warnings
from pathlib import Path

import numpy as np
import rasterio
from rasterio.windows import Window

from ..events import area_m2
from ..io import OwnedFiles, RasterGrid

PROBABILITY = "change_probability.tif"
MASK = "change_mask.tif"
POLYGONS = "changes.gpkg"
REPORT = "detection.json"
LAYER = "changes"
PROBABILITY_NODATA = -1.0
MASK_NODATA = 255  # as the generator's change masks: 1 changed, 0 unchanged, 255 no data
_FILE = re.compile(r"^(change_probability\.tif|change_mask\.tif|changes\.gpkg|detection\.json)$")
DETECTION_FOLDER = OwnedFiles("a change detection", (REPORT,),
                              lambda rel, is_dir: not is_dir and len(rel.parts) == 1 and bool(_FILE.match(rel.name)))
BLOCK = 256  # the GeoTIFFs' block height: rows are written a whole band of blocks at a time
VECTOR_ROWS = 1024  # rows of the mask vectorised at a time (a region crossing such an edge is cut in two polygons)


class MapWriter:
    """Receives the fused probability by whole rows of the canvas (``writer[:, r0:r1, :] = rows``, as tiling.fuse writes)
    and writes the probability and the mask GeoTIFFs, in bands of whole blocks, cropped to the raster and with no data
    where either image has none. Counts changed and valid pixels on the way."""

    def __init__(self, folder: Path, grid: RasterGrid, threshold: float, valid) -> None:
        self.grid, self.threshold, self.valid = grid, float(threshold), valid
        self.shape = (1,)  # one channel (fuse reads out.shape[0])
        profile = grid.profile(count=1)
        self.prob = rasterio.open(folder / PROBABILITY, "w", **{**profile, "dtype": "float32", "nodata": PROBABILITY_NODATA,
                                                                "predictor": 3})
        self.mask = rasterio.open(folder / MASK, "w", **{**profile, "dtype": "uint8", "nodata": MASK_NODATA})
        self._top = 0  # first raster row not yet written
        self._rows: list[np.ndarray] = []
        self.changed = 0
        self.valid_pixels = 0

    def __setitem__(self, key, value) -> None:
        _, rows, _ = key
        if rows.start >= self.grid.height:
            return  # the canvas's padding below a raster smaller than a tile
        if rows.start != self._top + sum(len(r) for r in self._rows):
            raise ValueError("rows must come in order")
        stop = min(rows.stop, self.grid.height)
        if stop > rows.start:
            self._rows.append(np.asarray(value[0, : stop - rows.start, : self.grid.width], dtype=np.float32))
        self._flush(final=False)

    def _flush(self, final: bool) -> None:
        buffered = sum(len(r) for r in self._rows)
        n = buffered if final else buffered // BLOCK * BLOCK
        if n == 0:
            return
        rows = np.concatenate(self._rows) if len(self._rows) > 1 else self._rows[0]
        part, rest = rows[:n], rows[n:]
        valid = self.valid(self._top, n)
        window = Window(0, self._top, self.grid.width, n)
        changed = part > self.threshold
        self.prob.write(np.where(valid, part, PROBABILITY_NODATA).astype(np.float32), 1, window=window)
        self.mask.write(np.where(valid, changed, MASK_NODATA).astype(np.uint8), 1, window=window)
        self.changed += int(np.count_nonzero(changed & valid))
        self.valid_pixels += int(np.count_nonzero(valid))
        self._top += n
        self._rows = [rest] if len(rest) else []

    def close(self) -> None:
        try:
            self._flush(final=True)
        finally:
            self.prob.close()
            self.mask.close()


def write_polygons(folder: Path, grid: RasterGrid, progress=None) -> int:
    """The changed regions of the written mask as polygons (4-connected), read and vectorised by bands of rows;
    returns their count."""
    import geopandas as gpd
    import pyogrio
    from rasterio.features import shapes
    from rasterio.windows import transform as window_transform
    from shapely.geometry import shape

    path = folder / POLYGONS
    crs = None
    if grid.crs is not None:
        epsg = grid.crs.to_epsg()
        crs = f"EPSG:{epsg}" if epsg else grid.crs.to_wkt()
    pixel = abs(grid.transform.a * grid.transform.e - grid.transform.b * grid.transform.d)
    count = 0
    with rasterio.open(folder / MASK) as src:
        for index, row in enumerate(range(0, grid.height, VECTOR_ROWS)):
            window = Window(0, row, grid.width, min(VECTOR_ROWS, grid.height - row))
            changed = src.read(1, window=window) == 1
            geoms = [shape(g) for g, _ in shapes(changed.astype(np.uint8), mask=changed, connectivity=4,
                                                   transform=window_transform(window, grid.transform))] if changed.any() else []
            if index == 0 or geoms:
                areas = area_m2(geoms, grid.crs)
                frame = gpd.GeoDataFrame({
                    "area": np.array([g.area for g in geoms], dtype=np.float64),
                    "area_m2": np.array(areas if areas is not None else [np.nan] * len(geoms), dtype=np.float64),
                    "area_px": np.array([round(g.area / pixel) for g in geoms], dtype=np.int64),
                }, geometry=gpd.GeoSeries(geoms, crs=crs), crs=crs)
                with warnings.catch_warnings():
                    warnings.filterwarnings("ignore", message=".*'crs' was not provided", category=UserWarning)
                    options = {} if index else {"dataset_options": {"VERSION": "1.2"}, "layer_options": {"SPATIAL_INDEX": "YES"}}
                    pyogrio.write_dataframe(frame, path, layer=LAYER, driver="GPKG", geometry_type="Polygon",
                                            promote_to_multi=False, append=index > 0, **options)
            count += len(geoms)
            if progress is not None:
                progress.advance(1)
    return count

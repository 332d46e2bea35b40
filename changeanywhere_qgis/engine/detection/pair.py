"""The two images of a detection run: opened, checked against the detector and against each other, read by window.

Both are read window by window (a tile at a time), never whole. The second image must lie on the first's grid; when
it does not, the run is refused with the difference named, or (``resample``) the second is warped onto the first's
grid on the fly (a GDAL warped VRT, bilinear), read by window as well.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from rasterio.windows import Window

from ..errors import InputError
from ..io import RasterGrid, open_raster


def _check_image(ds, path, what: str, bands: int) -> None:
    if ds.count < bands:
        raise InputError(f"{what} {path} has {ds.count} band(s); the detector reads {bands} (RGB). Give an image with at least "
                         f"{bands} bands (its first {bands} are read, in order).")
    kinds = set(ds.dtypes[:bands])
    if kinds != {"uint8"}:
        raise InputError(f"{what} {path} is {', '.join(sorted(kinds))}; the detector works on 8-bit images. Convert it first "
                         "(e.g. gdal_translate -ot Byte -scale, or QGIS 'Translate' with a rescale).")


@dataclass
class ImagePair:
    """Image A (the grid of every output) and image B on A's grid."""

    before_path: str
    after_path: str
    before: object  # rasterio datasets
    after: object
    grid: RasterGrid
    bands: int
    resampled: bool = False
    differences: list = field(default_factory=list)  # how B's own grid differed from A's (when resampled)
    _source: object = None  # B's own dataset, under a warped VRT

    def read(self, row: int, col: int, height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
        """uint8 [bands, height, width] of A and of B; the part beyond the raster mirrored (the net sees no black edge)."""
        h = max(0, min(height, self.grid.height - row))
        w = max(0, min(width, self.grid.width - col))
        out = []
        for ds in (self.before, self.after):
            inside = ds.read(list(range(1, self.bands + 1)), window=Window(col, row, w, h))
            if (h, w) != (height, width):
                inside = np.pad(inside, ((0, 0), (0, height - h), (0, width - w)), mode="symmetric")
            out.append(inside)
        return out[0], out[1]

    def valid(self, row: int, height: int) -> np.ndarray:
        """bool [height, width] of whole rows: where both images have data (nodata, alpha and masks respected; where a
        resampled B does not reach, it has none)."""
        window = Window(0, row, self.grid.width, height)
        return (self.before.dataset_mask(window=window) > 0) & (self.after.dataset_mask(window=window) > 0)

    def close(self) -> None:
        for ds in (self.after, self._source, self.before):
            if ds is not None:
                ds.close()


def open_pair(before: str | Path, after: str | Path, bands: int, resample: bool = False) -> ImagePair:
    """Open and check the pair: bands, data type, and B on A's grid (or warped onto it with ``resample``)."""
    a = open_raster(before, "Image A (before)")
    b = None
    try:
        _check_image(a, before, "Image A (before)", bands)
        b = open_raster(after, "Image B (after)")
        _check_image(b, after, "Image B (after)", bands)
        grid = RasterGrid.of(a)
        diffs = grid.differences(RasterGrid.of(b))
        if not diffs:
            return ImagePair(str(before), str(after), a, b, grid, bands)
        if not resample:
            raise InputError(f"Image B {after} is not on image A's grid ({'; '.join(diffs)}). Pass --resample (Processing: "
                             "'Resample B onto A's grid') to warp B onto A's grid, or align them first (gdalwarp, or QGIS "
                             "'Align rasters').")
        if (a.crs is None) != (b.crs is None):
            which = "A" if a.crs is None else "B"
            raise InputError(f"Image {which} has no CRS, so B cannot be resampled onto A's grid ({'; '.join(diffs)}). Give both "
                             "images a CRS (QGIS 'Assign projection'), or align them first.")
        from rasterio.enums import Resampling
        from rasterio.vrt import WarpedVRT

        # bilinear: the detector compares textures; the alpha band marks where B does not reach (no data there)
        vrt = WarpedVRT(b, crs=a.crs or b.crs, transform=a.transform, width=a.width, height=a.height,
                        resampling=Resampling.bilinear, add_alpha=True)
        return ImagePair(str(before), str(after), a, vrt, grid, bands, resampled=True, differences=diffs, _source=b)
    except Exception:
        if b is not None:
            b.close()
        a.close()
        raise

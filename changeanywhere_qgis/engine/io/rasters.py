"""Reading the inputs (land-cover map, RGB image, their grids) and writing georeferenced GeoTIFFs, with rasterio.

The files are written into an :class:`~.output_folder.OutputFolder`, moved into place only at the end.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import rasterio
from rasterio.crs import CRS
from rasterio.errors import RasterioIOError
from rasterio.windows import Window

from ..errors import InputError
from ..landcover import ClassScheme

GTIFF = {"driver": "GTiff", "tiled": True, "blockxsize": 256, "blockysize": 256, "compress": "deflate"}


@dataclass(frozen=True)
class RasterGrid:
    width: int
    height: int
    transform: rasterio.Affine
    crs: CRS | None

    @classmethod
    def of(cls, dataset) -> "RasterGrid":
        return cls(dataset.width, dataset.height, dataset.transform, dataset.crs)

    def differences(self, other: "RasterGrid") -> list[str]:
        found = []
        if (self.width, self.height) != (other.width, other.height):
            found.append(f"size {other.width}x{other.height} vs {self.width}x{self.height}")
        if not self.transform.almost_equals(other.transform, precision=1e-9 * max(abs(self.transform.a), 1e-12) + 1e-12):
            found.append(f"transform {tuple(other.transform)[:6]} vs {tuple(self.transform)[:6]}")
        if (self.crs or None) != (other.crs or None):
            found.append(f"CRS {other.crs} vs {self.crs}")
        return found

    def profile(self, **extra) -> dict:
        return {**GTIFF, "width": self.width, "height": self.height, "transform": self.transform, "crs": self.crs, **extra}


def _open(path: str | Path, what: str):
    if not Path(path).exists():
        raise InputError(f"{what} {path} does not exist. Check the path.")
    try:
        return rasterio.open(path)
    except RasterioIOError as exc:
        raise InputError(f"{what} {path} cannot be read as a raster ({exc}). Give a GeoTIFF or another GDAL raster.") from exc


@dataclass
class SemanticRaster:
    labels: np.ndarray  # uint8 [H, W], in the model's codes; nodata pixels hold the scheme's nodata code
    grid: RasterGrid
    valid: np.ndarray  # bool [H, W]: False where the input had nodata (or the unknown code)
    path: str


def read_semantic(path: str | Path, scheme: ClassScheme, band: int = 1, remap: np.ndarray | None = None) -> SemanticRaster:
    """Read a land-cover raster, remap it into the model's scheme and check its codes."""
    with _open(path, "Semantic raster") as ds:
        if not 1 <= band <= ds.count:
            raise InputError(f"Semantic raster {path} has {ds.count} band(s); band {band} does not exist. Choose a band from 1 to {ds.count}.")
        raw = ds.read(band)
        nodata = ds.nodatavals[band - 1]
        grid = RasterGrid.of(ds)
    if not np.issubdtype(raw.dtype, np.integer):
        if not np.all(np.isnan(raw) | (raw == np.round(raw))):
            raise InputError(f"Semantic raster {path} holds non-integer values ({raw.dtype}). A land-cover map needs integer class codes; convert it (e.g. gdal_translate -ot Byte).")
    finite = raw[np.isfinite(raw)] if raw.dtype.kind == "f" else raw
    outside = (finite < 0) | (finite > 255)
    if nodata is not None:
        outside &= finite != nodata
    if np.any(outside):
        bad = sorted({int(v) for v in np.unique(finite[outside])[:10]})
        raise InputError(f"Semantic raster {path} holds codes outside 0..255 ({bad}). Class codes must fit in 8 bits; remap them first.")
    invalid = np.zeros(raw.shape, dtype=bool)
    if nodata is not None:
        invalid |= raw == nodata if not np.isnan(nodata) else np.isnan(raw)
    labels = np.where(invalid, scheme.nodata_code, np.nan_to_num(raw)).astype(np.uint8)
    if remap is not None:
        labels = remap[labels]
    scheme.check_codes(labels[~invalid], what=f"Semantic raster {path}")
    invalid |= labels == scheme.nodata_code
    if grid.crs is None:
        warnings.warn(f"Semantic raster {path} has no CRS: the outputs will have none either.", stacklevel=2)
    return SemanticRaster(labels=labels, grid=grid, valid=~invalid, path=str(path))


class ImageSource:
    """An RGB image on the semantic raster's grid, read window by window."""

    def __init__(self, path: str | Path, grid: RasterGrid) -> None:
        self.path = str(path)
        self.dataset = _open(path, "Image")
        ds = self.dataset
        try:
            if ds.count < 3:
                raise InputError(f"Image {path} has {ds.count} band(s); it needs 3 (RGB). Give an RGB image.")
            if ds.dtypes[0] != "uint8":
                raise InputError(
                    f"Image {path} is {ds.dtypes[0]}; the model works on 8-bit RGB. Convert it "
                    "(e.g. gdal_translate -ot Byte -scale) first."
                )
            diffs = grid.differences(RasterGrid.of(ds))
            if diffs:
                raise InputError(
                    f"Image {path} is not on the semantic raster's grid ({'; '.join(diffs)}). "
                    "Resample one onto the other (e.g. gdalwarp -tr/-te or QGIS 'Align rasters') so both share size, transform and CRS."
                )
        except InputError:
            ds.close()
            raise

    def read_uint8(self, row: int, col: int, height: int, width: int) -> np.ndarray:
        return self.dataset.read((1, 2, 3), window=Window(col, row, width, height), boundless=True, fill_value=0)

    def read_mirrored(self, row: int, col: int, height: int, width: int) -> np.ndarray:
        """uint8 [3, h, w]; the part beyond the raster is mirrored, not black, to keep the encoder calm."""
        h = max(0, min(height, self.dataset.height - row))
        w = max(0, min(width, self.dataset.width - col))
        inside = self.dataset.read((1, 2, 3), window=Window(col, row, w, h))
        if (h, w) != (height, width):
            inside = np.pad(inside, ((0, 0), (0, height - h), (0, width - w)), mode="symmetric")
        return inside

    def close(self) -> None:
        self.dataset.close()


def write_classes(path: Path, labels: np.ndarray, valid: np.ndarray, grid: RasterGrid, scheme: ClassScheme) -> None:
    """A land-cover map with the model's colour table; nodata pixels get the scheme's nodata code."""
    data = np.where(valid, labels, scheme.nodata_code).astype(np.uint8)
    with rasterio.open(path, "w", **grid.profile(count=1, dtype="uint8", nodata=scheme.nodata_code)) as dst:
        dst.write(data, 1)
        dst.write_colormap(1, scheme.colormap())


def write_mask(path: Path, mask: np.ndarray, grid: RasterGrid) -> None:
    """Binary change mask: 1 changed, 0 unchanged, 255 (nodata) where the input had none."""
    with rasterio.open(path, "w", **grid.profile(count=1, dtype="uint8", nodata=255)) as dst:
        dst.write(mask.astype(np.uint8), 1)


def open_rgb(path: Path, grid: RasterGrid):
    """An RGB GeoTIFF opened for window-by-window writing."""
    return rasterio.open(path, "w", **grid.profile(count=3, dtype="uint8", photometric="RGB"))

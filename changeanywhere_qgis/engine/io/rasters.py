"""Reading the inputs (land-cover map, RGB image, their grids) and writing georeferenced GeoTIFFs, with rasterio.

The files are written into an :class:`~.output_folder.OutputFolder`, moved into place only at the end.
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import rasterio
from rasterio.crs import CRS
from rasterio.errors import RasterioError, RasterioIOError
from rasterio.windows import Window

from ..errors import InputError
from ..landcover import ClassScheme
from .scratch import Scratch, is_scratch, row_bands

# GDAL's block cache grows, by default, to 5 % of the machine's memory (1.2 GB on 24 GB) whenever a large raster is
# read or written. The engine reads and writes window by window, each block once, so a small cache costs no speed
# and keeps the memory of a large map bounded (docs/reference/benchmarks.md). A GDAL_CACHEMAX the user set is kept.
os.environ.setdefault("GDAL_CACHEMAX", "64")

GTIFF = {"driver": "GTiff", "tiled": True, "blockxsize": 256, "blockysize": 256, "compress": "deflate"}
# Two grids are one when every corner of the raster lands within this many pixels of the other's:
# a sub-pixel tolerance, so rounding in a file's geotransform (e.g. a 1e-6 px drift left by a
# reprojection's float arithmetic) does not refuse a pair that any GIS overlays exactly.
GRID_TOLERANCE_PX = 1e-3


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
        shift = self.offset_px(other)
        if shift > GRID_TOLERANCE_PX:
            found.append(f"pixels shifted by up to {shift:.3g} px (tolerance {GRID_TOLERANCE_PX:g} px): "
                         f"transform {tuple(other.transform)[:6]} vs {tuple(self.transform)[:6]}")
        if (self.crs or None) != (other.crs or None):
            found.append(f"CRS {other.crs} vs {self.crs}")
        return found

    def offset_px(self, other: "RasterGrid") -> float:
        """How far (in this grid's pixels) the other grid puts the corners of its raster from where this grid does."""
        try:
            inverse = ~self.transform
        except Exception:  # a degenerate transform (zero pixel size) matches nothing
            return float("inf")
        corners = [(0, 0), (other.width, 0), (0, other.height), (other.width, other.height)]
        worst = 0.0
        for col, row in corners:
            x, y = inverse * (other.transform * (col, row))
            worst = max(worst, abs(x - col), abs(y - row))
        return worst

    def profile(self, **extra) -> dict:
        return {**GTIFF, "width": self.width, "height": self.height, "transform": self.transform, "crs": self.crs, **extra}


def open_raster(path: str | Path, what: str):
    """Open an input raster, or an InputError naming ``what`` and the path (missing, or not a raster GDAL reads)."""
    if not Path(path).exists():
        raise InputError(f"{what} {path} does not exist. Check the path.")
    try:
        return rasterio.open(path)
    except RasterioIOError as exc:
        raise InputError(f"{what} {path} cannot be read as a raster ({exc}). Give a GeoTIFF or another GDAL raster.") from exc


def read_input(ds, what: str, *args, **kwargs) -> np.ndarray:
    """``ds.read(*args, **kwargs)`` of an input raster; a file that fails to read (cut short, damaged) is an InputError
    naming it, not taken for a failed write (GDAL raises the same error class for both)."""
    try:
        return ds.read(*args, **kwargs)
    except RasterioError as exc:
        detail = exc.__cause__ or exc.__context__ or exc  # GDAL's own words ("TIFFReadEncodedTile() failed"), when given
        raise InputError(f"{what} {ds.name} could not be read ({detail}): the file is damaged or incomplete (a copy or download "
                         "cut short?). Check it (`gdalinfo -checksum` fails on such a file), copy or export it again, "
                         "and rerun.") from exc


@dataclass
class SemanticRaster:
    labels: np.ndarray  # uint8 [H, W], in the model's codes; nodata pixels hold the scheme's nodata code
    grid: RasterGrid
    valid: np.ndarray  # bool [H, W]: False where the input had nodata (or the unknown code)
    path: str
    scratch: Scratch | None = None  # makes the run's other whole-raster arrays (on disk when labels and valid are)

    def all_valid(self) -> bool:
        return all(bool(self.valid[b, :].all()) for b in row_bands(self.grid.height, self.grid.width))


# Rows of the land-cover map read and checked at a time: the whole map is held only as uint8 codes and a
# validity mask (2 bytes per pixel), never as its file's dtype or as whole-raster temporaries.
READ_PIXELS = 1 << 22


def read_semantic(path: str | Path, scheme: ClassScheme, band: int = 1, remap: np.ndarray | None = None,
                  scratch_folder: str | Path | None = None) -> SemanticRaster:
    """Read a land-cover raster, remap it into the model's scheme and check its codes (window by window).

    With ``scratch_folder``, a large map's codes and validity are kept in files there (:mod:`.scratch`)."""
    with open_raster(path, "Semantic raster") as ds:
        if not 1 <= band <= ds.count:
            raise InputError(f"Semantic raster {path} has {ds.count} band(s); band {band} does not exist. Choose a band from 1 to {ds.count}.")
        nodata = ds.nodatavals[band - 1]
        grid = RasterGrid.of(ds)
        looks_like_image = _looks_like_image(ds)
        lossy = _lossy_compression(ds)
        scratch = Scratch(scratch_folder, (grid.height, grid.width))
        labels, valid = scratch.empty(np.uint8, "labels"), scratch.empty(bool, "valid")
        present = np.zeros(256, dtype=bool)  # codes of the valid pixels, after any remap
        non_integer, outside_values, dtype = False, set(), None
        block = ds.block_shapes[band - 1][0] if ds.block_shapes else 1
        rows = max(block, READ_PIXELS // max(grid.width, 1) // block * block)  # whole blocks: each decoded once
        for row in range(0, grid.height, rows):
            n = min(rows, grid.height - row)
            raw = read_input(ds, "Semantic raster", band, window=Window(0, row, grid.width, n))
            dtype = raw.dtype
            if not np.issubdtype(raw.dtype, np.integer):
                non_integer |= not np.all(np.isnan(raw) | (raw == np.round(raw)))
            finite = raw[np.isfinite(raw)] if raw.dtype.kind == "f" else raw
            outside = (finite < 0) | (finite > 255)
            if nodata is not None:
                outside &= finite != nodata
            if np.any(outside):
                outside_values.update(int(v) for v in np.unique(finite[outside]))
            invalid = np.zeros(raw.shape, dtype=bool)
            if nodata is not None:
                invalid |= raw == nodata if not np.isnan(nodata) else np.isnan(raw)
            chunk = np.where(invalid, scheme.nodata_code, np.nan_to_num(raw)).astype(np.uint8)
            if remap is not None:
                chunk = remap[chunk]
            present |= np.bincount(chunk[~invalid], minlength=256)[:256] > 0
            invalid |= chunk == scheme.nodata_code
            labels[row : row + n, :] = chunk
            valid[row : row + n, :] = ~invalid
    if non_integer:
        raise InputError(f"Semantic raster {path} holds non-integer values ({dtype}). A land-cover map needs integer class codes; convert it (e.g. gdal_translate -ot Byte).")
    if outside_values:
        bad = sorted(outside_values)[:10]
        raise InputError(f"Semantic raster {path} holds codes outside 0..255 ({bad}). Class codes must fit in 8 bits; remap them first.")
    try:
        scheme.check_codes(np.flatnonzero(present).astype(np.uint8), what=f"Semantic raster {path}")
    except InputError as exc:
        if looks_like_image:
            raise InputError(f"Semantic raster {path} has {looks_like_image} bands and looks like an image (RGB), not a "
                             "land-cover map of class codes. Give the land-cover map as the semantic raster, and the "
                             "image as the pre-event image (--image); a land-cover map drawn in colours needs its class "
                             "codes exported instead (one band), and codes of another scheme a remap (--remap).") from None
        if lossy:
            raise InputError(f"Semantic raster {path} is {lossy}-compressed: lossy compression changed its class codes "
                             f"(the codes at class edges are blends). {exc} Save the land-cover map again without lossy "
                             "compression (a GeoTIFF with deflate or LZW, or PNG) from its original.") from None
        raise
    if lossy:
        warnings.warn(f"Semantic raster {path} is {lossy}-compressed, which is lossy: some class codes may have been changed. "
                      "Prefer a GeoTIFF with deflate or LZW.", stacklevel=2)
    if grid.crs is None:
        warnings.warn(f"Semantic raster {path} has no CRS: the outputs will have none either.", stacklevel=2)
    return SemanticRaster(labels=labels, grid=grid, valid=valid, path=str(path), scratch=scratch)


def _looks_like_image(ds) -> int:
    """The band count when the raster is a 3- or 4-band 8-bit picture (RGB or RGBA), else 0."""
    from rasterio.enums import ColorInterp

    colours = {ColorInterp.red, ColorInterp.green, ColorInterp.blue}
    if ds.count in (3, 4) and ds.dtypes[0] == "uint8" and (colours <= set(ds.colorinterp) or ds.count == 3):
        return ds.count
    return 0


def _lossy_compression(ds) -> str | None:
    """'JPEG' (or 'lossy WebP') when the raster's pixels went through lossy compression, else None."""
    compression = (ds.compression.name if ds.compression else "").upper()
    if ds.driver == "JPEG" or compression in ("JPEG", "OJPEG"):
        return "JPEG"
    if ds.driver == "WEBP" or compression == "WEBP":
        lossless = str(ds.tags(ns="IMAGE_STRUCTURE").get("WEBP_LOSSLESS", "")).upper() in ("TRUE", "YES", "1")
        return None if lossless else "lossy WebP"
    return None


def _alpha_band(ds) -> int | None:
    """The 1-based index of the image's alpha band, if it has one."""
    from rasterio.enums import ColorInterp

    for index, interp in enumerate(ds.colorinterp, start=1):
        if interp == ColorInterp.alpha and index > 3:
            return index
    return None


class ImageSource:
    """An RGB image on the semantic raster's grid, read window by window."""

    def __init__(self, path: str | Path, grid: RasterGrid) -> None:
        self.path = str(path)
        self.dataset = open_raster(path, "Image")
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

    @property
    def alpha_band(self) -> int | None:
        return _alpha_band(self.dataset)

    def mask_transparent(self, sem: "SemanticRaster", nodata_code: int) -> int:
        """Alpha 0 (fully transparent) pixels of an RGBA image become nodata of ``sem`` (its map and
        validity change in place); returns their count. An image without alpha changes nothing."""
        band = self.alpha_band
        if band is None:
            return 0
        newly = 0
        rows = 1024  # the alpha band is read in bands of rows, not whole
        for row in range(0, sem.grid.height, rows):
            n = min(rows, sem.grid.height - row)
            b = slice(row, row + n)
            transparent = read_input(self.dataset, "Image", band, window=Window(0, row, sem.grid.width, n)) == 0
            valid, labels = sem.valid[b, :], sem.labels[b, :]
            newly += int(np.count_nonzero(transparent & valid))
            valid &= ~transparent
            labels[transparent] = nodata_code  # so no change event touches them either
            sem.valid[b, :], sem.labels[b, :] = valid, labels
        return newly

    def read_uint8(self, row: int, col: int, height: int, width: int) -> np.ndarray:
        return read_input(self.dataset, "Image", (1, 2, 3), window=Window(col, row, width, height), boundless=True, fill_value=0)

    def read_mirrored(self, row: int, col: int, height: int, width: int) -> np.ndarray:
        """uint8 [3, h, w]; the part beyond the raster is mirrored, not black, to keep the encoder calm."""
        h = max(0, min(height, self.dataset.height - row))
        w = max(0, min(width, self.dataset.width - col))
        inside = read_input(self.dataset, "Image", (1, 2, 3), window=Window(col, row, w, h))
        if (h, w) != (height, width):
            inside = np.pad(inside, ((0, 0), (0, height - h), (0, width - w)), mode="symmetric")
        return inside

    def close(self) -> None:
        self.dataset.close()


def write_classes(path: Path, labels: np.ndarray, valid: np.ndarray, grid: RasterGrid, scheme: ClassScheme) -> None:
    """A land-cover map with the model's colour table; nodata pixels get the scheme's nodata code."""
    with rasterio.open(path, "w", **grid.profile(count=1, dtype="uint8", nodata=scheme.nodata_code)) as dst:
        if is_scratch(labels) or is_scratch(valid):
            for b in row_bands(grid.height, grid.width, multiple=GTIFF["blockysize"]):  # window by window
                dst.write(np.where(valid[b, :], labels[b, :], scheme.nodata_code).astype(np.uint8), 1,
                          window=Window(0, b.start, grid.width, b.stop - b.start))
        else:
            dst.write(np.where(valid, labels, scheme.nodata_code).astype(np.uint8), 1)
        dst.write_colormap(1, scheme.colormap())


def write_mask(path: Path, mask: np.ndarray, grid: RasterGrid) -> None:
    """Binary change mask: 1 changed, 0 unchanged, 255 (nodata) where the input had none."""
    with rasterio.open(path, "w", **grid.profile(count=1, dtype="uint8", nodata=255)) as dst:
        if is_scratch(mask):
            for b in row_bands(grid.height, grid.width, multiple=GTIFF["blockysize"]):
                dst.write(mask[b, :], 1, window=Window(0, b.start, grid.width, b.stop - b.start))
        else:
            dst.write(mask.astype(np.uint8), 1)


def open_rgb(path: Path, grid: RasterGrid):
    """An RGB GeoTIFF opened for window-by-window writing."""
    return rasterio.open(path, "w", **grid.profile(count=3, dtype="uint8", photometric="RGB"))

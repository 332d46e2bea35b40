"""The style image of ``--style``: an 8-bit RGB raster of any size and grid, read as one central window.

It is an appearance reference (a season, a light, a sensor), not a map of the same place: its grid, CRS and size are
never compared with the land-cover map's. Only its colours matter, so a central window of at most ``STYLE_WINDOW_PX``
a side at native resolution stands for the whole raster and keeps a large mosaic quick to encode.
"""

from __future__ import annotations

import warnings
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import rasterio
from rasterio.enums import ColorInterp
from rasterio.errors import NotGeoreferencedWarning, RasterioIOError
from rasterio.windows import Window

from ..errors import InputError
from .checksum import file_sha256

STYLE_WINDOW_PX = 1024  # a side of the central window that is encoded
# Fewer opaque pixels than this and the statistics would describe a few objects, not an appearance.
STYLE_MIN_PIXELS = 64 * 64


@dataclass(frozen=True)
class StyleImage:
    path: str
    sha256: str
    pixels: np.ndarray  # uint8 [3, h, w]: the central window's red, green and blue
    valid: np.ndarray  # bool [h, w]: False where the alpha band is 0 (ignored)
    window: tuple[int, int, int, int]  # (row, col, height, width) of the window in the raster


def _alpha(ds) -> int | None:
    for index, interp in enumerate(ds.colorinterp, start=1):
        if interp == ColorInterp.alpha and index > 3:
            return index
    return None


def check_style_image(path: str | Path) -> None:
    """Refuse a style image the model cannot take, naming the problem and the fix (nothing read beyond the header)."""
    with _open(path):
        pass


@contextmanager
def _open(path: str | Path):
    """The style raster opened and checked: exists, is a raster, has 3 bands or more, is 8-bit, is not tiny."""
    path = Path(path)
    if not str(path).strip() or not path.exists():
        raise InputError(f"Style image {path} does not exist. Give an RGB image (e.g. a GeoTIFF or PNG of another "
                         "date or sensor) whose appearance the post-event image should take.")
    if path.is_dir():
        raise InputError(f"Style image {path} is a folder. Give one RGB image file.")
    try:
        with warnings.catch_warnings():  # a style image need not be georeferenced (a PNG of another place is fine)
            warnings.simplefilter("ignore", NotGeoreferencedWarning)
            ds = rasterio.open(path)
    except RasterioIOError as exc:
        raise InputError(f"Style image {path} cannot be read as a raster ({exc}). Give a GeoTIFF, PNG, JPEG or "
                         "another GDAL raster.") from exc
    with ds:
        if ds.count < 3:
            raise InputError(f"Style image {path} has {ds.count} band(s); it needs 3 or more (red, green, blue first). "
                             "Give an RGB image, not a land-cover map or a single band.")
        if any(dtype != "uint8" for dtype in ds.dtypes[:3]):
            raise InputError(f"Style image {path} is {ds.dtypes[0]}; the model works on 8-bit RGB. Convert it first "
                             "(e.g. gdal_translate -ot Byte -scale, or QGIS Raster > Conversion > Translate).")
        if ds.width < 64 or ds.height < 64:
            raise InputError(f"Style image {path} is {ds.width}x{ds.height} px; an appearance needs at least 64x64 px. "
                             "Give a larger image.")
        yield ds


def read_style_image(path: str | Path, window_px: int = STYLE_WINDOW_PX) -> StyleImage:
    """The central window (at most ``window_px`` a side) of the style raster, its opaque pixels, and the file's sha256."""
    with _open(path) as ds:
        h, w = min(window_px, ds.height), min(window_px, ds.width)
        row, col = (ds.height - h) // 2, (ds.width - w) // 2
        window = Window(col, row, w, h)
        pixels = ds.read((1, 2, 3), window=window)
        alpha = _alpha(ds)
        valid = ds.read(alpha, window=window) != 0 if alpha is not None else np.ones((h, w), dtype=bool)
    opaque = int(np.count_nonzero(valid))
    if opaque < STYLE_MIN_PIXELS:
        raise InputError(f"Style image {path} has only {opaque} opaque pixels in its central {w}x{h} px (alpha 0 is ignored); "
                         f"it needs at least {STYLE_MIN_PIXELS}. Give an image whose centre shows land.")
    return StyleImage(str(path), file_sha256(Path(path)), pixels, valid, (row, col, h, w))

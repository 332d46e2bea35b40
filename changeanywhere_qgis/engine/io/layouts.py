"""Folder layouts that change-detection libraries read as they are.

* LEVIR-CD (BIT, ChangeFormer, open-cd, torchange): ``A/`` pre-event image, ``B/`` post-event image,
  ``label/`` binary change mask (0 unchanged, 255 changed), and ``list/{train,val,test}.txt`` with one
  file name per line.
* SECOND (Bi-SRNet, SCanNet): ``im1/``, ``im2/``, and ``label1/``, ``label2/`` semantic change maps:
  the land-cover class before (``label1``) and after (``label2``) where the land changed, 0 (no change)
  everywhere else. The maps are 8-bit palette images: the pixel value is the model's class code, the
  palette holds the model's class colours (no change is white, as in SECOND, unless a class of the
  model is white already; then it is black).

``png``: plain 8-bit PNGs (the libraries' default). ``tif``: GeoTIFFs on the tile's own window of the
source raster (transform and CRS kept). Files are written with rasterio (GDAL), no other library.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import rasterio
from rasterio.errors import NotGeoreferencedWarning

from ..errors import InputError
from ..landcover import ClassScheme

LAYOUTS = ("levir", "second", "both")
FORMATS = ("png", "tif")
FOLDERS = {"levir": ("A", "B", "label"), "second": ("im1", "im2", "label1", "label2")}
SPLITS = ("train", "val", "test")
LIST_FOLDER = "list"


def check_layout(layout: str, fmt: str) -> None:
    if layout not in LAYOUTS:
        raise InputError(f"Unknown dataset layout {layout!r}. Choose one of: {', '.join(LAYOUTS)} (both = LEVIR-CD and SECOND folders side by side).")
    if fmt not in FORMATS:
        raise InputError(f"Unknown image format {fmt!r}. Choose png (what the libraries read by default) or tif (GeoTIFF, georeferenced).")


def parts(layout: str) -> tuple[str, ...]:
    return ("levir", "second") if layout == "both" else (layout,)


def folders(layout: str) -> list[str]:
    return [f for part in parts(layout) for f in FOLDERS[part]]


def file_name(name: str, fmt: str) -> str:
    return f"{name}.{fmt}"


def sample_files(layout: str, fmt: str, name: str) -> dict[str, str]:
    """Role (= folder) -> path relative to the dataset root, e.g. {"A": "A/000001.png", ...}."""
    return {folder: f"{folder}/{file_name(name, fmt)}" for folder in folders(layout)}


def no_change_colour(scheme: ClassScheme) -> tuple[int, int, int, int]:
    white = (255, 255, 255)
    return (0, 0, 0, 255) if any(tuple(c.color) == white for c in scheme.classes) else (*white, 255)


def second_palette(scheme: ClassScheme) -> dict[int, tuple[int, int, int, int]]:
    """All 256 entries (PNG palettes must cover every value): class colours, no change, grey elsewhere."""
    table = {i: (0, 0, 0, 255) for i in range(256)}
    table.update({c.code: (*c.color, 255) for c in scheme.classes})
    table[0] = no_change_colour(scheme)
    return table


def _profile(fmt: str, height: int, width: int, count: int, georef) -> dict:
    profile = {"width": width, "height": height, "count": count, "dtype": "uint8"}
    if fmt == "png":
        return {"driver": "PNG", **profile}
    transform, crs = georef if georef is not None else (None, None)
    profile.update(driver="GTiff", compress="deflate")
    if count == 3:
        profile["photometric"] = "RGB"
    if transform is not None:
        profile["transform"] = transform
    if crs is not None:
        profile["crs"] = crs
    return profile


def write_raster(path: Path, data: np.ndarray, fmt: str, georef=None, colormap: dict | None = None) -> None:
    """uint8 [H, W] or [3, H, W] -> PNG or GeoTIFF at ``path`` (no .aux.xml sidecar)."""
    data = data[None] if data.ndim == 2 else data
    path.parent.mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings(), rasterio.Env(GDAL_PAM_ENABLED="NO"):
        warnings.simplefilter("ignore", NotGeoreferencedWarning)
        with rasterio.open(path, "w", **_profile(fmt, data.shape[1], data.shape[2], data.shape[0], georef)) as dst:
            dst.write(data.astype(np.uint8))
            if colormap is not None:
                dst.write_colormap(1, colormap)


def write_sample(root: Path, layout: str, fmt: str, name: str, *, t1: np.ndarray, t2: np.ndarray, pre: np.ndarray,
                 post: np.ndarray, mask: np.ndarray, scheme: ClassScheme, georef=None) -> dict[str, str]:
    """Write one sample's files under ``root`` (a temporary folder: the caller moves them into place).

    t1, t2: uint8 [3, H, W]; pre, post: class codes [H, W]; mask: 1 changed, 0 unchanged, 255 nodata.
    ``georef``: (transform, crs) of the tile, used by GeoTIFFs. Returns role -> relative path.
    """
    files = sample_files(layout, fmt, name)
    changed = mask == 1
    for part in parts(layout):
        if part == "levir":
            write_raster(root / files["A"], t1, fmt, georef)
            write_raster(root / files["B"], t2, fmt, georef)
            write_raster(root / files["label"], np.where(changed, 255, 0).astype(np.uint8), fmt, georef)
        else:
            palette = second_palette(scheme)
            write_raster(root / files["im1"], t1, fmt, georef)
            write_raster(root / files["im2"], t2, fmt, georef)
            write_raster(root / files["label1"], np.where(changed, pre, 0).astype(np.uint8), fmt, georef, palette)
            write_raster(root / files["label2"], np.where(changed, post, 0).astype(np.uint8), fmt, georef, palette)
    return files


def read_raster(path: Path) -> np.ndarray:
    """uint8 [bands, H, W] of a dataset file (PNG or GeoTIFF)."""
    with warnings.catch_warnings(), rasterio.Env(GDAL_PAM_ENABLED="NO"):
        warnings.simplefilter("ignore", NotGeoreferencedWarning)
        with rasterio.open(path) as src:
            return src.read()

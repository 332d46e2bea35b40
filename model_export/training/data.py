"""Training data: folders of image/label pairs, flat or as the OpenEarthMap and LoveDA releases ship them.

    DIR/images/<stem>.{tif,tiff,png,jpg}   RGB imagery (first three bands are used)
    DIR/labels/<stem>.{tif,tiff,png}       land-cover codes on the same pixel grid (optional)

``releases`` finds the pairs of the other layouts (a release is read one split at a time).

Images without a label are used for the autoencoder only. Labels are remapped to OpenEarthMap
codes 0..8 (0 = unknown) as they are read. Held-out windows never reach a training crop.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from model_export.training.errors import DataError
from model_export.training.releases import find_pairs

IMAGE_SUFFIXES = (".tif", ".tiff", ".png", ".jpg", ".jpeg")
NUM_CODES = 9  # OpenEarthMap: 0 unknown + 8 classes
NUM_CLASSES = 8


@dataclass(frozen=True)
class Window:
    """A pixel window [row0, row1) x [col0, col1) of the tile whose file stem is ``stem``."""

    stem: str
    rows: tuple[int, int]
    cols: tuple[int, int]

    def intersects(self, r0: int, c0: int, size: int) -> bool:
        return r0 < self.rows[1] and r0 + size > self.rows[0] and c0 < self.cols[1] and c0 + size > self.cols[0]


def holdout_windows(config_list: list[dict]) -> list[Window]:
    return [Window(h["stem"], tuple(h["rows"]), tuple(h["cols"])) for h in config_list]


@dataclass(frozen=True)
class Tile:
    image_path: Path
    label_path: Path | None
    remap: tuple[tuple[int, int], ...] | None
    height: int
    width: int
    source: str = ""  # the --data argument it came from: the unit of BALANCES["source"]

    @property
    def stem(self) -> str:
        return self.image_path.stem


# How training draws its crops from the tiles (config `[data] balance`). "tile": every tile alike, the
# recipe of the models before session 8 and the default when the key is absent. "source": every --data
# folder alike, and within a folder by area, so 36 small tiles of one city weigh no more than 2 large
# tiles of another.
BALANCES = ("tile", "source")


def tile_weights(tiles: list[Tile], balance: str) -> np.ndarray | None:
    """Probability of each tile for one crop; None for "tile" (drawn uniformly as before, the same random stream)."""
    if balance not in BALANCES:
        raise DataError(f"[data] balance = {balance!r} is not one of {', '.join(BALANCES)}; fix the config.")
    if balance == "tile" or not tiles:
        return None
    sources = sorted({t.source for t in tiles})
    area = np.array([t.height * t.width for t in tiles], dtype=np.float64)
    weights = np.zeros(len(tiles))
    for s in sources:
        members = np.array([t.source == s for t in tiles])
        weights[members] = area[members] / area[members].sum() / len(sources)
    return weights


def parse_data_arg(arg: str) -> tuple[Path, dict[int, int] | None]:
    """``DIR`` or ``DIR@loveda`` (a built-in remap of the engine) or ``DIR@mapping.json`` (JSON: {"source code": oem code})."""
    from changeanywhere_qgis.engine.errors import InputError
    from changeanywhere_qgis.engine.landcover import builtin_remap, builtin_remaps, read_remap_file

    folder, _, remap = arg.partition("@")
    if not remap:
        return Path(folder), None
    if remap.lower() in builtin_remaps():
        return Path(folder), builtin_remap(remap)
    path = Path(remap)
    if not path.is_file():
        raise DataError(
            f"Unknown label remap {remap!r} in {arg!r}: use one of {', '.join(builtin_remaps())} or the path of a JSON "
            'file such as {"1": 2, "2": 8} mapping source codes to OpenEarthMap codes 0..8.'
        )
    try:
        return Path(folder), read_remap_file(path)
    except InputError as exc:
        raise DataError(f"{exc} (in {arg!r})") from exc


def read_raster(path: Path) -> np.ndarray:
    """HxWxB uint8 (GeoTIFF through rasterio, other formats through Pillow)."""
    if path.suffix.lower() in (".tif", ".tiff"):
        import rasterio

        with rasterio.open(path) as src:
            return np.moveaxis(src.read(), 0, -1)
    from PIL import Image

    a = np.asarray(Image.open(path))
    return a[..., None] if a.ndim == 2 else a


def raster_size(path: Path) -> tuple[int, int]:
    if path.suffix.lower() in (".tif", ".tiff"):
        import rasterio

        with rasterio.open(path) as src:
            return src.height, src.width
    from PIL import Image

    with Image.open(path) as im:
        return im.height, im.width


def apply_remap(label: np.ndarray, remap: dict[int, int] | None) -> np.ndarray:
    if remap is None:
        return label
    lut = np.zeros(256, dtype=np.uint8)
    for src, dst in remap.items():
        lut[src] = dst
    return lut[label]


def check_label_values(label_raw: np.ndarray, remap: dict[int, int] | None, path: Path) -> None:
    values = np.unique(label_raw)
    allowed = set(remap) if remap is not None else set(range(NUM_CODES))
    bad = sorted(int(v) for v in values if int(v) not in allowed)
    if bad:
        fix = (
            f"the remap only maps {sorted(allowed)}; extend it"
            if remap is not None
            else "give a remap (DIR@loveda or DIR@mapping.json) that maps them to 0..8"
        )
        raise DataError(
            f"Label {path} has values {bad} outside the OpenEarthMap scheme 0..8 (0 = unknown); {fix}."
        )


def scan_folder(arg: str, split: str = "train") -> list[Tile]:
    """List the tiles of one data folder (any layout of ``releases``) and check them (sizes, label values)."""
    folder, remap = parse_data_arg(arg)
    layout, pairs, layout_remap = find_pairs(folder, split, IMAGE_SUFFIXES)
    if remap is None and layout_remap is not None:
        from changeanywhere_qgis.engine.landcover import builtin_remap

        remap = builtin_remap(layout_remap)
    if not pairs and layout == "flat":
        raise DataError(
            f"No images found in {folder / 'images'} (looked for {', '.join(IMAGE_SUFFIXES)}). Put the imagery in "
            f"{folder / 'images'} and the labels, with the same file names, in {folder / 'labels'}."
        )
    if not pairs:
        raise DataError(f"No images found in the {split} split of the {layout} release in {folder} "
                        f"(looked for {', '.join(IMAGE_SUFFIXES)}).")
    tiles = []
    for image_path, label_path in pairs:
        size = raster_size(image_path)
        if label_path is not None:
            label_size = raster_size(label_path)
            if label_size != size:
                raise DataError(
                    f"Image {image_path} is {size[0]}x{size[1]} pixels but its label {label_path} is "
                    f"{label_size[0]}x{label_size[1]}; an image and its label must cover the same pixel grid "
                    "(resample the label to the image, nearest neighbour)."
                )
            check_label_values(read_raster(label_path)[..., 0], remap, label_path)
        tiles.append(Tile(image_path, label_path, tuple(sorted(remap.items())) if remap else None, *size, source=arg))
    return tiles


def scan_folders(args: list[str], split: str = "train") -> list[Tile]:
    """The tiles of every folder; ``split`` picks the part of a release (train, val, test or all)."""
    return [t for a in args for t in scan_folder(a, split)]


@lru_cache(maxsize=32)
def load_tile(tile: Tile) -> tuple[np.ndarray, np.ndarray | None]:
    """(image HxWx3 uint8, label HxW uint8 in OpenEarthMap codes or None)."""
    image = read_raster(tile.image_path)
    if image.shape[-1] < 3:
        raise DataError(f"Image {tile.image_path} has {image.shape[-1]} band(s); RGB (3 bands) is needed.")
    label = None
    if tile.label_path is not None:
        label = apply_remap(read_raster(tile.label_path)[..., 0], dict(tile.remap) if tile.remap else None)
    return np.ascontiguousarray(image[..., :3]), label


def dihedral(a: np.ndarray, k: int) -> np.ndarray:
    """The k-th of the 8 flips/rotations of an HxW(xC) array (k in 0..7)."""
    a = np.rot90(a, k % 4, axes=(0, 1))
    return a[:, ::-1] if k >= 4 else a


def random_crop_origin(
    rng: np.random.Generator, tile: Tile, size: int, holdout: list[Window], tries: int = 100
) -> tuple[int, int] | None:
    """Top-left corner of a crop that avoids every held-out window of this tile (None if impossible)."""
    if tile.height < size or tile.width < size:
        return None
    windows = [w for w in holdout if w.stem == tile.stem]
    for _ in range(tries):
        r0 = int(rng.integers(0, tile.height - size + 1))
        c0 = int(rng.integers(0, tile.width - size + 1))
        if not any(w.intersects(r0, c0, size) for w in windows):
            return r0, c0
    return None


def image_to_tensor_range(image: np.ndarray) -> np.ndarray:
    """HxWx3 uint8 -> 3xHxW float32 in [-1, 1] (the contract's x / 127.5 - 1)."""
    return np.ascontiguousarray(np.moveaxis(image, -1, 0)).astype(np.float32) / 127.5 - 1.0


def draw_index(rng: np.random.Generator, n: int, weights: np.ndarray | None) -> int:
    """One of n items, by ``weights`` (tile_weights) or uniformly (the draw of the runs before weights existed)."""
    return int(rng.choice(n, p=weights)) if weights is not None else int(rng.integers(n))


def sample_image_crops(
    rng: np.random.Generator, tiles: list[Tile], size: int, count: int, holdout: list[Window],
    weights: np.ndarray | None = None,
) -> np.ndarray:
    """count x 3 x size x size float32 crops in [-1, 1], randomly flipped/rotated (autoencoder);
    tiles drawn with ``weights`` (tile_weights), or uniformly."""
    out = np.empty((count, 3, size, size), dtype=np.float32)
    n = 0
    while n < count:
        tile = tiles[draw_index(rng, len(tiles), weights)]
        origin = random_crop_origin(rng, tile, size, holdout)
        if origin is None:
            continue
        image, _ = load_tile(tile)
        crop = image[origin[0] : origin[0] + size, origin[1] : origin[1] + size]
        out[n] = image_to_tensor_range(dihedral(crop, int(rng.integers(8))))
        n += 1
    return out


def masked_for_holdout(tile: Tile, image: np.ndarray, label: np.ndarray, holdout: list[Window]):
    """Copies with held-out windows blanked (image mid-grey, label unknown), so nothing leaks into caches."""
    image, label = image.copy(), label.copy()
    for w in holdout:
        if w.stem == tile.stem:
            image[w.rows[0] : w.rows[1], w.cols[0] : w.cols[1]] = 127
            label[w.rows[0] : w.rows[1], w.cols[0] : w.cols[1]] = 0
    return image, label


def one_hot(label: np.ndarray, num_classes: int = NUM_CLASSES) -> np.ndarray:
    """[..., H, W] codes -> [..., K, H, W] float32; code c (1..K) -> channel c-1; code 0 -> all zeros."""
    eye = np.concatenate([np.zeros((1, num_classes), np.float32), np.eye(num_classes, dtype=np.float32)])
    return np.moveaxis(eye[label], -1, -3)

"""Bring real data from the shared data folder into data/ (run from the repo root; rerunning rewrites the same files).

    .venv/bin/python data/import_sources.py [--shared ../shared/data]

What it writes, and why each choice (the repository must stay small: see data/README.md):

- ``data/train/dubai/``: Dubai aerial imagery (Humans in the Loop, CC0), tiles 1, 2, 3 and 6 (36 of the 63
  pairs; tiles 4, 5 and 7 are larger files of the same city). Images are the original JPEG bytes (no
  re-encoding); masks are turned from colours into Dubai codes (``--remap dubai`` maps them into the model's;
  ``training_remap.json`` beside them is what training uses).
- ``data/train/flair/``: the four FLAIR #1 patches (IGN, Etalab 2.0) as GeoTIFFs: each patch's origin and
  0.2 m pixels in Lambert-93 (EPSG:2154) from its JSON; masks turned from colours into FLAIR codes 1-19.
- ``data/levir-cd/``: four more real LEVIR-CD pairs, the 256 px crops of the bottom-right quadrant of the full
  test tile ``test_12`` (named ``test_12_ROW_COL`` like the other crops).
- ``data/whu-cd/``: WHU-CD pairs, the 256 px crops of the bottom-right quadrant of each of its three tiles.
  The quadrant is fixed in advance (never chosen by its change), so one quadrant holds no change at all, as
  real unchanged land does.
- ``data/train/oem/``: the GeoTIFFs rewritten with lossless DEFLATE (the same pixels, a third of the bytes).
- ``data/adapt/``: an area that no model version trained on, for the adaptation figures of the model card: a
  512x512 crop of Dubai ``tile_5/image_part_008`` (rows and columns in ``ADAPT_WINDOW``), chosen as the crop of tiles
  4 and 5 with the most of its rarest class among crops with almost no unlabelled pixels (all five classes, 49 %
  bare land: a bright desert downtown). The image is the JPEG's pixels as lossless PNG, the label Dubai codes.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

import numpy as np
import rasterio
from PIL import Image
from rasterio.crs import CRS
from rasterio.transform import from_origin

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from changeanywhere_qgis.engine.landcover import codes_from_colours, mask_colours  # noqa: E402

DUBAI_TILES = (1, 2, 3, 6)
ADAPT_SOURCE = ("tile_5", "image_part_008")  # Dubai, never in data/train
ADAPT_WINDOW = ((512, 1024), (0, 512))  # rows, cols
FLAIR_GSD_M = 0.2
QUADRANT = (512, 512)  # the bottom-right 512x512 quadrant of a 1024x1024 change tile
CROP = 256
GTIFF = {"driver": "GTiff", "compress": "deflate", "predictor": 2, "zlevel": 9, "tiled": True, "blockxsize": 256, "blockysize": 256}


def _rgb(path: Path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("RGB"))


def _fresh(folder: Path) -> Path:
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    return folder


def dubai_label(mask: Path) -> np.ndarray:
    """A Dubai colour mask -> uint8 Dubai codes."""
    return codes_from_colours(_rgb(mask), mask_colours("dubai"), what=f"Mask {mask}")


def import_dubai(shared: Path, out: Path) -> int:
    images, labels = _fresh(out / "images"), _fresh(out / "labels")
    n = 0
    for t in DUBAI_TILES:
        for image in sorted((shared / f"tile_{t}" / "images").glob("image_part_*.jpg")):
            stem = f"tile{t}_part{image.stem.rsplit('_', 1)[1]}"
            mask = shared / f"tile_{t}" / "masks" / f"{image.stem}.png"
            codes = dubai_label(mask)
            if codes.shape != _rgb(image).shape[:2]:
                raise SystemExit(f"error: {mask} is {codes.shape} but {image} is {_rgb(image).shape[:2]}")
            shutil.copyfile(image, images / f"{stem}.jpg")
            Image.fromarray(codes).save(labels / f"{stem}.png", optimize=True)
            n += 1
    return n


def import_adaptation_area(shared: Path, out: Path) -> str:
    tile, part = ADAPT_SOURCE
    (r0, r1), (c0, c1) = ADAPT_WINDOW
    image, codes = _rgb(shared / tile / "images" / f"{part}.jpg"), dubai_label(shared / tile / "masks" / f"{part}.png")
    if codes.shape != image.shape[:2]:
        raise SystemExit(f"error: the mask of {tile}/{part} is {codes.shape} but its image is {image.shape[:2]}")
    out.mkdir(parents=True, exist_ok=True)
    stem = f"dubai_{tile.replace('_', '')}_part{part.rsplit('_', 1)[1]}_r{r0}_c{c0}"
    Image.fromarray(image[r0:r1, c0:c1]).save(out / f"{stem}_image.png", optimize=True)
    Image.fromarray(codes[r0:r1, c0:c1]).save(out / f"{stem}_label.png", optimize=True)
    return stem


def flair_label(mask: Path, meta: Path) -> tuple[np.ndarray, rasterio.Affine]:
    """A FLAIR colour mask -> (uint8 FLAIR codes, the patch's transform in EPSG:2154 from its JSON origin)."""
    west, north = json.loads(meta.read_text(encoding="utf-8"))["origin"]
    return codes_from_colours(_rgb(mask), mask_colours("flair"), what=f"Mask {mask}"), from_origin(west, north, FLAIR_GSD_M, FLAIR_GSD_M)


def import_flair(shared: Path, out: Path) -> int:
    images, labels = _fresh(out / "images"), _fresh(out / "labels")
    n = 0
    for image in sorted(shared.glob("IMG_*.png")):
        rgb = _rgb(image)
        codes, transform = flair_label(shared / image.name.replace("IMG_", "MSK_"), image.with_suffix(".json"))
        profile = {**GTIFF, "width": rgb.shape[1], "height": rgb.shape[0], "transform": transform, "crs": CRS.from_epsg(2154)}
        with rasterio.open(images / f"{image.stem}.tif", "w", count=3, dtype="uint8", photometric="RGB", **profile) as dst:
            dst.write(np.moveaxis(rgb, -1, 0))
        with rasterio.open(labels / f"{image.stem}.tif", "w", count=1, dtype="uint8", nodata=0, **profile) as dst:
            dst.write(codes, 1)
        n += 1
    return n


def import_change_quadrants(src: Path, out: Path, fresh: bool) -> int:
    """256 px crops of the fixed quadrant of every A/B/label triplet in ``src``."""
    parts = {p: (_fresh(out / p) if fresh else out / p) for p in ("A", "B", "label")}
    n = 0
    for label in sorted((src / "label").glob("*.png")):
        for r in range(QUADRANT[0], QUADRANT[0] + 512, CROP):
            for c in range(QUADRANT[1], QUADRANT[1] + 512, CROP):
                name = f"{label.stem}_{r:04d}_{c:04d}.png"
                for part in ("A", "B", "label"):
                    with Image.open(src / part / label.name) as im:
                        im.crop((c, r, c + CROP, r + CROP)).save(parts[part] / name, optimize=True)
                n += 1
    return n


def recompress_geotiffs(folder: Path) -> int:
    """Rewrite each GeoTIFF with lossless DEFLATE (pixels, transform, CRS and nodata unchanged)."""
    n = 0
    for path in sorted(folder.rglob("*.tif")):
        with rasterio.open(path) as src:
            data, profile = src.read(), src.profile
            colorinterp = src.colorinterp
        temp = path.with_name(f".{path.name}.partial")
        profile.update({k: v for k, v in GTIFF.items() if k != "driver"})
        with rasterio.open(temp, "w", **profile) as dst:
            dst.write(data)
            dst.colorinterp = colorinterp
        with rasterio.open(temp) as check:
            if not np.array_equal(check.read(), data):
                raise SystemExit(f"error: recompressing {path} changed its pixels")
        temp.replace(path)
        n += 1
    return n


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--shared", type=Path, default=REPO.parent / "shared" / "data", help="the shared data folder (default ../shared/data)")
    args = p.parse_args(argv)
    if not (args.shared / "README.md").is_file():
        raise SystemExit(f"error: {args.shared} is not the shared data folder (no README.md). Give it with --shared.")
    data = REPO / "data"
    print(f"dubai: {import_dubai(args.shared / 'dubai', data / 'train' / 'dubai')} image/label pairs")
    print(f"flair: {import_flair(args.shared / 'flair', data / 'train' / 'flair')} georeferenced patches")
    print(f"levir-cd: +{import_change_quadrants(args.shared / 'levir-cd-tiles', data / 'levir-cd', fresh=False)} pairs from test_12")
    print(f"whu-cd: {import_change_quadrants(args.shared / 'whu-cd', data / 'whu-cd', fresh=True)} pairs")
    print(f"oem: {recompress_geotiffs(data / 'train' / 'oem')} GeoTIFFs recompressed losslessly")
    print(f"adapt: {import_adaptation_area(args.shared / 'dubai', data / 'adapt')} (a Dubai area no model trained on)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

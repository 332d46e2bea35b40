"""Check A1 of docs/research/map-following-checks.md: the engine's autoencoder copy of real images at several autoencoder tiles.

The autoencoder's GroupNorm normalises over its whole input, so how much of a scene one tile holds changes the
copy. This scores the engine's own copy (``autoencoder_copy``, exactly what ``--pre-event redrawn`` gives) against
the real image on images larger than the model's tile that no training run has seen:

- the 512x512 blocks that the real change pairs of ``data/`` hold as four 256 px crops (``NAME_ROW_COL.png`` in
  ``A/`` and ``B/``), both dates;
- the held-out windows of the config that are larger than the model's tile.

    python -m model_export.evaluation.autoencoder_tiles --model changeanywhere_qgis/models/default --tiles 256 512 \\
        --pairs data/whu-cd data/levir-cd --config model_export/configs/default.toml [--data DIR[@REMAP] ...] [--json OUT.json]
"""

from __future__ import annotations

import argparse
import json
import re
from collections import defaultdict
from pathlib import Path

import numpy as np

from changeanywhere_qgis.engine.diffusion import autoencoder_copy, load_model_package
from changeanywhere_qgis.engine.quality import psnr

from model_export.evaluation.holdout import holdout_tiles
from model_export.training.data import read_raster

CROP_NAME = re.compile(r"^(?P<stem>.+)_(?P<row>\d+)_(?P<col>\d+)$")


def crop_mosaics(folder: Path) -> dict[str, np.ndarray]:
    """Each stem whose crops ``STEM_ROW_COL.png`` tile a whole rectangle, put back together (uint8 [3, H, W])."""
    crops = defaultdict(dict)
    for path in sorted(folder.glob("*.png")):
        m = CROP_NAME.match(path.stem)
        if m:
            crops[m["stem"]][int(m["row"]), int(m["col"])] = path
    mosaics = {}
    for stem, by_origin in crops.items():
        if len(by_origin) < 2:
            continue
        images = {origin: read_raster(path)[..., :3] for origin, path in by_origin.items()}
        top = min(r for r, _ in images)
        left = min(c for _, c in images)
        bottom = max(r + im.shape[0] for (r, _), im in images.items())
        right = max(c + im.shape[1] for (_, c), im in images.items())
        out = np.zeros((bottom - top, right - left, 3), np.uint8)
        covered = np.zeros(out.shape[:2], bool)
        for (r, c), im in images.items():
            out[r - top : r - top + im.shape[0], c - left : c - left + im.shape[1]] = im
            covered[r - top : r - top + im.shape[0], c - left : c - left + im.shape[1]] = True
        if covered.all():  # crops with gaps between them are no scene
            mosaics[stem] = np.ascontiguousarray(np.moveaxis(out, -1, 0))
    return mosaics


def check_images(pairs: list[Path], config: str | None, data: list[str], larger_than: int, granule: int) -> list[tuple[str, np.ndarray]]:
    """(name, uint8 [3, H, W]) of every image of the check, cropped to whole multiples of the model's size granule."""
    found = []
    for folder in pairs:
        for date in ("A", "B"):
            for stem, image in crop_mosaics(folder / date).items():
                found.append((f"{folder.name} {stem} {date}", image))
    if config:
        for w, tile in holdout_tiles(config, data):
            image = np.moveaxis(read_raster(tile.image_path)[w.rows[0] : w.rows[1], w.cols[0] : w.cols[1], :3], -1, 0)
            if max(image.shape[1:]) > larger_than:
                found.append((f"held-out {tile.image_path.parent.parent.name} {w.stem}", image))
    return [(name, np.ascontiguousarray(im[:, : im.shape[1] // granule * granule, : im.shape[2] // granule * granule]))
            for name, im in found]


def copy_psnr_table(model: str | Path, tiles: list[int], images: list[tuple[str, np.ndarray]]) -> list[dict]:
    pkg = load_model_package(model, "cpu")
    return [{"image": name, "size": list(image.shape[1:]),
             **{str(t): round(psnr(autoencoder_copy(pkg, image, tile_px=t), image), 2) for t in tiles}}
            for name, image in images]


def render(rows: list[dict], tiles: list[int]) -> str:
    head = "| image | size | " + " | ".join(f"{t} px tiles" for t in tiles) + " |"
    lines = [head, "|" + " --- |" * (2 + len(tiles))]
    for r in rows:
        lines.append(f"| {r['image']} | {r['size'][0]}x{r['size'][1]} | " + " | ".join(f"{r[str(t)]:.2f} dB" for t in tiles) + " |")
    means = [float(np.mean([r[str(t)] for r in rows])) for t in tiles]
    lines.append("| **mean** | | " + " | ".join(f"**{m:.2f} dB**" for m in means) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default="changeanywhere_qgis/models/default")
    p.add_argument("--tiles", type=int, nargs="+", default=[256, 512], help="autoencoder tiles to compare, pixels")
    p.add_argument("--pairs", type=Path, nargs="*", default=[Path("data/whu-cd"), Path("data/levir-cd")])
    p.add_argument("--config", default="model_export/configs/default.toml", help="its held-out windows ('' for none)")
    p.add_argument("--data", nargs="*", default=["data/train/oem", "data/train/loveda@loveda",
                   "data/train/dubai@data/train/dubai/training_remap.json", "data/train/flair@flair"],
                   help="the folders that hold the config's held-out windows")
    p.add_argument("--json", type=Path)
    args = p.parse_args(argv)
    pkg = load_model_package(args.model, "cpu")
    images = check_images(args.pairs, args.config, args.data, pkg.tile_size, max(pkg.multiple_of, pkg.downsample))
    rows = copy_psnr_table(args.model, args.tiles, images)
    print(render(rows, args.tiles))
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Reconstruction PSNR of a model package on every held-out window, per source: what caps every generated image.

The config's ``[data] holdout`` lists one window per labelled source (never used for training). Each window's
real image goes through the package's encoder and decoder as the plugin runs them (``autoencoder_copy``:
tiled, overlaps fused), and the copy is compared with the real image.

    python -m model_export.holdout --model changeanywhere_qgis/models/default \
        --config model_export/configs/default.toml --data data/train/oem data/train/loveda@loveda ... [--json OUT.json]
"""

from __future__ import annotations

import argparse
import json
import sys
import tomllib
from pathlib import Path

import numpy as np

from changeanywhere_qgis.engine.diffusion import autoencoder_copy, load_model_package
from changeanywhere_qgis.engine.quality import psnr

from .data import DataError, holdout_windows, read_raster, scan_folders


def holdout_psnr(model: str | Path, config: str | Path, data: list[str]) -> list[dict]:
    """One row per held-out window: source folder, stem, window, size, PSNR (dB) of the package's copy."""
    windows = holdout_windows(tomllib.loads(Path(config).read_text())["data"]["holdout"])
    tiles = {t.stem: t for t in scan_folders(data, "all")}  # a held-out window may sit in any split
    pkg = load_model_package(model, "cpu")
    rows = []
    for w in windows:
        tile = tiles.get(w.stem)
        if tile is None:
            raise DataError(f"The held-out window's tile {w.stem!r} is in none of the data folders {data}; give its folder with --data.")
        image = np.moveaxis(read_raster(tile.image_path)[w.rows[0] : w.rows[1], w.cols[0] : w.cols[1], :3], -1, 0)
        f = max(pkg.multiple_of, pkg.downsample)
        h, wd = image.shape[1] // f * f, image.shape[2] // f * f  # whole latent cells
        image = np.ascontiguousarray(image[:, :h, :wd])
        copy = autoencoder_copy(pkg, image)
        rows.append({"source": tile.image_path.parent.parent.name, "stem": w.stem, "rows": list(w.rows), "cols": list(w.cols),
                     "size": [int(h), int(wd)], "psnr_db": round(psnr(copy, image), 2)})
    return rows


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", required=True, type=Path)
    p.add_argument("--config", type=Path, default=Path(__file__).parent / "configs" / "default.toml")
    p.add_argument("--data", nargs="+", required=True, help="the training data folders (DIR or DIR@remap), as given to training")
    p.add_argument("--json", type=Path, help="also write the rows here")
    args = p.parse_args(argv)
    try:
        rows = holdout_psnr(args.model, args.config, args.data)
    except DataError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print("| source | held-out window | pixels | reconstruction PSNR (dB) |\n| --- | --- | --- | --- |")
    for r in rows:
        print(f"| {r['source']} | {r['stem']} rows {r['rows'][0]}-{r['rows'][1] - 1}, cols {r['cols'][0]}-{r['cols'][1] - 1} | "
              f"{r['size'][0]}x{r['size'][1]} | {r['psnr_db']:.2f} |")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())

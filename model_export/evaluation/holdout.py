"""Reconstruction PSNR of a model package on every held-out window, per source: what caps every generated image.

The config's ``[data] holdout`` lists one window per labelled source (never used for training). Each window's
real image goes through the package's encoder and decoder as the plugin runs them (``autoencoder_copy``:
tiled, overlaps fused), and the copy is compared with the real image.

    python -m model_export.evaluation.holdout --model changeanywhere_qgis/models/default \
        --config model_export/configs/default.toml --data data/train/oem data/train/loveda@loveda ... [--whole] [--json OUT.json]
    python -m model_export.evaluation.holdout --autoencoder-run model_export/runs/continue/autoencoder --data ...
"""

from __future__ import annotations

import argparse
import json
import sys
import tomllib
from pathlib import Path

import numpy as np

from changeanywhere_qgis.engine.diffusion import autoencoder_copy, load_model_package, to_model_range, to_uint8
from changeanywhere_qgis.engine.quality import psnr

from model_export import CONFIGS
from model_export.training.data import Tile, Window, holdout_windows, read_raster, scan_folders
from model_export.training.errors import DataError


def holdout_tiles(config: str | Path, data: list[str], labelled: bool = False) -> list[tuple[Window, Tile]]:
    """Each held-out window of the config with the tile of ``data`` that holds it (in any split of a release)."""
    windows = holdout_windows(tomllib.loads(Path(config).read_text())["data"]["holdout"])
    tiles = {t.stem: t for t in scan_folders(data, "all")}
    pairs = []
    for w in windows:
        tile = tiles.get(w.stem)
        if tile is None or labelled and tile.label_path is None:
            raise DataError(f"The held-out window's tile {w.stem!r} is in none of the {'labelled ' * labelled}data folders "
                            f"{data}; give its folder{' (with its remap)' * labelled} with --data.")
        pairs.append((w, tile))
    return pairs


def holdout_psnr(model: str | Path | None, config: str | Path, data: list[str], whole: bool = False,
                 autoencoder_run: Path | None = None) -> list[dict]:
    """One row per held-out window: source folder, stem, window, size, PSNR (dB) of the package's copy.

    ``whole``: the package's graphs on the whole window at once instead of the engine's tiles (the
    autoencoder's GroupNorm sees the whole window: the two differ on windows larger than a tile).
    ``autoencoder_run``: instead of a package, the checkpoint of a training run's autoencoder stage,
    in PyTorch on the whole window (runs that were never exported, e.g. a candidate that failed its check).
    """
    if autoencoder_run is not None:
        copy_of, f = run_copier(autoencoder_run)
    else:
        pkg = load_model_package(model, "cpu")
        f = max(pkg.multiple_of, pkg.downsample)
        copy_of = (lambda image: to_uint8(pkg.decode(pkg.encode(to_model_range(image[None])))[0])) if whole \
            else (lambda image: autoencoder_copy(pkg, image))
    rows = []
    for w, tile in holdout_tiles(config, data):
        image = np.moveaxis(read_raster(tile.image_path)[w.rows[0] : w.rows[1], w.cols[0] : w.cols[1], :3], -1, 0)
        h, wd = image.shape[1] // f * f, image.shape[2] // f * f  # whole latent cells
        image = np.ascontiguousarray(image[:, :h, :wd])
        copy = copy_of(image)
        offset, untinted = tone(copy, image)
        rows.append({"source": tile.image_path.parent.parent.name, "stem": w.stem, "rows": list(w.rows), "cols": list(w.cols),
                     "size": [int(h), int(wd)], "psnr_db": round(psnr(copy, image), 2),
                     "band_offset": [round(float(v), 1) for v in offset], "psnr_offset_removed_db": round(psnr(untinted, image), 2)})
    return rows


def tone(copy: np.ndarray, image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each band's mean offset of the copy from the image (grey levels), and the copy with it taken away: how much of
    the PSNR's loss is an overall tint rather than lost detail (check 6 of docs/research/map-following-checks.md)."""
    offset = (copy.astype(np.float64) - image).mean(axis=(1, 2))
    return offset, np.clip(np.rint(copy - offset[:, None, None]), 0, 255).astype(np.uint8)


def run_copier(run: Path):
    """An autoencoder run's checkpoint as a uint8 [3, H, W] -> copy function, and its size granule."""
    import torch

    from model_export.networks.autoencoder import build_vqmodel, downsample_factor
    from model_export.training.checkpoints import load_if_present

    ckpt = load_if_present(Path(run) / "last.pt")
    if ckpt is None or ckpt.get("stage") != "autoencoder":
        raise DataError(f"{Path(run) / 'last.pt'} is not an autoencoder-stage checkpoint; give --autoencoder-run the --out "
                        "folder of `python -m model_export.training.train --stage autoencoder` (or decoder).")
    vq = build_vqmodel(ckpt["config"]["autoencoder"])
    vq.load_state_dict(ckpt["vq"])
    vq.eval()

    def copy_of(image: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            out = vq(torch.from_numpy(to_model_range(image[None]))).sample[0].numpy()
        return to_uint8(np.clip(out, -1.0, 1.0))

    # crops of whole 4x4 latent blocks, as the packages' multiple_of (16) gives: the same pixels as a package's rows
    return copy_of, 4 * downsample_factor(ckpt["config"]["autoencoder"])


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    which = p.add_mutually_exclusive_group(required=True)
    which.add_argument("--model", type=Path, help="a model package")
    which.add_argument("--autoencoder-run", type=Path, help="an autoencoder stage's run folder (PyTorch, whole windows)")
    p.add_argument("--whole", action="store_true", help="the package's graphs on each whole window, not the engine's tiles")
    p.add_argument("--config", type=Path, default=CONFIGS / "default.toml")
    p.add_argument("--data", nargs="+", required=True, help="the training data folders (DIR or DIR@remap), as given to training")
    p.add_argument("--json", type=Path, help="also write the rows here")
    args = p.parse_args(argv)
    try:
        rows = holdout_psnr(args.model, args.config, args.data, args.whole, args.autoencoder_run)
    except DataError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print("| source | held-out window | pixels | reconstruction PSNR (dB) | mean offset per band (R, G, B) | PSNR with it removed (dB) |"
          "\n| --- | --- | --- | --- | --- | --- |")
    for r in rows:
        print(f"| {r['source']} | {r['stem']} rows {r['rows'][0]}-{r['rows'][1] - 1}, cols {r['cols'][0]}-{r['cols'][1] - 1} | "
              f"{r['size'][0]}x{r['size'][1]} | {r['psnr_db']:.2f} | {', '.join(f'{v:+.1f}' for v in r['band_offset'])} | "
              f"{r['psnr_offset_removed_db']:.2f} |")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())

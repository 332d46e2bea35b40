"""How well a model package follows the map on every held-out window, one row per training source.

For each window of the config's ``[data] holdout`` (never trained on), the central SIZE x SIZE of
its map (remapped to the model's classes as in training) is generated from, as the plugin samples
(DDIM, classifier-free guidance), for each seed. A judge (model_export/evaluation/segmentation.py) labels each
image; the ratio of its mIoU against the map to its mIoU against the map rotated 180 degrees (what
an image that ignores the map scores) is the map-following figure of docs/research/map-following-checks.md.
The real image and the package's copy of it (encoder then decoder) are scored too: the copy is the
ceiling a generator drawing through this decoder can reach.

Beside the ratio, each row gives the generated images' colour against the real window's: the mean
absolute offset of the band means (0-255) and the contrast ratio (band standard deviations, generated
over real). A package can follow the map more plainly by drawing harsher colours (more guidance
saturates and burns): these say whether it did. ``--images DIR`` writes, per window, the real crop,
the copy and the first seed's image side by side, to look at.

    python -m model_export.evaluation.map_following --model changeanywhere_qgis/models/default \
        --judge model_export/runs/default/segmentation --data data/train/oem data/train/loveda@loveda ... \
        --seeds 24 25 26 27 --json OUT.json
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from changeanywhere_qgis.engine.diffusion import DEFAULT_ETA, PRECISIONS, load_model_package
from changeanywhere_qgis.engine.errors import ModelError

from model_export import CONFIGS
from model_export.evaluation import segmentation
from model_export.evaluation.holdout import holdout_tiles
from model_export.evaluation.model_card import psnr, score_generated, to_uint8
from model_export.training.data import image_to_tensor_range, load_tile
from model_export.training.errors import DataError


def central(rows: tuple[int, int], cols: tuple[int, int], size: int) -> tuple[slice, slice]:
    """The central size x size of a window (the whole window where it is smaller)."""
    def middle(a: int, b: int) -> slice:
        n = min(size, b - a)
        start = a + (b - a - n) // 2
        return slice(start, start + n)

    return middle(*rows), middle(*cols)


def colour_against(generated: list[np.ndarray], real: np.ndarray) -> dict:
    """Mean absolute offset of the band means (0-255) and mean ratio of band standard deviations, generated over
    real, averaged over the generated images."""
    real = real.reshape(-1, 3).astype(np.float64)
    offsets, contrasts = [], []
    for g in generated:
        g = g.reshape(-1, 3).astype(np.float64)
        offsets.append(float(np.abs(g.mean(0) - real.mean(0)).mean()))
        contrasts.append(float(np.mean(g.std(0) / np.maximum(real.std(0), 1e-6))))
    return {"colour_offset": round(float(np.mean(offsets)), 2), "contrast_ratio": round(float(np.mean(contrasts)), 3)}


def score_windows(model_dir: Path, judge_dir: Path, config: Path, data: list[str], seeds: list[int],
                  guidance: float, steps: int, eta: float, size: int, images: Path | None = None,
                  precision: str = "float32") -> list[dict]:
    pairs = holdout_tiles(config, data, labelled=True)
    model = load_model_package(model_dir, "cpu", threads=torch.get_num_threads(), precision=precision)
    judge = segmentation.load(judge_dir)
    m = model.multiple_of
    rows = []
    for w, tile in pairs:
        image, label = load_tile(tile)
        r, c = central(w.rows, w.cols, size)
        r, c = slice(r.start, r.start + (r.stop - r.start) // m * m), slice(c.start, c.start + (c.stop - c.start) // m * m)
        real, label = image[r, c, :3], label[r, c]
        real_in = image_to_tensor_range(real)
        copy_in = model.decode(model.encode(real_in[None]))[0]
        copy = to_uint8(copy_in)
        rotated = np.rot90(label, 2)
        row = {"source": tile.image_path.parent.parent.name, "stem": w.stem,
               "rows": [r.start, r.stop], "cols": [c.start, c.stop],
               "copy_psnr_db": round(psnr(copy, real), 2)}
        for name, x in (("real", real_in), ("copy", copy_in)):
            pred = segmentation.predict(judge, x)
            row[f"{name}_miou_map"], row[f"{name}_miou_rotated"] = segmentation.miou(pred, label)[0], segmentation.miou(pred, rotated)[0]
        drawn: list[np.ndarray] = []
        gen = score_generated(model, judge, label, guidance, seeds, steps, eta, keep=drawn)
        row.update(generated_miou_map=gen["miou_map"], generated_miou_rotated=gen["miou_rotated"], per_seed=gen["per_seed"])
        row.update(colour_against(drawn, real))
        if images is not None:
            images.mkdir(parents=True, exist_ok=True)
            Image.fromarray(np.concatenate([real, copy, drawn[0]], axis=1)).save(
                images / f"{row['source']}_{w.stem}.png", optimize=True)
        for name in ("real", "copy", "generated"):
            row[f"{name}_ratio"] = ratio(row[f"{name}_miou_map"], row[f"{name}_miou_rotated"])
        print(f"{row['source']} {w.stem}: generated {row['generated_ratio']:.2f}x, copy {row['copy_ratio']:.2f}x, "
              f"real {row['real_ratio']:.2f}x; colour offset {row['colour_offset']:.1f}, contrast {row['contrast_ratio']:.2f}",
              file=sys.stderr)
        rows.append(row)
    return rows


def ratio(on_map: float, rotated: float) -> float:
    return on_map / rotated if rotated > 0 else float("nan")


def table(rows: list[dict]) -> str:
    lines = ["| source | window (rows, cols) | generated: mIoU vs map / rotated = ratio | autoencoder's copy | real image | copy PSNR (dB) "
             "| generated vs real: colour offset, contrast |",
             "| --- | --- | --- | --- | --- | --- | --- |"]
    for r in rows:
        cells = [f"{r[f'{n}_miou_map']:.3f} / {r[f'{n}_miou_rotated']:.3f} = **{r[f'{n}_ratio']:.2f}x**" if n == "generated"
                 else f"{r[f'{n}_miou_map']:.3f} / {r[f'{n}_miou_rotated']:.3f} = {r[f'{n}_ratio']:.2f}x" for n in ("generated", "copy", "real")]
        lines.append(f"| {r['source']} | {r['stem']} {r['rows'][0]}:{r['rows'][1]}, {r['cols'][0]}:{r['cols'][1]} | "
                     + " | ".join(cells) + f" | {r['copy_psnr_db']:.2f} | {r['colour_offset']:.1f}, {r['contrast_ratio']:.2f}x |")
    mean = float(np.mean([r["generated_ratio"] for r in rows]))
    lines.append(f"| **mean of the windows** | | **{mean:.2f}x** | {np.mean([r['copy_ratio'] for r in rows]):.2f}x | "
                 f"{np.mean([r['real_ratio'] for r in rows]):.2f}x | | |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m model_export.evaluation.map_following", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", required=True, type=Path)
    p.add_argument("--judge", required=True, type=Path, help="a model_export.evaluation.segmentation --out folder")
    p.add_argument("--config", type=Path, default=CONFIGS / "default.toml",
                   help="its [data] holdout lists the windows")
    p.add_argument("--data", nargs="+", required=True, metavar="DIR[@REMAP]", help="the training data folders, as given to training")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3])
    p.add_argument("--guidance", type=float, help="default: the package's")
    p.add_argument("--steps", type=int, default=50)
    p.add_argument("--eta", type=float, default=DEFAULT_ETA)
    p.add_argument("--size", type=int, default=256, help="side of the central crop of each window, in pixels")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--json", type=Path, help="also write the rows here")
    p.add_argument("--images", type=Path, help="write real | copy | first seed's image per window here (PNG)")
    p.add_argument("--precision", choices=PRECISIONS, default="float32",
                   help="int8: the package's optional int8 denoiser (model_export.export.quantize)")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    try:
        guidance = args.guidance or json.loads((args.model / "model.json").read_text())["diffusion"]["guidance_scale"]
        rows = score_windows(args.model, args.judge, args.config, args.data, args.seeds, guidance, args.steps,
                             args.eta, args.size, args.images, args.precision)
    except (DataError, ModelError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"{args.model}, judge {args.judge} ({segmentation.recipe(segmentation.read_record(args.judge))}); "
          f"DDIM {args.steps} steps, eta {args.eta:g}, guidance {guidance:g}, seeds {args.seeds}, "
          f"{args.precision} denoiser:\n")
    print(table(rows))
    if args.json:
        args.json.write_text(json.dumps({"model": str(args.model), "judge": str(args.judge), "guidance": guidance,
                                         "seeds": args.seeds, "steps": args.steps, "eta": args.eta,
                                         "precision": args.precision, "rows": rows}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())

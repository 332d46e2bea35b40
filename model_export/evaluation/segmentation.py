"""A small land-cover segmentation net, the judge of whether generated images follow their maps.

Trained on the real labelled tiles (held-out windows excluded), then used by model_card.py:
high mIoU on a generated image against its map means the generator drew the classes where the map
put them.

    python -m model_export.evaluation.segmentation --data data/train/oem data/train/loveda@loveda \
        --out model_export/runs/default/segmentation --max-minutes 6
"""

from __future__ import annotations

import argparse
import json
import sys
import tomllib
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from changeanywhere_qgis.engine.errors import ModelError
from changeanywhere_qgis.engine.diffusion import to_uint8

from model_export import CONFIGS
from model_export.networks.segmentation import SmallUNet
from model_export.training.checkpoints import save_atomic
from model_export.training.data import (NUM_CLASSES, dihedral, holdout_windows, image_to_tensor_range, load_tile,
                                        random_crop_origin, scan_folders)
from model_export.training.schedules import Budget, warmup_cosine

DEFAULT_CONFIG = CONFIGS / "default.toml"


def cached_tile(cache: dict, tile) -> tuple[np.ndarray, np.ndarray | None]:
    """(image, label) of ``tile``, read once per run."""
    if tile.stem not in cache:
        cache[tile.stem] = load_tile(tile)
    return cache[tile.stem]


def labelled_crops(rng, tiles, holdout, size: int, count: int, cache: dict | None = None,
                   renders: dict | None = None, render_share: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """``count`` random crops of the labelled tiles, each turned by one of the 8 dihedral moves.

    With ``renders`` (stem -> the tile as an autoencoder redraws it), a ``render_share`` of the crops
    come from the redrawn tile instead of the real one, under the same label.
    """
    images, labels = [], []
    cache = {} if cache is None else cache
    while len(images) < count:
        tile = tiles[int(rng.integers(len(tiles)))]
        origin = random_crop_origin(rng, tile, size, holdout)
        if origin is None:
            continue
        image, label = cached_tile(cache, tile)
        if renders and rng.random() < render_share:
            image = renders[tile.stem]
        r, c = origin
        k = int(rng.integers(8))
        images.append(image_to_tensor_range(np.ascontiguousarray(dihedral(image[r : r + size, c : c + size], k))))
        labels.append(np.ascontiguousarray(dihedral(label[r : r + size, c : c + size], k)))
    return np.stack(images), np.stack(labels)


def photometric(rng: np.random.Generator, images: np.ndarray) -> np.ndarray:
    """Random brightness, contrast, saturation, colour cast and blur, per image ([-1, 1] range).

    The judge must read the layout (where trees, roofs, roads are), not one sensor's exact colours
    and sharpness: generated images are softer and colour-shifted, and a judge that keys on texture
    alone would score every one of them low whatever its layout.
    """
    out = images.copy()
    for i, x in enumerate(out):
        grey = x.mean(0, keepdims=True)
        x = grey + (x - grey) * rng.uniform(0.5, 1.5)  # saturation
        x = x.mean() + (x - x.mean()) * rng.uniform(0.7, 1.3)  # contrast
        x = x + rng.uniform(-0.2, 0.2) + rng.normal(0.0, 0.05, (3, 1, 1))  # brightness, colour cast
        if rng.random() < 0.5:  # blur: a 3x3 box filter, once or twice
            t = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))[None]
            for _ in range(int(rng.integers(1, 3))):
                t = F.avg_pool2d(F.pad(t, (1, 1, 1, 1), mode="replicate"), 3, stride=1)
            x = t[0].numpy()
        out[i] = np.clip(x, -1.0, 1.0)
    return out.astype(np.float32)


def decoder_renderings(model_dir: Path, tiles, threads: int, cache: dict | None = None) -> dict[str, np.ndarray]:
    """Each labelled tile as a model package's autoencoder redraws it (encode, then decode).

    Generated images come out of this decoder: softer, with its own small colour and texture
    habits. A judge that has seen real land drawn this way reads a generated image's layout instead
    of marking it down for being drawn by the decoder. Held-out windows stay out of training all the
    same: crops are taken outside them.
    """
    from changeanywhere_qgis.engine.diffusion import load_model_package  # the plugin's reader

    model = load_model_package(Path(model_dir), device="cpu", threads=threads)
    f = model.downsample
    cache = {} if cache is None else cache
    renders = {}
    for tile in tqdm(tiles, desc="redrawing tiles through the autoencoder"):
        image, _ = cached_tile(cache, tile)
        h, w = (image.shape[0] // f) * f, (image.shape[1] // f) * f
        redrawn = image.copy()  # a strip narrower than f at the edge stays real
        for r in range(0, h, 256):  # 256 px blocks: the memory of one model tile
            for c in range(0, w, 256):
                block = image_to_tensor_range(image[r : min(r + 256, h), c : min(c + 256, w)])
                out = model.decode(model.encode(block[None]))[0]
                redrawn[r : r + out.shape[1], c : c + out.shape[2]] = np.moveaxis(to_uint8(out), 0, -1)
        renders[tile.stem] = redrawn
    return renders


@torch.no_grad()
def predict(net: SmallUNet, image: np.ndarray) -> np.ndarray:
    """[3, H, W] float32 in [-1, 1] -> [H, W] OpenEarthMap codes 1..8."""
    net.eval()
    return net(torch.from_numpy(image)[None]).argmax(1)[0].numpy().astype(np.uint8) + 1


def miou(pred: np.ndarray, truth: np.ndarray) -> tuple[float, dict[int, float]]:
    """Mean IoU over the classes present in ``truth`` (code 0 = unknown is ignored)."""
    known = truth > 0
    ious = {}
    for code in np.unique(truth[known]):
        p, t = (pred == code) & known, truth == code
        ious[int(code)] = float((p & t).sum() / max(1, (p | t).sum()))
    return float(np.mean(list(ious.values()))) if ious else float("nan"), ious


def read_record(folder: Path) -> dict | None:
    """How the judge in ``folder`` was trained (its judge.json), or None for one saved without it."""
    path = Path(folder) / "judge.json"
    return json.loads(path.read_text()) if path.is_file() else None


def recipe(record: dict | None) -> str:
    """The judge's training in a few words, for reports."""
    if not record:
        return "trained on the real labelled tiles"
    made = f"{record['steps']} steps on the real labelled tiles"
    if record.get("redrawn_by"):
        made += f", {record['redrawn_share']:.0%} of its crops redrawn by the autoencoder of `{record['redrawn_by']}`"
    return made + (", colour/contrast/blur augmentation" if record.get("augment") else "")


def load(folder: Path) -> SmallUNet:
    net = SmallUNet(NUM_CLASSES)
    net.load_state_dict(torch.load(folder / "segmentation.pt", map_location="cpu", weights_only=True))
    return net.eval()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", nargs="+", required=True, metavar="DIR[@REMAP]")
    p.add_argument("--out", required=True, type=Path)
    p.add_argument("--config", default=DEFAULT_CONFIG, help="only its [data] holdout is used")
    p.add_argument("--max-steps", type=int, default=3000)
    p.add_argument("--max-minutes", type=float)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--no-augment", dest="augment", action="store_false",
                   help="train on the images as they are (no colour/contrast/blur augmentation)")
    p.add_argument("--redrawn-by", type=Path, metavar="MODEL_DIR",
                   help="a model package: also train on the tiles as its autoencoder redraws them")
    p.add_argument("--redrawn-share", type=float, default=0.5, help="share of crops taken from the redrawn tiles")
    args = p.parse_args(argv)
    if not 0.0 <= args.redrawn_share <= 1.0:
        p.error(f"--redrawn-share is {args.redrawn_share}; give a share between 0 and 1 (0.5: half the crops redrawn).")
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    with open(args.config, "rb") as f:
        holdout = holdout_windows(tomllib.load(f)["data"].get("holdout", []))
    tiles = [t for t in scan_folders(args.data) if t.label_path is not None]
    cache: dict = {}  # tiles read once, for the redrawing and the crops
    try:
        renders = decoder_renderings(args.redrawn_by, tiles, args.threads, cache) if args.redrawn_by else None
    except ModelError as e:
        p.error(f"--redrawn-by {args.redrawn_by} is not a usable model package ({e})")
    net = SmallUNet(NUM_CLASSES)
    opt = torch.optim.AdamW(net.parameters(), lr=3e-3, weight_decay=1e-4)
    budget = Budget(args.max_steps, args.max_minutes)
    step, bar = 0, tqdm(total=args.max_steps, desc="segmentation", mininterval=10)
    net.train()
    while not budget.done(step):
        for g in opt.param_groups:
            g["lr"] = 3e-3 * warmup_cosine(step, 50, budget.progress(step))
        images, labels = labelled_crops(rng, tiles, holdout, 128, 8, cache, renders, args.redrawn_share)
        if args.augment:
            images = photometric(rng, images)
        logits = net(torch.from_numpy(images))
        # Code 0 (unknown) -> target -1, ignored.
        loss = F.cross_entropy(logits, torch.from_numpy(labels.astype(np.int64) - 1), ignore_index=-1)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        step += 1
        bar.update(1)
        bar.set_postfix(loss=f"{loss.item():.3f}")
    bar.close()
    args.out.mkdir(parents=True, exist_ok=True)
    save_atomic(net.state_dict(), args.out / "segmentation.pt")
    # How this judge was made, for the model card.
    (args.out / "judge.json").write_text(json.dumps({
        "steps": step, "last_loss": round(loss.item(), 4), "data": args.data, "augment": args.augment,
        "redrawn_by": str(args.redrawn_by) if args.redrawn_by else None,
        "redrawn_share": args.redrawn_share if args.redrawn_by else 0.0}, indent=2) + "\n")
    print(f"segmentation: {step} steps, last loss {loss.item():.3f}, wrote {args.out / 'segmentation.pt'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The held-out figures of an adaptation: measured on the base package and on the adapted one, on the block of the
user's area that training never saw.

- **reconstruction PSNR** (dB): the package's autoencoder copy of the held-out image (the engine's
  ``autoencoder_copy``, tiled as the plugin runs it) against the image. Adaptation trains only the denoiser,
  so this figure stays the base's; it is measured on both packages all the same, as the check that it does.
- **denoising loss**: the training loss (v-prediction MSE) of the denoiser on the held-out block's latents,
  for fixed noise and timesteps (the same draws for both packages): lower means the denoiser predicts this
  area's imagery under its map better. This is the figure adaptation moves.
- **map-following ratio** (only with a judge, ``--judge``): the project's judge (``model_export/evaluation/segmentation.py``)
  labels images generated from the held-out block's map; mIoU against the map over mIoU against the map
  rotated 180 degrees (docs/research/map-following-checks.md). With it, the same images' **colour offset** (mean absolute
  difference of the band means from the real block's, 0-255) and **contrast ratio** (their band standard deviations
  over the real block's): a model that burns a bright area white can still follow its map.

An adapted package's figures can be measured again later, e.g. with a judge it was not adapted with (its manifest
says which map, image and block; the base package must still be where the manifest says, or be given)::

    python -m model_export.adaptation.figures ADAPTED_PACKAGE --judge JUDGE_DIR [--base BASE_DIR] [--json OUT.json] [--strip OUT.jpg]

``--strip`` also writes the pictures behind the map-following figures: the block's real image, then the base's and
the adapted package's image of each seed (the same seeds, so the same noise), side by side.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch

from changeanywhere_qgis.engine.diffusion import DEFAULT_ETA, autoencoder_copy, load_model_package
from changeanywhere_qgis.engine.errors import InputError, ModelError
from changeanywhere_qgis.engine.quality import psnr

from model_export.adaptation.area import Area, HeldOut
from model_export.evaluation.map_following import central, colour_against, ratio
from model_export.training.data import image_to_tensor_range, one_hot
from model_export.training.diffusion import noise_scheduler
from model_export.training.errors import DataError

LOSS_DRAWS = 16  # noise/timestep draws per held-out crop: enough that two packages' losses compare steadily
JUDGE_SEEDS = [0, 1, 2, 3]
JUDGE_STEPS = 50
JUDGE_SIZE = 256


def held_out_pixels(area: Area, held: HeldOut) -> tuple[np.ndarray, np.ndarray]:
    """(uint8 [3, h, w] image, uint8 [h, w] labels, nodata as 0) of the held-out block."""
    r, c = slice(*held.rows), slice(*held.cols)
    labels = np.where(area.valid[r, c], area.labels[r, c], 0).astype(np.uint8)
    return np.ascontiguousarray(np.moveaxis(area.image[r, c], -1, 0)), labels


def reconstruction_psnr(model_dir: Path, area: Area, held: HeldOut) -> float:
    image, _ = held_out_pixels(area, held)
    return round(psnr(autoencoder_copy(load_model_package(model_dir, "cpu"), image), image), 2)


def central_window(held: HeldOut, multiple: int) -> HeldOut:
    """The central (at most) JUDGE_SIZE x JUDGE_SIZE of the block, on the model's multiple: what the denoiser and the
    judge are run on (the whole block at once could need gigabytes in the denoiser's attention)."""
    r, c = central(held.rows, held.cols, JUDGE_SIZE)
    return HeldOut((r.start, r.start + (r.stop - r.start) // multiple * multiple),
                   (c.start, c.start + (c.stop - c.start) // multiple * multiple))


@torch.no_grad()
def held_out_latents(area: Area, held: HeldOut, vq, mean, std, multiple: int) -> tuple[torch.Tensor, np.ndarray]:
    """Standardised latents and labels of the block's central window."""
    image, labels = held_out_pixels(area, central_window(held, multiple))
    x = torch.from_numpy(image_to_tensor_range(np.moveaxis(image, 0, -1)))[None]
    z = (vq.encode(x).latents - mean.reshape(1, -1, 1, 1)) / std.reshape(1, -1, 1, 1)
    return z, labels


@torch.no_grad()
def denoising_loss(unet, latents: torch.Tensor, labels: np.ndarray, dcfg: dict, seed: int) -> float:
    """Mean v-prediction (or noise) MSE over fixed draws of noise and timestep: the same draws for every model."""
    sched = noise_scheduler(dcfg)
    gen = torch.Generator().manual_seed(seed)
    unet = unet.eval()
    semantic = torch.from_numpy(one_hot(labels[None]))
    losses = []
    for _ in range(LOSS_DRAWS):
        t = torch.randint(0, dcfg["num_train_timesteps"], (1,), generator=gen)
        noise = torch.randn(latents.shape, generator=gen)
        xt = sched.add_noise(latents, noise, t)
        target = sched.get_velocity(latents, noise, t) if dcfg["prediction"] == "v_prediction" else noise
        losses.append(float(torch.mean((unet(xt, t, semantic).float() - target) ** 2)))
    return round(float(np.mean(losses)), 5)


def map_following(model_dir: Path, judge_dir: Path, area: Area, held: HeldOut, images: list | None = None) -> dict:
    """The judge's map-following ratio on images generated from the held-out block's map (its central crop), and
    their colour against the block's real image. ``images`` receives the generated images (uint8 HxWx3), seed by seed."""
    from model_export.evaluation import segmentation
    from model_export.evaluation.model_card import score_generated

    model = load_model_package(model_dir, "cpu", threads=torch.get_num_threads())
    w = central_window(held, model.multiple_of)
    r, c = slice(*w.rows), slice(*w.cols)
    label = np.where(area.valid[r, c], area.labels[r, c], 0).astype(np.uint8)
    images = [] if images is None else images
    gen = score_generated(model, segmentation.load(judge_dir), label, model.guidance_scale, JUDGE_SEEDS, JUDGE_STEPS,
                          DEFAULT_ETA, keep=images)
    return {"ratio": round(ratio(gen["miou_map"], gen["miou_rotated"]), 3), "miou_map": round(gen["miou_map"], 4),
            "miou_rotated": round(gen["miou_rotated"], 4), **colour_against(images, area.image[r, c]),
            "window": {"rows": [r.start, r.stop], "cols": [c.start, c.stop]}, "seeds": JUDGE_SEEDS, "steps": JUDGE_STEPS,
            "eta": DEFAULT_ETA}


def real_image_map_following(judge_dir: Path, area: Area, held: HeldOut, multiple: int) -> dict:
    """The judge's ratio on the real image of the same central window: what an image of this area that follows its map
    perfectly scores with this judge (a judge that never saw such imagery reads real images of it poorly too)."""
    from model_export.evaluation import segmentation

    w = central_window(held, multiple)
    r, c = slice(*w.rows), slice(*w.cols)
    label = np.where(area.valid[r, c], area.labels[r, c], 0).astype(np.uint8)
    image = image_to_tensor_range(np.ascontiguousarray(area.image[r, c]))
    pred = segmentation.predict(segmentation.load(judge_dir), image)
    on_map, rotated = segmentation.miou(pred, label)[0], segmentation.miou(pred, np.rot90(label, 2))[0]
    return {"ratio": round(ratio(on_map, rotated), 3), "miou_map": round(on_map, 4), "miou_rotated": round(rotated, 4),
            "window": {"rows": [r.start, r.stop], "cols": [c.start, c.stop]}}


def figures(model_dir: Path, unet, latents, labels, dcfg: dict, area: Area, held: HeldOut, judge: Path | None,
            seed: int, images: list | None = None) -> dict:
    out = {"reconstruction_psnr_db": reconstruction_psnr(model_dir, area, held),
           "denoising_loss": denoising_loss(unet, latents, labels, dcfg, seed)}
    if judge is not None:
        out["map_following"] = map_following(model_dir, judge, area, held, images)
    return out


def remeasure(adapted_dir: Path, judge: Path | None, base_dir: Path | None = None, config: Path | None = None,
              images: dict | None = None) -> dict:
    """The held-out figures of an adapted package and of its base, measured again from the manifest's record.

    ``images`` (with a judge) receives "real" (the block's central window) and the generated images of "before" and
    "after"."""
    from model_export.adaptation.area import read_area
    from model_export.training.package_weights import read_package_networks
    from model_export.training.config import load_config

    a = json.loads((adapted_dir / "model.json").read_text()).get("adaptation")
    if a is None:
        raise DataError(f"{adapted_dir} is not an adapted package (its model.json has no 'adaptation'); "
                         "give the --out folder of python -m model_export.adaptation.adapt")
    base_dir = base_dir or Path(a["base_model"]["path"])
    cfg = load_config(config or a["config"])
    base, adapted = read_package_networks(base_dir, cfg), read_package_networks(adapted_dir, cfg)
    if base.sha256 != a["base_model"]["model_json_sha256"]:
        raise DataError(f"{base_dir} is not the base this package was adapted from (its model.json sha256 "
                         "differs from the manifest's base_model); give the base with --base")
    pkg = load_model_package(adapted_dir, "cpu")
    d = a["data"]
    area = read_area(d["semantic"], d["image"], d["remap"], d["band"], pkg.scheme)
    held = HeldOut(tuple(a["held_out"]["rows"]), tuple(a["held_out"]["cols"]))
    latents, labels = held_out_latents(area, held, base.vq, base.latent_mean, base.latent_std, pkg.multiple_of)
    seed = a["held_out"]["seed"]
    images = {} if images is None else images
    if judge is not None:
        w = central_window(held, pkg.multiple_of)
        images.update(real=area.image[slice(*w.rows), slice(*w.cols)], before=[], after=[])
    return {"package": str(adapted_dir), "steps": a["steps"], "kept": a.get("kept"), "judge": str(judge) if judge else None,
            "held_out": a["held_out"],
            **({"real_image": real_image_map_following(judge, area, held, pkg.multiple_of)} if judge else {}),
            "before": figures(base_dir, base.unet, latents, labels, cfg["diffusion"], area, held, judge, seed, images.get("before")),
            "after": figures(adapted_dir, adapted.unet, latents, labels, cfg["diffusion"], area, held, judge, seed,
                             images.get("after"))}


def write_strip(images: dict, path: Path) -> None:
    """The block's real image, then each seed's base and adapted image, in one row with white gaps between."""
    from model_export.evaluation.dataset_report import mosaic, save_figure

    tiles = [images["real"]] + [im for pair in zip(images["before"], images["after"]) for im in pair]
    save_figure(path, mosaic([[np.moveaxis(t, -1, 0) for t in tiles]], gap=8))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m model_export.adaptation.figures",
                                description="Measure an adapted package's held-out figures again (and its base's).")
    p.add_argument("package", type=Path, help="the --out folder of python -m model_export.adaptation.adapt")
    p.add_argument("--judge", type=Path, help="a model_export.evaluation.segmentation --out folder: also the map-following ratio")
    p.add_argument("--base", type=Path, help="the base package (default: the path in the manifest)")
    p.add_argument("--config", type=Path, help="the base's training config (default: the one in the manifest)")
    p.add_argument("--json", type=Path, help="also write the figures here")
    p.add_argument("--strip", type=Path, help="also write a picture (JPEG, or PNG by its name): the block's real image, then "
                                               "each seed's image from the base and from the adapted package (needs --judge)")
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    if args.strip and not args.judge:
        p.error("--strip shows the images the judge scores: give --judge too")
    images = {}
    try:
        out = remeasure(args.package, args.judge, args.base, args.config, images)
    except (DataError, InputError, ModelError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(out, indent=2))
    if args.json:
        args.json.write_text(json.dumps(out, indent=2) + "\n")
    if args.strip:
        write_strip(images, args.strip)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Evaluate an exported model package on the held-out window and write the model card's figures.

On the window held back from all training (houston_16 rows 768:1024, cols 768:1024):
  - autoencoder reconstruction PSNR, through the package's encoder and decoder graphs;
  - images generated from the window's map through the package and the engine's schedule (DDIM,
    as the plugin samples), for several guidance scales and seeds;
  - mIoU of a segmentation net (model_export/evaluation/segmentation.py) on each generated image against the
    map, against the map rotated 180 degrees (what an image that ignores the map scores), and on
    the real image (what a perfect generator could score);
  - the same at the package's guidance scale with other DDIM etas (--compare-eta: the authors' 1 by
    default), the evidence for the engine's default eta;
  - denoiser step time, ONNX Runtime against PyTorch eager, same weights and threads, side by side.
The pictures go to --images, the table between the evaluation markers of --card.

    python -m model_export.evaluation.model_card --model changeanywhere_qgis/models/default \
        --checkpoint model_export/runs/default/diffusion --segmentation model_export/runs/default/segmentation \
        --card docs/reference/model-card.md --images docs/img
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from changeanywhere_qgis.engine import diffusion
from changeanywhere_qgis.engine.diffusion import DEFAULT_ETA, load_model_package

from model_export.evaluation import segmentation
from model_export.export.package import load_networks
from model_export.training.data import image_to_tensor_range, one_hot, read_raster

START, END = "<!-- evaluation:start -->", "<!-- evaluation:end -->"


def to_uint8(image: np.ndarray) -> np.ndarray:
    """[3, H, W] in [-1, 1] -> HxWx3 uint8 (the inverse of the contract's x / 127.5 - 1)."""
    return np.moveaxis(diffusion.to_uint8(image), 0, -1)


def colourise(label: np.ndarray, classes: list[dict]) -> np.ndarray:
    lut = np.zeros((256, 3), np.uint8)
    for c in classes:
        lut[c["code"]] = c["color"]
    return lut[label]


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return 10.0 * np.log10(255.0**2 / max(mse, 1e-12))


def ratio(miou_map: float, miou_rotated: float) -> str:
    return f"{miou_map / miou_rotated:.2f}x" if miou_rotated > 0 else "n/a"


def score_generated(model, seg, label: np.ndarray, guidance: float, seeds: list[int], steps: int, eta: float,
                    keep: list | None = None) -> dict:
    """Mean mIoU of the judge on images generated from ``label``, against it and against it rotated 180°.

    ``keep`` receives every seed's image (uint8 HxWx3), in the order of ``seeds``."""
    rotated = np.rot90(label, 2)
    scores, scores_rot = [], []
    for seed in seeds:
        image = generate(model, label, guidance, seed, steps, eta)
        pred = segmentation.predict(seg, image)
        scores.append(segmentation.miou(pred, label)[0])
        scores_rot.append(segmentation.miou(pred, rotated)[0])
        if keep is not None:
            keep.append(to_uint8(image))
    return {"guidance": guidance, "eta": eta, "miou_map": float(np.mean(scores)),
            "miou_rotated": float(np.mean(scores_rot)), "per_seed": scores}


def generate(model, label: np.ndarray, guidance: float, seed: int, steps: int, eta: float) -> np.ndarray:
    """The plugin's sampling on one tile: DDIM with the package's schedule, classifier-free guidance."""
    model.manifest["diffusion"]["guidance_scale"] = guidance
    schedule, f = model.schedule, model.downsample
    rng = np.random.default_rng(seed)
    semantic = one_hot(label)[None]
    x = rng.standard_normal((1, model.latent_channels, label.shape[0] // f, label.shape[1] // f), dtype=np.float32)
    for t in schedule.timesteps(steps):
        pred = model.denoise(x, np.array([t], dtype=np.int64), semantic)
        noise = rng.standard_normal(x.shape, dtype=np.float32) if eta > 0 else None
        x = schedule.ddim_step(x, int(t), schedule.previous_timestep(int(t), steps), pred, eta=eta, noise=noise)
    return model.decode(x)[0]


def time_denoiser(model, unet, latent_px: int, batch: int, rounds: int) -> dict:
    """Median seconds per denoiser call, ONNX Runtime and PyTorch eager, interleaved on the same inputs."""
    rng = np.random.default_rng(0)
    latent = rng.standard_normal((batch, 3, latent_px, latent_px)).astype(np.float32)
    t = np.full(batch, 500, dtype=np.int64)
    semantic = one_hot(rng.integers(0, 9, (batch, 4 * latent_px, 4 * latent_px)))
    tl, tt, ts = torch.from_numpy(latent), torch.from_numpy(t), torch.from_numpy(semantic)
    session = model.sessions["denoiser"]
    feed = {"latent": latent, "timestep": t, "semantic": semantic}
    ort_s, torch_s = [], []
    with torch.inference_mode():
        for _ in range(2):  # warm-up
            session.run(None, feed)
            unet(tl, tt, ts)
        for _ in range(rounds):
            t0 = time.perf_counter()
            session.run(None, feed)
            ort_s.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            unet(tl, tt, ts)
            torch_s.append(time.perf_counter() - t0)
    o, p = float(np.median(ort_s)), float(np.median(torch_s))
    return {"latent": latent_px, "batch": batch, "onnxruntime_ms": round(1e3 * o, 1),
            "torch_eager_ms": round(1e3 * p, 1), "speedup": round(p / o, 2)}


def card_table(r: dict) -> str:
    lines = [
        START,
        f"Held-out window: `{r['window']}` (never used in training). Generated with DDIM, {r['steps']} steps, "
        f"eta {r['eta']:g}, seeds {r['seeds']}; mIoU over the classes present in the map, by the segmentation net "
        f"of `model_export/evaluation/segmentation.py` ({segmentation.recipe(r['judge'])}).",
        "",
        f"- Autoencoder reconstruction PSNR (ONNX encoder -> decoder): **{r['reconstruction_psnr_db']:.2f} dB**",
        f"- Segmentation mIoU on the real image: **{r['miou_real']:.3f}** (vs its map rotated 180°: "
        f"{r['miou_real_rotated']:.3f}); on the autoencoder's reconstruction of it: **{r['miou_reconstruction']:.3f}** "
        f"(vs rotated: {r['miou_reconstruction_rotated']:.3f}, "
        f"{ratio(r['miou_reconstruction'], r['miou_reconstruction_rotated'])}: what a generator that draws the real "
        "layout, through this decoder, could score)",
        "",
        "| guidance scale | mIoU vs map | mIoU vs map rotated 180° (ignores the map) | ratio |",
        "| --- | --- | --- | --- |",
    ]
    for g in r["generated"]:
        lines.append(f"| {g['guidance']:g} | {g['miou_map']:.3f} | {g['miou_rotated']:.3f} | {ratio(g['miou_map'], g['miou_rotated'])} |")
    if r.get("sampler"):
        lines += ["", f"DDIM eta at the package's guidance scale ({r['sampler'][0]['guidance']:g}), same seeds and steps "
                  "(the engine samples with the first row's eta by default):", "",
                  "| eta | mIoU vs map | mIoU vs map rotated 180° | ratio |", "| --- | --- | --- | --- |"]
        for g in r["sampler"]:
            lines.append(f"| {g['eta']:g} | {g['miou_map']:.3f} | {g['miou_rotated']:.3f} | {ratio(g['miou_map'], g['miou_rotated'])} |")
    lines += ["", "Denoiser call, ONNX Runtime vs PyTorch eager (same weights, "
              f"{r['threads']} threads, medians of {r['rounds']} interleaved calls):", "",
              "| latent | batch | ONNX Runtime ms | PyTorch eager ms | speed-up |", "| --- | --- | --- | --- | --- |"]
    for t in r["timing"]:
        lines.append(f"| {t['latent']}x{t['latent']} | {t['batch']} | {t['onnxruntime_ms']} | {t['torch_eager_ms']} | {t['speedup']}x |")
    lines += ["", "![held-out window](../img/default_model_holdout.png)", "",
              "Left to right: real image, map, autoencoder reconstruction, then one generated image per guidance "
              "scale (first seed).", END]
    return "\n".join(lines)


def update_card(card: Path, table: str) -> None:
    text = card.read_text() if card.is_file() else f"# Model card\n\n{START}\n{END}\n"
    if START not in text or END not in text:
        text += f"\n{START}\n{END}\n"
    head, rest = text.split(START, 1)
    _, tail = rest.split(END, 1)
    card.write_text(head + table + tail)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", required=True, type=Path)
    p.add_argument("--checkpoint", required=True, type=Path, help="the diffusion run the package was exported from")
    p.add_argument("--segmentation", required=True, type=Path)
    p.add_argument("--image", type=Path, default=Path("data/train/oem/images/houston_16.tif"))
    p.add_argument("--label", type=Path, default=Path("data/train/oem/labels/houston_16.tif"))
    p.add_argument("--guidance", type=float, nargs="+", default=[1.0, 2.0, 3.0])
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    p.add_argument("--steps", type=int, default=50)
    p.add_argument("--eta", type=float, default=DEFAULT_ETA)
    p.add_argument("--compare-eta", type=float, nargs="*", default=[1.0],
                   help="other DDIM etas to score at the package's guidance scale (default: 1, the authors' setting)")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--rounds", type=int, default=20)
    p.add_argument("--card", type=Path)
    p.add_argument("--images", type=Path, default=Path("docs/img"))
    p.add_argument("--json", type=Path, help="also write the figures here (default: CHECKPOINT/evaluation.json)")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)

    model = load_model_package(args.model, device="cpu", threads=args.threads)
    ckpt, _, _, unet = load_networks(args.checkpoint)
    (window,) = [w for w in ckpt["config"]["data"]["holdout"] if w["stem"] == args.image.stem]
    rows, cols = slice(*window["rows"]), slice(*window["cols"])
    real = read_raster(args.image)[rows, cols, :3]
    label = read_raster(args.label)[rows, cols, 0]
    package_guidance = model.guidance_scale  # generate() overrides it per row
    seg = segmentation.load(args.segmentation)

    real_in = image_to_tensor_range(real)
    recon_in = model.decode(model.encode(real_in[None]))[0]
    recon = to_uint8(recon_in)
    rotated = np.rot90(label, 2)
    real_pred = segmentation.predict(seg, real_in)
    recon_pred = segmentation.predict(seg, recon_in)
    result = {
        "window": f"{args.image.stem} rows {window['rows'][0]}:{window['rows'][1]}, cols {window['cols'][0]}:{window['cols'][1]}",
        "steps": args.steps, "eta": args.eta, "seeds": args.seeds, "threads": args.threads, "rounds": args.rounds,
        "reconstruction_psnr_db": psnr(recon, real),
        "judge": segmentation.read_record(args.segmentation),
        "miou_real": segmentation.miou(real_pred, label)[0],
        "miou_real_rotated": segmentation.miou(real_pred, rotated)[0],
        "miou_reconstruction": segmentation.miou(recon_pred, label)[0],
        # the ceiling of the ratio: generated images come out of the same decoder
        "miou_reconstruction_rotated": segmentation.miou(recon_pred, rotated)[0],
        "generated": [],
    }
    panel = [real, colourise(label, model.manifest["classes"]), recon]
    for g in args.guidance:
        drawn: list[np.ndarray] = []
        row = score_generated(model, seg, label, g, args.seeds, args.steps, args.eta, keep=drawn)
        panel.append(drawn[0])  # the first seed's image of each guidance
        result["generated"].append(row)
        print(f"guidance {g:g}: mIoU vs map {row['miou_map']:.3f}, vs rotated map {row['miou_rotated']:.3f}")
    if args.compare_eta:
        same = [r for r in result["generated"] if r["guidance"] == package_guidance]
        result["sampler"] = same[:1] or [score_generated(model, seg, label, package_guidance, args.seeds, args.steps, args.eta)]
        for eta in args.compare_eta:
            row = score_generated(model, seg, label, package_guidance, args.seeds, args.steps, eta)
            result["sampler"].append(row)
            print(f"eta {eta:g}: mIoU vs map {row['miou_map']:.3f}, vs rotated map {row['miou_rotated']:.3f}")
    model.manifest["diffusion"]["guidance_scale"] = package_guidance
    result["timing"] = [time_denoiser(model, unet, 64, 1, args.rounds), time_denoiser(model, unet, 64, 2, args.rounds)]
    print(json.dumps(result, indent=2))

    args.images.mkdir(parents=True, exist_ok=True)
    gap = np.full((real.shape[0], 4, 3), 255, np.uint8)
    strip = np.concatenate([x for im in panel for x in (im, gap)][:-1], axis=1)
    Image.fromarray(strip).save(args.images / "default_model_holdout.png", optimize=True)
    (args.json or args.checkpoint / "evaluation.json").write_text(json.dumps(result, indent=2) + "\n")
    if args.card:
        update_card(args.card, card_table(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())

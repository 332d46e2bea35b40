"""Adapt a model package to your area: fine-tune its denoiser on your land-cover map and image.

    python -m model_export.adaptation.adapt --semantic MAP.tif --image IMG.tif [--remap loveda|dubai|flair|FILE] [--band N] \
        --base changeanywhere_qgis/models/default --out my_model [--minutes 30 | --steps N] [--device cpu|cuda] \
        [--holdout 0.2] [--seed 0] [--judge JUDGE_DIR] [--decoder-steps N] [--resume]

The map and image are read and checked exactly as `generate` reads them: whatever `generate` refuses is
refused here with the same message, before anything is written. A block of the area (--holdout, a share
of its pixels, placed by --seed) is kept out of training; the held-out figures (reconstruction PSNR,
denoising loss, and with --judge the map-following ratio) are measured on it for the base package and
for the adapted one, printed at the end and written into the new package's manifest (`adaptation`),
with the base model's name, version and sha256, the data, the grid and the run.

The base package's weights are read back from its ONNX graphs (training/package_weights.py). The denoiser is
trained; the encoder and the codebook never are, so every latent of the base stays valid. With
--decoder-steps N the decoder is then fine-tuned on your image as well (adaptation/decoder.py), and kept only
if it copies the held-out block better than the base's decoder (its reconstruction PSNR; both figures
and the choice are in the manifest); without it the decoder is the base's. The run's checkpoints go into OUT.adapt-run/ beside the output: Ctrl-C or SIGTERM stops
with a checkpoint, and the same command with --resume goes on. The package is exported into a hidden
folder and moved to OUT only when complete; the run folder is removed then.

--config gives the training recipe (default: model_export/configs/default.toml, the bundled model's;
its [finetune.diffusion] table sets the learning rate). A base package without `architecture` in its
manifest (the bundled one) is read back with this config's architecture.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import warnings
from pathlib import Path

import torch

from changeanywhere_qgis.engine.diffusion import load_model_package
from changeanywhere_qgis.engine.errors import InputError, ModelError
from changeanywhere_qgis.engine.io import check_output_path, check_writable, file_sha256

from model_export import CONFIGS
from model_export.adaptation.area import build_cache, check_trainable, choose_holdout, read_area
from model_export.adaptation.decoder import tune_decoder, with_tuned_decoder
from model_export.adaptation.figures import denoising_loss, figures, held_out_latents, real_image_map_following
from model_export.adaptation.train import WATCH_EVERY, Interrupted, Stopper, train
from model_export.networks.autoencoder import downsample_factor
from model_export.training.checkpoints import load_if_present, save_atomic
from model_export.training.config import finetune_config, load_config
from model_export.training.errors import DataError
from model_export.training.package_weights import BaseModel, read_package_networks
from model_export.training.provenance import hardware, loss_summary

DEFAULT_CONFIG = CONFIGS / "default.toml"
DEFAULT_MINUTES = 30.0
RUN_SUFFIX = ".adapt-run"


def run_folder(out: Path) -> Path:
    return out.with_name(out.name + RUN_SUFFIX)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m model_export.adaptation.adapt", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--semantic", required=True, help="land-cover map (a GDAL raster of class codes), as for generate")
    p.add_argument("--image", required=True, help="RGB image on the map's grid (8-bit), as for generate")
    p.add_argument("--remap", help="the map's scheme: loveda, dubai, flair, or a JSON file {\"their code\": our code}")
    p.add_argument("--band", type=int, default=1, help="band of the map holding the codes (default 1)")
    p.add_argument("--base", required=True, type=Path, help="the model package to adapt (e.g. changeanywhere_qgis/models/default)")
    p.add_argument("--out", required=True, type=Path, help="folder of the new model package (must not exist)")
    budget = p.add_mutually_exclusive_group()
    budget.add_argument("--minutes", type=float, help=f"train for this long (default {DEFAULT_MINUTES:g}, over all resumed parts)")
    budget.add_argument("--steps", type=int, help="train for this many steps instead")
    p.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    p.add_argument("--holdout", type=float, default=0.2, metavar="FRACTION",
                   help="share of the area held out of training for the figures (default 0.2; 0.05 to 0.5)")
    p.add_argument("--seed", type=int, default=0, help="places the held-out block and drives the training draws")
    p.add_argument("--judge", type=Path, help="a model_export.evaluation.segmentation --out folder: also measure map-following")
    p.add_argument("--decoder-steps", type=int, default=0, metavar="N",
                   help="then fine-tune the decoder for N steps on your image (encoder and codebook frozen); kept only "
                        "if it copies the held-out block better than the base's (default 0: the base's decoder)")
    p.add_argument("--keep", choices=("best", "last"), default="best",
                   help="which denoiser goes into the package: 'best', the weights (scored every "
                        f"{WATCH_EVERY} steps, the base's included) with the lowest held-out denoising loss, or 'last', "
                        "the last step's (default best: a small area is soon fitted more closely than the land held out)")
    p.add_argument("--config", type=Path, default=DEFAULT_CONFIG, help="training recipe (default: configs/default.toml)")
    p.add_argument("--name", help="the new package's name (default: the base's, 'adapted to' the map's file name)")
    p.add_argument("--threads", type=int, default=2, help="CPU threads for PyTorch")
    p.add_argument("--resume", action="store_true", help="go on with the interrupted run in OUT.adapt-run/")
    return p


def request(args, base_sha: str, held, grid) -> dict:
    """What identifies a run: --resume goes on only with the same data, base, held-out block and recipe."""
    return {"semantic": str(Path(args.semantic).resolve()), "image": str(Path(args.image).resolve()),
            "remap": args.remap, "band": args.band, "base_model_json_sha256": base_sha, "holdout_fraction": args.holdout,
            "held_out_window": held.to_dict(), "seed": args.seed, "config": str(Path(args.config).resolve()),
            "decoder_steps": args.decoder_steps, "keep": args.keep,
            "grid": {"width": grid.width, "height": grid.height}}


def check_arguments(p: argparse.ArgumentParser, args) -> None:
    if not 0.05 <= args.holdout <= 0.5:
        p.error(f"--holdout {args.holdout:g}: give a share of the area between 0.05 and 0.5 (e.g. 0.2)")
    if args.steps is not None and args.steps < 1 or args.minutes is not None and args.minutes <= 0:
        p.error("--steps and --minutes take a positive number")
    if args.decoder_steps < 0:
        p.error(f"--decoder-steps {args.decoder_steps}: give 0 (keep the base's decoder) or a positive number of steps")
    if args.device == "cuda" and not torch.cuda.is_available():
        p.error("--device cuda: this PyTorch sees no CUDA device; use --device cpu (or install a CUDA build of PyTorch)")
    if args.judge is not None and not args.judge.is_dir():
        p.error(f"--judge {args.judge}: no such folder; give the --out folder of python -m model_export.evaluation.segmentation")


def check_output(out: Path, run: Path, resume: bool) -> None:
    check_output_path(out, "Output folder")
    check_writable(out.parent)
    if out.exists():
        raise InputError(f"Output folder {out} already exists. Choose another folder, or remove it first.")
    if resume and not (run / "request.json").is_file():
        raise InputError(f"--resume: there is no interrupted run in {run}. Run the command without --resume.")
    if not resume and run.exists():
        raise InputError(f"{run} holds an earlier, unfinished adaptation into {out}. Go on with it by adding --resume, "
                         "or remove that folder to start again.")


def main(argv: list[str] | None = None) -> int:
    p = parser()
    args = p.parse_args(argv)
    check_arguments(p, args)
    torch.set_num_threads(args.threads)
    out, run = args.out, run_folder(args.out)
    with Stopper() as stopper:
        try:
            return adapt(args, out, run, stopper)
        except (InputError, ModelError, DataError) as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        except Interrupted as stop:
            if stop.step is not None:
                print(f"\nstopped ({stop}) at step {stop.step}; the checkpoint is in {run}. Run the same command with "
                      "--resume to go on.", file=sys.stderr)
            elif run.exists():  # before training (latents cached) or after it (while exporting): the package is not written
                print(f"\nstopped ({stop}); no package was written. {run} holds what was done: run the same command with "
                      "--resume to go on.", file=sys.stderr)
            else:
                print(f"\nstopped ({stop}) before anything was written.", file=sys.stderr)
            return 128 + stop.signum


def adapt(args, out: Path, run: Path, stopper: Stopper) -> int:
    # --- every check first: nothing is written before they all pass (the order of generate's) ----------------
    check_output(out, run, args.resume)
    pkg = load_model_package(args.base, "cpu")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        area = read_area(args.semantic, args.image, args.remap, args.band, pkg.scheme)
    for w in caught:
        print(f"warning: {w.message}", file=sys.stderr)
    cfg = load_config(args.config)
    base = BaseModel(args.base, read_package_networks(args.base, cfg))
    base.check_architecture(cfg)
    cfg = finetune_config(cfg, "diffusion")
    f, multiple = downsample_factor(base.networks.architecture["autoencoder"]), pkg.multiple_of
    held = choose_holdout(area.grid.height, area.grid.width, args.holdout, args.seed, multiple)
    check_trainable(area, held, f, multiple, cfg["diffusion"]["crop"], args.holdout)
    req = request(args, base.networks.sha256, held, area.grid)
    if args.resume:
        before = json.loads((run / "request.json").read_text())
        changed = [k for k in req if before.get(k) != req[k]]
        if changed:
            raise InputError(f"--resume: the run in {run} was started with other inputs ({', '.join(changed)} differ). "
                             "Give the same map, image, base, --holdout, --seed, --config, --decoder-steps and --keep, or remove the folder.")
    steps = args.steps
    minutes = None if steps else (args.minutes or DEFAULT_MINUTES)

    # --- the run folder: request, latent cache, figures before, checkpoints -------------------------------------
    run.mkdir(parents=True, exist_ok=True)
    (run / "request.json").write_text(json.dumps(req, indent=2))
    net = base.networks
    cache = load_if_present(run / "latents.pt")
    if cache is None:
        print(f"encoding the training part of the area ({area.grid.width}x{area.grid.height} px, held out: rows "
              f"{held.rows[0]}:{held.rows[1]}, cols {held.cols[0]}:{held.cols[1]})", file=sys.stderr)
        cache = build_cache(area, held, net.vq.eval().to(args.device), net.latent_mean, net.latent_std, f, multiple,
                            cfg["diffusion"]["crop"], args.device)
        save_atomic(cache, run / "latents.pt")
    latents, labels = held_out_latents(area, held, net.vq.cpu(), net.latent_mean, net.latent_std, multiple)
    before_path = run / "before.json"
    if before_path.is_file():
        before = json.loads(before_path.read_text())
    else:
        print("measuring the base package on the held-out block", file=sys.stderr)
        before = figures(Path(args.base), net.unet, latents, labels, cfg["diffusion"], area, held, args.judge, args.seed)
        before_path.write_text(json.dumps(before, indent=2))

    data = [f"{args.semantic} + {args.image}" + (f"@{args.remap}" if args.remap else "")]
    final = train(cfg, base, cache, run, args.device, args.seed, steps, minutes, data, stopper,
                  watch=lambda ema: denoising_loss(ema, latents, labels, cfg["diffusion"], args.seed),
                  start_score=before["denoising_loss"], keep=args.keep)
    tuned = tune_decoder(base, area, held, cfg, run, args.device, args.seed, args.decoder_steps, stopper) \
        if args.decoder_steps else None

    # --- the package: exported into a hidden folder, measured, moved into place ---------------------------------
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.adapt-partial-", dir=out.parent))
    try:
        after, decoder = export_measured(run, tmp, final, tuned, before, latents, labels, cfg, area, held, args)
        manifest_path = tmp / "package" / "model.json"
        doc = json.loads(manifest_path.read_text())
        real = real_image_map_following(args.judge, area, held, multiple) if args.judge else None
        doc = finish_manifest(doc, net.manifest, args, base, area, held, final, before, after, decoder, real)
        manifest_path.write_text(json.dumps(doc, indent=2) + "\n")
        load_model_package(tmp / "package", "cpu")  # the engine's own checks, on the package as it will be
        (tmp / "package").rename(out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    shutil.rmtree(run, ignore_errors=True)
    print(report(out, doc["adaptation"]))
    return 0


def export_measured(run: Path, tmp: Path, final: dict, tuned: dict | None, before: dict, latents, labels, cfg: dict,
                    area, held, args) -> tuple[dict, dict | None]:
    """Export the package into TMP/package and measure it: the held-out figures, and what became of a tuned decoder.

    A tuned decoder is exported with the adapted denoiser; when it copies the held-out block no better than the
    base's decoder, the package is exported again with the base's, and the decoder's figures say so."""
    from model_export.export.package import export, load_networks

    _, _, _, adapted = load_networks(run)

    def export_from(checkpoint_dir: Path) -> dict:
        export(checkpoint_dir, tmp / "package")
        return figures(tmp / "package", adapted, latents, labels, cfg["diffusion"], area, held, args.judge, args.seed)

    if tuned is None:
        return export_from(run), None
    variant = tmp / "with-decoder"
    variant.mkdir()
    save_atomic(with_tuned_decoder(final, tuned), variant / "last.pt")
    after = export_from(variant)
    shutil.rmtree(variant)
    base_db, tuned_db = before["reconstruction_psnr_db"], after["reconstruction_psnr_db"]
    decoder = {"steps": tuned["step"], "wall_seconds": round(tuned["wall_seconds"], 1), "loss": loss_summary(tuned["history"]),
               "held_out_reconstruction_psnr_db": {"base": base_db, "tuned": tuned_db}, "kept": tuned_db > base_db}
    if not decoder["kept"]:
        shutil.rmtree(tmp / "package")
        after = export_from(run)
    return after, decoder


def finish_manifest(doc: dict, base_manifest: dict, args, base: BaseModel, area, held, final: dict, before: dict,
                    after: dict, decoder: dict | None = None, real: dict | None = None) -> dict:
    """The exported manifest with the base's name, description and training record, and the adaptation's."""
    grid = area.grid
    name = args.name or f"{base_manifest['name']}, adapted to {Path(args.semantic).stem}"
    keep = {k: base_manifest[k] for k in ("description", "license", "gsd_m", "tile") if k in base_manifest}
    keep["diffusion"] = {**doc["diffusion"], "guidance_scale": base_manifest["diffusion"]["guidance_scale"]}
    adaptation = {
        "base_model": {**base.provenance(), "path": str(Path(args.base).resolve())},
        "data": {"semantic": str(Path(args.semantic).resolve()), "image": str(Path(args.image).resolve()),
                 "remap": args.remap, "band": args.band,
                 "sha256": {"semantic": file_sha256(args.semantic), "image": file_sha256(args.image)},
                 "grid": {"width": grid.width, "height": grid.height, "crs": grid.crs.to_string() if grid.crs else None,
                          "transform": list(grid.transform)[:6]}},
        "held_out": {"fraction": args.holdout, "seed": args.seed, **held.to_dict(),
                     "rule": "pixels blanked before encoding; no training crop within "
                             "train_diffusion.HOLDOUT_MARGIN latent cells of the block"},
        "trained": trained_networks(decoder),
        **({"decoder": decoder} if decoder else {}),
        "steps": final["step"], "kept": final["kept"], "wall_seconds": round(final["wall_seconds"], 1), "device": args.device,
        "hardware": hardware(args.device), "loss": loss_summary(final["history"]),
        "config": str(args.config), "held_out_figures": {"before": before, "after": after,
                                                         **({} if args.judge else {"map_following": "not measured (no --judge)"}),
                                                         **({"real_image": real} if real else {}),
                                                         "denoising_loss_by_step": final.get("held_out_curve", [])},
    }
    return {**doc, **keep, "name": name, "version": f"{base_manifest.get('version', '0')}+adapted",
            "training": base_manifest.get("training", {}), "adaptation": adaptation}


def trained_networks(decoder: dict | None) -> str:
    if decoder is None:
        return "denoiser only (encoder and decoder are the base's)"
    if decoder["kept"]:
        return "denoiser and decoder (encoder and codebook are the base's)"
    psnr = decoder["held_out_reconstruction_psnr_db"]
    return (f"denoiser only: the tuned decoder copied the held-out block at {psnr['tuned']:.2f} dB against the base's "
            f"{psnr['base']:.2f} dB, so the base's decoder was kept (encoder and codebook are the base's)")


def report(out: Path, a: dict) -> str:
    b, f = a["held_out_figures"]["before"], a["held_out_figures"]["after"]
    lines = [f"wrote {out}: {a['steps']} steps in {a['wall_seconds'] / 60:.1f} min on the {a['device']}",
             f"held-out block rows {a['held_out']['rows'][0]}:{a['held_out']['rows'][1]}, cols "
             f"{a['held_out']['cols'][0]}:{a['held_out']['cols'][1]} (never trained on):",
             "  figure                      base      adapted",
             f"  reconstruction PSNR (dB)  {b['reconstruction_psnr_db']:8.2f}  {f['reconstruction_psnr_db']:8.2f}",
             f"  denoising loss            {b['denoising_loss']:8.4f}  {f['denoising_loss']:8.4f}"]
    curve = a["held_out_figures"].get("denoising_loss_by_step") or []
    if len(curve) > 1:
        best = min(curve, key=lambda c: c[1])
        kept = a["kept"]["step"]
        lines.append(f"  held-out denoising loss by step: lowest {best[1]:.4f} at step {best[0]}, {curve[-1][1]:.4f} at the "
                     f"last step ({curve[-1][0]}); the package holds the weights of step {kept}"
                     + (" (the base's: no step did better)" if kept == 0 else ""))
    if "decoder" in a:
        d = a["decoder"]["held_out_reconstruction_psnr_db"]
        lines.append(f"  decoder tuned {a['decoder']['steps']} steps: held-out copy {d['tuned']:.2f} dB against the base's "
                     f"{d['base']:.2f} dB: {'kept' if a['decoder']['kept'] else 'not kept (the base decoder stays)'}")
    if "map_following" in b:
        lines.append(f"  map-following ratio       {b['map_following']['ratio']:8.2f}  {f['map_following']['ratio']:8.2f}"
                     f"   (the real image of the block: {a['held_out_figures']['real_image']['ratio']:.2f})")
        if "colour_offset" in b["map_following"]:  # packages adapted before colour was measured have none
            lines.append(f"  colour offset, 0-255      {b['map_following']['colour_offset']:8.1f}  "
                         f"{f['map_following']['colour_offset']:8.1f}   (generated against the block's real image)")
            lines.append(f"  contrast ratio            {b['map_following']['contrast_ratio']:8.2f}  "
                         f"{f['map_following']['contrast_ratio']:8.2f}   (1 = the real image's)")
    else:
        lines.append("  map-following ratio       not measured (give --judge JUDGE_DIR)")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())

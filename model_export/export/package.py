"""Export a finished diffusion run (which embeds its autoencoder) as a model package (docs/reference/model-package.md).

    python -m model_export.export.package --checkpoint model_export/runs/default/diffusion \
        --out changeanywhere_qgis/models/default

``--decoder DIR`` takes the decoder from a decoder-stage run (``train --stage decoder``) of the
autoencoder the denoiser was trained on; it refuses one whose encoder or codebook differ, because the
denoiser's latents would no longer be the decoder's.

Every graph is checked in ONNX Runtime against PyTorch (batch 2, several sizes); the export fails,
printing the largest difference, when one exceeds --tolerance. Files are written to a temporary
folder and moved into place only when all checks pass.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch

from changeanywhere_qgis.engine.diffusion.model_package import PACKAGE_FOLDER
from changeanywhere_qgis.engine.errors import InputError
from changeanywhere_qgis.engine.io import check_replaceable, file_sha256
from model_export.networks.autoencoder import (FROZEN_FOR_DECODER, DecoderGraph, EncoderGraph, build_vqmodel,
                                               downsample_factor)
from model_export.networks.denoiser import SemanticUNet
from model_export.networks.graphs import GRAPH_IO, ExportError, export_graph, max_difference
from model_export.training.checkpoints import load_if_present
from model_export.training.data import NUM_CLASSES
from model_export.training.package_weights import architecture
from model_export.training.provenance import loss_summary

FORMAT = "changeanywhere-model/1"
# The training folders (data/train/<name>) and their licences (data/README.md). The package takes the most restrictive
# of those it learnt from; every source is credited in the manifest's licence line.
SOURCE_LICENCES = {"oem": ("OpenEarthMap", "CC BY-NC-SA 4.0"), "loveda": ("LoveDA", "CC BY-NC-SA 4.0"),
                   "dubai": ("Dubai (Humans in the Loop)", "CC0 1.0"), "flair": ("FLAIR (IGN)", "Etalab Open Licence 2.0")}
NON_COMMERCIAL = "CC BY-NC-SA 4.0"
# OpenEarthMap codes 1..8 in one-hot channel order, with OpenEarthMap's official palette.
CLASSES = [
    (1, "bareland", "#800000"),
    (2, "rangeland", "#00FF24"),
    (3, "developed space", "#949494"),
    (4, "road", "#FFFFFF"),
    (5, "tree", "#226126"),
    (6, "water", "#0045FF"),
    (7, "agriculture land", "#4BB549"),
    (8, "building", "#DE1F07"),
]


def rgb(hex_colour: str) -> list[int]:
    return [int(hex_colour[i : i + 2], 16) for i in (1, 3, 5)]


def with_decoder(ckpt: dict, decoder_dir: Path) -> dict:
    """The diffusion checkpoint with its embedded autoencoder's decoder replaced by a decoder-stage run's."""
    dec = load_if_present(decoder_dir / "last.pt")
    if dec is None or not dec.get("finished") or not dec.get("decoder_of"):
        raise ExportError(f"{decoder_dir / 'last.pt'} is missing or not a finished decoder-stage run; give --decoder the "
                          "--out folder of `python -m model_export.training.train --stage decoder`.")
    ae = ckpt["autoencoder"]
    frozen = [k for k in ae["vq"] if k.startswith(FROZEN_FOR_DECODER)]
    changed = [k for k in frozen if k not in dec["vq"] or not torch.equal(ae["vq"][k], dec["vq"][k])]
    if changed:
        raise ExportError(f"--decoder {decoder_dir} was fine-tuned from another autoencoder than the one this denoiser "
                          f"was trained on ({len(changed)} encoder/codebook tensors differ, e.g. {changed[0]}); "
                          "run the decoder stage with --autoencoder set to the denoiser's autoencoder.")
    summary = decoder_dir / "summary.json"
    ae = {**ae, "vq": dec["vq"], "decoder": {
        "path": str(decoder_dir), "steps": dec["step"], "wall_seconds": dec["wall_seconds"], "history": dec["history"],
        "summary": summary.read_text() if summary.is_file() else None}}
    return {**ckpt, "autoencoder": ae}


def load_networks(checkpoint_dir: Path, decoder_dir: Path | None = None) -> tuple[dict, EncoderGraph, DecoderGraph, SemanticUNet]:
    ckpt = load_if_present(checkpoint_dir / "last.pt")
    if ckpt is None or ckpt.get("stage") != "diffusion":
        raise ExportError(f"{checkpoint_dir / 'last.pt'} is missing or not a diffusion-stage checkpoint; "
                          "give --checkpoint the --out folder of `python -m model_export.training.train --stage diffusion`.")
    if decoder_dir is not None:
        ckpt = with_decoder(ckpt, decoder_dir)
    ae = ckpt["autoencoder"]
    vq = build_vqmodel(ae["config"])
    vq.load_state_dict(ae["vq"])
    vq.eval()
    unet = SemanticUNet(ckpt["config"]["diffusion"], num_classes=NUM_CLASSES)
    unet.load_state_dict(ckpt["ema"])  # the EMA weights are the ones that sample well
    unet.eval()
    mean, std = ae["latent_mean"], ae["latent_std"]
    return ckpt, EncoderGraph(vq, mean, std).eval(), DecoderGraph(vq, mean, std).eval(), unet


def training_sources(data_args: list[str]) -> list[str]:
    """The names of the sources a run learnt from (``--data DIR[@REMAP]``, named by their folder)."""
    return [Path(arg.split("@")[0]).name for arg in data_args]


TRAINED_ON = " Trained on "  # what a manifest's description ends with, before the names of its sources


def described(description: str, data_args: list[str]) -> str:
    """A package's description: DESCRIPTION, then the sources it learnt from by name (each once)."""
    names = dict.fromkeys(SOURCE_LICENCES.get(n, (n,))[0] for n in training_sources(data_args))
    return f"{description}{TRAINED_ON}{', '.join(names)}."


def licence(data_args: list[str]) -> str:
    """The package's licence line: the most restrictive licence of its training sources, each named with its own."""
    known = [SOURCE_LICENCES.get(name, (name, "licence unknown: see its folder")) for name in training_sources(data_args)]
    restrictive = NON_COMMERCIAL if any(lic == NON_COMMERCIAL for _, lic in known) else "see the sources' licences"
    return f"{restrictive} (trained on {', '.join(f'{source}: {lic}' for source, lic in known)})"


def manifest(ckpt: dict, unet: SemanticUNet, files: dict, guidance: float, description: str | None = None,
             version: str | None = None) -> dict:
    cfg, ae = ckpt["config"], ckpt["autoencoder"]
    dcfg, ecfg = cfg["diffusion"], cfg["export"]
    f = downsample_factor(ae["config"])
    ae_summary = json.loads(ae["summary"]) if ae.get("summary") else {}
    return {
        "format": FORMAT,
        "name": ecfg["name"],
        "version": version or ecfg["version"],
        "description": described(description or ecfg["description"], ckpt["data"]),
        "license": licence(ckpt["data"]),
        "classes": [{"code": c, "name": n, "color": rgb(h)} for c, n, h in CLASSES],
        "nodata_code": 0,
        "image": {"bands": 3, "scale": "x / 127.5 - 1"},
        "latent": {"channels": 3, "downsample": f},
        "diffusion": {
            "num_train_timesteps": dcfg["num_train_timesteps"], "beta_schedule": "linear",
            "beta_start": dcfg["beta_start"], "beta_end": dcfg["beta_end"],
            "prediction": dcfg["prediction"], "guidance_scale": guidance,
        },
        "tile": {"size": ecfg["tile_size"], "multiple_of": f * unet.latent_multiple},
        "gsd_m": ecfg["gsd_m"],
        # what package_weights.py needs to read the graphs back into PyTorch (train --init-from, adapt)
        # the autoencoder's shape from its own run: the diffusion run's config may differ there (an autoencoder
        # trained with --set autoencoder.norm_num_groups=8 under a config that says 32; check 10's package)
        "architecture": architecture({"autoencoder": ae["config"], "diffusion": dcfg}),
        "training": {
            "data": ckpt["data"],
            "hardware": ckpt["hardware"],
            "autoencoder": {
                "steps": ae["steps"], "wall_seconds": round(ae["wall_seconds"], 1),
                "loss": loss_summary(ae["history"]), "holdout_psnr_db": ae_summary.get("holdout_psnr_db"),
                "params": sum(p.numel() for p in build_vqmodel(ae["config"]).parameters()),
                **({"continued_from": with_base_training(ae["base_model"])} if ae.get("base_model") else {}),
                **({"taken_unchanged_from_the_base": True} if ae.get("unchanged_from_base") else {}),
            },
            **({"decoder_finetune": decoder_provenance(ae["decoder"])} if ae.get("decoder") else {}),
            "diffusion": {
                "steps": ckpt["step"], "wall_seconds": round(ckpt["wall_seconds"], 1),
                "loss": loss_summary(ckpt["history"]), "loss_kind": dcfg["loss"],
                "params": sum(p.numel() for p in unet.parameters()),
                **({"continued_from": with_base_training(ckpt["base_model"])} if ckpt.get("base_model") else {}),
            },
            "held_out": cfg["data"].get("holdout", []),
        },
        "files": files,
    }


def with_base_training(base: dict) -> dict:
    """The base package's record with its own training record: runs started before provenance() carried it
    (check 11's) get it from the base's model.json, when that is still there and still the file they started from."""
    if "training" in base:
        return base
    manifest = Path(base.get("path", "")) / "model.json"
    try:
        raw = manifest.read_bytes()
    except OSError:
        return base
    if hashlib.sha256(raw).hexdigest() != base.get("model_json_sha256"):
        return base
    training = json.loads(raw).get("training")
    return {**base, **({"training": training} if training else {})}


def decoder_provenance(d: dict) -> dict:
    summary = json.loads(d["summary"]) if d.get("summary") else {}
    return {"steps": d["steps"], "wall_seconds": round(d["wall_seconds"], 1), "loss": loss_summary(d["history"]),
            "holdout_psnr_db": summary.get("holdout_psnr_db"), "encoder_and_codebook": "frozen (the autoencoder's above)"}


def check_out(out: Path, *inputs: Path | None) -> None:
    """Refuse, before any work, an OUT that is not an earlier model package holding nothing else and none of the
    inputs (the engine's replace guard): an export replaces OUT whole."""
    check_replaceable(out, PACKAGE_FOLDER, [p for p in inputs if p is not None])


def publish(tmp: Path, out: Path, doc: dict, *inputs: Path | None) -> None:
    """Write the manifest into the checked package folder TMP, then move TMP into place as OUT (replacing an earlier
    package there; asked again, since OUT may have changed during the export)."""
    (tmp / "model.json").write_text(json.dumps(doc, indent=2) + "\n")
    check_out(out, *inputs)
    if out.exists():
        shutil.rmtree(out)
    tmp.rename(out)


def export(checkpoint_dir: Path, out: Path, tolerance: float = 1e-3, guidance: float | None = None,
           decoder_dir: Path | None = None, description: str | None = None, version: str | None = None) -> dict:
    check_out(out, checkpoint_dir, decoder_dir)
    torch.set_num_threads(2)
    ckpt, encoder, decoder, unet = load_networks(checkpoint_dir, decoder_dir)
    f = downsample_factor(ckpt["autoencoder"]["config"])
    m = f * unet.latent_multiple
    rng = np.random.default_rng(0)
    sizes = [(2 * m, 2 * m), (3 * m, 2 * m), (4 * m, 5 * m)]  # image pixels (H, W)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    tmp.chmod(0o755)
    try:
        image = torch.from_numpy(rng.uniform(-1, 1, (2, 3, *sizes[0])).astype(np.float32))
        latent = encoder(image).detach()
        t = torch.tensor([10, 900], dtype=torch.int64)
        semantic = torch.zeros(2, NUM_CLASSES, *sizes[0])
        semantic[0, 2] = 1.0
        for name, module, example in (("encoder", encoder, (image,)), ("decoder", decoder, (latent,)),
                                      ("denoiser", unet, (latent, t, semantic))):
            export_graph(module, example, *GRAPH_IO[name], tmp / f"{name}.onnx")

        feeds = {"encoder": [], "decoder": [], "denoiser": []}
        for h, w in sizes:
            img = rng.uniform(-1, 1, (2, 3, h, w)).astype(np.float32)
            with torch.no_grad():
                lat = encoder(torch.from_numpy(img)).numpy()  # realistic decoder input: near the codebook
            labels = rng.integers(0, NUM_CLASSES + 1, (2, h, w))
            sem = (labels[:, None] == np.arange(1, NUM_CLASSES + 1)[None, :, None, None]).astype(np.float32)
            feeds["encoder"].append({"image": img})
            feeds["decoder"].append({"latent": lat})
            feeds["denoiser"].append({"latent": rng.standard_normal(lat.shape).astype(np.float32),
                                      "timestep": np.array([0, 999], dtype=np.int64), "semantic": sem})
        modules = {"encoder": encoder, "decoder": decoder, "denoiser": unet}
        failures = []
        for name, module in modules.items():
            diff = max_difference(tmp / f"{name}.onnx", module, feeds[name])
            print(f"{name}: max |ONNX Runtime - PyTorch| = {diff:.2e} over sizes {sizes}, batch 2")
            if not diff <= tolerance:
                failures.append(f"{name}: max abs difference {diff:.3e} > tolerance {tolerance:g}")
        if failures:
            raise ExportError("ONNX Runtime does not match PyTorch: " + "; ".join(failures))

        files = {name: {"path": f"{name}.onnx", "sha256": file_sha256(tmp / f"{name}.onnx")} for name in modules}
        g = guidance if guidance is not None else ckpt["config"]["export"]["guidance_scale"]
        doc = manifest(ckpt, unet, files, g, description, version)
        publish(tmp, out, doc, checkpoint_dir, decoder_dir)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)
    return doc


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--checkpoint", required=True, type=Path, help="--out folder of the diffusion stage")
    p.add_argument("--out", required=True, type=Path, help="model package folder to write")
    p.add_argument("--tolerance", type=float, default=1e-3)
    p.add_argument("--guidance-scale", type=float, help="overrides the config's [export] guidance_scale")
    p.add_argument("--decoder", type=Path, help="--out folder of a decoder-stage run of the denoiser's autoencoder")
    p.add_argument("--description", help="overrides the run's [export] description (the sources are added to it)")
    p.add_argument("--version", dest="package_version", help="overrides the run's [export] version")
    args = p.parse_args(argv)
    return run_export(lambda: export(args.checkpoint, args.out, args.tolerance, args.guidance_scale, args.decoder,
                                     args.description, args.package_version), args.out)


def run_export(make, out: Path, what: str = "") -> int:
    """A command's export: ``make()`` writes the package OUT and returns its manifest; the exit status, one line said.
    2: OUT may not be replaced (the replace guard says why); 1: the graphs do not match PyTorch."""
    try:
        doc = make()
    except InputError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except ExportError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    size = sum(f.stat().st_size for f in out.iterdir())
    print(f"wrote {out} ({size / 1e6:.2f} MB): {doc['name']} {doc['version']}{what}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

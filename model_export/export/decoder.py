"""Write a model package again with a new decoder: the decoder-stage run's, fine-tuned from that package.

    python -m model_export.training.train --stage decoder --config model_export/configs/default.toml --data ... \\
        --init-from changeanywhere_qgis/models/default --out model_export/runs/continue-decoder/decoder
    python -m model_export.export.decoder --base changeanywhere_qgis/models/default \\
        --decoder model_export/runs/continue-decoder/decoder --out NEW_PACKAGE --version 0.3.0

The base package's encoder and denoiser graphs are copied byte for byte (the run froze the encoder,
``quant_conv`` and the codebook, so the denoiser's latents keep their meaning); only ``decoder.onnx`` is
exported anew. Before anything is written two checks run in ONNX Runtime: the base's encoder graph must
compute what the run's frozen encoder computes (a run fine-tuned from another package is refused), and
the new decoder graph must match the run's PyTorch decoder. The manifest is the base's, with the new
version, the decoder's training record, the graphs' hashes and the licence of every source either
learnt from. Files go to a temporary folder beside OUT and are moved into place only when all is well.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch

from changeanywhere_qgis.engine.io import file_sha256
from model_export.export.package import TRAINED_ON, check_out, described, licence, publish, run_export
from model_export.networks.autoencoder import DecoderGraph, EncoderGraph, build_vqmodel
from model_export.networks.graphs import GRAPH_IO, ExportError, export_graph, max_difference
from model_export.training.checkpoints import load_if_present
from model_export.training.provenance import loss_summary

COPIED = ("encoder", "denoiser")


def load_decoder_run(run: Path) -> dict:
    ckpt = load_if_present(run / "last.pt")
    if ckpt is None or ckpt.get("stage") != "autoencoder" or not ckpt.get("finished") or not ckpt.get("decoder_of") \
            or not ckpt.get("base_model"):
        raise ExportError(f"{run / 'last.pt'} is missing or not a finished decoder-stage run of a package; give --decoder "
                          "the --out folder of `python -m model_export.training.train --stage decoder --init-from PACKAGE`.")
    return ckpt


def decoder_record(run: Path, ckpt: dict) -> dict:
    summary_path = run / "summary.json"
    summary = json.loads(summary_path.read_text()) if summary_path.is_file() else {}
    return {"steps": ckpt["step"], "wall_seconds": round(ckpt["wall_seconds"], 1), "loss": loss_summary(ckpt["history"]),
            "holdout_psnr_db": summary.get("holdout_psnr_db"), "data": summary.get("data"),
            "hardware": summary.get("hardware"), "continued_from": ckpt["base_model"],
            "encoder_and_codebook": "frozen (the base package's, as are its encoder and denoiser graphs)"}


def export_with_decoder(base: Path, run: Path, out: Path, version: str | None = None, tolerance: float = 1e-3) -> dict:
    """Write OUT: the package BASE with the decoder of the decoder-stage run RUN. Returns the new manifest."""
    import onnxruntime as ort

    check_out(out, base, run)
    torch.set_num_threads(2)
    manifest = json.loads((base / "model.json").read_text())
    ckpt = load_decoder_run(run)
    vq = build_vqmodel(ckpt["config"]["autoencoder"])
    vq.load_state_dict(ckpt["vq"])
    vq.eval()
    mean, std = ckpt["latent_mean"], ckpt["latent_std"]
    encoder, decoder = EncoderGraph(vq, mean, std).eval(), DecoderGraph(vq, mean, std).eval()

    m = manifest["tile"]["multiple_of"]
    rng = np.random.default_rng(0)
    images = [rng.uniform(-1, 1, (2, 3, h, w)).astype(np.float32) for h, w in ((2 * m, 2 * m), (3 * m, 2 * m), (4 * m, 5 * m))]
    base_encoder = base / manifest["files"]["encoder"]["path"]
    diff = max_difference(base_encoder, encoder, [{"image": x} for x in images])
    if not diff <= tolerance:
        raise ExportError(f"--decoder {run} was not fine-tuned from {base}: its frozen encoder differs from the package's "
                          f"encoder graph by {diff:.3g}; give --base the package the run was started from (--init-from).")

    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    tmp.chmod(0o755)
    try:
        session = ort.InferenceSession(str(base_encoder), providers=["CPUExecutionProvider"])
        latents = [session.run(None, {"image": x})[0] for x in images]  # what the denoiser's latents are: the base's encoder output
        export_graph(decoder, (torch.from_numpy(latents[0]),), *GRAPH_IO["decoder"], tmp / "decoder.onnx")
        diff = max_difference(tmp / "decoder.onnx", decoder, [{"latent": z} for z in latents])
        print(f"decoder: max |ONNX Runtime - PyTorch| = {diff:.2e} over {len(latents)} sizes, batch 2")
        if not diff <= tolerance:
            raise ExportError(f"ONNX Runtime does not match PyTorch: decoder max abs difference {diff:.3e} > tolerance {tolerance:g}")
        for name in COPIED:
            shutil.copy2(base / manifest["files"][name]["path"], tmp / f"{name}.onnx")

        training = manifest.get("training", {})
        record = decoder_record(run, ckpt)
        sources = list(dict.fromkeys([*training.get("data", []), *(record["data"] or [])]))  # every --data either learnt from
        doc = {**manifest, "version": version or manifest["version"],
               "description": described(manifest["description"].split(TRAINED_ON)[0], sources),
               "license": licence(sources),
               "training": {**training, "data": sources, "decoder_finetune": record},
               "files": {name: {"path": f"{name}.onnx", "sha256": file_sha256(tmp / f"{name}.onnx")} for name in ("encoder", "decoder", "denoiser")}}
        publish(tmp, out, doc, base, run)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)
    return doc


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m model_export.export.decoder", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--base", required=True, type=Path, help="the package the decoder run started from (--init-from)")
    p.add_argument("--decoder", required=True, type=Path, help="--out folder of `train --stage decoder --init-from BASE`")
    p.add_argument("--out", required=True, type=Path, help="model package folder to write")
    p.add_argument("--version", help="the new package's version (default: the base's)")
    p.add_argument("--tolerance", type=float, default=1e-3)
    args = p.parse_args(argv)
    if not (args.base / "model.json").is_file():
        print(f"error: {args.base} holds no model.json: give --base a model package folder", file=sys.stderr)
        return 2
    if args.out.resolve() == args.base.resolve():
        print("error: --out is --base: write the new package to another folder, then move it into place", file=sys.stderr)
        return 2
    return run_export(lambda: export_with_decoder(args.base, args.decoder, args.out, args.version, args.tolerance), args.out,
                      f", the decoder of {args.decoder}")


if __name__ == "__main__":
    sys.exit(main())

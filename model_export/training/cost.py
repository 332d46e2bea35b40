"""What one training step of a config costs, counted without running it: the networks are built on
PyTorch's meta device (shapes only, no memory, no arithmetic) and one step of each stage is traced.

    python -m model_export.training.cost --config model_export/configs/paper.toml

Per stage and per rank (the config's batch): trainable parameters, the memory of weights, gradients and
AdamW state (float32: 16 bytes a parameter), the tensors autograd saves for the backward pass (counted
in float32; bf16 autocast on CUDA stores most of them in half that), and the floating-point operations
of the forward and backward pass (``torch.utils.flop_counter``). The autoencoder stage is counted with its
adversarial loss on (the discriminator's passes included), its costliest phase. These are counts, not
measurements: a GPU's time and peak memory also depend on its kernels, the allocator and cuDNN's choices.
"""

from __future__ import annotations

import argparse
import json
import sys
import tomllib
from pathlib import Path

import torch
import torch.nn.functional as F
from torch.utils.flop_counter import FlopCounterMode

from model_export import CONFIGS
from model_export.networks.autoencoder import (PatchDiscriminator, Reconstruction, build_vqmodel, downsample_factor,
                                               edge_l1)
from model_export.networks.denoiser import SemanticUNet
from model_export.training.data import NUM_CLASSES

GIB = 2**30


class SavedTensors:
    """Bytes of the tensors autograd keeps for the backward pass (each tensor counted once; the weights
    themselves are counted with the parameters, not here)."""

    def __init__(self, *modules):
        self.bytes, self._seen = 0, {id(p) for m in modules if m is not None for p in m.parameters()}

    def pack(self, t: torch.Tensor) -> torch.Tensor:
        key = id(t)
        if key not in self._seen:
            self._seen.add(key)
            self.bytes += t.numel() * t.element_size()
        return t

    def hooks(self):
        return torch.autograd.graph.saved_tensors_hooks(self.pack, lambda t: t)


def autoencoder_step(acfg: dict) -> dict:
    with torch.device("meta"):
        vq = build_vqmodel(acfg)
        disc = PatchDiscriminator(acfg["disc_channels"], acfg["disc_layers"]) if acfg["gan_weight"] > 0 else None
    x = torch.zeros(acfg["batch_size"], 3, acfg["crop"], acfg["crop"], device="meta")
    saved = SavedTensors(vq, disc)
    with FlopCounterMode(display=False) as flops:
        with saved.hooks():
            _, rec, commit = Reconstruction(vq, True)(x)
            loss = F.l1_loss(rec, x) + edge_l1(rec, x) + commit.mean()
            if disc is not None:
                loss = loss - disc(rec).mean()
        loss.backward()
        if disc is not None:
            (F.relu(1.0 - disc(x)).mean() + F.relu(1.0 + disc(rec.detach())).mean()).backward()
    params = sum(p.numel() for p in vq.parameters()) + (sum(p.numel() for p in disc.parameters()) if disc else 0)
    return row("autoencoder (with the discriminator)" if disc else "autoencoder", acfg, params, saved.bytes,
               flops.get_total_flops())


def diffusion_step(dcfg: dict, factor: int) -> dict:
    with torch.device("meta"):
        unet = SemanticUNet(dcfg, num_classes=NUM_CLASSES)
    b, c = dcfg["batch_size"], dcfg["crop"]  # crop in latent pixels; the map comes at image resolution
    latent = torch.zeros(b, 3, c, c, device="meta")
    semantic = torch.zeros(b, NUM_CLASSES, factor * c, factor * c, device="meta")
    saved = SavedTensors(unet)
    with FlopCounterMode(display=False) as flops:
        with saved.hooks():
            loss = unet(latent, torch.zeros(b, dtype=torch.long, device="meta"), semantic).mean()
        loss.backward()
    return row("diffusion (denoiser)", dcfg, sum(p.numel() for p in unet.parameters()), saved.bytes,
               flops.get_total_flops())


def row(stage: str, cfg: dict, params: int, saved: int, flops: int) -> dict:
    return {"stage": stage, "batch_per_rank": cfg["batch_size"], "crop": cfg["crop"], "planned_steps": cfg["steps"],
            "params": params, "params_m": round(params / 1e6, 1), "flop_per_step": flops, "saved_bytes": saved, "weights_grads_adamw_gib": round(16 * params / GIB, 2),
            "saved_activations_fp32_gib": round(saved / GIB, 2), "tflop_per_step": round(flops / 1e12, 2)}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m model_export.training.cost", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", type=Path, default=CONFIGS / "paper.toml")
    p.add_argument("--json", action="store_true", help="print the rows as JSON")
    args = p.parse_args(argv)
    cfg = tomllib.loads(args.config.read_text())
    rows = [autoencoder_step(cfg["autoencoder"]), diffusion_step(cfg["diffusion"], downsample_factor(cfg["autoencoder"]))]
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    print(f"Counted for {args.config} (per rank, one training step):\n")
    print("| stage | batch x crop | parameters | weights + grads + AdamW | saved activations (fp32) | TFLOP / step "
          "| PFLOP / 1,000 steps |\n| --- | --- | --- | --- | --- | --- | --- |")
    for r in rows:
        print(f"| {r['stage']} | {r['batch_per_rank']} x {r['crop']}^2 | {r['params_m']} M | "
              f"{r['weights_grads_adamw_gib']} GiB | {r['saved_activations_fp32_gib']} GiB | {r['tflop_per_step']} | "
              f"{r['tflop_per_step']:.0f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())

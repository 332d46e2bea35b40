"""The adaptation's optional decoder step (``adapt --decoder-steps N``): the base package's decoder fine-tuned on the
user's image.

Only the decoder side trains (``post_quant_conv`` and ``decoder``); the encoder, ``quant_conv`` and the codebook
stay the base's (``networks.autoencoder.FROZEN_FOR_DECODER``), so every latent the denoiser learnt, the base's and the
adapted one's, keeps its meaning. The loss is the autoencoder stage's L1 and edge L1 (the config's
``[autoencoder]`` weights and crop) on crops of the user's image away from the held-out block (the denoiser's rule,
``area.usable_cells``), flipped and rotated. There is no discriminator: a few hundred steps on one area give
an adversarial loss no time to settle. Whether the tuned decoder is kept is the held-out block's call (adapt.py):
its reconstruction PSNR must beat the base's.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from model_export.adaptation.area import Area, HeldOut, usable_cells
from model_export.adaptation.train import StepBudget, Stopper, run_steps
from model_export.networks.autoencoder import (FROZEN_FOR_DECODER, Reconstruction, build_vqmodel, downsample_factor,
                                               edge_l1)
from model_export.training.checkpoints import load_if_present, restore_rng, rng_state, save_atomic
from model_export.training.data import dihedral, image_to_tensor_range
from model_export.training.schedules import warmup_cosine

CHECKPOINT = "decoder.pt"


def crop_origins(area: Area, held: HeldOut, f: int, crop_px: int) -> np.ndarray:
    """Pixel (row, col) origins, on the latent grid, of the crop_px windows that lie wholly in usable cells."""
    ok = usable_cells(area, held, f)
    c = crop_px // f
    if ok.shape[0] < c or ok.shape[1] < c:
        return np.zeros((0, 2), dtype=np.int64)
    s = np.pad(np.cumsum(np.cumsum(ok.astype(np.int64), 0), 1), ((1, 0), (1, 0)))
    inside = s[c:, c:] - s[:-c, c:] - s[c:, :-c] + s[:-c, :-c]
    return np.argwhere(inside == c * c) * f


def image_batch(rng: np.random.Generator, image: np.ndarray, origins: np.ndarray, crop_px: int, batch: int) -> torch.Tensor:
    """float [batch, 3, crop, crop] in [-1, 1]: random windows of the uint8 [H, W, 3] image, each flipped/rotated."""
    crops = []
    for i in rng.integers(0, len(origins), size=batch):
        r, c = origins[i]
        crops.append(image_to_tensor_range(dihedral(image[r : r + crop_px, c : c + crop_px], int(rng.integers(0, 8)))))
    return torch.from_numpy(np.stack(crops))


def tune_decoder(base, area: Area, held: HeldOut, cfg: dict, run_dir: Path, device: str, seed: int, steps: int,
                 stopper: Stopper) -> dict:
    """Fine-tune the base's decoder for ``steps`` steps; the finished state (also RUN/decoder.pt), ``vq`` its weights."""
    acfg = {**cfg["autoencoder"], **cfg.get("decoder", {})}
    crop, lr = acfg["crop"], acfg["lr"]
    rng = np.random.default_rng([seed, 2])  # its own stream: the denoiser's draws do not move it
    vq = build_vqmodel(base.networks.architecture["autoencoder"]).to(device)
    vq.load_state_dict(base.networks.vq.state_dict())
    for name, p in vq.named_parameters():
        p.requires_grad_(not name.startswith(FROZEN_FOR_DECODER))
    opt = torch.optim.AdamW([p for p in vq.parameters() if p.requires_grad], lr=lr, weight_decay=0.0)
    step, history = 0, []
    ckpt = load_if_present(run_dir / CHECKPOINT)
    if ckpt is not None:
        vq.load_state_dict(ckpt["vq"])
        opt.load_state_dict(ckpt["opt"])
        step, history = ckpt["step"], ckpt["history"]
        restore_rng(ckpt["rng"], rng)
        print(f"resuming the decoder at step {step} from {run_dir / CHECKPOINT}")
    budget = StepBudget(steps, None, ckpt["wall_seconds"] if ckpt else 0.0)
    origins = crop_origins(area, held, downsample_factor(base.networks.architecture["autoencoder"]), crop)

    def state(step: int, finished: bool) -> dict:
        return {"vq": vq.state_dict(), "opt": opt.state_dict(), "step": step, "history": history, "rng": rng_state(rng),
                "wall_seconds": budget.wall(), "finished": finished}

    recon = Reconstruction(vq, train_encoder=False)
    bar = tqdm(total=steps, initial=step, desc="decoder", unit="step", mininterval=2, dynamic_ncols=True)

    def one_step(step: int) -> float:
        for g in opt.param_groups:
            g["lr"] = lr * warmup_cosine(step, acfg["warmup_steps"], step / steps)
        x = image_batch(rng, area.image, origins, crop, acfg["batch_size"]).to(device)
        _, rec, _ = recon(x)
        loss = acfg["l1_weight"] * F.l1_loss(rec, x) + acfg["edge_weight"] * edge_l1(rec, x)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_([p for p in vq.parameters() if p.requires_grad], 1.0)
        opt.step()
        history.append(loss.item())
        return loss.item()

    def show(step: int, loss: float) -> None:
        bar.set_postfix(loss=f"{loss:.4f}", refresh=False)
        bar.update(1)

    vq.train()
    step = run_steps(budget, step, one_step, state, run_dir / CHECKPOINT, acfg["checkpoint_minutes"], stopper, bar, show)
    vq.eval()
    final = state(step, True)
    save_atomic(final, run_dir / CHECKPOINT)
    return final


def with_tuned_decoder(checkpoint: dict, tuned: dict) -> dict:
    """The adapted denoiser's checkpoint with the tuned decoder in its autoencoder (for export.package.export)."""
    ae = {**checkpoint["autoencoder"], "vq": tuned["vq"], "unchanged_from_base": False,
          "decoder": {"path": "adaptation", "steps": tuned["step"], "wall_seconds": tuned["wall_seconds"],
                      "history": tuned["history"], "summary": None}}
    return {**checkpoint, "autoencoder": ae}

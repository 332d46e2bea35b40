"""Stage 1: the VQ autoencoder (L1 + VQ + image-gradient L1 + optional PatchGAN hinge loss)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from .autoencoder import CodebookUsage, PatchDiscriminator, build_vqmodel, downsample_factor, edge_l1, nearest_code, psnr
from .checkpoint import load_if_present, restore_rng, rng_state, save_atomic
from .data import Tile, Window, image_to_tensor_range, load_tile, masked_for_holdout, sample_image_crops
from .provenance import hardware, loss_summary, write_summary
from .schedule_utils import Budget, warmup_cosine


def run(cfg: dict, tiles: list[Tile], holdout: list[Window], out: Path, device: str, seed: int,
        max_steps: int | None, max_minutes: float | None, data_args: list[str]) -> dict:
    acfg = cfg["autoencoder"]
    rng = np.random.default_rng(seed)
    torch.manual_seed(seed)
    vq = build_vqmodel(acfg).to(device)
    vq.quantize.beta = acfg["vq_beta"]
    opt = torch.optim.AdamW(vq.parameters(), lr=acfg["lr"], betas=(0.5, 0.9), weight_decay=0.0)
    disc = opt_d = None
    if acfg["gan_weight"] > 0:
        disc = PatchDiscriminator(acfg["disc_channels"], acfg["disc_layers"]).to(device)
        opt_d = torch.optim.AdamW(disc.parameters(), lr=acfg["lr"], betas=(0.5, 0.9), weight_decay=0.0)

    budget = Budget(max_steps or acfg["steps"], max_minutes)
    step, wall, history = 0, 0.0, []
    ckpt = load_if_present(out / "last.pt")
    if ckpt is not None:
        vq.load_state_dict(ckpt["vq"])
        opt.load_state_dict(ckpt["opt"])
        if disc is not None:
            disc.load_state_dict(ckpt["disc"])
            opt_d.load_state_dict(ckpt["opt_d"])
        step, wall, history = ckpt["step"], ckpt["wall_seconds"], ckpt["history"]
        restore_rng(ckpt["rng"], rng)
        print(f"resuming the autoencoder at step {step} from {out / 'last.pt'}")

    def state(finished: bool, extra: dict | None = None) -> dict:
        return {
            "stage": "autoencoder", "config": cfg, "vq": vq.state_dict(), "opt": opt.state_dict(),
            "disc": disc.state_dict() if disc is not None else None,
            "opt_d": opt_d.state_dict() if opt_d is not None else None,
            "step": step, "planned_steps": budget.planned_steps, "wall_seconds": wall + budget.elapsed(),
            "history": history, "rng": rng_state(rng), "finished": finished, **(extra or {}),
        }

    autocast = torch.autocast("cuda", dtype=torch.bfloat16, enabled=device == "cuda")
    w_l1, w_edge, w_gan = acfg["l1_weight"], acfg["edge_weight"], acfg["gan_weight"]
    usage = CodebookUsage(acfg["codebook_size"], acfg.get("restart_dead_codes_every", 0))
    restart_gen = torch.Generator().manual_seed(seed + step)
    restarted = 0
    last_save = budget.elapsed()
    bar = tqdm(total=budget.planned_steps, initial=step, desc="autoencoder", mininterval=10)
    vq.train()
    while not budget.done(step):
        lr_scale = warmup_cosine(step, acfg["warmup_steps"], budget.progress(step))
        for o in (opt, opt_d):
            if o is not None:
                for g in o.param_groups:
                    g["lr"] = acfg["lr"] * lr_scale
        x = torch.from_numpy(sample_image_crops(rng, tiles, acfg["crop"], acfg["batch_size"], holdout)).to(device)
        gan_on = disc is not None and budget.progress(step) >= acfg["gan_start"]
        with autocast:
            h = vq.encode(x).latents
            dec = vq.decode(h)  # quantises to the codebook (straight-through) and decodes
            rec = dec.sample.float()
            l1, edge = F.l1_loss(rec, x), edge_l1(rec, x)
            loss = w_l1 * l1 + w_edge * edge + dec.commit_loss.float().mean()
            g_loss = -disc(rec).float().mean() if gan_on else torch.zeros((), device=device)
            loss = loss + w_gan * g_loss
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(vq.parameters(), 1.0)
        opt.step()
        d_loss = torch.zeros(())
        if gan_on:
            with autocast:
                d_loss = F.relu(1.0 - disc(x)).mean() + F.relu(1.0 + disc(rec.detach())).mean()
            opt_d.zero_grad(set_to_none=True)
            d_loss.backward()
            opt_d.step()
        restarted += usage.update(h, vq.quantize.embedding.weight, restart_gen)
        step += 1
        history.append(loss.item())
        bar.update(1)
        bar.set_postfix(loss=f"{loss.item():.4f}", l1=f"{l1.item():.4f}", edge=f"{edge.item():.4f}",
                        codes=usage.used(), restarted=restarted,
                        vq=f"{dec.commit_loss.mean().item():.4f}", g=f"{g_loss.item():.3f}", d=f"{d_loss.item():.3f}")
        if budget.elapsed() - last_save > 60 * acfg["checkpoint_minutes"]:
            save_atomic(state(False), out / "last.pt")
            last_save = budget.elapsed()
    bar.close()

    vq.eval()
    mean, std, codes_used = latent_stats(vq, tiles, holdout, downsample_factor(acfg), device)
    held_psnr = holdout_psnr(vq, tiles, holdout, device)
    final = state(True, {"latent_mean": mean, "latent_std": std})
    save_atomic(final, out / "last.pt")
    summary = {
        "stage": "autoencoder", "steps": step, "wall_seconds": round(final["wall_seconds"], 1),
        "hardware": hardware(device), "data": data_args, "loss": loss_summary(history),
        "holdout_psnr_db": held_psnr, "latent_mean": mean.tolist(), "latent_std": std.tolist(),
        "codes_used": codes_used, "codebook_size": acfg["codebook_size"], "params": sum(p.numel() for p in vq.parameters()),
    }
    write_summary(out, summary)
    print(f"autoencoder: {step} steps, hold-out PSNR {held_psnr} dB, {codes_used} codes used, latent mean {mean.tolist()} std {std.tolist()}")
    return summary


@torch.no_grad()
def latent_stats(vq, tiles: list[Tile], holdout: list[Window], f: int, device: str) -> tuple[torch.Tensor, torch.Tensor, int]:
    """Per-channel mean and std of the pre-quantisation latent over all training pixels, and how many
    codebook entries those pixels quantise to."""
    values = []
    for tile in tiles:
        image, label = load_tile(tile)
        image, _ = masked_for_holdout(tile, image, np.zeros(image.shape[:2], np.uint8), holdout)
        z = vq.encode(torch.from_numpy(image_to_tensor_range(image))[None].to(device)).latents[0].float().cpu()
        keep = torch.ones(z.shape[1:], dtype=torch.bool)
        for w in holdout:
            if w.stem == tile.stem:
                keep[w.rows[0] // f : w.rows[1] // f, w.cols[0] // f : w.cols[1] // f] = False
        values.append(z[:, keep])
    allz = torch.cat(values, dim=1)
    codebook = vq.quantize.embedding.weight.detach().float().cpu()
    codes = torch.cat([nearest_code(chunk, codebook) for chunk in allz.t().split(65536)])
    return allz.mean(1), allz.std(1).clamp_min(1e-4), int(codes.unique().numel())


@torch.no_grad()
def holdout_psnr(vq, tiles: list[Tile], holdout: list[Window], device: str) -> float | None:
    """Reconstruction PSNR (quantised) on the first held-out window inside the data, if any."""
    for w in holdout:
        for tile in tiles:
            if tile.stem == w.stem and w.rows[1] <= tile.height and w.cols[1] <= tile.width:
                image, _ = load_tile(tile)
                crop = image[w.rows[0] : w.rows[1], w.cols[0] : w.cols[1]]
                x = torch.from_numpy(image_to_tensor_range(crop))[None].to(device)
                return round(psnr(vq(x).sample.float(), x), 2)
    return None

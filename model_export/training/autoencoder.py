"""Stage 1: the VQ autoencoder (L1 + VQ + image-gradient L1 + optional PatchGAN hinge loss).

With ``decoder_only`` (the ``decoder`` stage) it fine-tunes only the decoder, of a finished autoencoder
run (``init_from``) or of a model package (``base``, ``train --init-from``): encoder, quant_conv and
codebook stay frozen, so the latents a denoiser was trained on are unchanged and the new decoder can be
paired with that denoiser without retraining it (``export.package --decoder`` for a run,
``model_export.export.decoder`` for a package). The config's ``[decoder]`` table overrides
``[autoencoder]`` keys for this stage (and ``[finetune.decoder]`` overrides both for a package).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from model_export.networks.autoencoder import (FROZEN_FOR_DECODER, CodebookUsage, PatchDiscriminator, Reconstruction,
                                               build_vqmodel, downsample_factor, edge_l1, nearest_code, psnr)
from model_export.training import distributed as dist
from model_export.training.checkpoints import load_if_present, restore_rng, rng_state, save_atomic
from model_export.training.data import (Tile, Window, image_to_tensor_range, load_tile, masked_for_holdout,
                                        sample_image_crops, tile_weights)
from model_export.training.errors import DataError
from model_export.training.package_weights import BaseModel
from model_export.training.provenance import hardware, loss_summary, write_summary
from model_export.training.schedules import Budget, warmup_cosine


def load_finished_autoencoder(folder: Path) -> dict:
    ckpt = load_if_present(folder / "last.pt")
    if ckpt is None or ckpt.get("stage") != "autoencoder" or not ckpt.get("finished"):
        raise DataError(f"{folder / 'last.pt'} is not a finished autoencoder run; give --autoencoder the --out "
                        "folder of a finished `--stage autoencoder` run.")
    return ckpt


def run(cfg: dict, tiles: list[Tile], holdout: list[Window], out: Path, device: str, seed: int,
        max_steps: int | None, max_minutes: float | None, data_args: list[str], init_from: Path | None = None,
        base: BaseModel | None = None, decoder_only: bool = False) -> dict:
    if decoder_only and (init_from is None) == (base is None):
        raise DataError("the decoder stage starts from one autoencoder: a finished run (--autoencoder) or a package (--init-from)")
    acfg = {**cfg["autoencoder"], **cfg.get("decoder", {})} if decoder_only else cfg["autoencoder"]
    rng = np.random.default_rng(seed)
    torch.manual_seed(seed)
    vq = build_vqmodel(cfg["autoencoder"]).to(device)
    vq.quantize.beta = acfg["vq_beta"]
    disc = opt_d = None
    if acfg["gan_weight"] > 0:
        disc = PatchDiscriminator(acfg["disc_channels"], acfg["disc_layers"]).to(device)
        opt_d = torch.optim.AdamW(disc.parameters(), lr=acfg["lr"], betas=(0.5, 0.9), weight_decay=0.0)
    base_run = None
    if decoder_only and init_from is not None:
        base_run = load_finished_autoencoder(init_from)
        vq.load_state_dict(base_run["vq"])
        if disc is not None and base_run.get("disc") is not None:
            disc.load_state_dict(base_run["disc"])  # a discriminator that already knows this decoder's look
    if base is not None:  # continuing a package (--init-from): its networks, a fresh discriminator
        vq.load_state_dict(base.networks.vq.state_dict())
    if decoder_only:
        for name, param in vq.named_parameters():
            param.requires_grad_(not name.startswith(FROZEN_FOR_DECODER))
    opt = torch.optim.AdamW([q for q in vq.parameters() if q.requires_grad], lr=acfg["lr"], betas=(0.5, 0.9), weight_decay=0.0)

    budget = dist.agreed(Budget(max_steps or acfg["steps"], max_minutes))
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
        print(f"resuming the {'decoder' if decoder_only else 'autoencoder'} at step {step} from {out / 'last.pt'}")
    dist.rank_streams(rng, seed, step)

    def state(finished: bool, extra: dict | None = None) -> dict:
        return {
            "stage": "autoencoder", "config": cfg, "vq": vq.state_dict(), "opt": opt.state_dict(),
            "disc": disc.state_dict() if disc is not None else None,
            "opt_d": opt_d.state_dict() if opt_d is not None else None,
            "step": step, "planned_steps": budget.planned_steps, "wall_seconds": wall + budget.elapsed(),
            "history": history, "rng": rng_state(rng), "finished": finished,
            "decoder_of": str(init_from if init_from is not None else base.path) if decoder_only else None,
            "base_model": base.provenance() if base is not None else None, **(extra or {}),
        }

    autocast = torch.autocast("cuda", dtype=torch.bfloat16, enabled=device == "cuda")
    w_l1, w_edge, w_gan = acfg["l1_weight"], acfg["edge_weight"], acfg["gan_weight"]
    # The decoder stage never touches the codebook: the latents must stay the ones the denoiser knows.
    usage = CodebookUsage(acfg["codebook_size"], 0 if decoder_only else acfg.get("restart_dead_codes_every", 0),
                          **dist.codebook_sync())
    restart_gen = torch.Generator().manual_seed(seed + step)
    restarted = 0
    last_save = budget.elapsed()
    bar = tqdm(total=budget.planned_steps, initial=step, desc="decoder" if decoder_only else "autoencoder", mininterval=10,
               disable=not dist.is_main())
    recon, crop_tiles = dist.wrap(Reconstruction(vq, not decoder_only)), dist.shard(tiles)
    critic = dist.wrap(disc) if disc is not None else None
    crop_weights = tile_weights(crop_tiles, cfg["data"].get("balance", "tile"))
    vq.train()
    while not budget.done(step):
        lr_scale = warmup_cosine(step, acfg["warmup_steps"], budget.progress(step))
        for o in (opt, opt_d):
            if o is not None:
                for g in o.param_groups:
                    g["lr"] = acfg["lr"] * lr_scale
        x = torch.from_numpy(sample_image_crops(rng, crop_tiles, acfg["crop"], acfg["batch_size"], holdout, crop_weights)).to(device)
        gan_on = disc is not None and budget.progress(step) >= acfg["gan_start"]
        with autocast:
            h, rec, commit_loss = recon(x)  # quantises to the codebook (straight-through) and decodes
            rec = rec.float()
            l1, edge = F.l1_loss(rec, x), edge_l1(rec, x)
            loss = w_l1 * l1 + w_edge * edge + commit_loss.float().mean()
            g_loss = -critic(rec).float().mean() if gan_on else torch.zeros((), device=device)
            loss = loss + w_gan * g_loss
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_([q for q in vq.parameters() if q.requires_grad], 1.0)
        opt.step()
        d_loss = torch.zeros(())
        if gan_on:
            with autocast:
                d_loss = F.relu(1.0 - critic(x)).mean() + F.relu(1.0 + critic(rec.detach())).mean()
            opt_d.zero_grad(set_to_none=True)
            d_loss.backward()
            opt_d.step()
        restarted += usage.update(h, vq.quantize.embedding.weight, restart_gen)
        step += 1
        history.append(loss.item())
        bar.update(1)
        bar.set_postfix(loss=f"{loss.item():.4f}", l1=f"{l1.item():.4f}", edge=f"{edge.item():.4f}",
                        codes=usage.used(), restarted=restarted,
                        vq=f"{commit_loss.mean().item():.4f}", g=f"{g_loss.item():.3f}", d=f"{d_loss.item():.3f}")
        if dist.is_main() and budget.elapsed() - last_save > 60 * acfg["checkpoint_minutes"]:
            save_atomic(state(False), out / "last.pt")
            last_save = budget.elapsed()
    bar.close()
    dist.verify_replicas(vq, disc)
    if not dist.is_main():  # rank 0 writes the results
        return {}

    vq.eval()
    if decoder_only and base is not None:  # the encoder is frozen: its latent statistics are the package's
        mean, std, codes_used = base.networks.latent_mean, base.networks.latent_std, None
    elif decoder_only:  # likewise the base run's
        mean, std = base_run["latent_mean"], base_run["latent_std"]
        codes_used = load_summary_codes(init_from)
    else:
        mean, std, codes_used = latent_stats(vq, tiles, holdout, downsample_factor(acfg), device)
    held_psnr = holdout_psnr(vq, tiles, holdout, device)
    final = state(True, {"latent_mean": mean, "latent_std": std})
    save_atomic(final, out / "last.pt")
    summary = {
        "stage": "decoder" if decoder_only else "autoencoder", "steps": step, "wall_seconds": round(final["wall_seconds"], 1),
        "hardware": hardware(device), "data": data_args, "loss": loss_summary(history),
        "holdout_psnr_db": held_psnr, "latent_mean": mean.tolist(), "latent_std": std.tolist(),
        "codes_used": codes_used, "codebook_size": acfg["codebook_size"], "params": sum(p.numel() for p in vq.parameters()),
        "ranks": dist.world_size(), "images_per_second": dist.images_per_second(budget, acfg["batch_size"]),
    }
    if base is not None:
        summary["base_model"] = base.provenance()
        summary["base_holdout_psnr_db"] = holdout_psnr(base.networks.vq.to(device).eval(), tiles, holdout, device)
    if decoder_only:
        summary["decoder_of"] = final["decoder_of"]
    if base_run is not None:
        summary["base_holdout_psnr_db"] = holdout_psnr(base_model(cfg, base_run, device), tiles, holdout, device)
    write_summary(out, summary)
    print(f"{summary['stage']}: {step} steps, hold-out PSNR {held_psnr} dB, {codes_used} codes used, latent mean {mean.tolist()} std {std.tolist()}")
    return summary


def load_summary_codes(folder: Path) -> int | None:
    summary = folder / "summary.json"
    return json.loads(summary.read_text()).get("codes_used") if summary.is_file() else None


def base_model(cfg: dict, base: dict, device: str):
    vq = build_vqmodel(cfg["autoencoder"]).to(device)
    vq.load_state_dict(base["vq"])
    return vq.eval()


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

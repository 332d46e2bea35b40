"""Stage 2: the mask-conditioned denoiser, trained on cached latents of the frozen autoencoder.

Every labelled tile is encoded once under the 8 flips/rotations; each step then costs only the UNet
on random aligned crops (latent crop + the label crop at image resolution).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from diffusers import DDPMScheduler
from tqdm import tqdm

from model_export.networks.autoencoder import build_vqmodel, downsample_factor
from model_export.networks.denoiser import SemanticUNet
from model_export.training import distributed as dist
from model_export.training.checkpoints import load_if_present, restore_rng, rng_state, save_atomic
from model_export.training.data import (NUM_CLASSES, Tile, Window, dihedral, draw_index, image_to_tensor_range,
                                        load_tile, masked_for_holdout, one_hot, tile_weights)
from model_export.training.errors import DataError
from model_export.training.package_weights import BaseModel
from model_export.training.provenance import hardware, loss_summary, write_summary
from model_export.training.schedules import EMA, Budget, warmup_cosine

# Latent pixels kept away from a held-out window: the encoder sees a few pixels beyond each latent.
HOLDOUT_MARGIN = 4


def noise_scheduler(dcfg: dict) -> DDPMScheduler:
    return DDPMScheduler(
        num_train_timesteps=dcfg["num_train_timesteps"], beta_schedule="linear",
        beta_start=dcfg["beta_start"], beta_end=dcfg["beta_end"], prediction_type=dcfg["prediction"],
    )


def load_autoencoder(ae_dir: Path) -> tuple[dict, torch.nn.Module]:
    ckpt = load_if_present(ae_dir / "last.pt")
    if ckpt is None or not ckpt.get("finished"):
        raise DataError(f"{ae_dir / 'last.pt'} is not a finished autoencoder run; finish the autoencoder stage first.")
    vq = build_vqmodel(ckpt["config"]["autoencoder"])
    vq.load_state_dict(ckpt["vq"])
    ae = {"config": ckpt["config"]["autoencoder"], "vq": ckpt["vq"], "latent_mean": ckpt["latent_mean"],
          "latent_std": ckpt["latent_std"], "steps": ckpt["step"], "wall_seconds": ckpt["wall_seconds"],
          "history": ckpt["history"], "base_model": ckpt.get("base_model")}
    summary = ae_dir / "summary.json"
    ae["summary"] = summary.read_text() if summary.is_file() else None
    return ae, vq.eval()


@torch.no_grad()
def build_latent_cache(vq, ae: dict, tiles: list[Tile], holdout: list[Window], device: str) -> dict:
    """Standardised latents, labels and valid-crop masks of every labelled tile under 8 transforms."""
    f = downsample_factor(ae["config"])
    mean = ae["latent_mean"].reshape(1, -1, 1, 1).to(device)
    std = ae["latent_std"].reshape(1, -1, 1, 1).to(device)
    latents, labels, valid = [], [], []
    labelled = [t for t in tiles if t.label_path is not None]
    if not labelled:
        raise DataError("The diffusion stage needs labelled tiles: none of the data folders has a labels/ folder "
                        "with files matching the images.")
    for tile in tqdm(labelled, desc="encoding tiles", disable=not dist.is_main()):
        image, label = load_tile(tile)
        image, label = masked_for_holdout(tile, image, label, holdout)
        ok = np.ones((tile.height // f, tile.width // f), dtype=bool)
        for w in holdout:
            if w.stem == tile.stem:
                ok[max(0, w.rows[0] // f - HOLDOUT_MARGIN) : w.rows[1] // f + HOLDOUT_MARGIN,
                   max(0, w.cols[0] // f - HOLDOUT_MARGIN) : w.cols[1] // f + HOLDOUT_MARGIN] = False
        for k in range(8):
            x = torch.from_numpy(image_to_tensor_range(np.ascontiguousarray(dihedral(image, k))))[None].to(device)
            z = (vq.encode(x).latents - mean) / std
            latents.append(z[0].cpu().half())
            labels.append(torch.from_numpy(np.ascontiguousarray(dihedral(label, k))))
            valid.append(torch.from_numpy(np.ascontiguousarray(dihedral(ok, k))))
    return {"latents": latents, "labels": labels, "valid": valid, "factor": f}


def sample_batch(rng: np.random.Generator, cache: dict, crop: int, batch: int,
                 weights: np.ndarray | None = None, where: list | None = None) -> tuple[torch.Tensor, np.ndarray]:
    """Aligned random crops: latents [B, C, crop, crop] and label codes [B, f*crop, f*crop]; cache entries
    drawn with ``weights`` (one per entry), or uniformly. ``where`` receives (entry, row, col) of each crop."""
    f, zs, ls = cache["factor"], [], []
    while len(zs) < batch:
        i = draw_index(rng, len(cache["latents"]), weights)
        z, valid = cache["latents"][i], cache["valid"][i]
        if z.shape[1] < crop or z.shape[2] < crop:  # an entry smaller than the crop (a small adaptation area)
            continue
        r = int(rng.integers(0, z.shape[1] - crop + 1))
        c = int(rng.integers(0, z.shape[2] - crop + 1))
        if not bool(valid[r : r + crop, c : c + crop].all()):
            continue
        zs.append(z[:, r : r + crop, c : c + crop].float())
        ls.append(cache["labels"][i][f * r : f * (r + crop), f * c : f * (c + crop)].numpy())
        if where is not None:
            where.append((i, r, c))
    return torch.stack(zs), np.stack(ls)


def resume_denoiser(ckpt: dict, unet: SemanticUNet, ema: EMA, opt, rng: np.random.Generator) -> tuple[int, float, list]:
    """Load a denoiser checkpoint's networks, optimiser and random state; returns (step, wall seconds, loss history)."""
    unet.load_state_dict(ckpt["unet"])
    ema.model.load_state_dict(ckpt["ema"])
    opt.load_state_dict(ckpt["opt"])
    restore_rng(ckpt["rng"], rng)
    return ckpt["step"], ckpt["wall_seconds"], ckpt["history"]


def denoising_step(model, unet: SemanticUNet, ema: EMA, opt, sched: DDPMScheduler, dcfg: dict, x0: torch.Tensor,
                   labels: np.ndarray, step: int, autocast) -> float:
    """One optimiser step of the denoiser on clean latents ``x0`` and their label crops; returns the loss.

    ``model`` is what runs forward (``unet`` itself, or its DistributedDataParallel wrapper); ``unet`` is
    what is clipped and averaged into the EMA.
    """
    device = x0.device
    semantic = torch.from_numpy(one_hot(labels)).to(device)
    drop = torch.rand(len(x0), device=device) < dcfg["cond_drop"]
    semantic[drop] = 0.0  # the unconditional case, for classifier-free guidance
    t = torch.randint(0, dcfg["num_train_timesteps"], (len(x0),), device=device)
    noise = torch.randn_like(x0)
    xt = sched.add_noise(x0, noise, t)
    target = sched.get_velocity(x0, noise, t) if dcfg["prediction"] == "v_prediction" else noise
    with autocast:
        pred = model(xt, t, semantic).float()
    loss = F.mse_loss(pred, target) if dcfg["loss"] == "mse" else F.l1_loss(pred, target)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(unet.parameters(), 1.0)
    opt.step()
    ema.update(unet, step)
    return loss.item()


def run(cfg: dict, tiles: list[Tile], holdout: list[Window], out: Path, device: str, seed: int,
        max_steps: int | None, max_minutes: float | None, data_args: list[str], autoencoder_dir: Path | None,
        base: BaseModel | None = None) -> dict:
    dcfg = cfg["diffusion"]
    rng = np.random.default_rng(seed)
    torch.manual_seed(seed)
    if autoencoder_dir is not None:
        ae, vq = load_autoencoder(autoencoder_dir)
    else:  # the package's own autoencoder (--init-from without --autoencoder)
        ae, vq = base.autoencoder_record(), base.networks.vq.eval()
    cache_path = out / dist.cache_name("latents.pt")  # each rank caches its shard of the labelled tiles
    cache = load_if_present(cache_path)
    labelled = [t for t in tiles if t.label_path is not None]
    cached_tiles = dist.shard(labelled) if labelled else tiles
    if cache is None:
        cache = build_latent_cache(vq.to(device), ae, cached_tiles, holdout, device)
        save_atomic(cache, cache_path)
    del vq
    per_tile = tile_weights(cached_tiles, cfg["data"].get("balance", "tile"))
    entry_weights = None if per_tile is None else np.repeat(per_tile, 8) / 8  # the cache holds 8 transforms a tile
    if entry_weights is not None and len(entry_weights) != len(cache["latents"]):
        raise DataError(f"{cache_path} holds {len(cache['latents'])} latents, not 8 for each of the {len(cached_tiles)} "
                        "labelled tiles of --data: it was made from other data; delete it to rebuild it.")

    unet = SemanticUNet(dcfg, num_classes=NUM_CLASSES).to(device)
    ema = EMA(unet, dcfg["ema_decay"])
    if base is not None:  # continuing a package: its denoiser, as the EMA too (the package holds the EMA weights)
        unet.load_state_dict(base.networks.unet.state_dict())
        ema.model.load_state_dict(base.networks.unet.state_dict())
    opt = torch.optim.AdamW(unet.parameters(), lr=dcfg["lr"], weight_decay=0.01)
    sched = noise_scheduler(dcfg)
    budget = dist.agreed(Budget(max_steps or dcfg["steps"], max_minutes))
    step, wall, history = 0, 0.0, []
    ckpt = load_if_present(out / "last.pt")
    if ckpt is not None:
        step, wall, history = resume_denoiser(ckpt, unet, ema, opt, rng)
        print(f"resuming the denoiser at step {step} from {out / 'last.pt'}")
    dist.rank_streams(rng, seed, step)

    def state(finished: bool) -> dict:
        return {
            "stage": "diffusion", "config": cfg, "unet": unet.state_dict(), "ema": ema.model.state_dict(),
            "opt": opt.state_dict(), "step": step, "planned_steps": budget.planned_steps,
            "wall_seconds": wall + budget.elapsed(), "history": history, "rng": rng_state(rng),
            "finished": finished, "autoencoder": ae, "data": data_args, "hardware": hardware(device),
            "base_model": base.provenance() if base is not None else None,
        }

    autocast = torch.autocast("cuda", dtype=torch.bfloat16, enabled=device == "cuda")
    last_save = budget.elapsed()
    bar = tqdm(total=budget.planned_steps, initial=step, desc="diffusion", mininterval=10, disable=not dist.is_main())
    model = dist.wrap(unet)
    unet.train()
    while not budget.done(step):
        for g in opt.param_groups:
            g["lr"] = dcfg["lr"] * warmup_cosine(step, dcfg["warmup_steps"], budget.progress(step))
        x0, labels = sample_batch(rng, cache, dcfg["crop"], dcfg["batch_size"], entry_weights)
        loss = denoising_step(model, unet, ema, opt, sched, dcfg, x0.to(device), labels, step, autocast)
        step += 1
        history.append(loss)
        bar.update(1)
        bar.set_postfix(loss=f"{loss:.4f}", avg100=f"{np.mean(history[-100:]):.4f}")
        if dist.is_main() and budget.elapsed() - last_save > 60 * dcfg["checkpoint_minutes"]:
            save_atomic(state(False), out / "last.pt")
            last_save = budget.elapsed()
    bar.close()
    dist.verify_replicas(unet)
    if not dist.is_main():  # rank 0 writes the results
        return {}

    final = state(True)
    save_atomic(final, out / "last.pt")
    summary = {
        "stage": "diffusion", "steps": step, "wall_seconds": round(final["wall_seconds"], 1),
        "hardware": hardware(device), "data": data_args, "loss": loss_summary(history),
        "params": sum(p.numel() for p in unet.parameters()),
        "autoencoder": str(autoencoder_dir) if autoencoder_dir else f"the package {base.path}'s",
        **({"base_model": base.provenance()} if base is not None else {}),
        "ranks": dist.world_size(), "images_per_second": dist.images_per_second(budget, dcfg["batch_size"]),
    }
    write_summary(out, summary)
    print(f"diffusion: {step} steps, loss {summary['loss']}")
    return summary

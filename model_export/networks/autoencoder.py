"""The vector-quantised autoencoder (diffusers VQModel, factor 4), its losses and its export graphs.

Diffusion runs on the pre-quantisation latent, standardised per channel; the decoder graph undoes
the standardisation, quantises to the codebook and decodes.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from diffusers import VQModel
from torch import nn


# state-dict prefixes of the encoder side: the decoder stage (and an adaptation's decoder step) keeps them frozen,
# so the latents a denoiser learnt keep their meaning
FROZEN_FOR_DECODER = ("encoder.", "quant_conv.", "quantize.")


def build_vqmodel(cfg: dict) -> VQModel:
    widths = tuple(cfg["block_out_channels"])
    return VQModel(
        in_channels=3,
        out_channels=3,
        down_block_types=("DownEncoderBlock2D",) * len(widths),
        up_block_types=("UpDecoderBlock2D",) * len(widths),
        block_out_channels=widths,
        layers_per_block=cfg["layers_per_block"],
        latent_channels=3,
        vq_embed_dim=3,
        num_vq_embeddings=cfg["codebook_size"],
        norm_num_groups=cfg["norm_num_groups"],
        mid_block_add_attention=False,
    )


def downsample_factor(cfg: dict) -> int:
    return 2 ** (len(cfg["block_out_channels"]) - 1)


class PatchDiscriminator(nn.Module):
    """A small PatchGAN (pix2pix style): one real/fake logit per overlapping patch."""

    def __init__(self, channels: int, layers: int):
        super().__init__()
        blocks: list[nn.Module] = [nn.Conv2d(3, channels, 4, 2, 1), nn.LeakyReLU(0.2)]
        width = channels
        for i in range(1, layers):
            out = channels * min(2**i, 8)
            blocks += [nn.Conv2d(width, out, 4, 2, 1), nn.GroupNorm(min(32, out // 4), out), nn.LeakyReLU(0.2)]
            width = out
        blocks.append(nn.Conv2d(width, 1, 4, 1, 1))
        self.net = nn.Sequential(*blocks)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


def edge_l1(fake: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
    """L1 between image gradients: penalises blur far more than plain L1 does, at no network cost."""
    def grads(x):
        return x[..., 1:, :] - x[..., :-1, :], x[..., :, 1:] - x[..., :, :-1]

    (fy, fx), (ry, rx) = grads(fake), grads(real)
    return F.l1_loss(fy, ry) + F.l1_loss(fx, rx)


def psnr(fake: torch.Tensor, real: torch.Tensor) -> float:
    """PSNR in dB of images in [-1, 1] (peak-to-peak 2)."""
    mse = F.mse_loss(fake.clamp(-1, 1), real).item()
    return 10.0 * torch.log10(torch.tensor(4.0 / max(mse, 1e-12))).item()


def nearest_code(flat: torch.Tensor, codebook: torch.Tensor) -> torch.Tensor:
    """Index of the nearest codebook entry for each row of ``flat`` [M, C], written with matmul/argmin
    so it exports to ONNX."""
    dist = (flat * flat).sum(1, keepdim=True) - 2.0 * flat @ codebook.t() + (codebook * codebook).sum(1)[None]
    return dist.argmin(1)


def quantise(z: torch.Tensor, codebook: torch.Tensor) -> torch.Tensor:
    """Nearest codebook entry per pixel."""
    n, c, h, w = z.shape
    q = codebook[nearest_code(z.permute(0, 2, 3, 1).reshape(-1, c), codebook)]
    return q.reshape(n, h, w, c).permute(0, 3, 1, 2)


class CodebookUsage:
    """Counts codebook hits and re-seeds codes left unused for a while with current encoder outputs.

    Without this a VQ codebook collapses: the first default run used 74 of its 2,048 codes, so the
    decoder saw a posterised latent and lost colour. Restarting dead codes on data (as SoundStream
    and Jukebox do) keeps the whole codebook in use.
    """

    def __init__(self, codebook_size: int, every: int, sum_across=None, from_main=None):
        self.hits = torch.zeros(codebook_size)
        self.every = every
        self.seen = 0
        # Under several training processes: count every rank's hits, and keep rank 0's re-seeded codes.
        self.sum_across, self.from_main = sum_across, from_main

    @torch.no_grad()
    def update(self, z: torch.Tensor, codebook: nn.Parameter, generator: torch.Generator) -> int:
        """Record this batch's codes; every ``every`` batches re-seed the unused ones. Returns how many."""
        flat = z.detach().float().permute(0, 2, 3, 1).reshape(-1, z.shape[1])  # latent pixels as rows
        idx = nearest_code(flat, codebook.detach().float())
        self.hits += torch.bincount(idx.cpu(), minlength=len(self.hits)).float()
        self.seen += 1
        if self.every <= 0 or self.seen < self.every:
            return 0
        if self.sum_across is not None:
            self.sum_across(self.hits)
        dead = (self.hits == 0).nonzero().flatten()
        if len(dead):
            pick = torch.randint(len(flat), (len(dead),), generator=generator)
            jitter = 0.01 * flat.std(0, keepdim=True) * torch.randn(len(dead), flat.shape[1], generator=generator)
            codebook.data[dead.to(codebook.device)] = (flat[pick] + jitter.to(flat.device)).to(codebook.dtype)
            if self.from_main is not None:
                self.from_main(codebook)
        self.hits.zero_()
        self.seen = 0
        return len(dead)

    def used(self) -> int:
        return int((self.hits > 0).sum())


class Reconstruction(nn.Module):
    """The training forward pass (encode, quantise straight-through, decode) as one module's forward, which
    is what DistributedDataParallel hooks. Returns (pre-quantisation latent, image, VQ loss)."""

    def __init__(self, vq: VQModel, train_encoder: bool):
        super().__init__()
        self.vq, self.train_encoder = vq, train_encoder

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        with torch.set_grad_enabled(self.train_encoder and torch.is_grad_enabled()):
            h = self.vq.encode(x).latents
        dec = self.vq.decode(h)
        return h, dec.sample, dec.commit_loss


class EncoderGraph(nn.Module):
    """image [-1, 1] -> standardised pre-quantisation latent (the diffusion space)."""

    def __init__(self, vq: VQModel, mean: torch.Tensor, std: torch.Tensor):
        super().__init__()
        self.vq = vq
        self.register_buffer("mean", mean.reshape(1, -1, 1, 1).float())
        self.register_buffer("std", std.reshape(1, -1, 1, 1).float())

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return (self.vq.encode(image).latents - self.mean) / self.std


class DecoderGraph(nn.Module):
    """standardised latent -> de-standardise, quantise, decode -> image clamped to [-1, 1]."""

    def __init__(self, vq: VQModel, mean: torch.Tensor, std: torch.Tensor):
        super().__init__()
        self.vq = vq
        self.register_buffer("mean", mean.reshape(1, -1, 1, 1).float())
        self.register_buffer("std", std.reshape(1, -1, 1, 1).float())

    def forward(self, latent: torch.Tensor) -> torch.Tensor:
        h = quantise(latent * self.std + self.mean, self.vq.quantize.embedding.weight)
        image = self.vq.decoder(self.vq.post_quant_conv(h))
        return image.clamp(-1.0, 1.0)

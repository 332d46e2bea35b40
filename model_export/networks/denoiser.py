"""The mask-conditioned denoiser: a small UNet whose every normalisation is modulated by the land-cover
mask (SPADE), on top of the method's input concatenation of a 3-channel mask code.

Inputs follow the model-package contract: latent [N, C, h, w], timestep [N] int64,
semantic [N, K, 4h, 4w] one-hot at image resolution (all zeros = unconditional).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from diffusers.models.attention_processor import Attention, AttnProcessor
from diffusers.models.embeddings import TimestepEmbedding, Timesteps
from diffusers.models.resnet import Downsample2D, Upsample2D
from torch import nn


class MaskEncoder(nn.Module):
    """One-hot mask at image resolution -> features at latent resolution (two strided x2 stages).

    ``to_input`` gives the method's 3 channels concatenated with the noisy latent; ``at_level``
    gives the features that modulate the normalisations at each UNet resolution.
    """

    def __init__(self, num_classes: int, channels: int, levels: int):
        super().__init__()
        self.stem = nn.Sequential(
            nn.Conv2d(num_classes, channels // 2, 3, stride=2, padding=1),
            nn.SiLU(),
            nn.Conv2d(channels // 2, channels, 3, stride=2, padding=1),
            nn.SiLU(),
        )
        self.to_input = nn.Conv2d(channels, 3, 1)
        self.level_proj = nn.ModuleList(
            nn.Sequential(nn.Conv2d(channels, channels, 3, padding=1), nn.SiLU()) for _ in range(levels)
        )

    def forward(self, semantic: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        feat = self.stem(semantic)
        per_level = [proj(F.avg_pool2d(feat, 2**i) if i else feat) for i, proj in enumerate(self.level_proj)]
        return self.to_input(feat), per_level


class SPADE(nn.Module):
    """GroupNorm without affine, then a per-pixel scale and shift predicted from the mask features."""

    def __init__(self, channels: int, mask_channels: int, groups: int):
        super().__init__()
        self.norm = nn.GroupNorm(groups, channels, affine=False, eps=1e-6)
        self.to_scale_shift = nn.Conv2d(mask_channels, 2 * channels, 1)
        nn.init.zeros_(self.to_scale_shift.weight)  # start as a plain normalisation
        nn.init.zeros_(self.to_scale_shift.bias)

    def forward(self, x: torch.Tensor, mask_feat: torch.Tensor) -> torch.Tensor:
        scale, shift = self.to_scale_shift(mask_feat).chunk(2, dim=1)
        return self.norm(x) * (1.0 + scale) + shift


class SpadeResBlock(nn.Module):
    def __init__(self, cin: int, cout: int, temb_dim: int, mask_channels: int, groups: int):
        super().__init__()
        self.norm1 = SPADE(cin, mask_channels, groups)
        self.conv1 = nn.Conv2d(cin, cout, 3, padding=1)
        self.temb = nn.Linear(temb_dim, cout)
        self.norm2 = SPADE(cout, mask_channels, groups)
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1)
        nn.init.zeros_(self.conv2.weight)  # residual branch starts at zero: stable early training
        self.skip = nn.Conv2d(cin, cout, 1) if cin != cout else nn.Identity()

    def forward(self, x: torch.Tensor, temb: torch.Tensor, mask_feat: torch.Tensor) -> torch.Tensor:
        h = self.conv1(F.silu(self.norm1(x, mask_feat)))
        h = h + self.temb(F.silu(temb))[:, :, None, None]
        h = self.conv2(F.silu(self.norm2(h, mask_feat)))
        return self.skip(x) + h


class SemanticUNet(nn.Module):
    def __init__(self, cfg: dict, latent_channels: int = 3, num_classes: int = 8):
        super().__init__()
        widths = list(cfg["block_out_channels"])
        n_res, groups, mch = cfg["layers_per_block"], cfg["norm_num_groups"], cfg["mask_channels"]
        self.levels = len(widths)
        temb_dim = 4 * widths[0]
        self.time_proj = Timesteps(widths[0], flip_sin_to_cos=True, downscale_freq_shift=0)
        self.time_embed = TimestepEmbedding(widths[0], temb_dim)
        self.mask_encoder = MaskEncoder(num_classes, mch, self.levels)
        self.conv_in = nn.Conv2d(latent_channels + 3, widths[0], 3, padding=1)

        self.down = nn.ModuleList()
        skip_widths, ch = [widths[0]], widths[0]
        for level, width in enumerate(widths):
            for _ in range(n_res):
                self.down.append(SpadeResBlock(ch, width, temb_dim, mch, groups))
                ch = width
                skip_widths.append(ch)
            if level < self.levels - 1:
                self.down.append(Downsample2D(ch, use_conv=True, padding=1))
                skip_widths.append(ch)

        self.mid1 = SpadeResBlock(ch, ch, temb_dim, mch, groups)
        self.mid_attn = None
        if cfg["mid_attention"]:
            heads = cfg["attention_heads"]
            self.mid_attn = Attention(
                ch, heads=heads, dim_head=ch // heads, norm_num_groups=groups, residual_connection=True,
                bias=True, eps=1e-6, processor=AttnProcessor(),
            )
        self.mid2 = SpadeResBlock(ch, ch, temb_dim, mch, groups)

        self.up = nn.ModuleList()
        for level in reversed(range(self.levels)):
            for _ in range(n_res + 1):
                self.up.append(SpadeResBlock(ch + skip_widths.pop(), widths[level], temb_dim, mch, groups))
                ch = widths[level]
            if level > 0:
                self.up.append(Upsample2D(ch, use_conv=True))

        self.norm_out = SPADE(ch, mch, groups)
        self.conv_out = nn.Conv2d(ch, latent_channels, 3, padding=1)
        nn.init.zeros_(self.conv_out.weight)
        nn.init.zeros_(self.conv_out.bias)

    @property
    def latent_multiple(self) -> int:
        return 2 ** (self.levels - 1)

    def forward(self, latent: torch.Tensor, timestep: torch.Tensor, semantic: torch.Tensor) -> torch.Tensor:
        temb = self.time_embed(self.time_proj(timestep).to(latent.dtype))
        mask_in, mask_feat = self.mask_encoder(semantic.to(latent.dtype))
        h = self.conv_in(torch.cat([latent, mask_in], dim=1))
        skips, level = [h], 0
        for block in self.down:
            if isinstance(block, Downsample2D):
                h, level = block(h), level + 1
            else:
                h = block(h, temb, mask_feat[level])
            skips.append(h)
        h = self.mid1(h, temb, mask_feat[level])
        if self.mid_attn is not None:
            h = self.mid_attn(h)
        h = self.mid2(h, temb, mask_feat[level])
        for block in self.up:
            if isinstance(block, Upsample2D):
                h, level = block(h), level - 1
            else:
                h = block(torch.cat([h, skips.pop()], dim=1), temb, mask_feat[level])
        return self.conv_out(F.silu(self.norm_out(h, mask_feat[0])))

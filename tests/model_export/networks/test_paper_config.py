"""configs/paper.toml builds the networks docs/reference/method.md describes; training_cost counts a config's step."""

from __future__ import annotations

import tomllib

import pytest
import torch
from diffusers.models.attention_processor import Attention

from model_export.networks.autoencoder import PatchDiscriminator, build_vqmodel, downsample_factor
from model_export.networks.denoiser import SemanticUNet
from model_export.training.cost import autoencoder_step, diffusion_step, main

from training_helpers import REPO, TINY_CONFIG

PAPER = REPO / "model_export" / "configs" / "paper.toml"


@pytest.fixture(scope="module")
def paper():
    return tomllib.loads(PAPER.read_text())


def test_paper_config_is_the_method_reference_size(paper):
    a, d = paper["autoencoder"], paper["diffusion"]
    with torch.device("meta"):  # shapes only: the real sizes cost no memory
        vq = build_vqmodel(a)
        unet = SemanticUNet(d, num_classes=8)
    # Autoencoder: VQ, factor 4, 3 latent channels, 8192 codes, width 128 x [1, 4, 8], no attention.
    assert downsample_factor(a) == 4 and vq.config.latent_channels == 3
    assert vq.quantize.embedding.weight.shape == (8192, 3)
    assert list(vq.config.block_out_channels) == [128 * m for m in (1, 4, 8)]
    assert not any(isinstance(m, Attention) for m in vq.modules())
    # Denoiser: 3 latent + 3 mask channels in, width 128 x [1, 2, 4], 2 blocks a level, 8 heads, middle attention only.
    assert unet.conv_in.in_channels == 6 and unet.mask_encoder.to_input.out_channels == 3
    assert [m.stride for m in unet.mask_encoder.stem if isinstance(m, torch.nn.Conv2d)] == [(2, 2), (2, 2)]
    assert list(d["block_out_channels"]) == [128 * m for m in (1, 2, 4)] and d["layers_per_block"] == 2
    attention = [m for m in unet.modules() if isinstance(m, Attention)]
    assert attention == [unet.mid_attn] and unet.mid_attn.heads == 8
    # Diffusion: T = 1000, linear betas 0.0015-0.0205, L1 loss on the noise, lr 1e-6 x batch 16, 256 x 256 crops.
    assert (d["num_train_timesteps"], d["beta_start"], d["beta_end"]) == (1000, 0.0015, 0.0205)
    assert (d["prediction"], d["loss"]) == ("epsilon", "l1")
    assert d["batch_size"] == 16 and d["lr"] == pytest.approx(1e-6 * d["batch_size"])
    assert a["crop"] == 256 and d["crop"] * downsample_factor(a) == 256


def test_training_cost_counts_the_real_networks(paper, capsys):
    a, d = paper["autoencoder"], paper["diffusion"]
    with torch.device("meta"):
        n_ae = sum(p.numel() for m in (build_vqmodel(a), PatchDiscriminator(a["disc_channels"], a["disc_layers"]))
                   for p in m.parameters())
        n_dm = sum(p.numel() for p in SemanticUNet(d, num_classes=8).parameters())
    ae, dm = autoencoder_step(a), diffusion_step(d, 4)
    assert (ae["params"], dm["params"]) == (n_ae, n_dm)
    assert ae["weights_grads_adamw_gib"] == round(16 * n_ae / 2**30, 2)
    # Work and saved activations grow with the batch exactly (the tiny config: cheap to trace twice).
    tiny = tomllib.loads(TINY_CONFIG.read_text())["diffusion"]
    one, two = diffusion_step({**tiny, "batch_size": 1}, 4), diffusion_step({**tiny, "batch_size": 2}, 4)
    assert one["flop_per_step"] > 0 and two["flop_per_step"] == 2 * one["flop_per_step"]
    assert 1.9 * one["saved_bytes"] < two["saved_bytes"] <= 2 * one["saved_bytes"]  # small weight views do not grow
    assert main(["--config", str(PAPER)]) == 0
    table = capsys.readouterr().out
    assert f"| autoencoder (with the discriminator) | 16 x 256^2 | {round(n_ae / 1e6, 1)} M |" in table

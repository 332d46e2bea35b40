"""Both training stages run, their losses fall, and a run resumes from its checkpoint."""

from __future__ import annotations

import pytest
import torch

from model_export.training.checkpoints import load_if_present
from model_export.training.train import main

from training_helpers import TINY_CONFIG, summary


def test_autoencoder_loss_falls(tiny_run):
    s = summary(tiny_run / "ae")
    assert s["steps"] == 40
    assert s["loss"]["last"] < 0.8 * s["loss"]["first"]
    assert len(s["latent_mean"]) == 3 and all(v > 0 for v in s["latent_std"])


def test_diffusion_loss_falls(tiny_run):
    s = summary(tiny_run / "dm")
    assert s["steps"] == 40
    assert s["loss"]["last"] < 0.9 * s["loss"]["first"]


def test_diffusion_resumes_from_last_checkpoint(tiny_run, small_data, tmp_path, capsys):
    # Copy the finished run and ask for 5 more steps: it must continue from step 40, not restart.
    import shutil

    out = tmp_path / "dm"
    shutil.copytree(tiny_run / "dm", out)
    args = ["--stage", "diffusion", "--config", str(TINY_CONFIG), "--data", *small_data,
            "--autoencoder", str(tiny_run / "ae"), "--out", str(out), "--max-steps", "45"]
    assert main(args) == 0
    assert "resuming the denoiser at step 40" in capsys.readouterr().out
    ckpt = load_if_present(out / "last.pt")
    assert ckpt["step"] == 45 and len(ckpt["history"]) == 45 and ckpt["finished"]


def test_decoder_stage_trains_only_the_decoder(tiny_run, small_data, tmp_path):
    out = tmp_path / "dec"
    args = ["--stage", "decoder", "--config", str(TINY_CONFIG), "--data", *small_data,
            "--autoencoder", str(tiny_run / "ae"), "--out", str(out), "--max-steps", "6"]
    assert main(args) == 0
    base, dec = load_if_present(tiny_run / "ae" / "last.pt"), load_if_present(out / "last.pt")
    assert dec["finished"] and dec["step"] == 6 and dec["decoder_of"] == str(tiny_run / "ae")
    frozen = [k for k in base["vq"] if k.startswith(("encoder.", "quant_conv.", "quantize."))]
    assert frozen and all(torch.equal(base["vq"][k], dec["vq"][k]) for k in frozen)
    decoder_keys = [k for k in base["vq"] if k.startswith("decoder.")]
    assert any(not torch.equal(base["vq"][k], dec["vq"][k]) for k in decoder_keys)
    assert torch.equal(dec["latent_mean"], base["latent_mean"]) and torch.equal(dec["latent_std"], base["latent_std"])
    s = summary(out)
    assert s["stage"] == "decoder" and s["decoder_of"] == str(tiny_run / "ae")
    assert "base_holdout_psnr_db" in s  # None here: the small data holds no held-out window


def test_decoder_stage_needs_a_finished_autoencoder_and_its_own_folder(tiny_run, small_data, tmp_path, capsys):
    common = ["--stage", "decoder", "--config", str(TINY_CONFIG), "--data", *small_data, "--max-steps", "2"]
    with pytest.raises(SystemExit):
        main([*common, "--autoencoder", str(tiny_run / "ae"), "--out", str(tiny_run / "ae")])
    assert "give --out a folder other than --autoencoder" in capsys.readouterr().err
    assert main([*common, "--autoencoder", str(tiny_run / "dm"), "--out", str(tmp_path / "d")]) == 2
    assert "is not a finished autoencoder run" in capsys.readouterr().err

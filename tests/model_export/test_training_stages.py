"""Both training stages run, their losses fall, and a run resumes from its checkpoint."""

from __future__ import annotations

from model_export.checkpoint import load_if_present
from model_export.train import main

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

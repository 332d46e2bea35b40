"""Two CPU ranks (torchrun, gloo) train the tiny config's three stages; rank 0 alone writes; a run resumes on one rank.

Every distributed run ends with ``distributed.verify_replicas``: a rank whose weights differ from rank 0's
(gradients not averaged, codebook restarts or learning rates not shared) fails the run, and so the test.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import torch

from model_export.training.checkpoints import load_if_present
from model_export.training.train import main

from training_helpers import REPO, TINY_CONFIG, summary


def torchrun(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           "-m", "model_export.training.train", "--config", str(TINY_CONFIG), "--seed", "0", "--threads", "1", *args]
    proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        stdout, stderr = proc.communicate(timeout=240)
    except subprocess.TimeoutExpired:
        # Ranks that hang (stopped at different steps) run in sessions of their own: torchrun, asked to stop
        # (SIGTERM), stops them.
        proc.send_signal(signal.SIGTERM)
        try:
            proc.communicate(timeout=60)
        finally:
            proc.kill()
        raise AssertionError("the two ranks did not finish in 240 s (a rank waiting for the other?)") from None
    errors = [line for line in stderr.splitlines() if "Error:" in line and "Connection closed" not in line]
    assert proc.returncode == 0, "\n".join(errors) or stderr[-3000:]
    return subprocess.CompletedProcess(cmd, proc.returncode, stdout, stderr)


def test_two_ranks_train_write_once_and_resume_on_one(small_data, tmp_path, capsys):
    ae = tmp_path / "ae"
    done = torchrun("--stage", "autoencoder", "--data", *small_data, "--out", str(ae), "--max-steps", "30")
    assert done.stdout.count("autoencoder: 30 steps") == 1  # rank 1 prints nothing
    assert sorted(p.name for p in ae.iterdir()) == ["last.pt", "summary.json"]  # one checkpoint, no temporaries
    s = summary(ae)
    assert s["ranks"] == 2 and s["steps"] == 30 and s["images_per_second"] > 0
    assert s["loss"]["last"] < 0.8 * s["loss"]["first"]
    ckpt = load_if_present(ae / "last.pt")
    assert ckpt["finished"] and not any(k.startswith("module.") for k in ckpt["vq"])  # unwrapped weights

    # The clock decides here (far more steps planned than fit in 3 s): rank 0's decision stops both ranks at
    # the same step (ranks that stopped apart would hang in the next all-reduce, or differ in learning rate).
    dm = tmp_path / "dm"
    torchrun("--stage", "diffusion", "--data", *small_data, "--autoencoder", str(ae), "--out", str(dm),
             "--max-steps", "100000", "--max-minutes", "0.05")
    s = summary(dm)
    assert s["ranks"] == 2 and 0 < s["steps"] < 100000
    assert sorted(p.name for p in dm.iterdir()) == ["last.pt", "latents-rank0-of-2.pt", "latents-rank1-of-2.pt",
                                                    "summary.json"]  # each rank caches the latents of its shard

    # The decoder stage: only the decoder trains (the frozen encoder is outside DistributedDataParallel's gradients).
    dec = tmp_path / "dec"
    torchrun("--stage", "decoder", "--data", *small_data, "--autoencoder", str(ae), "--out", str(dec), "--max-steps", "4")
    base, tuned = load_if_present(ae / "last.pt")["vq"], load_if_present(dec / "last.pt")["vq"]
    assert all(torch.equal(base[k], tuned[k]) for k in base if k.startswith(("encoder.", "quant_conv.", "quantize.")))
    assert any(not torch.equal(base[k], tuned[k]) for k in base if k.startswith("decoder."))
    assert summary(dec)["ranks"] == 2

    # Resume the two-rank autoencoder on one process.
    capsys.readouterr()
    assert main(["--stage", "autoencoder", "--config", str(TINY_CONFIG), "--data", *small_data, "--seed", "0",
                 "--threads", "1", "--out", str(ae), "--max-steps", "35"]) == 0
    assert "resuming the autoencoder at step 30" in capsys.readouterr().out
    ckpt = load_if_present(ae / "last.pt")
    assert ckpt["step"] == 35 and len(ckpt["history"]) == 35 and summary(ae)["ranks"] == 1

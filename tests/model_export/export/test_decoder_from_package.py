"""A package's decoder fine-tuned alone (`train --stage decoder --init-from`) and the package written again with it
(`model_export.export.decoder`): check 6's candidate of docs/research/map-following-checks.md."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch

from changeanywhere_qgis.engine.diffusion import load_model_package
from model_export.export.decoder import main as export_main
from model_export.networks.autoencoder import FROZEN_FOR_DECODER, DecoderGraph, build_vqmodel
from model_export.training.checkpoints import load_if_present, save_atomic
from model_export.training.config import load_config
from model_export.training.data import image_to_tensor_range
from model_export.training.package_weights import read_package_networks
from model_export.training.train import main as train_main
from training_helpers import REPO, TINY_CONFIG, TRAIN, read_tif

TINY_MODEL = REPO / "tests" / "data" / "tiny_model"


@pytest.fixture(scope="module")
def decoder_run(small_data, tmp_path_factory):
    out = tmp_path_factory.mktemp("decoder") / "run"
    assert train_main(["--stage", "decoder", "--config", str(TINY_CONFIG), "--data", *small_data, "--init-from",
                       str(TINY_MODEL), "--out", str(out), "--max-steps", "4", "--threads", "1", "--seed", "0"]) == 0
    return out


def test_only_the_packages_decoder_trains(decoder_run):
    base = read_package_networks(TINY_MODEL, load_config(TINY_CONFIG)).vq.state_dict()
    tuned = load_if_present(decoder_run / "last.pt")["vq"]
    frozen = [k for k in base if k.startswith(FROZEN_FOR_DECODER)]
    assert frozen and all(torch.equal(base[k], tuned[k]) for k in frozen)  # the denoiser's latents keep their meaning
    assert any(not torch.equal(base[k], tuned[k]) for k in base if k.startswith("decoder."))
    summary = json.loads((decoder_run / "summary.json").read_text())
    assert summary["stage"] == "decoder" and summary["steps"] == 4
    assert summary["decoder_of"] == str(TINY_MODEL) and summary["base_model"]["name"] == "ChangeAnywhere tiny test model"


def test_the_package_is_written_again_with_the_new_decoder_alone(decoder_run, small_data, tmp_path):
    out = tmp_path / "model"
    assert export_main(["--base", str(TINY_MODEL), "--decoder", str(decoder_run), "--out", str(out), "--version", "0.0.2"]) == 0
    base_manifest = json.loads((TINY_MODEL / "model.json").read_text())
    manifest = json.loads((out / "model.json").read_text())
    for name in ("encoder", "denoiser"):  # byte for byte the base's
        assert (out / f"{name}.onnx").read_bytes() == (TINY_MODEL / f"{name}.onnx").read_bytes()
        assert manifest["files"][name] == base_manifest["files"][name]
    assert manifest["files"]["decoder"]["sha256"] != base_manifest["files"]["decoder"]["sha256"]
    assert manifest["version"] == "0.0.2" and manifest["name"] == base_manifest["name"]
    record = manifest["training"]["decoder_finetune"]
    assert record["steps"] == 4 and record["continued_from"]["version"] == base_manifest["version"]
    assert manifest["training"]["diffusion"] == base_manifest["training"]["diffusion"]

    # the engine loads it (its hashes hold), and its decoder is the run's, not the base's
    tuned, base = load_model_package(out, device="cpu"), load_model_package(TINY_MODEL, device="cpu")
    image = image_to_tensor_range(read_tif(TRAIN / "oem" / "images" / "houston_16.tif")[:64, :64, :3])[None]
    latent = base.encode(image)
    run = load_if_present(decoder_run / "last.pt")
    vq = build_vqmodel(run["config"]["autoencoder"])
    vq.load_state_dict(run["vq"])
    with torch.no_grad():
        want = DecoderGraph(vq.eval(), run["latent_mean"], run["latent_std"])(torch.from_numpy(latent)).numpy()
    np.testing.assert_allclose(tuned.decode(latent), want, atol=1e-4)
    assert np.abs(tuned.decode(latent) - base.decode(latent)).max() > 1e-4


def test_a_decoder_run_of_another_package_is_refused(decoder_run, tmp_path, capsys):
    other = tmp_path / "other"
    shutil.copytree(decoder_run, other)
    ckpt = load_if_present(other / "last.pt")
    ckpt["vq"]["encoder.conv_in.weight"] = ckpt["vq"]["encoder.conv_in.weight"] + 0.1
    save_atomic(ckpt, other / "last.pt")
    assert export_main(["--base", str(TINY_MODEL), "--decoder", str(other), "--out", str(tmp_path / "m")]) == 1
    assert "was not fine-tuned from" in capsys.readouterr().err
    assert not (tmp_path / "m").exists() and not list(tmp_path.glob(".m.*"))


def test_what_is_not_a_decoder_run_of_a_package_is_refused(tiny_run, tmp_path, capsys):
    assert export_main(["--base", str(TINY_MODEL), "--decoder", str(tiny_run / "ae"), "--out", str(tmp_path / "m")]) == 1
    assert "not a finished decoder-stage run of a package" in capsys.readouterr().err
    assert export_main(["--base", str(tmp_path), "--decoder", str(tiny_run / "ae"), "--out", str(tmp_path / "m")]) == 2
    assert "holds no model.json" in capsys.readouterr().err
    assert not (tmp_path / "m").exists()

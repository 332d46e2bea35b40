"""A model package's weights read back from its ONNX graphs, and training that continues a package."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest
import torch

from changeanywhere_qgis.engine.diffusion import load_model_package
from model_export.export.package import export, load_networks, with_base_training
from model_export.networks.autoencoder import DecoderGraph, EncoderGraph
from model_export.training.config import load_config
from model_export.training.data import image_to_tensor_range, one_hot
from model_export.training.errors import DataError
from model_export.training.package_weights import check_against_package, read_package_networks
from model_export.training.train import main
from training_helpers import REPO, TINY_CONFIG, TRAIN, read_tif

TINY_MODEL = REPO / "tests" / "data" / "tiny_model"


@pytest.fixture(scope="module")
def tiny_cfg() -> dict:
    return load_config(TINY_CONFIG)


def real_crop(size: int = 64) -> np.ndarray:
    """[1, 3, size, size] in [-1, 1]: a crop of the real houston_16 image."""
    return image_to_tensor_range(read_tif(TRAIN / "oem" / "images" / "houston_16.tif")[:size, :size, :3])[None]


def test_read_back_networks_compute_what_the_package_graphs_compute(tiny_cfg):
    net = read_package_networks(TINY_MODEL, tiny_cfg)
    engine = load_model_package(TINY_MODEL, device="cpu")
    image = real_crop()
    label = read_tif(TRAIN / "oem" / "labels" / "houston_16.tif")[:64, :64, 0]
    with torch.no_grad():
        latent = EncoderGraph(net.vq, net.latent_mean, net.latent_std)(torch.from_numpy(image)).numpy()
        decoded = DecoderGraph(net.vq, net.latent_mean, net.latent_std)(torch.from_numpy(latent)).numpy()
        semantic = one_hot(label[None])
        pred = net.unet(torch.from_numpy(latent), torch.tensor([500]), torch.from_numpy(semantic)).numpy()
    assert np.abs(latent - engine.encode(image)).max() < 1e-4
    assert np.abs(decoded - engine.decode(latent)).max() < 1e-4
    graph = engine.sessions["denoiser"].run(None, {"latent": latent, "timestep": np.array([500]), "semantic": semantic})[0]
    assert np.abs(pred - graph).max() < 1e-4  # the graph itself: engine.denoise would add classifier-free guidance


def test_a_package_exported_now_names_its_architecture_and_reads_back_without_a_config(tiny_run, tmp_path):
    out = tmp_path / "model"
    export(tiny_run / "dm", out)
    manifest = json.loads((out / "model.json").read_text())
    assert manifest["architecture"]["autoencoder"]["block_out_channels"] == [8, 8, 8]
    _, _, _, unet = load_networks(tiny_run / "dm")
    net = read_package_networks(out)  # no config: the manifest says what to build
    for name, value in unet.state_dict().items():
        assert torch.equal(net.unet.state_dict()[name], value), name


def test_the_manifest_names_the_autoencoder_as_its_own_run_built_it(small_data, tmp_path):
    """An autoencoder trained with --set under a config that says otherwise (check 10's package: 8 normalisation groups,
    the diffusion run's config 32): the manifest must give the shape the graphs have, or the package cannot be
    continued (--init-from) or read back."""
    common = ["--config", str(TINY_CONFIG), "--data", *small_data, "--seed", "0", "--max-steps", "10"]
    assert main(["--stage", "autoencoder", *common, "--set", "autoencoder.norm_num_groups=2",
                 "--out", str(tmp_path / "ae")]) == 0
    assert main(["--stage", "diffusion", *common, "--autoencoder", str(tmp_path / "ae"), "--out", str(tmp_path / "dm")]) == 0
    export(tmp_path / "dm", tmp_path / "model")
    manifest = json.loads((tmp_path / "model" / "model.json").read_text())
    assert manifest["architecture"]["autoencoder"]["norm_num_groups"] == 2
    assert manifest["architecture"]["diffusion"]["norm_num_groups"] == load_config(TINY_CONFIG)["diffusion"]["norm_num_groups"]
    read_package_networks(tmp_path / "model")  # rebuilt from the manifest alone, checked against the graphs


def test_an_old_package_without_architecture_asks_for_its_config():
    with pytest.raises(DataError, match="--config"):
        read_package_networks(TINY_MODEL)


def test_the_wrong_architecture_is_refused_by_name(tiny_cfg):
    wrong = {**tiny_cfg, "diffusion": {**tiny_cfg["diffusion"], "mask_channels": 8}}
    with pytest.raises(DataError, match="config the package was trained with|layout this architecture"):
        read_package_networks(TINY_MODEL, wrong)


def test_another_normalisation_is_refused_with_the_setting_to_check(tiny_cfg):
    """Groups change no weight's size, so only running both tells them apart (check 10's package, 8 groups, read with
    a config of 32): the error names the setting to look at."""
    wrong = {**tiny_cfg, "autoencoder": {**tiny_cfg["autoencoder"], "norm_num_groups": 2}}
    with pytest.raises(DataError, match="encoder read back into PyTorch differs.*norm_num_groups"):
        read_package_networks(TINY_MODEL, wrong)


def test_networks_that_do_not_match_their_graphs_are_refused(tiny_cfg):
    """The last guard: whatever the reading rules did, networks that compute otherwise than the graphs are refused."""
    net = read_package_networks(TINY_MODEL, tiny_cfg)
    with torch.no_grad():
        net.vq.decoder.conv_out.weight.mul_(1.01)
    with pytest.raises(DataError, match="decoder read back into PyTorch differs"):
        check_against_package(net, load_model_package(TINY_MODEL, device="cpu"))


def test_training_continues_from_the_package(tmp_path):
    """One step from the package keeps its reconstruction; one step from scratch does not come near it."""
    # the real OEM folder: its houston_16 holds the config's held-out window
    common = ["--config", str(TINY_CONFIG), "--data", str(TRAIN / "oem"), "--seed", "0", "--max-steps", "1", "--threads", "1"]
    assert main(["--stage", "autoencoder", *common, "--init-from", str(TINY_MODEL), "--out", str(tmp_path / "ae")]) == 0
    assert main(["--stage", "autoencoder", *common, "--out", str(tmp_path / "scratch")]) == 0
    cont = json.loads((tmp_path / "ae" / "summary.json").read_text())
    scratch = json.loads((tmp_path / "scratch" / "summary.json").read_text())
    assert cont["base_model"]["name"] == "ChangeAnywhere tiny test model"
    assert cont["base_model"]["model_json_sha256"] == read_package_networks(TINY_MODEL, load_config(TINY_CONFIG)).sha256
    assert abs(cont["holdout_psnr_db"] - cont["base_holdout_psnr_db"]) < 1.0
    assert cont["holdout_psnr_db"] > scratch["holdout_psnr_db"] + 3.0


def test_denoiser_continues_on_the_packages_own_autoencoder(small_data, tmp_path, tiny_cfg):
    common = ["--config", str(TINY_CONFIG), "--data", *small_data, "--seed", "0", "--max-steps", "2", "--threads", "1"]
    assert main(["--stage", "diffusion", *common, "--init-from", str(TINY_MODEL), "--out", str(tmp_path / "dm")]) == 0
    out = tmp_path / "model"
    export(tmp_path / "dm", out)
    manifest = json.loads((out / "model.json").read_text())
    assert manifest["training"]["diffusion"]["continued_from"]["name"] == "ChangeAnywhere tiny test model"
    assert manifest["training"]["autoencoder"]["taken_unchanged_from_the_base"] is True
    # the base's own steps travel along: a continued package says how long its networks trained in all
    base_training = json.loads((TINY_MODEL / "model.json").read_text())["training"]
    assert manifest["training"]["diffusion"]["continued_from"]["training"] == base_training
    # the autoencoder is the package's, unchanged: the same encoder output to float precision
    image = real_crop()
    assert np.abs(load_model_package(out, "cpu").encode(image) - load_model_package(TINY_MODEL, "cpu").encode(image)).max() < 1e-4


def test_the_decoder_stage_starts_from_a_run_or_a_package_not_both(small_data, tiny_run, tmp_path, capsys):
    with pytest.raises(SystemExit):
        main(["--stage", "decoder", "--config", str(TINY_CONFIG), "--data", *small_data, "--init-from", str(TINY_MODEL),
              "--autoencoder", str(tiny_run / "ae"), "--out", str(tmp_path / "dec")])
    assert "give --autoencoder DIR (a run) or --init-from MODEL_DIR (a package), not both" in capsys.readouterr().err
    assert not (tmp_path / "dec").exists()


def test_a_missing_package_is_a_clear_error_that_leaves_nothing(small_data, tmp_path, capsys):
    code = main(["--stage", "autoencoder", "--config", str(TINY_CONFIG), "--data", *small_data,
                 "--init-from", str(tmp_path / "nowhere"), "--out", str(tmp_path / "ae")])
    assert code == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "nowhere" in err
    assert not (tmp_path / "ae").exists()


def test_a_base_record_without_its_training_takes_it_from_the_same_base_file_only(tmp_path):
    raw = (TINY_MODEL / "model.json").read_bytes()
    record = {"path": str(TINY_MODEL), "name": "n", "version": "v", "model_json_sha256": hashlib.sha256(raw).hexdigest()}
    assert with_base_training(record)["training"] == json.loads(raw)["training"]
    other = {**record, "model_json_sha256": "0" * 64}  # the base was replaced since the run started
    assert with_base_training(other) == other
    gone = {**record, "path": str(tmp_path / "nowhere")}
    assert with_base_training(gone) == gone

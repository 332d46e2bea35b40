"""The exported package follows the contract, loads in the engine and matches PyTorch."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from changeanywhere_qgis.engine.diffusion import load_model_package
from model_export.export.package import export, load_networks
from model_export.training.data import one_hot
from training_helpers import TINY_CONFIG


@pytest.fixture(scope="module")
def package(tiny_run, tmp_path_factory):
    out = tmp_path_factory.mktemp("pkg") / "model"
    export(tiny_run / "dm", out)
    return out


def test_package_loads_in_engine(package):
    model = load_model_package(package, device="cpu")
    m = model.manifest
    assert m["format"] == "changeanywhere-model/1"
    assert [c["code"] for c in m["classes"]] == list(range(1, 9))
    assert m["classes"][7]["name"] == "building" and m["classes"][7]["color"] == [222, 31, 7]
    assert m["nodata_code"] == 0 and m["latent"] == {"channels": 3, "downsample": 4}
    assert m["diffusion"]["prediction"] == "v_prediction"
    assert m["training"]["diffusion"]["steps"] == 40
    assert model.schedule.prediction == "v_prediction"
    # the licence and the description name what the package learnt from (the small data: oem and loveda folders)
    assert m["license"] == "CC BY-NC-SA 4.0 (trained on OpenEarthMap: CC BY-NC-SA 4.0, LoveDA: CC BY-NC-SA 4.0)"
    assert m["description"].endswith("Trained on OpenEarthMap, LoveDA.")


def test_the_licence_is_the_most_restrictive_of_the_sources():
    from model_export.export.package import licence

    four = ["data/train/oem", "data/train/loveda@loveda", "data/train/dubai@data/train/dubai/training_remap.json",
            "data/train/flair@flair"]
    assert licence(four) == ("CC BY-NC-SA 4.0 (trained on OpenEarthMap: CC BY-NC-SA 4.0, LoveDA: CC BY-NC-SA 4.0, "
                             "Dubai (Humans in the Loop): CC0 1.0, FLAIR (IGN): Etalab Open Licence 2.0)")
    assert licence(four[2:]).startswith("see the sources' licences (trained on Dubai")  # no non-commercial source
    assert "mine: licence unknown" in licence(["/data/mine"])


def test_engine_graphs_match_torch(package, tiny_run):
    model = load_model_package(package, device="cpu")
    _, encoder, decoder, unet = load_networks(tiny_run / "dm")
    rng = np.random.default_rng(1)
    image = rng.uniform(-1, 1, (2, 3, 32, 48)).astype(np.float32)
    latent = model.encode(image)
    assert latent.shape == (2, 3, 8, 12)
    assert model.decode(latent).shape == (2, 3, 32, 48)
    labels = rng.integers(0, 9, (2, 32, 48))
    semantic = one_hot(labels)
    t = np.array([3, 700], dtype=np.int64)
    got = model._run("denoiser", latent=latent, timestep=t, semantic=semantic)
    with torch.no_grad():
        want = unet(torch.from_numpy(latent), torch.from_numpy(t), torch.from_numpy(semantic)).numpy()
        want_latent = encoder(torch.from_numpy(image)).numpy()
    np.testing.assert_allclose(latent, want_latent, atol=1e-4)
    np.testing.assert_allclose(got, want, atol=1e-4)


def test_export_refuses_non_diffusion_checkpoint(tiny_run, tmp_path):
    from model_export.export.package import main

    assert main(["--checkpoint", str(tiny_run / "ae"), "--out", str(tmp_path / "m")]) == 1
    assert not (tmp_path / "m").exists()


def test_one_hot_channel_order_and_unknown():
    oh = one_hot(np.array([[0, 1, 8]]))
    assert oh.shape == (8, 1, 3)
    assert oh[:, 0, 0].sum() == 0  # code 0 (unknown) -> all-zero pixel
    assert oh[0, 0, 1] == 1 and oh[7, 0, 2] == 1


def test_evaluation_writes_the_card_with_its_judge(package, tiny_run, small_data, tmp_path):
    """evaluate_model end to end on the tiny package: a judge trained on redrawn tiles, the card's table."""
    import json

    from model_export.evaluation import model_card, segmentation

    judge = tmp_path / "judge"
    assert segmentation.main(["--data", *small_data, "--out", str(judge), "--max-steps", "2", "--threads", "1",
                              "--redrawn-by", str(package)]) == 0
    card = tmp_path / "card.md"
    card.write_text(f"# Card\n{model_card.START}\n{model_card.END}\n## Limits\n")
    assert model_card.main(["--model", str(package), "--checkpoint", str(tiny_run / "dm"),
                                "--segmentation", str(judge), "--guidance", "1", "3", "--seeds", "0", "--steps", "2",
                                "--rounds", "1", "--threads", "1", "--card", str(card), "--images", str(tmp_path),
                                "--json", str(tmp_path / "eval.json")]) == 0
    result = json.loads((tmp_path / "eval.json").read_text())
    assert [g["guidance"] for g in result["generated"]] == [1.0, 3.0]
    for key in ("miou_real", "miou_real_rotated", "miou_reconstruction", "miou_reconstruction_rotated"):
        assert 0.0 <= result[key] <= 1.0
    assert result["judge"]["steps"] == 2 and result["judge"]["redrawn_by"] == str(package)
    text = card.read_text()
    assert f"50% of its crops redrawn by the autoencoder of `{package}`" in text and "| ratio |" in text
    assert text.endswith("## Limits\n")
    assert (tmp_path / "default_model_holdout.png").is_file()


@pytest.fixture(scope="module")
def decoder_run(tiny_run, small_data, tmp_path_factory):
    from model_export.training.train import main

    out = tmp_path_factory.mktemp("dec") / "decoder"
    assert main(["--stage", "decoder", "--config", str(TINY_CONFIG), "--data", *small_data,
                 "--autoencoder", str(tiny_run / "ae"), "--out", str(out), "--max-steps", "4"]) == 0
    return out


def test_export_pairs_a_fine_tuned_decoder_with_the_denoiser(package, decoder_run, tiny_run, tmp_path):
    out = tmp_path / "m"
    doc = export(tiny_run / "dm", out, decoder_dir=decoder_run)
    assert doc["training"]["decoder_finetune"]["steps"] == 4
    base, tuned = load_model_package(package, device="cpu"), load_model_package(out, device="cpu")
    rng = np.random.default_rng(2)
    image = rng.uniform(-1, 1, (1, 3, 32, 32)).astype(np.float32)
    latent = base.encode(image)
    np.testing.assert_allclose(tuned.encode(image), latent, atol=1e-5)  # same encoder: the denoiser's latents
    assert np.abs(tuned.decode(latent) - base.decode(latent)).max() > 1e-4  # another decoder
    _, _, decoder, _ = load_networks(tiny_run / "dm", decoder_run)
    with torch.no_grad():
        np.testing.assert_allclose(tuned.decode(latent), decoder(torch.from_numpy(latent)).numpy(), atol=1e-4)


def test_export_refuses_a_decoder_of_another_autoencoder(decoder_run, tiny_run, tmp_path, capsys):
    import shutil

    from model_export.training.checkpoints import load_if_present, save_atomic
    from model_export.export.package import main

    other = tmp_path / "other"
    shutil.copytree(decoder_run, other)
    ckpt = load_if_present(other / "last.pt")
    ckpt["vq"]["encoder.conv_in.weight"] = ckpt["vq"]["encoder.conv_in.weight"] + 0.1
    save_atomic(ckpt, other / "last.pt")
    assert main(["--checkpoint", str(tiny_run / "dm"), "--out", str(tmp_path / "m"), "--decoder", str(other)]) == 1
    err = capsys.readouterr().err
    assert "fine-tuned from another autoencoder" in err and "encoder.conv_in.weight" in err
    assert not (tmp_path / "m").exists()
    assert main(["--checkpoint", str(tiny_run / "dm"), "--out", str(tmp_path / "m"), "--decoder", str(tiny_run / "ae")]) == 1
    assert "not a finished decoder-stage run" in capsys.readouterr().err

"""model_export.adaptation.adapt on a real pair (a crop of the bundled Houston sample) with the tiny test package as base."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pytest
import rasterio
from PIL import Image
from rasterio.windows import Window

from changeanywhere_qgis.cli.main import main as cli_main
from changeanywhere_qgis.engine.diffusion import load_model_package
from model_export.adaptation.adapt import main as adapt_main, run_folder
from model_export.adaptation.area import build_cache, choose_holdout, crop_pixels, read_area
from model_export.adaptation.train import Stopper, train
from model_export.training.config import finetune_config, load_config
from model_export.training.package_weights import BaseModel, read_package_networks
from training_helpers import REPO, TINY_CONFIG

TINY_MODEL = REPO / "tests" / "data" / "tiny_model"
SAMPLES = REPO / "changeanywhere_qgis" / "samples"


def crop(src: Path, dst: Path, row: int, col: int, size: int) -> Path:
    """A georeferenced crop of a real raster (its transform moved with the window)."""
    with rasterio.open(src) as s:
        w = Window(col, row, size, size)
        profile = {**s.profile, "width": size, "height": size, "transform": s.window_transform(w)}
        with rasterio.open(dst, "w", **profile) as d:
            d.write(s.read(window=w))
    return dst


@pytest.fixture(scope="module")
def pair(tmp_path_factory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("area")
    return (crop(SAMPLES / "houston_label.tif", root / "map.tif", 0, 0, 256),
            crop(SAMPLES / "houston_image.tif", root / "image.tif", 0, 0, 256))


def args(pair, out: Path, *extra: str) -> list[str]:
    return ["--semantic", str(pair[0]), "--image", str(pair[1]), "--base", str(TINY_MODEL), "--config", str(TINY_CONFIG),
            "--out", str(out), "--threads", "1", *extra]


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def test_adapt_writes_a_package_the_engine_loads_and_generates_with(pair, tmp_path, capsys):
    out = tmp_path / "adapted"
    assert adapt_main(args(pair, out, "--steps", "3", "--seed", "5")) == 0
    printed = capsys.readouterr().out
    assert "reconstruction PSNR" in printed and "map-following ratio       not measured" in printed
    assert leftovers(tmp_path) == ["adapted"]  # no run folder, no hidden partial folder
    pkg = load_model_package(out, "cpu")
    doc = json.loads((out / "model.json").read_text())
    a = doc["adaptation"]
    assert a["base_model"]["name"] == "ChangeAnywhere tiny test model"
    assert a["base_model"]["model_json_sha256"] == hashlib.sha256((TINY_MODEL / "model.json").read_bytes()).hexdigest()
    with rasterio.open(pair[0]) as src:
        assert a["data"]["grid"] == {"width": 256, "height": 256, "crs": src.crs.to_string(), "transform": list(src.transform)[:6]}
    assert a["data"]["semantic"] == str(pair[0].resolve())
    held = choose_holdout(256, 256, 0.2, 5, pkg.multiple_of)
    assert (a["held_out"]["rows"], a["held_out"]["cols"]) == (list(held.rows), list(held.cols))
    assert abs((held.rows[1] - held.rows[0]) * (held.cols[1] - held.cols[0]) / 256**2 - 0.2) < 0.05
    assert a["steps"] == 3 and a["device"] == "cpu"
    before, after = a["held_out_figures"]["before"], a["held_out_figures"]["after"]
    assert before["reconstruction_psnr_db"] == after["reconstruction_psnr_db"]  # the base's autoencoder, unchanged
    assert before["denoising_loss"] != after["denoising_loss"]  # the denoiser did change
    assert doc["training"] == json.loads((TINY_MODEL / "model.json").read_text())["training"]
    # the engine generates with it, through the command line a user runs
    assert cli_main(["generate", "--semantic", str(pair[0]), "--image", str(pair[1]), "--random-events", "--seed", "1",
                     "--model", str(out), "--out", str(tmp_path / "sample"), "--steps", "2"]) == 0
    assert json.loads((tmp_path / "sample" / "sample.json").read_text())["model"]["path"] == str(out)


def test_the_held_out_loss_is_recorded_along_the_run_and_ends_at_the_packages_figure(pair, tmp_path, monkeypatch, capsys):
    import model_export.adaptation.train as adapt_train

    monkeypatch.setattr(adapt_train, "WATCH_EVERY", 2)
    out = tmp_path / "adapted"
    assert adapt_main(args(pair, out, "--steps", "5", "--keep", "last")) == 0
    a = json.loads((out / "model.json").read_text())["adaptation"]
    figures = a["held_out_figures"]
    curve = figures["denoising_loss_by_step"]
    assert curve[0] == [0, figures["before"]["denoising_loss"]]  # the base's figure starts it
    assert [s for s, _ in curve] == [0, 2, 4, 5]
    assert len({round(v, 6) for _, v in curve}) == 4  # the weights moved between the points
    # --keep last: the package is the last step's, and the curve's last point is its own figure (the EMA weights)
    assert a["kept"] == {"rule": "last step", "step": 5}
    assert curve[-1][1] == pytest.approx(figures["after"]["denoising_loss"], abs=1e-5)
    assert "held-out denoising loss by step" in capsys.readouterr().out


def test_by_default_the_package_keeps_the_weights_with_the_lowest_held_out_loss(pair, tmp_path, monkeypatch):
    import model_export.adaptation.train as adapt_train

    monkeypatch.setattr(adapt_train, "WATCH_EVERY", 1)
    out = tmp_path / "adapted"
    assert adapt_main(args(pair, out, "--steps", "6", "--seed", "3")) == 0
    a = json.loads((out / "model.json").read_text())["adaptation"]
    curve = a["held_out_figures"]["denoising_loss_by_step"]
    best = min(curve, key=lambda c: c[1])
    assert a["kept"] == {"rule": "lowest held-out denoising loss", "step": best[0]}
    assert a["held_out_figures"]["after"]["denoising_loss"] == pytest.approx(best[1], abs=1e-5)
    assert a["steps"] == 6


def test_no_training_crop_touches_the_held_out_block(pair):
    """Every crop the loop draws, traced back to the area's pixels, stays clear of the block and its margin."""
    cfg = finetune_config(load_config(TINY_CONFIG), "diffusion")
    pkg = load_model_package(TINY_MODEL, "cpu")
    base = BaseModel(TINY_MODEL, read_package_networks(TINY_MODEL, load_config(TINY_CONFIG)))
    area = read_area(str(pair[0]), str(pair[1]), None, 1, pkg.scheme)
    held = choose_holdout(256, 256, 0.3, 2, pkg.multiple_of)
    net = base.networks
    cache = build_cache(area, held, net.vq, net.latent_mean, net.latent_std, 4, pkg.multiple_of, cfg["diffusion"]["crop"], "cpu")
    crops = []
    with tempfile.TemporaryDirectory() as run, Stopper() as stopper:
        train(cfg, base, cache, Path(run), "cpu", 0, 40, None, ["test"], stopper, on_batch=crops.extend)
    assert len(crops) == 40 * cfg["diffusion"]["batch_size"]
    size = cfg["diffusion"]["crop"]
    margin = 4 * 4  # train_diffusion.HOLDOUT_MARGIN latent cells of 4 px
    grown = type(held)((held.rows[0] - margin, held.rows[1] + margin), (held.cols[0] - margin, held.cols[1] + margin))
    rects = [crop_pixels(cache, *where, size) for where in crops]
    assert all((r[1] - r[0], c[1] - c[0]) == (4 * size, 4 * size) for r, c in rects)
    assert not [rc for rc in rects if grown.intersects(*rc)]
    # the crops do cover the area around it: the check above is not empty by construction
    assert len({rc for rc in rects}) > 20
    # and the block's map was blanked before encoding (the 256 px area is one chunk: entry 0 is it, unturned)
    r, c = slice(*held.rows), slice(*held.cols)
    assert area.labels[r, c].any() and not cache["labels"][0][r, c].numpy().any()


@pytest.mark.parametrize("case", ["other_grid", "image_as_map", "missing_map", "unknown_remap", "band"])
def test_bad_inputs_are_refused_as_generate_refuses_them_before_anything_is_written(case, pair, tmp_path, capsys):
    semantic, image, extra = pair[0], pair[1], []
    if case == "other_grid":
        image = crop(SAMPLES / "houston_image.tif", tmp_path / "shifted.tif", 8, 0, 256)
    elif case == "image_as_map":
        semantic = pair[1]
    elif case == "missing_map":
        semantic = tmp_path / "nowhere.tif"
    elif case == "unknown_remap":
        extra = ["--remap", "nosuchscheme"]
    elif case == "band":
        extra = ["--band", "3"]
    out = tmp_path / "adapted"
    code = adapt_main(["--semantic", str(semantic), "--image", str(image), "--base", str(TINY_MODEL), "--config",
                       str(TINY_CONFIG), "--out", str(out), "--steps", "2", *extra])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("error: ")
    assert not out.exists() and not run_folder(out).exists()
    assert not [n for n in leftovers(tmp_path) if n.startswith(".")]
    # generate, given the same pair, refuses with the same message
    assert cli_main(["generate", "--semantic", str(semantic), "--image", str(image), "--random-events", "--model",
                     str(TINY_MODEL), "--out", str(tmp_path / "sample"), *extra]) == 2
    assert capsys.readouterr().err.strip() == err.strip()


def test_a_bad_holdout_or_a_too_small_area_is_refused_before_training(pair, tmp_path, capsys):
    out = tmp_path / "adapted"
    with pytest.raises(SystemExit):
        adapt_main(args(pair, out, "--holdout", "0.9"))
    assert "--holdout 0.9" in capsys.readouterr().err
    small = (crop(SAMPLES / "houston_label.tif", tmp_path / "m.tif", 0, 0, 48),
             crop(SAMPLES / "houston_image.tif", tmp_path / "i.tif", 0, 0, 48))
    assert adapt_main(args(small, out, "--steps", "2")) == 2
    assert "nothing to train on" in capsys.readouterr().err
    assert not out.exists() and not run_folder(out).exists()


def test_an_interrupted_run_stops_with_a_checkpoint_and_resume_goes_on(pair, tmp_path, capsys):
    out = tmp_path / "adapted"
    run = run_folder(out)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen([sys.executable, "-m", "model_export.adaptation.adapt", *args(pair, out, "--steps", "100000")],
                            cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 240
        while not (run / "before.json").is_file() and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.5)
        time.sleep(3)  # training steps are running now
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, err
    assert "--resume" in err and not out.exists()
    import torch

    ckpt = torch.load(run / "last.pt", weights_only=False)
    assert ckpt["step"] > 0 and not ckpt["finished"]
    # without --resume the run folder is not silently overwritten
    assert adapt_main(args(pair, out, "--steps", "3")) == 2
    assert "--resume" in capsys.readouterr().err
    assert adapt_main(args(pair, out, "--steps", str(ckpt["step"] + 2), "--resume")) == 0
    assert f"resuming at step {ckpt['step']}" in capsys.readouterr().out
    assert json.loads((out / "model.json").read_text())["adaptation"]["steps"] == ckpt["step"] + 2
    assert not run.exists()


def test_resume_refuses_other_inputs(pair, tmp_path, capsys):
    out = tmp_path / "adapted"
    assert adapt_main(args(pair, out, "--steps", "2", "--resume")) == 2
    assert "no interrupted run" in capsys.readouterr().err
    run = run_folder(out)
    run.mkdir()
    (run / "request.json").write_text(json.dumps({"seed": 99}))
    assert adapt_main(args(pair, out, "--steps", "2", "--resume")) == 2
    assert "seed" in capsys.readouterr().err
    assert not out.exists()


def test_with_a_judge_the_map_following_ratio_is_measured_before_and_after(pair, small_data, tmp_path, capsys):
    from model_export.evaluation import segmentation

    judge = tmp_path / "judge"
    assert segmentation.main(["--data", *small_data, "--out", str(judge), "--max-steps", "2", "--threads", "1"]) == 0
    out = tmp_path / "adapted"
    assert adapt_main(args(pair, out, "--steps", "2", "--judge", str(judge))) == 0
    printed = capsys.readouterr().out
    assert "map-following ratio" in printed and "colour offset" in printed and "contrast ratio" in printed
    figures = json.loads((out / "model.json").read_text())["adaptation"]["held_out_figures"]
    assert "map_following" not in figures  # measured: no "not measured" note
    for when in ("before", "after"):
        m = figures[when]["map_following"]
        assert m["seeds"] == [0, 1, 2, 3] and m["miou_map"] >= 0 and m["miou_rotated"] >= 0
        assert 0 <= m["colour_offset"] <= 255 and m["contrast_ratio"] > 0  # the images' colour against the real block's
        w = m["window"]  # the central window of the held-out block, never trained on
        held = json.loads((out / "model.json").read_text())["adaptation"]["held_out"]
        assert held["rows"][0] <= w["rows"][0] < w["rows"][1] <= held["rows"][1]
        assert held["cols"][0] <= w["cols"][0] < w["cols"][1] <= held["cols"][1]
    real = figures["real_image"]  # the judge on the block's real image: the reference for the ratios
    assert real["window"] == figures["after"]["map_following"]["window"] and 0 <= real["miou_map"] <= 1
    # measured again later from the manifest's record alone: the same figures, for the base and the adapted package
    from model_export.adaptation import figures as adapt_figures

    again = adapt_figures.remeasure(out, judge)
    for when in ("before", "after"):
        assert again[when]["denoising_loss"] == figures[when]["denoising_loss"]
        # as JSON text: a judge trained 2 steps may score NaN, which equals itself only there
        assert json.dumps(again[when]["map_following"]) == json.dumps(figures[when]["map_following"])
    assert json.dumps(again["real_image"]) == json.dumps(real)
    # the pictures behind the figures: the block's real window, then base and adapted per seed, 8 px white gaps
    strip_path = tmp_path / "strip.png"
    assert adapt_figures.main([str(out), "--judge", str(judge), "--strip", str(strip_path)]) == 0
    capsys.readouterr()
    w = figures["after"]["map_following"]["window"]
    h, wd = w["rows"][1] - w["rows"][0], w["cols"][1] - w["cols"][0]
    strip = np.asarray(Image.open(strip_path))
    assert strip.shape == (h, 9 * wd + 8 * 8, 3)
    with rasterio.open(pair[1]) as src:  # the area's image: the strip starts with its window, as it is
        area = src.read((1, 2, 3)).transpose(1, 2, 0)
    np.testing.assert_array_equal(strip[:, :wd], area[slice(*w["rows"]), slice(*w["cols"])])
    assert not np.array_equal(strip[:, wd + 8 : 2 * wd + 8], strip[:, :wd])  # then a generated image
    with pytest.raises(SystemExit):
        adapt_figures.main([str(out), "--strip", str(tmp_path / "no-judge.png")])
    assert not (tmp_path / "no-judge.png").exists()
    assert adapt_figures.main([str(TINY_MODEL), "--judge", str(judge)]) == 2  # not an adapted package
    assert "not an adapted package" in capsys.readouterr().err


def _copy_through(pkg, image) -> tuple:
    """(latent, decoded) of a real image through a package's own graphs."""
    z = pkg.encode(image)
    return z, pkg.decode(z)


@pytest.fixture(scope="module")
def model_range_image(pair):
    with rasterio.open(pair[1]) as src:
        return (src.read()[None, :3, :128, :128].astype(np.float32) / 127.5 - 1.0)


def test_a_tuned_decoder_is_kept_only_when_it_copies_the_held_out_block_better(pair, model_range_image, tmp_path, capsys):
    out = tmp_path / "adapted"
    assert adapt_main(args(pair, out, "--steps", "2", "--decoder-steps", "6", "--seed", "5")) == 0
    assert "decoder tuned 6 steps" in capsys.readouterr().out
    assert leftovers(tmp_path) == ["adapted"]
    a = json.loads((out / "model.json").read_text())["adaptation"]
    d = a["decoder"]
    psnr = d["held_out_reconstruction_psnr_db"]
    assert d["steps"] == 6 and d["kept"] == (psnr["tuned"] > psnr["base"])
    assert a["held_out_figures"]["after"]["reconstruction_psnr_db"] == (psnr["tuned"] if d["kept"] else psnr["base"])
    assert psnr["base"] == a["held_out_figures"]["before"]["reconstruction_psnr_db"]
    # the encoder and codebook are the base's either way; the decoder is the tuned one exactly when it was kept
    z_base, img_base = _copy_through(load_model_package(TINY_MODEL, "cpu"), model_range_image)
    z_new, img_new = _copy_through(load_model_package(out, "cpu"), model_range_image)
    np.testing.assert_allclose(z_new, z_base, atol=1e-4)
    assert np.allclose(img_new, img_base, atol=1e-4) != d["kept"]


def test_a_decoder_that_copies_worse_is_not_kept(pair, model_range_image, tmp_path, monkeypatch):
    """A tuned decoder made worse on purpose (its last layer's weights scaled): the package keeps the base's."""
    import model_export.adaptation.adapt as adapt_module

    real = adapt_module.tune_decoder

    def spoilt(*a, **k):
        tuned = real(*a, **k)
        name = [n for n in tuned["vq"] if n.startswith("decoder.conv_out.weight")][0]
        tuned["vq"] = {**tuned["vq"], name: tuned["vq"][name] * 3.0}
        return tuned

    monkeypatch.setattr(adapt_module, "tune_decoder", spoilt)
    out = tmp_path / "adapted"
    assert adapt_main(args(pair, out, "--steps", "2", "--decoder-steps", "2")) == 0
    a = json.loads((out / "model.json").read_text())["adaptation"]
    psnr = a["decoder"]["held_out_reconstruction_psnr_db"]
    assert not a["decoder"]["kept"] and psnr["tuned"] < psnr["base"]
    assert a["trained"].startswith("denoiser only: the tuned decoder")
    assert a["held_out_figures"]["after"]["reconstruction_psnr_db"] == psnr["base"]
    _, img_base = _copy_through(load_model_package(TINY_MODEL, "cpu"), model_range_image)
    _, img_new = _copy_through(load_model_package(out, "cpu"), model_range_image)
    np.testing.assert_allclose(img_new, img_base, atol=1e-4)


def test_the_decoders_crops_stay_clear_of_the_held_out_block(pair):
    from model_export.adaptation.decoder import crop_origins

    pkg = load_model_package(TINY_MODEL, "cpu")
    area = read_area(str(pair[0]), str(pair[1]), None, 1, pkg.scheme)
    held = choose_holdout(256, 256, 0.3, 2, pkg.multiple_of)
    size, margin = 32, 4 * 4  # the tiny config's autoencoder crop; HOLDOUT_MARGIN latent cells of 4 px
    origins = crop_origins(area, held, 4, size)
    grown = type(held)((held.rows[0] - margin, held.rows[1] + margin), (held.cols[0] - margin, held.cols[1] + margin))
    assert len(origins) > 20
    assert not [o for o in origins if grown.intersects((o[0], o[0] + size), (o[1], o[1] + size))]
    assert all(o[0] + size <= 256 and o[1] + size <= 256 for o in origins)

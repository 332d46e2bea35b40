"""python -m model_export.evaluation.holdout: the package's reconstruction PSNR on every source's held-out window."""

from __future__ import annotations

from pathlib import Path

import pytest

from model_export.evaluation.holdout import holdout_psnr, main
from model_export.training.errors import DataError

REPO = Path(__file__).resolve().parents[3]
DATA = ["data/train/oem", "data/train/loveda@loveda", "data/train/dubai@data/train/dubai/training_remap.json", "data/train/flair@flair"]


def test_one_row_per_held_out_window_of_the_default_config(tiny_model_dir, monkeypatch):
    monkeypatch.chdir(REPO)
    rows = holdout_psnr(tiny_model_dir, REPO / "model_export/configs/default.toml", DATA)
    assert [r["source"] for r in rows] == ["oem", "loveda", "dubai", "flair"]
    dubai = rows[2]
    assert dubai["stem"] == "tile3_part002" and dubai["size"] == [656, 680]  # whole latent cells of the 658x682 image
    for r in rows:
        assert 5 < r["psnr_db"] < 60
        assert len(r["band_offset"]) == 3 and r["psnr_offset_removed_db"] > 5


def test_the_tone_offset_is_what_a_tinted_copy_adds():
    """A copy that is the image plus a constant per band: the offset is found, and removing it gives the image back."""
    import numpy as np

    from model_export.evaluation.holdout import tone

    image = np.random.default_rng(0).integers(40, 200, (3, 32, 32)).astype(np.uint8)
    tinted = image + np.array([5, 12, 30], np.uint8)[:, None, None]
    offset, untinted = tone(tinted, image)
    np.testing.assert_allclose(offset, [5, 12, 30])
    np.testing.assert_array_equal(untinted, image)


def test_a_window_in_no_data_folder_is_named(tiny_model_dir, monkeypatch, capsys):
    monkeypatch.chdir(REPO)
    with pytest.raises(DataError, match="tile3_part002"):
        holdout_psnr(tiny_model_dir, REPO / "model_export/configs/default.toml", DATA[:2] + DATA[3:])
    assert main(["--model", str(tiny_model_dir), "--data", "data/train/oem"]) == 2
    assert "error:" in capsys.readouterr().err


def test_whole_windows_of_a_package_equal_its_training_run(tiny_run, tmp_path, monkeypatch):
    """--whole runs the package's graphs on the window at once; --autoencoder-run the same networks in PyTorch."""
    from model_export.export.package import export

    monkeypatch.chdir(REPO)
    export(tiny_run / "dm", tmp_path / "model")
    config = REPO / "model_export/configs/tiny.toml"
    (graphs,) = holdout_psnr(tmp_path / "model", config, ["data/train/oem"], whole=True)
    (torch_row,) = holdout_psnr(None, config, ["data/train/oem"], autoencoder_run=tiny_run / "ae")
    assert graphs["size"] == torch_row["size"] == [256, 256]
    assert graphs["psnr_db"] == pytest.approx(torch_row["psnr_db"], abs=0.02)


def test_autoencoder_run_must_be_an_autoencoder_stage(tiny_run, capsys, monkeypatch):
    monkeypatch.chdir(REPO)
    assert main(["--autoencoder-run", str(tiny_run / "dm"), "--data", "data/train/oem"]) == 2
    assert "not an autoencoder-stage checkpoint" in capsys.readouterr().err

"""The evaluation's metrics and its model-card update, on hand-made inputs."""

from __future__ import annotations

import numpy as np

from model_export.evaluation.model_card import END, START, psnr, to_uint8, update_card
from model_export.evaluation.segmentation import miou


def test_miou_ignores_unknown_and_absent_classes():
    truth = np.array([[0, 2, 2, 8]])
    pred = np.array([[5, 2, 8, 8]])
    mean, per_class = miou(pred, truth)
    # class 2: 1 hit of 2 -> 0.5; class 8: 1 hit, union 2 -> 0.5; code 0 and class 5 do not count.
    assert per_class == {2: 0.5, 8: 0.5} and mean == 0.5


def test_psnr_and_range_conversion():
    image = np.full((3, 4, 4), -1.0, np.float32)
    assert to_uint8(image).max() == 0 and to_uint8(-image).min() == 255
    a = np.zeros((4, 4, 3), np.uint8)
    assert abs(psnr(a, a + 1) - 48.13) < 0.01


def test_update_card_replaces_only_the_marked_section(tmp_path):
    card = tmp_path / "card.md"
    card.write_text(f"# Card\nkept\n{START}\nold figures\n{END}\nalso kept\n")
    update_card(card, f"{START}\nnew figures\n{END}")
    text = card.read_text()
    assert "old figures" not in text and "new figures" in text
    assert text.startswith("# Card\nkept\n") and text.endswith("also kept\n")


def test_judge_augmentation_changes_colours_not_layout():
    from model_export.evaluation.segmentation import photometric

    rng = np.random.default_rng(0)
    images = np.zeros((4, 3, 32, 32), np.float32)
    images[:, :, :, 16:] = 0.8  # a bright right half: the "layout"
    out = photometric(rng, images)
    assert out.shape == images.shape and out.dtype == np.float32
    assert out.min() >= -1.0 and out.max() <= 1.0
    assert not np.allclose(out, images)  # colours moved
    for x in out:  # the right half stays brighter than the left: the layout survives
        assert x[:, :, 20:].mean() > x[:, :, :12].mean() + 0.3


def test_judge_crops_come_from_the_redrawn_tiles_at_the_asked_share(small_data):
    from model_export.training.data import scan_folders
    from model_export.evaluation.segmentation import labelled_crops

    tiles = scan_folders(small_data)
    black = {t.stem: np.zeros((256, 256, 3), np.uint8) for t in tiles}  # an unmistakable "redrawing"
    rng = np.random.default_rng(0)
    images, labels = labelled_crops(rng, tiles, [], 64, 40, renders=black, render_share=1.0)
    assert np.all(images == -1.0) and labels.max() > 0  # every crop redrawn, labels untouched
    images, _ = labelled_crops(rng, tiles, [], 64, 40, renders=black, render_share=0.5)
    redrawn = np.all(images == -1.0, axis=(1, 2, 3))
    assert 8 <= redrawn.sum() <= 32  # about half
    images, _ = labelled_crops(rng, tiles, [], 64, 40)
    assert not np.all(images == -1.0, axis=(1, 2, 3)).any()  # without renders: real crops only


def test_judge_trains_on_tiles_redrawn_by_a_model_package(small_data, tmp_path):
    import json
    from pathlib import Path

    from model_export.training.data import load_tile, scan_folders
    from model_export.evaluation.segmentation import decoder_renderings, load, main

    tiny = Path(__file__).parents[2] / "data" / "tiny_model"
    tiles = scan_folders(small_data)
    renders = decoder_renderings(tiny, tiles, threads=1)
    for tile in tiles:
        real, _ = load_tile(tile)
        assert renders[tile.stem].shape == real.shape and renders[tile.stem].dtype == np.uint8
        assert not np.array_equal(renders[tile.stem], real)  # really passed through the autoencoder
    out = tmp_path / "judge"
    assert main(["--data", *small_data, "--out", str(out), "--max-steps", "3", "--threads", "1",
                 "--redrawn-by", str(tiny)]) == 0
    record = json.loads((out / "judge.json").read_text())
    assert record["steps"] == 3 and record["redrawn_by"] == str(tiny) and record["redrawn_share"] == 0.5
    load(out)  # the saved weights load into the judge


def test_card_table_gives_the_map_following_ratio_and_names_the_judge():
    from model_export.evaluation.model_card import card_table

    r = {"window": "w", "steps": 50, "eta": 1.0, "seeds": [0], "threads": 2, "rounds": 1, "reconstruction_psnr_db": 22.0,
         "judge": {"steps": 7, "augment": False, "redrawn_by": "models/x", "redrawn_share": 0.25},
         "miou_real": 0.4, "miou_real_rotated": 0.1, "miou_reconstruction": 0.3,
         "miou_reconstruction_rotated": 0.12, "timing": [],
         "generated": [{"guidance": 3.0, "miou_map": 0.24, "miou_rotated": 0.1},
                       {"guidance": 1.0, "miou_map": 0.05, "miou_rotated": 0.0}]}
    text = card_table(r)
    assert "| 3 | 0.240 | 0.100 | 2.40x |" in text and "| 1 | 0.050 | 0.000 | n/a |" in text
    assert "| eta |" not in text  # no sampler comparison asked for
    assert "(vs rotated: 0.120, 2.50x: what a generator" in text
    r["sampler"] = [{"guidance": 3.0, "eta": 0.0, "miou_map": 0.24, "miou_rotated": 0.1},
                    {"guidance": 3.0, "eta": 1.0, "miou_map": 0.18, "miou_rotated": 0.12}]
    text = card_table(r)
    assert "package's guidance scale (3)" in text
    assert "| 0 | 0.240 | 0.100 | 2.40x |" in text and "| 1 | 0.180 | 0.120 | 1.50x |" in text
    assert "7 steps on the real labelled tiles, 25% of its crops redrawn by the autoencoder of `models/x`)" in text


def test_judge_refuses_a_bad_share_or_model_folder(small_data, tmp_path, capsys):
    import pytest

    from model_export.evaluation.segmentation import main

    with pytest.raises(SystemExit) as exit_info:
        main(["--data", *small_data, "--out", str(tmp_path / "j"), "--redrawn-share", "1.5", "--max-steps", "1"])
    assert exit_info.value.code == 2 and "--redrawn-share is 1.5" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_info:
        main(["--data", *small_data, "--out", str(tmp_path / "j"), "--redrawn-by", str(tmp_path / "nope"), "--max-steps", "1"])
    assert exit_info.value.code == 2 and f"--redrawn-by {tmp_path / 'nope'} is not a usable model package" in capsys.readouterr().err
    assert not (tmp_path / "j").exists()  # nothing written

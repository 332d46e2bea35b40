"""The evaluation's metrics and its model-card update, on hand-made inputs."""

from __future__ import annotations

import numpy as np

from model_export.evaluate_model import END, START, psnr, to_uint8, update_card
from model_export.segmentation import miou


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
    from model_export.segmentation import photometric

    rng = np.random.default_rng(0)
    images = np.zeros((4, 3, 32, 32), np.float32)
    images[:, :, :, 16:] = 0.8  # a bright right half: the "layout"
    out = photometric(rng, images)
    assert out.shape == images.shape and out.dtype == np.float32
    assert out.min() >= -1.0 and out.max() <= 1.0
    assert not np.allclose(out, images)  # colours moved
    for x in out:  # the right half stays brighter than the left: the layout survives
        assert x[:, :, 20:].mean() > x[:, :, :12].mean() + 0.3

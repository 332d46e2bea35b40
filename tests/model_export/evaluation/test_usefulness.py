"""FC-Siam-diff and the scores of the usefulness test; one tiny end-to-end run on a generated dataset and LEVIR-CD."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from changeanywhere_qgis.engine.io import read_raster
from model_export.evaluation.usefulness import (best_threshold, evaluate_change_detection, image_difference, scores,
                                                train)
from model_export.networks.change_detection import FCSiamDiff

REPO = Path(__file__).resolve().parents[3]


@pytest.fixture(autouse=True)
def one_thread():
    """One torch thread: on a shared 2-core machine a second OpenMP thread mostly waits."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def test_scores_from_a_known_confusion():
    truth = np.array([1, 1, 1, 1, 0, 0, 0, 0, 0, 0], bool)
    pred = np.array([1, 1, 1, 0, 1, 0, 0, 0, 0, 0], bool)  # tp 3, fn 1, fp 1
    s = scores(pred, truth)
    assert s["precision"] == pytest.approx(0.75) and s["recall"] == pytest.approx(0.75)
    assert s["f1"] == pytest.approx(0.75) and s["iou"] == pytest.approx(3 / 5)
    assert scores(np.zeros(4, bool), np.zeros(4, bool))["f1"] == 0.0


def test_threshold_and_image_difference():
    a = np.zeros((1, 3, 8, 8), np.uint8)
    b = a.copy()
    b[0, :, :4] = 200
    d = image_difference(a, b)
    assert d.shape == (1, 8, 8) and d[0, 0, 0] == 200 and d[0, 7, 7] == 0
    truth = d > 100
    t = best_threshold(d, truth, np.arange(1, 256, 2, dtype=np.float32))
    assert scores(d > t, truth)["f1"] == 1.0


def test_fc_siam_diff_shapes():
    net = FCSiamDiff().eval()
    a, b = torch.randn(2, 3, 64, 64), torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        out = net(a, b)
        feats = net.encode(a)
    assert out.shape == (2, 1, 64, 64)
    assert [f.shape[1] for f in feats] == [16, 32, 64, 128]  # the original FC-Siam-diff widths


def test_training_learns_a_toy_change():
    rng = np.random.default_rng(0)
    a = rng.integers(90, 110, (16, 3, 32, 32)).astype(np.uint8)
    b = a.copy()
    y = np.zeros((16, 32, 32), bool)
    for i in range(16):  # a bright square appears
        r, c = rng.integers(0, 20, 2)
        b[i, :, r : r + 12, c : c + 12] = 250
        y[i, r : r + 12, c : c + 12] = True
    torch.manual_seed(0)
    net = FCSiamDiff((4, 8, 8, 16))
    info = train(net, a, b, y, epochs=8, max_minutes=1, batch=8, crop=32, lr=3e-3, log=lambda m: None)
    assert info["loss_last"] < info["loss_first"]


def test_zero_and_few_shot_on_generated_data_and_the_real_pairs(tmp_path, tiny_model_dir, houston_label_path):
    from changeanywhere_qgis.engine.dataset import DatasetSettings, generate_dataset

    ds = tmp_path / "ds"
    generate_dataset(houston_label_path, ds, DatasetSettings(count=6, tile=64, steps=1, seed=2), model=tiny_model_dir, workers=1)
    redrawn, shifted = [], []
    out = evaluate_change_detection([ds], {"levir-cd": REPO / "data" / "levir-cd", "whu-cd": REPO / "data" / "whu-cd"},
                                    epochs=1, max_minutes=1, widths=(4, 8, 8, 16), few_shot_k=(1, 3), few_shot_splits=2,
                                    few_shot_steps=2, redraw=lambda a: redrawn.append(a) or 255 - a,
                                    shift=lambda b, seed: shifted.append((b, seed)) or b // 2, log=lambda m: None)
    assert out["test_sets"]["levir-cd"]["pairs"] == 15 and out["test_sets"]["whu-cd"]["pairs"] == 12
    assert 0 < out["test_sets"]["whu-cd"]["changed_share"] < 0.5
    assert out["train"]["samples"] == 4 and out["threshold_samples"] == 2  # 6 samples: train 2, val 2, test 2
    assert len(redrawn) == 6  # every generated A redrawn
    # every generated B shifted once, by its own sample's seed: train and val first, then the test split
    records = {r["name"]: r["seed"] for r in map(json.loads, (ds / "manifest.jsonl").read_text().splitlines())}
    order = [n for split in ("train", "val", "test") for n in (ds / "list" / f"{split}.txt").read_text().split()]
    assert [seed for _, seed in shifted] == [records[Path(n).stem] for n in order]
    assert all(np.array_equal(b, read_raster(ds / "B" / n)[:3]) for (b, _), n in zip(shifted, order))
    assert set(out["train"]["variants"]) == {"real", "redrawn", "redrawn, B appearance-shifted"}
    for rows in out["zero_shot"].values():
        assert {"everything changed", "FC-Siam-diff, untrained", "FC-Siam-diff, trained on generated data (pre-event real)",
                "FC-Siam-diff, trained on generated data (pre-event redrawn)",
                "FC-Siam-diff, trained on generated data (pre-event redrawn, B appearance-shifted)"} <= set(rows)
        assert rows["everything changed"]["recall"] == 1.0
        for v in rows.values():
            assert 0 <= v["f1"] <= 1 and 0 <= v["iou"] <= v["f1"] + 1e-9
    few = out["few_shot"]["whu-cd"]
    assert set(few) == {"1", "3"}
    for k, methods in few.items():
        assert "from scratch" in methods and len(methods) == 4
        for m in methods.values():
            assert len(m["splits"]) == 2 and all(len(s["train_pairs"]) == int(k) for s in m["splits"])
            assert all(s["test_pairs"] == 12 - int(k) for s in m["splits"])  # the k training pairs are never scored
            assert 0 <= m["f1_mean"] <= 1
    assert out["figure"].dtype == np.uint8 and out["figure"].shape[0] == 3


def test_several_nets_per_arm_are_averaged_and_keep_their_spread(tmp_path, tiny_model_dir, houston_label_path):
    """One net's F1 on a dozen real pairs moves with its seed: with nets_per_arm=2 every figure is the mean of two nets."""
    from changeanywhere_qgis.engine.dataset import DatasetSettings, generate_dataset

    ds = tmp_path / "ds"
    generate_dataset(houston_label_path, ds, DatasetSettings(count=6, tile=64, steps=1, seed=2), model=tiny_model_dir, workers=1)
    kwargs = dict(epochs=1, max_minutes=1, widths=(4, 8, 8, 16), few_shot_k=(3,), few_shot_splits=2, few_shot_steps=2,
                  stored="redrawn, B appearance-shifted", log=lambda m: None)
    test_sets = {"whu-cd": REPO / "data" / "whu-cd"}
    two = evaluate_change_detection([ds], test_sets, nets_per_arm=2, seed=5, **kwargs)
    one = evaluate_change_detection([ds], test_sets, seed=6, **kwargs)  # the second net of `two`, alone
    assert two["train"]["net_seeds"] == [5, 6] and one["train"]["net_seeds"] == [6]
    assert set(two["train"]["variants"]) == {"redrawn, B appearance-shifted"}  # the stored arm, named as made
    assert [n["steps"] for n in two["train"]["variants"]["redrawn, B appearance-shifted"]["per_net"]] == [1, 1]
    rows, alone = two["zero_shot"]["whu-cd"], one["zero_shot"]["whu-cd"]
    trained = "FC-Siam-diff, trained on generated data (pre-event redrawn, B appearance-shifted)"
    for method in (trained, "FC-Siam-diff, untrained"):
        f1s = rows[method]["f1_per_net"]
        assert len(f1s) == 2 and f1s[1] == pytest.approx(alone[method]["f1"])  # seeded: the same net again
        assert rows[method]["f1"] == pytest.approx(np.mean(f1s)) and rows[method]["f1_std"] == pytest.approx(np.std(f1s))
    # the same for every net: no spread
    assert rows["everything changed"]["f1_std"] == 0 and rows["image difference (threshold from the generated data)"]["f1_std"] == 0
    few = two["few_shot"]["whu-cd"]["3"]
    for method, m in few.items():
        assert [s["net_seed"] for s in m["splits"]] == [5, 5, 6, 6]  # both nets on the same two splits
        assert [s["train_pairs"] for s in m["splits"][:2]] == [s["train_pairs"] for s in m["splits"][2:]]
        assert m["f1_mean"] == pytest.approx(np.mean([s["f1"] for s in m["splits"]]))
    with pytest.raises(ValueError, match="at least 1"):
        evaluate_change_detection([ds], test_sets, nets_per_arm=0, **kwargs)


def test_few_shot_splits_are_seeded_and_distinct():
    from model_export.evaluation.usefulness import _few_shot_splits

    a, b = _few_shot_splits(12, 3, 4, seed=0), _few_shot_splits(12, 3, 4, seed=0)
    assert a == b and all(len(s) == 3 == len(set(s)) for s in a) and len({tuple(s) for s in a}) > 1


def test_dataset_report_names_its_judge_and_scores_against_rotated_maps(tmp_path, tiny_model_dir, houston_label_path, small_data):
    """The torch side of `evaluate`: a judge trained on tiles redrawn by the dataset's model, named in the report."""
    from changeanywhere_qgis.engine.dataset import DatasetSettings, generate_dataset
    from model_export.evaluation.dataset_report import EvaluateSettings, evaluate_dataset
    from model_export.evaluation import segmentation

    ds = tmp_path / "ds"
    generate_dataset(houston_label_path, ds, DatasetSettings(count=6, tile=64, steps=1, seed=2, appearance_shift=True),
                     model=tiny_model_dir, workers=1)
    judge = tmp_path / "judge"
    assert segmentation.main(["--data", *small_data, "--out", str(judge), "--max-steps", "2", "--threads", "1",
                              "--redrawn-by", str(tiny_model_dir)]) == 0
    report = tmp_path / "q" / "quality.md"
    result = evaluate_dataset(ds, report=report, settings=EvaluateSettings(
        segmentation=str(judge), cd_epochs=1, max_minutes=0.2, threads=1, command="x", few_shot_k=(1,), few_shot_splits=1,
        few_shot_steps=1, nets_per_arm=2, seed=3))
    seg = result["results"]["datasets"]["ds"]["segmentation"]
    assert seg["checkpoint"] == str(judge) and not seg["trained_now"]
    assert 0.0 <= seg["post_generated"]["miou"] <= 1.0 and 0.0 <= seg["post_generated_vs_rotated_map"]["miou"] <= 1.0
    text = report.read_text()
    assert f"2 steps on the real labelled tiles, 50% of its crops redrawn by the autoencoder of `{tiny_model_dir}`" in text
    assert "### Zero-shot" in text and "### Few-shot" in text and "**whu-cd**" in text and "| 1 |" in text
    # two nets per arm: each one's training named, the means' spread shown where the nets differ
    assert "2 nets per arm, each from its own initial weights and crops (seeds 3-4)" in text
    # made from a map alone with B shifted: pre-event images generated; its arm says so (it was called "real")
    assert "Pre-event images generated, B appearance-shifted (seed 3): " in text
    assert "Pre-event images generated, B appearance-shifted (seed 4): " in text
    assert "F1 mean ± std over the splits and nets." in text
    zero = result["results"]["change_detection"]["zero_shot"]["whu-cd"]
    spread = [v for v in zero.values() if v["f1_std"] > 0]
    assert all(f"| {v['f1']:.3f} ± {v['f1_std']:.3f} |" in text for v in spread)
    assert f"| everything changed | {zero['everything changed']['f1']:.3f} |" in text
    # --few-shot with no k: the report says it was not run instead of printing empty tables
    from model_export.evaluation.dataset_report import render

    r = json.loads(json.dumps(result["results"]))
    r["change_detection"]["few_shot"] = {name: {} for name in r["change_detection"]["few_shot"]}
    empty = render(r, EvaluateSettings(command="x"), report, tmp_path / "q" / "figures")
    assert "Not run (`--few-shot` was given no k)." in empty and "| k |" not in empty

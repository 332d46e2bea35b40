"""The PyTorch side of ``python -m model_export.evaluation.dataset_report``: two judges of generated datasets.

1. Usefulness (the paper's claims in miniature): FC-Siam-diff (Daudt et al., ICIP 2018), trained only on
   generated datasets in the LEVIR-CD layout, then tested zero-shot on real change pairs (F1, IoU, precision,
   recall over all test pixels) against the same network untrained, image differencing and "everything changed"
   (every threshold picked on the generated data, never on the real pairs); and few-shot: pre-trained on the
   generated data and fine-tuned on k real pairs, against the same network trained on those k pairs alone.
2. Map following: the segmentation net of ``model_export/evaluation/segmentation.py`` (trained on real labelled
   tiles) labels images; :func:`segmentation_miou` scores them against their maps.

    python -m model_export.evaluation.usefulness --dataset DATASET [DATASET ...] --test-sets data/levir-cd data/whu-cd
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from changeanywhere_qgis.engine.io import read_raster
from model_export.networks.change_detection import FCSiamDiff


# ----------------------------------------------------------------------------------------------
# data


def _to_tensor(image: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(image.astype(np.float32) / 127.5 - 1.0)


def load_levir_folder(root: Path, names: list[str] | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[str]]:
    """(A, B uint8 [N, 3, H, W], change bool [N, H, W], names) of a LEVIR-CD layout folder."""
    root = Path(root)
    if names is None:
        names = sorted(p.name for p in (root / "A").iterdir() if p.suffix.lower() in (".png", ".tif", ".tiff", ".jpg"))
    if not names:
        raise FileNotFoundError(f"No images in {root / 'A'}.")
    a = np.stack([read_raster(root / "A" / n)[:3] for n in names])
    b = np.stack([read_raster(root / "B" / n)[:3] for n in names])
    label = np.stack([read_raster(root / "label" / n)[0] > 127 for n in names])
    return a, b, label, names


def dataset_split(root: Path, split: str) -> list[str]:
    path = Path(root) / "list" / f"{split}.txt"
    return [line.strip() for line in path.read_text().splitlines() if line.strip()] if path.is_file() else []


def _augment(a: np.ndarray, b: np.ndarray, y: np.ndarray, rng: np.random.Generator, crop: int):
    n, _, h, w = a.shape
    out_a, out_b, out_y = [], [], []
    for i in range(n):
        r, c = int(rng.integers(0, h - crop + 1)), int(rng.integers(0, w - crop + 1))
        xa, xb, xy = a[i, :, r : r + crop, c : c + crop], b[i, :, r : r + crop, c : c + crop], y[i, r : r + crop, c : c + crop]
        k = int(rng.integers(4))
        xa, xb, xy = np.rot90(xa, k, (1, 2)), np.rot90(xb, k, (1, 2)), np.rot90(xy, k)
        if rng.random() < 0.5:
            xa, xb, xy = xa[:, :, ::-1], xb[:, :, ::-1], xy[:, ::-1]
        if rng.random() < 0.5:  # change is symmetric in time
            xa, xb = xb, xa
        out_a.append(np.ascontiguousarray(xa)), out_b.append(np.ascontiguousarray(xb)), out_y.append(np.ascontiguousarray(xy))
    return np.stack(out_a), np.stack(out_b), np.stack(out_y)


# ----------------------------------------------------------------------------------------------
# scores


def confusion(pred: np.ndarray, truth: np.ndarray) -> dict[str, int]:
    pred, truth = pred.astype(bool), truth.astype(bool)
    return {"tp": int((pred & truth).sum()), "fp": int((pred & ~truth).sum()), "fn": int((~pred & truth).sum()),
            "tn": int((~pred & ~truth).sum())}


def scores(pred: np.ndarray, truth: np.ndarray) -> dict[str, float]:
    """F1, IoU, precision and recall of the change class over all pixels (as LEVIR-CD papers report them)."""
    c = confusion(pred, truth)
    tp, fp, fn = c["tp"], c["fp"], c["fn"]
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    iou = tp / (tp + fp + fn) if tp + fp + fn else 0.0
    return {"f1": f1, "iou": iou, "precision": precision, "recall": recall}


def best_threshold(score: np.ndarray, truth: np.ndarray, candidates: np.ndarray) -> float:
    """The threshold of ``score > t`` with the highest F1 on (generated) data."""
    truth = truth.astype(bool)
    f1s = [scores(score > t, truth)["f1"] for t in candidates]
    return float(candidates[int(np.argmax(f1s))])


def image_difference(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Per-pixel mean absolute RGB difference, [N, H, W] float32 in 0..255."""
    return np.abs(a.astype(np.float32) - b.astype(np.float32)).mean(axis=1)


@torch.no_grad()
def predict(net: nn.Module, a: np.ndarray, b: np.ndarray, batch: int = 4) -> np.ndarray:
    """Change probabilities [N, H, W] (H, W multiples of 16)."""
    net.eval()
    out = []
    for i in range(0, len(a), batch):
        out.append(torch.sigmoid(net(_to_tensor(a[i : i + batch]), _to_tensor(b[i : i + batch])))[:, 0].numpy())
    return np.concatenate(out)


def _loss(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    bce = F.binary_cross_entropy_with_logits(logits, target)
    p = torch.sigmoid(logits)
    dice = 1 - (2 * (p * target).sum() + 1) / (p.sum() + target.sum() + 1)
    return bce + dice


def train(net: nn.Module, a: np.ndarray, b: np.ndarray, y: np.ndarray, *, epochs: int, max_minutes: float | None,
          seed: int = 0, batch: int = 8, crop: int = 128, lr: float = 1e-3, log=print) -> dict:
    """Adam, BCE + Dice, random crops, rotations, flips and A/B swaps; stops at ``epochs`` or the time limit."""
    rng = np.random.default_rng(seed)
    crop = min(crop, a.shape[-1], a.shape[-2])
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    steps_per_epoch = max(1, len(a) // batch)
    total = epochs * steps_per_epoch
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=max(total, 2), pct_start=0.1)
    start = time.monotonic()
    step, losses = 0, []
    net.train()
    stopped_by = "epochs"
    for epoch in range(epochs):
        order = rng.permutation(len(a))
        for k in range(steps_per_epoch):
            idx = np.sort(order[k * batch : (k + 1) * batch])
            xa, xb, xy = _augment(a[idx], b[idx], y[idx], rng, crop)
            loss = _loss(net(_to_tensor(xa), _to_tensor(xb))[:, 0], torch.from_numpy(xy.astype(np.float32)))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            if step < total - 1:
                sched.step()
            step += 1
            losses.append(loss.item())
        log(f"change detection: epoch {epoch + 1}/{epochs}, loss {np.mean(losses[-steps_per_epoch:]):.3f}")
        if max_minutes and time.monotonic() - start > 60 * max_minutes:
            stopped_by = "time limit"
            break
    return {"steps": step, "epochs_run": epoch + 1, "stopped_by": stopped_by, "seconds": time.monotonic() - start,
            "loss_first": losses[0] if losses else None, "loss_last": float(np.mean(losses[-steps_per_epoch:])) if losses else None}


ZERO_SHOT_GRID = np.linspace(0.05, 0.95, 19)  # thresholds tried on the generated test split
FEW_SHOT_THRESHOLD = 0.5  # few-shot nets (fine-tuned and from scratch alike): no pair left to pick one on


def _generated(datasets: list[Path], split_names: tuple[str, ...]) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[str]]:
    """The named splits of several generated datasets in the LEVIR-CD layout, stacked."""
    parts = []
    for root in datasets:
        names = [n for split in split_names for n in dataset_split(root, split)]
        if names:
            parts.append(load_levir_folder(root, names))
    if not parts:
        raise FileNotFoundError(f"No {'/'.join(split_names)} samples in {', '.join(map(str, datasets))}.")
    return (np.concatenate([q[0] for q in parts]), np.concatenate([q[1] for q in parts]), np.concatenate([q[2] for q in parts]),
            [n for q in parts for n in q[3]])


def _generated_seeds(datasets: list[Path], split_names: tuple[str, ...]) -> list[int]:
    """Each generated sample's seed (its manifest line), in ``_generated``'s order."""
    seeds = []
    for root in datasets:
        lines = (json.loads(line) for line in (root / "manifest.jsonl").read_text().splitlines() if line.strip())
        by_name = {r["name"]: int(r["seed"]) for r in lines}
        seeds += [by_name[Path(n).stem] for split in split_names for n in dataset_split(root, split)]
    return seeds


def _b_shifted(variant: tuple, shift, datasets: list[Path]) -> tuple:
    """A variant's six arrays with every image B shifted by ``shift`` with its own sample's seed (``datasets``: the
    folders its samples were read from, in ``_generated``'s order)."""
    a_train, b_train, y_train, a_pick, b_pick, y_pick = variant
    shifted = lambda b, seeds: np.stack([shift(x, s) for x, s in zip(b, seeds)])  # noqa: E731
    return (a_train, shifted(b_train, _generated_seeds(datasets, ("train", "val"))), y_train,
            a_pick, shifted(b_pick, _generated_seeds(datasets, ("test",))), y_pick)


def _zero_shot(score: np.ndarray, truth: np.ndarray, t: float) -> dict:
    """Scores on a real test set at a threshold picked on the generated test split."""
    return {**scores(score > t, truth), "threshold": float(t), "prediction": score > t}


def _few_shot_splits(n: int, k: int, splits: int, seed: int) -> list[list[int]]:
    """``splits`` random choices of k training pairs out of n (the rest are the test pairs), fixed by the seed."""
    rng = np.random.default_rng([seed, n, k])
    return [sorted(rng.choice(n, size=k, replace=False).tolist()) for _ in range(splits)]


def evaluate_change_detection(datasets, test_sets: dict, *, epochs: int = 20, max_minutes: float | None = 10.0, seed: int = 0,
                              threads: int | None = None, widths=(16, 32, 64, 128), few_shot_k=(1, 3, 5), few_shot_splits: int = 3,
                              few_shot_steps: int = 150, redraw=None, shift=None, nets_per_arm: int = 1, stored: str = "real",
                              baselines: dict | None = None, arms: dict | None = None, shifted_arms: dict | None = None,
                              shift_generated: bool = True, cache_dir=None, log=print) -> dict:
    """Is the generated data useful? FC-Siam-diff trained only on the generated datasets, tested on real pairs.

    ``datasets``: generated datasets (LEVIR-CD layout): train and val splits train, the test split picks thresholds.
    ``test_sets``: {name: folder of real A/B/label pairs}. ``stored``: how the datasets' own pre-event images were made
    (their arm's name: "real", the engine's default since check U5, or e.g. "redrawn, B appearance-shifted").
    ``redraw``: None, or a function uint8 [3,H,W] -> uint8 [3,H,W] (the model's autoencoder copy): then a second net
    is trained with every generated pre-event image redrawn by it, as ``--pre-event redrawn`` would have made them (the
    post-event images are the same). ``shift``: None, or a function (uint8 [3,H,W] image B, the sample's seed) -> image
    B as ``dataset --appearance-shift`` would have made it; then one more net is trained with every generated B
    shifted, on the last variant's pre-event images (``shift_generated=False``: not for the generated datasets, only for
    ``shifted_arms``). ``baselines``: {name: [datasets in the LEVIR-CD layout made without
    the model, e.g. by ``python -m model_export.evaluation.baselines``]}: one more arm each, trained and judged exactly as
    the generated arms (its own train/val splits, its threshold picked on its own test split). ``arms``: {name: [datasets
    generated another way, e.g. with ``--post-event inpaint``]}: arms trained the same way on their own samples, but
    reported among the generated arms (``name`` says how they were made, e.g. "inpaint (pre-event real)").
    ``shifted_arms``: {name of one of ``arms``: the name of its shifted copy, e.g. "inpaint (pre-event real, B
    appearance-shifted)"}: that arm once more with every post-event image shifted by ``shift`` (its samples' own draws).

    ``cache_dir``: a folder of one JSON file per net (``net_cache.py``): a net whose file matches (same arm, seed, data
    identity and settings) is not trained again; every net trained now writes its file as soon as its figures are known.

    Zero-shot, per test set: the trained net(s), the same net untrained (same initial weights), image differencing
    (threshold from the generated data) and "everything changed". Few-shot, per test set and k: for each of
    ``few_shot_splits`` random splits, k real pairs train and the rest test; the net pre-trained on generated data
    is fine-tuned on the k pairs, and a net from the same initial weights trains on them from scratch, for the same
    ``few_shot_steps`` steps; both are scored at the threshold FEW_SHOT_THRESHOLD.

    ``nets_per_arm``: how many times all of that is done, each time from other initial weights and crops (seeds
    ``seed``, ``seed + 1``, ...; the few-shot splits stay the same): one net's F1 on a dozen real pairs moves by
    several points with its seed, so the figures are means over the nets, with their spread.
    """
    if threads:
        torch.set_num_threads(threads)
    if nets_per_arm < 1:
        raise ValueError(f"nets_per_arm must be at least 1, not {nets_per_arm}")
    datasets = [Path(d) for d in ([datasets] if isinstance(datasets, (str, Path)) else datasets)]
    ta, tb, ty, train_names = _generated(datasets, ("train", "val"))
    pa, pb, py, pick_names = _generated(datasets, ("test",))
    # name: (A train, B train, label train, A threshold-picking, B threshold-picking, label threshold-picking)
    variants = {stored: (ta, tb, ty, pa, pb, py)}
    if redraw is not None:
        log("redrawing the generated pre-event images with the model's autoencoder")
        variants["redrawn"] = (np.stack([redraw(x) for x in ta]), tb, ty, np.stack([redraw(x) for x in pa]), pb, py)
    if shifted_arms and shift is None:
        raise ValueError("shifted_arms needs the shift function")
    if shift is not None and shift_generated:
        log("shifting the generated post-event images' appearance (the samples' own draws)")
        last = list(variants)[-1]  # its pre-event images; every variant so far has the stored B and labels
        variants[f"{last}, B appearance-shifted"] = _b_shifted(variants[last], shift, datasets)
    for name, folders in (baselines or {}).items():
        variants[BASELINE + name] = (*_generated([Path(f) for f in folders], ("train", "val"))[:3],
                                     *_generated([Path(f) for f in folders], ("test",))[:3])
    for name, folders in (arms or {}).items():
        folders = [Path(f) for f in folders]
        variants[ARM + name] = (*_generated(folders, ("train", "val"))[:3], *_generated(folders, ("test",))[:3])
        if name in (shifted_arms or {}):
            log(f"shifting the post-event images' appearance of {name} (the samples' own draws)")
            variants[ARM + shifted_arms[name]] = _b_shifted(variants[ARM + name], shift, folders)
    real = {name: load_levir_folder(Path(folder)) for name, folder in test_sets.items()}
    cache, keys = None, None
    if cache_dir is not None:
        from .net_cache import NetCache, folders_identity, test_set_identity

        settings = {"epochs": epochs, "max_minutes": max_minutes, "widths": list(widths), "few_shot_k": list(few_shot_k),
                    "few_shot_splits": few_shot_splits, "few_shot_steps": few_shot_steps, "split_seed": seed,
                    "test_sets": {name: test_set_identity(folder) for name, folder in test_sets.items()}}
        generated = folders_identity(datasets)
        keys = {v: {**settings, "arm": v, "data": generated} for v in variants}  # redrawn and shifted: the stored samples, made over
        keys |= {BASELINE + n: {**settings, "arm": BASELINE + n, "data": folders_identity(f)} for n, f in (baselines or {}).items()}
        keys |= {ARM + n: {**settings, "arm": ARM + n, "data": folders_identity(f)} for n, f in (arms or {}).items()}
        keys |= {ARM + shifted: {**settings, "arm": ARM + shifted, "data": folders_identity(arms[n])}
                 for n, shifted in (shifted_arms or {}).items()}
        # the untrained net's and image differencing's thresholds are picked on the first arm's test split
        keys[REFERENCE] = {**settings, "arm": REFERENCE, "pick": stored, "data": generated}
        cache = NetCache(cache_dir)

    net_seeds = [seed + i for i in range(nets_per_arm)]
    runs = []
    for i, net_seed in enumerate(net_seeds):
        if nets_per_arm > 1:
            log(f"change-detection nets of seed {net_seed} ({i + 1} of {nets_per_arm})")
        runs.append(_one_seed(variants, real, net_seed=net_seed, split_seed=seed, epochs=epochs, max_minutes=max_minutes,
                              widths=widths, few_shot_k=few_shot_k, few_shot_splits=few_shot_splits, few_shot_steps=few_shot_steps,
                              log=log, cache=cache, keys=None if keys is None else
                              {v: {**key, "net_seed": net_seed} for v, key in keys.items()}))
    train_info = {v: runs[0]["train"][v] | ({"per_net": [r["train"][v] for r in runs]} if nets_per_arm > 1 else {})
                  for v in variants}
    return {
        "zero_shot": {name: {m: _mean_over_nets([r["zero_shot"][name][m] for r in runs]) for m in runs[0]["zero_shot"][name]}
                      for name in real},
        "few_shot": {name: {k: {m: _few_shot_summary([s for r in runs for s in r["few_shot"][name][k][m]]) for m in methods}
                            for k, methods in runs[0]["few_shot"][name].items()} for name in real},
        "few_shot_settings": {"k": list(few_shot_k), "splits": few_shot_splits, "steps": few_shot_steps, "threshold": FEW_SHOT_THRESHOLD},
        "train": {"samples": len(train_names), "datasets": [str(d) for d in datasets], "tile": int(ta.shape[-1]), "widths": list(widths),
                  "epochs": epochs, "max_minutes": max_minutes, "crop": min(128, ta.shape[-1]), "variants": train_info,
                  "net_seeds": net_seeds, "baselines": {name: [str(f) for f in folders] for name, folders in (baselines or {}).items()},
                  "arms": {name: [str(f) for f in folders] for name, folders in (arms or {}).items()},
                  "shifted_arms": dict(shifted_arms or {})},
        "threshold_samples": len(pick_names),
        "test_sets": {name: {"pairs": len(v[3]), "path": str(test_sets[name]), "changed_share": float(v[2].mean())} for name, v in real.items()},
        "figure": runs[0]["figure"],  # None when the first arm's first net was read from the cache
        "figure_columns": ["A (real)", "B (real)", "truth", "FC-Siam-diff (generated data)", "image difference"],
    }


BASELINE = "baseline: "  # the variants of the baseline arms (no model) are named "baseline: copy-paste", ...
ARM = "arm: "  # more generated arms, made another way: "arm: inpaint (pre-event real)", ...


def _trained_on(variant: str) -> str:
    """What a net of this arm was trained on, as the report's rows name it."""
    if variant.startswith(BASELINE):
        return f"the {variant[len(BASELINE):]} baseline (no model)"
    if variant.startswith(ARM):
        return f"generated data, {variant[len(ARM):]}"
    return f"generated data (pre-event {variant})"


def _train_arm_net(variant: str, untrained: nn.Module, data: tuple, *, widths, epochs: int, max_minutes, net_seed: int,
                   log) -> tuple[nn.Module, dict]:
    """One arm's net from the seed's shared initial weights, trained on the arm's train and val samples."""
    a_train, b_train, y_train = data[:3]
    net = FCSiamDiff(widths)
    net.load_state_dict(untrained.state_dict())  # the same initial weights for every net
    log(f"training FC-Siam-diff on {_trained_on(variant)}")
    info = {**train(net, a_train, b_train, y_train, epochs=epochs, max_minutes=max_minutes, seed=net_seed, log=log),
            "samples": len(a_train)}
    return net, info


def _method_figures(score, pick: tuple, real: dict, grid=ZERO_SHOT_GRID) -> tuple[dict, dict]:
    """Zero-shot rows of one method on every test set at its threshold picked on ``pick`` (A, B, label); and the
    predictions, for the figure."""
    t = best_threshold(score(pick[0], pick[1]), pick[2], grid)
    rows = {name: _zero_shot(score(la, lb), ly, t) for name, (la, lb, ly, _) in real.items()}
    return ({name: {k: v for k, v in r.items() if k != "prediction"} for name, r in rows.items()},
            {name: r["prediction"] for name, r in rows.items()})


def _few_shot_runs(start: nn.Module, real: dict, *, widths, net_seed: int, split_seed: int, few_shot_k, few_shot_splits: int,
                   few_shot_steps: int) -> dict:
    """{test set: {k: [one run per split]}}: the net ``start`` fine-tuned on k real pairs, scored on the others."""
    few: dict = {}
    for name, (la, lb, ly, names) in real.items():
        few[name] = {}
        for k in few_shot_k:
            if k >= len(names):
                continue
            runs = []
            for split in _few_shot_splits(len(names), k, few_shot_splits, split_seed):
                rest = [i for i in range(len(names)) if i not in split]
                net = FCSiamDiff(widths)
                net.load_state_dict(start.state_dict())
                # epochs of one step each: few_shot_steps steps on the k pairs, however small k is
                train(net, la[split], lb[split], ly[split], epochs=few_shot_steps, max_minutes=None, seed=net_seed, batch=len(split),
                      log=lambda m: None)
                prob = predict(net, la[rest], lb[rest])
                runs.append({**scores(prob > FEW_SHOT_THRESHOLD, ly[rest]), "train_pairs": [names[i] for i in split],
                             "test_pairs": len(rest), "net_seed": net_seed})
            few[name][str(k)] = runs
    return few


REFERENCE = "reference"  # the per-seed figures that no arm owns: the untrained net, image differencing, trained from scratch


def _one_seed(variants: dict, real: dict, *, net_seed: int, split_seed: int, epochs: int, max_minutes, widths,
              few_shot_k, few_shot_splits: int, few_shot_steps: int, log, cache=None, keys: dict | None = None) -> dict:
    """Zero- and few-shot for one set of nets (one per variant) from the initial weights of ``net_seed``.

    ``cache`` (a NetCache) and ``keys`` ({variant or REFERENCE: key}): each net's figures are read from the cache when
    its key matches, else the net is trained and its figures written there as soon as they are known."""
    torch.manual_seed(net_seed)
    untrained = FCSiamDiff(widths)
    fs = dict(widths=widths, net_seed=net_seed, split_seed=split_seed, few_shot_k=few_shot_k, few_shot_splits=few_shot_splits,
              few_shot_steps=few_shot_steps)
    first = next(iter(variants))
    pick = variants[first][3:]  # the stored pre- and post-event images (and labels) of the generated test split
    per_net, prediction = {}, None
    for variant, data in variants.items():
        key = (keys or {}).get(variant)
        figures = cache.load(variant, net_seed, key) if cache is not None and key is not None else None
        if figures is not None:
            log(f"FC-Siam-diff on {_trained_on(variant)}, seed {net_seed}: figures read from {cache.folder}")
        else:
            net, info = _train_arm_net(variant, untrained, data, widths=widths, epochs=epochs, max_minutes=max_minutes,
                                       net_seed=net_seed, log=log)
            # each arm's net picks its threshold on its own arm's test split (a baseline's on the baseline's)
            zero, predictions = _method_figures(lambda a, b, n=net: predict(n, a, b), data[3:], real)
            if variant == first:
                prediction = next(iter(predictions.values()))[:4]
            log(f"few-shot runs of the net trained on {_trained_on(variant)}")
            figures = {"train": info, "zero_shot": zero, "few_shot": _few_shot_runs(net, real, **fs)}
            if cache is not None and key is not None:
                cache.save(variant, net_seed, key, figures)
        per_net[variant] = figures

    key = (keys or {}).get(REFERENCE)
    reference = cache.load(REFERENCE, net_seed, key) if cache is not None and key is not None else None
    if reference is None or prediction is not None:  # the figure needs image differencing's predictions too
        untrained_rows, _ = _method_figures(lambda a, b: predict(untrained, a, b), pick, real)
        difference_rows, difference = _method_figures(image_difference, pick, real, np.arange(1, 256, 2, dtype=np.float32))
        if reference is None:
            reference = {"untrained": untrained_rows, "difference": difference_rows,
                         "few_shot": _few_shot_runs(untrained, real, **fs)}
            if cache is not None and key is not None:
                cache.save(REFERENCE, net_seed, key, reference)

    zero = {}
    for name, (la, lb, ly, _) in real.items():
        rows = {f"FC-Siam-diff, trained on {_trained_on(v)}": per_net[v]["zero_shot"][name] for v in variants}
        rows["FC-Siam-diff, untrained"] = reference["untrained"][name]
        rows["image difference (threshold from the generated data)"] = reference["difference"][name]
        rows["everything changed"] = scores(np.ones_like(ly), ly)
        zero[name] = rows
    few = {name: {k: {**{f"pre-trained on {_trained_on(v)}, fine-tuned": per_net[v]["few_shot"][name][k] for v in variants},
                      "from scratch": runs}
                  for k, runs in reference["few_shot"][name].items()} for name in real}
    figure = None
    if prediction is not None:  # the first arm's net was trained now (a cached one keeps the figure already written)
        la, lb, ly, _ = next(iter(real.values()))
        figure = _figure(la[:4], lb[:4], ly[:4], prediction, next(iter(difference.values()))[:4])
    return {"zero_shot": zero, "few_shot": few, "train": {v: per_net[v]["train"] for v in variants}, "figure": figure}


def _mean_over_nets(rows: list[dict]) -> dict:
    """One zero-shot row from each net's: the mean of every score; with several nets, each one's F1 and their spread."""
    out = {key: float(np.mean([r[key] for r in rows])) for key in rows[0]}
    if len(rows) > 1:
        out |= {"f1_std": float(np.std([r["f1"] for r in rows])), "f1_per_net": [r["f1"] for r in rows]}
    return out


def _few_shot_summary(runs: list[dict]) -> dict:
    return {"f1_mean": float(np.mean([r["f1"] for r in runs])), "f1_std": float(np.std([r["f1"] for r in runs])),
            "iou_mean": float(np.mean([r["iou"] for r in runs])), "splits": runs}


def _figure(a, b, truth, pred, diff) -> np.ndarray:
    rows = []
    gap = np.full((3, a.shape[2], 4), 255, np.uint8)
    as_rgb = lambda m: np.repeat((m.astype(np.uint8) * 255)[None], 3, 0)  # noqa: E731
    for i in range(len(a)):
        row = [a[i], b[i], as_rgb(truth[i]), as_rgb(pred[i]), as_rgb(diff[i])]
        rows.append(np.concatenate([x for r in row for x in (r, gap)][:-1], axis=2))
        rows.append(np.full((3, 4, rows[-1].shape[2]), 255, np.uint8))
    return np.concatenate(rows[:-1], axis=1)


# ----------------------------------------------------------------------------------------------
# segmentation judge (the network of model_export/evaluation/segmentation.py)


def train_segmentation(out_dir: Path, data: list[str], max_minutes: float, seed: int = 0, threads: int = 2,
                       redrawn_by: str | None = None) -> Path:
    from model_export.evaluation import segmentation

    out_dir = Path(out_dir)
    if not (out_dir / "segmentation.pt").is_file():
        extra = ["--redrawn-by", str(redrawn_by)] if redrawn_by and Path(redrawn_by, "model.json").is_file() else []
        segmentation.main(["--data", *data, "--out", str(out_dir), "--max-minutes", str(max_minutes),
                           "--seed", str(seed), "--threads", str(threads), *extra])
    return out_dir


def segmentation_miou(checkpoint_dir: Path, pairs) -> dict:
    """mIoU (classes present in each map, nodata ignored) of the segmentation net on (image uint8 [3,H,W], map) pairs."""
    from model_export.evaluation import segmentation

    net = segmentation.load(Path(checkpoint_dir))
    values, per_class = [], {}
    for image, labels in pairs:
        pred = segmentation.predict(net, image.astype(np.float32) / 127.5 - 1.0)
        m, ious = segmentation.miou(pred, labels)
        if not np.isnan(m):
            values.append(m)
        for code, v in ious.items():
            per_class.setdefault(code, []).append(v)
    return {"miou": float(np.mean(values)) if values else float("nan"), "images": len(values),
            "per_class": {int(c): float(np.mean(v)) for c, v in sorted(per_class.items())}}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dataset", required=True, type=Path, nargs="+", help="generated dataset(s), LEVIR-CD layout")
    p.add_argument("--test-sets", default=["data/levir-cd", "data/whu-cd"], type=Path, nargs="+", help="folders of real A/B/label pairs")
    p.add_argument("--epochs", type=int, default=20)
    p.add_argument("--max-minutes", type=float, default=10.0)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    out = evaluate_change_detection(args.dataset, {p.name: p for p in args.test_sets}, epochs=args.epochs, max_minutes=args.max_minutes,
                                    seed=args.seed, threads=args.threads)
    out.pop("figure")
    print(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())

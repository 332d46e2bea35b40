"""The usefulness test's baselines that need no model (model_export/evaluation/baselines), on the real training maps:
copy-paste changes B exactly where its label says and nowhere else (up to its global jitter), random pairing labels
exactly where the two windows' maps differ, both are laid out as the dataset command lays LEVIR-CD out, start from
its windows and match its changed share, and the same seed makes the same files."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from changeanywhere_qgis.engine.dataset import DatasetSettings, plan_dataset, sample_maps
from changeanywhere_qgis.engine.dataset.card import assign_splits
from changeanywhere_qgis.engine.errors import Cancelled, InputError
from changeanywhere_qgis.engine.io import read_raster
from changeanywhere_qgis.engine.io.layouts import sample_files
from changeanywhere_qgis.engine.progress import Progress
from model_export.evaluation.baselines import (CopyPasteSettings, apply_jitter, copy_paste_sample, find_donors, load_baseline,
                                               load_sources, make_baseline)

REPO = Path(__file__).resolve().parents[3]
TRAIN = REPO / "data" / "train"
OEM = ([str(TRAIN / "oem/labels/houston_16.tif")], [str(TRAIN / "oem/images/houston_16.tif")])
LOVEDA = ([str(TRAIN / f"loveda/labels/{i}.png") for i in range(3)], [str(TRAIN / f"loveda/images/{i}.png") for i in range(3)])
COUNT = 6


@pytest.fixture(scope="module")
def copy_paste(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("baselines") / "copy-paste"
    make_baseline("copy-paste", *OEM, out, count=COUNT, tile=256, seed=3)
    return out


@pytest.fixture(scope="module")
def random_pairing(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("baselines") / "random-pairing"
    make_baseline("random-pairing", *LOVEDA, out, count=COUNT, tile=256, seed=3, remap="loveda")
    return out


def _files(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def _read(root: Path, record: dict, role: str) -> np.ndarray:
    return read_raster(root / record["files"][role])


def test_copy_paste_changes_exactly_the_pasted_and_painted_pixels(copy_paste):
    spec, records = load_baseline(copy_paste)
    sources = load_sources(*OEM, count=COUNT, tile=256, seed=3, out=copy_paste)
    donors = find_donors(sources, CopyPasteSettings())
    changed_any = 0
    for r in records:
        a, b, label = _read(copy_paste, r, "A"), _read(copy_paste, r, "B"), _read(copy_paste, r, "label")[0] == 255
        w = r["window"]
        real = sources.rasters[0].pixels[:, w["row"] : w["row"] + 256, w["col"] : w["col"] + 256]
        assert np.array_equal(a, real)  # A is the real window
        jittered = apply_jitter(a, r["jitter"])
        # every unchanged pixel is A's own, through the global jitter alone (a look-up table per band)
        assert np.array_equal(b[:, ~label], jittered[:, ~label])
        assert r["jitter"] != {"gain": [1.0] * 3, "offset": [0.0] * 3}
        # every changed pixel was read from another place of the real image (pasted or painted), then jittered
        sample = copy_paste_sample(sources, donors, r["index"], CopyPasteSettings())
        assert np.array_equal(sample.t2, b) and np.array_equal(sample.mask == 1, label)
        k, rows, cols = sample.origin
        own = (k == 0) & (rows == np.arange(256)[:, None] + w["row"]) & (cols == np.arange(256)[None, :] + w["col"])
        assert np.array_equal(~own, label)  # the label is exactly where B's pixels came from elsewhere
        copied = sources.rasters[0].pixels[:, rows, cols]
        assert np.array_equal(b, apply_jitter(copied, r["jitter"]))
        outside = ~((rows >= w["row"]) & (rows < w["row"] + 256) & (cols >= w["col"]) & (cols < w["col"] + 256))
        assert outside[label].all()  # from other windows, never from this one
        # B's map changed wherever pixels were replaced (an object of another class pasted, or other ground painted)
        assert np.array_equal(sample.pre != sample.post, label)
        assert {e["kind"] for e in r["events"]} <= {"paste", "paint"}
        assert sum(e["pixels"] for e in r["events"]) == int(label.sum())
        changed_any += int(label.any())
    assert changed_any >= COUNT - 1


def test_copy_paste_starts_from_the_dataset_commands_windows_and_changes_as_much(copy_paste, tmp_path):
    spec, records = load_baseline(copy_paste)
    job = plan_dataset(OEM[0], tmp_path / "generated", DatasetSettings(count=COUNT, tile=256, seed=3), images=OEM[1])
    (tmp_path / "generated").mkdir()
    (tmp_path / "generated" / "dataset.json").write_text(json.dumps(job.spec))
    for r, (_, row, col) in zip(records, job.windows):
        assert (r["window"]["row"], r["window"]["col"]) == (row, col)
        # the generated sample of this index, rebuilt by the engine from its seed: its changed share is the target
        pre, post, valid = sample_maps(tmp_path / "generated", {"source": {"semantic": OEM[0][0]}, "window": r["window"],
                                                                 "seed": r["seed"]})
        generated = float(((pre != post) & valid).sum() / valid.sum())
        assert r["target_changed_fraction"] == pytest.approx(generated)
        assert abs(r["changed_fraction"] - generated) <= 0.25 * generated + 64 / valid.sum()
    assert spec["method"] == "copy-paste" and spec["settings"]["seed"] == 3


def test_random_pairing_labels_where_the_two_maps_differ(random_pairing):
    from changeanywhere_qgis.engine.diffusion import default_model_dir, read_manifest
    from changeanywhere_qgis.engine.io import read_semantic
    from changeanywhere_qgis.engine.landcover import ClassScheme, load_remap

    scheme = ClassScheme.from_manifest(read_manifest(default_model_dir()))
    maps = {p: read_semantic(p, scheme, 1, load_remap("loveda")) for p in LOVEDA[0]}
    images = {p: read_raster(Path(p)) for p in LOVEDA[1]}
    _, records = load_baseline(random_pairing)
    for r in records:
        a, b, label = _read(random_pairing, r, "A"), _read(random_pairing, r, "B"), _read(random_pairing, r, "label")[0]
        wa, wb = r["window"], r["window_b"]
        cut = lambda w: (slice(w["row"], w["row"] + 256), slice(w["col"], w["col"] + 256))  # noqa: E731
        ma, mb = maps[r["source"]["semantic"]], maps[r["source_b"]["semantic"]]
        assert np.array_equal(a, images[r["source"]["image"]][(slice(None), *cut(wa))])
        assert np.array_equal(b, images[r["source_b"]["image"]][(slice(None), *cut(wb))])
        valid = ma.valid[cut(wa)] & mb.valid[cut(wb)]
        expected = (ma.labels[cut(wa)] != mb.labels[cut(wb)]) & valid
        assert np.array_equal(label == 255, expected) and set(np.unique(label)) <= {0, 255}
        if r["source"]["semantic"] == r["source_b"]["semantic"]:  # two unrelated windows: they do not overlap
            assert abs(wa["row"] - wb["row"]) >= 256 or abs(wa["col"] - wb["col"]) >= 256


def test_random_pairing_pairs_windows_that_do_not_overlap(tmp_path):
    """One map (OpenEarthMap's 1024 px tile): B is another window of it, never one overlapping A."""
    make_baseline("random-pairing", *OEM, tmp_path / "rp", count=12, seed=0)
    for r in load_baseline(tmp_path / "rp")[1]:
        wa, wb = r["window"], r["window_b"]
        assert abs(wa["row"] - wb["row"]) >= 256 or abs(wa["col"] - wb["col"]) >= 256


@pytest.mark.parametrize("which", ["copy_paste", "random_pairing"])
def test_the_layout_is_the_dataset_commands_and_the_evaluation_reads_it(which, request):
    from model_export.evaluation.usefulness import dataset_split, load_levir_folder

    root = request.getfixturevalue(which)
    _, records = load_baseline(root)
    names = [r["name"] for r in records]
    assert names == [f"{i:06d}" for i in range(COUNT)]
    expected = {rel for n in names for rel in sample_files("levir", "png", n).values()}
    data = {rel for rel in _files(root) if rel.split("/")[0] in ("A", "B", "label")}
    assert data == expected
    splits, _ = assign_splits(COUNT, 3)  # the dataset command's splits for this seed and count
    for split in ("train", "val", "test"):
        listed = dataset_split(root, split)
        assert listed == [f"{n}.png" for n, s in zip(names, splits) if s == split]
        if listed:
            a, b, y, read = load_levir_folder(root, listed)
            assert a.shape == b.shape == (len(listed), 3, 256, 256) and y.shape == (len(listed), 256, 256) and read == listed
    assert all({"name", "seed", "split", "files", "changed_fraction"} <= set(r) for r in records)
    assert (root / "README.md").read_text().count("python -m model_export") >= 1


@pytest.mark.parametrize("method", ["copy-paste", "random-pairing"])
def test_the_same_seed_makes_the_same_files(method, tmp_path):
    inputs = OEM if method == "copy-paste" else LOVEDA
    remap = None if method == "copy-paste" else "loveda"
    made = {}
    for name, seed in (("one", 5), ("two", 5), ("other", 6)):
        make_baseline(method, *inputs, tmp_path / name, count=3, seed=seed, remap=remap)
        made[name] = _files(tmp_path / name)
    assert made["one"] == made["two"]
    images = lambda files: {k: v for k, v in files.items() if k.startswith(("B/", "label/"))}  # noqa: E731
    assert images(made["one"]) != images(made["other"])


def test_it_keeps_what_it_made_and_never_replaces_other_files(tmp_path):
    out = tmp_path / "cp"
    make_baseline("copy-paste", *OEM, out, count=2, seed=0)
    before = _files(out)
    assert make_baseline("copy-paste", *OEM, out, count=2, seed=0)["kept"]  # a rerun: nothing to do
    with pytest.raises(InputError, match="--overwrite"):
        make_baseline("copy-paste", *OEM, out, count=2, seed=1)
    assert _files(out) == before
    make_baseline("copy-paste", *OEM, out, count=2, seed=1, overwrite=True)  # its own folder, with --overwrite
    assert _files(out) != before and load_baseline(out)[0]["settings"]["seed"] == 1
    (out / "A" / "my notes.txt").write_text("mine")  # a user's file in the baseline's folder: never replaced
    with pytest.raises(InputError, match="my notes.txt"):
        make_baseline("copy-paste", *OEM, out, count=2, seed=2, overwrite=True)
    assert (out / "A" / "my notes.txt").is_file()
    theirs = tmp_path / "theirs"
    theirs.mkdir()
    (theirs / "notes.txt").write_text("mine")
    with pytest.raises(InputError, match="no baseline dataset"):
        make_baseline("random-pairing", *OEM, theirs, count=2, overwrite=True)
    assert [p.name for p in theirs.iterdir()] == ["notes.txt"]
    with pytest.raises(InputError, match="one image per land-cover map"):
        make_baseline("copy-paste", OEM[0], [], tmp_path / "x", count=2)


def test_a_cancelled_run_leaves_nothing(tmp_path):
    calls = {"n": 0}

    def cancel_after_one() -> bool:
        calls["n"] += 1
        return calls["n"] > 4  # a few stages and the first sample, then the user cancels
    with pytest.raises(Cancelled):
        make_baseline("copy-paste", *OEM, tmp_path / "cp", count=4, progress=Progress(is_cancelled=cancel_after_one))
    assert list(tmp_path.iterdir()) == []


def test_a_killed_runs_leftovers_go_and_nothing_else(tmp_path):
    (tmp_path / ".cp.tmp-0123abcd" / "A").mkdir(parents=True)  # what a run killed while writing leaves
    (tmp_path / ".cp.tmp-mine").mkdir()  # not a name this tool writes
    make_baseline("random-pairing", *OEM, tmp_path / "cp", count=2)
    assert sorted(p.name for p in tmp_path.iterdir()) == [".cp.tmp-mine", "cp"]


def test_baselines_are_arms_of_the_usefulness_test_beside_the_generated_one(tmp_path, tiny_model_dir, houston_label_path):
    """Each baseline trains its own nets on its own samples and labels (10 each here against 6 generated: a net fed
    another arm's labels could not even train), picks its threshold on its own test split, and is reported side by
    side with the generated arm, mean and spread over 3 nets, in the zero-shot and the few-shot tables."""
    import torch

    from changeanywhere_qgis.engine.dataset import generate_dataset
    from model_export.evaluation.dataset_report import EvaluateSettings, evaluate_dataset

    torch.set_num_threads(1)
    ds = tmp_path / "generated"
    generate_dataset(houston_label_path, ds, DatasetSettings(count=6, tile=64, steps=1, seed=2), model=tiny_model_dir, workers=1)
    arms = {"copy-paste": [str(tmp_path / "cp")], "random-pairing": [str(tmp_path / "rp")]}
    make_baseline("copy-paste", *OEM, tmp_path / "cp", count=10, tile=64, seed=2)
    make_baseline("random-pairing", *OEM, tmp_path / "rp", count=10, tile=64, seed=2)
    settings = EvaluateSettings(test_sets=[str(REPO / "data" / "whu-cd")], use_segmentation=False, cd_epochs=1, max_minutes=0,
                                few_shot_k=(3,), few_shot_splits=1, few_shot_steps=2, nets_per_arm=3, baselines=arms, threads=1)
    result = evaluate_dataset([ds], report=tmp_path / "report.md", settings=settings)
    cd = result["results"]["change_detection"]
    variants = cd["train"]["variants"]
    assert set(variants) == {"generated", "baseline: copy-paste", "baseline: random-pairing"}  # (no image: A generated)
    assert variants["generated"]["samples"] == 4 and variants["baseline: copy-paste"]["samples"] == 8  # train + val splits
    assert all(len(v["per_net"]) == 3 and all(n["stopped_by"] == "epochs" for n in v["per_net"]) for v in variants.values())
    rows = cd["zero_shot"]["whu-cd"]
    for name in arms:
        row = rows[f"FC-Siam-diff, trained on the {name} baseline (no model)"]
        assert len(row["f1_per_net"]) == 3 and "f1_std" in row
        assert f"pre-trained on the {name} baseline (no model), fine-tuned" in cd["few_shot"]["whu-cd"]["3"]
        assert cd["baselines"][name]["samples"] == 10 and cd["baselines"][name]["datasets"] == arms[name]
    assert "FC-Siam-diff, trained on generated data (pre-event generated)" in rows
    report = (tmp_path / "report.md").read_text()
    assert "| FC-Siam-diff, trained on the copy-paste baseline (no model) |" in report
    assert "gain over the best baseline" in report and "no time limit" in report
    assert "`python -m model_export.evaluation.baselines" not in report  # made by the Python API here: no command
    assert "| copy-paste | Self-Pair" in report and "| random-pairing | STAR" in report


def test_the_evaluation_refuses_a_baseline_arm_that_is_not_one(tmp_path):
    from model_export.evaluation.dataset_report import main

    assert main([str(tmp_path), "--baseline", "copy-paste"]) == 2
    make_baseline("random-pairing", *OEM, tmp_path / "rp", count=2)
    with pytest.raises(InputError, match="--baseline NAME="):  # a baseline given as a generated dataset
        from model_export.evaluation.dataset_report import evaluate_dataset

        evaluate_dataset([tmp_path / "rp"], report=tmp_path / "r.md")
    (tmp_path / "not-a-baseline").mkdir()
    with pytest.raises(InputError, match="not a finished baseline"):
        from model_export.evaluation.dataset_report import _baselines

        _baselines({"copy-paste": [str(tmp_path / "not-a-baseline")]})

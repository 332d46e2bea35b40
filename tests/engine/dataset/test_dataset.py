"""Dataset generation on the real Houston sample with the tiny model: layouts, determinism, resume after a
kill, nodata tiles, refusals. Small tiles and 2 DDIM steps keep it fast."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import rasterio

from changeanywhere_qgis.engine.dataset import DatasetSettings, generate_dataset, plan_dataset, sample_seed
from changeanywhere_qgis.engine.diffusion import ModelPackage
from changeanywhere_qgis.engine.errors import InputError
from changeanywhere_qgis.engine.io import read_raster

REPO = Path(__file__).resolve().parents[3]


def _files(root: Path) -> dict[str, bytes]:
    """Every file of a dataset (hidden bookkeeping aside), by relative path."""
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file() and not any(part.startswith(".") for part in p.relative_to(root).parts)}


def _make(out, tiny_model_dir, semantic, count=4, **kw):
    images = kw.pop("images", None)
    workers = kw.pop("workers", 1)
    settings = DatasetSettings(count=count, tile=kw.pop("tile", 64), steps=kw.pop("steps", 2), **kw)
    return generate_dataset(semantic, out, settings, images=images, model=tiny_model_dir, workers=workers)


@pytest.fixture(scope="module")
def both_png(tmp_path_factory, tiny_model_dir, houston_label_path):
    out = tmp_path_factory.mktemp("ds") / "both"
    result = _make(out, tiny_model_dir, houston_label_path, count=10, layout="both", seed=5)
    return out, result


def test_levir_and_second_layouts(both_png):
    out, result = both_png
    # 10 samples: val gets 2 names rather than round(10 x 10 %) = 1, which np.loadtxt would read as a 0-d array
    assert result["count"] == 10 and result["generated"] == 10 and result["splits"] == {"train": 6, "val": 2, "test": 2}
    names = [f"{i:06d}.png" for i in range(10)]
    for folder in ("A", "B", "label", "im1", "im2", "label1", "label2", "label1_wo_cm", "label2_wo_cm", "label1_full", "label2_full"):
        assert sorted(p.name for p in (out / folder).iterdir()) == names
    listed = [line for s in ("train", "val", "test") for line in (out / "list" / f"{s}.txt").read_text().split()]
    assert sorted(listed) == names  # every sample in exactly one split, names as the loaders read them
    records = [json.loads(line) for line in (out / "manifest.jsonl").read_text().splitlines()]
    assert [r["index"] for r in records] == list(range(10))
    assert not (out / ".work").exists()
    seen_change = False
    for r in records:
        a, b, label = (read_raster(out / r["files"][k]) for k in ("A", "B", "label"))
        assert a.shape == b.shape == (3, 64, 64) and label.shape == (1, 64, 64)
        assert set(np.unique(label)) <= {0, 255}
        assert np.array_equal(read_raster(out / r["files"]["im1"]), a)
        full1, full2 = read_raster(out / r["files"]["label1_full"])[0], read_raster(out / r["files"]["label2_full"])[0]
        changed = label[0] == 255
        assert np.array_equal(full1 != full2, changed)
        # the manifest's class transitions are exactly the full maps' pairs where the land changed
        pairs = {(int(f), int(t)): 0 for f, t in zip(full1[changed], full2[changed])}
        for f, t in zip(full1[changed], full2[changed]):
            pairs[(int(f), int(t))] += 1
        assert pairs == {(t["from"], t["to"]): t["pixels"] for t in r["transitions"]}
        assert r["changed_fraction"] == pytest.approx(changed.mean() / r["valid_fraction"])
        assert 0.7 <= r["s"] <= 1.0 and r["seed"] == sample_seed(5, r["index"])
        assert r["window"]["height"] == 64 and 0 <= r["window"]["row"] <= 512 - 64
        seen_change |= bool(changed.any())
    assert seen_change
    assert len({r["s"] for r in records}) == 10  # s drawn per sample
    card = (out / "README.md").read_text()
    assert "LEVIR-CD" in card and "SECOND" in card and "| building |" in card and "Changed land per sample" in card


def test_geotiff_tiles_keep_georeferencing(tmp_path, tiny_model_dir, houston_label_path, houston_image_path):
    out = tmp_path / "tif"
    _make(out, tiny_model_dir, houston_label_path, images=houston_image_path, count=2, fmt="tif", tile=128, pre_event="real")
    with rasterio.open(houston_label_path) as src:
        crs, transform = src.crs, src.transform
        image = rasterio.open(houston_image_path)
    for line in (out / "manifest.jsonl").read_text().splitlines():
        r = json.loads(line)
        row, col = r["window"]["row"], r["window"]["col"]
        with rasterio.open(out / r["files"]["A"]) as a:
            assert a.crs == crs and a.count == 3
            assert a.transform.almost_equals(transform * transform.translation(col, row))
            # a real pre-event image: A is the image's window itself
            window = ((row, row + 128), (col, col + 128))
            assert np.array_equal(a.read(), image.read((1, 2, 3), window=window))
        assert (out / "list" / "train.txt").read_text().strip().endswith(".tif")
    image.close()


def test_same_seed_same_dataset(tmp_path, tiny_model_dir, houston_label_path, both_png):
    first, _ = both_png
    again = tmp_path / "again"
    _make(again, tiny_model_dir, houston_label_path, count=10, layout="both", seed=5)
    assert _files(again) == _files(first)
    other = tmp_path / "other"
    _make(other, tiny_model_dir, houston_label_path, count=2, layout="both", seed=6)
    assert _files(other)["A/000000.png"] != _files(first)["A/000000.png"]


@pytest.mark.parametrize("options, settings", [
    ([], {}),
    (["--layout", "all", "--split-folders", "--splits", "0.5", "0.25", "0.25"],
     {"layout": "all", "split_folders": True, "split_fractions": (0.5, 0.25, 0.25)}),
    (["--appearance-shift"], {"appearance_shift": True}),
    (["--dates", "3", "--layout", "both", "--split-folders"], {"dates": 3, "layout": "both", "split_folders": True}),
], ids=["levir", "all-split-folders", "appearance-shift", "series"])
def test_resume_after_kill_equals_uninterrupted_run(tmp_path, tiny_model_dir, houston_label_path, options, settings):
    count, steps = 8, 16
    reference = tmp_path / "reference"
    _make(reference, tiny_model_dir, houston_label_path, count=count, steps=steps, seed=3, **settings)

    out = tmp_path / "killed"
    cmd = [sys.executable, "-m", "changeanywhere_qgis", "dataset", "--semantic", str(houston_label_path),
           "--count", str(count), "--tile", "64", "--steps", str(steps), "--seed", "3", "--out", str(out),
           "--model", str(tiny_model_dir), "--workers", "1", *options]
    proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 45
    while time.time() < deadline and proc.poll() is None:
        if len(list((out / ".samples").glob("*.json"))) >= 3:
            break
        time.sleep(0.02)
    assert proc.poll() is None, "the run ended before it could be killed"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    kept = len(list((out / ".samples").glob("*.json")))
    assert 3 <= kept < count
    assert not (out / "manifest.jsonl").exists()

    done = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert f"{count - kept} generated now, {kept} already there" in done.stdout
    resumed, whole = _files(out), _files(reference)
    assert resumed.keys() == whole.keys()
    assert resumed == whole  # byte for byte: images, labels, lists, card
    assert (out / "manifest.jsonl").read_text().splitlines() == (reference / "manifest.jsonl").read_text().splitlines()
    assert not (out / ".work").exists()


def test_interrupted_sample_leaves_nothing(tmp_path, tiny_model_dir, houston_label_path):
    out = tmp_path / "ds"
    _make(out, tiny_model_dir, houston_label_path, count=2, seed=1)
    # what a kill in the middle of sample 1 leaves: its temp folder and a file moved, its record missing
    (out / ".samples" / "000001.json").unlink()
    (out / ".work" / "000001-1-x" / "A").mkdir(parents=True)
    (out / ".work" / "000001-1-x" / "A" / "000001.png").write_bytes(b"partial")
    before = _files(out)
    result = _make(out, tiny_model_dir, houston_label_path, count=2, seed=1)
    assert result["generated"] == 1 and result["skipped"] == 1
    assert _files(out) == before and not (out / ".work").exists()


def test_mostly_nodata_tiles_are_skipped(tmp_path, tiny_model_dir, houston_label_path):
    with rasterio.open(houston_label_path) as src:
        labels, profile = src.read(1), src.profile
    labels[:, :300] = 0  # the left part is nodata (code 0)
    path = tmp_path / "half.tif"
    profile.update(nodata=0)
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(labels, 1)
    out = tmp_path / "ds"
    _make(out, tiny_model_dir, path, count=6, tile=128, steps=1, max_nodata=0.25)
    for line in (out / "manifest.jsonl").read_text().splitlines():
        r = json.loads(line)
        assert r["valid_fraction"] >= 0.75 and r["window"]["col"] + 128 > 300 + 96

    labels[:, :] = 0
    labels[:40, :40] = 2
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(labels, 1)
    with pytest.raises(InputError, match="mostly nodata"):
        _make(tmp_path / "none", tiny_model_dir, path, count=2, tile=128)
    assert not (tmp_path / "none").exists()


@pytest.mark.parametrize("change, message", [
    ({"count": 0}, "count must be a whole number of at least 1"),
    ({"tile": 60}, "multiple of 8"),
    ({"tile": 1024}, "smaller than the 1024 px tile"),
    ({"layout": "coco"}, "Unknown dataset layout 'coco'"),
    ({"fmt": "jpg"}, "Unknown image format 'jpg'"),
    ({"transitions": "/nonexistent.json"}, "does not exist"),
    ({"guidance": 25.0}, "guidance scale must be between 1"),
    ({"count": 1}, "at least 2 samples, got 1: a split list of one name is read by np.loadtxt"),
    ({"split_fractions": (0.5, 0.2, 0.2)}, "summing to 1"),
    ({"split_fractions": (0.0, 0.5, 0.5)}, "train above 0"),
    ({"second_classes": "/nonexistent.json"}, "for layouts with SECOND's folders"),
    ({"skip_hidden_change": True, "layout": "classes"}, "for layouts with SECOND's folders"),
    ({"second_classes": "/nonexistent.json", "layout": "second"}, "SECOND class mapping /nonexistent.json does not exist"),
])
def test_bad_inputs_write_nothing(tmp_path, tiny_model_dir, houston_label_path, change, message):
    settings = DatasetSettings(**{"count": 2, "tile": 64, "steps": 1, **change})
    with pytest.raises(InputError, match=message):
        generate_dataset(houston_label_path, tmp_path / "out", settings, model=tiny_model_dir, workers=1)
    assert not (tmp_path / "out").exists()


def test_refuses_foreign_folder_and_other_settings(tmp_path, tiny_model_dir, houston_label_path, monkeypatch):
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("mine")
    with pytest.raises(InputError, match="holds no dataset"):
        plan_dataset(houston_label_path, foreign, DatasetSettings(count=2, tile=64), model=tiny_model_dir)
    out = tmp_path / "ds"
    _make(out, tiny_model_dir, houston_label_path, count=2, seed=1)
    with pytest.raises(InputError, match="other settings"):
        _make(out, tiny_model_dir, houston_label_path, count=2, seed=2)
    with pytest.raises(InputError, match="one image per land-cover raster"):
        plan_dataset([houston_label_path] * 2, tmp_path / "x", DatasetSettings(count=2, tile=64), model=tiny_model_dir,
                     images=[houston_label_path])
    # another guidance scale is another dataset; one given is recorded and in the remaking command
    with pytest.raises(InputError, match="other settings.*guidance"):
        _make(out, tiny_model_dir, houston_label_path, count=2, seed=1, guidance=1.5)
    guided = tmp_path / "guided"
    seen = []  # the scale every real denoiser call ran with (the tiny model's map effect is too weak to see in
    real_denoise = ModelPackage.denoise_with  # its VQ-snapped images, so the calls are observed instead)
    monkeypatch.setattr(ModelPackage, "denoise_with", lambda self, *a: seen.append(self.guidance_scale) or real_denoise(self, *a))
    _make(guided, tiny_model_dir, houston_label_path, count=2, seed=1, guidance=1.5)
    assert seen and set(seen) == {1.5}
    assert "--guidance 1.5" in (guided / "README.md").read_text()
    assert json.loads((guided / "dataset.json").read_text())["settings"]["guidance"] == 1.5
    assert "guidance" not in json.loads((out / "dataset.json").read_text())["settings"]  # older specs still match
    # more samples with the same settings: the first one is kept as it is
    first = (out / "A" / "000000.png").read_bytes()
    result = _make(out, tiny_model_dir, houston_label_path, count=3, seed=1)
    assert result["skipped"] == 2 and (out / "A" / "000000.png").read_bytes() == first


def test_ctrl_c_keeps_finished_samples(tmp_path, tiny_model_dir, houston_label_path):
    out = tmp_path / "ds"
    cmd = [sys.executable, "-m", "changeanywhere_qgis", "dataset", "--semantic", str(houston_label_path), "--count", "50",
           "--tile", "64", "--steps", "16", "--out", str(out), "--model", str(tiny_model_dir), "--workers", "1"]
    proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 45
    while time.time() < deadline and not list((out / ".samples").glob("*.json")):
        time.sleep(0.02)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 130 and "finished samples are kept" in err
    kept = {p.stem for p in (out / ".samples").glob("*.json")}
    assert kept and {p.stem for p in (out / "A").iterdir()} == kept  # no file of an unfinished sample
    assert not any((out / ".work").iterdir()) if (out / ".work").exists() else True


def test_interrupt_while_a_sample_moves_its_files_leaves_nothing(tmp_path, tiny_model_dir, houston_label_path, monkeypatch):
    # Ctrl-C lands after the first sample moved one of its files into place but before its record:
    # that file must go, so the folder holds only finished samples (no rerun needed to clean it).
    # os.replace is patched for the whole process: the dataset's modules all move files with it.
    real_replace, calls = os.replace, {"n": 0}

    def interrupted_replace(src, dst):
        calls["n"] += 1
        if calls["n"] == 3:  # 1: dataset.json, 2: the sample's first file, 3: its second file
            raise KeyboardInterrupt
        return real_replace(src, dst)

    monkeypatch.setattr(os, "replace", interrupted_replace)
    out = tmp_path / "ds"
    with pytest.raises(KeyboardInterrupt):
        generate_dataset(houston_label_path, out, DatasetSettings(count=2, tile=64, steps=1), model=tiny_model_dir, workers=1)
    monkeypatch.setattr(os, "replace", real_replace)
    left = [p.relative_to(out) for p in out.rglob("*") if p.is_file() and p.name != "dataset.json"]
    assert left == []
    assert not (out / ".work").exists() or not any((out / ".work").iterdir())


def test_more_samples_move_between_split_folders_as_a_fresh_run_places_them(tmp_path, tiny_model_dir, houston_label_path):
    kw = {"layout": "all", "split_folders": True, "seed": 12}
    grown = tmp_path / "grown"
    first = _make(grown, tiny_model_dir, houston_label_path, count=4, **kw)
    assert first["splits"] == {"train": 2, "val": 0, "test": 2}
    # a killed run's leftovers in the stage folder and in a split folder (no record) are removed
    (grown / ".staged" / "A").mkdir(parents=True)
    (grown / ".staged" / "A" / "000005.png").write_bytes(b"partial")
    (grown / "train" / "B" / "000006.png").write_bytes(b"partial")
    result = _make(grown, tiny_model_dir, houston_label_path, count=10, **kw)
    assert result["skipped"] == 4 and result["splits"] == {"train": 6, "val": 2, "test": 2}
    fresh = tmp_path / "fresh"
    _make(fresh, tiny_model_dir, houston_label_path, count=10, **kw)
    assert _files(grown) == _files(fresh)  # byte for byte, each file in its split's folder
    assert not (grown / ".staged").exists()
    # fewer samples again: the extra ones leave the split folders (kept aside for a later run), none is lost
    fewer = _make(grown, tiny_model_dir, houston_label_path, count=4, **kw)
    assert fewer["splits"] == first["splits"]
    placed = {p.stem for p in grown.glob("*/A/*.png") if not p.parts[-3].startswith(".")}
    assert placed == {f"{i:06d}" for i in range(4)} and len(list((grown / ".staged" / "A").glob("*.png"))) == 6


def test_second_datasets_of_earlier_versions_are_refused_not_mixed(tmp_path, tiny_model_dir, houston_label_path):
    out = tmp_path / "old-second"
    _make(out, tiny_model_dir, houston_label_path, count=2, layout="second", seed=1)
    spec = json.loads((out / "dataset.json").read_text())
    del spec["second_classes"]  # what this version's predecessors recorded
    (out / "dataset.json").write_text(json.dumps(spec))
    with pytest.raises(InputError, match="SECOND dataset of an earlier version.*pass --overwrite"):
        _make(out, tiny_model_dir, houston_label_path, count=2, layout="second", seed=1)
    # another mapping is another dataset
    mapping = tmp_path / "m.json"
    mapping.write_text(json.dumps({"bareland": 2, "rangeland": 3, "developed space": 2, "road": 5, "tree": 4, "water": 1,
                                   "agriculture land": 3, "building": 5}))
    other = tmp_path / "second"
    _make(other, tiny_model_dir, houston_label_path, count=2, layout="second", seed=1)
    with pytest.raises(InputError, match="other settings"):
        _make(other, tiny_model_dir, houston_label_path, count=2, layout="second", seed=1, second_classes=str(mapping))

"""Datasets of series of dates on the real Houston sample with the tiny model: one folder per sample with its dates,
each pair of dates as a sample of the layout, manifest lines per series; resume after a kill and Dask as for pairs."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from changeanywhere_qgis.engine.dataset import DatasetSettings, generate_dataset, load_records
from changeanywhere_qgis.engine.errors import InputError
from changeanywhere_qgis.engine.io import STAGE_FOLDER, read_raster

REPO = Path(__file__).resolve().parents[3]
PAIRS = ("t1_t2", "t2_t3", "t1_t3")


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file() and not any(part.startswith(".") for part in p.relative_to(root).parts)}


def _make(out, model, semantic, count=4, workers=1, scheduler=None, **kw):
    settings = DatasetSettings(count=count, tile=kw.pop("tile", 64), steps=kw.pop("steps", 2), **kw)
    return generate_dataset(semantic, out, settings, model=model, workers=None if scheduler else workers, scheduler=scheduler)


@pytest.fixture(scope="module")
def series_levir(tmp_path_factory, tiny_model_dir, houston_label_path):
    out = tmp_path_factory.mktemp("series") / "levir"
    return out, _make(out, tiny_model_dir, houston_label_path, count=6, seed=5, dates=3)


def test_each_series_has_its_folder_and_its_pairs(series_levir):
    out, result = series_levir
    records = [json.loads(line) for line in (out / "manifest.jsonl").read_text().splitlines()]
    assert len(records) == 6 == result["count"]  # one manifest line per series
    files = _files(out)
    for r in records:
        name = r["name"]
        assert r["dates"] == 3 and [p["name"] for p in r["pairs"]] == [f"{name}_{p}" for p in PAIRS]
        assert [d["date"] for d in r["series"]] == [2, 3]
        for k in (1, 2, 3):
            assert f"series/{name}/t{k}.png" in files and f"series/{name}/t{k}_classes.png" in files
        maps = {k: read_raster(out / "series" / name / f"t{k}_classes.png")[0] for k in (1, 2, 3)}
        valid = maps[1] != 0
        for pair in PAIRS:
            a, b = int(pair[1]), int(pair[4])
            label = read_raster(out / "label" / f"{name}_{pair}.png")[0]
            assert np.array_equal(label == 255, (maps[a] != maps[b]) & valid), (name, pair)
            assert files[f"A/{name}_{pair}.png"] == files[f"series/{name}/t{a}.png"]
            assert files[f"B/{name}_{pair}.png"] == files[f"series/{name}/t{b}.png"]
        assert r["changed_fraction"] == pytest.approx(np.count_nonzero(maps[1] != maps[3]) / np.count_nonzero(valid))
    listed = [line for split in ("train", "val", "test") if (out / "list" / f"{split}.txt").is_file()
              for line in (out / "list" / f"{split}.txt").read_text().split()]
    assert sorted(listed) == sorted(f"{r['name']}_{p}.png" for r in records for p in PAIRS)
    for r in records:  # the pairs of a series share its split: no date of a test series is seen in training
        split_of = {line: split for split in ("train", "val", "test") if (out / "list" / f"{split}.txt").is_file()
                    for line in (out / "list" / f"{split}.txt").read_text().split()}
        assert {split_of[f"{r['name']}_{p}.png"] for p in PAIRS} == {r["split"]}
    assert "--dates 3" in (out / "README.md").read_text()
    assert json.loads((out / "dataset.json").read_text())["settings"]["dates"] == 3


def test_the_first_pair_of_a_series_is_the_two_date_datasets_sample(series_levir, tmp_path, tiny_model_dir, houston_label_path):
    out, _ = series_levir
    pairs = tmp_path / "pairs"
    _make(pairs, tiny_model_dir, houston_label_path, count=6, seed=5, appearance_shift=False)  # a series has no shifts yet
    series, pair = _files(out), _files(pairs)
    for name in ("000000", "000003"):
        for folder in ("A", "B", "label"):
            assert series[f"{folder}/{name}_t1_t2.png"] == pair[f"{folder}/{name}.png"], (folder, name)
    assert "dates" not in json.loads((pairs / "dataset.json").read_text())["settings"]  # a pair's spec is as it was


def test_a_killed_series_samples_files_are_removed(tmp_path, tiny_model_dir, houston_label_path):
    out = tmp_path / "ds"
    _make(out, tiny_model_dir, houston_label_path, count=2, seed=1, dates=3)
    before = _files(out)
    # what a kill while sample 1 moved its files leaves: some pairs and its series folder in place, its record missing
    (out / ".samples" / "000001.json").unlink()
    result = _make(out, tiny_model_dir, houston_label_path, count=2, seed=1, dates=3)
    assert result["generated"] == 1 and _files(out) == before
    (out / ".samples" / "000001.json").unlink()
    (out / "manifest.jsonl").unlink()
    from changeanywhere_qgis.engine.dataset.workers import remove_leftovers
    from changeanywhere_qgis.engine.dataset import plan_dataset

    job = plan_dataset(houston_label_path, out, DatasetSettings(count=2, tile=64, steps=2, seed=1, dates=3), model=tiny_model_dir)
    assert remove_leftovers(job) > 0
    assert not (out / "series" / "000001").exists() and not list((out / "A").glob("000001_*"))
    assert (out / "series" / "000000").is_dir() and list((out / "A").glob("000000_*"))


def test_bad_dates_are_refused(tmp_path, tiny_model_dir, houston_label_path):
    for dates in (1, 13, 2.5):
        with pytest.raises(InputError, match="number of dates"):
            _make(tmp_path / "x", tiny_model_dir, houston_label_path, dates=dates)
    assert not (tmp_path / "x").exists()


def test_dask_cluster_equals_local_processes(tmp_path, tiny_model_dir, houston_label_path):
    distributed = pytest.importorskip("distributed")
    settings = dict(count=4, seed=11, dates=3, layout="all", fmt="tif", split_folders=True)
    _make(tmp_path / "local", tiny_model_dir, houston_label_path, workers=2, **settings)
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
        result = _make(tmp_path / "dask", tiny_model_dir, houston_label_path, scheduler=cluster.scheduler_address, **settings)
    assert result["backend"] == "dask" and result["generated"] == 4
    assert _files(tmp_path / "dask") == _files(tmp_path / "local")
    assert (tmp_path / "dask" / "manifest.jsonl").read_text() == (tmp_path / "local" / "manifest.jsonl").read_text()


def test_the_evaluation_refuses_a_dataset_of_series(series_levir):
    out, _ = series_levir
    done = subprocess.run([sys.executable, "-m", "model_export.evaluate", str(out), "--no-torch"], cwd=REPO,
                          capture_output=True, text=True)
    assert done.returncode == 2 and "series of 3 dates" in done.stderr and "Traceback" not in done.stderr


def test_a_smaller_count_takes_the_dropped_series_out_of_the_splits_and_a_larger_one_brings_them_back(
        tmp_path, tiny_model_dir, houston_label_path):
    out = tmp_path / "ds"
    settings = dict(seed=2, dates=3, split_folders=True, split_fractions=(0.5, 0.0, 0.5))
    _make(out, tiny_model_dir, houston_label_path, count=6, **settings)
    full = _files(out)
    _make(out, tiny_model_dir, houston_label_path, count=4, **settings)
    kept = {r["name"] for r in load_records(out)}
    in_splits = {p.name for split in ("train", "val", "test") for p in (out / split / "series").glob("*")}
    assert len(kept) == 4 and in_splits == kept  # the two dropped series wait outside the splits
    again = _make(out, tiny_model_dir, houston_label_path, count=6, **settings)
    assert again["generated"] == 0 and _files(out) == full  # and come back as they were
    assert not (out / STAGE_FOLDER).exists()  # nothing left in the stage folder

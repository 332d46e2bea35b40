"""`--overwrite` replaces only what this tool wrote (issue #36): real folders, the real command line.

Before, `--overwrite` swapped out whatever folder `--out` named: a folder of the user's own was emptied, and a
folder holding the run's own `--semantic` map was deleted (sample.json then named a file that no longer existed)."""

from __future__ import annotations

import json
import shutil

import pytest

from changeanywhere_qgis.engine.io import SAMPLE_FOLDER
from changeanywhere_qgis.engine.pipeline import series_outputs, simulate_outputs

from test_faults import assert_clean_error, cli


def _simulate(semantic, out, model, *more):
    return cli("simulate", "--semantic", semantic, "--random-events", "--model", model, "--out", out, *more)


def _dataset(semantic, out, model, *more):
    return cli("dataset", "--semantic", semantic, "--count", "2", "--tile", "64", "--steps", "1", "--workers", "1",
               "--model", model, "--out", out, *more)


def _files(folder):
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


def test_a_users_own_folder_is_never_replaced(tmp_path, tiny_model_dir, houston_label_path):
    out = tmp_path / "work"
    (out / "chapter").mkdir(parents=True)
    (out / "thesis.txt").write_text("four years")
    (out / "chapter" / "one.md").write_text("draft")
    before = _files(out)
    done = _simulate(houston_label_path, out, tiny_model_dir, "--overwrite")
    assert_clean_error(done, str(out), "not a change sample", "did not write", "Nothing was written")
    assert _files(out) == before and (out / "thesis.txt").read_text() == "four years"
    assert [p.name for p in tmp_path.iterdir()] == ["work"]  # no temporary folder left


def test_a_folder_holding_an_input_of_the_run_is_not_replaced(tmp_path, tiny_model_dir, houston_label_path):
    """The reported case: the run's --semantic map lies in the folder --overwrite would replace."""
    out = tmp_path / "sample"
    assert _simulate(houston_label_path, out, tiny_model_dir, "--seed", "1").returncode == 0
    own_map = out / "t2_semantic.tif"  # an earlier output, now the input of the next run into the same folder
    data = own_map.read_bytes()
    done = _simulate(own_map, out, tiny_model_dir, "--seed", "2", "--overwrite")
    assert_clean_error(done, str(own_map), "an input of this run", "Choose another output folder")
    assert own_map.read_bytes() == data and json.loads((out / "events.json").read_text())["seed"] == 1


def test_an_earlier_sample_is_replaced_even_after_a_gis_opened_it(tmp_path, tiny_model_dir, houston_label_path):
    out = tmp_path / "sample"
    assert _simulate(houston_label_path, out, tiny_model_dir, "--seed", "1").returncode == 0
    (out / "t1_semantic.tif.aux.xml").write_text("<PAMDataset/>")  # QGIS's statistics beside a raster it opened
    (out / "changes.gpkg-wal").write_bytes(b"")  # a GeoPackage journal
    done = _simulate(houston_label_path, out, tiny_model_dir, "--seed", "2", "--overwrite")
    assert done.returncode == 0, done.stderr
    assert json.loads((out / "events.json").read_text())["seed"] == 2
    assert sorted(p.name for p in out.iterdir()) == sorted(simulate_outputs(2))


def test_an_earlier_sample_with_a_users_file_in_it_is_not_replaced(tmp_path, tiny_model_dir, houston_label_path):
    out = tmp_path / "sample"
    assert _simulate(houston_label_path, out, tiny_model_dir, "--seed", "1").returncode == 0
    (out / "my_notes.txt").write_text("keep me")
    (out / "digitised").mkdir()
    done = _simulate(houston_label_path, out, tiny_model_dir, "--seed", "2", "--overwrite")
    assert_clean_error(done, "also files it did not write", "digitised/", "my_notes.txt", "Move those files out")
    assert (out / "my_notes.txt").read_text() == "keep me" and json.loads((out / "events.json").read_text())["seed"] == 1


@pytest.mark.parametrize("dates", [2, 3, 5])
def test_every_file_generate_and_simulate_write_is_recognised_as_theirs(dates):
    from pathlib import PurePosixPath

    for name in {*series_outputs(dates), *simulate_outputs(dates)}:
        assert SAMPLE_FOLDER.owns(PurePosixPath(name), False), name
    assert not SAMPLE_FOLDER.owns(PurePosixPath("thesis.txt"), False)
    assert not SAMPLE_FOLDER.owns(PurePosixPath("sub"), True)


def test_dataset_overwrite_replaces_only_a_dataset_of_this_tool(tmp_path, tiny_model_dir, houston_label_path):
    out = tmp_path / "dataset"
    assert (done := _dataset(houston_label_path, out, tiny_model_dir, "--seed", "1")).returncode == 0, done.stderr
    (out / "A" / "000000.png.aux.xml").write_text("<PAMDataset/>")  # opened in QGIS
    (out / "paper.tex").write_text("results")
    done = _dataset(houston_label_path, out, tiny_model_dir, "--seed", "2", "--overwrite")
    assert_clean_error(done, "also files it did not write", "paper.tex")
    assert (out / "paper.tex").exists() and json.loads((out / "dataset.json").read_text())["settings"]["seed"] == 1
    (out / "paper.tex").unlink()
    done = _dataset(houston_label_path, out, tiny_model_dir, "--seed", "2", "--overwrite")
    assert done.returncode == 0, done.stderr
    assert json.loads((out / "dataset.json").read_text())["settings"]["seed"] == 2
    assert not (out / "A" / "000000.png.aux.xml").exists()


def test_dataset_overwrite_refuses_a_users_folder_and_one_holding_its_input(tmp_path, tiny_model_dir, houston_label_path):
    home = tmp_path / "home"
    home.mkdir()
    (home / ".bashrc").write_text("export PATH")
    done = _dataset(houston_label_path, home, tiny_model_dir, "--overwrite")
    assert_clean_error(done, "not a change-detection dataset", "dataset.json")
    assert _files(home) == [".bashrc"]

    out = tmp_path / "dataset"
    assert _dataset(houston_label_path, out, tiny_model_dir, "--seed", "1").returncode == 0
    shutil.copy(houston_label_path, out / "list" / "map.tif")  # a .tif where this tool writes one: still an input
    before = _files(out)
    done = _dataset(out / "list" / "map.tif", out, tiny_model_dir, "--overwrite")
    assert_clean_error(done, "an input of this run")
    assert _files(out) == before

"""The path a large map takes (its whole-raster arrays in scratch files of the output's temporary folder, read and
written by window) gives the same files as the in-memory path: forced onto the bundled sample, generate and simulate
write the same bytes, and no scratch file is left in the outputs."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from changeanywhere_qgis.engine import pipeline
from changeanywhere_qgis.engine.events import polygons
from changeanywhere_qgis.engine.pipeline import ChangeSpec, GenerateSettings


def _digests(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())
            if p.name not in ("sample.json", "changes.gpkg")}


def _run(kind, houston_label_path, out, tiny_model_dir, changes=None):
    changes = changes or ChangeSpec(random=True)
    if kind == "simulate":
        return pipeline.simulate(houston_label_path, out, changes, model=tiny_model_dir, seed=11)
    return pipeline.generate(houston_label_path, out, changes, model=tiny_model_dir,
                             settings=GenerateSettings(steps=2, seed=11, device="cpu", correlation=0.8))


@pytest.mark.parametrize("kind", ["simulate", "generate"])
def test_scratch_files_give_the_same_outputs(kind, houston_label_path, tiny_model_dir, tmp_path, force_large_maps):
    in_memory = _run(kind, houston_label_path, tmp_path / "memory", tiny_model_dir)
    made = force_large_maps()
    on_disk = _run(kind, houston_label_path, tmp_path / "disk", tiny_model_dir)
    assert len(made) >= 6, made  # the map, validity, changeable land, post-event map, changed flags, components, mask
    assert all(".scratch" in p.parts and not p.exists() for p in made)  # in the temporary folder, gone with it
    assert _digests(tmp_path / "disk") == _digests(tmp_path / "memory")
    assert on_disk["events"] == in_memory["events"] and len(in_memory["events"]) > 3
    assert on_disk["changed_fraction"] == in_memory["changed_fraction"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["disk", "memory"]
    if kind == "simulate":
        import pyogrio

        memory, disk = (pyogrio.read_dataframe(tmp_path / name / "changes.gpkg") for name in ("memory", "disk"))
        assert len(memory) > 3 and list(memory.geometry.to_wkb()) == list(disk.geometry.to_wkb())
        assert memory.drop(columns="geometry").equals(disk.drop(columns="geometry"))


@pytest.mark.parametrize("kind", ["simulate", "generate"])
def test_drawn_polygons_on_a_large_map_are_burnt_band_by_band(kind, houston_label_path, houston_changes_path, tiny_model_dir,
                                                              tmp_path, monkeypatch, force_large_maps):
    changes = ChangeSpec(vector=str(houston_changes_path), class_field="target")
    in_memory = _run(kind, houston_label_path, tmp_path / "memory", tiny_model_dir, changes)
    made = force_large_maps()
    monkeypatch.setattr(polygons, "BAND_PIXELS", 512 * 37)  # bands of 37 rows: band edges cut the polygons
    on_disk = _run(kind, houston_label_path, tmp_path / "disk", tiny_model_dir, changes)
    assert any(p.name.endswith("-post.raw") for p in made), made  # the post-event map was a scratch file
    assert all(not p.exists() for p in made)
    assert _digests(tmp_path / "disk") == _digests(tmp_path / "memory")
    assert on_disk["events"] == in_memory["events"] and len(in_memory["events"]) >= 2
    assert on_disk["changed_fraction"] == in_memory["changed_fraction"] > 0

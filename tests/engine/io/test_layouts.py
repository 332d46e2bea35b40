"""The SECOND class mapping (built-in table, the user's JSON file, its errors), hidden change on the real map, and
the change label read back from each layout, old SECOND datasets included."""

from __future__ import annotations

import json

import numpy as np
import pytest

from changeanywhere_qgis.engine.errors import InputError
from changeanywhere_qgis.engine.io import load_second_classes, read_change, second_labels, write_raster
from changeanywhere_qgis.engine.landcover import ClassScheme


def test_built_in_table_maps_openearthmap_classes_as_second_means_them(oem_scheme):
    second = load_second_classes(None, oem_scheme)
    assert {r["class"]: r["second"] for r in second.rows(oem_scheme)} == {
        "bareland": "ground", "rangeland": "low vegetation", "developed space": "ground", "road": "ground", "tree": "tree",
        "water": "water", "agriculture land": "low vegetation", "building": "building"}
    assert [(c.name, c.color) for c in (second.unchanged, *second.classes)] == [
        ("unchanged", (255, 255, 255)), ("water", (0, 0, 255)), ("ground", (128, 128, 128)), ("low vegetation", (0, 128, 0)),
        ("tree", (0, 255, 0)), ("building", (128, 0, 0)), ("playground", (255, 0, 0))]
    assert second.source == "built-in"


@pytest.mark.parametrize("text, message", [
    ("{not json", "is not valid JSON"),
    ("[\"road\"]", "must be a JSON object"),
    (json.dumps({"glacier": "water"}), "'glacier' is not a class of the model"),
    (json.dumps({"road": "motorway"}), "'motorway' is not one of SECOND's classes"),
    (json.dumps({"road": 7}), "7 is not one of SECOND's classes"),
    (json.dumps({"road": "ground", "tree": "tree"}), "maps no SECOND class to the model's class\\(es\\) 'bareland'"),
])
def test_a_bad_mapping_file_names_the_problem(tmp_path, oem_scheme, text, message):
    path = tmp_path / "mapping.json"
    path.write_text(text)
    with pytest.raises(InputError, match=message):
        load_second_classes(path, oem_scheme)


def test_a_mapping_file_by_names_codes_and_aliases(tmp_path, oem_scheme):
    path = tmp_path / "mapping.json"
    path.write_text(json.dumps({"1": "Non-vegetated ground surface", "Rangeland": 3, "developed_space": "ground", "4": "sports field",
                                "tree": "tree", "water": "water", "agriculture land": "low vegetation", "building": "building"}))
    second = load_second_classes(path, oem_scheme)
    assert dict(second.mapping) == {1: 2, 2: 3, 3: 2, 4: 6, 5: 4, 6: 1, 7: 3, 8: 5} and second.source == str(path)


def test_a_model_outside_the_table_needs_a_mapping_file():
    scheme = ClassScheme.from_manifest({"classes": [{"code": 1, "name": "glacier", "color": [200, 200, 255]},
                                                    {"code": 2, "name": "tree", "color": [0, 90, 0]}]})
    with pytest.raises(InputError, match="'glacier'. Give a mapping for every class with --second-classes"):
        load_second_classes(None, scheme)


def test_change_inside_one_second_class_is_hidden_on_the_real_map(houston_label, oem_scheme):
    pre = houston_label[0][:128, :128]
    post = pre.copy()
    road, building = pre == 4, pre == 8
    assert road.any() and building.any()
    post[road] = 3  # road -> developed space: both "ground"
    post[building] = 6  # building -> water
    mask = (pre != post).astype(np.uint8)
    label1, label2, hidden = second_labels(pre, post, mask, load_second_classes(None, oem_scheme))
    assert np.array_equal(hidden, road)
    assert np.all(label1[road] == 0) and np.all(label2[road] == 0)
    assert np.all(label1[building] == 5) and np.all(label2[building] == 1)
    assert np.all(label1[mask == 0] == 0)


def test_read_change_in_every_layout_and_in_earlier_second_datasets(tmp_path, houston_label):
    pre = houston_label[0][:64, :64]
    post = np.where(pre == 8, 6, pre).astype(np.uint8)
    changed = pre != post
    write_raster(tmp_path / "label.png", np.where(changed, 255, 0).astype(np.uint8), "png")
    write_raster(tmp_path / "full1.png", pre, "png")
    write_raster(tmp_path / "full2.png", post, "png")
    write_raster(tmp_path / "old1.png", np.where(changed, pre, 0).astype(np.uint8), "png")  # earlier SECOND: codes where changed
    assert np.array_equal(read_change(tmp_path, {"label": "label.png", "label1": "x"}), changed)
    assert np.array_equal(read_change(tmp_path, {"label1": "x", "label1_full": "full1.png", "label2_full": "full2.png"}), changed)
    assert np.array_equal(read_change(tmp_path, {"label1": "old1.png", "label2": "x"}), changed)

"""Our datasets, read the way the change-detection codebases read them: their loading steps re-enacted with numpy
and PIL (nothing of ours reads the files back), on the real Houston sample with the tiny model, a step or two.

- BIT_CD / ChangeFormer (``datasets/CD_dataset.py``): ``np.loadtxt`` on ``list/<split>.txt``, labels divided by 255;
- open-cd: every ``<split>/A/*.png``, its B and label found by the same name; torchgeo and torchange glob
  ``<split>/A/*.png`` alike;
- SCanNet / Bi-SRNet (``datasets/RS_ST.py``): ``os.listdir(<root>/<split>/im1)``, labels decoded by ``Color2Index``
  with SECOND's palette; torchange: ``im1`` paths with ``im1`` replaced by ``label1_wo_cm``.
"""

from __future__ import annotations

import glob
import json
import os
from pathlib import Path

import numpy as np
import pytest
import rasterio
from PIL import Image

from changeanywhere_qgis.engine.dataset import DatasetSettings, generate_dataset, sample_maps

# SCanNet / Bi-SRNet datasets/RS_ST.py: SECOND's palette, index 0 = unchanged
ST_COLORMAP = [[255, 255, 255], [0, 0, 255], [128, 128, 128], [0, 128, 0], [0, 255, 0], [128, 0, 0], [255, 0, 0]]
ST_CLASSES = ["unchanged", "water", "ground", "low vegetation", "tree", "building", "playground"]
# What the issue asks of the built-in table (OpenEarthMap code -> SECOND index)
OEM_TO_SECOND = {1: 2, 2: 3, 3: 2, 4: 2, 5: 4, 6: 1, 7: 3, 8: 5}


def bit_names(path) -> np.ndarray:
    """BIT_CD / ChangeFormer ``load_img_name_list``."""
    names = np.loadtxt(path, dtype=str)
    if names.ndim == 2:
        return names[:, 0]
    return names


def color2index(label: np.ndarray) -> np.ndarray:
    """RS_ST.py ``Color2Index``: RGB [H, W, 3] -> SECOND index; colours outside the palette become 0 (unchanged)."""
    colormap2label = np.zeros(256 ** 3)
    for i, cm in enumerate(ST_COLORMAP):
        colormap2label[(cm[0] * 256 + cm[1]) * 256 + cm[2]] = i
    data = label.astype(np.int32)
    index_map = colormap2label[(data[:, :, 0] * 256 + data[:, :, 1]) * 256 + data[:, :, 2]]
    return (index_map * (index_map < len(ST_COLORMAP))).astype(np.uint8)


def pil(path) -> np.ndarray:
    return np.array(Image.open(path))


def _make(out, model, semantic, count, **kw):
    settings = DatasetSettings(count=count, tile=kw.pop("tile", 64), steps=kw.pop("steps", 1), **kw)
    return generate_dataset(semantic, out, settings, model=model, workers=1)


def _records(root: Path) -> list[dict]:
    return [json.loads(line) for line in (root / "manifest.jsonl").read_text().splitlines()]


def test_a_one_name_list_is_what_breaks_the_bit_loader(tmp_path):
    one = tmp_path / "val.txt"
    one.write_text("000001.png\n")
    with pytest.raises(TypeError, match="unsized"):
        len(bit_names(one))  # what 6-14 samples gave before: np.loadtxt's 0-d array


@pytest.mark.parametrize("count, expected", [(3, {"train": 3}), (6, {"train": 2, "val": 2, "test": 2}),
                                             (10, {"train": 6, "val": 2, "test": 2})])
def test_bit_and_changeformer_read_every_list(tmp_path, tiny_model_dir, houston_label_path, count, expected):
    root = tmp_path / "levir"
    result = _make(root, tiny_model_dir, houston_label_path, count, seed=3)
    assert {k: v for k, v in result["splits"].items() if v} == expected
    seen = []
    for split in ("train", "val", "test"):
        path = root / "list" / f"{split}.txt"
        assert path.is_file() == (split in expected)  # a split too small to make has no list, never a 0- or 1-name one
        if not path.is_file():
            continue
        names = bit_names(path)
        assert names.ndim == 1 and len(names) == expected[split]
        for name in names:
            a, b = pil(root / "A" / name), pil(root / "B" / name)
            label = pil(root / "label" / name) // 255
            assert a.shape == b.shape == (64, 64, 3) and set(np.unique(label)) <= {0, 1}
        seen += list(names)
    assert sorted(seen) == [f"{i:06d}.png" for i in range(count)]
    if count == 3:
        assert "No val split" in (root / "README.md").read_text()


@pytest.fixture(scope="module")
def levir_split_folders(tmp_path_factory, tiny_model_dir, houston_label_path):
    root = tmp_path_factory.mktemp("readers") / "levir-splits"
    result = _make(root, tiny_model_dir, houston_label_path, 10, seed=4, split_folders=True)
    return root, result


def test_open_cd_torchgeo_and_torchange_glob_each_split_folder(levir_split_folders):
    root, result = levir_split_folders
    assert result["splits"] == {"train": 6, "val": 2, "test": 2}
    assert sorted(p.name for p in root.iterdir() if not p.name.startswith(".")) == [
        "README.md", "dataset.json", "manifest.jsonl", "test", "train", "val"]  # no flat A/, no list/
    assert not (root / ".staged").exists()
    found = []
    for split, n in result["splits"].items():
        # torchgeo LEVIRCD / torchange: sorted globs of A, B and label in the split folder, paired by position
        a = sorted(glob.glob(os.path.join(root, split, "A", "*.png")))
        b = sorted(glob.glob(os.path.join(root, split, "B", "*.png")))
        labels = sorted(glob.glob(os.path.join(root, split, "label", "*.png")))
        assert len(a) == len(b) == len(labels) == n
        assert [Path(p).name for p in a] == [Path(p).name for p in b] == [Path(p).name for p in labels]
        # open-cd (no annotation file): every file of img_path_from with the suffix, the others by the same name
        for img in (f for f in os.listdir(root / split / "A") if f.endswith(".png")):
            pair = [pil(root / split / "A" / img), pil(root / split / "B" / img)]
            seg = pil(root / split / "label" / img.replace(".png", ".png"))
            assert pair[0].shape == (64, 64, 3) and set(np.unique(seg)) <= {0, 255}
            found.append(img)
    assert sorted(found) == [f"{i:06d}.png" for i in range(10)]
    for r in _records(root):  # the manifest points at the files where they are
        assert all((root / rel).is_file() and rel.startswith(r["split"] + "/") for rel in r["files"].values())


@pytest.fixture(scope="module")
def second_dataset(tmp_path_factory, tiny_model_dir, houston_label_path):
    root = tmp_path_factory.mktemp("readers") / "second"
    result = _make(root, tiny_model_dir, houston_label_path, 10, seed=8, layout="second", split_folders=True,
                   split_fractions=(0.8, 0.0, 0.2))
    return root, result


def test_second_labels_decode_with_seconds_palette_into_the_intended_classes(second_dataset):
    root, result = second_dataset
    assert result["splits"] == {"train": 8, "val": 0, "test": 2}
    assert sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")) == ["test", "train"]
    lut = np.zeros(256, dtype=np.uint8)
    for code, index in OEM_TO_SECOND.items():
        lut[code] = index
    records = {r["name"]: r for r in _records(root)}
    shown = hidden = unchanged = 0
    for mode in ("train", "test"):  # RS_ST.read_RSimages(mode)
        data_list = os.listdir(os.path.join(root, mode, "im1"))
        assert len(data_list) == result["splits"][mode]
        for it in data_list:
            assert it[-4:] == ".png"
            img_a, img_b = pil(os.path.join(root, mode, "im1", it)), pil(os.path.join(root, mode, "im2", it))
            assert img_a.shape == img_b.shape == (64, 64, 3)
            raw1, raw2 = pil(os.path.join(root, mode, "label1", it)), pil(os.path.join(root, mode, "label2", it))
            assert raw1.shape == (64, 64, 3)  # RGB, not a palette image
            for raw in (raw1, raw2):  # Color2Index turns any colour outside the palette silently into "unchanged"
                colours = {tuple(c) for c in raw.reshape(-1, 3)}
                assert colours <= {tuple(c) for c in ST_COLORMAP}
            label1, label2 = color2index(raw1), color2index(raw2)
            pre, post, valid = sample_maps(root, records[it[:-4]])
            changed = (pre != post) & valid
            visible = changed & (lut[pre] != lut[post])
            assert np.array_equal(label1, np.where(visible, lut[pre], 0))
            assert np.array_equal(label2, np.where(visible, lut[post], 0))
            assert np.all(raw1[~changed] == 255) and np.all(raw2[~changed] == 255)  # unchanged -> white
            # torchange: label1_wo_cm beside im1, the same index, 0 = no change
            wo_cm = os.path.join(root, mode, "im1", it).replace("im1", "label1_wo_cm")
            assert np.array_equal(pil(wo_cm), label1)
            assert np.array_equal(pil(os.path.join(root, mode, "label2_wo_cm", it)), label2)
            # the whole maps in our classes beside them
            assert np.array_equal(pil(os.path.join(root, mode, "label1_full", it)), np.where(valid, pre, 0))
            assert np.array_equal(pil(os.path.join(root, mode, "label2_full", it)), np.where(valid, post, 0))
            shown += int(visible.sum())
            hidden += int((changed & ~visible).sum())
            unchanged += int((~changed).sum())
    assert shown and hidden and unchanged  # the sample exercises all three cases
    doc = json.loads((root / "classes.json").read_text())
    assert [c["color"] for c in doc["second"]["classes"]] == ST_COLORMAP
    assert {row["code"]: row["second_index"] for row in doc["second"]["mapping"]} == OEM_TO_SECOND
    card = (root / "README.md").read_text()
    assert "| road | ground | (128, 128, 128) |" in card and "samples hold changed land that the mapping hides" in card


def test_classes_layout_index_maps_read_as_codes(tmp_path, tiny_model_dir, houston_label_path):
    with rasterio.open(houston_label_path) as src:
        labels, profile = src.read(1), src.profile
    labels[:, :300] = 0  # nodata on the left: tiles across the edge hold no-data pixels
    semantic = tmp_path / "half.tif"
    profile.update(nodata=0)
    with rasterio.open(semantic, "w", **profile) as dst:
        dst.write(labels, 1)
    root = tmp_path / "classes"
    _make(root, tiny_model_dir, semantic, 4, tile=128, layout="classes", max_nodata=0.9, seed=2)
    manifest = json.loads((tiny_model_dir / "model.json").read_text())
    doc = json.loads((root / "classes.json").read_text())
    assert doc["no_data"] == 0 and doc["classes"] == manifest["classes"] and "second" not in doc
    saw_nodata = False
    for r in _records(root):
        image = Image.open(root / r["files"]["class1"])
        assert image.mode == "L"  # no palette: PIL, skimage and cv2 all give the codes
        pre, post, valid = sample_maps(root, r)
        assert np.array_equal(np.array(image), np.where(valid, pre, 0))
        assert np.array_equal(pil(root / r["files"]["class2"]), np.where(valid, post, 0))
        assert np.array_equal(pil(root / r["files"]["label"]) == 255, (pre != post) & valid)  # and LEVIR-CD's folders
        saw_nodata |= bool((~valid).any())
    assert saw_nodata
    listed = [n for split in ("train", "test") for n in bit_names(root / "list" / f"{split}.txt")]
    assert sorted(listed) == [f"{i:06d}.png" for i in range(4)] and not (root / "list" / "val.txt").exists()
    card = (root / "README.md").read_text()
    assert "| 8 | building | (222, 31, 7) |" in card and "`class1/`, `class2/`" in card


def test_geotiffs_keep_their_georeferencing_in_every_layout(tmp_path, tiny_model_dir, houston_label_path):
    root = tmp_path / "all-tif"
    _make(root, tiny_model_dir, houston_label_path, 3, layout="all", fmt="tif", split_folders=True, seed=6)
    with rasterio.open(houston_label_path) as src:
        crs, transform = src.crs, src.transform
    roles = set()
    for r in _records(root):
        row, col = r["window"]["row"], r["window"]["col"]
        for role, rel in r["files"].items():
            with rasterio.open(root / rel) as ds:
                assert ds.crs == crs and ds.transform.almost_equals(transform * transform.translation(col, row)), rel
                assert ds.count == (3 if role in ("A", "B", "im1", "im2", "label1", "label2") else 1)
            roles.add(role)
    assert roles == {"A", "B", "label", "im1", "im2", "label1", "label2", "label1_wo_cm", "label2_wo_cm", "label1_full",
                     "label2_full", "class1", "class2"}


def test_samples_whose_change_the_mapping_hides_can_be_skipped(tmp_path, tiny_model_dir, houston_label_path, second_dataset):
    counted, _ = second_dataset
    hidden = [r for r in _records(counted) if r["hidden_change_pixels"]]
    root = tmp_path / "skipping"
    result = _make(root, tiny_model_dir, houston_label_path, 10, seed=8, layout="second", split_folders=True,
                   split_fractions=(0.8, 0.0, 0.2), skip_hidden_change=True)
    kept = _records(root)
    # the same seed: exactly the samples the counting dataset found hidden change in are left out
    assert result["skipped_hidden_change"] == len(hidden) > 0 and result["count"] == 10 - len(hidden)
    assert {r["name"] for r in kept} == {r["name"] for r in _records(counted)} - {r["name"] for r in hidden}
    assert all(r["hidden_change_pixels"] == 0 for r in kept)
    on_disk = {p.stem for p in root.rglob("*.png")}
    assert on_disk == {r["name"] for r in kept}  # no file of a skipped sample
    assert f"{len(hidden)} of the 10 samples drawn were skipped" in (root / "README.md").read_text()
    again = _make(root, tiny_model_dir, houston_label_path, 10, seed=8, layout="second", split_folders=True,
                  split_fractions=(0.8, 0.0, 0.2), skip_hidden_change=True)
    assert again["generated"] == 0 and again["skipped_hidden_change"] == len(hidden)


def test_a_mapping_file_replaces_the_built_in_table(tmp_path, tiny_model_dir, houston_label_path):
    mapping = tmp_path / "mine.json"
    mapping.write_text(json.dumps({"bareland": "ground", "rangeland": "low vegetation", "developed space": "building",
                                   "road": "playground", "tree": 4, "water": "water", "agriculture land": "low vegetation",
                                   "8": "building"}))
    root = tmp_path / "mine"
    _make(root, tiny_model_dir, houston_label_path, 4, seed=8, layout="second", second_classes=str(mapping))
    lut = np.zeros(256, dtype=np.uint8)
    for code, index in {1: 2, 2: 3, 3: 5, 4: 6, 5: 4, 6: 1, 7: 3, 8: 5}.items():
        lut[code] = index
    for r in _records(root):
        pre, post, valid = sample_maps(root, r)
        visible = (pre != post) & valid & (lut[pre] != lut[post])
        assert np.array_equal(color2index(pil(root / r["files"]["label1"])), np.where(visible, lut[pre], 0))
    card = (root / "README.md").read_text()
    assert f"`{mapping}`" in card and "| road | playground | (255, 0, 0) |" in card
    assert f"--second-classes {mapping}" in card

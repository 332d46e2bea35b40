"""The training reader finds the tiles of the OpenEarthMap and LoveDA releases as users unpack them.

The releases are small but real: the bundled tiles of data/train linked (or cropped) into the releases'
folder layouts, with the releases' split lists.
"""

from __future__ import annotations

import os

import numpy as np
import pytest
from PIL import Image

from changeanywhere_qgis.engine.landcover import builtin_remap
from model_export.training.data import apply_remap, load_tile, scan_folder, scan_folders
from model_export.training.errors import DataError
from model_export.training.train import main

from training_helpers import TINY_CONFIG, TRAIN, read_tif, write_tif


def link(src, dst):
    dst.parent.mkdir(parents=True, exist_ok=True)
    os.symlink(src, dst)


@pytest.fixture
def oem_release(tmp_path):
    """OpenEarthMap_wo_xBD as unpacked: region folders, split lists of file names; test tiles have no label."""
    root = tmp_path / "OpenEarthMap_wo_xBD"
    for region, stem in (("adelaide", "adelaide_2"), ("houston", "houston_16")):
        for kind in ("images", "labels"):
            link(TRAIN / "oem" / kind / f"{stem}.tif", root / region / kind / f"{stem}.tif")
    image = read_tif(TRAIN / "oem" / "images" / "houston_16.tif")
    label = read_tif(TRAIN / "oem" / "labels" / "houston_16.tif")[..., 0]
    write_tif(root / "houston" / "images" / "houston_1.tif", image[:256, :256])  # val: image and label
    write_tif(root / "houston" / "labels" / "houston_1.tif", label[:256, :256])
    write_tif(root / "houston" / "images" / "houston_2.tif", image[256:512, :256])  # test: image only
    (root / "train.txt").write_text("adelaide_2.tif\nhouston_16.tif\n")
    (root / "val.txt").write_text("houston_1.tif\n")
    (root / "test.txt").write_text("houston_2.tif\n")
    return root


@pytest.fixture
def loveda_release(tmp_path):
    """LoveDA as its Train and Val archives unpack: Train/Urban, Train/Rural, Val/Urban (no Test)."""
    root = tmp_path / "LoveDA"
    for split, scene, n in (("Train", "Urban", "0"), ("Train", "Rural", "1"), ("Val", "Urban", "2")):
        link(TRAIN / "loveda" / "images" / f"{n}.png", root / split / scene / "images_png" / f"{n}.png")
        link(TRAIN / "loveda" / "labels" / f"{n}.png", root / split / scene / "masks_png" / f"{n}.png")
    return root


def stems(tiles):
    return sorted(t.stem for t in tiles)


def test_openearthmap_release_splits(oem_release):
    assert stems(scan_folder(str(oem_release))) == ["adelaide_2", "houston_16"]  # train.txt by default
    (val,) = scan_folder(str(oem_release), "val")
    assert val.stem == "houston_1" and val.label_path.name == "houston_1.tif" and (val.height, val.width) == (256, 256)
    (test,) = scan_folder(str(oem_release), "test")
    assert test.stem == "houston_2" and test.label_path is None  # kept for the autoencoder only
    assert len(scan_folder(str(oem_release), "all")) == 4
    train = {t.stem: t for t in scan_folders([str(oem_release)])}
    np.testing.assert_array_equal(load_tile(train["houston_16"])[1],
                                  read_tif(TRAIN / "oem" / "labels" / "houston_16.tif")[..., 0])


def test_openearthmap_list_naming_a_missing_tile(oem_release):
    (oem_release / "val.txt").write_text("houston_1.tif\nkyoto_9.tif\n")
    with pytest.raises(DataError, match=r"val\.txt lists 1 of its 2 tiles .*kyoto_9\.tif.*incomplete"):
        scan_folder(str(oem_release), "val")


def test_openearthmap_without_the_split_list(oem_release):
    (oem_release / "val.txt").unlink()
    with pytest.raises(DataError, match=r"OpenEarthMap release \(2 region folders\) but has no val\.txt.*--split all"):
        scan_folder(str(oem_release), "val")
    assert len(scan_folder(str(oem_release), "all")) == 4


def test_loveda_release_splits_and_its_remap(loveda_release):
    train = scan_folder(str(loveda_release))
    assert stems(train) == ["0", "1"]
    assert [t.image_path.parent.parent.name for t in sorted(train, key=lambda t: t.stem)] == ["Urban", "Rural"]
    (val,) = scan_folder(str(loveda_release), "val")
    raw = np.asarray(Image.open(TRAIN / "loveda" / "labels" / "2.png"))
    assert raw.max() == 7  # LoveDA's own codes, which mean other classes in OpenEarthMap codes
    np.testing.assert_array_equal(load_tile(val)[1], apply_remap(raw, builtin_remap("loveda")))
    assert stems(scan_folder(str(loveda_release / "Train"))) == ["0", "1"]  # one split's folder
    assert stems(scan_folder(str(loveda_release), "all")) == ["0", "1", "2"]
    with pytest.raises(DataError, match=r"LoveDA release but has no Test/Urban/images_png.*\(it has Train, Val\)"):
        scan_folder(str(loveda_release), "test")


def test_a_folder_of_no_known_layout_names_them_and_what_it_holds(tmp_path):
    link(TRAIN / "oem" / "images" / "houston_16.tif", tmp_path / "tiles" / "houston_16.tif")
    (tmp_path / "notes.txt").write_text("my tiles")
    with pytest.raises(DataError) as err:
        scan_folder(str(tmp_path))
    text = str(err.value)
    assert "matches none of the training data layouts; it holds notes.txt, tiles/." in text
    for expected in ("/images and", "<region>/images", "train.txt, val.txt and test.txt", "Train/Urban/images_png"):
        assert expected in text


def test_training_reads_a_release_split_through_the_command_line(oem_release, tmp_path, capsys):
    common = ["--stage", "autoencoder", "--config", str(TINY_CONFIG), "--data", str(oem_release),
              "--max-steps", "2", "--threads", "1"]
    assert main([*common, "--split", "val", "--out", str(tmp_path / "ae")]) == 0
    (oem_release / "val.txt").unlink()
    assert main([*common, "--split", "val", "--out", str(tmp_path / "ae2")]) == 2
    assert "has no val.txt" in capsys.readouterr().err

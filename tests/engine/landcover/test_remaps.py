"""Remaps into the model's classes: the built-in tables (LoveDA, Dubai, FLAIR), users' JSON files, colour masks."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from changeanywhere_qgis.engine.errors import InputError
from changeanywhere_qgis.engine.landcover import builtin_remap, builtin_remaps, codes_from_colours, load_remap, mask_colours

REPO = Path(__file__).resolve().parents[3]
SOURCES = REPO / "tests" / "data" / "sources"  # original colour masks, copied unchanged from the datasets
OEM_CODES = {0} | {c["code"] for c in json.loads((REPO / "changeanywhere_qgis/models/default/model.json").read_text())["classes"]}


def test_builtin_tables_cover_their_schemes_and_land_in_the_models_codes():
    assert {"loveda", "dubai", "flair"} <= set(builtin_remaps())
    schemes = {"loveda": range(0, 8), "dubai": range(0, 7), "flair": range(0, 20)}
    for name, codes in schemes.items():
        table = builtin_remap(name)
        assert set(table) == set(codes), name  # every code of the scheme is mapped, no other
        assert set(table.values()) <= OEM_CODES, name
        lut = load_remap(name)
        assert [int(lut[c]) for c in codes] == [table[c] for c in codes]
    assert builtin_remap("LoveDA") == builtin_remap("loveda")  # names in any case
    # the choices the tables document
    assert builtin_remap("flair")[3] == 4 and builtin_remap("flair")[13] == 6 and builtin_remap("dubai")[2] == 1


def test_the_tables_colours_decode_the_datasets_own_masks():
    dubai = np.asarray(Image.open(SOURCES / "dubai" / "tile_2_image_part_003.png").convert("RGB"))
    codes = codes_from_colours(dubai, mask_colours("dubai"))
    assert codes.shape == dubai.shape[:2] and set(np.unique(codes)) <= set(range(7))
    # a pixel of each colour comes back as the code listed for that colour
    for (r, g, b), code in mask_colours("dubai").items():
        where = (dubai == (r, g, b)).all(axis=-1)
        assert (codes[where] == code).all()
    flair = np.asarray(Image.open(SOURCES / "flair" / "MSK_067998.png").convert("RGB"))
    assert set(np.unique(codes_from_colours(flair, mask_colours("flair")))) == {1, 2, 3, 5, 7, 10, 19}


def test_an_unknown_colour_is_named():
    rgb = np.zeros((2, 2, 3), np.uint8)
    rgb[0, 0] = (1, 2, 3)
    with pytest.raises(InputError, match="#010203"):
        codes_from_colours(rgb, mask_colours("dubai"), what="Mask m.png")


def test_user_json_remaps_and_their_errors(tmp_path):
    table = tmp_path / "mine.json"
    table.write_text(json.dumps({"_about": "comments are allowed", "10": 8, "20": 5}))
    lut = load_remap(str(table))
    assert lut[10] == 8 and lut[20] == 5 and lut[7] == 7  # unnamed codes keep their value
    with pytest.raises(InputError, match="neither a built-in table .*dubai.*flair.*loveda.*nor a file"):
        load_remap("nosuch")
    (tmp_path / "bad.json").write_text("[1, 2]")
    with pytest.raises(InputError, match="JSON object"):
        load_remap(str(tmp_path / "bad.json"))
    (tmp_path / "range.json").write_text(json.dumps({"300": 1}))
    with pytest.raises(InputError, match="outside 0..255"):
        load_remap(str(tmp_path / "range.json"))

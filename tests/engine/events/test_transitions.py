"""Transition tables: the bundled OpenEarthMap rules, user tables by name or code, clear errors."""

import json

import pytest

from changeanywhere_qgis.engine.errors import InputError
from changeanywhere_qgis.engine.events import DEFAULT_TABLE_PATH, TransitionTable, builtin_tables, default_table, load_table
from changeanywhere_qgis.engine.landcover import ClassScheme

# method.md: Changen2's public OpenEarthMap rules.
CHANGEN2 = {
    "bareland": {"rangeland", "developed space", "tree", "water", "agriculture land"},
    "road": {"bareland", "developed space", "tree", "water"},
    "building": {"developed space", "tree", "water"},
    "agriculture land": {"bareland", "rangeland", "developed space", "tree", "water"},
}

LOVEDA_NATIVE = ClassScheme.from_manifest(
    {
        "nodata_code": 0,
        "classes": [
            {"code": i, "name": n, "color": [0, 0, 0]}
            for i, n in enumerate(["background", "building", "road", "water", "barren", "forest", "agriculture"], 1)
        ],
    }
)


def test_default_table_follows_the_published_rules(oem_scheme):
    table = default_table(oem_scheme).to_dict(oem_scheme)
    for src, targets in CHANGEN2.items():
        assert set(table[src]) == targets, src
    # "agriculture -> anything but road and building"
    others = {c.name for c in oem_scheme.classes} - {"agriculture land", "road", "building"}
    assert set(table["agriculture land"]) == others


def test_default_table_covers_every_class_and_documents_why(oem_scheme):
    table = default_table(oem_scheme)
    data = json.loads(DEFAULT_TABLE_PATH.read_text())
    for c in oem_scheme.classes:
        targets = table.targets(c.code)
        assert targets, c.name
        assert c.code not in targets and oem_scheme.nodata_code not in targets
        assert c.name in data["transitions"] and data["notes"][c.name]


def test_other_scheme_gets_any_other_class():
    table = default_table(LOVEDA_NATIVE)
    assert table.allowed == {}
    assert set(table.targets(2)) == {1, 3, 4, 5, 6, 7}


def test_user_table_by_names_and_codes(oem_scheme):
    table = load_table({"building": ["water", "Tree"], "2": [5], "road": []}, oem_scheme)
    assert table.targets(8) == (6, 5)
    assert table.targets(2) == (5,)
    assert table.targets(4) == ()  # [] = never changes
    assert set(table.targets(6)) == set(oem_scheme.codes) - {6}  # unlisted: any other class
    m = table.matrix()
    assert m[8, 6] and not m[8, 3] and not m[4].any()


def test_buildings_table_changes_buildings_alone(oem_scheme, tmp_path, monkeypatch):
    """`--transitions buildings`: building change as building change-detection sets label it, nothing else."""
    assert builtin_tables() == ["buildings", "oem"]
    table = load_table("Buildings", oem_scheme)
    building = oem_scheme.resolve("building")
    for c in oem_scheme.classes:
        if c.code == building:
            assert {oem_scheme.name_of(t) for t in table.targets(c.code)} == {"bareland", "developed space"}
        else:  # every other class may only become a building, or never changes
            assert set(table.targets(c.code)) <= {building}, c.name
    assert not table.targets(oem_scheme.resolve("water")) and not table.targets(oem_scheme.resolve("road"))
    assert load_table("oem", oem_scheme) == default_table(oem_scheme)
    data = json.loads((DEFAULT_TABLE_PATH.parent / "buildings_transitions.json").read_text())
    assert all(data["notes"][c.name] for c in oem_scheme.classes)
    # the built-in name wins over a file of that name in the working folder, as built-in remaps do
    monkeypatch.chdir(tmp_path)
    (tmp_path / "buildings").write_text(json.dumps({"water": ["bareland"]}))
    assert load_table("buildings", oem_scheme) == table
    with pytest.raises(InputError, match=r"'nothing' is not a built-in table \(buildings, oem\)"):
        load_table("nothing", oem_scheme)


def test_user_table_from_file_and_bundled_file_round_trip(oem_scheme, tmp_path):
    path = tmp_path / "t.json"
    path.write_text(json.dumps({"water": ["bareland"]}))
    assert load_table(path, oem_scheme).targets(6) == (1,)
    assert load_table(str(path), oem_scheme).targets(6) == (1,)
    assert load_table(DEFAULT_TABLE_PATH, oem_scheme) == default_table(oem_scheme)
    assert load_table(None, oem_scheme) == default_table(oem_scheme)
    assert load_table('{"8": ["6"]}', oem_scheme).targets(8) == (6,)
    table = TransitionTable.any_other(oem_scheme)
    assert load_table(table, oem_scheme) is table


@pytest.mark.parametrize(
    "spec, words",
    [
        ({"lava": ["water"]}, ["unknown class 'lava'", "water"]),
        ({"building": ["lava"]}, ["'building' -> 'lava'", "8=building"]),
        ({"building": "water"}, ["must be a list", '["water", "tree"]']),
        ({"building": [1.5]}, ["not a class"]),
        ({"building": ["water"], "8": ["tree"]}, ["listed twice"]),
        ({"0": ["water"]}, ["unknown class '0'"]),
    ],
)
def test_bad_tables_say_what_and_how(oem_scheme, spec, words):
    with pytest.raises(InputError) as err:
        load_table(spec, oem_scheme)
    for w in words:
        assert w in str(err.value)


def test_bad_files(oem_scheme, tmp_path):
    with pytest.raises(InputError, match="does not exist"):
        load_table(tmp_path / "missing.json", oem_scheme)
    broken = tmp_path / "broken.json"
    broken.write_text('{"building": ["water"')
    with pytest.raises(InputError, match="not valid JSON"):
        load_table(broken, oem_scheme)
    listed = tmp_path / "list.json"
    listed.write_text('["water"]')
    with pytest.raises(InputError, match="JSON object"):
        load_table(listed, oem_scheme)

"""SECOND as SECOND means it: six classes in SECOND's palette, white where nothing changed.

SECOND labels only the changed land: ``label1``/``label2`` are RGB PNGs, white (255, 255, 255) where the land
did not change, elsewhere the class before/after in SECOND's colours (``second_classes.json``, the palette that
SCanNet / Bi-SRNet's ``Color2Index`` decodes). The model's classes are mapped into SECOND's by a table of class
names (built in for OpenEarthMap, or the user's JSON file). Where a change stays inside one SECOND class (road
to developed space: both "ground") the mapping hides it: SECOND's labels show no change there, so such
pixels are white, and the samples holding them are counted (and may be skipped).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ...errors import InputError
from ...landcover import ClassScheme

TABLE_FILE = Path(__file__).with_name("second_classes.json")


def _normalise(name: str) -> str:
    return re.sub(r"[\s_\-]+", " ", str(name).strip().lower())


@dataclass(frozen=True)
class SecondClass:
    index: int
    name: str
    color: tuple[int, int, int]


@dataclass(frozen=True)
class SecondClasses:
    """SECOND's classes and the model's classes mapped into them."""

    classes: tuple[SecondClass, ...]  # index 1..6
    unchanged: SecondClass  # index 0, white
    mapping: tuple[tuple[int, int], ...]  # (model's class code, SECOND index)
    source: str  # "built-in" or the JSON file

    def lut(self) -> np.ndarray:
        """uint8 [256]: the model's code -> SECOND index (0 for nodata and unknown codes)."""
        table = np.zeros(256, dtype=np.uint8)
        for code, index in self.mapping:
            table[code] = index
        return table

    def colours(self) -> np.ndarray:
        """uint8 [256, 3]: SECOND index -> its colour (white for 0 and unused indices)."""
        table = np.full((256, 3), 255, dtype=np.uint8)
        for c in self.classes:
            table[c.index] = c.color
        return table

    def colormap(self) -> dict[int, tuple[int, int, int, int]]:
        """GeoTIFF colour table of the index maps (``label1_wo_cm``): 0 unchanged white."""
        table = {self.unchanged.index: (*self.unchanged.color, 255)}
        table.update({c.index: (*c.color, 255) for c in self.classes})
        return table

    def name_of(self, index: int) -> str:
        return next((c.name for c in self.classes if c.index == index), self.unchanged.name)

    def rows(self, scheme: ClassScheme) -> list[dict]:
        """The mapping as the card and classes.json print it: one row per class of the model."""
        return [{"code": code, "class": scheme.name_of(code), "second": self.name_of(index), "second_index": index}
                for code, index in self.mapping]

    def to_spec(self, scheme: ClassScheme) -> dict:
        return {"source": self.source, "mapping": {scheme.name_of(code): self.name_of(index) for code, index in self.mapping},
                "classes": [{"index": c.index, "name": c.name, "color": list(c.color)} for c in (self.unchanged, *self.classes)]}


def _table() -> dict:
    return json.loads(TABLE_FILE.read_text())


def _second_index(value, classes: tuple[SecondClass, ...], aliases: dict[str, int], where: str) -> int:
    if isinstance(value, bool):
        value = None
    if isinstance(value, int) or (isinstance(value, str) and value.strip().isdigit()):
        if 1 <= int(value) <= len(classes):
            return int(value)
    elif isinstance(value, str) and _normalise(value) in aliases:
        return aliases[_normalise(value)]
    known = ", ".join(f"{c.index}={c.name}" for c in classes)
    raise InputError(f"{where}: {value!r} is not one of SECOND's classes. Use a name or index: {known}.")


def load_second_classes(path: str | Path | None, scheme: ClassScheme) -> SecondClasses:
    """The built-in mapping (``path`` None) or the user's JSON file ``{"our class name or code": "SECOND class"}``;
    every class of the model must be mapped."""
    table = _table()
    classes = tuple(SecondClass(int(c["index"]), c["name"], tuple(c["color"])) for c in table["classes"])
    unchanged = SecondClass(int(table["unchanged"]["index"]), table["unchanged"]["name"], tuple(table["unchanged"]["color"]))
    aliases = {_normalise(c["name"]): int(c["index"]) for c in table["classes"]}
    aliases.update({_normalise(a): int(c["index"]) for c in table["classes"] for a in c["aliases"]})
    if path is None:
        given, where = table["default_mapping"], "The built-in SECOND mapping"
    else:
        where = f"SECOND class mapping {path}"
        if not Path(path).is_file():
            raise InputError(f"{where} does not exist. Give a JSON file {{\"our class name or code\": \"SECOND class\"}}.")
        try:
            given = json.loads(Path(path).read_text())
        except ValueError as exc:
            raise InputError(f"{where} is not valid JSON ({exc}).") from exc
        if not isinstance(given, dict) or not given:
            raise InputError(f"{where} must be a JSON object {{\"our class name or code\": \"SECOND class\"}}, "
                             f"e.g. {{\"road\": \"ground\", \"tree\": \"tree\"}}.")
    mapping: dict[int, int] = {}
    for key, value in given.items():
        try:
            code = scheme.resolve(key)
        except InputError:
            if path is None:
                continue  # the built-in table names OpenEarthMap's classes; a model without one of them simply lacks it
            known = ", ".join(f"{c.code}={c.name}" for c in scheme.classes)
            raise InputError(f"{where}: {key!r} is not a class of the model. Use the model's class names or codes: {known}.") from None
        mapping[code] = _second_index(value, classes, aliases, f"{where}, class {key!r}")
    missing = [c for c in scheme.classes if c.code not in mapping]
    if missing:
        names = ", ".join(repr(c.name) for c in missing)
        fix = ("Give a mapping for every class with --second-classes FILE.json" if path is None
               else "Add them to the file")
        raise InputError(f"{where} maps no SECOND class to the model's class(es) {names}. {fix} "
                         f"(SECOND's classes: {', '.join(c.name for c in classes)}).")
    return SecondClasses(classes, unchanged, tuple(sorted(mapping.items())), "built-in" if path is None else str(path))


def second_labels(pre: np.ndarray, post: np.ndarray, mask: np.ndarray, second: SecondClasses):
    """(label1, label2 SECOND indices [H, W] uint8, 0 = no change; hidden bool [H, W]: changed land whose
    class before and after fall into one SECOND class)."""
    lut = second.lut()
    before, after = lut[pre], lut[post]
    changed = mask == 1
    hidden = changed & (before == after)
    shown = changed & ~hidden
    return np.where(shown, before, 0).astype(np.uint8), np.where(shown, after, 0).astype(np.uint8), hidden


def colour_label(index: np.ndarray, second: SecondClasses) -> np.ndarray:
    """SECOND index map [H, W] -> RGB [3, H, W] in SECOND's palette (white = unchanged)."""
    return np.moveaxis(second.colours()[index], -1, 0)


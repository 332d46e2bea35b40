"""Transition tables: which land-cover classes each class may turn into in simulated change events.

A table maps a from-class to the classes it may become. A class the table does not list may
become any other class of the scheme; a class listed with an empty list never changes.

Tables are written by class NAME (so one file serves every model whose scheme has those names)
or by code. The bundled OpenEarthMap table (``data/oem_transitions.json``) follows Changen2's public
rules where they exist; the file's ``notes`` say why each remaining rule is what it is. Built-in tables
are named by their file, ``data/<name>_transitions.json``: ``oem`` (the default) and ``buildings`` (building
change alone, as building change-detection sets label it).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import InputError
from ..landcover import ClassScheme

TABLES = Path(__file__).resolve().parent / "data"
DEFAULT_TABLE_PATH = TABLES / "oem_transitions.json"


def builtin_tables() -> list[str]:
    """The names ``--transitions`` accepts besides a file or JSON text, e.g. ``buildings``."""
    return sorted(p.name[: -len("_transitions.json")] for p in TABLES.glob("*_transitions.json"))


@dataclass(frozen=True)
class TransitionTable:
    """from-code -> allowed to-codes. ``codes``: every class of the scheme (nodata excluded)."""

    codes: tuple[int, ...]
    allowed: dict[int, tuple[int, ...]] = field(default_factory=dict)

    @classmethod
    def any_other(cls, scheme: ClassScheme) -> "TransitionTable":
        """The permissive table: every class may become any other class."""
        return cls(tuple(c for c in scheme.codes if c != scheme.nodata_code), {})

    def targets(self, from_code: int) -> tuple[int, ...]:
        """Classes ``from_code`` may turn into (never itself)."""
        from_code = int(from_code)
        if from_code in self.allowed:
            return tuple(c for c in self.allowed[from_code] if c != from_code)
        if from_code not in self.codes:
            return ()
        return tuple(c for c in self.codes if c != from_code)

    def allows(self, from_code: int, to_code: int) -> bool:
        return int(to_code) in self.targets(from_code)

    def matrix(self) -> np.ndarray:
        """bool [256, 256]: ``m[a, b]`` is True where class a may become class b."""
        m = np.zeros((256, 256), dtype=bool)
        for a in self.codes:
            for b in self.targets(a):
                m[a, b] = True
        return m

    def to_dict(self, scheme: ClassScheme) -> dict[str, list[str]]:
        """The full table by class name (every class listed), e.g. for run metadata."""
        return {scheme.name_of(a): [scheme.name_of(b) for b in self.targets(a)] for a in self.codes}


def _known(scheme: ClassScheme) -> str:
    return ", ".join(f"{c.code}={c.name}" for c in scheme.classes)


def _resolve(scheme: ClassScheme, value, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, str, np.integer)):
        raise InputError(
            f"Transition table {where}: {value!r} is not a class. Give a class name or code "
            f"(the model's classes: {_known(scheme)})."
        )
    try:
        code = scheme.resolve(value)
    except InputError:
        raise InputError(
            f"Transition table {where}: unknown class {value!r}. Use the model's classes "
            f"(name or code): {_known(scheme)}."
        ) from None
    if code == scheme.nodata_code:
        raise InputError(
            f"Transition table {where}: code {code} is the no-data class, which never changes. "
            "Remove it from the table."
        )
    return code


def _table_from_mapping(mapping: dict, scheme: ClassScheme, what: str) -> TransitionTable:
    if isinstance(mapping.get("transitions"), dict):
        mapping = mapping["transitions"]
    allowed: dict[int, tuple[int, ...]] = {}
    for key, values in mapping.items():
        src = _resolve(scheme, key, f"{what}, key {key!r}")
        if src in allowed:
            raise InputError(
                f"Transition table {what}: class {scheme.name_of(src)} ({src}) is listed twice "
                f"(as {key!r} and once more by name or code). Keep one entry per class."
            )
        if not isinstance(values, (list, tuple)):
            raise InputError(
                f"Transition table {what}: the value for {key!r} must be a list of classes, "
                f'got {values!r}. Write e.g. {{"{key}": ["water", "tree"]}} ([] = never changes).'
            )
        targets: list[int] = []
        for v in values:
            dst = _resolve(scheme, v, f"{what}, {key!r} -> {v!r}")
            if dst != src and dst not in targets:
                targets.append(dst)
        allowed[src] = tuple(targets)
    codes = tuple(c for c in scheme.codes if c != scheme.nodata_code)
    return TransitionTable(codes, allowed)


def load_table(spec, scheme: ClassScheme) -> TransitionTable:
    """A user's table from a built-in name (:func:`builtin_tables`), a JSON file path, a JSON text, a dict or a
    TransitionTable; a built-in name wins over a file of that name, as built-in remaps do.

    Format: ``{"building": ["water", "tree"], "2": [5]}``: keys and values are class names (any
    case) or codes; optionally wrapped as ``{"transitions": {...}}`` like the bundled table. Classes
    not listed may become any other class. ``None`` gives :func:`default_table`.
    """
    if spec is None:
        return default_table(scheme)
    if isinstance(spec, TransitionTable):
        return spec
    if isinstance(spec, dict):
        return _table_from_mapping(spec, scheme, "(given as a dict)")
    text = str(spec)
    if isinstance(spec, str) and text.lstrip().startswith("{"):
        what, raw = "(JSON text)", text
    else:
        path = Path(spec)
        if isinstance(spec, str) and text.lower() in builtin_tables():
            path = TABLES / f"{text.lower()}_transitions.json"
        if not path.is_file():
            raise InputError(
                f"Transition table file {path} does not exist, and {text!r} is not a built-in table ({', '.join(builtin_tables())}). "
                'Give a built-in name or a JSON file like {"building": ["water", "tree"], "road": ["bareland"]}.'
            )
        what = str(path)
        try:
            raw = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise InputError(f"Transition table file {path} cannot be read ({exc}). Give a UTF-8 JSON file.") from exc
    try:
        mapping = json.loads(raw)
    except ValueError as exc:
        raise InputError(
            f"Transition table {what} is not valid JSON ({exc}). Expected "
            '{"from class": ["to class", ...], ...}.'
        ) from exc
    if not isinstance(mapping, dict):
        raise InputError(
            f"Transition table {what} must hold a JSON object mapping each class to a list of "
            'classes, e.g. {"building": ["water", "tree"]}.'
        )
    return _table_from_mapping(mapping, scheme, what)


def default_table(scheme: ClassScheme) -> TransitionTable:
    """The bundled OpenEarthMap table where the scheme has all its class names; else any-to-any.

    Partial matches (a scheme sharing only some names) get the permissive table: half a table
    would forbid changes for reasons that belong to classes the scheme does not have.
    """
    data = json.loads(DEFAULT_TABLE_PATH.read_text(encoding="utf-8"))
    names = set(data["transitions"])
    for values in data["transitions"].values():
        names.update(values)
    try:
        for name in names:
            scheme.resolve(name)
    except InputError:
        return TransitionTable.any_other(scheme)
    return _table_from_mapping(data, scheme, str(DEFAULT_TABLE_PATH.name))

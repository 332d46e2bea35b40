"""Each change-detection net's figures of the usefulness test, one small JSON file per net, so that a long evaluation
(``make quality``: hours on two cores) resumes across sessions and machines: a rerun with the same settings reads the
nets whose file matches and trains only the missing ones.

A file matches when its key is equal: the arm, the net's seed and the settings that change a figure, and the identity of
the data it was trained on. That identity hashes what the dataset (or baseline) command recorded of each folder: its
spec (``dataset.json`` or ``baseline.json``), its manifest records (sorted, since workers append them in any order) and
its split lists; absolute paths become file names and commands are dropped, so that the same command remade on another
machine, under another checkout path, gives the same identity, while another seed, count, map or model does not.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from pathlib import Path

SPEC_FILES = ("dataset.json", "baseline.json")


def _portable(value):
    """JSON with every absolute path reduced to its file name and every recorded command left out."""
    if isinstance(value, dict):
        return {k: _portable(v) for k, v in value.items() if k != "command"}
    if isinstance(value, list):
        return [_portable(v) for v in value]
    if isinstance(value, str) and (value.startswith("/") or re.match(r"^[A-Za-z]:[\\/]", value)):
        return re.split(r"[\\/]", value)[-1]
    return value


def folder_identity(folder) -> str:
    """sha256 of a dataset folder's spec, manifest records and split lists (see the module's docstring)."""
    root = Path(folder)
    spec = next((root / name for name in SPEC_FILES if (root / name).is_file()), None)
    if spec is None:
        raise FileNotFoundError(f"No {' or '.join(SPEC_FILES)} in {root}.")
    records = [json.loads(line) for line in (root / "manifest.jsonl").read_text().splitlines() if line.strip()]
    records.sort(key=lambda r: str(r.get("name", r.get("index"))))
    lists = {p.name: sorted(p.read_text().split()) for p in sorted((root / "list").glob("*.txt"))}
    content = {"spec": _portable(json.loads(spec.read_text())), "records": _portable(records), "lists": lists}
    return hashlib.sha256(json.dumps(content, sort_keys=True).encode()).hexdigest()


def folders_identity(folders) -> list[str]:
    return [folder_identity(f) for f in folders]


def test_set_identity(folder) -> dict:
    """The real pairs a test set holds: its file names and sizes (the pairs' pixels are not rehashed each run)."""
    root = Path(folder)
    files = sorted((p.relative_to(root).as_posix(), p.stat().st_size)
                   for sub in ("A", "B", "label") for p in (root / sub).glob("*") if p.is_file())
    return {"files": len(files), "sha256": hashlib.sha256(json.dumps(files).encode()).hexdigest()}


def file_name(arm: str, net_seed: int) -> str:
    return f"{re.sub(r'[^a-z0-9]+', '-', arm.lower()).strip('-')}-seed{net_seed}.json"


class NetCache:
    """A folder of one JSON file per (arm, net seed): ``{"key": ..., "figures": ...}``."""

    def __init__(self, folder):
        self.folder = Path(folder)

    def load(self, arm: str, net_seed: int, key: dict):
        """The figures stored for this key, or None (no file, or one made from other data or settings)."""
        path = self.folder / file_name(arm, net_seed)
        if not path.is_file():
            return None
        try:
            stored = json.loads(path.read_text())
        except (OSError, ValueError):
            return None  # a damaged file is trained again, never trusted
        return stored.get("figures") if stored.get("key") == json.loads(json.dumps(key)) else None

    def save(self, arm: str, net_seed: int, key: dict, figures: dict) -> Path:
        """Written under a temporary name and moved into place: a killed run leaves either the old file or the new one."""
        self.folder.mkdir(parents=True, exist_ok=True)
        path = self.folder / file_name(arm, net_seed)
        tmp = path.with_name(path.name + ".partial")
        tmp.write_text(json.dumps({"key": key, "figures": figures}, indent=1, sort_keys=True, default=float))
        os.replace(tmp, path)
        return path

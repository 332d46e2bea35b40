"""Pairs to train and score on: generated datasets in any layout the dataset command writes (LEVIR-CD or SECOND, flat
with list/*.txt or one folder per split, PNG or GeoTIFF), and folders of real pairs in LEVIR-CD's layout (A/, B/,
label/, all pairs, no split). Pairs are read when a batch needs them, so a dataset of any size trains in the same memory.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from changeanywhere_qgis.engine.io import read_change, read_raster

IMAGE_SUFFIXES = (".png", ".tif", ".tiff", ".jpg")


@dataclass(frozen=True)
class Pair:
    before: Path
    after: Path
    root: Path
    files: dict  # role -> path relative to root, as the dataset's manifest gives it (read_change reads the label)

    def load(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(A uint8 [3, H, W], B uint8 [3, H, W], change bool [H, W])."""
        return read_raster(self.before)[:3], read_raster(self.after)[:3], read_change(self.root, self.files)


class DataError(Exception):
    """A dataset folder that cannot be read; the message says why and what to give instead."""


def _records(root: Path) -> list[dict]:
    path = root / "manifest.jsonl"
    if not path.is_file():
        raise DataError(f"{root} holds no manifest.jsonl: it is not a finished dataset of `python -m changeanywhere_qgis dataset` "
                        "(or of the baselines). Finish it by rerunning its command, or give a folder of real pairs with --finetune.")
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def dataset_pairs(root: str | Path) -> dict[str, list[Pair]]:
    """split -> pairs of a generated dataset, whatever its layout (LEVIR-CD's A/B, else SECOND's im1/im2)."""
    root = Path(root)
    out: dict[str, list[Pair]] = {"train": [], "val": [], "test": []}
    for record in _records(root):
        files = record.get("files") or {}
        if record.get("skipped") or not files:
            continue
        a, b = ("A", "B") if "A" in files else ("im1", "im2")
        if a not in files:
            raise DataError(f"{root}: sample {record.get('name')} has neither A/B nor im1/im2 files; this layout holds no image pairs.")
        out.setdefault(record.get("split", "train"), []).append(Pair(root / files[a], root / files[b], root, files))
    if not any(out.values()):
        raise DataError(f"{root} lists no samples in manifest.jsonl.")
    return out


def real_pairs(root: str | Path) -> list[Pair]:
    """Every pair of a LEVIR-CD-layout folder (A/, B/, label/ with 0/255 labels), e.g. data/levir-cd."""
    root = Path(root)
    if not (root / "A").is_dir() or not (root / "B").is_dir() or not (root / "label").is_dir():
        raise DataError(f"{root} is not a folder of real pairs in LEVIR-CD's layout (A/, B/ and label/ with the same file names).")
    names = sorted(p.name for p in (root / "A").iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    if not names:
        raise DataError(f"{root / 'A'} holds no images.")
    return [Pair(root / "A" / n, root / "B" / n, root, {"label": f"label/{n}"}) for n in names]


def load_pairs(pairs: list[Pair]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Stacked (A, B, change) of pairs of one size."""
    loaded = [p.load() for p in pairs]
    return np.stack([x[0] for x in loaded]), np.stack([x[1] for x in loaded]), np.stack([x[2] for x in loaded])


def dataset_provenance(root: str | Path, splits: dict[str, list[Pair]]) -> dict:
    """What the package's manifest says of a training dataset: its path, samples by split, and the command that makes it
    (its card's), so anyone can make the same data again."""
    root = Path(root)
    entry = {"path": str(root), "samples": {k: len(v) for k, v in splits.items()}}
    spec_path = root / "dataset.json"
    if spec_path.is_file():
        spec = json.loads(spec_path.read_text(encoding="utf-8"))
        command = spec.get("command")  # the baselines record theirs
        if command is None and "settings" in spec:
            from changeanywhere_qgis.engine.dataset.card import dataset_command

            command = dataset_command(spec, int(spec.get("count", sum(entry["samples"].values()))), str(root))
        entry["command"] = command
        entry["card"] = str(root / "README.md") if (root / "README.md").is_file() else None
    return entry

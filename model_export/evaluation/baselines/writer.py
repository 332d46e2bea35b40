"""A baseline dataset on disk, in the LEVIR-CD layout exactly as ``python -m changeanywhere_qgis dataset --layout levir
--format png`` writes it: ``A/``, ``B/``, ``label/`` (0 unchanged, 255 changed) as 8-bit PNGs written by the engine's own
``write_sample``, the splits in ``list/{train,val,test}.txt`` drawn as the dataset command draws them
(``assign_splits``, same seed: the same samples in each split), ``manifest.jsonl`` (one line per sample: name, seed,
split, files, changed_fraction, how it was made) and a card, ``README.md``.

Its description is ``baseline.json``, not the dataset command's ``dataset.json``: the dataset command must never take a
baseline for one of its datasets to resume, and the evaluation reads a baseline only as a change-detection arm.

Everything is written into a temporary folder beside the output and moved into place at the end; an output folder
that holds files this tool did not write is never replaced.
"""

from __future__ import annotations

import glob
import json
import os
import re
import shutil
import uuid
from pathlib import Path, PurePosixPath
from typing import Callable

import numpy as np

from changeanywhere_qgis.engine.dataset.card import assign_splits
from changeanywhere_qgis.engine.errors import InputError
from changeanywhere_qgis.engine.io import LIST_FOLDER, SPLITS, OwnedFiles, check_output_path, check_replaceable, write_sample

BASELINE_FILE = "baseline.json"
MANIFEST = "manifest.jsonl"
CARD = "README.md"
FORMAT = "changeanywhere-baseline/1"


def check_out(out: Path, spec: dict, overwrite: bool) -> bool:
    """Whether ``out`` already holds this very baseline (then there is nothing to do); raises when it holds anything
    else that may not be replaced."""
    check_output_path(out)  # a file, or a folder under a file: refused as the engine's outputs refuse it
    if not out.exists() or not any(out.iterdir()):
        return False
    spec_file = out / BASELINE_FILE
    if not spec_file.is_file():
        raise InputError(f"Output folder {out} already exists and holds no baseline dataset of this tool; nothing in it is "
                         "replaced. Choose another folder (or empty it yourself).")
    try:
        old = json.loads(spec_file.read_text())
    except ValueError:
        old = None
    if isinstance(old, dict) and _comparable(old) == _comparable(spec) and (out / MANIFEST).is_file():
        return True
    if not overwrite:
        raise InputError(f"Output folder {out} holds a baseline dataset made with other settings. Pass --overwrite to make it "
                         "again, or choose another folder.")
    check_replaceable(out, OWNED, [*spec["semantic"], *spec["images"]])  # nothing of the user's in it, no input either
    return False


def _owns(path: PurePosixPath, is_dir: bool) -> bool:
    top = path.parts[0]
    if len(path.parts) == 1:
        return top in (*FOLDERS, LIST_FOLDER) if is_dir else top in (BASELINE_FILE, MANIFEST, CARD)
    if len(path.parts) != 2 or is_dir:
        return False
    if top == LIST_FOLDER:
        return path.name in {f"{split}.txt" for split in SPLITS}
    return top in FOLDERS and re.fullmatch(r"\d+\.png", path.name) is not None


FOLDERS = ("A", "B", "label")
OWNED = OwnedFiles("a baseline dataset", (BASELINE_FILE,), _owns)


def _comparable(spec: dict) -> dict:
    return {k: v for k, v in spec.items() if k not in ("command", "summary")}


class BaselineWriter:
    """Writes samples into a temporary folder; :meth:`finish` writes the lists, manifest and card and moves it into place."""

    def __init__(self, out: Path, spec: dict, scheme) -> None:
        self.out = Path(out).resolve()
        self.spec = spec
        self.scheme = scheme
        self.out.parent.mkdir(parents=True, exist_ok=True)
        for left in self.out.parent.glob(f".{glob.escape(self.out.name)}.tmp-*"):  # a killed run's (this writer's names)
            if re.fullmatch(rf"\.{re.escape(self.out.name)}\.tmp-[0-9a-f]{{8}}", left.name) and left.is_dir():
                shutil.rmtree(left, ignore_errors=True)
        self.temp = self.out.parent / f".{self.out.name}.tmp-{uuid.uuid4().hex[:8]}"
        self.temp.mkdir()
        self.records: list[dict] = []

    def write(self, name: str, *, t1: np.ndarray, t2: np.ndarray, pre: np.ndarray, post: np.ndarray, mask: np.ndarray,
              georef, record: dict) -> None:
        """One sample: images uint8 [3, H, W], maps [H, W], mask 1 changed / 0 unchanged / 255 no data."""
        files = write_sample(self.temp, "levir", "png", name, t1=t1, t2=t2, pre=pre, post=post, mask=mask, scheme=self.scheme,
                             georef=georef)
        valid = mask != 255
        n_valid = int(valid.sum())
        self.records.append({"name": name, **record, "files": files,
                             "changed_fraction": float((mask == 1).sum() / n_valid) if n_valid else 0.0,
                             "valid_fraction": n_valid / mask.size})

    def finish(self, card: Callable[[dict, dict], str]) -> dict:
        """``card``: (spec, summary) -> the card's markdown."""
        splits, notes = assign_splits(len(self.records), self.spec["settings"]["seed"])
        for record, split in zip(self.records, splits):
            record["split"] = split
        (self.temp / LIST_FOLDER).mkdir()
        for split in SPLITS:
            names = [f"{r['name']}.png" for r in self.records if r["split"] == split]
            if names:
                (self.temp / LIST_FOLDER / f"{split}.txt").write_text("".join(n + "\n" for n in names))
        (self.temp / MANIFEST).write_text("".join(json.dumps(r) + "\n" for r in self.records))
        sizes = {s: splits.count(s) for s in SPLITS}
        changed = [r["changed_fraction"] for r in self.records]
        summary = {"count": len(self.records), "splits": sizes, "split_notes": notes,
                   "changed_fraction_mean": float(np.mean(changed)) if changed else 0.0}
        (self.temp / BASELINE_FILE).write_text(json.dumps({**self.spec, "summary": summary}, indent=2) + "\n")
        (self.temp / CARD).write_text(card(self.spec, summary))
        if self.out.exists():  # check_out allowed it: empty, or this tool's baseline with --overwrite
            shutil.rmtree(self.out)
        os.replace(self.temp, self.out)
        return {"out": str(self.out), **summary}

    def abandon(self) -> None:
        shutil.rmtree(self.temp, ignore_errors=True)


def load_baseline(root: Path) -> tuple[dict, list[dict]]:
    """(baseline.json, manifest records) of a finished baseline dataset."""
    root = Path(root)
    if not (root / BASELINE_FILE).is_file() or not (root / MANIFEST).is_file():
        raise InputError(f"{root} is not a finished baseline dataset (no {BASELINE_FILE} and {MANIFEST}). Make it with "
                         "python -m model_export.evaluation.baselines.")
    return (json.loads((root / BASELINE_FILE).read_text()),
            [json.loads(line) for line in (root / MANIFEST).read_text().splitlines() if line.strip()])

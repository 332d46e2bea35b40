"""One sample of each dataset layout, as figures for docs/reference/dataset-layouts.md.

Makes a small dataset in the ``all`` layout with one folder per split (every layout's folders at once) from the
bundled sample (real pre-event image) with the bundled model, picks the sample with the most change that SECOND
both shows and hides, and writes one strip per layout to docs/reference/dataset-layouts/: each panel is a file of the
sample as it is on disk (a 128 px crop; index maps drawn in their classes' colours, since their codes are too
dark to see).

    .venv/bin/python scripts/dataset_layout_figures.py        # about a minute on two CPU cores
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from changeanywhere_qgis.engine.dataset import DatasetSettings, generate_dataset  # noqa: E402
from changeanywhere_qgis.engine.io import read_raster, write_raster  # noqa: E402

SAMPLES = REPO / "changeanywhere_qgis" / "samples"
CROP, GAP = 128, 4
STRIPS = {
    "levir": ["A", "B", "label"],
    "second": ["im1", "im2", "label1", "label2", "label1_wo_cm", "label1_full"],
    "classes": ["A", "B", "class1", "class2"],
}


def _palette(entries) -> np.ndarray:
    table = np.zeros((256, 3), dtype=np.uint8)
    for key, colour in entries:
        table[key] = colour
    return table


def panel(root: Path, rel: str, role: str, classes: dict) -> np.ndarray:
    data = read_raster(root / rel)
    if data.shape[0] == 3:
        return data
    if role == "label":
        return np.repeat(data, 3, 0)
    if role.endswith("_wo_cm"):
        table = _palette((c["index"], c["color"]) for c in classes["second"]["classes"])
    else:  # class1/2, label1_full/2_full: the model's classes, no data black
        table = _palette((c["code"], c["color"]) for c in classes["classes"])
    return np.moveaxis(table[data[0]], -1, 0)


def strip(panels: list[np.ndarray]) -> np.ndarray:
    h = panels[0].shape[1]
    out = np.full((3, h, len(panels) * (CROP + GAP) - GAP), 255, dtype=np.uint8)
    for k, p in enumerate(panels):
        out[:, :, k * (CROP + GAP) : k * (CROP + GAP) + CROP] = p
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", type=Path, default=REPO / "docs" / "reference" / "dataset-layouts")
    p.add_argument("--count", type=int, default=6)
    p.add_argument("--seed", type=int, default=1)
    args = p.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "dataset"
        settings = DatasetSettings(count=args.count, tile=256, seed=args.seed, layout="all", split_folders=True)
        generate_dataset(SAMPLES / "houston_label.tif", root, settings, images=SAMPLES / "houston_image.tif", workers=1)
        classes = json.loads((root / "classes.json").read_text())
        records = [json.loads(line) for line in (root / "manifest.jsonl").read_text().splitlines()]
        best = None  # the 128 px crop with most shown change that also holds hidden change
        for r in records:
            label = read_raster(root / r["files"]["label"])[0] == 255
            shown = read_raster(root / r["files"]["label1_wo_cm"])[0] != 0
            hidden = label & ~shown
            for row in range(0, 256 - CROP + 1, 32):
                for col in range(0, 256 - CROP + 1, 32):
                    window = (slice(row, row + CROP), slice(col, col + CROP))
                    score = int(shown[window].sum()) if hidden[window].any() else int(shown[window].sum()) // 4
                    if best is None or score > best[0]:
                        best = (score, r, row, col)
        _, r, row, col = best
        window = (slice(row, row + CROP), slice(col, col + CROP))
        full1, full2 = (read_raster(root / r["files"][k])[0][window] for k in ("label1_full", "label2_full"))
        shown = read_raster(root / r["files"]["label1_wo_cm"])[0][window] != 0
        hidden = (full1 != full2) & ~shown
        names = {c["code"]: c["name"] for c in classes["classes"]}
        pairs, counts = np.unique(full1[hidden].astype(int) * 256 + full2[hidden], return_counts=True)
        crop = {"shown_change_pixels": int(shown.sum()), "hidden_change_pixels": int(hidden.sum()),
                "hidden_transitions": [{"from": names[p // 256], "to": names[p % 256], "pixels": int(n)} for p, n in zip(pairs, counts)]}
        args.out.mkdir(parents=True, exist_ok=True)
        for layout, roles in STRIPS.items():
            panels = [panel(root, r["files"][role], role, classes)[:, row : row + CROP, col : col + CROP] for role in roles]
            write_raster(args.out / f"{layout}.png", strip(panels), "png")
        (args.out / "sample.json").write_text(json.dumps({
            "made_by": "scripts/dataset_layout_figures.py", "sample": r["name"], "split": r["split"], "crop": [row, col, CROP],
            "strips": STRIPS, "settings": json.loads((root / "dataset.json").read_text())["settings"],
            "in_the_crop": crop, "files": r["files"]}, indent=1) + "\n")
    print(f"wrote {', '.join(f'{k}.png' for k in STRIPS)} to {args.out} (sample {r['name']}, crop at row {row}, col {col})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

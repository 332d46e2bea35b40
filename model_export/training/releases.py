"""Where the image/label pairs of a training data folder are: the layouts users download or build.

    flat        DIR/images/<stem>.*, DIR/labels/<stem>.*                 (one folder, used whole)
    OpenEarthMap DIR/<region>/images/<name>.tif, DIR/<region>/labels/<name>.tif,
                DIR/train.txt, DIR/val.txt, DIR/test.txt                 (file names, one a line)
    LoveDA      DIR/{Train,Val,Test}/{Urban,Rural}/images_png/<n>.png, .../masks_png/<n>.png
                (or one split folder: DIR/{Urban,Rural}/images_png, ...)

A release is read one split at a time (``train`` unless asked otherwise; ``all`` takes every tile), so
validation and test tiles stay out of training. A flat folder has no split and is used whole. LoveDA's
masks use LoveDA's own codes: a LoveDA release gets the built-in ``loveda`` remap unless the folder
argument names another (``DIR@FILE.json``).
"""

from __future__ import annotations

from pathlib import Path

from model_export.training.errors import DataError

SPLITS = ("train", "val", "test", "all")
LOVEDA_SPLITS = {"train": "Train", "val": "Val", "test": "Test"}
LOVEDA_SCENES = ("Urban", "Rural")

Pair = tuple[Path, "Path | None"]  # (image, label or None)


def layouts_text(folder: Path) -> str:
    return (
        f"a flat folder ({folder}/images and {folder}/labels), the OpenEarthMap release ({folder}/<region>/images "
        f"and {folder}/<region>/labels, with train.txt, val.txt and test.txt beside the region folders) or the "
        f"LoveDA release ({folder}/Train/Urban/images_png and masks_png, Train/Rural, Val/Urban, ...)"
    )


def find_pairs(folder: Path, split: str, suffixes: tuple[str, ...]) -> tuple[str, list[Pair], str | None]:
    """(layout name, sorted image/label pairs of the split, the remap the layout's labels need or None).

    Raises ``DataError`` naming the layouts it knows when the folder matches none of them.
    """
    if split not in SPLITS:
        raise DataError(f"Unknown split {split!r}: use one of {', '.join(SPLITS)}.")
    if not folder.is_dir():
        raise DataError(f"No images found: the data folder {folder} does not exist; give a folder laid out as "
                        f"{layouts_text(folder)}.")
    if (folder / "images").is_dir():
        return "flat", _pairs(folder / "images", folder / "labels", suffixes), None
    regions = sorted(d for d in folder.iterdir() if d.is_dir() and (d / "images").is_dir())
    if regions:
        return "OpenEarthMap", _openearthmap(folder, regions, split, suffixes), None
    scenes = _loveda_scene_folders(folder, split)
    if scenes:
        pairs = [p for scene in scenes for p in _pairs(scene / "images_png", scene / "masks_png", suffixes)]
        return "LoveDA", sorted(pairs), "loveda"
    entries = sorted(p.name + ("/" if p.is_dir() else "") for p in folder.iterdir())
    found = f"it holds {', '.join(entries[:12])}{' ...' if len(entries) > 12 else ''}" if entries else "it is empty"
    raise DataError(f"{folder} matches none of the training data layouts; {found}. Expected {layouts_text(folder)}.")


def _pairs(images_dir: Path, labels_dir: Path, suffixes: tuple[str, ...]) -> list[Pair]:
    images = sorted(p for p in images_dir.glob("*") if p.suffix.lower() in suffixes)
    return [(p, _find(labels_dir, p.stem, suffixes)) for p in images]


def _find(folder: Path, stem: str, suffixes: tuple[str, ...]) -> Path | None:
    for suffix in suffixes:
        p = folder / f"{stem}{suffix}"
        if p.is_file():
            return p
    return None


def _openearthmap(folder: Path, regions: list[Path], split: str, suffixes: tuple[str, ...]) -> list[Pair]:
    pairs = [p for region in regions for p in _pairs(region / "images", region / "labels", suffixes)]
    if split == "all":
        return sorted(pairs)
    listing = folder / f"{split}.txt"
    if not listing.is_file():
        present = [n for n in ("train.txt", "val.txt", "test.txt") if (folder / n).is_file()]
        raise DataError(
            f"{folder} is laid out as the OpenEarthMap release ({len(regions)} region folders) but has no {listing.name}"
            f"{' (it has ' + ', '.join(present) + ')' if present else ''}; put the release's split lists back beside "
            "the region folders, or give --split all to train on every tile."
        )
    names = [line.strip() for line in listing.read_text().splitlines() if line.strip()]
    by_name = {image.name: (image, label) for image, label in pairs}
    by_stem = {image.stem: (image, label) for image, label in pairs}
    chosen, missing = [], []
    for name in names:
        pair = by_name.get(name) or by_stem.get(Path(name).stem)
        (chosen if pair else missing).append(pair or name)
    if missing:
        raise DataError(
            f"{listing} lists {len(missing)} of its {len(names)} tiles that are in no <region>/images folder of {folder} "
            f"(first: {', '.join(missing[:3])}); the release is incomplete: download it again or remove those lines."
        )
    return sorted(set(chosen))


def _loveda_scene_folders(folder: Path, split: str) -> list[Path]:
    """The Urban/Rural folders of the split, in a release folder or in one split's folder."""
    def scenes(split_dir: Path) -> list[Path]:
        return [split_dir / s for s in LOVEDA_SCENES if (split_dir / s / "images_png").is_dir()]

    if scenes(folder):  # the folder is one split already (e.g. LoveDA/Train)
        return scenes(folder)
    present = {k: scenes(folder / v) for k, v in LOVEDA_SPLITS.items() if scenes(folder / v)}
    if not present:
        return []
    if split == "all":
        return [s for k in LOVEDA_SPLITS if k in present for s in present[k]]
    if split not in present:
        raise DataError(
            f"{folder} is laid out as the LoveDA release but has no {LOVEDA_SPLITS[split]}/Urban/images_png or "
            f"{LOVEDA_SPLITS[split]}/Rural/images_png (it has {', '.join(LOVEDA_SPLITS[k] for k in present)}); "
            f"download and unpack the {LOVEDA_SPLITS[split]} archive there, or give another --split."
        )
    return present[split]

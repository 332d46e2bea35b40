"""Which layout writes which folders, and where a sample's files lie in it (flat, or one folder per split)."""

from __future__ import annotations

from ...errors import InputError

LAYOUTS = ("levir", "second", "both", "classes", "all")
FORMATS = ("png", "tif")
# A layout is made of parts; "classes" holds the LEVIR-CD part too, so any LEVIR-CD reader reads it as well.
PARTS = {"levir": ("levir",), "second": ("second",), "both": ("levir", "second"), "classes": ("levir", "classes"),
         "all": ("levir", "second", "classes")}
FOLDERS = {
    "levir": ("A", "B", "label"),
    "second": ("im1", "im2", "label1", "label2", "label1_wo_cm", "label2_wo_cm", "label1_full", "label2_full"),
    "classes": ("class1", "class2"),
}
SPLITS = ("train", "val", "test")
LIST_FOLDER = "list"  # flat layouts: list/train.txt, ... (BIT, ChangeFormer)
# Layouts with one folder per split: a sample's split is known only when the dataset is finished (it depends on
# how many samples there are), so samples wait in this hidden folder until the end moves them to their split's.
STAGE_FOLDER = ".staged"
CLASSES_FILE = "classes.json"


def check_layout(layout: str, fmt: str) -> None:
    if layout not in LAYOUTS:
        raise InputError(f"Unknown dataset layout {layout!r}. Choose one of: {', '.join(LAYOUTS)} (levir = LEVIR-CD, "
                         "second = SECOND, both = the two side by side, classes = LEVIR-CD with the model's own class maps, "
                         "all = every folder).")
    if fmt not in FORMATS:
        raise InputError(f"Unknown image format {fmt!r}. Choose png (what the libraries read by default) or tif (GeoTIFF, georeferenced).")


def parts(layout: str) -> tuple[str, ...]:
    return PARTS[layout]


def has_second(layout: str) -> bool:
    return "second" in PARTS[layout]


def folders(layout: str) -> list[str]:
    return [f for part in parts(layout) for f in FOLDERS[part]]


def every_folder() -> list[str]:
    """Every folder any layout writes (a killed run's leftovers are looked for in all of them)."""
    return [f for fs in FOLDERS.values() for f in fs]


def sample_files(layout: str, fmt: str, name: str) -> dict[str, str]:
    """Role (= folder) -> path relative to the dataset root in a flat layout, e.g. {"A": "A/000001.png", ...}."""
    return {folder: f"{folder}/{name}.{fmt}" for folder in folders(layout)}


def in_split(files: dict[str, str], split: str) -> dict[str, str]:
    """The same files in the split's folder: {"A": "train/A/000001.png", ...}."""
    return {role: f"{split}/{rel}" for role, rel in files.items()}

#!/usr/bin/env python3
"""Build the installable QGIS plugin zip: dist/changeanywhere_qgis-<version>.zip.

The zip holds one folder, changeanywhere_qgis/, as QGIS's "Install from ZIP" expects: the plugin
code, metadata.txt (the real file, not the repository's link), LICENSE, the bundled model and the
sample data. Left out: tests, caches, hidden files, the engine's half-written output folders.
Usage: python scripts/package_plugin.py [--out dist] [--require-model]
"""

from __future__ import annotations

import argparse
import configparser
import sys
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PLUGIN = "changeanywhere_qgis"
EXCLUDED_DIRS = {"__pycache__", "tests", "test", ".pytest_cache", ".ipynb_checkpoints"}
EXCLUDED_SUFFIXES = {".pyc", ".pyo", ".orig", ".rej", ".bak", ".swp"}
EXCLUDED_ENDINGS = (".aux.xml",)  # GDAL's statistics sidecars, written when a raster is opened
# (repository path, path inside the plugin folder): files that live outside the plugin folder.
EXTRA_FILES = (("metadata.txt", "metadata.txt"), ("LICENSE", "LICENSE"))
REQUIRED = ("__init__.py", "plugin.py", "metadata.txt", "LICENSE", "icon.png", "processing/provider.py")
MODEL_MANIFEST = "models/default/model.json"


def plugin_version(metadata: Path) -> str:
    parser = configparser.ConfigParser(interpolation=None)
    parser.read(metadata, encoding="utf-8")
    return parser["general"]["version"].strip()


def plugin_files(root: Path) -> list[tuple[Path, str]]:
    """(file on disk, path inside the plugin folder) for every file that ships."""
    extra = {inside for _, inside in EXTRA_FILES}
    files = []
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root)
        if any(part in EXCLUDED_DIRS or part.startswith(".") for part in rel.parts):
            continue
        if path.is_dir() or path.suffix in EXCLUDED_SUFFIXES or path.name.endswith(EXCLUDED_ENDINGS) or rel.as_posix() in extra:
            continue
        files.append((path, rel.as_posix()))
    files += [(REPO / src, inside) for src, inside in EXTRA_FILES]
    return sorted(files, key=lambda item: item[1])


def build(out_dir: Path, require_model: bool = False) -> Path:
    root = REPO / PLUGIN
    version = plugin_version(REPO / "metadata.txt")
    files = plugin_files(root)
    names = {inside for _, inside in files}
    missing = [name for name in REQUIRED if name not in names]
    if missing:
        raise SystemExit(f"error: the plugin folder lacks {missing}")
    if MODEL_MANIFEST not in names:
        message = f"the bundled model ({PLUGIN}/{MODEL_MANIFEST}) is missing: the zip will need --model at run time"
        if require_model:
            raise SystemExit(f"error: {message}")
        print(f"warning: {message}", file=sys.stderr)
    out_dir.mkdir(parents=True, exist_ok=True)
    target = out_dir / f"{PLUGIN}-{version}.zip"
    partial = target.with_suffix(".zip.partial")
    with zipfile.ZipFile(partial, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for path, inside in files:
            # read_bytes follows links: metadata.txt goes in as the real file
            info = zipfile.ZipInfo(f"{PLUGIN}/{inside}", date_time=(2024, 1, 1, 0, 0, 0))
            info.external_attr = 0o644 << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(info, path.read_bytes())
    partial.replace(target)
    return target


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(REPO / "dist"), help="output folder (default dist/)")
    parser.add_argument("--require-model", action="store_true", help="fail when the bundled model is missing")
    args = parser.parse_args(argv)
    target = build(Path(args.out), args.require_model)
    with zipfile.ZipFile(target) as zf:
        size = sum(i.file_size for i in zf.infolist())
        print(f"{target} ({len(zf.infolist())} files, {size / 1e6:.1f} MB unpacked)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""What ``--overwrite`` may replace: only a folder this tool wrote, holding nothing else and no input of the run.

``--overwrite`` swaps the whole output folder for the new one, so it deletes everything in it. A user who points
``--out`` at a folder of their own (``~/work``, a project folder, the folder that holds the map being read) must lose
nothing. So before a run replaces a folder, :func:`check_replaceable` asks three things and refuses, saying which and
why, unless all hold:

1. No input of the run (the land-cover map, the image, the change polygons, the model, a style or table file) lies
   in the folder: it would be deleted while, or before, the run reads it, and the new ``sample.json`` would point at
   a file that no longer exists.
2. The folder carries a marker of this tool's outputs (a sample's ``sample.json``, simulate's ``events.json``, a
   dataset's ``dataset.json``).
3. Every file and folder in it is one that this tool writes for that kind of output (:class:`OwnedFiles`), or a
   side file that GIS programs write beside a raster they open (``.aux.xml`` statistics, ``.ovr`` overviews,
   GeoPackage journals): a user's note dropped into an old sample folder keeps the folder from being replaced.

Folders from earlier versions of the tool are recognised the same way (by their file names), so they can still be
replaced.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Callable, Iterable

from ..errors import InputError

# Files other programs write beside a raster or a GeoPackage that they opened: they belong with the tool's file.
SIDE_FILE_SUFFIXES = (".aux.xml", ".ovr", ".msk", "-wal", "-shm", "-journal")
_SHOWN = 5  # foreign files named in a refusal
_LOOKS = 50  # tries while concurrent runs keep swapping the folder (as OutputFolder's swap)


@dataclass(frozen=True)
class OwnedFiles:
    """A kind of output folder: how to recognise one, and which paths in it the tool writes.

    ``owns(path, is_dir)`` gets each path relative to the folder (POSIX form) with side files already reduced to
    the file they belong to."""

    what: str  # "a change sample", used in the refusal
    markers: tuple[str, ...]  # at least one of these files is in every such folder
    owns: Callable[[PurePosixPath, bool], bool]


def without_side_suffix(name: str) -> str:
    """``t1_image.tif.aux.xml`` -> ``t1_image.tif``; a name without a side-file suffix is returned as it is."""
    for suffix in SIDE_FILE_SUFFIXES:
        if name.endswith(suffix) and len(name) > len(suffix):
            return name[: -len(suffix)]
    return name


def _input_paths(inputs: Iterable) -> list[Path]:
    """The inputs that are files or folders on disk (an in-memory layer, a built-in table name or None are not)."""
    paths = []
    for item in inputs:
        if isinstance(item, (str, os.PathLike)) and str(item).strip():
            path = Path(str(item).split("|")[0]).expanduser()  # OGR's "file.gpkg|layername=roads"
            if path.exists():
                paths.append(path)
    return paths


def inputs_inside(folder: Path, inputs: Iterable) -> list[Path]:
    """The inputs that lie in ``folder`` (or are it), links resolved: replacing the folder would delete them."""
    root = folder.resolve()
    inside = []
    for path in _input_paths(inputs):
        real = path.resolve()
        if real == root or root in real.parents:
            inside.append(path)
    return inside


def foreign_paths(folder: Path, owned: OwnedFiles) -> list[str]:
    """Paths in ``folder`` (relative, POSIX form, sorted) that this tool does not write into such a folder."""
    foreign = []
    def vanished(error: OSError) -> None:
        raise error  # os.walk would skip a folder it cannot read, and what it does not see it cannot judge

    for root, dirs, files in os.walk(folder, onerror=vanished):  # links are listed, not followed
        here = PurePosixPath(Path(root).relative_to(folder).as_posix())
        for name in sorted(dirs):
            rel = here / name
            if (Path(root) / name).is_symlink() or not owned.owns(rel, True):
                foreign.append(f"{rel}/")
                dirs.remove(name)  # whatever is below a foreign folder is foreign too: one name says it
        for name in sorted(files):
            rel = here / name
            if not owned.owns(rel.with_name(without_side_suffix(name)), False):
                foreign.append(str(rel))
    return sorted(foreign)


def check_replaceable(folder: str | Path, owned: OwnedFiles, inputs: Iterable = ()) -> None:
    """Refuse, with the reason and the way out, to replace ``folder`` unless it is an output of this tool that
    holds nothing else and no input of this run. An absent or empty folder may always be replaced."""
    folder = Path(folder)
    inputs = list(inputs)
    for _ in range(_LOOKS):
        # Other runs into the same folder may swap it while we look (OutputFolder's moves): a refusal counts only
        # when the folder we judged is still the one there, so judge again when it changed under us. A folder absent at
        # both looks may have come and gone in between (what was judged then was another run's): judge again too.
        before = _identity(folder)
        try:
            _check_replaceable(folder, owned, inputs)
            return
        except FileNotFoundError:  # moved away while we looked: judge what is there now
            continue
        except InputError:
            if before is not None and _identity(folder) == before:
                raise
    raise InputError(f"Output folder {folder} kept being replaced by other runs; rerun when they have finished.")


def _identity(folder: Path) -> tuple[int, int, int] | None:
    try:
        stat = folder.stat()
    except FileNotFoundError:
        return None
    return stat.st_dev, stat.st_ino, stat.st_ctime_ns  # a rename sets ctime: an inode reused by a new folder differs


def _check_replaceable(folder: Path, owned: OwnedFiles, inputs: Iterable) -> None:
    if not folder.is_dir() or not any(folder.iterdir()):
        return
    inside = inputs_inside(folder, inputs)
    if inside:
        names = ", ".join(str(p) for p in inside)
        raise InputError(f"Output folder {folder} holds {names}, an input of this run: --overwrite would delete it. "
                         "Nothing was written. Choose another output folder, or move the input out of this one.")
    if not any((folder / marker).is_file() for marker in owned.markers):
        raise InputError(f"Output folder {folder} is not {owned.what} made by this tool (it has no "
                         f"{' or '.join(owned.markers)}), so --overwrite will not replace it: that would delete files this "
                         "tool did not write. Nothing was written. Choose a new or empty output folder.")
    foreign = foreign_paths(folder, owned)
    if foreign:
        shown = ", ".join(foreign[:_SHOWN]) + (f" and {len(foreign) - _SHOWN} more" if len(foreign) > _SHOWN else "")
        raise InputError(f"Output folder {folder} holds {owned.what} of this tool, but also files it did not write "
                         f"({shown}), so --overwrite will not replace it: that would delete them. Nothing was written. "
                         "Move those files out of the folder, or choose a new or empty output folder.")


# generate's and simulate's files (pipeline.OUTPUTS, series_outputs, simulate_outputs): flat, no sub-folder.
_SAMPLE_FILE = re.compile(r"^(t\d+_(image|semantic)\.tif|change_mask\.tif|change_t\d+_t\d+\.tif|changes\.gpkg|events\.json"
                          r"|sample\.json)$")

SAMPLE_FOLDER = OwnedFiles("a change sample (generate or simulate)", ("sample.json", "events.json"),
                           lambda rel, is_dir: not is_dir and len(rel.parts) == 1 and bool(_SAMPLE_FILE.match(rel.name)))

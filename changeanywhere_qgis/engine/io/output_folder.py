"""An output folder that appears whole or not at all.

Outputs go into a hidden temporary folder beside the output folder and are moved into place
only when everything is written, so an error or a cancel never leaves half an output behind.
The temporary folder's name records the host and process that own it
(``.<name>.partial-<host>-<pid>-<tag>``): a run killed outright (``kill -9``, a power cut) cannot
clean up after itself, so the next run into the same folder removes the temporary folders whose
process is gone. A disk that fills up, or a folder that cannot be written, is an :class:`InputError`
that says so, with the temporary folder already removed.
"""

from __future__ import annotations

import errno
import os
import re
import shutil
import socket
import uuid
from pathlib import Path

from ..errors import ChangeAnywhereError, InputError
from .replace_guard import OwnedFiles, check_replaceable

# The host part keeps only characters that are safe in a file name on every system.
_HOST = re.sub(r"[^A-Za-z0-9.]", "_", socket.gethostname() or "host")
_OWNED = re.compile(r"^\.(?P<name>.+)\.(?:partial|old)-(?P<host>[A-Za-z0-9._]+)-(?P<pid>\d+)-[0-9a-f]{8}$")
_SWAP_ATTEMPTS = 50  # concurrent runs into the same folder: each retry means another run moved in between
# GDAL does not raise when a GeoTIFF's blocks fail to reach a full disk (it logs, and the file is
# left corrupt; libtiff may even abort the process): so the space is checked before writing, and
# a disk left with less than this after the writes counts as one that filled up during them.
FULL_DISK_RESERVE = 64 * 1024


def _owned_name(final: Path, kind: str) -> str:
    return f".{final.name}.{kind}-{_HOST}-{os.getpid()}-{uuid.uuid4().hex[:8]}"


def process_alive(pid: int) -> bool:
    """Whether a process of this host with this id runs (on systems where that cannot be asked: assume it does)."""
    if os.name != "posix":
        return True  # os.kill(pid, 0) would terminate the process on Windows
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process
    return True


def remove_orphans(final: str | Path) -> list[Path]:
    """Remove the temporary folders of ``final`` whose owning process (on this host) is gone; returns them.

    Folders of another host (a shared disk) or of a live process are kept: they may still be written.
    """
    final = Path(final)
    removed = []
    try:
        siblings = list(final.parent.iterdir()) if final.parent.is_dir() else []
    except OSError:
        return removed
    for path in siblings:
        owner = _OWNED.match(path.name)
        if not owner or owner["name"] != final.name or owner["host"] != _HOST:
            continue
        pid = int(owner["pid"])
        if pid != os.getpid() and not process_alive(pid):
            shutil.rmtree(path, ignore_errors=True)
            removed.append(path)
    return removed


def free_bytes(folder: str | Path) -> int | None:
    """Bytes this process may still write on the file system of ``folder`` (or of its nearest existing parent)."""
    folder = _nearest_existing(Path(folder))
    try:
        if hasattr(os, "statvfs"):
            stat = os.statvfs(folder)
            blocks = stat.f_bfree if os.geteuid() == 0 else stat.f_bavail  # root may use the reserved blocks
            return blocks * stat.f_frsize
        return shutil.disk_usage(folder).free
    except OSError:
        return None


def existing_file_above(path: Path) -> Path | None:
    """The first part of ``path`` (itself or a parent) that is a file, not a folder; None when there is none."""
    for part in (path, *path.parents):
        if part.exists():
            return part if not part.is_dir() else None
    return None


def check_output_path(path: str | Path, what: str = "Output path") -> None:
    """Refuse an output folder that is a file, or lies under a file (``somefile.txt/out``)."""
    path = Path(path)
    blocker = existing_file_above(path)
    if blocker == path:
        raise InputError(f"{what} {path} is a file, not a folder. Choose a folder path, or remove the file.")
    if blocker is not None:
        raise InputError(f"{what} {path} lies under {blocker}, which is a file, not a folder. Choose a folder path.")


def _nearest_existing(path: Path) -> Path:
    path = path.absolute()
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def check_writable(folder: str | Path) -> None:
    """Refuse, before any work, a folder on a read-only file system or without write permission (or its nearest
    existing parent, where the run would create it)."""
    nearest = _nearest_existing(Path(folder))
    if hasattr(os, "statvfs") and os.statvfs(nearest).f_flag & os.ST_RDONLY:
        raise InputError(f"{folder} is on a read-only file system; nothing was written. Choose an output folder you can write to.")
    if not os.access(nearest, os.W_OK | os.X_OK):
        raise InputError(f"No permission to write into {nearest}; nothing was written. Choose an output folder you can write to.")


def write_failure(exc: BaseException, folder: str | Path, any_io_error: bool = True,
                  outcome: str = "nothing was written") -> InputError | None:
    """An InputError naming the cause when ``exc`` is a failed write (disk full, read-only, no permission); else None.

    With ``any_io_error`` every other OSError or rasterio error counts as a failed write too (for code
    that only writes); without it such errors are left as they are.
    """
    from rasterio.errors import RasterioError

    if not isinstance(exc, Exception):
        return None  # Ctrl-C, SIGTERM, exit: not a failed write
    folder = Path(folder)
    text = str(exc)
    code = getattr(exc, "errno", None)
    free = free_bytes(folder)
    full = code == errno.ENOSPC or "No space left" in text or (free is not None and free < 1 << 20 and "rite" in text)
    if full:
        left = f" ({free / 1e6:.1f} MB free)" if free is not None else ""
        return InputError(f"The disk holding {folder} is full{left}; {outcome}. Free some space, "
                          "or choose an output folder on another disk.")
    if code == errno.EROFS or "Read-only file system" in text:
        return InputError(f"{folder} is on a read-only file system; {outcome}. Choose an output folder you can write to.")
    if code in (errno.EACCES, errno.EPERM) or "Permission denied" in text:
        return InputError(f"No permission to write into {folder}; {outcome}. Choose an output folder you can write to.")
    if any_io_error and isinstance(exc, (OSError, RasterioError)):
        return InputError(f"Writing into {folder} failed ({exc}); {outcome}. Check the disk and the folder, then rerun.")
    return None


SCRATCH_FOLDER = ".scratch"


class OutputFolder:
    """Write into ``<parent>/.<name>.partial-<host>-<pid>-<tag>`` and move it into place on success (a context manager).

    With ``overwrite`` an existing folder is replaced only when it is an output of ``owned``'s kind that holds
    nothing else and none of ``inputs`` (replace_guard.py): checked here, before any work, and again just before the
    swap, since the folder may have changed while the run worked.
    """

    def __init__(self, out_dir: str | Path, overwrite: bool = False, owned: OwnedFiles | None = None, inputs=()) -> None:
        if overwrite and owned is None:
            raise TypeError("OutputFolder(overwrite=True) needs owned=: the kind of folder it may replace")
        self.final = Path(out_dir)
        self.overwrite = overwrite
        self.owned = owned
        self.inputs = tuple(inputs)
        check_output_path(self.final)
        check_writable(self.final.parent)
        if self.final.exists() and any(self.final.iterdir()):
            if not overwrite:
                raise InputError(f"Output folder {self.final} already exists. Choose another folder, or pass --overwrite "
                                 "to replace it (only an earlier output of this tool can be replaced).")
            check_replaceable(self.final, owned, self.inputs)
        self.temp: Path | None = None

    def require_space(self, nbytes: int, what: str = "the outputs") -> None:
        """Refuse, before anything is written, when the disk has less room than ``what`` may need."""
        free = free_bytes(self.final.parent)
        if free is not None and free < nbytes + FULL_DISK_RESERVE:
            raise InputError(f"The disk holding {self.final.parent} has {free / 1e6:.1f} MB free, but {what} may need up to "
                             f"{nbytes / 1e6:.1f} MB; nothing was written. Free some space, or choose an output folder on another disk.")

    def __enter__(self) -> "OutputFolder":
        try:
            self.final.parent.mkdir(parents=True, exist_ok=True)
            remove_orphans(self.final)
            self.temp = self.final.parent / _owned_name(self.final, "partial")
            self.temp.mkdir()
        except OSError as exc:
            raise (write_failure(exc, self.final.parent) or exc) from exc
        return self

    def path(self, name: str) -> Path:
        return self.temp / name

    @property
    def scratch_folder(self) -> Path:
        """Where a large map's whole-raster arrays are kept during the run (removed before the folder is moved into place)."""
        return self.temp / SCRATCH_FOLDER

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            try:
                free = free_bytes(self.temp)
                if free is not None and free < FULL_DISK_RESERVE:
                    raise OSError(errno.ENOSPC, "No space left on device after writing the outputs")
                shutil.rmtree(self.temp / SCRATCH_FOLDER, ignore_errors=True)
                self._move_into_place()
                return
            except BaseException as failed:
                exc = failed
        failure = None
        if exc is not None and not isinstance(exc, ChangeAnywhereError):
            failure = write_failure(exc, self.final.parent)  # before the removal frees the space
        shutil.rmtree(self.temp, ignore_errors=True)
        if failure is not None:
            raise failure from exc
        if exc_type is None:
            raise exc

    def _move_into_place(self) -> None:
        # Another run may write the same folder at the same time: a folder it moved into place, or
        # moved away, between our two renames is not an error; with --overwrite the last run wins.
        for _ in range(_SWAP_ATTEMPTS):
            old = None
            if self.final.exists():
                if not self.overwrite and any(self.final.iterdir()):
                    raise InputError(f"Output folder {self.final} was made by another run while this one worked. "
                                     "Choose another folder, or pass --overwrite to replace it.")
                if self.overwrite:
                    check_replaceable(self.final, self.owned, self.inputs)
                old = self.final.parent / _owned_name(self.final, "old")
                try:
                    os.replace(self.final, old)
                except FileNotFoundError:  # the other run moved it away first
                    old = None
            try:
                os.replace(self.temp, self.final)
                return
            except OSError as exc:
                if exc.errno not in (errno.ENOTEMPTY, errno.EEXIST):
                    raise
            finally:
                if old is not None:
                    shutil.rmtree(old, ignore_errors=True)
        raise InputError(f"Output folder {self.final} kept being replaced by other runs; rerun when they have finished.")

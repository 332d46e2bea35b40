"""Running a dataset's samples: in local worker processes or as tasks on a Dask cluster (:mod:`.cluster`), resumable.

Each local worker (spawned, so no onnxruntime/GDAL state is copied) loads the model once; a Dask
cluster runs the same :func:`~.sample.run_sample` (inputs and output folder must be on a
file system every worker sees). What a killed run left behind is removed before the next one.
A local worker killed mid-run (the out-of-memory killer's SIGKILL) breaks its pool: the unfinished samples
run again on one worker fewer, and with none left the run stops saying how many samples are kept.
"""

from __future__ import annotations

import os
import shutil
import sys
import warnings
from contextlib import contextmanager
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path

from ..errors import Cancelled, ChangeAnywhereError, WorkersLost
from ..io import SERIES_FOLDER, SPLITS, STAGE_FOLDER, every_folder, write_failure
from .job import RECORDS, WORK, DatasetJob
from .sample import init_worker, run_in_worker, run_sample


def finished(job: DatasetJob) -> set[int]:
    folder = Path(job.out) / RECORDS
    if not folder.is_dir():
        return set()
    return {int(p.stem) for p in folder.glob("*.json") if p.stem.isdigit()}


def remove_leftovers(job: DatasetJob) -> int:
    """A killed run's leftovers: temporary folders, and files of samples without a record."""
    out = Path(job.out)
    shutil.rmtree(out / WORK, ignore_errors=True)
    done = {job.name(i) for i in finished(job)}
    removed = 0
    for base in (out, out / STAGE_FOLDER, *(out / split for split in SPLITS)):  # flat, waiting, or in a split's folder
        for folder in dict.fromkeys([*every_folder(), SERIES_FOLDER]):
            for path in (base / folder).glob("*") if (base / folder).is_dir() else []:
                sample = path.stem.split("_")[0]  # a series' pairs are <name>_t1_t2, its folder series/<name>/
                if sample.isdigit() and sample not in done:
                    if path.is_dir():
                        shutil.rmtree(path)
                    else:
                        path.unlink()
                    removed += 1
    for temp in (out / RECORDS).glob(".*") if (out / RECORDS).is_dir() else []:
        temp.unlink()
    return removed



@contextmanager
def named_write_failures(job: DatasetJob):
    """A sample that failed because the disk is full or read-only raises an InputError saying so."""
    try:
        yield
    except ChangeAnywhereError:
        raise
    except Exception as exc:
        failure = write_failure(exc, Path(job.out), any_io_error=False,
                                outcome="the finished samples are kept, and the same command finishes the rest")
        if failure is None:
            raise
        raise failure from exc


def _die_with_parent(parent: int) -> None:
    """Make this worker process end when the process that started it ends, even by ``kill -9``.

    On Linux the kernel sends the signal (``prctl(PR_SET_PDEATHSIG)``); on every POSIX system a daemon
    thread also watches the parent, for the systems without prctl and for a parent that ended before it was set.
    """
    import signal
    import threading
    import time

    if sys.platform.startswith("linux"):
        try:
            import ctypes

            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(1, int(signal.SIGKILL), 0, 0, 0)  # 1 = PR_SET_PDEATHSIG
        except (OSError, AttributeError):
            pass
    if os.name != "posix":
        return  # os.getppid() does not change when a Windows parent ends

    def watch() -> None:
        while True:
            if os.getppid() != parent:  # re-parented: the run that started this worker is gone
                os._exit(1)
            time.sleep(1.0)

    if os.getppid() != parent:
        os._exit(1)
    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


def _init_local_worker(job: DatasetJob, parent: int) -> None:
    _die_with_parent(parent)
    init_worker(job)


def default_threads(workers: int) -> int:
    return max(1, (os.cpu_count() or 1) // max(1, workers))


def python_executable() -> str | None:
    """The Python interpreter for worker processes: ``sys.executable``, unless that is an application
    embedding Python (QGIS's ``qgis`` / ``qgis-bin.exe``); then the interpreter beside its prefix."""
    import shutil
    import sys

    exe = Path(sys.executable or "")
    if exe.name.lower().startswith("python"):
        return str(exe)
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    for prefix in dict.fromkeys((sys.exec_prefix, sys.prefix, getattr(sys, "base_prefix", sys.prefix))):
        for rel in (f"bin/python{version}", "bin/python3", "python.exe", "python3.exe", f"apps/Python{version.replace('.', '')}/python.exe"):
            if (Path(prefix) / rel).is_file():
                return str(Path(prefix) / rel)
    found = shutil.which(f"python{version}") or shutil.which("python3")
    return found


def run_local(job: DatasetJob, todo: list[int], workers: int, tick, cancelled) -> None:
    if workers == 1 or len(todo) == 1:
        for index in todo:
            if cancelled():
                raise Cancelled("")
            with named_write_failures(job):
                run_sample(job, index)
            tick()
        return
    import multiprocessing

    # spawn: no copy of this process's onnxruntime/GDAL state; each worker loads the model once.
    context = multiprocessing.get_context("spawn")
    python = python_executable()
    if python is None:
        warnings.warn("No Python interpreter found to start worker processes with; running in this process.", stacklevel=2)
        return run_local(job, todo, 1, tick, cancelled)
    context.set_executable(python)
    remaining, ticked = list(todo), set()
    while True:
        try:
            return _run_pool(job, remaining, workers, context, tick, ticked, cancelled)
        except BrokenProcessPool:
            done = finished(job)
            for index in sorted(done.intersection(remaining) - ticked):  # finished just before the pool broke
                ticked.add(index)
                tick()
            remaining = [i for i in remaining if i not in done]
            remove_leftovers(job)  # the killed worker's half-written sample
            workers -= 1
            if workers < 1:
                kept = len(done)
                raise WorkersLost(
                    f"Every worker process was killed (SIGKILL: the out-of-memory killer, most likely): {kept} of {job.count} "
                    f"samples are finished and kept in {job.out}. Rerun the same command (without --overwrite) to finish the "
                    "rest; if memory ran out, with fewer --workers, a smaller --batch-size or --tile.",
                    kept=kept, count=job.count, out=job.out) from None
            if not remaining:
                return None
            warnings.warn(f"A worker process was killed (SIGKILL: the out-of-memory killer, most likely); its sample runs "
                          f"again, and the {len(remaining)} samples left run on {workers} worker(s).", stacklevel=2)


def _run_pool(job: DatasetJob, todo: list[int], workers: int, context, tick, ticked: set, cancelled) -> None:
    with ProcessPoolExecutor(workers, mp_context=context, initializer=_init_local_worker,
                             initargs=(job, os.getpid())) as pool:
        pending = {pool.submit(run_in_worker, i): i for i in todo}
        try:
            while pending:
                done, _ = wait(pending, timeout=0.5, return_when=FIRST_COMPLETED)
                for future in done:
                    index = pending.pop(future)
                    with named_write_failures(job):
                        future.result()
                    ticked.add(index)
                    tick()
                if cancelled():
                    raise Cancelled("")
        except BaseException:
            for future in pending:
                future.cancel()
            raise

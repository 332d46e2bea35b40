"""Change-detection datasets: many change samples cut from land-cover maps, in LEVIR-CD/SECOND layouts.

:func:`generate_dataset` is the whole job, in four steps, each in its own module of this room:

- ``job``: what the dataset is (settings, the picklable job, each sample's seed);
- ``plan``: every input checked and every sample's window chosen, nothing written;
- ``sample``: one sample, written to a private folder and moved into place, its record last;
- ``workers``: the samples run in local processes or on a Dask cluster, resumable.

A sample with a record is finished: reruns skip it, and anything else a killed run left behind is
removed when the next run starts. So a rerun finishes the rest, and the same seed gives the same
files, whichever machine or worker made each sample. At the end this module writes
``manifest.jsonl`` (one line per sample, in index order), the split lists and the dataset card
(``README.md``, whose text ``card.py`` makes).
"""

from __future__ import annotations

import json
import os
import shutil
import time
import uuid
from pathlib import Path

from ..errors import Cancelled, InputError
from ..io import LIST_FOLDER, SPLITS, folders
from ..progress import Progress
from .card import assign_splits, dataset_card, dataset_statistics
from .job import CARD, CORRELATION_RANGE, MANIFEST, RECORDS, SPEC_FILE, WORK, DatasetJob, DatasetSettings
from .plan import plan_dataset
from .workers import check_scheduler, default_threads, finished, remove_leftovers, run_dask, run_local

def _write_atomic(path: Path, text: str) -> None:
    temp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}")
    temp.write_text(text)
    os.replace(temp, path)


def generate_dataset(semantic, out_dir, settings: DatasetSettings, *, images=None, model=None, workers: int | None = None,
                     scheduler: str | None = None, device: str = "cpu", threads: int | None = None, overwrite: bool = False,
                     progress: Progress | None = None) -> dict:
    """Plan, run (resuming: finished samples are skipped) and finish the dataset; returns a summary."""
    progress = progress or Progress()
    if workers is not None and workers < 1:
        raise InputError(f"workers must be at least 1, got {workers}.")
    if workers is not None and scheduler:
        raise InputError("Give either a number of local workers or a Dask scheduler address, not both.")
    workers = workers or max(1, os.cpu_count() or 1)
    if device == "cuda" and not scheduler:
        workers = 1
    job = plan_dataset(semantic, out_dir, settings, images=images, model=model, device=device,
                       threads=threads if (threads or scheduler) else default_threads(workers), overwrite=overwrite)
    if scheduler:
        check_scheduler(scheduler)  # an unreachable cluster fails before anything is written
    out = Path(job.out)
    if overwrite and out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True, exist_ok=True)
    _write_atomic(out / SPEC_FILE, json.dumps(job.spec, indent=2))
    for folder in folders(settings.layout):
        (out / folder).mkdir(exist_ok=True)
    remove_leftovers(job)
    done = finished(job)
    todo = [i for i in range(job.count) if i not in done]
    skipped = job.count - len(todo)
    progress.start(max(len(todo), 1))
    state = {"n": 0}

    def tick() -> None:
        state["n"] += 1
        progress.message = f"{skipped + state['n']}/{job.count} samples"
        progress.advance()

    progress.stage(f"{skipped}/{job.count} samples" + (f" ({skipped} already done)" if skipped else ""))
    clock = time.perf_counter()
    cancelled = progress.cancelled
    backend: dict
    try:
        if scheduler:
            backend = {"backend": "dask", "scheduler": scheduler, **run_dask(job, todo, scheduler, tick, cancelled)}
        else:
            run_local(job, todo, workers, tick, cancelled)
            backend = {"backend": "local", "workers": workers, "threads_per_sample": job.threads}
    except BaseException as exc:  # cancel or Ctrl-C: the local workers have stopped, so remove what a
        if not scheduler:  # sample cut short left (Dask tasks may still be running: the next run cleans)
            remove_leftovers(job)
        if not isinstance(exc, Cancelled):
            raise
        n = len(finished(job))
        raise Cancelled(f"Cancelled by the user: {n} of {job.count} samples are finished and kept in {out}; "
                        "rerun the same command to finish the rest.") from None
    seconds = time.perf_counter() - clock
    shutil.rmtree(out / WORK, ignore_errors=True)
    summary = finish_dataset(job)
    return {**summary, **backend, "generated": len(todo), "skipped": skipped, "seconds": seconds,
            "samples_per_minute": 60 * len(todo) / seconds if todo and seconds > 0 else None}


def load_records(root: Path) -> list[dict]:
    """The manifest's records (or, for an unfinished dataset, the records written so far)."""
    root = Path(root)
    if (root / MANIFEST).is_file():
        return [json.loads(line) for line in (root / MANIFEST).read_text().splitlines() if line.strip()]
    return [json.loads(p.read_text()) for p in sorted((root / RECORDS).glob("[0-9]*.json"))]


def finish_dataset(job: DatasetJob) -> dict:
    out = Path(job.out)
    missing = [i for i in range(job.count) if not job.record_path(i).is_file()]
    if missing:
        raise InputError(f"{len(missing)} samples of {out} are not finished (e.g. {job.name(missing[0])}); rerun to finish them.")
    splits = assign_splits(job.count, job.settings.seed)
    records = []
    for index in range(job.count):
        record = json.loads(job.record_path(index).read_text())
        record["split"] = splits[index]
        records.append(record)
    _write_atomic(out / MANIFEST, "".join(json.dumps(r) + "\n" for r in records))
    (out / LIST_FOLDER).mkdir(exist_ok=True)
    ext = job.settings.fmt
    for split in SPLITS:
        names = [f"{r['name']}.{ext}" for r in records if r["split"] == split]
        _write_atomic(out / LIST_FOLDER / f"{split}.txt", "".join(n + "\n" for n in names))
    stats = dataset_statistics(records, job.spec)
    _write_atomic(out / CARD, dataset_card(job.spec, stats, job.count, spec_file=SPEC_FILE,
                                          correlation_range=CORRELATION_RANGE))
    return {"out": str(out), "count": job.count, "splits": {s: splits.count(s) for s in SPLITS}, "statistics": stats}

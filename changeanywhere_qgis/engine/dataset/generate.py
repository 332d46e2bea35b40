"""Change-detection datasets: many change samples cut from land-cover maps, in LEVIR-CD/SECOND layouts.

:func:`generate_dataset` is the whole job, in four steps, each in its own module of this room:

- ``job``: what the dataset is (settings, the picklable job, each sample's seed);
- ``plan``: every input checked and every sample's window chosen, nothing written;
- ``sample``: one sample, written to a private folder and moved into place, its record last;
- ``workers``: the samples run in local processes or on a Dask cluster, resumable.

A sample with a record is finished: reruns skip it, and anything else a killed run left behind is
removed when the next run starts. So a rerun finishes the rest, and the same seed gives the same
files, whichever machine or worker made each sample. At the end this module writes
``manifest.jsonl`` (one line per sample, in index order), the split lists (or, with split folders, moves
each sample into its split's folder), ``classes.json`` and the dataset card (``README.md``, whose text
``card.py`` makes).
"""

from __future__ import annotations

import json
import os
import shutil
import time
import uuid
from pathlib import Path

from ..errors import Cancelled, InputError
from ..io import (CLASSES_FILE, LIST_FOLDER, SERIES_FOLDER, SPLITS, STAGE_FOLDER, classes_document, folders, has_second,
                  in_split, load_second_classes, parts)
from ..landcover import ClassScheme
from ..progress import Progress
from .card import assign_splits, dataset_card, dataset_statistics
from .job import CARD, CORRELATION_RANGE, MANIFEST, RECORDS, SPEC_FILE, WORK, DatasetJob, DatasetSettings
from .plan import plan_dataset
from .cluster import check_scheduler, run_dask
from .workers import default_threads, finished, remove_leftovers, run_local

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
    if not settings.split_folders:  # split folders are made when the finished dataset places its samples
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
    records = [json.loads(p.read_text()) for p in sorted((root / RECORDS).glob("[0-9]*.json"))]
    return [r for r in records if not r.get("skipped")]


def _place_in_splits(out: Path, records: list[dict], layout: str) -> None:
    """Move every kept sample's files into its split's folder (``train/A/000001.png``), from the stage folder or the
    folder of the split it had before (a resumed dataset with more samples splits them anew). Safe to repeat:
    an interrupted placing is finished by the next run."""
    wanted: set[str] = set()
    for r in records:
        for rel, final in zip(r["files"].values(), in_split(r["files"], r["split"]).values()):
            wanted.add(final)
            target = out / final
            if target.is_file():
                continue
            sources = [out / STAGE_FOLDER / rel, *(out / split / rel for split in SPLITS)]
            source = next((p for p in sources if p.is_file()), None)
            if source is None:
                raise InputError(f"{rel} of sample {r['name']} is missing from {out}; pass --overwrite to make the dataset again.")
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(source, target)
    for split in SPLITS:  # files of samples beyond a smaller --count wait in the stage folder, out of the readers' way
        for folder in folders(layout):
            for path in sorted((out / split / folder).glob("*")) if (out / split / folder).is_dir() else []:
                if f"{split}/{folder}/{path.name}" not in wanted:
                    (out / STAGE_FOLDER / folder).mkdir(parents=True, exist_ok=True)
                    os.replace(path, out / STAGE_FOLDER / folder / path.name)
            if (out / split / folder).is_dir() and not any((out / split / folder).iterdir()):
                (out / split / folder).rmdir()
        _stage_dropped_series(out, split, wanted)
        if (out / split).is_dir() and not any((out / split).iterdir()):
            (out / split).rmdir()
    _tidy_stage(out)


def _tidy_stage(out: Path) -> None:
    stage = out / STAGE_FOLDER
    # bottom up, so that a series folder emptied by a resume goes before the folder that held it
    for folder in sorted((p for p in stage.rglob("*") if p.is_dir()), key=lambda p: len(p.parts), reverse=True) if stage.is_dir() else []:
        if not any(folder.iterdir()):
            folder.rmdir()
    if stage.is_dir() and not any(stage.iterdir()):
        stage.rmdir()


def _place_flat(out: Path, records: list[dict], layout: str) -> None:
    """The flat folders (``A/``, ``series/<name>/``, ...) hold exactly the kept samples' files, as split folders do: the
    files of samples beyond a smaller --count wait in the stage folder, out of the readers' way (their records stay,
    so a larger --count later takes them back without making them again). Safe to repeat."""
    wanted = {rel for r in records for rel in r["files"].values()}
    for rel in sorted(wanted):
        target = out / rel
        if target.is_file():
            continue
        source = out / STAGE_FOLDER / rel
        if not source.is_file():
            raise InputError(f"{rel} is missing from {out}; pass --overwrite to make the dataset again.")
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(source, target)
    for folder in folders(layout):
        for path in sorted((out / folder).glob("*")) if (out / folder).is_dir() else []:
            if path.is_file() and f"{folder}/{path.name}" not in wanted:
                (out / STAGE_FOLDER / folder).mkdir(parents=True, exist_ok=True)
                os.replace(path, out / STAGE_FOLDER / folder / path.name)
    held = out / SERIES_FOLDER
    for folder in sorted(p for p in held.iterdir() if p.is_dir()) if held.is_dir() else []:
        if not any(f"{SERIES_FOLDER}/{folder.name}/{f.name}" in wanted for f in folder.iterdir()):
            (out / STAGE_FOLDER / SERIES_FOLDER).mkdir(parents=True, exist_ok=True)
            os.replace(folder, out / STAGE_FOLDER / SERIES_FOLDER / folder.name)
    _tidy_stage(out)


def _stage_dropped_series(out: Path, split: str, wanted: set[str]) -> None:
    """A split's series folders (``train/series/<name>/``) of samples beyond a smaller --count wait in the stage folder too."""
    held = out / split / SERIES_FOLDER
    for folder in sorted(p for p in held.iterdir() if p.is_dir()) if held.is_dir() else []:
        if not any(f"{split}/{SERIES_FOLDER}/{folder.name}/{f.name}" in wanted for f in folder.iterdir()):
            (out / STAGE_FOLDER / SERIES_FOLDER).mkdir(parents=True, exist_ok=True)
            os.replace(folder, out / STAGE_FOLDER / SERIES_FOLDER / folder.name)
    if held.is_dir() and not any(held.iterdir()):
        held.rmdir()


def _write_lists(out: Path, records: list[dict], ext: str) -> None:
    (out / LIST_FOLDER).mkdir(exist_ok=True)
    for split in SPLITS:
        # a series of dates is listed as its pairs (each one a sample of the layout), all in the series' split
        names = [f"{n}.{ext}" for r in records if r["split"] == split for n in [p["name"] for p in r.get("pairs", [])] or [r["name"]]]
        path = out / LIST_FOLDER / f"{split}.txt"
        if names:
            _write_atomic(path, "".join(n + "\n" for n in names))
        elif path.is_file():  # a split too small to make (see card.split_sizes): no list rather than an empty one
            path.unlink()


def finish_dataset(job: DatasetJob) -> dict:
    out = Path(job.out)
    missing = [i for i in range(job.count) if not job.record_path(i).is_file()]
    if missing:
        raise InputError(f"{len(missing)} samples of {out} are not finished (e.g. {job.name(missing[0])}); rerun to finish them.")
    st = job.settings
    every = [json.loads(job.record_path(index).read_text()) for index in range(job.count)]
    records = [r for r in every if not r.get("skipped")]
    skipped = len(every) - len(records)
    if len(records) < 2:
        raise InputError(f"Only {len(records)} of the {job.count} samples are kept: {skipped} were skipped because the mapping "
                         "into SECOND's classes hides part of their change, and a dataset needs at least 2. Rerun with a "
                         "larger --count (the finished samples are kept), or without --skip-hidden-change.")
    splits, notes = assign_splits(len(records), st.seed, st.split_fractions)
    for record, split in zip(records, splits):
        record["split"] = split
    if st.split_folders:
        _place_in_splits(out, records, st.layout)
        for record in records:
            record["files"] = in_split(record["files"], record["split"])
    else:
        _place_flat(out, records, st.layout)
        _write_lists(out, records, st.fmt)
    _write_atomic(out / MANIFEST, "".join(json.dumps(r) + "\n" for r in records))
    if {"second", "classes"} & set(parts(st.layout)):
        scheme = ClassScheme.from_manifest(job.spec)
        second = load_second_classes(st.second_classes, scheme) if has_second(st.layout) else None
        _write_atomic(out / CLASSES_FILE, json.dumps(classes_document(scheme, second), indent=2) + "\n")
    stats = dataset_statistics(records, job.spec)
    sizes = {s: splits.count(s) for s in SPLITS}
    _write_atomic(out / CARD, dataset_card(job.spec, stats, job.count, spec_file=SPEC_FILE, correlation_range=CORRELATION_RANGE,
                                          splits=sizes, split_notes=notes, skipped=skipped))
    return {"out": str(out), "count": len(records), "drawn": job.count, "skipped_hidden_change": skipped, "splits": sizes,
            "split_notes": notes, "statistics": stats}

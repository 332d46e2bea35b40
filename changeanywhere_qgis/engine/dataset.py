"""Change-detection datasets: many change samples cut from land-cover maps, in LEVIR-CD/SECOND layouts.

The job is planned once (every input checked, nothing written before): each sample ``i`` gets a
seed derived from the dataset seed and ``i`` (``np.random.SeedSequence([seed, i])``), and from it a
tile window (chosen among the windows that are not mostly nodata), random object-level change
events, the content correlation s and the sampler's noise. A sample is then one call of
:func:`run_sample`, which writes its files into a private temporary folder, moves them into place
and writes its record (``.samples/<name>.json``) last. A sample with a record is finished: reruns skip
it; anything else a killed run left behind is removed when the next run starts. So a rerun finishes
the rest, and the same seed gives the same files, whichever machine or worker made each sample.

Samples run in local worker processes (``concurrent.futures``, each worker loads the model once) or,
given a scheduler address, as tasks on a Dask distributed cluster (the same function; the inputs and
the output folder must be on a file system every worker sees). At the end ``manifest.jsonl`` (one
line per sample, in index order), the split lists and the dataset card (``README.md``, made by
:mod:`dataset_card`) are written.
"""

from __future__ import annotations

import json
import os
import shutil
import time
import uuid
import warnings
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np
import rasterio
from rasterio.windows import Window
from rasterio.windows import transform as window_transform

from .dataset_card import assign_splits, dataset_card, dataset_statistics
from .errors import Cancelled, InputError
from .events import change_mask
from .layouts import FOLDERS, LIST_FOLDER, SPLITS, check_layout, folders, write_sample
from .model_package import check_guidance, default_model_dir, read_manifest
from .progress import Progress
from .raster_io import ImageSource, read_semantic
from .schedule import DEFAULT_ETA
from .scheme import ClassScheme, load_remap
from .transitions import load_table

SPEC_FILE = "dataset.json"
MANIFEST = "manifest.jsonl"
CARD = "README.md"
RECORDS = ".samples"  # one JSON record per finished sample
WORK = ".work"  # private temporary folders of samples being written
CORRELATION_RANGE = (0.7, 1.0)  # s ~ U(0.7, 1.0) per sample, as in the authors' generator
CONNECT_TIMEOUT = "15s"  # to reach a Dask scheduler
STREAMS = ("events", "correlation", "sampler", "window")  # independent random streams of one sample


@dataclass(frozen=True)
class DatasetSettings:
    """What the dataset is; everything but ``count`` must match when a run resumes into a folder."""

    count: int
    tile: int = 256
    layout: str = "levir"
    fmt: str = "png"
    seed: int = 0
    steps: int = 50
    eta: float = DEFAULT_ETA
    guidance: float | None = None  # classifier-free guidance scale; None: the model's own
    max_nodata: float = 0.5  # skip windows with more nodata than this fraction
    transitions: str | None = None  # transition table (JSON file); None: the OpenEarthMap rules
    transition_probability: float = 0.3
    max_changed_fraction: float = 0.3
    band: int = 1
    remap: str | None = None
    batch_size: int = 4
    stride: int | None = None  # spacing of candidate windows (px); None: tile // 32, at least 1

    def check(self) -> None:
        if isinstance(self.count, bool) or not isinstance(self.count, (int, np.integer)) or self.count < 1:
            raise InputError(f"The sample count must be a whole number of at least 1, got {self.count!r}.")
        if isinstance(self.tile, bool) or not isinstance(self.tile, (int, np.integer)) or self.tile < 1:
            raise InputError(f"The tile size must be a positive number of pixels, got {self.tile!r}.")
        check_layout(self.layout, self.fmt)
        if not 1 <= self.steps <= 1000:
            raise InputError(f"steps must be between 1 and 1000, got {self.steps}.")
        if not 0.0 <= self.eta <= 1.0:
            raise InputError(f"eta must be between 0 and 1, got {self.eta}.")
        check_guidance(self.guidance)
        if not 0.0 <= self.max_nodata < 1.0:
            raise InputError(f"max_nodata (the largest nodata fraction of a tile) must be in [0, 1), got {self.max_nodata}.")
        if self.batch_size < 1:
            raise InputError(f"batch_size must be at least 1, got {self.batch_size}.")
        if self.stride is not None and self.stride < 1:
            raise InputError(f"The window stride must be at least 1 px, got {self.stride}.")
        if not isinstance(self.seed, (int, np.integer)) or self.seed < 0:
            raise InputError(f"The dataset seed must be a whole number >= 0, got {self.seed!r}.")


@dataclass(frozen=True)
class DatasetJob:
    """Everything a worker needs (picklable): inputs, settings and every sample's window."""

    out: str
    model: str
    semantic: tuple[str, ...]
    images: tuple[str | None, ...]
    settings: DatasetSettings
    windows: tuple[tuple[int, int, int], ...]  # per sample: (raster index, row, col)
    digits: int
    device: str = "cpu"
    threads: int | None = None
    spec: dict = field(default_factory=dict, compare=False)

    @property
    def count(self) -> int:
        return self.settings.count

    def name(self, index: int) -> str:
        return f"{index:0{self.digits}d}"

    def record_path(self, index: int) -> Path:
        return Path(self.out) / RECORDS / f"{self.name(index)}.json"


def sample_seed(dataset_seed: int, index: int) -> int:
    """The seed of sample ``index``: reproducible, independent of every other sample."""
    return int(np.random.SeedSequence([int(dataset_seed), int(index)]).generate_state(1, np.uint32)[0])


def sample_rngs(seed: int) -> dict[str, np.random.Generator]:
    # The first three streams are the ones ``pipeline.generate(seed=...)`` uses.
    return {name: np.random.default_rng([seed, i]) for i, name in enumerate(STREAMS)}


# ----------------------------------------------------------------------------------------------
# planning


def _granule(manifest: dict) -> int:
    return max(int(manifest["tile"].get("multiple_of", 32)), int(manifest["latent"]["downsample"]))


def _window_starts(length: int, tile: int, stride: int) -> np.ndarray:
    starts = list(range(0, length - tile + 1, stride))
    if starts[-1] != length - tile:
        starts.append(length - tile)  # the last window ends at the edge
    return np.asarray(starts, dtype=np.int64)


def candidate_windows(valid: np.ndarray, tile: int, stride: int, max_nodata: float) -> tuple[np.ndarray, np.ndarray]:
    """(rows, cols) of the tile windows on a stride grid whose nodata fraction is at most ``max_nodata``."""
    rows, cols = _window_starts(valid.shape[0], tile, stride), _window_starts(valid.shape[1], tile, stride)
    table = np.zeros((valid.shape[0] + 1, valid.shape[1] + 1), dtype=np.int64)  # summed-area table
    table[1:, 1:] = valid.astype(np.int64).cumsum(0).cumsum(1)
    r, c = rows[:, None], cols[None, :]
    inside = table[r + tile, c + tile] - table[r, c + tile] - table[r + tile, c] + table[r, c]
    ok = inside >= (1.0 - max_nodata) * tile * tile - 1e-9
    ok &= inside > 0
    rr, cc = np.nonzero(ok)
    return rows[rr], cols[cc]


def _choose_windows(candidates: list[tuple[np.ndarray, np.ndarray]], seed: int, count: int) -> tuple[tuple[int, int, int], ...]:
    sizes = np.array([len(r) for r, _ in candidates], dtype=np.int64)
    offsets = np.concatenate([[0], np.cumsum(sizes)])
    total = int(offsets[-1])
    windows = []
    for index in range(count):
        k = int(sample_rngs(sample_seed(seed, index))["window"].integers(total))
        raster = int(np.searchsorted(offsets, k, side="right") - 1)
        rows, cols = candidates[raster]
        windows.append((raster, int(rows[k - offsets[raster]]), int(cols[k - offsets[raster]])))
    return tuple(windows)


def _model_spec(model_dir: Path, manifest: dict) -> dict:
    return {"name": manifest["name"], "version": manifest.get("version"), "path": str(model_dir),
            "sha256": {g: manifest["files"][g]["sha256"] for g in sorted(manifest["files"])}}


def plan_dataset(semantic, out_dir, settings: DatasetSettings, *, images=None, model=None, device: str = "cpu",
                 threads: int | None = None, overwrite: bool = False) -> DatasetJob:
    """Check every input and choose every sample's window; writes nothing."""
    settings.check()
    semantic = [semantic] if isinstance(semantic, (str, Path)) else list(semantic or [])
    if not semantic:
        raise InputError("Give at least one land-cover (semantic) raster.")
    images = [images] if isinstance(images, (str, Path)) else list(images or [])
    if images and len(images) != len(semantic):
        raise InputError(f"Give one image per land-cover raster ({len(semantic)} rasters, {len(images)} images), or no image "
                         "(then the pre-event images are generated from the maps).")
    model_dir = Path(model) if model else default_model_dir()
    manifest = read_manifest(model_dir)
    scheme = ClassScheme.from_manifest(manifest)
    granule = _granule(manifest)
    tile = int(settings.tile)
    if tile % granule:
        raise InputError(f"The tile size must be a multiple of {granule} px for this model (its size granule); "
                         f"{tile} is not. Try {max(granule, tile // granule * granule)} or {(tile // granule + 1) * granule}.")
    load_table(settings.transitions, scheme)  # a bad table fails now, not in every worker
    lut = load_remap(settings.remap)
    stride = settings.stride or max(1, tile // 32)
    candidates, sources, crs_seen = [], [], []
    for k, path in enumerate(semantic):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # a missing CRS is recorded, not a reason to stop
            sem = read_semantic(path, scheme, settings.band, lut)
        if sem.grid.height < tile or sem.grid.width < tile:
            raise InputError(f"Land-cover raster {path} is {sem.grid.width}x{sem.grid.height} px, smaller than the "
                             f"{tile} px tile. Choose a smaller tile (at most {min(sem.grid.width, sem.grid.height) // granule * granule} px) or a larger raster.")
        if images:
            ImageSource(images[k], sem.grid).close()  # same grid, RGB, uint8
        found = candidate_windows(sem.valid, tile, stride, settings.max_nodata)
        candidates.append(found)
        sources.append(str(Path(path).resolve()))
        crs_seen.append(sem.grid.crs)
    if not sum(len(r) for r, _ in candidates):
        raise InputError(f"Every {tile} px window of the land-cover raster(s) is mostly nodata (more than "
                         f"{settings.max_nodata:.0%}). Give rasters with more labelled land, a smaller tile, or a larger max_nodata.")
    out = Path(out_dir)
    digits = max(6, len(str(settings.count - 1)))
    spec = {
        "format": "changeanywhere-dataset/1",
        "semantic": sources,
        "images": [str(Path(p).resolve()) for p in images] or None,
        "model": _model_spec(model_dir.resolve(), manifest),
        # guidance only when asked for: specs written before it existed still match when a run resumes
        "settings": {k: v for k, v in asdict(settings).items() if k != "count" and not (k == "guidance" and v is None)},
        "digits": digits,
        "model_tile": {"size": int(manifest["tile"]["size"]), "overlap_px": int(manifest["tile"]["size"]) // 4},
        "classes": [{"code": c.code, "name": c.name, "color": list(c.color)} for c in scheme.classes],
        "nodata_code": scheme.nodata_code,
    }
    _check_out(out, spec, overwrite)
    windows = _choose_windows(candidates, settings.seed, settings.count)
    return DatasetJob(out=str(out.resolve()), model=str(model_dir.resolve()), semantic=tuple(sources),
                      images=tuple(spec["images"] or [None] * len(sources)), settings=settings, windows=windows,
                      digits=digits, device=device, threads=threads, spec=spec)


def _check_out(out: Path, spec: dict, overwrite: bool) -> None:
    if out.is_file():
        raise InputError(f"Output path {out} is a file, not a folder. Choose a folder path.")
    if not out.exists() or overwrite or not any(out.iterdir()):
        return
    spec_file = out / SPEC_FILE
    if not spec_file.is_file():
        raise InputError(f"Output folder {out} already exists and holds no dataset of this tool. Choose another folder, "
                         "or pass --overwrite to replace it.")
    try:
        old = json.loads(spec_file.read_text())
    except ValueError as exc:
        raise InputError(f"{spec_file} is not valid JSON ({exc}). Pass --overwrite to start the dataset again.") from exc
    old.pop("count", None)
    differ = sorted(k for k in set(old) | set(spec) if old.get(k) != spec.get(k))
    if differ:
        detail = "; ".join(f"{k}: {old.get(k)!r} now {spec.get(k)!r}" for k in differ[:3])
        raise InputError(f"Output folder {out} holds a dataset made with other settings ({detail}). Rerun with the same "
                         "settings to finish it (only --count may change), choose another folder, or pass --overwrite.")


# ----------------------------------------------------------------------------------------------
# one sample


_STATE: dict = {}  # per process: the loaded model and open images, keyed by the job


def _worker_state(job: DatasetJob) -> dict:
    key = (job.out, job.model, job.device, job.threads)
    if _STATE.get("key") != key:
        from .model_package import load_model_package

        for src in _STATE.get("images", {}).values():
            src.close()
        _STATE.clear()
        _STATE.update(key=key, pkg=load_model_package(job.model, job.device, job.threads), images={},
                      table=None, lut=load_remap(job.settings.remap))
        _STATE["table"] = load_table(job.settings.transitions, _STATE["pkg"].scheme)
    return _STATE


def init_worker(job: DatasetJob) -> None:
    """ProcessPoolExecutor initializer: load the model once per worker process."""
    _worker_state(job)
    _STATE["job"] = job


def _read_window(job: DatasetJob, scheme: ClassScheme, lut, images: dict, raster: int, row: int, col: int):
    """(labels uint8, valid bool, transform, crs, image uint8 [3,H,W] or None) of one tile window."""
    tile, band = job.settings.tile, job.settings.band
    window = Window(col, row, tile, tile)
    with rasterio.open(job.semantic[raster]) as ds:
        raw = ds.read(band, window=window)
        nodata = ds.nodatavals[band - 1]
        transform, crs = window_transform(window, ds.transform), ds.crs
    invalid = np.zeros(raw.shape, dtype=bool)
    if nodata is not None:
        invalid |= np.isnan(raw) if np.isnan(nodata) else raw == nodata
    labels = np.where(invalid, scheme.nodata_code, np.nan_to_num(raw)).astype(np.uint8)
    if lut is not None:
        labels = lut[labels]
    invalid |= labels == scheme.nodata_code
    image = None
    path = job.images[raster]
    if path is not None:
        if path not in images:
            images[path] = rasterio.open(path)
        image = images[path].read((1, 2, 3), window=window)
    return labels, ~invalid, transform, crs, image


def _transitions(pre: np.ndarray, post: np.ndarray, changed: np.ndarray) -> list[dict]:
    pairs, counts = np.unique(pre[changed].astype(np.int64) * 256 + post[changed], return_counts=True)
    return [{"from": int(p // 256), "to": int(p % 256), "pixels": int(n)} for p, n in zip(pairs, counts)]


def _class_pixels(labels: np.ndarray, valid: np.ndarray) -> dict[str, int]:
    counts = np.bincount(labels[valid], minlength=256)
    return {str(code): int(n) for code, n in enumerate(counts) if n}


def run_sample(job: DatasetJob, index: int) -> dict:
    """Make sample ``index`` (or return its record when it is already finished)."""
    record_path = job.record_path(index)
    if record_path.is_file():
        return json.loads(record_path.read_text())
    from .synthesis import change_pair
    from .random_events import random_events

    state = _worker_state(job)
    st = job.settings
    pkg = state["pkg"].with_guidance(st.guidance)
    scheme: ClassScheme = pkg.scheme
    seed = sample_seed(st.seed, index)
    rngs = sample_rngs(seed)
    raster, row, col = job.windows[index]
    pre, valid, transform, crs, image = _read_window(job, scheme, state["lut"], state["images"], raster, row, col)
    result = random_events(pre, scheme, rngs["events"], nodata=scheme.nodata_code, table=state["table"],
                           transition_probability=st.transition_probability, max_changed_fraction=st.max_changed_fraction)
    mask = change_mask(pre, result.post, nodata=scheme.nodata_code)
    mask[~valid] = 255
    s = float(rngs["correlation"].uniform(*CORRELATION_RANGE))
    t1, t2 = change_pair(pkg, pre, result.post, mask, s, rngs["sampler"], image=image, steps=st.steps, eta=st.eta,
                         batch_size=st.batch_size)

    out = Path(job.out)
    name = job.name(index)
    work = out / WORK / f"{name}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    work.mkdir(parents=True)
    try:
        files = write_sample(work, st.layout, st.fmt, name, t1=t1, t2=t2, pre=pre, post=result.post, mask=mask,
                             scheme=scheme, georef=(transform, crs))
        changed = mask == 1
        n_valid = int(valid.sum())
        record = {
            "index": index, "name": name,
            "source": {"semantic": job.semantic[raster], "image": job.images[raster], "band": st.band},
            "window": {"row": row, "col": col, "height": st.tile, "width": st.tile},
            "transform": list(transform)[:6], "crs": crs.to_string() if crs else None,
            "seed": seed, "seed_from": [st.seed, index], "s": s,
            "events": [e.to_dict() for e in result.events],
            "transitions": _transitions(pre, result.post, changed),
            "changed_fraction": float(changed.sum() / n_valid) if n_valid else 0.0,
            "valid_fraction": n_valid / pre.size,
            "class_pixels": {"pre": _class_pixels(pre, valid), "post": _class_pixels(result.post, valid)},
            "files": files,
        }
        for rel in files.values():
            (out / rel).parent.mkdir(parents=True, exist_ok=True)
            os.replace(work / rel, out / rel)
        record_path.parent.mkdir(parents=True, exist_ok=True)
        temp = record_path.with_name(f".{record_path.name}.{uuid.uuid4().hex[:8]}")
        temp.write_text(json.dumps(record))
        os.replace(temp, record_path)  # the record last: from now on the sample counts as finished
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return record


def sample_maps(root, record: dict) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(pre, post, valid) maps of a finished sample, rebuilt from its source window and seed.

    The change events are simulated again from the sample's seed, exactly as when it was made (the
    evaluation checks the rebuilt change mask against the sample's label).
    """
    from .random_events import random_events

    spec = json.loads((Path(root) / SPEC_FILE).read_text())
    st = spec["settings"]
    scheme = ClassScheme.from_manifest(spec)
    settings = DatasetSettings(count=1, **st)
    job = DatasetJob(out=str(root), model=spec["model"]["path"], semantic=(record["source"]["semantic"],), images=(None,),
                     settings=settings, windows=(), digits=spec["digits"])
    w = record["window"]
    pre, valid, _, _, _ = _read_window(job, scheme, load_remap(st["remap"]), {}, 0, w["row"], w["col"])
    rngs = sample_rngs(record["seed"])
    result = random_events(pre, scheme, rngs["events"], nodata=scheme.nodata_code, table=load_table(st["transitions"], scheme),
                           transition_probability=st["transition_probability"], max_changed_fraction=st["max_changed_fraction"])
    return pre, result.post, valid


def _run_in_worker(index: int) -> dict:
    return run_sample(_STATE["job"], index)


# ----------------------------------------------------------------------------------------------
# the whole job


def finished(job: DatasetJob) -> set[int]:
    folder = Path(job.out) / RECORDS
    if not folder.is_dir():
        return set()
    return {int(p.stem) for p in folder.glob("*.json") if p.stem.isdigit()}


def _remove_leftovers(job: DatasetJob) -> int:
    """A killed run's leftovers: temporary folders, and files of samples without a record."""
    out = Path(job.out)
    shutil.rmtree(out / WORK, ignore_errors=True)
    done = {job.name(i) for i in finished(job)}
    removed = 0
    for folder in {f for fs in FOLDERS.values() for f in fs}:
        for path in (out / folder).glob("*") if (out / folder).is_dir() else []:
            if path.stem.isdigit() and path.stem not in done:
                path.unlink()
                removed += 1
    for temp in (out / RECORDS).glob(".*") if (out / RECORDS).is_dir() else []:
        temp.unlink()
    return removed


def _write_atomic(path: Path, text: str) -> None:
    temp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}")
    temp.write_text(text)
    os.replace(temp, path)


def _default_threads(workers: int) -> int:
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


def _run_local(job: DatasetJob, todo: list[int], workers: int, tick, cancelled) -> None:
    if workers == 1 or len(todo) == 1:
        for index in todo:
            if cancelled():
                raise Cancelled("")
            run_sample(job, index)
            tick()
        return
    import multiprocessing

    # spawn: no copy of this process's onnxruntime/GDAL state; each worker loads the model once.
    context = multiprocessing.get_context("spawn")
    python = python_executable()
    if python is None:
        warnings.warn("No Python interpreter found to start worker processes with; running in this process.", stacklevel=2)
        return _run_local(job, todo, 1, tick, cancelled)
    context.set_executable(python)
    with ProcessPoolExecutor(workers, mp_context=context, initializer=init_worker, initargs=(job,)) as pool:
        pending = {pool.submit(_run_in_worker, i) for i in todo}
        try:
            while pending:
                done, pending = wait(pending, timeout=0.5, return_when=FIRST_COMPLETED)
                for future in done:
                    future.result()
                    tick()
                if cancelled():
                    raise Cancelled("")
        except BaseException:
            for future in pending:
                future.cancel()
            raise


def _run_dask(job: DatasetJob, todo: list[int], address: str, tick, cancelled) -> dict:
    try:
        from distributed import Client, as_completed
    except ImportError as exc:
        raise InputError(f"A Dask scheduler was given but the 'distributed' package is missing ({exc}). "
                         "Install dask[distributed], or run with local workers.") from exc
    try:
        client = Client(address, set_as_default=False, timeout=CONNECT_TIMEOUT)
    except (OSError, TimeoutError) as exc:
        raise InputError(f"Cannot reach the Dask scheduler at {address} ({exc}). Check the address "
                         "(e.g. tcp://host:8786) and that the scheduler is running.") from exc
    try:
        info = client.scheduler_info()["workers"]
        if not info:
            raise InputError(f"The Dask scheduler at {address} has no workers. Start some (dask worker {address}).")
        if job.threads is None:
            cpus = client.run(os.cpu_count)
            per_host: dict[str, list] = {}
            for addr, w in info.items():
                per_host.setdefault(w["host"], []).append((addr, w["nthreads"]))
            job = replace(job, threads=min(max(1, (cpus[ws[0][0]] or 1) // sum(n for _, n in ws)) for ws in per_host.values()))
        shared = client.scatter(job, broadcast=True)
        futures = client.map(run_sample, [shared] * len(todo), todo, pure=False)
        try:
            with client.as_current():
                for future in as_completed(futures):
                    future.result()
                    tick()
                    if cancelled():
                        raise Cancelled("")
        except BaseException:
            client.cancel(futures)
            raise
        return {"workers": len(info), "threads_per_sample": job.threads}
    finally:
        client.close()


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
                       threads=threads if (threads or scheduler) else _default_threads(workers), overwrite=overwrite)
    out = Path(job.out)
    if overwrite and out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True, exist_ok=True)
    _write_atomic(out / SPEC_FILE, json.dumps(job.spec, indent=2))
    for folder in folders(settings.layout):
        (out / folder).mkdir(exist_ok=True)
    _remove_leftovers(job)
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
    cancelled = lambda: progress._is_cancelled()  # noqa: E731
    backend: dict
    try:
        if scheduler:
            backend = {"backend": "dask", "scheduler": scheduler, **_run_dask(job, todo, scheduler, tick, cancelled)}
        else:
            _run_local(job, todo, workers, tick, cancelled)
            backend = {"backend": "local", "workers": workers, "threads_per_sample": job.threads}
    except BaseException as exc:  # cancel or Ctrl-C: the local workers have stopped, so remove what a
        if not scheduler:  # sample cut short left (Dask tasks may still be running: the next run cleans)
            _remove_leftovers(job)
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


# ----------------------------------------------------------------------------------------------
# manifest, splits, card (the card's text: dataset_card.py)


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

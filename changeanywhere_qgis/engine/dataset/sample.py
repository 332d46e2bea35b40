"""One sample of a dataset, as a worker makes it: read its window, simulate its events, generate its pair.

A sample writes its files into a private temporary folder, moves them into place and writes its
record (``.samples/<name>.json``) last: a sample with a record is finished, anything else is a
leftover the next run removes. With ``skip_hidden_change`` a sample whose change SECOND's classes hide
gets a record that says so, and no files. :func:`sample_maps` rebuilds a finished sample's maps from its seed.
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
from pathlib import Path

import numpy as np
import rasterio
from rasterio.windows import Window
from rasterio.windows import transform as window_transform

from ..diffusion import change_pair, change_series, load_model_package, load_style
from ..events import change_mask, load_table, random_events
from ..io import (STAGE_FOLDER, has_second, load_second_classes, pair_name, read_input, read_style_image, second_labels, series_pairs, write_sample,
                  write_series)
from ..landcover import ClassScheme, load_remap
from .appearance import appearance_shift, draw_appearance_shift
from .series import later_dates, pair_masks, series_entries
from .job import CORRELATION_RANGE, LEGACY_SETTINGS, SPEC_FILE, WORK, DatasetJob, DatasetSettings, sample_rngs, sample_seed

_STATE: dict = {}  # per process: the loaded model and open images, keyed by the job


def _worker_state(job: DatasetJob) -> dict:
    key = (job.out, job.model, job.device, job.threads, job.settings.precision)
    if _STATE.get("key") != key:
        for src in _STATE.get("images", {}).values():
            src.close()
        _STATE.clear()
        _STATE.update(key=key, pkg=load_model_package(job.model, job.device, job.threads, job.settings.precision), images={},
                      table=None, lut=load_remap(job.settings.remap))
        _STATE["table"] = load_table(job.settings.transitions, _STATE["pkg"].scheme)
        _STATE["second"] = (load_second_classes(job.settings.second_classes, _STATE["pkg"].scheme)
                            if has_second(job.settings.layout) else None)
        style = job.spec.get("style")  # encoded once per worker: its statistics are every sample's
        _STATE["style"] = (load_style(_STATE["pkg"], read_style_image(style["path"]), job.settings.style_strength,
                                      batch_size=job.settings.batch_size) if style else None)
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
        raw = read_input(ds, "Semantic raster", band, window=window)
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
        image = read_input(images[path], "Image", (1, 2, 3), window=window)
    return labels, ~invalid, transform, crs, image


def _transitions(pre: np.ndarray, post: np.ndarray, changed: np.ndarray) -> list[dict]:
    pairs, counts = np.unique(pre[changed].astype(np.int64) * 256 + post[changed], return_counts=True)
    return [{"from": int(p // 256), "to": int(p % 256), "pixels": int(n)} for p, n in zip(pairs, counts)]


def _class_pixels(labels: np.ndarray, valid: np.ndarray) -> dict[str, int]:
    counts = np.bincount(labels[valid], minlength=256)
    return {str(code): int(n) for code, n in enumerate(counts) if n}


def _write_record(path: Path, record: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}")
    temp.write_text(json.dumps(record))
    os.replace(temp, path)


def run_sample(job: DatasetJob, index: int) -> dict:
    """Make sample ``index`` (or return its record when it is already finished)."""
    record_path = job.record_path(index)
    if record_path.is_file():
        return json.loads(record_path.read_text())
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
    changed = mask == 1
    n_valid = int(valid.sum())
    name = job.name(index)
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
    }
    maps, masks, later = [pre, result.post], {(1, 2): mask}, []
    if st.dates > 2:  # a series: the later dates' events on the date before; the record's keys say T1 to TN
        later = later_dates(result.post, valid, seed, scheme, state["table"], st)
        maps += [d.result.post for d in later]
        masks = pair_masks(maps, valid, scheme.nodata_code)
        record.update(series_entries(result, s, later, masks), transitions=_transitions(pre, maps[-1], masks[(1, len(maps))] == 1))
        record["class_pixels"]["post"] = _class_pixels(maps[-1], valid)
        record["pairs"] = [{"name": pair_name(name, a, b), "from": a, "to": b} for a, b in series_pairs(len(maps))]
    second = state["second"]
    if second is not None:  # changed land whose classes before and after are one SECOND class: SECOND shows no change
        record["hidden_change_pixels"] = sum(int(second_labels(maps[a - 1], maps[b - 1], m, second)[2].sum())
                                             for (a, b), m in masks.items())
        if st.skip_hidden_change and record["hidden_change_pixels"]:
            skipped = {**record, "skipped": "the mapping into SECOND's classes hides part of its change", "files": {}}
            _write_record(record_path, skipped)
            return skipped  # no image is generated for a skipped sample
    options = dict(image=image, steps=st.steps, eta=st.eta, batch_size=st.batch_size, pre_event=st.pre_event, sampler=st.sampler,
                   tile_px=st.sampler_tile, mixing=st.mixing)
    if later:  # (a series takes no style or appearance shift yet: DatasetSettings.check refuses them)
        images = change_series(pkg, maps, [masks[(k - 1, k)] for k in range(2, len(maps) + 1)], [s] + [d.s for d in later],
                               [rngs["sampler"]] + [d.rng for d in later], **options)
    else:
        images = list(change_pair(pkg, pre, result.post, mask, s, rngs["sampler"], style=state["style"], post_event=st.post_event,
                                  inpaint_margin_px=st.inpaint_margin_px, rerender_strength=st.rerender_strength, **options))
    if st.appearance_shift:  # B alone, after decoding, from a stream of its own: A, the labels and every other draw unchanged
        shift = draw_appearance_shift(seed)
        images[1], record["appearance_shift"] = appearance_shift(images[1], shift), shift.to_dict()

    out = Path(job.out)
    # layouts with split folders: the files wait in the stage folder until the finished dataset places them
    dest = out / STAGE_FOLDER if st.split_folders else out
    work = out / WORK / f"{name}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    work.mkdir(parents=True)
    try:
        if later:
            files, _ = write_series(work, st.layout, st.fmt, name, images=images, maps=maps, masks=masks, valid=valid,
                                    scheme=scheme, second=second, georef=(transform, crs))
        else:
            files = write_sample(work, st.layout, st.fmt, name, t1=images[0], t2=images[1], pre=pre, post=result.post, mask=mask,
                                 scheme=scheme, second=second, georef=(transform, crs))
        record["files"] = files
        for rel in files.values():
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            os.replace(work / rel, dest / rel)
        _write_record(record_path, record)  # the record last: from now on the sample counts as finished
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return record


def sample_maps(root, record: dict) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(pre, post, valid) maps of a finished sample, rebuilt from its source window and seed.

    The change events are simulated again from the sample's seed, exactly as when it was made (the
    evaluation checks the rebuilt change mask against the sample's label).
    """
    spec = json.loads((Path(root) / SPEC_FILE).read_text())
    st = spec["settings"]
    scheme = ClassScheme.from_manifest(spec)
    settings = DatasetSettings(count=1, **{**LEGACY_SETTINGS, **st})  # a spec without an option meant its value of before it
    job = DatasetJob(out=str(root), model=spec["model"]["path"], semantic=(record["source"]["semantic"],), images=(None,),
                     settings=settings, windows=(), digits=spec["digits"])
    w = record["window"]
    pre, valid, _, _, _ = _read_window(job, scheme, load_remap(st["remap"]), {}, 0, w["row"], w["col"])
    rngs = sample_rngs(record["seed"])
    result = random_events(pre, scheme, rngs["events"], nodata=scheme.nodata_code, table=load_table(st["transitions"], scheme),
                           transition_probability=st["transition_probability"], max_changed_fraction=st["max_changed_fraction"])
    return pre, result.post, valid


def run_in_worker(index: int) -> dict:
    return run_sample(_STATE["job"], index)

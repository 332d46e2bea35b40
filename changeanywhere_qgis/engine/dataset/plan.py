"""Planning a dataset: every input checked and every sample's window chosen before anything is written."""

from __future__ import annotations

import json
import warnings
from dataclasses import replace
from pathlib import Path, PurePosixPath

import numpy as np

from ..diffusion import check_precision, default_model_dir, read_manifest, default_tile_text, resolve_tile_px
from ..errors import InputError
from ..events import load_table
from ..io import (CLASSES_FILE, LIST_FOLDER, SERIES_FOLDER, SPLITS, STAGE_FOLDER, ImageSource, OwnedFiles, check_output_path,
                  check_replaceable, check_writable, every_folder, has_second, load_second_classes, parts, read_semantic,
                  read_style_image)
from ..landcover import ClassScheme, load_remap
from .job import CARD, MANIFEST, OPTIONAL_SETTINGS, RECORDS, SPEC_FILE, WORK, DatasetJob, DatasetSettings, sample_rngs, sample_seed, spec_sampler_tile


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
    check_precision(settings.precision, device)  # int8 on CUDA is refused here, not in every worker
    model_dir = Path(model) if model else default_model_dir()
    # int8: a package without its int8 graph (or with a stale one) is refused now, with the command that makes it
    manifest = read_manifest(model_dir, precision=settings.precision)
    scheme = ClassScheme.from_manifest(manifest)
    granule = _granule(manifest)
    tile = int(settings.tile)
    if tile % granule:
        raise InputError(f"The tile size must be a multiple of {granule} px for this model (its size granule); "
                         f"{tile} is not. Try {max(granule, tile // granule * granule)} or {(tile // granule + 1) * granule}.")
    model_tile = int(manifest["tile"]["size"])
    # recorded resolved, None for the model's own tile (as in every spec before the default could be another): a
    # spec's tile then stays what it was made with whatever DEFAULT_TILE_PX becomes
    settings = replace(settings, sampler_tile=resolve_tile_px(model_tile, granule, settings.sampler_tile))
    if settings.sampler_tile is not None and (settings.sampler_tile % granule or settings.sampler_tile < model_tile):
        raise InputError(f"The sampler's tile size must be a multiple of {granule} px (the model's size granule) and at least the "
                         f"model's tile of {model_tile} px, got {settings.sampler_tile}. Leave it empty for the default "
                         f"({default_tile_text()}), or give e.g. {2 * model_tile}.")
    load_table(settings.transitions, scheme)  # a bad table fails now, not in every worker
    style = read_style_image(settings.style) if settings.style else None  # and a bad style image
    second = load_second_classes(settings.second_classes, scheme) if has_second(settings.layout) else None
    if "classes" in parts(settings.layout) and 0 in scheme.codes:
        raise InputError("The classes layout writes 0 for no data, but this model has a class with code 0. Choose the "
                         "levir or second layout.")
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
        # settings at their default are left out (DatasetSettings.recorded): specs written before they existed
        # still match when a run resumes
        "settings": settings.recorded(),
        "digits": digits,
        "model_tile": {"size": int(manifest["tile"]["size"]), "overlap_px": int(manifest["tile"]["size"]) // 4},
        "classes": [{"code": c.code, "name": c.name, "color": list(c.color)} for c in scheme.classes],
        "nodata_code": scheme.nodata_code,
    }
    if second is not None:  # the mapping itself, not only its file: another table is another dataset
        spec["second_classes"] = second.to_spec(scheme)
    if style is not None:  # the file's hash too: another image at the same path is another dataset
        spec["style"] = {"path": str(Path(style.path).resolve()), "sha256": style.sha256, "window": list(style.window)}
    _check_out(out, spec, overwrite, [*semantic, *images, model_dir, settings.transitions, settings.style, settings.remap,
                                      settings.second_classes])
    windows = _choose_windows(candidates, settings.seed, settings.count)
    return DatasetJob(out=str(out.resolve()), model=str(model_dir.resolve()), semantic=tuple(sources),
                      images=tuple(spec["images"] or [None] * len(sources)), settings=settings, windows=windows,
                      digits=digits, device=device, threads=threads, spec=spec)


# Settings that change how fast a dataset is made, not what it holds: a resume may change them.
SPEED_SETTINGS = ("batch_size",)


def _differences(old, new, prefix: str = "") -> list[str]:
    """The dotted names of the settings that differ, dictionaries compared key by key."""
    if isinstance(old, dict) and isinstance(new, dict):
        found = []
        for key in sorted(set(old) | set(new), key=str):
            found += _differences(old.get(key), new.get(key), f"{prefix}{key}.")
        return found
    return [prefix[:-1]] if old != new else []


def _lookup(spec: dict, dotted: str):
    for key in dotted.split("."):
        spec = spec.get(key) if isinstance(spec, dict) else None
    return spec


def _shown(spec: dict, dotted: str):
    """A setting as a refusal and its hint name it: a spec leaves an optional setting out at its value of before
    (OPTIONAL_SETTINGS, which holds LEGACY_SETTINGS' values: a spec older than the option meant the same), which the
    user knows, not as None."""
    value = _lookup(spec, dotted)
    group, _, key = dotted.partition(".")
    if group == "settings" and key in OPTIONAL_SETTINGS and key not in (spec.get("settings") or {}):
        return OPTIONAL_SETTINGS[key]
    return value


def _comparable(spec: dict) -> dict:
    settings = {k: v for k, v in spec.get("settings", {}).items() if k not in SPEED_SETTINGS}
    if not spec.get("images"):  # without images the pre-event image is generated: the setting changes nothing (and a
        settings.pop("pre_event", None)  # dataset begun under the old default "redrawn" still finishes)
    return {**{k: v for k, v in spec.items() if k != "count"}, "settings": settings}


def _default_change_hint(old: dict, differ: list[str]) -> str:
    """The flags that finish a dataset begun under other defaults: the pre-event image and appearance shifts changed
    their defaults (checks U1, U2, U5 of docs/research/usefulness-checks.md), the post-event image and latent mixing may
    change theirs, so a rerun of the same command can differ in them."""
    flags = []
    if "settings.pre_event" in differ:
        pre_event = _shown(old, "settings.pre_event")
        flags.append((f"--pre-event {pre_event}", f"\"Pre-event image is\": {pre_event}"))
    if "settings.appearance_shift" in differ:
        flags.append(("--appearance-shift", "tick \"Random appearance shifts\"") if _lookup(old, "settings.appearance_shift")
                     else ("--no-appearance-shift", "untick \"Random appearance shifts\""))
    if "settings.post_event" in differ:  # its default may change by the usefulness test (diffusion/inpaint.py)
        post_event = _shown(old, "settings.post_event")
        flags.append((f"--post-event {post_event}", f"\"Post-event image\": {post_event}"))
    if "settings.sampler" in differ:  # the solver, its steps and its tile may change by check S2 (issue #34)
        sampler = _shown(old, "settings.sampler")
        flags.append((f"--sampler {sampler}", f"\"Sampler\": {sampler}"))
    if "settings.steps" in differ:
        flags.append((f"--steps {_lookup(old, 'settings.steps')}", f"\"Diffusion steps\": {_lookup(old, 'settings.steps')}"))
    if "settings.sampler_tile" in differ:
        tile = spec_sampler_tile(old)
        flags.append((f"--tile-size {tile}", f"\"Sampler tile, px\": {tile}"))
    if "settings.mixing" in differ:  # its default may change by the quality check of issue #34 (diffusion/sampler.py)
        mixing = _shown(old, "settings.mixing")
        flags.append((f"--mixing {mixing}", f"\"Latent mixing\": {mixing}"))
    if "settings.precision" in differ:  # and so may the denoiser's precision (issue #34: int8 kept only by a quality rule)
        precision = _shown(old, "settings.precision")
        flags.append((f"--precision {precision}", f"\"Denoiser precision\": {precision}"))
    for key, flag, box in (("inpaint_margin_px", "--inpaint-margin", "Inpainting margin"),
                           ("rerender_strength", "--rerender-strength", "Inpainting: re-render strength")):
        if f"settings.{key}" in differ and _lookup(old, f"settings.{key}") is not None:
            flags.append((f"{flag} {_lookup(old, f'settings.{key}'):g}", f"\"{box}\": {_lookup(old, f'settings.{key}'):g}"))
    if not flags:
        return ""
    return (f" To finish it, add {' '.join(flag for flag, _ in flags)} "
            f"(Processing: {'; '.join(box for _, box in flags)}).")


# Where a dataset's files lie (io/layouts, job.py): the layout's folders, flat or under a split's folder, the series
# folder, list/, the hidden record, work and staging folders; images, labels, lists and records by their endings.
_DATASET_TOP_FILES = {SPEC_FILE, MANIFEST, CARD, CLASSES_FILE}
_DATASET_FOLDERS = {*every_folder(), *SPLITS, LIST_FOLDER, SERIES_FOLDER, STAGE_FOLDER, RECORDS, WORK}
_DATASET_FILE_ENDINGS = (".png", ".tif", ".txt", ".json", ".jsonl")


def _dataset_owns(rel: PurePosixPath, is_dir: bool) -> bool:
    if len(rel.parts) == 1:
        return rel.name in _DATASET_FOLDERS if is_dir else rel.name in _DATASET_TOP_FILES
    if rel.parts[0] in (RECORDS, WORK, STAGE_FOLDER, SERIES_FOLDER):  # samples' own sub-folders
        return is_dir or rel.name.endswith(_DATASET_FILE_ENDINGS)
    return rel.parts[1] in _DATASET_FOLDERS if is_dir else rel.name.endswith(_DATASET_FILE_ENDINGS)


DATASET_FOLDER = OwnedFiles("a change-detection dataset", (SPEC_FILE,), _dataset_owns)


def _check_out(out: Path, spec: dict, overwrite: bool, inputs=()) -> None:
    check_output_path(out, "Output path")
    check_writable(out)
    if not out.exists() or not any(out.iterdir()):
        return
    if overwrite:
        check_replaceable(out, DATASET_FOLDER, inputs)  # generate_dataset then deletes it
        return
    spec_file = out / SPEC_FILE
    if not spec_file.is_file():
        raise InputError(f"Output folder {out} already exists and holds no dataset of this tool. Choose another folder, "
                         "or pass --overwrite to replace it.")
    try:
        old = json.loads(spec_file.read_text())
    except ValueError as exc:
        raise InputError(f"{spec_file} is not valid JSON ({exc}). Pass --overwrite to start the dataset again.") from exc
    if not isinstance(old, dict):
        raise InputError(f"{spec_file} does not hold a dataset description. Pass --overwrite to start the dataset again.")
    old.pop("count", None)
    if has_second(spec["settings"]["layout"]) and old.get("settings", {}).get("layout") == spec["settings"]["layout"] \
            and "second_classes" not in old:
        raise InputError(f"Output folder {out} holds a SECOND dataset of an earlier version, whose label1/label2 hold the "
                         "model's class codes; this version writes SECOND's palette (white = unchanged). Finish it with that "
                         "version, choose another folder, or pass --overwrite to start it again.")
    differ = _differences(_comparable(old), _comparable(spec))
    if differ:
        detail = "; ".join(f"{k} was {_shown(old, k)!r}, now {_shown(spec, k)!r}" for k in differ[:5])
        more = f" (and {len(differ) - 5} more)" if len(differ) > 5 else ""
        hint = _default_change_hint(old, differ)
        raise InputError(f"Output folder {out} holds a dataset made with other settings: {detail}{more}. Rerun with the "
                         "same settings to finish it (only --count and --batch-size may change), choose another folder, "
                         f"or pass --overwrite.{hint}")

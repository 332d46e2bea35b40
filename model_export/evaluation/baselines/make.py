"""A whole baseline dataset: the sources read, every sample made and written, the card; resumable by rerunning
(a finished baseline with the same settings is kept as it is), cancellable (nothing is left half-written)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from rasterio.windows import Window
from rasterio.windows import transform as window_transform

from changeanywhere_qgis.engine.errors import InputError
from changeanywhere_qgis.engine.progress import Progress

from .copy_paste import CopyPasteSettings, copy_paste_sample, find_donors
from .random_pairing import random_pair_sample
from .sources import load_sources
from .writer import FORMAT, BaselineWriter, check_out

METHODS = {
    "copy-paste": ("Copy-paste", "Self-Pair (Seo et al., WACV 2023)",
                   "B is the real window with real objects cut from other windows of the same maps pasted in (pixels and "
                   "class, turned and mirrored at random) and real objects of the window painted over with real ground (the "
                   "pixels of another window's land of the class around the object), until the changed share of the dataset "
                   "command's sample of the same index is reached; then one mild global colour and brightness jitter. The "
                   "label is exactly the pasted and painted pixels."),
    "random-pairing": ("Random pairing", "STAR (Zheng et al., ICCV 2021)",
                       "B is another real window of the same maps, not overlapping A's, drawn by the sample's seed; the label "
                       "is where the two windows' land-cover maps differ."),
}


def make_baseline(method: str, semantic, images, out, *, count: int, tile: int = 256, seed: int = 0, remap: str | None = None,
                  model: str | None = None, copy_paste: CopyPasteSettings | None = None, overwrite: bool = False,
                  command: str | None = None, progress: Progress | None = None) -> dict:
    """Make a baseline dataset at ``out``; returns its summary (``kept`` True when it was already there)."""
    if method not in METHODS:
        raise InputError(f"Unknown baseline {method!r}. Choose one of: {', '.join(METHODS)}.")
    progress = progress or Progress()
    copy_paste = copy_paste or CopyPasteSettings()
    if method == "copy-paste":
        copy_paste.check()
    semantic = [semantic] if isinstance(semantic, (str, Path)) else list(semantic)
    images = [images] if isinstance(images, (str, Path)) else list(images or [])
    out = Path(out)
    if not images or len(images) != len(semantic):  # before the progress bar shows
        raise InputError(f"The baselines cut real pixels out of the images: give one image per land-cover map "
                         f"({len(semantic)} maps, {len(images)} images) with --image.")
    progress.stage("reading the maps and images")
    sources = load_sources(semantic, images, count=count, tile=tile, seed=seed, remap=remap, model=model, out=out)
    st = sources.settings
    spec = {
        "format": FORMAT, "method": method, "after": METHODS[method][1],
        "semantic": [s.semantic for s in sources.rasters], "images": [s.image for s in sources.rasters],
        "model": {"path": sources.model, "note": "only its classes (and tile granule) are used: no model runs"},
        "settings": {"count": count, "tile": tile, "seed": seed, "remap": remap, "band": st.band, "max_nodata": st.max_nodata,
                     "stride": st.stride, "layout": "levir", "fmt": "png",
                     **(copy_paste.recorded() if method == "copy-paste" else {})},
        "classes": [{"code": c.code, "name": c.name, "color": list(c.color)} for c in sources.scheme.classes],
        "nodata_code": sources.scheme.nodata_code,
        "command": command,
    }
    if check_out(out, spec, overwrite):
        progress.stage(f"{out} already holds this baseline")
        return {"out": str(out.resolve()), "count": count, "kept": True}
    if method == "copy-paste":
        progress.stage("finding the real objects of every map")
        donors = find_donors(sources, copy_paste)
        if not len(donors.size):
            raise InputError("The maps hold no object small enough to paste (4-connected regions of one class between "
                             f"{copy_paste.min_object_pixels} px and 1/16 of the tile). Give maps with more objects.")
        make = lambda i: copy_paste_sample(sources, donors, i, copy_paste)  # noqa: E731
    else:
        candidates = sources.candidates()
        make = lambda i: random_pair_sample(sources, candidates, i)  # noqa: E731
    writer = BaselineWriter(out, spec, sources.scheme)
    try:
        progress.start(count)
        progress.stage(f"{METHODS[method][0]}: 0/{count} samples")
        for i in range(count):
            sample = make(i)
            k, rows, cols = sources.window(i)
            src = sources.rasters[k]
            georef = (window_transform(Window(cols.start, rows.start, tile, tile), src.transform), src.crs)
            writer.write(sources.name(i), t1=sample.t1, t2=sample.t2, pre=sample.pre, post=sample.post, mask=sample.mask,
                         georef=georef, record=sample.record)
            progress.message = f"{METHODS[method][0]}: {i + 1}/{count} samples"
            progress.advance()
        return {**writer.finish(card), "kept": False}
    except BaseException:
        writer.abandon()
        raise


def card(spec: dict, summary: dict) -> str:
    title, after, how = METHODS[spec["method"]]
    st = spec["settings"]
    lines = [f"# {title} baseline: {summary['count']} change samples, no model", "",
             f"A baseline of the usefulness test (`python -m model_export.evaluate --baseline`), after {after}: change pairs a "
             "user can make without any diffusion model, from the same real maps and images as the generated datasets. "
             f"Sample *i* starts from the window the dataset command's sample *i* has for the same maps, count ({st['count']}), "
             f"tile ({st['tile']} px), seed ({st['seed']}) and remap ({st['remap'] or 'none'}). {how}", "",
             f"Mean changed share: {summary['changed_fraction_mean']:.1%} of the valid pixels. Splits: "
             + ", ".join(f"{s} {n}" for s, n in summary["splits"].items()) + " (drawn as the dataset command draws them).", "",
             "## Sources", ""]
    lines += [f"- `{s}` with image `{i}`" for s, i in zip(spec["semantic"], spec["images"])]
    lines += ["", "Made by:", "", f"    {spec['command'] or '(the Python API)'}", "",
              "## Layout", "",
              "LEVIR-CD, flat, as `python -m changeanywhere_qgis dataset --layout levir --format png` writes it: `A/` pre-event "
              "image, `B/` post-event image, `label/` change mask (0 unchanged, 255 changed), 8-bit PNGs; `list/train.txt`, "
              "`list/val.txt`, `list/test.txt`. `manifest.jsonl`: one line per sample (window, seed, how B was made, changed "
              "fraction, split, files); `baseline.json`: the method and settings.", ""]
    if np.isscalar(st.get("jitter")):
        lines += [f"Global jitter strength {st['jitter']:g} (each sample's gains and offsets are in the manifest).", ""]
    return "\n".join(lines)

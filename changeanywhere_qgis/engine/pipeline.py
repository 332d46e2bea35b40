"""The two jobs the tool does: ``generate`` a change sample, ``simulate`` change events only.

Each checks every input before it writes anything, writes into a temporary folder, and moves
the folder into place at the end. The QGIS algorithms and the command line both call these.
"""

from __future__ import annotations

import json
import secrets
import time
import warnings
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import rasterio
from rasterio.windows import Window

from . import __version__ as engine_version
from .diffusion import (DEFAULT_ETA, DEFAULT_MIXING, DEFAULT_PRECISION, DEFAULT_PRE_EVENT, DEFAULT_SAMPLER, DEFAULT_STEPS, WINDOWED_GENERATE_BYTES_PER_PIXEL, WINDOWED_SIMULATE_BYTES_PER_PIXEL, ModelPackage, Plan,
                        check_guidance, check_memory, check_mixing, check_precision, check_pre_event, check_sampler, decode, default_model_dir, duration, network_bytes,
                        estimate_seconds, load_model_package, plan, post_event_latent, pre_event_kind, pre_event_latent,
                        read_manifest, to_uint8, DEFAULT_STYLE_STRENGTH, apply_style, check_style_strength, load_style)
from .diffusion import LatentCanvases, LaterDate, later_latents, resolve_tile_px, series_work_units
from .diffusion import (DEFAULT_INPAINT_MARGIN_PX, DEFAULT_RERENDER_STRENGTH, check_post_event, decode_inpainted,
                        inpaint_decoder, inpaint_region, pair_work_units, resolve_post_event)
from .errors import InputError
from .events import (ChangeResult, change_mask, change_polygons, change_polygons_by_window, events_from_polygons, load_table, random_events,
                     write_change_polygons)
from .events import check_dates, date_rngs, polygons_by_date
from .io import (SAMPLE_FOLDER, SCRATCH_BYTES_PER_PIXEL, ImageSource, OutputFolder, SemanticRaster, is_scratch, open_rgb, read_semantic, read_style_image,
                 row_bands, write_classes, write_mask)
from .landcover import ClassScheme, load_remap
from .progress import Progress

OUTPUTS = ("t1_image.tif", "t2_image.tif", "t1_semantic.tif", "t2_semantic.tif", "change_mask.tif", "sample.json")
SIMULATE_OUTPUTS = ("t1_semantic.tif", "t2_semantic.tif", "change_mask.tif", "changes.gpkg", "events.json")
CORRELATION_RANGE = (0.7, 1.0)  # s ~ U(0.7, 1.0) per sample, as in the authors' generator


@dataclass
class ChangeSpec:
    """Where the change events come from: drawn polygons, or random object-level events."""

    vector: str | None = None
    class_field: str | None = None
    layer: str | None = None
    random: bool = False
    only_from: list | None = None  # only pixels of these classes (codes or names) change
    transitions: str | dict | None = None  # transition table for random events (JSON file or dict)
    date_field: str | None = None  # with polygons and a series of dates: the field of each polygon's date (2..N)

    @property
    def has_vector(self) -> bool:
        """Polygons were given: a path (not blank) or an in-memory layer (whose truth value is ambiguous)."""
        return self.vector is not None and not (isinstance(self.vector, str) and not self.vector.strip())

    def check(self) -> None:
        if self.has_vector == bool(self.random):
            raise InputError("Give exactly one source of change events: change polygons (with their class field) or random events.")
        if self.has_vector and not self.class_field:
            raise InputError("Change polygons need the name of the field that holds each polygon's target class (--class-field).")
        if self.date_field and not self.has_vector:
            raise InputError("A date field is for change polygons (each polygon's date); random events draw their own at "
                             "every date. Leave the date field out, or give change polygons.")


@dataclass
class GenerateSettings:
    steps: int = DEFAULT_STEPS
    eta: float = DEFAULT_ETA
    guidance: float | None = None  # classifier-free guidance scale; None: the model's own
    seed: int | None = None  # None: a fresh seed, recorded in sample.json
    correlation: float | None = None  # s; None: drawn per sample from CORRELATION_RANGE
    device: str = "auto"
    # the denoiser the model package runs: "float32" (its own graph) or "int8" (its optional quantised one; CPU only)
    precision: str = DEFAULT_PRECISION
    threads: int | None = None
    batch_size: int = 4
    tile_overlap_px: int | None = None  # None: a quarter of the model's tile
    sampler: str = DEFAULT_SAMPLER  # "ddim" or "dpmpp-2m"
    mixing: str = DEFAULT_MIXING  # how latent mixing holds the unchanged land: "latent" (the paper's) or "prediction"
    tile_size: int | None = None  # the sampler's tile, pixels (a multiple of the model's granule, not below its tile); None: DEFAULT_TILE_PX
    pre_event: str = DEFAULT_PRE_EVENT  # with an image: "real" (as given) or "redrawn" (the autoencoder's copy)
    max_memory: int | None = None  # bytes the run may use; None: what the machine has free
    dates: int = 2  # dates of the series: 2 is a change pair; each later date changes the one before it
    style: str | None = None  # an RGB raster whose appearance the post-event images take (diffusion/style.py)
    style_strength: float = DEFAULT_STYLE_STRENGTH  # 0: none, 1: the style image's statistics (latent and colour)
    # "full": drawn everywhere; "inpaint": the pre-event image beyond the change (diffusion/inpaint.py); None: the default
    # for the dates (resolve_post_event), resolved when the settings are made, so sample.json records the mode it made
    post_event: str | None = None
    inpaint_margin_px: int = DEFAULT_INPAINT_MARGIN_PX  # inpaint: how far around the change the model draws and fades
    rerender_strength: float = DEFAULT_RERENDER_STRENGTH  # inpaint: the noise level the kept land is re-rendered at; 0: pixel-exact
    extra: dict = field(default_factory=dict)

    def __post_init__(self):
        self.post_event = resolve_post_event(self.post_event, self.dates)

    def check(self) -> None:
        if not 1 <= self.steps <= 1000:
            raise InputError(f"steps must be between 1 and 1000, got {self.steps}.")
        if self.correlation is not None and not 0.0 <= self.correlation <= 1.0:
            raise InputError(f"The content correlation s must be between 0 and 1, got {self.correlation}.")
        if not 0.0 <= self.eta <= 1.0:
            raise InputError(f"eta must be between 0 and 1, got {self.eta}.")
        check_guidance(self.guidance)
        check_pre_event(self.pre_event)
        check_sampler(self.sampler, self.eta)
        check_mixing(self.mixing)
        check_precision(self.precision, self.device)  # int8 on CUDA is refused before anything is written
        check_seed(self.seed)
        check_dates(self.dates)
        check_style_strength(self.style_strength)
        check_post_event(self.post_event, self.inpaint_margin_px, self.rerender_strength)
        if self.post_event == "inpaint" and self.dates > 2:
            raise InputError(f"Inpainting (--post-event inpaint) makes change pairs; a series of {self.dates} dates is drawn "
                             "in full for now. Leave --post-event out (or give full), or give 2 dates.")
        if isinstance(self.batch_size, bool) or not isinstance(self.batch_size, (int, np.integer)) or self.batch_size < 1:
            raise InputError(f"The batch size (tiles per network call) must be a whole number of at least 1, got {self.batch_size!r}.")
        if self.threads is not None and self.threads < 0:
            raise InputError(f"threads must be 0 or more (0 or empty: all cores), got {self.threads}.")


def check_seed(seed) -> None:
    """A seed the user gave (None: a fresh one): numpy's generators take whole numbers >= 0."""
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0):
        raise InputError(f"The seed must be a whole number >= 0 (or empty for a fresh one), got {seed!r}.")


def _describe(changes: ChangeSpec) -> dict:
    """The change source for sample.json (a layer given in memory is named, not dumped)."""
    vector = changes.vector if isinstance(changes.vector, (str, Path, type(None))) else "in-memory layer"
    described = {**vars(changes), "vector": None if vector is None else str(vector)}
    if described["date_field"] is None:  # a pair's record stays as it was
        del described["date_field"]
    return described


def _rngs(seed: int) -> dict[str, np.random.Generator]:
    # Independent streams, so e.g. changing the step count does not change the simulated events.
    return {name: np.random.default_rng([seed, i]) for i, name in enumerate(("events", "correlation", "sampler"))}


def _apply_changes(sem: SemanticRaster, scheme: ClassScheme, spec: ChangeSpec, rng: np.random.Generator, labels=None) -> ChangeResult:
    """The events applied to ``labels`` (None: the pre-event map; a series' later dates: the date before)."""
    labels = sem.labels if labels is None else labels
    nodata = scheme.nodata_code
    only_from = [scheme.resolve(c) for c in spec.only_from] if spec.only_from else None
    if spec.has_vector:
        # a large map's polygons are burnt band by band into a scratch post-event map
        return events_from_polygons(
            labels, sem.grid.transform, sem.grid.crs, scheme, spec.vector, spec.class_field,
            nodata=nodata, only_from=only_from, layer=spec.layer, scratch=sem.scratch if is_scratch(labels) else None,
        )
    table = load_table(spec.transitions, scheme) if spec.transitions else None
    return random_events(labels, scheme, rng, nodata=nodata, table=table, scratch=sem.scratch)


def _mask(sem: SemanticRaster, post, scheme: ClassScheme, pre=None):
    """The change mask from ``pre`` (None: the pre-event map) to ``post`` (255 where the map has no data) and the
    changed fraction of the valid land."""
    pre = sem.labels if pre is None else pre
    if not (is_scratch(pre) or is_scratch(post)):
        mask = change_mask(pre, post, nodata=scheme.nodata_code)
        mask[~sem.valid] = 255
        return mask, _changed_fraction(mask)
    mask = sem.scratch.empty(np.uint8, "change_mask")
    changed = valid = 0
    for b in row_bands(sem.grid.height, sem.grid.width):
        band = change_mask(pre[b, :], post[b, :], nodata=scheme.nodata_code)
        band[~sem.valid[b, :]] = 255
        mask[b, :] = band
        changed, valid = changed + int(np.count_nonzero(band == 1)), valid + int(np.count_nonzero(band != 255))
    return mask, float(changed / valid) if valid else 0.0


def _scheme_for(model) -> ClassScheme:
    if isinstance(model, ModelPackage):
        return model.scheme
    return ClassScheme.from_manifest(read_manifest(model or default_model_dir(), verify_hashes=False))


def _input_files(semantic, changes: ChangeSpec, model, remap, *more) -> tuple:
    """Every input a run reads from disk: --overwrite must not replace a folder that holds one (io/replace_guard.py)."""
    model_dir = getattr(model, "path", model)  # a loaded ModelPackage knows its folder
    return (semantic, changes.vector, changes.transitions, model_dir, remap, *more)


def _write_maps(out: OutputFolder, sem: SemanticRaster, post: np.ndarray, mask: np.ndarray, scheme: ClassScheme) -> None:
    write_classes(out.path("t1_semantic.tif"), sem.labels, sem.valid, sem.grid, scheme)
    write_classes(out.path("t2_semantic.tif"), post, sem.valid, sem.grid, scheme)
    write_mask(out.path("change_mask.tif"), mask, sem.grid)


def simulate(
    semantic: str | Path, out_dir: str | Path, changes: ChangeSpec, *, model=None, remap=None, band: int = 1,
    seed: int | None = None, overwrite: bool = False, progress: Progress | None = None, max_memory: int | None = None,
    dates: int = 2,
) -> dict:
    """Change events only (no model run): post-event map, change mask, change polygons. ``dates`` > 2: a series'
    maps and change masks (as ``generate`` names them), the change polygons from T1 to TN."""
    changes.check()
    check_seed(seed)
    check_dates(dates)
    _check_series(changes, dates)
    progress = progress or Progress()
    out = OutputFolder(out_dir, overwrite, SAMPLE_FOLDER, _input_files(semantic, changes, model, remap))
    scheme = _scheme_for(model)
    seed = secrets.randbelow(2**31) if seed is None else int(seed)
    # Entered before the map is read: a large map's whole-raster arrays live in its scratch folder (removed with it).
    with out:
        sem = read_semantic(semantic, scheme, band, load_remap(remap), scratch_folder=out.scratch_folder)
        windowed = is_scratch(sem.labels)
        check_memory(sem.grid.height, sem.grid.width, "Simulating change events", max_memory,
                     bytes_per_pixel=WINDOWED_SIMULATE_BYTES_PER_PIXEL if windowed else None)
        out.require_space((2 + 2 * (dates - 2) + (SCRATCH_BYTES_PER_PIXEL if windowed else 0)) * sem.grid.width * sem.grid.height,
                          "the maps and change polygons" + (" (and the large map's working copies)" if windowed else ""))
        progress.start(3)
        progress.stage("simulating change events")
        by_date = _polygons_by_date(changes, dates)
        result = _date_change(sem, scheme, changes, sem.labels, _rngs(seed)["events"], by_date, 2, dates)
        mask, fraction = _mask(sem, result.post, scheme)
        _refuse_without_change(sem, scheme, fraction)
        later = _later_dates(sem, scheme, changes, dates, None, seed, by_date, result.post)
        progress.advance()
        record = {
            "semantic": str(semantic), "seed": seed, "remap": remap if isinstance(remap, (str, type(None))) else "custom",
            "events": [e.to_dict() for e in result.events], "changed_fraction": fraction,
        }
        progress.stage("writing maps and change polygons")
        if later:  # a series: every date's map and change; the change polygons are T1 to TN's
            series = _write_series_maps(out, sem, scheme, result, mask, fraction, None, True, later)
            record.update(series)
            for entry in record["series"]:
                del entry["correlation_s"], entry["correlation_drawn"]  # no image: no s
            result = replace(result, post=later[-1].result.post)
        else:
            _write_maps(out, sem, result.post, mask, scheme)
        if is_scratch(sem.labels) or is_scratch(result.post):
            write_change_polygons(out.path("changes.gpkg"), None, sem.grid.crs, scheme,
                                  chunks=change_polygons_by_window(sem.labels, result.post, sem.grid.transform, nodata=scheme.nodata_code))
        else:
            polygons = change_polygons(sem.labels, result.post, sem.grid.transform, nodata=scheme.nodata_code)
            write_change_polygons(out.path("changes.gpkg"), polygons, sem.grid.crs, scheme)
        out.path("events.json").write_text(json.dumps(record, indent=2))
        progress.advance()
    progress.advance()
    return {**record, "outputs": {name: str(Path(out_dir) / name) for name in simulate_outputs(dates)}}


def _refuse_without_change(sem: SemanticRaster, scheme: ClassScheme, fraction: float) -> None:
    """Refuse, before any network runs, a map whose events changed no pixel: one without land (every pixel nodata),
    or with too little, or with only classes the transition table leaves alone (random events only: polygons that
    change nothing are refused where they are burnt)."""
    if fraction > 0:
        return
    valid = sum(int(np.count_nonzero(sem.valid[b, :])) for b in row_bands(sem.grid.height, sem.grid.width))
    if valid == 0:
        raise InputError(f"Semantic raster {sem.path} holds no land: every pixel is nodata (its nodata value, or the model's "
                         f"unknown code {scheme.nodata_code}); nothing was run. Give a map with labelled land, or check "
                         "--band and --remap.")
    share = 100 * valid / (sem.grid.height * sem.grid.width)
    raise InputError(f"The random change events changed no pixel of {sem.path}: it has {valid} pixels of labelled land "
                     f"({share:.2g} % of the map), too little land for them, or only classes the transition table does not "
                     "change; nothing was run. Give a map with more labelled land, or draw change polygons.")


def _changed_fraction(mask: np.ndarray) -> float:
    valid = mask != 255
    return float((mask[valid] == 1).mean()) if valid.any() else 0.0


def _write_decoded(model, latent, p: Plan, progress, path, sem: SemanticRaster, colour=None, region=None, read_pre=None) -> None:
    """``region``: an inpainted latent, blended with the pre-event image's ``read_pre(row, n)`` (diffusion/inpaint.py)."""
    # A per-dataset mask only where some land is nodata: QGIS lists such a mask as a fourth band of the image.
    masked = not sem.all_valid()
    with open_rgb(path, sem.grid) as dst:
        def write_rows(row: int, rgb: np.ndarray) -> None:
            rows = min(rgb.shape[1], sem.grid.height - row)
            if rows <= 0:
                return
            window = Window(0, row, sem.grid.width, rows)
            rgb = rgb[:, :rows, : sem.grid.width]
            dst.write(to_uint8(colour(rgb) if colour else rgb), window=window)  # colour: the style's colour match
            if masked:
                dst.write_mask(sem.valid[row : row + rows].astype(np.uint8) * 255, window=window)

        if region is not None:
            decode_inpainted(model, p, latent, region, read_pre, write_rows, progress)
        else:
            decode(model, latent, p.coder_grid, p.coder_settings, write_rows, progress)


@contextmanager
def _rows_of(path: Path, sem: SemanticRaster):
    """``read(row, n)``: uint8 [3, n, width] rows of an RGB GeoTIFF the run wrote (the pre-event image, for the blend)."""
    with rasterio.open(path) as src:
        yield lambda row, n: src.read((1, 2, 3), window=Window(0, row, sem.grid.width, n))


def _style_progress(progress: Progress) -> Progress:
    """The style image's encoding: a stage of its own (a few tiles, before the counted work), cancellable."""
    progress.stage("encoding the style image")
    return Progress(is_cancelled=progress.cancelled)


def _valid_rows(sem: SemanticRaster):
    """``valid(row, n)``: the map's valid pixels in rows row..row+n (None when all are), read by band from a large map."""
    return None if sem.all_valid() else (lambda row, n: sem.valid[row : row + n, :])


def _copy_image(image: ImageSource, path: Path, sem: SemanticRaster, rows_per_block: int = 256) -> None:
    with open_rgb(path, sem.grid) as dst:
        for row in range(0, sem.grid.height, rows_per_block):
            rows = min(rows_per_block, sem.grid.height - row)
            window = Window(0, row, sem.grid.width, rows)
            dst.write(image.read_uint8(row, 0, rows, sem.grid.width), window=window)
            if image.alpha_band is not None:  # the transparent pixels stay transparent
                dst.write_mask(sem.valid[row : row + rows].astype(np.uint8) * 255, window=window)


def generate(
    semantic: str | Path, out_dir: str | Path, changes: ChangeSpec, *, image: str | Path | None = None,
    model: str | Path | ModelPackage | None = None, remap=None, band: int = 1, overwrite: bool = False,
    settings: GenerateSettings | None = None, progress: Progress | None = None,
) -> dict:
    """Make one change sample: pre/post images, pre/post maps, change mask and sample.json."""
    settings = settings or GenerateSettings()
    settings.check()
    changes.check()
    _check_series(changes, settings.dates)
    progress = progress or Progress()
    timings: dict[str, float] = {}
    clock = time.perf_counter()

    out = OutputFolder(out_dir, overwrite, SAMPLE_FOLDER, _input_files(semantic, changes, model, remap, image, settings.style))
    style_image = read_style_image(settings.style) if settings.style else None  # checked before anything is written
    pkg = model if isinstance(model, ModelPackage) else load_model_package(model, settings.device, settings.threads,
                                                                                 settings.precision)
    pkg = pkg.with_guidance(settings.guidance)
    scheme = pkg.scheme
    tile_px = resolve_tile_px(pkg.tile_size, max(pkg.multiple_of, pkg.downsample), settings.tile_size)  # None: the model's
    # Entered before the map is read: a large map's whole-raster arrays live in its scratch folder (removed with it).
    with out:
        sem = read_semantic(semantic, scheme, band, load_remap(remap), scratch_folder=out.scratch_folder)
        windowed = is_scratch(sem.labels)  # a large map: its arrays and the latent canvases are files read by window
        memory = check_memory(sem.grid.height, sem.grid.width, "Generating a change sample", settings.max_memory,
                              bytes_per_pixel=WINDOWED_GENERATE_BYTES_PER_PIXEL if windowed else None,
                              networks=network_bytes(pkg.tile_size, settings.batch_size, bool(image or settings.style), tile_px))
        p = plan(pkg, sem.grid.height, sem.grid.width, settings.steps, settings.eta, settings.tile_overlap_px, settings.batch_size,
                 settings.sampler, tile_px, canvas_folder=out.scratch_folder / "latent" if windowed else None,
                 mixing=settings.mixing)
        # two RGB images at their uncompressed size (imagery hardly compresses) and the maps,
        # and a large map's working copies: its arrays and the latent canvases
        scratch = SCRATCH_BYTES_PER_PIXEL * sem.grid.width * sem.grid.height + p.canvases.disk_bytes() if windowed else 0
        out.require_space(7 * sem.grid.width * sem.grid.height + scratch + _series_bytes(sem, p, settings.dates),
                          "the two images and the maps" if settings.dates == 2 else f"the {settings.dates} dates' images and maps")
        source = ImageSource(image, sem.grid) if image else None
        try:
            transparent = source.mask_transparent(sem, scheme.nodata_code) if source else 0
            if transparent:
                warnings.warn(f"Image {image} has an alpha band: its {transparent} fully transparent pixels (alpha 0) are "
                              "treated as nodata (no change there, nodata in the outputs).", stacklevel=2)
            seed = secrets.randbelow(2**31) if settings.seed is None else int(settings.seed)
            rngs = _rngs(seed)
            by_date = _polygons_by_date(changes, settings.dates)
            result = _date_change(sem, scheme, changes, sem.labels, rngs["events"], by_date, 2, settings.dates)
            mask, fraction = _mask(sem, result.post, scheme)
            _refuse_without_change(sem, scheme, fraction)
            s = settings.correlation if settings.correlation is not None else float(rngs["correlation"].uniform(*CORRELATION_RANGE))
            later = _later_dates(sem, scheme, changes, settings.dates, settings.correlation, seed, by_date, result.post)
            timings["prepare_s"] = time.perf_counter() - clock

            pre_event = pre_event_kind(settings.pre_event, source is not None)
            region = (inpaint_region(pkg, p, mask, settings.inpaint_margin_px, settings.rerender_strength)
                      if settings.post_event == "inpaint" else None)
            # a style's colour match decodes each styled image once more to measure it (its image's encoding: a few tiles)
            style_decodes = 1 if style_image is not None and settings.style_strength > 0 else 0
            decodes = (1 if pre_event == "real" else 2) + style_decodes
            seconds = estimate_seconds(pkg, p.tiles, settings.steps, settings.batch_size, source is not None, tile_px,
                                       decodes=decodes)
            units = (pair_work_units(p, settings.steps, source is not None, pre_event != "real", region)
                     + style_decodes * (p.coder_tiles if region is None else region.decoded_tiles(p)))
            if seconds is not None and region is not None:  # inpainting: the cost follows the network calls it makes
                seconds *= units / (p.work_units(settings.steps, source is not None, redraw=pre_event != "real")
                                    + style_decodes * p.coder_tiles)
            later_units = series_work_units(p, settings.steps, len(later)) + len(later) * style_decodes * p.coder_tiles
            if seconds is not None:
                dates = ""
                if later:  # a series: each later date costs a sampling run and a decode more, as network calls count
                    seconds *= 1 + later_units / units
                    dates = f" x {settings.dates} dates"
                tiles = f"{p.tiles} tiles" if region is None else f"{len(region.tiles)} of {p.tiles} tiles (inpainting)"
                progress.info(f"estimate: {tiles} x {settings.steps} steps{dates} on the {pkg.device}: about {duration(seconds)}; "
                              f"{memory.describe()}")
            progress.start(units + later_units)

            clock = time.perf_counter()
            style = load_style(pkg, style_image, settings.style_strength, batch_size=settings.batch_size,
                               progress=_style_progress(progress)) if style_image else None
            # inpainting with the real image: it is encoded only around the change, where the model reads it
            encoded = region.coder_tiles if region is not None and pre_event == "real" else None
            pre_latent = pre_event_latent(pkg, p, sem.labels, rngs["sampler"], progress, source.read_mirrored if source else None,
                                          encoded)
            if pre_event == "real":
                _copy_image(source, out.path("t1_image.tif"), sem)
            else:
                _write_decoded(pkg, pre_latent, p, progress, out.path("t1_image.tif"), sem)
            timings["pre_event_s"] = time.perf_counter() - clock

            clock = time.perf_counter()
            post_latent = post_event_latent(pkg, p, result.post, pre_latent, mask, s, rngs["sampler"], progress, region=region)
            with _rows_of(out.path("t1_image.tif"), sem) as read_pre:  # inpainting blends with the pre-event image as written
                # a style restyles each later date's image; the next date is mixed from the unstyled latent
                styled = apply_style(pkg, p, post_latent, style, progress, _valid_rows(sem),
                                     inpaint_decoder(pkg, p, region, read_pre, progress)) if style else None
                _write_decoded(pkg, styled.latent if styled else post_latent, p, progress, out.path("t2_image.tif"), sem,
                               styled.colour if styled else None, region, read_pre)
            if later:
                def write_date(i: int, z) -> None:
                    restyled = apply_style(pkg, p, z, style, progress, _valid_rows(sem)) if style else None
                    _write_decoded(pkg, restyled.latent if restyled else z, p, progress, out.path(f"t{i + 3}_image.tif"), sem,
                                   restyled.colour if restyled else None)
                    if restyled:
                        later_styles.append(restyled.record)
                        if restyled.latent is not z:  # a large map's styled canvas: its files go before the next date's
                            LatentCanvases.discard(restyled.latent)

                later_styles: list = []
                later_latents(pkg, p, post_latent, [d.latent for d in later], progress, write_date)
            timings["post_event_s"] = time.perf_counter() - clock

            if later:
                series = _write_series_maps(out, sem, scheme, result, mask, fraction, s, settings.correlation is None, later)
            else:
                _write_maps(out, sem, result.post, mask, scheme)
            record = {
                "engine_version": engine_version,
                "model": {"name": pkg.name, "path": str(pkg.path), "format": pkg.manifest["format"]},
                "inputs": {"semantic": str(semantic), "image": str(image) if image else None, "band": band,
                           "remap": remap if isinstance(remap, (str, type(None))) else "custom",
                           "changes": _describe(changes)},
                "grid": {"width": sem.grid.width, "height": sem.grid.height, "crs": sem.grid.crs.to_string() if sem.grid.crs else None,
                         "transform": list(sem.grid.transform)[:6]},
                "seed": seed, "steps": settings.steps, "eta": settings.eta, "correlation_s": s,
                "correlation_drawn": settings.correlation is None, "guidance_scale": pkg.guidance_scale, "pre_event": pre_event,
                "post_event": settings.post_event, **({"inpaint": region.record(p, settings.steps)} if region else {}),
                "sampler": settings.sampler, "mixing": settings.mixing, "tiles": p.tiles, "tile_size_px": p.grid.tile * pkg.downsample,
                "autoencoder_tile_px": p.coder_grid.tile * pkg.downsample, "tile_overlap_px": p.sampler.tile_overlap_px,
                "events": [e.to_dict() for e in result.events], "changed_fraction": fraction,
                "device": pkg.device, "device_note": pkg.device_note, "precision": pkg.precision, "timings": timings,
                **({"style": styled.record} if styled else {}),  # absent without --style: the same sample.json as before
            }
            if later:  # a series: every date's events, change and s; the whole series' change from T1 to TN
                record.update(series)
                for entry, style_record in zip(record["series"][1:], later_styles):  # date 2's is record["style"]
                    entry["style"] = style_record
            out.path("sample.json").write_text(json.dumps(record, indent=2))
        finally:
            if source:
                source.close()
    return {**record, "outputs": {name: str(Path(out_dir) / name) for name in series_outputs(settings.dates)}}


# A series of dates (generate with dates > 2): date 1 is the pre-event map, each later date applies its own events to
# the date before. A change pair (2 dates) takes none of these paths' outputs: its files and bytes are as they were.


def series_outputs(dates: int) -> tuple[str, ...]:
    """The files of a sample of ``dates`` dates: a pair's OUTPUTS, or each date's image and map, the change of each
    consecutive pair of dates (change_t1_t2.tif, change_t2_t3.tif, ...), the change from T1 to TN, sample.json."""
    if dates == 2:
        return OUTPUTS
    images = tuple(f"t{k}_image.tif" for k in range(1, dates + 1))
    maps = tuple(f"t{k}_semantic.tif" for k in range(1, dates + 1))
    changes = tuple(f"change_t{k - 1}_t{k}.tif" for k in range(2, dates + 1)) + (f"change_t1_t{dates}.tif",)
    return images + maps + changes + ("sample.json",)


def simulate_outputs(dates: int) -> tuple[str, ...]:
    """simulate's files: a pair's SIMULATE_OUTPUTS, or a series' maps and change masks, its change polygons (T1 to TN)
    and events.json."""
    if dates == 2:
        return SIMULATE_OUTPUTS
    return tuple(n for n in series_outputs(dates) if n.endswith("_semantic.tif") or n.startswith("change_")) + SIMULATE_OUTPUTS[3:]


def _check_series(changes: ChangeSpec, dates: int) -> None:
    if dates > 2 and changes.has_vector and not changes.date_field:
        raise InputError(f"A series of {dates} dates with change polygons needs their date field (--date-field): the date, "
                         f"2 to {dates}, at which each polygon's change appears. Add such a field to the polygons, or give 2 dates.")


def _polygons_by_date(changes: ChangeSpec, dates: int):
    """{date: that date's polygons} when the polygons have a date field (every feature's date checked), else None."""
    return polygons_by_date(changes.vector, changes.date_field, dates, changes.layer) if changes.date_field else None


def _date_change(sem: SemanticRaster, scheme: ClassScheme, changes: ChangeSpec, labels, rng, by_date, date: int,
                 dates: int) -> ChangeResult:
    """Date ``date``'s events applied to ``labels``, the map of the date before."""
    if by_date is None or dates == 2:  # a pair: all polygons are date 2's, read as they always were
        return _apply_changes(sem, scheme, changes, rng, labels)
    polygons = by_date[date]
    if polygons is None:  # no polygon has this date: the land stays as it was at the date before
        return ChangeResult(sem.scratch.copy(labels, f"t{date}"), [])
    try:
        return _apply_changes(sem, scheme, replace(changes, vector=polygons), rng, labels)
    except InputError as exc:
        raise InputError(f"Date {date} (the polygons whose {changes.date_field!r} is {date}): {exc}") from None


@dataclass
class _Date:
    """One date after date 2: its events, its change since the date before, and what its image is sampled from."""

    date: int
    result: ChangeResult
    fraction: float
    latent: LaterDate
    drawn: bool


def _later_dates(sem: SemanticRaster, scheme: ClassScheme, changes: ChangeSpec, dates: int, correlation: float | None, seed: int,
                 by_date, labels) -> list[_Date]:
    """Dates 3..N, each with its own random streams; ``labels`` is date 2's map; ``correlation`` None: s drawn per date."""
    later = []
    for date in range(3, dates + 1):
        streams = date_rngs(seed, date, ("events", "correlation", "sampler"))
        result = _date_change(sem, scheme, changes, labels, streams["events"], by_date, date, dates)
        mask, fraction = _mask(sem, result.post, scheme, pre=labels)
        drawn = correlation is None
        s = float(streams["correlation"].uniform(*CORRELATION_RANGE)) if drawn else correlation
        later.append(_Date(date, result, fraction, LaterDate(result.post, mask, s, streams["sampler"]), drawn))
        labels = result.post
    return later


def _series_bytes(sem: SemanticRaster, p: Plan, dates: int) -> int:
    """Disk a series needs beyond a pair's: an image, a map and two masks per later date; a large map's working copies
    of its map and change mask, and its plane of unchanged latent cells."""
    pixels = sem.grid.width * sem.grid.height
    per_date = 5 * pixels + ((2 * pixels + 4 * p.grid.height * p.grid.width) if is_scratch(sem.labels) else 0)
    return (dates - 2) * per_date


def _write_series_maps(out: OutputFolder, sem: SemanticRaster, scheme: ClassScheme, second: ChangeResult, mask, fraction: float,
                       s: float, drawn: bool, later: list[_Date]) -> dict:
    """Every date's map, each consecutive pair's change mask and T1 to TN's; sample.json's series entries."""
    dates = [(2, second, mask, fraction, s, drawn)] + [(d.date, d.result, d.latent.mask, d.fraction, d.latent.correlation, d.drawn)
                                                     for d in later]
    write_classes(out.path("t1_semantic.tif"), sem.labels, sem.valid, sem.grid, scheme)
    for date, result, date_mask, _, _, _ in dates:
        write_classes(out.path(f"t{date}_semantic.tif"), result.post, sem.valid, sem.grid, scheme)
        write_mask(out.path(f"change_t{date - 1}_t{date}.tif"), date_mask, sem.grid)
    last = len(dates) + 1
    overall, overall_fraction = _mask(sem, dates[-1][1].post, scheme)
    write_mask(out.path(f"change_t1_t{last}.tif"), overall, sem.grid)
    return {
        "dates": last,
        "events": [{**e.to_dict(), "date": date} for date, result, *_ in dates for e in result.events],
        "changed_fraction": overall_fraction,  # from T1 to TN
        "series": [{"date": date, "events": [e.to_dict() for e in result.events], "changed_fraction": f,
                    "correlation_s": cs, "correlation_drawn": dr, "change_mask": f"change_t{date - 1}_t{date}.tif"}
                   for date, result, _, f, cs, dr in dates],
    }

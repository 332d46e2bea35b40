"""One change pair from two maps: the pre-event latent (encoded or generated), then the post-event
latent under latent mixing. Shared by ``pipeline.generate`` (rasters of any size, written window by
window) and the dataset's samples (tiles held in memory).
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from ..errors import InputError
from ..progress import Progress
from .canvas import LatentCanvases
from .inpaint import (DEFAULT_INPAINT_MARGIN_PX, DEFAULT_RERENDER_STRENGTH, InpaintRegion, check_post_event, decode_inpainted, inpaint_region,
                      resolve_post_event)
from .model_package import ModelPackage
from .pixels import to_model_range, to_uint8
from .raster_plan import Plan, image_reader, plan
from .sampler import DEFAULT_MIXING, KnownContent, decode, encode, sample
from .tiling import Tile
from .schedule import DEFAULT_ETA, DEFAULT_SAMPLER, DEFAULT_STEPS
from .style import Style, apply_style


# How the pre-event image of a pair with a real image is made: "real" is the user's image itself;
# "redrawn" is the autoencoder's copy of it (encoded, then decoded), so both dates come out of the same
# decoder and a change detector cannot tell them apart by the decoder's look alone.
# The default is the one the usefulness checks of docs/research/usefulness-checks.md favour. Check U1 (model 0.1.0) chose
# "redrawn" (zero-shot F1 0.285 against 0.257 on LEVIR-CD and WHU-CD); check U5 (model 0.3.0, whose copies are sharper)
# applied U3's rule and chose "real": 0.311 against 0.276. The choices keep their order, so that a Processing script's
# enum index means what it meant.
PRE_EVENT_CHOICES = ("redrawn", "real")
DEFAULT_PRE_EVENT = "real"


def check_pre_event(value: str) -> None:
    if value not in PRE_EVENT_CHOICES:
        raise InputError(f"Unknown pre-event image {value!r}. Choose 'real' (the image as given) or 'redrawn' "
                         "(the model's autoencoder's copy of it, the same look as the post-event image).")


def pre_event_kind(pre_event: str, with_image: bool) -> str:
    """What the pre-event image of a pair is: 'real', 'redrawn' or, without an image, 'generated' (from the map)."""
    return pre_event if with_image else "generated"


def latent_unchanged(mask: np.ndarray, f: int, shape: tuple[int, int], canvases: LatentCanvases | None = None) -> np.ndarray:
    """1 where a latent cell's whole f x f block is unchanged (a cell touching any change is free to change).

    With ``canvases`` on disk the plane is a file, filled a band of latent rows at a time."""
    h, w = shape
    if isinstance(mask, np.ndarray) and (canvases is None or not canvases.on_disk):
        padded = np.zeros((h * f, w * f), dtype=bool)
        padded[: mask.shape[0], : mask.shape[1]] = mask == 1
        changed = padded.reshape(h, f, w, f).any(axis=(1, 3))
        return (~changed).astype(np.float32)
    out = canvases.plane("unchanged") if canvases is not None else np.empty((h, w), dtype=np.float32)
    rows = max(1, (1 << 22) // max(w * f * f, 1))
    for top in range(0, h, rows):
        n = min(rows, h - top)
        padded = np.zeros((n * f, w * f), dtype=bool)
        band = mask[top * f : min((top + n) * f, mask.shape[0]), : mask.shape[1]]
        padded[: band.shape[0], : band.shape[1]] = band == 1
        out[top : top + n, :] = ~padded.reshape(n, f, w, f).any(axis=(1, 3))
    return out


def pre_event_latent(pkg: ModelPackage, p: Plan, pre_labels: np.ndarray | None, rng: np.random.Generator | None, progress: Progress,
                     read_image: Callable[[int, int, int, int], np.ndarray] | None = None,
                     tiles: tuple[Tile, ...] | None = None) -> np.ndarray:
    """The user's image encoded, or, without one, an image generated from the pre-event map.

    ``read_image(row, col, height, width)`` gives uint8 [3, height, width] pixels of the padded canvas. ``tiles``: only
    these of the autoencoder's tiles are encoded (an inpainting run that keeps the real image reads no other).
    """
    if read_image is not None:
        progress.stage("encoding the pre-event image")
        return encode(pkg, lambda *window: to_model_range(read_image(*window)), p.coder_grid, p.coder_settings, progress,
                      p.canvases, tiles)
    progress.stage("generating the pre-event image from the pre-event map")
    return sample(pkg, p.pad(pre_labels, pkg.scheme.nodata_code), p.grid, p.sampler, rng, progress, canvases=p.canvases)


def post_event_latent(pkg: ModelPackage, p: Plan, post_labels: np.ndarray, pre_latent: np.ndarray, mask: np.ndarray,
                      correlation: float, rng: np.random.Generator, progress: Progress,
                      stage: str = "generating the post-event image", region: InpaintRegion | None = None) -> np.ndarray:
    """The post-event latent: sampled under the post-event map, unchanged land mixed in from the pre-event latent
    (for the first s of the steps), or with ``region`` inpainted: only the land it draws (inpaint.py)."""
    progress.stage(stage)
    if region is not None:
        known = region.known_content(pre_latent)
        return sample(pkg, p.pad(post_labels, pkg.scheme.nodata_code), p.grid, p.sampler, rng, progress, known, p.canvases)
    unchanged = latent_unchanged(mask, pkg.downsample, (p.grid.height, p.grid.width), p.canvases)
    known = KnownContent(pre_latent, unchanged, correlation)
    return sample(pkg, p.pad(post_labels, pkg.scheme.nodata_code), p.grid, p.sampler, rng, progress, known, p.canvases)


def decode_array(pkg: ModelPackage, p: Plan, latent: np.ndarray, progress: Progress,
                 colour: Callable[[np.ndarray], np.ndarray] | None = None, region: InpaintRegion | None = None,
                 pre: np.ndarray | None = None) -> np.ndarray:
    """Decode a latent canvas into a uint8 [3, H, W] array cropped to the raster (for tile-sized work); ``colour``: a
    style's colour match applied to the decoded pixels; ``region``: an inpainted latent, blended with ``pre``, the
    pre-event image."""
    out = np.zeros((3, p.height, p.width), dtype=np.uint8)

    def keep(row: int, rgb: np.ndarray) -> None:
        rows = min(rgb.shape[1], p.height - row)
        if rows > 0:
            rgb = rgb[:, :rows, : p.width]
            out[:, row : row + rows] = to_uint8(colour(rgb) if colour else rgb)

    if region is not None:
        decode_inpainted(pkg, p, latent, region, lambda row, n: pre[:, row : row + n], keep, progress)
    else:
        decode(pkg, latent, p.coder_grid, p.coder_settings, keep, progress)
    return out


def inpaint_decoder(pkg: ModelPackage, p: Plan, region: InpaintRegion | None, read_pre: Callable[[int, int], np.ndarray],
                    progress: Progress):
    """A style's decode pass (``apply_style``'s ``decode_rows``) for an inpainted latent: blended as it will be written.
    None without inpainting (the plain decode)."""
    if region is None:
        return None
    return lambda latent, write_rows: decode_inpainted(pkg, p, latent, region, read_pre, write_rows, progress)


def autoencoder_copy(pkg: ModelPackage, image: np.ndarray, *, overlap_px: int | None = None, batch_size: int = 4,
                     tile_px: int | None = None, progress: Progress | None = None) -> np.ndarray:
    """The model's autoencoder's copy of a uint8 [3, H, W] image (encoded and decoded tile by tile, ``tile_px`` the
    autoencoder's tile, None: ``AUTOENCODER_TILE_PX``): exactly the pre-event image that ``pre_event="redrawn"``
    gives (the encoder draws no noise)."""
    progress = progress or Progress()
    p = plan(pkg, image.shape[1], image.shape[2], 1, DEFAULT_ETA, overlap_px, batch_size, autoencoder_tile_px=tile_px)
    progress.start(2 * p.coder_tiles)
    latent = pre_event_latent(pkg, p, None, None, progress, image_reader(p, image))
    return decode_array(pkg, p, latent, progress)


def change_pair(pkg: ModelPackage, pre: np.ndarray, post: np.ndarray, mask: np.ndarray, correlation: float,
                rng: np.random.Generator, *, image: np.ndarray | None = None, steps: int = DEFAULT_STEPS, eta: float = DEFAULT_ETA,
                overlap_px: int | None = None, batch_size: int = 4, pre_event: str = DEFAULT_PRE_EVENT,
                sampler: str = DEFAULT_SAMPLER, mixing: str = DEFAULT_MIXING, tile_px: int | None = None, progress: Progress | None = None,
                style: Style | None = None, post_event: str | None = None,
                inpaint_margin_px: int = DEFAULT_INPAINT_MARGIN_PX,
                rerender_strength: float = DEFAULT_RERENDER_STRENGTH) -> tuple[np.ndarray, np.ndarray]:
    """In memory: (t1, t2) uint8 [3, H, W] images for a pre/post map pair; ``image`` is an optional uint8 pre-event image.

    With an image, ``pre_event`` says whether t1 is the image itself ("real") or its autoencoder copy ("redrawn").
    ``style``: t2 takes a style image's appearance (style.py; the statistics over the valid pixels, ``mask`` != 255).
    ``post_event`` "inpaint": t2 is t1 beyond the change grown by ``inpaint_margin_px`` (inpaint.py); None: the pairs' default.
    ``mixing``: how latent mixing holds the unchanged land to t1's latent, "latent" or "prediction" (sampler.py).
    """
    check_pre_event(pre_event)
    post_event = resolve_post_event(post_event)  # read when called: the default may change (usefulness test)
    check_post_event(post_event, inpaint_margin_px, rerender_strength)
    progress = progress or Progress()
    p = plan(pkg, *pre.shape, steps, eta, overlap_px, batch_size, sampler, tile_px, mixing=mixing)
    keep_real = image is not None and pre_event == "real"
    region = inpaint_region(pkg, p, mask, inpaint_margin_px, rerender_strength) if post_event == "inpaint" else None
    style_decodes = 1 if style is not None and style.strength > 0 else 0  # the colour match measures a decode of t2
    progress.start(pair_work_units(p, steps, image is not None, not keep_real, region) + style_decodes * _decoded(p, region))
    encoded = region.coder_tiles if region is not None and keep_real else None  # the real image is read only near the change
    pre_latent = pre_event_latent(pkg, p, pre, rng, progress, image_reader(p, image) if image is not None else None, encoded)
    t1 = image if keep_real else decode_array(pkg, p, pre_latent, progress)
    post_latent = post_event_latent(pkg, p, post, pre_latent, mask, correlation, rng, progress, region=region)
    if style is None:
        return t1, decode_array(pkg, p, post_latent, progress, region=region, pre=t1)
    styled = apply_style(pkg, p, post_latent, style, progress, lambda row, n: mask[row : row + n] != 255,
                         inpaint_decoder(pkg, p, region, lambda row, n: t1[:, row : row + n], progress))
    return t1, decode_array(pkg, p, styled.latent, progress, styled.colour, region=region, pre=t1)


def _decoded(p: Plan, region: InpaintRegion | None) -> int:
    return p.coder_tiles if region is None else region.decoded_tiles(p)


def pair_work_units(p: Plan, steps: int, with_image: bool, redraw: bool, region: InpaintRegion | None) -> int:
    """Network calls (tiles) a change pair costs, for progress; with ``region`` an inpainting run's: the touched tiles'
    sampling and the autoencoder's tiles around them (encoding the real image only there)."""
    if region is None:
        return p.work_units(steps, with_image, redraw=redraw)
    pre = p.tiles * steps if not with_image else 0  # a pre-event image generated from the map
    encoded = 0 if not with_image else (region.decoded_tiles(p) if not redraw else p.coder_tiles)
    return pre + encoded + (p.coder_tiles if redraw or not with_image else 0) + region.sampled_tiles(p, steps) + region.decoded_tiles(p)

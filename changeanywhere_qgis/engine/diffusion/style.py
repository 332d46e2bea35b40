"""``--style``: the post-event image takes a style image's appearance (another season, light or sensor).

Two matches, both blended by the strength, in the unchanged and the changed land alike:

1. **Latent** (:func:`restyle`): the style image is encoded with the package's own encoder and its latent's
   per-channel mean and standard deviation are taken over its opaque cells; the post-event latent's channels are moved
   to them (adaptive instance normalisation, AdaIN, Huang & Belongie 2017) before it is decoded.
2. **Colour** (:func:`colour_match`): the decoded image's per-band mean and standard deviation are moved to the style
   image's pixels'. The decoder's normalisation layers undo much of a latent shift (on the bundled model the latent
   match alone moved the mean colour towards the style image for only some real images, docs/guide/style.md), so the colours
   are matched where the user sees them; the latent match carries what the decoder makes of the style's texture.

Every cell (pixel) of a channel (band) gets the same gain and offset, so the map's structure, the latent mixing's
consistency with the pre-event image and the tiles' agreement are untouched: only the appearance moves. Both work on
in-memory latents and on a large raster's file canvases (``LatentCanvases.chunks``) alike.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from ..errors import InputError
from ..io import StyleImage
from ..progress import Progress
from .canvas import LatentCanvases
from .model_package import ModelPackage
from .pixels import to_model_range
from .raster_plan import Plan, image_reader, plan
from .sampler import decode, encode
from .schedule import DEFAULT_ETA

DEFAULT_STYLE_STRENGTH = 1.0
# A channel as flat as this (a uniform image) has no spread to match: its gain is left at 1.
MIN_STD = 1e-6


def check_style_strength(strength) -> None:
    if isinstance(strength, bool) or not isinstance(strength, (int, float, np.floating, np.integer)) or not 0.0 <= strength <= 1.0:
        raise InputError(f"The style strength must be a number from 0 (no style) to 1 (the style image's appearance), "
                         f"got {strength!r}.")


@dataclass(frozen=True)
class LatentStatistics:
    """Per-channel mean and standard deviation of a latent over its valid cells."""

    mean: tuple[float, ...]
    std: tuple[float, ...]

    def to_dict(self) -> dict:
        return {"mean": list(self.mean), "std": list(self.std)}


@dataclass(frozen=True)
class Style:
    """A style image's latent statistics and how strongly the post-event latent takes them."""

    path: str
    sha256: str
    window: tuple[int, int, int, int]  # (row, col, height, width) of the encoded window in the style raster
    statistics: LatentStatistics
    strength: float
    pixels: LatentStatistics  # per band of the style image's opaque pixels, in the model's range [-1, 1]

    def record(self, before: LatentStatistics, decoded: LatentStatistics | None = None) -> dict:
        """What sample.json says: the image, the strength, the style's statistics and the post-event image's before the
        matches (its latent's, and its decoded pixels' in the model's range [-1, 1])."""
        return {"path": self.path, "sha256": self.sha256, "window": dict(zip(("row", "col", "height", "width"), self.window)),
                "strength": self.strength, "style_latent": self.statistics.to_dict(), "post_event_latent": before.to_dict(),
                "style_pixels": self.pixels.to_dict(), "post_event_pixels": decoded.to_dict() if decoded else None}


def _statistics(sums: np.ndarray, squares: np.ndarray, counts: np.ndarray) -> LatentStatistics:
    mean = sums / counts
    std = np.sqrt(np.maximum(squares / counts - mean**2, 0.0))
    return LatentStatistics(tuple(float(v) for v in mean), tuple(float(v) for v in std))


def load_style(pkg: ModelPackage, image: StyleImage, strength: float = DEFAULT_STYLE_STRENGTH, *, overlap_px: int | None = None,
               batch_size: int = 4, progress: Progress | None = None) -> Style:
    """Encode the style image's window with the engine's tiled encode and take its latent's statistics.

    A latent cell counts when its whole f x f block of pixels is opaque and inside the image (not the padding)."""
    check_style_strength(strength)
    progress = progress or Progress()
    _, height, width = image.pixels.shape
    p = plan(pkg, height, width, 1, DEFAULT_ETA, overlap_px, batch_size)
    reader = image_reader(p, image.pixels)
    latent = encode(pkg, lambda *window: to_model_range(reader(*window)), p.coder_grid, p.coder_settings, progress, p.canvases)
    f = pkg.downsample
    rows, cols = height // f, width // f
    opaque = image.valid[: rows * f, : cols * f].reshape(rows, f, cols, f).all(axis=(1, 3))
    if not opaque.any():
        raise InputError(f"Style image {image.path} has no opaque block of {f}x{f} px in its centre. Give an image whose "
                         "centre shows land.")
    cells = latent[:, :rows, :cols][:, opaque].astype(np.float64)
    stats = _statistics(cells.sum(axis=1), (cells**2).sum(axis=1), np.full(len(cells), cells.shape[1], dtype=np.float64))
    opaque_pixels = to_model_range(image.pixels[:, image.valid]).astype(np.float64)
    pixels = _statistics(opaque_pixels.sum(axis=1), (opaque_pixels**2).sum(axis=1), np.full(3, opaque_pixels.shape[1], np.float64))
    return Style(image.path, image.sha256, image.window, stats, float(strength), pixels)


def latent_statistics(latent, canvases: LatentCanvases | None = None, cells: tuple[int, int] | None = None) -> LatentStatistics:
    """Per-channel statistics of a [C, h, w] latent over its first ``cells`` = (rows, cols) (None: all of it): the raster,
    not the canvas's padding. Read chunk by chunk, so a large raster's file canvases are never held whole."""
    channels, h, w = latent.shape
    rows, cols = cells or (h, w)
    canvases = canvases or LatentCanvases(channels, (h, w))
    sums, squares, counts = np.zeros(channels), np.zeros(channels), np.zeros(channels)
    for chunk in canvases.chunks():
        top, bottom, _ = chunk.rows.indices(h)
        inside = slice(0, max(0, min(bottom, rows) - top))
        values = chunk.of(latent)[..., inside, :cols].astype(np.float64)
        if chunk.channel is None:
            sums += values.sum(axis=(1, 2))
            squares += (values**2).sum(axis=(1, 2))
            counts += values[0].size
        else:
            sums[chunk.channel] += values.sum()
            squares[chunk.channel] += (values**2).sum()
            counts[chunk.channel] += values.size
    return _statistics(sums, squares, counts)


def restyle(latent, style: Style, canvases: LatentCanvases | None = None, cells: tuple[int, int] | None = None):
    """The latent with its channels' statistics moved to the style's, blended by its strength: (restyled, statistics before).

    The input is left as it is (a series' next date may start from it); the result is a new canvas of the same kind.
    ``cells`` = (rows, cols): the raster's part of the canvas, over which the statistics are taken."""
    channels, h, w = latent.shape
    canvases = canvases or LatentCanvases(channels, (h, w))
    before = latent_statistics(latent, canvases, cells)
    if style.strength == 0.0:  # no style: the very same numbers
        return latent, before
    gain, offset = _adain(before, style.statistics, style.strength)
    out = canvases.canvas("styled")
    for chunk in canvases.chunks():
        values = chunk.of(latent)
        if chunk.channel is None:
            g, o = gain[:, None, None], offset[:, None, None]
        else:
            g, o = gain[chunk.channel], offset[chunk.channel]
        chunk.put(out, (values * g + o).astype(np.float32))
    return out, before


def _adain(before: LatentStatistics, target: LatentStatistics, strength: float) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel gain and offset that move ``before``'s mean and spread the ``strength`` part of the way to ``target``'s."""
    mean, std = np.asarray(before.mean), np.asarray(before.std)
    target_mean = mean + strength * (np.asarray(target.mean) - mean)
    target_std = std + strength * (np.asarray(target.std) - std)
    gain = np.where(std > MIN_STD, target_std / np.maximum(std, MIN_STD), 1.0)
    return gain, target_mean - gain * mean


class DecodedStatistics:
    """Per-band statistics of decoded rows ([3, rows, width] in [-1, 1]) over the raster's valid pixels, row band by band."""

    def __init__(self, height: int, width: int, valid_rows: Callable[[int, int], np.ndarray] | None = None) -> None:
        self.height, self.width, self.valid_rows = height, width, valid_rows
        self.sums, self.squares, self.count = np.zeros(3), np.zeros(3), 0.0

    def __call__(self, row: int, rgb: np.ndarray) -> None:
        rows = min(rgb.shape[1], self.height - row)
        if rows <= 0:
            return
        values = rgb[:, :rows, : self.width].astype(np.float64)
        if self.valid_rows is not None:
            values = values[:, np.asarray(self.valid_rows(row, rows), dtype=bool)]
        values = values.reshape(3, -1)
        self.sums += values.sum(axis=1)
        self.squares += (values**2).sum(axis=1)
        self.count += values.shape[1]

    def statistics(self) -> LatentStatistics:
        return _statistics(self.sums, self.squares, np.full(3, max(self.count, 1.0)))


def colour_match(style: Style, decoded: LatentStatistics) -> Callable[[np.ndarray], np.ndarray]:
    """The per-band gain and offset that move decoded pixels ([3, ...] in [-1, 1]) with ``decoded``'s statistics the
    style's strength of the way to the style image's pixels'."""
    gain, offset = _adain(decoded, style.pixels, style.strength)
    gain, offset = gain.astype(np.float32)[:, None, None], offset.astype(np.float32)[:, None, None]
    return lambda rgb: rgb * gain + offset


def measure_decoded(pkg: ModelPackage, latent, p: Plan, progress: Progress,
                    valid_rows: Callable[[int, int], np.ndarray] | None = None, decode_rows=None) -> LatentStatistics:
    """The decoded image's per-band statistics over the raster (``valid_rows(row, n)``: its valid pixels), from a decode
    pass that keeps nothing but sums, so a large raster costs no memory. ``decode_rows(latent, write_rows)``: another
    decode pass (an inpainted image's, blended with the pre-event image); None: the plain one."""
    measured = DecodedStatistics(p.height, p.width, valid_rows)
    if decode_rows is not None:
        decode_rows(latent, measured)
    else:
        decode(pkg, latent, p.coder_grid, p.coder_settings, measured, progress)
    return measured.statistics()


@dataclass(frozen=True)
class Styled:
    """A post-event latent that took a style: the latent to decode, the colour match to apply to its decoded pixels
    (None at strength 0) and what sample.json records."""

    latent: object
    colour: Callable[[np.ndarray], np.ndarray] | None
    record: dict


def apply_style(pkg: ModelPackage, p: Plan, latent, style: Style, progress: Progress,
                valid_rows: Callable[[int, int], np.ndarray] | None = None, decode_rows=None) -> Styled:
    """Both matches on one post-event latent of plan ``p`` (a series calls it once per later date): the latent restyled,
    then the colour match measured on a decode of it (a second decode pass). The input latent is left as it is."""
    f = pkg.downsample
    styled, before = restyle(latent, style, p.canvases, (-(-p.height // f), -(-p.width // f)))
    if style.strength == 0.0:
        return Styled(latent, None, style.record(before))
    progress.stage("matching the style image's colours")
    decoded = measure_decoded(pkg, styled, p, progress, valid_rows, decode_rows)  # counted: the pipeline's total holds this decode
    return Styled(styled, colour_match(style, decoded), style.record(before, decoded))

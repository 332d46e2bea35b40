"""``--post-event inpaint``: the post-event image keeps the pre-event image wherever the land did not change; the model
draws only the changed land and a margin around it (docs/guide/inpainting.md).

Blended latent diffusion (Avrahami et al., 2023) with RePaint's conditioning (Lugmayr et al., 2022), on the tiled sampler:

1. **The grown mask**: the changed pixels grown by the margin M (pixels). In latent cells (f x f pixels each) a cell is
   *drawn* when it lies within ceil(M / 2f) cells of a changed cell; every other cell is *pinned*: at every step of the
   reverse process it is replaced by the pre-event latent noised to that step (the sampler's latent mixing, for all the
   steps), so the drawn land is conditioned on its real surroundings for the whole process, and at the end the pinned
   cells are the pre-event latent itself.
2. **Cost follows the change**: a denoiser tile that the grown mask (ceil(M / f) cells around the change) does not
   touch is never run, nor are the autoencoder's tiles around it; an unchanged raster costs no network call at all.
3. **The blend**: the decoded image and the pre-event image are mixed by a feathered alpha in pixels: 1 up to M/2 from
   the change (the drawn cells), falling smoothly to 0 at M, over pixels whose latent is pinned, so the blend fades
   between the decoder's copy of the pre-event image and the image itself: two versions of the same content, no seam.
   Beyond M the post-event image is the pre-event image, pixel for pixel (the real one, or the redrawn one).
4. **Re-render** (strength r in [0, 1]): the kept land re-rendered at noise level r. The last S - floor(S (1 - r)) of the S steps
   run on every tile with nothing pinned, starting again from the pre-event latent noised to the first of them, and the
   post-event image is the decoded one everywhere (the kept land is the model's re-render, not the pre-event pixels).
   r = 0 (the default): pixel-exact kept land, and only the touched tiles cost anything.

The appearance shifts and ``--style`` apply on top, to the whole post-event image.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import numpy as np
from scipy import ndimage

from ..errors import InputError
from ..progress import Progress
from .model_package import ModelPackage
from .pixels import to_model_range
from .raster_plan import Plan
from .sampler import KnownContent, decode
from .tiling import Tile

# "full": the post-event image is the decoder's everywhere, unchanged land held to the pre-event image by latent mixing
# for the first s of the steps (ChangeAnywhere); "inpaint": as above. The default (of pairs: a series is drawn in full
# whichever it is, resolve_post_event) stays "full" until the usefulness test (docs/research/usefulness-checks.md) says
# otherwise; the choices keep their order (Processing's enum index).
POST_EVENT_CHOICES = ("full", "inpaint")
DEFAULT_POST_EVENT = "full"
# 32 px = 8 latent cells of a factor-4 model: 4 cells drawn around the change, 16 px of fade (docs/guide/inpainting.md)
DEFAULT_INPAINT_MARGIN_PX = 32
DEFAULT_RERENDER_STRENGTH = 0.0
# What Processing and the dock say when they draw a series in full although "inpaint" is chosen (ui_post_event)
SERIES_IN_FULL = "a series is drawn in full: Post-event image 'inpaint' applies to change pairs"


def _is_series(dates) -> bool:
    # a bad number of dates is check_dates' to refuse, clearly, when the settings are checked: not here
    return not isinstance(dates, bool) and isinstance(dates, (int, np.integer)) and dates > 2


def resolve_post_event(post_event: str | None, dates=2) -> str:
    """The post-event mode a run makes and records: the one given, or for None the default of what it makes,
    DEFAULT_POST_EVENT for a change pair and "full" for a series (``dates`` > 2), which inpainting cannot make yet; so a
    series runs under either default. An "inpaint" given for a series is kept, for the settings' check to refuse."""
    if post_event is not None:
        return post_event
    return "full" if _is_series(dates) else DEFAULT_POST_EVENT


def ui_post_event(chosen: str, dates) -> tuple[str, str | None]:
    """(mode, note) for a UI whose control always holds a mode (Processing's enum, the dock's combo), so that it cannot
    tell a choice from the default it shows: "inpaint" with a series is drawn in full, with SERIES_IN_FULL to show,
    rather than refused, since it may be only the pairs' default."""
    if chosen == "inpaint" and _is_series(dates):
        return "full", SERIES_IN_FULL
    return chosen, None


def check_post_event(post_event: str, margin_px=DEFAULT_INPAINT_MARGIN_PX, rerender=DEFAULT_RERENDER_STRENGTH) -> None:
    if post_event not in POST_EVENT_CHOICES:
        raise InputError(f"Unknown post-event image {post_event!r}. Choose 'full' (the model draws the whole image) or "
                         "'inpaint' (the pre-event image is kept where the land did not change; the model draws the change).")
    if isinstance(margin_px, bool) or not isinstance(margin_px, (int, np.integer)) or not 0 <= margin_px <= 1024:
        raise InputError(f"The inpainting margin must be a whole number of pixels from 0 to 1024 (e.g. "
                         f"{DEFAULT_INPAINT_MARGIN_PX}, the default), got {margin_px!r}.")
    if isinstance(rerender, bool) or not isinstance(rerender, (int, float, np.integer, np.floating)) or not 0.0 <= rerender <= 1.0:
        raise InputError(f"The re-render strength must be a number from 0 (the kept land is the pre-event image, pixel "
                         f"for pixel) to 1 (drawn again from noise), got {rerender!r}.")


# The share of the last steps in which the margin's cells next to the drawn ones are drawn too, falling to the margin's
# edge: they harmonise the drawn land with the kept land (differential diffusion, Levin & Fried 2024) where the pixel
# fade hides what they change. Measured: docs/guide/inpainting.md.
HARMONISE = 0.5


@dataclass(frozen=True)
class InpaintRegion:
    """Where an inpainting run draws, what it runs, and how its decoded image is blended with the pre-event image."""

    strength: object  # [h, w] float32 latent plane: the share of the last steps each cell is drawn in (an array or a file)
    tile_strength: tuple[float, ...]  # per denoiser tile of the grid, the largest strength it holds (0: never run)
    tiles: tuple[Tile, ...]  # the denoiser tiles that run at all, in the grid's raster order
    coder_tiles: tuple[Tile, ...] | None  # the autoencoder's tiles to encode and decode; None: all (a re-render)
    mask: object  # the pixel change mask (1 changed), an array or a large map's scratch raster
    margin_px: int
    rerender: float
    height: int  # the raster, pixels
    width: int

    @property
    def pixel_exact(self) -> bool:
        """No re-render: beyond the margin the post-event image is the pre-event image itself."""
        return self.rerender == 0.0

    def known_content(self, latent) -> KnownContent:
        """What the sampler pins: the pre-event latent, each cell for its share of the steps."""
        return KnownContent(latent, None, 1.0, strength=self.strength, tile_strength=self.tile_strength)

    def sampled_tiles(self, p: Plan, steps: int) -> int:
        """Denoiser tile-steps of the post-event image (a full run: ``p.tiles * steps``)."""
        first = KnownContent(None, None, 1.0).release(np.asarray(self.tile_strength), steps)
        return int((steps - first).sum())

    def decoded_tiles(self, p: Plan) -> int:
        return p.coder_tiles if self.coder_tiles is None else len(self.coder_tiles)

    def alpha(self, row: int, rows: int) -> np.ndarray:
        """float32 [rows, width]: the decoded image's weight in the blend, for raster rows row..row+rows."""
        m = self.margin_px
        top, bottom = max(0, row - m), min(self.height, row + rows + m)
        changed = np.asarray(self.mask[top:bottom, :])[:, : self.width] == 1
        if not changed.any():
            return np.zeros((rows, self.width), np.float32)
        if m == 0:
            return changed[row - top : row - top + rows].astype(np.float32)
        # the distance to the nearest changed pixel is exact up to m: every changed pixel that near is in the band
        distance = ndimage.distance_transform_edt(~changed)[row - top : row - top + rows]
        inner = m / 2
        t = np.clip((m - distance) / (m - inner), 0.0, 1.0)
        return (t * t * (3.0 - 2.0 * t)).astype(np.float32)  # smoothstep: no kink where the fade begins or ends

    def record(self, p: Plan, steps: int) -> dict:
        """What sample.json says about the run."""
        return {"margin_px": self.margin_px, "rerender_strength": self.rerender, "tiles_sampled": len(self.tiles),
                "tiles": p.tiles, "denoiser_tile_steps": self.sampled_tiles(p, steps), "full_tile_steps": p.tiles * steps}


def cell_strength(cells_away: np.ndarray, draw: int, grow: int, rerender: float) -> np.ndarray:
    """float32 strength of latent cells ``cells_away`` cells (chessboard) from the nearest changed cell: 1 up to ``draw``,
    falling from HARMONISE towards 0 across the margin's cells up to ``grow``, ``rerender`` beyond (never below it)."""
    margin = np.clip((grow + 1 - cells_away) / max(grow + 1 - draw, 1), 0.0, 1.0) * HARMONISE
    strength = np.where(cells_away <= draw, 1.0, np.where(cells_away <= grow, margin, 0.0))
    return np.maximum(strength, rerender).astype(np.float32)


def inpaint_region(pkg: ModelPackage, p: Plan, mask, margin_px: int = DEFAULT_INPAINT_MARGIN_PX,
                   rerender: float = DEFAULT_RERENDER_STRENGTH) -> InpaintRegion:
    """Each latent cell's strength and the tiles run for change ``mask`` (1 changed; an array or a large map's scratch
    raster, read a band of rows at a time; on disk the strength plane is a file of the plan's canvases)."""
    check_post_event("inpaint", margin_px, rerender)
    f = pkg.downsample
    h, w = p.grid.height, p.grid.width
    grow, draw = math.ceil(margin_px / f), math.ceil(margin_px / (2 * f))
    strength = p.canvases.plane("inpaint-strength") if p.canvases.on_disk else np.empty((h, w), np.float32)
    tiles = p.grid.tiles
    by_row: dict[int, list[int]] = {}
    for index, tile in enumerate(tiles):
        by_row.setdefault(tile.row, []).append(index)
    tile_strength = np.full(len(tiles), float(rerender))
    band = max(1, (1 << 22) // max(w * f * f, 1))
    for top in range(0, h, band):
        n = min(band, h - top)
        lo, hi = max(0, top - grow), min(h, top + n + grow)
        changed = _changed_cells(mask, f, w, lo, hi, p.height, p.width)
        if not changed.any():
            strength[top : top + n, :] = np.float32(rerender)
            continue
        away = ndimage.distance_transform_cdt(~changed, metric="chessboard")[top - lo : top - lo + n]
        values = cell_strength(away, draw, grow, rerender)
        strength[top : top + n, :] = values
        for row, indices in by_row.items():
            size = tiles[indices[0]].size_y
            if row >= top + n or row + size <= top:
                continue
            rows = slice(max(row, top) - top, min(row + size, top + n) - top)
            for i in indices:
                tile_strength[i] = max(tile_strength[i], float(values[rows, tiles[i].col : tiles[i].col + tiles[i].size_x].max()))
    chosen = tuple(t for t, value in zip(tiles, tile_strength) if value > 0)
    if rerender > 0:
        coder = None
    elif p.coder_grid == p.grid:
        coder = chosen
    else:  # the autoencoder's larger tiles: those that overlap a chosen denoiser tile cover every cell it reads
        rects = np.array([(t.row, t.col, t.row + t.size_y, t.col + t.size_x) for t in chosen]).reshape(-1, 4)
        coder = tuple(t for t in p.coder_grid.tiles
                      if ((rects[:, 0] < t.row + t.size_y) & (rects[:, 2] > t.row) & (rects[:, 1] < t.col + t.size_x)
                          & (rects[:, 3] > t.col)).any())
    return InpaintRegion(strength, tuple(float(v) for v in tile_strength), chosen, coder, mask, int(margin_px), float(rerender),
                         p.height, p.width)


def _changed_cells(mask, f: int, w: int, lo: int, hi: int, height: int, width: int) -> np.ndarray:
    """bool [hi - lo, w]: latent rows lo..hi, True where any of a cell's f x f pixels changed (the canvas's padding never)."""
    pixels = np.zeros(((hi - lo) * f, w * f), bool)
    band = np.asarray(mask[lo * f : min(hi * f, height), :])[:, :width] == 1
    pixels[: band.shape[0], : band.shape[1]] = band
    return pixels.reshape(hi - lo, f, w, f).any(axis=(1, 3))


def decode_inpainted(pkg: ModelPackage, p: Plan, latent, region: InpaintRegion, read_pre: Callable[[int, int], np.ndarray],
                     write_rows: Callable[[int, np.ndarray], None], progress: Progress) -> None:
    """Decode an inpainted post-event latent and blend it with the pre-event image: ``write_rows(row, rgb)`` receives
    float32 [3, rows, width] in [-1, 1] of the raster, as ``sampler.decode`` gives; ``read_pre(row, rows)``: the
    pre-event image's uint8 [3, rows, width]. With a re-render the decoded image is the post-event image everywhere."""
    if not region.pixel_exact:
        decode(pkg, latent, p.coder_grid, p.coder_settings, write_rows, progress)
        return

    def blend(row: int, rgb: np.ndarray) -> None:
        rows = min(rgb.shape[1], p.height - row)
        if rows <= 0:
            return
        alpha = region.alpha(row, rows)
        pre = to_model_range(read_pre(row, rows))
        # alpha 0: 0 * decoded + 1 * pre is pre exactly, and to_uint8(to_model_range(x)) is x: the pre-event pixels
        write_rows(row, alpha * rgb[:, :rows, : p.width] + (1.0 - alpha) * pre)

    decode(pkg, latent, p.coder_grid, p.coder_settings, blend, progress, tiles=region.coder_tiles)


def discard(region: InpaintRegion | None) -> None:
    """The strength plane's file, on a large map (arrays are left to the garbage collector)."""
    if region is not None and not isinstance(region.strength, np.ndarray):
        region.strength.remove()



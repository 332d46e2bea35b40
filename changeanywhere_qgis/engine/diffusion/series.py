"""The later dates of a series: date k's latent sampled under map k, latent mixing from date k-1's final latent.

Date 2 is a change pair's post-event latent (``change_pair.post_event_latent``); each later date is the same step
again with date k-1's latent as the known content, so land unchanged since T1 keeps being mixed in from the
latest image of it, date after date. Only two latents exist at a time (date k-1's is discarded when date k's is
made), so a series needs the memory of a pair; on a large map each date's canvases are new scratch files
(``canvas.LatentCanvases`` names every file afresh).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from ..progress import Progress
from .canvas import LatentCanvases
from .change_pair import DEFAULT_PRE_EVENT, check_pre_event, decode_array, post_event_latent, pre_event_latent
from .raster_plan import Plan, image_reader, plan
from .model_package import ModelPackage
from .sampler import DEFAULT_MIXING
from .schedule import DEFAULT_ETA, DEFAULT_SAMPLER, DEFAULT_STEPS


@dataclass
class LaterDate:
    """What date k (3 and on) is sampled from: its map, its change since date k-1, its content correlation s and its noise."""

    labels: object  # uint8 map of date k (an array, or a large map's ScratchRaster)
    mask: object  # change mask from date k-1 to date k (1 changed, 0 unchanged, 255 nodata)
    correlation: float
    rng: np.random.Generator


def later_latents(pkg: ModelPackage, p: Plan, latent, dates: list[LaterDate], progress: Progress,
                  done: Callable[[int, object], None]) -> None:
    """Each later date's latent in turn, from ``latent`` (date 2's); ``done(i, latent)`` takes date i's (i = 0 for
    date 3) before the previous one is discarded, e.g. to decode and write it."""
    for i, date in enumerate(dates):
        following = post_event_latent(pkg, p, date.labels, latent, date.mask, date.correlation, date.rng, progress,
                                      f"generating the image of date {i + 3} of {len(dates) + 2}")
        LatentCanvases.discard(latent)
        done(i, following)
        latent = following
    LatentCanvases.discard(latent)


def series_work_units(p: Plan, steps: int, later_dates: int) -> int:
    """Network calls (tiles) the dates after date 2 add, for progress: one sampling run and one decode each."""
    return later_dates * (p.tiles * steps + p.coder_tiles)


def change_series(pkg: ModelPackage, maps: list[np.ndarray], masks: list[np.ndarray], correlations: list[float],
                  rngs: list[np.random.Generator], *, image: np.ndarray | None = None, steps: int = DEFAULT_STEPS,
                  eta: float = DEFAULT_ETA, overlap_px: int | None = None, batch_size: int = 4,
                  pre_event: str = DEFAULT_PRE_EVENT, sampler: str = DEFAULT_SAMPLER, tile_px: int | None = None,
                  mixing: str = DEFAULT_MIXING, progress: Progress | None = None) -> list[np.ndarray]:
    """In memory: the uint8 [3, H, W] images of dates 1..N for ``maps`` (N maps), ``masks[k]`` the change from map k to
    map k+1, ``correlations[k]`` and ``rngs[k]`` those of date k+2. ``rngs[0]`` also draws the pre-event image's noise,
    as in ``change_pair``: with two maps this is ``change_pair``'s pair exactly."""
    check_pre_event(pre_event)
    progress = progress or Progress()
    p = plan(pkg, *maps[0].shape, steps, eta, overlap_px, batch_size, sampler, tile_px, mixing=mixing)
    keep_real = image is not None and pre_event == "real"
    progress.start(p.work_units(steps, image is not None, redraw=not keep_real) + series_work_units(p, steps, len(maps) - 2))
    latent = pre_event_latent(pkg, p, maps[0], rngs[0], progress, image_reader(p, image) if image is not None else None)
    images = [image if keep_real else decode_array(pkg, p, latent, progress)]
    latent = post_event_latent(pkg, p, maps[1], latent, masks[0], correlations[0], rngs[0], progress)
    images.append(decode_array(pkg, p, latent, progress))
    later = [LaterDate(m, mask, s, rng) for m, mask, s, rng in zip(maps[2:], masks[1:], correlations[1:], rngs[1:])]
    later_latents(pkg, p, latent, later, progress, lambda _i, z: images.append(decode_array(pkg, p, z, progress)))
    return images

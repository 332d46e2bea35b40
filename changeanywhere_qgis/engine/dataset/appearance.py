"""Random appearance shifts of a dataset's post-event images: what real unchanged land looks like between two dates.

Real pairs of the same land differ without any change: another sun, season or sensor (a global colour change and
brightness), haze, and a misregistration of a pixel or two. A dataset of pairs can give each sample's image B one such
shift (``dataset --appearance-shift``; off by default, ``DEFAULT_APPEARANCE_SHIFT``), drawn from the
sample's seed in a random stream of its own, so images A, the labels and the unshifted B are the same bytes as without
it; the shift is applied to B after decoding and recorded in the manifest.

The ranges follow the real pairs of data/levir-cd and data/whu-cd over their unchanged land
(``python research/appearance_pairs.py``; docs/guide/appearance-shifts.md): the mean gain of B over A ran 0.71-1.18 (10-90 %),
a band's gain over the mean gain deviated by 0.04 (median) to 0.155 (90 %), B had less contrast than A in 7 of 27 pairs
(std ratio down to 0.56), and B was shifted against A by about 1 px per axis (median; 90 % within 3 px).

``draw_appearance_shift(seed)`` and ``appearance_shift(image, seed or shift)`` are the whole of it: the evaluation
reapplies a sample's recorded shift (or draws it from the sample's seed) to the unshifted B and gets the dataset's B.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from ..errors import InputError

# A stream key of its own (np.random.default_rng([seed, key])): no other stream of a sample is disturbed, and the
# other streams' indices (job.STREAMS) may grow without meeting it.
APPEARANCE_STREAM = 0xA99E
COLOUR_RANGE = (0.88, 1.12)  # a band's gain before it is divided by the three bands' mean: its deviation stays
# within 0.17 (the real pairs' largest, 0.176), mostly within their 90 % of 0.155
BRIGHTNESS_RANGE = (0.75, 1.20)  # the gain common to the three bands: about the real pairs' 10-90 % of 0.71-1.18
HAZE_RANGE = (0.0, 0.30)  # the share of a haze colour blended in: the contrast falls to 0.7-1 of its own
HAZE_COLOUR = (205.0, 210.0, 222.0)  # bright and slightly blue grey: scattered skylight
MAX_SHIFT_PX = 2  # misregistration per axis, whole pixels: real pairs' median ~1 px, their 90 % within 3 px
# Off by check U5 (docs/research/usefulness-checks.md), which applied U3's rule: with model 0.3.0, trained on shifted pairs the
# change detector's precision on the real pairs was 0.238 against 0.245 unshifted. (Check U2, with 0.1.0, had turned
# them on: precision +0.038, F1 +0.050.) ``dataset --appearance-shift`` turns them on.
DEFAULT_APPEARANCE_SHIFT = False


@dataclass(frozen=True)
class AppearanceShift:
    """One sample's appearance shift: per-band gain, brightness gain, haze share and colour, and (rows, cols) shift."""

    colour: tuple[float, float, float]
    brightness: float
    haze: float
    haze_colour: tuple[float, float, float]
    shift: tuple[int, int]  # B's content moves by (rows, cols) against A and the labels (down and right positive)

    def to_dict(self) -> dict:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, d: dict) -> "AppearanceShift":
        return cls(tuple(float(v) for v in d["colour"]), float(d["brightness"]), float(d["haze"]),
                   tuple(float(v) for v in d["haze_colour"]), tuple(int(v) for v in d["shift"]))


def draw_appearance_shift(seed: int) -> AppearanceShift:
    """The shift of the sample with this seed (``dataset.sample_seed``), from its own random stream."""
    rng = np.random.default_rng([int(seed), APPEARANCE_STREAM])
    colour = rng.uniform(*COLOUR_RANGE, size=3)
    colour = colour / colour.mean()  # the colour change alone keeps the brightness
    brightness = float(rng.uniform(*BRIGHTNESS_RANGE))
    haze = float(rng.uniform(*HAZE_RANGE))
    shift = rng.integers(-MAX_SHIFT_PX, MAX_SHIFT_PX + 1, size=2)
    return AppearanceShift(tuple(float(c) for c in colour), brightness, haze, HAZE_COLOUR, (int(shift[0]), int(shift[1])))


def _moved(image: np.ndarray, rows: int, cols: int) -> np.ndarray:
    """The image's content moved by (rows, cols) pixels, the edges it leaves replicated (no black border to detect)."""
    if rows == 0 and cols == 0:
        return image
    _, h, w = image.shape
    pad = ((0, 0), (max(rows, 0), max(-rows, 0)), (max(cols, 0), max(-cols, 0)))
    padded = np.pad(image, pad, mode="edge")
    top, left = max(-rows, 0), max(-cols, 0)
    return padded[:, top : top + h, left : left + w]


def appearance_shift(image: np.ndarray, shift: AppearanceShift | dict | int) -> np.ndarray:
    """uint8 [3, H, W] image B with the shift applied (an AppearanceShift, its manifest dict, or a sample's seed to draw
    it from): colour and brightness gains, then haze, in float32, rounded to uint8; then the misregistration."""
    if isinstance(shift, dict):
        shift = AppearanceShift.from_dict(shift)
    elif not isinstance(shift, AppearanceShift):
        shift = draw_appearance_shift(shift)
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[0] != 3:
        raise InputError(f"An appearance shift takes a uint8 [3, H, W] image (image B as decoded), got {image.dtype} {image.shape}.")
    gain = (np.asarray(shift.colour, np.float32) * np.float32(shift.brightness))[:, None, None]
    haze = np.float32(shift.haze)
    out = image.astype(np.float32) * gain * (np.float32(1) - haze) + haze * np.asarray(shift.haze_colour, np.float32)[:, None, None]
    out = np.clip(np.round(out), 0, 255).astype(np.uint8)
    return _moved(out, *shift.shift)

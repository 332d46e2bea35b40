"""How real unchanged land differs between the two dates of real change pairs: what `dataset --appearance-shift` imitates.

For every pair of data/levir-cd and data/whu-cd, over the pixels its label marks unchanged: the per-band gain of the
post-event image's mean over the pre-event image's (a global colour change; its spread across the bands is the colour
part, its mean the brightness), the change of contrast (std ratio), and the misregistration of B against A (the shift
within 4 px at which the two images' detail correlates best over the unchanged land, sub-pixel). docs/guide/appearance-shifts.md quotes its output.

    python research/appearance_pairs.py
"""

from __future__ import annotations

import sys
import warnings
from pathlib import Path

import numpy as np
import rasterio
from rasterio.errors import NotGeoreferencedWarning

REPO = Path(__file__).resolve().parents[1]
SEARCH = 4  # px: shifts searched each way


def _read(path: Path) -> np.ndarray:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NotGeoreferencedWarning)
        with rasterio.open(path) as ds:
            return ds.read().astype(np.float64)


def _high_pass(image: np.ndarray) -> np.ndarray:
    """The grey image's detail: itself less a 7 px box blur, so a change of brightness or contrast does not count."""
    from scipy.ndimage import uniform_filter

    grey = image[:3].mean(axis=0)
    return grey - uniform_filter(grey, size=7, mode="nearest")


def misregistration(a: np.ndarray, b: np.ndarray, unchanged: np.ndarray) -> tuple[float, float, float]:
    """(rows, cols, correlation gain) of the shift of B against A within +-SEARCH px: the normalised correlation of the
    two images' detail over the unchanged land, highest at that shift (sub-pixel by a parabola through the best shift
    and its neighbours); the gain is how much higher the correlation is there than at no shift."""
    da, db = _high_pass(a), _high_pass(b)
    m = SEARCH + 1
    inner = (slice(m, -m), slice(m, -m))
    keep = unchanged[inner]
    ref = da[inner][keep]
    ref = (ref - ref.mean()) / ref.std()
    scores = np.zeros((2 * SEARCH + 1, 2 * SEARCH + 1))
    for i, dy in enumerate(range(-SEARCH, SEARCH + 1)):
        for j, dx in enumerate(range(-SEARCH, SEARCH + 1)):
            moved = db[m + dy : db.shape[0] - m + dy, m + dx : db.shape[1] - m + dx][keep]
            scores[i, j] = np.mean(ref * (moved - moved.mean()) / moved.std())
    i, j = np.unravel_index(np.argmax(scores), scores.shape)

    def vertex(left: float, centre: float, right: float) -> float:
        denominator = left - 2 * centre + right
        return 0.5 * (left - right) / denominator if denominator else 0.0

    fy = vertex(scores[i - 1, j], scores[i, j], scores[i + 1, j]) if 0 < i < 2 * SEARCH else 0.0
    fx = vertex(scores[i, j - 1], scores[i, j], scores[i, j + 1]) if 0 < j < 2 * SEARCH else 0.0
    return i - SEARCH + fy, j - SEARCH + fx, scores[i, j] - scores[SEARCH, SEARCH]


def _shift_text(dy: float, dx: float) -> str:
    return "no clear peak" if np.isnan(dy) else f"{dy:+.2f}, {dx:+.2f}"


def main() -> int:
    rows = []
    for source in ("levir-cd", "whu-cd"):
        folder = REPO / "data" / source
        for a_path in sorted((folder / "A").iterdir()):
            a, b = _read(a_path), _read(folder / "B" / a_path.name)
            unchanged = _read(folder / "label" / a_path.name)[0] == 0
            ma, mb = a[:3, unchanged].mean(axis=1), b[:3, unchanged].mean(axis=1)
            gain = mb / ma
            contrast = b[:3, unchanged].std(axis=1).mean() / a[:3, unchanged].std(axis=1).mean()
            dy, dx, _ = misregistration(a, b, unchanged)
            if max(abs(dy), abs(dx)) >= SEARCH:  # the best is at the search's edge: no clear peak (views too unlike)
                dy = dx = np.nan
            rows.append((source, a_path.stem, gain, gain.mean(), gain / gain.mean(), contrast, dy, dx, unchanged.mean()))
    print("| pair | unchanged | gain R G B (B/A means) | brightness (mean gain) | colour (gain / mean gain) R G B | contrast (std B/A) | shift rows, cols (px) |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for source, stem, gain, bright, colour, contrast, dy, dx, share in rows:
        print(f"| {source} {stem} | {100 * share:.0f} % | {' '.join(f'{g:.2f}' for g in gain)} | {bright:.2f} | "
              f"{' '.join(f'{c:.3f}' for c in colour)} | {contrast:.2f} | {_shift_text(dy, dx)} |")
    bright = np.array([r[3] for r in rows])
    colour = np.array([r[4] for r in rows])
    contrast = np.array([r[5] for r in rows])
    shift = np.array([np.hypot(r[6], r[7]) for r in rows if not np.isnan(r[6])])
    along = np.array([abs(v) for r in rows if not np.isnan(r[6]) for v in r[6:8]])
    print()
    print(f"{len(rows)} pairs. brightness (mean gain): median {np.median(bright):.2f}, 10-90 % {np.percentile(bright, 10):.2f}-"
          f"{np.percentile(bright, 90):.2f}, range {bright.min():.2f}-{bright.max():.2f}")
    print(f"colour (a band's gain over the mean gain): |deviation| median {np.median(np.abs(colour - 1)):.3f}, 90 % "
          f"{np.percentile(np.abs(colour - 1), 90):.3f}, max {np.abs(colour - 1).max():.3f}")
    print(f"contrast (std ratio): median {np.median(contrast):.2f}, range {contrast.min():.2f}-{contrast.max():.2f}")
    print(f"misregistration ({len(shift)} pairs with a clear peak): |shift| median {np.median(shift):.2f} px, 90 % "
          f"{np.percentile(shift, 90):.2f} px, max {shift.max():.2f} px; per axis median {np.median(along):.2f} px, "
          f"90 % {np.percentile(along, 90):.2f} px")
    return 0


if __name__ == "__main__":
    sys.exit(main())

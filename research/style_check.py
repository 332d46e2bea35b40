"""How far `--style` moves an image's colours towards a style image's: the latent match alone, and with the colour match.

The bundled model's autoencoder copy of the real sample image (changeanywhere_qgis/samples/houston_image.tif), restyled
towards every real post-event image of data/levir-cd and data/whu-cd (other cities, dates and sensors) at strength 1:
per style image, the mean over the bands of |band mean - the style image's band mean| (and the same for the bands'
standard deviations), for the copy as it is, with the latent match alone (AdaIN on the latent, then decoding) and with
both matches (what `generate --style` does). docs/guide/style.md quotes its output.

    python research/style_check.py [--model PACKAGE]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from changeanywhere_qgis.engine.diffusion import (colour_match, decode_array, encode, load_model_package, load_style,  # noqa: E402
                                                  measure_decoded, plan, restyle, to_model_range)
from changeanywhere_qgis.engine.io import read_style_image  # noqa: E402
from changeanywhere_qgis.engine.progress import Progress  # noqa: E402


def _distance(image: np.ndarray, target: np.ndarray) -> tuple[float, float]:
    a, b = image.reshape(3, -1).astype(np.float64), target.reshape(3, -1).astype(np.float64)
    return float(np.abs(a.mean(axis=1) - b.mean(axis=1)).mean()), float(np.abs(a.std(axis=1) - b.std(axis=1)).mean())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="model package (default: the bundled one)")
    args = parser.parse_args()
    pkg = load_model_package(args.model, "cpu")
    source = read_style_image(REPO / "changeanywhere_qgis" / "samples" / "houston_image.tif").pixels
    p = plan(pkg, source.shape[1], source.shape[2], 1)
    latent = encode(pkg, lambda r, c, h, w: to_model_range(source[:, r : r + h, c : c + w]), p.coder_grid, p.coder_settings,
                    Progress(), p.canvases)
    copy = decode_array(pkg, p, latent, Progress())
    rows = []
    print("| style image | copy: mean, std distance | latent match: mean, std | both matches: mean, std |")
    print("| --- | --- | --- | --- |")
    for path in sorted((REPO / "data" / "levir-cd" / "B").iterdir()) + sorted((REPO / "data" / "whu-cd" / "B").iterdir()):
        image = read_style_image(path)
        style = load_style(pkg, image, 1.0)
        styled, _ = restyle(latent, style, p.canvases)
        latent_only = decode_array(pkg, p, styled, Progress())
        both = decode_array(pkg, p, styled, Progress(), colour_match(style, measure_decoded(pkg, styled, p, Progress())))
        row = [_distance(x, image.pixels) for x in (copy, latent_only, both)]
        rows.append(row)
        print(f"| {path.parent.parent.name} {path.stem} | " + " | ".join(f"{m:.1f}, {s:.1f}" for m, s in row) + " |")
    rows = np.array(rows)  # [images, kind, (mean, std)]
    closer = int(np.sum(rows[:, 1, 0] < rows[:, 0, 0]))
    print()
    print(f"{len(rows)} style images, mean-colour distance (grey levels): copy {np.median(rows[:, 0, 0]):.1f} (median), "
          f"latent match alone {np.median(rows[:, 1, 0]):.1f} (closer than the copy for {closer} of {len(rows)}), "
          f"both matches {np.median(rows[:, 2, 0]):.1f} (max {rows[:, 2, 0].max():.1f}); spread distance: copy "
          f"{np.median(rows[:, 0, 1]):.1f}, latent {np.median(rows[:, 1, 1]):.1f}, both {np.median(rows[:, 2, 1]):.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

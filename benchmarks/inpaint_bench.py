"""`make bench`'s inpainting section: seconds per megapixel of `generate --post-event inpaint` against `full` on a large map
with a few changed objects, measured side by side in one run; the seams around the inpainted change; what a re-render
of the kept land costs it.

    python -m benchmarks.run --only inpaint
"""

from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path

import numpy as np
import rasterio
from rasterio.windows import Window
from scipy import ndimage

from changeanywhere_qgis.engine.diffusion import DEFAULT_INPAINT_MARGIN_PX
from changeanywhere_qgis.engine.pipeline import ChangeSpec, GenerateSettings, generate
from changeanywhere_qgis.engine.quality import psnr, ring_seam_score

REPO = Path(__file__).resolve().parents[1]
HOUSTON = {"label": REPO / "data" / "train" / "oem" / "labels" / "houston_16.tif",
           "image": REPO / "data" / "train" / "oem" / "images" / "houston_16.tif"}
SAMPLES = REPO / "changeanywhere_qgis" / "samples"
THREADS = 2
OBJECTS_PER_1024 = 2  # changed objects per 1024 x 1024 px block: "a few changed objects" on a map
OBJECT_PX = 48


def _mirrored(kind: str, size: int, path: Path) -> None:
    """A size x size raster of mirrored copies of the real 1024 px houston_16 label or image (the same copies, so the
    image lies on the label's grid)."""
    with rasterio.open(HOUSTON[kind]) as src:
        data, profile = src.read(), src.profile
    n = data.shape[1]
    profile.update(width=size, height=size, tiled=True, blockxsize=256, blockysize=256, compress="deflate")
    with rasterio.open(path, "w", **profile) as dst:
        for i in range(-(-size // n)):
            for j in range(-(-size // n)):
                block = data[:, :: -1 if i % 2 else 1, :: -1 if j % 2 else 1]
                h, w = min(n, size - i * n), min(n, size - j * n)
                dst.write(block[:, :h, :w], window=Window(j * n, i * n, w, h))


def _objects(label: Path, size: int, path: Path, seed: int = 5) -> int:
    """New buildings (squares of OBJECT_PX) at random places, OBJECTS_PER_1024 per 1024 px block, as GeoJSON polygons."""
    rng = np.random.default_rng(seed)
    with rasterio.open(label) as src:
        transform = src.transform
    features = []
    for bi in range(size // 1024):
        for bj in range(size // 1024):
            for _ in range(OBJECTS_PER_1024):
                r, c = bi * 1024 + int(rng.integers(100, 924)), bj * 1024 + int(rng.integers(100, 924))
                ring = [transform * (x, y) for x, y in ((c, r), (c + OBJECT_PX, r), (c + OBJECT_PX, r + OBJECT_PX), (c, r + OBJECT_PX), (c, r))]
                features.append({"type": "Feature", "properties": {"target": "building"},
                                 "geometry": {"type": "Polygon", "coordinates": [[list(p) for p in ring]]}})
    path.write_text(json.dumps({"type": "FeatureCollection", "features": features}))
    return len(features)


def _run(label: Path, image: Path, changes: Path, out: Path, model_dir: Path, steps: int, **settings) -> tuple[dict, float]:
    start = time.perf_counter()
    result = generate(label, out, ChangeSpec(vector=str(changes), class_field="target"), image=image, model=model_dir,
                      settings=GenerateSettings(steps=steps, seed=7, device="cpu", threads=THREADS, **settings))
    return result, time.perf_counter() - start


def _read(path: Path) -> np.ndarray:
    with rasterio.open(path) as src:
        return src.read()


def bench_inpaint(model_dir: Path, size: int = 4096, steps: int = 10) -> dict:
    """Full and inpaint side by side on a ``size`` px map (their seconds per megapixel and the ratio; ``steps`` DDIM steps:
    a full 4096 px run at the default 50 takes hours on 2 shared cores, and both modes' cost is proportional to the
    steps), the seams of both images, and the re-render's cost."""
    margin = DEFAULT_INPAINT_MARGIN_PX
    out: dict = {"steps": steps, "margin_px": margin, "objects_per_1024": OBJECTS_PER_1024, "object_px": OBJECT_PX}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        runs = {}
        for s in (size,):
            _mirrored("label", s, tmp / f"label{s}.tif")
            _mirrored("image", s, tmp / f"image{s}.tif")
            runs[s] = _objects(tmp / f"label{s}.tif", s, tmp / f"changes{s}.geojson")
        side = {}
        for mode in ("inpaint", "full"):
            result, seconds = _run(tmp / f"label{size}.tif", tmp / f"image{size}.tif", tmp / f"changes{size}.geojson",
                                   tmp / mode, model_dir, steps, post_event=mode)
            side[mode] = {"seconds": seconds, "seconds_per_megapixel": seconds / (size * size / 1e6), "tiles": result["tiles"],
                          "changed_fraction": result["changed_fraction"], **({"inpaint": result["inpaint"]} if mode == "inpaint" else {})}
        out["side_by_side"] = {"size": size, "objects": runs[size], **side,
                               "ratio": side["full"]["seconds_per_megapixel"] / side["inpaint"]["seconds_per_megapixel"]}
        # the seams around the change: the inpainted image, and the full one pasted in hard at the grown mask's edge
        image, mask = _read(tmp / f"image{size}.tif"), _read(tmp / "inpaint" / "change_mask.tif")[0]
        inpainted, full = _read(tmp / "inpaint" / "t2_image.tif"), _read(tmp / "full" / "t2_image.tif")
        distance = ndimage.distance_transform_edt(mask != 1)
        rings = tuple(range(margin // 4, margin + 6, 2))
        kept = distance >= margin
        out["seams"] = {"rings_px": [rings[0], rings[-1]],
                        "inpaint": ring_seam_score(inpainted, distance, rings, beyond=margin + 8),
                        "full_pasted_at_the_margin": ring_seam_score(np.where(distance < margin, full, image), distance, rings,
                                                                      beyond=margin + 8),
                        "real_image": ring_seam_score(image, distance, rings, beyond=margin + 8),
                        "kept_land_psnr_db": {"inpaint": psnr(inpainted[:, kept], image[:, kept]),
                                              "full": psnr(full[:, kept], image[:, kept])}}
        # the re-render: the kept land's PSNR against the real image, and the tile-steps, on the bundled 512 px sample
        out["rerender"] = []
        for strength in (0.0, 0.1, 0.2, 0.4):
            result, seconds = _run(SAMPLES / "houston_label.tif", SAMPLES / "houston_image.tif", SAMPLES / "houston_changes.geojson",
                                   tmp / f"r{strength}", model_dir, steps, post_event="inpaint", rerender_strength=strength)
            post, real = _read(tmp / f"r{strength}" / "t2_image.tif"), _read(SAMPLES / "houston_image.tif")[:3]
            kept = ndimage.distance_transform_edt(_read(tmp / f"r{strength}" / "change_mask.tif")[0] != 1) >= margin
            out["rerender"].append({"strength": strength, "kept_land_psnr_db": psnr(post[:, kept], real[:, kept]),
                                    "tile_steps": result["inpaint"]["denoiser_tile_steps"],
                                    "full_tile_steps": result["inpaint"]["full_tile_steps"], "seconds": seconds})
    return out


def render_inpaint(r: dict) -> list[str]:
    s, seams = r["side_by_side"], r["seams"]
    psnr_text = lambda v: "identical" if v >= 100 else f"{v:.1f} dB"  # noqa: E731 (psnr caps identical pixels at 100)
    lines = ["## Inpainting: cost follows the change", "",
             f"`generate --post-event inpaint` against `full` ({r['steps']} DDIM steps, pre-event image real, margin "
             f"{r['margin_px']} px) on mirrored copies of the real houston_16 map and image with {r['objects_per_1024']} new "
             f"buildings of {r['object_px']} px per 1024x1024 px block, drawn as polygons (`python -m benchmarks.run --only "
             f"inpaint`, `benchmarks/inpaint_bench.py`). The two modes ran side by side on {s['size']}x{s['size']} px, "
             f"{r['steps']} steps rather than the default 50 (a full run of this map at 50 takes hours on these 2 shared "
             "cores; both modes' network calls grow with the steps alike).", "",
             "| map | mode | changed objects | denoiser tile-steps | s | s per megapixel |", "| --- | --- | --- | --- | --- | --- |",
             f"| {s['size']}² | full | {s['objects']} | {s['full']['tiles'] * r['steps']} | {s['full']['seconds']:.0f} | {s['full']['seconds_per_megapixel']:.1f} |",
             f"| {s['size']}² | inpaint | {s['objects']} | {s['inpaint']['inpaint']['denoiser_tile_steps']} | {s['inpaint']['seconds']:.0f} | {s['inpaint']['seconds_per_megapixel']:.1f} |",
             "", f"**Inpainting is {s['ratio']:.1f}x as fast per megapixel as a full run** on the same map and change "
             f"({100 * s['inpaint']['changed_fraction']:.2f} % of the land changed) and "
             f"{s['full']['tiles'] * r['steps'] / s['inpaint']['inpaint']['denoiser_tile_steps']:.1f}x fewer denoiser calls "
             f"({s['inpaint']['inpaint']['tiles_sampled']} of {s['full']['tiles']} tiles run; the rest of the time: encoding, "
             f"decoding and writing the {s['size']} px images, and this shared machine's load, not the same in both runs). Its cost "
             "is the tiles near the change, and a map without change costs no network call.", "",
             f"Seams around the change (`ring_seam_score` in `engine/quality/seams.py`): per ring at a distance from the "
             "change, the mean pixel jump across it over the mean jump between pixels beyond the margin (1: the ring cannot "
             f"be told from the image's own edges). The model draws up to {r['margin_px'] // 2} px from the change and fades "
             f"into the real image up to {r['margin_px']} px; the second column pastes the full run's image in hard at "
             f"{r['margin_px']} px (inside that, it is the full image itself: what the model's own drawing gives there).", "",
             "| ring (px from the change) | inpainted | full, pasted in at the margin's edge | the real image |",
             "| --- | --- | --- | --- |"]
    rings = {int(float(k)): k for k in seams["inpaint"]["rings"]}
    for px in sorted(rings)[::2]:
        k = rings[px]
        lines.append(f"| {px} | {seams['inpaint']['rings'][k]['ratio']:.2f} | "
                     f"{seams['full_pasted_at_the_margin']['rings'][k]['ratio']:.2f} | {seams['real_image']['rings'][k]['ratio']:.2f} |")
    lines += ["", "Near the new objects both model images jump more than this real image does (the model's own drawing "
              "there, in the full image as much); across the fade the inpainted image falls to the real image's level with "
              f"no peak, where the hard paste shows its seam. Kept land against the real image: inpainted "
              f"{psnr_text(seams['kept_land_psnr_db']['inpaint'])}, full {psnr_text(seams['kept_land_psnr_db']['full'])}.", "",
             "Re-rendering the kept land (`--rerender-strength`), on the bundled 512 px sample and its drawn change:", "",
             "| strength | kept land's PSNR against the real image | denoiser tile-steps (full run) | s |", "| --- | --- | --- | --- |"]
    lines += [f"| {x['strength']:g} | {psnr_text(x['kept_land_psnr_db'])} | {x['tile_steps']} ({x['full_tile_steps']}) | {x['seconds']:.0f} |"
              for x in r["rerender"]]
    return lines + [""]

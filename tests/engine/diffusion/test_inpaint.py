"""--post-event inpaint (diffusion/inpaint.py): the pre-event image kept pixel for pixel beyond the change grown by the
margin, no seam where the drawn land fades into it, and no network call for a tile the grown mask does not touch."""

from __future__ import annotations

import importlib
import json

import numpy as np
import pytest
import rasterio
from scipy import ndimage

from changeanywhere_qgis.engine.diffusion import change_pair, inpaint_region, plan
from changeanywhere_qgis.engine.errors import InputError
from changeanywhere_qgis.engine.pipeline import ChangeSpec, GenerateSettings, generate
from changeanywhere_qgis.engine.quality import ring_seam_score

SAMPLER = importlib.import_module("changeanywhere_qgis.engine.diffusion.sampler")

MARGIN = 16  # px: 4 latent cells of the tiny model (factor 4, 64 px tiles)


@pytest.fixture(scope="module")
def scene():
    """A 256 px window of the bundled sample with two changed objects far from the window's right and lower parts."""
    from pathlib import Path

    samples = Path(__file__).resolve().parents[3] / "changeanywhere_qgis" / "samples"
    with rasterio.open(samples / "houston_image.tif") as src:
        image = src.read((1, 2, 3), window=((0, 256), (0, 256)))
    with rasterio.open(samples / "houston_label.tif") as src:
        labels = src.read(1, window=((0, 256), (0, 256)))
    post = labels.copy()
    post[20:50, 24:60] = 8
    post[70:90, 80:100] = 5
    return image, labels, post, (post != labels).astype(np.uint8)


def _beyond(mask: np.ndarray, margin: int) -> np.ndarray:
    return ndimage.distance_transform_edt(mask != 1) >= margin


def _pair(pkg, scene, **kw):
    image, labels, post, mask = scene
    return change_pair(pkg, labels, post, mask, 0.9, np.random.default_rng(3), steps=3, inpaint_margin_px=MARGIN, **kw)


@pytest.mark.parametrize("pre_event", ["real", "redrawn", None], ids=["real", "redrawn", "generated"])
def test_beyond_the_grown_mask_the_post_event_image_is_the_pre_event_image(pkg, scene, pre_event):
    image, _, _, mask = scene
    t1, t2 = _pair(pkg, scene, image=None if pre_event is None else image, pre_event=pre_event or "real", post_event="inpaint")
    kept = _beyond(mask, MARGIN)
    assert np.array_equal(t2[:, kept], t1[:, kept])
    assert (t2[:, mask == 1] != t1[:, mask == 1]).mean() > 0.5  # the change is drawn
    _, full = _pair(pkg, scene, image=None if pre_event is None else image, pre_event=pre_event or "real")
    assert (full[:, kept] != t1[:, kept]).mean() > 0.5  # what "full" gives there: the decoder's image


def test_a_re_render_changes_the_kept_land_by_its_strength(pkg, scene):
    image, _, _, mask = scene
    kept = _beyond(mask, MARGIN)
    differ = [np.abs(_pair(pkg, scene, image=image, post_event="inpaint", rerender_strength=r)[1][:, kept].astype(int)
                     - image[:, kept]).mean() for r in (0.0, 1 / 3, 1.0)]
    assert differ[0] == 0 < differ[1] and differ[1] > 0


def test_no_seam_where_the_drawn_land_fades_into_the_kept_land(pkg, scene):
    """Across the margin's rings the jumps stay those of the real image elsewhere; a hard paste of the drawn image at the
    grown mask's edge is what the measure calls a seam."""
    image, _, _, mask = scene
    _, t2 = _pair(pkg, scene, image=image, post_event="inpaint")
    _, full = _pair(pkg, scene, image=image)
    distance = ndimage.distance_transform_edt(mask != 1)
    rings = tuple(range(MARGIN // 2, MARGIN + 4))
    inpainted = ring_seam_score(t2, distance, rings, beyond=MARGIN + 8)
    pasted = ring_seam_score(np.where(distance < MARGIN, full, image), distance, rings, beyond=MARGIN + 8)
    assert inpainted["worst"] < 1.5, inpainted
    assert pasted["worst"] > 2.0, pasted


def test_no_tile_the_grown_mask_does_not_touch_is_run(pkg, scene, monkeypatch):
    """Every network call is counted by the tile: the denoiser runs only the tiles near the change, for every step, and
    the autoencoder only around them; the tiles left out are exactly those the grown mask does not touch."""
    image, labels, post, mask = scene
    calls = {"denoise": 0, "encode": 0, "decode": 0}
    for name, method in (("denoise", "denoise_with"), ("encode", "encode"), ("decode", "decode")):
        original = getattr(pkg, method)
        monkeypatch.setattr(pkg, method, lambda x, *a, _n=name, _o=original, **k: (calls.__setitem__(_n, calls[_n] + len(x)), _o(x, *a, **k))[1])
    steps = 3
    p = plan(pkg, *labels.shape, steps)
    region = inpaint_region(pkg, p, mask, MARGIN)
    grown = ndimage.maximum_filter((mask == 1).reshape(64, 4, 64, 4).any(axis=(1, 3)).astype(np.uint8),
                                   size=2 * (MARGIN // 4) + 1, mode="constant") > 0
    touched = [t for t in p.grid.tiles if grown[t.slices].any()]
    assert region.tiles == tuple(touched) and 0 < len(touched) < p.tiles
    ran = set()  # every tile the sampler and the encoder fuse: the tiles whose network calls ran
    original_fuse = SAMPLER.fuse
    monkeypatch.setattr(SAMPLER, "fuse", lambda grid, batches, *a, **k: (ran.update(t for b in batches for t in b),
                                                                          original_fuse(grid, batches, *a, **k))[1])
    change_pair(pkg, labels, post, mask, 0.9, np.random.default_rng(3), image=image, steps=steps, post_event="inpaint",
                inpaint_margin_px=MARGIN)
    assert ran == set(touched)
    # each touched tile runs from the step its first cell is drawn at (the margin's last cells: the last steps only)
    assert len(touched) < calls["denoise"] == region.sampled_tiles(p, steps) <= len(touched) * steps
    assert (calls["encode"], calls["decode"]) == (len(touched), len(touched))
    for key in calls:
        calls[key] = 0
    change_pair(pkg, labels, post, mask, 0.9, np.random.default_rng(3), image=image, steps=steps)
    assert calls == {"denoise": p.tiles * steps, "encode": p.tiles, "decode": p.tiles}  # full: every tile


def test_an_unchanged_map_costs_no_network_call(pkg, scene, monkeypatch):
    image, labels, _, _ = scene
    monkeypatch.setattr(pkg, "denoise_with", lambda *a, **k: pytest.fail("the denoiser ran"))
    t1, t2 = change_pair(pkg, labels, labels, np.zeros_like(labels), 0.9, np.random.default_rng(3), image=image, steps=2,
                         post_event="inpaint")
    assert np.array_equal(t2, image)


def test_generate_keeps_the_image_and_records_the_run_in_memory_and_by_window(tmp_path, tiny_model_dir, houston_label_path,
                                                                             houston_image_path, force_large_maps):
    """The command's path: pixel-exact beyond the margin, sample.json says how; a large map's windowed path (scratch
    files, file canvases) gives the same bytes."""
    settings = GenerateSettings(steps=2, seed=4, device="cpu", threads=2, post_event="inpaint", inpaint_margin_px=MARGIN)
    record = generate(houston_label_path, tmp_path / "a", ChangeSpec(random=True), image=houston_image_path, model=tiny_model_dir,
                      settings=settings)
    with rasterio.open(houston_image_path) as src, rasterio.open(tmp_path / "a" / "t2_image.tif") as t2, \
            rasterio.open(tmp_path / "a" / "change_mask.tif") as m:
        image, post, mask = src.read((1, 2, 3)), t2.read(), m.read(1)
    kept = _beyond(mask, MARGIN)
    assert kept.any() and np.array_equal(post[:, kept], image[:, kept])
    saved = json.loads((tmp_path / "a" / "sample.json").read_text())
    assert saved["post_event"] == record["post_event"] == "inpaint"
    assert saved["inpaint"]["margin_px"] == MARGIN and saved["inpaint"]["rerender_strength"] == 0.0
    assert saved["inpaint"]["tiles_sampled"] <= saved["inpaint"]["denoiser_tile_steps"] <= saved["inpaint"]["tiles_sampled"] * 2
    assert saved["inpaint"]["full_tile_steps"] == saved["inpaint"]["tiles"] * 2
    made = force_large_maps()
    generate(houston_label_path, tmp_path / "b", ChangeSpec(random=True), image=houston_image_path, model=tiny_model_dir,
             settings=settings)
    assert made  # the windowed path ran
    with rasterio.open(tmp_path / "b" / "t2_image.tif") as t2:
        assert np.array_equal(t2.read(), post)
    full = generate(houston_label_path, tmp_path / "c", ChangeSpec(random=True), image=houston_image_path, model=tiny_model_dir,
                    settings=GenerateSettings(steps=2, seed=4, device="cpu", threads=2))
    assert full["post_event"] == "full" and "inpaint" not in full


@pytest.mark.parametrize("kw, message", [
    ({"post_event": "paste"}, "'full'.*'inpaint'"),
    ({"post_event": "inpaint", "inpaint_margin_px": -1}, "margin"),
    ({"post_event": "inpaint", "rerender_strength": 1.5}, "re-render strength"),
    ({"post_event": "inpaint", "dates": 3}, "series"),
])
def test_bad_settings_are_refused_by_name(kw, message):
    with pytest.raises(InputError, match=message):
        GenerateSettings(**kw).check()


def test_a_style_applies_to_the_kept_land_too(pkg, scene):
    """--style on top of inpainting: the colour match moves the whole post-event image, kept land included; at strength
    0 the kept land is the pre-event image again."""
    from pathlib import Path

    from changeanywhere_qgis.engine.diffusion import load_style
    from changeanywhere_qgis.engine.io import read_style_image

    image, _, _, mask = scene
    style_image = read_style_image(Path(__file__).resolve().parents[3] / "changeanywhere_qgis" / "samples" / "houston_image.tif")
    kept = _beyond(mask, MARGIN)
    for strength, differs in ((1.0, True), (0.0, False)):
        t1, t2 = _pair(pkg, scene, image=image, post_event="inpaint", style=load_style(pkg, style_image, strength))
        assert (not np.array_equal(t2[:, kept], t1[:, kept])) == differs


def test_prediction_mixing_inpaints_as_latent_mixing_does_at_the_same_cost(pkg, scene, monkeypatch):
    """--mixing prediction in the inpainting mode: the pre-event image kept beyond the grown mask, the change drawn,
    no seam, and the same tiles run at the same steps (the pinned cells' predictions need no network call)."""
    image, labels, post, mask = scene
    calls = []
    original = pkg.denoise_with
    monkeypatch.setattr(pkg, "denoise_with", lambda x, t, c: (calls.append((len(x), int(t[0]))), original(x, t, c))[1])
    t1, t2 = _pair(pkg, scene, image=image, post_event="inpaint", mixing="prediction")
    held = list(calls)
    calls.clear()
    _, latent_mixed = _pair(pkg, scene, image=image, post_event="inpaint", mixing="latent")
    kept = _beyond(mask, MARGIN)
    assert np.array_equal(t2[:, kept], t1[:, kept])
    assert (t2[:, mask == 1] != t1[:, mask == 1]).mean() > 0.5
    assert not np.array_equal(t2, latent_mixed)  # the mixing did change how the change was drawn
    assert held == calls
    distance = ndimage.distance_transform_edt(mask != 1)
    assert ring_seam_score(t2, distance, tuple(range(MARGIN // 2, MARGIN + 4)), beyond=MARGIN + 8)["worst"] < 1.5

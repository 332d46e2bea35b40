"""--style: the post-event image takes a real style image's appearance (bundled model), strength 0 is no style byte for
byte, bad style images are refused before anything is written, and a large raster's file canvases give the same bytes."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
import rasterio

from changeanywhere_qgis.engine.diffusion import encode, latent_statistics, load_model_package, load_style, plan, restyle, to_model_range
from changeanywhere_qgis.engine.errors import InputError
from changeanywhere_qgis.engine.io import read_style_image
from changeanywhere_qgis.engine.pipeline import ChangeSpec, GenerateSettings, generate
from changeanywhere_qgis.engine.progress import Progress

REPO = Path(__file__).resolve().parents[3]
SAMPLES = REPO / "changeanywhere_qgis" / "samples"
# Real post-event images of other places, dates and sensors: a dark LEVIR-CD scene and a WHU-CD one.
DARK_STYLE = REPO / "data" / "levir-cd" / "B" / "test_12_0512_0768.png"
WHU_STYLE = REPO / "data" / "whu-cd" / "B" / "000121_0512_0512.png"


def _generate(houston_label_path, houston_image_path, out, model=None, steps=3, **settings):
    return generate(houston_label_path, out, ChangeSpec(random=True), image=houston_image_path, model=model,
                    settings=GenerateSettings(steps=steps, seed=3, device="cpu", correlation=0.8, **settings))


def _pixels(path) -> np.ndarray:
    return read_style_image(path).pixels.reshape(3, -1).astype(np.float64)  # a 512 px sample and 256 px styles: whole


def _digests(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir()) if p.name != "sample.json"}


@pytest.fixture(scope="module")
def bundled_runs(tmp_path_factory):
    """The bundled model on the real sample: no style, and each real style image."""
    root = tmp_path_factory.mktemp("style")
    label, image = SAMPLES / "houston_label.tif", SAMPLES / "houston_image.tif"
    runs = {"none": _generate(label, image, root / "none")}
    for name, style in (("dark", DARK_STYLE), ("whu", WHU_STYLE)):
        runs[name] = _generate(label, image, root / name, style=str(style))
    return runs


@pytest.mark.parametrize("name,style", [("dark", DARK_STYLE), ("whu", WHU_STYLE)])
def test_the_post_event_image_takes_the_style_images_colours(bundled_runs, name, style):
    target = _pixels(style)
    plain, styled = (_pixels(bundled_runs[run]["outputs"]["t2_image.tif"]) for run in ("none", name))
    mean_before = np.abs(plain.mean(axis=1) - target.mean(axis=1)).mean()
    mean_after = np.abs(styled.mean(axis=1) - target.mean(axis=1)).mean()
    std_before = np.abs(plain.std(axis=1) - target.std(axis=1)).mean()
    std_after = np.abs(styled.std(axis=1) - target.std(axis=1)).mean()
    assert mean_before > 4 and mean_after < 0.25 * mean_before, (mean_before, mean_after)
    assert std_after < std_before, (std_before, std_after)
    # the pre-event image and the maps are untouched
    assert _pixels(bundled_runs[name]["outputs"]["t1_image.tif"]).tobytes() == \
        _pixels(bundled_runs["none"]["outputs"]["t1_image.tif"]).tobytes()


def test_sample_json_records_the_style(bundled_runs):
    record = json.loads(Path(bundled_runs["dark"]["outputs"]["sample.json"]).read_text())["style"]
    assert record["path"] == str(DARK_STYLE) and record["strength"] == 1.0
    assert record["sha256"] == hashlib.sha256(DARK_STYLE.read_bytes()).hexdigest()
    for key in ("style_latent", "post_event_latent", "style_pixels", "post_event_pixels"):
        assert len(record[key]["mean"]) == 3 and all(s > 0 for s in record[key]["std"]), key
    assert "style" not in json.loads(Path(bundled_runs["none"]["outputs"]["sample.json"]).read_text())


def test_the_latent_takes_the_style_latents_statistics_blended_by_the_strength():
    pkg = load_model_package(None, "cpu")
    houston = REPO / "changeanywhere_qgis" / "samples" / "houston_image.tif"
    source = load_style(pkg, read_style_image(houston))
    pixels = read_style_image(WHU_STYLE).pixels
    p = plan(pkg, *pixels.shape[1:], 1)
    latent = encode(pkg, lambda r, c, h, w: to_model_range(pixels[:, r:r + h, c:c + w]), p.coder_grid, p.coder_settings,
                    Progress(), p.canvases)
    before = latent_statistics(latent)
    for strength in (1.0, 0.5):
        style = load_style(pkg, read_style_image(houston), strength)
        out, seen = restyle(latent, style)
        assert seen == before and out is not latent
        after = latent_statistics(out)
        want_mean = np.add(before.mean, strength * (np.subtract(source.statistics.mean, before.mean)))
        want_std = np.add(before.std, strength * (np.subtract(source.statistics.std, before.std)))
        np.testing.assert_allclose(after.mean, want_mean, atol=1e-4)
        np.testing.assert_allclose(after.std, want_std, rtol=1e-4)
    assert latent_statistics(latent) == before  # the input is left as it was


def test_strength_zero_is_no_style_byte_for_byte(houston_label_path, houston_image_path, tiny_model_dir, tmp_path):
    _generate(houston_label_path, houston_image_path, tmp_path / "none", tiny_model_dir)
    result = _generate(houston_label_path, houston_image_path, tmp_path / "zero", tiny_model_dir, style=str(WHU_STYLE),
                       style_strength=0.0)
    _generate(houston_label_path, houston_image_path, tmp_path / "half", tiny_model_dir, style=str(WHU_STYLE),
              style_strength=0.5)
    assert _digests(tmp_path / "zero") == _digests(tmp_path / "none")
    assert _digests(tmp_path / "half")["t2_image.tif"] != _digests(tmp_path / "none")["t2_image.tif"]
    assert result["style"]["strength"] == 0.0 and result["style"]["post_event_pixels"] is None


@pytest.mark.parametrize("dates", [2, 3])
def test_the_colour_matchs_decode_is_counted_in_the_progress(dates, houston_label_path, houston_image_path, tiny_model_dir,
                                                             tmp_path):
    """The colour match decodes each styled image once more: the total counts it, and the bar ends at its total."""
    def run(name, **style):
        progress = Progress()
        result = generate(houston_label_path, tmp_path / name, ChangeSpec(random=True), image=houston_image_path,
                          model=tiny_model_dir, progress=progress,
                          settings=GenerateSettings(steps=3, seed=3, device="cpu", correlation=0.8, dates=dates, **style))
        assert progress.done == progress.total
        return progress.total, result

    plain, _ = run("plain")
    styled, result = run("styled", style=str(WHU_STYLE))
    assert styled - plain == (dates - 1) * result["tiles"]  # one decode pass of the raster's tiles per styled date


def test_the_large_map_path_gives_the_same_bytes(houston_label_path, houston_image_path, tiny_model_dir, tmp_path, force_large_maps):
    _generate(houston_label_path, houston_image_path, tmp_path / "memory", tiny_model_dir, style=str(DARK_STYLE),
              style_strength=0.7)
    made = force_large_maps()
    on_disk = _generate(houston_label_path, houston_image_path, tmp_path / "disk", tiny_model_dir, style=str(DARK_STYLE),
                        style_strength=0.7)
    assert any("styled" in p.name for p in made), made  # the restyled latent was a file canvas
    assert _digests(tmp_path / "disk") == _digests(tmp_path / "memory")
    memory = json.loads((tmp_path / "memory" / "sample.json").read_text())["style"]
    assert on_disk["style"]["style_latent"] == memory["style_latent"]
    for key in ("post_event_latent", "post_event_pixels"):  # sums taken chunk by chunk: equal to rounding
        for stat in ("mean", "std"):
            np.testing.assert_allclose(on_disk["style"][key][stat], memory[key][stat], rtol=1e-9)


def _float_copy(src: Path, dst: Path) -> Path:
    with rasterio.open(src) as ds:
        profile = {**ds.profile, "dtype": "float32"}
        with rasterio.open(dst, "w", **profile) as out:
            out.write(ds.read().astype(np.float32))
    return dst


def _crop(src: Path, dst: Path, size: int) -> Path:
    with rasterio.open(src) as ds:
        with rasterio.open(dst, "w", **{**ds.profile, "width": size, "height": size}) as out:
            out.write(ds.read(window=rasterio.windows.Window(0, 0, size, size)))
    return dst


def _transparent(src: Path, dst: Path) -> Path:
    with rasterio.open(src) as ds:
        rgb = ds.read((1, 2, 3))
        profile = {**ds.profile, "count": 4, "photometric": "RGB", "alpha": "YES"}
    with rasterio.open(dst, "w", **profile) as out:
        out.write(rgb, (1, 2, 3))
        out.write(np.zeros(rgb.shape[1:], np.uint8), 4)
        from rasterio.enums import ColorInterp

        out.colorinterp = [ColorInterp.red, ColorInterp.green, ColorInterp.blue, ColorInterp.alpha]
    return dst


@pytest.mark.parametrize("bad,words", [
    (lambda t, s: t / "missing.tif", "does not exist"),
    (lambda t, s: t, "is a folder"),
    (lambda t, s: s / "houston_label.tif", "band(s); it needs 3"),
    (lambda t, s: _float_copy(s / "houston_image.tif", t / "float.tif"), "8-bit RGB"),
    (lambda t, s: _crop(s / "houston_image.tif", t / "tiny.tif", 32), "at least 64x64"),
    (lambda t, s: _transparent(s / "houston_image.tif", t / "clear.tif"), "opaque pixels"),
    (lambda t, s: s / "houston_changes.geojson", "cannot be read as a raster"),
])
def test_bad_style_images_are_refused_before_anything_is_written(bad, words, houston_label_path, houston_image_path,
                                                                 tiny_model_dir, tmp_path):
    inputs = tmp_path / "inputs"
    inputs.mkdir()
    style = bad(inputs, SAMPLES)
    with pytest.raises(InputError, match="Style image") as error:
        _generate(houston_label_path, houston_image_path, tmp_path / "out", tiny_model_dir, style=str(style))
    assert words in str(error.value)
    assert not (tmp_path / "out").exists() and sorted(p.name for p in tmp_path.iterdir()) == ["inputs"]


@pytest.mark.parametrize("strength", [-0.1, 1.5, "1", True])
def test_a_strength_outside_0_to_1_is_refused(strength, houston_label_path, tiny_model_dir, tmp_path):
    with pytest.raises(InputError, match="style strength must be a number from 0"):
        _generate(houston_label_path, None, tmp_path / "out", tiny_model_dir, style=str(WHU_STYLE), style_strength=strength)
    assert not (tmp_path / "out").exists()


def test_statistics_cover_the_raster_not_the_padding_in_memory_and_in_files(tmp_path, monkeypatch):
    from changeanywhere_qgis.engine.diffusion import LatentCanvases
    from changeanywhere_qgis.engine.diffusion import canvas as canvas_module

    pkg = load_model_package(None, "cpu")
    pixels = read_style_image(WHU_STYLE).pixels[:, :200, :180]  # a 200 x 180 px raster on a 208 x 192 px canvas
    p = plan(pkg, 200, 180, 1)
    padded = np.pad(pixels, ((0, 0), (0, p.canvas[0] - 200), (0, p.canvas[1] - 180)), mode="symmetric")
    latent = encode(pkg, lambda r, c, h, w: to_model_range(padded[:, r:r + h, c:c + w]), p.coder_grid, p.coder_settings,
                    Progress(), p.canvases)
    cells = (50, 45)
    inside = latent[:, :50, :45].reshape(3, -1).astype(np.float64)
    want = (inside.mean(axis=1), inside.std(axis=1))
    in_memory = latent_statistics(latent, None, cells)
    files = LatentCanvases(3, latent.shape[1:], tmp_path)
    on_disk = files.canvas("latent")
    on_disk[:, :, :] = latent
    monkeypatch.setattr(canvas_module, "CHUNK_CELLS", 7 * latent.shape[2])  # bands of 7 rows: one ends past the raster
    from_files = latent_statistics(on_disk, files, cells)
    for stats in (in_memory, from_files):
        np.testing.assert_allclose(stats.mean, want[0], rtol=1e-9)
        np.testing.assert_allclose(stats.std, want[1], rtol=1e-9)
    whole = latent.reshape(3, -1).astype(np.float64).mean(axis=1)
    assert np.abs(whole - want[0]).max() > 1e-4  # the padding would have counted

"""A large raster's latent canvases are files in the output's temporary folder, stepped window by window
(engine/diffusion/canvas.py). Forced onto the bundled sample (every map counts as large, and the pointwise updates
work in bands of a few rows), generate writes the same bytes as with the canvases in memory, for each solver, with
DDIM's noise (eta > 0) and with a real image; and the files are gone after a run, an error and a cancel."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest

from changeanywhere_qgis.engine import pipeline
from changeanywhere_qgis.engine.diffusion import canvas
from changeanywhere_qgis.engine.errors import Cancelled
from changeanywhere_qgis.engine.io import scratch
from changeanywhere_qgis.engine.pipeline import ChangeSpec, GenerateSettings
from changeanywhere_qgis.engine.progress import Progress

VARIANTS = {
    "ddim-eta": dict(sampler="ddim", eta=0.5),
    "dpmpp-2m": dict(sampler="dpmpp-2m"),
    "image-redrawn": dict(image=True, pre_event="redrawn"),
    "image-real": dict(image=True, pre_event="real"),
}


def _digests(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir()) if p.suffix == ".tif"}


def _generate(out, houston_label_path, houston_image_path, tiny_model_dir, progress=None, image=False, **settings):
    return pipeline.generate(houston_label_path, out, ChangeSpec(random=True), model=tiny_model_dir,
                             image=houston_image_path if image else None, progress=progress,
                             settings=GenerateSettings(steps=3, seed=11, device="cpu", correlation=0.8, **settings))


@pytest.fixture()
def force_files(monkeypatch):
    """force() -> the latent files made from then on: every map counts as large (its arrays and its latent canvases
    in files), the pointwise updates in bands of 8 rows."""
    made = []
    original = scratch.ScratchRaster.__init__

    def counted(self, *args, **kw):
        original(self, *args, **kw)
        if "latent" in self.path.parts:
            made.append(self.path)

    def force():
        monkeypatch.setattr(scratch, "SCRATCH_PIXELS", 0)
        monkeypatch.setattr(canvas, "CHUNK_CELLS", 8 * 128)  # the sample's latent is 128 cells wide
        monkeypatch.setattr(scratch.ScratchRaster, "__init__", counted)
        return made

    return force


@pytest.mark.parametrize("variant", VARIANTS)
def test_latent_files_give_the_same_images(variant, force_files, houston_label_path, houston_image_path, tiny_model_dir, tmp_path):
    kw = VARIANTS[variant]
    in_memory = _generate(tmp_path / "memory", houston_label_path, houston_image_path, tiny_model_dir, **kw)
    made = force_files()
    on_disk = _generate(tmp_path / "disk", houston_label_path, houston_image_path, tiny_model_dir, **kw)
    # the pre- and post-event latents, each run's prediction (and history), the unchanged cells: 3 channels a canvas
    assert len(made) >= 3 * 3 + 1, made
    assert all(".scratch" in p.parts and not p.exists() for p in made)  # in the temporary folder, gone with it
    assert sorted(p.name for p in tmp_path.iterdir()) == ["disk", "memory"]
    memory, disk = _digests(tmp_path / "memory"), _digests(tmp_path / "disk")
    assert len(memory) == 5 and disk == memory
    assert on_disk["events"] == in_memory["events"]


def test_a_canvas_of_files_holds_the_draws_of_one_whole_array(tmp_path, monkeypatch):
    monkeypatch.setattr(canvas, "CHUNK_CELLS", 3 * 7)
    on_disk = canvas.LatentCanvases(3, (10, 7), tmp_path)
    assert [(c.channel, c.rows.start) for c in on_disk.chunks()][:5] == [(0, 0), (0, 3), (0, 6), (0, 9), (1, 0)]
    drawn = on_disk.normal(np.random.default_rng(4), "x")
    whole = np.random.default_rng(4).standard_normal((3, 10, 7), dtype=np.float32)
    np.testing.assert_array_equal(drawn[:, 0:10, 0:7], whole)
    np.testing.assert_array_equal(drawn[:, 2:9, 3:5], whole[:, 2:9, 3:5])
    canvas.LatentCanvases.discard(drawn)
    assert list(tmp_path.iterdir()) == []


class _FailAt(Progress):
    """Raises ``error`` when the post-event image starts: the pre-event latent's files exist by then."""

    def __init__(self, error: BaseException) -> None:
        super().__init__()
        self.error = error

    def stage(self, name: str) -> None:
        if name.startswith("generating the post-event"):
            raise self.error
        super().stage(name)


@pytest.mark.parametrize("error", [RuntimeError("onnxruntime failed"), Cancelled("cancelled")], ids=["error", "cancel"])
def test_latent_files_are_removed_after_an_error_or_a_cancel(error, force_files, houston_label_path, houston_image_path,
                                                            tiny_model_dir, tmp_path):
    latent_files = force_files()
    with pytest.raises(type(error)):
        _generate(tmp_path / "out", houston_label_path, houston_image_path, tiny_model_dir, progress=_FailAt(error))
    assert len(latent_files) >= 3 and not any(p.exists() for p in latent_files)
    assert list(tmp_path.iterdir()) == []

"""Resuming a dataset with other settings: the refusal names only the settings that differ, and --batch-size
(speed, not content) may change. The real Houston sample, the tiny model."""

from __future__ import annotations

from pathlib import Path

import pytest

from changeanywhere_qgis.engine.dataset import DatasetSettings, generate_dataset
from changeanywhere_qgis.engine.errors import InputError


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file() and not any(part.startswith(".") for part in p.relative_to(root).parts)
            and p.name not in ("dataset.json", "README.md")}  # these two record the batch size of the last run


def _make(out, model, semantic, count, **kw):
    settings = DatasetSettings(count=count, tile=kw.pop("tile", 128), steps=kw.pop("steps", 2), seed=3, **kw)
    return generate_dataset(semantic, out, settings, model=model, workers=1)


def test_a_refused_resume_names_only_the_settings_that_differ(tmp_path, tiny_model_dir, houston_label_path):
    out = tmp_path / "ds"
    _make(out, tiny_model_dir, houston_label_path, 2, tile=64)
    with pytest.raises(InputError) as caught:
        _make(out, tiny_model_dir, houston_label_path, 2, tile=64, steps=3, max_nodata=0.25)
    message = str(caught.value)
    assert "settings.max_nodata was 0.5, now 0.25; settings.steps was 2, now 3" in message
    for unchanged in ("'tile'", "levir", "sha256", "classes", "bareland"):
        assert unchanged not in message, message  # not the whole settings lists


def test_another_batch_size_resumes_and_makes_the_same_samples(tmp_path, tiny_model_dir, houston_label_path):
    resumed, whole = tmp_path / "resumed", tmp_path / "whole"
    _make(resumed, tiny_model_dir, houston_label_path, 2, batch_size=4)
    result = _make(resumed, tiny_model_dir, houston_label_path, 4, batch_size=1)  # 128 px tiles: 4 model tiles each
    assert result["skipped"] == 2 and result["generated"] == 2
    _make(whole, tiny_model_dir, houston_label_path, 4, batch_size=4)
    assert _files(resumed) == _files(whole)

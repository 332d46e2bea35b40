"""Resuming a dataset with other settings: the refusal names only the settings that differ, and --batch-size
(speed, not content) may change. The real Houston sample, the tiny model."""

from __future__ import annotations

import json
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
    assert 'To finish it, add --steps 2 (Processing: "Diffusion steps": 2)' in message  # a default check S2 may change
    for unchanged in ("'tile'", "levir", "sha256", "classes", "bareland"):
        assert unchanged not in message, message  # not the whole settings lists


def test_another_batch_size_resumes_and_makes_the_same_samples(tmp_path, tiny_model_dir, houston_label_path):
    resumed, whole = tmp_path / "resumed", tmp_path / "whole"
    _make(resumed, tiny_model_dir, houston_label_path, 2, batch_size=4)
    result = _make(resumed, tiny_model_dir, houston_label_path, 4, batch_size=1)  # 128 px tiles: 4 model tiles each
    assert result["skipped"] == 2 and result["generated"] == 2
    _make(whole, tiny_model_dir, houston_label_path, 4, batch_size=4)
    assert _files(resumed) == _files(whole)


def test_a_spec_of_before_the_options_resumes_byte_for_byte(tmp_path, tiny_model_dir, houston_label_path):
    """A dataset.json written before sampler, mixing, precision, post-event... existed holds none of their keys; it
    resumes under the values of before (LEGACY_SETTINGS, what the card's command names), whatever the defaults are now,
    into the same files a fresh run with those values makes."""
    from changeanywhere_qgis.engine.dataset import sample_maps
    from changeanywhere_qgis.engine.dataset.job import LEGACY_SETTINGS

    resumed, whole = tmp_path / "resumed", tmp_path / "whole"
    _make(resumed, tiny_model_dir, houston_label_path, 2, tile=64, **LEGACY_SETTINGS)
    path = resumed / "dataset.json"
    spec = json.loads(path.read_text())
    assert not set(LEGACY_SETTINGS) & set(spec["settings"])  # the legacy values are the spec of before: left out
    for key in LEGACY_SETTINGS:  # a spec that never had the keys, should a default have written one
        spec["settings"].pop(key, None)
    path.write_text(json.dumps(spec, indent=2))
    old = DatasetSettings(count=1, **{**LEGACY_SETTINGS, **spec["settings"]})
    assert old == DatasetSettings(count=1, tile=64, steps=2, seed=3, **LEGACY_SETTINGS)
    result = _make(resumed, tiny_model_dir, houston_label_path, 3, tile=64, **LEGACY_SETTINGS)
    assert result["skipped"] == 2 and result["generated"] == 1
    _make(whole, tiny_model_dir, houston_label_path, 3, tile=64, **LEGACY_SETTINGS)
    assert _files(resumed) == _files(whole)
    record = json.loads((resumed / "manifest.jsonl").read_text().splitlines()[0])
    pre, post, valid = sample_maps(resumed, record)
    assert pre.shape == post.shape == (64, 64) and valid.any()


@pytest.mark.parametrize("default, new_default, named", [
    ("DEFAULT_SAMPLER", "dpmpp-2m", "--sampler ddim"),
    ("DEFAULT_PRECISION", "int8", "--precision float32"), ("DEFAULT_POST_EVENT", "inpaint", "--post-event full")])
def test_the_card_s_command_keeps_a_dataset_s_setting_when_the_default_changes(flip_default, default, new_default, named):
    """Should a quality check change a default, the command on an older dataset's card still makes that dataset; and
    a dataset made at the new default no longer names the old value."""
    from changeanywhere_qgis.engine.dataset import card

    option, value = named.split()
    key = option[2:].replace("-", "_")
    spec = {"semantic": ["map.tif"], "images": [], "model": {"path": "model"},
            "settings": DatasetSettings(count=2, tile=64).recorded()}
    assert option not in card.dataset_command(spec, 2, ".")  # at today's default
    flip_default(default, new_default)  # wherever it is held by name (the card reads the post-event one through the engine)
    assert f" {named} " in card.dataset_command(spec, 2, ".")
    spec["settings"] = {**spec["settings"], key: new_default}
    assert f" {named} " not in card.dataset_command(spec, 2, ".")


def test_a_pair_dataset_of_before_an_inpaint_default_is_refused_with_the_flag_that_finishes_it(
        flip_default, tmp_path, tiny_model_dir, houston_label_path):
    """Should the usefulness test make "inpaint" the default, rerunning an older (full) pair dataset's command without
    --post-event is refused naming the flag that finishes it, and the resume with it finishes it. (The other defaults
    are the settings' field defaults, fixed at import: a monkeypatch cannot flip them for this test.)"""
    out = tmp_path / "ds"
    _make(out, tiny_model_dir, houston_label_path, 2, tile=64)  # today's default: full
    flip_default("DEFAULT_POST_EVENT", "inpaint")
    with pytest.raises(InputError, match=r"settings\.post_event was 'full', now 'inpaint'.*To finish it, add --post-event full "
                                         r"\(Processing: \"Post-event image\": full\)"):
        _make(out, tiny_model_dir, houston_label_path, 3, tile=64)
    result = _make(out, tiny_model_dir, houston_label_path, 3, tile=64, post_event="full")
    assert result["skipped"] == 2 and result["generated"] == 1


def test_a_series_dataset_resumes_under_an_inpaint_default(flip_default, tmp_path, tiny_model_dir, houston_label_path):
    """A series is drawn in full under either post-event default (inpainting makes pairs): a series dataset of today
    resumes under an "inpaint" default without --post-event, rather than being refused as inpainted series."""
    out = tmp_path / "series"
    _make(out, tiny_model_dir, houston_label_path, 2, tile=64, steps=1, dates=3)
    flip_default("DEFAULT_POST_EVENT", "inpaint")
    result = _make(out, tiny_model_dir, houston_label_path, 2, tile=64, steps=1, dates=3)
    assert result["skipped"] == 2 and result["generated"] == 0
    assert "post_event" not in json.loads((out / "dataset.json").read_text())["settings"]  # full: the spec of before

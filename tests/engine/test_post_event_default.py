"""The post-event mode's default, should the usefulness test flip it to "inpaint" (DEFAULT_POST_EVENT, diffusion/inpaint.py):
pairs are then inpainted and a series, which inpainting cannot make yet, is still drawn in full, while "inpaint" given
for a series stays a clear error; the card's command makes the dataset under either default. Each test flips the
default by monkeypatch, wherever it is held by name (tests/conftest.py: flip_default); the resume under another default:
tests/engine/dataset/test_resume_settings.py."""

from __future__ import annotations

import pytest

from changeanywhere_qgis.cli.main import build_parser
from changeanywhere_qgis.cli.options import post_event_settings
from changeanywhere_qgis.engine.dataset import DatasetSettings
from changeanywhere_qgis.engine.dataset.card import dataset_command
from changeanywhere_qgis.engine.diffusion import DEFAULT_POST_EVENT, resolve_post_event
from changeanywhere_qgis.engine.errors import InputError
from changeanywhere_qgis.engine.pipeline import GenerateSettings


@pytest.fixture()
def inpaint_default(flip_default):
    flip_default("DEFAULT_POST_EVENT", "inpaint")


def test_today_pairs_take_the_default_and_a_series_is_drawn_in_full():
    assert DEFAULT_POST_EVENT == "full"  # changes only by the usefulness test (docs/research/usefulness-checks.md)
    assert GenerateSettings().post_event == DatasetSettings(count=2).post_event == DEFAULT_POST_EVENT
    assert GenerateSettings(dates=3).post_event == DatasetSettings(count=2, dates=3).post_event == "full"
    assert resolve_post_event("inpaint", 2) == resolve_post_event("inpaint", 3) == "inpaint"  # a choice is kept


def test_under_an_inpaint_default_pairs_are_inpainted_and_a_series_drawn_in_full(inpaint_default):
    pair, series = GenerateSettings(), GenerateSettings(dates=3)
    assert (pair.post_event, series.post_event) == ("inpaint", "full")
    pair.check(), series.check()  # no "makes change pairs" refusal for a series the user never asked to inpaint
    pairs, series_ds = DatasetSettings(count=2), DatasetSettings(count=2, dates=3)
    assert (pairs.post_event, series_ds.post_event) == ("inpaint", "full")
    pairs.check(), series_ds.check()
    # dataset.json records what is made: the inpainting settings with inpaint, nothing (the spec of before) in full
    assert pairs.recorded()["post_event"] == "inpaint" and "inpaint_margin_px" in pairs.recorded()
    assert not {"post_event", "inpaint_margin_px"} & set(series_ds.recorded())


@pytest.mark.parametrize("flipped", [False, True])
def test_inpaint_given_for_a_series_is_still_refused(flip_default, flipped):
    if flipped:
        flip_default("DEFAULT_POST_EVENT", "inpaint")
    with pytest.raises(InputError, match=r"Inpainting \(--post-event inpaint\) makes change pairs; a series of 3 dates"):
        GenerateSettings(dates=3, post_event="inpaint").check()
    with pytest.raises(InputError, match=r"Inpainting \(--post-event inpaint\) makes change pairs; a dataset of series"):
        DatasetSettings(count=2, dates=3, post_event="inpaint").check()


def test_the_command_line_leaves_the_mode_to_the_engine(inpaint_default, capsys):
    """--post-event left out is None, the default for the dates; its help says both defaults."""
    parser = build_parser()
    for dates, made in (("2", "inpaint"), ("3", "full")):
        args = parser.parse_args(["dataset", "--semantic", "map.tif", "--count", "2", "--dates", dates, "--out", "ds"])
        assert args.post_event is None
        assert DatasetSettings(count=2, dates=int(dates), **post_event_settings(args)).post_event == made
    args = parser.parse_args(["dataset", "--semantic", "map.tif", "--count", "2", "--dates", "3", "--post-event", "inpaint",
                              "--out", "ds"])
    with pytest.raises(InputError, match="makes change pairs"):
        DatasetSettings(count=2, dates=3, **post_event_settings(args)).check()
    with pytest.raises(SystemExit):
        parser.parse_args(["dataset", "--help"])
    words = " ".join(capsys.readouterr().out.split())
    assert "(default inpaint for pairs; a series, --dates 3 and more, is drawn in full;" in words


def _spec(**settings) -> dict:
    return {"semantic": ["map.tif"], "images": [], "model": {"path": "model"},
            "settings": DatasetSettings(count=2, tile=64, **settings).recorded()}


def test_the_card_s_command_names_the_mode_unless_the_default_makes_it_for_those_dates(flip_default):
    full_pair, full_series = _spec(post_event="full"), _spec(dates=3)
    inpainted = _spec(post_event="inpaint", inpaint_margin_px=16)
    assert "--post-event" not in dataset_command(full_pair, 2, ".") + dataset_command(full_series, 2, ".")
    flip_default("DEFAULT_POST_EVENT", "inpaint")
    assert " --post-event full " in dataset_command(full_pair, 2, ".")  # no longer the pairs' default
    assert "--post-event" not in dataset_command(full_series, 2, ".")  # a series is drawn in full under either default
    for spec in (inpainted, _spec()):  # named with its margin either way, as today
        assert " --post-event inpaint --inpaint-margin " in dataset_command(spec, 2, ".")
    assert " --inpaint-margin 16 " in dataset_command(inpainted, 2, ".")

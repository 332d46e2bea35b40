"""The estimate before long work: sizes read as a user writes them, memory refused with the numbers, time from
a real timed call of the tiny model's graphs."""

from __future__ import annotations

import pytest

from changeanywhere_qgis.engine.errors import InputError
from changeanywhere_qgis.engine.diffusion import (PEAK_BYTES_PER_PIXEL, available_memory, check_memory, estimate_seconds,
                                                  load_model_package, parse_size)
from changeanywhere_qgis.engine.diffusion.estimate import pair_seconds, time_per_call


@pytest.mark.parametrize("text,expected", [("4G", 4 << 30), ("500M", 500 << 20), ("1.5 GiB", int(1.5 * (1 << 30))),
                                           ("2000000", 2_000_000), ("64kb", 64 << 10)])
def test_sizes_read_as_written(text, expected):
    assert parse_size(text) == expected


def test_a_size_that_is_not_one_is_an_input_error():
    with pytest.raises(InputError, match="write it as e.g. 4G"):
        parse_size("lots")


def test_memory_is_refused_with_the_numbers_and_passed_with_the_estimate():
    assert available_memory() > 0  # this machine reports its free memory (psutil or /proc/meminfo)
    estimate = check_memory(1000, 2000, "Generating", networks=300 << 20)
    # the whole process: what it holds now, the raster's arrays and the networks' working memory
    assert estimate.in_use > 50 << 20 and not estimate.limit_given
    assert estimate.needed == estimate.in_use + PEAK_BYTES_PER_PIXEL * 2_000_000 + (300 << 20)
    assert estimate.more == PEAK_BYTES_PER_PIXEL * 2_000_000 + (300 << 20)
    with pytest.raises(InputError, match=r"2000x1000 px raster needs about \d\.\d GB of memory at its peak \(the whole process: "
                                         r"[\d.]+ [MG]B in use now, 40 MB for the raster's arrays, 0\.3 GB for the networks' "
                                         r"working memory\), more than the 0\.5 GB allowed \(--max-memory\)"):
        check_memory(1000, 2000, "Generating", max_memory=500_000_000, networks=300 << 20)


def test_time_is_estimated_for_long_work_only(tiny_model_dir):
    pkg = load_model_package(tiny_model_dir, "cpu", 1)
    assert estimate_seconds(pkg, tiles=4, steps=10, batch_size=4, with_image=True) is None  # short: no timing call
    long_run = estimate_seconds(pkg, tiles=100, steps=50, batch_size=4, with_image=False)
    assert long_run is not None and long_run > 0
    assert estimate_seconds(pkg, tiles=100, steps=500, batch_size=4, with_image=False) > long_run


def test_every_decoder_pass_is_counted():
    """A redrawn pre-event image and a style's colour match each cost a decode pass; 3 batches, 10 denoiser calls."""
    per = {"denoiser": 0.5, "decoder": 2.0, "encoder": 1.0}
    assert pair_seconds(per, batches=3, denoiser_calls=10, decodes=3) - pair_seconds(per, 3, 10, 1) == pytest.approx(2 * 3 * 2.0)
    assert pair_seconds({"denoiser": 0.5, "decoder": 2.0}, 3, 10, 1) == pytest.approx(3 * (5.0 + 2.0))  # no image to encode


class _Calls:
    """The package, recording the tiles of each network call and the run options they were made with."""

    def __init__(self, pkg, device: str) -> None:
        self.pkg, self.device, self.tiles = pkg, device, []

    def __getattr__(self, name):
        return getattr(self.pkg, name)

    def releasing_memory(self):
        released = _Calls(self.pkg.releasing_memory(), self.device)
        released.tiles = self.tiles
        return released

    def denoise_with(self, latent, steps, condition):
        self.tiles.append(("denoiser", len(latent), self.pkg.release_memory))
        return self.pkg.denoise_with(latent, steps, condition)

    def decode(self, latent):
        self.tiles.append(("decoder", len(latent), self.pkg.release_memory))
        return self.pkg.decode(latent)


def test_the_estimate_times_the_full_batch_as_the_run_calls_it_and_keeps_no_arena(tiny_model_dir):
    """Timed as the run calls each graph (a full batch, the arena kept), after an untimed warm-up; the last timed call
    of each graph hands the arena back (issue #36: one tile with the arena handed back after each call took 1.6 to 4
    times the run's time)."""
    pkg = load_model_package(tiny_model_dir, "cpu", 1)
    calls = _Calls(pkg, "cpu")
    seconds = time_per_call(calls, 4, with_image=False)
    assert calls.tiles and all(tiles == 4 for _, tiles, _ in calls.tiles)
    for graph in ("denoiser", "decoder"):
        released = [r for g, _, r in calls.tiles if g == graph]
        assert len(released) >= 2 and released[-1] and not any(released[:-1]), calls.tiles
    assert set(seconds) == {"denoiser", "decoder"} and all(v > 0 for v in seconds.values())
    assert not pkg.release_memory  # the run's own package keeps its arena


def test_a_last_batch_short_of_tiles_costs_its_tiles_on_the_cpu(tiny_model_dir, monkeypatch):
    """9 tiles in batches of 4 cost 9 tiles' time on the CPU, not 3 full batches' (issue #36: the 512 px sample's
    estimate was a third too long for that alone); a GPU's last batch costs a whole one."""
    from changeanywhere_qgis.engine.diffusion import estimate

    monkeypatch.setattr(estimate, "time_per_call", lambda pkg, batch, with_image: {"denoiser": 4.0, "decoder": 8.0})
    monkeypatch.setattr(estimate, "LONG_WORK_TILE_CALLS", 0)
    pkg = load_model_package(tiny_model_dir, "cpu", 1)
    assert estimate.estimate_seconds(pkg, tiles=9, steps=2, batch_size=4, with_image=True) == pytest.approx(9 / 4 * (2 * 4.0 + 8.0))

"""The estimate before long work: sizes read as a user writes them, memory refused with the numbers, time from
a real timed call of the tiny model's graphs."""

from __future__ import annotations

import pytest

from changeanywhere_qgis.engine.errors import InputError
from changeanywhere_qgis.engine.diffusion import (PEAK_BYTES_PER_PIXEL, available_memory, check_memory, estimate_seconds,
                                                  load_model_package, parse_size)


@pytest.mark.parametrize("text,expected", [("4G", 4 << 30), ("500M", 500 << 20), ("1.5 GiB", int(1.5 * (1 << 30))),
                                           ("2000000", 2_000_000), ("64kb", 64 << 10)])
def test_sizes_read_as_written(text, expected):
    assert parse_size(text) == expected


def test_a_size_that_is_not_one_is_an_input_error():
    with pytest.raises(InputError, match="write it as e.g. 4G"):
        parse_size("lots")


def test_memory_is_refused_with_the_numbers_and_passed_with_the_estimate():
    assert available_memory() > 0  # this machine reports its free memory (psutil or /proc/meminfo)
    estimate = check_memory(1000, 2000, "Generating")
    assert estimate.needed == PEAK_BYTES_PER_PIXEL * 2_000_000 and not estimate.limit_given
    with pytest.raises(InputError, match=rf"2000x1000 px raster needs about {2 * PEAK_BYTES_PER_PIXEL} MB of memory, more than the 10 MB allowed"):
        check_memory(1000, 2000, "Generating", max_memory=10_000_000)


def test_time_is_estimated_for_long_work_only(tiny_model_dir):
    pkg = load_model_package(tiny_model_dir, "cpu", 1)
    assert estimate_seconds(pkg, tiles=4, steps=10, batch_size=4, with_image=True) is None  # short: no timing call
    long_run = estimate_seconds(pkg, tiles=100, steps=50, batch_size=4, with_image=False)
    assert long_run is not None and long_run > 0
    assert estimate_seconds(pkg, tiles=100, steps=500, batch_size=4, with_image=False) > long_run

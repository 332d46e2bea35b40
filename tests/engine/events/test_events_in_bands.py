"""Random events and change polygons work on the whole raster a band of rows at a time: the bands change no
result, and the memory they take per pixel stays well under what whole-raster temporaries took (18 B/px)."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest

from changeanywhere_qgis.engine.events import change_polygons, random_events
from changeanywhere_qgis.engine.events import random_objects


def _mirrored(labels: np.ndarray, reps: int) -> np.ndarray:
    row = np.concatenate([labels if i % 2 == 0 else labels[:, ::-1] for i in range(reps)], axis=1)
    return np.ascontiguousarray(np.concatenate([row if i % 2 == 0 else row[::-1] for i in range(reps)], axis=0))


def test_bands_of_rows_change_no_event(houston_label, oem_scheme, monkeypatch):
    labels = _mirrored(houston_label[0], 2)  # 1024 x 1024, the real sample mirrored
    whole = random_events(labels, oem_scheme, np.random.default_rng([4, 0]), nodata=0)
    monkeypatch.setattr(random_objects, "_ROWS_PIXELS", 37 * 1024)  # 37 rows a band: bands cut through objects
    banded = random_events(labels, oem_scheme, np.random.default_rng([4, 0]), nodata=0)
    assert len(whole.events) > 10
    assert [e.to_dict() for e in banded.events] == [e.to_dict() for e in whole.events]
    assert np.array_equal(banded.post, whole.post)


def test_random_events_take_a_bounded_memory_per_pixel(houston_label, oem_scheme):
    labels = _mirrored(houston_label[0], 4)  # 2048 x 2048
    tracemalloc.start()
    try:
        held = tracemalloc.get_traced_memory()[0]
        tracemalloc.reset_peak()
        result = random_events(labels, oem_scheme, np.random.default_rng([5, 0]), nodata=0)
        events_peak = (tracemalloc.get_traced_memory()[1] - held) / labels.size
        held = tracemalloc.get_traced_memory()[0]
        tracemalloc.reset_peak()
        change_polygons(labels, result.post, houston_label[1], nodata=0)
        polygons_peak = (tracemalloc.get_traced_memory()[1] - held) / labels.size
    finally:
        tracemalloc.stop()
    assert events_peak < 12, events_peak  # int32 components, the region, validity, post and changed maps: ~10.5
    assert polygons_peak < 7, polygons_peak  # the uint16 key and the changed mask: ~5


@pytest.mark.parametrize("pre,post", [(8, 1), (1, 8), (255, 254)])
def test_polygon_keys_keep_both_codes(pre, post):
    a = np.full((4, 4), pre, dtype=np.uint8)
    b = a.copy()
    b[1:3, 1:3] = post
    from rasterio.transform import from_origin

    polygons = change_polygons(a, b, from_origin(0, 4, 1, 1))
    assert [(f, t) for _, f, t in polygons] == [(pre, post)] and polygons[0][0].area == 4

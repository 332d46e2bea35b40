"""Connected components found window by window and merged across the window edges are exactly scipy's whole-raster
labelling, and the random events drawn from them do not depend on the windows or on where the arrays live."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from changeanywhere_qgis.engine.events import random_events
from changeanywhere_qgis.engine.events.components import CROSS, find_components
from changeanywhere_qgis.engine.io import Scratch, ScratchRaster


def _mirrored(labels: np.ndarray, reps: int) -> np.ndarray:
    row = np.concatenate([labels if i % 2 == 0 else labels[:, ::-1] for i in range(reps)], axis=1)
    return np.ascontiguousarray(np.concatenate([row if i % 2 == 0 else row[::-1] for i in range(reps)], axis=0))


def _expected(labels, region, codes):
    """scipy on the whole raster: each class's components in ndimage's order, classes in the order given."""
    index = np.full(labels.shape, -1, dtype=np.int64)
    sizes, boxes, classes, offset = [], [], [], 0
    for code in codes:
        lab, n = ndimage.label((labels == code) & region, structure=CROSS)
        index[lab > 0] = lab[lab > 0] - 1 + offset
        sizes += list(np.bincount(lab.ravel(), minlength=n + 1)[1:])
        boxes += [(r.start, r.stop, c.start, c.stop) for r, c in ndimage.find_objects(lab)]
        classes += [code] * n
        offset += n
    return index, np.array(sizes), np.array(boxes).reshape(-1, 4), classes


def _check(labels, region, codes, window, scratch, stores=None):
    comps = find_components(*(stores or (labels, region)), codes, scratch, window)
    index, sizes, boxes, classes = _expected(labels, region, codes)
    found = comps.component_of[comps.ids[:, :]]
    assert np.array_equal(found, index), f"window {window}: the pixels' components differ"
    assert np.array_equal(comps.size, sizes) and np.array_equal(comps.box, boxes)
    assert [int(c) for c in comps.code] == classes
    return comps


def _with_thin_objects(labels: np.ndarray, window: int) -> np.ndarray:
    """The real map with 1-pixel-wide lines of one class along window edges, on both sides of an edge, and through a
    window corner: components that cross an edge only through 1 px, or touch it along its whole length."""
    out = labels.copy()
    h, w = out.shape
    for edge in range(window, min(h, w), window):
        out[edge - 1, : w // 2] = 4  # along the last row of a window
        out[edge, w // 3 :] = 4  # and the first row of the next: joined where both run
        out[: h // 2, edge] = 5  # a 1 px column on a window's first column
        out[edge - 1 : edge + 1, edge - 1 : edge + 1] = 6  # a 2x2 block around a corner of four windows
        if edge + 1 < min(h, w):
            out[edge + 1, edge + 1] = 3  # one pixel diagonal to the corner block (4-connectivity: not joined through the corner)
    return out


@pytest.mark.parametrize("window", [3, 16, 37, 64, 128])
def test_windowed_components_equal_scipy_on_a_real_map(houston_label, window):
    labels = _mirrored(houston_label[0][:128, :128], 2)  # 256 x 256 of the real sample, mirrored: objects cross the seams
    if window <= 16:
        labels = labels[:96, :80]  # small windows: thousands of windows, a smaller map
    labels = _with_thin_objects(labels, window)
    codes = [int(c) for c in np.unique(labels) if c != 0]
    region = labels != 0
    comps = _check(labels, region, codes, window, Scratch(None, labels.shape))
    assert len(comps) > 20


def test_one_pixel_windows_and_an_irregular_region(houston_label):
    labels = _with_thin_objects(houston_label[0][200:240, 300:350].copy(), 9)
    region = labels != 2  # a class left out of the region: its pixels join nothing
    codes = [6, 4, 5, 3, 1, 8, 7]  # an order other than the codes': the components follow it
    _check(labels, region, [c for c in codes if (labels == c).any()], 1, Scratch(None, labels.shape))


def test_components_on_scratch_files_equal_scipy(houston_label, tmp_path):
    labels = _with_thin_objects(_mirrored(houston_label[0][:200, :200], 2), 100)
    scratch = Scratch(tmp_path, labels.shape, pixels=0)  # every array on disk
    on_disk = scratch.empty(np.uint8, "labels")
    on_disk[:, :] = labels
    region = scratch.empty(bool, "region")
    region[:, :] = labels != 0
    assert isinstance(on_disk, ScratchRaster)
    codes = [int(c) for c in np.unique(labels) if c != 0]
    comps = _check(labels, labels != 0, codes, 128, scratch, stores=(on_disk, region))
    assert isinstance(comps.ids, ScratchRaster)


def test_events_do_not_depend_on_the_windows_or_the_files(houston_label, oem_scheme, tmp_path):
    labels = _mirrored(houston_label[0], 2)  # 1024 x 1024
    whole = random_events(labels, oem_scheme, np.random.default_rng([6, 0]), nodata=0, window=1024)
    windowed = random_events(labels, oem_scheme, np.random.default_rng([6, 0]), nodata=0, window=100)
    scratch = Scratch(tmp_path, labels.shape, pixels=0)
    on_disk = scratch.empty(np.uint8, "labels")
    on_disk[:, :] = labels
    files = random_events(on_disk, oem_scheme, np.random.default_rng([6, 0]), nodata=0, window=300, scratch=scratch)
    assert len(whole.events) > 10 and {e.kind for e in whole.events} >= {"add", "remove", "transition"}
    for other in (windowed, files):
        assert [e.to_dict() for e in other.events] == [e.to_dict() for e in whole.events]
    assert np.array_equal(windowed.post, whole.post)
    assert isinstance(files.post, ScratchRaster) and np.array_equal(files.post[:, :], whole.post)

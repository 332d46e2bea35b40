"""Tile arithmetic: full coverage, equal tile sizes, overlap fusion weights."""

import numpy as np
import pytest

from changeanywhere_qgis.engine.diffusion import TileGrid, canvas_size


@pytest.mark.parametrize("height,width", [(64, 64), (100, 300), (256, 130), (40, 50)])
def test_tiles_cover_the_canvas_and_share_one_size(height, width):
    grid = TileGrid(height, width, tile=64, overlap=16)
    covered = np.zeros((height, width), dtype=int)
    sizes = set()
    for t in grid.tiles:
        covered[t.slices] += 1
        sizes.add((t.size_y, t.size_x))
        assert t.row + t.size_y <= height and t.col + t.size_x <= width
    assert covered.min() >= 1
    assert len(sizes) == 1


def test_neighbours_overlap_by_at_least_the_requested_margin():
    grid = TileGrid(200, 200, tile=64, overlap=16)
    rows = sorted({t.row for t in grid.tiles})
    assert all(b - a <= 64 - 16 for a, b in zip(rows, rows[1:]))


def test_fusion_of_a_constant_is_the_constant():
    """Weighted accumulation divided by the weight sum reproduces any field exactly (partition of unity)."""
    grid = TileGrid(150, 170, tile=64, overlap=16)
    field = np.random.default_rng(1).standard_normal((150, 170)).astype(np.float32)
    acc = np.zeros_like(field)
    w = grid.weight()
    for t in grid.tiles:
        acc[t.slices] += w * field[t.slices]
    np.testing.assert_allclose(acc / grid.weight_sum(), field, rtol=1e-5, atol=1e-5)


def test_weight_ramps_down_towards_tile_edges():
    w = TileGrid(128, 128, tile=64, overlap=16).weight()
    assert w[32, 32] == 1.0 and w[0, 32] < w[8, 32] < w[16, 32]


def test_canvas_is_padded_to_the_model_granule():
    assert canvas_size(512, 32) == 512
    assert canvas_size(500, 32) == 512
    assert canvas_size(1, 32) == 32

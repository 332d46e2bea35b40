"""The seam measure tells a stitched image from a seamless one (real imagery, derived in the test)."""

import numpy as np
import rasterio

from changeanywhere_qgis.engine.quality import seam_score, tile_edges


def test_tile_edges_follow_the_grid():
    assert tile_edges(512, 256, 64) == [192, 256, 448]
    assert tile_edges(200, 256, 64) == []


def test_a_real_image_scores_about_one_and_a_stitched_one_scores_higher(houston_image_path):
    with rasterio.open(houston_image_path) as ds:
        real = ds.read().astype(np.float32)
    assert 0.8 < seam_score(real, 128, 0)["ratio"] < 1.25
    # Stitch: brighten every other 128 px block, as a tiler without blending would leave it.
    stitched = real.copy()
    for r in range(0, 512, 128):
        for c in range(0, 512, 128):
            if (r // 128 + c // 128) % 2:
                stitched[:, r : r + 128, c : c + 128] += 25
    assert seam_score(stitched, 128, 0)["ratio"] > 1.5

"""Cut the bundled demo/test sample from the OpenEarthMap tile houston_16 (run from the repo root).

Writes changeanywhere_qgis/samples/: a 512x512 window of the image and of its label (code 0 marked
as nodata), and houston_changes.geojson: two change polygons drawn around real objects of the
label (a building -> water, a patch of trees -> building), in EPSG:4326 like the rasters.
"""

import json
from pathlib import Path

import numpy as np
import rasterio
from rasterio.features import shapes
from rasterio.windows import Window
from scipy import ndimage
from shapely.geometry import mapping, shape

SRC = Path("data/train/oem")
OUT = Path("changeanywhere_qgis/samples")
WINDOW = Window(col_off=256, row_off=0, width=512, height=512)


def cut(src_path: Path, dst_path: Path, nodata=None) -> tuple[np.ndarray, rasterio.Affine]:
    with rasterio.open(src_path) as src:
        data = src.read(window=WINDOW)
        profile = src.profile | {
            "width": WINDOW.width, "height": WINDOW.height, "transform": src.window_transform(WINDOW),
            "compress": "deflate", "tiled": True, "blockxsize": 256, "blockysize": 256, "nodata": nodata,
        }
    with rasterio.open(dst_path, "w", **profile) as dst:
        dst.write(data)
    return data, profile["transform"]


def largest_object_outline(label: np.ndarray, code: int, transform) -> dict:
    """Convex hull, slightly buffered, of the largest connected object of one class."""
    objects, n = ndimage.label(label == code)
    sizes = ndimage.sum(np.ones_like(objects), objects, index=range(1, n + 1))
    biggest = objects == (int(np.argmax(sizes)) + 1)
    geoms = [shape(g) for g, v in shapes(biggest.astype(np.uint8), mask=biggest, transform=transform) if v]
    hull = geoms[0].convex_hull if len(geoms) == 1 else shape(mapping(geoms[0])).union(geoms[1:]).convex_hull
    return mapping(hull.buffer(abs(transform.a) * 2))


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    cut(SRC / "images/houston_16.tif", OUT / "houston_image.tif")
    label, transform = cut(SRC / "labels/houston_16.tif", OUT / "houston_label.tif", nodata=0)
    features = [
        {"type": "Feature", "properties": {"target": "water", "note": "a building becomes water"},
         "geometry": largest_object_outline(label[0], 8, transform)},
        {"type": "Feature", "properties": {"target": "building", "note": "trees are cleared for a building"},
         "geometry": largest_object_outline(label[0][:256, :256], 5, transform)},
    ]
    collection = {"type": "FeatureCollection", "name": "houston_changes",
                  "crs": {"type": "name", "properties": {"name": "urn:ogc:def:crs:OGC:1.3:CRS84"}},
                  "features": features}
    (OUT / "houston_changes.geojson").write_text(json.dumps(collection, indent=1))


if __name__ == "__main__":
    main()

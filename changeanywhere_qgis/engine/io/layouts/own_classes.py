"""The model's own classes, for semantic change detection in its scheme (OpenEarthMap for the bundled model).

``class1``/``class2`` (and SECOND's ``label1_full``/``label2_full``): the whole land-cover map before and after,
single-band index images, pixel value = the model's class code, 0 = no data. PNGs carry no palette, so every
reader (PIL, skimage, cv2, rasterio) gets the codes themselves; GeoTIFFs carry the class colours as a colour table
for QGIS. ``classes.json`` lists codes, names and colours (and SECOND's classes and the mapping, when written).
"""

from __future__ import annotations

import numpy as np

from ...landcover import ClassScheme
from .second import SecondClasses

NO_DATA = 0


def class_maps(pre: np.ndarray, post: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(before, after) class codes [H, W] uint8, 0 where the tile has no data (mask 255)."""
    valid = mask != 255
    return np.where(valid, pre, NO_DATA).astype(np.uint8), np.where(valid, post, NO_DATA).astype(np.uint8)


def classes_document(scheme: ClassScheme, second: SecondClasses | None) -> dict:
    """What ``classes.json`` holds: the model's classes (and SECOND's with the mapping into them)."""
    doc = {
        "class_maps": "class1/, class2/ (layout classes) and label1_full/, label2_full/ (layout second): pixel value = code, "
                      f"{NO_DATA} = no data",
        "no_data": NO_DATA,
        "classes": [{"code": c.code, "name": c.name, "color": list(c.color)} for c in scheme.classes],
    }
    if second is not None:
        doc["second"] = {
            "labels": "label1/, label2/: RGB in these colours, white = unchanged; label1_wo_cm/, label2_wo_cm/: the index, "
                      "0 = unchanged",
            "classes": [{"index": c.index, "name": c.name, "color": list(c.color)} for c in (second.unchanged, *second.classes)],
            "mapping": second.rows(scheme),
            "source": second.source,
        }
    return doc

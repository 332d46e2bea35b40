"""Change detection on a user's own image pair, by a change-detector package (docs/reference/detector-package.md).

onnxruntime only, no torch: ``package.py`` loads and checks the package, ``pair.py`` opens and checks the two images
(and resamples B onto A's grid when asked), ``detect.py`` runs the tiles and blends them, ``outputs.py`` writes the
probability, the mask and the polygons. The detector is trained on the PyTorch side (``python -m model_export.detector``).
"""

from .detect import DEFAULT_BATCH, detect_changes
from .outputs import DETECTION_FOLDER, LAYER, MASK, MASK_NODATA, POLYGONS, PROBABILITY, PROBABILITY_NODATA, REPORT
from .package import FORMAT, MANIFEST, DetectorPackage, check_threshold, load_detector, read_detector_manifest

__all__ = ["DEFAULT_BATCH", "DETECTION_FOLDER", "DetectorPackage", "FORMAT", "LAYER", "MANIFEST", "MASK", "MASK_NODATA", "POLYGONS",
           "PROBABILITY", "PROBABILITY_NODATA", "REPORT", "check_threshold", "detect_changes", "load_detector",
           "read_detector_manifest"]

"""The ChangeAnywhere engine: everything that makes change samples, with no QGIS import.

numpy, onnxruntime, rasterio and shapely only; the QGIS adapters (processing/, gui/) and the
command line (__main__.py) call into it.
"""

__version__ = "0.1.0"

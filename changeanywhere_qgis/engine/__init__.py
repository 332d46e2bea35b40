"""The ChangeAnywhere engine: everything that makes change samples, with no QGIS import.

numpy, onnxruntime, rasterio and shapely only; the QGIS adapters (processing/, gui/) and the
command line (cli/) call into it. The rooms follow the data through the tool:

- ``landcover/``: the model's classes, and remaps from other schemes into them;
- ``io/``: inputs read and checked, GeoTIFFs written into atomic output folders, dataset layouts;
- ``events/``: what changes (drawn polygons, random events, transition tables, change polygons);
- ``diffusion/``: the model package, sampling with latent mixing over tiles, one change pair;
- ``dataset/``: many samples, planned, run by workers (local or Dask), resumable, with a card;
- ``quality/``: numpy measures of the generated images (PSNR, SSIM, seams).

``pipeline.py`` holds the entry points (``generate``, ``simulate``); ``errors.py`` and ``progress.py``
serve every room.
"""

__version__ = "0.1.0"

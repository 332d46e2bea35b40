"""Files in and out: land-cover maps and images read and checked, GeoTIFFs written into atomic output folders, dataset layouts."""

from .layouts import FOLDERS, FORMATS, LAYOUTS, LIST_FOLDER, SPLITS, check_layout, folders, read_raster, write_raster, write_sample
from .output_folder import OutputFolder, check_output_path, check_writable, remove_orphans, write_failure
from .rasters import ImageSource, RasterGrid, SemanticRaster, open_rgb, read_semantic, write_classes, write_mask

__all__ = ["FOLDERS", "FORMATS", "LAYOUTS", "LIST_FOLDER", "SPLITS", "ImageSource", "OutputFolder", "RasterGrid", "SemanticRaster",
           "check_layout", "check_output_path", "check_writable", "folders", "open_rgb", "read_raster", "read_semantic", "remove_orphans", "write_classes", "write_mask", "write_failure",
           "write_raster", "write_sample"]

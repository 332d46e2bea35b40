"""Files in and out: land-cover maps and images read and checked, GeoTIFFs written into atomic output folders, dataset layouts."""

from .layouts import (CLASSES_FILE, FOLDERS, FORMATS, LAYOUTS, LIST_FOLDER, SPLITS, STAGE_FOLDER, SecondClasses, check_layout,
                      classes_document, every_folder, folders, has_second, in_split, load_second_classes, parts, read_change, read_raster,
                      second_labels, write_raster, write_sample, SERIES_FOLDER, pair_name, series_pairs, write_series)
from .checksum import file_sha256
from .output_folder import OutputFolder, check_output_path, check_writable, remove_orphans, write_failure
from .replace_guard import SAMPLE_FOLDER, OwnedFiles, check_replaceable
from .scratch import BAND_PIXELS, SCRATCH_BYTES_PER_PIXEL, SCRATCH_PIXELS, Scratch, ScratchRaster, is_scratch, row_bands, windows
from .style_image import STYLE_WINDOW_PX, StyleImage, check_style_image, read_style_image
from .rasters import ImageSource, RasterGrid, SemanticRaster, open_raster, open_rgb, read_input, read_semantic, write_classes, write_mask

__all__ = ["BAND_PIXELS", "SCRATCH_BYTES_PER_PIXEL", "SCRATCH_PIXELS", "Scratch", "ScratchRaster", "is_scratch", "row_bands", "windows", "CLASSES_FILE", "FOLDERS", "FORMATS", "LAYOUTS", "LIST_FOLDER", "SPLITS", "STAGE_FOLDER", "ImageSource", "OutputFolder", "OwnedFiles", "SAMPLE_FOLDER", "check_replaceable",
           "RasterGrid", "SecondClasses", "SemanticRaster", "check_layout", "classes_document", "every_folder", "folders",
           "has_second", "in_split", "check_output_path", "check_writable", "file_sha256", "remove_orphans", "write_failure", "load_second_classes", "open_raster", "open_rgb", "parts", "read_change", "read_input", "read_raster", "read_semantic",
           "second_labels", "STYLE_WINDOW_PX", "StyleImage", "check_style_image", "read_style_image", "write_classes", "write_mask",
           "write_raster", "write_sample", "SERIES_FOLDER", "pair_name", "series_pairs", "write_series"]

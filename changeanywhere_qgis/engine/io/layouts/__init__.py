"""Folder layouts that change-detection codebases read as they are (docs/reference/dataset-layouts.md shows one of each).

* ``levir`` (LEVIR-CD): ``A/`` pre-event image, ``B/`` post-event image, ``label/`` change mask (0 unchanged,
  255 changed). Flat with ``list/{train,val,test}.txt`` (BIT, ChangeFormer), or one folder per split
  (``train/A``, ...: the official release, open-cd, torchgeo, torchange).
* ``second`` (SECOND): ``im1/``, ``im2/``, ``label1/``, ``label2/`` RGB in SECOND's palette, white where unchanged
  (``second.py``); ``label1_wo_cm/``, ``label2_wo_cm/`` SECOND's index (0 = unchanged) for torchange;
  ``label1_full/``, ``label2_full/`` the whole maps in the model's classes.
* ``classes``: LEVIR-CD's folders and ``class1/``, ``class2/``, the whole maps in the model's classes
  (``own_classes.py``), with ``classes.json``.
* ``both`` = levir + second; ``all`` = every folder.
* a series of dates (``series.py``): ``series/<name>/`` with every date, and each pair of dates in the layout's folders.

``png``: plain 8-bit PNGs (the libraries' default). ``tif``: GeoTIFFs on the tile's own window (``files.py``).
"""

from .choice import (CLASSES_FILE, FOLDERS, FORMATS, LAYOUTS, LIST_FOLDER, SPLITS, STAGE_FOLDER, check_layout, every_folder,
                     folders, has_second, in_split, parts, sample_files)
from .files import read_raster, write_raster
from .own_classes import class_maps, classes_document
from .second import SecondClasses, load_second_classes, second_labels
from .writer import read_change, write_sample
from .series import SERIES_FOLDER, pair_name, series_pairs, write_series

__all__ = ["CLASSES_FILE", "FOLDERS", "FORMATS", "LAYOUTS", "LIST_FOLDER", "SPLITS", "STAGE_FOLDER", "SecondClasses",
           "check_layout", "class_maps", "classes_document", "every_folder", "folders", "has_second", "in_split",
           "load_second_classes", "parts", "read_change", "read_raster", "sample_files", "second_labels", "write_raster",
           "write_sample", "SERIES_FOLDER", "pair_name", "series_pairs", "write_series"]

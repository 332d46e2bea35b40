"""Processing algorithm "Detect changes between two images": one call to ``engine.detection.detect_changes``
(onnxruntime only: no PyTorch needed)."""

from __future__ import annotations

from pathlib import Path

from qgis.core import (
    QgsProcessingException,
    QgsProcessingOutputNumber,
    QgsProcessingParameterBoolean,
    QgsProcessingParameterFile,
    QgsProcessingParameterFileDestination,
    QgsProcessingParameterNumber,
    QgsProcessingParameterRasterDestination,
    QgsProcessingParameterRasterLayer,
    QgsProcessingParameterVectorDestination,
)

from . import qgis_compat as compat
from .base import ChangeAnywhereAlgorithm
from .common import engine_errors, engine_progress, place_outputs, raster_path, remove_run_folder, require_engine, run_in_python_thread, temp_run_folder
from .detection_styles import MASK, POLYGONS, PROBABILITY, style_detection_on_load


class DetectChanges(ChangeAnywhereAlgorithm):
    NAME = "detectchanges"
    DISPLAY_NAME = "Detect changes between two images"
    HELP = (
        "Finds the change from image A (before) to image B (after) with a change-detector package (a folder holding "
        "detector.json and detector.onnx, made by 'Train a change detector' or python -m model_export.detector train). "
        "Writes the change probability (0-1), the binary change mask (the detector's threshold, or yours) and the change "
        "polygons, all on image A's grid and CRS; pixels where either image has no data are no data. Image B must lie on "
        "A's grid, or tick 'Resample B onto A's grid'. Runs with onnxruntime alone; large images are read and written by "
        "window. See docs/guide/detecting-change.md."
    )

    BEFORE = "BEFORE"
    AFTER = "AFTER"
    DETECTOR = "DETECTOR"
    THRESHOLD = "THRESHOLD"
    RESAMPLE = "RESAMPLE"
    BATCH_SIZE = "BATCH_SIZE"
    THREADS = "THREADS"
    OUTPUT_PROBABILITY = "OUTPUT_PROBABILITY"
    OUTPUT_MASK = "OUTPUT_MASK"
    OUTPUT_POLYGONS = "OUTPUT_POLYGONS"
    OUTPUT_RECORD = "OUTPUT_RECORD"
    FILES = {OUTPUT_PROBABILITY: "change_probability.tif", OUTPUT_MASK: "change_mask.tif", OUTPUT_POLYGONS: "changes.gpkg",
             OUTPUT_RECORD: "detection.json"}
    KINDS = {OUTPUT_PROBABILITY: PROBABILITY, OUTPUT_MASK: MASK, OUTPUT_POLYGONS: POLYGONS}

    def initAlgorithm(self, config=None):
        self.addParameter(QgsProcessingParameterRasterLayer(self.BEFORE, "Image A, before (the outputs' grid)"))
        self.addParameter(QgsProcessingParameterRasterLayer(self.AFTER, "Image B, after (on A's grid)"))
        self.addParameter(QgsProcessingParameterFile(self.DETECTOR, "Change-detector package folder",
                                                     behavior=compat.FILE_BEHAVIOR_FOLDER))
        self.addParameter(QgsProcessingParameterNumber(
            self.THRESHOLD, "Decision threshold, 0-1 (empty: the detector's own)", type=compat.NUMBER_DOUBLE, optional=True,
            minValue=0.0, maxValue=1.0))
        self.addParameter(QgsProcessingParameterBoolean(self.RESAMPLE, "Resample B onto A's grid (when the grids differ)",
                                                        defaultValue=False))
        self.addParameter(compat.advanced(QgsProcessingParameterNumber(
            self.BATCH_SIZE, "Tiles per network call", type=compat.NUMBER_INTEGER, defaultValue=4, minValue=1)))
        self.addParameter(compat.advanced(QgsProcessingParameterNumber(
            self.THREADS, "CPU threads (empty: all cores)", type=compat.NUMBER_INTEGER, optional=True, minValue=1)))
        self.addParameter(QgsProcessingParameterRasterDestination(self.OUTPUT_PROBABILITY, "Change probability"))
        self.addParameter(QgsProcessingParameterRasterDestination(self.OUTPUT_MASK, "Change mask"))
        self.addParameter(QgsProcessingParameterVectorDestination(self.OUTPUT_POLYGONS, "Change polygons", compat.SOURCE_POLYGON,
                                                                  optional=True, createByDefault=True))
        self.addParameter(QgsProcessingParameterFileDestination(
            self.OUTPUT_RECORD, "Detection record (JSON: detector, threshold, changed share)", "JSON files (*.json)",
            optional=True, createByDefault=False))
        self.addOutput(QgsProcessingOutputNumber("CHANGED_SHARE", "Share of the valid pixels that changed"))
        self.addOutput(QgsProcessingOutputNumber("THRESHOLD_USED", "Decision threshold used"))

    def processAlgorithm(self, parameters, context, feedback):
        require_engine()
        with engine_errors():
            from ..engine.detection import detect_changes

            before = raster_path(self.parameterAsRasterLayer(parameters, self.BEFORE, context), "image A")
            after = raster_path(self.parameterAsRasterLayer(parameters, self.AFTER, context), "image B")
            if not before or not after:
                raise QgsProcessingException("Choose both images: A, before (BEFORE), and B, after (AFTER).")
            detector = self.parameterAsFile(parameters, self.DETECTOR, context)
            if not detector:
                raise QgsProcessingException("Choose the change-detector package folder (DETECTOR).")
            threshold = parameters.get(self.THRESHOLD)
            threads = parameters.get(self.THREADS)
            destinations = self.destinations(parameters, context, file_outputs=(self.OUTPUT_RECORD,))
            polygons_wanted = self.OUTPUT_POLYGONS in destinations
            out_dir = temp_run_folder()
            try:
                result = run_in_python_thread(
                    detect_changes, before, after, detector, out_dir,
                    threshold=None if threshold in (None, "") else self.parameterAsDouble(parameters, self.THRESHOLD, context),
                    resample=self.parameterAsBool(parameters, self.RESAMPLE, context),
                    batch_size=self.parameterAsInt(parameters, self.BATCH_SIZE, context),
                    threads=None if threads in (None, "") else self.parameterAsInt(parameters, self.THREADS, context),
                    polygons=polygons_wanted, progress=engine_progress(feedback))
                feedback.pushInfo(f"{100 * result['changed_share']:.2f} % of the valid pixels changed (threshold "
                                  f"{result['threshold']:g}); {result['polygons'] or 0} change polygons.")
                vector = destinations.pop(self.OUTPUT_POLYGONS, None)
                place_outputs([(Path(out_dir) / self.FILES[p], dest) for p, dest in destinations.items()], feedback)
                if vector:
                    destinations[self.OUTPUT_POLYGONS] = _place_polygons(Path(out_dir) / self.FILES[self.OUTPUT_POLYGONS], vector)
                style_detection_on_load(context, {dest: self.KINDS[p] for p, dest in destinations.items() if p in self.KINDS})
            finally:
                remove_run_folder(Path(out_dir))
        return {**destinations, "CHANGED_SHARE": result["changed_share"], "THRESHOLD_USED": result["threshold"]}


def _place_polygons(src: Path, dest: str) -> str:
    """The GeoPackage moved onto the destination, or converted by GDAL when the user chose another format."""
    import shutil

    target = Path(dest.split("|")[0])
    target.parent.mkdir(parents=True, exist_ok=True)
    if target.suffix.lower() == ".gpkg":
        shutil.move(str(src), str(target))
        return str(target)
    from osgeo import gdal

    result = gdal.VectorTranslate(str(target), str(src))
    if result is None:
        raise QgsProcessingException(f"GDAL could not write the change polygons to {target}. Use a .gpkg file.")
    result = None  # noqa: F841 (closes the dataset)
    return str(target)

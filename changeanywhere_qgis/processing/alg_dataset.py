"""Processing algorithm "Generate change-detection dataset": one call to ``engine.dataset.generate_dataset``."""

from __future__ import annotations

from dataclasses import replace

from qgis.core import (
    Qgis,
    QgsProcessing,
    QgsProcessingException,
    QgsProcessingOutputFile,
    QgsProcessingOutputNumber,
    QgsProcessingParameterBoolean,
    QgsProcessingParameterEnum,
    QgsProcessingParameterFile,
    QgsProcessingParameterFolderDestination,
    QgsProcessingParameterMultipleLayers,
    QgsProcessingParameterNumber,
    QgsProcessingParameterString,
)

from . import qgis_compat as compat
from .series_outputs import DATES
from .series_outputs import dates as series_dates
from .base import ChangeAnywhereAlgorithm, remap_label
from .style_options import add_style_parameters, style_settings
from ..engine.dataset import DEFAULT_APPEARANCE_SHIFT, SPLIT_FRACTIONS
from ..engine.diffusion import DEFAULT_STEPS
from ..engine.events import MAX_DATES
from .common import DEVICE_CHOICES, DEVICE_LABELS, engine_errors, engine_progress, raster_path, require_engine, run_in_python_thread

LAYOUTS = ("levir", "second", "both", "classes", "all")
LAYOUT_LABELS = ("LEVIR-CD (A/, B/, label/)", "SECOND (im1/, im2/, label1/, label2/ in SECOND's palette)", "Both",
                 "LEVIR-CD and the model's classes (class1/, class2/)", "All")
FORMATS = ("png", "tif")
FORMAT_LABELS = ("PNG", "GeoTIFF (georeferenced)")
# Raster layers as a Processing source type: Qgis.ProcessingSourceType (QGIS >= 3.36), else QgsProcessing.SourceType.
RASTER_LAYERS = (Qgis.ProcessingSourceType.Raster if hasattr(Qgis, "ProcessingSourceType")
                 else QgsProcessing.SourceType.TypeRaster)


class GenerateChangeDataset(ChangeAnywhereAlgorithm):
    NAME = "generatechangedataset"
    DISPLAY_NAME = "Generate change-detection dataset"
    HELP = (
        "Cuts tiles from land-cover maps (skipping tiles that are mostly nodata), simulates random object-level "
        "change events on each and generates the pre- and post-event images with the model: a training dataset "
        "for change detection, in the LEVIR-CD layout (A/, B/, label/ 0/255, list/train|val|test.txt), the SECOND "
        "layout (im1/, im2/, label1/, label2/) or both, with manifest.jsonl and a dataset card (README.md).\n\n"
        "SECOND's labels are RGB in SECOND's palette, white where nothing changed, the model's classes mapped into "
        "SECOND's six by a table (built in, or a JSON file); the full maps in the model's classes lie beside them. "
        "'Classes' adds class1/, class2/ (the model's class codes, 0 = no data) and classes.json. One folder per "
        "split (train/A/, ...) is what open-cd, torchgeo and SECOND's readers expect; flat folders with list/ what "
        "BIT and ChangeFormer read. The dataset card names the readers of each layout.\n\n"
        "Each sample's seed comes from the dataset seed and its number: the same seed gives the same dataset. "
        "Running it again on the same folder with the same settings finishes an interrupted dataset (finished "
        "samples are kept). Images, when given, are the real pre-event images (one per map, same grid).\n\n"
        "Random appearance shifts (off by default) give each post-event image a colour change, brightness, haze and a "
        "misregistration of up to 2 px drawn from its sample's seed, as real pairs of unchanged land have; the pre-event "
        "images and the labels stay as they are without them."
    )

    IMAGES = "IMAGES"
    COUNT = "COUNT"
    TILE = "TILE"
    LAYOUT = "LAYOUT"
    FORMAT = "FORMAT"
    STEPS = "STEPS"
    WORKERS = "WORKERS"
    SCHEDULER = "SCHEDULER"
    MAX_NODATA = "MAX_NODATA"
    DEVICE = "DEVICE"
    OUTPUT = "OUTPUT"
    SPLIT_FOLDERS = "SPLIT_FOLDERS"
    SPLIT_TRAIN, SPLIT_VAL, SPLIT_TEST = "SPLIT_TRAIN", "SPLIT_VAL", "SPLIT_TEST"
    SECOND_CLASSES = "SECOND_CLASSES"
    SKIP_HIDDEN_CHANGE = "SKIP_HIDDEN_CHANGE"
    APPEARANCE_SHIFT = "APPEARANCE_SHIFT"

    def initAlgorithm(self, config=None):
        self.addParameter(QgsProcessingParameterMultipleLayers(self.SEMANTIC, "Land-cover (semantic) rasters", RASTER_LAYERS))
        self.addParameter(QgsProcessingParameterMultipleLayers(
            self.IMAGES, "Pre-event images (RGB, one per land-cover raster, same grids; empty: generated)", RASTER_LAYERS,
            optional=True))
        self.add_pre_event_option()
        self.add_post_event_options()
        self.addParameter(QgsProcessingParameterNumber(self.COUNT, "Number of samples", type=compat.NUMBER_INTEGER,
                                                       defaultValue=200, minValue=2))
        self.addParameter(QgsProcessingParameterNumber(self.TILE, "Tile size (pixels)", type=compat.NUMBER_INTEGER,
                                                       defaultValue=256, minValue=8))
        self.addParameter(QgsProcessingParameterEnum(self.LAYOUT, "Layout", options=list(LAYOUT_LABELS), defaultValue=0))
        self.addParameter(QgsProcessingParameterNumber(
            DATES, "Dates per sample (2: change pairs; more: a series in series/<name>/, each pair of dates a sample of the layout)",
            type=compat.NUMBER_INTEGER, defaultValue=2, minValue=2, maxValue=MAX_DATES))
        self.addParameter(QgsProcessingParameterEnum(self.FORMAT, "Image format", options=list(FORMAT_LABELS), defaultValue=0))
        self.addParameter(QgsProcessingParameterBoolean(
            self.SPLIT_FOLDERS, "One folder per split (train/, val/, test/: open-cd, torchgeo, SECOND's readers); "
            "else flat folders with list/ (BIT, ChangeFormer)", defaultValue=False))
        for name, label, share in zip((self.SPLIT_TRAIN, self.SPLIT_VAL, self.SPLIT_TEST), ("train", "val", "test"), SPLIT_FRACTIONS):
            self.addParameter(compat.advanced(QgsProcessingParameterNumber(
                name, f"Share of the samples in {label}", type=compat.NUMBER_DOUBLE, defaultValue=share, minValue=0.0, maxValue=1.0)))
        self.addParameter(compat.advanced(QgsProcessingParameterFile(
            self.SECOND_CLASSES, "SECOND: mapping of the model's classes into SECOND's (JSON; empty: the built-in table)",
            behavior=compat.FILE_BEHAVIOR_FILE, extension="json", optional=True)))
        self.addParameter(compat.advanced(QgsProcessingParameterBoolean(
            self.SKIP_HIDDEN_CHANGE, "SECOND: skip samples with change the mapping hides (e.g. road -> developed space)",
            defaultValue=False)))
        self.addParameter(QgsProcessingParameterBoolean(
            self.APPEARANCE_SHIFT, "Random appearance shifts of the post-event images (colour, brightness, haze, up to 2 px "
            "misregistration: what real unchanged land looks like between two dates; recorded in the manifest; pairs only)",
            defaultValue=DEFAULT_APPEARANCE_SHIFT))
        add_style_parameters(self)
        self.addParameter(QgsProcessingParameterNumber(
            self.SEED, "Dataset seed", type=compat.NUMBER_INTEGER, defaultValue=0, minValue=0))
        self.add_model_input()
        self.addParameter(QgsProcessingParameterNumber(
            self.STEPS, "Diffusion steps (more: slower, finer)", type=compat.NUMBER_INTEGER, defaultValue=DEFAULT_STEPS, minValue=1, maxValue=1000))
        self.addParameter(QgsProcessingParameterEnum(self.DEVICE, "Device", options=list(DEVICE_LABELS), defaultValue=1))
        self.add_precision_option()
        self.add_sampler_options()
        self.add_transition_inputs("the change events")
        self.addParameter(compat.advanced(QgsProcessingParameterNumber(
            self.MAX_NODATA, "Skip tiles with more nodata than this fraction", type=compat.NUMBER_DOUBLE,
            defaultValue=0.5, minValue=0.0, maxValue=0.99)))
        self.addParameter(compat.advanced(QgsProcessingParameterNumber(
            self.WORKERS, "Local worker processes (empty: one per CPU core)", type=compat.NUMBER_INTEGER, optional=True, minValue=1)))
        self.addParameter(compat.advanced(QgsProcessingParameterString(
            self.SCHEDULER, "Dask scheduler address (e.g. tcp://host:8786; empty: local workers)", optional=True)))
        self.addParameter(compat.advanced(QgsProcessingParameterNumber(
            self.BAND, "Band holding the class codes", type=compat.NUMBER_INTEGER, defaultValue=1, minValue=1)))
        self.addParameter(compat.advanced(QgsProcessingParameterString(
            self.REMAP, remap_label("rasters'"), optional=True)))
        self.addParameter(QgsProcessingParameterFolderDestination(self.OUTPUT, "Dataset folder"))

        self.addOutput(QgsProcessingOutputNumber("COUNT", "Samples in the dataset"))
        self.addOutput(QgsProcessingOutputNumber("GENERATED", "Samples generated by this run"))
        self.addOutput(QgsProcessingOutputNumber("SKIPPED", "Samples already finished before this run"))
        self.addOutput(QgsProcessingOutputFile("MANIFEST", "Manifest (manifest.jsonl)"))
        self.addOutput(QgsProcessingOutputFile("CARD", "Dataset card (README.md)"))

    def _paths(self, parameters, name, context, what) -> list[str]:
        layers = self.parameterAsLayerList(parameters, name, context) or []
        return [raster_path(layer, what) for layer in layers]

    def _layout_options(self, parameters, context, feedback) -> dict:
        shares = tuple(self.parameterAsDouble(parameters, name, context) for name in (self.SPLIT_TRAIN, self.SPLIT_VAL, self.SPLIT_TEST))
        return {"split_fractions": shares, "split_folders": self.parameterAsBool(parameters, self.SPLIT_FOLDERS, context),
                "second_classes": self.parameterAsFile(parameters, self.SECOND_CLASSES, context) or None,
                "skip_hidden_change": self.parameterAsBool(parameters, self.SKIP_HIDDEN_CHANGE, context),
                "appearance_shift": self._appearance_shift(parameters, context, feedback),
                **style_settings(self, parameters, context),
                **self.post_event_settings(parameters, context, feedback, series_dates(self, parameters, context))}

    def _appearance_shift(self, parameters, context, feedback) -> bool | None:
        """The box, for pairs. A series takes no shifts yet: a ticked box is then left to the engine's default for series,
        none, rather than refused, and the log says so."""
        shift = self.parameterAsBool(parameters, self.APPEARANCE_SHIFT, context)
        if series_dates(self, parameters, context) > 2:
            if shift:
                feedback.pushInfo("Appearance shifts are for datasets of pairs: this series dataset has none.")
            return None
        return shift

    def processAlgorithm(self, parameters, context, feedback):
        require_engine()
        with engine_errors():
            from ..engine.dataset import DatasetSettings, generate_dataset

            semantic = self._paths(parameters, self.SEMANTIC, context, "land-cover")
            if not semantic:
                raise QgsProcessingException("Choose at least one land-cover raster layer (SEMANTIC).")
            images = self._paths(parameters, self.IMAGES, context, "pre-event image") or None
            workers = parameters.get(self.WORKERS)
            settings = DatasetSettings(
                count=self.parameterAsInt(parameters, self.COUNT, context),
                tile=self.parameterAsInt(parameters, self.TILE, context),
                layout=LAYOUTS[self.parameterAsEnum(parameters, self.LAYOUT, context)],
                fmt=FORMATS[self.parameterAsEnum(parameters, self.FORMAT, context)],
                seed=self.parameterAsInt(parameters, self.SEED, context),
                steps=self.parameterAsInt(parameters, self.STEPS, context),
                **self.sampler_options(parameters, context),
                max_nodata=self.parameterAsDouble(parameters, self.MAX_NODATA, context),
                transitions=self.transitions(parameters, context),
                band=self.parameterAsInt(parameters, self.BAND, context) or 1,
                remap=self.remap(parameters, context),
                pre_event=self.pre_event(parameters, context),
                sampler_tile=self.sampler_tile(parameters, context),
                dates=series_dates(self, parameters, context),
                precision=self.precision(parameters, context),
            )
            settings = replace(settings, **self._layout_options(parameters, context, feedback))
            out = self.parameterAsString(parameters, self.OUTPUT, context)
            scheduler = (self.parameterAsString(parameters, self.SCHEDULER, context) or "").strip() or None
            result = run_in_python_thread(
                generate_dataset, semantic, out, settings, images=images, model=self.model_dir(parameters, context),
                workers=None if workers in (None, "") or scheduler else self.parameterAsInt(parameters, self.WORKERS, context),
                scheduler=scheduler, device=DEVICE_CHOICES[self.parameterAsEnum(parameters, self.DEVICE, context)],
                progress=engine_progress(feedback))
        splits = ", ".join(f"{k} {v}" for k, v in result["splits"].items())
        for note in result["split_notes"]:
            feedback.pushInfo(note)
        if result["skipped_hidden_change"]:
            feedback.pushInfo(f"{result['skipped_hidden_change']} of the {result['drawn']} samples drawn were skipped: the "
                              "SECOND mapping hides part of their change.")
        feedback.pushInfo(f"{result['count']} samples ({splits}): {result['generated']} generated now, "
                          f"{result['skipped']} already finished. Mean changed land "
                          f"{100 * result['statistics']['changed_fraction']['mean']:.1f} %.")
        return {self.OUTPUT: result["out"], "COUNT": result["count"], "GENERATED": result["generated"],
                "SKIPPED": result["skipped"], "MANIFEST": f"{result['out']}/manifest.jsonl", "CARD": f"{result['out']}/README.md"}

"""Processing algorithm "Generate change sample": one call to ``engine.pipeline.generate``."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from qgis.core import (
    QgsProcessingOutputNumber,
    QgsProcessingOutputString,
    QgsProcessingParameterEnum,
    QgsProcessingParameterFileDestination,
    QgsProcessingParameterNumber,
    QgsProcessingParameterRasterDestination,
    QgsProcessingParameterRasterLayer,
)

from . import qgis_compat as compat
from . import series_outputs as series
from ..engine.diffusion import DEFAULT_STEPS
from .base import ChangeAnywhereAlgorithm
from .style_options import add_style_parameters, style_settings
from .common import (
    DEVICE_CHOICES,
    DEVICE_LABELS,
    engine_errors,
    engine_progress,
    place_outputs,
    raster_path,
    remove_run_folder,
    require_engine,
    run_in_python_thread,
    temp_run_folder,
)


class GenerateChangeSample(ChangeAnywhereAlgorithm):
    NAME = "generatechangesample"
    DISPLAY_NAME = "Generate change sample"
    HELP = (
        "Turns a land-cover map into a bi-temporal change-detection sample. The change polygons say what "
        "the land becomes (their target-class field holds a class code or name of the model, e.g. 'water'); "
        "or tick random change events. A semantic latent diffusion model (ONNX) then generates the "
        "post-event image, keeping the unchanged land close to the pre-event image (content correlation s).\n\n"
        "Without a pre-event image, the pre-event image is generated from the map too. All outputs share "
        "the land-cover raster's grid and CRS. Cancelling leaves no output.\n\n"
        "A style image (any RGB raster, e.g. a winter scene or another sensor's) gives the post-event image its "
        "appearance, in the changed and unchanged land alike: change of appearance that is not land-cover change."
    )

    IMAGE = "IMAGE"
    STEPS = "STEPS"
    CORRELATION = "CORRELATION"
    DEVICE = "DEVICE"
    THREADS = "THREADS"
    BATCH_SIZE = "BATCH_SIZE"

    OUTPUT_PRE_IMAGE = "OUTPUT_PRE_IMAGE"
    OUTPUT_POST_IMAGE = "OUTPUT_POST_IMAGE"
    OUTPUT_PRE_MAP = "OUTPUT_PRE_MAP"
    OUTPUT_POST_MAP = "OUTPUT_POST_MAP"
    OUTPUT_CHANGE_MASK = "OUTPUT_CHANGE_MASK"
    OUTPUT_RECORD = "OUTPUT_RECORD"

    # destination parameter -> the engine's file
    FILES = {
        OUTPUT_PRE_IMAGE: "t1_image.tif",
        OUTPUT_POST_IMAGE: "t2_image.tif",
        OUTPUT_PRE_MAP: "t1_semantic.tif",
        OUTPUT_POST_MAP: "t2_semantic.tif",
        OUTPUT_CHANGE_MASK: "change_mask.tif",
        OUTPUT_RECORD: "sample.json",
    }

    def initAlgorithm(self, config=None):
        self.add_semantic_inputs()
        self.addParameter(QgsProcessingParameterRasterLayer(
            self.IMAGE, "Pre-event image (RGB, same grid; empty: generated from the map)", optional=True))
        self.add_pre_event_option()
        self.add_post_event_options()
        self.add_change_inputs()
        series.add_series_inputs(self, self.CHANGES)
        add_style_parameters(self)
        self.add_model_input()
        self.addParameter(QgsProcessingParameterNumber(
            self.STEPS, "Diffusion steps (more: slower, finer)", type=compat.NUMBER_INTEGER, defaultValue=DEFAULT_STEPS,
            minValue=1, maxValue=1000))
        self.addParameter(QgsProcessingParameterNumber(
            self.CORRELATION, "Content correlation s, 0-1 (empty: drawn in 0.7-1)", type=compat.NUMBER_DOUBLE,
            optional=True, minValue=0.0, maxValue=1.0))
        self.add_remap_and_seed()
        self.addParameter(QgsProcessingParameterEnum(self.DEVICE, "Device", options=list(DEVICE_LABELS), defaultValue=0))
        self.add_precision_option()
        self.add_sampler_options()
        self.addParameter(compat.advanced(QgsProcessingParameterNumber(
            self.THREADS, "CPU threads (empty: all cores)", type=compat.NUMBER_INTEGER, optional=True, minValue=1)))
        self.addParameter(compat.advanced(QgsProcessingParameterNumber(
            self.BATCH_SIZE, "Tiles per network call", type=compat.NUMBER_INTEGER, defaultValue=4, minValue=1)))

        self.addParameter(QgsProcessingParameterRasterDestination(self.OUTPUT_PRE_IMAGE, "Pre-event image"))
        self.addParameter(QgsProcessingParameterRasterDestination(self.OUTPUT_POST_IMAGE, "Post-event image"))
        self.addParameter(QgsProcessingParameterRasterDestination(self.OUTPUT_POST_MAP, "Post-event map"))
        self.addParameter(QgsProcessingParameterRasterDestination(self.OUTPUT_CHANGE_MASK, "Change mask"))
        self.addParameter(QgsProcessingParameterRasterDestination(
            self.OUTPUT_PRE_MAP, "Pre-event map (the input map on the output grid)", optional=True, createByDefault=True))
        self.addParameter(QgsProcessingParameterFileDestination(
            self.OUTPUT_RECORD, "Sample record (JSON: seed, s, events, device)", "JSON files (*.json)",
            optional=True, createByDefault=False))
        series.add_series_output(self)

        self.addOutput(QgsProcessingOutputString("DEVICE", "Device used"))
        self.addOutput(QgsProcessingOutputString("DEVICE_NOTE", "Why this device"))
        self.addOutput(QgsProcessingOutputNumber("SEED", "Seed used"))
        self.addOutput(QgsProcessingOutputNumber("CORRELATION_S", "Content correlation s used"))
        self.addOutput(QgsProcessingOutputNumber("CHANGED_FRACTION", "Fraction of the land that changed"))

    def processAlgorithm(self, parameters, context, feedback):
        require_engine()
        with engine_errors():
            from ..engine.pipeline import GenerateSettings, generate

            semantic = self.semantic_path(parameters, context)
            image = raster_path(self.parameterAsRasterLayer(parameters, self.IMAGE, context), "pre-event image")
            spec = self.change_spec(parameters, context, feedback)
            dates, date_field = series.dates(self, parameters, context), series.date_field(self, parameters, context)
            if date_field and spec.has_vector:
                spec = replace(spec, date_field=date_field)
            threads = parameters.get(self.THREADS)
            settings = GenerateSettings(
                steps=self.parameterAsInt(parameters, self.STEPS, context),
                **self.sampler_options(parameters, context),
                seed=self.seed(parameters, context),
                correlation=(None if parameters.get(self.CORRELATION) in (None, "")
                             else self.parameterAsDouble(parameters, self.CORRELATION, context)),
                device=DEVICE_CHOICES[self.parameterAsEnum(parameters, self.DEVICE, context)],
                precision=self.precision(parameters, context),
                threads=None if threads in (None, "") else self.parameterAsInt(parameters, self.THREADS, context),
                batch_size=self.parameterAsInt(parameters, self.BATCH_SIZE, context),
                pre_event=self.pre_event(parameters, context),
                tile_size=self.sampler_tile(parameters, context),
                dates=dates,
                **style_settings(self, parameters, context),
                **self.post_event_settings(parameters, context, feedback, dates),
            )
            destinations = self.destinations(parameters, context, file_outputs=(self.OUTPUT_RECORD,))
            series_folder = series.series_folder(self, parameters, context, dates)
            files = series.engine_files(self.FILES, dates)

            out_dir = temp_run_folder()
            try:
                result = run_in_python_thread(generate, semantic, out_dir, spec, image=image, model=self.model_dir(parameters, context),
                                  remap=self.remap(parameters, context), band=self.band(parameters, context),
                                  settings=settings, progress=engine_progress(feedback))
                feedback.pushInfo(f"Device: {result['device']} ({result['device_note']}); seed {result['seed']}, "
                                  f"s = {result['correlation_s']:.3f}, {100 * result['changed_fraction']:.1f} % of the land changed.")
                # the series first: it copies sample.json, which the record's destination then takes
                series.place_series(context, Path(out_dir), series_folder, dates, self.classes(parameters, context), feedback)
                place_outputs([(Path(out_dir) / files[p], dest) for p, dest in destinations.items()], feedback)
                self.style_on_load(parameters, context, destinations)
            finally:
                remove_run_folder(Path(out_dir))

        outputs = dict(destinations)
        if series_folder is not None:
            outputs[series.OUTPUT_SERIES] = str(series_folder)
        outputs.update({
            "DEVICE": result["device"], "DEVICE_NOTE": result["device_note"], "SEED": result["seed"],
            "CORRELATION_S": result["correlation_s"], "CHANGED_FRACTION": result["changed_fraction"],
        })
        return outputs

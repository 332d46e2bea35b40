"""Processing algorithm "Simulate change events": one call to ``engine.pipeline.simulate`` (no model run)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from qgis.core import (
    QgsFeature,
    QgsFeatureSink,
    QgsProcessingException,
    QgsProcessingOutputNumber,
    QgsProcessingParameterFeatureSink,
    QgsProcessingParameterFileDestination,
    QgsProcessingParameterRasterDestination,
    QgsVectorLayer,
)

from . import qgis_compat as compat
from . import series_outputs as series
from .base import ChangeAnywhereAlgorithm
from .common import (
    engine_errors,
    engine_progress,
    place_outputs,
    remove_run_folder,
    require_engine,
    run_in_python_thread,
    temp_run_folder,
)


class SimulateChangeEvents(ChangeAnywhereAlgorithm):
    NAME = "simulatechangeevents"
    DISPLAY_NAME = "Simulate change events"
    HELP = (
        "Applies change events to a land-cover map, without running the model: random object-level events "
        "under a transition table (e.g. rangeland becomes building, building becomes bareland), or the "
        "change polygons you give. Outputs the post-event map, the change mask and the change polygons "
        "(fields from_class, to_class, from_name, to_name). With 3 or more dates, each date changes the date "
        "before (random events, or the polygons whose date field holds that date): the outputs are the last "
        "date's map and the change from the first date to the last, and the series folder holds the maps between "
        "and each consecutive change mask. Only the model's class list is read (empty model folder: the bundled "
        "model's classes)."
    )

    OUTPUT_POST_MAP = "OUTPUT_POST_MAP"
    OUTPUT_CHANGE_MASK = "OUTPUT_CHANGE_MASK"
    OUTPUT_CHANGES = "OUTPUT_CHANGES"
    OUTPUT_PRE_MAP = "OUTPUT_PRE_MAP"
    OUTPUT_EVENTS = "OUTPUT_EVENTS"

    FILES = {
        OUTPUT_POST_MAP: "t2_semantic.tif",
        OUTPUT_CHANGE_MASK: "change_mask.tif",
        OUTPUT_PRE_MAP: "t1_semantic.tif",
        OUTPUT_EVENTS: "events.json",
    }

    def initAlgorithm(self, config=None):
        self.add_semantic_inputs()
        self.add_change_inputs()
        series.add_series_inputs(self, self.CHANGES)
        self.add_model_input()
        self.add_remap_and_seed()
        self.addParameter(QgsProcessingParameterRasterDestination(self.OUTPUT_POST_MAP, "Post-event map"))
        self.addParameter(QgsProcessingParameterRasterDestination(self.OUTPUT_CHANGE_MASK, "Change mask"))
        self.addParameter(QgsProcessingParameterFeatureSink(
            self.OUTPUT_CHANGES, "Change polygons (from class, to class)", compat.SOURCE_POLYGON))
        self.addParameter(QgsProcessingParameterRasterDestination(
            self.OUTPUT_PRE_MAP, "Pre-event map (the input map on the output grid)", optional=True, createByDefault=False))
        self.addParameter(QgsProcessingParameterFileDestination(
            self.OUTPUT_EVENTS, "Event record (JSON)", "JSON files (*.json)", optional=True, createByDefault=False))
        series.add_series_output(self)
        self.addOutput(QgsProcessingOutputNumber("SEED", "Seed used"))
        self.addOutput(QgsProcessingOutputNumber("CHANGED_FRACTION", "Fraction of the land that changed"))
        self.addOutput(QgsProcessingOutputNumber("EVENTS", "Number of change events"))

    def processAlgorithm(self, parameters, context, feedback):
        require_engine(need_onnxruntime=False)
        with engine_errors():
            from ..engine.pipeline import simulate

            semantic = self.semantic_path(parameters, context)
            spec = self.change_spec(parameters, context, feedback)
            dates, date_field = series.dates(self, parameters, context), series.date_field(self, parameters, context)
            if date_field and spec.has_vector:
                spec = replace(spec, date_field=date_field)
            destinations = self.destinations(parameters, context, file_outputs=(self.OUTPUT_EVENTS,))
            # no images: the series folder holds the maps between, the change masks and a copy of events.json
            series_files = {"images": False, "record": self.FILES[self.OUTPUT_EVENTS]}
            series_folder = series.series_folder(self, parameters, context, dates, **series_files)
            files = series.engine_files(self.FILES, dates)

            out_dir = temp_run_folder()
            try:
                result = run_in_python_thread(simulate, semantic, out_dir, spec, model=self.model_dir(parameters, context),
                                  remap=self.remap(parameters, context), band=self.band(parameters, context),
                                  seed=self.seed(parameters, context), progress=engine_progress(feedback), dates=dates)
                if feedback.isCanceled():
                    raise QgsProcessingException("Cancelled by the user; nothing was written.")
                sink_id = self._copy_polygons(Path(out_dir) / "changes.gpkg", parameters, context)
                # the series first: it copies the record, which the record's destination then takes
                series.place_series(context, Path(out_dir), series_folder, dates, self.classes(parameters, context), feedback,
                                    **series_files)
                place_outputs([(Path(out_dir) / files[p], dest) for p, dest in destinations.items()], feedback)
                self.style_on_load(parameters, context, destinations)
            finally:
                remove_run_folder(Path(out_dir))

        feedback.pushInfo(f"{len(result['events'])} change events, seed {result['seed']}, "
                          f"{100 * result['changed_fraction']:.1f} % of the land changed.")
        outputs = dict(destinations)
        if series_folder is not None:
            outputs[series.OUTPUT_SERIES] = str(series_folder)
        outputs.update({self.OUTPUT_CHANGES: sink_id, "SEED": result["seed"],
                        "CHANGED_FRACTION": result["changed_fraction"], "EVENTS": len(result["events"])})
        return outputs

    def _copy_polygons(self, gpkg: Path, parameters, context) -> str:
        """The engine's change polygons into the sink the user chose (any format, or a temporary layer)."""
        source = QgsVectorLayer(f"{gpkg}|layername=changes", "changes", "ogr")
        if not source.isValid():
            raise QgsProcessingException(f"The engine's change polygons {gpkg} cannot be read.")
        dest = self.parameterAsOutputLayer(parameters, self.OUTPUT_CHANGES, context) or ""
        if dest and not dest.startswith(("memory:", "ogr:", "postgres:", "postgis:", "spatialite:", "mssql:", "oracle:", "hana:")):
            Path(dest.split("|")[0]).parent.mkdir(parents=True, exist_ok=True)  # as for the rasters
        sink, sink_id = self.parameterAsSink(parameters, self.OUTPUT_CHANGES, context, source.fields(),
                                             source.wkbType(), source.crs())
        if sink is None:
            raise QgsProcessingException(self.invalidSinkError(parameters, self.OUTPUT_CHANGES))
        for feature in source.getFeatures():
            out = QgsFeature(feature)
            sink.addFeature(out, QgsFeatureSink.Flag.FastInsert)
        del sink
        return sink_id

"""The base of the ChangeAnywhere algorithms: naming, help, and the inputs they share."""

from __future__ import annotations

from pathlib import Path

from qgis.core import (
    QgsProcessingAlgorithm,
    QgsProcessingException,
    QgsProcessingParameterBand,
    QgsProcessingParameterBoolean,
    QgsProcessingParameterEnum,
    QgsProcessingParameterFeatureSource,
    QgsProcessingParameterField,
    QgsProcessingParameterFile,
    QgsProcessingParameterNumber,
    QgsProcessingParameterRasterLayer,
    QgsProcessingParameterString,
)
from qgis.PyQt.QtGui import QIcon

from ..engine.diffusion import DEFAULT_ETA, DEFAULT_PRE_EVENT, DEFAULT_SAMPLER, GUIDANCE_RANGE, PRE_EVENT_CHOICES, SAMPLERS
from ..engine.diffusion import DEFAULT_MIXING, MIXINGS, default_tile_text
from ..engine.diffusion import DEFAULT_PRECISION, PRECISIONS
from ..engine.diffusion import DEFAULT_INPAINT_MARGIN_PX, DEFAULT_POST_EVENT, DEFAULT_RERENDER_STRENGTH, POST_EVENT_CHOICES, ui_post_event
from . import qgis_compat as compat
from .common import class_list, raster_path

ICON = Path(__file__).resolve().parent.parent / "icon.png"


def remap_label(whose: str) -> str:
    from ..engine.landcover import builtin_remaps

    return f"Class remap of the {whose} codes: empty, a built-in table ({', '.join(builtin_remaps())}), or a JSON file {{\"their code\": our code}}"


# The built-in transition tables, default first, as the Processing dialog lists them (the engine names them).
TRANSITION_TABLE_LABELS = {"oem": "OpenEarthMap rules (every class changes, within the rules)",
                           "buildings": "buildings only (new and demolished buildings, as LEVIR-CD and WHU-CD label change)"}


def transition_tables() -> list[str]:
    from ..engine.events import builtin_tables

    return sorted(builtin_tables(), key=lambda name: (name != "oem", name))


class ChangeAnywhereAlgorithm(QgsProcessingAlgorithm):
    """Subclasses set NAME, DISPLAY_NAME, HELP and implement initAlgorithm / processAlgorithm."""

    NAME = ""
    DISPLAY_NAME = ""
    HELP = ""

    SEMANTIC = "SEMANTIC"
    BAND = "BAND"
    CHANGES = "CHANGES"
    CLASS_FIELD = "CLASS_FIELD"
    RANDOM_EVENTS = "RANDOM_EVENTS"
    ONLY_FROM = "ONLY_FROM"
    TRANSITIONS = "TRANSITIONS"
    TRANSITION_TABLE = "TRANSITION_TABLE"
    MODEL = "MODEL"
    REMAP = "REMAP"
    SEED = "SEED"
    ETA = "ETA"
    GUIDANCE = "GUIDANCE"
    PRE_EVENT = "PRE_EVENT"
    POST_EVENT = "POST_EVENT"
    INPAINT_MARGIN = "INPAINT_MARGIN"
    RERENDER_STRENGTH = "RERENDER_STRENGTH"
    POST_EVENT_LABELS = {"full": "drawn in full by the model (full)",
                         "inpaint": "inpainted: the pre-event image where the land did not change, the model draws the change (inpaint)"}
    SAMPLER = "SAMPLER"
    SAMPLER_TILE = "SAMPLER_TILE"
    SAMPLER_LABELS = {"ddim": "DDIM", "dpmpp-2m": "DPM-Solver++ 2M (second order, for fewer steps; no eta)"}
    MIXING = "MIXING"
    MIXING_LABELS = {"latent": "latent: the unchanged land's noisy state replaced (the paper's)",
                     "prediction": "prediction: its predicted clean image replaced before each update"}
    PRECISION = "PRECISION"
    PRECISION_LABELS = {"float32": "float32: the model package's own denoiser",
                        "int8": "int8: its quantised denoiser (faster on the CPU; CPU only; made by "
                                "python -m model_export.export.quantize --package DIR)"}

    def name(self):
        return self.NAME

    def displayName(self):
        return self.DISPLAY_NAME

    def group(self):
        return ""

    def groupId(self):
        return ""

    def shortHelpString(self):
        return self.HELP

    def icon(self):
        return QIcon(str(ICON))

    def createInstance(self):
        return type(self)()

    # --- shared inputs -------------------------------------------------------------------------
    def add_semantic_inputs(self) -> None:
        self.addParameter(QgsProcessingParameterRasterLayer(self.SEMANTIC, "Land-cover (semantic) raster"))
        # optional=True: QGIS 3.22's band parameter refuses a missing value despite its default (1).
        self.addParameter(QgsProcessingParameterBand(self.BAND, "Band holding the class codes", 1, self.SEMANTIC, optional=True))

    def add_change_inputs(self) -> None:
        self.addParameter(QgsProcessingParameterFeatureSource(
            self.CHANGES, "Change polygons (each with its target class)", [compat.SOURCE_POLYGON], optional=True))
        self.addParameter(QgsProcessingParameterField(
            self.CLASS_FIELD, "Target-class field (class code or name)", parentLayerParameterName=self.CHANGES,
            type=compat.FIELD_ANY, optional=True))
        self.addParameter(QgsProcessingParameterBoolean(
            self.RANDOM_EVENTS, "Random change events instead of polygons", defaultValue=False))
        self.addParameter(compat.advanced(QgsProcessingParameterString(
            self.ONLY_FROM, "Only land of these classes changes (comma-separated codes or names)", optional=True)))
        self.add_transition_inputs("random events")

    def add_transition_inputs(self, events: str) -> None:
        """Which classes may become which in the simulated events: a built-in table, or the user's JSON file."""
        self.addParameter(compat.advanced(QgsProcessingParameterEnum(
            self.TRANSITION_TABLE, f"Transition table for {events}", options=[TRANSITION_TABLE_LABELS.get(t, t) for t in transition_tables()],
            defaultValue=0)))
        self.addParameter(compat.advanced(QgsProcessingParameterFile(
            self.TRANSITIONS, f"Transition table file for {events} (JSON; instead of a built-in table)",
            behavior=compat.FILE_BEHAVIOR_FILE, extension="json", optional=True)))

    def transitions(self, parameters, context) -> str | None:
        """The table for the engine: the user's file, a built-in name, or None for the default table."""
        path = self.parameterAsFile(parameters, self.TRANSITIONS, context) or None
        chosen = transition_tables()[self.parameterAsEnum(parameters, self.TRANSITION_TABLE, context)]
        if path and chosen != "oem":
            raise QgsProcessingException(
                f"Give either a built-in transition table ({chosen} was chosen) or a transition table file ({path}), not both.")
        return path or (None if chosen == "oem" else chosen)

    def add_model_input(self) -> None:
        self.addParameter(QgsProcessingParameterFile(
            self.MODEL, "Model package folder (empty: the bundled model)", behavior=compat.FILE_BEHAVIOR_FOLDER, optional=True))

    def add_remap_and_seed(self) -> None:
        self.addParameter(compat.advanced(QgsProcessingParameterString(
            self.REMAP, remap_label("raster's"), optional=True)))
        self.addParameter(QgsProcessingParameterNumber(
            self.SEED, "Random seed (empty: a fresh one, reported in the outputs)", type=compat.NUMBER_INTEGER,
            optional=True, minValue=0))

    def add_sampler_options(self) -> None:
        """The solver; latent mixing, DDIM eta, the guidance scale and the sampler's tile, advanced: their defaults (what the model
        card and check S2 measured) suit most runs."""
        self.addParameter(QgsProcessingParameterEnum(
            self.SAMPLER, "Sampler", options=[self.SAMPLER_LABELS[s] for s in SAMPLERS], defaultValue=SAMPLERS.index(DEFAULT_SAMPLER)))
        self.addParameter(compat.advanced(QgsProcessingParameterEnum(
            self.MIXING, "Latent mixing (how the unchanged land is held to the pre-event image)",
            options=[self.MIXING_LABELS[m] for m in MIXINGS], defaultValue=MIXINGS.index(DEFAULT_MIXING))))
        self.addParameter(compat.advanced(QgsProcessingParameterNumber(
            self.SAMPLER_TILE, f"Sampler tile, px (empty: {default_tile_text()}; larger: fewer network calls, e.g. 512 for a "
                               "256 px model)",
            type=compat.NUMBER_INTEGER, optional=True, minValue=1)))
        self.addParameter(compat.advanced(QgsProcessingParameterNumber(
            self.ETA, "DDIM eta (0: deterministic updates)", type=compat.NUMBER_DOUBLE, defaultValue=DEFAULT_ETA,
            minValue=0.0, maxValue=1.0)))
        self.addParameter(compat.advanced(QgsProcessingParameterNumber(
            self.GUIDANCE, "Guidance scale (empty: the model's own; higher follows the map more, colours saturate)",
            type=compat.NUMBER_DOUBLE, optional=True, minValue=GUIDANCE_RANGE[0], maxValue=GUIDANCE_RANGE[1])))

    def add_precision_option(self) -> None:
        """Which denoiser the model package runs, advanced and beside the device: int8 needs a package that carries one."""
        self.addParameter(compat.advanced(QgsProcessingParameterEnum(
            self.PRECISION, "Denoiser precision", options=[self.PRECISION_LABELS[p] for p in PRECISIONS],
            defaultValue=PRECISIONS.index(DEFAULT_PRECISION))))

    def precision(self, parameters, context) -> str:
        return PRECISIONS[self.parameterAsEnum(parameters, self.PRECISION, context)]

    def add_pre_event_option(self) -> None:
        """What the pre-event image is when one is given: the image itself, or the autoencoder's copy of it."""
        labels = {"real": "the image itself (real)", "redrawn": "the model's copy of it (redrawn: same look as the post-event image)"}
        self.addParameter(QgsProcessingParameterEnum(
            self.PRE_EVENT, "Pre-event image is (when one is given)", options=[labels[c] for c in PRE_EVENT_CHOICES],
            defaultValue=PRE_EVENT_CHOICES.index(DEFAULT_PRE_EVENT)))

    def add_post_event_options(self) -> None:
        """Whether the model draws the whole post-event image or only the change; the margin and re-render, advanced."""
        self.addParameter(QgsProcessingParameterEnum(
            self.POST_EVENT, "Post-event image", options=[self.POST_EVENT_LABELS[c] for c in POST_EVENT_CHOICES],
            defaultValue=POST_EVENT_CHOICES.index(DEFAULT_POST_EVENT)))
        self.addParameter(compat.advanced(QgsProcessingParameterNumber(
            self.INPAINT_MARGIN, "Inpainting margin, px (drawn around the change, then faded into the pre-event image)",
            type=compat.NUMBER_INTEGER, defaultValue=DEFAULT_INPAINT_MARGIN_PX, minValue=0, maxValue=1024)))
        self.addParameter(compat.advanced(QgsProcessingParameterNumber(
            self.RERENDER_STRENGTH, "Inpainting: re-render strength of the kept land (0: kept pixel for pixel, 1: drawn again)",
            type=compat.NUMBER_DOUBLE, defaultValue=DEFAULT_RERENDER_STRENGTH, minValue=0.0, maxValue=1.0)))

    # --- reading them --------------------------------------------------------------------------
    def destinations(self, parameters, context, file_outputs: tuple = ()) -> dict:
        """Where the user wants each of ``self.FILES``: layers as output layers, the rest as plain files."""
        found = {}
        for param in self.FILES:
            read = self.parameterAsFileOutput if param in file_outputs else self.parameterAsOutputLayer
            dest = read(parameters, param, context)
            if dest:
                found[param] = dest
        return found

    def semantic_path(self, parameters, context) -> str:
        layer = self.parameterAsRasterLayer(parameters, self.SEMANTIC, context)
        if layer is None:
            raise QgsProcessingException("Choose a land-cover raster layer (SEMANTIC).")
        return raster_path(layer, "land-cover")

    def band(self, parameters, context) -> int:
        value = parameters.get(self.BAND)
        return 1 if value in (None, "") else max(1, self.parameterAsInt(parameters, self.BAND, context))

    def model_dir(self, parameters, context) -> str | None:
        value = self.parameterAsFile(parameters, self.MODEL, context)
        return value or None

    def style_on_load(self, parameters, context, destinations: dict) -> None:
        """The outputs Processing adds to the project get the dock's styles (true colour, the class palette)."""
        from .layer_styles import style_when_loaded

        style_when_loaded(context, {dest: self.FILES[param] for param, dest in destinations.items()}, self.classes(parameters, context))

    def classes(self, parameters, context) -> list[dict]:
        """The model's classes (code, name, colour), for the outputs' styles."""
        from ..engine.diffusion import default_model_dir, read_manifest

        return read_manifest(self.model_dir(parameters, context) or default_model_dir(), verify_hashes=False)["classes"]

    def remap(self, parameters, context) -> str | None:
        value = (self.parameterAsString(parameters, self.REMAP, context) or "").strip()
        return value or None

    def sampler_options(self, parameters, context) -> dict:
        """``sampler``, ``mixing``, ``eta`` and ``guidance`` (None: the model's own) for the engine's settings."""
        guidance = parameters.get(self.GUIDANCE)
        return {"sampler": SAMPLERS[self.parameterAsEnum(parameters, self.SAMPLER, context)],
                "mixing": MIXINGS[self.parameterAsEnum(parameters, self.MIXING, context)],
                "eta": self.parameterAsDouble(parameters, self.ETA, context),
                "guidance": None if guidance in (None, "") else self.parameterAsDouble(parameters, self.GUIDANCE, context)}

    def sampler_tile(self, parameters, context) -> int | None:
        """The sampler's tile in pixels; None: the model's own."""
        value = parameters.get(self.SAMPLER_TILE)
        return None if value in (None, "") else self.parameterAsInt(parameters, self.SAMPLER_TILE, context)

    def pre_event(self, parameters, context) -> str:
        return PRE_EVENT_CHOICES[self.parameterAsEnum(parameters, self.PRE_EVENT, context)]

    def post_event_settings(self, parameters, context, feedback, dates: int) -> dict:
        """``post_event``, ``inpaint_margin_px`` and ``rerender_strength`` for the engine's settings. The enum always
        holds a mode, the pairs' default or a choice alike: "inpaint" with a series is drawn in full (the engine's
        ui_post_event), and the log says so."""
        post_event, note = ui_post_event(POST_EVENT_CHOICES[self.parameterAsEnum(parameters, self.POST_EVENT, context)], dates)
        if note:
            feedback.pushWarning(note)
        return {"post_event": post_event,
                "inpaint_margin_px": self.parameterAsInt(parameters, self.INPAINT_MARGIN, context),
                "rerender_strength": self.parameterAsDouble(parameters, self.RERENDER_STRENGTH, context)}

    def seed(self, parameters, context) -> int | None:
        value = parameters.get(self.SEED)
        if value is None or value == "":
            return None
        return self.parameterAsInt(parameters, self.SEED, context)

    def change_spec(self, parameters, context, feedback):
        from ..engine.pipeline import ChangeSpec

        random = self.parameterAsBoolean(parameters, self.RANDOM_EVENTS, context)
        has_polygons = parameters.get(self.CHANGES) not in (None, "")
        if random == has_polygons:
            raise QgsProcessingException(
                "Give exactly one source of change events: either change polygons (with their target-class field) "
                "or tick 'Random change events'.")
        only_from = class_list(self.parameterAsString(parameters, self.ONLY_FROM, context))
        transitions = self.transitions(parameters, context)
        if random:
            return ChangeSpec(random=True, only_from=only_from, transitions=transitions)
        class_field = self.parameterAsString(parameters, self.CLASS_FIELD, context)
        if not class_field:
            raise QgsProcessingException(
                "Choose the field of the change polygons that holds each polygon's target class (CLASS_FIELD).")
        # Any polygon source (memory layer, selection, database): the engine reads a file, so QGIS
        # exports it when needed.
        path, layer_name = self.parameterAsCompatibleSourceLayerPathAndLayerName(
            parameters, self.CHANGES, context, ["gpkg", "geojson", "shp"], "gpkg", feedback)
        if not path:
            raise QgsProcessingException("The change polygons layer cannot be read; check CHANGES.")
        return ChangeSpec(vector=path, class_field=class_field, layer=layer_name or None,
                          only_from=only_from, transitions=transitions)

"""The style image's parameters (an appearance reference, not on the map's grid) and their reading, for the algorithms
that generate post-event images."""

from __future__ import annotations

from qgis.core import QgsProcessingParameterNumber, QgsProcessingParameterRasterLayer

from ..engine.diffusion import DEFAULT_STYLE_STRENGTH
from . import qgis_compat as compat
from .common import raster_path

STYLE = "STYLE"
STYLE_STRENGTH = "STYLE_STRENGTH"


def add_style_parameters(alg) -> None:
    alg.addParameter(QgsProcessingParameterRasterLayer(
        STYLE, "Style image (8-bit RGB of any size and grid, e.g. another season or sensor: the post-event image takes "
               "its appearance; empty: none)", optional=True))
    alg.addParameter(QgsProcessingParameterNumber(
        STYLE_STRENGTH, "Style strength (0: none, 1: the style image's appearance)", type=compat.NUMBER_DOUBLE,
        defaultValue=DEFAULT_STYLE_STRENGTH, minValue=0.0, maxValue=1.0))


def style_settings(alg, parameters, context) -> dict:
    """``style`` (the file, or None) and ``style_strength`` for the engine's settings."""
    layer = alg.parameterAsRasterLayer(parameters, STYLE, context)
    return {"style": raster_path(layer, "style image"),
            "style_strength": alg.parameterAsDouble(parameters, STYLE_STRENGTH, context)}

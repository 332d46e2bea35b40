"""How a detection's outputs look when added: the change probability as a ramp from transparent to red, the change
mask black/white (as the generator's, layer_styles.py), the change polygons outlined in red."""

from __future__ import annotations

from qgis.core import (
    QgsColorRampShader,
    QgsFillSymbol,
    QgsProcessingLayerPostProcessorInterface,
    QgsRasterLayer,
    QgsRasterShader,
    QgsSingleBandPseudoColorRenderer,
    QgsSingleSymbolRenderer,
    QgsVectorLayer,
)
from qgis.PyQt.QtGui import QColor

from .layer_styles import style_change_mask

PROBABILITY, MASK, POLYGONS = "probability", "mask", "polygons"


def style_probability(layer) -> None:
    """0 transparent, through yellow, to red at 1: unchanged land shows the image below it."""
    ramp = QgsColorRampShader(0.0, 1.0)
    ramp.setColorRampType(QgsColorRampShader.Type.Interpolated)
    ramp.setColorRampItemList([QgsColorRampShader.ColorRampItem(0.0, QColor(255, 255, 178, 0), "0"),
                               QgsColorRampShader.ColorRampItem(0.5, QColor(253, 141, 60, 160), "0.5"),
                               QgsColorRampShader.ColorRampItem(1.0, QColor(189, 0, 38, 230), "1")])
    shader = QgsRasterShader()
    shader.setRasterShaderFunction(ramp)
    renderer = QgsSingleBandPseudoColorRenderer(layer.dataProvider(), 1, shader)
    renderer.setClassificationMin(0.0)
    renderer.setClassificationMax(1.0)
    layer.setRenderer(renderer)
    layer.triggerRepaint()


def style_polygons(layer) -> None:
    symbol = QgsFillSymbol.createSimple({"color": "227,26,28,60", "outline_color": "227,26,28,255", "outline_width": "0.6"})
    layer.setRenderer(QgsSingleSymbolRenderer(symbol))
    layer.triggerRepaint()


def style_detection_output(layer, kind: str) -> None:
    if kind == PROBABILITY and isinstance(layer, QgsRasterLayer):
        style_probability(layer)
    elif kind == MASK and isinstance(layer, QgsRasterLayer):
        style_change_mask(layer)
    elif kind == POLYGONS and isinstance(layer, QgsVectorLayer):
        style_polygons(layer)


class _StyleOnLoad(QgsProcessingLayerPostProcessorInterface):
    def __init__(self, kind: str):
        super().__init__()
        self.kind = kind

    def postProcessLayer(self, layer, context, feedback):  # noqa: N802 (QGIS's name)
        style_detection_output(layer, self.kind)


_KEEP: list[_StyleOnLoad] = []  # Processing holds only a pointer to a post-processor: Python keeps it alive


def style_detection_on_load(context, outputs: dict[str, str]) -> None:
    """``outputs``: destination path -> kind (probability, mask, polygons); each one Processing loads gets its style."""
    for path, kind in outputs.items():
        if context.willLoadLayerOnCompletion(path):
            processor = _StyleOnLoad(kind)
            _KEEP.append(processor)
            context.layerToLoadOnCompletionDetails(path).setPostProcessor(processor)

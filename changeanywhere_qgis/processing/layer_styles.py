"""How the outputs look when they are added: the images in true colour, the land-cover maps in the model's
class palette, the change mask black/white, the change polygons in their target class's colour.

Beside the algorithms, not in gui/: Processing styles the outputs it loads (a layer post-processor) and the dock
styles the ones it adds, and the dock already builds on processing/ (never the other way round)."""

from __future__ import annotations

import re

from qgis.core import (
    QgsCategorizedSymbolRenderer,
    QgsFillSymbol,
    QgsMultiBandColorRenderer,
    QgsPalettedRasterRenderer,
    QgsProcessingLayerPostProcessorInterface,
    QgsRasterLayer,
    QgsRendererCategory,
)
from qgis.PyQt.QtGui import QColor

MASK_CLASSES = ((0, "unchanged", QColor(0, 0, 0)), (1, "changed", QColor(255, 255, 255)))


def class_color(cls: dict) -> QColor:
    r, g, b = cls["color"][:3]
    return QColor(int(r), int(g), int(b))


def style_land_cover(layer, classes: list[dict]) -> None:
    """Paletted renderer with the model's class names and colours (``classes``: code, name, color)."""
    palette = [QgsPalettedRasterRenderer.Class(int(c["code"]), class_color(c), f"{c['code']} {c['name']}") for c in classes]
    layer.setRenderer(QgsPalettedRasterRenderer(layer.dataProvider(), 1, palette))
    layer.triggerRepaint()


def style_change_mask(layer) -> None:
    """Black unchanged, white changed; nodata (255) stays transparent."""
    palette = [QgsPalettedRasterRenderer.Class(code, color, label) for code, label, color in MASK_CLASSES]
    layer.setRenderer(QgsPalettedRasterRenderer(layer.dataProvider(), 1, palette))
    layer.triggerRepaint()


def style_true_colour(layer) -> None:
    """Bands 1, 2, 3 as red, green, blue with their byte values as they are: the model's colours, not
    QGIS's default 2-98 % stretch (which brightens each image differently, so a pre/post pair would not
    compare). The engine marks nodata with a per-dataset mask, which QGIS's GDAL provider shows as one
    more band after the colours: it is the transparency here, never a colour."""
    provider = layer.dataProvider()
    renderer = QgsMultiBandColorRenderer(provider, 1, 2, 3)  # no contrast enhancement: values as written
    if layer.bandCount() == 4 and _mask_as_last_band(layer):
        renderer.setAlphaBand(4)
    layer.setRenderer(renderer)
    layer.triggerRepaint()


def _mask_as_last_band(layer) -> bool:
    """The file has three bands and QGIS added the mask as a fourth (GDAL's GMF_PER_DATASET)."""
    try:
        from osgeo import gdal
    except ImportError:
        return True
    dataset = gdal.Open(layer.source().split("|")[0])
    return dataset is not None and dataset.RasterCount == 3 and dataset.GetRasterBand(1).GetMaskFlags() == gdal.GMF_PER_DATASET


# engine output file -> how it is styled
OUTPUT_KINDS = {"t1_image.tif": "image", "t2_image.tif": "image", "t1_semantic.tif": "map", "t2_semantic.tif": "map",
                "change_mask.tif": "mask"}


SERIES_KINDS = (("image", re.compile(r"t\d+_image\.tif")), ("map", re.compile(r"t\d+_semantic\.tif")),
                ("mask", re.compile(r"change_t\d+_t\d+\.tif")))  # a series of dates' files (t3_image.tif, change_t2_t3.tif)


def output_kind(name: str) -> str | None:
    """How an engine output is styled ("image", "map", "mask"), by its file name; None: not a raster output."""
    return OUTPUT_KINDS.get(name) or next((kind for kind, pattern in SERIES_KINDS if pattern.fullmatch(name)), None)


def style_output(layer, name: str, classes: list[dict]) -> None:
    """Style one engine output (by its file name, e.g. ``t2_image.tif``) as it is added to the project."""
    kind = output_kind(name)
    if kind == "image":
        style_true_colour(layer)
    elif kind == "map" and classes:
        style_land_cover(layer, classes)
    elif kind == "mask":
        style_change_mask(layer)


class _StyleOnLoad(QgsProcessingLayerPostProcessorInterface):
    """Styles an algorithm's output when Processing adds it to the project (the toolbox's "Open output
    file after running algorithm")."""

    def __init__(self, name: str, classes: list[dict]):
        super().__init__()
        self.name, self.classes = name, classes

    def postProcessLayer(self, layer, context, feedback):  # noqa: N802 (QGIS's name)
        if isinstance(layer, QgsRasterLayer):
            style_output(layer, self.name, self.classes)


_KEEP: list[_StyleOnLoad] = []  # Processing holds only a pointer to a post-processor: Python keeps it alive


def style_when_loaded(context, outputs: dict[str, str], classes: list[dict]) -> None:
    """``outputs``: destination path -> engine file name; each one Processing loads gets its style."""
    for path, name in outputs.items():
        style_output_on_load(context, path, name, classes)


def style_output_on_load(context, path: str, name: str, classes: list[dict]) -> None:
    """The output at ``path`` (engine file ``name``) gets its style when Processing loads it."""
    if output_kind(name) and context.willLoadLayerOnCompletion(path):
        processor = _StyleOnLoad(name, classes)
        _KEEP.append(processor)
        context.layerToLoadOnCompletionDetails(path).setPostProcessor(processor)


def style_change_polygons(layer, classes: list[dict], field: str) -> None:
    """Each polygon filled with its target class's colour (semi-transparent), outlined in it."""
    categories = []
    for c in classes:
        color = class_color(c)
        symbol = QgsFillSymbol.createSimple({
            "color": f"{color.red()},{color.green()},{color.blue()},110",
            "outline_color": f"{color.red()},{color.green()},{color.blue()},255",
            "outline_width": "0.6",
        })
        categories.append(QgsRendererCategory(int(c["code"]), symbol, f"→ {c['name']}"))
    layer.setRenderer(QgsCategorizedSymbolRenderer(field, categories))
    layer.triggerRepaint()

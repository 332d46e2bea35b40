"""Styles from the model's class palette: land-cover maps, the change mask, the change polygons."""

from __future__ import annotations

from qgis.core import (
    QgsCategorizedSymbolRenderer,
    QgsFillSymbol,
    QgsPalettedRasterRenderer,
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

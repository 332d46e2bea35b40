"""The polygon being drawn, shown as a rubber band in the target class's colour."""

from __future__ import annotations

from qgis.core import QgsGeometry, QgsPointXY
from qgis.gui import QgsRubberBand
from qgis.PyQt.QtGui import QColor

from ..processing.qgis_compat import POLYGON_GEOMETRY


class PolygonRubberBand:
    def __init__(self, canvas, color: QColor | None = None):
        self.canvas = canvas
        self.band = QgsRubberBand(canvas, POLYGON_GEOMETRY)
        self.band.setWidth(2)
        self.vertices: list[QgsPointXY] = []
        self.hover: QgsPointXY | None = None
        self.set_color(color or QColor(255, 0, 0))

    def set_color(self, color: QColor) -> None:
        stroke = QColor(color)
        stroke.setAlpha(255)
        fill = QColor(color)
        fill.setAlpha(90)
        self.band.setStrokeColor(stroke)
        self.band.setFillColor(fill)
        self.canvas.refresh()

    def set_vertices(self, points: list) -> None:
        self.vertices = list(points)
        if not self.vertices:
            self.hover = None
        self._update()

    def set_hover(self, point: QgsPointXY | None) -> None:
        self.hover = point
        self._update()

    def _update(self) -> None:
        points = self.vertices + ([self.hover] if self.hover is not None and self.vertices else [])
        if not points:
            self.band.reset(POLYGON_GEOMETRY)
            return
        self.band.setToGeometry(QgsGeometry.fromPolygonXY([points]), None)

    def geometry(self) -> QgsGeometry:
        return self.band.asGeometry()

    def remove(self) -> None:
        self.band.reset(POLYGON_GEOMETRY)
        self.canvas.scene().removeItem(self.band)

"""A map tool that turns mouse and key events into a polygon, and emits signals. Nothing else.

Left click adds a vertex, right click or double click finishes (3 vertices at least), Backspace
(or Delete) removes the last vertex, Esc drops the polygon. Points are in the canvas's CRS (snapped
when QGIS's snapping is on). The dock decides what a finished polygon means.
"""

from __future__ import annotations

from qgis.core import QgsGeometry, QgsPointXY
from qgis.gui import QgsMapTool
from qgis.PyQt.QtCore import Qt, pyqtSignal
from qgis.PyQt.QtGui import QCursor


class PolygonMapTool(QgsMapTool):
    verticesChanged = pyqtSignal(list)  # [QgsPointXY], the placed vertices
    hoverMoved = pyqtSignal(object)  # QgsPointXY under the mouse, while drawing
    polygonFinished = pyqtSignal(QgsGeometry)  # a valid polygon, canvas CRS
    drawingCancelled = pyqtSignal()

    FINISH_KEYS = (Qt.Key.Key_Return, Qt.Key.Key_Enter)
    UNDO_KEYS = (Qt.Key.Key_Backspace, Qt.Key.Key_Delete)

    def __init__(self, canvas):
        super().__init__(canvas)
        self.points: list[QgsPointXY] = []
        self._skip_release = False
        self.setCursor(QCursor(Qt.CursorShape.CrossCursor))

    # --- mouse ----------------------------------------------------------------------------------
    def canvasMoveEvent(self, event):
        if self.points:
            self.hoverMoved.emit(QgsPointXY(event.snapPoint()))

    def canvasReleaseEvent(self, event):
        if self._skip_release:  # the release that ends a double click
            self._skip_release = False
            return
        if event.button() == Qt.MouseButton.LeftButton:
            self.add_vertex(QgsPointXY(event.snapPoint()))
        elif event.button() == Qt.MouseButton.RightButton:
            self.finish()

    def canvasDoubleClickEvent(self, event):
        if event.button() == Qt.MouseButton.LeftButton:
            self._skip_release = True
            self.finish()

    # --- keys -----------------------------------------------------------------------------------
    def keyPressEvent(self, event):
        key = event.key()
        if key in self.UNDO_KEYS and self.points:
            self.undo_vertex()
            event.accept()  # stop QGIS from deleting the selected features
        elif key == Qt.Key.Key_Escape:
            self.cancel()
            event.accept()
        elif key in self.FINISH_KEYS and self.points:
            self.finish()
            event.accept()
        else:
            event.ignore()

    # --- the polygon ----------------------------------------------------------------------------
    def add_vertex(self, point: QgsPointXY) -> None:
        if self.points and self.points[-1] == point:
            return
        self.points.append(point)
        self.verticesChanged.emit(list(self.points))

    def undo_vertex(self) -> None:
        if self.points:
            self.points.pop()
            self.verticesChanged.emit(list(self.points))

    def cancel(self) -> None:
        self.points = []
        self.verticesChanged.emit([])
        self.drawingCancelled.emit()

    def finish(self) -> None:
        """Emit the polygon when it has 3 vertices or more; a shorter one is kept for more clicks."""
        if len(self.points) < 3:
            return
        geometry = QgsGeometry.fromPolygonXY([self.points + [self.points[0]]])
        self.points = []
        self.verticesChanged.emit([])
        if not geometry.isGeosValid():
            geometry = geometry.makeValid()
        if not geometry.isEmpty():
            self.polygonFinished.emit(geometry)

    def deactivate(self):
        self.points = []
        self.verticesChanged.emit([])
        super().deactivate()

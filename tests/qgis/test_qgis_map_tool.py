"""The polygon map tool on a real QgsMapCanvas, driven by mouse and key events."""

from __future__ import annotations

import pytest
from qgis.core import QgsCoordinateReferenceSystem, QgsPointXY, QgsRectangle
from qgis.gui import QgsMapMouseEvent
from qgis.PyQt.QtCore import QEvent, QPoint, Qt
from qgis.PyQt.QtGui import QKeyEvent

from qgis_helpers import show_canvas

from changeanywhere_qgis.gui.map_tool import PolygonMapTool


@pytest.fixture()
def canvas(qgis_canvas, label_layer_info):
    crs, extent, _w, _h = label_layer_info
    show_canvas(qgis_canvas)
    qgis_canvas.setDestinationCrs(QgsCoordinateReferenceSystem(crs))
    qgis_canvas.setExtent(extent)
    qgis_canvas.refresh()
    return qgis_canvas


def pixel(canvas, x: float, y: float) -> QPoint:
    """Map coordinates -> the canvas pixel a user would click."""
    p = canvas.getCoordinateTransform().transform(x, y)
    return QPoint(round(p.x()), round(p.y()))


def mouse(tool, canvas, kind, x, y, button=Qt.MouseButton.LeftButton):
    event_type = {"move": QEvent.Type.MouseMove, "press": QEvent.Type.MouseButtonPress,
                  "release": QEvent.Type.MouseButtonRelease, "double": QEvent.Type.MouseButtonDblClick}[kind]
    event = QgsMapMouseEvent(canvas, event_type, pixel(canvas, x, y), button)
    {"move": tool.canvasMoveEvent, "press": tool.canvasPressEvent, "release": tool.canvasReleaseEvent,
     "double": tool.canvasDoubleClickEvent}[kind](event)


def click(tool, canvas, x, y, button=Qt.MouseButton.LeftButton):
    mouse(tool, canvas, "press", x, y, button)
    mouse(tool, canvas, "release", x, y, button)


def key(tool, k):
    event = QKeyEvent(QEvent.Type.KeyPress, k, Qt.KeyboardModifier.NoModifier)
    tool.keyPressEvent(event)
    return event


def square(extent: QgsRectangle):
    """Four corners well inside the extent."""
    cx, cy, dx, dy = extent.center().x(), extent.center().y(), extent.width() / 8, extent.height() / 8
    return [(cx - dx, cy - dy), (cx + dx, cy - dy), (cx + dx, cy + dy), (cx - dx, cy + dy)]


def pixel_size(canvas) -> float:
    return canvas.mapUnitsPerPixel()


def test_clicks_then_right_click_make_the_polygon(canvas):
    tool = PolygonMapTool(canvas)
    canvas.setMapTool(tool)
    done, vertices = [], []
    tool.polygonFinished.connect(done.append)
    tool.verticesChanged.connect(vertices.append)
    corners = square(canvas.extent())
    for x, y in corners:
        click(tool, canvas, x, y)
    mouse(tool, canvas, "move", *corners[0])
    assert len(vertices[-1]) == 4 and not done
    click(tool, canvas, *corners[2], button=Qt.MouseButton.RightButton)
    assert len(done) == 1 and vertices[-1] == []
    ring = done[0].asPolygon()[0]
    assert len(ring) == 5
    tol = 1.5 * pixel_size(canvas)
    for (x, y), p in zip(corners, ring):
        assert abs(p.x() - x) < tol and abs(p.y() - y) < tol
    expected = (corners[1][0] - corners[0][0]) * (corners[2][1] - corners[1][1])
    assert done[0].area() == pytest.approx(expected, rel=0.02)
    canvas.unsetMapTool(tool)


def test_double_click_finishes_without_a_duplicate_vertex(canvas):
    tool = PolygonMapTool(canvas)
    done = []
    tool.polygonFinished.connect(done.append)
    a, b, c, _ = square(canvas.extent())
    click(tool, canvas, *a)
    click(tool, canvas, *b)
    # a double click at c: press, release, double-click, release
    click(tool, canvas, *c)
    mouse(tool, canvas, "double", *c)
    mouse(tool, canvas, "release", *c)
    assert len(done) == 1
    assert len(done[0].asPolygon()[0]) == 4  # a triangle, closed
    assert tool.points == []


def test_backspace_undoes_escape_cancels(canvas):
    tool = PolygonMapTool(canvas)
    done, cancelled = [], []
    tool.polygonFinished.connect(done.append)
    tool.drawingCancelled.connect(lambda: cancelled.append(True))
    corners = square(canvas.extent())
    for x, y in corners:
        click(tool, canvas, x, y)
    event = key(tool, Qt.Key.Key_Backspace)
    assert event.isAccepted() and len(tool.points) == 3
    assert tool.points[-1].x() == pytest.approx(corners[2][0], abs=1.5 * pixel_size(canvas))
    key(tool, Qt.Key.Key_Escape)
    assert tool.points == [] and cancelled == [True]
    # too few vertices: a right click does not finish, the drawing goes on
    click(tool, canvas, *corners[0])
    click(tool, canvas, *corners[1])
    click(tool, canvas, *corners[2], button=Qt.MouseButton.RightButton)
    assert not done and len(tool.points) == 2


def test_rubber_band_follows_the_vertices_in_the_target_colour(canvas):
    from qgis.PyQt.QtGui import QColor

    from changeanywhere_qgis.gui.rubber_band import PolygonRubberBand

    tool = PolygonMapTool(canvas)
    band = PolygonRubberBand(canvas, QColor(0, 69, 255))
    tool.verticesChanged.connect(band.set_vertices)
    tool.hoverMoved.connect(band.set_hover)
    corners = square(canvas.extent())
    for x, y in corners[:3]:
        click(tool, canvas, x, y)
    mouse(tool, canvas, "move", *corners[3])
    assert band.band.strokeColor().blue() == 255
    # three clicked vertices and the hover point: the whole square
    side = QgsPointXY(*corners[0]).distance(QgsPointXY(*corners[1]))
    other = QgsPointXY(*corners[1]).distance(QgsPointXY(*corners[2]))
    assert band.geometry().area() == pytest.approx(side * other, rel=0.05)
    key(tool, Qt.Key.Key_Escape)
    assert band.geometry().isEmpty()
    band.remove()

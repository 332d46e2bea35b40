"""Run inside QGIS desktop by scripts/qgis_screenshot.sh (`qgis --code`): the picture of the README.

Opens the bundled sample (land-cover map and image), opens the plugin's dock from its toolbar action, draws the
sample's first change polygon (a building turned to water) with the dock's own map tool, generates with the bundled
model as a user would, and once the result group is on the map shows the pre-event image in a second map view
beside the generated post-event image in the main one. Then it grabs the whole X screen (the real QGIS window) into
SCREENSHOT_OUT and quits. Settings come from the environment (set by the .sh): SCREENSHOT_OUT, SCREENSHOT_STEPS,
SCREENSHOT_SAMPLER, SCREENSHOT_SEED, SCREENSHOT_WIDTH, SCREENSHOT_HEIGHT, SCREENSHOT_LOG.
"""
import os
import sys
import time
import traceback
from pathlib import Path

from qgis.core import (QgsApplication, QgsCoordinateReferenceSystem, QgsCoordinateTransform, QgsPointXY, QgsProject,
                       QgsRenderContext,
                       QgsRasterLayer)
from qgis.gui import QgsMapMouseEvent
from qgis.PyQt.QtCore import QEvent, QPoint, Qt, QTimer
from qgis.utils import iface, plugins

REPO = Path(os.environ.get("SCREENSHOT_REPO", Path.cwd()))
SAMPLES = REPO / "changeanywhere_qgis" / "samples"
OUT = Path(os.environ["SCREENSHOT_OUT"])
LOG = Path(os.environ.get("SCREENSHOT_LOG", OUT.with_suffix(".log")))
WIDTH, HEIGHT = int(os.environ.get("SCREENSHOT_WIDTH", "1920")), int(os.environ.get("SCREENSHOT_HEIGHT", "1400"))
BUILDING = 8  # OpenEarthMap's code, the bundled model's class "building"
TIMEOUT_S = float(os.environ.get("SCREENSHOT_TIMEOUT_S", "1500"))


def log(text: str) -> None:
    with LOG.open("a") as f:
        f.write(f"{time.strftime('%H:%M:%S')} {text}\n")


def quit_with(code: int) -> None:
    log(f"exit {code}")
    (LOG.parent / (LOG.name + ".rc")).write_text(str(code))
    QgsApplication.instance().exit(code)


def click(canvas, tool, x, y, button=Qt.MouseButton.LeftButton):
    p = canvas.getCoordinateTransform().transform(x, y)
    pos = QPoint(round(p.x()), round(p.y()))
    tool.canvasPressEvent(QgsMapMouseEvent(canvas, QEvent.Type.MouseButtonPress, pos, button))
    tool.canvasReleaseEvent(QgsMapMouseEvent(canvas, QEvent.Type.MouseButtonRelease, pos, button))


def building_near_centre(label_path: Path, min_pixels: int = 1500):
    """The convex hull (map coordinates) of the building nearest the map's centre, so the change shows mid-picture."""
    import numpy as np
    from osgeo import gdal
    from qgis.core import QgsGeometry
    from scipy import ndimage

    raster = gdal.Open(str(label_path))
    codes = raster.GetRasterBand(1).ReadAsArray()
    x0, dx, _, y0, _, dy = raster.GetGeoTransform()
    parts, count = ndimage.label(codes == BUILDING)
    sizes = ndimage.sum(np.ones_like(parts), parts, range(1, count + 1))
    centres = ndimage.center_of_mass(np.ones_like(parts), parts, range(1, count + 1))
    middle = np.array(codes.shape) / 2
    candidates = [i for i in range(count) if sizes[i] >= min_pixels]
    best = min(candidates, key=lambda i: np.hypot(*(np.array(centres[i]) - middle))) + 1
    rows, cols = np.nonzero(parts == best)
    corners = [QgsPointXY(x0 + (c + u) * dx, y0 + (r + v) * dy) for r, c in zip(rows, cols) for u, v in ((0, 0), (1, 1))]
    return QgsGeometry.fromMultiPointXY(corners).convexHull(), raster.GetProjection()


def draw_change(dock, label_path: Path) -> None:
    """Click the outline of a building with the dock's own map tool, then right-click to finish the polygon."""
    hull, wkt = building_near_centre(label_path)
    canvas, tool = dock.canvas, dock.tool
    dock.draw_button.setChecked(True)
    to_canvas = QgsCoordinateTransform(QgsCoordinateReferenceSystem.fromWkt(wkt), canvas.mapSettings().destinationCrs(),
                                       QgsProject.instance())
    for vertex in hull.asPolygon()[0][:-1]:
        p = to_canvas.transform(vertex)
        click(canvas, tool, p.x(), p.y())
    click(canvas, tool, p.x(), p.y(), button=Qt.MouseButton.RightButton)
    dock.draw_button.setChecked(False)


class Session:
    def __init__(self):
        self.started = time.monotonic()
        self.dock = None
        self.group = None

    def start(self) -> None:
        window = iface.mainWindow()
        window.setGeometry(0, 0, WIDTH, HEIGHT)
        image = QgsRasterLayer(str(SAMPLES / "houston_image.tif"), "houston image (pre-event)", "gdal")
        label = QgsRasterLayer(str(SAMPLES / "houston_label.tif"), "houston land cover", "gdal")
        if not (image.isValid() and label.isValid()):
            raise RuntimeError("the bundled sample rasters did not open")
        QgsProject.instance().addMapLayers([label, image])
        plugin = plugins.get("changeanywhere_qgis")
        if plugin is None:
            raise RuntimeError(f"the plugin did not load; loaded: {sorted(plugins)}")
        plugin.action.setChecked(True)  # the toolbar button: opens the dock
        dock = self.dock = plugin.dock
        from changeanywhere_qgis.processing.layer_styles import style_land_cover

        style_land_cover(label, dock.classes)
        label.triggerRepaint()
        iface.mapCanvas().setExtent(label.extent())
        dock.semantic_combo.setLayer(label)
        dock.image_combo.setLayer(image)
        dock.sampler_combo.setCurrentIndex(dock.sampler_combo.findData(os.environ.get("SCREENSHOT_SAMPLER", "ddim")))
        dock.steps_spin.setValue(int(os.environ.get("SCREENSHOT_STEPS", "50")))
        dock.seed_spin.setValue(int(os.environ.get("SCREENSHOT_SEED", "7")))
        dock.correlation_spin.setValue(0.9)
        dock.device_combo.setCurrentIndex(dock.device_combo.findData(os.environ.get("SCREENSHOT_DEVICE", "cpu")))
        dock.output_widget.setFilePath(os.environ.get("SCREENSHOT_SAMPLES_DIR", str(OUT.parent / "qgis-screenshot-samples")))
        dock.set_target_class("water")
        later(1500, self.draw_and_generate)

    def draw_and_generate(self) -> None:
        draw_change(self.dock, SAMPLES / "houston_label.tif")
        log(f"polygons drawn: {self.dock.polygons_layer().featureCount()}; model: {self.dock.model_dir()}")
        self.dock.resultsAdded.connect(self.results_added)
        self.dock.start_generation()
        log("generation started")
        later(2000, self.wait)

    def results_added(self, group) -> None:
        self.group = group

    def wait(self) -> None:
        if time.monotonic() - self.started > TIMEOUT_S:
            log("timed out waiting for the result")
            return quit_with(3)
        if self.dock.task is not None or self.group is None:
            if self.dock.task is None:  # the task ended without a result: its message is in the status line
                log(f"generation failed: {self.dock.status_label.text()}")
                return quit_with(4)
            return later(1000, self.wait)
        log(f"result: {self.dock.status_label.text()}")
        self.show_pair()
        later(2000, self.fit)

    def show_pair(self) -> None:
        """The main map: the generated post-event image under the drawn polygon; a second map view beside it, docked
        next to the Layers panel: the real pre-event image under the same polygon (a map theme, as a user would set
        it: map views without one follow the Layers panel). Legends folded, Browser closed."""
        from qgis.core import QgsMapThemeCollection
        from qgis.PyQt.QtWidgets import QDockWidget

        window = iface.mainWindow()
        project = QgsProject.instance()
        root = project.layerTreeRoot()
        polygons = self.dock.polygons_layer()

        def show_only(name):
            for node in root.findLayers():
                node.setItemVisibilityChecked(node.layer().name() == name or node.layer() == polygons)
                node.setExpanded(False)
            for group in root.findGroups():
                group.setItemVisibilityChecked(True)

        node = root.findLayer(polygons.id())  # on top of the sample's group, so its outline shows on both maps
        moved = node.clone()
        root.insertChildNode(0, moved)
        node.parent().removeChildNode(node)
        renderer = polygons.renderer()  # outlines only: the generated change shows through
        for symbol in renderer.symbols(QgsRenderContext()) if renderer is not None else []:
            for k in range(symbol.symbolLayerCount()):
                layer = symbol.symbolLayer(k)
                fill = layer.fillColor()
                fill.setAlpha(0)
                layer.setFillColor(fill)
                layer.setStrokeWidth(0.8)
        polygons.triggerRepaint()
        show_only("pre-event image")
        record = QgsMapThemeCollection.createThemeFromCurrentState(root, iface.layerTreeView().layerTreeModel())
        project.mapThemeCollection().insert("pre-event", record)
        show_only("post-event image")
        browser = window.findChild(QDockWidget, "Browser")
        if browser is not None:
            browser.hide()
        view = iface.createNewMapCanvas("pre-event image (real)")
        view_dock = view.parent()
        while view_dock is not None and not isinstance(view_dock, QDockWidget):
            view_dock = view_dock.parent()
        layers_dock = window.findChild(QDockWidget, "Layers")
        if view_dock is not None and layers_dock is not None:
            view_dock.setFloating(False)
            window.addDockWidget(Qt.DockWidgetArea.LeftDockWidgetArea, view_dock)
            window.splitDockWidget(layers_dock, view_dock, Qt.Orientation.Horizontal)
            window.resizeDocks([layers_dock, view_dock], [280, int(WIDTH * 0.3)], Qt.Orientation.Horizontal)
        view.setDestinationCrs(iface.mapCanvas().mapSettings().destinationCrs())
        view.setTheme("pre-event")
        self.canvases = (view, iface.mapCanvas())
        window.setGeometry(0, 0, WIDTH, HEIGHT)
        log(f"second map view: {view_dock is not None}, layers dock: {layers_dock is not None}; window "
            f"{window.width()}x{window.height()}, the dock's smallest height {self.dock.minimumSizeHint().height()}")

    def fit(self) -> None:
        """Both maps on the same part of the sample around the drawn change, filling each view, once the docks have
        their final sizes; then time to render."""
        from qgis.core import QgsRectangle

        canvas = iface.mapCanvas()
        polygons = self.dock.polygons_layer()
        label = QgsProject.instance().mapLayersByName("houston land cover")[0]
        whole = canvas.mapSettings().layerExtentToOutputExtent(label, label.extent())
        change = canvas.mapSettings().layerExtentToOutputExtent(polygons, polygons.extent()).center()
        # one scale for both maps (the smaller of the two, so the sample fills both), so the pair compares pixel for pixel
        units_per_pixel = min(min(0.6 * whole.width() / max(view.width(), 1), whole.height() / max(view.height(), 1))
                              for view in self.canvases)
        for view in self.canvases:
            width, height = view.width() * units_per_pixel, view.height() * units_per_pixel
            x = min(max(change.x() - width / 2, whole.xMinimum()), whole.xMaximum() - width)
            y = min(max(change.y() - height / 2, whole.yMinimum()), whole.yMaximum() - height)
            view.setExtent(QgsRectangle(x, y, x + width, y + height))
            view.refresh()
        log(f"extents: {[v.extent().toString(1) for v in self.canvases]}, sizes {[(v.width(), v.height()) for v in self.canvases]}")
        later(5000, self.grab)

    def grab(self) -> None:
        screen = QgsApplication.primaryScreen()
        picture = screen.grabWindow(0)  # the whole X screen: what a user would see
        OUT.parent.mkdir(parents=True, exist_ok=True)
        temporary = OUT.with_name(OUT.stem + ".part.png")
        if not picture.save(str(temporary)):
            log("could not write the screenshot")
            return quit_with(5)
        os.replace(temporary, OUT)
        log(f"wrote {OUT} ({picture.width()}x{picture.height()})")
        quit_with(0)


def later(ms: int, step) -> None:
    """Run step after ms on the event loop; an error is logged and QGIS quits (a screenshot must never hang QGIS)."""
    def run():
        try:
            step()
        except Exception:
            log(traceback.format_exc())
            quit_with(2)
    QTimer.singleShot(ms, run)


def main() -> None:
    later(3000, Session().start)  # after the main window and the plugins are up


main()
sys.stdout.flush()

"""The dock on a real canvas: pick layers and model, choose "water", draw over a building with the
map tool, generate as a QgsTask, and get styled layers in a group; cancel writes nothing."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from qgis.core import QgsApplication, QgsCoordinateReferenceSystem, QgsPalettedRasterRenderer, QgsRasterLayer
from qgis.gui import QgsMapMouseEvent
from qgis.PyQt.QtCore import QEvent, QPoint, Qt
from qgis_helpers import BUILDING, BUILDING_CENTRE_PX, WATER, assert_same_grid, pixel_to_map, show_canvas, value_at, wait_until

from changeanywhere_qgis.gui.dock import ChangeAnywhereDock

REPO = Path(__file__).resolve().parents[2]


def _click(canvas, tool, x, y, button=Qt.MouseButton.LeftButton):
    p = canvas.getCoordinateTransform().transform(x, y)
    pos = QPoint(round(p.x()), round(p.y()))
    tool.canvasPressEvent(QgsMapMouseEvent(canvas, QEvent.Type.MouseButtonPress, pos, button))
    tool.canvasReleaseEvent(QgsMapMouseEvent(canvas, QEvent.Type.MouseButtonRelease, pos, button))


@pytest.fixture()
def dock(qgis_iface, qgis_canvas, clean_project, tiny_model_dir, houston_label_path, houston_image_path):
    label = QgsRasterLayer(str(houston_label_path), "land cover", "gdal")
    image = QgsRasterLayer(str(houston_image_path), "image", "gdal")
    assert label.isValid() and image.isValid()
    clean_project.addMapLayers([image, label])
    show_canvas(qgis_canvas)
    qgis_canvas.setDestinationCrs(QgsCoordinateReferenceSystem("EPSG:3857"))  # the canvas in another CRS than the data
    qgis_canvas.setLayers([label, image])
    qgis_canvas.zoomToFullExtent()
    widget = ChangeAnywhereDock(qgis_iface)
    widget.semantic_combo.setLayer(label)
    widget.image_combo.setLayer(image)
    widget.model_widget.setFilePath(str(tiny_model_dir))
    widget.steps_spin.setValue(2)
    widget.seed_spin.setValue(3)
    widget.device_combo.setCurrentIndex(1)  # CPU
    yield widget
    widget.cleanup()
    widget.deleteLater()


def draw_over_building(dock, label_layer_info, half: int = 8):
    """Square of 2*half pixels around the all-building block, clicked on the canvas, then a right click."""
    canvas, tool = dock.canvas, dock.tool
    dock.draw_button.setChecked(True)
    assert canvas.mapTool() is tool
    crs, extent, width, height = label_layer_info
    row, col = BUILDING_CENTRE_PX
    to_canvas = canvas.mapSettings().layerToMapCoordinates
    from qgis.core import QgsCoordinateTransform, QgsPointXY, QgsProject

    transform = QgsCoordinateTransform(QgsCoordinateReferenceSystem(crs), canvas.mapSettings().destinationCrs(), QgsProject.instance())
    del to_canvas
    corners = [(row - half, col - half), (row - half, col + half), (row + half, col + half), (row + half, col - half)]
    for r, c in corners:
        p = transform.transform(QgsPointXY(*pixel_to_map(extent, width, height, r, c)))
        _click(canvas, tool, p.x(), p.y())
    _click(canvas, tool, p.x(), p.y(), button=Qt.MouseButton.RightButton)


def test_palette_and_drawing_make_a_target_class_feature(dock, label_layer_info):
    assert dock.palette.count() == 8 and "tiny test model" in dock.model_label.text()
    dock.set_target_class("water")
    assert dock.target_class()["code"] == WATER
    assert dock.band.band.strokeColor().name() == "#0045ff"  # the model's colour for water
    draw_over_building(dock, label_layer_info)
    layer = dock.polygons_layer()
    assert layer is not None and layer.providerType() == "memory" and layer.featureCount() == 1
    assert layer.crs().authid() == label_layer_info[0]  # the scratch layer takes the land-cover map's CRS
    feature = next(layer.getFeatures())
    assert feature["target"] == WATER and feature["target_name"] == "water"
    row, col = BUILDING_CENTRE_PX
    x, y = pixel_to_map(label_layer_info[1], label_layer_info[2], label_layer_info[3], row, col)
    from qgis.core import QgsGeometry, QgsPointXY

    assert feature.geometry().contains(QgsGeometry.fromPointXY(QgsPointXY(x, y)))
    pixel_area = (label_layer_info[1].width() / label_layer_info[2]) ** 2
    assert feature.geometry().area() == pytest.approx(16 * 16 * pixel_area, rel=0.15)
    assert dock.field_combo.currentField() == "target"


def test_dock_generates_with_a_task_and_adds_styled_layers(dock, qgis_iface, label_layer_info, tmp_path):
    dock.set_target_class("water")
    draw_over_building(dock, label_layer_info)
    dock.output_widget.setFilePath(str(tmp_path))
    dock.eta_spin.setValue(0.5)
    dock.guidance_spin.setValue(2.5)
    task = dock.start_generation()
    assert dock.generate_button.text() == "Cancel"
    assert task in QgsApplication.taskManager().tasks() or dock.task is None
    groups = []
    dock.resultsAdded.connect(groups.append)
    assert wait_until(lambda: dock.task is None, timeout=300), "the generation task did not finish"
    assert dock.last_result is not None, dock.status_label.text()
    result = dock.last_result
    assert result["device"] == "cpu" and "cpu" in dock.status_label.text()
    assert (result["eta"], result["guidance_scale"]) == (0.5, 2.5)  # the dock's sampler settings reached the engine
    successes = qgis_iface.messageBar().get_messages(3)  # Qgis.MessageLevel.Success
    assert any("device: cpu" in m for m in successes)

    group = groups[0]
    layers = {node.layer().name(): node.layer() for node in group.findLayers()}
    assert set(layers) == {"pre-event image", "post-event image", "pre-event map", "post-event map", "change mask"}
    for layer in layers.values():
        assert_same_grid(layer.source(), label_layer_info)
    for name in ("pre-event map", "post-event map"):
        renderer = layers[name].renderer()
        assert isinstance(renderer, QgsPalettedRasterRenderer)
        assert {c.value: c.label for c in renderer.classes()}[WATER] == "6 water"
        assert {c.value: c.color.name() for c in renderer.classes()}[WATER] == "#0045ff"
    assert isinstance(layers["change mask"].renderer(), QgsPalettedRasterRenderer)
    row, col = BUILDING_CENTRE_PX
    assert value_at(layers["pre-event map"].source(), row, col) == BUILDING
    assert value_at(layers["post-event map"].source(), row, col) == WATER  # the building became water
    assert value_at(layers["change mask"].source(), row, col) == 1
    out = Path(result["outputs"]["t2_image.tif"]).parent
    assert out.parent == tmp_path



def test_dock_generates_with_a_style_image(dock, clean_project, label_layer_info, tmp_path):
    import json

    from changeanywhere_qgis.engine.diffusion import DEFAULT_STYLE_STRENGTH
    from changeanywhere_qgis.gui.style_picker import DEFAULT_STRENGTH

    assert DEFAULT_STRENGTH == DEFAULT_STYLE_STRENGTH and dock.style_picker.strength_spin.value() == DEFAULT_STRENGTH
    assert not dock.style_picker.strength_spin.isEnabled() and dock.style_picker.settings() == {}
    # a PNG of another city and sensor (WHU-CD), not on the map's grid: an appearance reference
    style = QgsRasterLayer(str(REPO / "data" / "whu-cd" / "B" / "000121_0512_0512.png"), "style", "gdal")
    assert style.isValid()
    clean_project.addMapLayer(style)
    dock.style_picker.layer_combo.setLayer(style)
    assert dock.style_picker.strength_spin.isEnabled()
    dock.style_picker.strength_spin.setValue(0.7)
    dock.set_target_class("water")
    draw_over_building(dock, label_layer_info)
    dock.output_widget.setFilePath(str(tmp_path))
    dock.start_generation()
    assert wait_until(lambda: dock.task is None, timeout=300), "the generation task did not finish"
    assert dock.last_result is not None, dock.status_label.text()
    record = json.loads(Path(dock.last_result["outputs"]["sample.json"]).read_text())
    assert record["style"]["path"] == style.source() and record["style"]["strength"] == 0.7
    assert_same_grid(dock.last_result["outputs"]["t2_image.tif"], label_layer_info)


def test_sampler_settings_default_to_the_engine_and_the_model(dock):
    from changeanywhere_qgis.engine.diffusion import GUIDANCE_RANGE, default_model_dir, read_manifest
    from changeanywhere_qgis.engine.diffusion import DEFAULT_ETA, DEFAULT_SAMPLER, DEFAULT_STEPS, SAMPLERS
    from changeanywhere_qgis.gui.dock import DEFAULT_STEPS as DOCK_STEPS
    from changeanywhere_qgis.gui.dock import DEFAULT_SAMPLER as DOCK_SAMPLER
    from changeanywhere_qgis.gui.dock import SAMPLERS as DOCK_SAMPLERS

    assert dock.eta_spin.value() == DEFAULT_ETA and DOCK_STEPS == DEFAULT_STEPS  # the fixture sets 2 steps for speed
    assert tuple(key for key, _ in DOCK_SAMPLERS) == SAMPLERS and DOCK_SAMPLER == DEFAULT_SAMPLER
    assert dock.sampler_combo.currentData() == DEFAULT_SAMPLER
    dock.sampler_combo.setCurrentIndex(SAMPLERS.index("dpmpp-2m"))
    assert not dock.eta_spin.isEnabled()  # eta is DDIM's alone
    dock.sampler_combo.setCurrentIndex(SAMPLERS.index("ddim"))
    assert dock.eta_spin.isEnabled()
    own = read_manifest(dock.model_dir())["diffusion"]["guidance_scale"]
    assert dock.guidance() is None and dock.guidance_spin.text() == f"the model's own ({own:g})"
    assert dock.guidance_spin.maximum() == GUIDANCE_RANGE[1]
    dock.guidance_spin.setValue(GUIDANCE_RANGE[0])
    assert dock.guidance() == GUIDANCE_RANGE[0]
    dock.model_widget.setFilePath("")  # another model (the bundled one) keeps a scale the user chose
    bundled = read_manifest(default_model_dir())["diffusion"]["guidance_scale"]
    assert dock.guidance() == GUIDANCE_RANGE[0] and dock.guidance_spin.specialValueText() == f"the model's own ({bundled:g})"
    dock.guidance_spin.setValue(0.8)  # typed between "the model's own" and 1
    with pytest.raises(ValueError, match="below 1"):
        dock.guidance()


def test_cancel_from_the_dock_writes_nothing(dock, qgis_iface, label_layer_info, tmp_path):
    dock.set_target_class("water")
    draw_over_building(dock, label_layer_info)
    dock.steps_spin.setValue(50)
    dock.output_widget.setFilePath(str(tmp_path))
    dock.start_generation()
    dock._generate_clicked()  # the Generate button reads "Cancel" while a task runs
    assert wait_until(lambda: dock.task is None, timeout=120)
    assert dock.last_result is None
    assert "Cancelled" in dock.status_label.text()
    assert list(tmp_path.iterdir()) == []


def test_errors_go_to_the_message_bar(dock, qgis_iface, label_layer_info, houston_changes_path):
    dock.model_widget.setFilePath(str(Path(houston_changes_path).parent))  # no model.json there
    assert dock.palette.count() == 0 and "model.json" in dock.model_label.text()
    before = len(qgis_iface.messageBar().get_messages(1))
    dock._generate_clicked()  # nothing drawn yet
    warnings = qgis_iface.messageBar().get_messages(1)
    assert len(warnings) == before + 1 and "change polygon" in warnings[-1]


def draw_outline(dock, geojson: Path, step: int = 3) -> None:
    """Click the outline of the sample's first change polygon (a building) with the map tool."""
    import json

    from qgis.core import QgsCoordinateTransform, QgsPointXY, QgsProject

    ring = json.loads(geojson.read_text())["features"][0]["geometry"]["coordinates"][0][:-1]
    canvas, tool = dock.canvas, dock.tool
    dock.draw_button.setChecked(True)
    transform = QgsCoordinateTransform(QgsCoordinateReferenceSystem("EPSG:4326"), canvas.mapSettings().destinationCrs(),
                                       QgsProject.instance())
    for x, y in ring[::step]:
        p = transform.transform(QgsPointXY(x, y))
        _click(canvas, tool, p.x(), p.y())
    _click(canvas, tool, p.x(), p.y(), button=Qt.MouseButton.RightButton)


def test_screenshot_of_the_dock_with_a_result(dock, qgis_iface, houston_changes_path, tmp_path):
    """The dock beside offscreen renders of its result, composed into one picture (CHANGEANYWHERE_SCREENSHOT=1 writes it
    to build/qgis-dock-composed.png; _MODEL and _STEPS choose the model and steps: default the bundled model when
    present, else the tiny test model). The README's picture is a real QGIS window: `make screenshot`."""
    bundled = REPO / "changeanywhere_qgis" / "models" / "default"
    model = os.environ.get("CHANGEANYWHERE_SCREENSHOT_MODEL") or (str(bundled) if (bundled / "model.json").is_file() and os.environ.get("CHANGEANYWHERE_SCREENSHOT") else None)
    if model:
        dock.model_widget.setFilePath(model)
        dock.steps_spin.setValue(int(os.environ.get("CHANGEANYWHERE_SCREENSHOT_STEPS", "20")))
    dock.correlation_spin.setValue(0.9)
    dock.set_target_class("water")
    draw_outline(dock, Path(houston_changes_path))
    assert dock.polygons_layer().featureCount() == 1
    dock.output_widget.setFilePath(str(tmp_path))
    groups = []
    dock.resultsAdded.connect(groups.append)
    dock.start_generation()
    assert wait_until(lambda: dock.task is None, timeout=1200) and groups, dock.status_label.text()
    layers = {node.layer().name(): node.layer() for node in groups[0].findLayers()}
    shot = tmp_path / "qgis-dock.png"
    write_screenshot(dock, layers, shot)
    assert shot.stat().st_size > 10_000
    if os.environ.get("CHANGEANYWHERE_SCREENSHOT"):
        target = REPO / "build" / "qgis-dock-composed.png"
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(shot.read_bytes())


def write_screenshot(dock, layers: dict, path: Path) -> None:
    """The dock beside offscreen renders of the pre-event image (with the drawn polygon) and the result."""
    from qgis.core import QgsMapRendererParallelJob, QgsMapSettings
    from qgis.PyQt.QtCore import QRect, QSize
    from qgis.PyQt.QtGui import QColor, QFont, QImage, QPainter

    dock.setFloating(True)
    dock.resize(400, 980)
    dock.show()
    wait_until(lambda: True, timeout=0.2)
    panel = dock.grab().toImage()

    polygons = dock.polygons_layer()
    extent = layers["post-event image"].extent()
    size = 470

    def render(map_layers):
        settings = QgsMapSettings()
        settings.setLayers(map_layers)
        settings.setDestinationCrs(layers["post-event image"].crs())
        settings.setExtent(extent)
        settings.setOutputSize(QSize(size, size))
        settings.setBackgroundColor(QColor(255, 255, 255))
        job = QgsMapRendererParallelJob(settings)
        job.start()
        job.waitForFinished()
        return job.renderedImage()

    views = [
        ("Before: image + drawn polygon (→ water)", render([polygons, layers["pre-event image"]])),
        ("After: generated post-event image", render([layers["post-event image"]])),
        ("Before: land-cover map", render([layers["pre-event map"]])),
        ("After: land-cover map", render([layers["post-event map"]])),
    ]
    caption = 26
    width = panel.width() + 2 * (size + 10) + 10
    height = max(panel.height(), 2 * (size + caption + 10))
    canvas = QImage(width, height, QImage.Format.Format_RGB32)
    canvas.fill(QColor(240, 240, 240))
    painter = QPainter(canvas)
    painter.drawImage(0, 0, panel)
    font = QFont()
    font.setPointSize(11)
    painter.setFont(font)
    for i, (title, image) in enumerate(views):
        x = panel.width() + 10 + (i % 2) * (size + 10)
        y = (i // 2) * (size + caption + 10)
        painter.drawText(QRect(x, y, size, caption), Qt.AlignmentFlag.AlignVCenter, title)
        painter.drawImage(x, y + caption, image)
    painter.end()
    assert canvas.save(str(path))
    dock.hide()


def test_an_existing_layer_with_a_text_field_gets_class_names(dock, clean_project, label_layer_info):
    from qgis.core import QgsVectorLayer

    layer = QgsVectorLayer("Polygon?crs=EPSG:3857&field=id:integer&field=becomes:string(32)", "my changes", "memory")
    clean_project.addMapLayer(layer)
    dock.polygons_combo.setLayer(layer)
    dock.field_combo.setField("becomes")
    dock.set_target_class("water")
    draw_over_building(dock, label_layer_info)
    assert layer.featureCount() == 1
    feature = next(layer.getFeatures())
    assert feature["becomes"] == "water"
    assert feature.geometry().boundingBox().intersects(dock.canvas.extent())


def test_the_model_list_shows_the_packages_of_the_user_models_folder(dock, tiny_model_dir):
    """A package in the profile's ChangeAnywhere models folder (where "Adapt the model to my area" writes) is listed
    beside the bundled model, and choosing it makes it the model of the run."""
    import shutil

    from changeanywhere_qgis.processing.adaptation import user_models_folder

    folder = user_models_folder()
    assert folder is not None
    mine = folder / "tiny-copy"
    shutil.copytree(tiny_model_dir, mine)
    (folder / "not-a-package").mkdir(exist_ok=True)  # a folder without model.json is not listed
    try:
        dock.refresh_models()
        labels = [dock.model_combo.itemText(i) for i in range(dock.model_combo.count())]
        assert labels == ["The bundled model", "ChangeAnywhere tiny test model (package, tiny-copy)"]
        dock.model_combo.setCurrentIndex(1)
        dock._model_chosen(1)
        assert dock.model_widget.filePath() == "" and dock.model_dir() == str(mine)
        assert "tiny test model" in dock.model_label.text()
        dock.model_combo.setCurrentIndex(0)
        dock._model_chosen(0)
        assert dock.model_dir() is None  # the bundled one
    finally:
        shutil.rmtree(mine)
        (folder / "not-a-package").rmdir()


def test_the_dock_fits_a_laptop_screen(dock):
    """Its sections scroll: before, the dock asked for about 1,100 px of height (more with the detection section) and
    stretched the QGIS window past a 1080-line screen."""
    assert dock.minimumSizeHint().height() < 600, dock.minimumSizeHint()
    body = dock.widget().widget()  # the scroll area's content: every section is still there
    assert body.sizeHint().height() > 900 and dock.generate_button.isVisibleTo(dock)

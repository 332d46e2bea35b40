"""The ChangeAnywhere dock: wires the layers, the class palette, the polygon map tool and the task.

The map tool only makes polygons; this dock turns a finished polygon into a feature of the change
polygons layer (a scratch layer by default, or any polygon layer the user picks) with the target
class chosen in the palette, and runs the generation as a QgsTask.
"""

from __future__ import annotations

import time
from pathlib import Path

from qgis.core import (
    Qgis,
    QgsApplication,
    QgsCoordinateTransform,
    QgsFeature,
    QgsField,
    QgsMapLayer,
    QgsProcessingUtils,
    QgsProject,
    QgsRasterLayer,
    QgsVectorFileWriter,
    QgsVectorLayer,
)
from qgis.gui import QgsDockWidget, QgsFieldComboBox, QgsFileWidget, QgsMapLayerComboBox, QgsRasterBandComboBox
from qgis.PyQt.QtCore import Qt, pyqtSignal
from qgis.PyQt.QtGui import QColor, QIcon, QPainter, QPixmap
from qgis.PyQt.QtWidgets import (
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QProgressBar,
    QPushButton,
    QScrollArea,
    QSpinBox,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from ..processing import qgis_compat as compat
from ..processing import dependencies
from .map_tool import PolygonMapTool
from .rubber_band import PolygonRubberBand
from .series_controls import DATE_FIELD, SeriesControls, result_layers
from .style_picker import StylePicker
from ..processing.layer_styles import style_change_polygons, style_output
from .detect_section import DetectSection
from .task import GenerateTask

TARGET_FIELD = "target"
TARGET_NAME_FIELD = "target_name"
DEVICES = (("auto", "Auto (GPU when available)"), ("cpu", "CPU"), ("cuda", "GPU (CUDA)"))
# The engine's PRE_EVENT_CHOICES in their order, and its DEFAULT_PRE_EVENT (literals: the dock builds without numpy; a
# test holds them equal)
PRE_EVENTS = (("redrawn", "the model's copy of it (same look as the post-event image)"), ("real", "the image itself"))
DEFAULT_PRE_EVENT = "real"
# The engine's POST_EVENT_CHOICES in their order, and its DEFAULT_POST_EVENT (literals, as PRE_EVENTS; a test holds them equal)
POST_EVENTS = (("full", "drawn in full by the model"), ("inpaint", "inpainted: the pre-event image, the change drawn"))
DEFAULT_POST_EVENT = "full"
POST_EVENT_TIP = ("Inpainted: the post-event image is the pre-event image wherever the land did not change; the model draws "
                  "only the change and a margin around it, and only the tiles near it cost time (docs/guide/inpainting.md)")
SERIES_POST_EVENT_TIP = "A series of dates is drawn in full: inpainting applies to change pairs"
# The engine's SAMPLERS in their order, and its DEFAULT_SAMPLER (literals, as PRE_EVENTS; a test holds them equal)
SAMPLERS = (("ddim", "DDIM"), ("dpmpp-2m", "DPM-Solver++ 2M"))
DEFAULT_SAMPLER = "ddim"
# The engine's MIXINGS in their order, and its DEFAULT_MIXING (literals, as PRE_EVENTS; a test holds them equal)
MIXINGS = (("latent", "latent (the paper's)"), ("prediction", "prediction"))
DEFAULT_MIXING = "prediction"
# The engine's PRECISIONS in their order, and its DEFAULT_PRECISION (literals, as PRE_EVENTS; a test holds them equal)
PRECISIONS = (("float32", "float32 (the model's own)"), ("int8", "int8 (faster on the CPU)"))
DEFAULT_PRECISION = "float32"
DEFAULT_STEPS = 50  # the engine's DEFAULT_STEPS (a literal for the same reason; the same test holds them equal)
# engine output -> (layer name in the project, visible at first)
RESULT_LAYERS = (
    ("change_mask.tif", "change mask", False),
    ("t2_semantic.tif", "post-event map", False),
    ("t1_semantic.tif", "pre-event map", False),
    ("t2_image.tif", "post-event image", True),
    ("t1_image.tif", "pre-event image", True),
)


def _is_string_field(field: QgsField) -> bool:
    """A text field gets the class name, a numeric one the class code (the engine reads either)."""
    return not field.isNumeric()


class ModelCombo(QComboBox):
    """A combo box that lists its entries anew each time it opens (an adaptation may have added a package)."""

    def __init__(self, refresh, parent=None):
        super().__init__(parent)
        self._refresh = refresh

    def showPopup(self):
        self._refresh()
        super().showPopup()


class ChangeAnywhereDock(QgsDockWidget):
    resultsAdded = pyqtSignal(object)  # the QgsLayerTreeGroup holding a finished sample
    taskStarted = pyqtSignal(object)  # the GenerateTask

    def __init__(self, iface, parent=None):
        super().__init__("ChangeAnywhere", parent)
        self.setObjectName("ChangeAnywhereDock")
        self.iface = iface
        self.canvas = iface.mapCanvas()
        self.classes: list[dict] = []
        self.task: GenerateTask | None = None
        self.install_task = None  # InstallDependenciesTask while pip runs
        self.last_result: dict | None = None
        self.tool = PolygonMapTool(self.canvas)
        self.band = PolygonRubberBand(self.canvas)
        self.tool.verticesChanged.connect(self.band.set_vertices)
        self.tool.hoverMoved.connect(self.band.set_hover)
        self.tool.polygonFinished.connect(self.add_polygon)
        self.tool.deactivated.connect(lambda: self.draw_button.setChecked(False))
        self._build()
        self.load_classes()
        self._check_dependencies()

    # --- layout ---------------------------------------------------------------------------------
    def _build(self) -> None:
        body = QWidget()
        main = QVBoxLayout(body)

        inputs = QGroupBox("Inputs")
        form = QFormLayout(inputs)
        self.semantic_combo = QgsMapLayerComboBox()
        self.semantic_combo.setFilters(compat.layer_filter("RasterLayer"))
        self.band_combo = QgsRasterBandComboBox()
        self.semantic_combo.layerChanged.connect(self.band_combo.setLayer)
        self.band_combo.setLayer(self.semantic_combo.currentLayer())
        self.image_combo = QgsMapLayerComboBox()
        self.image_combo.setFilters(compat.layer_filter("RasterLayer"))
        self.image_combo.setAllowEmptyLayer(True)
        self.image_combo.setLayer(None)
        self.pre_event_combo = QComboBox()
        for key, label in PRE_EVENTS:
            self.pre_event_combo.addItem(label, key)
        self.pre_event_combo.setCurrentIndex(self.pre_event_combo.findData(DEFAULT_PRE_EVENT))
        self.pre_event_combo.setToolTip("With a pre-event image: keep it as it is, or let the model's autoencoder redraw it, so "
                                        "both dates come out of the same decoder")
        self.image_combo.layerChanged.connect(lambda layer: self.pre_event_combo.setEnabled(layer is not None))
        self.pre_event_combo.setEnabled(False)
        self.post_event_combo = QComboBox()
        for key, label in POST_EVENTS:
            self.post_event_combo.addItem(label, key)
        self.post_event_combo.setCurrentIndex(self.post_event_combo.findData(DEFAULT_POST_EVENT))
        self.post_event_combo.setToolTip(POST_EVENT_TIP)
        self._pair_post_event: str | None = None  # the pairs' mode, kept while a series shows "full"
        # the bundled model and the packages in the user's models folder ("Adapt the model to my area" writes
        # there); any other package folder through the file widget below, which wins when it is filled
        self.model_combo = ModelCombo(self.refresh_models)
        self.model_combo.setToolTip("The bundled model, or a package in your ChangeAnywhere models folder "
                                    "(the adapted ones); another folder: choose it below")
        self.model_combo.activated.connect(self._model_chosen)
        self.model_widget = QgsFileWidget()
        self.model_widget.setStorageMode(QgsFileWidget.StorageMode.GetDirectory)
        self.model_widget.setToolTip("Another model package folder; empty: the model chosen above")
        self.model_widget.fileChanged.connect(lambda _path: self.load_classes())
        self.refresh_models()
        self.model_label = QLabel()
        self.model_label.setWordWrap(True)
        form.addRow("Land-cover map", self.semantic_combo)
        form.addRow("Band", self.band_combo)
        form.addRow("Pre-event image", self.image_combo)
        form.addRow("Pre-event image is", self.pre_event_combo)
        form.addRow("Post-event image", self.post_event_combo)
        self.style_picker = StylePicker()
        form.addRow("Style image, strength", self.style_picker)
        form.addRow("Model", self.model_combo)
        form.addRow("Other model folder", self.model_widget)
        form.addRow("", self.model_label)
        main.addWidget(inputs)

        draw = QGroupBox("Change polygons")
        box = QVBoxLayout(draw)
        box.addWidget(QLabel("Target class (what the land becomes):"))
        self.palette = QListWidget()
        self.palette.setMaximumHeight(150)
        self.palette.currentRowChanged.connect(self._target_changed)
        box.addWidget(self.palette)
        row = QHBoxLayout()
        self.polygons_combo = QgsMapLayerComboBox()
        self.polygons_combo.setFilters(compat.layer_filter("PolygonLayer"))
        self.polygons_combo.setAllowEmptyLayer(True)
        self.polygons_combo.setLayer(None)
        self.new_layer_button = QToolButton()
        self.new_layer_button.setText("New")
        self.new_layer_button.setToolTip("A new scratch layer for the change polygons (save it like any layer)")
        self.new_layer_button.clicked.connect(lambda: self.polygons_combo.setLayer(self.new_polygons_layer()))
        row.addWidget(self.polygons_combo, 1)
        row.addWidget(self.new_layer_button)
        form2 = QFormLayout()
        form2.addRow("Layer", row)
        self.field_combo = QgsFieldComboBox()
        self.polygons_combo.layerChanged.connect(self._polygons_layer_changed)
        form2.addRow("Target-class field", self.field_combo)
        self.series = SeriesControls()  # the dates: their number, the polygons' date field, the date of drawn polygons
        self.series.add_rows(form2)
        self.series.dates_spin.valueChanged.connect(self._post_event_for_dates)
        box.addLayout(form2)
        self.draw_button = QPushButton("Draw change polygons")
        self.draw_button.setCheckable(True)
        self.draw_button.setToolTip("Click vertices; right-click or double-click finishes; Backspace undoes a vertex; Esc cancels")
        self.draw_button.toggled.connect(self._draw_toggled)
        box.addWidget(self.draw_button)
        main.addWidget(draw)

        settings = QGroupBox("Generation")
        form3 = QFormLayout(settings)
        self.steps_spin = QSpinBox()
        self.steps_spin.setRange(1, 1000)
        self.steps_spin.setValue(DEFAULT_STEPS)
        self.correlation_spin = QDoubleSpinBox()
        self.correlation_spin.setRange(-0.05, 1.0)
        self.correlation_spin.setSingleStep(0.05)
        self.correlation_spin.setSpecialValueText("random (0.7-1)")
        self.correlation_spin.setValue(-0.05)
        self.seed_spin = QSpinBox()
        self.seed_spin.setRange(-1, 2**31 - 1)
        self.seed_spin.setSpecialValueText("random")
        self.seed_spin.setValue(-1)
        self.sampler_combo = QComboBox()
        for key, label in SAMPLERS:
            self.sampler_combo.addItem(label, key)
        self.sampler_combo.setCurrentIndex(self.sampler_combo.findData(DEFAULT_SAMPLER))
        self.sampler_combo.setToolTip(f"The solver of the reverse diffusion (default: {dict(SAMPLERS)[DEFAULT_SAMPLER]}). DDIM: "
                                      "first order. DPM-Solver++ 2M: second order, for fewer steps; deterministic, so it "
                                      "takes no eta")
        self.mixing_combo = QComboBox()
        for key, label in MIXINGS:
            self.mixing_combo.addItem(label, key)
        self.mixing_combo.setCurrentIndex(self.mixing_combo.findData(DEFAULT_MIXING))
        self.mixing_combo.setToolTip("How the unchanged land is held to the pre-event image early in the diffusion. Latent: "
                                     "its noisy state is replaced at each step (the paper's). Prediction: its predicted clean "
                                     "image is replaced before each solver update (the default: as faithful under DDIM, and a "
                                     "history DPM-Solver++ can use)")
        self.eta_spin = QDoubleSpinBox()
        self.eta_spin.setRange(0.0, 1.0)
        self.eta_spin.setSingleStep(0.1)
        self.eta_spin.setValue(0.0)  # the engine's DEFAULT_ETA (a test holds the two equal)
        self.eta_spin.setToolTip("DDIM eta: 0 = deterministic updates (follows the map best at 50 steps); 1 = the authors' setting")
        # Its minimum stands for "the model's own" scale; load_classes() sets the range and names that scale.
        self.guidance_spin = QDoubleSpinBox()
        self.guidance_spin.setDecimals(1)
        self.guidance_spin.setSingleStep(0.5)
        self.guidance_spin.setToolTip("Classifier-free guidance: higher follows the map more closely, colours saturate")
        self.device_combo = QComboBox()
        for key, label in DEVICES:
            self.device_combo.addItem(label, key)
        self.precision_combo = QComboBox()
        for key, label in PRECISIONS:
            self.precision_combo.addItem(label, key)
        self.precision_combo.setCurrentIndex(self.precision_combo.findData(DEFAULT_PRECISION))
        self.precision_combo.setToolTip("The denoiser the model runs. int8: its quantised copy, faster on the CPU (CPU only); "
                                        "the model package needs one, made by python -m model_export.export.quantize --package DIR")
        self.output_widget = QgsFileWidget()
        self.output_widget.setStorageMode(QgsFileWidget.StorageMode.GetDirectory)
        self.output_widget.setToolTip("Each run writes a new sample-<time> folder here; empty: a temporary folder")
        form3.addRow("Sampler", self.sampler_combo)
        form3.addRow("Latent mixing", self.mixing_combo)
        form3.addRow("Diffusion steps", self.steps_spin)
        form3.addRow("Content correlation s", self.correlation_spin)
        form3.addRow("Seed", self.seed_spin)
        form3.addRow("DDIM eta", self.eta_spin)
        self.sampler_combo.currentIndexChanged.connect(lambda _: self.eta_spin.setEnabled(self.sampler_combo.currentData() == "ddim"))
        form3.addRow("Guidance scale", self.guidance_spin)
        form3.addRow("Device", self.device_combo)
        form3.addRow("Denoiser precision", self.precision_combo)
        form3.addRow("Output folder", self.output_widget)
        main.addWidget(settings)

        self.generate_button = QPushButton("Generate")
        self.generate_button.clicked.connect(self._generate_clicked)
        self.progress = QProgressBar()
        self.progress.setRange(0, 100)
        self.progress.setValue(0)
        self.status_label = QLabel("")
        self.status_label.setWordWrap(True)
        self.status_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        main.addWidget(self.generate_button)
        main.addWidget(self.progress)
        main.addWidget(self.status_label)
        self.install_button = QPushButton("Install dependencies")
        self.install_button.setToolTip("Install the missing Python libraries into QGIS's own Python with pip "
                                       "(a QGIS task; pip's output in the Log Messages panel), then restart QGIS")
        self.install_button.clicked.connect(self._install_clicked)
        self.install_button.setVisible(False)
        main.addWidget(self.install_button)
        self.detect_section = DetectSection(self._message)  # detect change in the user's own pair (issue #37)
        main.addWidget(self.detect_section)
        main.addStretch(1)
        # Scrolled: the dock's sections are taller than a laptop's screen (about 1,100 px), and a dock without a
        # scroll area would stretch the QGIS window past the screen or squeeze its controls.
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QScrollArea.Shape.NoFrame)
        scroll.setWidget(body)
        self.setWidget(scroll)

    def _check_dependencies(self) -> None:
        missing = dependencies.missing_modules()
        self.install_button.setVisible(bool(missing))
        if missing:
            self.generate_button.setEnabled(False)
            self.generate_button.setToolTip("Install the missing Python libraries first (see below)")
            self.status_label.setText(dependencies.install_hint(missing))

    # --- "Install dependencies": pip for QGIS's Python in a QgsTask (gui/install_task.py) -------------
    def _install_clicked(self) -> None:
        if self.install_task is not None:
            self.install_task.cancel()
            return
        self.install_dependencies()

    def install_dependencies(self):
        from .install_task import InstallDependenciesTask

        task = InstallDependenciesTask(base=dependencies.private_base())
        task.progressChanged.connect(lambda value: self.progress.setValue(int(value)))
        task.done.connect(self._install_done)
        task.failed.connect(self._install_failed)
        self.install_task = task
        self.install_button.setText("Cancel installing")
        self.progress.setValue(0)
        self.status_label.setText("Installing the Python libraries… (pip's output: View ▸ Panels ▸ Log Messages, "
                                  "tab \"ChangeAnywhere install\")")
        QgsApplication.taskManager().addTask(task)
        return task

    def _install_done(self, message: str) -> None:
        self.install_task = None
        self.install_button.setText("Restart QGIS to finish")
        self.install_button.setEnabled(False)
        self.progress.setValue(100)
        self.status_label.setText(message)
        bar = self.iface.messageBar() if self.iface is not None else None
        if bar is not None:  # stays until closed: the restart is still to do
            bar.pushMessage("ChangeAnywhere", message, Qgis.MessageLevel.Success, 0)

    def _install_failed(self, message: str) -> None:
        self.install_task = None
        self.install_button.setText("Install dependencies")
        self.progress.setValue(0)
        self.status_label.setText(message)
        self._message(message, Qgis.MessageLevel.Critical)

    # --- model and palette ----------------------------------------------------------------------
    def model_dir(self) -> str | None:
        return self.model_widget.filePath().strip() or self.model_combo.currentData() or None

    def refresh_models(self) -> None:
        """List the bundled model and the packages of the user's models folder, keeping the current choice."""
        from ..processing.adaptation import model_packages, user_models_folder

        current = self.model_combo.currentData()
        self.model_combo.clear()
        self.model_combo.addItem("The bundled model", None)
        for folder in model_packages(user_models_folder()):
            try:
                from ..engine.diffusion import read_manifest

                manifest = read_manifest(folder, verify_hashes=False)
            except Exception:  # noqa: BLE001 - a broken package is not listed; choosing its folder below names the fault
                continue
            kind = "adapted" if "adaptation" in manifest else "package"
            self.model_combo.addItem(f"{manifest['name']} ({kind}, {folder.name})", str(folder))
        index = self.model_combo.findData(current)
        self.model_combo.setCurrentIndex(max(0, index))

    def _model_chosen(self, _index: int) -> None:
        if self.model_widget.filePath():
            self.model_widget.setFilePath("")  # reloads the classes through fileChanged
        else:
            self.load_classes()

    def load_classes(self) -> None:
        """The palette from the model's manifest (fast: no onnxruntime session)."""
        self.palette.clear()
        self.classes = []
        try:
            from ..engine.diffusion import GUIDANCE_RANGE, default_model_dir, manifest_guidance_scale, read_manifest

            folder = self.model_dir() or default_model_dir()
            manifest = read_manifest(folder, verify_hashes=False)
        except Exception as exc:  # ModelError names the fix; ImportError: numpy missing
            self.model_label.setText(f"<span style='color:#b00'>{exc}</span>")
            return
        self._set_guidance_range(GUIDANCE_RANGE, manifest_guidance_scale(manifest))
        self.classes = [{"code": int(c["code"]), "name": str(c["name"]), "color": list(c["color"])} for c in manifest["classes"]]
        self.model_label.setText(f"{manifest['name']} {manifest.get('version', '')} — {len(self.classes)} classes")
        for c in self.classes:
            pixmap = QPixmap(16, 16)
            pixmap.fill(QColor(*c["color"][:3]))
            painter = QPainter(pixmap)  # an outline, so that white (road) shows
            painter.setPen(QColor(60, 60, 60))
            painter.drawRect(0, 0, 15, 15)
            painter.end()
            item = QListWidgetItem(QIcon(pixmap), f"{c['code']}  {c['name']}")
            item.setData(Qt.ItemDataRole.UserRole, c["code"])
            self.palette.addItem(item)
        if self.classes:
            self.palette.setCurrentRow(0)

    def _set_guidance_range(self, allowed: tuple[float, float], own: float) -> None:
        """One step below the allowed range means "the model's own", named with the model's scale."""
        keep = self.guidance_spin.value() > self.guidance_spin.minimum()
        step = self.guidance_spin.singleStep()
        self.guidance_spin.setRange(allowed[0] - step, allowed[1])
        self.guidance_spin.setSpecialValueText(f"the model's own ({own:g})")
        if not keep:
            self.guidance_spin.setValue(self.guidance_spin.minimum())

    def guidance(self) -> float | None:
        """The chosen scale; None: the model's own. Between that and the range's start is no scale at all."""
        value = self.guidance_spin.value()
        if value <= self.guidance_spin.minimum():
            return None
        if value < self.guidance_spin.minimum() + self.guidance_spin.singleStep():
            raise ValueError(f"A guidance scale of {value:g} is below 1 (no guidance): choose 1 or more, "
                             "or the lowest value for the model's own scale.")
        return value

    def target_class(self) -> dict | None:
        row = self.palette.currentRow()
        return self.classes[row] if 0 <= row < len(self.classes) else None

    def set_target_class(self, name_or_code) -> None:
        for row, c in enumerate(self.classes):
            if str(name_or_code).lower() in (c["name"].lower(), str(c["code"])):
                self.palette.setCurrentRow(row)
                return
        raise ValueError(f"no class {name_or_code!r} in the model")

    def _target_changed(self, _row: int) -> None:
        target = self.target_class()
        if target:
            self.band.set_color(QColor(*target["color"][:3]))

    # --- the change polygons layer --------------------------------------------------------------
    def new_polygons_layer(self) -> QgsVectorLayer:
        semantic = self.semantic_combo.currentLayer()
        crs = semantic.crs() if semantic is not None else self.canvas.mapSettings().destinationCrs()
        uri = (f"Polygon?crs={crs.authid() or 'EPSG:4326'}&field={TARGET_FIELD}:integer&field={TARGET_NAME_FIELD}:string(64)"
               f"&field={DATE_FIELD}:integer")
        layer = QgsVectorLayer(uri, "ChangeAnywhere change polygons", "memory")
        if not crs.authid():
            layer.setCrs(crs)
        if self.classes:
            style_change_polygons(layer, self.classes, TARGET_FIELD)
        QgsProject.instance().addMapLayer(layer)
        return layer

    def polygons_layer(self) -> QgsVectorLayer | None:
        return self.polygons_combo.currentLayer()

    def _post_event_for_dates(self, dates: int) -> None:
        """A series is drawn in full (the engine inpaints change pairs only): the combo always holds a mode, the default
        or a choice alike, so for a series it shows "full" and rests, its tooltip saying why, and at 2 dates it gets the
        pairs' mode back."""
        series = dates > 2
        if series and self._pair_post_event is None:
            self._pair_post_event = self.post_event_combo.currentData()
            self.post_event_combo.setCurrentIndex(self.post_event_combo.findData("full"))
        elif not series and self._pair_post_event is not None:
            self.post_event_combo.setCurrentIndex(self.post_event_combo.findData(self._pair_post_event))
            self._pair_post_event = None
        self.post_event_combo.setEnabled(not series)
        self.post_event_combo.setToolTip(SERIES_POST_EVENT_TIP if series else POST_EVENT_TIP)

    def _polygons_layer_changed(self, layer: QgsMapLayer | None) -> None:
        self.field_combo.setLayer(layer)
        if layer is not None and layer.fields().indexOf(TARGET_FIELD) >= 0:
            self.field_combo.setField(TARGET_FIELD)
        self.series.set_layer(layer)

    def _draw_toggled(self, on: bool) -> None:
        if on:
            if self.polygons_layer() is None:
                self.polygons_combo.setLayer(self.new_polygons_layer())
            self.canvas.setMapTool(self.tool)
        elif self.canvas.mapTool() is self.tool:
            self.canvas.unsetMapTool(self.tool)

    def add_polygon(self, geometry) -> QgsFeature | None:
        """A finished polygon (canvas CRS) -> a feature with the chosen target class."""
        target = self.target_class()
        if target is None:
            self._message("Choose a target class in the palette first (the model lists none?).", Qgis.MessageLevel.Warning)
            return None
        layer = self.polygons_layer()
        if layer is None:
            layer = self.new_polygons_layer()
            self.polygons_combo.setLayer(layer)
        field = self.field_combo.currentField() or TARGET_FIELD
        fields = layer.fields()
        if fields.indexOf(field) < 0:
            self._message(f"The layer '{layer.name()}' has no field '{field}': choose its target-class field.", Qgis.MessageLevel.Warning)
            return None
        geometry = type(geometry)(geometry)
        source_crs = self.canvas.mapSettings().destinationCrs()
        if source_crs != layer.crs():
            geometry.transform(QgsCoordinateTransform(source_crs, layer.crs(), QgsProject.instance()))
        feature = QgsFeature(fields)
        feature.setGeometry(geometry)
        feature[field] = target["name"] if _is_string_field(fields[fields.indexOf(field)]) else target["code"]
        if field != TARGET_NAME_FIELD and fields.indexOf(TARGET_NAME_FIELD) >= 0:
            feature[TARGET_NAME_FIELD] = target["name"]
        self.series.stamp(feature)
        if layer.isEditable():
            layer.addFeature(feature)
        else:
            ok, added = layer.dataProvider().addFeatures([feature])
            if not ok:
                self._message(f"Cannot add the polygon to '{layer.name()}' (read-only?). Toggle editing on it, or use a scratch layer.",
                              Qgis.MessageLevel.Critical)
                return None
            feature = added[0]
            layer.updateExtents()
        layer.triggerRepaint()
        return feature

    # --- generation -----------------------------------------------------------------------------
    def _generate_clicked(self) -> None:
        if self.task is not None:
            self.status_label.setText("Cancelling…")
            self.task.cancel()  # a task that has not started yet ends (and reports) right here
            return
        try:
            self.start_generation()
        except ValueError as exc:
            self._message(str(exc), Qgis.MessageLevel.Warning)

    def _export_polygons(self, layer: QgsVectorLayer, folder: Path) -> str:
        """The polygons as a GeoPackage the engine (in another thread) can read."""
        folder.mkdir(parents=True, exist_ok=True)
        path = str(folder / "change_polygons.gpkg")
        options = QgsVectorFileWriter.SaveVectorOptions()
        options.driverName = "GPKG"
        options.layerName = "changes"
        context = QgsProject.instance().transformContext()
        if hasattr(QgsVectorFileWriter, "writeAsVectorFormatV3"):
            result = QgsVectorFileWriter.writeAsVectorFormatV3(layer, path, context, options)
        else:
            result = QgsVectorFileWriter.writeAsVectorFormatV2(layer, path, context, options)
        if result[0] != QgsVectorFileWriter.WriterError.NoError:
            raise ValueError(f"Cannot export the change polygons of '{layer.name()}': {result[1]}")
        return path

    def start_generation(self) -> GenerateTask:
        try:
            dependencies.import_engine()  # in the main thread, before the task uses it
        except ImportError as exc:
            raise ValueError(GenerateTask._import_error(exc)) from exc
        semantic = self.semantic_combo.currentLayer()
        if not isinstance(semantic, QgsRasterLayer) or semantic.providerType() != "gdal":
            raise ValueError("Choose the land-cover map: a raster layer from a file (GeoTIFF).")
        image = self.image_combo.currentLayer()
        if image is not None and image.providerType() != "gdal":
            raise ValueError("The pre-event image must be a raster layer from a file (GeoTIFF).")
        layer = self.polygons_layer()
        if layer is None or layer.featureCount() == 0:
            raise ValueError("Draw at least one change polygon (or choose a polygon layer that has some).")
        field = self.field_combo.currentField()
        if not field:
            raise ValueError("Choose the target-class field of the change polygons.")
        dates, date_field = self.series.settings()

        stamp = time.strftime("%Y%m%d-%H%M%S")
        base = Path(self.output_widget.filePath().strip() or QgsProcessingUtils.tempFolder())
        out_dir = base / f"sample-{stamp}"
        n = 1
        while out_dir.exists():
            n += 1
            out_dir = base / f"sample-{stamp}-{n}"
        settings = {
            "steps": self.steps_spin.value(),
            "seed": None if self.seed_spin.value() < 0 else self.seed_spin.value(),
            "correlation": None if self.correlation_spin.value() < 0 else self.correlation_spin.value(),
            "sampler": self.sampler_combo.currentData(),
            "mixing": self.mixing_combo.currentData(),
            "eta": self.eta_spin.value() if self.sampler_combo.currentData() == "ddim" else 0.0,  # eta is DDIM's alone
            "guidance": self.guidance(),
            "device": self.device_combo.currentData(),
            "precision": self.precision_combo.currentData(),
            "pre_event": self.pre_event_combo.currentData(),
            "post_event": self.post_event_combo.currentData(),
            "dates": dates,
            **self.style_picker.settings(),
        }
        polygons = self._export_polygons(layer, Path(QgsProcessingUtils.tempFolder()) / f"changeanywhere-input-{stamp}-{n}")
        task = GenerateTask(
            semantic.source().split("|")[0], str(out_dir), {"vector": polygons, "class_field": field, "layer": "changes", "date_field": date_field},
            image=image.source().split("|")[0] if image is not None else None, model=self.model_dir(),
            band=self.band_combo.currentBand() if self.band_combo.currentBand() > 0 else 1,
            settings_kwargs=settings, overwrite=False,
        )
        task.progressChanged.connect(lambda value: self.progress.setValue(int(value)))
        task.stage.connect(self.status_label.setText)
        task.done.connect(self._task_done)
        task.failed.connect(self._task_failed)
        task.cancelled.connect(self._task_cancelled)
        self.task = task
        self.generate_button.setText("Cancel")
        self.progress.setValue(0)
        self.status_label.setText("Starting…")
        QgsApplication.taskManager().addTask(task)
        self.taskStarted.emit(task)
        return task

    def _task_ended(self) -> None:
        self.task = None
        self.generate_button.setText("Generate")

    def _task_done(self, result: dict) -> None:
        self._task_ended()
        self.last_result = result
        self.progress.setValue(100)
        group = self.add_results(result)
        device = f"{result['device']} ({result['device_note']})"
        changed = 100 * result["changed_fraction"]
        self.status_label.setText(f"Done on {device}; seed {result['seed']}, s = {result['correlation_s']:.2f}, "
                                  f"{changed:.1f} % changed.\n{Path(result['outputs']['sample.json']).parent}")
        self._message(f"Change sample ready ({changed:.1f} % of the land changed), device: {device}.", Qgis.MessageLevel.Success)
        self.resultsAdded.emit(group)

    def _task_failed(self, message: str) -> None:
        self._task_ended()
        self.progress.setValue(0)
        self.status_label.setText(message)
        self._message(message, Qgis.MessageLevel.Critical)

    def _task_cancelled(self) -> None:
        self._task_ended()
        self.progress.setValue(0)
        self.status_label.setText("Cancelled; nothing was written.")
        self._message("Generation cancelled; nothing was written.", Qgis.MessageLevel.Info)

    def add_results(self, result: dict):
        """The sample's layers into the project, in a group at the top, styled with the class palette."""
        project = QgsProject.instance()
        root = project.layerTreeRoot()
        group = root.insertGroup(0, f"ChangeAnywhere sample (seed {result['seed']})")
        outputs = result["outputs"]
        for name, title, visible in (RESULT_LAYERS if result.get("dates", 2) == 2 else result_layers(result["dates"])):
            layer = QgsRasterLayer(outputs[name], title, "gdal")
            if not layer.isValid():
                self._message(f"Cannot open {outputs[name]} in QGIS.", Qgis.MessageLevel.Warning)
                continue
            style_output(layer, name, self.classes)  # true colour, class palette, black/white mask
            project.addMapLayer(layer, False)
            node = group.addLayer(layer)
            node.setItemVisibilityChecked(visible)
        return group

    def _message(self, text: str, level) -> None:
        bar = self.iface.messageBar() if self.iface is not None else None
        if bar is not None:
            bar.pushMessage("ChangeAnywhere", text, level, 0 if level == Qgis.MessageLevel.Critical else 8)

    # --- teardown -------------------------------------------------------------------------------
    def cleanup(self) -> None:
        self.detect_section.cleanup()
        if self.task is not None:
            self.task.cancel()
        if self.install_task is not None:
            self.install_task.cancel()
        if self.canvas.mapTool() is self.tool:
            self.canvas.unsetMapTool(self.tool)
        self.band.remove()

"""The dock's "Detect change" section: image A, image B and a change-detector package in, the engine's ``detect`` run
as a QgsTask (onnxruntime only), its probability, mask and polygons added to the project, styled, in a group.

The task gets plain values (file paths, numbers) read in the main thread; Cancel makes the engine stop and leave
nothing (its OutputFolder). The outputs go into a new folder under QGIS's processing temp folder, or under the folder
the user picks."""

from __future__ import annotations

import time
from pathlib import Path

from qgis.core import Qgis, QgsApplication, QgsProcessingUtils, QgsProject, QgsRasterLayer, QgsVectorLayer
from qgis.gui import QgsFileWidget, QgsMapLayerComboBox
from qgis.PyQt.QtCore import pyqtSignal
from qgis.PyQt.QtWidgets import QCheckBox, QDoubleSpinBox, QFormLayout, QGroupBox, QLabel, QPushButton

from ..processing import qgis_compat as compat
from ..processing.common import raster_path
from ..processing.detection_styles import MASK, POLYGONS, PROBABILITY, style_detection_output
from .task import EngineTask

# engine file -> (layer title, kind of style, visible)
DETECTION_LAYERS = (("change_probability.tif", "Change probability", PROBABILITY, False),
                    ("change_mask.tif", "Change mask", MASK, False), ("changes.gpkg", "Change polygons", POLYGONS, True))


class DetectTask(EngineTask):
    WHAT = "The detection"

    def __init__(self, before: str, after: str, detector: str, out_dir: str, threshold: float | None, resample: bool):
        super().__init__("ChangeAnywhere: detecting change")
        self.args = dict(before=before, after=after, detector=detector, out_dir=out_dir, threshold=threshold, resample=resample)

    def call(self, progress) -> dict:
        from ..engine.detection import detect_changes

        a = self.args
        return detect_changes(a["before"], a["after"], a["detector"], a["out_dir"], threshold=a["threshold"],
                              resample=a["resample"], progress=progress)


class DetectSection(QGroupBox):
    resultsAdded = pyqtSignal(object)  # the QgsLayerTreeGroup holding a finished detection

    def __init__(self, message, parent=None):
        super().__init__("Detect change", parent)
        self._message = message  # (text, Qgis.MessageLevel) -> the message bar
        self.task: DetectTask | None = None
        form = QFormLayout(self)
        self.before_combo = QgsMapLayerComboBox()
        self.before_combo.setFilters(compat.layer_filter("RasterLayer"))
        self.after_combo = QgsMapLayerComboBox()
        self.after_combo.setFilters(compat.layer_filter("RasterLayer"))
        self.detector_widget = QgsFileWidget()
        self.detector_widget.setStorageMode(QgsFileWidget.StorageMode.GetDirectory)
        self.detector_widget.setToolTip("A change-detector package folder (detector.json + detector.onnx): Processing's "
                                        "'Train a change detector' or python -m model_export.detector train makes one")
        self.threshold_spin = QDoubleSpinBox()
        self.threshold_spin.setRange(0.0, 0.99)
        self.threshold_spin.setSingleStep(0.05)
        self.threshold_spin.setSpecialValueText("the detector's own")  # 0: the package's threshold
        self.resample_check = QCheckBox("Resample B onto A's grid")
        self.output_widget = QgsFileWidget()
        self.output_widget.setStorageMode(QgsFileWidget.StorageMode.GetDirectory)
        self.output_widget.setToolTip("A new folder is made in it for each detection (empty: QGIS's temporary folder)")
        self.detect_button = QPushButton("Detect")
        self.detect_button.clicked.connect(self._detect_clicked)
        self.status_label = QLabel("")
        self.status_label.setWordWrap(True)
        form.addRow("Image A (before)", self.before_combo)
        form.addRow("Image B (after)", self.after_combo)
        form.addRow("Detector", self.detector_widget)
        form.addRow("Threshold", self.threshold_spin)
        form.addRow("", self.resample_check)
        form.addRow("Output folder", self.output_widget)
        form.addRow(self.detect_button)
        form.addRow(self.status_label)

    def start_detection(self) -> DetectTask:
        before = raster_path(self.before_combo.currentLayer(), "image A")
        after = raster_path(self.after_combo.currentLayer(), "image B")
        detector = self.detector_widget.filePath().strip()
        if not before or not after:
            raise ValueError("Choose image A (before) and image B (after).")
        if not detector:
            raise ValueError("Choose a change-detector package folder.")
        parent = Path(self.output_widget.filePath().strip() or QgsProcessingUtils.tempFolder())
        out = parent / f"changeanywhere_detection_{time.strftime('%Y%m%d_%H%M%S')}"
        threshold = self.threshold_spin.value() or None
        self.task = DetectTask(before, after, detector, str(out), threshold, self.resample_check.isChecked())
        self.task.done.connect(self._done)
        self.task.failed.connect(self._failed)
        self.task.cancelled.connect(self._cancelled)
        self.detect_button.setEnabled(False)
        self.status_label.setText("Detecting change...")
        QgsApplication.taskManager().addTask(self.task)
        return self.task

    def _detect_clicked(self) -> None:
        try:
            self.start_detection()
        except Exception as exc:  # noqa: BLE001 (a QgsProcessingException from raster_path too)
            self._message(str(exc), Qgis.MessageLevel.Warning)

    def _done(self, result: dict) -> None:
        self.detect_button.setEnabled(True)
        self.status_label.setText(f"{100 * result['changed_share']:.2f} % changed (threshold {result['threshold']:g}); "
                                  f"{result['polygons']} polygons in {result['out']}.")
        self.resultsAdded.emit(self.add_results(result))

    def _failed(self, message: str) -> None:
        self.detect_button.setEnabled(True)
        self.status_label.setText(message)
        self._message(message, Qgis.MessageLevel.Critical)

    def _cancelled(self) -> None:
        self.detect_button.setEnabled(True)
        self.status_label.setText("Cancelled; nothing was written.")

    def add_results(self, result: dict):
        """The detection's layers into the project, in a group at the top, styled."""
        project = QgsProject.instance()
        group = project.layerTreeRoot().insertGroup(0, f"ChangeAnywhere detection (threshold {result['threshold']:g})")
        for name, title, kind, visible in DETECTION_LAYERS:
            path = Path(result["out"]) / name
            if not path.exists():
                continue
            layer = QgsRasterLayer(str(path), title, "gdal") if kind != POLYGONS else QgsVectorLayer(f"{path}|layername=changes", title, "ogr")
            if not layer.isValid():
                self._message(f"Cannot open {path} in QGIS.", Qgis.MessageLevel.Warning)
                continue
            style_detection_output(layer, kind)
            project.addMapLayer(layer, False)
            group.addLayer(layer).setItemVisibilityChecked(visible)
        return group

    def cleanup(self) -> None:
        if self.task is not None:
            try:
                self.task.cancel()
            except RuntimeError:  # the task manager deleted it when it ended
                pass

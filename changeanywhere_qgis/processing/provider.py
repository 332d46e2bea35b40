"""The "ChangeAnywhere" Processing provider (id ``changeanywhere``)."""

from __future__ import annotations

import importlib

from qgis.core import Qgis, QgsMessageLog, QgsProcessingProvider
from qgis.PyQt.QtGui import QIcon

from .base import ICON

# One line per algorithm ("module:class", relative to this package): adding an algorithm is adding its line.
ALGORITHMS = (
    ".generate_sample:GenerateChangeSample",
    ".simulate_events:SimulateChangeEvents",
    ".model_information:ModelInformation",
    ".alg_dataset:GenerateChangeDataset",
    ".adapt_model:AdaptModel",
    ".detect_changes:DetectChanges",
    ".train_detector:TrainDetector",
)


def algorithm_classes() -> list:
    classes = []
    for spec in ALGORITHMS:
        module, name = spec.split(":")
        classes.append(getattr(importlib.import_module(module, __package__), name))
    return classes


class ChangeAnywhereProvider(QgsProcessingProvider):
    def id(self):
        return "changeanywhere"

    def name(self):
        return "ChangeAnywhere"

    def longName(self):
        return "ChangeAnywhere: change-detection samples from land-cover maps"

    def icon(self):
        return QIcon(str(ICON))

    def loadAlgorithms(self):
        # A broken algorithm module is logged and skipped: an exception escaping initAlgorithm inside
        # addAlgorithm would abort QGIS (PyQt turns it into qFatal).
        for spec in ALGORITHMS:
            try:
                module, name = spec.split(":")
                cls = getattr(importlib.import_module(module, __package__), name)
                cls().initAlgorithm({})  # a throw-away instance, to fail here rather than inside QGIS
            except Exception as exc:  # noqa: BLE001
                QgsMessageLog.logMessage(f"algorithm {spec} not loaded: {exc!r}", "ChangeAnywhere", Qgis.MessageLevel.Critical)
                continue
            self.addAlgorithm(cls())

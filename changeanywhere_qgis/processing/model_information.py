"""Processing algorithm "Model information": the model package's classes, sizes and the device a run would use."""

from __future__ import annotations

import json

from qgis.core import (
    QgsProcessingOutputNumber,
    QgsProcessingOutputString,
    QgsProcessingParameterEnum,
    QgsProcessingParameterFileDestination,
)

from .base import ChangeAnywhereAlgorithm
from .common import DEVICE_CHOICES, DEVICE_LABELS, engine_errors, require_engine, run_in_python_thread


def describe_text(report: dict) -> str:
    sizes = ", ".join(f"{graph} {size / 1e6:.2f} MB" for graph, size in report["file_sizes_bytes"].items())
    classes = ", ".join(f"{c['code']}={c['name']}" for c in report["classes"])
    return "\n".join([
        f"Model: {report['model']} ({report['path']})",
        f"Licence: {report['license']}",
        f"Device: {report['device']} ({report['device_note']})",
        f"Tile: {report['tile']['size']} px; latent {report['latent']['channels']} channels, 1/{report['latent']['downsample']}",
        f"Classes: {classes} (nodata code {report['nodata_code']})",
        f"Graphs: {sizes}",
    ])


class ModelInformation(ChangeAnywhereAlgorithm):
    NAME = "modelinformation"
    DISPLAY_NAME = "Model information"
    HELP = (
        "Loads a model package (empty: the bundled model) and reports its classes (codes, names, colours), "
        "the sizes of its graphs, its licence, and the device a run would use, with the reason (e.g. why the "
        "GPU is not used). Optionally writes the report as JSON."
    )

    DEVICE = "DEVICE"
    OUTPUT = "OUTPUT"

    def initAlgorithm(self, config=None):
        self.add_model_input()
        self.addParameter(QgsProcessingParameterEnum(self.DEVICE, "Device", options=list(DEVICE_LABELS), defaultValue=0))
        self.addParameter(QgsProcessingParameterFileDestination(
            self.OUTPUT, "Report (JSON)", "JSON files (*.json)", optional=True, createByDefault=False))
        self.addOutput(QgsProcessingOutputString("MODEL_NAME", "Model"))
        self.addOutput(QgsProcessingOutputString("DEVICE_USED", "Device a run would use"))
        self.addOutput(QgsProcessingOutputString("DEVICE_NOTE", "Why this device"))
        self.addOutput(QgsProcessingOutputString("CLASSES", "Classes (code=name, comma-separated)"))
        self.addOutput(QgsProcessingOutputNumber("CLASS_COUNT", "Number of classes"))
        self.addOutput(QgsProcessingOutputString("REPORT", "The whole report (JSON)"))

    def processAlgorithm(self, parameters, context, feedback):
        require_engine()
        with engine_errors():
            from ..engine.diffusion import load_model_package

            device = DEVICE_CHOICES[self.parameterAsEnum(parameters, self.DEVICE, context)]
            report = run_in_python_thread(load_model_package, self.model_dir(parameters, context), device).describe()
        for line in describe_text(report).splitlines():
            feedback.pushInfo(line)
        text = json.dumps(report, indent=2)
        outputs = {
            "MODEL_NAME": report["model"], "DEVICE_USED": report["device"], "DEVICE_NOTE": report["device_note"],
            "CLASSES": ", ".join(f"{c['code']}={c['name']}" for c in report["classes"]),
            "CLASS_COUNT": len(report["classes"]), "REPORT": text,
        }
        dest = self.parameterAsFileOutput(parameters, self.OUTPUT, context)
        if dest:
            with open(dest, "w", encoding="utf-8") as f:
                f.write(text)
            outputs[self.OUTPUT] = dest
        return outputs

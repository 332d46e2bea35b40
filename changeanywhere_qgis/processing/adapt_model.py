"""Processing algorithm "Adapt the model to my area": ``python -m model_export.adapt`` run from QGIS.

The training runs in a child process of QGIS's own Python (adaptation.py says why): its bar becomes the
algorithm's progress, its messages the log, Cancel stops it as Ctrl-C does (with a checkpoint that "Go on
with an interrupted run" resumes), and its ``error: ...`` becomes the algorithm's error. Without PyTorch in
QGIS's Python the algorithm is still listed, and refuses with the commands that install its CPU build.
"""

from __future__ import annotations

import queue
import signal
import subprocess
import sys
import threading
from pathlib import Path

from qgis.core import (
    QgsProcessing,
    QgsProcessingException,
    QgsProcessingOutputFolder,
    QgsProcessingParameterBoolean,
    QgsProcessingParameterEnum,
    QgsProcessingParameterFile,
    QgsProcessingParameterFolderDestination,
    QgsProcessingParameterNumber,
    QgsProcessingParameterRasterLayer,
    QgsProcessingParameterString,
)

from . import adaptation, dependencies
from . import qgis_compat as compat
from .base import ChangeAnywhereAlgorithm, remap_label
from .common import raster_path

ADAPT_DEVICES = ("cpu", "cuda")
ADAPT_KEEP = ("best", "last")  # model_export.adapt --keep, in the order of the KEEP choices


class AdaptModel(ChangeAnywhereAlgorithm):
    NAME = "adaptmodel"
    DISPLAY_NAME = "Adapt the model to my area"
    HELP = (
        "Fine-tunes a model package's denoiser on your own land-cover map and image (on the same grid, read as "
        "'Generate change sample' reads them), keeping a block of the area out of training to measure the model on "
        "before and after. Writes a new model package (empty output: into your ChangeAnywhere models folder, which the "
        "dock's model list shows). Needs PyTorch in QGIS's Python and a checkout of the ChangeAnywhere repository "
        "(model_export/); without them it says how to get them. Cancel stops with a checkpoint: run again with "
        "'Go on with an interrupted run' to continue. See docs/guide/adaptation.md."
    )

    IMAGE = "IMAGE"
    OUTPUT = "OUTPUT"
    MINUTES = "MINUTES"
    STEPS = "STEPS"
    DEVICE = "DEVICE"
    HOLDOUT = "HOLDOUT"
    DECODER_STEPS = "DECODER_STEPS"
    KEEP = "KEEP"
    JUDGE = "JUDGE"
    RESUME = "RESUME"
    REPOSITORY = "REPOSITORY"
    CONFIG = "CONFIG"

    def initAlgorithm(self, config=None):
        self.add_semantic_inputs()
        self.addParameter(QgsProcessingParameterRasterLayer(self.IMAGE, "Image of the same area (RGB, on the map's grid)"))
        self.addParameter(compat.advanced(QgsProcessingParameterString(self.REMAP, remap_label("raster's"), optional=True)))
        self.add_model_input()
        self.addParameter(QgsProcessingParameterNumber(
            self.MINUTES, "Training time (minutes)", type=compat.NUMBER_DOUBLE, defaultValue=30.0, minValue=0.1))
        self.addParameter(compat.advanced(QgsProcessingParameterNumber(
            self.STEPS, "Training steps instead of a time (empty: the time above)", type=compat.NUMBER_INTEGER,
            optional=True, minValue=1)))
        self.addParameter(compat.advanced(QgsProcessingParameterNumber(
            self.DECODER_STEPS, "Then fine-tune the decoder for this many steps (kept only if it copies the held-out block "
            "better; 0: the base's decoder)", type=compat.NUMBER_INTEGER, defaultValue=0, minValue=0)))
        self.addParameter(compat.advanced(QgsProcessingParameterEnum(
            self.KEEP, "Denoiser kept in the package", options=[
                "The one that did best on the held-out block (checked every few hundred steps; the base's included)",
                "The last step's"], defaultValue=0)))
        self.addParameter(QgsProcessingParameterEnum(self.DEVICE, "Device", options=["CPU", "GPU (CUDA)"], defaultValue=0))
        self.addParameter(compat.advanced(QgsProcessingParameterNumber(
            self.HOLDOUT, "Share of the area held out of training (for the before/after figures)",
            type=compat.NUMBER_DOUBLE, defaultValue=0.2, minValue=0.05, maxValue=0.5)))
        self.addParameter(compat.advanced(QgsProcessingParameterNumber(
            self.SEED, "Random seed (places the held-out block)", type=compat.NUMBER_INTEGER, defaultValue=0, minValue=0)))
        self.addParameter(compat.advanced(QgsProcessingParameterFile(
            self.JUDGE, "Judge folder for the map-following figure (model_export.segmentation; empty: not measured)",
            behavior=compat.FILE_BEHAVIOR_FOLDER, optional=True)))
        self.addParameter(QgsProcessingParameterBoolean(self.RESUME, "Go on with an interrupted run", defaultValue=False))
        self.addParameter(compat.advanced(QgsProcessingParameterFile(
            self.REPOSITORY, "Repository folder (a ChangeAnywhere checkout holding model_export/; empty: found)",
            behavior=compat.FILE_BEHAVIOR_FOLDER, optional=True)))
        self.addParameter(compat.advanced(QgsProcessingParameterFile(
            self.CONFIG, "Training recipe (TOML; empty: the repository's model_export/configs/default.toml)",
            behavior=compat.FILE_BEHAVIOR_FILE, extension="toml", optional=True)))
        self.addParameter(QgsProcessingParameterFolderDestination(
            self.OUTPUT, "Adapted model package (empty: your ChangeAnywhere models folder)", optional=True,
            createByDefault=False))
        self.addOutput(QgsProcessingOutputFolder("MODEL", "Adapted model package"))

    def output_folder(self, parameters, context, semantic: str) -> Path:
        value = parameters.get(self.OUTPUT)
        if value not in (None, "", QgsProcessing.TEMPORARY_OUTPUT):
            chosen = self.parameterAsFileOutput(parameters, self.OUTPUT, context)
            if chosen:
                return Path(chosen)
        folder = adaptation.user_models_folder()
        if folder is None:
            raise QgsProcessingException("Choose a folder for the adapted model package (OUTPUT).")
        return folder / f"{Path(semantic).stem}-adapted"

    def processAlgorithm(self, parameters, context, feedback):
        python = dependencies.qgis_python()
        try:
            repository = adaptation.find_repository(self.parameterAsFile(parameters, self.REPOSITORY, context) or None)
            adaptation.require_training(python, repository)
        except adaptation.AdaptationUnavailable as exc:
            raise QgsProcessingException(str(exc)) from exc
        from ..engine.diffusion import default_model_dir

        semantic = self.semantic_path(parameters, context)
        image = raster_path(self.parameterAsRasterLayer(parameters, self.IMAGE, context), "image")
        if not image:
            raise QgsProcessingException("Choose the image of the same area (IMAGE).")
        out = self.output_folder(parameters, context, semantic)
        steps = parameters.get(self.STEPS)
        options = {
            "semantic": semantic, "image": image, "remap": self.remap(parameters, context),
            "band": self.band(parameters, context), "base": self.model_dir(parameters, context) or default_model_dir(),
            "out": out, "device": ADAPT_DEVICES[self.parameterAsEnum(parameters, self.DEVICE, context)],
            "holdout": self.parameterAsDouble(parameters, self.HOLDOUT, context),
            "seed": self.parameterAsInt(parameters, self.SEED, context),
            "judge": self.parameterAsFile(parameters, self.JUDGE, context) or None,
            "resume": self.parameterAsBool(parameters, self.RESUME, context),
            "config": self.parameterAsFile(parameters, self.CONFIG, context) or None,
            "decoder-steps": self.parameterAsInt(parameters, self.DECODER_STEPS, context) or None,
            "keep": ADAPT_KEEP[self.parameterAsEnum(parameters, self.KEEP, context)],
        }
        if steps in (None, ""):
            options["minutes"] = self.parameterAsDouble(parameters, self.MINUTES, context)
        else:
            options["steps"] = self.parameterAsInt(parameters, self.STEPS, context)
        out.parent.mkdir(parents=True, exist_ok=True)
        code, errors = run_child(adaptation.command(python, options), repository, feedback)
        if code != 0:
            if feedback.isCanceled():
                raise QgsProcessingException(f"Cancelled: the checkpoint is in {out}.adapt-run; run again with 'Go on with an "
                                             "interrupted run' checked to continue.")
            raise QgsProcessingException("\n".join(errors) or f"model_export.adapt stopped with exit code {code}.")
        return {"MODEL": str(out), self.OUTPUT: str(out)}


def run_child(argv: list[str], repository: Path, feedback) -> tuple[int, list[str]]:
    """Run the adaptation, its output into the log and its bar into the progress; Cancel sends it Ctrl-C."""
    feedback.pushCommandInfo(" ".join(str(a) for a in argv))
    flags = {"creationflags": subprocess.CREATE_NEW_PROCESS_GROUP} if sys.platform == "win32" else {}
    proc = subprocess.Popen(argv, cwd=str(repository), env=adaptation.child_environment(repository),
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, **flags)
    lines: queue.Queue = queue.Queue()

    def read() -> None:
        buffer = b""
        for chunk in iter(lambda: proc.stdout.read1(4096), b""):
            buffer += chunk
            *done, buffer = buffer.replace(b"\r", b"\n").split(b"\n")
            for line in done:
                lines.put(line.decode("utf-8", "replace"))
        lines.put(buffer.decode("utf-8", "replace"))
        lines.put(None)

    threading.Thread(target=read, daemon=True).start()
    errors, stopping = [], False
    while True:
        try:
            line = lines.get(timeout=0.25)
        except queue.Empty:
            line = ""
        if line is None:
            break
        if feedback.isCanceled() and not stopping:
            stopping = True  # the child saves a checkpoint and exits, as on Ctrl-C
            proc.send_signal(signal.CTRL_BREAK_EVENT if sys.platform == "win32" else signal.SIGINT)
        if not line.strip():
            continue
        percent = adaptation.progress_percent(line)
        if percent is not None:
            feedback.setProgress(percent)
            feedback.setProgressText(line.strip()[:200])
        elif line.startswith("error: "):
            errors.append(line[len("error: "):])
            feedback.reportError(line, fatalError=False)
        else:
            feedback.pushInfo(line)
    code = proc.wait()
    proc.stdout.close()
    return code, errors

"""Processing algorithm "Train a change detector": ``python -m model_export.detector train`` run from QGIS.

As "Adapt the model to my area" (adapt_model.py, adaptation.py), the training needs PyTorch, which the plugin never
imports: it runs in a child process of QGIS's own Python from a checkout of the repository. Its bar becomes the
algorithm's progress, Cancel stops it as Ctrl-C does (with a checkpoint that 'Go on with an interrupted run' resumes),
and without PyTorch the algorithm refuses with the commands that install it.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

from qgis.core import (
    QgsProcessingException,
    QgsProcessingOutputFolder,
    QgsProcessingParameterBoolean,
    QgsProcessingParameterEnum,
    QgsProcessingParameterFile,
    QgsProcessingParameterFolderDestination,
    QgsProcessingParameterNumber,
    QgsProcessingParameterString,
)

from . import adaptation, dependencies, pip_install
from . import qgis_compat as compat
from .adapt_model import run_child
from .base import ChangeAnywhereAlgorithm

DEVICES = ("cpu", "cuda")
LIBRARIES = ("torch", "onnx", "tqdm")  # what model_export.detector imports beyond the plugin's own


def detector_repository(given: str | None) -> Path:
    """The checkout holding model_export/detector (the adaptation's search: the given folder, $CHANGEANYWHERE_REPO, the
    plugin's parent)."""
    repository = adaptation.find_repository(given)
    if not (repository / "model_export" / "detector" / "__main__.py").is_file():
        raise adaptation.AdaptationUnavailable(f"{repository} holds no model_export/detector: update the checkout (git pull), "
                                               "or give a newer one as \"Repository folder\".")
    return repository


def require_torch(python: str, repository: Path) -> None:
    """Refuse, with the install commands, when QGIS's Python cannot import the training libraries (asked in a child)."""
    probe = ("import importlib\nmissing = []\nfor m in %r:\n    try:\n        importlib.import_module(m)\n"
             "    except Exception:\n        missing.append(m)\nprint(','.join(missing))" % (LIBRARIES,))
    done = subprocess.run([python, "-c", probe], capture_output=True, text=True, env=adaptation.child_environment(repository),
                          cwd=str(repository), timeout=300, **pip_install._no_window())
    if done.returncode != 0:
        raise adaptation.AdaptationUnavailable(f"QGIS's Python ({python}) could not be run to look for PyTorch: {done.stderr.strip()[-500:]}")
    missing = [m for m in done.stdout.strip().split(",") if m]
    if missing:
        commands = "\n".join(f"    {c}" for c in adaptation.torch_install_commands(python))
        raise adaptation.AdaptationUnavailable(
            f"Training a change detector needs PyTorch in QGIS's Python ({python}), which lacks {', '.join(missing)}. Install "
            f"the CPU build of PyTorch (and onnx) for it from a terminal:\n{commands}\nthen run this algorithm again (no "
            "restart needed). Detecting change with a trained detector does not need them.")


class TrainDetector(ChangeAnywhereAlgorithm):
    NAME = "traindetector"
    DISPLAY_NAME = "Train a change detector"
    HELP = (
        "Trains a change detector (FC-Siam-diff) on datasets made by 'Generate change dataset' (any layout), optionally "
        "fine-tuned on a few real pairs of your own (a folder with A/, B/ and label/), picks its decision threshold on "
        "the datasets' validation split, and writes a change-detector package for 'Detect changes between two images'. "
        "The package's detector.json records the training data and the scores on the real test pairs in data/. Needs "
        "PyTorch in QGIS's Python and a checkout of the ChangeAnywhere repository; without them it says how to get them. "
        "Cancel stops with a checkpoint: run again with 'Go on with an interrupted run'. See docs/guide/detecting-change.md."
    )

    DATASET = "DATASET"
    MORE_DATASETS = "MORE_DATASETS"
    FINETUNE = "FINETUNE"
    STEPS = "STEPS"
    DEVICE = "DEVICE"
    RESUME = "RESUME"
    REPOSITORY = "REPOSITORY"
    OUTPUT = "OUTPUT"

    def initAlgorithm(self, config=None):
        self.addParameter(QgsProcessingParameterFile(self.DATASET, "Generated dataset folder", behavior=compat.FILE_BEHAVIOR_FOLDER))
        self.addParameter(compat.advanced(QgsProcessingParameterString(
            self.MORE_DATASETS, "More dataset folders (separated by ;)", optional=True)))
        self.addParameter(QgsProcessingParameterFile(
            self.FINETUNE, "Real pairs to fine-tune on (folder with A/, B/, label/; optional)", behavior=compat.FILE_BEHAVIOR_FOLDER,
            optional=True))
        self.addParameter(QgsProcessingParameterNumber(self.STEPS, "Training steps", type=compat.NUMBER_INTEGER, defaultValue=2000,
                                                       minValue=1))
        self.addParameter(QgsProcessingParameterEnum(self.DEVICE, "Device", options=["CPU", "GPU (CUDA)"], defaultValue=0))
        self.addParameter(QgsProcessingParameterBoolean(self.RESUME, "Go on with an interrupted run", defaultValue=False))
        self.addParameter(compat.advanced(QgsProcessingParameterFile(
            self.REPOSITORY, "Repository folder (a ChangeAnywhere checkout holding model_export/; empty: found)",
            behavior=compat.FILE_BEHAVIOR_FOLDER, optional=True)))
        self.addParameter(QgsProcessingParameterFolderDestination(self.OUTPUT, "Change-detector package"))
        self.addOutput(QgsProcessingOutputFolder("DETECTOR", "Change-detector package"))

    def processAlgorithm(self, parameters, context, feedback):
        python = dependencies.qgis_python()
        try:
            repository = detector_repository(self.parameterAsFile(parameters, self.REPOSITORY, context) or None)
            require_torch(python, repository)
        except adaptation.AdaptationUnavailable as exc:
            raise QgsProcessingException(str(exc)) from exc
        datasets = [self.parameterAsFile(parameters, self.DATASET, context)]
        more = self.parameterAsString(parameters, self.MORE_DATASETS, context) or ""
        datasets += [d.strip() for d in more.split(";") if d.strip()]
        out = Path(self.parameterAsFileOutput(parameters, self.OUTPUT, context))
        argv = [python, "-m", "model_export.detector", "train", "--dataset", *datasets, "--out", str(out),
                "--steps", str(self.parameterAsInt(parameters, self.STEPS, context)),
                "--device", DEVICES[self.parameterAsEnum(parameters, self.DEVICE, context)]]
        finetune = self.parameterAsFile(parameters, self.FINETUNE, context)
        if finetune:
            argv += ["--finetune", finetune]
        if self.parameterAsBool(parameters, self.RESUME, context):
            argv.append("--resume")
        out.parent.mkdir(parents=True, exist_ok=True)
        code, errors = run_child(argv, repository, feedback)
        if code != 0:
            if feedback.isCanceled():
                raise QgsProcessingException(f"Cancelled: the checkpoint is in {out}.training; run again with 'Go on with an "
                                             "interrupted run' checked to continue.")
            raise QgsProcessingException("\n".join(errors) or f"model_export.detector stopped with exit code {code}.")
        return {"DETECTOR": str(out), self.OUTPUT: str(out)}

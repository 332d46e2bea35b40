"""What every ChangeAnywhere algorithm shares: the engine's import, progress and cancel through the
feedback, engine errors as ``QgsProcessingException``, inputs as files the engine can read, and the
all-or-nothing move of the engine's output folder onto the user's destinations.
"""

from __future__ import annotations

import shutil
import uuid
from contextlib import contextmanager
from pathlib import Path

from qgis.core import (
    QgsProcessingException,
    QgsProcessingFeedback,
    QgsProcessingUtils,
    QgsRasterFileWriter,
    QgsRasterLayer,
)

from .dependencies import install_hint, missing_library, missing_modules, preload_native_libraries

DEVICE_CHOICES = ("auto", "cpu", "cuda")
DEVICE_LABELS = ("Auto (GPU when available)", "CPU", "GPU (CUDA)")
GEOTIFF_SUFFIXES = (".tif", ".tiff")


def require_engine(need_onnxruntime: bool = True) -> None:
    """Raise a QgsProcessingException naming the install command when a library is missing."""
    missing = [m for m in missing_modules() if need_onnxruntime or m != "onnxruntime"]
    if missing:
        raise QgsProcessingException(install_hint(missing))
    preload_native_libraries()


def engine_progress(feedback: QgsProcessingFeedback | None):
    """An engine Progress that reports through ``feedback`` and stops when the user cancels."""
    from ..engine.progress import Progress

    feedback = feedback or QgsProcessingFeedback()
    last = {"message": None}

    def report(fraction: float, message: str) -> None:
        if message and message != last["message"]:
            last["message"] = message
            feedback.setProgressText(message)
        feedback.setProgress(100.0 * fraction)

    return Progress(report, feedback.isCanceled, feedback.pushInfo)


@contextmanager
def engine_errors():
    """Engine errors (and missing libraries) -> QgsProcessingException with the engine's message."""
    from ..engine.errors import Cancelled, ChangeAnywhereError

    try:
        yield
    except Cancelled as exc:
        raise QgsProcessingException(str(exc)) from exc
    except ChangeAnywhereError as exc:
        raise QgsProcessingException(str(exc)) from exc
    except ImportError as exc:
        library = missing_library(exc)
        if library is None:
            raise
        raise QgsProcessingException(f"{install_hint([library])} ({exc})") from exc


def run_in_python_thread(function, *args, **kwargs):
    """Call ``function`` in a thread that Python created, wait for it, return its result or raise its error.

    QGIS runs Processing algorithms and QgsTasks in QThreads, which Python did not create; pyproj
    >= 3.7 keeps its PROJ context in Python thread-local storage and crashes there (pyproj issue
    #1509, fixed upstream by PR #1539). The engine reaches pyproj through geopandas, so it runs in
    a plain Python thread; progress and cancel work as before (they are thread-safe calls).
    """
    import threading

    outcome: dict = {}

    def target():
        try:
            outcome["result"] = function(*args, **kwargs)
        except BaseException as exc:  # noqa: BLE001 (re-raised in the caller's thread)
            outcome["error"] = exc

    from qgis.PyQt.QtCore import QCoreApplication, QThread

    app = QCoreApplication.instance()
    in_main_thread = app is not None and QThread.currentThread() == app.thread()
    worker = threading.Thread(target=target, name="changeanywhere-engine", daemon=True)
    worker.start()
    while worker.is_alive():
        worker.join(0.05)
        if in_main_thread:  # deliver the progress signals (and the Cancel click) meanwhile, as QGIS does
            QCoreApplication.processEvents()
    if "error" in outcome:
        raise outcome["error"]
    return outcome.get("result")


def raster_path(layer: QgsRasterLayer | None, what: str) -> str | None:
    """The file behind a raster layer (the engine reads files with GDAL)."""
    if layer is None:
        return None
    if layer.providerType() != "gdal":
        raise QgsProcessingException(
            f"The {what} layer '{layer.name()}' is not a file-based raster (provider {layer.providerType()}). "
            "Save it as a GeoTIFF (Export > Save As...) and use that."
        )
    uri = layer.source()
    return uri.split("|")[0]


def temp_run_folder() -> Path:
    """A fresh, not yet existing folder inside QGIS's processing temp folder, for the engine's output."""
    return Path(QgsProcessingUtils.tempFolder()) / f"changeanywhere_{uuid.uuid4().hex[:12]}" / "out"


def _sidecars(path: Path) -> list[Path]:
    """path and its GDAL sidecars (.msk, .aux.xml, .ovr)."""
    return [path] + sorted(p for p in path.parent.glob(path.name + ".*") if p.is_file())


def _place(src: Path, dest: Path) -> list[Path]:
    dest.parent.mkdir(parents=True, exist_ok=True)
    if src.suffix.lower() not in GEOTIFF_SUFFIXES:  # a JSON record: moved as it is
        shutil.move(str(src), str(dest))
        return [dest]
    if dest.suffix.lower() in GEOTIFF_SUFFIXES or dest.suffix == "":
        if dest.suffix == "":
            dest = dest.with_suffix(".tif")
        placed = []
        for part in _sidecars(src):
            target = dest.parent / (dest.name + part.name[len(src.name):])
            shutil.move(str(part), str(target))
            placed.append(target)
        return placed
    # Another format the user chose (e.g. .vrt is not useful, .img, .nc ...): let GDAL convert.
    from osgeo import gdal

    driver = QgsRasterFileWriter.driverForExtension(dest.suffix.lstrip("."))
    if not driver:
        raise QgsProcessingException(f"No raster format is known for the extension of {dest}. Use a .tif file.")
    result = gdal.Translate(str(dest), str(src), format=driver)
    if result is None:
        raise QgsProcessingException(f"GDAL could not write {dest} as {driver}. Use a .tif file.")
    result = None  # noqa: F841 (closes the dataset)
    return [dest] + sorted(p for p in dest.parent.glob(dest.name + ".*") if p.is_file())


def place_outputs(pairs: list[tuple[Path, str]], feedback: QgsProcessingFeedback | None) -> None:
    """Move each engine output onto its destination; on any failure (or cancel) remove what was placed."""
    placed: list[Path] = []
    try:
        for src, dest in pairs:
            if feedback is not None and feedback.isCanceled():
                raise QgsProcessingException("Cancelled by the user; nothing was written.")
            placed += _place(Path(src), Path(dest))
    except BaseException:
        for path in placed:
            try:
                path.unlink()
            except OSError:
                pass
        raise


def remove_run_folder(out_dir: Path) -> None:
    shutil.rmtree(out_dir.parent, ignore_errors=True)


def class_list(text: str | None) -> list[str] | None:
    """'building, 6 ,road' -> ['building', '6', 'road'] (names or codes); empty -> None."""
    if not text or not text.strip():
        return None
    return [part.strip() for part in text.split(",") if part.strip()]

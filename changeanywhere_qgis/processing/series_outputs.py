"""A series of dates in the "Generate change sample" and "Simulate change events" algorithms: their inputs, and where
their files go.

The algorithms' destinations keep their meaning for any number of dates: the pre-event image and map are date 1's,
the post-event image and map the last date's, the change mask the change from T1 to TN. The dates between (their
images too when the model ran), each consecutive pair's change mask and a copy of the record (sample.json, or
Simulate's events.json) go into the series folder, and Processing loads its rasters into the project with the outputs'
styles, as it loads the destinations.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from qgis.core import (
    QgsProcessingContext,
    QgsProcessingException,
    QgsProcessingParameterField,
    QgsProcessingParameterFolderDestination,
    QgsProcessingParameterNumber,
)

from . import qgis_compat as compat

DATES = "DATES"
DATE_FIELD = "DATE_FIELD"
OUTPUT_SERIES = "OUTPUT_SERIES"


def add_series_inputs(alg, changes_parameter: str) -> None:
    from ..engine.events import MAX_DATES

    alg.addParameter(QgsProcessingParameterNumber(
        DATES, "Dates in the series (2: a change pair; each later date changes the date before)", type=compat.NUMBER_INTEGER,
        defaultValue=2, minValue=2, maxValue=MAX_DATES))
    alg.addParameter(QgsProcessingParameterField(
        DATE_FIELD, "Date field of the change polygons (2 to the number of dates: when each polygon's change appears; "
                    "needed with polygons and 3 or more dates)",
        parentLayerParameterName=changes_parameter, type=compat.FIELD_ANY, optional=True))


def add_series_output(alg) -> None:
    alg.addParameter(QgsProcessingParameterFolderDestination(
        OUTPUT_SERIES, "Series folder (3 or more dates: the dates between the first and the last, each consecutive "
                       "pair's change mask, the record)", optional=True, createByDefault=True))


def dates(alg, parameters, context) -> int:
    value = parameters.get(DATES)
    return 2 if value in (None, "") else alg.parameterAsInt(parameters, DATES, context)


def date_field(alg, parameters, context) -> str | None:
    return alg.parameterAsString(parameters, DATE_FIELD, context) or None


def engine_files(files: dict[str, str], n: int) -> dict[str, str]:
    """Destination parameter -> the engine's file for a series of ``n`` dates (a pair's files for 2)."""
    if n == 2:
        return dict(files)
    last = {"t2_image.tif": f"t{n}_image.tif", "t2_semantic.tif": f"t{n}_semantic.tif", "change_mask.tif": f"change_t1_t{n}.tif"}
    return {param: last.get(name, name) for param, name in files.items()}


def series_folder_files(n: int, images: bool = True, record: str = "sample.json") -> list[str]:
    """What the series folder holds: the dates between the first and the last (their maps, and their images when
    ``images``), every consecutive change mask, the record."""
    kinds = ("image", "semantic") if images else ("semantic",)
    between = [f"t{k}_{kind}.tif" for k in range(2, n) for kind in kinds]
    return between + [f"change_t{k - 1}_t{k}.tif" for k in range(2, n + 1)] + [record]


def series_folder(alg, parameters, context, n: int, images: bool = True, record: str = "sample.json") -> Path | None:
    """The series folder of a series of 3 or more dates (None for a pair), checked before the run: it must not hold
    a series already."""
    if n == 2:
        return None
    folder = alg.parameterAsFileOutput(parameters, OUTPUT_SERIES, context)
    if not folder:
        raise QgsProcessingException("A series of 3 or more dates needs its series folder (OUTPUT_SERIES) for the dates "
                                     "between the first and the last; give a folder, or 2 dates.")
    folder = Path(folder)
    clashes = [name for name in series_folder_files(n, images, record) if (folder / name).exists()]
    if clashes:
        raise QgsProcessingException(f"The series folder {folder} already holds {', '.join(clashes)}; choose an empty folder.")
    return folder


def place_series(context, out_dir: Path, folder: Path | None, n: int, classes: list[dict], feedback, images: bool = True,
                 record: str = "sample.json") -> None:
    """The series folder's files moved into it, its rasters loaded into the project and styled on completion."""
    if folder is None:
        return
    from .layer_styles import style_output_on_load

    folder.mkdir(parents=True, exist_ok=True)
    for name in series_folder_files(n, images, record):
        source = out_dir / name
        if name == record:
            shutil.copy2(source, folder / name)  # the record destination may take it too
            continue
        shutil.move(str(source), str(folder / name))
        if context.project() is not None:
            details = QgsProcessingContext.LayerDetails(name[: -len(".tif")], context.project(), OUTPUT_SERIES)
            context.addLayerToLoadOnCompletion(str(folder / name), details)
            style_output_on_load(context, str(folder / name), name, classes)
    feedback.pushInfo(f"Series of {n} dates: the dates between and each consecutive change mask are in {folder}.")

"""The dock's series of dates: how many dates, which field of the change polygons holds each one's date, and the date
the polygons drawn next get; and the layers a finished series adds to the project."""

from __future__ import annotations

from qgis.core import QgsFeature, QgsMapLayer
from qgis.gui import QgsFieldComboBox
from qgis.PyQt.QtWidgets import QFormLayout, QSpinBox

DATE_FIELD = "date"
# The engine's MAX_DATES (a literal: the dock builds without numpy; a test holds them equal)
MAX_DATES = 12


class SeriesControls:
    """The dates spin box, the polygons' date field and the drawing date; a pair (2 dates) leaves the other two idle."""

    def __init__(self) -> None:
        self.dates_spin = QSpinBox()
        self.dates_spin.setRange(2, MAX_DATES)
        self.dates_spin.setValue(2)
        self.dates_spin.setToolTip("2: a change pair. More: each later date changes the date before; land unchanged since "
                                   "the first date stays consistent in every image")
        self.date_field_combo = QgsFieldComboBox()
        self.date_field_combo.setAllowEmptyFieldName(True)
        self.date_field_combo.setToolTip("The field of the change polygons holding each polygon's date (2 to the number of "
                                         "dates): when its change appears")
        self.draw_date_spin = QSpinBox()
        self.draw_date_spin.setRange(2, 2)
        self.draw_date_spin.setToolTip("The date the polygons you draw next get (in the date field)")
        self.dates_spin.valueChanged.connect(self._dates_changed)
        self._dates_changed(2)

    def add_rows(self, form: QFormLayout) -> None:
        form.addRow("Dates", self.dates_spin)
        form.addRow("Date field", self.date_field_combo)
        form.addRow("Date of drawn polygons", self.draw_date_spin)

    def _dates_changed(self, dates: int) -> None:
        self.draw_date_spin.setRange(2, dates)
        series = dates > 2
        self.date_field_combo.setEnabled(series)
        self.draw_date_spin.setEnabled(series)

    def set_layer(self, layer: QgsMapLayer | None) -> None:
        """The polygons layer changed: its date field, when it has one named ``date``."""
        self.date_field_combo.setLayer(layer)
        if layer is not None and layer.fields().indexOf(DATE_FIELD) >= 0:
            self.date_field_combo.setField(DATE_FIELD)

    def stamp(self, feature: QgsFeature) -> None:
        """A drawn polygon gets the drawing date in the date field (when the layer has one chosen)."""
        field = self.date_field_combo.currentField()
        if field and feature.fields().indexOf(field) >= 0:
            feature[field] = self.draw_date_spin.value()

    def settings(self) -> tuple[int, str | None]:
        """(dates, date field) for the engine; a series of 3 or more dates needs the date field."""
        dates = self.dates_spin.value()
        if dates == 2:
            return 2, None
        field = self.date_field_combo.currentField()
        if not field:
            raise ValueError(f"A series of {dates} dates needs the date field of the change polygons (2 to {dates}: when "
                             "each polygon's change appears). Choose it, or set 2 dates.")
        return dates, field


def result_layers(dates: int) -> list[tuple[str, str, bool]]:
    """(engine file, layer name, visible at first) of a finished series, top of the group first: the change masks, the
    maps, the images, the last date on top."""
    masks = [(f"change_t1_t{dates}.tif", f"change T1 to T{dates}", False)]
    masks += [(f"change_t{k - 1}_t{k}.tif", f"change T{k - 1} to T{k}", False) for k in range(dates, 1, -1)]
    maps = [(f"t{k}_semantic.tif", f"T{k} map", False) for k in range(dates, 0, -1)]
    images = [(f"t{k}_image.tif", f"T{k} image", k in (1, dates)) for k in range(dates, 0, -1)]
    return masks + maps + images

"""The dock's style image picker: a raster layer of any grid whose appearance the post-event image takes, and how strongly."""

from __future__ import annotations

from qgis.gui import QgsMapLayerComboBox
from qgis.PyQt.QtWidgets import QDoubleSpinBox, QHBoxLayout, QWidget

from ..processing import qgis_compat as compat

# The engine's DEFAULT_STYLE_STRENGTH (a literal: the dock builds without numpy; a test holds the two equal)
DEFAULT_STRENGTH = 1.0


class StylePicker(QWidget):
    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.layer_combo = QgsMapLayerComboBox()
        self.layer_combo.setFilters(compat.layer_filter("RasterLayer"))
        self.layer_combo.setAllowEmptyLayer(True)
        self.layer_combo.setLayer(None)
        self.layer_combo.setToolTip("An 8-bit RGB image of any size and place (another season, light or sensor): the "
                                    "post-event image takes its appearance, in the changed and unchanged land alike; empty: none")
        self.strength_spin = QDoubleSpinBox()
        self.strength_spin.setRange(0.0, 1.0)
        self.strength_spin.setSingleStep(0.1)
        self.strength_spin.setValue(DEFAULT_STRENGTH)
        self.strength_spin.setToolTip("Style strength: 0 = none, 1 = the style image's appearance")
        self.strength_spin.setEnabled(False)
        self.layer_combo.layerChanged.connect(lambda layer: self.strength_spin.setEnabled(layer is not None))
        row = QHBoxLayout(self)
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(self.layer_combo, 1)
        row.addWidget(self.strength_spin)

    def settings(self) -> dict:
        """``style`` and ``style_strength`` for the engine's settings (nothing without a style layer)."""
        layer = self.layer_combo.currentLayer()
        if layer is None:
            return {}
        if layer.providerType() != "gdal":
            raise ValueError("The style image must be a raster layer from a file (GeoTIFF, PNG, JPEG).")
        return {"style": layer.source().split("|")[0], "style_strength": self.strength_spin.value()}

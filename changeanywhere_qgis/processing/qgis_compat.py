"""Enums and types that moved between QGIS 3.22 and QGIS 4 (Qt6), resolved once.

Everything is looked up by its newest fully scoped name first (``Qgis.ProcessingSourceType``,
QGIS >= 3.36) and falls back to the scoped name QGIS 3.22 knows (``QgsProcessing.SourceType``).
Nothing here uses the unscoped spellings, which PyQt6 builds do not have.
"""

from __future__ import annotations

from qgis.core import (
    Qgis,
    QgsField,
    QgsProcessing,
    QgsProcessingParameterDefinition,
    QgsProcessingParameterField,
    QgsProcessingParameterFile,
    QgsProcessingParameterNumber,
    QgsWkbTypes,
)


def _new_or_old(new_enum: str, new_member: str, old):
    """``Qgis.<new_enum>.<new_member>`` when this QGIS has it, else ``old()`` (evaluated only then)."""
    scoped = getattr(Qgis, new_enum, None)
    return getattr(scoped, new_member) if scoped is not None else old()


SOURCE_POLYGON = _new_or_old("ProcessingSourceType", "VectorPolygon", lambda: QgsProcessing.SourceType.TypeVectorPolygon)
FILE_BEHAVIOR_FOLDER = _new_or_old("ProcessingFileParameterBehavior", "Folder", lambda: QgsProcessingParameterFile.Behavior.Folder)
FILE_BEHAVIOR_FILE = _new_or_old("ProcessingFileParameterBehavior", "File", lambda: QgsProcessingParameterFile.Behavior.File)
NUMBER_INTEGER = _new_or_old("ProcessingNumberParameterType", "Integer", lambda: QgsProcessingParameterNumber.Type.Integer)
NUMBER_DOUBLE = _new_or_old("ProcessingNumberParameterType", "Double", lambda: QgsProcessingParameterNumber.Type.Double)
FIELD_ANY = _new_or_old("ProcessingFieldParameterDataType", "Any", lambda: QgsProcessingParameterField.DataType.Any)
FLAG_ADVANCED = _new_or_old("ProcessingParameterFlag", "Advanced", lambda: QgsProcessingParameterDefinition.Flag.FlagAdvanced)
POLYGON_GEOMETRY = _new_or_old("GeometryType", "Polygon", lambda: QgsWkbTypes.GeometryType.PolygonGeometry)


def advanced(param: QgsProcessingParameterDefinition) -> QgsProcessingParameterDefinition:
    """Mark a parameter as advanced (folded away in the dialog)."""
    param.setFlags(param.flags() | FLAG_ADVANCED)
    return param


def _field_type(kind: str):
    # QGIS >= 3.38 (and QGIS 4) takes QMetaType.Type; 3.22 takes QVariant.Type.
    if Qgis.QGIS_VERSION_INT >= 33800:
        from qgis.PyQt.QtCore import QMetaType

        return {"int": QMetaType.Type.Int, "string": QMetaType.Type.QString}[kind]
    from qgis.PyQt.QtCore import QVariant

    return {"int": QVariant.Type.Int, "string": QVariant.Type.String}[kind]


def int_field(name: str) -> QgsField:
    return QgsField(name, _field_type("int"))


def string_field(name: str) -> QgsField:
    return QgsField(name, _field_type("string"))


def layer_filter(name: str):
    """Layer-combo filters: Qgis.LayerFilter (QGIS >= 3.34) or QgsMapLayerProxyModel.Filter (3.22)."""
    scoped = getattr(Qgis, "LayerFilter", None)
    if scoped is not None:
        return getattr(scoped, name)
    from qgis.core import QgsMapLayerProxyModel

    return getattr(QgsMapLayerProxyModel.Filter, name)

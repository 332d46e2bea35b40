"""ChangeAnywhere for QGIS: QGIS loads this folder as a plugin.

Only ``classFactory`` lives here, with no heavy import: the engine (numpy, onnxruntime, rasterio)
is imported when the user first runs something, so a missing library never stops QGIS loading us.
"""


def classFactory(iface):  # noqa: N802 (QGIS's name)
    from .plugin import ChangeAnywherePlugin

    return ChangeAnywherePlugin(iface)

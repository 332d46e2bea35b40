"""QGIS Processing: the ChangeAnywhere provider and one small module per algorithm.

Nothing here imports the engine at module level; each algorithm imports it in ``processAlgorithm``.
"""

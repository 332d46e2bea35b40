"""Adapting a model package to a user's area (``python -m model_export.adaptation.adapt``; the plugin runs
``python -m model_export.adaptation.adapt``): the area and its held-out block, the training loop, the optional decoder step
and the held-out figures."""

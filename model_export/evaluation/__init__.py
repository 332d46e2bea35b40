"""Evaluation: whether generated datasets, model packages and adaptations are good (PyTorch judges, map-following,
held-out reconstruction, verdicts). See model_export/README.md for the map of the training side."""

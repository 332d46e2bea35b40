"""Training the package's networks: data and release readers, the config, the autoencoder, diffusion and decoder
stages, several processes (torchrun), schedules, checkpoints, provenance and the cost of a step.
Command: ``python -m model_export.training.train`` (``python -m model_export.training.train`` still works)."""

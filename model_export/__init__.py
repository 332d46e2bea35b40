"""Training and ONNX export of the ChangeAnywhere model package (PyTorch; never imported by the plugin).

The map of its packages and commands is model_export/README.md."""

from pathlib import Path

CONFIGS = Path(__file__).resolve().parent / "configs"  # the training recipes (TOML), beside the packages that read them

"""Training and ONNX export of the ChangeAnywhere model package (PyTorch; never imported by the plugin)."""

"""From training runs to model packages and back: the ONNX graphs, the package (manifest, checks, atomic write),
a package written again with a new decoder, and a package's weights read back into PyTorch."""

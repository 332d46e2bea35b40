"""The package's ONNX graphs: each graph's inputs and outputs (the contract's table), their export from PyTorch,
and the check that ONNX Runtime computes what PyTorch does."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import torch


OPSET = 17


# Each graph's input names, output name and dynamic axes (the contract's table of graphs).
GRAPH_IO = {
    "encoder": (["image"], "latent", {"image": {0: "N", 2: "H", 3: "W"}, "latent": {0: "N", 2: "h", 3: "w"}}),
    "decoder": (["latent"], "image", {"latent": {0: "N", 2: "h", 3: "w"}, "image": {0: "N", 2: "H", 3: "W"}}),
    "denoiser": (["latent", "timestep", "semantic"], "prediction",
                 {"latent": {0: "N", 2: "h", 3: "w"}, "timestep": {0: "N"},
                  "semantic": {0: "N", 2: "H", 3: "W"}, "prediction": {0: "N", 2: "h", 3: "w"}}),
}


class ExportError(Exception):
    pass


def export_graph(module: torch.nn.Module, args: tuple, names_in: list[str], name_out: str,
                 dynamic: dict, path: Path) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(module, args, str(path), input_names=names_in, output_names=[name_out],
                          dynamic_axes=dynamic, opset_version=OPSET, do_constant_folding=True, dynamo=False)


def max_difference(path: Path, module: torch.nn.Module, feeds: list[dict]) -> float:
    import onnxruntime as ort

    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    worst = 0.0
    for feed in feeds:
        with torch.no_grad():
            ref = module(*[torch.from_numpy(v) for v in feed.values()]).numpy()
        got = sess.run(None, feed)[0]
        if got.shape != ref.shape:
            raise ExportError(f"{path.name}: ONNX Runtime gives shape {got.shape}, PyTorch {ref.shape}")
        worst = max(worst, float(np.abs(got - ref).max()))
    return worst

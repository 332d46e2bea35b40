"""The detector package (docs/reference/detector-package.md): the net as one ONNX graph that ends in the sigmoid
(``before``, ``after`` -> ``probability``), checked against torch on the same inputs, and ``detector.json``.

Written into a temporary folder beside ``out`` and moved into place at the end, so a failed export leaves no half
package (and an earlier package at ``out`` stays until the new one is whole).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import torch
from torch import nn

from changeanywhere_qgis.engine.detection.package import FORMAT, GRAPH, INPUTS, MANIFEST, OUTPUT
from changeanywhere_qgis.engine.io import file_sha256

GRAPH_FILE = "detector.onnx"
TOLERANCE = 1e-4  # largest difference in probability allowed between onnxruntime and torch
OPSET = 17


class WithSigmoid(nn.Module):
    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, before: torch.Tensor, after: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.net(before, after))


def export_graph(net: nn.Module, path: Path, bands: int = 3, size: int = 64) -> float:
    """Write the graph (dynamic batch and size) and return its largest difference from torch on random pairs."""
    import onnxruntime as ort

    model = WithSigmoid(net).eval().cpu()
    gen = torch.Generator().manual_seed(0)
    a, b = (torch.rand(2, bands, size, size, generator=gen) * 2 - 1 for _ in range(2))
    axes = {0: "batch", 2: "height", 3: "width"}
    torch.onnx.export(model, (a, b), str(path), input_names=list(INPUTS), output_names=[OUTPUT], opset_version=OPSET,
                      dynamic_axes={INPUTS[0]: axes, INPUTS[1]: axes, OUTPUT: axes}, dynamo=False)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    worst = 0.0
    for n, s in ((2, size), (1, 2 * size)):  # two shapes: the dynamic axes really are dynamic
        a, b = (torch.rand(n, bands, s, s, generator=gen) * 2 - 1 for _ in range(2))
        with torch.no_grad():
            want = model(a, b).numpy()
        got = session.run([OUTPUT], {INPUTS[0]: a.numpy(), INPUTS[1]: b.numpy()})[0]
        worst = max(worst, float(np.abs(got - want).max()))
    if worst > TOLERANCE:
        raise RuntimeError(f"The exported graph differs from the torch net by {worst:.2e} (tolerance {TOLERANCE:g}); not exported.")
    return worst


def write_package(net: nn.Module, out: Path, manifest: dict, measure=None) -> dict:
    """Export ``net`` with ``manifest`` (everything but format and files) into the package folder ``out``.

    ``measure(folder) -> dict``: run on the whole package before it moves into place (the threshold and the scores are
    measured on the exported graph); its keys are added to the manifest."""
    out = Path(out)
    tmp = out.with_name(f".{out.name}.partial")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        worst = export_graph(net, tmp / GRAPH_FILE, bands=int(manifest["input"]["bands"]))
        full = {"format": FORMAT, **manifest, "files": {GRAPH: {"path": GRAPH_FILE, "sha256": file_sha256(tmp / GRAPH_FILE)}}}
        full["export"] = {"opset": OPSET, "max_difference_from_torch": worst, "tolerance": TOLERANCE}
        (tmp / MANIFEST).write_text(json.dumps(full, indent=2), encoding="utf-8")
        if measure is not None:
            full = update_manifest(tmp, **measure(tmp))
        if out.exists():
            old = out.with_name(f".{out.name}.old")
            shutil.rmtree(old, ignore_errors=True)
            out.replace(old)
            tmp.replace(out)
            shutil.rmtree(old, ignore_errors=True)
        else:
            tmp.replace(out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return full


def update_manifest(out: Path, **keys) -> dict:
    """Add keys (the scores, measured on the exported package) to an exported package's manifest."""
    path = Path(out) / MANIFEST
    manifest = json.loads(path.read_text(encoding="utf-8"))
    manifest.update(keys)
    tmp = path.with_name(MANIFEST + ".partial")
    tmp.write_text(json.dumps(manifest, indent=2), encoding="utf-8")
    tmp.replace(path)
    return manifest

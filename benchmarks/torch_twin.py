"""The PyTorch twin of a model package's denoiser, for timing ONNX Runtime against PyTorch eager.

With the training run at hand (model_export/runs/default/diffusion/last.pt) the twin carries the
trained EMA weights; otherwise it is the same architecture (model_export/configs/default.toml) with
freshly initialised weights — step time does not depend on the weight values. Either way the
twin is exported with the project's exporter, so ONNX Runtime and PyTorch run the very same weights.
"""

from __future__ import annotations

import tempfile
import tomllib
from pathlib import Path

import onnxruntime as ort
import torch

from model_export.export.package import load_networks
from model_export.networks.denoiser import SemanticUNet
from model_export.networks.graphs import export_graph
from model_export.training.data import NUM_CLASSES

REPO = Path(__file__).resolve().parents[1]
RUN = REPO / "model_export" / "runs" / "default" / "diffusion"
CONFIG = REPO / "model_export" / "configs" / "default.toml"


def twin_denoiser() -> tuple[torch.nn.Module, str]:
    if (RUN / "last.pt").is_file():
        return load_networks(RUN)[3], f"trained weights from {RUN.relative_to(REPO)}/last.pt"
    torch.manual_seed(0)
    cfg = tomllib.loads(CONFIG.read_text())
    net = SemanticUNet(cfg["diffusion"], num_classes=NUM_CLASSES).eval()
    with torch.no_grad():  # zero-initialised layers (the output conv) would make every output 0
        for p in net.parameters():
            if not p.any():
                p.normal_(0.0, 0.02)
    return net, f"architecture of {CONFIG.relative_to(REPO)}, random weights"


def export_twin(net: torch.nn.Module, latent, timestep, semantic, threads: int) -> ort.InferenceSession:
    """Export with the project's exporter and open it in onnxruntime as the engine does."""
    path = Path(tempfile.mkdtemp()) / "denoiser.onnx"
    dynamic = {"latent": {0: "n", 2: "h", 3: "w"}, "timestep": {0: "n"}, "semantic": {0: "n", 2: "H", 3: "W"}, "prediction": {0: "n", 2: "h", 3: "w"}}
    export_graph(net, (latent, timestep, semantic), ["latent", "timestep", "semantic"], "prediction", dynamic, path)
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.intra_op_num_threads = threads
    # Idle onnxruntime threads spin by default and would steal the cores from PyTorch's turn.
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])

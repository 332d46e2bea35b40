"""Read a model package's networks back into PyTorch, from its ONNX graphs alone.

A package's three graphs are the only weights a user has (the run folders that made them are not
shipped), so fine-tuning a package (``train --init-from``, ``model_export.adaptation.adapt``) starts here.

The legacy ONNX exporter keeps most parameters under their state-dict names, but constant folding
stores some as anonymous, transformed tensors (a GroupNorm scale as [C, 1, 1], a Linear weight
transposed for MatMul). Rather than hard-code those rules, which change with PyTorch versions, we
learn them: the same architecture, filled with distinct random values, is exported with this
checkout's exporter, and every initializer of that graph is matched by value to the parameter (and
the reshape or transpose) it came from. Initializers are keyed by name, or for anonymous ones by
the node that consumes them, so the mapping carries over to the package's graph. The networks are
then checked against ONNX Runtime on the package's own graphs: a package that does not come back
exactly is refused, never trained on silently.
"""

from __future__ import annotations

import hashlib
import json
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
import torch
from onnx import numpy_helper

from changeanywhere_qgis.engine.diffusion import ModelPackage, load_model_package
from changeanywhere_qgis.engine.errors import ModelError

from model_export.networks.autoencoder import DecoderGraph, EncoderGraph, build_vqmodel, downsample_factor
from model_export.networks.denoiser import SemanticUNet
from model_export.networks.graphs import GRAPH_IO, export_graph
from model_export.training.data import NUM_CLASSES, one_hot
from model_export.training.errors import DataError

# The config keys that decide each network's shape: written into the manifest's `architecture` at export.
AUTOENCODER_KEYS = ("block_out_channels", "layers_per_block", "norm_num_groups", "codebook_size")
DIFFUSION_KEYS = ("block_out_channels", "layers_per_block", "norm_num_groups", "mask_channels", "mid_attention",
                  "attention_heads")
# float32 graphs run by two runtimes: differences of a few 1e-5 are rounding, anything larger a wrong weight.
TOLERANCE = 1e-3


@dataclass
class PackageNetworks:
    vq: torch.nn.Module
    latent_mean: torch.Tensor  # per channel, the standardisation baked into the encoder and decoder graphs
    latent_std: torch.Tensor
    unet: SemanticUNet
    manifest: dict
    sha256: str  # of model.json, which holds the graphs' own hashes: names this exact package
    architecture: dict


@dataclass
class BaseModel:
    """The package a training run continues from (``train --init-from``), and what the new package records of it."""

    path: str | Path
    networks: PackageNetworks

    def provenance(self) -> dict:
        m = self.networks.manifest
        # the base's own training record travels along, so a package continued from a package continued from a
        # third says every stage's steps (0.3.0's denoiser: 12,000 in its base, then 4,000)
        return {"path": str(self.path), "name": m.get("name"), "version": m.get("version"),
                "model_json_sha256": self.networks.sha256, **({"training": m["training"]} if m.get("training") else {})}

    def check_architecture(self, cfg: dict) -> None:
        got, want = architecture(cfg), self.networks.architecture
        if got != want:
            diff = [f"[{t}] {k} = {got[t][k]!r} (package: {want[t][k]!r})" for t in want for k in want[t] if got[t][k] != want[t][k]]
            raise DataError(f"The config's architecture differs from the package {self.path}'s: {'; '.join(diff)}. "
                            "Continue a package with the config it was trained with.")

    def autoencoder_record(self) -> dict:
        """The package's autoencoder in the form training.diffusion keeps a finished autoencoder run."""
        trained = self.networks.manifest.get("training", {}).get("autoencoder", {})
        return {"config": self.networks.architecture["autoencoder"], "vq": self.networks.vq.state_dict(),
                "latent_mean": self.networks.latent_mean, "latent_std": self.networks.latent_std,
                "steps": trained.get("steps", 0), "wall_seconds": trained.get("wall_seconds", 0.0), "history": [],
                "summary": json.dumps({"holdout_psnr_db": trained.get("holdout_psnr_db")}), "base_model": self.provenance(),
                "unchanged_from_base": True}


def architecture(cfg: dict) -> dict:
    """What `package.py` writes into the manifest so a package can be rebuilt without its config."""
    return {"autoencoder": {k: cfg["autoencoder"][k] for k in AUTOENCODER_KEYS},
            "diffusion": {k: cfg["diffusion"][k] for k in DIFFUSION_KEYS}}


def read_package_networks(model_dir: str | Path, cfg: dict | None = None) -> PackageNetworks:
    """The package's encoder+decoder (one VQModel), latent statistics and denoiser as PyTorch modules.

    The architecture comes from the manifest's ``architecture`` (packages exported since it exists) or,
    for older packages, from ``cfg`` (the recipe's TOML, e.g. configs/default.toml).
    """
    model_dir = Path(model_dir)
    try:
        pkg = load_model_package(model_dir, "cpu")  # the engine's checks (format, files, hashes), and its sessions
    except ModelError as exc:
        raise DataError(str(exc)) from exc
    manifest_bytes = (model_dir / "model.json").read_bytes()
    manifest = json.loads(manifest_bytes)
    arch = manifest.get("architecture")
    if arch is None:
        if cfg is None:
            raise DataError(f"{model_dir / 'model.json'} has no 'architecture' (the package predates it); give the "
                            "config it was trained with (--config model_export/configs/default.toml for the bundled model).")
        arch = architecture(cfg)
    if len(manifest["classes"]) != NUM_CLASSES or manifest["latent"]["downsample"] != downsample_factor(arch["autoencoder"]):
        raise DataError(f"{model_dir}: its classes or downsampling differ from what model_export trains "
                        f"({NUM_CLASSES} classes, factor {downsample_factor(arch['autoencoder'])}).")
    builders = {  # a fresh probe of each graph's module: filled with distinct values, exported, matched
        "encoder": lambda: EncoderGraph(build_vqmodel(arch["autoencoder"]), torch.zeros(3), torch.ones(3)),
        "decoder": lambda: DecoderGraph(build_vqmodel(arch["autoencoder"]), torch.zeros(3), torch.ones(3)),
        "denoiser": lambda: SemanticUNet(arch["diffusion"], num_classes=NUM_CLASSES),
    }
    vq, unet = build_vqmodel(arch["autoencoder"]).eval(), SemanticUNet(arch["diffusion"], num_classes=NUM_CLASSES).eval()
    states = {"vq": {k: v.clone() for k, v in vq.state_dict().items()},
              "unet": {k: v.clone() for k, v in unet.state_dict().items()}}
    aliases = {"vq": _aliases(vq), "unet": _aliases(unet)}
    read: dict[str, set] = {"vq": set(), "unet": set()}
    latent: dict[str, torch.Tensor] = {}
    with tempfile.TemporaryDirectory(prefix="package-weights-") as tmp:
        for name, build in builders.items():
            probe = build().eval()
            values_of = _fill_distinct(probe)
            fresh = Path(tmp) / f"{name}.onnx"
            _export(name, probe, manifest["tile"]["multiple_of"] * 2, manifest["latent"]["downsample"], fresh)
            rules = _match_rules(onnx.load(str(fresh)).graph, values_of)
            package = _initializers_by_key(onnx.load(str(model_dir / manifest["files"][name]["path"])).graph)
            missing = [k for k in rules if k not in package]
            if missing:
                raise DataError(f"{model_dir}: its {name} graph does not have the layout this architecture exports "
                                f"({len(missing)} weights not found, e.g. {missing[0]}); was it exported by another "
                                "version of package.py, or with another architecture?")
            owner = "unet" if name == "denoiser" else "vq"
            for key, (state_name, transposed) in rules.items():
                value = torch.from_numpy(package[key].copy())
                value = value.T if transposed else value
                if name != "denoiser" and state_name in ("mean", "std"):
                    latent[state_name] = value.reshape(-1)
                    continue
                state_name = state_name.removeprefix("vq.") if owner == "vq" else state_name
                if package[key].size != states[owner][state_name].numel():
                    raise DataError(f"{model_dir}: its {name} graph's {key} has {package[key].size} values where this "
                                    f"architecture has {states[owner][state_name].numel()}; give the config the package was trained with.")
                for alias in aliases[owner][state_name]:
                    states[owner][alias].copy_(value.reshape(states[owner][alias].shape))
                    read[owner].add(alias)
    for owner, module in (("vq", vq), ("unet", unet)):
        unread = [k for k, v in states[owner].items() if k not in read[owner] and v.is_floating_point()]
        if unread:
            raise DataError(f"{model_dir}: {len(unread)} weights of the {'denoiser' if owner == 'unet' else 'autoencoder'} "
                            f"are in none of its graphs, e.g. {unread[0]}; this architecture does not fit the package.")
        module.load_state_dict(states[owner])
    if set(latent) != {"mean", "std"}:
        raise DataError(f"{model_dir}: its encoder graph holds no latent mean/std; it was not exported by package.py.")
    networks = PackageNetworks(vq, latent["mean"], latent["std"], unet, manifest,
                               hashlib.sha256(manifest_bytes).hexdigest(), arch)
    check_against_package(networks, pkg)
    return networks


def check_against_package(net: PackageNetworks, pkg: ModelPackage, tolerance: float = TOLERANCE) -> None:
    """Run the PyTorch networks and the package's graphs (the engine's sessions) on the same inputs; refuse any
    disagreement."""
    rng = np.random.default_rng(0)
    m = net.manifest["tile"]["multiple_of"]
    h, w = 2 * m, 3 * m
    image = rng.uniform(-1, 1, (2, 3, h, w)).astype(np.float32)
    semantic = one_hot(rng.integers(0, NUM_CLASSES + 1, (2, h, w)))
    encoder = EncoderGraph(net.vq, net.latent_mean, net.latent_std).eval()
    decoder = DecoderGraph(net.vq, net.latent_mean, net.latent_std).eval()
    with torch.no_grad():
        latent = encoder(torch.from_numpy(image)).numpy()
    cases = {
        "encoder": (encoder, {"image": image}),
        "decoder": (decoder, {"latent": latent}),
        "denoiser": (net.unet, {"latent": rng.standard_normal(latent.shape).astype(np.float32),
                                "timestep": np.array([3, 970], dtype=np.int64), "semantic": semantic}),
    }
    for name, (module, feed) in cases.items():
        with torch.no_grad():
            ref = module(*[torch.from_numpy(v) for v in feed.values()]).numpy()
        got = pkg.sessions[name].run(None, feed)[0]
        diff = float(np.abs(got - ref).max()) if got.shape == ref.shape else float("inf")
        if not diff <= tolerance:
            raise DataError(f"{pkg.path}: the {name} read back into PyTorch differs from the package's graph by {diff:.3g} "
                            f"(tolerance {tolerance:g}); its weights cannot be recovered with this architecture. The shape settings "
                            "used (the manifest's 'architecture', or --config/--set for older packages: norm_num_groups, "
                            "widths) must be the ones the graphs were exported from.")


def _aliases(module: torch.nn.Module) -> dict[str, list[str]]:
    """State names that share one tensor (diffusers keeps `Downsample2D.conv` also as `.Conv2d_0`)."""
    groups: dict[int, list[str]] = {}
    for name, t in module.state_dict().items():
        groups.setdefault(t.data_ptr(), []).append(name)
    return {name: group for group in groups.values() for name in group}


def _fill_distinct(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    """Give every parameter and buffer distinct values, so each graph constant points to one of them."""
    gen = torch.Generator().manual_seed(1234)
    probe, seen = {}, set()
    with torch.no_grad():
        for name, t in module.state_dict().items():
            if t.is_floating_point() and t.data_ptr() not in seen:
                seen.add(t.data_ptr())
                # std stays away from 0: the graphs divide by it
                t.copy_(torch.rand(t.shape, generator=gen) + 0.5 if name == "std" else torch.randn(t.shape, generator=gen) * 0.05)
                probe[name] = t.detach().clone()
    return probe


def _export(name: str, module: torch.nn.Module, size: int, f: int, path: Path) -> None:
    example = {
        "encoder": (torch.zeros(1, 3, size, size),),
        "decoder": (torch.zeros(1, 3, size // f, size // f),),
        "denoiser": (torch.zeros(1, 3, size // f, size // f), torch.tensor([10]), torch.zeros(1, NUM_CLASSES, size, size)),
    }[name]
    export_graph(module, example, *GRAPH_IO[name], path)


def _value_key(a: np.ndarray) -> bytes:
    return hashlib.sha1(np.ascontiguousarray(a, dtype=np.float32).tobytes()).digest()


def _match_rules(graph: onnx.GraphProto, probe: dict[str, torch.Tensor]) -> dict[str, tuple[str, bool]]:
    """Initializer key -> (state name, transposed) for every initializer that holds a parameter's values."""
    by_value = {}
    for name, t in probe.items():
        a = t.numpy()
        by_value.setdefault(_value_key(a), (name, False))
        if a.ndim == 2:
            by_value.setdefault(_value_key(a.T), (name, True))
    rules = {}
    for key, value in _initializers_by_key(graph).items():
        hit = by_value.get(_value_key(value)) if value.dtype == np.float32 else None
        if hit is not None:
            rules[key] = hit
    return rules


def _initializers_by_key(graph: onnx.GraphProto) -> dict[str, np.ndarray]:
    """Named initializers by name; anonymous ones ('onnx::Mul_386') by the node and input slot that use them,
    because their numbers change with every export while the module-scoped node names do not."""
    consumers = {}
    for node in graph.node:
        for slot, inp in enumerate(node.input):
            consumers.setdefault(inp, f"{node.name}#{slot}")
    out = {}
    for init in graph.initializer:
        anonymous = init.name.startswith("onnx::") or init.name.startswith("/")
        out[consumers.get(init.name, init.name) if anonymous else init.name] = numpy_helper.to_array(init)
    return out

"""Loading a model package (docs/reference/model-package.md) and running its three ONNX graphs.

The manifest is validated before any session is made, so a broken package fails with a message
that names the problem, not with an onnxruntime stack trace. Sessions are made on the device the
user asked for; with ``auto`` CUDA is used only when a session really runs there.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from ..errors import InputError, ModelError
from ..io import OwnedFiles, file_sha256
from ..landcover import ClassScheme
from .schedule import DiffusionSchedule

FORMAT = "changeanywhere-model/1"
DEVICES = ("auto", "cpu", "cuda")
# graph -> (input names, output names), fixed by the contract.
GRAPHS = {
    "encoder": (("image",), ("latent",)),
    "decoder": (("latent",), ("image",)),
    "denoiser": (("latent", "timestep", "semantic"), ("prediction",)),
}
# Optional graphs a package may carry beside the three (docs/reference/model-package.md), each standing in for one of
# them when a precision asks for it: files key -> (the graph it replaces, the precision that loads it).
OPTIONAL_GRAPHS = {"denoiser_int8": ("denoiser", "int8")}
PRECISIONS = ("float32", "int8")
# What a run loads unless asked otherwise: the int8 denoiser is an option (issue #34: the default only if a quality
# rule says so), and the bundled model carries none (the repository's size budget).
DEFAULT_PRECISION = "float32"
QUANTIZE_COMMAND = "python -m model_export.export.quantize --package"
REQUIRED_KEYS = ("format", "name", "classes", "image", "latent", "diffusion", "tile", "files")
# What an export may replace (io/replace_guard.py): a package's manifest, its graphs (with ONNX's external weight
# files) and a card; nothing in a sub-folder.
PACKAGE_FOLDER = OwnedFiles("a model package", ("model.json",),
                            lambda rel, is_dir: not is_dir and len(rel.parts) == 1
                            and (rel.name in ("model.json", "README.md") or rel.name.endswith((".onnx", ".onnx.data"))))


def default_model_dir() -> Path:
    """The model bundled with the plugin."""
    return Path(__file__).resolve().parents[2] / "models" / "default"  # changeanywhere_qgis/models/default


# (section, key, kind, required): the numbers the engine reads from a manifest; "int" means a whole number >= 1.
NUMBERS = (
    ("tile", "size", "int", True), ("tile", "multiple_of", "int", False),
    ("latent", "channels", "int", True), ("latent", "downsample", "int", True),
    ("diffusion", "num_train_timesteps", "int", True), ("diffusion", "beta_start", "float", True),
    ("diffusion", "beta_end", "float", True), ("diffusion", "guidance_scale", "float", False),
)


def _check_numbers(manifest: dict, manifest_path: Path) -> None:
    """Every number the engine reads must be one, so a hand-edited manifest fails here, named, not deep in the sampler."""
    for section, key, kind, required in NUMBERS:
        block = manifest[section]
        if not isinstance(block, dict):
            raise ModelError(f"{manifest_path}: {section!r} must be a JSON object, got {block!r}. Re-export the model package.")
        if key not in block:
            if required:
                raise ModelError(f"{manifest_path} lacks {section}.{key}. Re-export the model package.")
            continue
        value = block[key]
        number = not isinstance(value, bool) and isinstance(value, (int, float))
        if kind == "int" and not (number and float(value).is_integer() and value >= 1):
            raise ModelError(f"{manifest_path}: {section}.{key} must be a whole number of at least 1, got {value!r}. "
                             "Fix model.json or re-export the model package.")
        if kind == "float" and not (number and value > 0):
            raise ModelError(f"{manifest_path}: {section}.{key} must be a positive number, got {value!r}. "
                             "Fix model.json or re-export the model package.")


def read_manifest(model_dir: str | Path, verify_hashes: bool = True, precision: str = "float32") -> dict:
    """Read and validate ``model.json``; returns it with ``files`` paths resolved to absolute paths.

    ``files`` holds the graphs that ``precision`` runs: the three, and an optional graph (``denoiser_int8``) only
    for its precision, which alone reads and checks it: a float run never depends on an optional file."""
    if precision not in PRECISIONS:
        raise ModelError(f"Unknown precision {precision!r}; choose one of {', '.join(PRECISIONS)}.")
    folder = Path(model_dir)
    manifest_path = folder / "model.json"
    if folder.is_file():
        hint = folder.parent if folder.name == "model.json" else "the folder that holds model.json"
        raise ModelError(f"{folder} is a file; --model takes the model package folder (the folder holding model.json and "
                         f"the three .onnx graphs). Give {hint}.")
    if not folder.is_dir():
        raise ModelError(f"Model folder {folder} does not exist. Point --model at a folder holding model.json and the three .onnx graphs.")
    if not manifest_path.is_file():
        raise ModelError(f"{folder} holds no model.json: it is not a ChangeAnywhere model package. Export one with model_export/export_onnx.py.")
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    except ValueError as exc:
        raise ModelError(f"{manifest_path} is not valid JSON ({exc}). Re-export the model package.") from exc
    if not isinstance(manifest, dict):
        raise ModelError(f"{manifest_path} must hold a JSON object. Re-export the model package.")
    if manifest.get("format") != FORMAT:
        raise ModelError(
            f"Model format {manifest.get('format')!r} in {manifest_path} is not one this plugin reads ({FORMAT!r}). "
            "Use a model exported for this plugin version, or update the plugin."
        )
    missing = [k for k in REQUIRED_KEYS if k not in manifest]
    if missing:
        raise ModelError(f"{manifest_path} lacks the keys {missing}. Re-export the model package.")
    if not manifest["classes"]:
        raise ModelError(f"{manifest_path} lists no classes. Re-export the model package.")
    _check_numbers(manifest, manifest_path)

    root = folder.resolve()
    resolved = {}
    for graph in GRAPHS:
        resolved[graph] = _resolved_graph(manifest, manifest_path, root, graph, verify_hashes)
    for graph, (stands_for, wanted) in OPTIONAL_GRAPHS.items():
        if precision != wanted:
            continue
        if graph not in manifest["files"]:
            raise ModelError(
                f"The model package {folder} has no {precision} denoiser (model.json lists no files.{graph}). "
                f"Make one with `{QUANTIZE_COMMAND} {folder}`, or choose precision 'float32'."
            )
        resolved[graph] = _resolved_graph(manifest, manifest_path, root, graph, verify_hashes)
        # An int8 graph made from another denoiser (the float graph re-exported or swapped since) would sample
        # another model than the manifest describes: refused, not loaded.
        made_from = resolved[graph].get("quantized_from")
        if made_from != manifest["files"][stands_for]["sha256"]:
            raise ModelError(
                f"{manifest_path}: the {precision} graph {Path(resolved[graph]['path']).name} was not made from this "
                f"package's {Path(resolved[stands_for]['path']).name} (files.{graph}.quantized_from is not its sha256). "
                f"Make it again: {QUANTIZE_COMMAND} {folder}"
            )
    return {**manifest, "files": resolved}


def _resolved_graph(manifest: dict, manifest_path: Path, root: Path, graph: str, verify_hashes: bool) -> dict:
    """One ``files`` entry checked (inside the folder, present, its sha256) and its path made absolute."""
    entry = manifest["files"].get(graph)
    if not isinstance(entry, dict) or "path" not in entry or "sha256" not in entry:
        raise ModelError(f"{manifest_path}: files.{graph} must give 'path' and 'sha256'. Re-export the model package.")
    path = (root / entry["path"]).resolve()
    if root not in path.parents:
        raise ModelError(
            f"{manifest_path}: files.{graph}.path {entry['path']!r} points outside the model folder. "
            "A model package must keep its graphs inside its own folder; this one may be tampered with."
        )
    if not path.is_file():
        raise ModelError(f"The model's {graph} graph {path} is missing. Copy the whole model folder again.")
    if verify_hashes and file_sha256(path) != entry["sha256"]:
        raise ModelError(
            f"The model's {graph} graph {path.name} does not match the sha256 in model.json: the file is corrupt "
            "or was replaced. Copy the model folder again, or re-export it."
        )
    return {**entry, "path": str(path)}


def cuda_unavailable_reason() -> str | None:
    """None when onnxruntime's CUDA provider can load here; else why not, with the fix.

    Loading the provider library ourselves names the exact missing CUDA library, and spares the
    user onnxruntime's own error log when CUDA is absent (the normal case under ``auto``).
    """
    import ctypes

    import onnxruntime as ort

    if "CUDAExecutionProvider" not in ort.get_available_providers():
        return (
            "this onnxruntime has no CUDA provider; install the GPU build "
            "(pip install onnxruntime-gpu) to use an NVIDIA GPU"
        )
    capi = Path(ort.__file__).parent / "capi"
    library = next(iter(sorted(capi.glob("*onnxruntime_providers_cuda*"))), None)
    if library is not None:
        try:
            ctypes.CDLL(str(library))
        except OSError as exc:
            return (
                f"onnxruntime's CUDA provider cannot load ({exc}); install the NVIDIA CUDA and cuDNN "
                "libraries that this onnxruntime-gpu release needs (see onnxruntime's CUDA requirements)"
            )
    return None


GUIDANCE_RANGE = (1.0, 10.0)  # 1: no guidance; above the bundled model's 8, colours saturate and burn (check 12)


def manifest_guidance_scale(manifest: dict) -> float:
    """The package's own classifier-free guidance scale; a manifest without one has none (1)."""
    return float(manifest["diffusion"].get("guidance_scale", 1.0))


def check_guidance(scale: float | None) -> None:
    """A guidance scale a user asked for (None: the model's own)."""
    low, high = GUIDANCE_RANGE
    if scale is not None and not low <= scale <= high:
        raise InputError(f"The guidance scale must be between {low:g} (no guidance) and {high:g}, got {scale:g}; "
                         "leave it empty to use the model's own.")


@dataclass
class ModelPackage:
    """A loaded model: its manifest, class scheme, schedule and three onnxruntime sessions."""

    path: Path
    manifest: dict
    device: str  # "cpu" or "cuda": where the sessions really run
    device_note: str  # why, in words (e.g. the reason CUDA was not used)
    sessions: dict = field(repr=False)
    # Where conditioning tensors live between steps: "cuda" on the GPU; None on the CPU, where
    # plain numpy inputs cost nothing extra. Tests set "cpu" to run the I/O-binding path here.
    bind_device: str | None = None
    # True: every call hands the memory onnxruntime's CPU arena took for it back at its end (a one-off call, such as
    # the estimate's timing, whose working memory the arena would otherwise keep beside the run's own batches)
    release_memory: bool = False
    # "float32": the package's three graphs; "int8": its quantised denoiser (files.denoiser_int8) in the denoiser's place
    precision: str = "float32"

    @property
    def scheme(self) -> ClassScheme:
        return ClassScheme.from_manifest(self.manifest)

    @property
    def schedule(self) -> DiffusionSchedule:
        return DiffusionSchedule.from_manifest(self.manifest["diffusion"])

    @property
    def name(self) -> str:
        return f"{self.manifest['name']} {self.manifest.get('version', '')}".strip()

    @property
    def latent_channels(self) -> int:
        return int(self.manifest["latent"]["channels"])

    @property
    def downsample(self) -> int:
        return int(self.manifest["latent"]["downsample"])

    @property
    def tile_size(self) -> int:
        return int(self.manifest["tile"]["size"])

    @property
    def multiple_of(self) -> int:
        return int(self.manifest["tile"].get("multiple_of", 32))

    @property
    def guidance_scale(self) -> float:
        return manifest_guidance_scale(self.manifest)

    def with_guidance(self, scale: float | None) -> ModelPackage:
        """This model sampled with another classifier-free guidance scale (None: its manifest's); the
        onnxruntime sessions are shared, nothing is reloaded."""
        if scale is None:
            return self
        check_guidance(scale)
        diffusion = {**self.manifest["diffusion"], "guidance_scale": float(scale)}
        return replace(self, manifest={**self.manifest, "diffusion": diffusion})

    def releasing_memory(self) -> ModelPackage:
        """This model whose calls shrink onnxruntime's CPU arena back when they end (the sessions are shared)."""
        return replace(self, release_memory=True)

    def _run_options(self):
        if not self.release_memory:
            return None
        import onnxruntime as ort

        options = ort.RunOptions()
        options.add_run_config_entry("memory.enable_memory_arena_shrinkage", "cpu:0")
        return options

    def _run(self, graph: str, **inputs: np.ndarray) -> np.ndarray:
        return self.sessions[graph].run(None, inputs, self._run_options())[0]

    def encode(self, image: np.ndarray) -> np.ndarray:
        """[N, 3, H, W] float32 in [-1, 1] -> latent [N, C, H/f, W/f]."""
        return self._run("encoder", image=np.ascontiguousarray(image, dtype=np.float32))

    def decode(self, latent: np.ndarray) -> np.ndarray:
        """latent [N, C, h, w] -> [N, 3, h*f, w*f] float32 in [-1, 1]."""
        return self._run("decoder", latent=np.ascontiguousarray(latent, dtype=np.float32))

    def condition(self, semantic: np.ndarray):
        """The denoiser's conditioning for one tile batch, made once and reused at every step.

        With classifier-free guidance it holds the conditional and the unconditional (all-zero)
        halves. On CUDA it is uploaded once and stays on the GPU (ONNX Runtime I/O binding): the
        one-hot map is by far the largest input, K x f^2 times the latent.
        """
        semantic = np.ascontiguousarray(semantic, dtype=np.float32)
        if self.guidance_scale != 1.0:
            semantic = np.concatenate([semantic, np.zeros_like(semantic)])
        if self.bind_device is None:
            return semantic
        import onnxruntime as ort

        return ort.OrtValue.ortvalue_from_numpy(semantic, self.bind_device, 0)

    def denoise(self, latent: np.ndarray, timestep: np.ndarray, semantic: np.ndarray) -> np.ndarray:
        """The network's prediction (noise or v) for a batch under a one-hot map [N, K, H, W]."""
        return self.denoise_with(latent, timestep, self.condition(semantic))

    def denoise_with(self, latent: np.ndarray, timestep: np.ndarray, condition) -> np.ndarray:
        """As ``denoise``, with a conditioning made by ``condition()`` (reused across steps);
        the two halves are mixed by classifier-free guidance when the model asks for it."""
        latent = np.ascontiguousarray(latent, dtype=np.float32)
        timestep = np.ascontiguousarray(timestep, dtype=np.int64)
        g = self.guidance_scale
        if g != 1.0:
            latent, timestep = np.concatenate([latent, latent]), np.concatenate([timestep, timestep])
        if self.bind_device is None:
            out = self._run("denoiser", latent=latent, timestep=timestep, semantic=condition)
        else:
            session = self.sessions["denoiser"]
            binding = session.io_binding()
            binding.bind_cpu_input("latent", latent)
            binding.bind_cpu_input("timestep", timestep)
            binding.bind_ortvalue_input("semantic", condition)
            binding.bind_output("prediction", self.bind_device)
            session.run_with_iobinding(binding, self._run_options())
            out = binding.copy_outputs_to_cpu()[0]
        if g == 1.0:
            return out
        cond, uncond = np.split(out, 2)
        return uncond + g * (cond - uncond)

    def describe(self) -> dict:
        """What `info` and the QGIS 'Model information' algorithm show."""
        sizes = {g: os.path.getsize(self.manifest["files"][g]["path"]) for g in GRAPHS}
        return {
            "model": self.name,
            "path": str(self.path),
            "description": self.manifest.get("description", ""),
            "license": self.manifest.get("license", ""),
            "classes": [{"code": c.code, "name": c.name, "color": list(c.color)} for c in self.scheme.classes],
            "nodata_code": self.scheme.nodata_code,
            "latent": self.manifest["latent"],
            "tile": self.manifest["tile"],
            "diffusion": self.manifest["diffusion"],
            "guidance_scale": self.guidance_scale,
            "gsd_m": self.manifest.get("gsd_m"),
            "file_sizes_bytes": sizes,
            "device": self.device,
            "device_note": self.device_note,
            "precision": self.precision,
        }


def session_options(threads: int | None, quiet: bool = False):
    """The engine's onnxruntime session options (benchmarks/denoiser_variants.py times others against them)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    if threads:
        options.intra_op_num_threads = int(threads)
    # Between network calls the sampler works in numpy, and dataset workers share the cores:
    # idle onnxruntime threads must sleep, not spin.
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    if quiet:
        options.log_severity_level = 3  # a failed CUDA attempt under `auto` is expected, not an error
    return options


def graph_paths(files: dict, precision: str) -> dict:
    """graph -> the file its session runs: the three graphs, with an optional graph in its place for its precision."""
    paths = {graph: files[graph]["path"] for graph in GRAPHS}
    for optional, (stands_for, wanted) in OPTIONAL_GRAPHS.items():
        if precision == wanted:
            paths[stands_for] = files[optional]["path"]
    return paths


def _make_sessions(files: dict, providers: list, threads: int | None, quiet: bool, precision: str = "float32") -> dict:
    import onnxruntime as ort

    sessions = {}
    for graph, path in graph_paths(files, precision).items():
        try:
            sessions[graph] = ort.InferenceSession(path, session_options(threads, quiet), providers=providers)
        except Exception as exc:  # onnxruntime raises its own Fail/InvalidProtobuf types
            raise ModelError(
                f"onnxruntime cannot load the model's {graph} graph {Path(path).name}: {exc}. "
                "The file is not a valid ONNX model for this onnxruntime; re-export the model package."
            ) from exc
    return sessions


def _check_graphs(sessions: dict, manifest: dict, folder: Path, precision: str = "float32") -> None:
    """The graphs must have the contract's inputs, and agree with the manifest's classes and latent size."""
    optional = {stands_for for stands_for, wanted in OPTIONAL_GRAPHS.values() if wanted == precision}
    for graph, (inputs, _outputs) in GRAPHS.items():
        names = tuple(i.name for i in sessions[graph].get_inputs())
        if set(names) != set(inputs):
            fix = (f"Make the {precision} graph again: {QUANTIZE_COMMAND} {folder}" if graph in optional
                   else "Re-export the model package with model_export/export_onnx.py.")
            raise ModelError(f"The model's {precision + ' ' if graph in optional else ''}{graph} graph takes inputs "
                             f"{list(names)}, the contract says {list(inputs)}. {fix}")
    semantic = next(i for i in sessions["denoiser"].get_inputs() if i.name == "semantic")
    classes = len(manifest["classes"])
    if isinstance(semantic.shape[1], int) and semantic.shape[1] != classes:
        raise ModelError(
            f"The model's denoiser expects {semantic.shape[1]} classes but model.json lists {classes}. "
            "The manifest does not belong to these graphs; re-export the model package."
        )
    channels = int(manifest["latent"]["channels"])
    for graph, name in (("denoiser", "latent"), ("decoder", "latent")):
        shape = next(i for i in sessions[graph].get_inputs() if i.name == name).shape
        if isinstance(shape[1], int) and shape[1] != channels:
            raise ModelError(
                f"The model's {graph} graph takes {shape[1]} latent channels but model.json says {channels}. "
                "Re-export the model package."
            )


def check_precision(precision: str, device: str = "cpu") -> None:
    """A precision a run may ask for on ``device`` (the settings check it before anything is written, with the same
    words as the loading)."""
    if precision not in PRECISIONS:
        raise ModelError(f"Unknown precision {precision!r}; choose one of {', '.join(PRECISIONS)}.")
    if precision == "int8" and device == "cuda":
        # onnxruntime's int8 (QDQ) kernels are its CPU ones: on CUDA the graph would only add conversions.
        raise ModelError("The int8 denoiser runs on the CPU only; choose device 'cpu' (or 'auto'), or precision 'float32' "
                         "for the GPU.")


def load_model_package(model_dir: str | Path | None = None, device: str = "auto", threads: int | None = None,
                       precision: str = "float32") -> ModelPackage:
    """Validate and load a model package; ``device`` is auto, cpu or cuda; ``precision`` float32 (the package's three
    graphs) or int8 (its optional quantised denoiser, made by model_export.export.quantize; CPU only)."""
    if device not in DEVICES:
        raise ModelError(f"Unknown device {device!r}; choose one of {', '.join(DEVICES)}.")
    check_precision(precision, device)
    folder = Path(model_dir) if model_dir else default_model_dir()
    manifest = read_manifest(folder, precision=precision)
    cpu = ["CPUExecutionProvider"]
    cuda = [("CUDAExecutionProvider", {}), "CPUExecutionProvider"]

    if device == "cpu":
        sessions, used, note = _make_sessions(manifest["files"], cpu, threads, False, precision), "cpu", "CPU requested"
    elif precision == "int8":  # auto: the int8 kernels are onnxruntime's CPU ones
        sessions, used = _make_sessions(manifest["files"], cpu, threads, False, precision), "cpu"
        note = "CPU: the int8 denoiser runs on the CPU only"
    else:
        reason = cuda_unavailable_reason()
        sessions = None
        if reason is None:
            sessions = _make_sessions(manifest["files"], cuda, threads, quiet=(device == "auto"))
            if all(s.get_providers()[0] == "CUDAExecutionProvider" for s in sessions.values()):
                used, note = "cuda", "running on the GPU (CUDA)"
            else:
                sessions = None
                reason = "onnxruntime could not start its CUDA provider (no usable NVIDIA GPU or driver)"
        if sessions is None:
            if device == "cuda":
                raise ModelError(f"The GPU was requested but {reason}. Fix that, or choose device 'auto' or 'cpu'.")
            sessions, used, note = _make_sessions(manifest["files"], cpu, threads, False), "cpu", f"CPU: {reason}"
    _check_graphs(sessions, manifest, folder, precision)
    return ModelPackage(path=folder, manifest=manifest, device=used, device_note=note, sessions=sessions,
                        bind_device="cuda" if used == "cuda" else None, precision=precision)

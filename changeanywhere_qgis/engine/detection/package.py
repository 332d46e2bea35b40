"""Loading a change-detector package (docs/reference/detector-package.md) and running its ONNX graph.

The manifest is checked before onnxruntime sees the graph, and the graph is checked against the manifest, so a
broken package fails with a message naming the problem (missing or corrupt graph, wrong hash, wrong input shape,
unknown format) instead of an onnxruntime stack trace deep in a run.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import InputError, ModelError
from ..io import file_sha256

FORMAT = "changeanywhere-detector/1"
MANIFEST = "detector.json"
GRAPH = "detector"
INPUTS = ("before", "after")  # [N, bands, H, W] float32, normalised as input.scale says
OUTPUT = "probability"  # [N, 1, H, W] float32 in [0, 1]
REQUIRED_KEYS = ("format", "name", "input", "tile", "threshold", "files")
SCALES = {"x / 127.5 - 1": (1 / 127.5, -1.0), "x / 255": (1 / 255, 0.0)}  # uint8 pixels -> the graph's range


def _whole(value, low: int = 1) -> bool:
    return not isinstance(value, bool) and isinstance(value, (int, float)) and float(value).is_integer() and value >= low


def _check_manifest(manifest: dict, where: Path) -> None:
    """Every value the engine reads is checked here, so a hand-edited manifest fails named, not in the middle of a run."""
    fix = "Fix detector.json or export the detector package again (python -m model_export.detector train ...)."
    if not isinstance(manifest.get("input"), dict) or not isinstance(manifest.get("tile"), dict) \
            or not isinstance(manifest.get("threshold"), dict) or not isinstance(manifest.get("files"), dict):
        raise ModelError(f"{where}: 'input', 'tile', 'threshold' and 'files' must be JSON objects. {fix}")
    bands = manifest["input"].get("bands")
    if not _whole(bands):
        raise ModelError(f"{where}: input.bands must be a whole number of at least 1, got {bands!r}. {fix}")
    scale = manifest["input"].get("scale")
    if scale not in SCALES:
        raise ModelError(f"{where}: input.scale {scale!r} is not one this plugin knows ({', '.join(map(repr, SCALES))}). {fix}")
    size, overlap = manifest["tile"].get("size"), manifest["tile"].get("overlap", 0)
    multiple = manifest["tile"].get("multiple_of", 1)
    if not _whole(size) or not _whole(multiple) or not _whole(overlap, 0) or overlap >= size or size % multiple:
        raise ModelError(f"{where}: tile must give a whole size, a whole overlap smaller than the size and a multiple_of that "
                         f"divides the size; got {manifest['tile']!r}. {fix}")
    value = manifest["threshold"].get("value")
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value < 1:
        raise ModelError(f"{where}: threshold.value must be a number between 0 and 1, got {value!r}. {fix}")


def read_detector_manifest(folder: str | Path, verify_hashes: bool = True) -> dict:
    """Read and check ``detector.json``; returns it with ``files.detector.path`` resolved to an absolute path."""
    folder = Path(folder)
    if folder.is_file():
        hint = folder.parent if folder.name == MANIFEST else f"the folder that holds {MANIFEST}"
        raise ModelError(f"{folder} is a file; the detector is a package folder (detector.json and detector.onnx). Give {hint}.")
    if not folder.is_dir():
        raise ModelError(f"Detector folder {folder} does not exist. Point --detector at a folder holding detector.json and "
                         "detector.onnx (python -m model_export.detector train writes one).")
    path = folder / MANIFEST
    if not path.is_file():
        extra = " (it holds model.json: that is a generator model package, not a change detector)" if (folder / "model.json").is_file() else ""
        raise ModelError(f"{folder} holds no {MANIFEST}{extra}: it is not a change-detector package. Train one with "
                         "python -m model_export.detector train, or point at the folder holding detector.json.")
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except ValueError as exc:
        raise ModelError(f"{path} is not valid JSON ({exc}). Export the detector package again.") from exc
    if not isinstance(manifest, dict):
        raise ModelError(f"{path} must hold a JSON object. Export the detector package again.")
    if manifest.get("format") != FORMAT:
        raise ModelError(f"Detector format {manifest.get('format')!r} in {path} is not one this plugin reads ({FORMAT!r}). "
                         "Use a detector exported for this plugin version, or update the plugin.")
    missing = [k for k in REQUIRED_KEYS if k not in manifest]
    if missing:
        raise ModelError(f"{path} lacks the keys {missing}. Export the detector package again.")
    _check_manifest(manifest, path)
    entry = manifest["files"].get(GRAPH)
    if not isinstance(entry, dict) or "path" not in entry or "sha256" not in entry:
        raise ModelError(f"{path}: files.{GRAPH} must give 'path' and 'sha256'. Export the detector package again.")
    root = folder.resolve()
    graph = (root / entry["path"]).resolve()
    if root not in graph.parents:
        raise ModelError(f"{path}: files.{GRAPH}.path {entry['path']!r} points outside the detector folder; a package keeps its "
                         "graph inside its own folder, so this one may be tampered with.")
    if not graph.is_file():
        raise ModelError(f"The detector's graph {graph} is missing. Copy the whole detector folder again.")
    if verify_hashes and file_sha256(graph) != entry["sha256"]:
        raise ModelError(f"The detector's graph {graph.name} does not match the sha256 in {MANIFEST}: the file is corrupt or was "
                         "replaced. Copy the detector folder again, or export it again.")
    return {**manifest, "files": {**manifest["files"], GRAPH: {**entry, "path": str(graph)}}}


@dataclass
class DetectorPackage:
    """A loaded change detector: its manifest and one onnxruntime session."""

    path: Path
    manifest: dict
    session: object = field(repr=False)

    @property
    def name(self) -> str:
        return f"{self.manifest['name']} {self.manifest.get('version', '')}".strip()

    @property
    def bands(self) -> int:
        return int(self.manifest["input"]["bands"])

    @property
    def tile_size(self) -> int:
        return int(self.manifest["tile"]["size"])

    @property
    def overlap(self) -> int:
        return int(self.manifest["tile"].get("overlap", 0))

    @property
    def multiple_of(self) -> int:
        return int(self.manifest["tile"].get("multiple_of", 1))

    @property
    def threshold(self) -> float:
        return float(self.manifest["threshold"]["value"])

    def normalise(self, pixels: np.ndarray) -> np.ndarray:
        """uint8 pixels -> the graph's float32 range (input.scale)."""
        gain, offset = SCALES[self.manifest["input"]["scale"]]
        return pixels.astype(np.float32) * np.float32(gain) + np.float32(offset)

    def probability(self, before: np.ndarray, after: np.ndarray) -> np.ndarray:
        """uint8 [N, bands, H, W] pairs -> change probability float32 [N, H, W] in [0, 1]."""
        out = self.session.run([OUTPUT], {"before": self.normalise(before), "after": self.normalise(after)})[0]
        return np.clip(out[:, 0], 0.0, 1.0)

    def describe(self) -> dict:
        m = self.manifest
        return {"detector": self.name, "path": str(self.path), "description": m.get("description", ""),
                "input": m["input"], "tile": m["tile"], "threshold": m["threshold"], "scores": m.get("scores", {})}


def check_threshold(value: float | None) -> None:
    if value is not None and not 0 < value < 1:
        raise InputError(f"The decision threshold must be between 0 and 1 (a change probability), got {value:g}; "
                         "leave it empty to use the detector's own.")


def _check_graph(session, manifest: dict, graph: str) -> None:
    """The graph must take the contract's inputs with the manifest's band count, and give its output."""
    inputs = {i.name: i for i in session.get_inputs()}
    if set(inputs) != set(INPUTS):
        raise ModelError(f"The detector graph {Path(graph).name} takes inputs {sorted(inputs)}, the contract says {list(INPUTS)}. "
                         "Export the detector package again with python -m model_export.detector.")
    bands = int(manifest["input"]["bands"])
    for name, spec in inputs.items():
        shape = spec.shape
        if len(shape) != 4:
            raise ModelError(f"The detector graph's input {name!r} has shape {shape}; the contract says [N, bands, H, W]. "
                             "Export the detector package again.")
        if isinstance(shape[1], int) and shape[1] != bands:
            raise ModelError(f"The detector graph's input {name!r} takes {shape[1]} bands but detector.json says {bands}. "
                             "The manifest does not belong to this graph; export the detector package again.")
    outputs = [o.name for o in session.get_outputs()]
    if OUTPUT not in outputs:
        raise ModelError(f"The detector graph gives outputs {outputs}, the contract says {OUTPUT!r}. Export the detector package again.")


def load_detector(folder: str | Path, threads: int | None = None) -> DetectorPackage:
    """Check and load a detector package on the CPU (onnxruntime)."""
    import onnxruntime as ort

    manifest = read_detector_manifest(folder)
    graph = manifest["files"][GRAPH]["path"]
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    if threads:
        options.intra_op_num_threads = int(threads)
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")  # reading and writing share the cores
    try:
        session = ort.InferenceSession(graph, options, providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises its own Fail/InvalidProtobuf types
        raise ModelError(f"onnxruntime cannot load the detector graph {Path(graph).name}: {exc}. The file is not a valid ONNX "
                         "model for this onnxruntime; export the detector package again.") from exc
    _check_graph(session, manifest, graph)
    return DetectorPackage(path=Path(folder), manifest=manifest, session=session)

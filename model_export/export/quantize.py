"""Add an int8 denoiser to a model package: the optional graph ``denoiser.int8.onnx`` (docs/reference/model-package.md).

    python -m model_export.export.quantize --package changeanywhere_qgis/models/default [--out NEW_PACKAGE]

The float graphs stay as they are, byte for byte; the int8 graph is recorded in model.json as ``files.denoiser_int8``
with its sha256 and the sha256 of the float denoiser it was made from, and the engine runs it only when asked
(``load_model_package(..., precision="int8")``). Without ``--out`` the package is changed in place (the manifest is
rewritten so that at every moment it names only files that are there); with ``--out`` a copy is written, under the
same replace guard as an export.

Why static quantisation, QDQ, uint8 activations and int8 weights: onnxruntime's quantisation guide recommends dynamic
quantisation for RNNs and transformers and *static* quantisation for CNNs (the denoiser is a convolutional UNet:
dynamic quantisation covers MatMul/Gemm only and would leave its convolutions in float), and its ``quantize_static``
documentation prefers the QDQ format for CPU inference (the CPU kernels fuse DequantizeLinear -> Conv ->
QuantizeLinear into QLinearConv) with uint8 activations and int8 weights (U8S8) on x86. ``reduce_range`` (7-bit
weights) is on by default because the package is copied to machines we do not know: on x86 CPUs without VNNI the
U8S8 kernels add pairs of products in 16 bits and can saturate with full-range weights; 7-bit weights cannot
(``--full-range`` for VNNI machines only). Weights are quantised per output channel (the guide's advice for
convolutions whose channels differ in range). Only the ops that carry the arithmetic are quantised (``--op-types``,
Conv and MatMul by default): normalisation, the SPADE modulation and the residual additions stay float, which keeps
the error down and adds no quantise/dequantise pairs where there is little work to save.

Some convolutions stay float (``--keep-float``, node-name prefixes; ``auto`` by default): the first and the last
(``/conv_in/``, ``/conv_out/``) and the decoder's full-resolution level (the ``/up.N/`` blocks after its last
upsampler). Quantising the bundled model's blocks one group at a time (DDIM 50's timesteps, guidance 8, the guided
prediction's mean error over its mean magnitude, MinMax calibration) put almost all of the error there: the last
up block alone 0.17, the one before it 0.08, conv_out 0.05, conv_in 0.05, every other group 0.03 or less; everything
quantised 0.21, everything but those four 0.05. (``--keep-float none`` quantises them all.)

Calibration uses real latents: the tiles of a land-cover map and its image (by default the bundled sample,
changeanywhere_qgis/samples/houston_{label,image}.tif) are encoded by the package's own encoder and noised to the
timesteps that DDIM 50 visits, each given with its one-hot map and, when the package uses guidance, with the all-zero
map as the sampler gives them. The result is then checked against the float graph on other noise and other timesteps
of the same tiles, as the sampler uses the two (the guided prediction); the command refuses, writing nothing, when
the guided prediction's mean error exceeds ``--max-relative-error`` of its mean magnitude.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np
import rasterio
from rasterio.windows import Window

from changeanywhere_qgis.engine.diffusion import load_model_package, to_model_range
from changeanywhere_qgis.engine.diffusion.model_package import PACKAGE_FOLDER, session_options
from changeanywhere_qgis.engine.errors import InputError, ModelError
from changeanywhere_qgis.engine.io import check_replaceable, file_sha256

REPO = Path(__file__).resolve().parents[2]
SAMPLES = REPO / "changeanywhere_qgis" / "samples"
INT8_KEY = "denoiser_int8"
INT8_FILE = "denoiser.int8.onnx"
DDIM_STEPS = 50  # the default sampler's step count: the timesteps the calibration visits
DEFAULT_OP_TYPES = ("Conv", "MatMul")
AUTO, NONE = "auto", "none"  # --keep-float's words: the sensitive convolutions (module docstring), nothing
# The guided prediction's mean error over its mean magnitude above which the int8 graph is refused (a quantisation
# that broke the graph gives errors of the prediction's own size; the default recipe gives 0.05 on the bundled model,
# quantising every convolution 0.21: --max-relative-error lets that through when asked).
MAX_RELATIVE_ERROR = 0.1


class QuantizeError(Exception):
    """The int8 graph does not compute what the float one does closely enough: nothing was written."""


def tile_windows(height: int, width: int, tile: int, count: int) -> list[Window]:
    """``count`` non-overlapping tile windows spread evenly over the raster (all of them when it has fewer)."""
    if height < tile or width < tile:
        raise InputError(f"The calibration map is {width}x{height} px, smaller than the model's {tile} px tile: "
                         "give a larger --semantic and --image.")
    starts = [(r, c) for r in range(0, height - tile + 1, tile) for c in range(0, width - tile + 1, tile)]
    picked = np.unique(np.linspace(0, len(starts) - 1, min(count, len(starts))).round().astype(int))
    return [Window(starts[i][1], starts[i][0], tile, tile) for i in picked]


def calibration_tiles(pkg, image_path: Path, semantic_path: Path, count: int) -> tuple[np.ndarray, np.ndarray]:
    """(clean latents [n, C, h, w] from the package's encoder, one-hot maps [n, K, H, W]) of ``count`` tiles."""
    with rasterio.open(semantic_path) as labels, rasterio.open(image_path) as image:
        if (labels.height, labels.width) != (image.height, image.width) or image.count < 3:
            raise InputError(f"{image_path} must be an RGB image of the same size as {semantic_path} "
                             f"({labels.width}x{labels.height} px); it is {image.width}x{image.height} px with "
                             f"{image.count} band(s).")
        windows = tile_windows(labels.height, labels.width, pkg.tile_size, count)
        codes = np.stack([labels.read(1, window=w) for w in windows])
        pixels = np.stack([image.read((1, 2, 3), window=w) for w in windows])
    unknown = sorted(set(np.unique(codes).tolist()) - set(pkg.scheme.codes) - {pkg.scheme.nodata_code})
    if unknown:
        raise InputError(f"{semantic_path} holds codes {unknown} that the package's classes do not name; give a map "
                         "in the package's classes.")
    return pkg.encode(to_model_range(pixels)), pkg.scheme.one_hot(codes)


def calibration_timesteps(visited: np.ndarray, count: int) -> tuple[np.ndarray, np.ndarray]:
    """``count`` of the sampler's timesteps spread from the first (pure noise) to the last, and for the check the
    timesteps halfway between them (timesteps the calibration did not see)."""
    index = np.unique(np.linspace(0, len(visited) - 1, count).round().astype(int))
    between = (index[:-1] + index[1:]) // 2 if len(index) > 1 else np.array([len(visited) // 2])
    unseen = np.setdiff1d(between, index)  # empty only when the calibration visits every timestep
    return visited[index], visited[unseen if len(unseen) else between]


def denoiser_feeds(pkg, latents: np.ndarray, semantic: np.ndarray, timesteps, seed: int) -> list[dict]:
    """One denoiser call per (tile, timestep) as the sampler makes it: the latent noised to t, and with guidance the
    conditional and unconditional halves in one batch."""
    rng = np.random.default_rng(seed)
    schedule = pkg.schedule
    feeds = []
    for z0, onehot in zip(latents, semantic):
        condition = pkg.condition(onehot[None])  # [1 or 2, K, H, W]
        n = condition.shape[0]
        for t in timesteps:
            x = schedule.q_sample(z0[None], int(t), rng.standard_normal(z0[None].shape, dtype=np.float32))
            feeds.append({"latent": np.repeat(x, n, axis=0), "timestep": np.full(n, int(t), dtype=np.int64),
                          "semantic": condition})
    return feeds


class _Reader:
    """onnxruntime's CalibrationDataReader over a list of feeds."""

    def __init__(self, feeds: list[dict]):
        self._feeds = iter(feeds)

    def get_next(self):
        return next(self._feeds, None)


def guided(out: np.ndarray, scale: float) -> np.ndarray:
    """The sampler's use of a call's output: with guidance, uncond + g (cond - uncond)."""
    if scale == 1.0:
        return out
    cond, uncond = np.split(out, 2)
    return uncond + scale * (cond - uncond)


def compare(float_path: Path, int8_path: Path, feeds: list[dict], scale: float, threads: int) -> dict:
    """The int8 graph's guided prediction against the float graph's on the same inputs."""
    import onnxruntime as ort

    opened = [ort.InferenceSession(str(p), session_options(threads), providers=["CPUExecutionProvider"])
              for p in (float_path, int8_path)]
    worst, total, magnitude, values = 0.0, 0.0, 0.0, 0
    for feed in feeds:
        ref, got = (guided(s.run(None, feed)[0], scale) for s in opened)
        if got.shape != ref.shape:
            raise QuantizeError(f"the int8 graph gives shape {got.shape}, the float one {ref.shape}")
        diff = np.abs(got.astype(np.float64) - ref)
        worst, total = max(worst, float(diff.max())), total + float(diff.sum())
        magnitude, values = magnitude + float(np.abs(ref).sum()), values + diff.size
    return {"inputs": len(feeds), "max_abs": worst, "mean_abs": total / values, "mean_abs_float": magnitude / values,
            "relative_mean": total / max(magnitude, 1e-30)}


def kept_float(node_names: list[str], keep) -> list[str]:
    """The nodes that stay float: those whose names start with one of the prefixes ``keep``, where ``auto`` stands for
    the first and last convolutions and the decoder's full-resolution level (the up blocks after its last upsampler,
    whose nodes are named ``/up.N/conv/...``)."""
    prefixes = [k for k in keep if k not in (AUTO, NONE)]
    if AUTO in keep:
        ups = sorted({int(m.group(1)) for n in node_names if (m := re.match(r"/up\.(\d+)/", n))})
        upsamplers = [i for i in ups if any(n.startswith(f"/up.{i}/conv/") for n in node_names)]
        prefixes += ["/conv_in/", "/conv_out/", *(f"/up.{i}/" for i in ups if i > max(upsamplers, default=-1))]
    return [n for n in node_names if n.startswith(tuple(prefixes))] if prefixes else []


def quantize_graph(float_path: Path, out_path: Path, feeds: list[dict], op_types, per_channel: bool,
                   reduce_range: bool, work: Path, keep=(AUTO,)) -> list[str]:
    """Write the int8 graph; returns the names of the quantisable nodes kept float."""
    import onnx
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    # onnxruntime's recommended pre-processing: graph optimisation and ONNX shape inference, so that every tensor the
    # quantiser meets has a known type and rank. Its symbolic shape inference (for transformers' dynamic shapes)
    # cannot follow the denoiser's size arithmetic ("Incomplete symbolic shape inference") and is skipped.
    prepared = work / "denoiser.prepared.onnx"
    quant_pre_process(str(float_path), str(prepared), skip_symbolic_shape=True)
    names = [n.name for n in onnx.load(str(prepared)).graph.node if n.op_type in op_types]
    excluded = kept_float(names, keep)
    quantize_static(str(prepared), str(out_path), _Reader(feeds), quant_format=QuantFormat.QDQ,
                    op_types_to_quantize=list(op_types), per_channel=per_channel, reduce_range=reduce_range,
                    activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                    calibrate_method=CalibrationMethod.MinMax, nodes_to_exclude=excluded)
    return excluded


def _write_json(path: Path, doc: dict) -> None:
    """model.json replaced whole (a reader sees the old manifest or the new one, never half of one)."""
    partial = path.with_name(f".{path.name}.partial")
    partial.write_text(json.dumps(doc, indent=2) + "\n")
    os.replace(partial, path)


def _copy_package(package: Path, into: Path) -> None:
    """The files of the package that an export writes (manifest, graphs, their weight files, card), byte for byte."""
    from pathlib import PurePosixPath

    for f in sorted(package.iterdir()):
        if f.is_file() and PACKAGE_FOLDER.owns(PurePosixPath(f.name), False):
            shutil.copy2(f, into / f.name)


def _install(folder: Path, int8: Path, entry: dict) -> dict:
    """Put the int8 graph and its manifest entry into the package FOLDER. The manifest first loses any earlier int8
    entry, then the graph is moved in, then the manifest gains the new entry: at every moment the package loads."""
    manifest_path = folder / "model.json"
    doc = json.loads(manifest_path.read_text(encoding="utf-8"))
    files = {k: v for k, v in doc["files"].items() if k != INT8_KEY}
    _write_json(manifest_path, {**doc, "files": files})
    partial = folder / f".{INT8_FILE}.partial"
    shutil.copyfile(int8, partial)
    os.replace(partial, folder / INT8_FILE)
    doc = {**doc, "files": {**files, INT8_KEY: entry}}
    _write_json(manifest_path, doc)
    return doc


def quantize_package(package: Path, out: Path | None = None, image: Path = SAMPLES / "houston_image.tif",
                     semantic: Path = SAMPLES / "houston_label.tif", tiles: int = 4, timesteps: int = 8,
                     op_types=DEFAULT_OP_TYPES, per_channel: bool = True, reduce_range: bool = True,
                     max_relative_error: float = MAX_RELATIVE_ERROR, threads: int = 2, keep_float=(AUTO,)) -> dict:
    """Quantise PACKAGE's denoiser and write it into OUT (PACKAGE itself when None). Returns the new manifest."""
    import onnxruntime as ort

    package = Path(package)
    in_place = out is None or (Path(out).exists() and Path(out).resolve() == package.resolve())
    pkg = load_model_package(package, "cpu", threads=threads)  # the engine's checks of the package, and its encoder
    if not in_place:
        check_replaceable(out, PACKAGE_FOLDER, [package, image, semantic])
    float_path = Path(pkg.manifest["files"]["denoiser"]["path"])
    latents, onehot = calibration_tiles(pkg, Path(image), Path(semantic), tiles)
    calibration_t, check_t = calibration_timesteps(pkg.schedule.timesteps(DDIM_STEPS), timesteps)
    calibration = denoiser_feeds(pkg, latents, onehot, calibration_t, seed=0)
    held_out = denoiser_feeds(pkg, latents, onehot, check_t, seed=1)

    work = Path(tempfile.mkdtemp(prefix="quantize."))
    try:
        int8 = work / INT8_FILE
        excluded = quantize_graph(float_path, int8, calibration, op_types, per_channel, reduce_range, work, keep_float)
        check = compare(float_path, int8, held_out, pkg.guidance_scale, threads)
        print(f"int8 denoiser against the float one, guided prediction (guidance {pkg.guidance_scale:g}), "
              f"{check['inputs']} held-out calls: max |diff| {check['max_abs']:.3g}, mean |diff| {check['mean_abs']:.3g} "
              f"= {check['relative_mean']:.3f} of the mean |prediction| {check['mean_abs_float']:.3g}")
        if not check["relative_mean"] <= max_relative_error:
            raise QuantizeError(f"the int8 denoiser's mean error is {check['relative_mean']:.3f} of the prediction's "
                                f"magnitude, above --max-relative-error {max_relative_error:g}; nothing was written. "
                                "Keep more of it float (--keep-float) or calibrate on more tiles (--tiles).")
        entry = {
            "path": INT8_FILE, "sha256": file_sha256(int8), "quantized_from": file_sha256(float_path),
            "method": {"tool": f"onnxruntime {ort.__version__} quantize_static", "format": "QDQ",
                       "activations": "uint8, MinMax calibration", "weights": "int8, " + (
                           "per output channel" if per_channel else "per tensor") + (
                           ", 7-bit range (reduce_range)" if reduce_range else ", full range (VNNI CPUs only)"),
                       "op_types": list(op_types), "kept_float": {"asked": list(keep_float), "nodes": excluded}},
            "calibration": {"semantic": Path(semantic).name, "image": Path(image).name, "tiles": len(latents),
                            "timesteps": [int(t) for t in calibration_t], "calls": len(calibration)},
            "check": {"timesteps": [int(t) for t in check_t], "guidance_scale": pkg.guidance_scale,
                      **{k: (round(v, 6) if isinstance(v, float) else v) for k, v in check.items()}},
        }
        if in_place:
            return _install(package, int8, entry)
        out = Path(out)
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
        try:
            tmp.chmod(0o755)
            _copy_package(package, tmp)
            doc = _install(tmp, int8, entry)
            check_replaceable(out, PACKAGE_FOLDER, [package, image, semantic])  # asked again: OUT may have changed
            if out.exists():
                shutil.rmtree(out)
            tmp.rename(out)
            return doc
        finally:
            if tmp.exists():
                shutil.rmtree(tmp)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--package", required=True, type=Path, help="the model package folder (holding model.json)")
    p.add_argument("--out", type=Path, help="write a copy with the int8 graph here (default: add it to --package)")
    p.add_argument("--semantic", type=Path, default=SAMPLES / "houston_label.tif", help="calibration land-cover map")
    p.add_argument("--image", type=Path, default=SAMPLES / "houston_image.tif", help="its RGB image, same grid")
    p.add_argument("--tiles", type=int, default=4, help="calibration tiles of the model's size, spread over the map")
    p.add_argument("--timesteps", type=int, default=8, help=f"calibration timesteps among DDIM {DDIM_STEPS}'s")
    p.add_argument("--op-types", nargs="+", default=list(DEFAULT_OP_TYPES), help="ONNX op types to quantise")
    p.add_argument("--per-tensor", action="store_true", help="one scale per weight tensor, not per output channel")
    p.add_argument("--full-range", action="store_true",
                   help="8-bit weights, not 7-bit: only for CPUs with VNNI (others may saturate)")
    p.add_argument("--keep-float", nargs="+", default=[AUTO], metavar="PREFIX",
                   help=f"node-name prefixes that stay float; '{AUTO}' (default): the sensitive convolutions (see above), "
                        f"'{NONE}': quantise every op of --op-types")
    p.add_argument("--max-relative-error", type=float, default=MAX_RELATIVE_ERROR)
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args(argv)
    if args.tiles < 1 or args.timesteps < 1:
        print("error: --tiles and --timesteps must be at least 1", file=sys.stderr)
        return 2
    try:
        doc = quantize_package(args.package, args.out, args.image, args.semantic, args.tiles, args.timesteps,
                               tuple(args.op_types), not args.per_tensor, not args.full_range, args.max_relative_error,
                               args.threads, tuple(args.keep_float))
    except (InputError, ModelError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except QuantizeError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    where = args.out or args.package
    entry = doc["files"][INT8_KEY]
    size = (Path(where) / entry["path"]).stat().st_size
    print(f"wrote {Path(where) / entry['path']} ({size / 1e6:.2f} MB) and its entry files.{INT8_KEY} in "
          f"{Path(where) / 'model.json'}; load it with precision 'int8'")
    return 0


if __name__ == "__main__":
    sys.exit(main())

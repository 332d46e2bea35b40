"""`make bench`, section denoiser_variants (issue #34): how close to the machine's limit the denoiser can get on the CPU.

One guided denoiser call (conditional and unconditional halves, batch 2, as the sampler makes it) at the model's tile
and at twice it, for each variant of the onnxruntime session and of the graph:

- the engine's own session options (``model_package.session_options``: ORT_ENABLE_ALL, intra-op threads = THREADS,
  no spinning), the reference of every other row;
- other session settings: spinning on, ORT_ENABLE_EXTENDED and ORT_ENABLE_BASIC, denormals as zero, one intra-op
  thread, the parallel executor;
- other graphs of the same weights: the input shapes fixed per tile size (static shapes), the attention fused by
  onnxruntime's transformer optimiser where it finds it, the graph converted to a newer opset;
- int8: the denoiser of ``model_export.export.quantize``'s default recipe (the package's own ``denoiser_int8`` when it
  has one, else made now into a temporary copy: the bundled model does not carry one), and one with every convolution
  quantised (``--keep-float none``), for what keeping the sensitive ones float costs.

Each row gives the median ms per call over interleaved rounds (every variant once per round, so a busy moment of the
machine falls on all of them alike), the achieved GFLOP/s with the FLOP count of sampler_bench (``denoiser_flops``:
PyTorch's FlopCounterMode on the twin), its ratio to a 2048^3 numpy float32 matrix product measured in the same run
(before and after the rounds), and the difference of the call's output to the engine's default on the same inputs: a
real latent (the bundled sample's image encoded by the package's encoder, noised to t = 500) under the sample's land
cover. Speed is decided here; whether a variant that changes the output keeps the quality is the judges' (int8 stays
an option until a check of docs/research/map-following-checks.md says otherwise).

    python -m benchmarks.run --only denoiser_variants          # into docs/reference/benchmarks.md
    python -m benchmarks.denoiser_variants [--repeats 2]       # the table on stdout only (a smoke run)

About 6 minutes on 2 idle cores at the default repeats; ``DENOISER_VARIANTS_REPEATS`` sets the rounds for either.
Section ``int8_end_to_end`` (``--only int8_end_to_end``, ``python -m benchmarks.denoiser_variants --end-to-end``) runs
one change sample with each denoiser and compares the images (about 2 minutes more).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import rasterio

from changeanywhere_qgis.engine.diffusion import load_model_package, to_model_range
from changeanywhere_qgis.engine.diffusion.model_package import session_options

from benchmarks.sampler_bench import denoiser_flops, sgemm_gflops

REPO = Path(__file__).resolve().parents[1]
SAMPLES = REPO / "changeanywhere_qgis" / "samples"
THREADS = 2
REPEATS = 15
TIMESTEP = 500
NEWER_OPSET = 21  # the package's graphs are exported at opset 17 (model_export/networks/graphs.py)


def _options(threads: int, **change):
    """The engine's session options with some settings changed."""
    import onnxruntime as ort

    options = session_options(threads)
    if "level" in change:
        options.graph_optimization_level = getattr(ort.GraphOptimizationLevel, change["level"])
    if "intra" in change:
        options.intra_op_num_threads = change["intra"]
    if change.get("parallel"):
        options.execution_mode = ort.ExecutionMode.ORT_PARALLEL
        options.inter_op_num_threads = change["parallel"]
    for key, value in change.get("config", {}).items():
        options.add_session_config_entry(key, value)
    return options


# (name, what changes, session options(threads)); all on the package's float graph
SESSION_VARIANTS = [
    ("engine default", "ORT_ENABLE_ALL, intra-op threads = threads, spinning off", lambda n: _options(n)),
    ("spinning on", "session.intra_op.allow_spinning = 1", lambda n: _options(n, config={"session.intra_op.allow_spinning": "1"})),
    ("ORT_ENABLE_EXTENDED", "graph optimisation level extended (no layout transforms)", lambda n: _options(n, level="ORT_ENABLE_EXTENDED")),
    ("ORT_ENABLE_BASIC", "graph optimisation level basic", lambda n: _options(n, level="ORT_ENABLE_BASIC")),
    ("denormals as zero", "session.set_denormal_as_zero = 1", lambda n: _options(n, config={"session.set_denormal_as_zero": "1"})),
    ("1 intra-op thread", "intra_op_num_threads = 1", lambda n: _options(n, intra=1)),
    ("parallel executor", "ORT_PARALLEL, inter-op threads = threads, intra-op 1",
     lambda n: _options(n, intra=1, parallel=n)),
]


def static_graph(float_path: Path, pkg, tile_px: int, out: Path) -> Path:
    """The float graph with every input's shape fixed for one guided call at ``tile_px`` (batch 2)."""
    import onnx
    from onnxruntime.tools.onnx_model_utils import fix_output_shapes, make_input_shape_fixed

    model = onnx.load(str(float_path))
    batch, latent_px = 2 if pkg.guidance_scale != 1.0 else 1, tile_px // pkg.downsample
    make_input_shape_fixed(model.graph, "latent", [batch, pkg.latent_channels, latent_px, latent_px])
    make_input_shape_fixed(model.graph, "timestep", [batch])
    make_input_shape_fixed(model.graph, "semantic", [batch, len(pkg.scheme.classes), tile_px, tile_px])
    fix_output_shapes(model)
    onnx.save(model, str(out))
    return out


def fused_attention_graph(float_path: Path, out: Path) -> tuple[Path | None, str]:
    """The float graph through onnxruntime's transformer optimiser (diffusers' VAE-style attention, as the denoiser's
    middle block has): (path, what was fused), or (None, why not) when it fuses nothing."""
    from onnxruntime.transformers.fusion_options import FusionOptions
    from onnxruntime.transformers.optimizer import optimize_model

    for model_type in ("vae", "unet"):
        options = FusionOptions(model_type)
        # CUDA-only fusions (NHWC convolutions, GroupNorm kernels) off: this is the CPU's graph
        for name in ("enable_nhwc_conv", "enable_group_norm", "enable_skip_group_norm", "enable_bias_splitgelu",
                     "enable_packed_qkv", "enable_packed_kv", "enable_bias_add"):
            setattr(options, name, False)
        model = optimize_model(str(float_path), model_type=model_type, num_heads=0, hidden_size=0, opt_level=0,
                               optimization_options=options, use_gpu=False)
        fused = {op: n for op, n in model.get_fused_operator_statistics().items()
                 if n and op in ("Attention", "MultiHeadAttention")}
        if fused:
            model.save_model_to_file(str(out))
            return out, f"{model_type} fusions: " + ", ".join(f"{n} {op}" for op, n in fused.items())
    return None, "onnxruntime's transformer optimiser finds no attention to fuse in this graph"


def opset_graph(float_path: Path, out: Path, opset: int = NEWER_OPSET) -> Path:
    """The float graph converted to a newer ONNX opset (onnx's version converter: the same computation in the newer
    opset's operators, which onnxruntime may run with other kernels)."""
    import onnx
    from onnx import version_converter

    onnx.save(version_converter.convert_version(onnx.load(str(float_path)), opset), str(out))
    return out


def int8_graphs(model_dir: Path, work: Path, every_conv: bool = True) -> dict:
    """name -> (what, graph, note): the int8 denoiser of quantize's default recipe (the package's own when it has one,
    else made now into a temporary copy) and, for comparison, one with every convolution quantised."""
    from changeanywhere_qgis.engine.diffusion import read_manifest
    from changeanywhere_qgis.engine.errors import ModelError
    from model_export.export.quantize import INT8_FILE, INT8_KEY, NONE, quantize_package

    def made(folder: str, **kw) -> tuple[Path, str]:
        check = quantize_package(model_dir, work / folder, **kw)["files"][INT8_KEY]["check"]
        return work / folder / INT8_FILE, f"its check: {check['relative_mean']:.3f} relative mean error of the guided prediction"

    try:
        own = Path(read_manifest(model_dir, precision="int8")["files"][INT8_KEY]["path"])
        default = ("the package's own denoiser.int8.onnx", own, "the package's own int8 graph")
    except ModelError:
        graph, check = made("int8-default")
        default = ("`model_export.export.quantize` default: static QDQ int8, sensitive convolutions float", graph,
                   f"made now by `python -m model_export.export.quantize` (default recipe); {check}")
    if not every_conv:
        return {"int8": default}
    graph, check = made("int8-all", keep_float=(NONE,), max_relative_error=1.0)
    return {"int8": default,
            "int8, every conv": ("`--keep-float none`: every Conv and MatMul int8", graph,
                                 f"made now with `--keep-float none`; {check}")}


def real_inputs(pkg, tile_px: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(noised latent [1, C, h, w], timestep [1], one-hot map [1, K, H, W]) of the bundled sample's top-left tile."""
    with rasterio.open(SAMPLES / "houston_image.tif") as img, rasterio.open(SAMPLES / "houston_label.tif") as lab:
        window = ((0, tile_px), (0, tile_px))
        pixels, labels = img.read((1, 2, 3), window=window), lab.read(1, window=window)
    z0 = pkg.encode(to_model_range(pixels)[None])
    noise = np.random.default_rng(0).standard_normal(z0.shape, dtype=np.float32)
    return pkg.schedule.q_sample(z0, TIMESTEP, noise), np.array([TIMESTEP], dtype=np.int64), pkg.scheme.one_hot(labels)


def bench_denoiser_variants(model_dir: Path, threads: int = THREADS, repeats: int | None = None) -> dict:
    import onnxruntime as ort
    import torch

    repeats = int(os.environ.get("DENOISER_VARIANTS_REPEATS", repeats or REPEATS))
    torch.set_num_threads(threads)
    pkg = load_model_package(model_dir, device="cpu", threads=threads)
    float_path = Path(pkg.manifest["files"]["denoiser"]["path"])
    work = Path(tempfile.mkdtemp(prefix="denoiser-variants."))
    try:
        tiles = (pkg.tile_size, 2 * pkg.tile_size)
        notes, skipped = {}, {}
        int8 = int8_graphs(model_dir, work)
        fused_path, why = fused_attention_graph(float_path, work / "fused.onnx")
        (notes if fused_path else skipped)["fused attention"] = why
        try:
            opset_path = opset_graph(float_path, work / "opset.onnx")
        except Exception as exc:  # the converter's own error types: the row is reported as not measured, with why
            opset_path, skipped[f"opset {NEWER_OPSET}"] = None, f"onnx's version converter failed: {exc}"
        # variant -> (what changes, graph file for a tile size, session options); sessions are opened per tile size
        # and closed after it, so that only one size's arenas are held at a time
        variants = {name: (what, lambda px: float_path, make) for name, what, make in SESSION_VARIANTS}
        variants["static shapes"] = ("input shapes fixed per tile size (batch, latent and map sizes)",
                                     lambda px: static_graph(float_path, pkg, px, work / f"static{px}.onnx"), _options)
        if fused_path:
            variants["fused attention"] = ("onnxruntime transformer optimiser's attention fusion", lambda px: fused_path, _options)
        if opset_path:
            variants[f"opset {NEWER_OPSET}"] = (f"the graph converted from opset 17 to {NEWER_OPSET}", lambda px: opset_path, _options)
        for name, (what, graph, note) in int8.items():
            variants[name], notes[name] = (what, lambda px, graph=graph: graph, _options), note

        sgemm_before = sgemm_gflops()
        rows = {name: {"what": what, "tiles": {}} for name, (what, _, _) in variants.items()}
        for px in tiles:
            latent_px = px // pkg.downsample
            flops, twin = denoiser_flops(pkg, latent_px)
            x, t, semantic = real_inputs(pkg, px)
            condition = pkg.condition(semantic)
            calls = {name: replace(pkg, sessions={**pkg.sessions, "denoiser": ort.InferenceSession(
                         str(graph(px)), make(threads), providers=["CPUExecutionProvider"])})
                     for name, (_, graph, make) in variants.items()}
            outputs = {name: p.denoise_with(x, t, condition) for name, p in calls.items()}  # also the warm-up
            reference = outputs["engine default"]
            times = {name: [] for name in calls}
            for _ in range(repeats):
                for name, p in calls.items():
                    start = time.perf_counter()
                    p.denoise_with(x, t, condition)
                    times[name].append(time.perf_counter() - start)
            for name in calls:
                seconds = float(np.median(times[name]))
                diff = np.abs(outputs[name].astype(np.float64) - reference)
                rows[name]["tiles"][px] = {"latent": f"{latent_px}x{latent_px}", "ms": 1e3 * seconds, "gflop": flops / 1e9,
                                           "gflops": flops / seconds / 1e9, "max_abs_diff": float(diff.max()),
                                           "mean_abs_diff": float(diff.mean()),
                                           "relative_mean_diff": float(diff.mean() / np.abs(reference).mean())}
            del calls, p  # this size's sessions and their arenas
        sgemm_after = sgemm_gflops()
        sgemm = (sgemm_before + sgemm_after) / 2
        for row in rows.values():
            for cell in row["tiles"].values():
                cell["of_sgemm"] = cell["gflops"] / sgemm
        return {"threads": threads, "repeats": repeats, "timestep": TIMESTEP, "guidance_scale": pkg.guidance_scale,
                "twin": twin, "sgemm_2048_gflops": sgemm, "sgemm_before_after": [sgemm_before, sgemm_after],
                "onnxruntime": ort.__version__, "rows": rows, "notes": notes, "skipped": skipped,
                "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _psnr(a: np.ndarray, b: np.ndarray, where: np.ndarray | None = None) -> float:
    squared = (a.astype(np.float64) - b) ** 2
    return float(10 * np.log10(255.0**2 / (squared[:, where] if where is not None else squared).mean()))


def bench_int8_end_to_end(model_dir: Path, threads: int = THREADS) -> dict:
    """One change sample of the bundled sample (its image and change polygons, seed 7, default settings) with the float
    denoiser and with the int8 one (quantize's default recipe), in one process: the seconds of each, and how close the
    int8 images are (PSNR of its post-event image against the float run's, on all of it and on the changed land; each
    run's unchanged-land PSNR between its pre- and post-event images, the figure check S1 judges by)."""
    from changeanywhere_qgis.engine.pipeline import ChangeSpec, GenerateSettings, generate

    work = Path(tempfile.mkdtemp(prefix="int8-end-to-end."))
    try:
        int8 = int8_graphs(model_dir, work, every_conv=False)["int8"]
        package = int8[1].parent if int8[1].is_relative_to(work) else model_dir  # made now: its temporary copy
        runs = {}
        for precision in ("float32", "int8"):
            pkg = load_model_package(package, "cpu", threads=threads, precision=precision)
            result = generate(SAMPLES / "houston_label.tif", work / precision,
                              ChangeSpec(vector=str(SAMPLES / "houston_changes.geojson"), class_field="target"),
                              image=SAMPLES / "houston_image.tif", model=pkg,
                              settings=GenerateSettings(seed=7, device="cpu", threads=threads))
            runs[precision] = {"seconds": sum(result["timings"].values()), "timings": result["timings"],
                               "tiles": result["tiles"], "raster": f"{result['grid']['width']}x{result['grid']['height']}"}

        def read(precision: str, name: str) -> np.ndarray:
            with rasterio.open(work / precision / name) as ds:
                return ds.read()

        unchanged = read("float32", "change_mask.tif")[0] == 0
        for precision, run in runs.items():
            run["unchanged_land_psnr_db"] = _psnr(read(precision, "t1_image.tif"), read(precision, "t2_image.tif"), unchanged)
        t2_float, t2_int8 = read("float32", "t2_image.tif"), read("int8", "t2_image.tif")
        return {"threads": threads, "runs": runs, "int8": int8[2], "speedup": runs["float32"]["seconds"] / runs["int8"]["seconds"],
                "int8_vs_float_post_event_psnr_db": _psnr(t2_int8, t2_float),
                "int8_vs_float_changed_land_psnr_db": _psnr(t2_int8, t2_float, ~unchanged)}
    finally:
        shutil.rmtree(work, ignore_errors=True)


def render_int8_end_to_end(s: dict) -> list[str]:
    f, i = s["runs"]["float32"], s["runs"]["int8"]
    return ["## The int8 denoiser end to end", "",
            f"One change sample of the bundled sample ({f['raster']}, its image and change polygons, seed 7, default "
            f"settings: DDIM 50, {f['tiles']} tiles), {s['threads']} threads, with the float denoiser and with the int8 "
            f"one ({s['int8']}), in one process. `python -m benchmarks.run --only int8_end_to_end`. The images are "
            "compared, not judged: whether int8 keeps the quality is a check of docs/research/map-following-checks.md "
            "(`model_export.evaluation.map_following --precision int8`).", "",
            "| denoiser | seconds | of which post-event | unchanged-land PSNR (pre- vs post-event) |", "| --- | --- | --- | --- |",
            f"| float32 | {f['seconds']:.1f} | {f['timings']['post_event_s']:.1f} | {f['unchanged_land_psnr_db']:.2f} dB |",
            f"| int8 | {i['seconds']:.1f} | {i['timings']['post_event_s']:.1f} | {i['unchanged_land_psnr_db']:.2f} dB |", "",
            f"int8 is **{s['speedup']:.2f}x** as fast; its post-event image against the float run's: PSNR "
            f"{s['int8_vs_float_post_event_psnr_db']:.1f} dB (changed land {s['int8_vs_float_changed_land_psnr_db']:.1f} dB).", ""]


def render_denoiser_variants(s: dict) -> list[str]:
    tiles = list(next(iter(s["rows"].values()))["tiles"])
    lines = ["## Denoiser variants: session options, graphs, int8", "",
             f"One guided denoiser call (batch 2, guidance {s['guidance_scale']:g}) on a real latent (the bundled sample's "
             f"image encoded, noised to t = {s['timestep']}) under the sample's land cover, for each variant of the "
             f"onnxruntime session and graph, {s['threads']} threads unless the row says otherwise, median of "
             f"{s['repeats']} interleaved rounds; onnxruntime {s['onnxruntime']}. `python -m benchmarks.run --only "
             "denoiser_variants` (`benchmarks/denoiser_variants.py`). GFLOP/s use the FLOPs of the sampler section "
             f"({s['twin']}); \"of sgemm\" divides them by a 2048^3 numpy float32 matrix product measured in the same run "
             f"({s['sgemm_2048_gflops']:.0f} GFLOP/s, the mean of {s['sgemm_before_after'][0]:.0f} before and "
             f"{s['sgemm_before_after'][1]:.0f} after the rounds). The difference is to the engine default's output "
             "on the same inputs (max |diff|; mean |diff| over mean |output|). A variant that changes the output is "
             "speed only here: the quality is decided by the judges of docs/research/map-following-checks.md.", "",
             "| variant | what changes | " + " | ".join(f"{px} px: ms | GFLOP/s | of sgemm | diff" for px in tiles) + " |",
             "| --- | --- |" + " --- | --- | --- | --- |" * len(tiles)]
    for name, row in s["rows"].items():
        cells = []
        for px in tiles:
            c = row["tiles"][px] if px in row["tiles"] else row["tiles"][str(px)]
            cells.append(f"{c['ms']:.0f} | {c['gflops']:.1f} | {c['of_sgemm']:.2f} | "
                         f"{c['max_abs_diff']:.1e}; {100 * c['relative_mean_diff']:.2f} %")
        lines.append(f"| {name} | {row['what']} | " + " | ".join(cells) + " |")
    lines.append("")
    for name, note in {**s["notes"], **{k: f"not measured: {v}" for k, v in s["skipped"].items()}}.items():
        lines.append(f"- {name}: {note}.")
    return lines + [""]


def main() -> None:
    from changeanywhere_qgis.engine.diffusion import default_model_dir

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", type=Path, default=default_model_dir())
    p.add_argument("--threads", type=int, default=THREADS)
    p.add_argument("--repeats", type=int, help=f"interleaved rounds (default {REPEATS})")
    p.add_argument("--json", type=Path, help="also write the raw figures here")
    p.add_argument("--end-to-end", action="store_true", help="section int8_end_to_end instead: one sample with each denoiser")
    a = p.parse_args()
    if a.end_to_end:
        result, render = bench_int8_end_to_end(a.model.resolve(), a.threads), render_int8_end_to_end
    else:
        result, render = bench_denoiser_variants(a.model.resolve(), a.threads, a.repeats), render_denoiser_variants
    if a.json:
        a.json.write_text(json.dumps(result, indent=1))
    print("\n".join(render(result)))


if __name__ == "__main__":
    main()

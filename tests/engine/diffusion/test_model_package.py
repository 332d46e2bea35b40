"""Model packages: the tiny test package loads in real onnxruntime sessions; every broken package is refused clearly."""

import json
import shutil

import numpy as np
import pytest

from changeanywhere_qgis.engine.errors import InputError, ModelError
from changeanywhere_qgis.engine.diffusion import load_model_package, read_manifest
from changeanywhere_qgis.engine.io import file_sha256


@pytest.fixture()
def model_copy(tiny_model_dir, tmp_path):
    return shutil.copytree(tiny_model_dir, tmp_path / "model")


def _edit_manifest(folder, change):
    path = folder / "model.json"
    manifest = json.loads(path.read_text())
    change(manifest)
    path.write_text(json.dumps(manifest))


def test_tiny_model_runs_its_three_graphs_on_the_cpu(tiny_model_dir):
    pkg = load_model_package(tiny_model_dir, device="cpu")
    assert pkg.device == "cpu"
    f, c = pkg.downsample, pkg.latent_channels
    image = np.zeros((2, 3, 64, 96), dtype=np.float32)
    latent = pkg.encode(image)
    assert latent.shape == (2, c, 64 // f, 96 // f)
    assert pkg.decode(latent).shape == image.shape
    semantic = pkg.scheme.one_hot(np.full((2, 64, 96), pkg.scheme.codes[0], dtype=np.uint8))
    pred = pkg.denoise(latent, np.array([10, 900]), semantic)
    assert pred.shape == latent.shape and np.isfinite(pred).all()


def test_auto_falls_back_to_the_cpu_and_says_why(tiny_model_dir):
    # No GPU on this machine: auto must not claim CUDA, and must give the reason.
    pkg = load_model_package(tiny_model_dir, device="auto")
    assert pkg.device == "cpu"
    assert pkg.device_note.startswith("CPU:") and len(pkg.device_note) > 10
    assert set(s.get_providers()[0] for s in pkg.sessions.values()) == {"CPUExecutionProvider"}


def test_explicit_cuda_without_a_gpu_is_an_error_naming_the_fix(tiny_model_dir):
    import onnxruntime as ort

    if "CUDAExecutionProvider" in ort.get_available_providers():
        try:
            import subprocess

            has_gpu = subprocess.run(["nvidia-smi"], capture_output=True).returncode == 0
        except FileNotFoundError:
            has_gpu = False
        if has_gpu:
            pytest.skip("a GPU is present: this test covers machines without one")
    with pytest.raises(ModelError, match="auto' or 'cpu"):
        load_model_package(tiny_model_dir, device="cuda")


def test_missing_folder_and_missing_manifest(tmp_path):
    with pytest.raises(ModelError, match="does not exist"):
        read_manifest(tmp_path / "nowhere")
    with pytest.raises(ModelError, match="no model.json"):
        read_manifest(tmp_path)


def test_corrupt_manifest_and_unknown_format(model_copy):
    (model_copy / "model.json").write_text("{not json")
    with pytest.raises(ModelError, match="not valid JSON"):
        read_manifest(model_copy)
    (model_copy / "model.json").write_text(json.dumps({"format": "changeanywhere-model/9"}))
    with pytest.raises(ModelError, match="changeanywhere-model/9"):
        read_manifest(model_copy)


def test_hash_mismatch_is_refused(model_copy):
    with open(model_copy / "decoder.onnx", "ab") as f:
        f.write(b"\0")
    with pytest.raises(ModelError, match="sha256"):
        read_manifest(model_copy)


def test_a_graph_path_outside_the_folder_is_refused(model_copy, tmp_path):
    outside = tmp_path / "evil.onnx"
    shutil.copy(model_copy / "encoder.onnx", outside)
    _edit_manifest(model_copy, lambda m: m["files"]["encoder"].update(path="../evil.onnx"))
    with pytest.raises(ModelError, match="outside the model folder"):
        read_manifest(model_copy)


def test_missing_graph_file(model_copy):
    (model_copy / "denoiser.onnx").unlink()
    with pytest.raises(ModelError, match="missing"):
        read_manifest(model_copy)


def test_a_graph_that_is_not_onnx_is_refused(model_copy):
    (model_copy / "encoder.onnx").write_bytes(b"this is not a protobuf")
    _edit_manifest(model_copy, lambda m: m["files"]["encoder"].update(sha256=file_sha256(model_copy / "encoder.onnx")))
    with pytest.raises(ModelError, match="not a valid ONNX model"):
        load_model_package(model_copy, device="cpu")


def test_class_count_mismatch_is_refused(model_copy):
    _edit_manifest(model_copy, lambda m: m.update(classes=m["classes"][:-1]))
    with pytest.raises(ModelError, match="classes"):
        load_model_package(model_copy, device="cpu")


def test_unknown_device_is_refused(tiny_model_dir):
    with pytest.raises(ModelError, match="choose one of auto, cpu, cuda"):
        load_model_package(tiny_model_dir, device="tpu")


def test_another_guidance_scale_shares_the_sessions_and_leaves_the_model_as_it_was(tiny_model_dir):
    pkg = load_model_package(tiny_model_dir, device="cpu")
    own = pkg.guidance_scale
    assert own != 1.0  # the tiny model is exported with guidance, so its conditioning has two halves
    off = pkg.with_guidance(1.0)
    assert off.guidance_scale == 1.0 and pkg.guidance_scale == own and off.sessions is pkg.sessions
    assert pkg.with_guidance(None) is pkg
    semantic = np.zeros((1, len(pkg.scheme.classes), 32, 32), dtype=np.float32)
    semantic[:, 2, :, 16:] = semantic[:, 4, :, :16] = 1.0  # a map (all-zero is the unconditional case itself)
    assert pkg.condition(semantic).shape[0] == 2 and off.condition(semantic).shape[0] == 1
    latent = np.random.default_rng(0).standard_normal((1, pkg.latent_channels, 8, 8), dtype=np.float32)
    t = np.array([500], dtype=np.int64)
    assert not np.allclose(pkg.denoise(latent, t, semantic), off.denoise(latent, t, semantic))
    for bad in (0.5, 11.0):
        with pytest.raises(InputError, match="guidance scale must be between 1 .no guidance. and 10"):
            pkg.with_guidance(bad)


def test_a_manifest_without_a_guidance_scale_has_no_guidance(tiny_model_dir):
    from changeanywhere_qgis.engine.diffusion import manifest_guidance_scale, read_manifest

    manifest = read_manifest(tiny_model_dir)
    assert manifest_guidance_scale(manifest) == manifest["diffusion"]["guidance_scale"] == 2.0
    del manifest["diffusion"]["guidance_scale"]
    assert manifest_guidance_scale(manifest) == 1.0


def test_int8_without_its_graph_is_refused_naming_the_command(tiny_model_dir):
    # the int8 denoiser is optional (model_export.export.quantize adds it; tests/model_export/export/test_quantize.py)
    with pytest.raises(ModelError, match=r"has no int8 denoiser.*python -m model_export\.export\.quantize --package .*"
                                         r"or choose precision 'float32'"):
        load_model_package(tiny_model_dir, "cpu", precision="int8")
    with pytest.raises(ModelError, match="choose one of float32, int8"):
        load_model_package(tiny_model_dir, "cpu", precision="int4")
    with pytest.raises(ModelError, match="runs on the CPU only"):
        load_model_package(tiny_model_dir, "cuda", precision="int8")
    assert load_model_package(tiny_model_dir, "cpu").describe()["precision"] == "float32"

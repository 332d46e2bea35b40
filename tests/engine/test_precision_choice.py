"""The denoiser's precision as a user sets it (issue #34): "float32" (the default, the package's own denoiser) or
"int8" (its optional quantised one, made by model_export.export.quantize) reaches the model's loading from a raster
run and from a dataset's workers, is recorded in sample.json and in a dataset's spec and card (one made before
the option resumes: tests/engine/dataset/test_resume_settings.py), and int8 without its graph, on CUDA or misspelt is
refused before anything is written.
The real Houston sample and the tiny model (64 px tile) with an int8 denoiser made by the real quantise command."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from changeanywhere_qgis.engine.dataset import DatasetSettings, dataset_command, generate_dataset, plan_dataset
from changeanywhere_qgis.engine.dataset import sample as dataset_sample
from changeanywhere_qgis.engine.diffusion import DEFAULT_PRECISION, PRECISIONS
from changeanywhere_qgis.engine.errors import InputError, ModelError
from changeanywhere_qgis.engine.pipeline import ChangeSpec, GenerateSettings, generate

QUANTIZE = "python -m model_export.export.quantize --package"


def test_the_default_stays_the_float_denoiser_everywhere():
    # int8 is an option (issue #34: the default only if a quality rule says so; the bundled model carries none)
    assert DEFAULT_PRECISION == "float32" and PRECISIONS == ("float32", "int8")
    assert GenerateSettings().precision == DatasetSettings(count=2).precision == DEFAULT_PRECISION


def test_an_unknown_precision_or_int8_on_cuda_is_a_clear_error():
    with pytest.raises(ModelError, match="Unknown precision 'int4'; choose one of float32, int8"):
        GenerateSettings(precision="int4").check()
    with pytest.raises(ModelError, match="Unknown precision 'Int8'"):
        DatasetSettings(count=2, precision="Int8").check()
    # the engine's own words when it loads the package, before the package is read
    with pytest.raises(ModelError, match=r"^The int8 denoiser runs on the CPU only; choose device 'cpu' \(or 'auto'\)"):
        GenerateSettings(precision="int8", device="cuda").check()
    GenerateSettings(precision="int8", device="auto").check()


def _generate(semantic, out, model, precision: str | None = None, image=None):
    kw = {"precision": precision} if precision else {}
    return generate(semantic, out, ChangeSpec(random=True), model=model, image=image,
                    settings=GenerateSettings(steps=2, seed=4, correlation=0.9, device="cpu", **kw))


def test_sample_json_records_the_precision_and_int8_changes_only_the_post_event_image(tmp_path, int8_model_dir,
                                                                                      houston_label_path, houston_image_path):
    records, images = {}, {}
    for name, precision in (("default", None), ("int8", "int8")):
        _generate(houston_label_path, tmp_path / name, int8_model_dir, precision, image=houston_image_path)
        records[name] = json.loads((tmp_path / name / "sample.json").read_text())
        images[name] = [(tmp_path / name / f"t{k}_image.tif").read_bytes() for k in (1, 2)]
    assert (records["default"]["precision"], records["int8"]["precision"]) == ("float32", "int8")
    assert list(records["int8"]).index("precision") == list(records["int8"]).index("device_note") + 1
    assert records["default"]["events"] == records["int8"]["events"]
    assert images["default"][0] == images["int8"][0]  # T1 is the real image given (without one the denoiser draws it too)
    assert images["default"][1] != images["int8"][1]  # the int8 denoiser drew T2


def test_int8_without_its_graph_or_on_cuda_writes_nothing(tmp_path, tiny_model_dir, houston_label_path):
    with pytest.raises(ModelError, match=rf"has no int8 denoiser.*{QUANTIZE} "):
        _generate(houston_label_path, tmp_path / "out", tiny_model_dir, "int8")
    base = DatasetSettings(count=2, tile=64, steps=2, seed=3, precision="int8")
    with pytest.raises(ModelError, match=rf"has no int8 denoiser.*{QUANTIZE} "):
        generate_dataset(houston_label_path, tmp_path / "ds", base, model=tiny_model_dir, workers=1)
    with pytest.raises(ModelError, match="runs on the CPU only"):
        generate_dataset(houston_label_path, tmp_path / "ds", base, model=tiny_model_dir, device="cuda")
    assert not any(tmp_path.iterdir())


def test_every_dataset_worker_loads_the_dataset_s_precision(tmp_path, int8_model_dir, houston_label_path):
    """Local workers and Dask's run the same run_sample, whose model is loaded once per process by _worker_state."""
    job = plan_dataset(houston_label_path, tmp_path / "ds", DatasetSettings(count=2, tile=64, steps=2, precision="int8"),
                       model=int8_model_dir)
    try:
        assert dataset_sample._worker_state(job)["pkg"].precision == "int8"
        float_job = replace(job, settings=replace(job.settings, precision="float32"))
        assert dataset_sample._worker_state(float_job)["pkg"].precision == "float32"  # a new precision, a new load
    finally:
        dataset_sample._STATE.clear()


def test_a_dataset_records_int8_and_refuses_a_resume_under_the_other(tmp_path, int8_model_dir, houston_label_path):
    base = dict(count=2, tile=64, steps=2, seed=3)
    float_ds = tmp_path / "float32"
    generate_dataset(houston_label_path, float_ds, DatasetSettings(**base), model=int8_model_dir, workers=1)
    spec = json.loads((float_ds / "dataset.json").read_text())
    assert "precision" not in spec["settings"]  # a float dataset's spec is the spec of before the option
    assert sorted(spec["model"]["sha256"]) == ["decoder", "denoiser", "encoder"]  # the int8 graph is no float run's
    card = (float_ds / "README.md").read_text()
    assert "int8 denoiser" not in card and "--precision" not in card
    int8_ds = tmp_path / "int8"
    generate_dataset(houston_label_path, int8_ds, DatasetSettings(**base, precision="int8"), model=int8_model_dir, workers=1)
    spec = json.loads((int8_ds / "dataset.json").read_text())
    assert spec["settings"]["precision"] == "int8" and "denoiser_int8" in spec["model"]["sha256"]
    card = (int8_ds / "README.md").read_text()
    assert "2 DDIM steps (eta 0.0, prediction mixing, the int8 denoiser, " in card and " --precision int8 " in card
    assert dataset_command(spec, 2, ".").count("--precision int8") == 1
    assert [p.read_bytes() for p in sorted((float_ds / "A").iterdir())] == [p.read_bytes() for p in sorted((int8_ds / "A").iterdir())]
    assert [p.read_bytes() for p in sorted((float_ds / "B").iterdir())] != [p.read_bytes() for p in sorted((int8_ds / "B").iterdir())]
    with pytest.raises(InputError, match=r"settings\.precision was 'int8', now 'float32'.*To finish it, add --precision int8 "
                                         r"\(Processing: \"Denoiser precision\": int8\)"):
        generate_dataset(houston_label_path, int8_ds, DatasetSettings(**base), model=int8_model_dir, workers=1)
    with pytest.raises(InputError, match=r"settings\.precision was 'float32', now 'int8'.*To finish it, add --precision float32 "):
        generate_dataset(houston_label_path, float_ds, DatasetSettings(**base, precision="int8"), model=int8_model_dir, workers=1)
    result = generate_dataset(houston_label_path, int8_ds, DatasetSettings(**{**base, "count": 3}, precision="int8"),
                              model=int8_model_dir, workers=1)
    assert result["skipped"] == 2 and result["generated"] == 1

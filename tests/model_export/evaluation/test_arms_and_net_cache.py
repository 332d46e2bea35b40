"""More generated arms of the usefulness test (``evaluate --arm``, e.g. the inpainted samples) and the per-net figure
files that let a long evaluation resume: a rerun reads the nets whose data and settings match and trains only the
others; a changed dataset or setting trains its nets again. Tiny data: a few samples, one epoch."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch

from changeanywhere_qgis.engine.dataset import DatasetSettings, generate_dataset
from changeanywhere_qgis.engine.errors import InputError
from model_export.evaluation.dataset_report import EvaluateSettings, evaluate_dataset
from model_export.evaluation.net_cache import folder_identity
from model_export.evaluation.usefulness import evaluate_change_detection

REPO = Path(__file__).resolve().parents[3]
TEST_SETS = {"whu-cd": REPO / "data" / "whu-cd"}
KWARGS = dict(epochs=1, max_minutes=0, widths=(4, 8, 8, 16), few_shot_k=(3,), few_shot_splits=1, few_shot_steps=1)
INPAINT_ROW = "FC-Siam-diff, trained on generated data, inpaint (pre-event real)"


@pytest.fixture(autouse=True)
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def datasets(tmp_path_factory, tiny_model_dir, houston_label_path) -> dict:
    root = tmp_path_factory.mktemp("arms")
    out = {}
    for name, mode in (("full", "full"), ("inpaint", "inpaint")):
        generate_dataset(houston_label_path, root / name, DatasetSettings(count=6, tile=64, steps=1, seed=2, post_event=mode),
                         model=tiny_model_dir, workers=1)
        out[name] = root / name
    return out


def _run(datasets, cache_dir, inpaint=None, **changes):
    trained = []
    log = lambda m: trained.append(m) if m.startswith("training FC-Siam-diff on") else None  # noqa: E731
    out = evaluate_change_detection([datasets["full"]], TEST_SETS, arms={"inpaint (pre-event real)": [inpaint or datasets["inpaint"]]},
                                    cache_dir=cache_dir, log=log, **{**KWARGS, **changes})
    return out, trained


def test_an_extra_generated_arm_is_trained_and_listed_among_the_generated(datasets, tmp_path):
    report = tmp_path / "report.md"
    settings = EvaluateSettings(test_sets=[str(TEST_SETS["whu-cd"])], use_segmentation=False, cd_epochs=1, max_minutes=0,
                                few_shot_k=(3,), few_shot_splits=1, few_shot_steps=1, arms={"inpaint": [str(datasets["inpaint"])]})
    result = evaluate_dataset([datasets["full"]], report=report, settings=settings)
    cd = result["results"]["change_detection"]
    assert set(cd["train"]["variants"]) == {"generated", "arm: inpaint (pre-event generated)"}
    assert cd["train"]["variants"]["arm: inpaint (pre-event generated)"]["samples"] == 4  # its own train and val samples
    assert cd["arms"]["inpaint"]["post_event"] == "inpaint" and cd["arms"]["inpaint"]["datasets"] == [str(datasets["inpaint"])]
    rows = cd["zero_shot"]["whu-cd"]
    own = "FC-Siam-diff, trained on generated data, inpaint (pre-event generated)"  # no real images: A generated too
    assert own in rows and "FC-Siam-diff, trained on generated data (pre-event generated)" in rows
    assert "pre-trained on generated data, inpaint (pre-event generated), fine-tuned" in cd["few_shot"]["whu-cd"]["3"]
    text = report.read_text()
    assert f"| {own} |" in text and "| inpaint (pre-event generated) | inpaint | 6 |" in text
    assert "baseline (no model)" not in text  # a generated arm, never a baseline
    nets = sorted(p.name for p in (report.parent / "figures" / "nets").iterdir())
    assert nets == ["arm-inpaint-pre-event-generated-seed0.json", "generated-seed0.json", "reference-seed0.json"]


def test_one_arm_of_mixed_post_event_modes_is_refused(datasets, tmp_path):
    tiny = dict(test_sets=[str(TEST_SETS["whu-cd"])], use_segmentation=False, cd_epochs=1, max_minutes=0, few_shot_k=())
    settings = EvaluateSettings(**tiny, arms={"mixed": [str(datasets["full"]), str(datasets["inpaint"])]})
    with pytest.raises(InputError, match=r"--arm mixed: .*different --post-event modes \(full: .*; inpaint: "):
        evaluate_dataset([datasets["full"]], report=tmp_path / "r.md", settings=settings)
    with pytest.raises(InputError, match="different --post-event modes"):  # the generated datasets alike
        evaluate_dataset([datasets["full"], datasets["inpaint"]], report=tmp_path / "r.md",
                         settings=EvaluateSettings(**tiny))
    assert not (tmp_path / "r.md").exists()


def test_a_rerun_reads_finished_nets_and_trains_the_missing_ones(datasets, tmp_path):
    nets = tmp_path / "nets"
    first, trained = _run(datasets, nets)
    assert len(trained) == 2  # the datasets' own arm and the inpainted one
    again, trained = _run(datasets, nets)
    assert trained == []  # every net read from its file
    assert again["zero_shot"] == first["zero_shot"] and again["few_shot"] == first["few_shot"]
    assert again["figure"] is None  # the figure was written with the first run
    two, trained = _run(datasets, nets, nets_per_arm=2)
    assert len(trained) == 2  # only the nets of the second seed
    assert two["zero_shot"]["whu-cd"][INPAINT_ROW]["f1_per_net"][0] == pytest.approx(first["zero_shot"]["whu-cd"][INPAINT_ROW]["f1"])
    (nets / "arm-inpaint-pre-event-real-seed1.json").unlink()
    _, trained = _run(datasets, nets, nets_per_arm=2)
    assert trained == ["training FC-Siam-diff on generated data, inpaint (pre-event real)"]
    # a net trained on data read from its file gives the figures a fresh run gives: the files can be trusted
    fresh, _ = _run(datasets, tmp_path / "fresh", nets_per_arm=2)
    assert fresh["zero_shot"] == two["zero_shot"]


def test_a_changed_dataset_or_setting_trains_its_nets_again(datasets, tmp_path):
    nets = tmp_path / "nets"
    _run(datasets, nets)
    _, trained = _run(datasets, nets, few_shot_steps=2)  # a setting that changes every figure
    assert len(trained) == 2
    changed = tmp_path / "inpaint-changed"
    shutil.copytree(datasets["inpaint"], changed)
    spec = json.loads((changed / "dataset.json").read_text())
    spec["settings"]["steps"] = 2  # another dataset (the pixels do not matter to the identity: its record does)
    (changed / "dataset.json").write_text(json.dumps(spec))
    _, trained = _run(datasets, nets, inpaint=changed, few_shot_steps=2)
    assert trained == ["training FC-Siam-diff on generated data, inpaint (pre-event real)"]


def test_a_dataset_remade_elsewhere_has_the_same_identity(datasets, tmp_path, tiny_model_dir, houston_label_path):
    """The identity must survive a remake on a fresh machine (another checkout path, another order of manifest lines)."""
    checkout = tmp_path / "another-checkout"
    checkout.mkdir()
    label = Path(shutil.copy(houston_label_path, checkout))  # the same map under another absolute path
    remade = checkout / "full"
    generate_dataset(label, remade, DatasetSettings(count=6, tile=64, steps=1, seed=2), model=tiny_model_dir, workers=1)
    assert folder_identity(remade) == folder_identity(datasets["full"])
    lines = (remade / "manifest.jsonl").read_text().splitlines()
    (remade / "manifest.jsonl").write_text("\n".join(reversed(lines)) + "\n")
    assert folder_identity(remade) == folder_identity(datasets["full"])
    other = tmp_path / "seed3"
    generate_dataset(houston_label_path, other, DatasetSettings(count=6, tile=64, steps=1, seed=3), model=tiny_model_dir, workers=1)
    assert folder_identity(other) != folder_identity(datasets["full"])


def _manifest_seeds(folder: Path) -> list[int]:
    lines = [json.loads(line) for line in (folder / "manifest.jsonl").read_text().splitlines() if line.strip()]
    return sorted(int(r["seed"]) for r in lines)


def test_an_arm_shifted_at_evaluation_trains_once_more_on_its_own_samples_with_b_shifted(datasets, tmp_path):
    shifted_seeds = []

    def shift(b, seed):  # records which samples it shifts; any change of B will do for the test
        shifted_seeds.append(seed)
        return 255 - b

    trained = []
    out = evaluate_change_detection([datasets["full"]], TEST_SETS, arms={"inpaint (pre-event real)": [datasets["inpaint"]]},
                                    shift=shift, shift_generated=False,
                                    shifted_arms={"inpaint (pre-event real)": "inpaint (pre-event real, B appearance-shifted)"},
                                    cache_dir=tmp_path / "nets", log=lambda m: trained.append(m), **KWARGS)
    # every sample of the arm (train, val and the threshold's test split) shifted with its own seed; the generated
    # datasets' own B untouched (shift_generated=False)
    assert sorted(shifted_seeds) == _manifest_seeds(datasets["inpaint"])
    assert "training FC-Siam-diff on generated data, inpaint (pre-event real, B appearance-shifted)" in trained
    assert "training FC-Siam-diff on generated data (pre-event real, B appearance-shifted)" not in trained
    assert set(out["train"]["variants"]) == {"real", "arm: inpaint (pre-event real)", "arm: inpaint (pre-event real, B appearance-shifted)"}
    rows = out["zero_shot"]["whu-cd"]
    shifted_row = "FC-Siam-diff, trained on generated data, inpaint (pre-event real, B appearance-shifted)"
    assert shifted_row in rows and INPAINT_ROW in rows
    assert (tmp_path / "nets" / "arm-inpaint-pre-event-real-b-appearance-shifted-seed0.json").is_file()


def test_the_evaluate_command_shifts_a_named_arm_and_refuses_what_it_cannot_shift(datasets, tmp_path, tiny_model_dir,
                                                                                 houston_label_path):
    tiny = dict(test_sets=[str(TEST_SETS["whu-cd"])], use_segmentation=False, cd_epochs=1, max_minutes=0, few_shot_k=(3,),
                few_shot_splits=1, few_shot_steps=1)
    report = tmp_path / "report.md"
    result = evaluate_dataset([datasets["full"]], report=report, settings=EvaluateSettings(
        **tiny, arms={"inpaint": [str(datasets["inpaint"])]}, shift_arms=["inpaint"]))
    variants = set(result["results"]["change_detection"]["train"]["variants"])
    assert variants == {"generated", "arm: inpaint (pre-event generated)", "arm: inpaint (pre-event generated, B appearance-shifted)"}
    assert "| inpaint (pre-event generated, B appearance-shifted) | inpaint, B shifted" in report.read_text()

    with pytest.raises(InputError, match=r"--compare-arm-appearance-shift paste: no --arm is named 'paste' \(inpaint\)"):
        evaluate_dataset([datasets["full"]], report=tmp_path / "r1.md", settings=EvaluateSettings(
            **tiny, arms={"inpaint": [str(datasets["inpaint"])]}, shift_arms=["paste"]))
    already = tmp_path / "inpaint-shifted"
    generate_dataset(houston_label_path, already, DatasetSettings(count=6, tile=64, steps=1, seed=2, post_event="inpaint",
                                                                  appearance_shift=True), model=tiny_model_dir, workers=1)
    with pytest.raises(InputError, match="already hold shifted post-event images"):
        evaluate_dataset([datasets["full"]], report=tmp_path / "r2.md", settings=EvaluateSettings(
            **tiny, arms={"inpaint": [str(already)]}, shift_arms=["inpaint"]))
    assert not (tmp_path / "r1.md").exists() and not (tmp_path / "r2.md").exists()

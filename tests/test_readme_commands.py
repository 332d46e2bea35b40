"""The README's quick start runs as written: every command of its shell blocks, in order, in a scratch folder that sees
the repository (so its outputs stay out of the checkout).

Most run for real. Three kinds are cut down, each said below in RULES: `make demo` and `make test` are checked with
`make -n` (the demo's own command is the walk-through's `generate`, which runs; `make test` is this suite), and the
long ones run with fewer samples and steps (`--steps 2`, `--count 6`): every option written in the README is still
parsed and used, only the amount of work shrinks. A command the rules do not know fails the test, so a new one in the
README must be given a rule here."""
from __future__ import annotations

import re
import shlex
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
# Outputs of the quick start's commands that must land in the scratch folder, not in the checkout.
NOT_LINKED = {".git", "build", "dist", "demo_output", "my-sample", "my-dataset", "my-detector", "my-detection"}

# (the command's first words, what runs instead or "as written", why)
RULES = [
    (["make", "demo"], lambda a: ["make", "-n", *a[1:]], "dry run: its command is the walk-through's generate"),
    (["make", "test"], lambda a: ["make", "-n", *a[1:]], "dry run: this is the test suite itself"),
    (["make", "package"], lambda a: a, "as written"),
    ([".venv/bin/python", "-m", "changeanywhere_qgis", "generate"], lambda a: [*a, "--steps", "2"], "2 steps"),
    ([".venv/bin/python", "-m", "changeanywhere_qgis", "dataset"],
     lambda a: [*with_value(a, "--count", "6"), "--steps", "2", "--workers", "1"],
     "6 samples (2 per split: the detector needs a train and a val or test split) of 2 steps"),
    ([".venv/bin/python", "-m", "model_export.detector", "train"], lambda a: [*a, "--steps", "2"], "2 steps"),
    ([".venv/bin/python", "-m", "changeanywhere_qgis", "detect"], lambda a: a, "as written"),
]


def with_value(args: list[str], option: str, value: str) -> list[str]:
    assert option in args, f"{option} is no longer in the README's command {args}: update RULES"
    i = args.index(option)
    return [*args[:i + 1], value, *args[i + 2:]]


def quick_start(readme: str) -> str:
    m = re.search(r"^## Quick start\n(.*?)(?=^## )", readme, re.S | re.M)
    assert m, "README.md has no '## Quick start' section"
    return m.group(1)


def shell_commands(section: str) -> list[tuple[list[str], str]]:
    """Each command of the section's ```sh blocks (continuation lines joined) as words, with its trailing comment."""
    commands = []
    for block in re.findall(r"^```sh\n(.*?)^```", section, re.S | re.M):
        for line in block.replace("\\\n", " ").splitlines():
            if line.strip():
                code, _, comment = line.partition(" #")
                commands.append((shlex.split(code), comment))
    return commands


def rule_for(args: list[str]):
    for prefix, replace, why in RULES:
        if args[:len(prefix)] == prefix:
            return replace, why
    return None


def scratch_checkout(folder: Path) -> Path:
    for entry in REPO.iterdir():
        if entry.name not in NOT_LINKED:
            (folder / entry.name).symlink_to(entry)
    return folder


def test_the_quick_start_has_commands_and_each_has_a_rule():
    commands = shell_commands(quick_start((REPO / "README.md").read_text()))
    assert len(commands) >= 6
    unknown = [" ".join(args) for args, _ in commands if rule_for(args) is None]
    assert unknown == [], "commands of the README's quick start without a rule in RULES"


def test_the_quick_start_runs_as_written(tmp_path):
    work = scratch_checkout(tmp_path)
    for args, comment in shell_commands(quick_start((REPO / "README.md").read_text())):
        replace, why = rule_for(args)
        run = replace(list(args))
        done = subprocess.run(run, cwd=work, capture_output=True, text=True, timeout=900)
        assert done.returncode == 0, f"README command failed ({why}): {' '.join(args)}\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
        for named in re.findall(r"[\w./-]+\.zip", comment):  # a file the comment promises
            assert (work / named).is_file(), f"{' '.join(args)}: the README says it builds {named}; it did not"
    for output in ("my-sample/t2_image.tif", "my-sample/change_mask.tif", "my-dataset/dataset.json",
                   "my-detector/detector.json", "my-detection/change_mask.tif"):
        assert (work / output).is_file(), f"the walk-through should have made {output}"


@pytest.mark.parametrize("words, expected", [
    (["make", "demo"], ["make", "-n", "demo"]),
    (["make", "demo2"], None),
    ([".venv/bin/python", "-m", "changeanywhere_qgis", "dataset", "--count", "40", "--out", "d"],
     [".venv/bin/python", "-m", "changeanywhere_qgis", "dataset", "--count", "6", "--out", "d", "--steps", "2", "--workers", "1"]),
])
def test_rules(words, expected):
    rule = rule_for(words)
    assert (rule[0](words) if rule else None) == expected


def test_commands_are_read_from_the_quick_start_only():
    readme = "# T\n## Quick start\n```sh\nmake demo   # a comment\nls a \\\n  b\n```\n## Other\n```sh\nrm -rf /\n```\n"
    assert shell_commands(quick_start(readme)) == [(["make", "demo"], " a comment"), (["ls", "a", "b"], "")]

"""Every code block of the README runs, so the README cannot drift from the code.

Python blocks are executed in a fresh interpreter in an empty temporary folder,
with nothing trained before. The studies they name are tiny stand-ins written
there under the same names (a file named ``quickstart`` is read before the
built-in study of that name); the real quickstart is trained by
``test_quickstart.py``. Bash blocks are
parsed with ``bash -n``, each ``minarch`` command in them must parse with
``--help`` appended (an unknown verb or option fails), and the files and
extras they install from must exist. YAML blocks are study files: they plan.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import minarch
from tests.cli import minarch as minarch_cli

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
FENCE = re.compile(r"^([ \t]*)```(\w+)\n(.*?)^\1```$", re.MULTILINE | re.DOTALL)
"""A fenced block, also one indented in a list item: (indent, language, code)."""

STAND_INS = {
    "quickstart": """
name: quickstart
datasets: [digits]
models: [{family: mlp, width: [4, 16]}]
training: {optimizer: adamw, lr: 0.01, epochs: 2, batch_size: 64}
seeds: 2
""",
    "compression-cpu": """
name: compression-cpu
datasets: [digits]
models: [{family: mlp, width: 16}]
training: {optimizer: adamw, lr: 0.01, epochs: 2, batch_size: 64}
seeds: 1
prune: {unstructured: {scope: [global], sparsity: [0.5, 0.9]}}
quantize: {bits: [8, 4], casts: []}
""",
    "hpspace-cpu": """
name: hpspace-cpu
datasets: [digits]
models: [{family: mlp, width: 16}]
training:
  optimizer: adamw
  lr: [0.003, 0.01]
  weight_decay: [0.0001, 0.001]
  epochs: 2
  batch_size: 64
seeds: 1
""",
}
"""Tiny studies under the names the README's Python block uses."""


def blocks(language: str) -> list[str]:
    found = FENCE.findall(README.read_text())
    return [textwrap.dedent(code) for _, lang, code in found if lang == language]


def minarch_commands(script: str) -> list[list[str]]:
    """The ``minarch ...`` commands of a shell script, each as its arguments after ``minarch``."""
    commands = []
    script = script.replace("\\\n", " ")  # a line continued by a backslash is one line
    for segment in re.split(r"&&|\|\||[;|()\n]", script):
        words = shlex.split(segment, comments=True)
        while words and re.fullmatch(r"\w+=\S*", words[0]):  # VAR=value before the command
            words = words[1:]
        if words and words[0] == "minarch":
            commands.append(words[1:])
    return commands


def test_the_readme_has_the_blocks_this_file_checks():
    assert blocks("bash") and blocks("python") and blocks("yaml") and blocks("toml")
    commands = [c for block in blocks("bash") for c in minarch_commands(block)]
    assert ["run"] in commands and ["plan", "my-study.yaml"] in commands  # an indented block


@pytest.mark.parametrize("script", blocks("bash"), ids=lambda s: s.splitlines()[0][:40])
def test_bash_blocks_parse_and_their_minarch_commands_exist(script, tmp_path):
    parsed = subprocess.run(["bash", "-n"], input=script, text=True, capture_output=True)
    assert parsed.returncode == 0, parsed.stderr
    for args in minarch_commands(script):
        result = minarch_cli(*args, "--help", cwd=tmp_path)
        assert result.returncode == 0, (args, result.stderr)


@pytest.mark.parametrize("script", blocks("bash"), ids=lambda s: s.splitlines()[0][:40])
def test_bash_blocks_install_from_files_that_exist(script):
    pyproject = (ROOT / "pyproject.toml").read_text()
    extras = re.search(r"^\[project.optional-dependencies\]\n(.*?)^\[", pyproject, re.M | re.S)
    extras = re.findall(r"^(\w+) =", extras.group(1), re.M)
    for match in re.finditer(r"bash (\S+)", script):
        assert (ROOT / match.group(1)).is_file(), match.group(0)
    for match in re.finditer(r"pip install (?:-e )?'?(\.|minarch)(?:\[([\w,]+)\])?", script):
        assert (ROOT / "pyproject.toml").is_file()
        for extra in filter(None, (match.group(2) or "").split(",")):
            assert extra in extras, match.group(0)
    pins = re.findall(r"torch==([\d.]+)", script)
    assert all(f"torch=={pin}" in (ROOT / ".ci" / "run").read_text() for pin in pins)


@pytest.mark.parametrize("study", blocks("yaml"), ids=lambda s: s.splitlines()[0][:40])
def test_yaml_blocks_are_study_files_that_plan(study, tmp_path):
    path = tmp_path / "study.yaml"
    path.write_text(study)
    the_plan = minarch.plan(path)
    assert the_plan.runs and the_plan.study.name


@pytest.mark.slow
@pytest.mark.parametrize(
    "code",
    [
        pytest.param(code, marks=pytest.mark.long(70)) if "minarch.run(" in code else code
        for code in blocks("python")
    ],
    ids=lambda s: s.splitlines()[0][:40],
)
def test_python_blocks_run_in_an_empty_folder(code, tmp_path):
    """As a user runs them: nothing trained before, no repository files beside them."""
    for name, text in STAND_INS.items():
        (tmp_path / name).write_text(text)
    script = tmp_path / "readme_block.py"
    script.write_text(code)
    env = {k: v for k, v in os.environ.items() if not k.startswith("MINARCH_")}
    result = subprocess.run(
        [sys.executable, str(script)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]


def test_the_readme_lists_the_model_families_as_minarch_families_does():
    section = README.read_text().split("## Model families", 1)[1]
    rows = [line for line in section.splitlines() if line.startswith("| `")]
    cells = [re.split(r"(?<!\\) \| ", row.strip("| ").replace("`", "")) for row in rows]
    listed = [[cell.replace("\\|", "|") for cell in row] for row in cells]
    assert listed == minarch.families().values.tolist()


def test_minarch_families_prints_every_family_with_its_fields(tmp_path):
    result = minarch_cli("families", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    for row in minarch.families().itertuples():
        assert row.family in result.stdout and row.fields in result.stdout
    assert "channels" in result.stdout and "global average pooling" in result.stdout


def test_the_readme_plugin_runs_with_the_path_rule_it_states(tmp_path):
    """The README's plugin module, saved as it says, found the way its bash block says."""
    (module,) = [code for code in blocks("python") if 'register(\n    "two_layer"' in code]
    (tmp_path / "mypackage").mkdir()
    (tmp_path / "mypackage" / "minarch_plugin.py").write_text(module)
    (script,) = [code for code in blocks("bash") if "--plugin mypackage.minarch_plugin" in code]
    assert 'export PYTHONPATH="$PWD"' in script
    command = next(c for c in minarch_commands(script) if c[-1] == "families")
    console_script = {"PYTHONSAFEPATH": "1"}  # as the `minarch` command: no working directory
    without = minarch_cli(*command, cwd=tmp_path, env=console_script)
    assert without.returncode == 2 and "No module named 'mypackage'" in without.stderr
    path = os.pathsep.join([str(tmp_path), os.environ.get("PYTHONPATH", "")])
    found = minarch_cli(*command, cwd=tmp_path, env=console_script | {"PYTHONPATH": path})
    assert found.returncode == 0, found.stderr
    assert "two_layer" in found.stdout and "hidden" in found.stdout

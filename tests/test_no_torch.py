"""Reading studies and stores needs no torch: the catalog, the read-only verbs, and
``run`` with nothing left to train or measure.

Each check runs in a fresh interpreter (``-X importtime`` lists every module it
imports), so a module another test imported cannot hide an import of torch.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys

import pytest

from minarch.models import example, family_names, registry

CATALOG = """
from minarch.data import dataset_info, dataset_names
from minarch.models import config_class, describe, example, family_names
for name in family_names():
    describe(name, example(name).config)
    config_class(name).model_json_schema()
for name in dataset_names():
    dataset_info(name)
"""
MODULE = re.compile(r"^import time:.*\|\s+(\S+)$", re.MULTILINE)


def imported(*args: str, cwd=None) -> set[str]:
    """Every module ``python -X importtime ARGS`` imports; it must succeed."""
    env = {k: v for k, v in os.environ.items() if k != "MINARCH_PLUGINS"}
    result = subprocess.run(
        [sys.executable, "-X", "importtime", *args],
        capture_output=True, text=True, cwd=cwd, env=env, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    return set(MODULE.findall(result.stderr))


def imports_torch(*args: str, cwd=None) -> bool:
    """Whether ``python -X importtime ARGS`` imports torch; it must succeed."""
    return "torch" in imported(*args, cwd=cwd)


def test_the_catalog_imports_no_torch():
    assert not imports_torch("-c", CATALOG)


def test_the_catalog_imports_no_decoder_downloader_or_cache():
    """Dataset infos need none of what loading needs; each loader imports its own."""
    loading = {"PIL", "urllib.request", "platformdirs", "minarch.data.files", "minarch.data.cache"}
    assert not imported("-c", CATALOG) & loading


@pytest.mark.parametrize(
    "code", ["import minarch.models.build", "from minarch.data import Dataset"]
)
def test_the_probe_sees_torch(code):
    assert imports_torch("-c", code)


def test_planning_a_study_of_every_family_with_a_count_imports_no_torch(tmp_path):
    """``plan`` sizes models by their families' counts (``models/analytic.py``), data and
    memory included, and builds none: on the default study and one of every such family."""
    families = [name for name in family_names() if registry.family(name).count is not None]
    models = [{"family": name, **example(name).config.model_dump()} for name in families]
    study = {
        "name": "every-family",
        "datasets": ["digits", "mnist"],
        "models": models,
        "training": {"optimizer": "sgd", "lr": 0.1, "epochs": 1, "batch_size": 8},
        "seeds": 1,
    }
    (tmp_path / "every.yaml").write_text(json.dumps(study))
    assert not imports_torch("-m", "minarch", "plan", cwd=tmp_path)
    assert not imports_torch("-m", "minarch", "plan", "every.yaml", cwd=tmp_path)


VERBS = {
    "plan": ["plan", "full.yaml"],
    "status": ["status"],
    "runs": ["runs"],
    "analyze": ["analyze"],
    "analyze-redundancy": ["analyze", "--table", "redundancy"],
    "analyze-int8": ["analyze", "--table", "int8"],
    "analyze-risk": ["analyze", "--table", "risk"],
    "compression": ["compression"],
    "report": ["report", "--out", "reports/report"],
    "run-with-nothing-left": ["run", "full.yaml", "--out", "reports/run"],  # its report included
}


@pytest.mark.slow
@pytest.mark.parametrize("verb", list(VERBS))
def test_a_read_only_verb_imports_no_torch(full_store, verb):
    folder, db = full_store
    assert not imports_torch("-m", "minarch", *VERBS[verb], "--db", db, cwd=folder)


NOT_FOR_THE_REGIMES = (
    "plotly", "kaleido", "scipy",  # the report's figures and browser; no verb needs SciPy
    "minarch.analysis.pruning", "minarch.analysis.quantization", "minarch.analysis.hpspace",
    "minarch.analysis.claims", "minarch.reporting",
)  # fmt: skip
"""What ``minarch analyze`` (the regimes and P_min) has no use for: importing them costs time."""


@pytest.mark.slow
def test_analyze_loads_neither_the_report_nor_the_analyses_it_does_not_print(full_store):
    folder, db = full_store
    loaded = imported("-m", "minarch", "analyze", "--db", db, cwd=folder)
    assert "minarch.analysis.regimes" in loaded  # the probe sees what it computes
    assert not loaded & set(NOT_FOR_THE_REGIMES)


@pytest.mark.slow
def test_the_epochs_of_the_api_import_no_torch(full_store):
    folder, db = full_store
    assert not imports_torch("-c", f"import minarch; minarch.epochs(db={db!r})", cwd=folder)


@pytest.mark.slow
def test_the_verb_probe_sees_torch_when_it_is_imported(full_store, tmp_path):
    """The check can fail: ``run`` imports torch once something is left to measure (a
    quantization setting added to the runs trained), on a copy of the store."""
    copy = shutil.copytree(
        full_store[0], tmp_path / "copy", ignore=shutil.ignore_patterns("reports")
    )
    db = f"sqlite:///{copy / 'runs.db'}"
    more_bits = ("--set", "quantize.bits=[8, 4, 2]", "--no-report")
    assert imports_torch("-m", "minarch", "run", "full.yaml", *more_bits, "--db", db, cwd=copy)

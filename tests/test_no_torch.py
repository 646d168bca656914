"""Reading studies and stores needs no torch: the catalog and the read-only verbs.

Each check runs in a fresh interpreter, so a module imported by another test
cannot hide an import of torch.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

CATALOG = """
from minarch.data import dataset_info, dataset_names
from minarch.models import config_class, describe, example, family_names
for name in family_names():
    describe(name, example(name).config)
    config_class(name).model_json_schema()
for name in dataset_names():
    dataset_info(name)
"""


def imports_torch(code: str) -> bool:
    """Whether running ``code`` in a fresh interpreter imports torch."""
    probe = f"{code}\nimport sys\nprint('torch' in sys.modules)"
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    )
    return result.stdout.split()[-1] == "True"


def test_the_catalog_imports_no_torch():
    assert not imports_torch(CATALOG)


@pytest.mark.parametrize(
    "code", ["import minarch.models.build", "from minarch.data import Dataset"]
)
def test_the_probe_sees_torch(code):
    assert imports_torch(code)

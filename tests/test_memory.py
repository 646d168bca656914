"""`minarch plan` estimates the peak memory of a study and refuses what cannot fit."""

from __future__ import annotations

import pytest

import minarch
from minarch.errors import MinarchError
from minarch.execute.memory import GIB, check_memory, peak_memory
from tests.cli import minarch as minarch_cli
from tests.test_data import image_folder

HUGE_IMAGES = """
name: huge
datasets: [{{name: imagefolder, path: {path}, image_size: {size}}}]
models: [{{family: cnn, depth: 1, channels: 4}}]
training: {{optimizer: sgd, lr: 0.1, epochs: 1, batch_size: 8}}
seeds: 1
"""


def _study(tmp_path, size: int):
    folder = image_folder(tmp_path / "images")
    (tmp_path / "huge.yaml").write_text(HUGE_IMAGES.format(path=folder, size=size))
    return tmp_path / "huge.yaml"


def test_the_estimate_grows_with_the_image_size(tmp_path):
    small = peak_memory(minarch.plan(_study(tmp_path, 64)))
    big = peak_memory(minarch.plan(_study(tmp_path, 4096), force=True))
    assert small.peak < 2**27  # 128 MiB
    assert big.pack > 4 * GIB and big.data == 4 * 1.25 * 3 * 4096**2  # 4 training images
    assert "cnn d1 c4 on imagefolder" in big.describe()


@pytest.mark.slow
def test_a_plan_over_the_machines_memory_is_refused_unless_forced(tmp_path):
    with pytest.raises(MinarchError, match="more than this machine's 1.0 GiB: .* --force"):
        check_memory(minarch.plan(_study(tmp_path, 4096), force=True), available=GIB)
    study = _study(tmp_path, 8192)
    refused = minarch_cli("plan", str(study), cwd=tmp_path)
    assert refused.returncode == 2 and len(refused.stderr.strip().splitlines()) == 1
    assert "GiB at the peak" in refused.stderr and "--force" in refused.stderr
    forced = minarch_cli("plan", str(study), "--force", cwd=tmp_path)
    assert forced.returncode == 0, forced.stderr

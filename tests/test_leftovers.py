"""What a killed process leaves is removed by the next one; signals keep their exit codes."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time

import numpy as np
import pytest

from minarch.data import cache
from minarch.errors import Interrupted
from minarch.execute.signals import interruptible
from minarch.execute.workspace import ORPHAN_AFTER_SECONDS, remove_stale_weights, weights_dir
from minarch.scratch import remove_stale
from minarch.store import open_store
from tests.cli import TINY_STUDY
from tests.test_store import RUNS, dead_pid


def _left_by(pid: int, name: str) -> str:
    """A temporary name as process ``pid`` of this host would have chosen it."""
    return f".{name}@{socket.gethostname()}@{pid}@x1y2.part"


def test_only_the_leftovers_of_gone_writers_are_removed(tmp_path):
    gone, alive = dead_pid(), os.getpid()
    (tmp_path / _left_by(gone, "a.npz")).write_bytes(b"half")
    (tmp_path / _left_by(gone, "figures")).mkdir()
    (tmp_path / _left_by(alive, "b.npz")).write_bytes(b"being written")
    (tmp_path / f".c.npz@another-host@{gone}@z.part").write_bytes(b"another machine's")
    (tmp_path / "d.npz").write_bytes(b"a finished file")
    remove_stale(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [_left_by(alive, "b.npz"), f".c.npz@another-host@{gone}@z.part", "d.npz"]
    )


def test_a_cache_written_after_a_killed_decode_removes_its_leftover(tmp_path):
    leftover = tmp_path / _left_by(dead_pid(), "cifar10-jpeg.npz")
    leftover.write_bytes(b"half a decode")
    cache.store_arrays("other.npz", tmp_path, {"x": np.zeros(3)})
    assert not leftover.exists() and (tmp_path / "other.npz").exists()


def test_the_next_run_removes_stale_weights_files(tmp_path):
    url = f"sqlite:///{tmp_path / 'runs.db'}"
    artifacts = tmp_path / "minarch-artifacts"
    with open_store(url) as store:
        store.register_study("alpha", "name: alpha\n", RUNS)
        folder = weights_dir(artifacts, store)
        folder.mkdir(parents=True)
        kept, orphan, young = (folder / f"{run.id}.pt" for run in RUNS[:3])
        for path in (kept, orphan, young):
            path.write_bytes(b"w")
        store.add_artifact(RUNS[0].id, "weights", str(kept), "0" * 64, 1)
        old = time.time() - ORPHAN_AFTER_SECONDS - 1
        for path in (kept, orphan):
            os.utime(path, (old, old))  # a `minarch rm` killed after its commit
        partial = folder / _left_by(dead_pid(), "x.pt")
        partial.write_bytes(b"a full disk")
        remove_stale_weights(artifacts, store)
    assert sorted(p.name for p in folder.iterdir()) == sorted([kept.name, young.name])


def test_a_plain_keyboard_interrupt_after_sigterm_still_reads_as_sigterm():
    """Ray's blocking calls turn whatever a signal handler raised into KeyboardInterrupt."""
    with pytest.raises(Interrupted) as caught, interruptible():
        try:
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(5)
        except Interrupted:
            raise KeyboardInterrupt from None
    assert caught.value.exit_code == 143


SLOW_DATA = """
import time
from pathlib import Path
from minarch.data.registry import DatasetInfo, register

@register(DatasetInfo("slow-data", (1, 4, 4), 2, "decodes forever", difficulty=1))
def load(request):
    Path("decoding").touch()
    time.sleep(600)
"""


def test_sigterm_during_the_first_decode_says_interrupted_and_exits_143(tmp_path):
    (tmp_path / "slow_data.py").write_text(SLOW_DATA)
    (tmp_path / "s.yaml").write_text(TINY_STUDY.replace("[digits]", "[slow-data]"))
    env = {k: v for k, v in os.environ.items() if not k.startswith("MINARCH_")}
    env["PYTHONPATH"] = f"{tmp_path}{os.pathsep}{env.get('PYTHONPATH', '')}"
    command = [sys.executable, "-m", "minarch", "--plugin", "slow_data", "run", "s.yaml"]
    process = subprocess.Popen(
        [*command, "--db", "sqlite:///runs.db", "--device", "cpu", "--workers", "1"],
        cwd=tmp_path,
        env=env,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 300
    while not (tmp_path / "decoding").exists() and process.poll() is None:
        assert time.monotonic() < deadline
        time.sleep(0.1)
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 143, stderr
    assert stderr.strip().splitlines()[-1].startswith("interrupted")
    assert not (tmp_path / "runs.db").exists()

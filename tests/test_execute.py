"""The executor's hooks: curves to the store, heartbeats for the whole pack."""

from __future__ import annotations

from rich.console import Console
from rich.progress import Progress

from minarch.execute import trainer
from minarch.execute.pack import group_packs
from minarch.spec import expand
from minarch.train import EpochRecord
from tests.test_spec import study


class RecordingStore:
    def __init__(self):
        self.beats: list[list[str]] = []
        self.epochs: list[tuple[str, int]] = []

    def heartbeat(self, run_ids, owner):
        self.beats.append(list(run_ids))

    def record_epoch(self, run_id, epoch, metrics):
        self.epochs.append((run_id, epoch))


def test_heartbeats_cover_every_run_of_the_pack(monkeypatch):
    monkeypatch.setattr(trainer, "HEARTBEAT_SECONDS", -1.0)  # beat on every step
    pack = group_packs(expand(study()))[0]
    assert len(pack.configs) == 4  # 2 lr × 2 seeds
    store, progress = RecordingStore(), Progress(console=Console(quiet=True))
    hooks = trainer.StoreHooks(store, progress, pack, "me")
    members = pack.members()
    for step in (1, 2):  # the fused engine's call: every member each step
        hooks.on_step(members, 1, step, 5)
    assert store.beats and all(beat == pack.run_ids for beat in store.beats)
    task = progress.tasks[0]
    assert task.total == 4 * 3 * 5 and task.completed == 8  # member-steps of the pack
    record = EpochRecord(1, 0.5, 0.8, 0.45, 0.85, 0.6, 0.7, 0.9, 0.1, 1.0)
    hooks.on_epoch(members[2], record)
    assert store.epochs == [(pack.configs[2].id, 1)]

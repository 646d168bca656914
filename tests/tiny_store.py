"""A store holding the tiny study with made-up finished runs: a report without training."""

from __future__ import annotations

import math
from contextlib import closing
from pathlib import Path

import minarch
from minarch.store import local_owner, open_store
from tests.cli import TINY_STUDY


def tiny_store(folder: Path, study_text: str = TINY_STUDY) -> str:
    """Register a study (the tiny one) in ``folder/runs.db``, each run finished with a curve.

    Accuracies grow with size and epoch and peak at lr 0.01, so the report has
    findings to state. Returns the database URL.
    """
    study = folder / "tiny.yaml"
    study.write_text(study_text)
    plan = minarch.plan(study)
    db = f"sqlite:///{folder / 'runs.db'}"
    with closing(open_store(db)) as store:
        store.register_study("tiny", plan.text, [r.new_run() for r in plan.runs])
        store.claim([r.config.id for r in plan.runs], local_owner())
        for run in plan.runs:
            lr = run.config.training.lr
            top = 0.5 + 0.1 * math.log10(run.params) - 0.1 * abs(math.log10(lr) + 2)
            top += 0.01 * run.config.seed
            for epoch in (1, 2, 3):
                acc = top * epoch / 3
                store.record_epoch(
                    run.config.id,
                    epoch,
                    {"train_loss": 2.3 / epoch, "train_acc": acc, "val_loss": 2.3 / epoch}
                    | {"val_acc": acc, "val_top5": 1.0, "lr": lr, "wall_time": float(epoch)},
                )
            final = {"final_val_acc": top, "best_val_acc": top, "best_epoch": 3}
            final |= {"final_train_acc": top, "final_train_loss": 2.3 / 3, "final_val_loss": 0.8}
            store.finish(run.config.id, "done", metrics=final)
    return db

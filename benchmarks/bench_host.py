"""Host time per step of a pack of 243 tiny members (the fused engine, one CPU thread).

With models this small a step is almost all host work: the per-member
bookkeeping around the computation. The hooks advance a rich progress bar as
``minarch run``'s do. Runs on this checkout and on an older one, whose hooks
were called once per member and step:

python benchmarks/bench_host.py
PYTHONPATH=/path/to/old/src python benchmarks/bench_host.py
"""

from __future__ import annotations

import json
import os
import statistics
import time
from collections.abc import Sequence

import torch
from rich.console import Console
from rich.progress import Progress

from minarch.data import DatasetInfo
from minarch.data.dataset import build_dataset
from minarch.models import build_model
from minarch.train import Hooks, Member, Recipe, train_pack

MEMBERS = 243  # 81 settings x 3 seeds, the thesis grid's pack
SHAPE = (1, 8, 8)
STEPS = 20
ROUNDS = 5


class ProgressHooks(Hooks):
    """What ``minarch run`` does each step: advance the pack's bar by the member-steps."""

    def __init__(self) -> None:
        self.progress = Progress(console=Console(quiet=True))
        self.task = self.progress.add_task("pack", total=None)
        self.calls = 0

    def on_step(self, members, *args) -> None:  # one member (older engines) or several
        self.calls += 1
        self.progress.advance(self.task, len(members) if isinstance(members, Sequence) else 1)


def main() -> None:
    torch.set_num_threads(1)
    info = DatasetInfo("digits", SHAPE, 10, "random images of digits' shape")
    images = torch.Generator().manual_seed(0)
    x = torch.randint(0, 256, (STEPS * 32 + 32, *SHAPE), generator=images, dtype=torch.uint8)
    y = torch.randint(0, 10, (len(x),), generator=images)
    data = build_dataset(info, x[:-32], y[:-32], x[-32:], y[-32:])
    members = [Member(f"m{i}", 1e-3 * (1 + i // 3), 1e-4, i % 3) for i in range(MEMBERS)]
    recipe = Recipe(optimizer="adamw", batch_size=32, epochs=1, schedule="constant")

    def make(generator: torch.Generator) -> torch.nn.Module:
        return build_model("mlp", {"depth": 1, "width": 4}, SHAPE, 10, generator=generator)

    def per_step() -> tuple[float, int]:
        hooks = ProgressHooks()
        start = time.perf_counter()
        train_pack(
            make_model=make, members=members, recipe=recipe, data=data, hooks=hooks, engine="fused"
        )
        return (time.perf_counter() - start) / STEPS, hooks.calls

    per_step()  # warm-up
    rounds = [per_step() for _ in range(ROUNDS)]
    print(
        json.dumps(
            {
                "members": MEMBERS,
                "steps": STEPS,
                "ms_per_step": 1e3 * statistics.median(s for s, _ in rounds),
                "hook_calls": rounds[0][1],
                "load_average": os.getloadavg()[0],
            }
        )
    )


if __name__ == "__main__":
    main()

"""The benchmark workloads: packs of the size minarch trains, each in a full and a quick size."""

from __future__ import annotations

from dataclasses import dataclass

from minarch.errors import BenchError
from minarch.train import Member


@dataclass(frozen=True)
class Workload:
    """One pack: a model, its input, the members' hyperparameters and how long to time it."""

    name: str
    family: str
    config: dict
    input_shape: tuple[int, ...]
    lrs: tuple[float, ...]
    weight_decays: tuple[float, ...]
    seeds: tuple[int, ...]
    batch_size: int
    warmup_steps: int  # untimed steps first: allocator, kernel selection, caches
    steps: int  # timed steps
    mnist: bool = False  # real MNIST from MINARCH_DATA_DIR when it is there

    def members(self) -> list[Member]:
        """The lr × weight decay × seed grid."""
        return [
            Member(f"{self.name}-{i}", lr, wd, seed)
            for i, (lr, wd, seed) in enumerate(
                (lr, wd, seed)
                for seed in self.seeds
                for lr in self.lrs
                for wd in self.weight_decays
            )
        ]


def _grid(low: float, high: float, n: int) -> tuple[float, ...]:
    """``n`` log-spaced values from 10**low to 10**high."""
    return tuple(10 ** (low + (high - low) * i / max(1, n - 1)) for i in range(n))


MNIST_SHAPE = (1, 28, 28)
CIFAR_SHAPE = (3, 32, 32)

FULL = {
    w.name: w
    for w in (
        Workload(
            "mlp-grid", "mlp", {"width": 64}, MNIST_SHAPE, _grid(-3, -1, 9), _grid(-6, -2, 9),
            (0,), batch_size=128, warmup_steps=5, steps=40, mnist=True,
        ),
        Workload(
            "cnn", "cnn", {"depth": 2, "channels": 32}, MNIST_SHAPE, _grid(-3, -1, 4),
            _grid(-5, -3, 4), (0,), batch_size=128, warmup_steps=2, steps=8, mnist=True,
        ),
        Workload(
            "resnet20", "resnet_cifar", {"depth": 20}, CIFAR_SHAPE, _grid(-2, -1, 4), (5e-4,),
            (0, 1), batch_size=128, warmup_steps=1, steps=4,
        ),
        Workload(
            "vit", "vit", {"patch_size": 4, "dim": 64, "depth": 4, "heads": 4}, CIFAR_SHAPE,
            _grid(-4, -3, 4), (0.05,), (0, 1), batch_size=128, warmup_steps=1, steps=4,
        ),
    )
}  # fmt: skip

# Same packs, shrunk so the whole suite runs in seconds (for tests, not for numbers).
QUICK = {
    "mlp-grid": {"config": {"width": 8}, "lrs": _grid(-3, -1, 2), "weight_decays": (0.0, 1e-4)},
    "cnn": {"config": {"depth": 1, "channels": 4}, "lrs": (0.01,), "weight_decays": (0.0, 1e-4)},
    "resnet20": {"config": {"depth": 8, "width_multiplier": 0.25}, "lrs": (0.01,)},
    "vit": {"config": {"patch_size": 8, "dim": 8, "depth": 1, "heads": 2}, "lrs": (1e-3,)},
}
QUICK_TIMING = {"batch_size": 16, "warmup_steps": 1, "steps": 2}


def select(names: list[str] | None, *, quick: bool) -> list[Workload]:
    """The named workloads (all of them for None), full size or quick."""
    names = list(FULL) if names is None else names
    unknown = [n for n in names if n not in FULL]
    if unknown:
        raise BenchError(f"unknown workload(s) {unknown}; valid workloads: {', '.join(FULL)}")
    if not quick:
        return [FULL[n] for n in names]
    return [Workload(**(vars(FULL[n]) | QUICK[n] | QUICK_TIMING)) for n in names]

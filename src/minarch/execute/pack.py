"""The pack: runs that share dataset, architecture and recipe, trained as one computation.

Runs with equal ``RunConfig.pack_key`` differ only in learning rate, weight
decay and seed, so ``train_pack`` can train them together (fused or one after
another). Every part of minarch that groups runs into packs does it here.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from minarch.models import describe
from minarch.spec import RunConfig
from minarch.train import Member, Recipe


@dataclass(frozen=True)
class Pack:
    """Runs of one pack key, in plan order."""

    configs: tuple[RunConfig, ...]

    @property
    def key(self) -> str:
        return self.configs[0].pack_key

    @property
    def first(self) -> RunConfig:
        """Any member stands for the pack's dataset, model, recipe and parent."""
        return self.configs[0]

    @property
    def run_ids(self) -> list[str]:
        return [c.id for c in self.configs]

    def members(self) -> list[Member]:
        return [Member(c.id, c.training.lr, c.training.weight_decay, c.seed) for c in self.configs]

    def recipe(self) -> Recipe:
        return Recipe(**self.first.training.model_dump(exclude={"lr", "weight_decay"}))

    def only(self, run_ids: Iterable[str]) -> Pack:
        """The same pack restricted to ``run_ids`` (what a claim got), plan order kept."""
        keep = set(run_ids)
        return Pack(tuple(c for c in self.configs if c.id in keep))

    def split(self, parts: int, *, lanes: int | None = None) -> list[Pack]:
        """The pack cut into at most ``parts`` contiguous, near-equal packs, plan order kept.

        With ``lanes`` (the batched engine's fleet width) the cut falls between
        fleets only (``lane_fleets``), which keep their order: a part of a fleet
        would train with its empty lanes filled by ghosts, the whole fleet's
        work for a part of its runs.
        """
        if lanes is None:
            units = [(c,) for c in self.configs]
        else:
            from minarch.train import lane_fleets  # torch: only where packs train

            by_id = {c.id: c for c in self.configs}
            fleets = lane_fleets(self.members(), lanes)
            units = [tuple(by_id[m.key] for m in fleet if m is not None) for fleet in fleets]
        size = -(-len(units) // max(1, parts))  # ceiling division
        return [Pack(sum(units[i : i + size], ())) for i in range(0, len(units), size)]

    @property
    def label(self) -> str:
        """What progress bars call it: model, dataset, and how many members."""
        model = describe(self.first.model.family, self.first.model.config)
        members = f" ×{len(self.configs)}" if len(self.configs) > 1 else ""
        return f"{model} on {self.first.dataset.name}{members}"


def group_packs(configs: Iterable[RunConfig]) -> list[Pack]:
    """Runs grouped by pack key, packs and members in the order given."""
    groups: dict[str, list[RunConfig]] = {}
    for config in configs:
        groups.setdefault(config.pack_key, []).append(config)
    return [Pack(tuple(group)) for group in groups.values()]


def packs_of(configs: Mapping[str, RunConfig], run_ids: Iterable[str]) -> list[Pack]:
    """The packs of ``run_ids`` (a subset of ``configs``), for claiming."""
    return group_packs(configs[i] for i in run_ids)

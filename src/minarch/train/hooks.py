"""The one interface through which progress bars, logging and heartbeats watch training."""

from __future__ import annotations

from collections.abc import Sequence

from minarch.train.types import EpochRecord, Member


class Hooks:
    """No-op base; subclass and override what you need.

    Exceptions raised here propagate out of ``train_pack``: that is how a caller
    aborts a pack. ``on_step`` runs once per optimizer step of the engine (for
    all the members that step trained together), so keep it cheap.
    On an accelerator the loss is checked for divergence once per
    ``CHECK_EVERY`` steps, so a member that diverges may have had ``on_step``
    calls for steps past the one it stops before (at most to the end of that
    window); on a CPU every step is checked before its hook call.
    """

    def on_step(
        self, members: Sequence[Member], epoch: int, step: int, steps_per_epoch: int
    ) -> None:
        """After optimizer step ``step`` (1-based, up to ``steps_per_epoch``) of ``epoch``
        of ``members``: one member in the plain loop, the live ones of a fleet."""

    def on_epoch(self, member: Member, record: EpochRecord) -> None:
        """After the epoch's validation, with its curve point."""

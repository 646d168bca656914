"""Training a pack: K members of one architecture on one dataset, one call.

``train_pack`` is the only entry point; it picks an engine inside, so callers
never change when a faster engine arrives. Each name is imported on first use,
and ``types`` and ``budget`` import no torch, so planning a study (its packs'
members and recipes, their memory) loads none.
"""

from minarch.lazy import on_first_use

__getattr__ = on_first_use(
    __name__,
    {
        "ENGINES": "pack",
        "train_pack": "pack",
        "EpochRecord": "types",
        "Member": "types",
        "MemberResult": "types",
        "Recipe": "types",
        "TrainError": "types",
        "FusedOptions": "fused",
        "lane_fleets": "fused",
        "train_fused": "fused",
        "batched_lanes": "engine",
        "overhead_bound": "engine",
        "Hooks": "hooks",
        "evaluate": "plain",
        "lr_factor": "recipe",
        "memory_format": "layout",
    },
)

__all__ = [
    "ENGINES",
    "EpochRecord",
    "FusedOptions",
    "Hooks",
    "Member",
    "MemberResult",
    "Recipe",
    "TrainError",
    "batched_lanes",
    "evaluate",
    "lane_fleets",
    "lr_factor",
    "memory_format",
    "overhead_bound",
    "train_fused",
    "train_pack",
]

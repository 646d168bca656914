"""Growing a model entry's sizes past its ends (``extend: true``, docs/methods.md A.2).

A study's P_min or P_stable may sit at the smallest size it tested (a bound:
"at most this") or at or past the largest ("at least this"). An entry with
``extend: true`` then gets a halved size below its smallest or a doubled one
above its largest, round after round, like the lr x wd grid's extension. The
added sizes are extra values of the entry's size fields: the study file is
unchanged, and the new runs are ordinary base runs with ordinary ids.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from minarch.data import dataset_info
from minarch.errors import MinarchError, SpecError
from minarch.models import config_class
from minarch.spec.messages import describe_error
from minarch.spec.schema import StudySpec

Direction = Literal["down", "up"]
SizeKey = tuple[int, str]  # (index of the models entry, size field)
ENTRY_KEYS = ("extend", "max_extensions")  # a models entry's keys that are not the family's


class Extension(BaseModel):
    """The extension keys of one ``models`` entry; not part of any run's configuration."""

    model_config = ConfigDict(frozen=True, extra="ignore", strict=True)

    extend: bool = False
    max_extensions: Annotated[int, Field(ge=0, le=20)] = 3


def entry_extension(index: int, entry: Mapping[str, Any]) -> Extension:
    """``models[index]``'s extension keys, checked: a fixed-size family has nothing to extend."""
    try:
        extension = Extension.model_validate({k: entry[k] for k in ENTRY_KEYS if k in entry})
    except ValidationError as exc:
        error = exc.errors()[0]
        raise SpecError(f"models[{index}].{error['loc'][0]}: {describe_error(error)}") from None
    if extension.extend and not size_fields(entry["family"]):
        raise SpecError(
            f"models[{index}].extend: family {entry['family']} has a fixed size, "
            "there is no size to extend"
        )
    return extension


def size_fields(family: str, kinds: tuple[str, ...] = ("always", "swept")) -> tuple[str, ...]:
    """The fields a family's config marks as sizes (``models.SIZE``, ``models.SIZE_WHEN_SWEPT``)."""
    fields = config_class(family).model_fields
    return tuple(
        name for name, f in fields.items() if (f.json_schema_extra or {}).get("size") in kinds
    )


def extended_fields(entry: Mapping[str, Any]) -> tuple[str, ...]:
    """The size fields an entry sweeps (given as a list of several values).

    An entry that sweeps none (one architecture) grows along its width,
    channels or dim; a depth grows only where the entry sweeps it.
    """
    swept = tuple(
        f
        for f in size_fields(entry["family"])
        if isinstance(entry.get(f), list) and len(entry[f]) > 1
    )
    return swept or size_fields(entry["family"], ("always",))


def extended_entries(entries: list[dict[str, Any]]) -> list[tuple[int, Extension]]:
    """The index and extension keys of every entry with ``extend: true``."""
    extensions = [(i, entry_extension(i, entry)) for i, entry in enumerate(entries)]
    return [(i, extension) for i, extension in extensions if extension.extend]


def extension_rounds(entries: list[dict[str, Any]]) -> int:
    """How many rounds the entries' extensions may take: the most any entry allows."""
    return max((e.max_extensions for _, e in extended_entries(entries)), default=0)


def extension_capacity(entries: list[dict[str, Any]]) -> dict[SizeKey, int]:
    """At most how many values each extended field can gain: one per direction per round."""
    return {
        (i, name): 2 * extension.max_extensions
        for i, extension in extended_entries(entries)
        for name in extended_fields(entries[i])
    }


def next_sizes(
    study: StudySpec,
    extra: Mapping[SizeKey, tuple],
    directions: Mapping[str, set[Direction]],
    round_: int,
) -> dict[SizeKey, tuple]:
    """The sizes one more round adds to ``extra`` (the values added so far), per field.

    ``directions`` says, per family, whether sizes below ("down") and/or above
    ("up") the tested ones are wanted; ``round_`` counts from 0. An entry
    past its ``max_extensions`` adds nothing, and neither does a size its
    family cannot build on one of the study's datasets (a width of 0, a dim
    the heads do not divide): that end is as far as it goes.
    """
    entries, added = study.models, {}
    for i, extension in extended_entries(entries):
        entry = entries[i]
        wanted = directions.get(entry["family"], set())
        if round_ >= extension.max_extensions or not wanted:
            continue
        for name in extended_fields(entry):
            given = _listed(entry.get(name, _default(entry, name)))
            values = [v for v in [*given, *extra.get((i, name), ())] if v is not None]
            if not values:  # a depth-0 MLP has no width to grow
                continue
            proposals = [_scaled(min(values), 0.5)] * ("down" in wanted)
            proposals += [_scaled(max(values), 2)] * ("up" in wanted)
            new = tuple(v for v in proposals if v not in values and _buildable(study, i, name, v))
            if new:
                added[(i, name)] = new
    return added


def _listed(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _default(entry: Mapping[str, Any], name: str) -> Any:
    return config_class(entry["family"]).model_fields[name].default


def _scaled(value: int | float, factor: float) -> int | float:
    """Halved or doubled; an integer size stays an integer (rounded down)."""
    return math.floor(value * factor) if isinstance(value, int) else value * factor


def _buildable(study: StudySpec, index: int, name: str, value: Any) -> bool:
    """Whether every architecture ``models[index]`` gives with ``name = value`` can be built
    for every dataset's input (a dim the heads do not divide is refused by the builder)."""
    from minarch.models import build_model  # torch, only when a study is extended

    entry = study.models[index]
    schema = config_class(entry["family"])
    grids = {k: _listed(v) for k, v in entry.items() if k in schema.model_fields} | {name: [value]}
    inputs = {
        (info.input_shape, info.num_classes)
        for d in study.dataset_specs()
        for info in [dataset_info(d.name, path=d.path, image_size=d.image_size)]
    }
    try:
        for combo in itertools.product(*grids.values()):
            config = schema(**dict(zip(grids, combo, strict=True)))
            for shape, classes in inputs:
                build_model(entry["family"], config, shape, classes)
    except (ValidationError, MinarchError):
        return False
    return True

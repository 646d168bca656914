"""Read a study from a YAML file or a built-in name, failing with one clear line."""

from __future__ import annotations

import re
from collections.abc import Sequence
from importlib import resources
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from minarch.errors import SpecError
from minarch.spec.messages import format_validation_error
from minarch.spec.schema import StudySpec

MAX_STUDY_CHARS = 1_000_000  # a study file is a few kilobytes
MAX_STUDY_VALUES = 100_000  # YAML nodes, every alias expanded


def builtin_studies() -> list[str]:
    """Names of the studies shipped inside the package (``minarch run NAME``)."""
    folder = resources.files("minarch") / "studies"
    return sorted(
        p.name.removesuffix(".yaml") for p in folder.iterdir() if p.name.endswith(".yaml")
    )


def read_study_text(source: str | Path) -> tuple[str, str]:
    """(text, where) of a study file path or a built-in study name."""
    path = Path(source)
    if path.is_file():
        try:
            with path.open(encoding="utf-8") as file:  # enough to tell it is too long
                return file.read(MAX_STUDY_CHARS + 1), str(path)
        except (OSError, UnicodeDecodeError) as exc:
            raise SpecError(f"{path}: cannot read study file ({exc})") from None
    if str(source) in builtin_studies():
        packaged = resources.files("minarch") / "studies" / f"{source}.yaml"
        return packaged.read_text(encoding="utf-8"), f"built-in study '{source}'"
    raise SpecError(
        f"{source}: no such study file (built-in studies: {', '.join(builtin_studies())})"
    )


def parse_study(text: str, where: str = "<study>") -> StudySpec:
    """Validate study YAML text; errors name the file and the field."""
    data = _load_yaml(text, where)
    if not isinstance(data, dict):
        raise SpecError(f"{where}: a study file must be a YAML mapping with name, datasets, models")
    try:
        return StudySpec.model_validate(data)
    except ValidationError as exc:
        raise SpecError(f"{where}: {format_validation_error(exc)}") from None


def _load_yaml(text: str, where: str) -> Any:
    """``yaml.safe_load`` in bounded time and memory, whatever the text.

    A few kilobytes of YAML aliases can stand for billions of values, so the
    node graph is measured with every alias expanded before anything is built.
    """
    if len(text) > MAX_STUDY_CHARS:
        raise SpecError(
            f"{where}: longer than a study file may be ({MAX_STUDY_CHARS:,} characters)"
        )
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        if node is not None and _expanded_size(node, {}) > MAX_STUDY_VALUES:
            raise SpecError(
                f"{where}: more than {MAX_STUDY_VALUES:,} values once YAML aliases are expanded"
            )
        return None if node is None else loader.construct_document(node)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise SpecError(f"{where}: invalid YAML{at}: {problem}") from None
    except RecursionError:
        raise SpecError(f"{where}: invalid YAML: nested too deeply") from None
    except ValueError as exc:  # a 5000-digit integer, a 13th month
        raise SpecError(f"{where}: invalid YAML: {str(exc).split(';')[0]}") from None
    finally:
        loader.dispose()


def _expanded_size(node: yaml.Node, sizes: dict[int, int]) -> int:
    """Values in ``node`` with aliases expanded, capped just above the limit.

    ``sizes`` remembers each node (an alias is the same node object again); a
    node met again while it is being measured is recursive, so unbounded.
    """
    key = id(node)
    if key in sizes:
        return sizes[key]
    sizes[key] = MAX_STUDY_VALUES + 1
    children = node.value if isinstance(node, yaml.SequenceNode) else []
    if isinstance(node, yaml.MappingNode):
        children = [child for pair in node.value for child in pair]
    size = 1
    for child in children:
        size = min(size + _expanded_size(child, sizes), MAX_STUDY_VALUES + 1)
    sizes[key] = size
    return size


def load_study(source: str | Path, overrides: Sequence[str] = ()) -> tuple[StudySpec, str]:
    """The validated study and its YAML text (stored with the runs for traceability).

    ``overrides`` ("training.epochs=3") change the file's values before
    validation (``apply_overrides``); the text is then the overridden YAML.
    """
    text, where = read_study_text(source)
    if overrides:
        text = apply_overrides(text, overrides, where)
        where = f"{where} with {', '.join(overrides)}"
    return parse_study(text, where), text


class _ValueLoader(yaml.SafeLoader):
    """YAML for override values, where 1e-4 means the number (YAML 1.1 reads a string)."""


_ValueLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)[eE][-+]?[0-9]+$"),
    list("-+0123456789."),
)


def apply_overrides(text: str, overrides: Sequence[str], where: str) -> str:
    """Study YAML ``text`` with each ``PATH=VALUE`` of ``overrides`` applied, as YAML text.

    The file must be a valid study first. A path runs through mappings by key
    and through lists by index (``models.0.width``); keys a file leaves at
    their default are created. Values are YAML (``3``, ``[0, 1]``, ``1e-4``,
    ``{log10: {start: -3, stop: -1, step: 0.5}}``). The result is validated by
    ``parse_study`` like any file, and lists the overrides in a comment.
    """
    parse_study(text, where)
    data = yaml.safe_load(text)
    for item in overrides:
        path, equals, raw = item.partition("=")
        keys = path.strip().split(".")
        if not equals or not all(keys):
            raise SpecError(f"override {item!r}: expected PATH=VALUE, e.g. training.epochs=3")
        try:
            value = yaml.load(raw, Loader=_ValueLoader)  # a SafeLoader
        except yaml.YAMLError as exc:
            problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
            raise SpecError(f"override {item!r}: the value is not valid YAML ({problem})") from None
        _assign(data, keys, value, item)
    comment = "".join(f"# override: {item}\n" for item in overrides)
    return comment + yaml.safe_dump(data, sort_keys=False, allow_unicode=True)


def _assign(data: dict[str, Any], keys: list[str], value: Any, item: str) -> None:
    """Set ``data[keys[0]][keys[1]]... = value``, creating missing mappings on the way."""
    node: Any = data
    for depth, key in enumerate(keys):
        here = ".".join(keys[: depth + 1])
        if isinstance(node, list):
            if not key.isdigit() or int(key) >= len(node):
                raise SpecError(
                    f"override {item!r}: {here}: expected a list index below {len(node)}"
                )
            index: Any = int(key)
        elif isinstance(node, dict):
            index = key
            if depth < len(keys) - 1 and node.get(key) is None:
                node[key] = {}
        else:
            parent = ".".join(keys[:depth])
            raise SpecError(f"override {item!r}: {parent} is {node!r}, not a mapping or list")
        if depth == len(keys) - 1:
            node[index] = value
        else:
            node = node[index]

"""Read a study from a YAML file or a built-in name, failing with one clear line."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import yaml
from pydantic import ValidationError

from minarch.errors import SpecError
from minarch.spec.messages import format_validation_error
from minarch.spec.schema import StudySpec


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
            return path.read_text(encoding="utf-8"), str(path)
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
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise SpecError(f"{where}: invalid YAML{at}: {problem}") from None
    if not isinstance(data, dict):
        raise SpecError(f"{where}: a study file must be a YAML mapping with name, datasets, models")
    try:
        return StudySpec.model_validate(data)
    except ValidationError as exc:
        raise SpecError(f"{where}: {format_validation_error(exc)}") from None


def load_study(source: str | Path) -> tuple[StudySpec, str]:
    """The validated study and its YAML text (stored with the runs for traceability)."""
    text, where = read_study_text(source)
    return parse_study(text, where), text

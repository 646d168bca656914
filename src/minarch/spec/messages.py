"""Turn pydantic's validation errors into one line that names the field.

Users see ``training.lr[1]: expected a number > 0, got -1``, not pydantic's
multi-branch report of every union member it tried.
"""

from __future__ import annotations

import reprlib
from collections.abc import Sequence
from typing import Any

from pydantic import ValidationError

# Errors that only say "this union branch has another type"; a more specific
# error from a branch of the right type is more useful.
_WRONG_BRANCH = {
    "float_type", "float_parsing", "int_type", "int_parsing", "string_type",
    "list_type", "tuple_type", "model_type", "dict_type", "bool_type", "bool_parsing",
    "literal_error",
}  # fmt: skip

_TYPE_WORDS = {
    "float_type": "a number", "float_parsing": "a number", "int_type": "an integer",
    "int_parsing": "an integer", "int_from_float": "an integer", "string_type": "text",
    "bool_type": "true or false", "bool_parsing": "true or false", "list_type": "a list",
    "tuple_type": "a list", "dict_type": "a mapping", "model_type": "a mapping",
    "finite_number": "a finite number",
}  # fmt: skip

_COMPARISONS = {
    "greater_than": ("gt", ">"), "greater_than_equal": ("ge", ">="),
    "less_than": ("lt", "<"), "less_than_equal": ("le", "<="),
}  # fmt: skip


_EXCERPT = reprlib.Repr()
_EXCERPT.maxstring = _EXCERPT.maxother = _EXCERPT.maxlong = 40
_EXCERPT.maxlist = _EXCERPT.maxtuple = _EXCERPT.maxdict = 5
_EXCERPT.maxlevel = 1


def excerpt(value: Any) -> str:
    """A bounded ``repr``: a huge or deeply shared bad value never floods a message."""
    return _EXCERPT.repr(value)


def excerpt_name(name: Any) -> str:
    """A field name as written, or an excerpt of it when it is too long to be one."""
    text = str(name)
    return text if len(text) <= _EXCERPT.maxstring else excerpt(text)


def field_path(loc: Sequence[Any]) -> str:
    """``("models", 1, "width")`` -> ``models[1].width``; union branch tags dropped."""
    path = ""
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        elif _is_field_name(part):
            path += f".{excerpt_name(part)}" if path else excerpt_name(part)
    return path


def _is_field_name(part: str) -> bool:
    return part.isidentifier() and part.islower() and part not in {"str", "int", "float", "bool"}


def describe_error(error: dict[str, Any]) -> str:
    """The 'expected ..., got ...' half of a message for one pydantic error."""
    kind, ctx = error["type"], error.get("ctx") or {}
    if kind == "missing":
        return "required field is missing"
    if kind == "extra_forbidden":
        return "unknown field"
    if kind in _COMPARISONS:
        key, symbol = _COMPARISONS[kind]
        bound = ctx[key]  # an int bound is shown exactly (2**63 - 1, not 9.22337e+18)
        expected = f"a number {symbol} {f'{bound:g}' if isinstance(bound, float) else bound}"
    elif kind == "too_short":
        expected = "a non-empty list (an empty grid has no runs)"
    elif kind == "literal_error":
        expected = f"one of {ctx['expected']}"
    elif kind in _TYPE_WORDS:
        expected = _TYPE_WORDS[kind]
    else:
        message = error["msg"].removeprefix("Value error, ")
        return f"{message[:1].lower()}{message[1:]}, got {excerpt(error['input'])}"
    return f"expected {expected}, got {excerpt(error['input'])}"


def format_validation_error(error: ValidationError, prefix: Sequence[Any] = ()) -> str:
    """One line for the most specific error, prefixed by where the value lives."""
    errors = error.errors()
    specific = [e for e in errors if e["type"] not in _WRONG_BRANCH]
    chosen = max(specific or errors, key=lambda e: len(e["loc"]))
    return f"{field_path([*prefix, *chosen['loc']])}: {describe_error(chosen)}"

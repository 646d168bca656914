"""Run identity: a hash of the canonical configuration.

Fields still at their defaults are left out before hashing (as open_lth
does), so adding a setting with a default that keeps the old behaviour
never renames existing runs. Floats are rounded to 12 significant digits so
``0.1``, ``1e-1`` and ``10**-1.0`` name the same run.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any


def canonical_json(value: Any) -> str:
    return json.dumps(_round_floats(value), sort_keys=True, separators=(",", ":"))


def digest(value: Any) -> str:
    """16 hex digits of the SHA-256 of the canonical JSON form."""
    return hashlib.sha256(canonical_json(value).encode()).hexdigest()[:16]


def _round_floats(value: Any) -> Any:
    if isinstance(value, float):
        return float(f"{value:.12g}")
    if isinstance(value, dict):
        return {k: _round_floats(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_round_floats(v) for v in value]
    return value

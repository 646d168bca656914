"""The one check shared by everything that reads the store's run tables."""

from __future__ import annotations

import pandas as pd

from minarch.errors import MinarchError


def require_columns(frame: pd.DataFrame, columns: list[str], what: str) -> pd.DataFrame:
    """``frame`` with the columns a reader needs; an empty frame may come without any."""
    if frame.empty:
        return frame.reindex(columns=list(dict.fromkeys([*frame.columns, *columns])))
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise MinarchError(
            f"{what} lacks column(s) {', '.join(missing)}; expected {', '.join(columns)}"
        )
    return frame

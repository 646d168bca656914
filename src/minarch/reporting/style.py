"""One look for every figure and table, so figures from different sections match."""

from __future__ import annotations

import math
import zlib
from collections.abc import Callable, Iterable

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import plotly.io as pio

from minarch.data import dataset_info
from minarch.errors import DataError

FONT = "Arial, Helvetica, Liberation Sans, sans-serif"
"""System fonts only: the report must open without a network."""

# Okabe-Ito colours (readable by colour-blind readers), fixed per known family
# so a family has the same colour in every figure and every report.
FAMILY_COLORS = {
    "mlp": "#0072B2",
    "cnn": "#D55E00",
    "vit": "#009E73",
    "resnet_cifar": "#CC79A7",
    "mobilenetv2_cifar": "#E69F00",
    "resnet50": "#56B4E9",
}
_OTHER_COLORS = ("#332288", "#117733", "#882255", "#999933", "#44AA99", "#AA4499", "#661100")
DIVERGED_SYMBOL = "x"
TEMPLATE = "plotly_white"


def dataset_title(name: object) -> str:
    """What the report calls a dataset: its registered title ("CIFAR-10 (JPEG q75)",
    so a re-encoding is never passed off as the original), else its name as stored."""
    try:
        return dataset_info(str(name)).title
    except DataError:  # a dataset this installation does not know (a plugin's, a renamed one)
        return str(name)


def family_color(family: object) -> str:
    """The family's fixed colour; unknown families get a stable one from their name."""
    name = str(family)
    if name in FAMILY_COLORS:
        return FAMILY_COLORS[name]
    return _OTHER_COLORS[zlib.crc32(name.encode()) % len(_OTHER_COLORS)]


def styled(fig: go.Figure, *, title: str, x_title: str, y_title: str) -> go.Figure:
    """Apply the shared template, fonts and axis titles (titles must be escaped)."""
    use_template(fig, TEMPLATE)
    fig.update_layout(
        title={"text": title, "x": 0.01, "xanchor": "left"},
        font={"family": FONT, "size": 14, "color": "#222"},
        legend={"title": {"text": "Family"}, "itemsizing": "constant"},
        margin={"l": 70, "r": 20, "t": 60, "b": 60},
        hoverlabel={"font": {"family": FONT}},
    )
    axis = {"showline": True, "linecolor": "#444", "mirror": True, "ticks": "outside"}
    fig.update_xaxes(title_text=x_title, **axis)
    fig.update_yaxes(title_text=y_title, **axis)
    return fig


def use_template(fig: go.Figure, name: str) -> None:
    """Give ``fig`` plotly's registered template ``name``, unvalidated.

    A template assigned by name is deep-copied and validated whole (the defaults of
    every trace type): a quarter of a report's section time. Registered templates
    are valid, and plotly assigns its default one unvalidated, as here.
    """
    validate, fig.layout._validate = fig.layout._validate, False
    try:
        fig.layout.template = pio.templates[name]
    finally:
        fig.layout._validate = validate


def chance_line(fig: go.Figure, chance: float, **where: str) -> None:
    """A dotted line at chance accuracy (%): where a model that learned nothing sits.

    ``where`` is ``row="all", col="all"`` for figures with panels; no line when
    chance is unknown (0).
    """
    if not chance > 0:
        return
    fig.add_hline(
        y=100 * chance,
        line={"color": "#777", "dash": "dot", "width": 1},
        annotation_text=f"chance ({100 * chance:.3g} %)",
        annotation_position="bottom right",
        annotation_font={"color": "#555", "size": 12},
        **where,
    )


def percent(fraction: float, std: float = math.nan) -> str:
    """Accuracy as the report shows it: a percentage, with ± std when there is one."""
    if not math.isfinite(fraction):
        return "—"
    if not math.isfinite(std):
        return f"{100 * fraction:.2f}"
    return f"{100 * fraction:.2f} ± {100 * std:.2f}"


def whole(value: object) -> str:
    """A value as text, whole numbers without ".0" (a size field made float by a gap: 128)."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def number(value: float) -> str:
    """A learning rate or weight decay as a study file writes it: 0.003, 0.0005, 1e-5, 0 (off)."""
    if not math.isfinite(value):
        return "—"
    if value == 0:
        return "0 (off)"
    return f"{value:.3g}".replace("e-0", "e-").replace("e+0", "e+")


def log_axis(
    fig: go.Figure,
    values: Iterable[float],
    *,
    axis: str = "x",
    label: Callable[[float], str] | None = None,
    **where: object,
) -> None:
    """Make an axis logarithmic with labels only where a reader needs them.

    Plotly labels 2, 3, 5 ... between decades when a log axis spans little;
    here ticks are the decades the data spans, else 1-2-5 steps, else the
    data's own values, whichever first puts two labels on the data; labelled
    by ``label`` (``count`` by default).
    """
    finite = sorted({float(v) for v in values if math.isfinite(v) and v > 0})
    update = fig.update_xaxes if axis == "x" else fig.update_yaxes
    if not finite:
        update(type="log", **where)
        return
    low, high = math.floor(math.log10(finite[0])), math.ceil(math.log10(finite[-1]))
    decades = [10.0**k for k in range(low, high + 1)]
    steps = [m * 10.0**k for k in range(low, high + 1) for m in (1, 2, 5)]
    for ticks in (decades, steps, finite[:: -(-len(finite) // 6)]):
        if sum(finite[0] <= t <= finite[-1] for t in ticks) >= 2:
            break
    show = label or count
    update(type="log", tickvals=ticks, ticktext=[show(t) for t in ticks], **where)


def epoch_axis(fig: go.Figure, last_epoch: float, **where: object) -> None:
    """Whole epochs on the x axis: every epoch up to 10, then round steps."""
    step = max(1, math.ceil(last_epoch / 10)) if math.isfinite(last_epoch) else 1
    fig.update_xaxes(tickmode="linear", tick0=0, dtick=step, **where)


def model_colors(table: pd.DataFrame) -> dict[tuple[str, str, str], str]:
    """A colour per (dataset, family, model): the family's colour, lighter for smaller models.

    So a figure coloured by model still reads by family, size runs light to
    dark, and a family's largest model has exactly the family's colour.
    """
    return {
        key: _tint(family_color(key[1]), 0.6 * (1 - size))
        for key, size in _size_ranks(table).items()
    }


def model_widths(table: pd.DataFrame) -> dict[tuple[str, str, str], float]:
    """A line width per (dataset, family, model): thin for small models, thick for large.

    With ``model_colors`` a model's curve differs from its family's others in
    two ways, not only by a shade of one colour.
    """
    return {key: 1.0 + 2.5 * size for key, size in _size_ranks(table).items()}


def _size_ranks(table: pd.DataFrame) -> dict[tuple[str, str, str], float]:
    """Each (dataset, family, model) by size within its family: 0 the smallest, 1 the largest."""
    ranks = {}
    keys = ["dataset", "family", "model"]
    models = table.drop_duplicates(keys).sort_values([*keys[:2], "params", "model"])
    for _, group in models.groupby(["dataset", "family"], sort=False):
        sizes = np.linspace(0.0, 1.0, len(group)) if len(group) > 1 else [1.0]
        for key, size in zip(group[keys].itertuples(index=False), sizes, strict=True):
            ranks[tuple(key)] = float(size)
    return ranks


def _tint(color: str, amount: float) -> str:
    """``color`` mixed with white by ``amount`` (0: unchanged)."""
    if amount == 0:
        return color
    rgb = [int(color[i : i + 2], 16) for i in (1, 3, 5)]
    mixed = [round(v + (255 - v) * amount) for v in rgb]
    return "#" + "".join(f"{v:02x}" for v in mixed)


def count(value: float) -> str:
    """Large counts (parameters, FLOPs) compactly: 12.3k, 4.56M, 7.89G."""
    if not math.isfinite(value):
        return "—"
    for unit, size in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(value) >= size:
            return f"{value / size:.3g}{unit}"
    return f"{value:.0f}"

"""One look for every figure and table, so figures from different sections match."""

from __future__ import annotations

import math
import zlib

import plotly.graph_objects as go

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


def family_color(family: object) -> str:
    """The family's fixed colour; unknown families get a stable one from their name."""
    name = str(family)
    if name in FAMILY_COLORS:
        return FAMILY_COLORS[name]
    return _OTHER_COLORS[zlib.crc32(name.encode()) % len(_OTHER_COLORS)]


def styled(fig: go.Figure, *, title: str, x_title: str, y_title: str) -> go.Figure:
    """Apply the shared template, fonts and axis titles (titles must be escaped)."""
    fig.update_layout(
        template="plotly_white",
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


def log10(value: float) -> str:
    """Learning rates and weight decays are shown as log10 (0 stays 0: 'off')."""
    if not math.isfinite(value) or value < 0:
        return "—"
    if value == 0:
        return "0 (off)"
    return f"{math.log10(value):.2f}"


def number(value: float) -> str:
    """A learning rate or weight decay as the study file writes it: 0.003, 0.0005, 1e-5."""
    if not math.isfinite(value):
        return "—"
    return f"{value:.3g}".replace("e-0", "e-").replace("e+0", "e+")


def count(value: float) -> str:
    """Large counts (parameters, FLOPs) compactly: 12.3k, 4.56M, 7.89G."""
    if not math.isfinite(value):
        return "—"
    for unit, size in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(value) >= size:
            return f"{value / size:.3g}{unit}"
    return f"{value:.0f}"

"""Shared figure helpers: readable token labels, colours and the empty-figure placeholder."""

from __future__ import annotations

import math
import unicodedata
from typing import Any, Callable, Sequence

import plotly.graph_objects as go

TokenText = Callable[[int], str]
CHOSEN = "#d62728"
CANDIDATE = "#1f77b4"
FORCED = "#7f7f7f"
PATH = "#ff7f0e"
REROUTED = "#9467bd"
MARGIN = {"l": 50, "r": 20, "t": 40, "b": 40}
_AXIS = {"gridcolor": "#ebebeb", "zerolinecolor": "#d5d5d5", "linecolor": "#d5d5d5", "automargin": True}
# A small white template: plotly's named templates are deep-copied on every use (about 50 ms).
LIGHT_TEMPLATE = {"layout": {"plot_bgcolor": "white", "paper_bgcolor": "white", "font": {"color": "#2a3f5f"},
                             "hoverlabel": {"align": "left"}, "xaxis": _AXIS, "yaxis": _AXIS,
                             "colorway": ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b"]}}


EXACT = ".9~g"  # d3 format that writes a float32 back exactly (9 significant digits, trailing zeros cut)
HEADROOM = 0.25  # room above the tallest bar for its label, as a share of the axis span
CUT_SPREAD = 0.05  # an axis is cut only when the values spread over less than this share of the largest


def difference_range(values: Sequence[float]) -> list[float]:
    """A value axis on which the differences between ``values`` show: it starts at 0 unless that would
    squeeze them, that is when they spread over less than ``CUT_SPREAD`` of the largest (energies near
    5e4 differing by a few units); then it starts as far below the lowest value as they spread, so the
    lowest bar keeps a visible length and bar lengths order like the values."""
    finite = [v for v in values if math.isfinite(v)]
    if not finite:
        return [0.0, 1.0]
    lo, hi = min(finite), max(finite)
    if lo >= 0 and hi - lo >= CUT_SPREAD * hi:
        floor = 0.0
    else:
        pad = hi - lo if hi > lo else max(abs(hi), 1.0)
        floor = max(0.0, lo - pad) if lo >= 0 else lo - pad
    top = hi + HEADROOM * (hi - floor)
    return [floor, top if top > floor else floor + 1.0]


def axis_note(axis: list[float]) -> str:
    """'' when a value axis starts at 0, else where it starts (a cut axis must say so)."""
    return "" if axis[0] == 0 else f" (axis from {axis[0]:,.6g}, not 0)"


def relative_texts(values: Sequence[float], best: float) -> list[str]:
    """Each value minus ``best`` with two decimals ("best" for the best itself, "" where there is none):
    the differences that matter when every value is near 5e4. Float32 inputs subtract exactly in float."""
    return ["" if not math.isfinite(v) else "best" if v == best else f"{v - best:.2f}".replace("-", "−")
            for v in values]


def _byte_alphabet() -> dict[str, int]:
    """Byte-level BPE's printable stand-in for each byte (GPT-2's scheme), inverted: character -> byte."""
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    chars = {b: chr(b) for b in printable}
    spare = 0
    for b in range(256):
        if b not in chars:
            chars[b] = chr(256 + spare)
            spare += 1
    return {c: b for b, c in chars.items()} | {" ": 0x20}


_BYTE_OF = _byte_alphabet()


def decode_bytes(text: str) -> str:
    """The text a byte-level token stands for (``Ã©`` -> ``é``); the token itself when it is not
    whole UTF-8 or would decode to control characters (then it is a character model's own text)."""
    try:
        decoded = bytes(_BYTE_OF[c] for c in text).decode("utf-8")
    except (KeyError, UnicodeDecodeError):
        return text
    if any(unicodedata.category(c) == "Cc" and c not in "\n\t" for c in decoded):
        return text
    return decoded


def show_token(text: str) -> str:
    """Token text decoded from byte-level glyphs, invisible characters made visible (space as ␣, newline as ⏎)."""
    shown = decode_bytes(text).replace(" ", "␣").replace("\n", "⏎").replace("\t", "⇥")
    return shown if shown else "∅"


def token_label(node: int, token: TokenText) -> str:
    """'text #id': unique even when two nodes print alike."""
    return f"{show_token(token(node))} #{node}"


def token_hover(node: int, token: TokenText) -> str:
    """A token's label for hover texts, with the raw token when the shown text was decoded from it."""
    raw = token(node)
    return token_label(node, token) + (f" (raw token {raw!r})" if decode_bytes(raw) != raw else "")


def base_layout(fig: go.Figure, title: str, height: int = 320) -> go.Figure:
    """Common margins, template and title."""
    fig.update_layout(title={"text": title, "x": 0.01, "font": {"size": 14}}, template=LIGHT_TEMPLATE,
                      margin=MARGIN, height=height)
    return fig


def layout(title: str, height: int = 320, **axes: Any) -> dict[str, Any]:
    """The layout ``base_layout`` gives, as a plain dict: for figures built per trace in a hurry
    (plotly's figure objects validate every property, about 0.1 s a figure)."""
    return {"template": LIGHT_TEMPLATE, "title": {"text": title, "x": 0.01, "font": {"size": 14}},
            "margin": MARGIN, "height": height, **axes}


def placeholder(message: str, height: int = 240) -> go.Figure:
    """An empty figure that says why it is empty."""
    note = {"text": message, "showarrow": False, "x": 0.5, "y": 0.5, "xref": "paper", "yref": "paper"}
    # one dict, validated once: pages build one per layout and per empty answer (base_layout after the
    # annotation and axes took ~60 ms)
    return go.Figure(layout={**layout("", height), "annotations": [note], "xaxis": {"visible": False},
                             "yaxis": {"visible": False}})

"""Layout pieces shared by the pages: help, messages, graphs with export, controls."""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from typing import Any

from dash import dcc, html

from brillm_core.decoding import DECODING, NUMBERS, Setting

from .state import UNSET, number_text, view_range


@dataclass(frozen=True)
class FrameIds:
    """The ids of the components a page with a background job is built from, made once from its prefix
    (``frame_ids``) and used by the layout and the callbacks alike, so that they cannot drift apart."""

    url: str
    state: str
    request: str
    meta: str
    model: str
    prompt: str
    go: str
    cancel: str
    note: str
    msg: str
    msg_state: str
    progress: str
    status: str
    progress_row: str
    download: str
    slider: str
    play: str
    prev: str
    next: str
    interval: str
    step_label: str
    views: str
    steps: str
    chip: str
    csv: str
    json: str


def field_id(prefix: str, field: str) -> str:
    """The id of the control that shows a page's own state field."""
    return f"{prefix}-{field}"


def setting_id(prefix: str, name: str) -> str:
    """The id of the form's control of a decoding setting (or another state field): ``sp-max-new-tokens``."""
    return field_id(prefix, name.replace("_", "-"))


def frame_ids(prefix: str) -> FrameIds:
    """A page's frame ids: ``{prefix}-{part}`` ('_' in a part's name written '-')."""
    return FrameIds(**{f.name: f"{prefix}-{f.name.replace('_', '-')}" for f in fields(FrameIds)})


def graph_config(filename: str) -> dict[str, Any]:
    """dcc.Graph config: no plotly logo or cloud button; the camera button saves SVG."""
    return {"displaylogo": False, "showSendToCloud": False,
            "toImageButtonOptions": {"format": "svg", "filename": filename}}


def figure_panel(graph_id: str, title: str, config: dict[str, Any] | None = None, **graph_kwargs: Any) -> html.Div:
    """A graph with PNG and SVG export buttons (handled by assets/explorer.js); ``config`` adds to
    the plotly config (for example wheel zoom)."""
    buttons = [
        html.Button(fmt.upper(), className="export-image", title=f"Download {title} as {fmt.upper()}",
                    **{"data-graph": graph_id, "data-format": fmt, "data-filename": graph_id})
        for fmt in ("png", "svg")
    ]
    return html.Div([
        html.Div(buttons, className="figure-tools"),
        dcc.Graph(id=graph_id, config={**graph_config(graph_id), **(config or {})}, **graph_kwargs),
    ], className="figure-panel")


def help_box(text: list[Any]) -> html.Details:
    """A collapsible 'How to read this view'."""
    return html.Details([html.Summary("How to read this view"), html.Div(text, className="help-text")],
                        className="help")


def message_box(component_id: str) -> html.Div:
    """Where a page shows warnings and errors."""
    return html.Div(id=component_id, className="messages", role="status")


def messages(errors: list[str], warnings: list[str] | None = None) -> list[html.Div]:
    """Message divs: errors in red, warnings in amber."""
    return [html.Div(e, className="msg error") for e in errors] + [
        html.Div(w, className="msg warning") for w in warnings or []
    ]


def labelled(label: str, control: Any, help_text: str | None = None) -> html.Label:
    """A control with its label above (and ``help_text`` on hover)."""
    return html.Label([html.Span(label), control], className="field", title=help_text)


def number_box(component_id: str, **kwargs: Any) -> dcc.Input:
    """A box for a number, typed as text: dcc.Input's number type keeps the last typed value apart from
    one a callback writes, so typing that value again after the page set another (after Cancel, say)
    sent nothing. The state validator parses, clamps and reports what is typed."""
    return dcc.Input(id=component_id, type="text", inputMode="numeric", className="number", **kwargs)


def model_picker(prefix: str) -> html.Label:
    """The checkpoint dropdown (options filled by the page)."""
    ids = frame_ids(prefix)
    return labelled("Checkpoint", dcc.Dropdown(id=ids.model, clearable=False, className="model-picker"))


def prompt_row(prefix: str, button: str = "Generate") -> html.Div:
    """Checkpoint picker, prompt box and the go button. The box and button start disabled: the
    page enables them once the link's state is applied, so that state never overwrites typing."""
    ids = frame_ids(prefix)
    return html.Div([
        model_picker(prefix),
        labelled("Prompt", dcc.Input(id=ids.prompt, type="text", debounce=False, className="prompt-input",
                                     placeholder="type a prompt, press Enter", disabled=True)),
        html.Button(button, id=ids.go, className="go", disabled=True),
    ], className="controls")


def setting_control(prefix: str, setting: Setting) -> Any:
    """The form's control of a decoding setting, labelled with what it accepts (the state validator clamps an
    out-of-range value and says so; the browser would drop it silently), its help on hover."""
    control_id = setting_id(prefix, setting.name)
    if setting.kind is bool and setting.choices:
        return labelled(setting.label, dcc.RadioItems(id=control_id, inline=True, options=[
            {"label": word, "value": word} for word in setting.choices]), setting.help)
    if setting.kind is bool:
        return html.Span(dcc.Checklist(id=control_id, options=[{"label": f" {setting.label}",
                                                                 "value": setting.name}]), title=setting.help)
    if setting.kind is NUMBERS:
        return labelled(f"{setting.label} (empty = {setting.unset})",
                        dcc.Input(id=control_id, type="text", className="wide"), setting.help)
    low, high = view_range(setting)
    words = f"{UNSET} = {setting.unset}" if setting.default is None else setting.range_text(low, high)
    # wide enough for the largest value it takes (the seed's sixteen digits), whatever its label's width
    digits = len(str(int(high))) if setting.kind is int and high != math.inf else 9
    return labelled(f"{setting.label} ({words})", number_box(control_id, style={"minWidth": f"{digits + 3}ch"}),
                    setting.help)


def form_value(setting: Setting, value: Any) -> Any:
    """What a setting's control shows for a state's value."""
    if setting.kind is bool:
        return (setting.choices[0] if value else setting.choices[1]) if setting.choices else (
            [setting.name] if value else [])
    if setting.kind is NUMBERS:
        return ",".join(number_text(v) for v in value)
    return value


def typed_value(setting: Setting, shown: Any) -> Any:
    """The state's raw value from what a setting's control holds (the state validator checks it)."""
    if setting.kind is bool:
        return shown == setting.choices[0] if setting.choices else bool(shown)
    if setting.kind is NUMBERS:
        return shown or ""  # an emptied box: no numbers, the default signal
    return shown


def settings_panel(prefix: str) -> html.Details:
    """The decoding settings, one control for each declared setting."""
    return html.Details([
        html.Summary("Decoding settings"),
        html.Div([setting_control(prefix, s) for s in DECODING], className="settings"),
    ], className="settings-box")


def step_controls(prefix: str) -> html.Div:
    """Previous / play-pause / next, a slider and a label; ←/→ keys click prev/next."""
    ids = frame_ids(prefix)
    return html.Div([
        html.Button("◀", id=ids.prev, className="step-prev", title="previous step (←)"),
        html.Button("▶ play", id=ids.play, className="step-play", title="play / pause"),
        html.Button("▶", id=ids.next, className="step-next", title="next step (→)"),
        html.Div(dcc.Slider(id=ids.slider, min=0, max=1, step=1, value=0, marks=None,
                            updatemode="drag"), className="step-slider"),
        html.Span(id=ids.step_label, className="step-label"),
        dcc.Interval(id=ids.interval, interval=700, disabled=True),
    ], className="step-controls")


def progress_row(prefix: str) -> html.Div:
    """Progress bar, status text and a cancel button for a background job."""
    ids = frame_ids(prefix)
    return html.Div([
        html.Progress(id=ids.progress, value="0", max="3", className="progress"),
        html.Span(id=ids.status, className="status"),
        html.Button("Cancel", id=ids.cancel, className="cancel", disabled=True),
    ], id=ids.progress_row, className="progress-row")


def export_row(prefix: str, labels: list[tuple[str, str]]) -> html.Div:
    """Data export buttons (id suffix, label) and their download component."""
    ids = frame_ids(prefix)
    return html.Div([*(html.Button(label, id=f"{prefix}-{suffix}", className="export-data")
                       for suffix, label in labels), dcc.Download(id=ids.download)],
                    className="export-row")

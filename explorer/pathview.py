"""Machinery shared by the pages that show a path: URL hash <-> state, controls, trace job.

Each such page holds four page-local components: ``{p}-url`` (the hash), ``{p}-state``
(the ViewState), ``{p}-request`` (the part that fixes the trace) and ``{p}-meta`` (where
the trace job reports). One reducer callback turns every user event into a new state
and writes the hash; the trace runs as a background callback (progress, cancel) when the
request changes or the user presses the go button; pages render from ``{p}-state`` and
``{p}-meta``. A request whose result is cached already (a reopened link) is answered by the
reducer itself, straight into ``{p}-meta``, with no job (``PathPage.cached``); a page whose render
is a ``Render`` gets it drawn in that same answer (one round trip for a reopened link). Pages with
steps step in the browser (see ``stepping``) and keep the step in their slider: the reducer
only reads it, so stepping sends no request.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import pandas as pd

from dash import Dash, Input, Output, State, ctx, dcc, html, no_update

from brillm_core import BriLLMError, Checkpoint
from brillm_core.decoding import SETTINGS as DECLARED

from . import components as ui
from . import stepping
from .compute import PathResult, path_for, path_key
from .context import Services
from .registry import Identity
from .request import DECODING_NAMES, Request, ask
from .state import DEFAULT, ViewState, export_document, from_dict, from_hash, to_dict, to_hash

Meta = dict[str, Any]
EMPTY_PROMPT = "The prompt is empty: type some text, then press the button again."
HOLD = "hold"  # a request entry: not computed (a prompt mostly unknown to a checkpoint switched to)
MOSTLY_UNKNOWN = 0.5  # the share of a prompt's tokens unknown to a checkpoint beyond which a switch holds it
FORM = ("prompt", *DECODING_NAMES)  # the ViewState fields the form shows, each in control ``setting_id``
# ViewState fields set by the form, the model picker and re-routes: what a result is computed from
SETTINGS = ("model", "model_b", *FORM, "reroutes")


@dataclass(frozen=True)
class Event:
    """A page-specific input that changes the state, and optionally a control shown from it."""

    input: Input
    apply: Callable[[ViewState, Any, Meta], ViewState]
    show: tuple[Output, Callable[[ViewState], Any]] | None = None


def stores(prefix: str) -> list[Any]:
    """The page-local URL and stores."""
    ids = ui.frame_ids(prefix)
    return [dcc.Location(id=ids.url, refresh=False), dcc.Store(id=ids.state),
            dcc.Store(id=ids.request), dcc.Store(id=ids.meta)]


def render_id(prefix: str) -> str:
    """The store that passes a page's new metas to its ``Render``, except those the reducer drew itself."""
    return f"{prefix}-to-render"


def render_store(prefix: str) -> dcc.Store:
    """The page-local store of ``render_id``."""
    return dcc.Store(id=render_id(prefix))


def n_steps(meta: Meta | None) -> int:
    """Steps of the current trace (0 when there is none)."""
    return int(meta.get("n_steps", 0)) if meta and not meta.get("error") else 0


def clamp_step(state: ViewState, meta: Meta | None) -> int:
    """The state's step within the trace."""
    return max(0, min(state.step, n_steps(meta) - 1))


def resolve_model(state: ViewState, names: list[str], preferred: str = "") -> tuple[ViewState, list[str]]:
    """Keep an allow-listed model name; otherwise fall back to ``preferred`` if listed, else the first
    (with a message when the link named something else)."""
    if state.model in names:
        return state, []
    fallback = preferred if preferred in names else (names[0] if names else "")
    if not state.model:
        return state.with_(model=fallback), []
    shown = state.model if len(state.model) <= 60 else state.model[:60] + "..."
    return state.with_(model=fallback), [
        f"The link names checkpoint {shown!r}, which is not in the configured model folders; "
        f"showing {fallback or 'nothing'} instead. Available: {', '.join(names) or 'none'}."
    ]


def resolve_other(name: str, model: str, names: list[str], label: str) -> tuple[str, list[str]]:
    """An allow-listed name for a further checkpoint: as asked, else the first listed one other than
    ``model`` (with a message when the link named something else)."""
    if name in names:
        return name, []
    other = next((n for n in names if n != model), model)
    if not name:
        return other, []
    shown = name if len(name) <= 60 else name[:60] + "..."
    return other, [f"The link names {label} {shown!r}, which is not in the configured model folders; "
                   f"showing {other or 'nothing'} instead."]


def stand_in(services: Services, state: ViewState, names: list[str], preferred: str = "") -> str:
    """What ``resolve_model`` falls back to: ``preferred`` or the first listed checkpoint that loads
    (looked up only when the state's model is not listed, so a valid link loads nothing extra)."""
    return preferred if state.model in names else services.registry.usable_name(preferred)


def form_values(state: ViewState, extra: tuple[str, ...] = ()) -> list[Any]:
    """Control values that show a state's prompt, settings and extra fields (order of FORM + extra)."""
    return [state.prompt, *(ui.form_value(DECLARED[n], getattr(state, n)) for n in DECODING_NAMES),
            *(getattr(state, f) for f in extra)]


def typed_fields(form: list[Any], extra: tuple[str, ...] = ()) -> dict[str, Any]:
    """The state's raw fields from the controls' values (order of FORM + extra); an emptied box gives None."""
    prompt, *shown = form[: len(FORM)]
    return {"prompt": prompt or "", **{n: ui.typed_value(DECLARED[n], v) for n, v in zip(DECODING_NAMES, shown)},
            **dict(zip(extra, form[len(FORM):]))}


def apply_form(state: ViewState, form: list[Any], extra: tuple[str, ...] = ()) -> tuple[ViewState, list[str]]:
    """A state with the prompt and settings typed in the controls (validated, with warnings)."""
    typed = {k: v for k, v in typed_fields(form, extra).items() if v is not None}
    return from_dict({**to_dict(state), **typed, "step": 0, "reroutes": []})


def corrected(state: ViewState, form: list[Any], extra: tuple[str, ...] = ()) -> list[Any]:
    """The controls' values for ``state`` where what was typed had to change (clamped, cut or unreadable), so
    that each box shows what runs; no_update elsewhere: nothing else typed is rewritten."""
    typed = typed_fields(form, extra)
    return [value if typed[name] is not None and from_dict({name: typed[name]})[1] else no_update
            for name, value in zip((*FORM, *extra), form_values(state, extra))]


Progress = Callable[[tuple[str, str]], None]


def background_job(app: Dash, prefix: str, interval: int = 200) -> Callable:
    """Decorator: run ``f(set_progress, request)`` as a cancellable background job whenever the
    page's ``{prefix}-request`` store changes; its result goes to ``{prefix}-meta``, its
    progress to the page's progress row (see ``components.progress_row``); Cancel writes a
    note to ``{prefix}-note``."""
    ids = ui.frame_ids(prefix)

    @app.callback(Output(ids.note, "children", allow_duplicate=True), Input(ids.cancel, "n_clicks"),
                  State(ids.meta, "data"), prevent_initial_call=True)
    def cancelled(_, meta):
        """Say that the job was cancelled, and what is on screen now."""
        if meta and not meta.get("error") and (meta.get("key") or meta.get("n_steps")):
            return "Cancelled; the previous result stays on screen, and the form and the link show its settings again."
        return "Cancelled; nothing was computed. Press the button to run again."

    app.clientside_callback(  # a new job's bar starts empty, not at the previous job's "done"
        "function () { return ['0', 'starting…']; }",
        Output(ids.progress, "value", allow_duplicate=True),
        Output(ids.status, "children", allow_duplicate=True),
        Input(ids.request, "data"), prevent_initial_call=True,
    )

    return app.callback(
        Output(ids.meta, "data"),
        Input(ids.request, "data"),
        background=True,
        prevent_initial_call=True,
        interval=interval,
        progress=[Output(ids.progress, "value"), Output(ids.status, "children")],
        running=[(Output(ids.go, "disabled"), True, False), (Output(ids.cancel, "disabled"), False, True),
                 (Output(ids.progress_row, "className"), "progress-row running", "progress-row")],
        cancel=[Input(ids.cancel, "n_clicks")],
    )
Job = Callable[[Services, Checkpoint, ViewState, Progress], Meta]


def stage_progress(progress: Progress, what: str) -> Callable[[int, int], None]:
    """Report ``done / total`` of stage 2 (of 3) as a fractional bar value, in 5 % increments."""
    def report(done: int, total: int) -> None:
        if total and (done == total or (20 * done) // total != (20 * (done - 1)) // total):
            progress((f"{1 + done / total:.2f}", f"{what} {done}/{total}…"))
    return report


# What a page's job would return, read from the cache without running it (None: not cached).
Cached = Callable[[Services, "Checkpoint | Identity", ViewState], "Meta | None"]
NO_PROMPT: Meta = {"n_steps": 0, "empty": True}


def trace_meta(checkpoint: Checkpoint | Identity, state: ViewState, result: PathResult) -> Meta:
    """The meta of a traced path: where the cache keeps it, its length and its nodes."""
    return {"key": path_key(checkpoint, state), "n_steps": result.trace.num_steps, "path": result.trace.path.tolist()}


def trace_work(services: Services, checkpoint: Checkpoint, state: ViewState, progress: Progress) -> Meta:
    """The default job: trace the path (cached); its meta points to the cached result."""
    if not state.prompt:
        return dict(NO_PROMPT)
    progress(("1", "propagating the signal…"))
    return trace_meta(checkpoint, state, path_for(services.cache, checkpoint, state, stage_progress(progress, "step")))


def cached_trace(services: Services, checkpoint: Checkpoint | Identity, state: ViewState) -> Meta | None:
    """``trace_work``'s meta when the path is already cached (or there is no prompt), else None."""
    if not state.prompt:
        return dict(NO_PROMPT)
    result = services.cache.get(path_key(checkpoint, state))
    return None if result is None else trace_meta(checkpoint, state, result)


DRAWN = "drawn"  # set in a meta the reducer answered and drew itself: the page's render leaves it alone


@dataclass(frozen=True)
class Render:
    """A page's server render of a new result: the (id, property) pairs it writes, and ``draw(services,
    meta)``, their values. It runs when a job's meta arrives, and within the reducer when that answers from
    the cache (a reopened link), so that the page then takes one round trip to the server, not two."""

    outputs: list[tuple[str, str]]
    draw: Callable[[Services, "Meta | None"], tuple[Any, ...]]


@dataclass(frozen=True)
class PathPage:
    """What differs between pages built on this machinery."""

    prefix: str
    events: list[Event] = field(default_factory=list)
    steps: bool = True
    extra_form: tuple[str, ...] = ()  # more ViewState fields typed in controls {prefix}-{field}, applied on go
    job: Job = trace_work
    # the job's answer read from the cache, so that a cached result reaches the page without starting a job
    # (a reopened link, an undone re-route); None: always run the job
    cached: Cached | None = None
    kind: str = "path"  # the kind of result the page's job computes (see ``request.READS``)
    default_model: str = ""  # opened when the link names no checkpoint (if it is listed)
    default_prompt: str = ""  # run when the page is opened with an empty link
    needs_prompt: bool = False  # the go button with an empty prompt says so
    # a checkpoint switch holds a prompt mostly unknown to the new checkpoint (its render shows a held answer,
    # which has no result, as an empty page)
    holds_unknown: bool = False
    # more checkpoint pickers: (ViewState field, what a message calls it), shown by ``{prefix}-{field}`` ('_' as
    # '-'), filled with the listed checkpoints and resolved on a link like the main one (Compare's checkpoint B)
    pickers: tuple[tuple[str, str], ...] = ()
    render: Render | None = None  # registered here (see ``Render``); its page holds ``render_store``

    def request(self, state: ViewState) -> Request:
        """What the page's result depends on."""
        return ask(self.kind, state)

    @property
    def ids(self) -> ui.FrameIds:
        """The page's frame ids."""
        return ui.frame_ids(self.prefix)

    @property
    def picker_ids(self) -> list[str]:
        """Ids of the page's further checkpoint pickers."""
        return [ui.field_id(self.prefix, name.replace("_", "-")) for name, _ in self.pickers]

    @property
    def form_ids(self) -> list[str]:
        """Ids of the controls the go button reads: the prompt, the settings and the page's own fields."""
        return ([self.ids.prompt, *(ui.setting_id(self.prefix, n) for n in DECODING_NAMES)]
                + [ui.field_id(self.prefix, f) for f in self.extra_form])


def register(app: Dash, services: Services, page: PathPage) -> None:
    """The reducer and the background job of one page."""
    ids = page.ids
    p = page.prefix
    form_ids = page.form_ids
    shows = [e.show for e in page.events if e.show]
    outputs: dict[str, Any] = {
        "state": Output(ids.state, "data"), "request": Output(ids.request, "data"),
        "hash": Output(ids.url, "hash"), "model": Output(ids.model, "value"),
        "options": Output(ids.model, "options"), "form": [Output(i, "value") for i in form_ids],
        "shows": [out for out, _ in shows], "msg": Output(ids.msg_state, "children"),
        "locked": [Output(ids.prompt, "disabled"), Output(ids.go, "disabled")],
        "pickers": [Output(i, "value") for i in page.picker_ids],
        "picker_options": [Output(i, "options") for i in page.picker_ids],
        "meta": Output(ids.meta, "data", allow_duplicate=True),  # a cached answer, with no job
    }
    inputs: dict[str, Any] = {
        "url": Input(ids.url, "hash"), "go": Input(ids.go, "n_clicks"),
        "submit": Input(ids.prompt, "n_submit"), "model": Input(ids.model, "value"),
        "cancel": Input(ids.cancel, "n_clicks"),
        "events": [e.input for e in page.events], "current": State(ids.state, "data"),
        "meta": State(ids.meta, "data"), "form": [State(i, "value") for i in form_ids],
        "picked": [Input(i, "value") for i in page.picker_ids],
        "idle": State(ids.cancel, "disabled"),  # Cancel is enabled only while the page's job runs
    }
    if page.steps:  # the step lives in the browser (stepping.register); the reducer only reads it
        outputs.update(slider=Output(ids.slider, "value"))
        inputs.update(slider=State(ids.slider, "value"))
    if page.steps:
        stepping.register_keys(app, p)

    render = page.render
    if render is not None:
        outputs.update(drawn=[Output(i, prop, allow_duplicate=True) for i, prop in render.outputs])

    @app.callback(output=outputs, inputs=inputs, prevent_initial_call="initial_duplicate")
    def on_event(**values: Any) -> dict[str, Any]:
        """Every user event -> one new state (see ``reduce``); a cached answer drawn at once (see ``Render``)."""
        names = services.registry.names()
        out = reduce(page, _id_name(ctx.triggered_id or ""), names,
                     lambda s: stand_in(services, s, names, page.default_model),
                     cached=lambda request: cached_meta(services, page, request),
                     unknown=lambda state: unknown_prompt(services, state), **values)
        if render is not None:
            hit = out["meta"] is not no_update
            out.update(drawn=list(render.draw(services, out["meta"])) if hit else [no_update] * len(render.outputs))
            if hit:
                out["meta"] = {**out["meta"], DRAWN: True}
        return out

    if render is not None:
        app.clientside_callback(
            f"function (meta) {{ return meta && meta.{DRAWN} ? window.dash_clientside.no_update : meta; }}",
            Output(render_id(p), "data"), Input(ids.meta, "data"), prevent_initial_call=True)
        app.callback(*(Output(i, prop, allow_duplicate=True) for i, prop in render.outputs),
                     Input(render_id(p), "data"), prevent_initial_call=True)(lambda meta: render.draw(services, meta))

    # A new result clears the note ("Cancelled; ..."); nothing else writes it, so a render that other
    # inputs trigger (a click, the state the reducer writes on Cancel) can never erase the Cancel note.
    app.clientside_callback("function () { return ''; }", Output(ids.note, "children", allow_duplicate=True),
                            Input(ids.meta, "data"), prevent_initial_call=True)

    @background_job(app, p)
    def job(set_progress, request):
        """Load the checkpoint and run the page's job, reporting progress."""
        return run_job(services, page, set_progress, request)


def answer(request: dict[str, Any] | None, found: Meta) -> Meta:
    """A page's meta: what its job found, with the request it answers (which Cancel restores) and no error."""
    return {"request": request, "n_steps": 0, "error": "", **found}


def run_job(services: Services, page: PathPage, set_progress: Progress, request: dict[str, Any] | None) -> Meta:
    """Load the checkpoint and run the page's job; the meta carries the request it answers. A held request
    (``HOLD``) is answered with nothing computed."""
    if (request or {}).get(HOLD):
        return answer(request, {})
    state, _ = from_dict(request or {})
    try:
        set_progress(("0", "loading checkpoint…"))
        checkpoint = services.registry.load(state.model)
        meta = answer(request, page.job(services, checkpoint, state, set_progress))
    except BriLLMError as exc:
        meta = answer(request, {"error": str(exc)})
    set_progress(("3", "done"))
    return meta


def cached_meta(services: Services, page: PathPage, request: dict[str, Any]) -> Meta | None:
    """What ``run_job`` would return for ``request``, when that needs no job: a held request, or a result the
    page reads from the cache, found by the checkpoint's id (its weights need not be loaded in this process:
    any worker answers a reopened link). None otherwise: the job runs, with its progress bar."""
    if request.get(HOLD):
        return answer(request, {})
    if page.cached is None:
        return None
    state, _ = from_dict(request)
    try:
        identity = services.registry.identity(state.model)
    except (BriLLMError, OSError):  # not listed, refused, or changing: the job says why
        return None
    found = page.cached(services, identity, state)
    return None if found is None else answer(request, found)


def unknown_prompt(services: Services, state: ViewState) -> str:
    """A warning when most of the prompt maps to the unknown node of the state's checkpoint (its tokeniser
    read, not its weights); empty otherwise."""
    if not state.prompt.strip():
        return ""
    try:
        encoding = services.registry.identity(state.model).encode(state.prompt)
    except (BriLLMError, OSError):
        return ""
    unknown, total = len(encoding.unknown), max(len(encoding.ids), 1)
    if unknown <= MOSTLY_UNKNOWN * total:
        return ""
    return (f"{unknown} of the prompt's {total} tokens are unknown to {state.model} (they map to its unknown node), "
            "so it was not run: type a prompt in its words, or press the button beside the prompt to run it anyway.")


def settings(state: ViewState, extra: tuple[str, ...] = ()) -> dict[str, Any]:
    """The fields of a state that the form, the model picker and re-routes set (what a result was computed from)."""
    data = to_dict(state)
    return {f: data[f] for f in (*SETTINGS, *extra)}


def request_for(page: PathPage, state: ViewState) -> dict[str, Any]:
    """The job's request: what fixes the result, plus the settings it was made from (restored by Cancel)."""
    return {**page.request(state).to_json(), "settings": settings(state, page.extra_form)}


def shown_state(state: ViewState, meta: Meta | None, extra: tuple[str, ...] = ()) -> ViewState:
    """``state`` with the settings of the result on screen (``meta``'s request) or, when nothing was computed,
    empty settings for the same checkpoint; view knobs (step, node, ...) stay as they are."""
    request = (meta or {}).get("request")
    if request:
        shown = request.get("settings") or request
    else:
        shown = {**settings(DEFAULT, extra), "model": state.model}
    return from_dict({**to_dict(state), **{k: v for k, v in shown.items() if k in (*SETTINGS, *extra)}})[0]


def reduce(page: PathPage, trigger: str, names: list[str], fallback: Callable[[ViewState], str], *, url: str | None,
           model: str | None, events: list[Any], current: dict | None, meta: Meta | None, form: list[Any],
           picked: list[Any] = (), slider: Any = None, idle: Any = True,
           cached: Callable[[dict[str, Any]], Meta | None] = lambda _request: None,
           unknown: Callable[[ViewState], str] = lambda _state: "", **clicks: Any) -> dict[str, Any]:
    """Every user event -> one new state, written to the stores and the URL hash (``names``: the listed
    checkpoints; ``fallback(state)``: the checkpoint shown when the state names none that is listed).
    A new request goes to the job, unless ``cached(request)`` answers it and no job is running (``idle``):
    then the answer goes to the meta store at once (a running job is left to Dash, which cancels it when
    the request changes). A checkpoint switch holds a prompt that ``unknown(state)`` warns about, on pages
    that ask for it: nothing is computed until the button is pressed (and a bare link's example is left out).
    An empty prompt on the button changes nothing but the message."""
    ids = page.ids
    shows = [e.show for e in page.events if e.show]
    hold = ""
    out: dict[str, Any] = {k: no_update for k in ("state", "request", "hash", "model", "options", "msg", "meta")}
    pickers = [name for name, _ in page.pickers]
    out.update(form=[no_update] * (len(FORM) + len(page.extra_form)), shows=[no_update] * len(shows),
               locked=[no_update] * 2, pickers=[no_update] * len(pickers), picker_options=[no_update] * len(pickers))
    if page.steps:
        out["slider"] = no_update
    old = from_dict(current)[0] if current else None
    if old is not None and page.steps and slider is not None:
        old = old.with_(step=slider)  # the step on screen, moved in the browser
    if old is None or trigger == ids.url:
        state, warnings = from_hash(url)
        if old is not None and to_hash(state) == to_hash(old):
            return out  # our own hash write coming back
        state, more = resolve_model(state, names, fallback(state))
        if old is None and not (url or "").strip("#") and page.default_prompt:
            example = state.with_(prompt=page.default_prompt)  # a bare link opens a ready example,
            state = state if unknown(example) else example  # unless the checkpoint does not know its words
        for name, label in page.pickers:
            other, said = resolve_other(getattr(state, name), state.model, names, label)
            state, more = state.with_(**{name: other}), more + said
        options = [{"label": n, "value": n} for n in names]
        out.update(form=form_values(state, page.extra_form), shows=[show(state) for _, show in shows],
                   options=options, model=state.model, msg=ui.messages([], warnings + more), locked=[False, False],
                   pickers=[getattr(state, name) for name in pickers], picker_options=[options] * len(pickers))
    elif trigger == ids.cancel:
        # the job stopped: the form, the pickers and the link show what is on screen again
        state = shown_state(old, meta, page.extra_form)
        out.update(form=form_values(state, page.extra_form), shows=[show(state) for _, show in shows],
                   model=state.model, pickers=[getattr(state, name) for name in pickers])
    elif trigger in (ids.go, ids.prompt):
        state, warnings = apply_form(old, form, page.extra_form)
        if page.needs_prompt and not state.prompt.strip():
            out["msg"] = ui.messages([EMPTY_PROMPT], warnings)
            return out  # the result on screen and the link stay
        out.update(msg=ui.messages([], warnings), form=corrected(state, form, page.extra_form))
    elif trigger == ids.model:
        state = old.with_(model=model if model in names else old.model, reroutes=[], step=0)
        hold = unknown(state) if page.holds_unknown and state.model != old.model else ""
        out["msg"] = ui.messages([], [hold] if hold else [])
    elif trigger in page.picker_ids:
        name, value = pickers[page.picker_ids.index(trigger)], picked[page.picker_ids.index(trigger)]
        state = old.with_(**{name: value if value in names else getattr(old, name)}, reroutes=[], step=0)
    else:
        state = old
        for event, value in zip(page.events, events):
            if trigger == _id_name(event.input.component_id):
                state = event.apply(old, value, meta or {})
        # controls that show the state follow it, except the one being typed in
        out["shows"] = [no_update if trigger == _id_name(e.input.component_id) else e.show[1](state)
                        for e in page.events if e.show]
        # and the checkpoint pickers, when an event chose another checkpoint (Compare's swap)
        out["model"] = state.model if state.model != old.model else no_update
        out["pickers"] = [getattr(state, n) if getattr(state, n) != getattr(old, n) else no_update for n in pickers]
    if trigger in (ids.go, ids.prompt):
        # pressing the button always runs, also after a cancel or with unchanged settings (then from the cache)
        runs = sum(v or 0 for v in (clicks.get("go"), clicks.get("submit")))
        out["request"] = {**request_for(page, state), "run": runs}
    elif trigger != ids.cancel and (old is None or page.request(state) != page.request(old)):
        out["request"] = {**request_for(page, state), **({HOLD: True} if hold else {})}
    if out["request"] is not no_update and idle is not False:
        hit = cached(out["request"])
        if hit is not None:
            out.update(meta=hit, request=no_update)
    out.update(state=to_dict(state), hash=to_hash(state) or "#")
    if page.steps:
        out.update(slider=state.step if old is None or state.step != old.step else no_update)
    return out


def _id_name(component_id: Any) -> str:
    """A component id as the string the reducer compares (pattern ids by their type)."""
    return component_id if isinstance(component_id, str) else component_id.get("type", "")


def load_path(services: Services, meta: Meta | None) -> PathResult | None:
    """The trace a meta record points to (recomputed if the cache lost it)."""
    if not meta or meta.get("error") or not meta.get("key"):
        return None
    result = services.cache.get(meta["key"])
    if result is None:
        state, _ = from_dict(meta["request"])
        result = path_for(services.cache, services.registry.load(state.model), state)
    return result


def meta_errors(meta: Meta | None) -> list[str]:
    """The job's error, if any."""
    return [meta["error"]] if meta and meta.get("error") else []


def page_frame(prefix: str, button: str = "Generate") -> list[Any]:
    """Stores, message areas, prompt row, settings and the progress row of a path page."""
    ids = ui.frame_ids(prefix)
    return [
        *stores(prefix),
        ui.message_box(ids.msg_state),
        ui.message_box(ids.msg),
        ui.prompt_row(prefix, button),
        ui.settings_panel(prefix),
        ui.progress_row(prefix),
        html.Div(id=ids.note, className="note"),
    ]



Export = Callable[[Meta, ViewState], "tuple[pd.DataFrame, Any] | None"]


def register_export(app: Dash, prefix: str, view: str, build: Export, csv_name: str, json_name: str,
                    steps: bool = False) -> None:
    """A page's CSV and JSON buttons: ``build(meta, state)`` gives the table and the JSON data
    (None when there is nothing to export); the JSON carries the view state (with the step on
    screen, read from the slider on pages that step in the browser)."""
    ids = ui.frame_ids(prefix)
    step = [State(ids.slider, "value")] if steps else []

    @app.callback(
        Output(ids.download, "data"),
        Input(ids.csv, "n_clicks"), Input(ids.json, "n_clicks"),
        State(ids.meta, "data"), State(ids.state, "data"), *step,
        prevent_initial_call=True,
    )
    def export(_csv, _json, meta, state_data, slider=None):
        """Send the table as CSV or the data as a view document."""
        state, _ = from_dict({**(state_data or {}), **({"step": slider} if slider is not None else {})})
        built = build(meta, state) if meta else None
        if built is None:
            return no_update
        frame, data = built
        if ctx.triggered_id == ids.csv:
            return dcc.send_data_frame(frame.to_csv, csv_name, index=False)
        return {"content": export_document(view, state, data), "filename": json_name}

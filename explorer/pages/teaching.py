"""Teaching mode: every number of a step written out, a guess before each reveal, and a guided tour on a revealed
step (steps drawn in the browser from one store per trace and reveal state, see ``stepping``)."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any, Iterable

import dash
import torch
from dash import Dash, Input, Output, State, ctx, dcc, html, no_update
from markupsafe import Markup, escape

from brillm_core import BriLLMError, Checkpoint, Step, Trace, explain_step

from .. import components as ui
from .. import pathview, stepping
from ..context import Services
from ..figures import common, signal
from ..figures import teaching as figs
from ..pathview import Event, Meta
from ..request import result_key
from ..state import ViewState, from_dict, to_hash

NAME, PATH, ORDER = "Teaching", "/teach", 4
P = "te"
TEACHING_MODEL = "teaching"
SAMPLE_PROMPT = "the cats very often"  # the memory must hold "cats" over two adverbs to pick the verb
MATRIX_UNITS = 8
MAX_BARS = 24
MEMORY_TERMS = 12  # memory terms written out per step (the others summed), so the step store grows linearly
CHIP_WINDOW = 24  # path chips shown before the current node (the earlier ones counted), for the same reason


class ID:
    """The page's component ids, defined once (``part``: the prefix of each formula part's id)."""

    frame = ui.frame_ids(P)
    stages, energy, chips, formula, taken, part = (f"{P}-stages", f"{P}-energy", f"{P}-chips", f"{P}-formula",
                                                   f"{P}-taken", f"{P}-part")
    quiz, quiz_box, question, guess, check, reveal, feedback, score = (
        f"{P}-quiz", f"{P}-quiz-box", f"{P}-question", f"{P}-guess", f"{P}-check", f"{P}-reveal", f"{P}-feedback",
        f"{P}-score")
    tour, tour_start, tour_box, tour_title, tour_count, tour_text, tour_prev, tour_next, tour_end = (
        f"{P}-tour", f"{P}-tour-start", f"{P}-tour-box", f"{P}-tour-title", f"{P}-tour-count", f"{P}-tour-text",
        f"{P}-tour-prev", f"{P}-tour-next", f"{P}-tour-end")
    model_note, empty, tour_step, scrolled = f"{P}-model-note", f"{P}-empty", f"{P}-tour-step", f"{P}-scrolled"


FIGURES = [ID.stages, ID.energy]
EMPTY = "Type a prompt and press Run: every number of each step of its path appears here."
HIDDEN = "Guess (or reveal) to see this step's numbers."
HELP = [
    html.P("Teaching mode runs a path on a small model and writes out every number of one step: the memory terms "
           "aⱼ·cⱼ that add up to the signal x, the product x @ W with the edge's matrix, the bias, the position "
           "row PE, the GELU, the energy ‖o‖₂ and the softmax that turns all energies into probabilities. The "
           "numbers are the engine's own (hover one for its full value)."),
    html.P("Before a step is revealed, guess which node will receive the most energy; the score counts your right "
           "guesses. After the reveal, click any candidate bar to see the same arithmetic for that node. The "
           "guided tour walks through the parts of the mechanism one at a time, on the step on screen: it reveals "
           "that step (and every step you move to while it runs, without scoring them), scrolls to each part and "
           "highlights it. ← and → step through the path."),
]
TOUR = [  # (what the card points at, title, text)
    ("chips", "A path through the graph", "Every node is a token. A path hops from node to node; the prompt's "
     "tokens are forced (grey), and after them the model picks the node that receives the most energy. The "
     "outlined chip is where the signal is now, the next one where it goes."),
    ("quiz", "Guess first", "At each step the signal sits at one node. Outside the tour you guess which node it sends "
     "the most energy to, then check; the next chip stays hidden until you guess or reveal. The tour has revealed "
     "this step, so every number below is on screen."),
    ("memory", "Memory", "The signal arriving at step i is a weighted sum of every earlier output cⱼ (highlighted: "
     "each weight aⱼ and its term aⱼ·cⱼ). The weights come from a softmax over learned position logits: they "
     "depend on positions only, never on the tokens."),
    ("product", "The edge's matrix", "Each edge (source → target) reads one d×d matrix W, printed here with the "
     "product x @ W. Most edges share row 0, so their outputs tie; edges seen in training have a row of their own."),
    ("bias", "Bias and position", "The edge's bias b and the row PE[i+1] of a fixed sinusoidal table (both printed "
     "here) are added: z = x @ W + b + PE."),
    ("output", "GELU", "GELU bends every unit of z: negative units shrink towards 0, positive ones pass almost "
     "unchanged. Compare z and o unit by unit: o is the edge's output."),
    ("energy", "Energy", "The energy of the edge is the length of o, the number E here. Every candidate target gets "
     "one energy: the bars below."),
    ("softmax", "Softmax", "The energies divided by the temperature T go through a softmax: p is this edge's "
     "probability, log Z the normaliser over every candidate. Greedy decoding takes the node with the most energy, "
     "and its output becomes a memory term."),
]
TOUR_TARGETS = [ID.chips if key == "chips" else ID.quiz_box if key == "quiz" else f"{ID.part}-{key}"
                for key, _, _ in TOUR]  # the element each card scrolls into view
# Clientside: scroll the element a card points at into the middle of the window (the tour box stays on screen);
# the card scrolled to goes to a store of its own.
SCROLL_TO_CARD = ("function (position) { var targets = " + json.dumps(TOUR_TARGETS) + ";"
                  " var el = position >= 0 && document.getElementById(targets[position]);"
                  " if (el) el.scrollIntoView({block: 'center'}); return position; }")
# Clientside: while the tour runs, the step on screen (so that the quiz reveals it); otherwise nothing.
TOUR_STEP = ("function (step, position, meta) { return position >= 0 && meta ? (step || 0)"
             " : window.dash_clientside.no_update; }")


def layout(**_query: Any) -> html.Div:
    """The page's components."""
    tour = html.Div([
        html.Div([html.B(id=ID.tour_title), html.Span(id=ID.tour_count, className="note")]),
        html.P(id=ID.tour_text),
        html.Div([html.Button("◀ back", id=ID.tour_prev), html.Button("next ▶", id=ID.tour_next),
                  html.Button("end tour", id=ID.tour_end)], className="controls"),
    ], id=ID.tour_box, className="tour-box", style={"display": "none"})
    quiz = html.Div([
        html.Span(id=ID.question),
        html.Div(dcc.Dropdown(id=ID.guess, placeholder="your guess", className="model-picker")),
        html.Button("Check my guess", id=ID.check), html.Button("Reveal", id=ID.reveal),
        html.Span(id=ID.feedback, className="feedback"), html.Span(id=ID.score, className="score"),
    ], id=ID.quiz_box, className="controls quiz")
    return html.Div([
        html.H2(NAME), ui.help_box(HELP), *pathview.page_frame(P, "Run"),
        dcc.Store(id=ID.quiz, data={}), dcc.Store(id=ID.tour, data=-1), dcc.Store(id=ID.tour_step),
        dcc.Store(id=ID.scrolled),
        html.Div(id=ID.model_note, className="note"),
        *stepping.components(P, len(FIGURES)),
        html.P(EMPTY, id=ID.empty, className="empty-state"),
        html.Button("Take the guided tour", id=ID.tour_start), tour,
        html.Div([
            html.Div(id=ID.chips, className="chips"), ui.step_controls(P), quiz,
            html.Div(id=ID.formula, className="formula"),
            html.Button("Explain the node taken", id=ID.taken),
            html.Div([ui.figure_panel(ID.stages, "step arithmetic"),
                      ui.figure_panel(ID.energy, "candidates")], className="grid2"),
            ui.export_row(P, [("csv", "Step numbers CSV"), ("json", "Step JSON (with view state)")]),
        ], id=ID.frame.views, style={"display": "none"}),
    ], className="page")


def pick_node(state: ViewState, click: Any, _meta: Meta) -> ViewState:
    """A click on a candidate bar explains that node."""
    try:
        return state.with_(node=int(click["points"][0]["customdata"][0]))
    except (TypeError, KeyError, IndexError, ValueError):
        return state


def taken_node(state: ViewState, _clicks: Any, _meta: Meta) -> ViewState:
    """Back to explaining the node the path takes."""
    return state.with_(node=-1)


def best_nodes(step: Step) -> list[int]:
    """The nodes that receive the most energy at a step (several when they tie)."""
    energies = torch.nan_to_num(step.energies, nan=-math.inf)
    return torch.nonzero(energies == energies.max()).flatten().tolist()


def new_quiz(quiz: dict[str, Any] | None, request: Any) -> dict[str, Any]:
    """The quiz for a trace: nothing revealed yet; the score carries over."""
    quiz = quiz or {}
    return {"request": request, "revealed": {}, "right": quiz.get("right", 0), "tried": quiz.get("tried", 0)}


def answer(quiz: dict[str, Any], step: int, guess: int | None, best: list[int]) -> dict[str, Any]:
    """Reveal a step, scoring the guess if there is one (each step counts once)."""
    if str(step) in quiz["revealed"]:
        return quiz
    scored = guess is not None
    return {**quiz, "revealed": {**quiz["revealed"], str(step): guess},
            "right": quiz["right"] + int(scored and guess in best), "tried": quiz["tried"] + int(scored)}


def tag(name: str, children: Any = "", *, cls: str | None = None, title: str | None = None,
        id: str | None = None) -> Markup:
    """One element as escaped markup: text children are escaped, ``Markup`` children kept as they are (the
    step store carries markup; building Dash components only to print them cost seconds on a long path)."""
    attrs = "".join(f' {k}="{escape(v)}"' for k, v in (("id", id), ("class", cls), ("title", title)) if v is not None)
    body = "".join(map(escape, children)) if isinstance(children, (list, tuple)) else escape(children)
    return Markup(f"<{name}{attrs}>{body}</{name}>")


def number(value: float) -> Markup:
    """A printed number with its exact value on hover."""
    return tag("span", figs.fmt(value), title=repr(value), cls="num")


def values(items: tuple[float, ...]) -> list[Any]:
    """One number, or a bracketed vector."""
    if len(items) == 1:
        return [number(items[0])]
    spans: list[Any] = []
    for k, v in enumerate(items):
        spans += [", "] * (k > 0) + [number(v)]
    return ["[", *spans, "]"]


def matrix(rows: tuple[tuple[float, ...], ...]) -> Markup:
    """W as a table (its first MATRIX_UNITS rows and columns)."""
    cut = len(rows) > MATRIX_UNITS
    caption = f"W ({len(rows)}×{len(rows)})" + (f", first {MATRIX_UNITS}×{MATRIX_UNITS}" if cut else "")
    body = [tag("tr", [tag("td", [number(v)]) for v in r[:MATRIX_UNITS]] + [tag("td", "…")] * cut)
            for r in rows[:MATRIX_UNITS]]
    return tag("table", [tag("caption", caption), *body], cls="matrix")


def term_block(term: figs.Term, hidden: bool) -> Markup:
    """One part of the formula; parts that depend on the target stay hidden until the reveal. Its tour card
    highlights it through the formula's class (``tour_classes`` and the page's CSS), not through its markup."""
    head = tag("div", [tag("b", term.title + ": "),
                       tag("span", "? (guess or reveal first)" if hidden else term.expression)])
    lines = [] if hidden else [tag("div", [tag("span", f"{label} = "), *values(v)], cls="formula-line")
                               for label, v in term.lines]
    extra = [matrix(term.matrix)] if term.matrix and not hidden else []
    return tag("div", [head, *lines, *extra], id=f"{ID.part}-{term.key}", cls="formula-part")


def path_chips(path: list[int], tokens: list[str], step: int, revealed: bool) -> Markup:
    """The path's last CHIP_WINDOW nodes up to the current one (a chip counts the earlier ones); the next node
    a '?' until revealed; later nodes not shown."""
    first = max(step + 1 - CHIP_WINDOW, 0)
    out = [tag("span", f"… {first} earlier", cls="chip elided",
               title=f"the path's first {first} nodes (step back to see them)")] * (first > 0)
    out += [tag("span", common.show_token(tokens[i]), cls="chip prompt" + (" source" if i == step else ""),
                title=f"node {path[i]}") for i in range(first, step + 1)]
    if revealed:
        out.append(tag("span", common.show_token(tokens[step + 1]), cls="chip target", title=f"node {path[step + 1]}"))
    else:
        out.append(tag("span", "?", cls="chip hidden-node", title="guess the node with the most energy"))
    return Markup("".join(out))


def feedback(step: Step, guess: int | None, best: list[int], token: Any) -> str:
    """What the reveal says about the guess and the node taken."""
    top = ", ".join(common.token_label(n, token) for n in best)
    how = "forced by the prompt" if step.forced else "chosen"
    taken = f" The path takes {common.token_label(step.target, token)} ({how})."
    if guess is None:
        return f"Most energy goes to {top}.{taken}"
    if guess in best:
        return f"✓ Right: {common.token_label(guess, token)} gets the most energy.{taken}"
    energy = step.energies[guess]
    rank = int((torch.nan_to_num(step.energies, nan=-math.inf) > energy).sum()) + 1
    where = "is not a candidate" if torch.isnan(energy) else f"is rank {rank} (E = {figs.fmt(float(energy))})"
    ties = int((step.energies == energy).sum()) - 1
    if ties > 0:
        where += (f", tied with {ties} other candidate{'s' * (ties > 1)} at exactly this energy: edges that read the "
                  "same parameter row from this node (most often the shared row 0) give the same output, so they "
                  f"share rank {rank}")
    return f"✗ Your guess {common.token_label(guess, token)} {where}; most energy goes to {top}.{taken}"


def model_note(state: ViewState, names: list[str], hidden_size: int) -> list[Any]:
    """A link to the teaching model when another is shown, and a note for wide models."""
    out: list[Any] = []
    if TEACHING_MODEL in names and state.model != TEACHING_MODEL:
        link = to_hash(state.with_(model=TEACHING_MODEL, prompt=SAMPLE_PROMPT, step=0, node=-1, reroutes=[]))
        out.append(html.A("Open the teaching model (small enough to read every number)", href=link))
    if hidden_size > MATRIX_UNITS:
        out.append(html.Span(f" This checkpoint is {hidden_size} units wide: vectors are long and W is cut to "
                             f"{MATRIX_UNITS}×{MATRIX_UNITS}."))
    return out


PAGE = pathview.PathPage(P, [Event(Input(ID.energy, "clickData"), pick_node),
                             Event(Input(ID.taken, "n_clicks"), taken_node)],
                         default_model=TEACHING_MODEL, default_prompt=SAMPLE_PROMPT, cached=pathview.cached_trace)


def register(app: Dash, services: Services) -> None:
    """Register the page, its state machinery and its callbacks."""
    dash.register_page(__name__, path=PATH, name=NAME, order=ORDER, layout=layout, title=f"BriLLM · {NAME}")
    pathview.register(app, services, PAGE)
    stepping.register(app, P, FIGURES)
    pathview.register_export(app, P, "teaching", lambda meta, state: export_data(services, meta, state),
                             "brillm-step.csv", "brillm-step.json", steps=True)
    app.callback(
        Output(ID.quiz, "data"),
        Input(ID.frame.meta, "data"), Input(ID.check, "n_clicks"), Input(ID.reveal, "n_clicks"),
        Input(ID.tour_step, "data"),
        State(ID.guess, "value"), State(ID.frame.slider, "value"), State(ID.quiz, "data"),
        prevent_initial_call=True,
    )(lambda meta, _check, _reveal, _tour, *args: score_quiz(services, set(ctx.triggered_prop_ids.values()), meta,
                                                             *args))
    app.clientside_callback(TOUR_STEP, Output(ID.tour_step, "data"), Input(ID.frame.slider, "value"),
                            Input(ID.tour, "data"), Input(ID.frame.meta, "data"), prevent_initial_call=True)
    app.clientside_callback(  # each step (and each new path) starts with an empty guess
        "function () { return null; }", Output(ID.guess, "value"), Input(ID.frame.slider, "value"),
        Input(ID.frame.meta, "data"), prevent_initial_call=True)
    app.callback(
        Output(ID.tour, "data"),
        Input(ID.tour_start, "n_clicks"), Input(ID.tour_prev, "n_clicks"), Input(ID.tour_next, "n_clicks"),
        Input(ID.tour_end, "n_clicks"), State(ID.tour, "data"),
        prevent_initial_call=True,
    )(lambda _start, _prev, _next, _end, current: move_tour(ctx.triggered_id, current))
    app.callback(
        Output(ID.tour_box, "style"), Output(ID.tour_title, "children"), Output(ID.tour_text, "children"),
        Output(ID.tour_count, "children"), Output(ID.tour_prev, "disabled"), Output(ID.tour_next, "children"),
        Output(ID.chips, "className"), Output(ID.quiz_box, "className"), Output(ID.formula, "className"),
        Input(ID.tour, "data"),
    )(lambda position: (*show_tour(position), *tour_classes(position)))
    app.clientside_callback(SCROLL_TO_CARD, Output(ID.scrolled, "data"), Input(ID.tour, "data"),
                            prevent_initial_call=True)
    app.callback(
        Output(ID.frame.steps, "data"), Output(ID.frame.slider, "max"), Output(ID.guess, "options"),
        Output(ID.score, "children"), Output(ID.model_note, "children"), Output(ID.frame.msg, "children"),
        Output(ID.empty, "style"),
        Input(ID.frame.meta, "data"), Input(ID.frame.state, "data"), Input(ID.quiz, "data"),
        prevent_initial_call=True,
    )(lambda *args: render(services, *args))


def score_quiz(services: Services, triggered: set[str], meta: Meta | None, guess: Any, slider: Any,
               current: dict[str, Any] | None) -> Any:
    """Start a fresh quiz for a new trace; score a guess, or reveal the step on screen (the reveal button, or the
    tour running on it). ``triggered``: the ids of the inputs that fired (the meta store, the check or the reveal
    button, the tour's step)."""
    request = (meta or {}).get("request")
    fresh = ID.frame.meta in triggered or not current or current.get("request") != request
    if fresh:
        current = new_quiz(current, request)
    result = pathview.load_path(services, meta)
    step = pathview.clamp_step(ViewState(step=int(slider or 0)), meta)  # the step on screen
    if result is None or not triggered & {ID.check, ID.reveal, ID.tour_step}:
        return current if fresh else no_update
    if ID.check in triggered and guess is None:
        return no_update
    if ID.tour_step in triggered and str(step) in current["revealed"] and not fresh:
        return no_update  # the tour moved to another card of a step already revealed
    scored = None if ID.check not in triggered else int(guess)
    return answer(current, step, scored, best_nodes(result.trace.step(step)))


def move_tour(triggered: str | None, current: int | None) -> int:
    """Start, move through or end the guided tour (-1 = off; ``triggered``: the id of the button clicked)."""
    moves = {ID.tour_start: 0, ID.tour_prev: max((current or 0) - 1, 0),
             ID.tour_next: (current or 0) + 1, ID.tour_end: -1}
    position = moves.get(triggered, current)
    return position if position is not None and position < len(TOUR) else -1


def show_tour(position: int | None) -> tuple[Any, ...]:
    """The tour's current text."""
    if position is None or position < 0:
        return {"display": "none"}, "", "", "", True, "next ▶"
    _, title, text = TOUR[position]
    last = position == len(TOUR) - 1
    return ({"display": "block"}, title, text, f"  ({position + 1} of {len(TOUR)})", position == 0,
            "finish" if last else "next ▶")


def tour_classes(position: int | None) -> tuple[str, str, str]:
    """The classes of the chips, the quiz and the formula: the tour card's target highlighted (a formula part
    through the formula's ``focus-<part>`` class, which the page's CSS turns into a highlight)."""
    focus = TOUR[position][0] if position is not None and 0 <= position < len(TOUR) else ""
    return ("chips" + " tour-focus" * (focus == "chips"), "controls quiz" + " tour-focus" * (focus == "quiz"),
            "formula" + (f" focus-{focus}" if focus not in ("", "chips", "quiz") else ""))


def render(services: Services, meta: Meta | None, state_data: dict | None, quiz_data: dict | None) -> tuple[Any, ...]:
    """Once per trace, reveal or node: the step store (the browser draws each step from it)."""
    state, _ = from_dict(state_data or {})
    names = services.registry.names()
    try:
        result = pathview.load_path(services, meta)
        checkpoint = services.registry.load(meta["request"]["model"]) if result else None
    except BriLLMError as exc:  # the checkpoint was removed or corrupted since the job ran
        result, meta = None, {"error": str(exc)}
    if result is None or checkpoint is None:
        return (stepping.no_steps(len(FIGURES)), 1, [], "", model_note(state, names, 0),
                ui.messages(pathview.meta_errors(meta)), {})
    vocab = checkpoint.config.vocab_size
    quiz_data = quiz_data if quiz_data and quiz_data.get("request") == meta["request"] else new_quiz(quiz_data, None)
    warnings = [f"node {state.node} does not exist here (0..{vocab - 1}); explaining the node taken"] \
        if state.node >= vocab else []
    node = state.node if 0 <= state.node < vocab else None
    revealed, n = quiz_data["revealed"], result.trace.num_steps
    hidden = steps_for(services, checkpoint, result.trace, meta["key"], None, False, range(n))
    shown = steps_for(services, checkpoint, result.trace, meta["key"], node, True, [int(i) for i in revealed])
    parts = [shown[i] if str(i) in revealed else hidden[i] for i in range(n)]
    return (step_store(checkpoint, result.trace, parts, revealed), max(n - 1, 1),
            [{"label": common.token_label(n, checkpoint.token), "value": n} for n in range(vocab)],
            f"Score: {quiz_data['right']} of {quiz_data['tried']}",
            model_note(state, names, checkpoint.config.hidden_size), ui.messages([], warnings),
            {"display": "none"})


@dataclass(frozen=True)
class StepParts:
    """Step i as the browser draws it, before its reveal or after: the label, the question, the chips, the formula,
    and the stage heatmap's and the candidate chart's frames (empty, saying why, before the reveal). The feedback,
    which depends on the guess, is written when the store is put together."""

    label: str
    question: str
    chips: str
    formula: str
    stage: dict[str, Any]
    energy: dict[str, Any]


def step_parts(checkpoint: Checkpoint, trace: Trace, i: int, node: int | None, shown: bool) -> StepParts:
    """Step ``i``'s parts, hidden or ``shown`` (``node``: the node a shown step explains; None: the node taken)."""
    token, vocab = checkpoint.token, checkpoint.config.vocab_size
    path, n = trace.path.tolist(), trace.num_steps
    ex = explain_step(checkpoint.model, trace, i, node if shown else None)
    source = common.token_label(trace.step(i).source, token)
    formula = Markup("").join(term_block(t, not shown and t.depends_on_target)
                              for t in figs.formula_terms(ex, token, MEMORY_TERMS))
    hidden = figs.hidden_frame(HIDDEN)
    return StepParts(f"step {i} of 0–{n - 1}: the signal is at {source}",
                     str(escape(f"Which node gets the most energy from {source}?")),
                     str(path_chips(path, trace.tokens or [str(v) for v in path], i, shown)), str(formula),
                     figs.stage_frame(ex, token) if shown else hidden,
                     signal.energy_frame(trace, i, token, min(vocab, MAX_BARS)) if shown else hidden)


def steps_for(services: Services, checkpoint: Checkpoint, trace: Trace, trace_key: str, node: int | None,
              shown: bool, steps: Iterable[int]) -> dict[int, StepParts]:
    """The parts of ``steps`` (and of any step asked before), hidden or ``shown`` explaining ``node``, in the app's
    result cache: one entry per trace (``trace_key``), node and state, holding the steps asked so far. A reveal, a
    guess or a tour card then explains only a step never shown before (explaining every step took seconds per
    reveal on a 256-step path), and a node picked on the candidate chart is explained on the revealed steps."""
    key = result_key("teaching-steps", [checkpoint.model_id], {"trace": trace_key, "node": node, "shown": shown})
    kept: dict[int, StepParts] = services.cache.get(key) or {}
    missing = [i for i in steps if i not in kept]
    if missing:
        kept = {**kept, **{i: step_parts(checkpoint, trace, i, node, shown) for i in missing}}
        services.cache.set(key, kept)
    return kept


def step_store(checkpoint: Checkpoint, trace: Trace, parts: list[StepParts],
               revealed: dict[str, Any]) -> stepping.Store:
    """Every step as the browser draws it from its parts, shown for the revealed steps and hidden for the others
    (``revealed``: step -> the guess, or None): a step not revealed yet sends no number or figure that depends on
    its target."""
    feedbacks = [str(escape(feedback(trace.step(i), revealed[str(i)], best_nodes(trace.step(i)), checkpoint.token)))
                 if str(i) in revealed else "" for i in range(len(parts))]
    return stepping.store([p.label for p in parts], [
        stepping.frames(figs.stage_base(), [p.stage for p in parts]),
        stepping.frames(signal.energy_base(), signal.one_margin([p.energy for p in parts])),
        stepping.text(ID.chips, [p.chips for p in parts]),
        stepping.text(ID.question, [p.question for p in parts]),
        stepping.text(ID.feedback, feedbacks),
        stepping.text(ID.formula, [p.formula for p in parts])])


def export_data(services: Services, meta: Meta, state: ViewState) -> tuple[Any, dict[str, Any]] | None:
    """The shown step's terms as a table, and as JSON."""
    result = pathview.load_path(services, meta)
    if result is None:
        return None
    checkpoint = services.registry.load(meta["request"]["model"])
    i = pathview.clamp_step(state, meta)
    node = state.node if 0 <= state.node < checkpoint.config.vocab_size else None
    terms = figs.formula_terms(explain_step(checkpoint.model, result.trace, i, node), checkpoint.token)
    data = {"step": i, "terms": [{"part": t.key, "expression": t.expression,
                                  "lines": [{"label": lab, "values": list(v)} for lab, v in t.lines],
                                  "matrix": [list(r) for r in t.matrix]} for t in terms]}
    return figs.terms_frame(terms), data

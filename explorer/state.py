"""View state: one validated, clamped record shared by every page, <-> URL hash <-> JSON.

The URL hash (``#m=tiny&p=hello&s=3``) holds everything a view shows, so a copied link
is a permalink, and an exported view file holds the same record, so it reopens the view
as it was. Parsing never trusts the input: unknown keys are ignored, numbers are clamped
to the named limits below, and every value that had to change is reported as a warning
the page shows. The model name is only a name; ``registry`` resolves it against the
allow-listed folders. The decoding settings are those declared in ``brillm_core.decoding``:
their fields, link keys, ranges and defaults come from there (``VIEW_LIMITS`` narrows a few
ranges to what a page can draw). The Functional organisation page's settings are a part of the
record (``ViewState.org``, hash keys ``o_...``), validated here like every other field.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any
from urllib.parse import parse_qsl, urlencode

from brillm_core import RECALL_LIMITS
from brillm_core.decoding import DECODING, FLOAT32_MAX, NUMBERS, SETTINGS, Setting

VIEW_SCHEMA = "brillm-explorer/view"
VIEW_VERSION = 1
RENAMED = {"new_tokens": "max_new_tokens"}  # fields that view files written before took another name

MAX_PROMPT_CHARS = 2000
MAX_SEED = 2**31 - 1  # the organisation page's seed
MAX_STEP = 100_000
MAX_REROUTES = 16
MAX_GRAPH_K = 20
MAX_HOPS, MAX_BRANCH, MAX_BEAM = (RECALL_LIMITS[k] for k in ("hops", "branch", "beam"))
MAX_START_SIGNAL = 4096
MAX_NAME_CHARS = 200
MAX_NODE = 10_000_000
# The explorer's own bounds on some decoding settings: a page draws every step of a path, and the state
# travels through the browser as JSON, whose numbers keep integers exactly only up to 2**53.
VIEW_LIMITS = {"max_new_tokens": 256, "seed": 2**53 - 1, "top_k": 10_000_000, "memory_window": MAX_STEP}
UNSET = 0  # a whole-number setting that may be unset (top-k, memory window) is written 0 in forms and links

# Functional organisation (``OrgSettings``)
MAX_STIMULUS_CHARS = 5000
WORD_RATE_RANGE = (0.5, 10.0)  # words per second
TR_RANGE = (0.5, 5.0)  # seconds per volume
MAX_ATOMS = 32
ALPHA_RANGE = (0.0, 5.0)  # sparsity of the dictionary learning
PERMUTATION_RANGE = (10, 2000)
VOLUME_RANGE = (60, 600)  # the simulator's sizes from here on
SIM_NODE_RANGE = (4, 200)
UNIT_RANGE = (2, 32)
VOXEL_RANGE = (200, 8000)
MAX_TRUE_ATOMS = 16
UPLOAD_KINDS = ("stimulus", "brain", "templates")
UPLOAD_KEY = re.compile(r"[0-9a-f]{24}|")  # a content hash (see ``uploads``), or none
ORG_CHOICES = {"source": ("sim", "model", "upload"), "kind": ("node_gated", "landscape"),
               "pool": ("sum", "mean", "last"), "method": ("ols_ar", "ols", "ridge"),
               "encoding": ("auto", "joint", "per-atom")}
ORG_LIMITS: dict[str, tuple[float, float]] = {
    "word_rate": WORD_RATE_RANGE, "tr": TR_RANGE, "k": (1, MAX_ATOMS), "alpha": ALPHA_RANGE, "seed": (0, MAX_SEED),
    "n_perm": PERMUTATION_RANGE, "n_tr": VOLUME_RANGE, "nodes": SIM_NODE_RANGE, "units": UNIT_RANGE,
    "voxels": VOXEL_RANGE, "k_true": (1, MAX_TRUE_ATOMS), "atom": (0, MAX_ATOMS - 1),
}
ORG_VIEW_ONLY = ("atom",)  # what the page shows of a result, not what it computes
SIMULATOR_ONLY = ("n_tr", "nodes", "units", "voxels", "k_true")
ORG_IGNORED = {"sim": ("text", "word_rate", "kind", "pool", *UPLOAD_KINDS), "model": (*SIMULATOR_ONLY, *UPLOAD_KINDS),
               "upload": (*SIMULATOR_ONLY, "text")}  # fields each data source does not read


@dataclass(frozen=True)
class OrgSettings:
    """What the Functional organisation page runs and shows (the checkpoint is ``ViewState.model``)."""

    source: str = "sim"
    text: str = ""
    word_rate: float = 2.5
    tr: float = 1.5
    kind: str = "node_gated"
    pool: str = "sum"
    k: int = 6
    alpha: float = 0.2
    seed: int = 0
    method: str = "ols_ar"
    encoding: str = "auto"
    n_perm: int = 200
    n_tr: int = 200
    nodes: int = 40
    units: int = 16
    voxels: int = 1200
    k_true: int = 6
    atom: int = 0
    stimulus: str = ""  # upload keys (source "upload")
    brain: str = ""
    templates: str = ""

    def request(self) -> dict[str, Any]:
        """What the computation depends on (each source ignores the others' fields)."""
        return {k: v for k, v in asdict(self).items() if k not in ORG_VIEW_ONLY and k not in ORG_IGNORED[self.source]}


ORG_DEFAULT = OrgSettings()


def view_range(setting: Setting) -> tuple[float, float]:
    """The values a link or the form may give a decoding setting: its declared range within ``VIEW_LIMITS``,
    from ``UNSET`` when it may be unset."""
    low = UNSET if setting.default is None else setting.low
    high = min(v for v in (setting.high, VIEW_LIMITS.get(setting.name), math.inf) if v is not None)
    return (-math.inf if low is None else low), high


def view_default(name: str) -> Any:
    """A decoding setting's declared default as the view holds it (unset: ``UNSET``, or no numbers)."""
    setting = SETTINGS[name]
    if setting.default is None:
        return () if setting.kind is NUMBERS else UNSET
    return setting.default


@dataclass(frozen=True)
class ViewState:
    """Everything a view shows: checkpoint, prompt, decoding, step, selection, page knobs."""

    model: str = ""
    prompt: str = ""
    # the decoding settings, as brillm_core.decoding declares them
    max_new_tokens: int = view_default("max_new_tokens")
    greedy: bool = view_default("greedy")
    temperature: float = view_default("temperature")
    top_k: int = view_default("top_k")  # UNSET: every node
    seed: int = view_default("seed")
    release_decoder: bool = view_default("release_decoder")
    start_signal: tuple[float, ...] = view_default("start_signal")  # empty: the model's default ones(d) / d
    memory_window: int = view_default("memory_window")  # UNSET: the whole memory
    step: int = 0
    reroutes: tuple[tuple[int, int], ...] = ()  # (step, node) applied in order
    node: int = -1  # selected node, -1 = none
    graph_k: int = 3
    hops: int = 3
    branch: int = 5
    beam: int = 64
    model_b: str = ""  # the second checkpoint of the Compare view
    org: OrgSettings = ORG_DEFAULT  # the Functional organisation page's settings

    def with_(self, **changes: Any) -> "ViewState":
        """A copy with some fields changed (then re-validated)."""
        state, _ = from_dict({**to_dict(self), **changes})
        return state


DEFAULT = ViewState()
_SHORT = {
    "model": "m", "prompt": "p", **{s.name: s.key for s in DECODING}, "step": "s", "reroutes": "r",
    "node": "node", "graph_k": "gk", "hops": "h", "branch": "b", "beam": "bm", "model_b": "mb",
}
_ORG_SHORT = {f.name: f"o_{f.name}" for f in fields(OrgSettings)}
_LONG = {v: k for k, v in _SHORT.items()}
_ORG_LONG = {v: k for k, v in _ORG_SHORT.items()}
_INT_LIMITS = {
    "step": (0, MAX_STEP), "node": (-1, MAX_NODE), "graph_k": (1, MAX_GRAPH_K), "hops": (1, MAX_HOPS),
    "branch": (1, MAX_BRANCH), "beam": (1, MAX_BEAM),
}


@dataclass
class _Checker:
    """Collects warnings while coercing raw values."""

    warnings: list[str] = field(default_factory=list)

    def integer(self, name: str, raw: Any, lo: int, hi: int, default: int) -> int:
        """An int clamped to [lo, hi]; the default when unreadable."""
        try:
            value = int(float(raw)) if not isinstance(raw, bool) else int(raw)
        except (TypeError, ValueError, OverflowError):
            self.warnings.append(f"{name}={raw!r} is not a number; using {default}")
            return default
        if not lo <= value <= hi:
            clamped = min(max(value, lo), hi)
            self.warnings.append(f"{name}={value} is outside {_span(lo, hi)}; using {clamped}")
            value = clamped
        return value

    def number(self, name: str, raw: Any, lo: float, hi: float, default: float) -> float:
        """A finite float clamped to [lo, hi]; the default when unreadable."""
        try:
            value = float(raw)
        except (TypeError, ValueError):
            value = math.nan
        if not math.isfinite(value):
            self.warnings.append(f"{name}={raw!r} is not a finite number; using {default}")
            return default
        if not lo <= value <= hi:
            self.warnings.append(f"{name}={value:g} is outside {_span(lo, hi)}; using {min(max(value, lo), hi):g}")
        return min(max(value, lo), hi)

    def flag(self, name: str, raw: Any, default: bool) -> bool:
        """A boolean from 1/0/true/false."""
        if isinstance(raw, bool):
            return raw
        text = str(raw).strip().lower()
        if text in ("1", "true", "yes", "on"):
            return True
        if text in ("0", "false", "no", "off", ""):
            return False
        self.warnings.append(f"{name}={raw!r} is not 0 or 1; using {int(default)}")
        return default

    def choice(self, name: str, raw: Any, options: tuple[str, ...], default: str) -> str:
        """One of ``options``; the default otherwise."""
        if raw in options:
            return raw
        self.warnings.append(f"{name}={str(raw)[:40]!r} is not one of {', '.join(options)}; using {default}")
        return default

    def key(self, name: str, raw: Any) -> str:
        """An upload's content hash (or none); anything else is ignored."""
        value = str(raw)
        if UPLOAD_KEY.fullmatch(value):
            return value
        self.warnings.append(f"{name}={value[:40]!r} is not an upload key; ignored")
        return ""

    def text(self, name: str, raw: Any, limit: int) -> str:
        """A string cut to ``limit`` characters."""
        value = raw if isinstance(raw, str) else ("" if raw is None else str(raw))
        if len(value) > limit:
            self.warnings.append(f"{name} is longer than {limit} characters; cut")
            value = value[:limit]
        return value

    def floats(self, name: str, raw: Any) -> tuple[float, ...]:
        """Finite float32 numbers from a list or a comma-separated string; empty when unreadable."""
        items = raw if isinstance(raw, (list, tuple)) else [p for p in str(raw or "").split(",") if p.strip()]
        try:
            values = tuple(float(v) for v in items[:MAX_START_SIGNAL])
        except (TypeError, ValueError):
            values = (math.nan,)
        if not all(math.isfinite(v) and abs(v) <= FLOAT32_MAX for v in values):
            self.warnings.append(f"{name} must be finite numbers separated by commas; using the default")
            return ()
        return values

    def setting(self, setting: Setting, raw: Any) -> Any:
        """A decoding setting's value, checked and clamped by its declaration and ``view_range``."""
        default = view_default(setting.name)
        if setting.kind is bool:
            return self.flag(setting.name, raw, default)
        if setting.kind is NUMBERS:
            return self.floats(setting.name, raw)
        if setting.kind is int:
            return self.integer(setting.name, raw, *view_range(setting), default)
        return self.number(setting.name, raw, *view_range(setting), default)

    def pairs(self, name: str, raw: Any) -> tuple[tuple[int, int], ...]:
        """(step, node) pairs from a list of pairs or 'step:node;step:node'."""
        if isinstance(raw, (list, tuple)):
            items = list(raw)
        else:
            items = [p.split(":") for p in str(raw or "").split(";") if p.strip()]
        out = []
        for item in items[:MAX_REROUTES]:
            try:
                step, node = (int(v) for v in item)
            except (TypeError, ValueError):
                self.warnings.append(f"{name} entry {item!r} is not step:node; ignored")
                continue
            if 0 <= step <= MAX_STEP and node >= 0:
                out.append((step, node))
            else:
                self.warnings.append(f"{name} entry {step}:{node} is out of range; ignored")
        if len(items) > MAX_REROUTES:
            self.warnings.append(f"at most {MAX_REROUTES} re-routes are kept")
        return tuple(out)


def from_dict(data: dict[str, Any]) -> tuple[ViewState, list[str]]:
    """A validated state from long field names (the organisation's under ``org``); unknown keys are
    ignored. Returns warnings."""
    check = _Checker()
    values: dict[str, Any] = {}
    for f in fields(ViewState):
        if f.name not in data:
            continue
        raw, default = data[f.name], getattr(DEFAULT, f.name)
        if f.name == "org":
            raw = asdict(raw) if isinstance(raw, OrgSettings) else raw
            if not isinstance(raw, dict):
                check.warnings.append("org is not a set of settings; using the defaults")
                continue
        if f.name in SETTINGS:
            values[f.name] = check.setting(SETTINGS[f.name], raw)
        elif f.name in _INT_LIMITS:
            values[f.name] = check.integer(f.name, raw, *_INT_LIMITS[f.name], default)
        elif f.name == "prompt":
            values[f.name] = check.text(f.name, raw, MAX_PROMPT_CHARS)
        elif f.name in ("model", "model_b"):
            values[f.name] = check.text(f.name, raw, MAX_NAME_CHARS)
        elif f.name == "reroutes":
            values[f.name] = check.pairs(f.name, raw)
        elif f.name == "org":
            values[f.name] = _org_from_dict(raw, check)
    return replace(DEFAULT, **values), check.warnings


def _org_from_dict(data: dict[str, Any], check: _Checker) -> OrgSettings:
    """Validated organisation settings (warnings go to ``check``)."""
    values: dict[str, Any] = {}
    for f in fields(OrgSettings):
        if data.get(f.name) is None:
            continue
        raw, default = data[f.name], getattr(ORG_DEFAULT, f.name)
        if f.name in ORG_CHOICES:
            values[f.name] = check.choice(f.name, raw, ORG_CHOICES[f.name], default)
        elif f.name in UPLOAD_KINDS:
            values[f.name] = check.key(f.name, raw)
        elif f.name == "text":
            values[f.name] = check.text(f.name, raw, MAX_STIMULUS_CHARS)
        elif isinstance(default, int):
            values[f.name] = check.integer(f.name, raw, *(int(v) for v in ORG_LIMITS[f.name]), default)
        else:
            values[f.name] = check.number(f.name, raw, *ORG_LIMITS[f.name], default)
    return replace(ORG_DEFAULT, **values)


def _span(lo: float, hi: float) -> str:
    """A range in a warning: "0..256", "0.001 or more" (whole numbers written in full)."""
    def text(v: float) -> str:
        return str(v) if isinstance(v, int) else f"{v:g}"

    return f"{text(lo)} or more" if hi == math.inf else f"{text(lo)}..{text(hi)}"


def to_dict(state: ViewState) -> dict[str, Any]:
    """Long field names -> JSON-ready values."""
    data = asdict(state)
    data["start_signal"] = list(state.start_signal)
    data["reroutes"] = [list(r) for r in state.reroutes]
    return data


def number_text(value: float) -> str:
    """A float as a link or a form writes it: short ("0.7", "1e-05"), and read back as the same float."""
    short = f"{value:g}"
    return short if float(short) == value else repr(value)


def to_hash(state: ViewState) -> str:
    """``#key=value&...`` with only the fields that differ from the defaults."""
    items = []
    for name, short in _SHORT.items():
        value = getattr(state, name)
        if value == getattr(DEFAULT, name):
            continue
        if isinstance(value, bool):
            value = int(value)
        elif name == "reroutes":
            value = ";".join(f"{s}:{n}" for s, n in value)
        elif isinstance(value, tuple):
            value = ",".join(number_text(v) for v in value)
        elif isinstance(value, float):
            value = number_text(value)
        items.append((short, value))
    for name, value in asdict(state.org).items():
        if value != getattr(ORG_DEFAULT, name):
            items.append((_ORG_SHORT[name], f"{value:g}" if isinstance(value, float) else value))
    return "#" + urlencode(items) if items else ""


def from_hash(text: str | None) -> tuple[ViewState, list[str]]:
    """Parse a URL hash (with or without '#'); bad values become warnings, never errors."""
    raw = (text or "").lstrip("#")
    if len(raw) > 4 * MAX_PROMPT_CHARS + 2000:
        return DEFAULT, ["the link is too long; its settings were ignored"]
    data: dict[str, Any] = {"org": {}}
    for key, value in parse_qsl(raw, keep_blank_values=True):
        if key in _LONG:
            data[_LONG[key]] = value
        elif key in _ORG_LONG:
            data["org"][_ORG_LONG[key]] = value
    return from_dict(data)


def export_document(view: str, state: ViewState, data: Any) -> str:
    """The JSON a view exports: schema, version, view name, its state and its numbers."""
    doc = {"schema": VIEW_SCHEMA, "version": VIEW_VERSION, "view": view, "state": to_dict(state), "data": data}
    return json.dumps(doc, allow_nan=False, ensure_ascii=False)


def import_document(text: str) -> tuple[str, ViewState, list[str]]:
    """Read an exported view file back: (view name, state, warnings); ValueError if not one."""
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"not a JSON file: {exc}") from exc
    if not isinstance(doc, dict) or doc.get("schema") != VIEW_SCHEMA:
        raise ValueError(f"not an explorer view file (expected schema {VIEW_SCHEMA!r})")
    if doc.get("version") != VIEW_VERSION:
        raise ValueError(f"view file version {doc.get('version')!r} is not supported (this build reads {VIEW_VERSION})")
    state = doc.get("state")
    if not isinstance(state, dict):
        raise ValueError("view file has no state object")
    view_state, warnings = from_dict({RENAMED.get(k, k): v for k, v in state.items()})
    return str(doc.get("view", "")), view_state, warnings

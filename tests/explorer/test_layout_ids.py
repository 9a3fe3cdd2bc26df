"""Validation layout: every id a callback names exists in some page's layout (or the nav bar), so a
renamed component cannot silently unplug a callback (the app must suppress callback exceptions for
its multi-page layout, so Dash itself does not check this)."""

from __future__ import annotations

import importlib
import json
from pathlib import Path
from typing import Any

import dash
import pytest

from explorer.app import create_app


def layout_ids(component: Any) -> set[str]:
    """Every string id in a component tree (pattern-matching dict ids are created by callbacks)."""
    found: set[str] = set()
    stack = [component]
    while stack:
        item = stack.pop()
        if isinstance(item, (list, tuple)):
            stack.extend(item)
            continue
        if not hasattr(item, "to_plotly_json"):
            continue
        if isinstance(getattr(item, "id", None), str):
            found.add(item.id)
        for name in getattr(item, "_prop_names", []):
            value = getattr(item, name, None)
            if hasattr(value, "to_plotly_json") or isinstance(value, (list, tuple)):
                stack.append(value)
    return found


def callback_ids(app: dash.Dash) -> set[str]:
    """Every plain (non-pattern) component id named by a callback's outputs, inputs or states."""
    names: set[str] = set()
    for key, spec in app.callback_map.items():
        outputs = key[2:-2].split("...") if key.startswith("..") else [key]
        names.update(o.rsplit(".", 1)[0] for o in outputs if "." in o)  # a callback without outputs: a hash
        names.update(d["id"] for d in (*spec["inputs"], *spec["state"]))
    return {n.split("@", 1)[0] for n in names if not n.startswith("{")}


def all_layout_ids(app: dash.Dash) -> set[str]:
    """Ids in the app's layout and every page's layout (the validation layout)."""
    ids = layout_ids(app.layout)
    for page in dash.page_registry.values():
        layout = page["layout"]() if callable(page["layout"]) else page["layout"]
        ids |= layout_ids(layout)
    return ids


def unplugged(app: dash.Dash) -> list[str]:
    """Ids that callbacks name but no layout has."""
    return sorted(callback_ids(app) - all_layout_ids(app))


def test_every_callback_id_is_in_a_layout(model_root: Path, cache_dir: Path) -> None:
    app = create_app([model_root], cache_dir)
    missing = unplugged(app)
    assert missing == [], f"callbacks name ids no layout has: {json.dumps(missing)}"
    # the walk reaches page ids, the organisation page's included
    assert {"sp-steps", "sp-slider", "sp-step-label", "rc-table", "cp-edges", "fo-k", "fo-brain"} <= all_layout_ids(app)


def renamed(component: Any, old: str, new: str) -> Any:
    """The component tree with the id ``old`` renamed ``new`` (in place)."""
    stack = [component]
    while stack:
        item = stack.pop()
        if isinstance(item, (list, tuple)):
            stack.extend(item)
        elif hasattr(item, "to_plotly_json"):
            if getattr(item, "id", None) == old:
                item.id = new
            stack.extend(getattr(item, name, None) for name in getattr(item, "_prop_names", []))
    return component


@pytest.mark.parametrize("module, old", [("recall", "rc-node"), ("organization", "fo-k"), ("signal_path", "sp-undo"),
                                         ("compare", "cp-swap"), ("model_card", "mc-own"),
                                         ("token_graph", "tg-zoom"), ("teaching", "te-tour-end")])
def test_a_renamed_id_is_caught(model_root: Path, cache_dir: Path, monkeypatch: pytest.MonkeyPatch, module: str,
                                old: str) -> None:
    page = importlib.import_module(f"explorer.pages.{module}")
    layout = page.layout
    monkeypatch.setattr(page, "layout", lambda **query: renamed(layout(**query), old, old + "-renamed"))
    assert unplugged(create_app([model_root], cache_dir)) == [old]

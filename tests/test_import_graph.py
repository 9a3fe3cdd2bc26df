"""The engine's import graph, drawn by grimp: no circle inside brillm_core, and nothing of the app imported from it.

The app (``explorer``) and its libraries (Dash, Plotly) build on the engine, never the
other way round: the engine is usable, and importable, without them. A command the app
adds to ``brillm`` comes through an entry point, so no module of the engine names it,
not even in a string for ``importlib``.
"""

from __future__ import annotations

import re
from pathlib import Path

import grimp
import networkx as nx
import pytest

ENGINE = "brillm_core"
APP = ("explorer", "dash", "plotly")
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def graph() -> grimp.ImportGraph:
    """Every import of every brillm_core module (inside functions too), external packages by their top name."""
    return grimp.build_graph(ENGINE, include_external_packages=True, cache_dir=None)


def engine_imports(graph: grimp.ImportGraph) -> nx.DiGraph:
    """The directed graph of imports between brillm_core's own modules."""
    edges = nx.DiGraph()
    for module in graph.modules:
        if module.split(".")[0] == ENGINE:
            edges.add_node(module)
            edges.add_edges_from((module, imported) for imported in graph.find_modules_directly_imported_by(module)
                                 if imported.split(".")[0] == ENGINE)
    return edges


def test_no_import_circle_in_the_engine(graph: grimp.ImportGraph) -> None:
    edges = engine_imports(graph)
    assert len(edges) > 40  # the graph really holds the engine's modules
    circles = [sorted(part) for part in nx.strongly_connected_components(edges) if len(part) > 1]
    circles += [[module] for module in nx.nodes_with_selfloops(edges)]
    assert circles == [], "import circles: " + "; ".join(" <-> ".join(c) for c in circles)


def test_the_engine_imports_nothing_of_the_app(graph: grimp.ImportGraph) -> None:
    upward = sorted((module, imported) for module in graph.modules if module.split(".")[0] == ENGINE
                    for imported in graph.find_modules_directly_imported_by(module) if imported.split(".")[0] in APP)
    assert upward == []


def test_no_engine_module_names_the_app_for_a_dynamic_import() -> None:
    named = re.compile(r"""["'](?:%s)(?:[.:"'])""" % "|".join(APP))
    found = [f"{path.relative_to(ROOT)}:{number}" for path in sorted((ROOT / ENGINE).rglob("*.py"))
             for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1) if named.search(line)]
    assert found == []

"""The notebook example runs: its code cells, executed in order as a script, give the figures it promises."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import plotly.graph_objects as go

from brillm_core import Trace

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = ROOT / "docs" / "trace_in_a_notebook.ipynb"


def test_the_notebook_example_runs_and_shows_the_traces_numbers(monkeypatch) -> None:
    cells = json.loads(NOTEBOOK.read_text("utf-8"))["cells"]
    code = ["".join(cell["source"]) for cell in cells if cell["cell_type"] == "code"]
    monkeypatch.chdir(ROOT)  # the notebook opens sample_models/ from the repository's root
    namespace: dict = {}
    shown = []
    for source in code:  # each cell's last line is what a notebook would display
        *body, last = source.rstrip().splitlines()
        exec(compile("\n".join(body), str(NOTEBOOK), "exec"), namespace)
        shown.append(eval(compile(last.split("  #")[0], str(NOTEBOOK), "eval"), namespace))
    trace, bars, stages, memory = shown
    assert isinstance(trace, Trace) and trace.num_steps == trace.prompt_length - 1 + 8
    table = trace._repr_html_()
    assert table.count("<tr") == trace.num_steps + 1 and f"model {trace.model_id}" in table
    chosen = float(trace.to_frame()["energy"].iloc[-1])
    assert f"<td>{chosen:.9g}</td>" in table
    assert np.float32(f"{chosen:.9g}") == np.float32(chosen)  # the float32 energy itself, not a rounded one
    first_new = trace.prompt_length - 1
    best = float(trace.energies[first_new].nan_to_num(nan=float("-inf")).max())
    assert isinstance(bars, go.Figure) and max(bars.data[0].y) == best  # the chart shows the engine's energies
    assert isinstance(stages, go.Figure) and isinstance(memory, go.Figure)
    assert list(memory.data[0].y) == list(namespace["profile"].by_distance)

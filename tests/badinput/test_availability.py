"""One request must never freeze the server: costly inputs are bounded before work starts.

Each test sends what an attacker or a hurried user would (a huge number in a box, a forged callback)
to the app served in this process (see conftest) and checks that the answer comes at once and says
what was changed.
"""

from __future__ import annotations

import itertools
import random
import time

import pytest
import requests

from explorer.pages.recall import propagation_steps
from explorer.testing.dash_client import DashSession, dependencies


def quick_session(served, seconds: float = 10.0) -> DashSession:
    """A page load whose requests give up after ``seconds`` (a hung callback fails the test, not the run)."""
    http = requests.Session()
    return DashSession(str(served["url"]), dependencies(str(served["url"]), http), http, timeout=seconds)


def test_recall_cost_of_a_million_hops_is_clamped_first(served) -> None:
    """The Hops box with 1,000,000: the estimate is for the 32 hops a run would use, answered at once
    (it used to sum branch ** h over every typed hop: hours of CPU)."""
    session = quick_session(served)
    start = time.perf_counter()
    out = session.call("rc-cost.children", {"rc-hops.value": 1_000_000, "rc-branch.value": 64, "rc-beam.value": 1024},
                       "rc-hops.value")
    assert time.perf_counter() - start < 2.0
    shown = out["rc-cost"]["children"]
    assert f"at most {propagation_steps(32, 64, 1024):,} propagation steps" in shown and "using 32" in shown


def test_the_closed_form_matches_the_sum() -> None:
    for hops, branch, beam in itertools.product(range(1, 12), range(1, 9), (1, 2, 5, 64, 1024)):
        assert propagation_steps(hops, branch, beam) == sum(min(branch ** h, beam) for h in range(hops))


def test_recall_on_overflowing_weights_says_so(served) -> None:
    """Weights that overflow float32: the Recall page shows the error (it showed an empty result)."""
    out, meta = quick_session(served, 60).open_link("rc", "#m=over&p=ab&h=2")
    assert "overflowed float32" in str((meta or {}).get("error")) + str(out.get("rc-msg-state", ""))


WRONG_VALUES = ["x", 5, -1, 10**30, 1.5, [1, 2], {"a": 1}, [], {}, True, None, "9" * 500, [[["deep"]]],
                {"key": 5, "request": "x", "points": 3, "model": 7}]


def test_forged_values_for_every_callback_are_answered_400_not_500(served) -> None:
    """Every callback of the app, sent values of the wrong types: a 400 (or a normal answer), never a server
    error (8,000 such requests used to give 1,667 HTTP 500s)."""
    session = quick_session(served, 60)
    rng = random.Random(20)
    codes: dict[int, list[str]] = {}
    for dep in session.callbacks:
        for _ in range(4):
            values = {f"{i['id']}.{i['property']}": rng.choice(WRONG_VALUES) for i in dep["inputs"] + dep["state"]}
            body = session._body(dep, values, f"{dep['inputs'][0]['id']}.{dep['inputs'][0]['property']}")
            answer = session.http.post(str(served["url"]) + "/_dash-update-component", json=body,
                                       params={"endId": session.end_id}, timeout=60)
            codes.setdefault(answer.status_code, []).append(dep["output"][:60])
    assert 500 not in codes, sorted(set(codes[500]))
    assert set(codes) <= {200, 204, 400, 429} and len(codes.get(400, [])) > 100
    assert requests.get(str(served["url"]) + "/", timeout=30).status_code == 200


@pytest.mark.parametrize("body", [
    [1, 2], "text", {"output": "no-such.children", "inputs": [], "state": []},
    {"output": "rc-cost.children"}, {"output": "rc-cost.children", "inputs": "x", "state": []},
    {"output": "rc-cost.children", "inputs": [{"id": "rc-hops", "property": "value", "value": 3}], "state": []},
    {"output": "rc-cost.children", "inputs": [{"id": "sp-url", "property": "hash"}] * 3, "state": []},
], ids=["list", "string", "unknown-output", "no-inputs", "inputs-not-a-list", "too-few-inputs", "other-inputs"])
def test_a_malformed_callback_request_is_answered_400(served, body) -> None:
    answer = requests.post(str(served["url"]) + "/_dash-update-component", json=body, timeout=30)
    assert answer.status_code == 400 and "Traceback" not in answer.text

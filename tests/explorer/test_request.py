"""One request type: each kind of result reads its declared fields, and pages that need the same result
share its cache key."""

from __future__ import annotations

from explorer import compute
from explorer.pages import compare, recall, signal_path, teaching, token_graph
from explorer.request import READS, ask
from explorer.state import ViewState

STATE = ViewState(model="alpha", prompt="ab", max_new_tokens=4, temperature=0.5, seed=3, hops=2, node=4,
                  model_b="beta", graph_k=5, step=2)


class Named:
    """A stand-in checkpoint: the keys read only its content id."""

    model_id = "0123456789abcdef"


def test_a_request_holds_what_its_kind_reads_and_nothing_else() -> None:
    for kind, fields in READS.items():
        request = ask(kind, STATE)
        assert set(request.fields) == set(fields)
        assert ask(kind, STATE.with_(step=7, graph_k=2)) == request  # view knobs never make another request
    assert ask("recall", STATE) == ask("recall", STATE.with_(max_new_tokens=9))  # recall generates nothing
    assert ask("path", STATE) != ask("path", STATE.with_(max_new_tokens=9))
    assert ask("compare", STATE).models == ("alpha", "beta") and ask("path", STATE).models == ("alpha",)


def test_every_page_asks_through_the_one_request_type() -> None:
    assert {page.PAGE.kind for page in (signal_path, token_graph, teaching)} == {"path"}
    assert (recall.PAGE.kind, compare.PAGE.kind) == ("recall", "compare")
    job = signal_path.PAGE.request(STATE).to_json()
    assert job["kind"] == "path" and job["model"] == "alpha" and job["max_new_tokens"] == 4


def test_the_keys_come_from_the_request() -> None:
    assert compute.path_key(Named(), STATE) == ask("path", STATE).key(Named.model_id)
    assert compute.recall_key(Named(), STATE) == ask("recall", STATE).key(Named.model_id)
    assert compute.path_key(Named(), STATE) != compute.recall_key(Named(), STATE)

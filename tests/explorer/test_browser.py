"""Browser tests (headless Chromium through dash[testing]): each view's main interaction."""

from __future__ import annotations

import json
import re
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.keys import Keys

from brillm_core import load_checkpoint, recall_activation
from explorer.app import create_app

from .browser import no_console_errors, open_link, texts, wait_until

pytestmark = pytest.mark.browser


def chips(dash_duo) -> list[str]:
    """Texts of the token chips."""
    return texts(dash_duo, "#sp-chips .chip")


def read_download(dash_duo, name: str) -> str | None:
    """The downloaded file's text once it is complete, else None."""
    path = Path(dash_duo.download_path) / name
    return path.read_text() or None if path.exists() else None


def step_label(dash_duo) -> str:
    """The step label text."""
    return "".join(texts(dash_duo, "#sp-step-label"))


@pytest.fixture
def app(model_root: Path, cache_dir: Path, tmp_path: Path):
    broken = tmp_path / "more" / "broken"
    broken.mkdir(parents=True)
    for f in (model_root / "alpha").iterdir():
        (broken / f.name).write_bytes(f.read_bytes())
    (broken / "model.safetensors").write_bytes(b"truncated")
    return create_app([model_root, tmp_path / "more"], cache_dir)


def generate(dash_duo, prompt: str, new_tokens: int = 4) -> None:
    """Once the page has applied its link, type a prompt and settings, press Generate, wait for the chips."""
    wait_until(lambda: dash_duo.find_element("#sp-prompt").is_enabled())
    dash_duo.find_element("#sp-prompt").send_keys(Keys.CONTROL, "a")  # in place of a bare link's example
    dash_duo.find_element("#sp-prompt").send_keys(prompt)
    dash_duo.find_element(".settings-box summary").click()
    box = dash_duo.find_element("#sp-max-new-tokens")
    box.send_keys(Keys.CONTROL, "a")
    box.send_keys(str(new_tokens))
    wait_until(lambda: dash_duo.find_element("#sp-go").is_enabled())  # disabled while the page's first job runs
    dash_duo.find_element("#sp-go").click()
    wait_until(lambda: len(chips(dash_duo)) == len(prompt) + new_tokens)


def test_generate_step_play_reroute(dash_duo, app) -> None:
    dash_duo.start_server(app)
    dash_duo.wait_for_element("#sp-prompt")
    generate(dash_duo, "abc", 4)
    wait_until(lambda: step_label(dash_duo).startswith("step 0 of 0–5"))
    body = dash_duo.find_element("body")
    body.send_keys(Keys.ARROW_RIGHT)
    wait_until(lambda: step_label(dash_duo).startswith("step 1 of 0–5"))
    body.send_keys(Keys.ARROW_LEFT)
    wait_until(lambda: step_label(dash_duo).startswith("step 0 of 0–5"))
    wait_until(lambda: "s=" not in dash_duo.driver.current_url)  # the link is written after the frame
    body.send_keys(Keys.ARROW_RIGHT)
    body.send_keys(Keys.ARROW_RIGHT)
    wait_until(lambda: "s=2" in dash_duo.driver.current_url)
    dash_duo.find_element("#sp-play").click()
    wait_until(lambda: step_label(dash_duo).startswith("step 5 of 0–5"))
    wait_until(lambda: "play" in dash_duo.find_element("#sp-play").text)
    # re-route step 6 through the second strongest candidate, once its bars are drawn
    wait_until(lambda: "Step 5:" in "".join(texts(dash_duo, "#sp-energy .gtitle")))
    before = chips(dash_duo)
    bars = dash_duo.find_elements("#sp-energy .point path")
    ActionChains(dash_duo.driver).move_to_element(bars[1]).click().perform()
    wait_until(lambda: "r=5" in dash_duo.driver.current_url)
    wait_until(lambda: dash_duo.find_element("#sp-original").text.startswith("Before re-routing"))
    assert chips(dash_duo)[:-1] == before[:-1]
    no_console_errors(dash_duo)


def record_first_prompt_box(dash_duo) -> None:
    """Have every page load record the prompt box as it is when first drawn (window.firstPromptBox)."""
    dash_duo.driver.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source": """
        new MutationObserver((_, observer) => {
            const box = document.getElementById("sp-prompt");
            if (box && !window.firstPromptBox) {
                window.firstPromptBox = {disabled: box.disabled, value: box.value};
                observer.disconnect();
            }
        }).observe(document, {childList: true, subtree: true});"""})


def test_permalink_switch_and_export(dash_duo, app) -> None:
    dash_duo.start_server(app)
    record_first_prompt_box(dash_duo)
    open_link(dash_duo, "/#m=beta&p=hello&n=3&s=4")
    # the prompt box opens for typing only together with the link's state, which would overwrite typing
    assert wait_until(lambda: dash_duo.driver.execute_script("return window.firstPromptBox")) == {
        "disabled": True, "value": ""}
    box = wait_until(lambda: dash_duo.find_element("#sp-prompt").is_enabled() and dash_duo.find_element("#sp-prompt"))
    assert box.get_attribute("value") == "hello"
    wait_until(lambda: len(chips(dash_duo)) == 8)
    wait_until(lambda: step_label(dash_duo).startswith("step 4 of 0–6"))
    assert dash_duo.find_element("#sp-prompt").get_attribute("value") == "hello"
    first = chips(dash_duo)
    # switch checkpoints: same prompt, another path
    dash_duo.select_dcc_dropdown("#sp-model", "alpha")
    wait_until(lambda: "m=alpha" in dash_duo.driver.current_url)
    wait_until(lambda: chips(dash_duo) != first and len(chips(dash_duo)) == 8)
    dash_duo.find_element("#sp-json").click()
    path = Path(dash_duo.download_path) / "brillm-trace.json"
    wait_until(path.exists)
    doc = json.loads(wait_until(lambda: path.read_text() or None))
    assert doc["state"]["model"] == "alpha" and doc["state"]["prompt"] == "hello"
    assert len(doc["data"]["trace"]["steps"]) == 7
    dash_duo.find_element("#sp-csv").click()
    wait_until((Path(dash_duo.download_path) / "brillm-steps.csv").exists)
    # the exported file reopens the view from another page
    dash_duo.driver.get(dash_duo.server_url + "/card")
    dash_duo.wait_for_element("#mc-body table")
    dash_duo.find_element("#open-view input[type=file]").send_keys(str(path))
    wait_until(lambda: "m=alpha" in dash_duo.driver.current_url and "/card" not in dash_duo.driver.current_url)
    wait_until(lambda: step_label(dash_duo).startswith("step 0 of 0–6"))
    svg = dash_duo.driver.execute_async_script(
        "var done = arguments[0]; Plotly.toImage(document.querySelector('#sp-energy .js-plotly-plot'),"
        " {format: 'svg'}).then(done);")
    assert svg.startswith("data:image/svg+xml")
    no_console_errors(dash_duo)


def trace_types_in_the_app() -> set[str]:
    """Every plotly trace type the app's code names: ``go.<Trace>(`` calls and ``"type": "<trace>"`` entries."""
    import plotly.graph_objects as go
    from plotly.basedatatypes import BaseTraceType

    types = {name: cls().type for name in dir(go) if isinstance(cls := getattr(go, name), type)
             and issubclass(cls, BaseTraceType)}
    source = "".join(p.read_text() for p in (Path(__file__).resolve().parents[2] / "explorer").rglob("*.py"))
    named = {types[m] for m in re.findall(r"\bgo\.([A-Z]\w*)\(", source) if m in types}
    return named | {t for t in re.findall(r'"type": "(\w+)"', source) if t in types.values()}


def test_pages_use_the_bundled_cartesian_plotly_and_nothing_else(dash_duo, app) -> None:
    """assets/vendor holds plotly.js's cartesian bundle (1.5 MB against the full 4.8 MB): dcc.Graph takes it and
    never fetches the full one, and it has every trace type the app draws."""
    dash_duo.start_server(app)
    open_link(dash_duo, "/#m=alpha&p=hello&n=3")
    wait_until(lambda: len(chips(dash_duo)) == 8)
    version, scripts, registered = dash_duo.driver.execute_script(
        "return [Plotly.version, performance.getEntriesByType('resource').map(function (e) { return e.name; })"
        ".filter(function (n) { return /plotly/.test(n); }), Object.keys(Plotly.PlotSchema.get().traces)]")
    bundle = next((Path(__file__).resolve().parents[2] / "assets" / "vendor").glob("plotly-cartesian-*.min.js"))
    assert bundle.name == f"plotly-cartesian-{version}.min.js"
    assert [urlsplit(s).path.rsplit("/", 1)[-1] for s in scripts] == [bundle.name]  # not plotly.min.js
    used = trace_types_in_the_app()
    assert {"bar", "heatmap", "scatter"} <= used and used <= set(registered), used - set(registered)
    no_console_errors(dash_duo)


def test_bad_links_show_messages(dash_duo, app) -> None:
    dash_duo.start_server(app)
    open_link(dash_duo, "/#m=..%2F..%2Fetc&p=zz&n=abc&t=-1")
    wait_until(lambda: "not in the configured model folders" in dash_duo.find_element("#sp-msg-state").text)
    assert "new_tokens" in dash_duo.find_element("#sp-msg-state").text
    wait_until(lambda: len(chips(dash_duo)) == 2 + 16)
    dash_duo.select_dcc_dropdown("#sp-model", "broken")
    wait_until(lambda: "not a readable safetensors file" in dash_duo.find_element("#sp-msg").text)
    dash_duo.select_dcc_dropdown("#sp-model", "beta")
    wait_until(lambda: dash_duo.find_element("#sp-msg").text == "" and len(chips(dash_duo)) == 18)
    no_console_errors(dash_duo)


def test_token_graph_steps_and_node_details(dash_duo, app) -> None:
    dash_duo.start_server(app)
    open_link(dash_duo, "/graph#m=alpha&p=abc&n=3&gk=2&node=4")
    wait_until(lambda: "step 0 of 0–4" in "".join(texts(dash_duo, "#tg-step-label")))
    wait_until(lambda: "strongest out-edges" in "".join(texts(dash_duo, "#tg-details")))
    assert "#4" in "".join(texts(dash_duo, "#tg-details h4"))
    dash_duo.find_element("body").send_keys(Keys.ARROW_RIGHT)
    wait_until(lambda: "step 1 of 0–4" in "".join(texts(dash_duo, "#tg-step-label")))
    wait_until(lambda: dash_duo.driver.execute_script(  # the step layer draws step 1's two arrows
        "return document.querySelector('#tg-graph .js-plotly-plot').drawnStep.numbers.length") == 2)
    # the nav bar carries the hash to the next view
    dash_duo.find_element("a.nav-link[href='/recall']").click()
    wait_until(lambda: "/recall" in dash_duo.driver.current_url and "p=abc" in dash_duo.driver.current_url)
    wait_until(lambda: dash_duo.find_element("#rc-prompt").get_attribute("value") == "abc")
    no_console_errors(dash_duo)


def test_recall_run_table_export_and_cancel(dash_duo, app, model_root: Path) -> None:
    dash_duo.start_server(app)
    open_link(dash_duo, "/recall#m=alpha&p=ab&h=2&b=3&bm=4")
    wait_until(lambda: len(texts(dash_duo, "#rc-table td")) > 0)
    dash_duo.find_element("#rc-node").send_keys("3")
    wait_until(lambda: "node=3" in dash_duo.driver.current_url)
    wait_until(lambda: "#3" in "".join(texts(dash_duo, "#rc-reverse .gtitle")))
    dash_duo.find_element("#rc-json").click()
    doc = json.loads(wait_until(lambda: read_download(dash_duo, "brillm-recall.json")))
    ckpt = load_checkpoint(model_root / "alpha", device="cpu")
    assert doc["view"] == "recall" and doc["state"]["hops"] == 2 and doc["data"]["context"] == ckpt.encode("ab").ids
    expected = recall_activation(ckpt.model, ckpt.encode("ab").ids, hops=2, branch=3, beam=4).to_frame()
    assert [r["node"] for r in doc["data"]["ranked"]] == expected["node"].tolist()
    assert [r["activation"] for r in doc["data"]["ranked"]] == pytest.approx(expected["activation"].tolist())
    # a table row click chooses its node: link, node box and reverse view follow
    row = dash_duo.find_elements("#rc-table tbody tr")[3]
    node = row.find_elements("css selector", "td")[0].text
    row.find_elements("css selector", "td")[1].click()
    wait_until(lambda: f"node={node}" in dash_duo.driver.current_url)
    wait_until(lambda: dash_duo.find_element("#rc-node").get_attribute("value") == node)
    wait_until(lambda: f"#{node}" in "".join(texts(dash_duo, "#rc-reverse .gtitle")))
    # a long run, cancelled: the button comes back, the note says so, the old table stays, and the form
    # and the link show its settings again
    def long_run() -> None:
        for field, value in (("hops", "32"), ("branch", "30"), ("beam", "1024")):
            box = dash_duo.find_element(f"#rc-{field}")
            box.send_keys(Keys.CONTROL, "a")
            box.send_keys(value)
        wait_until(lambda: dash_duo.find_element("#rc-go").is_enabled())
        dash_duo.find_element("#rc-go").click()
        wait_until(lambda: not dash_duo.find_element("#rc-cancel").get_attribute("disabled"))

    long_run()
    dash_duo.find_element("#rc-cancel").click()
    wait_until(lambda: "Cancelled" in dash_duo.find_element("#rc-note").text)
    wait_until(lambda: not dash_duo.find_element("#rc-go").get_attribute("disabled"))
    wait_until(lambda: "h=2&b=3&bm=4" in dash_duo.driver.current_url)
    assert dash_duo.find_element("#rc-hops").get_attribute("value") == "2" and len(texts(dash_duo, "#rc-table td")) > 0
    # the same settings typed again run again after a cancel: the job starts
    long_run()
    wait_until(lambda: dash_duo.find_element("#rc-go").get_attribute("disabled"))
    assert "h=32" in dash_duo.driver.current_url
    no_console_errors(dash_duo)


def test_model_card(dash_duo, app) -> None:
    dash_duo.start_server(app)
    open_link(dash_duo, "/card#m=beta")
    wait_until(lambda: "hidden_size" in dash_duo.find_element("#mc-body").text)
    assert "4" in dash_duo.find_element("#mc-body").text
    wait_until(lambda: len(dash_duo.find_elements("#mc-loss .scatterlayer .trace")) == 1)
    no_console_errors(dash_duo)

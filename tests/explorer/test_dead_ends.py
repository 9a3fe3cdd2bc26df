"""Paths that used to do nothing: each says what is wrong or leads somewhere (browser tests)."""

from __future__ import annotations

from pathlib import Path

import pytest
from selenium.webdriver.common.keys import Keys

from explorer.app import create_app
from explorer.jobs import JobManager
from explorer.pages import teaching

from .browser import no_console_errors, open_link, text, texts, wait_until

pytestmark = pytest.mark.browser
TEACHING = Path(__file__).resolve().parents[2] / "sample_models" / "teaching"


@pytest.fixture
def app(model_root: Path, cache_dir: Path):
    return create_app([model_root, TEACHING], cache_dir)


def visible(dash_duo, selector: str) -> bool:
    """Some element matching ``selector`` is laid out on screen."""
    return dash_duo.driver.execute_script(
        "return Array.from(document.querySelectorAll(arguments[0])).some(e => e.offsetParent !== null"
        " && e.getBoundingClientRect().height > 0)", selector)


def test_empty_and_over_limit_input_say_what_is_wrong(dash_duo, app) -> None:
    dash_duo.driver.set_window_size(1440, 900)
    dash_duo.start_server(app)
    open_link(dash_duo, "/#m=alpha")
    # before any run: a note that says what to do, no empty plots
    wait_until(lambda: visible(dash_duo, "#sp-empty"))
    assert not visible(dash_duo, "#sp-energy") and "Type a prompt" in dash_duo.find_element("#sp-empty").text
    wait_until(lambda: dash_duo.find_element("#sp-go").is_enabled())
    dash_duo.find_element("#sp-go").click()
    wait_until(lambda: "prompt is empty" in dash_duo.find_element("#sp-msg-state").text)
    dash_duo.find_element("#sp-prompt").send_keys("ab")
    dash_duo.find_element(".settings-box summary").click()
    box = dash_duo.find_element("#sp-max-new-tokens")
    box.send_keys(Keys.CONTROL, "a")
    box.send_keys("500")
    wait_until(lambda: dash_duo.find_element("#sp-go").is_enabled())  # disabled while the empty run's job ends
    dash_duo.find_element("#sp-go").click()
    wait_until(lambda: "max_new_tokens=500 is outside 0..256; using 256" in dash_duo.find_element("#sp-msg-state").text)
    wait_until(lambda: "n=256" in dash_duo.driver.current_url)
    no_console_errors(dash_duo)


def test_teaching_from_the_nav_bar_opens_a_ready_example_and_the_tour_points_at_it(dash_duo, app) -> None:
    dash_duo.driver.set_window_size(1440, 900)
    dash_duo.start_server(app)
    open_link(dash_duo, "/#m=beta&p=hello&n=3")
    wait_until(lambda: len(texts(dash_duo, "#sp-chips .chip")) == 8)
    dash_duo.find_element("a.nav-link[href='/teach']").click()
    wait_until(lambda: "/teach" in dash_duo.driver.current_url)
    wait_until(lambda: "m=teaching" in dash_duo.driver.current_url)
    wait_until(lambda: len(texts(dash_duo, "#te-chips .chip")) >= 2)
    assert dash_duo.find_element("#te-prompt").get_attribute("value") != ""
    dash_duo.find_element("#te-tour-start").click()
    seen = []
    for position in range(20):
        title = wait_until(lambda: dash_duo.find_element("#te-tour-title").text)
        target = "#" + teaching.TOUR_TARGETS[position]
        wait_until(lambda: visible(dash_duo, target) and dash_duo.driver.execute_script(  # highlighted, on screen
            "return getComputedStyle(document.querySelector(arguments[0])).boxShadow !== 'none'", target))
        seen.append(title)
        button = dash_duo.find_element("#te-tour-next")
        if button.text == "finish":
            break
        button.click()
        wait_until(lambda: dash_duo.find_element("#te-tour-title").text != title)
    assert len(seen) == 8
    no_console_errors(dash_duo)


def test_open_view_file_on_the_page_that_exported_it(dash_duo, app) -> None:
    dash_duo.driver.set_window_size(1440, 900)
    dash_duo.start_server(app)
    open_link(dash_duo, "/#m=alpha&p=hello&n=3&s=2")
    wait_until(lambda: "".join(texts(dash_duo, "#sp-step-label")).startswith("step 2 of"))
    dash_duo.find_element("#sp-json").click()
    path = Path(dash_duo.download_path) / "brillm-trace.json"
    wait_until(lambda: path.exists() and path.read_text())
    # the view moves on (another checkpoint and step), then its own export brings it back as it was
    dash_duo.select_dcc_dropdown("#sp-model", "beta")
    wait_until(lambda: "m=beta" in dash_duo.driver.current_url)
    dash_duo.find_element("#open-view input[type=file]").send_keys(str(path))
    wait_until(lambda: "m=alpha" in dash_duo.driver.current_url)
    wait_until(lambda: "".join(texts(dash_duo, "#sp-step-label")).startswith("step 2 of"))
    assert dash_duo.find_element("#sp-prompt").get_attribute("value") == "hello"
    no_console_errors(dash_duo)


def test_organisation_model_source_runs_a_ready_example(dash_duo, app) -> None:
    dash_duo.start_server(app)
    open_link(dash_duo, "/organization#o_source=model&m=alpha&o_k=3&o_n_perm=20")
    wait_until(lambda: "built-in sample story" in dash_duo.find_element("#fo-note").text, timeout=120)
    assert "SIMULATED" in dash_duo.find_element("#fo-note").text and not dash_duo.find_elements("#fo-msg .error")
    # the page's example run is short: it says so, with the recording's measured null rate
    assert "57 volumes is below the 300" in dash_duo.find_element("#fo-msg").text
    no_console_errors(dash_duo)


def test_a_cached_link_reopens_without_a_job_and_a_new_one_still_runs(dash_duo, app, monkeypatch) -> None:
    started: list[str] = []
    call_job_fn = JobManager.call_job_fn

    def counting(self, key, job_fn, args, context):
        started.append(key)
        return call_job_fn(self, key, job_fn, args, context)

    monkeypatch.setattr(JobManager, "call_job_fn", counting)
    dash_duo.start_server(app)
    for link, label, page in (("/#m=alpha&p=abc&n=3&s=2", "#sp-step-label", "Signal path"),
                              ("/graph#m=alpha&p=abc&n=3&s=2", "#tg-step-label", "Token graph")):
        open_link(dash_duo, link)
        wait_until(lambda: text(dash_duo, label).startswith("step 2 of 0–4"))
        first = len(started)
        assert first >= 1, f"{page}: the first open computes the trace in a job"
        open_link(dash_duo, link)  # the same link again, from the cache
        wait_until(lambda: text(dash_duo, label).startswith("step 2 of 0–4"))
        assert len(started) == first, f"{page}: a cached link must not start a job"
    dash_duo.find_element("#tg-prompt").send_keys(Keys.CONTROL, "a")
    dash_duo.find_element("#tg-prompt").send_keys("bca", Keys.ENTER)  # not cached: the job runs
    wait_until(lambda: text(dash_duo, "#tg-step-label").startswith("step 0 of 0–4")
               and "p=bca" in dash_duo.driver.current_url)
    assert len(started) == first + 1
    no_console_errors(dash_duo)

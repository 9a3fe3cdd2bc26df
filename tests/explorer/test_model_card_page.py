"""The Model card page shows each bundled card as its Markdown means it, and the memory chart of its model."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from brillm_core import load_checkpoint, memory_profile
from explorer.app import create_app
from explorer.pages import model_card

from .browser import no_console_errors, open_link, wait_until

SAMPLES = Path(__file__).resolve().parents[2] / "sample_models"
LONGEST_EMPHASIS = 40  # characters: the cards emphasise a word or two, never a run of sentences


@pytest.mark.browser
def test_every_bundled_card_renders_as_written(dash_duo, cache_dir: Path) -> None:
    dash_duo.start_server(create_app([SAMPLES], cache_dir))
    for name in ("kjv-final", "kjv-early", "teaching"):
        open_link(dash_duo, f"/card#m={name}")
        wait_until(lambda: name in dash_duo.find_element(".model-card-text h1").text)
        card = dash_duo.find_element(".model-card-text")
        emphasised = [e.text for e in card.find_elements("css selector", "em, strong")]
        assert all(len(text) <= LONGEST_EMPHASIS for text in emphasised), (name, emphasised)
        links = [a.get_attribute("href") for a in card.find_elements("css selector", "a")]
        assert all(links), (name, "a link without a target")
        written = (SAMPLES / name / "MODEL_CARD.md").read_text("utf-8")
        spans = [" ".join(span.split()) for span in re.findall(r"`([^`]+)`", written)]
        assert [c.text for c in card.find_elements("css selector", "code")] == [span.strip() for span in spans], name
        tables = [line for line in written.splitlines() if line.startswith("| ") and "---" not in line]
        assert len(card.find_elements("css selector", "table tr")) == len(tables), name
        checkpoint = load_checkpoint(SAMPLES / name, device="cpu")
        profile = memory_profile(checkpoint.model, model_card.profile_length(checkpoint))
        wait_until(lambda: f"{profile.entropy:.2f} nats" in dash_duo.find_element(f"#{model_card.ID.memory} .gtitle").text)
    no_console_errors(dash_duo)

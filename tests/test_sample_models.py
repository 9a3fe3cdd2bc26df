"""The bundled sample models are trained BriLLMs, as their cards say: one run, a live memory, a beaten bigram."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from brillm_core import DecodeSettings, load_checkpoint, memory_profile

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "sample_models"
NAMES = ("teaching", "kjv-early", "kjv-final")
BUDGET_BYTES = 40 * 2**20


def card_writer():
    """scripts/write_model_card.py as a module (scripts/ is not a package)."""
    spec = importlib.util.spec_from_file_location("write_model_card", ROOT / "scripts" / "write_model_card.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def training(name: str) -> dict:
    """The training record of a bundled model."""
    return load_checkpoint(SAMPLES / name, device="cpu").metadata["training"]


def test_the_bundled_models_fit_the_size_budget() -> None:
    size = sum(path.stat().st_size for path in SAMPLES.rglob("*") if path.is_file())
    assert size < BUDGET_BYTES, f"sample_models/ holds {size / 2**20:.1f} MiB"


@pytest.mark.parametrize("name", NAMES)
def test_each_card_is_its_template_filled_with_its_models_numbers(name: str) -> None:
    text = card_writer().render(SAMPLES / name, ROOT / "scripts" / "cards" / f"{name}.md")
    assert (SAMPLES / name / "MODEL_CARD.md").read_text("utf-8") == text, (
        f"rebuild the card: python scripts/write_model_card.py sample_models/{name}")


@pytest.mark.parametrize("name", NAMES)
def test_each_model_was_trained_by_gradient_steps_from_the_random_start(name: str) -> None:
    record = training(name)
    assert record["settings"]["init"] == "random" and record["step"] > 0
    assert len(record["loss_history"]) == record["step"] and record["validation_history"][0][0] == 0


def test_kjv_early_and_final_are_two_checkpoints_of_one_run() -> None:
    early, final = training("kjv-early"), training("kjv-final")
    assert early["run_id"] == final["run_id"] and early["step"] < final["step"]
    assert final["loss_history"][: early["step"]] == early["loss_history"]
    best_step = min(final["validation_history"], key=lambda entry: entry[1])[0]
    assert final["step"] == best_step  # the final is the run's best validation checkpoint


def test_kjv_final_beats_the_bigram_on_both_texts_and_needs_its_whole_memory() -> None:
    evaluations = load_checkpoint(SAMPLES / "kjv-final", device="cpu").metadata["evaluations"]
    for text in ("heldout.txt", "web.txt"):
        full, previous_only = evaluations[text], evaluations[f"{text} (memory window 1)"]
        assert full["model"]["perplexity"] < full["kneser_ney_bigram"]["perplexity"], text
        assert full["model"]["top1_accuracy"] > full["kneser_ney_bigram"]["top1_accuracy"], text
        assert full["model"]["perplexity"] < previous_only["model"]["perplexity"], text


@pytest.mark.parametrize("name", NAMES)
def test_each_memory_is_a_profile_not_one_token(name: str) -> None:
    checkpoint = load_checkpoint(SAMPLES / name, device="cpu")
    profile = memory_profile(checkpoint.model, int(checkpoint.metadata["training"]["settings"]["seq_len"]))
    assert profile.by_distance[0] < 0.9 and profile.by_distance[1] > 0.01 and profile.entropy > 0.5


def test_kjv_final_energies_are_readable_numbers() -> None:
    checkpoint = load_checkpoint(SAMPLES / "kjv-final", device="cpu")
    trace = checkpoint.trace("And the LORD said unto Moses,", DecodeSettings(max_new_tokens=8))
    best = trace.energies.nan_to_num(nan=0).max(dim=1).values
    assert float(best.min()) > 1 and float(best.max()) < 200  # trained energies, not a constant offset of thousands


def test_the_teaching_models_memory_carries_what_a_bigram_cannot() -> None:
    evaluation = load_checkpoint(SAMPLES / "teaching", device="cpu").metadata["evaluations"]
    full, previous_only = evaluation["heldout.txt"], evaluation["heldout.txt (memory window 1)"]
    bigram = full["kneser_ney_bigram"]["perplexity"]
    assert full["model"]["perplexity"] < bigram < previous_only["model"]["perplexity"]  # as its card says

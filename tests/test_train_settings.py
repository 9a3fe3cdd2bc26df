"""Training settings are declared once (training.settings); `brillm train`'s arguments and range checks come from it."""

from __future__ import annotations

import argparse
import dataclasses

import pytest

from brillm_core.cli.train import register
from brillm_core.training import TrainingError, TrainSettings
from brillm_core.training.settings import BPE_VOCAB, declared, spec

# The command's own options besides the settings: what to train on, where, and how the process runs.
RUN_OPTIONS = {"help", "corpus", "output", "tokenizer_file", "validation", "resume", "threads", "no_progress"}


def train_parser() -> argparse.ArgumentParser:
    """The `train` subcommand's parser as `brillm` builds it."""
    parser = argparse.ArgumentParser(prog="brillm")
    sub = parser.add_subparsers(dest="command")
    register(sub)
    return sub.choices["train"]


def test_every_argument_is_a_declared_setting_or_a_run_option() -> None:
    actions = {a.dest for a in train_parser()._actions}
    settings = {field.name for field, _ in declared()}
    assert settings <= actions
    assert actions - settings == RUN_OPTIONS


@pytest.mark.parametrize("field,kind", declared(), ids=[field.name for field, _ in declared()])
def test_each_argument_is_generated_from_its_declaration(field: dataclasses.Field, kind: type) -> None:
    declaration = spec(field)
    actions = [a for a in train_parser()._actions if a.dest == field.name]
    assert all(a.default == field.default for a in actions)
    if kind is bool:
        switches = {a.option_strings[0]: a.const for a in actions}
        assert switches.get(declaration.off_flag) is False
        assert (switches.get(declaration.option(field.name)) is True) == declaration.on
        return
    (action,) = actions
    assert action.option_strings == [declaration.option(field.name)]
    assert action.type is kind
    assert action.help.startswith(declaration.help)
    assert tuple(action.choices or ()) == declaration.choices


def test_no_arguments_give_the_declared_defaults() -> None:
    args = train_parser().parse_args(["corpus.txt", "-o", "run"])
    assert TrainSettings(**{field.name: getattr(args, field.name) for field, _ in declared()}) == TrainSettings()


def test_values_and_switches_reach_the_settings() -> None:
    args = train_parser().parse_args(["c", "-o", "r", "--keep", "5", "--dense", "--random-negatives", "--lr", "0.5",
                                      "--init", "context", "--vocab-size", "300"])
    settings = TrainSettings(**{field.name: getattr(args, field.name) for field, _ in declared()})
    assert (settings.keep_checkpoints, settings.sparse, settings.hard_negatives, settings.lr, settings.init,
            settings.vocab_size) == (5, False, False, 0.5, "context", 300)


def test_the_declared_ranges_are_checked() -> None:
    for field, kind in declared():
        declaration = spec(field)
        bad = ("nonsense" if declaration.choices else
               (declaration.low - 1 if declaration.low is not None else 0 if declaration.positive else None))
        if bad is None or kind is bool:
            continue
        with pytest.raises(TrainingError, match=f"{declaration.option(field.name)} must"):
            TrainSettings(**{field.name: kind(bad) if not declaration.choices else bad})


def test_a_new_bpe_gets_the_declared_size_and_only_a_new_bpe() -> None:
    assert TrainSettings().for_tokenizer(None).vocab_size == BPE_VOCAB
    assert TrainSettings().for_tokenizer("tokenizer.json").vocab_size is None
    assert TrainSettings(tokenizer="word").for_tokenizer(None).vocab_size is None
    assert TrainSettings(vocab_size=300).for_tokenizer(None).vocab_size == 300


def test_init_help_says_context_forces_the_memory_onto_the_previous_output() -> None:
    text = " ".join(train_parser().format_help().split())
    assert "context adds a trigram correction and to carry it forces the memory onto one token, the previous output" in text
    assert "counts and context are research options" in text

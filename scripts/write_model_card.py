#!/usr/bin/env python3
"""Write a sample model's MODEL_CARD.md from its card template and the model's own numbers.

The prose lives in a template (scripts/cards/NAME.md); every number in it is a
placeholder filled here from the checkpoint: its sizes, the training settings and
histories in metadata.json, the evaluations `brillm eval` stored there (with the full
memory and with the memory window of 1), the memory's weight by distance, and greedy
continuations of the template's example prompts. So the card cannot drift from the
model it describes; tests/test_sample_models.py checks that it has not.

Usage: write_model_card.py MODEL_DIR [--template FILE] [--check]
--check compares instead of writing and exits 1 when the card differs.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path
from typing import Any

from brillm_core import Checkpoint, DecodeSettings, load_checkpoint, memory_profile

CARD = "MODEL_CARD.md"
CARDS = Path(__file__).resolve().parent / "cards"
EXAMPLE = re.compile(r"\{continue:(?P<tokens>\d+):(?P<prompt>[^}]*)\}")  # {continue:N:prompt} -> greedy continuation
DISTANCES = 8  # columns of the memory table


def percent(value: float) -> str:
    """0.2734 -> '27.3 %'."""
    return f"{100 * value:.1f} %"


def evaluation_fields(metadata: dict[str, Any], text: str, prefix: str) -> dict[str, str]:
    """Perplexity and top-1/top-5 of the model (full memory and window 1) and the baselines on one text."""
    evaluations = metadata.get("evaluations", {})
    full, ablated = evaluations[text], evaluations[f"{text} (memory window 1)"]
    fields = {f"{prefix}_tokens": f"{full['model']['tokens']:,}", f"{prefix}_window": str(full["window"])}
    for name, figures in (("", full["model"]), ("_w1", ablated["model"]), ("_kn", full["kneser_ney_bigram"]),
                          ("_uni", full["unigram"])):
        fields[f"{prefix}{name}_ppl"] = f"{figures['perplexity']:.2f}"
        fields[f"{prefix}{name}_top1"] = percent(figures["top1_accuracy"])
        fields[f"{prefix}{name}_top5"] = percent(figures["top5_accuracy"])
    return fields


def memory_fields(checkpoint: Checkpoint, length: int) -> dict[str, str]:
    """The memory's mean weight by distance as a Markdown table, and its entropy."""
    profile = memory_profile(checkpoint.model, length)
    shown = profile.by_distance[:DISTANCES]
    header = "| steps back | " + " | ".join(str(k) for k in range(1, len(shown) + 1)) + " |"
    rule = "| --- |" + " --- |" * len(shown)
    row = "| mean weight | " + " | ".join(f"{w:.3f}" for w in shown) + " |"
    ratios = [later / earlier for earlier, later in zip(shown[:4], shown[1:5])]
    return {"memory_table": "\n".join([header, rule, row]), "memory_entropy": f"{profile.entropy:.2f}",
            "memory_length": str(length), "memory_first": f"{shown[0]:.2f}",
            "memory_ratio": f"{sum(ratios) / len(ratios):.2f}"}


def training_fields(checkpoint: Checkpoint) -> dict[str, str]:
    """Settings and histories of the training run, at this checkpoint's step."""
    training = checkpoint.metadata["training"]
    settings = training["settings"]
    validation = {int(step): value for step, value in training["validation_history"]}
    best_step = min(validation, key=validation.get)
    fields = {k: str(v) for k, v in settings.items()}
    fields.update({
        "step": f"{training['step']:,}",
        "epochs": f"{training['tokens_seen'] / training['corpus_tokens']:.1f}",
        "corpus_tokens": f"{training['corpus_tokens']:,}",
        "validation_start": f"{validation[0]:,.2f}" if validation[0] < 100 else f"{validation[0]:,.0f}",
        "validation_here": f"{validation[training['step']]:.2f}",
        "validation_best_step": f"{best_step:,}",
        "lr_weights": str(settings["lr_weights"] if settings["lr_weights"] is not None else settings["lr"]),
        "max_steps": f"{settings['max_steps']:,}",
    })
    return fields


def model_fields(checkpoint: Checkpoint) -> dict[str, str]:
    """Sizes and storage."""
    sizes = checkpoint.model.describe()
    return {
        "name": checkpoint.config.name, "vocab_size": f"{sizes['nodes']:,}", "hidden_size": str(sizes["hidden_size"]),
        "max_positions": str(sizes["max_positions"]), "own_rows": f"{sizes['edges_with_own_row']:,}",
        "shared_edges": f"{sizes['edges_on_shared_row']:,}", "parameters": f"{sizes['parameters']:,}",
        "stored_fraction": f"{100 * sizes['stored_fraction']:.2f} %",
        "stored_dtype": str(checkpoint.metadata.get("stored_dtype", "float32")),
    }


def continuation(checkpoint: Checkpoint, prompt: str, tokens: int) -> str:
    """The greedy continuation of ``prompt`` (the new text only), shown as code."""
    trace = checkpoint.trace(prompt, DecodeSettings(max_new_tokens=tokens))
    new = checkpoint.tokenizer.decode(trace.path[trace.prompt_length:].tolist())
    return "`" + new.replace("`", "'") + "`"


def render(model_dir: Path, template: Path) -> str:
    """The card text: the template with every placeholder filled from the model."""
    checkpoint = load_checkpoint(model_dir, device="cpu")
    fields = {**training_fields(checkpoint), **model_fields(checkpoint)}  # the model's sizes over the settings asked for
    fields.update(memory_fields(checkpoint, int(checkpoint.metadata["training"]["settings"]["seq_len"])))
    for text in checkpoint.metadata.get("evaluations", {}):
        if not text.endswith(")"):
            fields.update(evaluation_fields(checkpoint.metadata, text, Path(text).stem))
    text = EXAMPLE.sub(lambda m: continuation(checkpoint, m["prompt"], int(m["tokens"])), template.read_text("utf-8"))
    return text.format_map(fields)


def main() -> int:
    """Write (or check) one card."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", type=Path)
    parser.add_argument("--template", type=Path, help="default: scripts/cards/<the model's folder name>.md")
    parser.add_argument("--check", action="store_true", help="compare with the card on disk instead of writing")
    args = parser.parse_args()
    text = render(args.model, args.template or CARDS / f"{args.model.name}.md")
    card = args.model / CARD
    if args.check:
        same = card.is_file() and card.read_text("utf-8") == text
        print(f"{card}: {'up to date' if same else 'differs from its template and model'}")
        return 0 if same else 1
    card.write_text(text, encoding="utf-8")
    print(f"wrote {card}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

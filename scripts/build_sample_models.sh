#!/usr/bin/env bash
# Rebuild the bundled sample models exactly (not part of CI). Corpora and training runs
# go to $WORK (default /tmp/brillm-samples), never into the repository.
# Usage: scripts/build_sample_models.sh [teaching|kjv|all]
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
WORK=${WORK:-/tmp/brillm-samples}
TRAIN="$PY -m brillm_core.cli.train"
what=${1:-all}
mkdir -p "$WORK"

if [[ $what == teaching || $what == all ]]; then
  # A 21-word grammar; d = 4 so every number of a step fits on screen.
  $PY scripts/make_teaching_corpus.py "$WORK/teaching/train.txt" --sentences 3000 --seed 0
  $PY scripts/make_teaching_corpus.py "$WORK/teaching/heldout.txt" --sentences 300 --seed 1
  rm -rf "$WORK/teaching/run"
  $TRAIN train "$WORK/teaching/train.txt" -o "$WORK/teaching/run" --tokenizer word \
    --hidden-size 4 --max-positions 64 --seq-len 16 --batch-size 16 --negatives 400 \
    --lr 5e-2 --max-steps 400 --save-every 400 --seed 0 --threads 1 --no-progress
  $PY scripts/export_sample_model.py "$WORK/teaching/run/checkpoints/step-00000400" sample_models/teaching --name teaching
  $TRAIN eval sample_models/teaching "$WORK/teaching/heldout.txt"
fi

if [[ $what == kjv || $what == all ]]; then
  # King James Bible (public domain) from Debian's bible-kjv; every 50th verse held out.
  command -v bible >/dev/null || apt-get install -y bible-kjv
  mkdir -p "$WORK/kjv"
  bible -m 8192 -l9999 "gen1:1-rev22:21" > "$WORK/kjv/raw.txt"
  $PY scripts/prepare_kjv.py "$WORK/kjv/raw.txt" "$WORK/kjv/train.txt" "$WORK/kjv/heldout.txt" --every 50
  rm -rf "$WORK/kjv/run"
  # Byte-level BPE of 1,500 tokens, d = 8 so that every bigram seen (count > 0, the
  # release's rule) keeps its own row within the size budget; k = 400 random negatives
  # (the release's hard negatives made full-vocabulary perplexity worse as training went
  # on: see the model card), sequences of 32, batch 32, lr 5e-2; one CPU thread.
  $TRAIN train "$WORK/kjv/train.txt" -o "$WORK/kjv/run" --tokenizer bpe --vocab-size 1500 \
    --hidden-size 8 --seq-len 32 --batch-size 32 --negatives 400 --random-negatives --min-count 1 \
    --lr 5e-2 --max-steps 2400 --save-every 200 --keep 0 --seed 0 --threads 1
  $PY scripts/export_sample_model.py "$WORK/kjv/run/checkpoints/step-00000200" sample_models/kjv-early --fp16 --name kjv-early
  $PY scripts/export_sample_model.py "$WORK/kjv/run/checkpoints/step-00002400" sample_models/kjv-final --fp16 --name kjv-final
  $TRAIN eval sample_models/kjv-early "$WORK/kjv/heldout.txt"
  $TRAIN eval sample_models/kjv-final "$WORK/kjv/heldout.txt"
fi

#!/usr/bin/env bash
# Rebuild the bundled sample models exactly (not part of CI). Corpora and training runs
# go to $WORK (default /tmp/brillm-samples), never into the repository. Every model is
# trained by gradient steps from the release's random start, on one CPU thread, so a
# rebuild gives the same parameters bit for bit. The cards are written from templates
# (scripts/cards/) with the models' own numbers. Experiments behind the recipes:
# scripts/sample_models_experiments.md.
# Usage: scripts/build_sample_models.sh [teaching|kjv|all]
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
WORK=${WORK:-/tmp/brillm-samples}
BRILLM="nice $PY -m brillm_core"
what=${1:-all}
mkdir -p "$WORK"

evaluate() {  # evaluate MODEL TEXT: full memory, then the memory cut to the previous output
  $BRILLM eval "$1" "$2"
  $BRILLM eval "$1" "$2" --memory-window 1
}

if [[ $what == teaching || $what == all ]]; then
  # A 16-word grammar with number agreement across "often" / "very often" (see the card);
  # d = 4 so every number of a step fits on screen.
  $PY scripts/make_teaching_corpus.py "$WORK/teaching/train.txt" --sentences 3000 --seed 0
  $PY scripts/make_teaching_corpus.py "$WORK/teaching/heldout.txt" --sentences 300 --seed 1
  $PY scripts/make_teaching_corpus.py "$WORK/teaching/valid.txt" --sentences 300 --seed 2
  rm -rf "$WORK/teaching/run"
  $BRILLM train "$WORK/teaching/train.txt" -o "$WORK/teaching/run" --tokenizer word \
    --hidden-size 4 --max-positions 64 --seq-len 32 --batch-size 8 --objective exact --init random \
    --lr 5e-2 --lr-weights 5e-3 --schedule cosine --max-steps 4000 --save-every 500 --keep 0 \
    --validation "$WORK/teaching/valid.txt" --seed 0 --threads 1 --no-progress
  $PY scripts/export_sample_model.py "$WORK/teaching/run" sample_models/teaching --step 4000 --name teaching
  evaluate sample_models/teaching "$WORK/teaching/heldout.txt"
  $PY scripts/write_model_card.py sample_models/teaching
fi

if [[ $what == kjv || $what == all ]]; then
  # King James Bible (public domain) from Debian's bible-kjv; every 50th verse held out,
  # the verse halfway between two held-out ones kept for validation. Second evaluation
  # text: the World English Bible (modern English, public domain) from sword-text-web.
  command -v bible >/dev/null || apt-get install -y bible-kjv
  command -v diatheke >/dev/null && [[ -e /usr/share/sword/mods.d/engWEB2015eb.conf ]] || apt-get install -y sword-text-web diatheke
  mkdir -p "$WORK/kjv"
  bible -m 8192 -l9999 "gen1:1-rev22:21" > "$WORK/kjv/raw.txt"
  $PY scripts/prepare_kjv.py "$WORK/kjv/raw.txt" "$WORK/kjv/train.txt" "$WORK/kjv/heldout.txt" --every 50 \
    --validation "$WORK/kjv/valid.txt"
  diatheke -b engWEB2015eb -f OSIS -k "Gen 1:1-Mal 4:6" > "$WORK/kjv/web-ot.osis"
  diatheke -b engWEB2015eb -f OSIS -k "Matt 1:1-Rev 22:21" > "$WORK/kjv/web-nt.osis"
  $PY scripts/prepare_web.py "$WORK/kjv/web-ot.osis" "$WORK/kjv/web-nt.osis" "$WORK/kjv/web.txt" --every 50
  # One run: byte-level BPE of 1,500 tokens, d = 10, an own row for every bigram seen at
  # least twice, the release's random start, the exact objective, weight decay 0.05 on W, a
  # cosine schedule over 12,000 steps (about 11 epochs). kjv-early is its checkpoint at step
  # 1,000 (still looping, still behind the bigram), kjv-final the one of best validation.
  rm -rf "$WORK/kjv/run"
  $BRILLM train "$WORK/kjv/train.txt" -o "$WORK/kjv/run" --tokenizer bpe --vocab-size 1500 \
    --hidden-size 10 --seq-len 32 --batch-size 32 --min-count 2 --objective exact --init random \
    --lr 5e-2 --lr-weights 5e-3 --weight-decay 0.05 --schedule cosine --max-steps 12000 --save-every 1000 \
    --keep 0 --validation "$WORK/kjv/valid.txt" --seed 0 --threads 1 --no-progress
  $PY scripts/export_sample_model.py "$WORK/kjv/run" sample_models/kjv-early --step 1000 --fp16-weights --name kjv-early
  $PY scripts/export_sample_model.py "$WORK/kjv/run" sample_models/kjv-final --step best --fp16-weights --name kjv-final
  for model in kjv-early kjv-final; do
    evaluate sample_models/$model "$WORK/kjv/heldout.txt"
    evaluate sample_models/$model "$WORK/kjv/web.txt"
    $PY scripts/write_model_card.py sample_models/$model
  done
fi

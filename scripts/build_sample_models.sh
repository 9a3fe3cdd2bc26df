#!/usr/bin/env bash
# Rebuild the bundled sample models exactly (not part of CI). Corpora and training runs
# go to $WORK (default /tmp/brillm-samples), never into the repository.
# Usage: scripts/build_sample_models.sh [teaching|kjv|all]
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
WORK=${WORK:-/tmp/brillm-samples}
TRAIN="nice $PY -m brillm_core.cli.train"
what=${1:-all}
mkdir -p "$WORK"

if [[ $what == teaching || $what == all ]]; then
  # A 21-word grammar; d = 4 so every number of a step fits on screen. The start is the
  # training text's Kneser-Ney bigram (--init counts); the exact full-vocabulary objective
  # then trains W with a small learning rate (the grammar is a bigram language: see the card).
  $PY scripts/make_teaching_corpus.py "$WORK/teaching/train.txt" --sentences 3000 --seed 0
  $PY scripts/make_teaching_corpus.py "$WORK/teaching/heldout.txt" --sentences 300 --seed 1
  $PY scripts/make_teaching_corpus.py "$WORK/teaching/valid.txt" --sentences 300 --seed 2
  rm -rf "$WORK/teaching/run"
  $TRAIN train "$WORK/teaching/train.txt" -o "$WORK/teaching/run" --tokenizer word \
    --hidden-size 4 --max-positions 64 --seq-len 16 --batch-size 16 --objective exact --init counts \
    --lr 1e-3 --max-steps 400 --save-every 100 --keep 0 --validation "$WORK/teaching/valid.txt" \
    --seed 0 --threads 1 --no-progress
  $PY scripts/export_sample_model.py "$WORK/teaching/run/checkpoints/step-00000400" sample_models/teaching --name teaching
  $TRAIN eval sample_models/teaching "$WORK/teaching/heldout.txt"
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
  # Byte-level BPE of 1,500 tokens, d = 8. The start is the training text's Kneser-Ney
  # bigram plus a rank-7 trigram correction that the memory carries (--init context),
  # fitted by full-batch Adam on the trigram counts; kjv-early stops that same
  # deterministic fit after 10 of its iterations. The recipe and every experiment behind
  # it are in sample_models/kjv-final/MODEL_CARD.md.
  for stage in early:10 final:100; do
    name=${stage%%:*}; iterations=${stage##*:}
    rm -rf "$WORK/kjv/run-$name"
    $TRAIN train "$WORK/kjv/train.txt" -o "$WORK/kjv/run-$name" --tokenizer bpe --vocab-size 1500 \
      --hidden-size 8 --seq-len 32 --batch-size 32 --min-count 1 --init context --context-l2 1 \
      --context-iterations "$iterations" --max-steps 0 --validation "$WORK/kjv/valid.txt" --seed 0 --threads 1 --no-progress
    $PY scripts/export_sample_model.py "$WORK/kjv/run-$name/checkpoints/step-00000000" "sample_models/kjv-$name" \
      --fp16-weights --name "kjv-$name"
  done
  for model in kjv-early kjv-final; do
    $TRAIN eval sample_models/$model "$WORK/kjv/heldout.txt"
    $TRAIN eval sample_models/$model "$WORK/kjv/web.txt"
  done
fi

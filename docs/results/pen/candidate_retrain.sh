#!/bin/bash
# Pen: the candidate recipe's settings (square's) retrained on exactly the study's recipe seed 0
# iteration-3 data (`borl retrain`), against the study's own iteration-3 agent and filtered IL's,
# evaluated on targets no run used: 100 of seed 1000, then 200 of seed 2000, deployed and policy alone.
# Usage: bash candidate_retrain.sh STUDY OUT; each result is OUT/<name>.json, kept if present.
set -euo pipefail
SRC=$1/runs/pen/recipe/M200_ou0/seed0
FIL=$1/runs/pen/filtered-il/M200_ou0/seed0
OUT=$2
mkdir -p "$OUT"
if [ ! -f "$OUT/mc5f/metrics/iter_003.json" ]; then
  if [ -d "$OUT/mc5f" ]; then borl resume "$OUT/mc5f" --quiet; else
    borl retrain "$SRC" --iteration 3 --out "$OUT/mc5f" --quiet --algo filtered-recipe \
      --set critic.mc_lower_bound=true --set critic.num_critics=5 --set extraction.safety_k=3 \
      --set eval_episodes=1 --set eval_baseline=false --set train.threads=2
  fi
fi
ev() {
  local name=$1; shift
  [ -f "$OUT/$name.json" ] && return
  borl eval "$@" --json > "$OUT/$name.tmp"
  mv "$OUT/$name.tmp" "$OUT/$name.json"
}
ev original "$SRC" --iteration 3 --paired --episodes 100 --seed 1000
ev mc5f "$OUT/mc5f" --iteration 3 --paired --episodes 100 --seed 1000
ev original_s2000 "$SRC" --iteration 3 --paired --episodes 200 --seed 2000
ev mc5f_s2000 "$OUT/mc5f" --iteration 3 --paired --episodes 200 --seed 2000
ev filtered_il_s2000 "$FIL" --iteration 3 --episodes 200 --seed 2000

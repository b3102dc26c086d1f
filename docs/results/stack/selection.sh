#!/bin/bash
# Candidates N and softmax temperature for stack's final recipe agent (STUDY's seed 0, iteration 3):
# chosen on 50 starts of seed 1000, the default and the choice set's leader reported on 100 of seed 2000.
# Usage: bash selection.sh STUDY OUT; each result is OUT/<name>.json (`borl eval --json`), kept if present.
set -euo pipefail
RUN=$1/runs/stack/recipe/M200_ou0/seed0
OUT=$2
mkdir -p "$OUT"
ev() {
  local name=$1; shift
  [ -f "$OUT/$name.json" ] && return
  borl eval "$RUN" --iteration 3 --json "$@" > "$OUT/$name.tmp"
  mv "$OUT/$name.tmp" "$OUT/$name.json"
}
ev alone_s1000 --episodes 50 --seed 1000 --no-extraction
ev n32_s1000 --episodes 50 --seed 1000
ev n8_s1000 --episodes 50 --seed 1000 --set extraction.candidates=8
ev n64_s1000 --episodes 50 --seed 1000 --set extraction.candidates=64
ev t005_s1000 --episodes 50 --seed 1000 --set extraction.temperature=0.005
ev alone_s2000 --episodes 100 --seed 2000 --no-extraction
ev n32_s2000 --episodes 100 --seed 2000
ev n8_s2000 --episodes 100 --seed 2000 --set extraction.candidates=8

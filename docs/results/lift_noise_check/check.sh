#!/usr/bin/env bash
# Lift's OU-noise check on start states no study reports (written before it ran).
# For each of the 3 seeds of docs/results/lift_orderings, the iteration-3 agent trained with OU noise
# (σ = 0.1) in collection and the one trained without, each evaluated as deployed and as its policy
# alone (--paired) on the same 100 new start states (--seed 777; the studies' starts are seeds 0-2).
# RUNS: the study directories of those runs (kept outside the repo).
set -euo pipefail
RUNS=${RUNS:-/work/exp}
OUT=${OUT:-.}
declare -A noisy=([0]=lift5_ou [1]=lift_noise_s1 [2]=lift_noise_s2)
declare -A plain=([0]=lift5_recipe [1]=lift_noise_s1 [2]=lift_noise_s2)
for s in 0 1 2; do
  for kind in noisy plain; do
    if [ $kind = noisy ]; then study=${noisy[$s]}; ou=0.1; else study=${plain[$s]}; ou=0; fi
    borl eval "$RUNS/$study/runs/lift/recipe/M200_ou$ou/seed$s" --iteration 3 --paired \
      --episodes 100 --seed 777 --json > "$OUT/seed${s}_$kind.json"
  done
done

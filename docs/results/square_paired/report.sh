#!/bin/bash
# Report-set evaluations in priority order (200 start states, eval seed 2000), one JSON each.
cd /tmp/exp
B=/work/main/.venv/bin/borl
R=/tmp/exp/square_protocol/retrained
run() { name=$1; dir=$2; shift 2; out=/tmp/exp/report/$name.json; [ -s $out ] && return; $B eval $dir --iteration 1 --episodes 200 --seed 2000 --json "$@" > $out.tmp && mv $out.tmp $out; echo "$(date +%T) $name done"; }
run iql_argmax $R/iql
run iql_safe1 $R/iql --set extraction.safety_k=1
run iql_alone $R/iql --no-extraction
run mc_safe1 $R/mc --set extraction.safety_k=1
run mc_argmax $R/mc
run mc_alone $R/mc --no-extraction

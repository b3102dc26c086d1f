#!/bin/bash
# Selection settings on square iteration 1 of the study's filtered-recipe seed-0 run; choice starts (eval seed 777).
RUN=STUDY/runs/square/filtered-recipe/M200_ou0/seed0
B=borl
O=OUT
$B eval $RUN --iteration 1 --episodes 50 --seed 777 --no-extraction --json > $O/alone.json
for spec in "k1:--set extraction.safety_k=1" "k2:--set extraction.safety_k=2" "k3:--set extraction.safety_k=3" \
            "n8k1:--set extraction.candidates=8 --set extraction.safety_k=1" \
            "m02:--set extraction.safety_k=1 --set extraction.safety_margin=0.02" ; do
  name=${spec%%:*}; args=${spec#*:}
  $B eval $RUN --iteration 1 --episodes 50 --seed 777 $args --json > $O/$name.json
done
echo done > $O/DONE
# The HL-Gauss critic: iteration 1 retrained on the same data, then paired on the same choice starts.
borl retrain $RUN --iteration 1 --out HL --set critic.kind=hlgauss
$B eval HL --iteration 1 --episodes 50 --seed 777 --paired --json > $O/hlgauss_k3.json

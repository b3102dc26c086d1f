"""Summarise check.sh's JSON files: per seed and pooled, noise − no noise (as deployed and alone)
and as deployed − alone for each, paired on the same starts. Usage: python summarise.py DIR"""
import json
import sys
from pathlib import Path

from borl.eval.stats import paired_difference as paired
from borl.eval.stats import pooled_over_seeds


def pooled(pairs: list[tuple[float, float]]) -> str:
    mean, se = pooled_over_seeds(pairs)
    return f"{100 * mean:+.1f} ± {100 * se:.1f}"


directory = Path(sys.argv[1])
rows = {}
for s in (0, 1, 2):
    rows[s] = {k: json.loads((directory / f"seed{s}_{k}.json").read_text()) for k in ("noisy", "plain")}
comparisons = {
    "noise − none, as deployed": lambda r: paired(r["plain"]["deployed"]["successes"], r["noisy"]["deployed"]["successes"]),
    "noise − none, policy alone": lambda r: paired(r["plain"]["policy_alone"]["successes"], r["noisy"]["policy_alone"]["successes"]),
    "with noise: deployed − alone": lambda r: paired(r["noisy"]["policy_alone"]["successes"], r["noisy"]["deployed"]["successes"]),
    "without noise: deployed − alone": lambda r: paired(r["plain"]["policy_alone"]["successes"], r["plain"]["deployed"]["successes"]),
}
print("| seed | with noise: deployed / alone | without: deployed / alone |")
print("| --- | --- | --- |")
for s, r in rows.items():
    n, p = r["noisy"], r["plain"]
    print(f"| {s} | {100 * n['deployed']['success_rate']:.0f} / {100 * n['policy_alone']['success_rate']:.0f}% "
          f"| {100 * p['deployed']['success_rate']:.0f} / {100 * p['policy_alone']['success_rate']:.0f}% |")
print()
print("| comparison (paired, 100 starts per seed) | seeds 0 / 1 / 2 | pooled |")
print("| --- | --- | --- |")
for name, compare in comparisons.items():
    pairs = [compare(r) for r in rows.values()]
    per_seed = " / ".join(f"{100 * d:+.0f} ± {100 * se:.1f}" for d, se in pairs)
    print(f"| {name} | {per_seed} | {pooled(pairs)} |")

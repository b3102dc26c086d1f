#!/usr/bin/env bash
# Record this machine's episodes for tests/test_recorded.py: a quick Lift study run by the code of
# commit 6a72d8e (before the architecture's rework) in a temporary worktree, digested into
# tests/recorded/quick_lift_study.json under this CPU's kind.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
REV=6a72d8e
work=$(mktemp -d)
trap 'git worktree remove --force "$work/tree" >/dev/null 2>&1 || true; rm -rf "$work"' EXIT
git worktree add --detach "$work/tree" "$REV" >/dev/null
# Run from $work: `python -m` puts the working directory first on sys.path, so from the repository
# root it would import this checkout's borl instead of the worktree's.
(cd "$work" && PYTHONPATH="$work/tree" "$root/.venv/bin/python" -m borl study --tasks lift --algos recipe,filtered-il --seeds 1 --quick \
  --out "$work/study")
.venv/bin/python tests/test_recorded.py "$work/study" "$(date -u +%F), commit $REV's code on this machine: borl study --tasks lift --algos recipe,filtered-il --seeds 1 --quick (scripts/record_episodes.sh)"

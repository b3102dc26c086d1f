#!/usr/bin/env bash
# Lint, format check and the test suite. pytest's exit 5 (no test collected) counts as a failure.
set -uo pipefail
cd "$(dirname "$0")/.."
. .venv/bin/activate
ruff check borl tests || exit 1
ruff format --check borl tests || exit 1
python -m pytest -q "$@"
status=$?
if [ "$status" -eq 5 ]; then
  echo "pytest collected no tests: failing" >&2
  exit 1
fi
exit "$status"

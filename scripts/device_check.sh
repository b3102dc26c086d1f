#!/usr/bin/env bash
# borl's `--device cuda` checks in one command, for a machine with a CUDA GPU and PyTorch (no
# simulator needed: nothing here imports robosuite). Runs the learning tests' CUDA cases (critic,
# both policies, the training loop, batch sampling, a checkpoint trained on the GPU acting the same
# on the CPU) and `borl bench train` and `borl bench sample` on the GPU. Writes the versions, the
# test log and the benchmarks' JSON to $OUT if set, else device_check/. Exits non-zero if any fails.
#
#   scripts/device_check.sh          # the CUDA checks
#   scripts/device_check.sh cpu      # the same checks on the CPU (to try the script without a GPU)
#
# It needs PyTorch, NumPy, PyYAML, tqdm, rich, h5py, pytest and MuJoCo (the task registry imports
# it; robosuite, gymnasium and Ray are not needed). Wheels found in .whl/ are installed first, into
# a temporary folder: on a GPU machine without MuJoCo and without internet, download its wheel here
# for that machine's Python, e.g. for Python 3.12:
#   python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
#     --platform manylinux_2_28_x86_64 -d .whl mujoco==3.9.0
set -uo pipefail
cd "$(dirname "$0")/.."
device="${1:-cuda}"
out="${OUT:-device_check}"
mkdir -p "$out"
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
if compgen -G ".whl/*.whl" >/dev/null; then
  site="$(mktemp -d)"
  python3 -m pip install -q --no-index --no-deps --no-compile --target "$site" .whl/*.whl || exit 1
  export PYTHONPATH="$PYTHONPATH:$site"
fi
python3 - "$device" <<'PY' | tee "$out/versions.txt" || exit 1
import sys

import mujoco
import numpy
import torch

device = sys.argv[1]
name = torch.cuda.get_device_name() if torch.cuda.is_available() else "none"
print(f"torch {torch.__version__}, numpy {numpy.__version__}, mujoco {mujoco.__version__} ({mujoco.__file__})")
print(f"CUDA device: {name}")
if device == "cuda" and not torch.cuda.is_available():
    sys.exit("device_check: PyTorch sees no CUDA device")
PY
status=0
tests=(tests/test_networks.py tests/test_iql.py tests/test_diffusion.py tests/test_gaussian.py
       tests/test_replay.py tests/test_training.py tests/test_bench.py)
python3 -m pytest -q -p no:cacheprovider -k "$device" "${tests[@]}" 2>&1 | tee "$out/tests.log"
[ "${PIPESTATUS[0]}" -eq 0 ] || status=1
for what in train sample; do
  if python3 -m borl bench "$what" --set "device=$device" --json >"$out/bench_$what.json"; then
    cat "$out/bench_$what.json"
  else
    status=1
  fi
done
exit "$status"

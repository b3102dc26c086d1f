#!/usr/bin/env bash
# Creates .venv and installs borl with its test tools, and OSMesa for videos (as root, via apt-get).
# PyTorch is pinned to 2.13.0: on a machine without a GPU pip takes the CPU build (set
# PIP_EXTRA_INDEX_URL to a CPU wheel index where your package index only offers CUDA builds).
# Safe to run again: it only installs what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."
# Videos and image tasks (lift-image) render offscreen through OSMesa (software OpenGL, Debian's libosmesa6), installed when missing.
if ! ldconfig -p | grep -q libOSMesa; then
  if command -v apt-get >/dev/null && [ "$(id -u)" = 0 ]; then
    (apt-get update -qq && apt-get install -y -qq libosmesa6) >/dev/null
  else
    echo "note: videos and image tasks need OSMesa (sudo apt-get install libosmesa6), or MUJOCO_GL=egl on a GPU" >&2
  fi
fi
python3 -m venv .venv
. .venv/bin/activate
python -m pip install --quiet --upgrade pip
if ! python -c "import torch" 2>/dev/null; then
  python -m pip install --quiet "torch==2.13.0"
fi
python -m pip install --quiet -e ".[test]"
# Compile the robosuite controller's numba kernel (borl/envs/fast_osc.py) once into its on-disk cache,
# so that no run or test pays the compile (about 20 s on a busy 2-core machine) on its first step.
python -m borl bench sim lift --steps 1 --json >/dev/null
python -c "import torch; print(f'borl set up: torch {torch.__version__}, CUDA available: {torch.cuda.is_available()}')"

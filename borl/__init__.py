"""borl: batch online reinforcement learning for robot manipulation."""

import os

# MuJoCo fixes its offscreen OpenGL backend when first imported, and robosuite would force EGL, which
# needs a GPU: software OSMesa renders anywhere, unless the user chose a backend (borl/envs/rendering.py).
os.environ.setdefault("MUJOCO_GL", "osmesa")

__version__ = "0.1.0"

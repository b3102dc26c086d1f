"""Offscreen frames of a MuJoCo scene, for videos.

MuJoCo picks its OpenGL backend from MUJOCO_GL when it is first imported; borl/__init__.py sets OSMesa
(software, any machine with Debian's libosmesa6) unless the user chose one (`MUJOCO_GL=egl` on a GPU).
"""

from __future__ import annotations

import os

import mujoco
import numpy as np

from borl.errors import BorlError, one_line


class FrameRenderer:
    """One offscreen renderer per (model, size), rebuilt when the scene's model changes.

    `hidden_groups` are geom groups left out of the picture (robosuite keeps its collision geoms,
    coloured to tell them apart, in group 0).
    """

    def __init__(self, hidden_groups: tuple[int, ...] = ()) -> None:
        self._renderer: mujoco.Renderer | None = None
        self._key: tuple[int, int] | None = None
        self._options = mujoco.MjvOption()
        for group in hidden_groups:
            self._options.geomgroup[group] = 0

    def render(self, model: mujoco.MjModel, data: mujoco.MjData, camera: str, size: int) -> np.ndarray:
        """An RGB frame (size, size, 3) uint8 of `data` seen from `camera`."""
        if self._renderer is None or self._key != (id(model), size):
            self.close()
            try:
                self._renderer = mujoco.Renderer(model, size, size)
            except Exception as error:
                backend = os.environ.get("MUJOCO_GL", "(unset)")
                raise BorlError(
                    f"cannot render offscreen with MUJOCO_GL={backend} ({one_line(error)}): on a machine "
                    "without a GPU install OSMesa (apt-get install libosmesa6); with one, set MUJOCO_GL=egl; "
                    "MuJoCo picks the backend when first imported, so set it before importing mujoco"
                ) from None
            self._key = (id(model), size)
        self._renderer.update_scene(data, camera=camera, scene_option=self._options)
        return self._renderer.render()

    def close(self) -> None:
        if self._renderer is not None:
            self._renderer.close()
        self._renderer, self._key = None, None

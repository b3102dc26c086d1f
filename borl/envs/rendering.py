"""Offscreen frames of a MuJoCo scene, for videos and for image tasks' cameras.

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
    coloured to tell them apart, in group 0). `plain` turns off reflections, the skybox and shadows:
    on OSMesa an 84x84 picture of Lift then takes 29-40 ms instead of 96-139 ms, and differs from the
    full one by 0.5 of 255 on average (the table's reflection; docs/images.md).
    """

    def __init__(self, hidden_groups: tuple[int, ...] = (), plain: bool = False) -> None:
        self._renderer: mujoco.Renderer | None = None
        self._key: tuple[int, int] | None = None
        self._options = mujoco.MjvOption()
        for group in hidden_groups:
            self._options.geomgroup[group] = 0
        flags = mujoco.mjtRndFlag
        self._off = (flags.mjRND_REFLECTION, flags.mjRND_SKYBOX, flags.mjRND_SHADOW) if plain else ()

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
            for flag in self._off:
                self._renderer.scene.flags[flag] = 0
        self._renderer.update_scene(data, camera=camera, scene_option=self._options)
        return self._renderer.render()

    def close(self) -> None:
        if self._renderer is not None:
            self._renderer.close()
        self._renderer, self._key = None, None

"""What an observation holds: low-dim floats, and for an image task one RGB picture per camera.

Three layouts of the same observation, one per place it lives:

- *packed* (numpy float32, `packed_dim` values): the low-dim keys, then each camera's (H, W, 3) pixels
  flattened (0-255). What an environment returns and `Agent.act` takes, so that collection, evaluation
  and the robot server pass one array per observation whatever the task.
- *stored* (an Episode): `observations` (T+1, low_dim) float32 and `images` (T+1, cameras, H, W, 3)
  uint8, 4x smaller than packed floats before compression (borl/data/store.py).
- *network* (torch float32, `network_dim(crop)` values): the normalised low-dim keys, then each camera's
  (3, crop, crop) pixels (0-255), a random crop in training (borl/data/replay.py) and the centre crop
  when acting; the image encoder (borl/policies/vision.py) splits it again.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from borl.errors import BorlError


@dataclass(frozen=True)
class ObservationSpec:
    """The sizes of a task's observations: low_dim floats and `cameras` pictures of image_size^2 RGB."""

    low_dim: int
    cameras: tuple[str, ...] = ()
    image_size: int = 84

    @property
    def has_images(self) -> bool:
        return bool(self.cameras)

    @property
    def pixels(self) -> int:
        """Values of one camera's picture."""
        return self.image_size * self.image_size * 3

    @property
    def packed_dim(self) -> int:
        return self.low_dim + len(self.cameras) * self.pixels

    def network_dim(self, crop: int) -> int:
        """Values of one observation as the networks read it (pictures centre- or randomly cropped)."""
        return self.low_dim + len(self.cameras) * 3 * crop * crop

    def check_crop(self, crop: int) -> None:
        if self.has_images and not 1 <= crop <= self.image_size:
            size = self.image_size
            raise BorlError(f"encoder.crop must be in [1, {size}] (the pictures' size), got {crop}")

    def split(self, packed: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """Packed rows (N, packed_dim) -> low-dim (N, low_dim) float32 and images (N, C, H, W, 3) uint8
        (None without cameras)."""
        packed = np.asarray(packed)
        if packed.ndim != 2 or packed.shape[1] != self.packed_dim:
            raise BorlError(f"observations must be (N, {self.packed_dim}), got {packed.shape}")
        low = np.ascontiguousarray(packed[:, : self.low_dim], dtype=np.float32)
        if not self.has_images:
            return low, None
        size = self.image_size
        pixels = packed[:, self.low_dim :].reshape(len(packed), len(self.cameras), size, size, 3)
        return low, np.clip(np.rint(pixels), 0, 255).astype(np.uint8)

    def pack(self, low: np.ndarray, images: np.ndarray | None) -> np.ndarray:
        """Inverse of `split`: (N, low_dim) and (N, C, H, W, 3) -> (N, packed_dim) float32."""
        low = np.asarray(low, dtype=np.float32)
        if not self.has_images:
            return low
        if images is None:
            raise BorlError(f"observations need pictures from cameras {', '.join(self.cameras)}")
        return np.concatenate([low, np.asarray(images, dtype=np.float32).reshape(len(low), -1)], axis=1)

    def to_dict(self) -> dict:
        return {"low_dim": self.low_dim, "cameras": list(self.cameras), "image_size": self.image_size}

    @classmethod
    def from_dict(cls, state: dict) -> ObservationSpec:
        return cls(state["low_dim"], tuple(state.get("cameras", ())), state.get("image_size", 84))


def channels_first(images: np.ndarray) -> torch.Tensor:
    """(N, C, H, W, 3) uint8 numpy -> (N, C, 3, H, W) uint8 tensor, the layout crops and convolutions read."""
    return torch.from_numpy(np.ascontiguousarray(np.moveaxis(images, -1, 2)))


def centre_crop(images: torch.Tensor, crop: int) -> torch.Tensor:
    """The centre crop x crop of (N, C, 3, H, W) pictures."""
    top = (images.shape[-2] - crop) // 2
    left = (images.shape[-1] - crop) // 2
    return images[..., top : top + crop, left : left + crop]


def random_crop(images: torch.Tensor, crop: int, generator: torch.Generator) -> torch.Tensor:
    """A crop x crop window of each (N, C, 3, H, W) picture at a random offset (one per row and camera,
    drawn from `generator`): the shift augmentation that image policies train with."""
    rows, cameras, _, height, width = images.shape
    device = images.device
    top = torch.randint(height - crop + 1, (rows, cameras, 1, 1, 1), generator=generator, device=device)
    left = torch.randint(width - crop + 1, (rows, cameras, 1, 1, 1), generator=generator, device=device)
    steps = torch.arange(crop, device=device)
    row_index = (top + steps.view(1, 1, 1, crop, 1)).expand(rows, cameras, 3, crop, width)
    cropped = images.gather(3, row_index)
    column_index = (left + steps.view(1, 1, 1, 1, crop)).expand(rows, cameras, 3, crop, crop)
    return cropped.gather(4, column_index)


def network_rows(low: torch.Tensor, images: torch.Tensor | None) -> torch.Tensor:
    """The network layout: normalised low-dim (N, low_dim) and cropped (N, C, 3, crop, crop) pictures
    -> (N, network_dim) float32."""
    if images is None:
        return low
    return torch.cat([low, images.reshape(len(low), -1).to(low.dtype)], dim=1)

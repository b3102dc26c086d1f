"""What both policy classes share: a network trained by a (weighted) imitation loss, its Adam
optimizer, and an EMA copy of its weights that sampling uses."""

from __future__ import annotations

import copy

import torch
from torch import nn

from borl.policies.networks import matmul_flops_per_row, training_flops_per_row


class EMALearner:
    """A network, its Adam and its EMA copy; subclasses define `loss` (and how to sample)."""

    obs_dim: int
    # Whether the network's first layer reads data only (then autograd computes no input gradient).
    input_is_data: bool

    def __init__(self, model: nn.Module, lr: float, ema_decay: float) -> None:
        self.model = model
        self.ema = copy.deepcopy(model).requires_grad_(False).eval()
        self.optimizer = torch.optim.Adam(model.parameters(), lr=lr, fused=True)
        self.ema_decay = ema_decay
        self.step = 0

    def noise_shape(self, n: int) -> tuple[int, ...]:
        raise NotImplementedError

    def _check_sample_inputs(self, obs: torch.Tensor, noise: torch.Tensor) -> tuple[int, int]:
        """(B, n) of a sample call; obs must be (B, obs_dim) and noise (B, *noise_shape(n))."""
        batch, n = noise.shape[:2]
        if noise.shape[1:] != self.noise_shape(n) or obs.shape != (batch, self.obs_dim):
            raise ValueError(
                f"sample: obs {tuple(obs.shape)} and noise {tuple(noise.shape)} do not match "
                f"(B, {self.obs_dim}) and (B, {', '.join(map(str, self.noise_shape(n)))}) for n={n}"
            )
        return batch, n

    def loss(
        self, obs: torch.Tensor, actions: torch.Tensor, weights: torch.Tensor | None = None
    ) -> torch.Tensor:
        raise NotImplementedError

    def update(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """One gradient step on batch["obs"], batch["actions"] (and batch["weights"] if present).

        Infos are detached 0-d tensors, so that nothing waits on a device; float() them to log.
        """
        loss = self.loss(batch["obs"], batch["actions"], batch.get("weights"))
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        self.step += 1
        # EMA with the usual warm-up so that short trainings are not dominated by the initial weights.
        decay = min(self.ema_decay, (1 + self.step) / (10 + self.step))
        with torch.no_grad():
            torch._foreach_lerp_(list(self.ema.parameters()), list(self.model.parameters()), 1 - decay)
        return {"policy_loss": loss.detach()}

    def network_flops_per_row(self) -> int:
        """FLOPs (2 x multiply-adds) of one network forward for one row; a training row costs ~3x."""
        return matmul_flops_per_row(self.model)

    def update_flops_per_row(self) -> int:
        """FLOPs of one training step per batch row: the network's forward and backward."""
        return training_flops_per_row(self.model, self.input_is_data)

    def state_dict(self) -> dict:
        return {
            "model": self.model.state_dict(),
            "ema": self.ema.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "step": self.step,
        }

    def load_state_dict(self, state: dict) -> None:
        self.model.load_state_dict(state["model"])
        self.ema.load_state_dict(state["ema"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.step = state["step"]

    def to(self, device: str | torch.device) -> EMALearner:
        """Moves networks and optimizer state to `device`; returns self."""
        self.model.to(device)
        self.ema.to(device)
        # Reloading the optimizer's own state casts it onto the parameters' new device.
        self.optimizer.load_state_dict(self.optimizer.state_dict())
        return self

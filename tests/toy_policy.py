"""A toy policy class, to show that a new one is this one file plus its line in POLICIES
(tests/test_plugins.py): the action regressed by squared error, acting with fixed-std noise around it.
It reads the Gaussian policy's settings (width, blocks, lr, ...); a class with settings of its own
would also add its settings dataclass to RunConfig."""

import torch

from borl.policies.learner import EMALearner
from borl.policies.networks import LNResNet


class RegressionPolicy(EMALearner):
    settings_key = "gaussian"
    input_is_data = True
    std = 0.1

    def __init__(self, obs_dim: int, act_dim: int, config, device: str = "cpu") -> None:
        model = LNResNet(
            obs_dim, act_dim, config.width, config.blocks, config.expansion, config.dropout, config.activation
        )
        super().__init__(model.to(device), config.lr, config.ema_decay)
        self.obs_dim, self.act_dim = obs_dim, act_dim

    def loss(self, obs, actions, weights=None):
        per_row = (self.model(obs) - actions).square().sum(dim=-1)
        return (per_row if weights is None else per_row * weights).mean()

    def noise_shape(self, n: int) -> tuple[int, int]:
        return (n, self.act_dim)

    @torch.inference_mode()
    def sample(self, obs, noise, use_ema: bool = True):
        self._check_sample_inputs(obs, noise)
        net = self.ema if use_ema else self.model
        was_training = net.training
        net.eval()
        mean = net(obs)
        net.train(was_training)
        return (mean[:, None] + self.std * noise).clamp(-1.0, 1.0)

    def sample_flops_per_action(self) -> int:
        return self.network_flops_per_row()

"""A plain eager implementation of the recipe's update step, as single-file implementations write it.

Same networks and losses as borl's learners (IQL's two Q networks, their targets and V; the
diffusion policy's noise network and its EMA), written the straightforward way: separate critic
modules, one optimizer and one backward pass per loss, Python loops over parameters for the Polyak
and EMA updates, default (per-parameter) Adam, and each batch copied out of NumPy arrays.
`borl bench train` times it beside borl's update step in the same run; nothing else uses it.
"""

from __future__ import annotations

import copy

import numpy as np
import torch
import torch.nn.functional as F

from borl.config import RunConfig
from borl.policies.diffusion import NoiseNet, vp_beta_schedule
from borl.policies.networks import MLP


class EagerReference:
    """The recipe's update step on a NumPy replay buffer, one network and one optimizer at a time."""

    def __init__(
        self,
        config: RunConfig,
        obs_dim: int,
        act_dim: int,
        buffer: dict[str, np.ndarray],
        device: str = "cpu",
    ) -> None:
        critic, policy = config.critic, config.policy
        hidden = (critic.hidden,) * critic.layers
        self.config = config
        self.buffer = buffer
        self.device = torch.device(device)
        self.rng = np.random.default_rng(0)
        self.q1 = MLP(obs_dim + act_dim, hidden, 1, layer_norm=critic.layer_norm)
        self.q2 = MLP(obs_dim + act_dim, hidden, 1, layer_norm=critic.layer_norm)
        self.q1_target, self.q2_target = copy.deepcopy(self.q1), copy.deepcopy(self.q2)
        self.v = MLP(obs_dim, hidden, 1, layer_norm=critic.layer_norm)
        self.noise_net = NoiseNet(obs_dim, act_dim, policy)
        self.ema = copy.deepcopy(self.noise_net)
        for net in (self.q1, self.q2, self.q1_target, self.q2_target, self.v, self.noise_net, self.ema):
            net.to(self.device)
        q_params = [*self.q1.parameters(), *self.q2.parameters()]
        self.q_optimizer = torch.optim.Adam(q_params, lr=critic.lr, foreach=False)
        self.v_optimizer = torch.optim.Adam(self.v.parameters(), lr=critic.lr, foreach=False)
        self.policy_optimizer = torch.optim.Adam(self.noise_net.parameters(), lr=policy.lr, foreach=False)
        alpha_bars = torch.cumprod(1 - vp_beta_schedule(policy.timesteps), 0).float()
        self.sqrt_ab, self.sqrt_1m_ab = (
            alpha_bars.sqrt().to(self.device),
            (1 - alpha_bars).sqrt().to(self.device),
        )

    def batch(self) -> dict[str, torch.Tensor]:
        """A uniform batch, indexed and copied out of the NumPy buffer (and onto the device)."""
        rows = self.rng.integers(0, len(self.buffer["actions"]), self.config.train.batch_size)
        return {k: torch.tensor(v[rows], device=self.device) for k, v in self.buffer.items()}

    def update(self) -> None:
        """One V step, one Q step, Polyak, one policy step, EMA."""
        cfg = self.config.critic
        b = self.batch()
        obs_act = torch.cat([b["obs"], b["actions"]], dim=1)

        with torch.no_grad():
            target_q = torch.min(self.q1_target(obs_act), self.q2_target(obs_act)).squeeze(-1)
        diff = target_q - self.v(b["obs"]).squeeze(-1)
        weight = torch.abs(cfg.expectile - (diff < 0).float())
        v_loss = (weight * diff**2).mean()
        self.v_optimizer.zero_grad()
        v_loss.backward()
        self.v_optimizer.step()

        with torch.no_grad():
            next_v = self.v(b["next_obs"]).squeeze(-1)
            td_target = b["rewards"] + cfg.discount * (1 - b["terminals"]) * next_v
        q_loss = F.mse_loss(self.q1(obs_act).squeeze(-1), td_target) + F.mse_loss(
            self.q2(obs_act).squeeze(-1), td_target
        )
        self.q_optimizer.zero_grad()
        q_loss.backward()
        self.q_optimizer.step()
        for net, target in ((self.q1, self.q1_target), (self.q2, self.q2_target)):
            for p, tp in zip(net.parameters(), target.parameters(), strict=True):
                tp.data.copy_(cfg.tau * p.data + (1 - cfg.tau) * tp.data)

        t = torch.randint(0, self.config.policy.timesteps, (len(b["actions"]),), device=self.device)
        noise = torch.randn_like(b["actions"])
        noisy = self.sqrt_ab[t, None] * b["actions"] + self.sqrt_1m_ab[t, None] * noise
        policy_loss = F.mse_loss(self.noise_net(b["obs"], noisy, t.float()), noise)
        self.policy_optimizer.zero_grad()
        policy_loss.backward()
        self.policy_optimizer.step()
        decay = self.config.policy.ema_decay
        for p, ep in zip(self.noise_net.parameters(), self.ema.parameters(), strict=True):
            ep.data.copy_(decay * ep.data + (1 - decay) * p.data)

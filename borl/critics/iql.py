"""Implicit Q-learning critic (Kostrikov et al. 2021), as used by IDQL and the batch online RL study.

V regresses on an upper expectile of the target critics' min Q(s, a) over dataset actions, and Q on
r + discount * (1 - terminal) * V(s'). Only dataset actions are ever evaluated during training, so
the critic never queries out-of-distribution actions.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import torch
from torch import nn

from borl.policies.networks import MLP, EnsembleMLP, matmul_flops_per_row, training_flops_per_row
from borl.settings import setting


@dataclass
class IQLConfig:
    """IQL hyperparameters (IDQL defaults; LayerNorm in the critics for stability).

    q_clip clamps the TD targets to the range that returns can reach: with a sparse success reward
    (1 on the terminal success step, else 0) true Q lies in [0, 1]. None disables the clamp.

    conservative and policy_samples are calql's: the penalty's weight, and the actions per state drawn
    from the collecting policy that it pushes down (iql ignores both).

    mc_lower_bound raises each TD target to at least the transition's Monte-Carlo return-to-go (the
    value of what actually followed in its complete episode; Cal-QL's calibration applied to the
    target): on a successful episode 400 steps long, TD alone needs hundreds of Polyak-slowed
    backups to carry the reward back to the start, the bound carries it at once, and it never lowers
    a target (failed episodes' returns are 0).
    """

    num_critics: int = setting(2, minimum=1, help="Q networks in the ensemble (targets take their min)")
    hidden: int = setting(256, minimum=1, help="each network's hidden width")
    layers: int = setting(2, minimum=1, help="each network's hidden layers")
    layer_norm: bool = setting(True, help="LayerNorm after each hidden layer")
    expectile: float = setting(0.7, positive=True, help="V's expectile of Q (IQL's tau)")
    discount: float = setting(0.99, minimum=0, help="the discount per step")
    tau: float = setting(0.005, positive=True, help="the target Q's Polyak rate")
    lr: float = setting(3e-4, positive=True, help="Adam's learning rate")
    q_clip: tuple[float, float] | None = setting(
        (0.0, 1.0), help="TD targets clamped to this [low, high] (null: no clamp)"
    )
    mc_lower_bound: bool = setting(
        False, help="raise each TD target to at least its transition's Monte-Carlo return-to-go"
    )
    kind: str = setting(
        "iql",
        help="the objective (borl/critics CRITICS): iql; calql (IQL plus a calibrated conservative term "
        "on the collecting policy's samples); hlgauss (Q a histogram over q_clip, cross-entropy)",
    )
    conservative: float = setting(0.1, minimum=0, help="calql: the conservative term's weight")
    policy_samples: int = setting(4, minimum=1, help="calql: the policy's actions per state it pushes down")
    bins: int = setting(51, minimum=2, help="hlgauss: the histogram's bins over q_clip's range")
    bin_sigma: float = setting(0.75, positive=True, help="hlgauss: the target Gaussian's std in bins")
    share_encoder: bool = setting(
        False,
        help="image tasks: Q and V read the policy's image encoder, trained by the policy's loss alone "
        "and frozen while the critic trains after it, instead of their own (docs/images.md)",
    )


class IQLCritic:
    """Q ensemble (one fused module), its Polyak-averaged target, V network and one Adam for both."""

    def __init__(
        self,
        obs_dim: int,
        act_dim: int,
        config: IQLConfig,
        device: str = "cpu",
        encoder: nn.Module | None = None,
        train_encoder: bool = True,
    ) -> None:
        """`encoder`: an image task's (borl/policies/vision.py), in front of the Q ensemble, its
        target and V. train_encoder False: it is another network's (the policy's, critic.share_encoder),
        read without gradients, and neither this critic's optimizer nor its state dict holds it."""
        self.obs_dim, self.act_dim, self.config = obs_dim, act_dim, config
        self.policy_samples = self.samples_needed(config)
        self.encoder = None if encoder is None else encoder.to(device)
        self.train_encoder = encoder is not None and train_encoder
        features = obs_dim if encoder is None else encoder.out_dim
        hidden = (config.hidden,) * config.layers
        self.q_net = EnsembleMLP(
            config.num_critics,
            features + act_dim,
            hidden,
            self.q_outputs(config),
            layer_norm=config.layer_norm,
        ).to(device)
        self.target_q_net = copy.deepcopy(self.q_net).requires_grad_(False)
        self.v_net = MLP(features, hidden, 1, layer_norm=config.layer_norm).to(device)
        params = [*self.q_net.parameters(), *self.v_net.parameters()]
        params += list(self.encoder.parameters()) if self.train_encoder else []
        self.optimizer = torch.optim.Adam(params, lr=config.lr, fused=True)
        self._q_params = list(self.q_net.parameters())
        self._target_params = list(self.target_q_net.parameters())

    def update(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """One step on V's expectile loss and Q's TD loss together, then the Polyak update.

        The Q target uses V(s') from before this step (as CORL's IQL does), which lets both losses
        share one backward pass and one optimizer step. Infos are detached 0-d tensors.
        """
        cfg = self.config
        obs = self.features(batch["obs"])
        obs_act = torch.cat([obs, batch["actions"]], dim=-1)
        with torch.no_grad():
            target_q = self.q_values(self.target_q_net(obs_act)).min(dim=0).values
            next_v = self.v_net(self.features(batch["next_obs"])).squeeze(-1)
            td_target = batch["rewards"] + cfg.discount * (1.0 - batch["terminals"]) * next_v
            if cfg.mc_lower_bound:
                td_target = torch.maximum(td_target, batch["returns"])
            if cfg.q_clip is not None:
                td_target = td_target.clamp(*cfg.q_clip)

        v = self.v_net(obs).squeeze(-1)
        diff = target_q - v
        v_loss = (torch.where(diff > 0, cfg.expectile, 1 - cfg.expectile) * diff.square()).mean()
        q_loss, qs = self.q_loss(self.q_net(obs_act), td_target)
        extra, extra_info = self.extra_loss(batch, qs, obs)

        self.optimizer.zero_grad(set_to_none=True)
        (v_loss + q_loss + extra).backward()
        self.optimizer.step()
        with torch.no_grad():
            torch._foreach_lerp_(self._target_params, self._q_params, cfg.tau)
        return {
            "q_loss": q_loss.detach(),
            "v_loss": v_loss.detach(),
            "q_mean": qs.detach().mean(),
            "v_mean": v.detach().mean(),
            **extra_info,
        }

    @classmethod
    def samples_needed(cls, config: IQLConfig) -> int:
        """Actions per state this objective needs from the collecting policy (IQL: none)."""
        return 0

    @classmethod
    def check_config(cls, config: IQLConfig) -> None:
        """Raise a BorlError for settings this objective cannot train with (IQL takes any)."""

    @classmethod
    def q_outputs(cls, config: IQLConfig) -> int:
        """Outputs of each Q network per row (IQL: the value itself)."""
        return 1

    def q_values(self, outputs: torch.Tensor) -> torch.Tensor:
        """Q values (members, B) from the Q networks' outputs (members, B, q_outputs)."""
        return outputs.squeeze(-1)

    def q_loss(self, outputs: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The Q networks' loss against the TD target (B,), and their values (members, B): IQL's
        squared error."""
        qs = self.q_values(outputs)
        return (qs - target).square().mean(), qs

    def extra_loss(
        self, batch: dict[str, torch.Tensor], qs: torch.Tensor, obs: torch.Tensor
    ) -> tuple[torch.Tensor, dict]:
        """A further loss on the Q ensemble's dataset values qs (members, batch) and its infos, given
        the observations as the Q networks read them (`features`): none for IQL; the hook a variant
        objective fills (borl/critics/calql.py)."""
        return qs.new_zeros(()), {}

    def features(self, obs: torch.Tensor) -> torch.Tensor:
        """What the Q and V networks read of obs (B, obs_dim): obs itself, or the encoder's features
        (without a graph when the encoder is the policy's)."""
        if self.encoder is None:
            return obs
        with torch.set_grad_enabled(self.train_encoder and torch.is_grad_enabled()):
            return self.encoder(obs)

    def _obs_actions(self, obs: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        """The Q networks' input rows; actions (B, act_dim), or (B, n, act_dim) for n per observation
        (the observation is encoded once, not n times)."""
        features = self.features(obs)
        if actions.dim() == 3:
            features = features.repeat_interleave(actions.shape[1], dim=0)
            actions = actions.reshape(-1, actions.shape[-1])
        return torch.cat([features, actions], dim=-1)

    @torch.no_grad()
    def q(self, obs: torch.Tensor, actions: torch.Tensor, use_target: bool = True) -> torch.Tensor:
        """Min over the ensemble of Q(obs, actions): (B, obs_dim), (B, act_dim) -> (B,), or actions
        (B, n, act_dim) -> (B, n)."""
        net = self.target_q_net if use_target else self.q_net
        q = self.q_values(net(self._obs_actions(obs, actions))).min(dim=0).values
        return q.reshape(actions.shape[:-1])

    @torch.no_grad()
    def q_members(self, obs: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        """Every target Q network's value: (B, obs_dim), (B, act_dim) -> (num_critics, B), or actions
        (B, n, act_dim) -> (num_critics, B, n); their spread is the ensemble's uncertainty."""
        members = self.q_values(self.target_q_net(self._obs_actions(obs, actions)))
        return members.reshape(-1, *actions.shape[:-1])

    @torch.no_grad()
    def v(self, obs: torch.Tensor) -> torch.Tensor:
        """V(obs): (B, obs_dim) -> (B,)."""
        return self.v_net(self.features(obs)).squeeze(-1)

    @torch.no_grad()
    def advantage(self, obs: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        """Target-critic min Q(obs, actions) - V(obs), shape (B,): what AWR weights exponentiate."""
        return self.q(obs, actions) - self.v(obs)

    def q_flops_per_row(self) -> int:
        """FLOPs (2 x multiply-adds) of one Q-ensemble forward for one (obs, action) row."""
        return matmul_flops_per_row(self.q_net)

    def update_flops_per_row(self) -> int:
        """FLOPs of one update per batch row: target Q and V(s') forward, V(s) and the Q ensemble
        forward and backward (their inputs are data)."""
        forward = self.q_flops_per_row() + matmul_flops_per_row(self.v_net)
        trained = sum(training_flops_per_row(net, input_is_data=True) for net in (self.q_net, self.v_net))
        if self.train_encoder:  # obs forward and backward, next_obs forward
            trained += training_flops_per_row(self.encoder, input_is_data=True)
            forward += matmul_flops_per_row(self.encoder)
        elif self.encoder is not None:  # the policy's encoder: obs and next_obs forward only
            forward += 2 * matmul_flops_per_row(self.encoder)
        return forward + trained

    def state_dict(self) -> dict:
        state = {
            "q_net": self.q_net.state_dict(),
            "target_q_net": self.target_q_net.state_dict(),
            "v_net": self.v_net.state_dict(),
            "optimizer": self.optimizer.state_dict(),
        }
        if self.train_encoder:
            state["encoder"] = self.encoder.state_dict()
        return state

    def load_state_dict(self, state: dict) -> None:
        if self.train_encoder:
            self.encoder.load_state_dict(state["encoder"])
        self.q_net.load_state_dict(state["q_net"])
        self.target_q_net.load_state_dict(state["target_q_net"])
        self.v_net.load_state_dict(state["v_net"])
        self.optimizer.load_state_dict(state["optimizer"])

    def to(self, device: str | torch.device) -> IQLCritic:
        """Moves networks and optimizer state to `device`; returns self."""
        for net in (self.q_net, self.target_q_net, self.v_net, self.encoder):
            if net is not None:
                net.to(device)
        # Reloading the optimizer's own state casts it onto the parameters' new device.
        self.optimizer.load_state_dict(self.optimizer.state_dict())
        return self

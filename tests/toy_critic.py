"""A toy critic objective, to show that a new one is this one file plus its line in CRITICS
(tests/test_plugins.py): IQL with a Huber loss on the TD error instead of the squared error."""

import torch

from borl.critics.iql import IQLCritic


class HuberCritic(IQLCritic):
    def q_loss(self, outputs, target):
        qs = self.q_values(outputs)
        return torch.nn.functional.huber_loss(qs, target.expand_as(qs), delta=0.1), qs

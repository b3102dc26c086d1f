"""Implicit extraction: best-of-N picks the highest-Q candidate; temperature sampling is reproducible."""

import pytest
import torch

from borl.extraction import best_of_n, choose

pytestmark = pytest.mark.usefixtures("one_thread")


class DistanceCritic:
    """Q(s, a) = -|a - s|^2 (obs and actions of the same size) for n actions per state (B, n, dim);
    counts the rows it scores."""

    def __init__(self) -> None:
        self.calls: list[int] = []

    def q(self, obs: torch.Tensor, actions: torch.Tensor, use_target: bool = True) -> torch.Tensor:
        assert use_target
        self.calls.append(actions.shape[:-1].numel())
        return -(actions - obs[:, None]).square().sum(dim=-1)


def test_argmax_picks_the_highest_q_candidate_in_one_critic_call():
    torch.manual_seed(0)
    obs = torch.rand(4, 2) * 2 - 1
    candidates = torch.rand(4, 16, 2) * 2 - 1
    critic = DistanceCritic()
    chosen = best_of_n(candidates, obs, critic)
    assert critic.calls == [4 * 16]
    closest = (candidates - obs[:, None]).square().sum(-1).argmin(dim=1)
    assert torch.equal(chosen, candidates[torch.arange(4), closest])


def test_temperature_sampling_is_reproducible_and_favours_high_q():
    q = torch.tensor([[0.0, 0.5, 1.0, 0.2]]).repeat(4000, 1)
    uniforms = torch.rand(4000, generator=torch.Generator().manual_seed(7))
    first = choose(q, temperature=0.2, uniforms=uniforms)
    assert torch.equal(first, choose(q, temperature=0.2, uniforms=uniforms.clone()))
    counts = torch.bincount(first, minlength=4).float() / 4000
    expected = torch.softmax(q[0] / 0.2, dim=0)
    assert torch.allclose(counts, expected, atol=0.03)
    assert counts.argmax() == 2 and counts[1] > counts[3] > counts[0]
    # A uniform at the very top of [0, 1) still picks a valid index.
    assert choose(q[:1], 0.2, torch.tensor([1.0 - 1e-7])).item() == 3


def test_temperature_rows_use_only_their_own_uniform():
    torch.manual_seed(1)
    obs = torch.rand(3, 2)
    candidates = torch.rand(3, 8, 2)
    uniforms = torch.rand(3)
    batched = best_of_n(candidates, obs, DistanceCritic(), temperature=0.05, uniforms=uniforms)
    for i in range(3):
        alone = best_of_n(candidates[i : i + 1], obs[i : i + 1], DistanceCritic(), 0.05, uniforms[i : i + 1])
        assert torch.equal(alone[0], batched[i])


def test_low_temperature_approaches_argmax():
    torch.manual_seed(2)
    obs, candidates = torch.rand(5, 2), torch.rand(5, 8, 2)
    critic = DistanceCritic()
    assert torch.equal(
        best_of_n(candidates, obs, critic, temperature=1e-6, uniforms=torch.rand(5)),
        best_of_n(candidates, obs, critic),
    )


def test_safe_choice_moves_only_where_the_ensemble_agrees():
    from borl.extraction.implicit import safe_choose

    # Two states, three candidates, two Q networks. State 0: both members rate candidate 2 higher than
    # candidate 0 by 0.3 and 0.5; state 1: they disagree about it (+0.6, -0.2).
    members = torch.tensor(
        [
            [[0.1, 0.0, 0.4], [0.2, 0.1, 0.8]],
            [[0.1, 0.0, 0.6], [0.3, 0.2, 0.1]],
        ]
    )
    assert safe_choose(members, k=1.0).tolist() == [2, 0]
    assert safe_choose(members, k=0.0).tolist() == [2, 2]
    assert safe_choose(members, k=0.0, margin=0.5).tolist() == [0, 0]
    with pytest.raises(ValueError, match="at least 2"):
        safe_choose(members[:1], k=1.0)

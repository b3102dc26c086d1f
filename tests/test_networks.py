"""borl's dropout: drop rate, scaling, gradient, eval mode and repeatability."""

import pytest
import torch

from borl.policies.networks import Dropout


def test_dropout_drops_about_p_and_rescales_the_rest(device):
    torch.manual_seed(0)
    x = torch.ones(513, 257, device=device)  # not a multiple of 4 elements
    y = Dropout(0.1)(x)
    kept = y != 0
    assert abs(kept.float().mean().item() - 0.9) < 0.005
    assert torch.allclose(y[kept], torch.full_like(y[kept], 1 / (1 - 3277 / 2**15)))
    assert abs(y.mean().item() - 1.0) < 0.01


def test_dropout_gradient_is_the_mask_and_eval_is_the_identity():
    torch.manual_seed(0)
    layer = Dropout(0.5)
    x = torch.randn(64, 32, requires_grad=True)
    y = layer(x)
    y.sum().backward()
    assert torch.allclose(x.grad, y.detach() / x.detach())
    layer.eval()
    assert layer(x) is x
    assert Dropout(0.0)(x) is x


def test_dropout_masks_repeat_under_the_same_seed():
    torch.manual_seed(3)
    a = Dropout(0.1)(torch.ones(100, 100))
    torch.manual_seed(3)
    b = Dropout(0.1)(torch.ones(100, 100))
    assert torch.equal(a, b) and not torch.equal(a, Dropout(0.1)(torch.ones(100, 100)))


@pytest.mark.parametrize("p", [-0.1, 1.0])
def test_dropout_refuses_a_bad_probability(p):
    with pytest.raises(ValueError, match="dropout probability"):
        Dropout(p)

"""borl's layers: oneDNN's linear and ensemble layers against torch's own; dropout's drop rate,
scaling, gradient, eval mode and repeatability."""

import pytest
import torch
import torch.nn.functional as F

from borl.policies.networks import Dropout, EnsembleLinear, Linear


def _gradients(loss: torch.Tensor, tensors: list[torch.Tensor]) -> list[torch.Tensor]:
    return list(torch.autograd.grad(loss, tensors))


@pytest.mark.parametrize("shape", [(64, 26), (3, 32, 26)])
def test_linear_equals_torchs_in_value_and_gradients(shape, device):
    torch.manual_seed(0)
    layer = Linear(26, 40).to(device)
    x = torch.randn(*shape, device=device, requires_grad=True)
    target = torch.randn(*shape[:-1], 40, device=device)
    ours = layer(x)
    theirs = F.linear(x, layer.weight, layer.bias)
    torch.testing.assert_close(ours, theirs, rtol=1e-5, atol=1e-5)
    params = [x, layer.weight, layer.bias]
    for a, b in zip(
        _gradients((ours - target).square().sum(), params),
        _gradients((theirs - target).square().sum(), params),
        strict=True,
    ):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-4)
    # The gradient of a plain sum arrives expanded (all strides 0).
    ours, theirs = layer(x), F.linear(x, layer.weight, layer.bias)
    for a, b in zip(_gradients(ours.sum(), params), _gradients(theirs.sum(), params), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-4)


def test_linear_on_data_that_needs_no_gradient_trains_its_parameters():
    """The first layer of a critic: its input is data, so the backward skips the input gradient."""
    torch.manual_seed(0)
    layer, x = Linear(8, 4), torch.randn(16, 8)
    params = [layer.weight, layer.bias]
    ours = _gradients((layer(x) - 1).square().sum(), params)
    theirs = _gradients((F.linear(x, layer.weight, layer.bias) - 1).square().sum(), params)
    for a, b in zip(ours, theirs, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("shared_input", [True, False])
def test_ensemble_linear_equals_a_batched_matmul_in_value_and_gradients(shared_input, device):
    torch.manual_seed(0)
    layer = EnsembleLinear(3, 26, 40).to(device)
    rows = torch.randn(32, 26, device=device) if shared_input else torch.randn(3, 32, 26, device=device)
    x = rows.requires_grad_()
    members = x.expand(3, 32, 26) if shared_input else x
    ours = layer(members)
    theirs = torch.baddbmm(layer.bias, members, layer.weight)
    torch.testing.assert_close(ours, theirs, rtol=1e-5, atol=1e-5)
    weights = torch.randn(3, 32, 40, device=device)
    params = [x, layer.weight, layer.bias]
    for a, b in zip(
        _gradients((ours * weights).sum(), params), _gradients((theirs * weights).sum(), params), strict=True
    ):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-4)
    # The gradient of a plain sum arrives expanded (all strides 0).
    ours, theirs = layer(members), torch.baddbmm(layer.bias, members, layer.weight)
    for a, b in zip(_gradients(ours.sum(), params), _gradients(theirs.sum(), params), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-4)


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

"""Small composable networks: MLP, LN-ResNet, learnable Fourier features and fused ensembles.

The shapes follow the IDQL reference code (jaxrl5): the diffusion policy's noise network is an
LN-ResNet conditioned on learnable Fourier features of the timestep, and the Q-functions are an
ensemble evaluated by one fused layer per depth (not a Python loop over critic modules). On the CPU
every layer's matmuls run in oneDNN (`linear`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

# oneDNN's fp32 GEMM, where torch has it. On this project's AMD EPYC development machine torch's own
# fp32 matmul (MKL) reaches half the rate that oneDNN does, at these layer shapes and at 2048
# (docs/performance.md).
_ONEDNN_GEMM = torch.backends.mkldnn.is_available() and hasattr(torch.ops.mkldnn, "_linear_pointwise")


def _onednn_matmul_t(a: torch.Tensor, b: torch.Tensor, bias: torch.Tensor | None = None) -> torch.Tensor:
    """a @ b.T (+ bias) by oneDNN, for 2-D fp32 CPU tensors of any strides."""
    return torch.ops.mkldnn._linear_pointwise(a, b, bias, "none", [], "")


class _OneDNNLinear(torch.autograd.Function):
    """x @ weight.T + bias with the forward and both gradients' matmuls in oneDNN (2-D x)."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
        ctx.save_for_backward(x, weight)
        ctx.has_bias = bias is not None
        return _onednn_matmul_t(x, weight, bias)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        x, weight = ctx.saved_tensors
        needs_x, needs_weight, needs_bias = ctx.needs_input_grad
        grad_x = _onednn_matmul_t(grad, weight.t()) if needs_x else None
        grad_weight = _onednn_matmul_t(grad.t(), x.t()) if needs_weight else None
        grad_bias = grad.sum(0) if ctx.has_bias and needs_bias else None
        return grad_x, grad_weight, grad_bias


class _OneDNNEnsembleLinear(torch.autograd.Function):
    """x[k] @ weight[k] + bias[k] for each member k, (K, B, in) -> (K, B, out), in oneDNN.

    One Function for all members, so that the backward writes each gradient once (indexing the
    weight per member under autograd would build a zero-filled copy of all members per member).
    """

    @staticmethod
    def forward(ctx, x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(x, weight)
        return torch.stack([_onednn_matmul_t(x[k], weight[k].t(), bias[k, 0]) for k in range(len(weight))])

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        x, weight = ctx.saved_tensors
        needs_x, needs_weight, needs_bias = ctx.needs_input_grad
        # An expanded gradient (of a plain sum) made the critic's ensemble 1.8x slower, fwd + bwd.
        grad = grad.contiguous()
        members = range(len(weight))
        grad_x = torch.stack([_onednn_matmul_t(grad[k], weight[k]) for k in members]) if needs_x else None
        grad_weight = (
            torch.stack([_onednn_matmul_t(x[k].t(), grad[k].t()) for k in members]) if needs_weight else None
        )
        grad_bias = grad.sum(1, keepdim=True) if needs_bias else None
        return grad_x, grad_weight, grad_bias


def _onednn_applies(x: torch.Tensor, weight: torch.Tensor) -> bool:
    return _ONEDNN_GEMM and x.device.type == "cpu" and x.dtype == weight.dtype == torch.float32


def linear(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None) -> torch.Tensor:
    """F.linear, with fp32 CPU matmuls (forward and backward) run by oneDNN where torch has it.

    Results equal F.linear's to fp32 rounding (the two libraries sum in different orders).
    """
    if not _onednn_applies(x, weight):
        return F.linear(x, weight, bias)
    if x.dim() == 2:
        return _OneDNNLinear.apply(x, weight, bias)
    rows = _OneDNNLinear.apply(x.reshape(-1, x.shape[-1]), weight, bias)
    return rows.reshape(*x.shape[:-1], weight.shape[0])


class Linear(nn.Linear):
    """nn.Linear computed by `linear` (oneDNN's GEMM on the CPU); same parameters and state dict."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return linear(x, self.weight, self.bias)


def activation(name: str) -> nn.Module:
    """The activation module called `name` ("relu", "mish", "gelu" or "silu")."""
    modules = {"relu": nn.ReLU, "mish": nn.Mish, "gelu": nn.GELU, "silu": nn.SiLU}
    if name not in modules:
        raise ValueError(f"unknown activation {name!r}; choose from {sorted(modules)}")
    return modules[name]()


class MLP(nn.Module):
    """Linear layers with `activation` between them (and LayerNorm before it if `layer_norm`)."""

    def __init__(
        self,
        in_dim: int,
        hidden_dims: Sequence[int],
        out_dim: int,
        activation_name: str = "relu",
        layer_norm: bool = False,
    ) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        for width in hidden_dims:
            layers.append(Linear(in_dim, width))
            if layer_norm:
                layers.append(nn.LayerNorm(width))
            layers.append(activation(activation_name))
            in_dim = width
        layers.append(Linear(in_dim, out_dim))
        self.layers = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)


class Dropout(nn.Module):
    """Inverted dropout whose mask comes from 15 random bits per element.

    torch's dropout draws one Bernoulli sample per element, about 4.4 ns each on this CPU, which made
    it 9% of a policy update; here one 64-bit draw serves four elements (2.3x faster forward and
    backward). The drop probability is p rounded to a multiple of 2^-15 (0.1 becomes 0.100006).
    Random numbers come from torch's default generator, so torch.manual_seed makes masks repeatable.
    """

    def __init__(self, p: float) -> None:
        super().__init__()
        if not 0.0 <= p < 1.0:
            raise ValueError(f"dropout probability must be in [0, 1), got {p}")
        self.threshold = round(p * 2**15)
        self.scale = 1.0 / (1.0 - self.threshold / 2**15)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.threshold == 0:
            return x
        draws = torch.empty(-(-x.numel() // 4), dtype=torch.int64, device=x.device).random_()
        bits = draws.view(torch.int16)[: x.numel()].view(x.shape) & 0x7FFF
        return x * (bits >= self.threshold).to(x.dtype).mul_(self.scale)


class ResidualBlock(nn.Module):
    """x + Linear(act(Linear(LayerNorm(dropout(x))))), widening by `expansion` inside (IDQL's block)."""

    def __init__(self, width: int, expansion: int, dropout: float, activation_name: str) -> None:
        super().__init__()
        self.body = nn.Sequential(
            Dropout(dropout) if dropout > 0 else nn.Identity(),
            nn.LayerNorm(width),
            Linear(width, width * expansion),
            activation(activation_name),
            Linear(width * expansion, width),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class LNResNet(nn.Module):
    """IDQL's LN-ResNet (MLPResNetV3): input Linear, residual blocks, activation, output Linear."""

    def __init__(
        self,
        in_dim: int,
        out_dim: int,
        width: int = 256,
        blocks: int = 3,
        expansion: int = 4,
        dropout: float = 0.1,
        activation_name: str = "mish",
    ) -> None:
        super().__init__()
        self.layers = nn.Sequential(
            Linear(in_dim, width),
            *(ResidualBlock(width, expansion, dropout, activation_name) for _ in range(blocks)),
            activation(activation_name),
            Linear(width, out_dim),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)


class FourierFeatures(nn.Module):
    """Learnable Fourier features [cos(2 pi x W^T), sin(2 pi x W^T)], W ~ N(0, std^2) (IDQL)."""

    def __init__(self, out_dim: int, in_dim: int = 1, std: float = 0.2) -> None:
        super().__init__()
        if out_dim % 2:
            raise ValueError(f"FourierFeatures needs an even out_dim, got {out_dim}")
        self.weight = nn.Parameter(torch.randn(out_dim // 2, in_dim) * std)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        f = 2 * math.pi * x @ self.weight.T
        return torch.cat([f.cos(), f.sin()], dim=-1)


class EnsembleLinear(nn.Module):
    """K independent Linear layers applied as one op: (K, B, in) -> (K, B, out).

    On the CPU one oneDNN GEMM per member inside one autograd Function (5-17% faster than torch's
    batched matmul for the critic's ensemble, forward and backward, here); elsewhere one batched
    matmul. Each member is initialised like nn.Linear (uniform in +-1/sqrt(in)).
    """

    def __init__(self, members: int, in_dim: int, out_dim: int) -> None:
        super().__init__()
        bound = 1 / math.sqrt(in_dim)
        self.weight = nn.Parameter(torch.empty(members, in_dim, out_dim).uniform_(-bound, bound))
        self.bias = nn.Parameter(torch.empty(members, 1, out_dim).uniform_(-bound, bound))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if _onednn_applies(x, self.weight):
            return _OneDNNEnsembleLinear.apply(x, self.weight, self.bias)
        return torch.baddbmm(self.bias, x, self.weight)


class EnsembleLayerNorm(nn.Module):
    """LayerNorm over the last dimension with a separate affine transform per ensemble member."""

    def __init__(self, members: int, width: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(members, 1, width))
        self.bias = nn.Parameter(torch.zeros(members, 1, width))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.addcmul(self.bias, F.layer_norm(x, x.shape[-1:]), self.weight)


class EnsembleMLP(nn.Module):
    """K independent MLPs (e.g. the critics of a Q ensemble) evaluated together.

    Input (B, in) is shared by all members; input (K, B, in) gives each member its own rows.
    Output is (K, B, out).
    """

    def __init__(
        self,
        members: int,
        in_dim: int,
        hidden_dims: Sequence[int],
        out_dim: int,
        activation_name: str = "relu",
        layer_norm: bool = False,
    ) -> None:
        super().__init__()
        self.members = members
        layers: list[nn.Module] = []
        for width in hidden_dims:
            layers.append(EnsembleLinear(members, in_dim, width))
            if layer_norm:
                layers.append(EnsembleLayerNorm(members, width))
            layers.append(activation(activation_name))
            in_dim = width
        layers.append(EnsembleLinear(members, in_dim, out_dim))
        self.layers = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() == 2:
            x = x.expand(self.members, *x.shape)
        return self.layers(x)


def _layer_flops_per_row(module: nn.Module) -> int:
    """2 x the multiply-adds of one (ensemble) Linear layer or convolution for one row; 0 for any other
    module."""
    if isinstance(module, nn.Linear):
        return 2 * module.in_features * module.out_features
    if isinstance(module, EnsembleLinear):
        return 2 * module.weight.numel()
    if isinstance(module, nn.Conv2d):
        # output_pixels is set by borl.policies.vision.record_conv_sizes
        return 2 * module.weight.numel() * getattr(module, "output_pixels", 0)
    return 0


def matmul_flops_per_row(module: nn.Module) -> int:
    """2 x the multiply-adds of all (ensemble) Linear layers in `module` for one input row.

    This is the forward cost that dominates these networks (training_flops_per_row: a training step's).
    """
    return sum(_layer_flops_per_row(m) for m in module.modules())


def training_flops_per_row(module: nn.Module, input_is_data: bool) -> int:
    """Matmul FLOPs of one forward and backward of `module` for one row, as autograd runs them.

    A layer's backward costs two forwards (the gradients of its weight and of its input), except
    that autograd computes no input gradient for the first layer when its input is data, not the
    output of something trained.
    """
    flops = 3 * matmul_flops_per_row(module)
    if input_is_data:
        flops -= next((f for m in module.modules() if (f := _layer_flops_per_row(m))), 0)
    return flops

"""The image encoder that policies and critics put in front of their trunks on an image task.

Per camera: a ResNet (ResNet-18's BasicBlocks by default, randomly initialised) with GroupNorm in
place of BatchNorm, so that its output does not depend on the batch and its EMA copy is a plain
average of weights; then spatial-softmax keypoints (each of `keypoints` maps' expected x and y) and a
Linear to `features` values. The features of every camera are concatenated after the low-dim keys,
so a trunk reads (low_dim + cameras * features) values. The shapes follow robomimic's image policies
(ResNet18Conv, SpatialSoftmax with 32 keypoints, a 64-value feature per camera, 84 -> 76 crops).

The ResNet is written here, not taken from torchvision: PyPI's torchvision does not import beside the
CPU build of torch 2.13.0 that borl pins, and the torchvision that does (0.29.1) needs torch 2.14.1
(a 5.5 GB CUDA build on this machine's x86_64). The module names match torchvision's, so a
torchvision ResNet-18 state dict loads (`weights`; BatchNorm affine parameters into the GroupNorms).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from borl.data.observations import ObservationSpec
from borl.errors import BorlError, one_line
from borl.policies.networks import Linear
from borl.settings import setting


@dataclass
class EncoderConfig:
    """Image encoder settings (used on image tasks only); the defaults are ResNet-18, for a GPU.

    `--quick` and the CPU tests use widths [16, 32] with one block per stage, 16 keypoints and 32
    features: 26 MFLOP per two-camera observation against ResNet-18's 989 (docs/images.md).
    """

    widths: tuple[int, ...] = setting(
        (64, 128, 256, 512), help="the ResNet's stage widths (ResNet-18: 64,128,256,512)"
    )
    blocks: int = setting(2, minimum=1, help="BasicBlocks per stage (ResNet-18: 2)")
    group_channels: int = setting(16, minimum=1, help="channels per GroupNorm group (robomimic's 16)")
    keypoints: int = setting(32, minimum=1, help="spatial-softmax keypoints per camera")
    features: int = setting(64, minimum=1, help="each camera's feature size after the keypoints")
    crop: int = setting(76, minimum=1, help="training crops (random) and acting crops (centre) of 84x84")
    weights: str | None = setting(
        None, help="a local ResNet state dict (e.g. torchvision's ResNet-18) to start each camera's from"
    )


def _norm(channels: int, group_channels: int) -> nn.GroupNorm:
    return nn.GroupNorm(max(1, channels // group_channels), channels)


class BasicBlock(nn.Module):
    """ResNet's two 3x3 convolutions with a shortcut (a strided 1x1 convolution when the shape changes)."""

    def __init__(self, inputs: int, width: int, stride: int, group_channels: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(inputs, width, 3, stride, 1, bias=False)
        self.bn1 = _norm(width, group_channels)
        self.conv2 = nn.Conv2d(width, width, 3, 1, 1, bias=False)
        self.bn2 = _norm(width, group_channels)
        self.downsample = None
        if stride != 1 or inputs != width:
            self.downsample = nn.Sequential(
                nn.Conv2d(inputs, width, 1, stride, bias=False), _norm(width, group_channels)
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + (x if self.downsample is None else self.downsample(x)))


class ResNet(nn.Module):
    """ResNet's stem (7x7 stride-2 convolution, 3x3 max pool) and stages of BasicBlocks, each stage
    after the first halving the resolution; no pooling or classifier: (B, 3, H, W) -> (B, C, h, w)."""

    def __init__(self, widths: tuple[int, ...], blocks: int, group_channels: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, widths[0], 7, 2, 3, bias=False)
        self.bn1 = _norm(widths[0], group_channels)
        inputs = widths[0]
        for stage, width in enumerate(widths, start=1):
            stride = 2 if stage > 1 else 1
            layers = [
                BasicBlock(inputs if i == 0 else width, width, stride if i == 0 else 1, group_channels)
                for i in range(blocks)
            ]
            self.add_module(f"layer{stage}", nn.Sequential(*layers))
            inputs = width
        self.stages = len(widths)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.max_pool2d(F.relu(self.bn1(self.conv1(x))), 3, 2, 1)
        for stage in range(1, self.stages + 1):
            x = getattr(self, f"layer{stage}")(x)
        return x


class SpatialSoftmax(nn.Module):
    """Keypoints of a feature map: a 1x1 convolution to K maps, a softmax over each map's positions,
    and each map's expected (x, y) in [-1, 1]: (B, C, h, w) -> (B, 2K)."""

    def __init__(self, channels: int, keypoints: int) -> None:
        super().__init__()
        self.to_maps = nn.Conv2d(channels, keypoints, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        maps = self.to_maps(x)
        batch, keypoints, height, width = maps.shape
        attention = maps.reshape(batch, keypoints, height * width).softmax(dim=-1)
        ys = torch.linspace(-1.0, 1.0, height, device=x.device, dtype=x.dtype)
        xs = torch.linspace(-1.0, 1.0, width, device=x.device, dtype=x.dtype)
        grid_y, grid_x = torch.meshgrid(ys, xs, indexing="ij")
        positions = torch.stack([grid_x.reshape(-1), grid_y.reshape(-1)], dim=1)  # (h*w, 2)
        return (attention @ positions).reshape(batch, 2 * keypoints)


class CameraEncoder(nn.Module):
    """One camera's pictures (B, 3, crop, crop), 0-255 -> (B, features)."""

    def __init__(self, config: EncoderConfig) -> None:
        super().__init__()
        self.backbone = ResNet(tuple(config.widths), config.blocks, config.group_channels)
        self.keypoints = SpatialSoftmax(config.widths[-1], config.keypoints)
        self.project = Linear(2 * config.keypoints, config.features)

    def forward(self, pictures: torch.Tensor) -> torch.Tensor:
        x = pictures / 127.5 - 1.0
        return self.project(self.keypoints(self.backbone(x)))


class ObservationEncoder(nn.Module):
    """Network-layout observations (borl/data/observations.py) -> the low-dim keys followed by each
    camera's features, (B, out_dim); one CameraEncoder per camera."""

    def __init__(self, spec: ObservationSpec, config: EncoderConfig) -> None:
        super().__init__()
        spec.check_crop(config.crop)
        if not config.widths:
            raise BorlError("encoder.widths needs at least one stage")
        self.low_dim, self.cameras, self.crop = spec.low_dim, len(spec.cameras), config.crop
        self.in_dim = spec.network_dim(config.crop)
        self.out_dim = spec.low_dim + self.cameras * config.features
        self.encoders = nn.ModuleList(CameraEncoder(config) for _ in spec.cameras)
        if config.weights is not None:
            for encoder in self.encoders:
                load_backbone(encoder.backbone, Path(config.weights))
        record_conv_sizes(self, (1, 3, config.crop, config.crop))

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        rows = obs.shape[0]
        pictures = obs[:, self.low_dim :].reshape(rows, self.cameras, 3, self.crop, self.crop)
        features = [encoder(pictures[:, i]) for i, encoder in enumerate(self.encoders)]
        return torch.cat([obs[:, : self.low_dim], *features], dim=1)


def record_conv_sizes(module: nn.Module, picture_shape: tuple[int, ...]) -> None:
    """Set each convolution's `output_pixels` (per picture) by one forward of a blank picture, so
    that borl.policies.networks counts its FLOPs."""
    hooks = []
    for conv in module.modules():
        if isinstance(conv, nn.Conv2d):

            def remember(layer: nn.Conv2d, _inputs: tuple, output: torch.Tensor) -> None:
                layer.output_pixels = output.shape[-2] * output.shape[-1]

            hooks.append(conv.register_forward_hook(remember))
    with torch.no_grad():
        for encoder in module.modules():
            if isinstance(encoder, CameraEncoder):
                encoder(torch.zeros(picture_shape))
    for hook in hooks:
        hook.remove()


def load_backbone(backbone: ResNet, path: Path) -> None:
    """Start `backbone` from a state dict file: borl's own ResNet's, or torchvision's ResNet (its
    BatchNorms' weight and bias go into the GroupNorms, the running statistics and the classifier are
    dropped). A file that does not fit is a BorlError."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except (OSError, RuntimeError, ValueError) as error:
        raise BorlError(f"cannot read encoder weights {path}: {one_line(error)}") from None
    wanted = backbone.state_dict()
    state = {k: v for k, v in state.items() if k in wanted}
    missing = sorted(set(wanted) - set(state))
    if missing:
        count = len(missing)
        raise BorlError(f"encoder weights {path} lack {count} of the ResNet's tensors, e.g. {missing[0]}")
    try:
        backbone.load_state_dict(state)
    except RuntimeError as error:
        reason = one_line(error)
        raise BorlError(f"encoder weights {path} do not fit encoder.widths/blocks: {reason}") from None

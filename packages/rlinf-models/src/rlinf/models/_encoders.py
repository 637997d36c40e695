"""Observation encoders: vector keys through an MLP, image keys through a CNN first."""

from __future__ import annotations

import math
from collections.abc import Mapping

import torch
from torch import nn

from ._activations import SigmoidTanh
from ._config import PolicyConfig
from ._spec import ObsSpecLike, is_image

__all__ = ["Encoder", "orthogonal_linear"]

# tanh through the sigmoid kernel: torch's CPU tanh is ~3x slower (see sigmoid_tanh).
_ACT = {"tanh": SigmoidTanh, "relu": nn.ReLU, "elu": nn.ELU, "gelu": nn.GELU, "silu": nn.SiLU}


def orthogonal_linear(n_in: int, n_out: int, gain: float) -> nn.Linear:
    """``nn.Linear`` with orthogonal weights scaled by ``gain`` and zero bias.

    Orthogonal weights keep activations' scale through depth at init; a small gain on a
    policy output makes the initial policy near-uniform / near-mean-zero.
    """
    layer = nn.Linear(n_in, n_out)
    nn.init.orthogonal_(layer.weight, gain)
    nn.init.zeros_(layer.bias)
    return layer


def _conv_out(size: int, kernel: int, stride: int) -> int:
    return (size - kernel) // stride + 1


class Encoder(nn.Module):
    """Maps an observation dict to features ``[B, hidden_sizes[-1]]``.

    Vector keys (``[B, *shape]``, flattened) are optionally normalized by running
    statistics; image keys (``[B, H, W, C]`` uint8, all of one ``H, W``) are scaled to
    ``[0, 1]``, stacked on channels and passed through the CNN. The CNN features, then the
    vector keys in sorted order, are concatenated and passed through the hidden layers.

    Args:
        config: the policy config.
        obs_spec: key -> spec of the keys this encoder reads.
        normalizers: shared running normalizers of the vector keys (``None``: no
            normalization); shared so that a separate critic sees the same statistics.
    """

    def __init__(
        self,
        config: PolicyConfig,
        obs_spec: ObsSpecLike,
        normalizers: nn.ModuleDict | None,
    ) -> None:
        super().__init__()
        self.vector_keys = sorted(k for k, s in obs_spec.items() if not is_image(s))
        self.image_keys = sorted(k for k, s in obs_spec.items() if is_image(s))
        if self.image_keys and config.encoder != "cnn":
            raise ValueError(
                f"observation keys {self.image_keys} are images; use encoder='cnn' or leave "
                "them out with obs_keys"
            )
        if config.encoder == "cnn" and not self.image_keys:
            raise ValueError("encoder='cnn' needs at least one [H, W, C] uint8 image key")
        self.normalizers = normalizers
        act = _ACT[config.activation]
        width = sum(math.prod(obs_spec[k].shape) for k in self.vector_keys)
        self.cnn: nn.Sequential | None = None
        if self.image_keys:
            self.cnn, cnn_width = self._build_cnn(config, obs_spec, act)
            width += cnn_width
        if width == 0:
            raise ValueError("the policy reads no observation: obs_keys selected nothing")
        layers: list[nn.Module] = []
        for h in config.hidden_sizes:
            layers += [orthogonal_linear(width, h, config.hidden_gain), act()]
            width = h
        self.mlp = nn.Sequential(*layers)
        self.out_features = width

    def _build_cnn(
        self, config: PolicyConfig, obs_spec: ObsSpecLike, act: type[nn.Module]
    ) -> tuple[nn.Sequential, int]:
        sizes = {tuple(obs_spec[k].shape[:2]) for k in self.image_keys}
        if len(sizes) != 1:
            raise ValueError(f"image keys {self.image_keys} must share H, W; got {sorted(sizes)}")
        (h, w), channels = sizes.pop(), sum(obs_spec[k].shape[2] for k in self.image_keys)
        layers: list[nn.Module] = []
        for c, k, s in zip(
            config.cnn_channels, config.cnn_kernels, config.cnn_strides, strict=True
        ):
            conv = nn.Conv2d(channels, c, k, s)
            nn.init.orthogonal_(conv.weight, config.hidden_gain)
            nn.init.zeros_(conv.bias)
            layers += [conv, act()]
            channels, h, w = c, _conv_out(h, k, s), _conv_out(w, k, s)
            if h < 1 or w < 1:
                raise ValueError(
                    f"images of {obs_spec[self.image_keys[0]].shape[:2]} are too small for the "
                    "conv stack; reduce cnn_kernels / cnn_strides"
                )
        flat = channels * h * w
        layers += [
            nn.Flatten(),
            orthogonal_linear(flat, config.cnn_features, config.hidden_gain),
            act(),
        ]
        return nn.Sequential(*layers), config.cnn_features

    def forward(self, obs: Mapping[str, torch.Tensor], normalized: bool = False) -> torch.Tensor:
        """``obs``: key -> ``[B, ...]`` tensors on this module's device. Returns ``[B, F]``.

        ``normalized``: the vector keys already went through the normalizers (an owner
        that runs several encoders on one observation normalizes it once)."""
        parts = []
        if self.cnn is not None:
            imgs = torch.cat([obs[k] for k in self.image_keys], dim=-1)
            x = imgs.permute(0, 3, 1, 2).float() / 255.0
            parts.append(self.cnn(x))
        for k in self.vector_keys:
            x = obs[k].float()
            if self.normalizers is not None and not normalized:
                x = self.normalizers[k](x)
            parts.append(x.flatten(1))
        return self.mlp(torch.cat(parts, dim=-1))

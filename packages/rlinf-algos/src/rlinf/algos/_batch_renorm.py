"""Batch Renormalization (Ioffe, 2017), the normalization that makes CrossQ work without
target networks."""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["BatchRenorm1d"]


class BatchRenorm1d(nn.Module):
    """Batch renormalization over ``[B, C]`` inputs.

    In training, ``x_hat = (x - mu_B) / sigma_B * r + d`` with
    ``r = clip(sigma_B / sigma, 1/r_max, r_max)`` and ``d = clip((mu_B - mu) / sigma,
    -d_max, d_max)`` treated as constants (no gradient), where ``mu, sigma`` are the running
    statistics. Training output therefore matches what evaluation (running statistics)
    would produce whenever the clips are inactive, which keeps the critic consistent between
    the batch it is trained on and the batch it is evaluated on. During the first
    ``warmup_steps`` updates ``r = 1, d = 0`` (plain batch norm) while the running statistics
    settle.

    Args:
        num_features: ``C``.
        momentum: running-statistics update rate.
        eps: added to variances.
        r_max: bound of the scale correction (>= 1).
        d_max: bound of the shift correction (>= 0).
        warmup_steps: training steps of plain batch norm before the corrections kick in.
        affine: learn a per-feature scale and bias.
    """

    def __init__(
        self,
        num_features: int,
        momentum: float = 0.01,
        eps: float = 1e-3,
        r_max: float = 3.0,
        d_max: float = 5.0,
        warmup_steps: int = 100_000,
        affine: bool = True,
    ) -> None:
        super().__init__()
        if r_max < 1.0 or d_max < 0.0:
            raise ValueError(f"need r_max >= 1 and d_max >= 0, got {r_max}, {d_max}")
        self.num_features = num_features
        self.momentum = momentum
        self.eps = eps
        self.r_max = r_max
        self.d_max = d_max
        self.warmup_steps = warmup_steps
        self.weight = nn.Parameter(torch.ones(num_features)) if affine else None
        self.bias = nn.Parameter(torch.zeros(num_features)) if affine else None
        self.register_buffer("running_mean", torch.zeros(num_features))
        self.register_buffer("running_var", torch.ones(num_features))
        self.register_buffer("num_batches_tracked", torch.zeros((), dtype=torch.long))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``[B, C] -> [B, C]``."""
        if x.dim() != 2 or x.shape[1] != self.num_features:
            raise ValueError(f"x must be [B, {self.num_features}], got {tuple(x.shape)}")
        running_std = torch.sqrt(self.running_var + self.eps)
        if self.training:
            if x.shape[0] < 2:
                raise ValueError("BatchRenorm1d needs a batch of at least 2 in training mode")
            mean = x.mean(dim=0)
            var = x.var(dim=0, unbiased=False)
            std = torch.sqrt(var + self.eps)
            if int(self.num_batches_tracked) < self.warmup_steps:
                r = torch.ones_like(std)
                d = torch.zeros_like(mean)
            else:
                r = (std.detach() / running_std).clamp(1.0 / self.r_max, self.r_max)
                d = ((mean.detach() - self.running_mean) / running_std).clamp(
                    -self.d_max, self.d_max
                )
            out = (x - mean) / std * r + d
            with torch.no_grad():
                n = x.shape[0]
                self.running_mean.lerp_(mean.detach(), self.momentum)
                self.running_var.lerp_(var.detach() * n / (n - 1), self.momentum)
                self.num_batches_tracked += 1
        else:
            out = (x - self.running_mean) / running_std
        if self.weight is not None:
            out = out * self.weight + self.bias
        return out

    def extra_repr(self) -> str:
        return (
            f"{self.num_features}, momentum={self.momentum}, eps={self.eps}, "
            f"r_max={self.r_max}, d_max={self.d_max}, warmup_steps={self.warmup_steps}"
        )

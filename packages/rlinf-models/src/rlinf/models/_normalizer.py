"""Running mean / variance of observations, mergeable across batches (and later, workers)."""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["RunningNormalizer"]


class RunningNormalizer(nn.Module):
    """Normalizes ``[B, *shape]`` inputs with the running mean and variance of all updates.

    Statistics are float64 buffers (so they live in ``state_dict`` and move with ``.to``),
    combined with the parallel formula of Chan et al.: merging a batch of ``m`` samples with
    mean ``mu_b`` and population variance ``var_b`` into ``n`` samples gives
    ``mu = mu_a + d * m / (n + m)`` and
    ``M2 = var_a * n + var_b * m + d^2 * n * m / (n + m)`` with ``d = mu_b - mu_a``. This is
    exact for any split of the data, so the result equals the mean / variance of all data
    concatenated, and two normalizers (e.g. of two workers) merge the same way.

    Args:
        shape: per-sample shape.
        clip: normalized values are clamped to ``[-clip, clip]``.
        eps: added to the variance before the square root.
    """

    mean: torch.Tensor
    var: torch.Tensor
    count: torch.Tensor

    def __init__(self, shape: tuple[int, ...], clip: float = 10.0, eps: float = 1e-8) -> None:
        super().__init__()
        self.shape = tuple(shape)
        self.clip = clip
        self.eps = eps
        self.register_buffer("mean", torch.zeros(self.shape, dtype=torch.float64))
        self.register_buffer("var", torch.ones(self.shape, dtype=torch.float64))
        self.register_buffer("count", torch.zeros((), dtype=torch.float64))
        self._cast_cache: tuple[tuple, torch.Tensor, torch.Tensor] | None = None

    @torch.no_grad()
    def update(self, x: torch.Tensor) -> None:
        """Add a batch ``[B, *shape]`` (B >= 1) to the statistics."""
        if tuple(x.shape[1:]) != self.shape or x.shape[0] == 0:
            raise ValueError(f"expected a non-empty [B, {self.shape}] batch, got {tuple(x.shape)}")
        x = x.to(self.mean.device, torch.float64)
        if not torch.isfinite(x).all():
            raise ValueError("observations to normalize contain NaN or inf")
        self.merge(x.mean(0), x.var(0, unbiased=False), x.shape[0])

    @torch.no_grad()
    def merge(self, mean: torch.Tensor, var: torch.Tensor, count: float) -> None:
        """Merge statistics of ``count`` other samples (population ``var``)."""
        n, m = self.count, torch.as_tensor(float(count), dtype=torch.float64)
        total = n + m
        delta = mean.to(self.mean) - self.mean
        m2 = self.var * n + var.to(self.var) * m + delta.square() * n * m / total
        self.mean.add_(delta * m / total)
        self.var.copy_(m2 / total)
        self.count.copy_(total)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``clamp((x - mean) / sqrt(var + eps), -clip, clip)``, in ``x``'s dtype; shapes
        ``[B, *shape] -> [B, *shape]``. Identity-like (mean 0, var 1) before any update.

        Floating inputs are normalized in their own dtype with the statistics cast once
        per change of the statistics (not per call: a policy's forward pass on a small
        batch spent a fifth of its time re-deriving them)."""
        if not x.is_floating_point():
            std = torch.sqrt(self.var + self.eps)
            out = (x.to(torch.float64) - self.mean) / std
            return out.clamp(-self.clip, self.clip).to(x.dtype)
        mean, inv_std = self._cast_stats(x.dtype)
        return ((x - mean) * inv_std).clamp(-self.clip, self.clip)

    def _cast_stats(self, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
        """``(mean, 1 / sqrt(var + eps))`` in ``dtype``, recomputed only when the buffers
        changed: every in-place write (``merge``, ``load_state_dict``) bumps a tensor's
        version counter, and ``.to()`` replaces the buffers themselves."""
        key = (
            dtype,
            self.mean.data_ptr(),
            self.mean._version,
            self.var.data_ptr(),
            self.var._version,
        )
        cached = self._cast_cache
        if cached is None or cached[0] != key:
            inv_std = torch.rsqrt(self.var + self.eps)
            cached = self._cast_cache = (key, self.mean.to(dtype), inv_std.to(dtype))
        return cached[1], cached[2]

"""Masked reductions used by advantages and losses."""

from __future__ import annotations

import torch

from ._checks import as_mask

__all__ = ["masked_mean", "masked_sum", "masked_var", "masked_whiten"]


def masked_sum(values: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """Sum of ``values`` where ``mask`` is true. Shapes: values, mask ``[...]``; returns ``[]``."""
    m = as_mask(mask, values.shape, values.device, allow_empty=True)
    return torch.where(m, values, torch.zeros_like(values)).sum()


def masked_mean(values: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """Mean of ``values`` over true entries of ``mask``; ``ValueError`` if the mask is empty.

    Shapes: values, mask ``[...]``; returns ``[]``.
    """
    m = as_mask(mask, values.shape, values.device)
    return torch.where(m, values, torch.zeros_like(values)).sum() / m.sum()


def masked_var(
    values: torch.Tensor, mask: torch.Tensor | None = None, unbiased: bool = True
) -> torch.Tensor:
    """Variance of ``values`` over true entries of ``mask``.

    ``unbiased`` uses Bessel's correction and needs at least two valid entries.
    Shapes: values, mask ``[...]``; returns ``[]``.
    """
    m = as_mask(mask, values.shape, values.device)
    n = m.sum()
    if unbiased and int(n) < 2:
        raise ValueError("mask must select at least 2 entries for an unbiased variance")
    mean = torch.where(m, values, torch.zeros_like(values)).sum() / n
    sq = torch.where(m, (values - mean) ** 2, torch.zeros_like(values)).sum()
    return sq / (n - 1) if unbiased else sq / n


def masked_whiten(
    values: torch.Tensor,
    mask: torch.Tensor | None = None,
    shift_mean: bool = True,
    eps: float = 1e-8,
) -> torch.Tensor:
    """Normalize ``values`` to unit variance (and zero mean if ``shift_mean``) over the mask.

    Entries outside the mask are returned as 0. With a single valid entry the variance is
    taken as 0 (population variance), so the result is 0 rather than NaN.
    Shapes: values, mask ``[...]``; returns ``[...]``.
    """
    m = as_mask(mask, values.shape, values.device)
    mean = masked_mean(values, m)
    var = masked_var(values, m, unbiased=int(m.sum()) > 1)
    out = (values - mean) * torch.rsqrt(var + eps)
    if not shift_mean:
        out = out + mean
    return torch.where(m, out, torch.zeros_like(out))

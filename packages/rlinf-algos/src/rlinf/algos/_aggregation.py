"""Reduce a per-token loss matrix ``[B, T]`` to a scalar.

The choice changes how much each token weighs:

* ``token-mean``: every valid token in the batch weighs the same (DAPO).
* ``seq-mean-token-sum``: sum over a sequence's tokens, mean over sequences.
* ``seq-mean-token-mean``: mean over a sequence's tokens, mean over sequences (original
  GRPO); short sequences weigh more per token.
* ``seq-mean-token-sum-norm``: sum over tokens divided by a constant length (the
  generation budget, default ``T``), mean over sequences (Dr.GRPO); no length bias.

Sequences without any valid token are left out of the sequence means.
"""

from __future__ import annotations

import torch

from ._checks import as_mask, check_finite, check_same_shape
from ._registry import LOSS_AGGREGATIONS

__all__ = ["AGG_MODES", "aggregate_loss"]

AGG_MODES = ("token-mean", "seq-mean-token-sum", "seq-mean-token-mean", "seq-mean-token-sum-norm")


def _masked_rows(loss: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    tok = torch.where(mask, loss, torch.zeros_like(loss))
    return tok.sum(dim=-1), mask.sum(dim=-1)


@LOSS_AGGREGATIONS.register("token-mean")
def _token_mean(loss: torch.Tensor, mask: torch.Tensor, norm_length: float | None) -> torch.Tensor:
    return torch.where(mask, loss, torch.zeros_like(loss)).sum() / mask.sum()


@LOSS_AGGREGATIONS.register("seq-mean-token-sum")
def _seq_mean_token_sum(
    loss: torch.Tensor, mask: torch.Tensor, norm_length: float | None
) -> torch.Tensor:
    sums, counts = _masked_rows(loss, mask)
    return sums[counts > 0].mean()


@LOSS_AGGREGATIONS.register("seq-mean-token-mean")
def _seq_mean_token_mean(
    loss: torch.Tensor, mask: torch.Tensor, norm_length: float | None
) -> torch.Tensor:
    sums, counts = _masked_rows(loss, mask)
    keep = counts > 0
    return (sums[keep] / counts[keep]).mean()


@LOSS_AGGREGATIONS.register("seq-mean-token-sum-norm")
def _seq_mean_token_sum_norm(
    loss: torch.Tensor, mask: torch.Tensor, norm_length: float | None
) -> torch.Tensor:
    sums, counts = _masked_rows(loss, mask)
    length = loss.shape[-1] if norm_length is None else norm_length
    return sums[counts > 0].mean() / length


def aggregate_loss(
    loss: torch.Tensor,
    mask: torch.Tensor | None = None,
    mode: str = "token-mean",
    *,
    norm_length: float | None = None,
) -> torch.Tensor:
    """Aggregate a per-token loss into a scalar with one of :data:`AGG_MODES`.

    Args:
        loss: ``[B, T]`` per-token loss (``[T]`` is treated as one sequence).
        mask: ``[B, T]`` bool, valid tokens; ``None`` means all valid. Must not be empty.
        mode: name registered in ``LOSS_AGGREGATIONS``.
        norm_length: constant divisor for ``seq-mean-token-sum-norm`` (default ``T``).

    Returns:
        ``[]`` scalar loss, differentiable w.r.t. ``loss``.
    """
    fn = LOSS_AGGREGATIONS.get(mode)
    if loss.dim() == 1:
        loss = loss[None]
        mask = None if mask is None else mask[None]
    if loss.dim() != 2:
        raise ValueError(f"loss must be [B, T], got shape {tuple(loss.shape)}")
    check_same_shape(loss=loss, mask=mask)
    if norm_length is not None and norm_length <= 0:
        raise ValueError(f"norm_length must be positive, got {norm_length}")
    if mask is None and mode in _UNMASKED:
        check_finite("loss", loss)
        return _UNMASKED[mode](loss, norm_length)
    m = as_mask(mask, loss.shape, loss.device)
    check_finite("loss", loss, m)
    return fn(loss, m, norm_length)


# The built-in modes without a mask: every sequence has all T tokens, so no masked sums.
_UNMASKED = {
    "token-mean": lambda loss, _: loss.mean(),
    "seq-mean-token-sum": lambda loss, _: loss.sum(dim=-1).mean(),
    "seq-mean-token-mean": lambda loss, _: loss.mean(dim=-1).mean(),
    "seq-mean-token-sum-norm": lambda loss, length: (
        loss.sum(dim=-1).mean() / (loss.shape[-1] if length is None else length)
    ),
}

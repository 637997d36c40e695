"""Critic (value function) regression loss with PPO-style clipping and a Huber option."""

from __future__ import annotations

import torch

from ._aggregation import aggregate_loss
from ._checks import (
    check_finite,
    check_same_shape,
    masked_count,
    masked_sum,
    optional_mask,
    zero_outside,
)

__all__ = ["huber", "value_loss"]


def huber(error: torch.Tensor, delta: float) -> torch.Tensor:
    """Elementwise Huber: ``0.5 e^2`` for ``|e| <= delta``, ``delta (|e| - delta / 2)`` beyond.

    Shapes ``[...]`` -> ``[...]``. Quadratic near zero like the squared error, linear in the
    tails so an outlier return cannot dominate the critic's gradient.
    """
    if delta <= 0:
        raise ValueError(f"huber delta must be > 0, got {delta}")
    abs_e = error.abs()
    return torch.where(abs_e <= delta, 0.5 * error**2, delta * (abs_e - 0.5 * delta))


def value_loss(
    values: torch.Tensor,
    returns: torch.Tensor,
    mask: torch.Tensor | None = None,
    *,
    old_values: torch.Tensor | None = None,
    clip: float | None = None,
    huber_delta: float | None = None,
    agg_mode: str = "token-mean",
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Value loss ``0.5 (V - R)^2`` (or Huber), optionally clipped around the old values.

    With ``clip``, ``V_clip = V_old + clamp(V - V_old, -clip, clip)`` and the per-element
    loss is ``max(l(V - R), l(V_clip - R))`` (pessimistic, as in PPO).

    Args:
        values: ``[B, T]`` (or ``[B]``) current value predictions, with gradient.
        returns: same shape, regression targets.
        mask: same shape, bool valid entries.
        old_values: same shape, predictions at rollout time; required with ``clip``.
        clip: value clip range (> 0) or ``None``.
        huber_delta: use the Huber loss with this delta instead of the squared error.
        agg_mode: loss aggregation mode (see :func:`aggregate_loss`).

    Returns:
        ``(loss [], metrics)`` with 0-dim detached ``vf_loss``, ``vf_clip_frac`` (fraction
        of entries where the clipped branch was larger) and ``value_mean``.
    """
    check_same_shape(values=values, returns=returns, old_values=old_values)
    if clip is not None:
        if clip <= 0:
            raise ValueError(f"clip must be > 0, got {clip}")
        if old_values is None:
            raise ValueError("old_values is required when clip is set")
    m = optional_mask(mask, values.shape, values.device)
    check_finite("values", values, m)
    check_finite("returns", returns, m)
    if old_values is not None:
        check_finite("old_values", old_values, m)

    def elem(pred: torch.Tensor) -> torch.Tensor:
        err = pred - returns.detach()
        return 0.5 * err**2 if huber_delta is None else huber(err, huber_delta)

    loss_el = elem(values)
    n_clipped: torch.Tensor | int = 0
    if clip is not None:
        old = old_values.detach()
        loss_clip = elem(old + (values - old).clamp(-clip, clip))
        n_clipped = masked_sum(loss_clip.detach() > loss_el.detach(), m)
        loss_el = torch.maximum(loss_el, loss_clip)
    n = masked_count(values, m)
    value_mean = masked_sum(values.detach(), m) / n
    if values.dim() == 1:
        loss_el, m = loss_el[None], None if m is None else m[None]
    loss = aggregate_loss(zero_outside(loss_el, m), m, agg_mode)
    metrics = {
        "vf_loss": loss.detach(),
        "vf_clip_frac": torch.as_tensor(
            n_clipped / n, dtype=value_mean.dtype, device=value_mean.device
        ),
        "value_mean": value_mean,
    }
    return loss, metrics

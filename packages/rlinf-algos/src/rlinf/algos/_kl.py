"""Per-token KL estimators between the sampling policy and a reference policy.

With samples drawn from ``pi`` and ``x = log pi(a) - log pi_ref(a)`` (Schulman, "Approximating
KL Divergence"):

* ``k1 = x``: unbiased for KL(pi || ref), high variance, can be negative.
* ``k2 = x**2 / 2``: biased, low variance, non-negative.
* ``k3 = exp(-x) - 1 + x``: unbiased, low variance, always >= 0.
* ``abs = |x|``: biased, non-negative; its gradient has constant magnitude, so it pulls
  back large and small deviations alike.
"""

from __future__ import annotations

import torch

from ._aggregation import aggregate_loss
from ._checks import as_mask, check_finite, check_same_shape
from ._registry import KL_ESTIMATORS

__all__ = ["kl_abs", "kl_estimate", "kl_k1", "kl_k2", "kl_k3", "kl_loss", "kl_penalized_rewards"]

# exp(20) is ~5e8: large enough to keep every meaningful gradient, small enough that k3 of a
# near-zero reference probability cannot overflow to inf in bf16/fp32.
_LOG_RATIO_LIMIT = 20.0


@KL_ESTIMATORS.register("k1")
def kl_k1(log_probs: torch.Tensor, ref_log_probs: torch.Tensor) -> torch.Tensor:
    """``k1 = log pi - log ref``. Shapes ``[...]`` -> ``[...]``."""
    return log_probs - ref_log_probs


@KL_ESTIMATORS.register("k2")
def kl_k2(log_probs: torch.Tensor, ref_log_probs: torch.Tensor) -> torch.Tensor:
    """``k2 = (log pi - log ref)**2 / 2``. Shapes ``[...]`` -> ``[...]``."""
    return 0.5 * (log_probs - ref_log_probs) ** 2


@KL_ESTIMATORS.register("k3")
def kl_k3(log_probs: torch.Tensor, ref_log_probs: torch.Tensor) -> torch.Tensor:
    """``k3 = exp(ref - pi) - 1 - (ref - pi)`` in log space, >= 0. ``[...]`` -> ``[...]``.

    The log-ratio is clamped to ``[-20, 20]`` so the exponential cannot overflow.
    """
    x = (ref_log_probs - log_probs).clamp(-_LOG_RATIO_LIMIT, _LOG_RATIO_LIMIT)
    return torch.exp(x) - 1.0 - x


@KL_ESTIMATORS.register("abs")
def kl_abs(log_probs: torch.Tensor, ref_log_probs: torch.Tensor) -> torch.Tensor:
    """``abs = |log pi - log ref|``. Shapes ``[...]`` -> ``[...]``."""
    return (log_probs - ref_log_probs).abs()


def kl_estimate(
    log_probs: torch.Tensor, ref_log_probs: torch.Tensor, kind: str = "k3"
) -> torch.Tensor:
    """Per-token KL estimate with the estimator named ``kind``. ``[...]`` -> ``[...]``."""
    fn = KL_ESTIMATORS.get(kind)
    check_same_shape(log_probs=log_probs, ref_log_probs=ref_log_probs)
    check_finite("log_probs", log_probs)
    check_finite("ref_log_probs", ref_log_probs)
    return fn(log_probs, ref_log_probs)


def kl_penalized_rewards(
    token_rewards: torch.Tensor,
    log_probs: torch.Tensor,
    ref_log_probs: torch.Tensor,
    mask: torch.Tensor,
    *,
    coef: float,
    kind: str = "k1",
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """KL as a reward penalty: ``r_t - coef * kl_t`` on valid tokens (no gradient).

    Shapes: all ``[B, T]``. Returns ``(rewards [B, T], {"kl": mean kl over valid tokens})``.
    """
    check_same_shape(token_rewards=token_rewards, log_probs=log_probs, mask=mask)
    m = as_mask(mask, mask.shape, mask.device)
    kl = kl_estimate(log_probs.detach(), ref_log_probs.detach(), kind)
    kl = torch.where(m, kl, torch.zeros_like(kl))
    out = torch.where(m, token_rewards - coef * kl, torch.zeros_like(kl))
    return out, {"kl": (kl.sum() / m.sum()).detach()}


def kl_loss(
    log_probs: torch.Tensor,
    ref_log_probs: torch.Tensor,
    mask: torch.Tensor | None = None,
    *,
    kind: str = "k3",
    agg_mode: str = "token-mean",
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """KL as a loss term (GRPO style), aggregated over valid tokens.

    Shapes: all ``[B, T]``. Returns ``(loss [], {"kl": loss detached})``; multiply by the
    KL coefficient before adding it to the policy loss.
    """
    kl = kl_estimate(log_probs, ref_log_probs, kind)
    loss = aggregate_loss(kl, mask, agg_mode)
    return loss, {"kl": loss.detach()}

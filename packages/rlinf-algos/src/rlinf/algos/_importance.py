"""Truncated importance sampling for the rollout-engine vs trainer log-prob mismatch.

Inference engines (vLLM, SGLang) and the trainer compute slightly different probabilities
for the same tokens (kernels, precision, quantization), so rollouts are effectively
off-policy. Weighting each token by ``min(pi_train / pi_rollout, cap)`` corrects for it with
bounded variance.
"""

from __future__ import annotations

import torch

from ._checks import as_mask, check_finite, check_same_shape, compute_dtype

__all__ = ["IS_MODES", "truncated_importance_weights"]

IS_MODES = ("truncate", "mask")
"""What happens to a token whose importance weight exceeds the cap: ``truncate`` (TIS:
the weight becomes the cap) or ``mask`` (MIS: the token leaves the loss)."""


def truncated_importance_weights(
    train_log_probs: torch.Tensor,
    rollout_log_probs: torch.Tensor,
    mask: torch.Tensor | None = None,
    *,
    cap: float = 2.0,
    mode: str = "truncate",
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Per-token weights ``min(exp(train - rollout), cap)`` (``mode="truncate"``) or
    ``exp(train - rollout)`` where that is at most ``cap`` and 0 above it (``"mask"``: the
    caller drops those tokens from the loss), detached.

    Args:
        train_log_probs: ``[B, T]`` log-probs of the sampled tokens recomputed by the trainer
            under the rollout's weights (the "old" log-probs of PPO).
        rollout_log_probs: ``[B, T]`` log-probs reported by the rollout engine.
        mask: ``[B, T]`` bool, valid tokens.
        cap: upper truncation bound, > 0.
        mode: a name in :data:`IS_MODES`.

    Returns:
        ``(weights [B, T], metrics)`` with weights 0 outside the mask and metrics
        ``tis/weight_mean`` (over the valid tokens, masked ones counting 0),
        ``tis/clip_frac`` (fraction of tokens over the cap: truncated or masked),
        ``tis/mismatch_kl`` (k3 estimate of KL(rollout || train), >= 0) and
        ``tis/mismatch_abs`` (mean absolute log-prob difference).
    """
    if cap <= 0:
        raise ValueError(f"cap must be > 0, got {cap}")
    if mode not in IS_MODES:
        raise ValueError(f"mode must be one of {IS_MODES}, got {mode!r}")
    check_same_shape(train_log_probs=train_log_probs, rollout_log_probs=rollout_log_probs)
    m = as_mask(mask, train_log_probs.shape, train_log_probs.device)
    check_finite("train_log_probs", train_log_probs, m)
    check_finite("rollout_log_probs", rollout_log_probs, m)
    diff = torch.where(
        m,
        (train_log_probs - rollout_log_probs)
        .detach()
        .to(compute_dtype(train_log_probs, rollout_log_probs)),
        0.0,
    )
    raw = torch.exp(diff.clamp(-20.0, 20.0))
    over = m & (raw > cap)
    kept = raw.clamp(max=cap) if mode == "truncate" else torch.where(over, 0.0, raw)
    weights = torch.where(m, kept, 0.0)
    n = m.sum()
    # k3 with samples from the rollout policy: exp(d) - 1 - d where d = log(train / rollout).
    k3 = torch.where(m, raw - 1.0 - diff, 0.0)
    metrics = {
        "tis/weight_mean": weights.sum() / n,
        "tis/clip_frac": over.sum() / n,
        "tis/mismatch_kl": k3.sum() / n,
        "tis/mismatch_abs": diff.abs().sum() / n,
    }
    return weights, metrics

"""PPO clipped surrogate with asymmetric clipping (DAPO clip-higher) and dual-clip."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ._aggregation import aggregate_loss
from ._checks import (
    as_mask,
    check_finite,
    check_same_shape,
    masked_count,
    masked_sum,
    optional_mask,
    zero_outside,
)
from ._importance import IS_MODES, truncated_importance_weights
from ._registry import LOSS_AGGREGATIONS

__all__ = ["PPOLossConfig", "ppo_policy_loss", "ppo_token_loss", "ratio_metrics"]


@dataclass(frozen=True)
class PPOLossConfig:
    """Configuration of :func:`ppo_policy_loss`.

    Attributes:
        clip_low: ratio lower bound is ``1 - clip_low``; in ``[0, 1)``.
        clip_high: ratio upper bound is ``1 + clip_high``; DAPO's clip-higher uses a larger
            value (0.28) than ``clip_low`` so low-probability tokens can grow.
        dual_clip: ``c > 1`` bounds the loss of negative-advantage tokens by ``-c * A`` so a
            huge ratio cannot produce an unbounded step; ``None`` disables it.
        log_ratio_clamp: ``|log pi - log pi_old|`` is clamped to this before ``exp`` so a
            single stale token cannot overflow the ratio to inf.
        agg_mode: loss aggregation mode, a name in ``LOSS_AGGREGATIONS``.
        norm_length: constant length for ``seq-mean-token-sum-norm`` (default: ``T``).
        tis_cap: when set and rollout log-probs are passed, multiply each token's loss by the
            importance weight ``pi_old / pi_rollout`` capped at ``tis_cap`` as ``is_mode``
            says (the decoupled loss: its behaviour-weight cap).
        is_mode: ``"truncate"`` (TIS: a weight above the cap becomes the cap) or ``"mask"``
            (MIS: a token whose weight is above the cap leaves the loss).
        entropy_coef: coefficient of the entropy bonus subtracted from the loss (needs
            ``entropy``); 0 disables it.
    """

    clip_low: float = 0.2
    clip_high: float = 0.2
    dual_clip: float | None = None
    log_ratio_clamp: float = 20.0
    agg_mode: str = "token-mean"
    norm_length: float | None = None
    tis_cap: float | None = None
    is_mode: str = "truncate"
    entropy_coef: float = 0.0

    def __post_init__(self) -> None:
        if not 0.0 <= self.clip_low < 1.0:
            raise ValueError(f"clip_low must be in [0, 1), got {self.clip_low}")
        if self.clip_high < 0.0:
            raise ValueError(f"clip_high must be >= 0, got {self.clip_high}")
        if self.dual_clip is not None and self.dual_clip <= 1.0:
            raise ValueError(f"dual_clip must be > 1, got {self.dual_clip}")
        if self.log_ratio_clamp <= 0.0:
            raise ValueError(f"log_ratio_clamp must be > 0, got {self.log_ratio_clamp}")
        if self.agg_mode not in LOSS_AGGREGATIONS:
            raise ValueError(
                f"agg_mode {self.agg_mode!r} is unknown; valid: {', '.join(LOSS_AGGREGATIONS)}"
            )
        if self.tis_cap is not None and self.tis_cap <= 0.0:
            raise ValueError(f"tis_cap must be > 0, got {self.tis_cap}")
        if self.is_mode not in IS_MODES:
            raise ValueError(f"is_mode must be one of {IS_MODES}, got {self.is_mode!r}")
        if self.entropy_coef < 0.0:
            raise ValueError(f"entropy_coef must be >= 0, got {self.entropy_coef}")


def ppo_token_loss(
    log_probs: torch.Tensor,
    old_log_probs: torch.Tensor,
    advantages: torch.Tensor,
    *,
    clip_low: float,
    clip_high: float,
    dual_clip: float | None = None,
    log_ratio_clamp: float = 20.0,
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Per-token clipped surrogate ``max(-A r, -A clip(r))`` (with dual-clip for ``A < 0``).

    Shapes: all ``[...]``. Returns ``(loss [...], parts)`` where ``parts`` holds the
    ``ratio``, ``log_ratio`` and bool masks ``clipped_low``, ``clipped_high``,
    ``clipped_dual`` of tokens whose gradient the clip removed.
    """
    log_ratio = (log_probs - old_log_probs).clamp(-log_ratio_clamp, log_ratio_clamp)
    ratio = torch.exp(log_ratio)
    unclipped = -advantages * ratio
    clipped = -advantages * ratio.clamp(1.0 - clip_low, 1.0 + clip_high)
    loss = torch.maximum(unclipped, clipped)
    r = ratio.detach()
    clipped_high = (advantages > 0) & (r > 1.0 + clip_high)
    clipped_low = (advantages < 0) & (r < 1.0 - clip_low)
    clipped_dual = torch.zeros_like(clipped_low)
    if dual_clip is not None:
        bound = -advantages * dual_clip
        clipped_dual = (advantages < 0) & (loss.detach() > bound)
        loss = torch.where(advantages < 0, torch.minimum(loss, bound), loss)
    parts = {
        "ratio": ratio,
        "log_ratio": log_ratio,
        "clipped_low": clipped_low,
        "clipped_high": clipped_high,
        "clipped_dual": clipped_dual,
    }
    return loss, parts


def ratio_metrics(
    parts: dict[str, torch.Tensor], mask: torch.Tensor | None
) -> dict[str, torch.Tensor]:
    """Clip fractions, ratio statistics and approx-KL over valid tokens (0-dim, detached);
    ``mask`` None: every token is valid."""
    r = parts["ratio"].detach()
    lr = parts["log_ratio"].detach()
    n = masked_count(r, mask)
    if mask is None:
        r_max, r_min = r.max(), r.min()
    else:
        inf = torch.tensor(float("inf"), device=r.device, dtype=r.dtype)
        r_max, r_min = torch.where(mask, r, -inf).max(), torch.where(mask, r, inf).min()
    return {
        "clip_frac_low": masked_sum(parts["clipped_low"], mask) / n,
        "clip_frac_high": masked_sum(parts["clipped_high"], mask) / n,
        "clip_frac_dual": masked_sum(parts["clipped_dual"], mask) / n,
        # k3 estimate of KL(old || new) from samples of the old policy.
        "approx_kl": masked_sum(r - 1.0 - lr, mask) / n,
        "ratio_mean": masked_sum(r, mask) / n,
        "ratio_max": r_max,
        "ratio_min": r_min,
    }


def ppo_policy_loss(
    log_probs: torch.Tensor,
    old_log_probs: torch.Tensor,
    advantages: torch.Tensor,
    mask: torch.Tensor | None = None,
    config: PPOLossConfig | None = None,
    *,
    rollout_log_probs: torch.Tensor | None = None,
    entropy: torch.Tensor | None = None,
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """PPO / DAPO clipped policy loss.

    Args:
        log_probs: ``[B, T]`` log-probs of the taken tokens/actions under the current policy
            (with gradient).
        old_log_probs: ``[B, T]`` log-probs under the policy that the clip is relative to.
        advantages: ``[B, T]`` advantages (use :func:`broadcast_to_tokens` for per-sequence).
        mask: ``[B, T]`` bool, valid tokens; ``None`` means all.
        config: :class:`PPOLossConfig`; defaults to symmetric 0.2 clipping.
        rollout_log_probs: ``[B, T]`` log-probs from the rollout engine; with
            ``config.tis_cap`` set, tokens are reweighted by truncated importance sampling
            and the mismatch is reported either way.
        entropy: ``[B, T]`` per-token entropy; reported, and used as a bonus when
            ``config.entropy_coef > 0``.

    Returns:
        ``(loss [], metrics)``; metrics are 0-dim detached tensors: ``pg_loss``,
        ``clip_frac_low``, ``clip_frac_high``, ``clip_frac_dual``, ``approx_kl``,
        ``ratio_mean``, ``ratio_max``, ``ratio_min``, ``entropy`` (when given) and
        ``tis/*`` (when ``rollout_log_probs`` is given).
    """
    cfg = config if config is not None else PPOLossConfig()
    check_same_shape(
        log_probs=log_probs,
        old_log_probs=old_log_probs,
        advantages=advantages,
        rollout_log_probs=rollout_log_probs,
        entropy=entropy,
    )
    m = optional_mask(mask, log_probs.shape, log_probs.device)
    for name, t in (("log_probs", log_probs), ("old_log_probs", old_log_probs)):
        check_finite(name, t, m)
    check_finite("advantages", advantages, m)
    loss_tok, parts = ppo_token_loss(
        log_probs,
        old_log_probs.detach(),
        advantages.detach(),
        clip_low=cfg.clip_low,
        clip_high=cfg.clip_high,
        dual_clip=cfg.dual_clip,
        log_ratio_clamp=cfg.log_ratio_clamp,
    )
    metrics = ratio_metrics(parts, m)
    if rollout_log_probs is not None:
        capped = cfg.tis_cap is not None
        mode = cfg.is_mode if capped else "truncate"
        weights, tis = truncated_importance_weights(
            old_log_probs, rollout_log_probs, m, cap=cfg.tis_cap or float("inf"), mode=mode
        )
        metrics.update(tis)
        if capped:
            loss_tok = loss_tok * weights
        if capped and mode == "mask":
            # Masked tokens leave the aggregation too (not only their weight): the loss is
            # the mean over the tokens kept.
            m = as_mask(m, log_probs.shape, log_probs.device) & (weights > 0)
            if not bool(m.any()):
                raise ValueError(
                    f"every token's importance weight exceeds tis_cap={cfg.tis_cap} (is_mode "
                    "'mask'); nothing to train on"
                )
    loss_tok = zero_outside(loss_tok, m)
    pg_loss = aggregate_loss(loss_tok, m, cfg.agg_mode, norm_length=cfg.norm_length)
    metrics["pg_loss"] = pg_loss.detach()
    loss = pg_loss
    if entropy is not None:
        check_finite("entropy", entropy, m)
        ent = aggregate_loss(zero_outside(entropy, m), m, cfg.agg_mode, norm_length=cfg.norm_length)
        metrics["entropy"] = ent.detach()
        if cfg.entropy_coef > 0:
            loss = loss - cfg.entropy_coef * ent
    elif cfg.entropy_coef > 0:
        raise ValueError("entropy must be given when config.entropy_coef > 0")
    return loss, metrics

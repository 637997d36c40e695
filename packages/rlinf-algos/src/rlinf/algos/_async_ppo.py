"""Asynchronous PPO: the decoupled objective with a staleness bound.

In asynchronous RL the rollout (behaviour) policy ``pi_behav`` lags the trainer by a few
versions. The decoupled objective (Hilton et al., "Batch size-invariance for policy
optimization"; AReaL) separates the two roles of PPO's old policy:

* the *proximal* policy ``pi_prox`` (log-probs recomputed by the trainer with recent
  weights) is the anchor of the trust-region clip, ``r = pi / pi_prox``;
* the *behaviour* policy corrects for off-policy sampling with the importance weight
  ``w = pi_prox / pi_behav`` (detached, optionally capped).

``L = w * max(-A r, -A clip(r))``. Samples generated more than ``max_staleness`` versions
ago are masked out.
"""

from __future__ import annotations

from dataclasses import dataclass, field

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
from ._policy_loss import PPOLossConfig, ppo_token_loss, ratio_metrics

__all__ = ["AsyncPPOConfig", "decoupled_ppo_loss", "staleness_mask"]


@dataclass(frozen=True)
class AsyncPPOConfig:
    """Configuration of :func:`decoupled_ppo_loss`.

    Attributes:
        ppo: clipping, dual-clip, log-ratio clamp and aggregation (its ``tis_cap`` and
            ``entropy_coef`` are not used here).
        behaviour_weight_cap: cap on ``pi_prox / pi_behav``; ``None`` leaves it uncapped.
        behaviour_weight_mode: ``"truncate"`` clamps weights above the cap to the cap;
            ``"mask"`` drops those tokens from the loss (AReaL's choice).
        max_staleness: samples whose version is older than ``current_version -
            max_staleness`` are masked out; ``None`` disables the bound.
    """

    ppo: PPOLossConfig = field(default_factory=PPOLossConfig)
    behaviour_weight_cap: float | None = 5.0
    behaviour_weight_mode: str = "truncate"
    max_staleness: int | None = None

    def __post_init__(self) -> None:
        if self.behaviour_weight_cap is not None and self.behaviour_weight_cap <= 0:
            raise ValueError(f"behaviour_weight_cap must be > 0, got {self.behaviour_weight_cap}")
        if self.behaviour_weight_mode not in ("truncate", "mask"):
            raise ValueError(
                "behaviour_weight_mode must be 'truncate' or 'mask', "
                f"got {self.behaviour_weight_mode!r}"
            )
        if self.max_staleness is not None and self.max_staleness < 0:
            raise ValueError(f"max_staleness must be >= 0, got {self.max_staleness}")


def staleness_mask(
    sample_versions: torch.Tensor, current_version: int, max_staleness: int | None
) -> torch.Tensor:
    """``[B]`` bool: samples at most ``max_staleness`` policy versions old (all if ``None``).

    Raises ``ValueError`` for versions from the future (a bookkeeping bug upstream).
    """
    staleness = current_version - sample_versions
    if bool((staleness < 0).any()):
        raise ValueError(
            f"sample_versions contains versions newer than current_version={current_version}"
        )
    if max_staleness is None:
        return torch.ones_like(staleness, dtype=torch.bool)
    return staleness <= max_staleness


def decoupled_ppo_loss(
    log_probs: torch.Tensor,
    proximal_log_probs: torch.Tensor,
    behaviour_log_probs: torch.Tensor,
    advantages: torch.Tensor,
    mask: torch.Tensor | None = None,
    config: AsyncPPOConfig | None = None,
    *,
    sample_versions: torch.Tensor | None = None,
    current_version: int | None = None,
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Decoupled PPO loss for asynchronous training.

    Args:
        log_probs: ``[B, T]`` current policy log-probs (with gradient).
        proximal_log_probs: ``[B, T]`` log-probs under the proximal policy (clip anchor).
        behaviour_log_probs: ``[B, T]`` log-probs under the policy that generated the data.
        advantages: ``[B, T]``.
        mask: ``[B, T]`` bool valid tokens.
        config: :class:`AsyncPPOConfig`.
        sample_versions: ``[B]`` int policy version that generated each sample; needed with
            ``config.max_staleness``.
        current_version: the trainer's current policy version.

    Returns:
        ``(loss [], metrics)`` with the PPO metrics of :func:`ppo_policy_loss` plus
        ``behav_weight_mean``, ``behav_weight_max``, ``behav_clip_frac`` (tokens whose
        weight exceeded the cap: truncated or masked), ``behav_masked_frac`` and
        ``stale_frac`` (fraction of sequences dropped for staleness). All 0-dim detached.
        Raises ``ValueError`` if staleness and weight masking leave no valid token.
    """
    cfg = config if config is not None else AsyncPPOConfig()
    check_same_shape(
        log_probs=log_probs,
        proximal_log_probs=proximal_log_probs,
        behaviour_log_probs=behaviour_log_probs,
        advantages=advantages,
    )
    cap = cfg.behaviour_weight_cap
    masking = cfg.max_staleness is not None or (
        cap is not None and cfg.behaviour_weight_mode == "mask"
    )
    # Without a mask and without anything that masks samples, no mask is materialized.
    m = (as_mask if masking else optional_mask)(mask, log_probs.shape, log_probs.device)
    for name, t in (
        ("log_probs", log_probs),
        ("proximal_log_probs", proximal_log_probs),
        ("behaviour_log_probs", behaviour_log_probs),
        ("advantages", advantages),
    ):
        check_finite(name, t, m)
    stale_frac = torch.zeros((), device=log_probs.device)
    if cfg.max_staleness is not None:
        if sample_versions is None or current_version is None:
            raise ValueError("sample_versions and current_version are required with max_staleness")
        if sample_versions.shape != log_probs.shape[:1]:
            raise ValueError(
                f"sample_versions has shape {tuple(sample_versions.shape)}, "
                f"expected {tuple(log_probs.shape[:1])}"
            )
        fresh = staleness_mask(sample_versions, current_version, cfg.max_staleness)
        stale_frac = (~fresh).float().mean()
        m = m & fresh.reshape(-1, *([1] * (m.dim() - 1)))
        if not bool(m.any()):
            raise ValueError(
                f"every sample is staler than max_staleness={cfg.max_staleness}; nothing to train on"
            )
    prox = proximal_log_probs.detach()
    log_w = (prox - behaviour_log_probs.detach()).clamp(-20.0, 20.0)
    weight = torch.exp(log_w)
    behav_masked = None
    over_cap = torch.zeros((), device=log_probs.device)
    if cap is not None:
        over_cap = masked_count(weight, m & (weight > cap) if m is not None else weight > cap)
        if cfg.behaviour_weight_mode == "mask":
            assert m is not None  # materialized above
            behav_masked = m & (weight > cap)
            m = m & ~behav_masked
            if not bool(m.any()):
                raise ValueError("every token exceeds behaviour_weight_cap; nothing to train on")
        else:
            weight = weight.clamp(max=cap)
    n_masked = 0 if behav_masked is None else behav_masked.sum()
    n_valid = masked_count(weight, m)
    p = cfg.ppo
    loss_tok, parts = ppo_token_loss(
        log_probs,
        prox,
        advantages.detach(),
        clip_low=p.clip_low,
        clip_high=p.clip_high,
        dual_clip=p.dual_clip,
        log_ratio_clamp=p.log_ratio_clamp,
    )
    loss_tok = zero_outside(weight * loss_tok, m)
    loss = aggregate_loss(loss_tok, m, p.agg_mode, norm_length=p.norm_length)
    metrics = ratio_metrics(parts, m)
    metrics.update(
        {
            "pg_loss": loss.detach(),
            "behav_weight_mean": masked_sum(weight, m) / n_valid,
            "behav_weight_max": zero_outside(weight, m).max(),
            "behav_clip_frac": torch.as_tensor(
                over_cap / (n_masked + n_valid), dtype=weight.dtype, device=weight.device
            ),
            "behav_masked_frac": torch.as_tensor(
                n_masked / (n_masked + n_valid), dtype=weight.dtype, device=weight.device
            ),
            "stale_frac": stale_frac,
        }
    )
    return loss, metrics

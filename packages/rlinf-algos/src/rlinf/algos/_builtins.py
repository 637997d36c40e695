"""The built-in entries of ``ADVANTAGE_ESTIMATORS`` and ``POLICY_LOSSES``.

Each adapts one pure function of this package to its registry's calling convention
(:mod:`rlinf.algos._specs`); the functions themselves keep their own signatures for direct
use.

Group-relative estimators (``grpo``, ``drgrpo``, ``rloo``, ``reinforce_pp_baseline``) work at
two levels. With ``inputs.outcomes`` (one scored sequence per row, LLM) they compare the
outcomes of a group's rows and spread the result over each row's valid steps. Without it
(per-step data, embodied) they compare the rows' returns-to-go at each step: episode ends
(terminated or truncated) stop the sum, as there is no critic to bootstrap from.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from ._aggregation import aggregate_loss
from ._async_ppo import AsyncPPOConfig, decoupled_ppo_loss
from ._checks import zero_outside
from ._gae import discounted_returns, gae_advantages
from ._group import broadcast_to_tokens, drgrpo_advantages, grpo_advantages, rloo_advantages
from ._masked import masked_whiten
from ._policy_loss import PPOLossConfig, ppo_policy_loss
from ._registry import advantage_estimator, policy_loss
from ._reinforce import reinforce_pp_advantages, reinforce_pp_baseline_advantages
from ._specs import AdvantageInputs, PolicyLossInputs

__all__: list[str] = []

Pair = tuple[torch.Tensor, torch.Tensor | None]


def _returns_to_go(inp: AdvantageInputs) -> torch.Tensor:
    """``[N, T]`` discounted returns-to-go, stopping at episode ends, no bootstrap."""
    return discounted_returns(
        inp.rewards, gamma=inp.gamma, terminated=inp.episode_ends, mask=inp.mask
    )


def _per_step_groups(
    rtg: torch.Tensor, inp: AdvantageInputs, fn: Callable[[torch.Tensor, int], torch.Tensor]
) -> torch.Tensor:
    """Apply a group function ``[N'] -> [N']`` to each step's column of ``rtg [N, T]``."""
    if inp.mask is not None and not bool(inp.mask.all()):
        raise ValueError(
            "per-step group advantages compare rows at the same step, so every step must be "
            "valid (mask all True); pass outcomes for padded sequences"
        )
    n, t = rtg.shape
    if n % inp.group_size:
        raise ValueError(f"group_size {inp.group_size} does not divide the {n} rows")
    # [T, N] flattened keeps each step's groups contiguous, as the group functions want.
    return fn(rtg.t().reshape(-1), inp.group_size).reshape(t, n).t()


def _group_estimator(inp: AdvantageInputs, fn: Callable[[torch.Tensor, int], torch.Tensor]) -> Pair:
    if inp.outcomes is not None:
        mask = inp.mask if inp.mask is not None else torch.ones_like(inp.rewards, dtype=torch.bool)
        return broadcast_to_tokens(fn(inp.outcomes.float(), inp.group_size), mask), None
    rtg = _returns_to_go(inp)
    return _per_step_groups(rtg, inp, fn), rtg


@advantage_estimator(
    "gae", needs_values=True, uses_step_rewards=True, description="GAE(gamma, lambda) with a critic"
)
def _gae(inp: AdvantageInputs) -> Pair:
    return gae_advantages(
        inp.rewards,
        inp.values,
        gamma=inp.gamma,
        lam=inp.lam,
        next_values=inp.next_values,
        terminated=inp.terminated,
        truncated=inp.truncated,
        mask=inp.mask,
    )


@advantage_estimator(
    "discounted_returns",
    uses_step_rewards=True,
    description="REINFORCE: discounted returns-to-go, no baseline",
)
def _discounted(inp: AdvantageInputs) -> Pair:
    rtg = _returns_to_go(inp)
    return rtg, rtg


@advantage_estimator(
    "grpo", group_relative=True, description="(r - group mean) / (group std + 1e-6)"
)
def _grpo(inp: AdvantageInputs) -> Pair:
    return _group_estimator(inp, grpo_advantages)


@advantage_estimator("drgrpo", group_relative=True, description="Dr.GRPO: r - group mean")
def _drgrpo(inp: AdvantageInputs) -> Pair:
    return _group_estimator(inp, drgrpo_advantages)


@advantage_estimator(
    "rloo", group_relative=True, description="RLOO: r - mean of the group's other samples"
)
def _rloo(inp: AdvantageInputs) -> Pair:
    return _group_estimator(inp, rloo_advantages)


@advantage_estimator(
    "reinforce_pp",
    uses_step_rewards=True,
    description="REINFORCE++: returns-to-go whitened over the batch's valid steps",
)
def _reinforce_pp(inp: AdvantageInputs) -> Pair:
    if inp.episode_ends is None:
        mask = inp.mask if inp.mask is not None else torch.ones_like(inp.rewards, dtype=torch.bool)
        return reinforce_pp_advantages(inp.rewards, mask, gamma=inp.gamma), None
    rtg = _returns_to_go(inp)
    return masked_whiten(rtg, inp.mask), rtg


@advantage_estimator(
    "reinforce_pp_baseline",
    group_relative=True,
    description="REINFORCE++ baseline: r - group mean, whitened over the batch",
)
def _reinforce_pp_baseline(inp: AdvantageInputs) -> Pair:
    if inp.outcomes is not None:
        mask = inp.mask if inp.mask is not None else torch.ones_like(inp.rewards, dtype=torch.bool)
        adv = reinforce_pp_baseline_advantages(inp.outcomes.float(), mask, inp.group_size)
        return adv, None
    rtg = _returns_to_go(inp)
    return masked_whiten(_per_step_groups(rtg, inp, drgrpo_advantages), inp.mask), rtg


@policy_loss("ppo", description="PPO / DAPO clipped surrogate (dual-clip, TIS, entropy bonus)")
def _ppo(inp: PolicyLossInputs, config: PPOLossConfig) -> tuple[torch.Tensor, dict]:
    return ppo_policy_loss(
        inp.log_probs,
        inp.old_log_probs,
        inp.advantages,
        inp.mask,
        config,
        rollout_log_probs=inp.rollout_log_probs,
        entropy=inp.entropy,
    )


@policy_loss(
    "decoupled_ppo",
    decoupled=True,
    description="decoupled PPO: clip at the proximal policy, weight by pi_prox / pi_behav",
)
def _decoupled_ppo(inp: PolicyLossInputs, config: PPOLossConfig) -> tuple[torch.Tensor, dict]:
    assert inp.rollout_log_probs is not None  # checked by PolicyLoss.__call__
    loss, metrics = decoupled_ppo_loss(
        inp.log_probs,
        inp.old_log_probs,
        inp.rollout_log_probs,
        inp.advantages,
        inp.mask,
        AsyncPPOConfig(
            ppo=config,
            # tis_cap caps the behaviour weight when set (else the decoupled default).
            behaviour_weight_cap=config.tis_cap
            if config.tis_cap is not None
            else AsyncPPOConfig().behaviour_weight_cap,
            behaviour_weight_mode=config.is_mode,
        ),
        sample_versions=inp.sample_versions,
        current_version=inp.current_version,
    )
    if inp.entropy is not None:
        ent = aggregate_loss(
            zero_outside(inp.entropy, inp.mask),
            inp.mask,
            config.agg_mode,
            norm_length=config.norm_length,
        )
        loss = loss - config.entropy_coef * ent
        metrics["entropy"] = ent.detach()
    elif config.entropy_coef > 0:
        raise ValueError("entropy must be given when config.entropy_coef > 0")
    return loss, metrics

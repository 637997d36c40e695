"""Rewards -> per-token advantages for the LLM algorithms (through ``rlinf.algos``)."""

from __future__ import annotations

import torch

from rlinf.algos import AdvantageEstimator, AdvantageInputs, kl_estimate, masked_whiten

__all__ = ["group_size_of", "outcome_token_rewards", "token_advantages"]


def group_size_of(prompt_index: torch.Tensor) -> int:
    """The number of samples per prompt, checking that groups are contiguous and equal.

    Args:
        prompt_index: ``[B]`` prompt of each response; a prompt's samples are consecutive.

    Raises:
        ValueError: groups of different sizes, or a prompt's samples not consecutive.
    """
    idx = prompt_index.tolist()
    if not idx:
        raise ValueError("empty batch: prompt_index has no entries")
    starts = [0] + [i for i in range(1, len(idx)) if idx[i] != idx[i - 1]]
    sizes = {b - a for a, b in zip(starts, [*starts[1:], len(idx)], strict=True)}
    if len(sizes) != 1 or len({idx[s] for s in starts}) != len(starts):
        raise ValueError(
            "prompt_index must list each prompt's samples consecutively, in groups of one "
            f"size; got group sizes {sorted(sizes)} over {len(starts)} runs"
        )
    return sizes.pop()


def outcome_token_rewards(rewards: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Place each response's scalar reward on its last valid token.

    Shapes: rewards ``[B]``, mask ``[B, R]`` -> ``[B, R]`` (float32).
    """
    m = mask.bool()
    lengths = m.sum(dim=1)
    if bool((lengths == 0).any()):
        raise ValueError("every response needs at least one valid token")
    # Index of the last True per row (responses are right-padded, so it is length - 1 only
    # when the mask is a prefix; argmax over reversed columns works for any mask).
    last = m.shape[1] - 1 - m.flip(1).float().argmax(dim=1)
    out = torch.zeros(m.shape, dtype=torch.float32, device=rewards.device)
    out[torch.arange(m.shape[0], device=m.device), last] = rewards.float()
    return out


def token_advantages(
    estimator: AdvantageEstimator,
    rewards: torch.Tensor,
    mask: torch.Tensor,
    group_size: int,
    *,
    logp: torch.Tensor | None = None,
    ref_logp: torch.Tensor | None = None,
    kl_coef: float = 0.0,
    kl_estimator: str = "k1",
    values: torch.Tensor | None = None,
    gamma: float = 1.0,
    lam: float = 0.95,
    whiten: bool = False,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """``(advantages [B, R], returns [B, R] | None)`` of one batch by any registered estimator.

    The estimator (an entry of ``rlinf.algos.ADVANTAGE_ESTIMATORS``) gets each response's
    reward as ``outcomes`` and placed on its last valid token as the per-token ``rewards``;
    when it reads the per-token rewards (``uses_step_rewards``) and ``ref_logp`` is given
    with ``kl_coef > 0``, the KL penalty ``kl_coef * kl`` is subtracted from them.
    ``whiten``: normalize the advantages over the valid tokens afterwards (LLM PPO).

    Shapes: rewards ``[B]``; mask, logp, ref_logp, values ``[B, R]``.
    """
    m = mask.bool()
    token_rewards = outcome_token_rewards(rewards, m)
    if estimator.uses_step_rewards and ref_logp is not None and kl_coef > 0:
        if logp is None:
            raise ValueError("logp is needed with ref_logp for the KL reward penalty")
        kl = kl_estimate(logp.detach().float(), ref_logp.detach().float(), kl_estimator)
        token_rewards = token_rewards - kl_coef * torch.where(m, kl, 0.0)
    inputs = AdvantageInputs(
        rewards=token_rewards,
        mask=m,
        outcomes=rewards.float(),
        values=None if values is None else values.float(),
        group_size=group_size,
        gamma=gamma,
        lam=lam,
    )
    adv, returns = estimator(inputs)
    if whiten:
        adv = masked_whiten(adv, m)
    return adv, returns

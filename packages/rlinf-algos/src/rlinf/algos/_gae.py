"""Generalized advantage estimation and discounted returns over time (last dim = time).

Episode boundaries inside a rollout are given by two flags per step:

* ``terminated[t]``: the episode really ended after step ``t`` (a terminal state); nothing
  is bootstrapped.
* ``truncated[t]``: the episode was cut after step ``t`` (time limit, reset) but the state
  was not terminal; the value of the *final* observation, ``next_values[t]``, is
  bootstrapped, and the recursion does not continue into the next episode.

``mask[t] == False`` marks a step that does not exist (right padding of LLM responses, tool
output tokens in agentic rollouts): it gets advantage 0 and the recursion passes through it
as if it were absent, so discounting counts only valid steps.

The last valid step of each row bootstraps from ``next_values`` when given (the rollout
horizon is a truncation), else from 0 (an LLM response ends its episode).
"""

from __future__ import annotations

import torch

from ._checks import as_mask, check_finite, check_same_shape, compute_dtype

__all__ = ["discounted_returns", "gae_advantages"]


def _prepare(
    rewards: torch.Tensor,
    values: torch.Tensor | None,
    next_values: torch.Tensor | None,
    terminated: torch.Tensor | None,
    truncated: torch.Tensor | None,
    mask: torch.Tensor | None,
) -> tuple[torch.Tensor, ...]:
    if rewards.dim() < 1 or rewards.shape[-1] == 0:
        raise ValueError(
            f"rewards must have a non-empty time dimension, got {tuple(rewards.shape)}"
        )
    check_same_shape(
        rewards=rewards,
        values=values,
        next_values=next_values,
        terminated=terminated,
        truncated=truncated,
    )
    m = as_mask(mask, rewards.shape, rewards.device)
    if truncated is not None and next_values is None:
        raise ValueError(
            "truncated requires next_values: a truncated step bootstraps from the value of "
            "its final observation"
        )
    dtype = compute_dtype(rewards, values, next_values)
    zeros = torch.zeros(rewards.shape, dtype=dtype, device=rewards.device)
    no = torch.zeros(rewards.shape, dtype=torch.bool, device=rewards.device)
    term = no if terminated is None else terminated.bool()
    trunc = no if truncated is None else truncated.bool()
    # Padding may hold garbage (even NaN); only valid steps must be finite, and invalid ones
    # are zeroed so that NaN * 0 cannot leak into the recursion.
    out = []
    for name, t in (("rewards", rewards), ("values", values), ("next_values", next_values)):
        if t is None:
            out.append(zeros)
            continue
        check_finite(name, t, m)
        out.append(torch.where(m, t.to(dtype), zeros))
    return (*out, term, trunc, m)


def gae_advantages(
    rewards: torch.Tensor,
    values: torch.Tensor,
    *,
    gamma: float,
    lam: float,
    next_values: torch.Tensor | None = None,
    terminated: torch.Tensor | None = None,
    truncated: torch.Tensor | None = None,
    mask: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """GAE(gamma, lambda) advantages and value targets.

    ``delta_t = r_t + gamma * (1 - terminated_t) * V(s_{t+1}) - V(s_t)`` and
    ``A_t = delta_t + gamma * lam * (1 - done_t) * A_{t+1}`` with
    ``done = terminated | truncated``.

    Args:
        rewards: ``[..., T]`` reward of each step.
        values: ``[..., T]`` ``V(s_t)``.
        gamma: discount factor in ``[0, 1]``.
        lam: GAE lambda in ``[0, 1]``; ``lam=1`` gives Monte Carlo returns minus values.
        next_values: ``[..., T]`` ``V(s_{t+1})`` of the observation actually reached after
            step ``t`` (the final observation on truncation). ``None``: the value of the
            next valid step in the row, 0 after the last one (token-level LLM use).
        terminated: ``[..., T]`` bool, episode ended in a terminal state after step ``t``.
        truncated: ``[..., T]`` bool, episode was cut after step ``t``; needs ``next_values``.
        mask: ``[..., T]`` bool, valid steps; invalid steps are skipped (see module doc).

    Returns:
        ``(advantages, returns)``, both ``[..., T]`` (``returns = advantages + values``),
        0 at invalid steps, dtype at least float32.
    """
    if not 0.0 <= gamma <= 1.0:
        raise ValueError(f"gamma must be in [0, 1], got {gamma}")
    if not 0.0 <= lam <= 1.0:
        raise ValueError(f"lam must be in [0, 1], got {lam}")
    if values is None:
        raise ValueError("values must be a tensor")
    r, v, nv, term, trunc, m = _prepare(rewards, values, next_values, terminated, truncated, mask)
    done = term | trunc
    if next_values is not None:
        # Every step's bootstrap is known up front, so the TD errors are one vectorized
        # expression and only ``A_t = delta_t + c_t A_{t+1}`` runs step by step (one fused
        # op per step instead of a dozen). An invalid step passes the carry through
        # (delta 0, c 1) and is zeroed at the end.
        delta = torch.where(m, r + gamma * torch.where(term, 0.0, nv) - v, 0.0)
        coef = torch.where(m, gamma * lam * (~done).to(r.dtype), 1.0)
        carry = torch.zeros_like(r[..., 0])
        steps = []
        for d, c in zip(reversed(delta.unbind(-1)), reversed(coef.unbind(-1)), strict=True):
            carry = torch.addcmul(d, c, carry)
            steps.append(carry)
        adv = torch.where(m, torch.stack(steps[::-1], dim=-1), 0.0)
        return adv, torch.where(m, adv + v, 0.0)
    adv = torch.zeros_like(r)
    carry_adv = torch.zeros_like(r[..., 0])
    carry_value = torch.zeros_like(r[..., 0])
    for t in reversed(range(r.shape[-1])):
        next_v = carry_value
        delta = r[..., t] + gamma * torch.where(term[..., t], 0.0, next_v) - v[..., t]
        a = delta + gamma * lam * torch.where(done[..., t], 0.0, carry_adv)
        valid = m[..., t]
        adv[..., t] = torch.where(valid, a, 0.0)
        carry_adv = torch.where(valid, a, carry_adv)
        carry_value = torch.where(valid, v[..., t], carry_value)
    returns = torch.where(m, adv + v, 0.0)
    return adv, returns


def discounted_returns(
    rewards: torch.Tensor,
    *,
    gamma: float,
    next_values: torch.Tensor | None = None,
    terminated: torch.Tensor | None = None,
    truncated: torch.Tensor | None = None,
    mask: torch.Tensor | None = None,
) -> torch.Tensor:
    """Discounted returns ``G_t = r_t + gamma * (1 - terminated_t) * G_{t+1}``.

    At a truncated step (and at the last valid step when ``next_values`` is given)
    ``G_{t+1}`` is replaced by ``next_values[t]``. Arguments as in :func:`gae_advantages`.

    Returns:
        ``[..., T]`` returns, 0 at invalid steps, dtype at least float32.
    """
    if not 0.0 <= gamma <= 1.0:
        raise ValueError(f"gamma must be in [0, 1], got {gamma}")
    r, _, nv, term, trunc, m = _prepare(rewards, None, next_values, terminated, truncated, mask)
    out = torch.zeros_like(r)
    carry = torch.zeros_like(r[..., 0])
    # Until the first valid step (from the right) has been seen, the future is the bootstrap.
    seen = torch.zeros_like(r[..., 0], dtype=torch.bool)
    for t in reversed(range(r.shape[-1])):
        future = torch.where(trunc[..., t] | ~seen, nv[..., t], carry)
        g = r[..., t] + gamma * torch.where(term[..., t], 0.0, future)
        valid = m[..., t]
        out[..., t] = torch.where(valid, g, 0.0)
        carry = torch.where(valid, g, carry)
        seen = seen | valid
    return out

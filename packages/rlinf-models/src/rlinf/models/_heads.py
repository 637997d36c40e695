"""Action distributions: Gaussian (optionally tanh-squashed and rescaled) and categorical.

Heads work on flat actions ``[B, D]`` (Gaussian, ``D = K * prod(action_shape)``) or
``[B, K]`` integer actions (categorical); the actor-critic reshapes to the env's layout.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn
from torch.distributions import Categorical, Normal

from ._config import PolicyConfig
from ._encoders import orthogonal_linear

__all__ = ["CategoricalHead", "GaussianHead", "log1m_tanh_sq"]


def log1m_tanh_sq(u: torch.Tensor) -> torch.Tensor:
    """``log(1 - tanh(u)^2)`` computed as ``2 (log 2 - u - softplus(-2u))``, which stays
    finite for large ``|u|`` where ``1 - tanh(u)^2`` underflows to 0."""
    return 2.0 * (math.log(2.0) - u - nn.functional.softplus(-2.0 * u))


class GaussianHead(nn.Module):
    """Diagonal Gaussian over ``D`` action dims.

    Without squashing the action is ``u ~ N(mean, std)``. With ``tanh_squash`` it is
    ``a = offset + scale * tanh(u)`` (``offset, scale`` map ``(-1, 1)`` onto the bounds
    where both are finite, else 0 and 1), and
    ``log p(a) = sum_d [log N(u_d) - log(1 - tanh(u_d)^2) - log(scale_d)]``.

    Args:
        in_features: width of the features.
        dim: ``D``.
        config: the policy config (log-std mode, bounds, gains, squashing).
        low: ``[D]`` lower action bounds (may be infinite or ``None``).
        high: ``[D]`` upper action bounds.
    """

    def __init__(
        self,
        in_features: int,
        dim: int,
        config: PolicyConfig,
        low: np.ndarray | None,
        high: np.ndarray | None,
    ) -> None:
        super().__init__()
        self.config = config
        self.mean = orthogonal_linear(in_features, dim, config.policy_gain)
        if config.log_std == "state_dependent":
            self.log_std_head: nn.Linear | None = orthogonal_linear(
                in_features, dim, config.policy_gain
            )
            nn.init.constant_(self.log_std_head.bias, config.init_log_std)
        else:
            self.log_std_head = None
            self.log_std = nn.Parameter(torch.full((dim,), float(config.init_log_std)))
        lo = np.full(dim, -np.inf) if low is None else np.asarray(low, np.float64).reshape(dim)
        hi = np.full(dim, np.inf) if high is None else np.asarray(high, np.float64).reshape(dim)
        finite = np.isfinite(lo) & np.isfinite(hi)
        lo, hi = np.where(finite, lo, -1.0), np.where(finite, hi, 1.0)  # no inf - inf
        scale = np.where(finite, (hi - lo) / 2.0, 1.0)
        offset = np.where(finite, (hi + lo) / 2.0, 0.0)
        self.register_buffer("scale", torch.as_tensor(scale, dtype=torch.float32))
        self.register_buffer("offset", torch.as_tensor(offset, dtype=torch.float32))

    def forward(self, features: torch.Tensor) -> Normal:
        """``features [B, F]`` -> the pre-squash Normal with ``[B, D]`` parameters."""
        mean = self.mean(features)
        if self.log_std_head is not None:
            log_std = self.log_std_head(features)
        else:
            log_std = self.log_std.expand_as(mean)
        log_std = log_std.clamp(self.config.log_std_min, self.config.log_std_max)
        # No argument validation: its checks cost a fifth of a small policy's act() on the
        # CPU, and a NaN mean still fails loudly, as a NaN action at the env's action check
        # or a NaN log-prob at the loss's finiteness check.
        return Normal(mean, log_std.exp(), validate_args=False)

    def sample(
        self, dist: Normal, deterministic: bool, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """``[B, D]`` action: the mean (squashed) when ``deterministic``, else a sample
        drawn from ``generator`` (None: torch's default one; the same draw as
        ``dist.sample()``)."""
        if deterministic:
            u = dist.mean
        else:
            with torch.no_grad():
                u = torch.normal(dist.loc, dist.scale, generator=generator)
        if self.config.tanh_squash:
            return self.offset + self.scale * torch.tanh(u)
        return u

    def log_prob(self, dist: Normal, action: torch.Tensor) -> torch.Tensor:
        """``[B, D]`` actions -> ``[B]`` log-density (change of variables when squashed)."""
        if not self.config.tanh_squash:
            return dist.log_prob(action).sum(-1)
        # Invert the squashing; the clamp keeps atanh finite for actions on the bounds
        # (tanh rounds to +-1 in float32 beyond |u| ~ 9).
        eps = torch.finfo(action.dtype).eps
        y = ((action - self.offset) / self.scale).clamp(-1.0 + eps, 1.0 - eps)
        u = torch.atanh(y)
        log_det = log1m_tanh_sq(u) + torch.log(self.scale)
        return (dist.log_prob(u) - log_det).sum(-1)

    def entropy(self, dist: Normal) -> torch.Tensor:
        """``[B]`` entropy of the pre-squash Gaussian.

        The squashed distribution has no closed-form entropy; the Gaussian's is the usual
        exploration bonus for PPO and upper-bounds the squashed one (in ``(-1, 1)`` units).
        """
        return dist.entropy().sum(-1)


class CategoricalHead(nn.Module):
    """``K`` independent categoricals over ``n`` actions (one per chunk position).

    Args:
        in_features: width of the features.
        n: number of actions.
        chunk: ``K``.
        gain: orthogonal-init gain of the logits layer.
    """

    def __init__(self, in_features: int, n: int, chunk: int, gain: float) -> None:
        super().__init__()
        self.n, self.chunk = n, chunk
        self.logits = orthogonal_linear(in_features, n * chunk, gain)

    def forward(self, features: torch.Tensor) -> Categorical:
        """``features [B, F]`` -> Categorical with logits ``[B, K, n]``."""
        logits = self.logits(features).unflatten(-1, (self.chunk, self.n))
        return Categorical(logits=logits, validate_args=False)  # see GaussianHead.forward

    def sample(
        self, dist: Categorical, deterministic: bool, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """``[B, K]`` int64 actions: the argmax when ``deterministic``, else samples drawn
        from ``generator`` (None: torch's default one; the same draw as ``dist.sample()``)."""
        if deterministic:
            return dist.probs.argmax(-1)
        probs = dist.probs
        with torch.no_grad():
            flat = torch.multinomial(
                probs.reshape(-1, probs.shape[-1]), 1, True, generator=generator
            )
        return flat.reshape(probs.shape[:-1])

    def log_prob(self, dist: Categorical, action: torch.Tensor) -> torch.Tensor:
        """``[B, K]`` actions -> ``[B]`` log-prob summed over the chunk."""
        return dist.log_prob(action).sum(-1)

    def entropy(self, dist: Categorical) -> torch.Tensor:
        """``[B]`` entropy summed over the chunk."""
        return dist.entropy().sum(-1)

"""The off-policy actor: a tanh-squashed Gaussian over flat vector observations.

SAC needs reparameterized samples (``a = f(s, eps)`` differentiable in the weights), which
:class:`~rlinf.models.ActorCritic` does not expose (it samples without gradient for PPO).
The squashing reuses :func:`rlinf.models._heads.log1m_tanh_sq`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import torch
from torch import nn

from .._encoders import _ACT
from .._heads import log1m_tanh_sq
from .._spec import ActionSpecLike, ObsSpecLike, is_image

__all__ = ["SquashedGaussianActor", "flat_obs", "vector_obs_dim"]


def vector_obs_dim(obs_spec: ObsSpecLike) -> int:
    """Features of the flattened vector observation (the offline file's layout); image keys
    raise ``ValueError`` (see :class:`~rlinf.models.embodied.ObsLayout` for pixels)."""
    images = sorted(k for k, s in obs_spec.items() if is_image(s))
    if images:
        raise ValueError(
            f"observation keys {images} are images, and offline transition files hold flat "
            "vector observations only: use a state-observation env"
        )
    return sum(math.prod(obs_spec[k].shape) for k in obs_spec)


def flat_obs(obs: Mapping[str, Any], keys: list[str] | None = None) -> torch.Tensor:
    """``{k: [B, ...]}`` -> ``[B, D]`` float32, keys in sorted order, each flattened."""
    keys = sorted(obs) if keys is None else keys
    parts = [torch.as_tensor(np.asarray(obs[k])).float() for k in keys]
    return torch.cat([p.reshape(p.shape[0], -1) for p in parts], dim=-1)


class SquashedGaussianActor(nn.Module):
    """``a = offset + scale * tanh(u)``, ``u ~ N(mean(s), std(s))``.

    Args:
        obs_dim: ``D``, the trunk's input width (the encoder's ``out_features`` with one).
        action_spec: continuous action spec with finite ``low`` / ``high`` (``[A]``).
        hidden_sizes: trunk widths.
        activation: trunk nonlinearity (``PolicyConfig.activation``: tanh, relu, elu, ...).
        log_std_min: lower clamp of the log-std.
        log_std_max: upper clamp of the log-std.
        encoder: the pixel encoder in front of the trunk (``None``: flat ``[B, D]`` input).
            It is a submodule, so weight snapshots carry it to the collectors, but the
            learner trains it through the critic loss only (DrQ): see
            :meth:`head_parameters` and :meth:`sample`.

    ``forward(obs [B, D]) -> (action [B, A], log_prob [B])`` with a reparameterized sample;
    ``act(obs, deterministic)`` is the same without gradient (the mean when deterministic).
    """

    def __init__(
        self,
        obs_dim: int,
        action_spec: ActionSpecLike,
        hidden_sizes: tuple[int, ...],
        activation: str = "relu",
        log_std_min: float = -5.0,
        log_std_max: float = 2.0,
        encoder: nn.Module | None = None,
    ) -> None:
        super().__init__()
        if action_spec.kind != "continuous":
            raise ValueError(
                f"the off-policy learner needs continuous actions, got {action_spec.kind!r}"
            )
        dim = math.prod(tuple(action_spec.shape))
        lo = np.broadcast_to(np.asarray(action_spec.low, np.float64), (dim,))
        hi = np.broadcast_to(np.asarray(action_spec.high, np.float64), (dim,))
        if not (np.isfinite(lo).all() and np.isfinite(hi).all()):
            raise ValueError("the squashed actor needs finite action bounds (low and high)")
        self.encoder = encoder
        self.action_shape = tuple(action_spec.shape)
        self.log_std_min, self.log_std_max = float(log_std_min), float(log_std_max)
        layers: list[nn.Module] = []
        prev = obs_dim
        for h in hidden_sizes:
            layers += [nn.Linear(prev, h), _ACT[activation]()]
            prev = h
        self.trunk = nn.Sequential(*layers)
        self.mean = nn.Linear(prev, dim)
        self.log_std = nn.Linear(prev, dim)
        self.register_buffer("scale", torch.as_tensor((hi - lo) / 2.0, dtype=torch.float32))
        self.register_buffer("offset", torch.as_tensor((hi + lo) / 2.0, dtype=torch.float32))

    def head_parameters(self) -> list[nn.Parameter]:
        """The trunk's and heads' parameters (the encoder's excluded): what the actor loss
        updates."""
        skip = set() if self.encoder is None else {id(p) for p in self.encoder.parameters()}
        return [p for p in self.parameters() if id(p) not in skip]

    def encode(self, obs: Any) -> torch.Tensor:
        """``[B, D]`` trunk input: the encoder's features, or ``obs`` itself without one."""
        return obs if self.encoder is None else self.encoder(obs)

    def _dist(self, features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.trunk(features)
        log_std = self.log_std(h).clamp(self.log_std_min, self.log_std_max)
        return self.mean(h), log_std

    def squash_log_prob(
        self, u: torch.Tensor, mean: torch.Tensor, log_std: torch.Tensor
    ) -> torch.Tensor:
        """``[B]`` log-density of ``offset + scale * tanh(u)`` for ``u ~ N(mean, e^log_std)``
        (``u, mean, log_std``: ``[B, A]``): Gaussian density minus the log-Jacobian
        ``sum_d log(1 - tanh(u_d)^2) + log(scale_d)``."""
        z = (u - mean) / log_std.exp()
        normal = -0.5 * z.pow(2) - log_std - 0.5 * math.log(2 * math.pi)
        return (normal - log1m_tanh_sq(u) - torch.log(self.scale)).sum(-1)

    def sample(self, features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Reparameterized ``(action [B, A], log_prob [B])`` from trunk inputs ``[B, D]``
        (the learner passes encoder features it computed once per batch, detached)."""
        mean, log_std = self._dist(features)
        u = mean + log_std.exp() * torch.randn_like(mean)
        action = self.offset + self.scale * torch.tanh(u)
        return action, self.squash_log_prob(u, mean, log_std)

    def forward(self, obs: Any) -> tuple[torch.Tensor, torch.Tensor]:
        return self.sample(self.encode(obs))

    def log_prob(self, obs: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        """``[B]`` log-density of given ``actions [B, A]`` at ``obs [B, D]``, with gradient
        (IQL's advantage-weighted regression on dataset actions). Actions on the bounds are
        pulled inside by 1e-6 of the half-range: ``atanh(+-1)`` is infinite."""
        mean, log_std = self._dist(self.encode(obs))
        unit = ((actions.reshape(mean.shape) - self.offset) / self.scale).clamp(
            -1.0 + 1e-6, 1.0 - 1e-6
        )
        return self.squash_log_prob(torch.atanh(unit), mean, log_std)

    @torch.no_grad()
    def act(self, obs: Any, deterministic: bool = False) -> torch.Tensor:
        """``[B, *action_shape]`` actions for ``obs`` (``[B, D]``, or the encoder's key ->
        ``[B, ...]`` input), without gradient."""
        features = self.encode(obs)
        if deterministic:
            mean, _ = self._dist(features)
            action = self.offset + self.scale * torch.tanh(mean)
        else:
            action, _ = self.sample(features)
        return action.reshape(features.shape[0], *self.action_shape)

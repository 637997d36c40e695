"""The MLP / CNN actor-critic: a policy head and a value head over encoded observations."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import torch
from torch import nn

from ._config import PolicyConfig
from ._encoders import Encoder, orthogonal_linear
from ._heads import CategoricalHead, GaussianHead
from ._normalizer import RunningNormalizer
from ._spec import ActionSpecLike, ObsSpecLike, is_image

__all__ = ["ActorCritic", "build_policy"]


class ActorCritic(nn.Module):
    """Actor-critic over dict observations, for discrete or continuous actions.

    Observations are dicts of ``[B, ...]`` tensors or numpy arrays (e.g. straight from a
    ``rlinf.envs`` vector env). Actions are ``[B, *action_shape]``, or
    ``[B, K, *action_shape]`` when ``config.chunk_size = K > 1``; int64 for discrete.

    Args:
        config: :class:`PolicyConfig`.
        obs_spec: key -> spec (``shape`` without the batch dim, ``dtype``) of the env's
            observation.
        action_spec: the env's action spec (``kind``, ``shape``, ``n``, ``low``, ``high``).
    """

    def __init__(
        self, config: PolicyConfig, obs_spec: ObsSpecLike, action_spec: ActionSpecLike
    ) -> None:
        super().__init__()
        self.config = config
        keys = list(obs_spec) if config.obs_keys is None else list(config.obs_keys)
        missing = [k for k in keys if k not in obs_spec]
        if missing:
            raise ValueError(f"obs_keys {missing} are not in the observation spec {list(obs_spec)}")
        spec = {k: obs_spec[k] for k in keys}
        self.obs_keys = sorted(keys)
        self.normalizers: nn.ModuleDict | None = None
        if config.normalize_obs:
            self.normalizers = nn.ModuleDict(
                {
                    k: RunningNormalizer(tuple(s.shape), clip=config.obs_clip)
                    for k, s in spec.items()
                    if not is_image(s)
                }
            )
        self.actor_encoder = Encoder(config, spec, self.normalizers)
        self.critic_encoder = (
            None if config.shared_trunk else Encoder(config, spec, self.normalizers)
        )
        width = self.actor_encoder.out_features
        self.discrete = action_spec.kind == "discrete"
        self.action_shape = tuple(action_spec.shape)
        k = config.chunk_size
        if self.discrete:
            if action_spec.n is None or action_spec.n < 1:
                raise ValueError(f"a discrete action spec needs n >= 1, got {action_spec.n}")
            self.head: GaussianHead | CategoricalHead = CategoricalHead(
                width, int(action_spec.n), k, config.policy_gain
            )
        elif action_spec.kind == "continuous":
            dim = math.prod(self.action_shape)

            def tiled(bound: Any) -> np.ndarray | None:
                if bound is None:
                    return None
                flat = np.broadcast_to(np.asarray(bound, np.float64), self.action_shape)
                return np.tile(flat.reshape(-1), k)

            self.head = GaussianHead(
                width, k * dim, config, tiled(action_spec.low), tiled(action_spec.high)
            )
        else:
            raise ValueError(
                f"action kind must be 'discrete' or 'continuous', got {action_spec.kind!r}"
            )
        self.value_head = orthogonal_linear(width, 1, config.value_gain)

    # -- layout helpers ---------------------------------------------------------------

    def _device(self) -> torch.device:
        return self.value_head.weight.device

    def _obs(self, obs: Mapping[str, Any]) -> dict[str, torch.Tensor]:
        missing = [k for k in self.obs_keys if k not in obs]
        if missing:
            raise KeyError(f"observation is missing keys {missing}; it has {sorted(obs)}")
        return {k: torch.as_tensor(obs[k], device=self._device()) for k in self.obs_keys}

    def _to_env_layout(self, flat: torch.Tensor) -> torch.Tensor:
        """Head layout (``[B, K]`` or ``[B, K*D]``) -> ``[B, (K,) *action_shape]``."""
        k = self.config.chunk_size
        shape = (k, *self.action_shape) if k > 1 else self.action_shape
        return flat.reshape(flat.shape[0], *shape)

    def _to_head_layout(self, actions: Any) -> torch.Tensor:
        a = torch.as_tensor(actions, device=self._device())
        k = self.config.chunk_size
        expected = ((k,) if k > 1 else ()) + self.action_shape
        if tuple(a.shape[1:]) != expected:
            raise ValueError(
                f"actions must be [B, {', '.join(map(str, expected))}], got {tuple(a.shape)}"
            )
        if self.discrete:
            return a.long().reshape(a.shape[0], k)
        return a.float().reshape(a.shape[0], -1)

    def _normalized(self, obs: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """The observation with its vector keys normalized (once, for both encoders)."""
        if self.normalizers is None:
            return obs
        return {k: self.normalizers[k](v) if k in self.normalizers else v for k, v in obs.items()}

    def _features(self, obs: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        obs = self._normalized(obs)
        actor = self.actor_encoder(obs, normalized=True)
        if self.critic_encoder is None:
            return actor, actor
        return actor, self.critic_encoder(obs, normalized=True)

    def _critic_features(self, obs: dict[str, torch.Tensor]) -> torch.Tensor:
        encoder = self.actor_encoder if self.critic_encoder is None else self.critic_encoder
        return encoder(self._normalized(obs), normalized=True)

    # -- public API ---------------------------------------------------------------------

    @torch.no_grad()
    def act(
        self,
        obs: Mapping[str, Any],
        deterministic: bool = False,
        generator: torch.Generator | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Choose actions for a batch of observations (no gradient), sampled from
        ``generator`` (None: torch's default generator).

        Returns:
            ``(action, log_prob [B], value [B])``; ``action`` is ``[B, (K,) *action_shape]``
            (the mode when ``deterministic``); ``log_prob`` is that of the returned action,
            computed exactly as :meth:`evaluate` would.
        """
        actor, critic = self._features(self._obs(obs))
        dist = self.head(actor)
        flat = self.head.sample(dist, deterministic, generator)
        return (
            self._to_env_layout(flat),
            self.head.log_prob(dist, flat),
            self.value_head(critic).squeeze(-1),
        )

    def evaluate(
        self, obs: Mapping[str, Any], actions: Any
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Log-prob, entropy and value for given actions (with gradient, for training).

        Args:
            obs: key -> ``[B, ...]``.
            actions: ``[B, (K,) *action_shape]``.

        Returns:
            ``(log_prob [B], entropy [B], value [B])``; with action chunks both log-prob and
            entropy are sums over the chunk.
        """
        actor, critic = self._features(self._obs(obs))
        dist = self.head(actor)
        flat = self._to_head_layout(actions)
        return (
            self.head.log_prob(dist, flat),
            self.head.entropy(dist),
            self.value_head(critic).squeeze(-1),
        )

    def log_prob(self, obs: Mapping[str, Any], actions: Any) -> torch.Tensor:
        """``[B]`` log-probs of ``actions`` (as in :meth:`evaluate`) through the policy
        branch alone: no critic forward, e.g. to anchor a clip at the current policy."""
        features = self.actor_encoder(self._normalized(self._obs(obs)), normalized=True)
        return self.head.log_prob(self.head(features), self._to_head_layout(actions))

    def value(self, obs: Mapping[str, Any]) -> torch.Tensor:
        """``[B]`` state values (e.g. of ``final_obs`` to bootstrap truncated episodes)."""
        return self.value_head(self._critic_features(self._obs(obs))).squeeze(-1)

    def update_obs_normalizer(self, obs: Mapping[str, Any]) -> None:
        """Add a batch of observations to the running statistics (no-op when
        ``config.normalize_obs`` is False). Call it on rollout data, not in :meth:`evaluate`,
        so one update's minibatches all see the same normalization."""
        if self.normalizers is None:
            return
        tensors = self._obs(obs)
        for k, norm in self.normalizers.items():
            norm.update(tensors[k])


def build_policy(
    config: PolicyConfig, obs_spec: ObsSpecLike, action_spec: ActionSpecLike
) -> ActorCritic:
    """Build an :class:`ActorCritic` for an env's observation and action specs."""
    return ActorCritic(config, obs_spec, action_spec)

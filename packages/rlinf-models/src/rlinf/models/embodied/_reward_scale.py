"""The off-policy learner's reward transform: ``r' = scale * r + bias`` on every sampled
batch (offline and online alike), and the scale IQL's paper derives from the offline
returns.

Why: IQL's actor weighs dataset actions by ``exp(awr_beta * (Q - V))``, and ``Q - V`` is in
reward units. With rewards of 1 per step (InvertedPendulum) the advantages stay below about
0.5, the weights stay near 1 and the actor update is behaviour cloning of its buffer. The
IQL paper (Kostrikov et al., 2021) therefore rescales MuJoCo rewards by
``1000 / (max_return - min_return)`` of the dataset's episodes, which makes ``awr_beta``
mean the same on every dataset. The buffers keep the env's rewards (checkpoints, buffer
files and ``env/*`` metrics stay in env units); only the learner's batches are scaled.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch

from ._offpolicy_config import OffPolicyConfig

__all__ = ["NORMALIZED_RETURN_RANGE", "reward_transform", "scale_rewards"]

NORMALIZED_RETURN_RANGE = 1000.0
"""The span of episode returns after ``reward_normalize: offline_returns`` (the paper's)."""


def reward_transform(
    config: OffPolicyConfig, metadata: Mapping[str, Any] | None = None
) -> tuple[float, float]:
    """``(scale, bias)`` the learner applies to batch rewards.

    ``scale`` is ``config.reward_scale``, times ``1000 / (max - min)`` of the offline
    file's ``episode_returns`` (its metadata, written by ``rlinf-embodied collect``) when
    ``config.reward_normalize`` is ``"offline_returns"``; ``bias`` is ``config.reward_bias``.

    Raises:
        ValueError: naming ``reward_normalize`` when the metadata has no episode returns or
            they all equal each other (no span to normalize by).
    """
    scale = float(config.reward_scale)
    if config.reward_normalize == "offline_returns":
        returns = [float(r) for r in (metadata or {}).get("episode_returns") or []]
        where = f"the offline file {config.offline_data!r}"
        if not returns:
            raise ValueError(
                f"reward_normalize: offline_returns needs the episode returns in the metadata "
                f"of {where} (files written by 'rlinf-embodied collect' have them)"
            )
        span = max(returns) - min(returns)
        if not span > 0:
            raise ValueError(
                f"reward_normalize: offline_returns divides by the span of episode returns, "
                f"but every episode of {where} returned {returns[0]:g}; set "
                "algo.reward_scale instead"
            )
        scale *= NORMALIZED_RETURN_RANGE / span
    return scale, float(config.reward_bias)


def scale_rewards(
    batch: dict[str, torch.Tensor], scale: float, bias: float
) -> dict[str, torch.Tensor]:
    """``batch`` with ``rewards [B]`` replaced by ``scale * rewards + bias`` (the same dict
    when the transform is the identity; the caller's tensors are never changed in place)."""
    if scale == 1.0 and bias == 0.0:
        return batch
    return {**batch, "rewards": batch["rewards"] * scale + bias}

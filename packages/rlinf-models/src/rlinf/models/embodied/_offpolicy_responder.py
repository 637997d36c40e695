"""The collectors' side of off-policy training: the squashed-Gaussian actor answering env
stages' requests inside each env worker (``EnvWorker(responder_factory=...)``).

Besides actions it records :data:`NEXT_OBS_RECORD`: the state each step reached before any
auto-reset, assembled from the next request's observation and its ``final`` rows (see the
protocol in ``rlinf.envs.EnvWorker``), so the learner can bootstrap truncated episodes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch

from .._config import PolicyConfig
from .._spec import ActionSpecLike, ObsSpecLike
from ._offpolicy_actor import SquashedGaussianActor, flat_obs, vector_obs_dim
from ._offpolicy_learner import NEXT_OBS_RECORD
from ._process import setup_torch_process
from ._responder import VersionedResponder

__all__ = ["OffPolicyResponder", "build_actor", "build_offpolicy_responder"]


def build_actor(
    policy_config: PolicyConfig, obs_spec: ObsSpecLike, action_spec: ActionSpecLike
) -> SquashedGaussianActor:
    """The actor of ``policy_config`` for these specs (learner and collectors build the
    same one, so weight snapshots fit)."""
    return SquashedGaussianActor(
        vector_obs_dim(obs_spec),
        action_spec,
        policy_config.hidden_sizes,
        policy_config.activation,
        policy_config.log_std_min,
        policy_config.log_std_max,
    )


class OffPolicyResponder(VersionedResponder):
    """Version-checked stochastic actions plus the ``next_obs`` record.

    Args:
        actor: the collectors' copy (weights come by :meth:`load_weights`).
    """

    def __init__(self, actor: SquashedGaussianActor) -> None:
        super().__init__(actor)
        self.actor = actor

    def answer(self, requests: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
        """One reply per request: ``action [n, *shape]`` when it has ``obs``, and
        ``record_prev = {"next_obs": [n, D]}`` when it has ``final`` rows."""
        replies = []
        for request in requests:
            reply: dict[str, Any] = {"version": self.weights.version}
            obs = request["obs"]
            flat = None if obs is None else flat_obs(obs)
            if flat is not None:
                reply["action"] = self.actor.act(flat).numpy()
            if request["final"] is not None:
                index, rows = request["final"]
                index = np.asarray(index)
                final = flat_obs(rows).numpy() if len(index) else None
                if flat is None:  # the last request of a rollout: every row is final
                    next_obs = final
                else:
                    next_obs = flat.numpy().copy()
                    if final is not None:
                        next_obs[index] = final
                reply["record_prev"] = {NEXT_OBS_RECORD: next_obs}
            replies.append(reply)
        return replies


def build_offpolicy_responder(
    policy_config: PolicyConfig,
    obs_spec: ObsSpecLike,
    action_spec: ActionSpecLike,
    *,
    rank: int = 0,
    seed: int = 0,
    torch_threads: int = 1,
) -> OffPolicyResponder:
    """An env worker's ``responder_factory`` (through ``functools.partial``): a fresh actor
    whose sampling is seeded from ``seed`` and the env worker's ``rank``."""
    setup_torch_process(torch_threads)
    torch.manual_seed(seed + 7919 * (rank + 1))
    return OffPolicyResponder(build_actor(policy_config, obs_spec, action_spec))

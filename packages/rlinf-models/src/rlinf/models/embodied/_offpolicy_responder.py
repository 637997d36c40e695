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
from ._offpolicy_actor import SquashedGaussianActor
from ._offpolicy_obs import NEXT_OBS_RECORD, ObsLayout
from ._process import setup_torch_process
from ._responder import VersionedResponder

__all__ = ["OffPolicyResponder", "build_actor", "build_offpolicy_responder"]


def build_actor(
    policy_config: PolicyConfig, obs_spec: ObsSpecLike, action_spec: ActionSpecLike
) -> SquashedGaussianActor:
    """The actor of ``policy_config`` for these specs (learner and collectors build the
    same one, so weight snapshots fit): with image keys (``policy.encoder: cnn``) the shared
    pixel encoder of :meth:`ObsLayout.encoder` in front of the trunk. Its input is
    ``ObsLayout.of(policy_config, obs_spec).policy_input(obs)``."""
    layout = ObsLayout.of(policy_config, obs_spec)
    return SquashedGaussianActor(
        layout.features_dim(policy_config),
        action_spec,
        policy_config.hidden_sizes,
        policy_config.activation,
        policy_config.log_std_min,
        policy_config.log_std_max,
        encoder=layout.encoder(policy_config, obs_spec),
    )


class OffPolicyResponder(VersionedResponder):
    """Version-checked stochastic actions plus the ``next_obs`` record.

    Args:
        actor: the collectors' copy (weights come by :meth:`load_weights`).
        layout: how ``actor`` reads observations (``None``: flat, every key).
    """

    def __init__(self, actor: SquashedGaussianActor, layout: ObsLayout | None = None) -> None:
        super().__init__(actor)
        self.actor = actor
        self.layout = layout

    def answer(self, requests: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
        """One reply per request: ``action [n, *shape]`` when it has ``obs``, and
        ``record_prev`` with the ``next_obs`` record(s) (see :data:`NEXT_OBS_RECORD`) when
        it has ``final`` rows."""
        replies = []
        for request in requests:
            reply: dict[str, Any] = {"version": self.weights.version}
            obs = request["obs"]
            x = None if obs is None else self._input(obs)
            if x is not None:
                reply["action"] = self.actor.act(x).numpy()
            if request["final"] is not None:
                index, rows = request["final"]
                index = np.asarray(index)
                final = self._input(rows) if len(index) else None
                # The last request of a rollout has no obs: every row is final.
                next_obs = final if x is None else _with_rows(x, index, final)
                records = ObsLayout.to_buffer(NEXT_OBS_RECORD, next_obs)
                reply["record_prev"] = {k: v.numpy() for k, v in records.items()}
            replies.append(reply)
        return replies

    def _input(self, obs: Mapping[str, Any]) -> Any:
        if self.layout is None:
            return ObsLayout(tuple(sorted(obs)), (), 0).policy_input(obs)
        return self.layout.policy_input(obs)


def _with_rows(x: Any, index: np.ndarray, final: Any) -> Any:
    """A copy of ``x`` (``[n, ...]`` tensor or key -> tensor) with rows ``index`` replaced
    by ``final``'s (``None``: none replaced)."""
    if isinstance(x, torch.Tensor):
        out = x.clone()
        if final is not None:
            out[torch.as_tensor(index)] = final
        return out
    return {k: _with_rows(v, index, None if final is None else final[k]) for k, v in x.items()}


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
    return OffPolicyResponder(
        build_actor(policy_config, obs_spec, action_spec), ObsLayout.of(policy_config, obs_spec)
    )

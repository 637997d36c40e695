"""EmbodiedRolloutWorker: an inference copy of the policy serving env workers' requests."""

from __future__ import annotations

import time
import warnings
from collections.abc import Mapping
from typing import Any

import numpy as np
import ray
import torch

from rlinf.channel import Channel
from rlinf.core import Worker

from .._actor_critic import build_policy
from .._config import PolicyConfig
from .._spec import ActionSpecLike, ObsSpecLike
from ._weights import VersionedWeights, WeightSnapshot

__all__ = ["EmbodiedRolloutWorker"]


class EmbodiedRolloutWorker(Worker):
    """Batched action sampling (action, log-prob, value) with version-checked weights.

    Request protocol on the observation channel (plain dicts, so the env side needs no
    models): ``{"reply_key": key, "obs": obs | None, "final_obs": obs | None}`` where each
    obs is a dict of ``[n, ...]`` arrays. The reply, put on the action channel under
    ``reply_key``, is ``{"action": [n, ...] (when obs), "record": {"log_probs": [n],
    "values": [n]} (when obs), "record_prev": {"next_values": [n]} (when final_obs),
    "version": int}``: ``record`` belongs to this step, ``record_prev`` to the previous one
    (``V(final_obs)`` of the step that just ran).

    Args:
        policy_config: must match the actor's, so its weights load.
        obs_spec, action_spec: the env's specs.
        seed: torch seed of the action sampling (rank is added).
        torch_threads: intra-op threads.
    """

    def __init__(
        self,
        policy_config: PolicyConfig,
        obs_spec: ObsSpecLike,
        action_spec: ActionSpecLike,
        seed: int = 0,
        torch_threads: int = 1,
    ) -> None:
        super().__init__()
        torch.set_num_threads(torch_threads)
        # Requests arrive as read-only zero-copy arrays from the object store; the policy
        # only reads them, so torch's warning about non-writable arrays is noise here.
        warnings.filterwarnings("ignore", message="The given NumPy array is not writable")
        torch.manual_seed(seed + 7919 * (self.rank + 1))
        self.policy = build_policy(policy_config, obs_spec, action_spec).to(self.device).eval()
        self.weights = VersionedWeights(self.policy)

    def get_version(self) -> int:
        """Version of the loaded weights (-1 before the first load)."""
        return self.weights.version

    def load_weights(self, snapshot: WeightSnapshot | ray.ObjectRef) -> int:
        """Load the next weight version (raises ``StaleWeightsError`` when out of order).

        ``snapshot`` may be an object-store reference (the driver puts one snapshot and hands
        the reference to every rank; Ray does not resolve references nested in arguments).
        """
        if isinstance(snapshot, ray.ObjectRef):
            snapshot = ray.get(snapshot)
        self.weights.load(snapshot)
        return self.weights.version

    def act(
        self, obs: Mapping[str, Any], *, version: int, deterministic: bool = False
    ) -> dict[str, np.ndarray]:
        """Actions for a batch ``obs`` (dict of ``[n, ...]``) with weights ``version``.

        Returns ``{"action": [n, ...], "log_prob": [n], "value": [n]}`` numpy arrays.
        Raises ``StaleWeightsError`` unless exactly ``version`` is loaded.
        """
        self.weights.require(version)
        action, logp, value = self.policy.act(obs, deterministic)
        return {
            "action": action.cpu().numpy(),
            "log_prob": logp.cpu().numpy(),
            "value": value.cpu().numpy(),
        }

    def serve(
        self,
        obs_channel: Channel,
        act_channel: Channel,
        key: Any,
        num_requests: int,
        *,
        version: int,
        channel_timeout: float = 120.0,
    ) -> dict[str, float]:
        """Answer ``num_requests`` requests arriving under ``key`` (see the class doc).

        Requests of different env workers / pipeline stages share the key and are served in
        arrival order, so whichever stage is ready first is served first.

        Returns ``{"rollout/requests", "time/rollout_infer", "time/rollout_wait"}``.
        Raises ``StaleWeightsError`` before serving anything unless ``version`` is loaded.
        """
        self.weights.require(version)
        infer = wait = 0.0
        for _ in range(num_requests):
            start = time.perf_counter()
            request = obs_channel.get(key=key, timeout=channel_timeout)
            mid = time.perf_counter()
            reply: dict[str, Any] = {"version": self.weights.version}
            with torch.no_grad():
                if request["obs"] is not None:
                    action, logp, value = self.policy.act(request["obs"])
                    reply["action"] = action.cpu().numpy()
                    reply["record"] = {
                        "log_probs": logp.cpu().numpy(),
                        "values": value.cpu().numpy(),
                    }
                if request["final_obs"] is not None:
                    next_value = self.policy.value(request["final_obs"])
                    reply["record_prev"] = {"next_values": next_value.cpu().numpy()}
            infer += time.perf_counter() - mid
            wait += mid - start
            act_channel.put(reply, key=request["reply_key"], timeout=channel_timeout)
        return {
            "rollout/requests": float(num_requests),
            "time/rollout_infer": infer,
            "time/rollout_wait": wait,
        }

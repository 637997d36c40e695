"""ActionResponder: answers env stages' observation requests with one batched forward pass.

The request/reply protocol is the one of ``rlinf.envs.EnvWorker`` (see
:class:`~rlinf.models.embodied.EmbodiedRolloutWorker`). The responder is transport-free:
the rollout worker feeds it requests that arrived over sockets, and an env worker that runs
the policy itself (``EnvWorker(..., responder_factory=...)``) calls it directly, with no
process hand-off per step.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch

from .._actor_critic import ActorCritic, build_policy
from .._config import PolicyConfig
from .._spec import ActionSpecLike, ObsSpecLike
from ._process import setup_torch_process
from ._weights import VersionedWeights, WeightSnapshot

__all__ = ["ActionResponder", "VersionedResponder", "build_responder"]


class VersionedResponder:
    """What every responder shares: the loaded weights' version and the sampling RNG.

    Env workers and rollout workers drive any responder through these methods (and
    ``answer``), whatever model it runs.

    Args:
        model: the inference copy (put in eval mode here); weights come by
            :meth:`load_weights`.
        generator: the generator its sampling draws from (None: torch's default one of
            the process).
    """

    def __init__(self, model: torch.nn.Module, generator: torch.Generator | None = None) -> None:
        self.weights = VersionedWeights(model.eval())
        self.generator = generator

    @property
    def version(self) -> int:
        """Version of the loaded weights (-1 before the first load)."""
        return self.weights.version

    def load_weights(self, snapshot: WeightSnapshot) -> int:
        """Load the next weight version (``StaleWeightsError`` when out of order)."""
        self.weights.load(snapshot)
        return self.weights.version

    def require(self, version: int) -> None:
        """Raise ``StaleWeightsError`` unless exactly ``version`` is loaded."""
        self.weights.require(version)

    def get_state(self) -> dict[str, Any]:
        """The action sampling's RNG state (its :attr:`generator`, or torch's default CPU
        generator of the process), for an exact resume."""
        if self.generator is not None:
            return {"sampling_rng": self.generator.get_state()}
        return {"torch_rng": torch.get_rng_state()}

    def set_state(self, state: Mapping[str, Any]) -> None:
        """Restore :meth:`get_state`."""
        if self.generator is not None:
            self.generator.set_state(state["sampling_rng"])
        else:
            torch.set_rng_state(state["torch_rng"])


class ActionResponder(VersionedResponder):
    """Version-checked batched inference for env stages' requests.

    Args:
        policy: the inference copy (put in eval mode here).
        generator: the generator its action sampling draws from (None: torch's default
            one of the process).
    """

    def __init__(self, policy: ActorCritic, generator: torch.Generator | None = None) -> None:
        super().__init__(policy, generator)
        self.policy = policy

    def answer(self, requests: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
        """Replies to ``requests``, in order: one forward pass for the obs of all of them,
        one for their final rows (see the protocol in ``rlinf.envs.EnvWorker``)."""
        with_obs = [r for r in requests if r["obs"] is not None]
        with_final = [r for r in requests if r["final"] is not None]
        acted: list[tuple[np.ndarray, ...]] = []
        with torch.no_grad():
            if with_obs:
                sizes = [_rows(r["obs"]) for r in with_obs]
                action, logp, value = self.policy.act(
                    _concat([r["obs"] for r in with_obs]), generator=self.generator
                )
                cuts = np.cumsum(sizes)[:-1]
                acted = list(
                    zip(
                        *(np.split(x.cpu().numpy(), cuts) for x in (action, logp, value)),
                        strict=True,
                    )
                )
            finals: list[np.ndarray] = []
            rows = [r["final"][1] for r in with_final]
            sizes = [len(r["final"][0]) for r in with_final]
            if sum(sizes):
                final_values = self.policy.value(_concat(rows)).cpu().numpy()
                finals = np.split(final_values, np.cumsum(sizes)[:-1])
            else:
                finals = [np.zeros(0, np.float32) for _ in with_final]
        replies: list[dict[str, Any]] = []
        it_obs, it_final = iter(acted), iter(finals)
        for request in requests:
            reply: dict[str, Any] = {"version": self.weights.version}
            values = None
            if request["obs"] is not None:
                action, logp, values = next(it_obs)
                reply["action"] = action
                reply["record"] = {"log_probs": logp, "values": values}
            if request["final"] is not None:
                index = np.asarray(request["final"][0])
                final_v = next(it_final)
                next_values = values.copy() if values is not None else np.empty_like(final_v)
                next_values[index] = final_v
                reply["record_prev"] = {"next_values": next_values}
            replies.append(reply)
        return replies


def build_responder(
    policy_config: PolicyConfig,
    obs_spec: ObsSpecLike,
    action_spec: ActionSpecLike,
    *,
    rank: int = 0,
    seed: int = 0,
    torch_threads: int = 1,
) -> ActionResponder:
    """A responder with a fresh CPU policy of ``policy_config`` (weights come by
    :meth:`ActionResponder.load_weights`) and a sampling generator of its own, seeded from
    ``seed`` and the caller's ``rank`` (ranks draw different noise; nothing else sharing
    the process, e.g. an in-process actor, draws from it).

    Made to be handed, through ``functools.partial``, as an env worker's
    ``responder_factory``: the env worker calls it with its own specs.
    """
    setup_torch_process(torch_threads)
    torch.manual_seed(seed + 7919 * (rank + 1))
    generator = torch.Generator().manual_seed(seed + 7919 * (rank + 1))
    return ActionResponder(build_policy(policy_config, obs_spec, action_spec), generator)


def _rows(obs: Mapping[str, Any]) -> int:
    return len(next(iter(obs.values())))


def _concat(parts: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Concatenate obs dicts along the batch axis (one part is passed through as is)."""
    if len(parts) == 1:
        return dict(parts[0])
    return {k: np.concatenate([np.asarray(p[k]) for p in parts]) for k in parts[0]}

"""EmbodiedRolloutWorker: an inference copy of the policy serving env workers' requests."""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

import numpy as np
import torch

from rlinf.channel import DirectLink, LinkAddress, LinkListener, wait_links
from rlinf.core import Worker

from .._actor_critic import build_policy
from .._config import PolicyConfig
from .._spec import ActionSpecLike, ObsSpecLike
from .._weight_sync import WeightReceiver, resolve_snapshot
from ._process import setup_torch_process
from ._responder import ActionResponder
from ._weights import VersionedWeights, WeightSnapshot

__all__ = ["EmbodiedRolloutWorker"]


class EmbodiedRolloutWorker(WeightReceiver, Worker):
    """Batched action sampling (action, log-prob, value) with version-checked weights.

    Env workers (or anything speaking the same protocol, see ``rlinf.envs.EnvWorker``)
    connect a :class:`rlinf.channel.DirectLink` to the listener opened by
    :meth:`open_endpoint`, one link per pipeline stage, and exchange one message each way
    per step:

    * request: ``{"obs": obs | None, "final": (index [m], final_obs rows) | None}``; ``obs``
      is a dict of ``[n, ...]`` arrays; ``final`` gives the rows of the previous step's
      final observations that differ from ``obs`` (envs whose episode ended), all rows when
      ``obs`` is None; ``None`` when there is no previous step.
    * reply: ``{"action": [n, ...], "record": {"log_probs": [n], "values": [n]}`` (when
      obs), ``"record_prev": {"next_values": [n]}`` (when final), ``"version": int}``:
      ``record`` belongs to this step, ``record_prev`` to the previous one (``V`` of the
      state the previous step reached before any reset: ``values`` of this step's obs,
      overwritten at ``index`` by ``V(final_obs rows)``).

    Requests that are waiting at the same time (several stages or env workers) are answered
    with one forward pass over their concatenated observations.

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
        setup_torch_process(torch_threads)
        torch.manual_seed(seed + 7919 * (self.rank + 1))
        self.policy = build_policy(policy_config, obs_spec, action_spec).to(self.device)
        # Its own sampling generator: ranks that share a process (the in-process backend)
        # draw the same noise as in processes of their own.
        generator = torch.Generator(self.device).manual_seed(seed + 7919 * (self.rank + 1))
        self.responder = ActionResponder(self.policy, generator)
        self.weights = self.responder.weights
        self._listener: LinkListener | None = None
        self._peers: list[DirectLink] = []

    def get_version(self) -> int:
        """Version of the loaded weights (-1 before the first load)."""
        return self.weights.version

    def load_weights(self, snapshot: WeightSnapshot | Any) -> int:
        """Load the next weight version (raises ``StaleWeightsError`` when out of order).

        ``snapshot`` may be an object-store reference (the actor puts one snapshot and every
        rank fetches it; Ray does not resolve references nested in arguments).
        """
        self.weights.load(resolve_snapshot(snapshot))
        return self.weights.version

    def weight_targets(self) -> tuple[VersionedWeights, dict[str, torch.Tensor]]:
        """The version tracker and the policy's own tensors, which ``receive_weights``
        (the collective path) overwrites in place."""
        return self.weights, self.policy.state_dict()

    def get_state(self) -> dict[str, Any]:
        """The action sampling's RNG state, for an exact resume."""
        return self.responder.get_state()

    def set_state(self, state: Mapping[str, Any]) -> None:
        """Restore :meth:`get_state`."""
        self.responder.set_state(state)

    def act(
        self, obs: Mapping[str, Any], *, version: int, deterministic: bool = False
    ) -> dict[str, np.ndarray]:
        """Actions for a batch ``obs`` (dict of ``[n, ...]``) with weights ``version``.

        Returns ``{"action": [n, ...], "log_prob": [n], "value": [n]}`` numpy arrays.
        Raises ``StaleWeightsError`` unless exactly ``version`` is loaded.
        """
        self.weights.require(version)
        with torch.no_grad():
            action, logp, value = self.policy.act(
                obs, deterministic, generator=self.responder.generator
            )
        return {
            "action": action.cpu().numpy(),
            "log_prob": logp.cpu().numpy(),
            "value": value.cpu().numpy(),
        }

    def open_endpoint(self, token: bytes) -> LinkAddress:
        """Listen for env workers' links; returns the address they connect to. Only peers
        that present ``token`` (at least 16 bytes) are served."""
        if self._listener is None or self._listener.address.token != bytes(token):
            if self._listener is not None:
                self._listener.close()
            self._listener = LinkListener(
                f"rollout rank {self.rank}", token=token, host=self.node_ip()
            )
        return self._listener.address

    def serve(
        self, num_requests: int, peers: int, *, version: int, request_timeout: float = 120.0
    ) -> dict[str, float]:
        """Answer ``num_requests`` requests from ``peers`` connected stages (see the class
        doc), in arrival order, then return.

        Args:
            num_requests: requests to answer over all peers.
            version: the weight version to act with.
            peers: stage links this rank serves; missing ones are accepted first.
            request_timeout: longest wait for a connection or a request (named so as not
                to clash with ``WorkerGroup.call``'s ``timeout``).

        Returns ``{"rollout/requests", "rollout/forward_passes", "time/rollout_infer",
        "time/rollout_wait"}``.

        Raises:
            StaleWeightsError: before serving anything, unless ``version`` is loaded.
            rlinf.channel.LinkTimeout, PeerDied, LinkClosed: a peer stayed silent or went
            away (named); every link is then closed, so the peers fail at once instead of
            waiting.
        """
        self.weights.require(version)
        try:
            return self._serve(num_requests, peers, request_timeout)
        except BaseException:
            self._close_peers()
            raise

    def _serve(self, num_requests: int, peers: int, timeout: float) -> dict[str, float]:
        self._accept(peers, timeout)
        infer = waited = 0.0
        served = passes = 0
        while served < num_requests:
            start = time.perf_counter()
            ready = wait_links(self._peers, timeout)
            if not ready:
                names = sorted(link.peer for link in self._peers)
                raise TimeoutError(
                    f"rollout rank {self.rank}: no request within {timeout} s from {names}"
                )
            requests = [link.recv() for link in ready]
            mid = time.perf_counter()
            replies = self.responder.answer(requests)
            for link, reply in zip(ready, replies, strict=True):
                link.send(reply)
            infer += time.perf_counter() - mid
            waited += mid - start
            served += len(ready)
            passes += 1
        return {
            "rollout/requests": float(served),
            "rollout/forward_passes": float(passes),
            "time/rollout_infer": infer,
            "time/rollout_wait": waited,
        }

    def _accept(self, peers: int, timeout: float) -> None:
        """Accept links until ``peers`` stages are connected and authenticated."""
        if len(self._peers) >= peers:
            return
        if self._listener is None:
            raise RuntimeError(f"rollout rank {self.rank}: call open_endpoint before serve")
        self._peers += self._listener.accept(peers - len(self._peers), timeout)

    def _close_peers(self) -> None:
        for link in self._peers:
            link.close()
        self._peers.clear()

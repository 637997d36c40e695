"""EmbodiedRolloutWorker: an inference copy of the policy serving env workers' requests."""

from __future__ import annotations

import hmac
import socket
import time
import warnings
from collections.abc import Mapping
from multiprocessing.connection import Connection, wait
from typing import Any

import numpy as np
import ray
import torch

from rlinf.core import Worker

from .._actor_critic import build_policy
from .._config import PolicyConfig
from .._spec import ActionSpecLike, ObsSpecLike
from .._weight_sync import resolve_snapshot
from ._responder import ActionResponder
from ._weights import WeightSnapshot

__all__ = ["EmbodiedRolloutWorker"]


class EmbodiedRolloutWorker(Worker):
    """Batched action sampling (action, log-prob, value) with version-checked weights.

    Env workers (or anything speaking the same protocol, see ``rlinf.envs.EnvWorker``)
    connect to the socket opened by :meth:`open_endpoint`, one connection per pipeline
    stage, and exchange one message each way per step:

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
        torch.set_num_threads(torch_threads)
        # ``act`` called through Ray gets read-only zero-copy arrays; the policy only reads
        # them, so torch's warning about non-writable arrays is noise here.
        warnings.filterwarnings("ignore", message="The given NumPy array is not writable")
        torch.manual_seed(seed + 7919 * (self.rank + 1))
        self.policy = build_policy(policy_config, obs_spec, action_spec).to(self.device)
        self.responder = ActionResponder(self.policy)
        self.weights = self.responder.weights
        self._listener: socket.socket | None = None
        self._token = b""
        self._peers: dict[Connection, Any] = {}

    def get_version(self) -> int:
        """Version of the loaded weights (-1 before the first load)."""
        return self.weights.version

    def load_weights(self, snapshot: WeightSnapshot | ray.ObjectRef) -> int:
        """Load the next weight version (raises ``StaleWeightsError`` when out of order).

        ``snapshot`` may be an object-store reference (the actor puts one snapshot and every
        rank fetches it; Ray does not resolve references nested in arguments).
        """
        self.weights.load(resolve_snapshot(snapshot))
        return self.weights.version

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
            action, logp, value = self.policy.act(obs, deterministic)
        return {
            "action": action.cpu().numpy(),
            "log_prob": logp.cpu().numpy(),
            "value": value.cpu().numpy(),
        }

    def open_endpoint(self, token: bytes) -> tuple[str, int, bytes]:
        """Listen for env workers; returns the endpoint ``(host, port, token)`` they connect
        to. Only connections that first send ``token`` are served."""
        if len(token) < 16:
            raise ValueError("the endpoint token must have at least 16 bytes")
        if self._listener is None:
            host = ray.util.get_node_ip_address()
            self._listener = socket.create_server((host, 0), backlog=128)
        self._token = bytes(token)
        host, port = self._listener.getsockname()[:2]
        return host, port, self._token

    def serve(
        self, num_requests: int, peers: int, *, version: int, request_timeout: float = 120.0
    ) -> dict[str, float]:
        """Answer ``num_requests`` requests from ``peers`` connected stages (see the class
        doc), in arrival order, then return.

        Args:
            num_requests: requests to answer over all peers.
            version: the weight version to act with.
            peers: stage connections this rank serves; missing ones are accepted first.
            request_timeout: longest wait for a connection or a request (named so as not
                to clash with ``WorkerGroup.call``'s ``timeout``).

        Returns ``{"rollout/requests", "rollout/forward_passes", "time/rollout_infer",
        "time/rollout_wait"}``.

        Raises:
            StaleWeightsError: before serving anything, unless ``version`` is loaded.
            TimeoutError, ConnectionError: a peer stayed silent or went away; every
            connection is then closed, so the peers fail at once instead of waiting.
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
            ready = wait(list(self._peers), timeout)
            if not ready:
                names = sorted(map(str, self._peers.values()))
                raise TimeoutError(
                    f"rollout rank {self.rank}: no request within {timeout} s from {names}"
                )
            requests = [self._receive(conn) for conn in ready]
            mid = time.perf_counter()
            replies = self.responder.answer(requests)
            for conn, reply in zip(ready, replies, strict=True):
                conn.send(reply)
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
        """Accept connections until ``peers`` stages are connected and authenticated."""
        if len(self._peers) >= peers:
            return
        if self._listener is None:
            raise RuntimeError(f"rollout rank {self.rank}: call open_endpoint before serve")
        deadline = time.monotonic() + timeout
        while len(self._peers) < peers:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(
                    f"rollout rank {self.rank}: {len(self._peers)} of {peers} env stages "
                    f"connected within {timeout} s"
                )
            self._listener.settimeout(remaining)
            try:
                sock, _ = self._listener.accept()
            except TimeoutError:
                continue
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            sock.settimeout(None)
            conn = Connection(sock.detach())
            try:
                ok = conn.poll(remaining) and hmac.compare_digest(
                    conn.recv_bytes(maxlength=len(self._token)), self._token
                )
                hello = conn.recv() if ok and conn.poll(remaining) else None
            except (EOFError, OSError):
                ok, hello = False, None
            if not ok or hello is None:
                # Not one of ours (or it gave up): drop it and keep waiting for the stages.
                conn.close()
                continue
            self._peers[conn] = hello

    def _receive(self, conn: Connection) -> dict[str, Any]:
        try:
            return conn.recv()
        except (EOFError, OSError) as e:
            raise ConnectionError(
                f"rollout rank {self.rank}: {self._peers.get(conn)} closed its connection "
                f"(it failed or died; its own error says why): {type(e).__name__} {e}"
            ) from e

    def _close_peers(self) -> None:
        for conn in self._peers:
            conn.close()
        self._peers.clear()

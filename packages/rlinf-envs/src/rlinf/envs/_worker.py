"""EnvWorker: a share of the envs, stepped in pipeline stages, talking to rollout workers.

The worker knows nothing about policies (rlinf.envs never imports rlinf.models): it sends
observation requests as plain dicts of numpy arrays and records whatever per-env arrays the
replies carry, so any rollout worker that speaks the protocol below can drive it.

Transport: each stage holds one direct connection (TCP, ``multiprocessing.connection``
framing, pickled dicts) to the rollout worker that serves it. A step's exchange is one
message each way between the two processes, with no Ray call and no third process on the
path: through a channel the same exchange took four Ray calls to the hosting actor (about
8 ms per step on a loaded 2-core machine, against 0.1 ms for a socket round trip). The
rollout side listens; an *endpoint* is ``(host, port, token)`` and a connecting stage first
sends ``token`` (so a stray process cannot feed pickles to the rollout), then its identity
:func:`stage_reply_key`. Connections are opened on a stage's first rollout and reused.

Protocol, per pipeline stage (``n`` envs), on its connection:

* request (env -> rollout): ``{"obs": obs | None, "final": (index [m], obs rows) | None}``.
  ``obs`` is a dict of ``[n, ...]`` arrays. ``final`` describes the state each env reached
  at the end of the previous step: rows ``index`` of it (the envs whose episode ended, so
  that an auto-reset replaced the observation) are given as ``final_obs`` rows ``[m, ...]``;
  every other row equals ``obs``. Step 0 of a rollout sends ``final=None``; steps
  ``1..T-1`` send both; a last request after step ``T`` sends ``obs=None`` and every row in
  ``final``.
* reply (rollout -> env): ``{"action": [n, ...] (when obs was sent), "record": {name:
  [n, ...]}, "record_prev": {name: [n, ...]}}``; ``record`` arrays are stored at this step,
  ``record_prev`` at the previous one (e.g. ``V(final_obs)``).

Replies are small (actions and a few per-env numbers), so they never fill a socket buffer
and a stage's large request can never deadlock against another stage's reply.

In-process policy: given a ``responder_factory``, the worker builds a :class:`StageResponder`
(the policy, e.g. ``rlinf.models.embodied.ActionResponder``) in its own process and a
rollout without endpoints answers every request by a direct call, with the same protocol
and bookkeeping. Where env and rollout would share a device anyway, that removes the
per-step hand-off between two processes (on HalfCheetah with 16 envs it took about half of
a rollout's time); weights then come to the env worker (:meth:`EnvWorker.load_weights`).
"""

from __future__ import annotations

import dataclasses
import socket
import time
from collections.abc import Callable, Sequence
from multiprocessing.connection import Connection
from typing import Any, Protocol

import numpy as np

from rlinf.core import Worker

from ._base import VectorEnv
from ._config import EnvConfig
from ._registry import make_env
from ._spec import ActionSpec, ArraySpec, Obs
from ._worker_state import restore_worker_state, worker_state

__all__ = ["Endpoint", "EnvWorker", "StageResponder", "stage_reply_key"]

Endpoint = tuple[str, int, bytes]
"""``(host, port, token)`` of a rollout worker's listening socket."""


class StageResponder(Protocol):
    """The policy side of the protocol, called in the env worker's process."""

    def answer(self, requests: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
        """Replies to ``requests``, in order."""
        ...

    def load_weights(self, snapshot: Any) -> int:
        """Load the next weight version; returns it."""
        ...

    def require(self, version: int) -> None:
        """Raise unless exactly ``version`` is loaded."""
        ...


def stage_reply_key(rank: int, stage: int) -> tuple[str, int, int]:
    """The identity stage ``stage`` of env worker ``rank`` announces when it connects."""
    return ("env", rank, stage)


class EnvWorker(Worker):
    """Owns ``config.num_envs`` envs, split into ``num_stages`` vector envs (stages).

    While stage ``s`` is simulated here, the rollout can already be computing actions for
    stage ``s + 1``: every stage's request is sent as soon as its observations exist, and
    the worker steps stages in order as their replies arrive.

    Env ``j`` of stage ``s`` is seeded ``config.seed + rank * num_envs + s * n + j`` (``n``
    envs per stage), so ranks and stages never share an episode stream.

    Args:
        config: env config of *this worker's* share (``num_envs`` divisible by
            ``num_stages``).
        num_stages: pipeline stages.
        responder_factory: ``(observation_spec, action_spec, rank=rank) ->
            StageResponder``, called once here, for rollouts answered in this process
            (``rollout(None, ...)``).
    """

    def __init__(
        self,
        config: EnvConfig,
        num_stages: int = 1,
        responder_factory: Callable[..., StageResponder] | None = None,
    ) -> None:
        super().__init__()
        if num_stages < 1 or config.num_envs % num_stages:
            raise ValueError(
                f"env worker {self.rank}: num_envs {config.num_envs} is not divisible into "
                f"{num_stages} pipeline stages"
            )
        self.num_stages = num_stages
        per_stage = config.num_envs // num_stages
        base = config.seed + self.rank * config.num_envs
        self._seeds = [base + s * per_stage for s in range(num_stages)]
        self.envs: list[VectorEnv] = [
            make_env(dataclasses.replace(config, num_envs=per_stage, seed=seed))
            for seed in self._seeds
        ]
        self._obs: list[Obs | None] = [None] * num_stages
        self._conns: list[tuple[Endpoint, Connection] | None] = [None] * num_stages
        self._responder = (
            responder_factory(*self.specs(), rank=self.rank) if responder_factory else None
        )

    def specs(self) -> tuple[dict[str, ArraySpec], ActionSpec]:
        """``(observation_spec, action_spec)`` of one env."""
        return dict(self.envs[0].observation_spec), self.envs[0].action_spec

    def reset(self, seed_offset: int = 0) -> None:
        """Reset every stage now (e.g. after resuming), with seeds shifted by ``seed_offset``."""
        for s, env in enumerate(self.envs):
            self._obs[s] = env.reset(seed=self._seeds[s] + seed_offset)

    def get_state(self) -> dict[str, Any] | None:
        """What a resumed run needs to continue this worker's episodes exactly: every
        stage's env state, the observations held for the next rollout and the in-process
        policy's sampling RNG (``rlinf.envs._worker_state``). None when an env kind cannot
        be captured exactly (a resume then starts fresh episodes, see :meth:`reset`)."""
        return worker_state(self.envs, self._seeds, self._obs, self._responder)

    def set_state(self, state: dict[str, Any]) -> None:
        """Restore :meth:`get_state` (of a worker of the same rank and config).

        Raises:
            ValueError: ``state`` was saved with another env id, env count, chunk size,
                seeds or stage split, so it cannot continue these envs.
        """
        where = f"env worker {self.rank}"
        self._obs = restore_worker_state(where, self.envs, self._seeds, self._responder, state)

    def load_weights(self, snapshot: Any) -> int:
        """Load the in-process policy's next weight version (a snapshot or an object-store
        reference to one); returns the version now held."""
        if self._responder is None:
            raise RuntimeError(
                f"env worker {self.rank} has no in-process policy (no responder_factory)"
            )
        import ray

        if isinstance(snapshot, ray.ObjectRef):
            snapshot = ray.get(snapshot)
        return self._responder.load_weights(snapshot)

    def rollout(
        self,
        endpoints: Sequence[Endpoint] | None,
        num_steps: int,
        *,
        reply_timeout: float = 120.0,
        version: int | None = None,
    ) -> dict[str, Any]:
        """Run ``num_steps`` steps of every stage, exchanging requests and replies.

        Args:
            endpoints: per stage, the endpoint of the rollout worker that serves it; None:
                the in-process policy answers (see ``responder_factory``).
            num_steps: ``T``.
            reply_timeout: seconds to wait for any reply (a stuck rollout never hangs the
                worker; named so as not to clash with ``WorkerGroup.call``'s ``timeout``).
            version: with the in-process policy, the weight version it must hold.

        Returns:
            ``{"trajectory": {"obs": {k: [N, T, ...]}, "actions": [N, T, ...],
            "rewards", "terminated", "truncated": [N, T], <recorded names>: [N, T, ...]},
            "episodes": {"return", "length", "success": [E]}, "env_steps": int,
            "time/env_step": s, "time/env_wait": s}`` (and ``"time/policy": s`` with the
            in-process policy); ``N`` is this worker's envs, stages concatenated in order.

        Raises:
            TimeoutError: no reply within ``reply_timeout``.
            ConnectionError: a rollout worker could not be reached or closed its connection.
        """
        if endpoints is None:
            if self._responder is None:
                raise RuntimeError(
                    f"env worker {self.rank}: no rollout endpoints and no in-process policy"
                )
            if version is None:
                raise ValueError("an in-process rollout needs the weight version to act with")
            self._responder.require(version)
        elif len(endpoints) != self.num_stages:
            raise ValueError(f"{len(endpoints)} rollout endpoints for {self.num_stages} stages")
        try:
            return self._rollout(endpoints, num_steps, reply_timeout)
        except BaseException:
            # The peer's state is unknown now (a request may be half answered): start over
            # with fresh connections next time.
            self._disconnect()
            raise

    def _rollout(
        self, endpoints: Sequence[Endpoint] | None, num_steps: int, timeout: float
    ) -> dict[str, Any]:
        links: list[_LocalLink] = []
        if endpoints is None:
            assert self._responder is not None
            links = [_LocalLink(self._responder) for _ in range(self.num_stages)]
            conns: Sequence[Any] = links
        else:
            conns = [self._connect(s, tuple(endpoints[s]), timeout) for s in range(self.num_stages)]
        for s in range(self.num_stages):
            if self._obs[s] is None:
                self._obs[s] = self.envs[s].reset()
        bufs = [_StageBuffer() for _ in range(self.num_stages)]
        episodes: dict[str, list[np.ndarray]] = {"return": [], "length": [], "success": []}
        step_time = wait_time = 0.0
        for s in range(self.num_stages):
            conns[s].send({"obs": self._obs[s], "final": None})
        for t in range(num_steps + 1):
            for s, env in enumerate(self.envs):
                start = time.perf_counter()
                reply = self._receive(s, conns[s], timeout)
                wait_time += time.perf_counter() - start
                bufs[s].record(reply)
                if t == num_steps:
                    continue
                start = time.perf_counter()
                result = env.step(np.asarray(reply["action"]))
                step_time += time.perf_counter() - start
                last = t + 1 == num_steps
                # Only the rows an auto-reset replaced travel: the rest equal the new obs.
                done = np.ones(env.num_envs, bool) if last else np.asarray(result.info.done)
                index = np.flatnonzero(done)
                rows = {k: np.asarray(v)[index] for k, v in result.info.final_obs.items()}
                # Request first, bookkeeping after: the rollout infers meanwhile.
                conns[s].send({"obs": None if last else result.obs, "final": (index, rows)})
                bufs[s].step(self._obs[s], reply["action"], result)
                for k, v in result.info.completed_episodes().items():
                    if k in episodes:
                        episodes[k].append(v)
                self._obs[s] = result.obs
        trajectory = _StageBuffer.concat([b.arrays() for b in bufs])
        n = sum(env.num_envs for env in self.envs)
        out = {
            "trajectory": trajectory,
            "episodes": {k: np.concatenate(v) if v else np.zeros(0) for k, v in episodes.items()},
            "env_steps": n * num_steps * self.envs[0].chunk_size,
            "time/env_step": step_time,
            "time/env_wait": wait_time,
        }
        if links:
            out["time/policy"] = sum(link.seconds for link in links)
        return out

    def _connect(self, stage: int, endpoint: Endpoint, timeout: float) -> Connection:
        """The stage's connection to ``endpoint``, opened (and announced) on first use."""
        cached = self._conns[stage]
        if cached is not None and cached[0] == endpoint:
            return cached[1]
        if cached is not None:
            cached[1].close()
        host, port, token = endpoint
        try:
            sock = socket.create_connection((host, port), timeout=timeout)
        except OSError as e:
            raise ConnectionError(
                f"env worker {self.rank} stage {stage}: cannot connect to the rollout worker "
                f"at {host}:{port}: {e}"
            ) from e
        # Small messages must leave at once, not wait for Nagle's algorithm to batch them.
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.settimeout(None)
        conn = Connection(sock.detach())
        conn.send_bytes(token)
        conn.send(stage_reply_key(self.rank, stage))
        self._conns[stage] = (endpoint, conn)
        return conn

    def _receive(self, stage: int, conn: Any, timeout: float) -> dict[str, Any]:
        where = f"env worker {self.rank} stage {stage}"
        try:
            reply = conn.recv() if conn.poll(timeout) else None
        except (EOFError, OSError) as e:
            raise ConnectionError(
                f"{where}: the rollout worker closed its connection (it failed or died; its "
                f"own error says why): {type(e).__name__} {e}"
            ) from e
        if reply is None:
            raise TimeoutError(f"{where}: no reply from the rollout worker within {timeout} s")
        return reply

    def _disconnect(self) -> None:
        for s, cached in enumerate(self._conns):
            if cached is not None:
                cached[1].close()
            self._conns[s] = None

    def close(self) -> None:
        """Close every stage's envs and connections."""
        self._disconnect()
        for env in self.envs:
            env.close()


class _LocalLink:
    """Stands in for a stage's connection when the policy runs in this process: ``send``
    answers the request at once, ``recv`` hands the reply back (one request in flight, as
    on a connection)."""

    def __init__(self, responder: StageResponder) -> None:
        self.responder = responder
        self.seconds = 0.0
        self._reply: dict[str, Any] | None = None

    def send(self, request: dict[str, Any]) -> None:
        start = time.perf_counter()
        self._reply = self.responder.answer([request])[0]
        self.seconds += time.perf_counter() - start

    def poll(self, timeout: float) -> bool:
        return self._reply is not None

    def recv(self) -> dict[str, Any]:
        reply, self._reply = self._reply, None
        assert reply is not None
        return reply


class _StageBuffer:
    """Per-step arrays of one stage, stacked to ``[n, T, ...]`` at the end."""

    def __init__(self) -> None:
        self.obs: list[Obs] = []
        self.cols: dict[str, list[np.ndarray]] = {
            k: [] for k in ("actions", "rewards", "terminated", "truncated")
        }
        self.records: dict[str, list[np.ndarray]] = {}

    def record(self, reply: dict[str, Any]) -> None:
        for name, value in reply.get("record_prev", {}).items():
            # Belongs to the step just taken: its list is one shorter than the step count.
            self.records.setdefault(name, []).append(np.asarray(value))
        for name, value in reply.get("record", {}).items():
            self.records.setdefault(name, []).append(np.asarray(value))

    def step(self, obs: Obs, action: Any, result: Any) -> None:
        self.obs.append(obs)
        self.cols["actions"].append(np.asarray(action))
        self.cols["rewards"].append(np.asarray(result.reward))
        self.cols["terminated"].append(np.asarray(result.terminated))
        self.cols["truncated"].append(np.asarray(result.truncated))

    def arrays(self) -> dict[str, Any]:
        t = len(self.obs)
        out: dict[str, Any] = {
            "obs": {k: np.stack([o[k] for o in self.obs], axis=1) for k in self.obs[0]}
        }
        for name, values in {**self.cols, **self.records}.items():
            if len(values) != t:
                raise RuntimeError(
                    f"rollout reply field {name!r} came {len(values)} times for {t} steps"
                )
            out[name] = np.stack(values, axis=1)
        return out

    @staticmethod
    def concat(parts: list[dict[str, Any]]) -> dict[str, Any]:
        out: dict[str, Any] = {
            "obs": {k: np.concatenate([p["obs"][k] for p in parts]) for k in parts[0]["obs"]}
        }
        for name in parts[0]:
            if name != "obs":
                out[name] = np.concatenate([p[name] for p in parts])
        return out

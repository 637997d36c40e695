"""EnvWorker: a share of the envs, stepped in pipeline stages, talking to rollout workers.

The worker knows nothing about policies (rlinf.envs never imports rlinf.models): it sends
observation requests as plain dicts of numpy arrays and records whatever per-env arrays the
replies carry, so any rollout worker that speaks the protocol below can drive it.

Transport: each stage holds one :class:`rlinf.channel.DirectLink` (a token-authenticated
TCP connection) to the rollout worker that serves it. A step's exchange is one message each
way between the two processes, with no Ray call and no third process on the path: through
a channel the same exchange took four Ray calls to the hosting actor (about 8 ms per step
on a loaded 2-core machine, against 0.1 ms for a link round trip). The rollout side opens a
:class:`rlinf.channel.LinkListener`; a stage connects to its :class:`~rlinf.channel.LinkAddress`
under the name :func:`stage_link_name`. Links are opened on a stage's first rollout and
reused.

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

The collected steps form a :class:`rlinf.core.Trajectory` (``records`` holds the replies'
recorded fields). With ``rollout(..., store=True)`` the worker puts it into the object
store itself (``rlinf.channel.put``: Ray's, or in place on the in-process backend) and returns only the reference, so the trajectory reaches the actor ranks
without passing through the driver; the rest of the result is a few counters.

In-process policy: given a ``responder_factory``, the worker builds a :class:`StageResponder`
(the policy, e.g. ``rlinf.models.embodied.ActionResponder``) in its own process and a
rollout without endpoints answers every request by a direct call, with the same protocol
and bookkeeping. Where env and rollout would share a device anyway, that removes the
per-step hand-off between two processes (on HalfCheetah with 16 envs it took about half of
a rollout's time); weights then come to the env worker (:meth:`EnvWorker.load_weights`).
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

import rlinf.channel as object_store
from rlinf.channel import DirectLink, LinkAddress
from rlinf.core import Trajectory, Worker

from ._base import VectorEnv
from ._config import EnvConfig
from ._registry import make_env
from ._spec import ActionSpec, ArraySpec, Obs
from ._stage import ActionBounds, LocalLink, StageBuffer, StageResponder
from ._worker_state import restore_worker_state, worker_state

__all__ = ["EnvWorker", "StageResponder", "stage_link_name"]


def stage_link_name(rank: int, stage: int) -> str:
    """The name stage ``stage`` of env worker ``rank`` connects under (errors on the rollout
    side name it)."""
    return f"env worker {rank} stage {stage}"


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
        self._links: list[tuple[LinkAddress, DirectLink] | None] = [None] * num_stages
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
        if object_store.is_ref(snapshot):
            snapshot = object_store.get(snapshot)
        return self._responder.load_weights(snapshot)

    def rollout(
        self,
        endpoints: Sequence[LinkAddress] | None,
        num_steps: int,
        *,
        reply_timeout: float = 120.0,
        version: int | None = None,
        store: bool = False,
    ) -> dict[str, Any]:
        """Run ``num_steps`` steps of every stage, exchanging requests and replies.

        Args:
            endpoints: per stage, the link address of the rollout worker that serves it;
                None: the in-process policy answers (see ``responder_factory``).
            num_steps: ``T``.
            reply_timeout: seconds to wait for any reply (a stuck rollout never hangs the
                worker; named so as not to clash with ``WorkerGroup.call``'s ``timeout``).
            version: with the in-process policy, the weight version it must hold.
            store: put the trajectory and the episode returns into Ray's object store from
                here and return their references (the driver then never holds them).

        Returns:
            ``{"trajectory": Trajectory [N, T, ...] (records: the replies' recorded names),
            "episode_returns": [E], "episodes": {"count", "return_sum", "length_sum",
            "success_count", "success_sum"}, "actions_out_of_bounds": int,
            "action_components": int, "env_steps": int, "time/env_step": s,
            "time/env_wait": s}`` (and ``"time/policy": s`` with the in-process policy);
            ``N`` is this worker's envs, stages concatenated in order. With ``store``,
            ``trajectory`` and ``episode_returns`` are object references.
            ``actions_out_of_bounds`` counts the continuous action components outside the
            action space (clipped unless ``clip_actions=False``), of ``action_components``.

        Raises:
            rlinf.channel.LinkTimeout (a TimeoutError): no reply within ``reply_timeout``.
            rlinf.channel.PeerDied, LinkRefused (ConnectionErrors): a rollout worker could
                not be reached, refused the token, or went away.
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
            out = self._rollout(endpoints, num_steps, reply_timeout)
        except BaseException:
            # The peer's state is unknown now (a request may be half answered): start over
            # with fresh connections next time.
            self._disconnect()
            raise
        if store:
            out["trajectory"] = object_store.put(out["trajectory"])
            out["episode_returns"] = object_store.put(out["episode_returns"])
        return out

    def _rollout(
        self, endpoints: Sequence[LinkAddress] | None, num_steps: int, timeout: float
    ) -> dict[str, Any]:
        links: list[LocalLink] = []
        if endpoints is None:
            assert self._responder is not None
            links = [LocalLink(self._responder) for _ in range(self.num_stages)]
            conns: Sequence[Any] = links
        else:
            conns = [self._connect(s, endpoints[s], timeout) for s in range(self.num_stages)]
        for s in range(self.num_stages):
            if self._obs[s] is None:
                self._obs[s] = self.envs[s].reset()
        bufs = [StageBuffer() for _ in range(self.num_stages)]
        bounds = ActionBounds(self.envs[0].action_spec)
        episodes: dict[str, list[np.ndarray]] = {"return": [], "length": [], "success": []}
        step_time = wait_time = 0.0
        for s in range(self.num_stages):
            conns[s].send({"obs": self._obs[s], "final": None})
        for t in range(num_steps + 1):
            for s, env in enumerate(self.envs):
                start = time.perf_counter()
                reply = conns[s].recv(timeout)
                wait_time += time.perf_counter() - start
                bufs[s].record(reply)
                if t == num_steps:
                    continue
                bounds.count(reply["action"])
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
        trajectory = Trajectory.concat([b.trajectory() for b in bufs])
        n = sum(env.num_envs for env in self.envs)
        eps = {k: np.concatenate(v) if v else np.zeros(0) for k, v in episodes.items()}
        success = eps["success"][~np.isnan(eps["success"])]
        out = {
            "trajectory": trajectory,
            "episode_returns": eps["return"],
            "episodes": {
                "count": len(eps["return"]),
                "return_sum": float(eps["return"].sum()),
                "length_sum": float(eps["length"].sum()),
                "success_count": len(success),
                "success_sum": float(success.sum()),
            },
            "actions_out_of_bounds": bounds.outside,
            "action_components": bounds.total,
            "env_steps": n * num_steps * self.envs[0].chunk_size,
            "time/env_step": step_time,
            "time/env_wait": wait_time,
        }
        if links:
            out["time/policy"] = sum(link.seconds for link in links)
        return out

    def _connect(self, stage: int, address: LinkAddress, timeout: float) -> DirectLink:
        """The stage's link to ``address``, opened on first use and then reused."""
        cached = self._links[stage]
        if cached is not None and cached[0] == address:
            return cached[1]
        if cached is not None:
            cached[1].close()
        link: DirectLink = DirectLink.connect(
            address, name=stage_link_name(self.rank, stage), timeout=timeout
        )
        self._links[stage] = (address, link)
        return link

    def _disconnect(self) -> None:
        for s, cached in enumerate(self._links):
            if cached is not None:
                cached[1].close()
            self._links[s] = None

    def close(self) -> None:
        """Close every stage's envs and connections."""
        self._disconnect()
        for env in self.envs:
            env.close()

"""OffPolicyFlow: env workers keep collecting while the learner updates from its buffer.

One iteration (``runner.horizon`` steps of every env)::

    env workers (in-process actor, weights v) --Trajectory refs--> driver (refs only)
        |  collecting chunk k                     learner.step(chunk k-1 refs): add to
        |                                         buffer, make the utd_ratio updates due
    wait both -> if >= weight_push_every updates since the last push:
                 learner --WeightSnapshot v+1 (object store)--> every env worker

Collection of chunk ``k`` overlaps the updates on everything up to chunk ``k-1``; the
collectors act with weights that lag the learner by the updates made since the last push
(``train/staleness``). The policy runs inside the env workers
(``EnvWorker(responder_factory=...)``): a small MLP's per-step hand-off to a separate
rollout process would cost more than its inference. Payloads (trajectories, weights) go
through the object store; the driver forwards references and receives metrics.
"""

from __future__ import annotations

import dataclasses
import functools
import time
import uuid
from typing import Any

import rlinf.channel as object_store
from rlinf.core import Cluster, WorkerGroup, best_effort, resolve_torch_threads

from .._config import PolicyConfig
from .._weight_sync import sync_weights
from ._collect import episode_metrics
from ._flow_config import EmbodiedFlowConfig, EnvSectionLike
from ._offpolicy_config import OffPolicyConfig
from ._offpolicy_responder import build_offpolicy_responder
from ._offpolicy_worker import OffPolicyLearnerWorker

__all__ = ["OffPolicyFlow"]


class OffPolicyFlow:
    """Starts the cluster, the env workers (with the actor in-process) and the learner.

    Args:
        config: names, placement (``actor``: the learner; ``env``: the collectors;
            ``rollout`` is reserved but unused) and runner limits.
        env_worker: the env worker class (``rlinf.envs.EnvWorker``).
        env: the envs over all env workers.
        policy: the actor's trunk.
        algo: :class:`OffPolicyConfig`.
    """

    def __init__(
        self,
        config: EmbodiedFlowConfig,
        *,
        env_worker: type,
        env: EnvSectionLike,
        policy: PolicyConfig,
        algo: OffPolicyConfig,
    ) -> None:
        self.config = config
        r = config.runner
        self.steps_per_iteration = env.num_envs * r.horizon * env.chunk_size
        self.total_iterations = r.total_env_steps // self.steps_per_iteration
        self.algo = algo
        self.version = -1
        self.pushed_at = 0  # learner updates at the last push
        self.pending: list[Any] = []
        self.pending_version = 0
        self._episode_refs: list[Any] = []
        backend = config.cluster.choose_backend(
            config.placement,
            config.components,
            unsupported="the off-policy flow runs on Ray (not built for the in-process backend)",
        )
        self.cluster = Cluster(config.cluster.cluster_config(backend))
        try:
            pgs = self.cluster.allocate(dict(config.placement), components=config.components)
            tag = uuid.uuid4().hex[:8]
            threads = resolve_torch_threads(r, config.cluster)
            ranks = pgs.placement["env"].world_size
            env_cfg = dataclasses.replace(
                env, num_envs=env.num_envs // ranks, seed=env.seed + 1_000_003 * r.seed
            )
            factory = functools.partial(
                build_offpolicy_responder, policy, seed=r.seed, torch_threads=threads
            )
            # Both groups' processes start together; the learner is built once the env's
            # specs are known.
            self.env = self.cluster.spawn(env_worker, pgs, "env", name=f"{config.name}-env-{tag}")
            self.learner = self.cluster.spawn(
                OffPolicyLearnerWorker, pgs, "actor", name=f"{config.name}-learner-{tag}"
            )
            self.env.start((env_cfg, 1), {"responder_factory": factory}, timeout=r.timeout_s).wait()
            obs_spec, action_spec = self.env.call("specs", ranks=0).wait(r.timeout_s)[0]
            self.learner.start(
                (algo, policy, obs_spec, action_spec),
                {"seed": r.seed, "torch_threads": threads},
                timeout=r.timeout_s,
            ).wait()
            self.mode = pgs.placement.mode
        except BaseException:
            self.cluster.shutdown()
            raise

    @property
    def last_episode_returns(self) -> Any:
        """Per-episode returns ``[E]`` finished in the last iteration (fetched on access)."""
        import numpy as np

        if not self._episode_refs:
            return np.zeros(0)
        return np.concatenate(object_store.get(self._episode_refs))

    def call_learner(self, method: str, *args: Any) -> Any:
        """Call a learner method and return its result."""
        return self.learner.call(method, *args).wait(self.config.runner.timeout_s)[0]

    def push_weights(self) -> int:
        """Send the learner's actor to every env worker; returns the version they hold."""
        self.version = sync_weights(self.learner, self.env, self.config.runner.timeout_s)
        self.pushed_at = self.call_learner("updates")
        return self.version

    def iteration(self) -> tuple[dict[str, float], int]:
        """Collect one chunk while the learner trains on the previous ones; push weights
        when due. Returns ``(metrics, env steps collected)``."""
        r = self.config.runner
        start = time.perf_counter()
        collect = self.env.call(
            "rollout",
            None,
            r.horizon,
            reply_timeout=r.timeout_s,
            version=self.version,
            store=True,
            timeout=r.timeout_s * 2,
        )
        learn = self.learner.call("step", self.pending, self.pending_version)
        results = collect.wait(r.timeout_s * 2)
        t_collect = time.perf_counter() - start
        metrics = learn.wait(r.timeout_s * 2)[0]
        t_learn = time.perf_counter() - start
        self.pending = [res["trajectory"] for res in results]
        self.pending_version = self.version
        self._episode_refs = [res["episode_returns"] for res in results]
        t_push = 0.0
        if metrics["train/updates"] - self.pushed_at >= self.algo.weight_push_every:
            before = time.perf_counter()
            self.push_weights()
            t_push = time.perf_counter() - before
        steps = sum(res["env_steps"] for res in results)
        total = time.perf_counter() - start
        metrics.update(episode_metrics(results))
        metrics.update(
            {
                "train/weight_version": float(self.version),
                "time/rollout": t_collect,
                "time/update": t_learn,
                "time/weight_sync": t_push,
                "time/iteration": total,
                "time/env_step": max(res["time/env_step"] for res in results),
                "time/rollout_infer": max(res["time/policy"] for res in results),
                "throughput/env_steps_per_s": steps / total,
            }
        )
        return metrics, steps

    def flush(self) -> None:
        """Add the chunk still waiting for the learner to its buffer (before a checkpoint,
        so the saved buffer holds every collected transition); the updates it is owed are
        made in the next iteration, as without a checkpoint."""
        if self.pending:
            self.learner.call("step", self.pending, self.pending_version, False).wait(
                self.config.runner.timeout_s * 2
            )
            self.pending = []

    def reset_envs(self, seed_offset: int) -> None:
        """Reset every env worker (a resumed run starts fresh episodes)."""
        self.env.call("reset", seed_offset).wait(self.config.runner.timeout_s)

    def shutdown(self) -> None:
        """Close the envs, kill the workers, stop Ray if this flow started it."""
        group = getattr(self, "env", None)
        if isinstance(group, WorkerGroup):
            best_effort(lambda: group.call("close").wait(30))
        self.cluster.shutdown()

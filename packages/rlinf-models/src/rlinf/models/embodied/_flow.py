"""EmbodiedFlow: env workers <-> rollout workers, actor update, weight sync.

One training iteration::

    env workers --requests (obs, final_obs rows)--> rollout workers   (one DirectLink
    env workers <--replies (actions, logp, V)------ rollout workers    per pipeline stage)
    env workers --Trajectory [N, T] (object store)--> actor.update (GAE, PPO) --> weights v+1
    actor --WeightSnapshot (object store)--> every rollout rank (checks v+1)
          (or, runner.weight_sync=collective: bucketed broadcasts from the actor ranks)

Payloads never pass through the driver: it hands on object-store references (trajectories
put by env workers, weights put by the actor) and receives only counters and metrics (a
few KB per iteration, whatever ``num_envs`` and ``horizon``).

The same code runs collocated, disaggregated or hybrid (the placement decides where each
group's processes land). The app hands in its env worker class (``rlinf.envs.EnvWorker``;
rlinf.models never imports rlinf.envs) and env config. The LLM counterpart is
:class:`rlinf.models.llm.LLMRLFlow`.
"""

from __future__ import annotations

import dataclasses
import functools
import secrets
import time
import uuid
from typing import Any

import numpy as np

import rlinf.channel as object_store
from rlinf.core import (
    Cluster,
    WorkerGroup,
    best_effort,
    process_age_s,
    resolve_torch_threads,
)

from .._config import PolicyConfig
from .._weight_sync import (
    StagedWeights,
    choose_weight_sync,
    load_staged_weights,
    stage_weights,
    sync_weights,
)
from ._actor_worker import EmbodiedActorWorker
from ._collect import Collect, Collected, episode_metrics, wait_both
from ._config import UpdaterConfig
from ._dynamic import UpdateLending
from ._flow_config import EmbodiedFlowConfig, EnvSectionLike, inprocess_unsupported
from ._link_plan import plan_links
from ._responder import build_responder
from ._rollout_worker import EmbodiedRolloutWorker

__all__ = ["EmbodiedFlow"]


class EmbodiedFlow:
    """Starts the cluster and the env / actor / rollout groups, then runs iterations.

    Args:
        config: names, placement and limits.
        env_worker: the env worker class (``rlinf.envs.EnvWorker``), launched as
            ``env_worker(env, pipeline_stages, responder_factory=...)``.
        env: the envs over *all* env workers (``num_envs`` is the total, split evenly over
            env ranks and then pipeline stages).
        policy: the actor-critic.
        algo: the updater.

    Attributes:
        backend: ``"inprocess"`` (every worker a thread of this process, no Ray: chosen
            by ``cluster.backend``, by default for one-slot placements) or ``"ray"``.
        startup_times: ``time/startup_{driver,ray,workers}_s`` for a run's first metrics row
            (process start to this constructor, starting Ray, building every group).
    """

    def __init__(
        self,
        config: EmbodiedFlowConfig,
        *,
        env_worker: type,
        env: EnvSectionLike,
        policy: PolicyConfig,
        algo: UpdaterConfig,
    ) -> None:
        self.config = config
        self.env_worker_cls = env_worker
        self.env_config = env
        self.policy_config = policy
        self.algo_config = algo
        r = config.runner
        self.steps_per_update = env.num_envs * r.horizon * env.chunk_size
        self.total_updates = r.total_env_steps // self.steps_per_update
        self._episode_refs: list[Any] = []
        self._prefetched: Collected | None = None
        driver_s = process_age_s()
        begin = time.perf_counter()
        self.backend = config.cluster.choose_backend(
            config.placement, config.components, unsupported=inprocess_unsupported(config)
        )
        self.cluster = Cluster(config.cluster.cluster_config(self.backend))
        ray_s = time.perf_counter() - begin
        try:
            self._start()
        except BaseException:
            self.cluster.shutdown()
            raise
        # Where the time to first step went, for the run's first metrics row.
        self.startup_times = {
            "time/startup_driver_s": driver_s,
            "time/startup_ray_s": ray_s,
            "time/startup_workers_s": time.perf_counter() - begin - ray_s,
        }

    def _start(self) -> None:
        cfg, r = self.config, self.config.runner
        pgs = self.cluster.allocate(dict(cfg.placement), components=cfg.components)
        # Unique names: several flows may share one Ray cluster (tests, notebooks), and a
        # killed group's actor names are freed asynchronously.
        tag = uuid.uuid4().hex[:8]
        threads = resolve_torch_threads(r, cfg.cluster)
        env_ranks = pgs.placement["env"].world_size
        env_cfg = dataclasses.replace(
            self.env_config,
            num_envs=self.env_config.num_envs // env_ranks,
            # Different runner seeds give disjoint env seed ranges.
            seed=self.env_config.seed + 1_000_003 * r.seed,
        )
        factory = None
        if r.policy_in_env:
            # Each env worker builds its copy of the policy (seeded by its rank).
            factory = functools.partial(
                build_responder, self.policy_config, seed=r.seed, torch_threads=threads
            )
        # Every group's processes start at once and import their modules together; the
        # workers are built as soon as their arguments are known (the actor and rollout
        # need the env's specs), which cuts start-up to about one process start.
        self.env = self.cluster.spawn(self.env_worker_cls, pgs, "env", name=f"{cfg.name}-env-{tag}")
        dynamic = cfg.scheduler.dynamic
        if dynamic:
            UpdateLending.check(pgs.placement)
        self.actor = self.cluster.spawn(
            EmbodiedActorWorker,
            pgs,
            "actor",
            name=f"{cfg.name}-actor-{tag}",
            **UpdateLending.spawn_options(dynamic),
        )
        self.lending = UpdateLending(pgs.placement, self.actor, r.timeout_s) if dynamic else None
        self.rollout: WorkerGroup | None = None
        if not r.policy_in_env:
            self.rollout = self.cluster.spawn(
                EmbodiedRolloutWorker, pgs, "rollout", name=f"{cfg.name}-rollout-{tag}"
            )
        # Weights go to the env workers when they run the policy; those load snapshots only.
        self.weight_sync = (
            "object_store"
            if self.rollout is None
            else choose_weight_sync(
                r.weight_sync, self.actor, self.rollout, pgs.placement.topology.device_type
            )
        )
        self.env.start(
            (env_cfg, r.pipeline_stages), {"responder_factory": factory}, timeout=r.timeout_s
        ).wait()
        obs_spec, action_spec = self.env.call("specs", ranks=0).wait(r.timeout_s)[0]
        # Overlapped updates train on data one version old: clip around the update's own
        # starting policy rather than the stale rollout policy.
        algo = self.algo_config
        if r.overlap_update:
            algo = dataclasses.replace(algo, decoupled=True)
        worker_kwargs = {"seed": r.seed, "torch_threads": threads}
        actor_kwargs = {**worker_kwargs, "gather_full_state": self.weight_sync == "object_store"}
        starting = [
            self.actor.start(
                (self.policy_config, algo, obs_spec, action_spec, self.total_updates),
                actor_kwargs,
                timeout=r.timeout_s,
            )
        ]
        if self.rollout is not None:
            starting.append(
                self.rollout.start(
                    (self.policy_config, obs_spec, action_spec), worker_kwargs, timeout=r.timeout_s
                )
            )
        for future in starting:
            future.wait()
        self.mode = pgs.placement.mode
        self.endpoints: list[list[Any]] | None = None
        if self.rollout is None:
            return
        # Every (env rank, stage) gets a direct connection to a rollout rank.
        token = secrets.token_bytes(32)
        links = plan_links(
            self.rollout.call("open_endpoint", token).wait(r.timeout_s),
            env_ranks,
            r.pipeline_stages,
            r.horizon,
        )
        self.endpoints, self.requests, self.peers = links.endpoints, links.requests, links.peers

    @property
    def last_episode_returns(self) -> np.ndarray:
        """Per-episode returns ``[E]`` of the last iteration's rollout, for callers that
        average over episodes rather than iterations (e.g. "the last 100 episodes" of
        benchmarks). Fetched from the object store on access: training never needs them."""
        if not self._episode_refs:
            return np.zeros(0)
        return np.concatenate(object_store.get(self._episode_refs))

    def actor_version(self) -> int:
        """The actor's weight version."""
        return self.actor.call("get_version").wait(self.config.runner.timeout_s)[0]

    def sync_weights(self, staged: StagedWeights | None = None) -> int:
        """Push the actor's weights to every rollout rank (:attr:`weight_sync`: the actor
        puts them into the object store and each rank fetches them, or the actor ranks
        broadcast them in buckets); returns the version now loaded everywhere.
        ``staged``: weights the actor already staged (:func:`rlinf.models.stage_weights`,
        object-store path only), so only the loading is left."""
        target = self.rollout if self.rollout is not None else self.env
        r = self.config.runner
        if staged is None:
            return sync_weights(
                self.actor, target, r.timeout_s, self.weight_sync, r.weight_sync_bucket_bytes
            )
        if self.weight_sync == "collective":
            raise ValueError("staged weights exist only on the object-store path")
        return load_staged_weights(target, staged, r.timeout_s)

    def start_collect(self, version: int) -> Collect:
        """Start one rollout of ``horizon`` steps of every env with weights ``version``
        (which every rollout rank must have loaded); :meth:`finish_collect` waits for it."""
        r = self.config.runner
        if self.rollout is None or self.endpoints is None:
            envs = self.env.call(
                "rollout",
                None,
                r.horizon,
                reply_timeout=r.timeout_s,
                version=version,
                store=True,
                timeout=r.timeout_s * 2,
            )
            return Collect(envs, None, version, time.perf_counter())
        envs = self.env.call_per_rank(
            "rollout",
            [(endpoints, r.horizon) for endpoints in self.endpoints],
            reply_timeout=r.timeout_s,
            store=True,
            timeout=r.timeout_s * 2,
        )
        serve = self.rollout.call_per_rank(
            "serve",
            [(n, p) for n, p in zip(self.requests, self.peers, strict=True)],
            version=version,
            request_timeout=r.timeout_s,
            timeout=r.timeout_s * 2,
        )
        return Collect(envs, serve, version, time.perf_counter())

    def finish_collect(self, pending: Collect) -> Collected:
        """Wait for a rollout started by :meth:`start_collect`."""
        timeout = self.config.runner.timeout_s * 2
        if pending.serve is None:
            results = pending.envs.wait(timeout)
            # The env workers answered their own requests: their policy time stands in
            # for the rollout ranks' serving statistics.
            serving = [
                {
                    "rollout/requests": float(self.config.runner.pipeline_stages),
                    "rollout/forward_passes": float(self.config.runner.pipeline_stages),
                    "time/rollout_infer": res["time/policy"],
                    "time/rollout_wait": 0.0,
                }
                for res in results
            ]
        else:
            results, serving = wait_both(pending.envs, pending.serve, timeout)
        return Collected(results, serving, pending.version, time.perf_counter() - pending.start)

    def collect(self, version: int) -> tuple[list[dict[str, Any]], list[dict[str, float]]]:
        """One rollout of ``horizon`` steps of every env: the env workers' results (see
        ``rlinf.envs.EnvWorker.rollout``; ``trajectory`` and ``episode_returns`` are
        object-store references) and the rollout ranks' serving statistics."""
        done = self.finish_collect(self.start_collect(version))
        return done.results, done.serving

    def reset_envs(self, seed_offset: int) -> None:
        """Reset every env worker (used after resuming, so episodes start fresh)."""
        self._prefetched = None
        self.env.call("reset", seed_offset).wait(self.config.runner.timeout_s)

    def iteration(self, version: int, last: bool = False) -> tuple[dict[str, float], int]:
        """Collect, update, sync; returns ``(metrics, env_steps of this iteration)``.

        ``version``: the weights every rollout rank holds (the actor's). With
        ``runner.overlap_update`` (and not ``last``) the next iteration's rollout runs with
        it while the actor updates; the next call trains on it (``train/policy_lag`` 1).
        """
        start = time.perf_counter()
        data, self._prefetched = self._prefetched, None
        if data is None:
            data = self.finish_collect(self.start_collect(version))
        t_wait = time.perf_counter() - start
        results = data.results
        trajectories = [res["trajectory"] for res in results]  # refs the actor fetches
        overlap = self.config.runner.overlap_update and not last
        if self.lending is None:
            update = self.actor.call("update", trajectories)
            ahead = self.start_collect(version) if overlap else None
            metrics = update.wait(self.config.runner.timeout_s)[0]
        else:
            metrics, ahead, self._prefetched = self.lending.run(
                self, trajectories, version, overlap
            )
        t_update = time.perf_counter() - start - t_wait
        staged = None
        if ahead is not None and self._prefetched is None:
            # Export while the next rollout runs (rollout ranks need be idle only to load).
            if self.weight_sync == "object_store":
                staged = stage_weights(self.actor, self.config.runner.timeout_s)
            self._prefetched = self.finish_collect(ahead)
            if self.lending is not None:
                self.lending.rollout_done()
        t_before_sync = time.perf_counter()
        self.sync_weights(staged)
        t_total = time.perf_counter() - start
        steps = sum(res["env_steps"] for res in results)
        self._episode_refs = [res["episode_returns"] for res in results]
        metrics.update(episode_metrics(results))
        serving = data.serving
        metrics.update(
            {
                "train/policy_lag": float(version - data.version),
                "time/rollout": data.seconds,
                "time/data_wait": t_wait,
                "time/update": t_update,
                "time/weight_sync": t_total - (t_before_sync - start),
                "time/iteration": t_total,
                "time/env_step": max(res["time/env_step"] for res in results),
                "time/env_wait": max(res["time/env_wait"] for res in results),
                "time/rollout_infer": max(st["time/rollout_infer"] for st in serving),
                "time/rollout_wait": max(st["time/rollout_wait"] for st in serving),
                "rollout/requests_per_forward": sum(st["rollout/requests"] for st in serving)
                / sum(st["rollout/forward_passes"] for st in serving),
                "throughput/env_steps_per_s": steps / t_total,
                "throughput/rollout_env_steps_per_s": steps / data.seconds,
            }
        )
        return metrics, steps

    def call_actor(self, method: str, *args: Any) -> Any:
        """Call an actor method and return its result."""
        return self.actor.call(method, *args).wait(self.config.runner.timeout_s)[0]

    def shutdown(self) -> None:
        """Close the envs, kill the workers, stop Ray if this flow started it."""
        group = getattr(self, "env", None)
        if isinstance(group, WorkerGroup):
            best_effort(lambda: group.call("close").wait(30))
        self.cluster.shutdown()

"""The embodied flow: env workers <-> rollout workers over channels, actor update, sync.

One training iteration::

    env workers --requests (obs, final_obs)--> [obs channel] --> rollout workers
    env workers <--replies (actions, logp, V)-- [act channel] <-- rollout workers
    env workers --trajectories [N, T]--> actor.update (GAE, PPO) --> weights v+1
    actor --WeightSnapshot (object store)--> every rollout rank (checks v+1)

The same code runs collocated, disaggregated or hybrid: the placement in the config only
decides which devices (CPU slots) each group's processes land on.
"""

from __future__ import annotations

import contextlib
import dataclasses
import time
import uuid
from collections.abc import Callable, Hashable
from typing import Any

import numpy as np
import ray

from rlinf.channel import Channel
from rlinf.core import Cluster, ClusterConfig, WorkerGroup
from rlinf.envs import EnvWorker
from rlinf.models.embodied import EmbodiedActorWorker, EmbodiedRolloutWorker

from ._config import COMPONENTS, EmbodiedConfig

__all__ = ["EmbodiedFlow"]


class EmbodiedFlow:
    """Starts the cluster and the three worker groups, then runs training iterations.

    Args:
        cfg: a validated :class:`EmbodiedConfig`.
    """

    def __init__(self, cfg: EmbodiedConfig) -> None:
        self.cfg = cfg
        r = cfg.runner
        self.steps_per_update = cfg.env.num_envs * r.horizon * cfg.env.chunk_size
        self.total_updates = r.total_env_steps // self.steps_per_update
        self.cluster = Cluster(
            ClusterConfig(
                address=cfg.cluster.address,
                num_cpus=cfg.cluster.num_cpus,
                devices_per_node=cfg.cluster.devices,
            )
        )
        try:
            self._start()
        except BaseException:
            self.cluster.shutdown()
            raise

    def _start(self) -> None:
        cfg, r = self.cfg, self.cfg.runner
        pgs = self.cluster.allocate(dict(cfg.placement), components=COMPONENTS)
        # Unique names: several flows may share one Ray cluster (tests, notebooks), and a
        # killed group's actor names are freed asynchronously.
        tag = uuid.uuid4().hex[:8]
        env_ranks = pgs.placement["env"].world_size
        env_cfg = dataclasses.replace(
            cfg.env,
            num_envs=cfg.env.num_envs // env_ranks,
            # Different runner seeds give disjoint env seed ranges.
            seed=cfg.env.seed + 1_000_003 * r.seed,
        )
        self.env = self.cluster.launch(
            EnvWorker, pgs, "env", name=f"env-{tag}", args=(env_cfg, r.pipeline_stages)
        )
        obs_spec, action_spec = self.env.call("specs", ranks=0).wait(r.timeout_s)[0]
        self.actor = self.cluster.launch(
            EmbodiedActorWorker,
            pgs,
            "actor",
            name=f"actor-{tag}",
            args=(cfg.policy, cfg.algo, obs_spec, action_spec, self.total_updates),
            kwargs={"seed": r.seed, "torch_threads": r.torch_threads},
        )
        self.rollout = self.cluster.launch(
            EmbodiedRolloutWorker,
            pgs,
            "rollout",
            name=f"rollout-{tag}",
            args=(cfg.policy, obs_spec, action_spec),
            kwargs={"seed": r.seed, "torch_threads": r.torch_threads},
        )
        self.mode = pgs.placement.mode
        self.obs_channel = Channel.create(f"embodied-obs-{tag}")
        self.act_channel = Channel.create(f"embodied-act-{tag}")
        # Shard (env rank, stage) -> rollout rank, round robin: with 2 stages and one
        # rollout rank, that rank serves both stages of every env worker in arrival order.
        n_roll = self.rollout.world_size
        self.keys: list[list[Hashable]] = []
        self.requests = [0] * n_roll
        for e in range(env_ranks):
            row = []
            for s in range(r.pipeline_stages):
                rank = (e * r.pipeline_stages + s) % n_roll
                row.append(("rollout", rank))
                self.requests[rank] += r.horizon + 1
            self.keys.append(row)

    def actor_version(self) -> int:
        """The actor's weight version."""
        return self.actor.call("get_version").wait(self.cfg.runner.timeout_s)[0]

    def sync_weights(self) -> int:
        """Push the actor's weights to every rollout rank (through the object store: one
        ``ray.put``, each rank fetches it); returns the version now loaded everywhere."""
        timeout = self.cfg.runner.timeout_s
        snapshot = self.actor.call("export_weights").wait(timeout)[0]
        ref = ray.put(snapshot)
        versions = self.rollout.call("load_weights", ref).wait(timeout)
        if len(set(versions)) != 1 or versions[0] != snapshot.version:
            raise RuntimeError(f"rollout ranks hold versions {versions}, not {snapshot.version}")
        return snapshot.version

    def collect(self, version: int) -> list[dict[str, Any]]:
        """One rollout of ``horizon`` steps of every env; the env workers' results."""
        r = self.cfg.runner
        envs = self.env.call_per_rank(
            "rollout",
            [(self.obs_channel, self.act_channel, keys, r.horizon) for keys in self.keys],
            channel_timeout=r.timeout_s,
            timeout=r.timeout_s * 2,
        )
        serve = self.rollout.call_per_rank(
            "serve",
            [
                (self.obs_channel, self.act_channel, ("rollout", rank), n)
                for rank, n in enumerate(self.requests)
            ],
            version=version,
            channel_timeout=r.timeout_s,
            timeout=r.timeout_s * 2,
        )
        # Wait on both so an error on either side surfaces (the other times out on its
        # channel rather than hanging).
        results = envs.wait()
        serve.wait()
        return results

    def reset_envs(self, seed_offset: int) -> None:
        """Reset every env worker (used after resuming, so episodes start fresh)."""
        self.env.call("reset", seed_offset).wait(self.cfg.runner.timeout_s)

    def iteration(self, version: int) -> tuple[dict[str, float], int]:
        """Collect, update, sync; returns ``(metrics, env_steps of this iteration)``."""
        start = time.perf_counter()
        results = self.collect(version)
        t_collect = time.perf_counter() - start
        trajectories = [res["trajectory"] for res in results]
        metrics = self.actor.call("update", trajectories).wait(self.cfg.runner.timeout_s)[0]
        t_update = time.perf_counter() - start - t_collect
        self.sync_weights()
        t_total = time.perf_counter() - start
        steps = sum(res["env_steps"] for res in results)
        metrics.update(_episode_metrics(results))
        metrics.update(
            {
                "time/rollout": t_collect,
                "time/update": t_update,
                "time/weight_sync": t_total - t_collect - t_update,
                "time/iteration": t_total,
                "time/env_step": max(res["time/env_step"] for res in results),
                "time/env_wait": max(res["time/env_wait"] for res in results),
                "throughput/env_steps_per_s": steps / t_total,
                "throughput/rollout_env_steps_per_s": steps / t_collect,
            }
        )
        return metrics, steps

    def call_actor(self, method: str, *args: Any) -> Any:
        """Call an actor method and return its result."""
        return self.actor.call(method, *args).wait(self.cfg.runner.timeout_s)[0]

    def shutdown(self) -> None:
        """Close the channels, kill the workers, stop Ray if this flow started it."""
        for group in (getattr(self, "env", None),):
            if isinstance(group, WorkerGroup):
                _quietly(lambda g=group: g.call("close").wait(30))
        for ch in (getattr(self, "obs_channel", None), getattr(self, "act_channel", None)):
            if ch is not None:
                _quietly(ch.kill)
        self.cluster.shutdown()


def _episode_metrics(results: list[dict[str, Any]]) -> dict[str, float]:
    eps = {
        k: np.concatenate([res["episodes"][k] for res in results]) for k in results[0]["episodes"]
    }
    out = {"env/episodes": float(len(eps["return"]))}
    if len(eps["return"]):
        out["env/return_mean"] = float(eps["return"].mean())
        out["env/length_mean"] = float(eps["length"].mean())
        success = eps["success"][~np.isnan(eps["success"])]
        if len(success):
            out["env/success_rate"] = float(success.mean())
    return out


def _quietly(fn: Callable[[], Any]) -> None:
    # Best effort during shutdown: the error that ended the run is the one to report.
    with contextlib.suppress(Exception):
        fn()

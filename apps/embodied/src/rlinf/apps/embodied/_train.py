"""Training driver: run directory, metrics, progress bar, checkpoints, resume, final plot."""

from __future__ import annotations

import json
import pathlib
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from rlinf.core import (
    ConfigError,
    MetricLogger,
    check_run_dir_free,
    process_age_s,
    restore_driver_rng,
    resume_run,
    save_checkpoint,
    start_run,
)
from rlinf.models.embodied import OffPolicyConfig, flow_state, restore_flow_state

from ._config import AUTO, EmbodiedConfig, is_auto, load_embodied_config
from ._config_offpolicy import check_offline_file, check_offpolicy_env
from ._flow import build_flow
from ._plot import plot_learning_curve

__all__ = ["AUTO_ITERATIONS", "PLAN_FILE", "TrainResult", "resume", "train"]

AUTO_ITERATIONS = 3
"""Reference iterations ``placement: auto`` profiles (the first is warm-up)."""
PLAN_FILE = "plan.json"
"""The plan record in a ``placement: auto`` run's directory."""


@dataclass(frozen=True)
class TrainResult:
    """What a finished (or resumed and finished) run reports.

    Attributes:
        run_dir: the run directory.
        env_steps: env steps done in total (including those before a resume).
        updates: updates done in total.
        wall_s: seconds of this invocation's training loop.
        last_return: ``env/return_mean`` of the last iteration that finished episodes.
        placement_mode: ``collocated``, ``disaggregated`` or ``hybrid``.
        backend: ``inprocess`` (every worker a thread of the CLI's process, no Ray) or
            ``ray`` (``cluster.backend``; ``auto`` picks in-process for one-slot placements).
    """

    run_dir: pathlib.Path
    env_steps: int
    updates: int
    wall_s: float
    last_return: float
    placement_mode: str
    backend: str = "ray"


def train(
    config: str | pathlib.Path, overrides: Sequence[str] = (), run_dir: str | None = None
) -> TrainResult:
    """Train from a preset name or YAML path with ``key=value`` overrides.

    The config (the env id against the registries included) is fully validated before
    the run directory or any worker is created. With ``placement: auto`` the run is planned
    first (:func:`rlinf.apps.embodied._plan.plan`, :data:`AUTO_ITERATIONS` reference
    iterations): the table and the chosen block are printed, the run directory's
    ``config.yaml`` holds the chosen placement (so ``--resume`` keeps it) and ``plan.json``
    the plan (profile, ranking, chosen block).
    """
    planned: list[Any] = []

    def load(source: str | pathlib.Path, overrides: Sequence[str]) -> EmbodiedConfig:
        cfg = load_embodied_config(source, overrides)
        if not is_auto(cfg):
            return cfg
        from ._plan import apply_plan, auto_profile_devices, describe, plan

        check_run_dir_free(run_dir)  # before minutes of profiling, not after
        p = plan(cfg, AUTO_ITERATIONS, auto_profile_devices(cfg))
        print("\n".join(describe(p, top=5)))
        print(f"placement: auto chose\n{p.block_yaml()}", end="", flush=True)
        planned.append(p)
        return apply_plan(cfg, p.chosen)

    cfg, path, _ = start_run(load, config, overrides, run_dir, prepare=_prepare)
    if planned:
        (path / PLAN_FILE).write_text(json.dumps(planned[0].record(), indent=2))
    return _run(cfg, path, state=None)


def _load_resumed(source: str | pathlib.Path, overrides: Sequence[str]) -> EmbodiedConfig:
    cfg = load_embodied_config(source, overrides)
    if is_auto(cfg):
        raise ConfigError(
            f"placement: {AUTO!r} plans new runs only; a resumed run keeps the placement of "
            "its config.yaml (override placement.<component> to change it)"
        )
    return cfg


def resume(run_dir: str | pathlib.Path, overrides: Sequence[str] = ()) -> TrainResult:
    """Continue a run from its latest checkpoint (overrides may e.g. raise
    ``runner.total_env_steps``); metrics append to the same files, re-run updates replace
    their rows."""
    cfg, path, state, _ = resume_run(run_dir, _load_resumed, overrides, prepare=_prepare)
    return _run(cfg, path, state=state)


def _prepare(cfg: EmbodiedConfig) -> None:
    """The driver's checks beyond the config's (the env ids are checked with it): an
    off-policy run builds one env to check that its learner can read it (images need the
    CNN encoder), and checks
    its offline file (RLPD, IQL) against that env."""
    if isinstance(cfg.algo, OffPolicyConfig):
        obs_dim, action_dim = check_offpolicy_env(cfg.env, cfg.policy, cfg.algo)
        check_offline_file(cfg.algo, cfg.env, obs_dim, action_dim)


def _run(cfg: EmbodiedConfig, run_dir: pathlib.Path, state: dict | None) -> TrainResult:
    if isinstance(cfg.algo, OffPolicyConfig):
        from ._train_offpolicy import run_offpolicy

        return TrainResult(*run_offpolicy(cfg, run_dir, state))
    from tqdm import tqdm

    flow = build_flow(cfg)
    logger = MetricLogger(run_dir, backends=cfg.runner.metric_backends, run_name=cfg.runner.name)
    update, env_steps, last_return = 0, 0, float("nan")
    start = time.perf_counter()
    try:
        if state is not None:
            flow.call_actor("load_checkpoint_state", state["actor"])
            restore_driver_rng(state)
            update, env_steps = int(state["update"]), int(state["env_steps"])
            # Envs, held observations, sampling RNGs and a prefetched rollout continue
            # exactly where the env kind allows it; otherwise episodes start fresh from a
            # seed range this run has not used yet.
            how = restore_flow_state(flow, state.get("flow"), seed_offset=update * cfg.env.num_envs)
            if how != "exact":
                print(f"resume: env episodes restart on fresh seeds: {how}", file=sys.stderr)
        version = flow.sync_weights()
        first_step_pending = True
        bar = tqdm(
            total=flow.total_updates * flow.steps_per_update,
            initial=env_steps,
            unit="step",
            disable=not cfg.runner.progress,
            dynamic_ncols=True,
        )
        while update < flow.total_updates:
            metrics, steps = flow.iteration(version, last=update + 1 == flow.total_updates)
            version += 1
            update += 1
            env_steps += steps
            metrics["train/update"] = float(update)
            if first_step_pending:
                # Process start (imports, Ray, workers, model build) to the end of the
                # first update: what a user waits for before anything trains.
                metrics["time/first_step_s"] = process_age_s()
                # Its parts: interpreter, imports and config checks; ray.init; the
                # workers' processes and constructors (the rest: weight load, update 1).
                metrics.update(flow.startup_times)
                first_step_pending = False
            logger.log(metrics, env_steps)
            last_return = metrics.get("env/return_mean", last_return)
            bar.update(steps)
            bar.set_postfix(
                ret=f"{last_return:.1f}", sps=f"{metrics['throughput/env_steps_per_s']:.0f}"
            )
            every = cfg.runner.checkpoint_every
            if (every and update % every == 0) or update == flow.total_updates:
                actor_state = flow.call_actor("checkpoint_state")
                save_checkpoint(
                    run_dir,
                    f"update_{update:06d}",
                    {
                        "update": update,
                        "env_steps": env_steps,
                        "actor": actor_state,
                        "flow": flow_state(flow),
                    },
                    metrics_step=env_steps,
                )
        bar.close()
        mode = str(flow.mode)
        backend = flow.backend
    finally:
        logger.close()
        flow.shutdown()
    plot_learning_curve(run_dir, title=f"{cfg.env.env_id} ({cfg.algo.name}, {cfg.runner.name})")
    return TrainResult(
        run_dir, env_steps, update, time.perf_counter() - start, float(last_return), mode, backend
    )

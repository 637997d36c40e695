"""The off-policy training driver: run loop, metrics, checkpoints (buffer included), resume.

Checkpoints hold the learner's networks, optimizers, temperature and counters in
``state.pt`` and, with ``algo.save_buffer`` (the default), the replay buffer as
``model/replay_buffer.npz``, written by the learner's own process. A resumed run reloads
both and restarts its env episodes on fresh seeds (episodes in flight at the checkpoint are
not continued; every transition collected before it is in the saved buffer). The offline
file of RLPD / IQL is not copied: a resumed run reads it again from ``algo.offline_data``.

IQL's offline phase (``algo.offline_steps`` updates on the offline file alone) runs before
the first collection, in chunks of :data:`OFFLINE_CHUNK` updates; its last chunk's metrics
are logged at env step 0. A run resumed after it does not repeat it.
"""

from __future__ import annotations

import pathlib
import time

from rlinf.core import MetricLogger, process_age_s, restore_driver_rng, save_checkpoint
from rlinf.models.embodied import BUFFER_FILE, OffPolicyConfig, OffPolicyFlow

from ._config import EmbodiedConfig
from ._flow import build_offpolicy_flow
from ._plot import plot_learning_curve

__all__ = ["OFFLINE_CHUNK", "run_offpolicy"]

OFFLINE_CHUNK = 500
"""IQL offline updates per learner call (bounded so no call nears ``runner.timeout_s``)."""


def run_offpolicy(
    cfg: EmbodiedConfig, run_dir: pathlib.Path, state: dict | None
) -> tuple[pathlib.Path, int, int, float, float, str]:
    """Train (or continue ``state``) until ``runner.total_env_steps``; returns the fields of
    ``TrainResult`` (run dir, env steps, learner updates, seconds, last return, placement
    mode)."""
    from tqdm import tqdm

    algo = cfg.algo
    assert isinstance(algo, OffPolicyConfig)
    flow = build_offpolicy_flow(cfg)
    logger = MetricLogger(run_dir, backends=cfg.runner.metric_backends, run_name=cfg.runner.name)
    iteration, env_steps, updates, last_return = 0, 0, 0, float("nan")
    start = time.perf_counter()
    try:
        if state is not None:
            flow.call_learner("load_checkpoint_state", state["learner"])
            restore_driver_rng(state)
            iteration, env_steps = int(state["iteration"]), int(state["env_steps"])
            buffer = pathlib.Path(state["model_dir"]) / BUFFER_FILE
            if state["buffer_saved"]:
                flow.call_learner("load_buffer", str(buffer))
            flow.reset_envs(seed_offset=iteration * cfg.env.num_envs)
        if algo.offline_steps:
            _offline_phase(flow, logger, algo.offline_steps, cfg.runner.progress)
        flow.push_weights()
        first_step_pending = True
        bar = tqdm(
            total=flow.total_iterations * flow.steps_per_iteration,
            initial=env_steps,
            unit="step",
            disable=not cfg.runner.progress,
            dynamic_ncols=True,
        )
        while iteration < flow.total_iterations:
            metrics, steps = flow.iteration()
            iteration += 1
            env_steps += steps
            updates = int(metrics["train/updates"])
            metrics["train/iteration"] = float(iteration)
            if first_step_pending:
                metrics["time/first_step_s"] = process_age_s()  # process start to here
                first_step_pending = False
            logger.log(metrics, env_steps)
            last_return = metrics.get("env/return_mean", last_return)
            bar.update(steps)
            bar.set_postfix(
                ret=f"{last_return:.1f}", sps=f"{metrics['throughput/env_steps_per_s']:.0f}"
            )
            every = cfg.runner.checkpoint_every
            if (every and iteration % every == 0) or iteration == flow.total_iterations:
                _checkpoint(flow, run_dir, algo, iteration, env_steps)
        bar.close()
        mode = str(flow.mode)
    finally:
        logger.close()
        flow.shutdown()
    plot_learning_curve(run_dir, title=f"{cfg.env.env_id} ({algo.name}, {cfg.runner.name})")
    return run_dir, env_steps, updates, time.perf_counter() - start, float(last_return), mode


def _offline_phase(flow: OffPolicyFlow, logger: MetricLogger, steps: int, progress: bool) -> None:
    from tqdm import tqdm

    metrics = flow.call_learner("pretrain", 0)
    done = int(metrics["train/offline_updates"])
    if done >= steps:
        return  # a resumed run: the phase is over
    bar = tqdm(total=steps, initial=done, unit="upd", disable=not progress, desc="offline")
    while done < steps:
        metrics = flow.call_learner("pretrain", OFFLINE_CHUNK)
        bar.update(int(metrics["train/offline_updates"]) - done)
        done = int(metrics["train/offline_updates"])
    bar.close()
    logger.log(metrics, 0)


def _checkpoint(
    flow: OffPolicyFlow,
    run_dir: pathlib.Path,
    algo: OffPolicyConfig,
    iteration: int,
    env_steps: int,
) -> None:
    flow.flush()  # the saved buffer holds every transition
    learner = flow.call_learner("checkpoint_state")

    def save_buffer(directory: str) -> None:
        flow.call_learner("save_buffer", directory)

    save_checkpoint(
        run_dir,
        f"iteration_{iteration:06d}",
        {
            "iteration": iteration,
            "env_steps": env_steps,
            "learner": learner,
            "buffer_saved": algo.save_buffer,
        },
        save_buffer if algo.save_buffer else None,
        metrics_step=env_steps,
    )

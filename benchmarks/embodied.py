"""Embodied training-loop throughput, measured side by side in one run.

(a) placement: the same PPO config trained collocated (env, rollout and actor on CPU slot 0,
    ``pipeline_stages=1``: simulation, inference and update take turns) vs the other ways
    the same flow can execute (``--variants``): pipelined (env on slot 0, rollout and actor
    on slot 1, 2 stages: one half of the envs is simulated while the rollout infers for the
    other half); overlapped (``runner.overlap_update``: env + rollout on slot 0, the actor on
    slot 1 updates while the next rollout is collected, one version behind, with the
    decoupled PPO objective); in-env (``runner.policy_in_env``: the policy runs inside the
    env worker, no per-step process hand-off) and both. Goal: >= 1.5x env-steps/s.
(b) baseline: each variant vs Stable-Baselines3 PPO on the same env, number of envs,
    total steps and hyper-parameters (rollout length, epochs, minibatch size, learning rate
    and its linear decay, clip, GAE, grad clip, Adam eps, separate tanh MLPs for policy and
    value with orthogonal init, observation normalization). Goal: >= 1.5x SB3's
    env-steps/s at an equal or better final return (mean raw return of the last
    ``--last-episodes`` finished episodes, computed the same way for both).

env-steps/s is total env steps / wall time of the whole training loop (rollouts, updates,
weight syncs; from the first rollout to the last update, so Ray and worker start-up are
excluded, and SB3's model construction likewise). The default config (HalfCheetah-v5: no
early terminations, so every iteration simulates the same work; 16 envs, 8 per stage when
pipelined; 256 x 256 tanh MLPs for policy and value) is one where a step of simulation and
a forward pass cost about the same; the per-iteration split printed under (a) shows both.

Rounds alternate between the runs (every variant, then SB3, then every variant ...) and
medians of per-round ratios are reported, so a machine busy with other work slows all
sides alike.

    uv run --locked --group bench python benchmarks/embodied.py --quick   # a few minutes
    uv run --locked --group bench python benchmarks/embodied.py           # full

``--preset cartpole|halfcheetah`` instead runs the preset as shipped through the real CLI
(``rlinf-embodied train --config <preset>``) vs an SB3 PPO script with the preset's
hyper-parameters, each in its own process, and reports training-loop and whole-command
ratios (``benchmarks/embodied_preset.py`` has the details):

    uv run --locked --group bench python benchmarks/embodied.py --preset cartpole
"""

from __future__ import annotations

import argparse
import collections
import os
import statistics
import time
from dataclasses import dataclass, field
from typing import Any

os.environ.setdefault("RAY_ENABLE_UV_RUN_RUNTIME_ENV", "0")
os.environ.setdefault("RAY_AUTH_MODE", "disabled")

import numpy as np
import ray
import torch

from rlinf.apps.embodied import build_flow
from rlinf.apps.embodied._config import load_embodied_config

SPLIT_KEYS = (
    "time/iteration",
    "time/rollout",
    "time/env_step",
    "time/rollout_infer",
    "time/update",
    "time/actor_update",
    "time/weight_sync",
)


@dataclass
class Run:
    """One training run: throughput, final return and the per-iteration time split."""

    steps_per_s: float
    final_return: float
    split: dict[str, float] = field(default_factory=dict)


# name -> (placement env/rollout/actor, pipeline stages, overlap_update, policy_in_env)
VARIANTS: dict[str, tuple[tuple[str, str, str], int, bool, bool]] = {
    "collocated": (("0", "0", "0"), 1, False, False),
    "pipelined": (("0", "1", "1"), 2, False, False),
    "overlapped": (("0", "0", "1"), 1, True, False),
    "pipelined+overlapped": (("0", "1", "1"), 2, True, False),
    "in-env": (("0", "0", "0"), 1, False, True),
    "in-env+overlapped": (("0", "0", "1"), 1, True, True),
}


def flow_config(args: argparse.Namespace, variant: str, seed: int) -> dict[str, Any]:
    """The embodied app config of the benchmark (same for every variant but the
    placement, the number of pipeline stages, ``overlap_update`` and ``policy_in_env``)."""
    (env_dev, rollout_dev, actor_dev), stages, overlap, in_env = VARIANTS[variant]
    return {
        "env": {"env_id": args.env, "kind": "mujoco", "num_envs": args.num_envs, "seed": 0},
        "policy": {
            "hidden_sizes": list(args.hidden),
            "activation": "tanh",
            "normalize_obs": True,
            "init_log_std": 0.0,
        },
        "algo": {
            "name": "ppo",
            "lr": args.lr,
            "lr_schedule": "linear",
            "adam_eps": 1e-5,
            "epochs": args.epochs,
            "minibatches": args.minibatches,
            "clip_low": 0.2,
            "clip_high": 0.2,
            "entropy_coef": 0.0,
            "vf_coef": 0.5,
            "max_grad_norm": 0.5,
            "gamma": 0.99,
            "lam": 0.95,
        },
        "runner": {
            "name": "bench",
            "seed": seed,
            "total_env_steps": args.total_steps,
            "horizon": args.horizon,
            "pipeline_stages": stages,
            "overlap_update": overlap,
            "policy_in_env": in_env,
            "checkpoint_every": 0,
            "progress": False,
            "torch_threads": 1,
        },
        "placement": {
            "env": env_dev,
            "rollout": rollout_dev,
            "actor": actor_dev,
        },
        "cluster": {"num_cpus": 2, "devices": 2},
    }


def run_ours(args: argparse.Namespace, variant: str, seed: int) -> Run:
    flow = build_flow(load_embodied_config(flow_config(args, variant, seed)))
    returns: collections.deque[float] = collections.deque(maxlen=args.last_episodes)
    rows, steps = [], 0
    try:
        version = flow.sync_weights()
        start = time.perf_counter()
        for update in range(flow.total_updates):
            metrics, n = flow.iteration(version, last=update + 1 == flow.total_updates)
            version += 1
            steps += n
            rows.append(metrics)
            returns.extend(flow.last_episode_returns.tolist())
        wall = time.perf_counter() - start
    finally:
        flow.shutdown()
    split = {k: statistics.median(r[k] for r in rows) for k in SPLIT_KEYS}
    return Run(steps / wall, _mean(returns), split)


def run_sb3(args: argparse.Namespace, seed: int) -> Run:
    from stable_baselines3 import PPO
    from stable_baselines3.common.env_util import make_vec_env
    from stable_baselines3.common.vec_env import VecNormalize

    torch.set_num_threads(args.sb3_threads)
    # Monitor (inside make_vec_env) records raw returns; VecNormalize normalizes only the
    # observations, like the policy-side normalizer of ours.
    venv = VecNormalize(
        make_vec_env(args.env, n_envs=args.num_envs, seed=seed),
        norm_obs=True,
        norm_reward=False,
        clip_obs=10.0,
    )
    lr = args.lr
    model = PPO(
        "MlpPolicy",
        venv,
        learning_rate=lambda progress_remaining: lr * progress_remaining,
        n_steps=args.horizon,
        batch_size=args.num_envs * args.horizon // args.minibatches,
        n_epochs=args.epochs,
        gamma=0.99,
        gae_lambda=0.95,
        clip_range=0.2,
        ent_coef=0.0,
        vf_coef=0.5,
        max_grad_norm=0.5,
        policy_kwargs={
            "net_arch": {"pi": list(args.hidden), "vf": list(args.hidden)},
            "activation_fn": torch.nn.Tanh,
            "log_std_init": 0.0,
        },
        stats_window_size=args.last_episodes,
        seed=seed,
        device="cpu",
        verbose=0,
    )
    train_s = [0.0]
    train = model.train

    def timed_train() -> None:
        start = time.perf_counter()
        train()
        train_s[0] += time.perf_counter() - start

    model.train = timed_train  # type: ignore[method-assign]
    start = time.perf_counter()
    model.learn(total_timesteps=args.total_steps)
    wall = time.perf_counter() - start
    venv.close()
    iters = model.num_timesteps // (args.num_envs * args.horizon)
    split = {"time/iteration": wall / iters, "time/update": train_s[0] / iters}
    split["time/rollout"] = split["time/iteration"] - split["time/update"]
    return Run(model.num_timesteps / wall, _mean(r["r"] for r in model.ep_info_buffer), split)


def _mean(values: Any) -> float:
    values = list(values)
    return float(np.mean(values)) if values else float("nan")


def _median(runs: list[Run], attr: str) -> float:
    return statistics.median(getattr(r, attr) for r in runs)


def report(name: str, base: list[Run], ours: list[Run], goal: float, base_name: str) -> None:
    ratio = statistics.median(
        o.steps_per_s / b.steps_per_s for b, o in zip(base, ours, strict=True)
    )
    verdict = "meets" if ratio >= goal else "below"
    print(
        f"{name}: {base_name} {_median(base, 'steps_per_s'):7.0f} steps/s, ours "
        f"{_median(ours, 'steps_per_s'):7.0f} steps/s, ratio {ratio:4.2f}x "
        f"({verdict} goal {goal}x); final return {base_name} "
        f"{_median(base, 'final_return'):8.1f}, ours {_median(ours, 'final_return'):8.1f}"
    )


def print_split(name: str, runs: list[Run]) -> None:
    keys = [k for k in SPLIT_KEYS if k in runs[0].split]
    cells = ", ".join(
        f"{k.removeprefix('time/')} {statistics.median(r.split[k] for r in runs):.3f}" for k in keys
    )
    print(f"  {name:<11} per iteration (s, medians): {cells}")


def _start_ray(attempts: int) -> None:
    """``ray.init``, retried: on a heavily loaded machine the raylet may give up waiting for
    its agents ("The current node timed out during startup")."""
    for attempt in range(attempts):
        try:
            ray.init(num_cpus=2, num_gpus=0, include_dashboard=False, logging_level="ERROR")
            return
        except Exception as e:
            if attempt + 1 == attempts or "timed out during startup" not in str(e):
                raise
            print(f"ray.init failed ({e}); retrying", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="1 round of 4 iterations")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--preset",
        choices=["cartpole", "halfcheetah"],
        help="the preset as shipped (CLI) vs SB3, whole command and training loop",
    )
    parser.add_argument(
        "--total-steps", type=int, help="default: 100352 (49 x 2048); --preset: the preset's"
    )
    parser.add_argument(
        "--backends",
        nargs="+",
        default=["auto"],
        choices=["auto", "inprocess", "ray"],
        help="--preset: run rlinf once per round on each cluster.backend (auto: the preset's "
        "default choice), e.g. --backends inprocess ray for the two side by side",
    )
    parser.add_argument("--env", default="HalfCheetah-v5")
    parser.add_argument("--num-envs", type=int, default=16)
    parser.add_argument("--horizon", type=int, default=128)
    parser.add_argument("--hidden", type=int, nargs="+", default=[256, 256])
    parser.add_argument("--lr", type=float, default=3e-4)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--minibatches", type=int, default=8)
    parser.add_argument("--last-episodes", type=int, default=32)
    parser.add_argument("--sb3-threads", type=int, default=1, help="torch threads of SB3")
    parser.add_argument("--skip-sb3", action="store_true")
    parser.add_argument(
        "--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS), metavar="V"
    )
    args = parser.parse_args()
    if args.preset:
        from embodied_preset import run_preset  # benchmarks/ is on sys.path as the script's dir

        run_preset(args.preset, args.rounds, args.total_steps, args.backends)
        return
    if args.total_steps is None:
        args.total_steps = 100_352
    if args.quick:
        args.rounds, args.total_steps = 1, 4 * args.num_envs * args.horizon

    _start_ray(attempts=3)
    # SB3 runs in a Ray worker process too: Ray renices its workers (RAY_worker_niceness),
    # so on a machine shared with other work the driver would get a larger CPU share than
    # the workers of our flow.
    sb3_task = ray.remote(num_cpus=0)(run_sb3)
    runs: dict[str, list[Run]] = {v: [] for v in args.variants}
    sb3: list[Run] = []
    try:
        for seed in range(args.rounds):
            for variant in args.variants:
                runs[variant].append(run_ours(args, variant, seed))
            if not args.skip_sb3:
                sb3.append(ray.get(sb3_task.remote(args, seed)))
            cells = [f"{v} {runs[v][-1].steps_per_s:.0f}" for v in args.variants]
            cells += [f"SB3 {sb3[-1].steps_per_s:.0f}"] if sb3 else []
            print(f"round {seed}: steps/s " + ", ".join(cells), flush=True)
    finally:
        ray.shutdown()
    print(
        f"{args.env}, {args.num_envs} envs x {args.horizon} steps per update, "
        f"{args.total_steps} steps, MLP {args.hidden}, {args.epochs} epochs x "
        f"{args.minibatches} minibatches; torch {torch.__version__}, ray {ray.__version__}, "
        f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}; "
        f"{args.rounds} rounds, medians"
    )
    for variant in args.variants:
        print_split(variant, runs[variant])
    if sb3:
        print_split("SB3", sb3)
    base = runs.get("collocated")
    for variant in args.variants:
        if variant != "collocated" and base:
            report(f"(a) {variant} vs collocated", base, runs[variant], 1.5, "collocated")
    if sb3:
        for variant in args.variants:
            report(f"(b) ours ({variant}) vs SB3 PPO", sb3, runs[variant], 1.5, "SB3")


if __name__ == "__main__":
    main()

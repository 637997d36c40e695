"""Off-policy (SAC) training, rlinf vs Stable-Baselines3, side by side in one run.

Both train SAC on the same env with the same hyper-parameters and env steps: 256 x 256
ReLU actor and twin critics, Adam with one learning rate for actor, critics and
temperature, batch size, buffer size, learning starts, tau, gamma, automatic entropy tuning
toward ``-action_dim`` from alpha 1, one gradient update per env step (SB3: ``train_freq=1,
gradient_steps=-1`` over ``--num-envs`` envs; rlinf: ``utd_ratio=1``).

rlinf's env workers collect the next chunk of ``--horizon`` steps per env (with weights
pushed after every chunk) while the learner makes the updates the previous chunk is owed;
SB3 alternates one env step and one update in one process. Goals (issue #18): final return
>= SB3's and env-steps/s >= 1.5x SB3's.

env-steps/s is env steps / wall time of the training loop (rlinf: first collection to the
last update, Ray and worker start-up excluded; SB3: ``learn()``). Final return: the mean raw
return of the last ``--last-episodes`` finished episodes, computed the same way for both.
Rounds alternate (rlinf, then SB3, per seed); medians of per-round ratios are reported, so
a machine busy with other work slows both alike.

    uv run --locked --group bench python benchmarks/embodied_offpolicy.py --quick  # Pendulum
    uv run --locked --group bench python benchmarks/embodied_offpolicy.py          # HalfCheetah
"""

from __future__ import annotations

import argparse
import collections
import os
import statistics
import time
from dataclasses import dataclass
from typing import Any

os.environ.setdefault("RAY_ENABLE_UV_RUN_RUNTIME_ENV", "0")
os.environ.setdefault("RAY_AUTH_MODE", "disabled")

import numpy as np
import ray
import torch

from rlinf.apps.embodied import build_offpolicy_flow
from rlinf.apps.embodied._config import load_embodied_config


@dataclass(frozen=True)
class Run:
    """One training run: throughput, final return and seconds per update."""

    steps_per_s: float
    final_return: float


def flow_config(args: argparse.Namespace, seed: int) -> dict[str, Any]:
    kind = "gym" if args.env == "Pendulum-v1" else "mujoco"
    return {
        "env": {"env_id": args.env, "kind": kind, "num_envs": args.num_envs, "seed": 1000 * seed},
        "policy": {"hidden_sizes": list(args.hidden), "activation": "relu"},
        "algo": {
            "name": "sac",
            "gamma": 0.99,
            "tau": 0.005,
            "actor_lr": args.lr,
            "critic_lr": args.lr,
            "alpha_lr": args.lr,
            "critic_hidden_sizes": list(args.hidden),
            "buffer_size": args.buffer_size,
            "batch_size": args.batch_size,
            "learning_starts": args.learning_starts,
            "utd_ratio": 1.0,
            "weight_push_every": 1,
        },
        "runner": {
            "name": "bench_sac",
            "seed": seed,
            "total_env_steps": args.total_steps,
            "horizon": args.horizon,
            "progress": False,
            "metric_backends": [],
        },
        "placement": {"actor": "1", "rollout": "0", "env": "0"},
        "cluster": {"num_cpus": 2, "devices": 2},
    }


def run_ours(args: argparse.Namespace, seed: int) -> Run:
    flow = build_offpolicy_flow(load_embodied_config(flow_config(args, seed)))
    returns: collections.deque[float] = collections.deque(maxlen=args.last_episodes)
    steps = 0
    try:
        flow.push_weights()
        start = time.perf_counter()
        for _ in range(flow.total_iterations):
            _, n = flow.iteration()
            steps += n
            returns.extend(flow.last_episode_returns.tolist())
        wall = time.perf_counter() - start
    finally:
        flow.shutdown()
    return Run(steps / wall, _mean(returns))


def run_sb3(args: argparse.Namespace, seed: int) -> Run:
    from stable_baselines3 import SAC
    from stable_baselines3.common.env_util import make_vec_env

    torch.set_num_threads(1)
    venv = make_vec_env(args.env, n_envs=args.num_envs, seed=1000 * seed)
    model = SAC(
        "MlpPolicy",
        venv,
        learning_rate=args.lr,
        buffer_size=args.buffer_size,
        learning_starts=args.learning_starts,
        batch_size=args.batch_size,
        tau=0.005,
        gamma=0.99,
        train_freq=1,
        gradient_steps=-1,
        ent_coef="auto_1.0",
        policy_kwargs={"net_arch": list(args.hidden)},
        stats_window_size=args.last_episodes,
        seed=seed,
        device="cpu",
        verbose=0,
    )
    start = time.perf_counter()
    model.learn(total_timesteps=args.total_steps)
    wall = time.perf_counter() - start
    venv.close()
    return Run(model.num_timesteps / wall, _mean(r["r"] for r in model.ep_info_buffer))


def _mean(values: Any) -> float:
    values = list(values)
    return float(np.mean(values)) if values else float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="Pendulum-v1, 6000 steps, 1 round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--env", default="HalfCheetah-v5")
    parser.add_argument("--total-steps", type=int, default=100_000)
    parser.add_argument("--num-envs", type=int, default=1)
    parser.add_argument("--horizon", type=int, default=100, help="steps per env per chunk")
    parser.add_argument("--hidden", type=int, nargs="+", default=[256, 256])
    parser.add_argument("--lr", type=float, default=3e-4)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--buffer-size", type=int, default=1_000_000)
    parser.add_argument("--learning-starts", type=int, default=10_000)
    parser.add_argument("--last-episodes", type=int, default=10)
    args = parser.parse_args()
    if args.quick:
        args.env, args.rounds, args.total_steps = "Pendulum-v1", 1, 6000
        args.learning_starts, args.lr, args.last_episodes = 1000, 1e-3, 5

    ray.init(num_cpus=2, num_gpus=0, include_dashboard=False, logging_level="ERROR")
    # SB3 runs in a Ray worker process too, so that both sides get the same niceness.
    sb3_task = ray.remote(num_cpus=0)(run_sb3)
    ours: list[Run] = []
    sb3: list[Run] = []
    try:
        for seed in range(args.rounds):
            ours.append(run_ours(args, seed))
            sb3.append(ray.get(sb3_task.remote(args, seed)))
            print(
                f"round {seed}: steps/s rlinf {ours[-1].steps_per_s:.0f}, SB3 "
                f"{sb3[-1].steps_per_s:.0f}; final return rlinf {ours[-1].final_return:.1f}, "
                f"SB3 {sb3[-1].final_return:.1f}",
                flush=True,
            )
    finally:
        ray.shutdown()
    print(
        f"{args.env}, {args.num_envs} env(s), {args.total_steps} steps, MLP {args.hidden}, "
        f"batch {args.batch_size}, lr {args.lr}, learning starts {args.learning_starts}; "
        f"torch {torch.__version__}, ray {ray.__version__}, {os.cpu_count()} CPUs, load "
        f"average {os.getloadavg()[0]:.1f}; {args.rounds} rounds, medians"
    )
    ratio = statistics.median(o.steps_per_s / b.steps_per_s for o, b in zip(ours, sb3, strict=True))
    ret_o = statistics.median(r.final_return for r in ours)
    ret_b = statistics.median(r.final_return for r in sb3)
    print(
        f"env-steps/s: SB3 {statistics.median(r.steps_per_s for r in sb3):.0f}, rlinf "
        f"{statistics.median(r.steps_per_s for r in ours):.0f}, ratio {ratio:.2f}x "
        f"({'meets' if ratio >= 1.5 else 'below'} goal 1.5x)"
    )
    print(
        f"final return: SB3 {ret_b:.1f}, rlinf {ret_o:.1f} "
        f"({'meets' if ret_o >= ret_b else 'below'} goal >= SB3)"
    )


if __name__ == "__main__":
    main()

"""An embodied preset as shipped (``rlinf-embodied train --config <preset>``) vs an SB3 PPO
script with the preset's hyper-parameters; ``benchmarks/embodied.py --preset`` runs it.

Each side runs in its own fresh process, rounds alternate the order, and the report gives
medians over rounds of

* the training loop: rlinf: the sum of ``time/iteration`` in the run's ``metrics.jsonl``
  (rollouts, updates, weight syncs; not Ray start, worker start, checkpoints or the plot);
  SB3: the wall time of ``model.learn()``;
* the whole command: process start to exit (imports, Ray start, env and model
  construction, training, rlinf's checkpoints and learning-curve plot, SB3's
  ``model.save``);
* the final return: mean raw return of the episodes finished in the last iteration
  (rollout) that finished any, computed the same way on both sides.

SB3 is configured as its docs recommend for PPO with MLP policies on CPU:
``device="cpu"``, ``torch.set_num_threads(1)`` per process, and both ``DummyVecEnv`` and
``SubprocVecEnv`` are run every round; the faster one (median training loop) is the
baseline. The hyper-parameters are read from the preset at run time: envs, rollout length,
total steps, lr and its schedule, Adam eps, epochs, minibatch size (rollout / minibatches),
clip, entropy and value coefficients, grad clip, GAE, separate policy and value MLPs of
the preset's sizes and activation, the initial log std, and observation normalization
(``VecNormalize(norm_reward=False)``) when the preset normalizes observations.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import pathlib
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from typing import Any

__all__ = ["run_preset", "sb3_spec"]

VEC_ENVS = ("dummy", "subproc")
nan = float("nan")


def sb3_spec(cfg: Any) -> dict[str, Any]:
    """SB3's settings from a loaded :class:`EmbodiedConfig`; settings SB3 PPO cannot
    express raise ``SystemExit`` naming them."""
    a, p, r, e = cfg.algo, cfg.policy, cfg.runner, cfg.env
    if a.name != "ppo" or a.clip_low != a.clip_high or a.lr_schedule not in ("constant", "linear"):
        raise SystemExit(
            f"algo {a.name!r} (clip {a.clip_low}/{a.clip_high}, schedule {a.lr_schedule!r}) "
            "has no SB3 PPO counterpart set up here"
        )
    rollout = e.num_envs * r.horizon
    if rollout % a.minibatches:
        raise SystemExit(f"rollout {rollout} is not divisible by {a.minibatches} minibatches")
    return {
        "env_id": e.env_id,
        "n_envs": e.num_envs,
        "seed": r.seed,
        "total_steps": r.total_env_steps,
        "normalize_obs": bool(getattr(p, "normalize_obs", False)),
        "lr": a.lr,
        "lr_linear": a.lr_schedule == "linear",
        "activation": p.activation,
        "ppo": {
            "n_steps": r.horizon,
            "batch_size": rollout // a.minibatches,
            "n_epochs": a.epochs,
            "gamma": a.gamma,
            "gae_lambda": a.lam,
            "clip_range": a.clip_low,
            "ent_coef": a.entropy_coef,
            "vf_coef": a.vf_coef,
            "max_grad_norm": a.max_grad_norm,
        },
        "net_arch": list(p.hidden_sizes),
        "log_std_init": float(getattr(p, "init_log_std", 0.0)),
        "adam_eps": a.adam_eps,
    }


def sb3_worker(spec_path: str, vec: str) -> None:
    """The SB3 script: train, save, print one JSON line (learn() time, final return)."""
    spec = json.loads(pathlib.Path(spec_path).read_text())
    import torch
    from stable_baselines3 import PPO
    from stable_baselines3.common.callbacks import BaseCallback
    from stable_baselines3.common.env_util import make_vec_env
    from stable_baselines3.common.vec_env import DummyVecEnv, SubprocVecEnv, VecNormalize

    torch.set_num_threads(1)
    cls = DummyVecEnv if vec == "dummy" else SubprocVecEnv
    venv = make_vec_env(spec["env_id"], n_envs=spec["n_envs"], seed=spec["seed"], vec_env_cls=cls)
    if spec["normalize_obs"]:
        venv = VecNormalize(venv, norm_obs=True, norm_reward=False)
    lr = spec["lr"]

    class LastReturns(BaseCallback):
        """Raw returns (Monitor's ``episode`` info) per rollout."""

        def __init__(self) -> None:
            super().__init__()
            self.per_rollout: list[list[float]] = []

        def _on_rollout_start(self) -> None:
            self.per_rollout.append([])

        def _on_step(self) -> bool:
            for info in self.locals["infos"]:
                if "episode" in info:
                    self.per_rollout[-1].append(float(info["episode"]["r"]))
            return True

    model = PPO(
        "MlpPolicy",
        venv,
        learning_rate=(lambda left: lr * left) if spec["lr_linear"] else lr,
        policy_kwargs={
            "net_arch": {"pi": spec["net_arch"], "vf": spec["net_arch"]},
            "activation_fn": {"tanh": torch.nn.Tanh, "relu": torch.nn.ReLU}[spec["activation"]],
            "log_std_init": spec["log_std_init"],
            "optimizer_kwargs": {"eps": spec["adam_eps"]},
        },
        seed=spec["seed"],
        device="cpu",
        verbose=0,
        **spec["ppo"],
    )
    returns = LastReturns()
    start = time.perf_counter()
    model.learn(total_timesteps=spec["total_steps"], callback=returns)
    loop = time.perf_counter() - start
    model.save(pathlib.Path(spec_path).with_name(f"sb3_{vec}_{os.getpid()}"))
    venv.close()
    last = next((r for r in reversed(returns.per_rollout) if r), [float("nan")])
    result = {"loop_s": loop, "steps": model.num_timesteps, "return": statistics.fmean(last)}
    print("SB3_RESULT " + json.dumps(result), flush=True)


def _run(cmd: list[str], log: pathlib.Path) -> float:
    env = {**os.environ, "RAY_ENABLE_UV_RUN_RUNTIME_ENV": "0", "RAY_AUTH_MODE": "disabled"}
    start = time.perf_counter()
    with log.open("w") as f:
        code = subprocess.run(cmd, stdout=f, stderr=subprocess.STDOUT, env=env).returncode
    wall = time.perf_counter() - start
    if code:
        tail = "\n".join(log.read_text().splitlines()[-30:])
        raise SystemExit(f"{' '.join(cmd[:4])} ... exited with {code}; log {log}:\n{tail}")
    return wall


def _rlinf(preset: str, overrides: list[str], tmp: pathlib.Path, i: int | str) -> dict[str, float]:
    cli = shutil.which("rlinf-embodied", path=str(pathlib.Path(sys.executable).parent))
    if cli is None:
        raise SystemExit("rlinf-embodied is not installed in this environment (uv sync)")
    run_dir = tmp / f"rlinf_{i}"
    cmd = [cli, "train", "--config", preset, "--run-dir", str(run_dir), *overrides]
    wall = _run(cmd, tmp / f"rlinf_{i}.log")
    rows = [json.loads(x) for x in (run_dir / "metrics.jsonl").read_text().splitlines()]
    rows = [r for r in rows if "time/iteration" in r]
    first = next((r["time/first_step_s"] for r in rows if "time/first_step_s" in r), nan)
    # return_mean is NaN (or absent) in iterations where no episode finished.
    returns = [r["env/return_mean"] for r in rows if math.isfinite(r.get("env/return_mean", nan))]
    return {
        "loop_s": sum(r["time/iteration"] for r in rows),
        "wall_s": wall,
        "return": returns[-1] if returns else nan,
        "first_step_s": first,
    }


def _sb3(spec_path: pathlib.Path, vec: str, tmp: pathlib.Path, i: int) -> dict[str, float]:
    log = tmp / f"sb3_{vec}_{i}.log"
    wall = _run([sys.executable, __file__, "--sb3-worker", str(spec_path), "--vec", vec], log)
    line = next(x for x in log.read_text().splitlines() if x.startswith("SB3_RESULT "))
    return {**json.loads(line.removeprefix("SB3_RESULT ")), "wall_s": wall}


def _rlinf_name(backend: str) -> str:
    return "rlinf" if backend == "auto" else f"rlinf {backend}"


def _cells(name: str, runs: list[dict[str, float]]) -> str:
    med = {k: statistics.median(r[k] for r in runs) for k in ("loop_s", "wall_s", "return")}
    return (
        f"{name:<16} training loop {med['loop_s']:7.1f} s  whole command {med['wall_s']:7.1f} s  "
        f"final return {med['return']:8.1f}"
    )


def run_preset(
    preset: str, rounds: int, total_steps: int | None, backends: Sequence[str] = ("auto",)
) -> None:
    """Run ``rounds`` alternating rounds of the preset (once per ``cluster.backend`` in
    ``backends``; ``auto``: no override) vs SB3 and print the medians."""
    from rlinf.apps.embodied._config import load_embodied_config

    overrides = [f"runner.total_env_steps={total_steps}"] if total_steps else []
    cfg = load_embodied_config(preset, overrides)
    spec = sb3_spec(cfg)
    print(f"rlinf: rlinf-embodied train --config {preset} {' '.join(overrides)}")
    print(
        f"  preset as loaded: env {cfg.env}, policy {cfg.policy}, algo {cfg.algo}, "
        f"runner {cfg.runner}, placement {dict(cfg.placement)}, cluster {cfg.cluster}"
    )
    print(f"SB3 PPO (device cpu, 1 torch thread, {'/'.join(VEC_ENVS)}VecEnv): {spec}", flush=True)
    ours: dict[str, list[dict[str, float]]] = {b: [] for b in backends}
    sb3: dict[str, list[dict[str, float]]] = {v: [] for v in VEC_ENVS}
    with tempfile.TemporaryDirectory(prefix="embodied_preset_") as name:
        tmp = pathlib.Path(name)
        spec_path = tmp / "sb3_spec.json"
        spec_path.write_text(json.dumps(spec))
        for i in range(rounds):
            sides = [*(f"rlinf:{b}" for b in backends), *VEC_ENVS]
            for side in sides if i % 2 == 0 else sides[::-1]:
                if side.startswith("rlinf:"):
                    backend = side.removeprefix("rlinf:")
                    extra = [] if backend == "auto" else [f"cluster.backend={backend}"]
                    ours[backend].append(_rlinf(preset, [*overrides, *extra], tmp, f"{backend}{i}"))
                else:
                    sb3[side].append(_sb3(spec_path, side, tmp, i))
            for backend, runs in ours.items():
                print(f"round {i}: {_cells(_rlinf_name(backend), [runs[-1]])}", flush=True)
            for vec, runs in sb3.items():
                print(f"         {_cells(f'SB3 {vec}', [runs[-1]])}", flush=True)
    print(
        f"{preset}: {cfg.runner.total_env_steps} env steps, {os.cpu_count()} CPUs, load average "
        f"{os.getloadavg()[0]:.1f}; medians of {rounds} alternating rounds"
    )
    for backend, runs in ours.items():
        name = _rlinf_name(backend)
        print(_cells(name, runs))
        first = statistics.median(r["first_step_s"] for r in runs)
        print(f"{name} time to first step (process start to the end of update 1): {first:.1f} s")
    for vec, runs in sb3.items():
        print(_cells(f"SB3 {vec}", runs))
    best = min(VEC_ENVS, key=lambda v: statistics.median(r["loop_s"] for r in sb3[v]))
    for backend, runs in ours.items():
        for key, label, goal in (
            ("loop_s", "training loop", 1.5),
            ("wall_s", "whole command", 1.0),
        ):
            ratio = statistics.median(b[key] / o[key] for o, b in zip(runs, sb3[best], strict=True))
            verdict = "meets" if ratio >= goal else "below"
            print(
                f"{label}: {_rlinf_name(backend)} {ratio:.2f}x SB3 ({best}VecEnv) speed "
                f"({verdict} goal {goal}x)"
            )


def main() -> None:
    parser = argparse.ArgumentParser(description="SB3 side of benchmarks/embodied.py --preset")
    parser.add_argument("--sb3-worker", metavar="SPEC", required=True)
    parser.add_argument("--vec", choices=VEC_ENVS, required=True)
    args = parser.parse_args()
    sb3_worker(args.sb3_worker, args.vec)


if __name__ == "__main__":
    main()

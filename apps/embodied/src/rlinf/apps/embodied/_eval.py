"""Evaluate a checkpoint in-process (no Ray): deterministic actions, episode statistics."""

from __future__ import annotations

import dataclasses
import pathlib

import numpy as np
import torch

from rlinf.core import CONFIG_FILE, find_run_dir, load_checkpoint
from rlinf.envs import make_env
from rlinf.models import build_policy

from ._config import load_embodied_config

__all__ = ["evaluate"]


def evaluate(
    checkpoint: str | pathlib.Path,
    episodes: int = 10,
    num_envs: int = 4,
    deterministic: bool = True,
    seed: int = 12345,
) -> dict[str, float]:
    """Run ``episodes`` episodes with the policy of ``checkpoint`` (a checkpoint directory
    or a run directory, whose latest checkpoint is used).

    Returns ``{"eval/return_mean", "eval/return_std", "eval/length_mean",
    "eval/success_rate" (when the env reports success), "eval/episodes"}``.
    """
    state = load_checkpoint(pathlib.Path(checkpoint))
    cfg = load_embodied_config(find_run_dir(state["dir"]) / CONFIG_FILE)
    env = make_env(dataclasses.replace(cfg.env, num_envs=num_envs, seed=seed))
    try:
        policy = build_policy(cfg.policy, env.observation_spec, env.action_spec)
        policy.load_state_dict(state["actor"]["policy"])
        policy.eval()
        obs = env.reset()
        returns, lengths, successes = [], [], []
        while len(returns) < episodes:
            with torch.no_grad():
                action, _, _ = policy.act(obs, deterministic=deterministic)
            res = env.step(action.numpy())
            done = res.info.completed_episodes()
            returns += list(done["return"])
            lengths += list(done["length"])
            successes += [s for s in done["success"] if not np.isnan(s)]
            obs = res.obs
    finally:
        env.close()
    out = {
        "eval/episodes": float(len(returns[:episodes])),
        "eval/return_mean": float(np.mean(returns[:episodes])),
        "eval/return_std": float(np.std(returns[:episodes])),
        "eval/length_mean": float(np.mean(lengths[:episodes])),
    }
    if successes:
        out["eval/success_rate"] = float(np.mean(successes[:episodes]))
    return out

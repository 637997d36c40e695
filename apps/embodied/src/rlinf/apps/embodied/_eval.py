"""Evaluate a checkpoint in-process (no Ray): deterministic actions, episode statistics."""

from __future__ import annotations

import dataclasses
import pathlib
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import torch

from rlinf.core import CONFIG_FILE, find_run_dir, load_checkpoint
from rlinf.envs import Obs, VectorEnv, make_env
from rlinf.models import build_policy
from rlinf.models.embodied import ObsLayout, OffPolicyConfig, build_actor

from ._config import EmbodiedConfig, load_embodied_config

__all__ = ["episode_quota", "evaluate", "policy_fn"]


def policy_fn(
    state: Mapping[str, Any], cfg: EmbodiedConfig, env: VectorEnv, deterministic: bool
) -> Callable[[Obs], torch.Tensor]:
    """The checkpoint's policy as ``obs {k: [N, ...]} -> actions [N, *action_shape]``
    (no gradient): the squashed actor of an off-policy run, else the actor-critic."""
    if isinstance(cfg.algo, OffPolicyConfig):
        actor = build_actor(cfg.policy, env.observation_spec, env.action_spec)
        actor.load_state_dict(state["learner"]["learner"]["actor"])
        actor.eval()
        layout = ObsLayout.of(cfg.policy, env.observation_spec)

        def act(obs: Obs) -> torch.Tensor:
            return actor.act(layout.policy_input(obs), deterministic=deterministic)

        return act
    policy = build_policy(cfg.policy, env.observation_spec, env.action_spec)
    policy.load_state_dict(state["actor"]["policy"])
    policy.eval()

    def act_policy(obs: Obs) -> torch.Tensor:
        with torch.no_grad():
            return policy.act(obs, deterministic=deterministic)[0]

    return act_policy


def evaluate(
    checkpoint: str | pathlib.Path,
    episodes: int = 10,
    num_envs: int = 4,
    deterministic: bool = True,
    seed: int = 12345,
    overrides: Sequence[str] = (),
) -> dict[str, float]:
    """Run ``episodes`` episodes with the policy of ``checkpoint`` (a checkpoint directory
    or a run directory, whose latest checkpoint is used).

    ``overrides`` (``key=value``, as for ``train``) change the run's config for the
    evaluation only, e.g. ``env.env_kwargs.ignore_terminations=false`` to measure ManiSkill
    success under its own rule (an episode ends at its first success) for a policy trained
    on full-length episodes.

    Returns ``{"eval/return_mean", "eval/return_std", "eval/length_mean",
    "eval/success_rate" (when the env reports success), "eval/episodes"}``.
    """
    state = load_checkpoint(pathlib.Path(checkpoint))
    cfg = load_embodied_config(find_run_dir(state["dir"]) / CONFIG_FILE, overrides)
    env = make_env(dataclasses.replace(cfg.env, num_envs=num_envs, seed=seed))
    try:
        act = policy_fn(state, cfg, env, deterministic)
        # Each env contributes a fixed quota of its own first episodes. Taking the first
        # ``episodes`` to finish over all envs would over-sample short episodes (often the
        # successful ones), biasing every statistic.
        quota = episode_quota(episodes, env.num_envs)
        taken = np.zeros(env.num_envs, dtype=np.int64)
        returns, lengths, successes = [], [], []
        obs = env.reset()
        while (taken < quota).any():
            with torch.no_grad():
                action = act(obs)
            res = env.step(action.numpy())
            done = res.info.completed_episodes()
            for i, ret, length, success in zip(
                done["env"], done["return"], done["length"], done["success"], strict=True
            ):
                if taken[i] < quota[i]:
                    taken[i] += 1
                    returns.append(ret)
                    lengths.append(length)
                    if not np.isnan(success):
                        successes.append(success)
            obs = res.obs
    finally:
        env.close()
    out = {
        "eval/episodes": float(len(returns)),
        "eval/return_mean": float(np.mean(returns)),
        "eval/return_std": float(np.std(returns)),
        "eval/length_mean": float(np.mean(lengths)),
    }
    if successes:
        out["eval/success_rate"] = float(np.mean(successes))
    return out


def episode_quota(episodes: int, num_envs: int) -> np.ndarray:
    """``[num_envs]`` episodes each env contributes: ``episodes`` split as evenly as
    possible, the first envs taking one more."""
    if episodes < 1:
        raise ValueError(f"episodes must be >= 1, got {episodes}")
    q, r = divmod(episodes, num_envs)
    return np.array([q + (1 if i < r else 0) for i in range(num_envs)], dtype=np.int64)

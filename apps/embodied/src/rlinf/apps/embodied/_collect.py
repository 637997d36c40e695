"""``rlinf-embodied collect``: record a trained policy's transitions to an offline file.

In-process (no Ray), like ``eval``. Each env contributes a fixed quota of its own first
episodes (:func:`episode_quota`), and only whole episodes are written: the steps of an
episode still running when every quota is met are discarded, so the file never ends in a
cut episode that was not cut by the env. The format is
:mod:`rlinf.models.embodied._offline_data`'s (documented in the app README).
"""

from __future__ import annotations

import dataclasses
import pathlib
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from rlinf.core import CONFIG_FILE, ConfigError, find_run_dir, load_checkpoint
from rlinf.envs import make_env
from rlinf.models.embodied import flat_obs, save_offline_data, vector_obs_dim

from ._config import load_embodied_config
from ._eval import episode_quota, policy_fn

__all__ = ["collect"]


def collect(
    checkpoint: str | pathlib.Path,
    episodes: int,
    out: str | pathlib.Path | None = None,
    num_envs: int = 4,
    deterministic: bool = False,
    seed: int = 2024,
    overrides: Sequence[str] = (),
) -> tuple[pathlib.Path, dict[str, Any]]:
    """Run ``episodes`` episodes of the policy of ``checkpoint`` (a checkpoint directory or
    a run directory: its latest checkpoint) and write their transitions.

    Args:
        checkpoint: the source run or one of its checkpoints.
        episodes: whole episodes to record (>= 1).
        out: the file to write; default ``<run dir>/offline/<checkpoint>_<episodes>ep.npz``.
        num_envs: envs stepped together.
        deterministic: the policy's mode instead of samples (sampled by default: demos with
            some action noise cover more states).
        seed: env seed and the seed of the sampled actions (pick one the training run did
            not use to record fresh episodes).
        overrides: ``key=value`` changes to the run's config (e.g. ``env.max_episode_steps``).

    Returns:
        ``(path written, metadata)``; the metadata holds ``return_mean`` and
        ``num_transitions`` among the fields listed in the README.
    """
    if episodes < 1:
        raise ConfigError(f"--episodes must be >= 1, got {episodes}")
    if num_envs < 1:
        raise ConfigError(f"--num-envs must be >= 1, got {num_envs}")
    state = load_checkpoint(pathlib.Path(checkpoint))
    run_dir = find_run_dir(state["dir"])
    cfg = load_embodied_config(run_dir / CONFIG_FILE, overrides)
    if cfg.env.chunk_size != 1:
        raise ConfigError(
            f"env.chunk_size: collect records one action per transition, the run uses "
            f"chunks of {cfg.env.chunk_size}"
        )
    env = make_env(dataclasses.replace(cfg.env, num_envs=num_envs, seed=seed))
    try:
        spec = env.observation_spec
        try:
            vector_obs_dim(spec)
        except ValueError as e:
            raise ConfigError(f"env.env_id: {cfg.env.env_id}: collect writes {e}") from None
        act = policy_fn(state, cfg, env, deterministic)
        torch.manual_seed(seed)  # sampled actions: the same file for the same seed
        rows, returns = _run_episodes(env, act, episode_quota(episodes, env.num_envs))
        action_spec = env.action_spec
    finally:
        env.close()
    arrays = {k: np.stack([r[k] for r in rows]) for k in rows[0]}
    meta = {
        "env_id": cfg.env.env_id,
        "env_kind": cfg.env.kind,
        "obs_shapes": {k: list(spec[k].shape) for k in sorted(spec)},
        "action_shape": list(action_spec.shape),
        "action_low": _bounds(action_spec.low),
        "action_high": _bounds(action_spec.high),
        "source_run": str(run_dir),
        "checkpoint": str(state["dir"]),
        "algo": cfg.algo.name,
        "episodes": episodes,
        "deterministic": deterministic,
        "seed": seed,
        "episode_returns": [float(r) for r in returns],
        "return_mean": float(np.mean(returns)),
    }
    if out is None:
        out = run_dir / "offline" / f"{pathlib.Path(state['dir']).name}_{episodes}ep.npz"
    path = save_offline_data(out, arrays, meta)
    return path, {**meta, "num_transitions": len(rows), "path": str(path)}


def _bounds(values: Any) -> list[float] | None:
    return None if values is None else np.asarray(values, np.float64).reshape(-1).tolist()


def _run_episodes(
    env: Any, act: Any, quota: np.ndarray
) -> tuple[list[dict[str, np.ndarray]], list[float]]:
    """Step until every env finished its quota of episodes; returns the transitions of the
    counted episodes (each ``{"obs" [D], "actions" [A], "rewards" [], "next_obs" [D],
    "terminated" [], "truncated" []}``) and the episodes' returns."""
    n = env.num_envs
    taken = np.zeros(n, dtype=np.int64)
    pending: list[list[dict[str, np.ndarray]]] = [[] for _ in range(n)]
    rows: list[dict[str, np.ndarray]] = []
    returns: list[float] = []
    obs = env.reset()
    while (taken < quota).any():
        action = act(obs).numpy()
        res = env.step(action)
        flat, nxt = flat_obs(obs).numpy(), flat_obs(res.info.final_obs).numpy()
        for i in range(n):
            if taken[i] < quota[i]:
                pending[i].append(
                    {
                        "obs": flat[i],
                        "actions": np.asarray(action[i], np.float32).reshape(-1),
                        "rewards": np.float32(res.reward[i]),
                        "next_obs": nxt[i],
                        "terminated": np.bool_(res.terminated[i]),
                        "truncated": np.bool_(res.truncated[i]),
                    }
                )
        for i in np.flatnonzero(res.info.done):
            if taken[i] < quota[i]:
                rows.extend(pending[i])
                returns.append(float(res.info.episode_return[i]))
                taken[i] += 1
            pending[i] = []
        obs = res.obs
    return rows, returns

"""Learning check: rlinf.envs + rlinf.models + rlinf.algos together learn CartPole-v1.

The PPO loop lives here on purpose: it proves the pieces fit (final observations bootstrap
truncations, log-probs from act() are the ones evaluate() recomputes, GAE/PPO/value losses
from rlinf.algos) without being the trainer, which comes with the ActorWorker.
"""

from __future__ import annotations

import time

import numpy as np
import pytest
import torch

from rlinf.algos import PPOLossConfig, gae_advantages, ppo_policy_loss, value_loss
from rlinf.models import PolicyConfig, build_policy

envs = pytest.importorskip("rlinf.envs", reason="the learning check needs rlinf-envs")


def ppo_cartpole(
    seed: int,
    total_steps: int,
    num_envs: int = 8,
    horizon: int = 128,
    lr: float = 1e-3,
    epochs: int = 4,
    minibatches: int = 4,
    gamma: float = 0.99,
):
    """Train; returns ``(episodes, seconds)``: ``episodes`` is ``[(env_steps, return)]`` of
    every finished episode, in order, ``seconds`` the wall time."""
    torch.manual_seed(seed)
    env = envs.GymVectorEnv(envs.EnvConfig("CartPole-v1", num_envs=num_envs, seed=seed))
    policy = build_policy(
        PolicyConfig(hidden_sizes=(64, 64)), env.observation_spec, env.action_spec
    )
    opt = torch.optim.Adam(policy.parameters(), lr=lr, eps=1e-5)
    loss_cfg = PPOLossConfig(clip_low=0.2, clip_high=0.2, entropy_coef=0.0)
    n, t_max = num_envs, horizon
    obs = env.reset()
    episodes, steps, start = [], 0, time.perf_counter()
    updates = total_steps // (n * t_max)
    for update in range(updates):
        for group in opt.param_groups:
            group["lr"] = lr * (1.0 - update / updates)
        buf = {k: [] for k in ("obs", "act", "logp", "val", "rew", "term", "trunc", "next_val")}
        for _ in range(t_max):
            action, logp, value = policy.act(obs)
            res = env.step(action.numpy())
            with torch.no_grad():
                # V(final_obs): the value of the state each step reached, before any reset.
                next_value = policy.value(res.info.final_obs)
            for key, item in (
                ("obs", torch.as_tensor(obs["state"])),
                ("act", action),
                ("logp", logp),
                ("val", value),
                ("rew", torch.as_tensor(res.reward, dtype=torch.float32)),
                ("term", torch.as_tensor(res.terminated)),
                ("trunc", torch.as_tensor(res.truncated)),
                ("next_val", next_value),
            ):
                buf[key].append(item)
            steps += n
            episodes += [(steps, float(r)) for r in res.info.completed_episodes()["return"]]
            obs = res.obs
        b = {k: torch.stack(v, dim=1) for k, v in buf.items()}  # [N, T, ...]
        adv, ret = gae_advantages(
            b["rew"],
            b["val"],
            gamma=gamma,
            lam=0.95,
            next_values=b["next_val"],
            terminated=b["term"],
            truncated=b["trunc"],
        )
        flat = {k: v.reshape(n * t_max, *v.shape[2:]) for k, v in b.items()}
        adv, ret = adv.reshape(-1), ret.reshape(-1)
        for _ in range(epochs):
            for idx in torch.randperm(n * t_max).chunk(minibatches):
                logp, entropy, value = policy.evaluate(
                    {"state": flat["obs"][idx]}, flat["act"][idx]
                )
                a = adv[idx]
                a = (a - a.mean()) / (a.std() + 1e-8)
                pg, _ = ppo_policy_loss(
                    logp[None],
                    flat["logp"][idx][None],
                    a[None],
                    config=loss_cfg,
                    entropy=entropy[None],
                )
                vf, _ = value_loss(value, ret[idx])
                opt.zero_grad()
                (pg + 0.5 * vf).backward()
                torch.nn.utils.clip_grad_norm_(policy.parameters(), 0.5)
                opt.step()
    env.close()
    return episodes, time.perf_counter() - start


def mean_return(episodes, lo: int, hi: int) -> float:
    """Mean return of the episodes that finished in env steps ``(lo, hi]``."""
    return float(np.mean([r for s, r in episodes if lo < s <= hi]))


def run(seed: int, total_steps: int, **kwargs):
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny networks: threading overhead dominates on 2 cores
    try:
        return ppo_cartpole(seed=seed, total_steps=total_steps, **kwargs)
    finally:
        torch.set_num_threads(threads)


def test_ppo_learns_cartpole():
    total = 49_152  # 48 updates of 8 envs x 128 steps
    episodes, seconds = run(seed=1, total_steps=total)
    start, end = mean_return(episodes, 0, 2048), mean_return(episodes, total - 8192, total)
    print(
        f"\nCartPole-v1 PPO: return {start:.1f} -> {end:.1f} in {total} env steps, {seconds:.1f}s"
    )
    assert start < 40
    assert end > 150


@pytest.mark.slow
def test_ppo_solves_cartpole_within_100k_steps():
    """The issue's bar: average return >= 475 within 100k env steps (~20 s here)."""
    total = 98_304  # 96 updates of 8 envs x 128 steps
    episodes, seconds = run(seed=0, total_steps=total, epochs=10, minibatches=8)
    last = [r for _, r in episodes[-20:]]
    solved_at = next(
        (
            s
            for i, (s, _) in enumerate(episodes)
            if i >= 19 and np.mean([r for _, r in episodes[i - 19 : i + 1]]) >= 475
        ),
        None,
    )
    print(
        f"\nCartPole-v1 PPO: return {mean_return(episodes, 0, 2048):.1f} -> {np.mean(last):.1f} "
        f"(last 20 episodes) in {total} env steps, {seconds:.1f}s; 20-episode mean >= 475 "
        f"first at {solved_at} steps"
    )
    assert np.mean(last) >= 475

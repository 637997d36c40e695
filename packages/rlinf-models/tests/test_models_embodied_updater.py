"""PolicyUpdater against rlinf.algos computed by hand on a tiny batch."""

from __future__ import annotations

import copy
import math

import numpy as np
import pytest
import torch

from rlinf.algos import (
    ADVANTAGE_ESTIMATORS,
    PPOLossConfig,
    discounted_returns,
    gae_advantages,
    grpo_advantages,
    ppo_policy_loss,
    value_loss,
)
from rlinf.core import BatchShapeError, Trajectory
from rlinf.models import PolicyConfig, build_policy
from rlinf.models.embodied import POLICY_RECORDS, PolicyUpdater, UpdaterConfig


class _Spec:
    def __init__(self, shape, dtype=np.float32):
        self.shape, self.dtype = shape, np.dtype(dtype)


class _Action:
    kind, shape, n, low, high = "discrete", (), 2, None, None


OBS_SPEC = {"state": _Spec((3,))}


def _policy(seed=0, **kw):
    torch.manual_seed(seed)
    return build_policy(PolicyConfig(hidden_sizes=(8,), **kw), OBS_SPEC, _Action())


def _trajectory(n=4, t=5, seed=0):
    g = np.random.default_rng(seed)
    term = g.random((n, t)) < 0.2
    trunc = (g.random((n, t)) < 0.1) & ~term
    return {
        "obs": {"state": g.normal(size=(n, t, 3)).astype(np.float32)},
        "actions": g.integers(0, 2, size=(n, t)),
        "log_probs": np.log(np.full((n, t), 0.5, np.float32)),
        "values": g.normal(size=(n, t)).astype(np.float32),
        "next_values": g.normal(size=(n, t)).astype(np.float32),
        "rewards": g.normal(size=(n, t)),
        "terminated": term,
        "truncated": trunc,
    }


def _typed(traj) -> Trajectory:
    """The dict's arrays as the Trajectory env workers send (policy outputs in records)."""
    fields = {k: v for k, v in traj.items() if k not in POLICY_RECORDS}
    return Trajectory(**fields, records={k: traj[k] for k in POLICY_RECORDS})


def _tensors(traj):
    return {k: torch.as_tensor(v) for k, v in traj.items() if k != "obs"}


def test_ppo_advantages_are_gae_with_truncation_bootstrap():
    traj = _trajectory()
    up = PolicyUpdater(_policy(), UpdaterConfig(), total_updates=1)
    b = _tensors(traj)
    adv, ret = up.advantages(
        {
            **b,
            "rewards": b["rewards"].float(),
            "terminated": b["terminated"],
            "truncated": b["truncated"],
        }
    )
    ref_adv, ref_ret = gae_advantages(
        b["rewards"].float(),
        b["values"],
        gamma=0.99,
        lam=0.95,
        next_values=b["next_values"],
        terminated=b["terminated"],
        truncated=b["truncated"],
    )
    torch.testing.assert_close(adv, ref_adv)
    torch.testing.assert_close(ret, ref_ret)


def test_grpo_advantages_normalize_returns_per_step_within_groups():
    traj = _trajectory(n=4, t=3)
    up = PolicyUpdater(_policy(), UpdaterConfig(name="grpo", group_size=2), total_updates=1)
    b = _tensors(traj)
    adv, rtg = up.advantages({**b, "rewards": b["rewards"].float()})
    ref_rtg = discounted_returns(
        b["rewards"].float(), gamma=0.99, terminated=b["terminated"] | b["truncated"]
    )
    torch.testing.assert_close(rtg, ref_rtg)
    for step in range(3):
        for g in (0, 2):
            torch.testing.assert_close(
                adv[g : g + 2, step], grpo_advantages(ref_rtg[g : g + 2, step], 2)
            )


def _reference_batch(traj, cfg):
    """Tensors, minibatch-normalized GAE advantages, returns and flat obs, computed with the
    algos functions directly (the reference for one-minibatch updates)."""
    b = _tensors(traj)
    adv, ret = gae_advantages(
        b["rewards"].float(),
        b["values"],
        gamma=cfg.gamma,
        lam=cfg.lam,
        next_values=b["next_values"],
        terminated=b["terminated"],
        truncated=b["truncated"],
    )
    adv, ret = adv.reshape(-1), ret.reshape(-1)
    adv = (adv - adv.mean()) / (adv.std() + 1e-8)
    return b, adv, ret, {"state": torch.as_tensor(traj["obs"]["state"]).reshape(-1, 3)}


def test_one_minibatch_step_matches_hand_computed_loss():
    """epochs=1, minibatches=1: the update must equal one Adam step on the algos losses."""
    traj = _trajectory()
    cfg = UpdaterConfig(epochs=1, minibatches=1, lr=1e-2, max_grad_norm=0.3, entropy_coef=0.01)
    policy = _policy()
    ref = copy.deepcopy(policy)
    metrics = PolicyUpdater(policy, cfg, total_updates=1).update(_typed(traj))

    b, adv, ret, obs = _reference_batch(traj, cfg)
    logp, ent, value = ref.evaluate(obs, b["actions"].reshape(-1))
    pg, pg_parts = ppo_policy_loss(
        logp[None],
        b["log_probs"].reshape(-1)[None],
        adv[None],
        config=PPOLossConfig(entropy_coef=0.01),
        entropy=ent[None],
    )
    vf, _ = value_loss(value, ret)
    opt = torch.optim.Adam(ref.parameters(), lr=1e-2, eps=cfg.adam_eps)
    (pg + cfg.vf_coef * vf).backward()
    norm = torch.nn.utils.clip_grad_norm_(ref.parameters(), 0.3)
    opt.step()
    for (name, p), q in zip(policy.named_parameters(), ref.parameters(), strict=True):
        torch.testing.assert_close(p, q, msg=name)
    # pg_loss averages normalized advantages (mean 0 by construction), so it is ~1e-4 made
    # of O(1) terms: the updater's shuffled minibatch order shows as ~1e-8 absolute rounding.
    assert math.isclose(
        metrics["train/pg_loss"], float(pg_parts["pg_loss"]), rel_tol=1e-5, abs_tol=1e-7
    )
    assert math.isclose(metrics["train/vf_loss"], float(vf.detach()), rel_tol=1e-5)
    assert math.isclose(metrics["train/grad_norm"], float(norm), rel_tol=1e-5)


def test_linear_schedule_and_minibatch_count():
    cfg = UpdaterConfig(epochs=2, minibatches=3, lr=0.1)
    up = PolicyUpdater(_policy(), cfg, total_updates=4)
    assert [up.lr_at(u) for u in range(4)] == pytest.approx([0.1, 0.075, 0.05, 0.025])
    m0 = up.update(_typed(_trajectory()))
    m1 = up.update(_typed(_trajectory(seed=1)))
    assert (m0["train/lr"], m1["train/lr"]) == pytest.approx((0.1, 0.075))
    assert up.num_updates == 2
    const = PolicyUpdater(_policy(), UpdaterConfig(lr_schedule="constant"), total_updates=4)
    assert const.lr_at(3) == const.config.lr


def test_on_step_runs_before_every_minibatch_step_and_changes_nothing():
    """The dynamic scheduler's hook (lent threads take effect there): once per step, and
    the update is the one without it."""
    cfg = UpdaterConfig(epochs=2, minibatches=3)
    calls = []
    hooked = PolicyUpdater(_policy(), cfg, total_updates=2)
    plain = PolicyUpdater(_policy(), cfg, total_updates=2)
    torch.manual_seed(5)
    m_hooked = hooked.update(_typed(_trajectory()), on_step=lambda: calls.append(1))
    torch.manual_seed(5)
    m_plain = plain.update(_typed(_trajectory()))
    assert len(calls) == 2 * 3
    assert m_hooked == m_plain


def test_grpo_update_has_no_value_loss_and_obs_normalizer_is_updated():
    policy = _policy(normalize_obs=True)
    up = PolicyUpdater(policy, UpdaterConfig(name="grpo"), total_updates=2)
    metrics = up.update(_typed(_trajectory(n=4, t=5)))
    assert "train/vf_loss" not in metrics
    assert float(policy.normalizers["state"].count) == 20


def test_bad_batches_and_configs_raise():
    up = PolicyUpdater(_policy(), UpdaterConfig(name="grpo", group_size=3), total_updates=1)
    with pytest.raises(ValueError, match="does not divide"):
        up.update(_typed(_trajectory(n=4)))
    bad = _trajectory()
    bad["values"] = bad["values"][:, :2]
    with pytest.raises(ValueError, match="values"):
        PolicyUpdater(_policy(), UpdaterConfig(), 1).update(_typed(bad))
    with pytest.raises(ValueError, match=r"name: unknown advantage estimator 'sac'; registered: "):
        UpdaterConfig(name="sac")
    with pytest.raises(ValueError, match="group_size"):
        UpdaterConfig(group_size=1)


def test_update_reads_the_typed_batch_and_split_concat_changes_nothing():
    traj = _typed(_trajectory(n=6, t=4))
    rejoined = Trajectory.concat(traj.split(4))
    policies, metrics = [], []
    for batch in (traj, rejoined):
        torch.manual_seed(0)  # same minibatch order
        policy = _policy(seed=2)
        metrics.append(PolicyUpdater(policy, UpdaterConfig(epochs=2), 1).update(batch))
        policies.append(policy)
    assert metrics[0] == metrics[1]
    for p, q in zip(policies[0].parameters(), policies[1].parameters(), strict=True):
        torch.testing.assert_close(p, q, rtol=0, atol=0)
    up = PolicyUpdater(_policy(), UpdaterConfig(), 1)
    no_values = Trajectory(
        **{**traj.to_dict(), "records": {"log_probs": traj.records["log_probs"]}}
    )
    with pytest.raises(BatchShapeError, match=r"no 'values'.*the updater needs"):
        up.update(no_values)
    with pytest.raises(TypeError, match=r"takes a rlinf\.core\.Trajectory, got dict"):
        up.update(_trajectory())


def test_decoupled_step_matches_hand_computed_loss():
    """Stale data (behaviour log-probs 0.5 from an older policy): the clip is anchored at
    the starting policy's log-probs, the behaviour ones only weight the samples."""
    traj = _trajectory()
    cfg = UpdaterConfig(epochs=1, minibatches=1, lr=1e-2, entropy_coef=0.01, decoupled=True)
    policy = _policy()
    ref = copy.deepcopy(policy)
    metrics = PolicyUpdater(policy, cfg, total_updates=1).update(_typed(traj))

    b, adv, ret, obs = _reference_batch(traj, cfg)
    logp, ent, value = ref.evaluate(obs, b["actions"].reshape(-1))
    prox = logp.detach()
    # Hand-written decoupled objective: w * max(-A r, -A clip(r)), r = pi / pi_prox.
    weight = torch.exp(prox - b["log_probs"].reshape(-1)).clamp(max=5.0)
    ratio = torch.exp(logp - prox)
    pg = (weight * torch.max(-adv * ratio, -adv * ratio.clamp(0.8, 1.2))).mean()
    vf, _ = value_loss(value, ret)
    opt = torch.optim.Adam(ref.parameters(), lr=1e-2, eps=cfg.adam_eps)
    (pg - 0.01 * ent.mean() + cfg.vf_coef * vf).backward()
    torch.nn.utils.clip_grad_norm_(ref.parameters(), cfg.max_grad_norm)
    opt.step()
    for (name, p), q in zip(policy.named_parameters(), ref.parameters(), strict=True):
        torch.testing.assert_close(p, q, msg=name)
    assert math.isclose(metrics["train/behav_weight_mean"], float(weight.mean()), rel_tol=1e-5)
    # The first (only) step starts at the anchor: nothing is clipped.
    assert metrics["train/clip_frac"] == 0.0


def test_decoupled_equals_ppo_on_fresh_data():
    """Behaviour log-probs from the starting policy itself: weights 1, same anchor."""
    traj = _trajectory(n=6, t=4)
    start = _policy(seed=3)
    obs = {"state": torch.as_tensor(traj["obs"]["state"]).reshape(-1, 3)}
    with torch.no_grad():
        logp = start.evaluate(obs, torch.as_tensor(traj["actions"]).reshape(-1))[0]
    traj["log_probs"] = logp.reshape(6, 4).numpy()
    policies = []
    for decoupled in (False, True):
        policy = copy.deepcopy(start)
        torch.manual_seed(0)  # same minibatch order
        cfg = UpdaterConfig(epochs=2, minibatches=2, lr=1e-2, decoupled=decoupled)
        PolicyUpdater(policy, cfg, total_updates=1).update(_typed(traj))
        policies.append(policy)
    for p, q in zip(policies[0].parameters(), policies[1].parameters(), strict=True):
        torch.testing.assert_close(p, q)


@pytest.mark.parametrize("name", [*ADVANTAGE_ESTIMATORS.names(), "ppo"])
def test_every_registered_estimator_is_selectable(name):
    cfg = UpdaterConfig(name=name, group_size=2, epochs=1, minibatches=1)
    up = PolicyUpdater(_policy(), cfg, total_updates=1)
    traj = _trajectory()
    batch = _tensors(traj)
    adv, _ = up.advantages(batch)
    if name == "rloo":  # per step: returns-to-go minus the other env of the pair
        rtg = discounted_returns(
            batch["rewards"], gamma=cfg.gamma, terminated=batch["terminated"] | batch["truncated"]
        )
        torch.testing.assert_close(adv, rtg - rtg.view(2, 2, -1).flip(1).reshape(4, -1))
    assert adv.shape == traj["rewards"].shape and torch.isfinite(adv).all()
    metrics = up.update(_typed(traj))
    assert ("train/vf_loss" in metrics) == cfg.advantage_estimator.needs_values

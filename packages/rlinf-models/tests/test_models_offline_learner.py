"""The offline transition file, and OffPolicyLearner's RLPD / IQL modes: mixed batches,
IQL's offline phase, dataset-action log-densities, checkpoint round trips."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import torch

from rlinf.models import PolicyConfig
from rlinf.models.embodied import (
    OfflineDataError,
    OffPolicyConfig,
    OffPolicyLearner,
    load_offline_data,
    read_offline_metadata,
    save_offline_data,
)

BOX = SimpleNamespace(
    kind="continuous", shape=(1,), n=None, low=np.array([-2.0]), high=np.array([2.0])
)
SPEC = {"s": SimpleNamespace(shape=(3,), dtype=np.dtype("float32"))}
POLICY = PolicyConfig(hidden_sizes=(16,), activation="relu")


def arrays(n=40, d=3, a=1, seed=0, obs=None, actions=None, rewards=None):
    rng = np.random.default_rng(seed)
    return {
        "obs": rng.normal(size=(n, d)).astype(np.float32) if obs is None else obs,
        "actions": rng.uniform(-2, 2, size=(n, a)) if actions is None else actions,
        "rewards": rng.normal(size=n) if rewards is None else rewards,
        "next_obs": rng.normal(size=(n, d)),
        "terminated": rng.random(n) < 0.1,
        "truncated": np.zeros(n, bool),
    }


def write(tmp_path, name="demo.npz", env_id="Pendulum-v1", **kw):
    return save_offline_data(tmp_path / name, arrays(**kw), {"env_id": env_id, "source": "t"})


def config(path, **kw):
    base = dict(
        critic_hidden_sizes=(16,),
        buffer_size=1000,
        batch_size=8,
        learning_starts=8,
        offline_data=str(path),
    )
    return OffPolicyConfig(**{**base, **kw})


def test_file_round_trip(tmp_path):
    src = arrays(n=12)
    path = save_offline_data(tmp_path / "d.npz", src, {"env_id": "Pendulum-v1", "episodes": 3})
    assert path == tmp_path / "d.npz"  # no ".npz" appended twice
    batch, meta = load_offline_data(path, env_id="Pendulum-v1", obs_dim=3, action_dim=1)
    assert meta["episodes"] == 3 and meta["num_transitions"] == 12
    assert meta == read_offline_metadata(path)
    assert sorted(batch) == ["actions", "next_obs", "obs", "rewards", "terminated"]
    np.testing.assert_allclose(batch["obs"].numpy(), src["obs"])
    np.testing.assert_allclose(batch["rewards"].numpy(), src["rewards"].astype(np.float32))
    np.testing.assert_array_equal(batch["terminated"].numpy(), src["terminated"].astype(float))


@pytest.mark.parametrize(
    ("kw", "pattern"),
    [
        ({"env_id": "Hopper-v5"}, "collected on env 'Pendulum-v1', but this run's env.env_id"),
        ({"obs_dim": 11}, "has obs_dim=3, but this run's env .*obs_dim=11"),
        ({"action_dim": 3}, "has action_dim=1, but .*action_dim=3"),
        ({"min_transitions": 41}, "holds 40 transitions, fewer than the 41"),
    ],
)
def test_load_names_the_mismatch(tmp_path, kw, pattern):
    path = write(tmp_path)
    with pytest.raises(OfflineDataError, match=pattern):
        load_offline_data(path, **kw)


def test_missing_malformed_and_foreign_files(tmp_path):
    with pytest.raises(OfflineDataError, match=r"does not exist .*rlinf-embodied collect"):
        load_offline_data(tmp_path / "nope.npz")
    (tmp_path / "text.npz").write_text("hello")
    with pytest.raises(OfflineDataError, match="is not an npz file"):
        load_offline_data(tmp_path / "text.npz")
    np.savez(tmp_path / "other.npz", obs=np.zeros((2, 3)))
    with pytest.raises(OfflineDataError, match="has no 'metadata' entry"):
        load_offline_data(tmp_path / "other.npz")
    # a file whose arrays disagree with its own metadata
    path = write(tmp_path)
    with np.load(path) as data:
        parts = {k: data[k] for k in data.files}
    parts["next_obs"] = parts["next_obs"][:, :2]
    np.savez(tmp_path / "bad.npz", **parts)
    with pytest.raises(
        OfflineDataError, match=r"'next_obs' has shape \(40, 2\), expected \(40, 3\)"
    ):
        load_offline_data(tmp_path / "bad.npz")
    bad = arrays()
    bad["rewards"][3] = np.nan
    with pytest.raises(OfflineDataError, match="'rewards' holds NaN"):
        save_offline_data(tmp_path / "nan.npz", bad, {"env_id": "x"})


def online(learner, tmp_path, n, seed=1):
    """Add ``n`` random transitions to the learner's online buffer."""
    learner.buffer.add(load_offline_data(write(tmp_path, f"on{seed}.npz", n=n, seed=seed))[0])


def test_rlpd_learner_layernorm_ensemble_and_mixed_batches(tmp_path):
    path = write(tmp_path, n=40)
    cfg = config(path, name="rlpd", num_critics=5, subset_size=2, offline_ratio=0.5)
    learner = OffPolicyLearner(cfg, POLICY, SPEC, BOX, seed=0)
    assert len(learner.offline) == 40 and cfg.offline_batch == 4
    assert any(isinstance(m, torch.nn.LayerNorm) for m in learner.critic.modules())
    assert len(learner.critic.members) == 5 and learner.target is not None
    online(learner, tmp_path, 3)
    # the online share of a batch of 8 is 4: three online transitions cannot supply it
    with pytest.raises(ValueError, match="fewer than the 4 of batch_size 8"):
        learner.update(1)
    online(learner, tmp_path, 5, seed=2)
    torch.manual_seed(0)
    batch = learner._sample()
    # the first half comes from the offline file, the second from the online buffer
    offline_obs = learner.offline.ordered()["obs"]
    online_obs = learner.buffer.ordered()["obs"]
    for row in batch["obs"][:4]:
        assert (offline_obs == row).all(-1).any()
    for row in batch["obs"][4:]:
        assert (online_obs == row).all(-1).any()
    before = [p.clone() for p in learner.target.parameters()]
    metrics = learner.update(3)
    assert learner.updates == 3 and "train/critic_loss" in metrics and "train/alpha" in metrics
    assert any(
        not torch.equal(a, b) for a, b in zip(before, learner.target.parameters(), strict=True)
    )


def test_offline_buffer_checked_against_the_env(tmp_path):
    path = write(tmp_path, d=5)
    with pytest.raises(OfflineDataError, match="has obs_dim=5, but this run's env"):
        OffPolicyLearner(config(path, name="rlpd"), POLICY, SPEC, BOX)


def test_log_prob_of_dataset_actions_matches_sampling():
    learner = OffPolicyLearner(
        OffPolicyConfig(
            critic_hidden_sizes=(16,), batch_size=8, learning_starts=8, buffer_size=100
        ),
        POLICY,
        SPEC,
        BOX,
    )
    obs = torch.randn(6, 3)
    torch.manual_seed(3)
    action, logp = learner.actor(obs)
    torch.testing.assert_close(learner.actor.log_prob(obs, action), logp, atol=2e-3, rtol=1e-4)
    # actions on the bounds stay finite
    edge = torch.tensor([[2.0], [-2.0], [2.0], [-2.0], [0.0], [1.0]])
    assert torch.isfinite(learner.actor.log_prob(obs, edge)).all()


def test_iql_offline_phase_runs_once_and_learns_the_better_action(tmp_path):
    """A one-step bandit: action +1.5 pays 1, action -1.5 pays 0 (every step terminal).
    The AWR actor trained offline must pick the paying action."""
    n = 64
    acts = np.where(np.arange(n) % 2 == 0, 1.5, -1.5)[:, None]
    data = arrays(n=n, obs=np.ones((n, 3), np.float32), actions=acts, rewards=(acts[:, 0] > 0))
    data["terminated"] = np.ones(n, bool)
    path = save_offline_data(tmp_path / "bandit.npz", data, {"env_id": "bandit"})
    cfg = config(path, name="iql", offline_steps=300, actor_lr=3e-3, critic_lr=3e-3, value_lr=3e-3)
    learner = OffPolicyLearner(cfg, POLICY, SPEC, BOX, seed=0)
    metrics = learner.pretrain(250)
    assert learner.offline_updates == 250 and "train/value_loss" in metrics
    assert "train/alpha" not in metrics  # IQL has no temperature
    learner.pretrain(1000)  # only the 50 left of offline_steps
    assert learner.offline_updates == learner.updates == 300
    assert learner.pretrain(10) == {} and learner.updates == 300
    act = learner.actor.act(torch.ones(1, 3), deterministic=True)
    assert float(act) > 0.5, float(act)  # behaviour cloning alone would give about 0
    # the offline phase owes no online updates and takes none from them
    assert learner.updates_due() == 0
    learner.buffer.add(load_offline_data(path)[0])
    learner.added = 64
    assert learner.updates_due() == 64 - 8 + 1

    state = learner.state_dict()
    other = OffPolicyLearner(cfg, POLICY, SPEC, BOX, seed=5)
    other.load_state_dict(state)
    assert other.offline_updates == 300
    for a, b in zip(learner.value.net.parameters(), other.value.net.parameters(), strict=True):
        assert torch.equal(a, b)


def test_offline_config_errors(tmp_path):
    with pytest.raises(ValueError, match="offline_steps is IQL's offline phase; rlpd"):
        config(tmp_path, name="rlpd", offline_steps=5)
    with pytest.raises(ValueError, match="subset_size must lie in"):
        config(tmp_path, name="rlpd", num_critics=2, subset_size=3)
    with pytest.raises(ValueError, match="offline_ratio must lie in"):
        config(tmp_path, offline_ratio=1.0)
    with pytest.raises(ValueError, match="pretrain is IQL's offline phase"):
        OffPolicyLearner(
            OffPolicyConfig(critic_hidden_sizes=(16,), batch_size=8, learning_starts=8),
            POLICY,
            SPEC,
            BOX,
        ).pretrain(1)

"""Offline data end to end (Ray): ``collect`` from a tiny SAC run, its file round trip, then
RLPD and IQL each training a few updates on it with a checkpoint and resume; and (slow) RLPD
and IQL with collected Pendulum demos beating the untrained policy."""

from __future__ import annotations

import pathlib

import numpy as np
import pytest

from rlinf.apps.embodied.cli import main
from rlinf.core import read_metrics
from rlinf.models.embodied import load_offline_data

TINY = [
    "env.num_envs=2",
    "env.max_episode_steps=50",
    "runner.horizon=25",
    "runner.progress=false",
    "policy.hidden_sizes=[32,32]",
    "algo.critic_hidden_sizes=[32,32]",
    "algo.batch_size=64",
    "algo.learning_starts=100",
    "algo.buffer_size=5000",
]


@pytest.fixture(scope="module")
def sac_run(ray_cluster, tmp_path_factory) -> pathlib.Path:
    run_dir = tmp_path_factory.mktemp("sac") / "run"
    args = ["train", "--config", "sac_pendulum", "--run-dir", str(run_dir), *TINY]
    assert main([*args, "runner.total_env_steps=150"]) == 0
    return run_dir


def test_collect_round_trip(sac_run: pathlib.Path, tmp_path: pathlib.Path, capsys):
    out = tmp_path / "demos" / "p.npz"
    args = ["collect", "--checkpoint", str(sac_run), "--episodes", "3", "--num-envs", "2"]
    assert main([*args, "--out", str(out), "--deterministic", "env.max_episode_steps=40"]) == 0
    assert f"wrote {out}: 120 transitions of 3 episodes on Pendulum-v1" in capsys.readouterr().out
    batch, meta = load_offline_data(out, env_id="Pendulum-v1", obs_dim=3, action_dim=1)
    assert meta["source_run"] == str(sac_run) and meta["algo"] == "sac"
    assert meta["checkpoint"].endswith("iteration_000003") and meta["deterministic"] is True
    assert meta["obs_shapes"] == {"state": [3]} and meta["action_low"] == [-2.0]
    assert batch["obs"].shape == (120, 3) and batch["actions"].shape == (120, 1)
    assert float(batch["actions"].abs().max()) <= 2.0
    with np.load(out) as data:  # Pendulum only truncates: every 40th step
        np.testing.assert_array_equal(np.flatnonzero(data["truncated"]), [39, 79, 119])
        assert not data["terminated"].any()
        # within an episode the next state is the following step's state
        np.testing.assert_allclose(data["next_obs"][:39], data["obs"][1:40])
        # the episode returns in the metadata are the sums of the recorded rewards
        sums = data["rewards"].reshape(3, 40).sum(1)
    np.testing.assert_allclose(sorted(sums), sorted(meta["episode_returns"]), rtol=1e-5)
    # the file's default place is in the source run
    assert main(["collect", "--checkpoint", str(sac_run), "--episodes", "1"]) == 0
    assert (sac_run / "offline" / "iteration_000003_1ep.npz").is_file()


def test_collect_rejects_bad_input(sac_run: pathlib.Path, tmp_path: pathlib.Path, capsys):
    assert main(["collect", "--checkpoint", str(sac_run), "--episodes", "0"]) == 2
    assert "--episodes must be >= 1, got 0" in capsys.readouterr().err
    assert main(["collect", "--checkpoint", str(tmp_path / "nope"), "--episodes", "1"]) == 2


# IQL's run is slow: the quick suite keeps RLPD's (the same offline file, learner worker,
# checkpoint and resume path) and IQL's learner without Ray (test_models_offline_learner).
@pytest.mark.parametrize("algo", ["rlpd", pytest.param("iql", marks=pytest.mark.slow(seconds=155))])
def test_offline_algorithms_train_checkpoint_and_resume(
    sac_run: pathlib.Path, tmp_path: pathlib.Path, algo
):
    demos = tmp_path / "demos.npz"
    collect = ["collect", "--checkpoint", str(sac_run), "--episodes", "4", "--out", str(demos)]
    assert main(collect) == 0
    run_dir = tmp_path / "run"
    extra = ["algo.num_critics=4"] if algo == "rlpd" else ["algo.offline_steps=30"]
    args = ["train", "--config", f"{algo}_pendulum", "--run-dir", str(run_dir), *TINY, *extra]
    assert main([*args, f"algo.offline_data={demos}", "runner.total_env_steps=200"]) == 0
    rows = read_metrics(run_dir)
    online = [r for r in rows if r["step"] > 0]
    assert [r["step"] for r in online] == [50, 100, 150, 200]
    if algo == "iql":  # the offline phase, logged at step 0, then online on top of it
        assert rows[0]["step"] == 0 and rows[0]["train/offline_updates"] == 30.0
        assert "train/value_loss" in rows[0] and "train/weight_mean" in online[-1]
    else:
        assert "train/critic_loss" in online[-1] and "train/alpha" in online[-1]
    # updates start once 100 online transitions are in (utd 2 for RLPD, 1 for IQL)
    utd = 2 if algo == "rlpd" else 1
    offline = 30 if algo == "iql" else 0
    assert online[-1]["train/updates"] == offline + utd * (150 - 100 + 1)
    assert main(["train", "--resume", str(run_dir), "runner.total_env_steps=250"]) == 0
    rows = read_metrics(run_dir)
    assert [r["step"] for r in rows][-1] == 250
    assert rows[-1]["train/updates"] == offline + utd * (200 - 100 + 1)  # no offline repeat
    assert sum(r["step"] == 0 for r in rows) == (1 if algo == "iql" else 0)
    assert main(["eval", "--checkpoint", str(run_dir), "--episodes", "2"]) == 0


SMALL = ["runner.progress=false", "policy.hidden_sizes=[64,64]", "algo.critic_hidden_sizes=[64,64]"]


@pytest.fixture(scope="module")
def teacher_demos(ray_cluster, tmp_path_factory) -> tuple[pathlib.Path, float, float]:
    """A SAC teacher (4000 steps) and 8 of its episodes as demos: (file, the untrained
    policy's return (the teacher's first episodes), the demos' mean return)."""
    root = tmp_path_factory.mktemp("teacher")
    args = ["train", "--config", "sac_pendulum", "--run-dir", str(root / "run"), *SMALL]
    assert main([*args, "runner.total_env_steps=4000"]) == 0
    rows = read_metrics(root / "run")
    untrained = next(r["env/return_mean"] for r in rows if "env/return_mean" in r)
    demos = root / "demos.npz"
    collect = ["collect", "--checkpoint", str(root / "run"), "--episodes", "8", "--out", str(demos)]
    assert main(collect) == 0
    demo_mean = load_offline_data(demos)[1]["return_mean"]
    assert untrained < -900 and demo_mean > untrained + 300, (untrained, demo_mean)
    return demos, untrained, demo_mean


def _student(tmp_path: pathlib.Path, algo: str, demos: pathlib.Path, extra: list[str]) -> list:
    run_dir = tmp_path / algo
    args = ["train", "--config", f"{algo}_pendulum", "--run-dir", str(run_dir), *SMALL, *extra]
    assert main([*args, f"algo.offline_data={demos}"]) == 0
    return [r["env/return_mean"] for r in read_metrics(run_dir) if "env/return_mean" in r]


@pytest.mark.slow(seconds=185)
def test_rlpd_learns_pendulum_with_collected_demos(teacher_demos, tmp_path: pathlib.Path):
    """RLPD from scratch with the demos: its first episodes at the untrained policy's
    return, its last far above it within 4000 steps."""
    demos, untrained, demo_mean = teacher_demos
    extra = ["algo.num_critics=4", "algo.utd_ratio=1", "runner.total_env_steps=4000"]
    returns = _student(tmp_path, "rlpd", demos, extra)
    assert returns[0] < untrained + 250, (untrained, demo_mean, returns)
    assert returns[-1] > returns[0] + 400, (untrained, demo_mean, returns)


@pytest.mark.slow
def test_iql_offline_phase_lifts_pendulum_from_collected_demos(
    teacher_demos, tmp_path: pathlib.Path
):
    """IQL's offline phase alone lifts the return far above the untrained policy's: the
    first online episodes are acted by the pre-trained actor."""
    demos, untrained, demo_mean = teacher_demos
    extra = ["algo.offline_steps=3000", "runner.total_env_steps=800"]
    returns = _student(tmp_path, "iql", demos, extra)
    assert returns[0] > untrained + 250, (untrained, demo_mean, returns)

"""TypedBatch / Trajectory: validation naming the field, split/concat round trips."""

from __future__ import annotations

import dataclasses
import pickle
from typing import Any, ClassVar

import numpy as np
import pytest
import torch

from rlinf.core import BatchShapeError, Trajectory, TypedBatch, concat_batches, split_batch


def _traj(n: int = 5, t: int = 3, seed: int = 0) -> Trajectory:
    g = np.random.default_rng(seed)
    return Trajectory(
        actions=g.normal(size=(n, t, 2)).astype(np.float32),
        rewards=g.normal(size=(n, t)),
        terminated=g.random((n, t)) < 0.3,
        truncated=np.zeros((n, t), bool),
        obs={"state": g.normal(size=(n, t, 4)), "image": g.integers(0, 255, (n, t, 2, 2, 3))},
        records={"log_probs": g.normal(size=(n, t)), "values": g.normal(size=(n, t))},
    )


def _assert_same(a: Trajectory, b: Trajectory) -> None:
    da, db = a.to_dict(), b.to_dict()
    assert da.keys() == db.keys()
    for key, value in da.items():
        if isinstance(value, dict):
            assert value.keys() == db[key].keys()
            for k in value:
                np.testing.assert_array_equal(value[k], db[key][k])
        else:
            np.testing.assert_array_equal(value, db[key])


def test_split_then_concat_round_trips():
    traj = _traj(n=5)
    assert (traj.num_envs, traj.num_steps, traj.batch_size) == (5, 3, 5)
    parts = traj.split(3)
    assert [p.num_envs for p in parts] == [2, 2, 1]
    np.testing.assert_array_equal(parts[1].obs["state"], traj.obs["state"][2:4])
    np.testing.assert_array_equal(parts[2].records["values"], traj.records["values"][4:])
    _assert_same(Trajectory.concat(parts), traj)
    # core's generic helpers defer to the batch's own split / concat.
    _assert_same(concat_batches(split_batch(traj, 2)), traj)
    # Tensors work the same way, and a batch pickles (it travels through Ray).
    tensors = traj.map(torch.as_tensor)
    assert isinstance(tensors.obs["state"], torch.Tensor)
    joined = Trajectory.concat(tensors.split(4))
    torch.testing.assert_close(joined.actions, torch.as_tensor(traj.actions))
    _assert_same(pickle.loads(pickle.dumps(traj)), traj)


def test_wrong_shapes_and_missing_fields_name_the_field():
    good = _traj().to_dict()
    with pytest.raises(
        BatchShapeError,
        match=r"Trajectory.rewards has shape \(5, 2\): "
        r"dimension T is 2, expected 3",
    ):
        Trajectory.from_dict({**good, "rewards": np.zeros((5, 2))})
    with pytest.raises(BatchShapeError, match=r"Trajectory.terminated must have shape \[N, T\]"):
        Trajectory.from_dict({**good, "terminated": np.zeros((5, 3, 1), bool)})
    bad_obs = {**good["obs"], "image": np.zeros((4, 3, 2))}
    with pytest.raises(BatchShapeError, match=r"Trajectory.obs\['image'\].*dimension N is 4"):
        Trajectory.from_dict({**good, "obs": bad_obs})
    with pytest.raises(
        BatchShapeError, match=r"Trajectory.actions must have shape \[N, T, \.\.\.\]"
    ):
        Trajectory.from_dict({**good, "actions": np.zeros(5)})
    with pytest.raises(BatchShapeError, match=r"Trajectory.actions must be a numpy array"):
        Trajectory.from_dict({**good, "actions": [[0.0] * 3] * 5})
    with pytest.raises(BatchShapeError, match=r"missing fields \['truncated'\]"):
        Trajectory.from_dict({k: v for k, v in good.items() if k != "truncated"})
    with pytest.raises(BatchShapeError, match=r"unknown fields \['dones'\]"):
        Trajectory.from_dict({**good, "dones": good["terminated"]})
    traj = _traj()
    with pytest.raises(BatchShapeError, match=r"no 'next_values'.*\['log_probs', 'values'\]"):
        traj.record("next_values")
    assert traj.record("values") is traj.records["values"]
    with pytest.raises(BatchShapeError, match=r"records\['values'\] must have shape \[N\]"):
        traj.record("values", shape=("N",))


def test_concat_checks_parts():
    a, b = _traj(n=2), _traj(n=3, seed=1)
    with pytest.raises(BatchShapeError, match=r"Trajectory.obs: parts have keys"):
        Trajectory.concat([a, dataclasses.replace(b, obs={"state": b.obs["state"]})])
    with pytest.raises(BatchShapeError, match=r"differ outside the batch dimension N"):
        Trajectory.concat([a, _traj(n=2, t=4)])
    with pytest.raises(ValueError, match="no Trajectory"):
        Trajectory.concat([])
    with pytest.raises(ValueError, match="cannot split a batch of 2 into 3"):
        a.split(3)


def test_a_new_batch_type_declares_its_shapes():
    @dataclasses.dataclass(frozen=True, eq=False)
    class Pairs(TypedBatch):
        left: Any
        right: Any
        SHAPES: ClassVar[dict[str, str]] = {"left": "B 2", "right": "B"}

    p = Pairs(np.zeros((4, 2)), np.arange(4))
    assert p.dims == {"B": 4} and [len(q.right) for q in p.split(3)] == [2, 1, 1]
    with pytest.raises(BatchShapeError, match=r"Pairs.left.*dimension 2 is 3, expected 2"):
        Pairs(np.zeros((4, 3)), np.arange(4))

    @dataclasses.dataclass(frozen=True, eq=False)
    class Undeclared(TypedBatch):
        x: Any
        SHAPES: ClassVar[dict[str, str]] = {}

    with pytest.raises(TypeError, match=r"no declared shape for fields \['x'\]"):
        Undeclared(np.zeros(2))

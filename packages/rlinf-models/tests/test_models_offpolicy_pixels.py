"""The off-policy learner from pixels (DrQ): uint8 frames in the buffer, random shift on the
learner's batches only, the critic training the shared encoder and the actor not."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import torch

from rlinf.algos import random_shift
from rlinf.core import Trajectory
from rlinf.models import PolicyConfig
from rlinf.models.embodied import (
    ObsLayout,
    OffPolicyConfig,
    OffPolicyLearner,
    OffPolicyResponder,
    WeightSnapshot,
    build_actor,
)

H = W = 12
BOX = SimpleNamespace(
    kind="continuous", shape=(2,), n=None, low=np.array([-1.0, -1.0]), high=np.array([1.0, 1.0])
)
SPEC = {
    "img": SimpleNamespace(shape=(H, W, 6), dtype=np.dtype("uint8")),
    "state": SimpleNamespace(shape=(3,), dtype=np.dtype("float32")),
}
POLICY = PolicyConfig(
    encoder="cnn",
    hidden_sizes=(16,),
    activation="relu",
    cnn_channels=(4, 8),
    cnn_kernels=(3, 3),
    cnn_strides=(2, 1),
    cnn_features=16,
)


def config(**kw):
    base = dict(critic_hidden_sizes=(16,), buffer_size=100, batch_size=8, learning_starts=8)
    return OffPolicyConfig(**{**base, **kw})


def pixel_traj(n=2, t=5, seed=0):
    rng = np.random.default_rng(seed)

    def frames():
        return rng.integers(0, 256, size=(n, t, H, W, 6), dtype=np.uint8)

    return Trajectory(
        obs={"img": frames(), "state": rng.normal(size=(n, t, 3)).astype(np.float32)},
        actions=rng.uniform(-1, 1, size=(n, t, 2)).astype(np.float32),
        rewards=rng.normal(size=(n, t)).astype(np.float32),
        terminated=np.zeros((n, t), bool),
        truncated=np.zeros((n, t), bool),
        records={
            "next_obs.img": frames(),
            "next_obs.state": rng.normal(size=(n, t, 3)).astype(np.float32),
        },
    )


def test_buffer_stores_uint8_frames_and_round_trips(tmp_path):
    learner = OffPolicyLearner(config(), POLICY, SPEC, BOX)
    traj = pixel_traj()
    assert learner.add(traj) == 10
    items = learner.buffer.ordered()
    assert items["obs.img"].dtype == torch.uint8 and items["next_obs.img"].dtype == torch.uint8
    assert tuple(items["obs.img"].shape) == (10, H, W, 6)
    assert items["obs.state"].dtype == torch.float32
    # Env-major rows: row 7 is env 1, step 2.
    np.testing.assert_array_equal(
        items["next_obs.img"][7].numpy(), traj.records["next_obs.img"][1, 2]
    )
    path = str(tmp_path / "buf.npz")
    learner.save_buffer(path)
    with np.load(path) as data:
        assert data["obs.img"].dtype == np.uint8
    other = OffPolicyLearner(config(), POLICY, SPEC, BOX)
    assert other.load_buffer(path) == 10
    for k, v in other.buffer.ordered().items():
        assert v.dtype == items[k].dtype
        torch.testing.assert_close(v, items[k], rtol=0, atol=0)


def test_random_shift_applies_to_learner_batches_only():
    learner = OffPolicyLearner(config(augment_pad=3), POLICY, SPEC, BOX, seed=1)
    learner.add(pixel_traj())
    seen: list[dict[str, torch.Tensor]] = []
    learner.encoder.register_forward_pre_hook(lambda _, args: seen.append(args[0]))
    b = learner.buffer.sample(8, learner.generator)
    replay = torch.Generator().manual_seed(0)
    replay.set_state(learner.generator.get_state())
    learner._features(b)
    want_obs = random_shift(b["obs.img"], 3, replay)
    want_next = random_shift(b["next_obs.img"], 3, replay)
    assert [s["img"].dtype for s in seen] == [torch.uint8, torch.uint8]
    torch.testing.assert_close(seen[0]["img"], want_obs, rtol=0, atol=0)
    torch.testing.assert_close(seen[1]["img"], want_next, rtol=0, atol=0)
    assert not torch.equal(seen[0]["img"], b["obs.img"])  # the shift did move pixels
    torch.testing.assert_close(seen[0]["state"], b["obs.state"])  # vectors untouched
    seen.clear()
    none = OffPolicyLearner(config(augment="none"), POLICY, SPEC, BOX, seed=1)
    none.encoder.register_forward_pre_hook(lambda _, args: seen.append(args[0]))
    none._features(b)
    assert torch.equal(seen[0]["img"], b["obs.img"])

    # The collectors' policy acts on the frames as the env gave them.
    actor = build_actor(POLICY, SPEC, BOX)
    responder = OffPolicyResponder(actor, ObsLayout.of(POLICY, SPEC))
    responder.load_weights(WeightSnapshot.of(learner.actor, 0))
    acted: list[dict[str, torch.Tensor]] = []
    actor.encoder.register_forward_pre_hook(lambda _, args: acted.append(args[0]))
    obs = {"img": pixel_traj().obs["img"][:, 0], "state": np.zeros((2, 3), np.float32)}
    (reply,) = responder.answer([{"obs": obs, "final": None}])
    assert reply["action"].shape == (2, 2)
    np.testing.assert_array_equal(acted[0]["img"].numpy(), obs["img"])


def test_critic_trains_the_encoder_and_the_actor_does_not():
    learner = OffPolicyLearner(config(), POLICY, SPEC, BOX, seed=2)
    learner.add(pixel_traj())
    enc = {id(p) for p in learner.encoder.parameters()}
    assert not enc & {id(p) for g in learner.actor_opt.param_groups for p in g["params"]}
    assert enc <= {id(p) for g in learner.critic_opt.param_groups for p in g["params"]}
    # Weight pushes carry the encoder to the collectors.
    assert "encoder.cnn.0.weight" in WeightSnapshot.of(learner.actor, 0).state

    b = learner.buffer.sample(8, learner.generator)
    before = [p.detach().clone() for p in learner.encoder.parameters()]
    z, z_next = learner._features(b)
    assert z.shape == (8, 16) and z.requires_grad and not z_next.requires_grad
    head_before = [p.detach().clone() for p in learner.actor.head_parameters()]
    learner._actor_step(z.detach())
    assert all(p.grad is None for p in learner.encoder.parameters())
    assert all(torch.equal(a, p) for a, p in zip(before, learner.encoder.parameters(), strict=True))
    assert any(
        not torch.equal(a, p)
        for a, p in zip(head_before, learner.actor.head_parameters(), strict=True)
    )
    learner._critic_step(b, z, z_next)
    grads = [p.grad for p in learner.encoder.parameters()]
    assert all(g is not None for g in grads) and any(float(g.abs().sum()) > 0 for g in grads)
    assert any(
        not torch.equal(a, p) for a, p in zip(before, learner.encoder.parameters(), strict=True)
    )


@pytest.mark.parametrize("name", ["sac", "crossq", "rlpd"])
def test_pixel_updates_run_for_each_algorithm(name):
    kw = {"num_critics": 4, "subset_size": 2} if name == "rlpd" else {}
    learner = OffPolicyLearner(config(name=name, **kw), POLICY, SPEC, BOX, seed=3)
    learner.add(pixel_traj())
    metrics = learner.update(2)
    assert learner.updates == 2 and np.isfinite(metrics["train/critic_loss"])


def test_pixel_refusals():
    with pytest.raises(ValueError, match="iql reads flat vector observations only"):
        OffPolicyLearner(config(name="iql"), POLICY, SPEC, BOX)
    mlp = PolicyConfig(hidden_sizes=(16,))
    with pytest.raises(ValueError, match=r"keys \['img'\] are images and policy.encoder is 'mlp'"):
        OffPolicyLearner(config(), mlp, SPEC, BOX)
    # Leaving the image out with obs_keys is the MLP's way to run there.
    flat = OffPolicyLearner(
        config(), PolicyConfig(hidden_sizes=(16,), obs_keys=("state",)), SPEC, BOX
    )
    assert flat.obs_dim == 3 and flat.encoder is None
    with pytest.raises(ValueError, match="augment: unknown augmentation 'crop'"):
        config(augment="crop")


def test_responder_records_next_frames_per_key_with_final_rows():
    actor = build_actor(POLICY, SPEC, BOX)
    responder = OffPolicyResponder(actor, ObsLayout.of(POLICY, SPEC))
    responder.load_weights(WeightSnapshot.of(actor, 0))
    frames = pixel_traj().obs["img"][:, 0]  # [2, H, W, 6]
    obs = {"img": frames, "state": np.zeros((2, 3), np.float32)}
    # Env 1 ended: its pre-reset frame comes in the final rows.
    final = {"img": frames[:1][:, ::-1].copy(), "state": np.ones((1, 3), np.float32)}
    (reply,) = responder.answer([{"obs": obs, "final": ([1], final)}])
    rec = reply["record_prev"]
    assert sorted(rec) == ["next_obs.img", "next_obs.state"]
    assert rec["next_obs.img"].dtype == np.uint8
    np.testing.assert_array_equal(rec["next_obs.img"][0], frames[0])
    np.testing.assert_array_equal(rec["next_obs.img"][1], final["img"][0])
    np.testing.assert_array_equal(rec["next_obs.state"], [[0.0] * 3, [1.0] * 3])
    # The last request of a rollout: every row is final.
    (last,) = responder.answer([{"obs": None, "final": ([0, 1], obs)}])
    np.testing.assert_array_equal(last["record_prev"]["next_obs.img"], frames)
    assert "action" not in last

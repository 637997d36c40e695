"""ActorCritic: shapes, act/evaluate consistency, gradients, init, configuration errors."""

from __future__ import annotations

import math
import subprocess
import sys
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from rlinf.models import ActorCritic, PolicyConfig, build_policy


def arr(shape, dtype="float32"):
    return SimpleNamespace(shape=shape, dtype=np.dtype(dtype))


STATE = {"state": arr((5,))}
IMAGE = {"rgb": arr((36, 36, 3), "uint8"), "state": arr((3,))}
DISCRETE = SimpleNamespace(kind="discrete", shape=(), n=4, low=None, high=None)
BOX = SimpleNamespace(
    kind="continuous", shape=(2,), n=None, low=np.array([-1.0, 0.0]), high=np.array([1.0, 4.0])
)
SMALL_CNN = {
    "cnn_channels": (8, 16),
    "cnn_kernels": (8, 4),
    "cnn_strides": (4, 2),
    "cnn_features": 32,
}


def obs_batch(spec, b=6, seed=0):
    g = torch.Generator().manual_seed(seed)
    out = {}
    for k, s in spec.items():
        if s.dtype == np.uint8:
            out[k] = torch.randint(0, 256, (b, *s.shape), generator=g, dtype=torch.uint8)
        else:
            out[k] = torch.randn((b, *s.shape), generator=g)
    return out


CASES = [
    (STATE, DISCRETE, {}, ()),
    (STATE, DISCRETE, {"chunk_size": 3, "shared_trunk": True}, (3,)),
    (STATE, BOX, {}, (2,)),
    (STATE, BOX, {"tanh_squash": True, "log_std": "state_dependent"}, (2,)),
    (STATE, BOX, {"chunk_size": 4, "tanh_squash": True, "shared_trunk": True}, (4, 2)),
    (IMAGE, BOX, {"encoder": "cnn", **SMALL_CNN}, (2,)),
    (IMAGE, DISCRETE, {"encoder": "cnn", "shared_trunk": True, **SMALL_CNN}, ()),
]


@pytest.mark.parametrize(("obs_spec", "act_spec", "kw", "act_shape"), CASES)
def test_shapes_and_act_evaluate_agree(obs_spec, act_spec, kw, act_shape):
    torch.manual_seed(0)
    policy = build_policy(PolicyConfig(**kw), obs_spec, act_spec)
    obs = obs_batch(obs_spec)
    action, log_prob, value = policy.act(obs)
    assert action.shape == (6, *act_shape)
    assert log_prob.shape == value.shape == (6,)
    assert action.dtype == (torch.int64 if act_spec.kind == "discrete" else torch.float32)
    assert not log_prob.requires_grad
    lp, ent, v = policy.evaluate(obs, action)
    torch.testing.assert_close(lp, log_prob)
    torch.testing.assert_close(v, value)
    torch.testing.assert_close(policy.value(obs), value)
    torch.testing.assert_close(policy.log_prob(obs, action), log_prob)
    assert ent.shape == (6,)
    det, det_lp, _ = policy.act(obs, deterministic=True)
    torch.testing.assert_close(policy.act(obs, deterministic=True)[0], det)
    torch.testing.assert_close(policy.evaluate(obs, det)[0], det_lp)
    if kw.get("tanh_squash"):
        low = torch.as_tensor(BOX.low, dtype=torch.float32)
        high = torch.as_tensor(BOX.high, dtype=torch.float32)
        assert ((action >= low) & (action <= high)).all()
    # Gradients reach every parameter from the loss terms that use them.
    (-(lp.mean()) - ent.mean() + v.square().mean()).backward()
    for name, p in policy.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name
        if "value_head" not in name:
            assert p.grad.abs().sum() > 0 or "log_std" in name, name


def test_numpy_observations_and_separate_trunk_isolation():
    policy = build_policy(PolicyConfig(), STATE, DISCRETE)
    obs = {k: v.numpy() for k, v in obs_batch(STATE).items()}
    _, _, value = policy.evaluate(obs, np.zeros(6, np.int64))
    value.sum().backward()
    # Separate networks: the value loss does not touch the actor's weights.
    assert all(p.grad is None for p in policy.actor_encoder.parameters())
    assert any(p.grad is not None for p in policy.critic_encoder.parameters())


def test_orthogonal_init():
    cfg = PolicyConfig(hidden_sizes=(32, 32))
    policy = build_policy(cfg, STATE, BOX)
    w = policy.actor_encoder.mlp[2].weight  # 32 x 32 hidden layer
    torch.testing.assert_close(w @ w.T, cfg.hidden_gain**2 * torch.eye(32), atol=1e-5, rtol=0)
    head = policy.head.mean.weight  # 2 x 32: orthonormal rows scaled by the policy gain
    torch.testing.assert_close(head @ head.T, 0.01**2 * torch.eye(2), atol=1e-7, rtol=0)
    assert all(
        float(m.bias.detach().abs().sum()) == 0
        for m in policy.modules()
        if isinstance(m, torch.nn.Linear)
    )


def test_initial_policy_is_near_uniform():
    policy = build_policy(PolicyConfig(), STATE, DISCRETE)
    _, ent, _ = policy.evaluate(obs_batch(STATE), np.zeros(6, np.int64))
    torch.testing.assert_close(ent, torch.full((6,), math.log(4)), atol=1e-3, rtol=0)


def test_obs_keys_select_inputs():
    policy = build_policy(PolicyConfig(obs_keys=("state",)), IMAGE, DISCRETE)
    obs = obs_batch(IMAGE)
    del obs["rgb"]
    assert policy.act(obs)[0].shape == (6,)
    with pytest.raises(KeyError, match="missing keys"):
        policy.act({"other": obs["state"]})


@pytest.mark.parametrize(
    ("obs_spec", "act_spec", "kw", "pattern"),
    [
        (IMAGE, BOX, {}, "encoder='cnn'"),
        (STATE, BOX, {"encoder": "cnn"}, "needs at least one"),
        (
            IMAGE,
            BOX,
            {
                "encoder": "cnn",
                "cnn_kernels": (40, 4),
                **{k: v for k, v in SMALL_CNN.items() if k != "cnn_kernels"},
            },
            "too small",
        ),
        (STATE, BOX, {"obs_keys": ("rgb",)}, "not in the observation spec"),
        (
            STATE,
            SimpleNamespace(kind="multi", shape=(), n=None, low=None, high=None),
            {},
            "action kind",
        ),
    ],
)
def test_build_errors(obs_spec, act_spec, kw, pattern):
    with pytest.raises(ValueError, match=pattern):
        ActorCritic(PolicyConfig(**kw), obs_spec, act_spec)


def test_evaluate_rejects_wrong_action_shape():
    policy = build_policy(PolicyConfig(chunk_size=2), STATE, BOX)
    with pytest.raises(ValueError, match=r"\[B, 2, 2\]"):
        policy.evaluate(obs_batch(STATE), torch.zeros(6, 2))


@pytest.mark.parametrize(
    "kw",
    [
        {"encoder": "rnn"},
        {"activation": "sigmoid"},
        {"hidden_sizes": ()},
        {"cnn_kernels": (8,)},
        {"log_std": "learned"},
        {"log_std_min": 1.0, "log_std_max": 0.0},
        {"init_log_std": 5.0},
        {"chunk_size": 0},
        {"obs_clip": 0.0},
    ],
)
def test_config_validation(kw):
    with pytest.raises(ValueError):
        PolicyConfig(**kw)


def test_models_imports_no_envs_or_engines():
    code = (
        "import sys, rlinf.models; "
        "bad = [m for m in sys.modules if m.split('.')[0] in ('vllm', 'sglang', 'megatron') "
        "or m.startswith(('rlinf.envs', 'rlinf.apps'))]; assert not bad, bad"
    )
    subprocess.run([sys.executable, "-c", code], check=True)

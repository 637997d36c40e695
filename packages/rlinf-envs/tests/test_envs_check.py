"""check_env: what a driver checks before any worker starts (kind, extra, env id)."""

from __future__ import annotations

import importlib.util
import sys

import pytest

from rlinf.envs import ENV_CHECKS, ENVS, EnvCheckError, EnvConfig, check_env

HAS_MUJOCO = importlib.util.find_spec("mujoco") is not None
needs_mujoco = pytest.mark.skipif(not HAS_MUJOCO, reason="needs rlinf-envs[mujoco]")


def test_known_gym_ids_pass():
    check_env(EnvConfig(env_id="CartPole-v1"))


@needs_mujoco
def test_known_mujoco_ids_pass():
    check_env(EnvConfig(env_id="HalfCheetah-v5", kind="mujoco"))


@pytest.mark.parametrize(
    ("config", "message"),
    [
        (
            EnvConfig(env_id="NoSuchEnv-v0"),
            "env.env_id: 'NoSuchEnv-v0' is not a registered gymnasium env (Environment `NoSuchEnv` doesn't exist.)",
        ),
        # A close name: gymnasium's hint about the versions there are comes along.
        (EnvConfig(env_id="CartPole-v9"), "env.env_id: 'CartPole-v9' is not a registered gymnasium env"),
        pytest.param(
            EnvConfig(env_id="NoSuchEnv-v0", kind="mujoco"),
            "env.env_id: 'NoSuchEnv-v0'",
            marks=needs_mujoco,
        ),
        (
            EnvConfig(env_id="CartPole-v1", kind="nope"),
            "env.kind: unknown env kind 'nope'; valid: gym, maniskill, metaworld, mujoco",
        ),
    ],
)  # fmt: skip
def test_unknown_ids_and_kinds_name_the_key(config, message):
    with pytest.raises(EnvCheckError) as info:
        check_env(config)
    assert str(info.value).startswith(message)
    assert "\n" not in str(info.value)


def test_prefix_names_the_section():
    with pytest.raises(EnvCheckError, match=r"^eval_env\.kind: unknown env kind"):
        check_env(EnvConfig(env_id="x", kind="nope"), prefix="eval_env.")


def test_a_missing_extra_names_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "mujoco", None)  # as if not installed: import fails
    with pytest.raises(EnvCheckError) as info:
        check_env(EnvConfig(env_id="HalfCheetah-v5", kind="mujoco"))
    assert str(info.value).startswith(
        "env.kind: 'mujoco' needs the 'mujoco' extra: pip install 'rlinf-envs[mujoco]'"
    )


def test_maniskill_ids_are_checked_against_its_registry():
    pytest.importorskip("mani_skill", reason="needs rlinf-envs[maniskill]")
    check_env(EnvConfig(env_id="PickCube-v1", kind="maniskill"))
    with pytest.raises(
        EnvCheckError, match=r"^env\.env_id: env 'PickCube-v9' is not a ManiSkill task"
    ):
        check_env(EnvConfig(env_id="PickCube-v9", kind="maniskill"))
    bad_mode = EnvConfig(env_id="PickCube-v1", kind="maniskill", env_kwargs={"obs_mode": "x"})
    with pytest.raises(EnvCheckError, match="obs_mode must be one of"):
        check_env(bad_mode)


def test_every_registered_kind_has_a_check():
    assert set(ENV_CHECKS) == set(ENVS)

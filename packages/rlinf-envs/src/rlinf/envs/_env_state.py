"""Snapshot and restore of one gymnasium env's episode in progress, for exact resume.

A snapshot holds what decides the env's future given the same actions:

* every wrapper's and the base env's *plain* attributes (numbers, bools, strings, None,
  numpy arrays and tuples / lists of them): e.g. ``TimeLimit._elapsed_steps``, rlinf's
  per-episode return and length, CartPole's ``state`` and ``steps_beyond_terminated``;
* the env's RNG (``env.np_random``, the one ``reset`` draws initial states from) and the
  action and observation spaces' RNGs, as numpy bit-generator states;
* for MuJoCo envs, the simulator's full integration state (``mj_getState`` with
  ``mjSTATE_INTEGRATION``: time, qpos, qvel, act, warm start, controls, applied forces,
  mocap, user data), so stepping on after a restore is bit-identical.

Only envs whose whole state is covered that way can be snapshot: MuJoCo envs and
gymnasium's classic-control and toy-text envs. Others (Box2D worlds, ManiSkill's SAPIEN
scenes, third-party envs with state in objects) return a reason instead, and a resumed run
starts them on fresh seeds.
"""

from __future__ import annotations

import copy
import sys
from typing import Any

import gymnasium as gym
import numpy as np

__all__ = ["EnvState", "restore_env_state", "snapshot_env_state", "unsupported_reason"]

EnvState = dict[str, Any]
"""``{"layers": [attrs per wrapper, outermost first, then the base env], "rng": ...,
"spaces": ..., "physics": [S] float64 | None}``."""

_PLAIN_MODULES = ("gymnasium.envs.classic_control", "gymnasium.envs.toy_text")


def _is_mujoco(env: gym.Env) -> bool:
    # A MuJoCo env's class was imported with gymnasium's mujoco module; without that module
    # loaded, ``env`` cannot be one. Importing it here instead would raise
    # DependencyNotInstalled (not an ImportError) where the mujoco extra is missing.
    module = sys.modules.get("gymnasium.envs.mujoco.mujoco_env")
    return module is not None and isinstance(env, module.MujocoEnv)


def unsupported_reason(env: gym.Env) -> str | None:
    """Why ``env`` cannot be snapshot exactly, or None when it can."""
    base = env.unwrapped
    if _is_mujoco(base) or type(base).__module__.startswith(_PLAIN_MODULES):
        return None
    return (
        f"{type(base).__module__}.{type(base).__name__} keeps state that rlinf cannot save "
        "(only MuJoCo, classic-control and toy-text envs are restored exactly)"
    )


def _plain(value: Any) -> bool:
    if value is None or isinstance(value, bool | int | float | str | np.ndarray | np.generic):
        return True
    if isinstance(value, tuple | list):
        return all(_plain(v) for v in value)
    return False


def _layers(env: gym.Env) -> list[Any]:
    """The wrapper chain, outermost first, ending with the base env."""
    out: list[Any] = [env]
    while isinstance(out[-1], gym.Wrapper):
        out.append(out[-1].env)
    return out


def _space_rng(space: gym.Space) -> dict[str, Any] | None:
    # A space seeds its RNG lazily on first use: None means it was never drawn from.
    rng = getattr(space, "_np_random", None)
    return None if rng is None else copy.deepcopy(rng.bit_generator.state)


def snapshot_env_state(env: gym.Env) -> EnvState:
    """The state of ``env`` (any wrapper chain over a supported base env).

    Raises:
        ValueError: the env is not supported (see :func:`unsupported_reason`).
    """
    reason = unsupported_reason(env)
    if reason is not None:
        raise ValueError(reason)
    base = env.unwrapped
    layers = [
        {k: copy.deepcopy(v) for k, v in vars(layer).items() if _plain(v)} for layer in _layers(env)
    ]
    physics = None
    if _is_mujoco(base):
        import mujoco

        spec = mujoco.mjtState.mjSTATE_INTEGRATION
        physics = np.empty(mujoco.mj_stateSize(base.model, spec), np.float64)
        mujoco.mj_getState(base.model, base.data, physics, spec)
    return {
        "layers": layers,
        "rng": copy.deepcopy(base.np_random.bit_generator.state),
        "spaces": {
            "action": _space_rng(base.action_space),
            "observation": _space_rng(base.observation_space),
        },
        "physics": physics,
    }


def restore_env_state(env: gym.Env, state: EnvState) -> None:
    """Put ``env`` back into ``state`` (from :func:`snapshot_env_state` of an env built
    the same way).

    Raises:
        ValueError: ``state`` does not fit ``env`` (another wrapper chain or simulator).
    """
    layers = _layers(env)
    if len(layers) != len(state["layers"]):
        raise ValueError(
            f"env state has {len(state['layers'])} wrapper layers, the env {len(layers)}"
        )
    base = env.unwrapped
    physics = state["physics"]
    if (physics is not None) != _is_mujoco(base):
        raise ValueError("env state and env disagree on whether the env is a MuJoCo env")
    for layer, attrs in zip(layers, state["layers"], strict=True):
        for key, value in attrs.items():
            setattr(layer, key, copy.deepcopy(value))
    base.np_random.bit_generator.state = copy.deepcopy(state["rng"])
    for name, space in (("action", base.action_space), ("observation", base.observation_space)):
        saved = state["spaces"][name]
        if saved is not None:
            space.np_random.bit_generator.state = copy.deepcopy(saved)
    if physics is not None:
        import mujoco

        spec = mujoco.mjtState.mjSTATE_INTEGRATION
        size = mujoco.mj_stateSize(base.model, spec)
        if physics.shape != (size,):
            raise ValueError(f"MuJoCo state has {physics.shape[0]} values, the model {size}")
        # No mj_forward: derived quantities are recomputed by the next step, and the
        # observation of the saved step is restored by the caller, not recomputed. MuJoCo
        # 3.3's binding takes only a writeable float64 array (a checkpoint's is read-only).
        writeable = np.array(physics, dtype=np.float64, order="C", copy=True)
        mujoco.mj_setState(base.model, base.data, writeable, int(spec))

"""The embodied config's rules for off-policy algorithms (``algo.name: sac | crossq | rlpd |
iql``), and the driver's checks of the env and the offline file before workers start."""

from __future__ import annotations

import dataclasses
import math
import pathlib
from collections.abc import Mapping, Sequence
from typing import Any

import yaml

from rlinf.core import ConfigError, apply_overrides, config_from_dict, find_preset
from rlinf.envs import EnvConfig, image_obs_keys
from rlinf.models import PolicyConfig
from rlinf.models.embodied import (
    OFFLINE_ALGORITHMS,
    OFFPOLICY_ALGORITHMS,
    EmbodiedRunnerSection,
    ObsLayout,
    OfflineDataError,
    OffPolicyConfig,
    UpdaterConfig,
    check_offline_data,
    reward_transform,
)

__all__ = ["check_offline_file", "check_offpolicy_env", "explain_algo_error", "validate_offpolicy"]


def validate_offpolicy(
    algo: OffPolicyConfig, env: EnvConfig, policy: PolicyConfig, runner: EmbodiedRunnerSection
) -> None:
    """Cross-section rules of an off-policy run; a violation raises :class:`ConfigError`
    naming the key."""
    images = [k for k in image_obs_keys(env) if policy.obs_keys is None or k in policy.obs_keys]
    _check_pixel_algo(algo, env.env_id, images)
    if env.chunk_size != 1 or policy.chunk_size != 1:
        raise ConfigError("env.chunk_size / policy.chunk_size: off-policy training needs 1")
    if runner.pipeline_stages != 1 or runner.overlap_update:
        raise ConfigError(
            "runner.pipeline_stages / runner.overlap_update: off-policy training always "
            "overlaps collection with updates and runs the actor inside the env workers; "
            "leave them at 1 / false"
        )
    per_iteration = env.num_envs * runner.horizon
    if runner.total_env_steps < per_iteration:
        raise ConfigError(
            f"runner.total_env_steps ({runner.total_env_steps}) is smaller than one "
            f"collection (env.num_envs x runner.horizon = {per_iteration})"
        )
    if algo.learning_starts >= runner.total_env_steps:
        raise ConfigError(
            f"algo.learning_starts ({algo.learning_starts}) >= runner.total_env_steps "
            f"({runner.total_env_steps}): the run would end before its first update"
        )


def _check_pixel_algo(algo: OffPolicyConfig, env_id: str, images: Sequence[str]) -> None:
    # The offline file and IQL's value network read flat vector observations.
    if not images:
        return
    if algo.name == "iql":
        raise ConfigError(
            f"algo.name: iql learns from flat vector observations; env {env_id!r} observes "
            f"images {list(images)} (pixels train with sac, crossq or rlpd, or leave the "
            "images out with policy.obs_keys)"
        )
    if algo.offline_data is not None:
        raise ConfigError(
            f"algo.offline_data: offline files hold flat vector observations; env {env_id!r} "
            f"observes images {list(images)}"
        )


def check_offpolicy_env(
    env: EnvConfig, policy: PolicyConfig, algo: OffPolicyConfig
) -> tuple[int, int]:
    """Build one env and check that the learner can read it: image keys only with
    ``policy.encoder: cnn`` (and not for IQL or offline data), ``cnn`` only with image
    keys, continuous actions with finite bounds. Returns ``(obs_dim, action_dim)``
    (``obs_dim``: the flat vector size, 0 with images); raises :class:`ConfigError`."""
    from rlinf.envs import make_env

    vec = make_env(dataclasses.replace(env, num_envs=1, backend="sync", start_method=None))
    try:
        spec, action = dict(vec.observation_spec), vec.action_spec
    finally:
        vec.close()
    try:
        layout = ObsLayout.of(policy, spec)
    except ValueError as e:
        raise ConfigError(f"policy.encoder: env {env.env_id!r}: {e}") from None
    _check_pixel_algo(algo, env.env_id, layout.image_keys)
    obs_dim = 0 if layout.pixels else layout.flat_dim
    if action.discrete:
        raise ConfigError(
            f"env.env_id: {env.env_id} has discrete actions; SAC/CrossQ/RLPD/IQL need continuous"
        )
    return obs_dim, math.prod(tuple(action.shape))


def check_offline_file(
    algo: OffPolicyConfig, env: EnvConfig, obs_dim: int, action_dim: int
) -> None:
    """RLPD and IQL need ``algo.offline_data``; a file given must exist and match the
    run's env id, observation and action sizes, and hold at least the offline share of one
    batch (its metadata only is read here); ``reward_normalize: offline_returns`` needs
    episode returns of different sizes in that metadata. Raises :class:`ConfigError` naming the key."""
    if algo.offline_data is None:
        if algo.name in OFFLINE_ALGORITHMS:
            raise ConfigError(
                f"algo.offline_data: {algo.name} trains from an offline data file; record one "
                "with 'rlinf-embodied collect --checkpoint <run dir> --episodes N --out FILE' "
                "and set algo.offline_data=FILE"
            )
        return
    try:
        meta = check_offline_data(
            algo.offline_data,
            env_id=env.env_id,
            obs_dim=obs_dim,
            action_dim=action_dim,
            min_transitions=max(1, algo.offline_batch),
        )
    except OfflineDataError as e:
        raise ConfigError(f"algo.offline_data: {e}") from None
    try:
        reward_transform(algo, meta)  # the learner's scale; its errors before workers start
    except ValueError as e:
        raise ConfigError(f"algo.{e}") from None


def _raw_algo(source: str | pathlib.Path | Mapping[str, Any], overrides: Sequence[str]) -> Any:
    if isinstance(source, Mapping):
        data = dict(source)
    else:
        data = yaml.safe_load(find_preset(source, "rlinf.apps.embodied").read_text()) or {}
    data = {k: (dict(v) if isinstance(v, Mapping) else v) for k, v in data.items()}
    return apply_overrides(data, overrides).get("algo", {})


def explain_algo_error(
    source: str | pathlib.Path | Mapping[str, Any], overrides: Sequence[str]
) -> ConfigError:
    """The precise error behind an ``algo`` section that fit neither algo class."""
    algo = _raw_algo(source, overrides)
    if not isinstance(algo, Mapping):
        return ConfigError(f"algo: expected a mapping, got {algo!r}")
    name = algo.get("name", "ppo")
    offpolicy = ", ".join(sorted(OFFPOLICY_ALGORITHMS))
    cls = OffPolicyConfig if name in OFFPOLICY_ALGORITHMS else UpdaterConfig
    if cls is UpdaterConfig:
        try:  # the name first: an unknown one is the cause, not the keys that follow it
            config_from_dict(
                UpdaterConfig, {"name": name, "plugins": algo.get("plugins", [])}, prefix="algo."
            )
        except ConfigError as e:
            return ConfigError(f"{e} (off-policy algorithms: {offpolicy})")
    try:
        config_from_dict(cls, algo, prefix="algo.")
    except ConfigError as e:
        return e
    return ConfigError(f"algo: {dict(algo)!r} fits neither UpdaterConfig nor OffPolicyConfig")

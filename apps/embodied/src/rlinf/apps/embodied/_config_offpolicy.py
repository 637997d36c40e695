"""The embodied config's rules for off-policy algorithms (``algo.name: sac | crossq``)."""

from __future__ import annotations

import dataclasses
import pathlib
from collections.abc import Mapping, Sequence
from typing import Any

import yaml

from rlinf.core import ConfigError, apply_overrides, config_from_dict, find_preset
from rlinf.envs import EnvConfig
from rlinf.models import PolicyConfig
from rlinf.models.embodied import (
    OFFPOLICY_ALGORITHMS,
    EmbodiedRunnerSection,
    OffPolicyConfig,
    UpdaterConfig,
    vector_obs_dim,
)

__all__ = ["check_offpolicy_env", "explain_algo_error", "validate_offpolicy"]


def validate_offpolicy(
    algo: OffPolicyConfig, env: EnvConfig, policy: PolicyConfig, runner: EmbodiedRunnerSection
) -> None:
    """Cross-section rules of an off-policy run; a violation raises :class:`ConfigError`
    naming the key."""
    if policy.encoder != "mlp":
        raise ConfigError(
            f"policy.encoder: the off-policy learner's actor and critics are MLPs over vector "
            f"observations, got {policy.encoder!r}"
        )
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


def check_offpolicy_env(env: EnvConfig) -> None:
    """Build one env and check that the learner can read it: vector observations only
    (an image key needs a CNN, which the off-policy MLP policy does not have) and
    continuous actions with finite bounds. Raises :class:`ConfigError`."""
    from rlinf.envs import make_env

    vec = make_env(dataclasses.replace(env, num_envs=1, backend="sync", start_method=None))
    try:
        spec, action = dict(vec.observation_spec), vec.action_spec
    finally:
        vec.close()
    try:
        vector_obs_dim(spec)
    except ValueError as e:
        raise ConfigError(f"env.env_id: {env.env_id}: {e}") from None
    if action.discrete:
        raise ConfigError(
            f"env.env_id: {env.env_id} has discrete actions; SAC/CrossQ need continuous"
        )


_NOT_YET = {
    "rlpd": "it needs a demonstration buffer",
    "iql": "it trains from an offline data set",
}


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
    if name in _NOT_YET:
        return ConfigError(
            f"algo.name: {name!r} has losses in rlinf.algos but no training loop in this app "
            f"yet ({_NOT_YET[name]}); off-policy algorithms: {offpolicy}"
        )
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

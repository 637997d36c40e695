"""The embodied app's config: env, policy, algorithm, runner and placement sections."""

from __future__ import annotations

import dataclasses
import pathlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from rlinf.core import (
    ClusterSection,
    ConfigError,
    load_app_config,
    validate_placement,
)
from rlinf.envs import EnvCheckError, EnvConfig, check_env
from rlinf.models import PolicyConfig
from rlinf.models.embodied import EmbodiedRunnerSection, OffPolicyConfig, UpdaterConfig
from rlinf.sched import Placement

from ._config_offpolicy import explain_algo_error, validate_offpolicy

__all__ = [
    "ClusterSection",
    "EmbodiedConfig",
    "load_embodied_config",
]

COMPONENTS = ("actor", "rollout", "env")


@dataclass(frozen=True)
class EmbodiedConfig:
    """Everything a run needs; see the presets in ``rlinf/apps/embodied/presets``.

    Attributes:
        env: the envs over *all* env workers (``env.num_envs`` is the total, split evenly
            over env ranks and then pipeline stages).
        policy: the actor-critic.
        algo: the PPO / GRPO updater (:class:`UpdaterConfig`), or, when ``algo.name`` is
            ``sac`` or ``crossq``, the off-policy learner (:class:`OffPolicyConfig`).
        runner: run length, pipelining and recording.
        placement: component (``actor``, ``rollout``, ``env``) -> device spec as in
            ``rlinf.sched`` (``"0"``, ``"0-1"``, ...). Same devices for all: collocated;
            disjoint: disaggregated; a mix: hybrid. The flow is the same for all three.
        cluster: the Ray cluster.
    """

    env: EnvConfig
    policy: PolicyConfig = field(default_factory=PolicyConfig)
    algo: UpdaterConfig | OffPolicyConfig = field(default_factory=UpdaterConfig)
    runner: EmbodiedRunnerSection = field(default_factory=EmbodiedRunnerSection)
    placement: Mapping[str, str | int] = field(
        default_factory=lambda: {"actor": "0", "rollout": "0", "env": "0"}
    )
    cluster: ClusterSection = field(default_factory=ClusterSection)


def validate(cfg: EmbodiedConfig) -> Placement:
    """Cross-section rules of an embodied run (env split over ranks and stages, GRPO
    groups, chunk sizes, the env id in its registry) -> the placement; a violation raises
    :class:`ConfigError` naming the key."""
    devices = cfg.cluster.topology()  # a joined cluster (cluster.address): its real nodes
    # PPO / GRPO actors train data-parallel over their ranks (FSDP2); the off-policy
    # learner holds the replay buffer and runs as one process.
    off_policy = isinstance(cfg.algo, OffPolicyConfig)
    placement = validate_placement(
        cfg.placement, devices, COMPONENTS, single_process=("actor",) if off_policy else ()
    )
    if off_policy:
        validate_offpolicy(cfg.algo, cfg.env, cfg.policy, cfg.runner)
        _check_env(cfg.env)
        return placement
    if cfg.runner.overlap_update and not cfg.algo.decoupled:
        # The flow trains overlapped updates with the decoupled objective (data one version
        # old); a loss that cannot be decoupled must fail here, not when workers start.
        try:
            dataclasses.replace(cfg.algo, decoupled=True)
        except ValueError as e:
            raise ConfigError(f"runner.overlap_update: {e}") from None
    env_ranks = placement["env"].world_size
    if cfg.runner.policy_in_env and set(placement["rollout"].devices) != set(
        placement["env"].devices
    ):
        raise ConfigError(
            f"runner.policy_in_env: the policy runs inside the env workers, so "
            f"placement.rollout ({cfg.placement['rollout']!r}) must name the same devices as "
            f"placement.env ({cfg.placement['env']!r})"
        )
    shards = env_ranks * cfg.runner.pipeline_stages
    if cfg.env.num_envs % shards:
        raise ConfigError(
            f"env.num_envs: {cfg.env.num_envs} envs cannot be split over {env_ranks} env "
            f"workers x {cfg.runner.pipeline_stages} runner.pipeline_stages"
        )
    if cfg.algo.advantage_estimator.group_relative:
        group = cfg.algo.group_size or cfg.env.num_envs
        if cfg.env.num_envs % group or group < 2:
            raise ConfigError(
                f"algo.group_size: {group} must be >= 2 and divide env.num_envs {cfg.env.num_envs}"
            )
    if cfg.policy.chunk_size != cfg.env.chunk_size:
        raise ConfigError(
            f"policy.chunk_size ({cfg.policy.chunk_size}) must equal env.chunk_size "
            f"({cfg.env.chunk_size})"
        )
    if cfg.runner.total_env_steps < cfg.env.num_envs * cfg.runner.horizon * cfg.env.chunk_size:
        raise ConfigError("runner.total_env_steps is smaller than one rollout")
    _check_env(cfg.env)
    return placement


def _check_env(env: EnvConfig) -> None:
    try:  # the env kind, its extra and the env id, against the registries
        check_env(env, prefix="env.")
    except EnvCheckError as e:
        raise ConfigError(str(e)) from None


def load_embodied_config(
    source: str | pathlib.Path | Mapping[str, object], overrides: Sequence[str] = ()
) -> EmbodiedConfig:
    """Load a preset name (e.g. ``"cartpole"``), a YAML path or a mapping, apply overrides
    and validate.

    ``algo.name`` picks the algo section's class (on-policy :class:`UpdaterConfig` or
    off-policy :class:`OffPolicyConfig`); a section that fits neither is reported against
    the class its name selects."""
    try:
        return load_app_config(
            EmbodiedConfig, source, overrides, package="rlinf.apps.embodied", validate=validate
        )
    except ConfigError as e:
        if not str(e).startswith("algo: expected"):
            raise
        raise explain_algo_error(source, overrides) from None

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
from rlinf.envs import EnvCheckError, EnvConfig, check_env, image_obs_keys
from rlinf.models import PolicyConfig
from rlinf.models.embodied import (
    EmbodiedRunnerSection,
    OffPolicyConfig,
    UpdateLending,
    UpdaterConfig,
)
from rlinf.sched import Placement, SchedulerSection, Topology

from ._config_offpolicy import explain_algo_error, validate_offpolicy

__all__ = [
    "AUTO",
    "ClusterSection",
    "EmbodiedConfig",
    "check_run",
    "is_auto",
    "load_embodied_config",
    "reference_config",
]

COMPONENTS = ("actor", "rollout", "env")
AUTO = "auto"
"""``placement: auto``: plan the placement (and pipeline stages, overlap), then train."""


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
            Or ``"auto"``: profile a few iterations collocated, let the planner choose the
            placement, ``runner.pipeline_stages`` and ``runner.overlap_update`` (the
            config's values of those two are replaced), then train (on-policy only).
        cluster: the Ray cluster.
        scheduler: ``dynamic: true`` lends the env / rollout slots to the actor's update
            for the rest of a step once the rollout is done (on-policy, one-rank actor on
            slots of its own); ``false`` (default): the static placement only.
    """

    env: EnvConfig
    policy: PolicyConfig = field(default_factory=PolicyConfig)
    algo: UpdaterConfig | OffPolicyConfig = field(default_factory=UpdaterConfig)
    runner: EmbodiedRunnerSection = field(default_factory=EmbodiedRunnerSection)
    placement: Mapping[str, str | int] | str = field(
        default_factory=lambda: {"actor": "0", "rollout": "0", "env": "0"}
    )
    cluster: ClusterSection = field(default_factory=ClusterSection)
    scheduler: SchedulerSection = field(default_factory=SchedulerSection)


def is_auto(cfg: EmbodiedConfig) -> bool:
    """Whether the config asks for a planned placement (``placement: auto``)."""
    return isinstance(cfg.placement, str)


def reference_config(
    cfg: EmbodiedConfig, iterations: int | None = None, devices: int = 1
) -> EmbodiedConfig:
    """The planner's reference point of ``cfg``: every component on devices ``0 ..
    devices-1``, one pipeline stage, no overlap; with ``iterations``, a run of exactly that
    many updates that records ``metrics.jsonl`` only (no progress bar, no checkpoints)."""
    runner = dataclasses.replace(cfg.runner, pipeline_stages=1, overlap_update=False)
    if iterations is not None:
        steps = cfg.env.num_envs * cfg.runner.horizon * cfg.env.chunk_size
        runner = dataclasses.replace(
            runner,
            total_env_steps=iterations * steps,
            progress=False,
            metric_backends=("jsonl",),
            checkpoint_every=0,
        )
    spec = "0" if devices == 1 else f"0-{devices - 1}"
    return dataclasses.replace(cfg, placement=dict.fromkeys(COMPONENTS, spec), runner=runner)


def _check_auto(cfg: EmbodiedConfig) -> None:
    if isinstance(cfg.placement, str):
        if cfg.placement != AUTO:
            raise ConfigError(
                f"placement: expected a mapping component -> devices or {AUTO!r}, "
                f"got {cfg.placement!r}"
            )
        if isinstance(cfg.algo, OffPolicyConfig):
            raise ConfigError(
                f"placement: {AUTO!r} plans on-policy runs (the planner profiles the PPO / "
                f"GRPO flow); algo.name={cfg.algo.name} needs an explicit placement"
            )
        return
    for name, spec in cfg.placement.items():
        if isinstance(spec, str) and spec.strip() == AUTO:
            raise ConfigError(
                f"placement.{name}: {AUTO!r} plans every component at once: write "
                f"'placement: {AUTO}' (not per component, and without placement.* keys)"
            )


def validate(cfg: EmbodiedConfig) -> Placement:
    """Cross-section rules of an embodied run (env split over ranks and stages, GRPO
    groups, chunk sizes, the env id in its registry) -> the placement; a violation raises
    :class:`ConfigError` naming the key. With ``placement: auto``, the rules are checked
    at the planner's reference point (:func:`reference_config`) and its placement returned."""
    _check_auto(cfg)
    if is_auto(cfg):
        cfg = reference_config(cfg)
    # a joined cluster (cluster.address): its real nodes
    placement = check_run(cfg, cfg.cluster.topology())
    _check_env(cfg.env)
    _check_image_policy(cfg.env, cfg.policy)
    return placement


def check_run(cfg: EmbodiedConfig, devices: Topology) -> Placement:
    """:func:`validate` without the env registry check, against given ``devices`` (the
    planner checks every candidate placement with it, probing the cluster once)."""
    _check_auto(cfg)
    if is_auto(cfg):
        raise ConfigError(f"placement: {AUTO!r} must be planned before the run is checked")
    # PPO / GRPO actors train data-parallel over their ranks (FSDP2); the off-policy
    # learner holds the replay buffer and runs as one process.
    off_policy = isinstance(cfg.algo, OffPolicyConfig)
    placement = validate_placement(
        cfg.placement, devices, COMPONENTS, single_process=("actor",) if off_policy else ()
    )
    if off_policy:
        if cfg.scheduler.dynamic:
            raise ConfigError("scheduler.dynamic: lending is built for on-policy updates only")
        validate_offpolicy(cfg.algo, cfg.env, cfg.policy, cfg.runner)
        return placement
    if cfg.scheduler.dynamic:
        try:
            UpdateLending.check(placement)
        except ValueError as e:
            raise ConfigError(str(e)) from None
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
    return placement


def _check_env(env: EnvConfig) -> None:
    try:  # the env kind, its extra and the env id, against the registries
        check_env(env, prefix="env.")
    except EnvCheckError as e:
        raise ConfigError(str(e)) from None


def _check_image_policy(env: EnvConfig, policy: PolicyConfig) -> None:
    # The policy itself refuses image keys without a CNN, but only as it is built inside
    # the workers; the env config already says it observes images.
    images = [k for k in image_obs_keys(env) if policy.obs_keys is None or k in policy.obs_keys]
    if images and policy.encoder != "cnn":
        raise ConfigError(
            f"policy.encoder: env {env.env_id!r} observes images {images} "
            f"(env.env_kwargs.obs_mode={env.env_kwargs.get('obs_mode')!r}); an "
            f"{policy.encoder!r} policy cannot read them: set policy.encoder=cnn, or leave "
            "them out with policy.obs_keys"
        )


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

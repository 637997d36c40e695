"""The embodied app's config: env, policy, algorithm, runner and placement sections."""

from __future__ import annotations

import pathlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources

from rlinf.core import ConfigError, load_config
from rlinf.envs import EnvConfig
from rlinf.models import PolicyConfig
from rlinf.models.embodied import UpdaterConfig
from rlinf.sched import Placement, PlacementError, Topology

__all__ = [
    "ClusterSection",
    "EmbodiedConfig",
    "RunnerConfig",
    "load_embodied_config",
    "preset_path",
    "resolve_placement",
]

COMPONENTS = ("actor", "rollout", "env")


@dataclass(frozen=True)
class RunnerConfig:
    """How long to train and what to record.

    Attributes:
        name: run name (suffix of the run directory).
        seed: seed of envs (``env.seed`` is offset by it), initial weights and sampling.
        total_env_steps: stop after this many env steps (primitive steps over all envs).
        horizon: ``T``, steps per env per rollout; one update per rollout.
        pipeline_stages: each env worker's envs are split into this many stages, so one
            stage's simulation overlaps another's inference (1: no pipelining).
        checkpoint_every: save a checkpoint every this many updates (0: only at the end).
        runs_root: directory under which ``<timestamp>-<name>`` run directories are made.
        metric_backends: MetricLogger backends (``tensorboard``, ``jsonl``, ``wandb``).
        torch_threads: intra-op torch threads per worker (1: best for small MLPs).
        timeout_s: longest wait for any worker or channel before the run fails.
        progress: show a tqdm progress bar.
    """

    name: str = "embodied"
    seed: int = 0
    total_env_steps: int = 100_000
    horizon: int = 128
    pipeline_stages: int = 1
    checkpoint_every: int = 20
    runs_root: str = "runs"
    metric_backends: tuple[str, ...] = ("tensorboard", "jsonl")
    torch_threads: int = 1
    timeout_s: float = 300.0
    progress: bool = True

    def __post_init__(self) -> None:
        if self.total_env_steps < 1 or self.horizon < 1:
            raise ValueError("total_env_steps and horizon must be >= 1")
        if self.pipeline_stages < 1:
            raise ValueError(f"pipeline_stages must be >= 1, got {self.pipeline_stages}")
        if self.checkpoint_every < 0:
            raise ValueError(f"checkpoint_every must be >= 0, got {self.checkpoint_every}")
        if self.timeout_s <= 0:
            raise ValueError(f"timeout_s must be > 0, got {self.timeout_s}")


@dataclass(frozen=True)
class ClusterSection:
    """The local Ray cluster (CPU slots stand in for devices on machines without GPUs).

    Attributes:
        num_cpus: CPUs Ray may use (``None``: all of the machine's).
        devices: device slots on the node; placement indices refer to them.
        address: join a running Ray cluster instead of starting one (``"auto"``).
    """

    num_cpus: int | None = 2
    devices: int = 2
    address: str | None = None


@dataclass(frozen=True)
class EmbodiedConfig:
    """Everything a run needs; see the presets in ``rlinf/apps/embodied/presets``.

    Attributes:
        env: the envs over *all* env workers (``env.num_envs`` is the total, split evenly
            over env ranks and then pipeline stages).
        policy: the actor-critic.
        algo: the PPO / GRPO updater.
        runner: run length, pipelining and recording.
        placement: component (``actor``, ``rollout``, ``env``) -> device spec as in
            ``rlinf.sched`` (``"0"``, ``"0-1"``, ...). Same devices for all: collocated;
            disjoint: disaggregated; a mix: hybrid. The flow is the same for all three.
        cluster: the Ray cluster.
    """

    env: EnvConfig
    policy: PolicyConfig = field(default_factory=PolicyConfig)
    algo: UpdaterConfig = field(default_factory=UpdaterConfig)
    runner: RunnerConfig = field(default_factory=RunnerConfig)
    placement: Mapping[str, str | int] = field(
        default_factory=lambda: {"actor": "0", "rollout": "0", "env": "0"}
    )
    cluster: ClusterSection = field(default_factory=ClusterSection)


def preset_path(name_or_path: str | pathlib.Path) -> pathlib.Path:
    """A file path as is, or the bundled preset ``<name>.yaml`` (e.g. ``"cartpole"``)."""
    path = pathlib.Path(name_or_path)
    if path.suffix in (".yaml", ".yml") or path.exists():
        if not path.exists():
            raise ConfigError(f"config file {path} does not exist")
        return path
    preset = resources.files("rlinf.apps.embodied") / "presets" / f"{name_or_path}.yaml"
    if not preset.is_file():
        names = sorted(
            p.name.removesuffix(".yaml")
            for p in (resources.files("rlinf.apps.embodied") / "presets").iterdir()
            if p.name.endswith(".yaml")
        )
        raise ConfigError(f"no preset named {name_or_path!r}; presets: {', '.join(names)}")
    return pathlib.Path(str(preset))


def resolve_placement(cfg: EmbodiedConfig) -> Placement:
    """Parse ``cfg.placement`` on the configured (not yet started) node."""
    try:
        return Placement.parse(
            dict(cfg.placement), Topology.uniform(1, cfg.cluster.devices), components=COMPONENTS
        )
    except PlacementError as e:
        raise ConfigError(f"placement: {e}") from e


def validate(cfg: EmbodiedConfig) -> Placement:
    """Check combinations that each section alone cannot see; returns the placement.

    Raises:
        ConfigError: naming the offending key.
    """
    placement = resolve_placement(cfg)
    missing = [c for c in COMPONENTS if c not in cfg.placement]
    if missing:
        raise ConfigError(f"placement: missing components {missing}")
    if placement["actor"].world_size != 1:
        raise ConfigError("placement.actor: the embodied actor runs as exactly one process")
    env_ranks = placement["env"].world_size
    shards = env_ranks * cfg.runner.pipeline_stages
    if cfg.env.num_envs % shards:
        raise ConfigError(
            f"env.num_envs: {cfg.env.num_envs} envs cannot be split over {env_ranks} env "
            f"workers x {cfg.runner.pipeline_stages} runner.pipeline_stages"
        )
    if cfg.algo.algo == "grpo":
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


def load_embodied_config(
    source: str | pathlib.Path | Mapping[str, object], overrides: Sequence[str] = ()
) -> EmbodiedConfig:
    """Load a preset name, a YAML path or a mapping, apply overrides and validate."""
    src = source if isinstance(source, Mapping) else preset_path(source)
    cfg = load_config(EmbodiedConfig, src, overrides)
    validate(cfg)
    return cfg

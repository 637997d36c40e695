"""The math app's config: data, model, SFT, generation, algorithm, checker, runner, placement."""

from __future__ import annotations

import pathlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from typing import Literal

from rlinf.core import ConfigError, load_config
from rlinf.envs.math import ARITHMETIC_PRESETS, ArithmeticConfig, MathCheckerConfig, MathDataConfig
from rlinf.models.llm import GenerationConfig, LLMUpdaterConfig, TinyLMConfig
from rlinf.sched import Placement, PlacementError, Topology

from ._sft import SFTConfig

__all__ = [
    "COMPONENTS",
    "ClusterSection",
    "DataSection",
    "MathConfig",
    "ModelSection",
    "RunnerConfig",
    "load_math_config",
    "preset_path",
    "resolve_placement",
]

COMPONENTS = ("actor", "rollout", "reward")


@dataclass(frozen=True)
class DataSection:
    """Where prompts come from.

    Attributes:
        source: ``"synthetic"``: integer arithmetic from :attr:`arithmetic` (no download);
            ``"files"``: :attr:`train_files` / :attr:`test_files` (JSONL, Parquet or an HF
            dataset on disk, see ``rlinf.envs.math.MathDataConfig``).
        arithmetic: difficulty and prompt template of the synthetic task (default: the
            ``easy`` preset of ``rlinf.envs.math.ARITHMETIC_PRESETS``).
        train_rows: synthetic rows of the train split.
        test_rows: synthetic rows of the held-out split (disjoint from train by
            construction).
        seed: seed of the synthetic generator and of the prompt order.
        train_files: the train data when ``source="files"``.
        test_files: the held-out data when ``source="files"``.
    """

    source: Literal["synthetic", "files"] = "synthetic"
    arithmetic: ArithmeticConfig = field(default_factory=lambda: ARITHMETIC_PRESETS["easy"])
    train_rows: int = 4000
    test_rows: int = 200
    seed: int = 0
    train_files: MathDataConfig | None = None
    test_files: MathDataConfig | None = None

    def __post_init__(self) -> None:
        if self.train_rows < 1 or self.test_rows < 1:
            raise ValueError("train_rows and test_rows must be >= 1")
        if self.source == "files" and (self.train_files is None or self.test_files is None):
            raise ValueError("source 'files' needs both train_files and test_files")


@dataclass(frozen=True)
class ModelSection:
    """The policy to train.

    Attributes:
        path: a local Hugging Face causal-LM directory; ``None`` builds the tiny seeded
            model of :attr:`tiny` (character tokenizer) in the run directory.
        tiny: size of the tiny model when ``path`` is None.
        dtype: torch dtype of the weights (``float32``, ``bfloat16``, ...).
    """

    path: str | None = None
    tiny: TinyLMConfig = field(default_factory=TinyLMConfig)
    dtype: str = "float32"


@dataclass(frozen=True)
class RunnerConfig:
    """How long to train and what to record.

    Attributes:
        name: run name (suffix of the run directory).
        seed: seed of the initial weights' shuffling, sampling and prompt order offset.
        steps: RL updates (one batch of prompts each).
        prompts_per_step: prompts per update (each sampled ``generation.n`` times).
        eval_every: greedy held-out accuracy every this many updates (0: only before the
            first and after the last update).
        eval_prompts: held-out prompts per evaluation (0: all of the split).
        checkpoint_every: save a checkpoint every this many updates (0: only at the end).
        runs_root: directory under which ``<timestamp>-<name>`` run directories are made.
        metric_backends: MetricLogger backends (``tensorboard``, ``jsonl``, ``wandb``).
        torch_threads: intra-op torch threads per process.
        timeout_s: longest wait for any worker or channel before the run fails.
        progress: show a tqdm progress bar.
    """

    name: str = "math"
    seed: int = 0
    steps: int = 100
    prompts_per_step: int = 32
    eval_every: int = 10
    eval_prompts: int = 0
    checkpoint_every: int = 0
    runs_root: str = "runs"
    metric_backends: tuple[str, ...] = ("tensorboard", "jsonl")
    torch_threads: int = 1
    timeout_s: float = 600.0
    progress: bool = True

    def __post_init__(self) -> None:
        if self.steps < 1 or self.prompts_per_step < 1:
            raise ValueError("steps and prompts_per_step must be >= 1")
        for name in ("eval_every", "eval_prompts", "checkpoint_every"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")
        if self.timeout_s <= 0 or self.torch_threads < 1:
            raise ValueError("timeout_s must be > 0 and torch_threads >= 1")


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
class MathConfig:
    """Everything a run needs; see the presets in ``rlinf/apps/math/presets``.

    Attributes:
        data: prompts and answers.
        model: the policy.
        sft: supervised warm-up before RL (``sft.steps=0`` skips it).
        generation: sampling of training rollouts (``n`` samples per prompt).
        algo: the updater (GRPO / DAPO / PPO / REINFORCE++).
        checker: answer checking (math-verify in a pool with a hard timeout).
        runner: run length and recording.
        placement: component (``actor``, ``rollout``, ``reward``) -> device spec as in
            ``rlinf.sched``. Same devices for all: collocated (they take turns); disjoint:
            disaggregated. The flow is the same.
        cluster: the Ray cluster.
    """

    data: DataSection = field(default_factory=DataSection)
    model: ModelSection = field(default_factory=ModelSection)
    sft: SFTConfig = field(default_factory=SFTConfig)
    generation: GenerationConfig = field(default_factory=GenerationConfig)
    algo: LLMUpdaterConfig = field(default_factory=LLMUpdaterConfig)
    checker: MathCheckerConfig = field(default_factory=lambda: MathCheckerConfig(num_workers=1))
    runner: RunnerConfig = field(default_factory=RunnerConfig)
    placement: Mapping[str, str | int] = field(
        default_factory=lambda: {"actor": "0", "rollout": "0", "reward": "0"}
    )
    cluster: ClusterSection = field(default_factory=ClusterSection)


def preset_path(name_or_path: str | pathlib.Path) -> pathlib.Path:
    """A file path as is, or the bundled preset ``<name>.yaml`` (e.g. ``"grpo"``)."""
    path = pathlib.Path(name_or_path)
    if path.suffix in (".yaml", ".yml") or path.exists():
        if not path.exists():
            raise ConfigError(f"config file {path} does not exist")
        return path
    presets = resources.files("rlinf.apps.math") / "presets"
    preset = presets / f"{name_or_path}.yaml"
    if not preset.is_file():
        names = sorted(p.name.removesuffix(".yaml") for p in presets.iterdir() if p.is_file())
        raise ConfigError(f"no preset named {name_or_path!r}; presets: {', '.join(names)}")
    return pathlib.Path(str(preset))


def resolve_placement(cfg: MathConfig) -> Placement:
    """Parse ``cfg.placement`` on the configured (not yet started) node."""
    try:
        return Placement.parse(
            dict(cfg.placement), Topology.uniform(1, cfg.cluster.devices), components=COMPONENTS
        )
    except PlacementError as e:
        raise ConfigError(f"placement: {e}") from e


def validate(cfg: MathConfig) -> Placement:
    """Check combinations that each section alone cannot see; returns the placement.

    Raises:
        ConfigError: naming the offending key.
    """
    placement = resolve_placement(cfg)
    missing = [c for c in COMPONENTS if c not in cfg.placement]
    if missing:
        raise ConfigError(f"placement: missing components {missing}")
    if placement["actor"].world_size != 1:
        raise ConfigError("placement.actor: the math actor runs as exactly one process")
    algo, gen = cfg.algo, cfg.generation
    if algo.temperature != gen.temperature:
        raise ConfigError(
            f"algo.temperature ({algo.temperature}) must equal generation.temperature "
            f"({gen.temperature}): log-probs are compared with the sampling distribution"
        )
    if algo.group_advantages and gen.n < 2:
        raise ConfigError(f"generation.n: {algo.algorithm} needs >= 2 samples per prompt")
    if algo.overlong_buffer and algo.max_response_length != gen.max_new_tokens:
        raise ConfigError(
            f"algo.max_response_length ({algo.max_response_length}) must equal "
            f"generation.max_new_tokens ({gen.max_new_tokens}) when algo.overlong_buffer is set"
        )
    if not gen.do_sample:
        raise ConfigError("generation.do_sample: RL rollouts must sample (greedy is for eval)")
    if cfg.model.path is not None and not pathlib.Path(cfg.model.path).is_dir():
        raise ConfigError(f"model.path: {cfg.model.path} is not a directory")
    backends = {"tensorboard", "jsonl", "wandb", "console"}
    unknown = [b for b in cfg.runner.metric_backends if b not in backends]
    if unknown:
        raise ConfigError(f"runner.metric_backends: unknown {unknown}; valid: {sorted(backends)}")
    return placement


def load_math_config(
    source: str | pathlib.Path | Mapping[str, object], overrides: Sequence[str] = ()
) -> MathConfig:
    """Load a preset name, a YAML path or a mapping, apply overrides and validate."""
    src = source if isinstance(source, Mapping) else preset_path(source)
    cfg = load_config(MathConfig, src, overrides)
    validate(cfg)
    return cfg

"""The math app's config: data, model, SFT, generation, algorithm, checker, runner, placement."""

from __future__ import annotations

import pathlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

from rlinf.core import (
    ClusterSection,
    ConfigError,
    RunnerSection,
    load_app_config,
    validate_placement,
)
from rlinf.envs.math import ARITHMETIC_PRESETS, ArithmeticConfig, MathCheckerConfig, MathDataConfig
from rlinf.models.llm import GenerationConfig, LLMUpdaterConfig, TinyLMConfig
from rlinf.sched import Placement

from ._sft import SFTConfig

__all__ = [
    "COMPONENTS",
    "ClusterSection",
    "DataSection",
    "MathConfig",
    "ModelSection",
    "RunnerConfig",
    "load_math_config",
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
class RunnerConfig(RunnerSection):
    """How long to train and what to record: the fields of :class:`rlinf.core.RunnerSection`
    (``name``, ``seed``, ``checkpoint_every``, ``runs_root``, ``metric_backends``,
    ``torch_threads``, ``timeout_s``, ``progress``) plus the run length below. ``seed``
    seeds the initial weights' shuffling, sampling and the prompt order's offset.

    Attributes:
        steps: RL updates (one batch of prompts each).
        prompts_per_step: prompts per update (each sampled ``generation.n`` times).
        eval_every: greedy held-out accuracy every this many updates (0: only before the
            first and after the last update).
        eval_prompts: held-out prompts per evaluation (0: all of the split).
    """

    name: str = "math"
    steps: int = 100
    prompts_per_step: int = 32
    eval_every: int = 10
    eval_prompts: int = 0

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.steps < 1 or self.prompts_per_step < 1:
            raise ValueError("steps and prompts_per_step must be >= 1")
        for name in ("eval_every", "eval_prompts"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")


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


def validate(cfg: MathConfig) -> Placement:
    """Check combinations that each section alone cannot see; returns the placement.

    Raises:
        ConfigError: naming the offending key.
    """
    placement = validate_placement(
        cfg.placement, cfg.cluster.devices, COMPONENTS, single_process=("actor",)
    )
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
    """Load a preset name (e.g. ``"grpo"``), a YAML path or a mapping, apply overrides
    and validate."""
    return load_app_config(
        MathConfig, source, overrides, package="rlinf.apps.math", validate=validate
    )

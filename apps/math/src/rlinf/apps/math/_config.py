"""The math app's config: data, model, SFT, generation, algorithm, checker, runner, placement."""

from __future__ import annotations

import pathlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

from rlinf.core import (
    ClusterSection,
    ConfigError,
    load_app_config,
    validate_placement,
)
from rlinf.envs.math import ARITHMETIC_PRESETS, ArithmeticConfig, MathCheckerConfig, MathDataConfig
from rlinf.models.llm import (
    GenerationConfig,
    LLMModelSection,
    LLMRunnerSection,
    LLMTrainingSection,
    LLMUpdaterConfig,
    check_llm_data_parallel,
    check_llm_dynamic,
    check_llm_rl_config,
    is_auto_placement,
    reference_llm_config,
)
from rlinf.sched import Placement, SchedulerSection

from ._sft import SFTConfig

__all__ = [
    "COMPONENTS",
    "ClusterSection",
    "DataSection",
    "MathConfig",
    "RunnerConfig",
    "load_math_config",
    "validate",
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
class RunnerConfig(LLMRunnerSection):
    """How long to train and what to record: :class:`rlinf.models.llm.LLMRunnerSection`
    (``steps``, ``prompts_per_step``, ``eval_every``, ``eval_prompts`` and the fields of
    :class:`rlinf.core.RunnerSection`) named ``math``. ``seed`` seeds the initial weights'
    shuffling, sampling and the prompt order's offset."""

    name: str = "math"


@dataclass(frozen=True)
class MathConfig:
    """Everything a run needs; see the presets in ``rlinf/apps/math/presets``.

    Attributes:
        data: prompts and answers.
        model: the policy.
        sft: supervised warm-up before RL (``sft.steps=0`` skips it).
        generation: sampling of training rollouts (``n`` samples per prompt).
        algo: the updater (GRPO / DAPO / PPO / REINFORCE++).
        training: how the actor trains: one process, or data-parallel FSDP2 over
            ``placement.actor``'s ranks (``rlinf.models.llm.LLMTrainingSection``).
        checker: answer checking (math-verify in a pool with a hard timeout).
        runner: run length and recording.
        placement: component (``actor``, ``rollout``, ``reward``) -> device spec as in
            ``rlinf.sched``. Same devices for all: collocated (they take turns); disjoint:
            disaggregated. The flow is the same. Or ``"auto"``: profile a few steps
            collocated, let the planner choose the placement and ``runner.max_staleness``
            (the config's value is replaced), then train.
        cluster: the Ray cluster.
        scheduler: ``dynamic: true`` lends the rollout / reward slots to the actor's update
            once a step's rollouts and scores are in (``rlinf.models.llm.StepLending``);
            needs a disaggregated placement on CPU slots with a one-rank actor, the HF
            generation backend and no DAPO refill. ``false`` (default): static placement.
    """

    data: DataSection = field(default_factory=DataSection)
    model: LLMModelSection = field(default_factory=LLMModelSection)
    sft: SFTConfig = field(default_factory=SFTConfig)
    generation: GenerationConfig = field(default_factory=GenerationConfig)
    algo: LLMUpdaterConfig = field(default_factory=LLMUpdaterConfig)
    training: LLMTrainingSection = field(default_factory=LLMTrainingSection)
    checker: MathCheckerConfig = field(default_factory=lambda: MathCheckerConfig(num_workers=1))
    runner: RunnerConfig = field(default_factory=RunnerConfig)
    placement: Mapping[str, str | int] | str = field(
        default_factory=lambda: {"actor": "0", "rollout": "0", "reward": "0"}
    )
    cluster: ClusterSection = field(default_factory=ClusterSection)
    scheduler: SchedulerSection = field(default_factory=SchedulerSection)


def validate(cfg: MathConfig) -> Placement:
    """Checks across sections (placement, algo against generation, model path); returns the
    parsed placement or raises :class:`ConfigError` naming the key. With ``placement:
    auto`` the rules are checked at the planner's reference point (every component on
    device 0, the synchronous step) and its placement returned."""
    try:
        auto = is_auto_placement(cfg.placement)
    except ValueError as e:
        raise ConfigError(str(e)) from None
    if auto:
        cfg = reference_llm_config(cfg)
    devices = cfg.cluster.topology()  # a joined cluster (cluster.address): its real nodes
    placement = validate_placement(cfg.placement, devices, COMPONENTS)
    check_llm_rl_config(cfg.algo, cfg.generation, cfg.model, cfg.runner)
    check_llm_data_parallel(
        cfg.training,
        placement["actor"].world_size,
        cfg.algo,
        cfg.runner.prompts_per_step * cfg.generation.n,
    )
    if cfg.scheduler.dynamic:
        if auto:
            raise ConfigError("scheduler.dynamic: plan the placement first (placement: auto)")
        try:
            check_llm_dynamic(placement, cfg.generation, cfg.algo)
        except ValueError as e:
            raise ConfigError(str(e)) from None
    return placement


def load_math_config(
    source: str | pathlib.Path | Mapping[str, object], overrides: Sequence[str] = ()
) -> MathConfig:
    """Load a preset name (e.g. ``"grpo"``), a YAML path or a mapping, apply overrides
    and validate."""
    return load_app_config(
        MathConfig, source, overrides, package="rlinf.apps.math", validate=validate
    )

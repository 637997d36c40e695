"""The agentic app's config: task, tools, model, SFT, generation, multi-turn limits,
algorithm, runner, placement."""

from __future__ import annotations

import pathlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

from rlinf.core import ClusterSection, ConfigError, load_app_config, validate_placement
from rlinf.envs.agentic import CodingConfig, MultiHopConfig, SandboxConfig
from rlinf.models.llm import (
    GenerationConfig,
    LLMModelSection,
    LLMRunnerSection,
    LLMTrainingSection,
    LLMUpdaterConfig,
    MultiTurnConfig,
    SFTConfig,
    check_llm_data_parallel,
    check_llm_rl_config,
)
from rlinf.sched import Placement

__all__ = [
    "COMPONENTS",
    "AgenticConfig",
    "RunnerConfig",
    "TaskSection",
    "ToolsSection",
    "load_agentic_config",
]

COMPONENTS = ("actor", "rollout", "reward", "tools")


@dataclass(frozen=True)
class TaskSection:
    """What the agent works on.

    Attributes:
        kind: ``"multihop"``: two-hop questions over a generated corpus, the ``search``
            tool (BM25), answer scored by normalized exact match; ``"coding"``: write a
            function, the ``code`` tool (sandboxed Python), scored by unit tests.
        multihop: the multi-hop generator (``kind="multihop"``).
        coding: the coding-task generator (``kind="coding"``).
        sandbox: limits of the code tool's and the scorer's sandboxed runs (coding).
        sft_traces: train rows whose gold tool-use traces the SFT warm-up learns from
            (the first ones of the train split; coding traces are made by running the
            reference solution through the real code tool).
        format_reward: reward of a wrong but well-formed ``<answer>`` (multihop; 0:
            outcome only).
        call_format: ``"tagged"`` (``<search>q</search>``) or ``"json"``
            (``<tool_call>{"name": ..., "arguments": ...}</tool_call>``); the SFT traces
            are tagged, so the warm-up needs ``"tagged"``.
    """

    kind: Literal["multihop", "coding"] = "multihop"
    multihop: MultiHopConfig = field(default_factory=MultiHopConfig)
    coding: CodingConfig = field(default_factory=CodingConfig)
    sandbox: SandboxConfig = field(
        default_factory=lambda: SandboxConfig(cpu_time_s=2, wall_time_s=5.0, memory_mb=256)
    )
    sft_traces: int = 200
    format_reward: float = 0.0
    call_format: Literal["tagged", "json"] = "tagged"

    def __post_init__(self) -> None:
        if self.sft_traces < 0:
            raise ValueError(f"sft_traces must be >= 0, got {self.sft_traces}")
        if not 0.0 <= self.format_reward < 1.0:
            raise ValueError(f"format_reward must be in [0, 1), got {self.format_reward}")

    @property
    def tools(self) -> tuple[str, ...]:
        """The tool names of this task."""
        return ("search",) if self.kind == "multihop" else ("code",)


@dataclass(frozen=True)
class ToolsSection:
    """The tool workers beside the rollout.

    Attributes:
        max_concurrency: calls one tool worker runs at once (threads), > 1 so that many
            trajectories' calls overlap.
        local: run the tools in a thread pool inside each rollout worker instead of on
            ToolWorker actors (no ``tools`` placement is used then).
    """

    max_concurrency: int = 8
    local: bool = False

    def __post_init__(self) -> None:
        if self.max_concurrency < 1:
            raise ValueError(f"max_concurrency must be >= 1, got {self.max_concurrency}")


@dataclass(frozen=True)
class RunnerConfig(LLMRunnerSection):
    """How long to train and what to record: :class:`rlinf.models.llm.LLMRunnerSection`
    (``steps``, ``prompts_per_step``, ``eval_every``, ``eval_prompts`` and the fields of
    :class:`rlinf.core.RunnerSection`) named ``agentic``, with this app's run length:
    ``steps`` RL updates of ``prompts_per_step`` prompts (each rolled out
    ``generation.n`` times). ``seed`` seeds sampling and the prompt order's offset."""

    name: str = "agentic"
    steps: int = 60
    prompts_per_step: int = 16


@dataclass(frozen=True)
class AgenticConfig:
    """Everything a run needs; see the presets in ``rlinf/apps/agentic/presets``.

    Attributes:
        task: questions / problems, tools and scoring.
        tools: the tool workers.
        model: the policy.
        sft: supervised warm-up on the task's gold traces (``sft.steps=0`` skips it).
        generation: sampling of one model turn (``n`` trajectories per prompt,
            ``max_new_tokens`` per turn).
        multi_turn: turn limit, token budget and observation cut of a trajectory.
        algo: the updater (GRPO / DAPO / PPO / REINFORCE++).
        training: how the actor trains: one process, or data-parallel FSDP2 over
            ``placement.actor``'s ranks (``rlinf.models.llm.LLMTrainingSection``).
        runner: run length and recording.
        placement: component (``actor``, ``rollout``, ``reward``, ``tools``) -> device
            spec as in ``rlinf.sched``. Same devices for all: collocated; disjoint:
            disaggregated. The flow is the same.
        cluster: the Ray cluster.
    """

    task: TaskSection = field(default_factory=TaskSection)
    tools: ToolsSection = field(default_factory=ToolsSection)
    model: LLMModelSection = field(default_factory=LLMModelSection)
    sft: SFTConfig = field(default_factory=SFTConfig)
    generation: GenerationConfig = field(default_factory=GenerationConfig)
    multi_turn: MultiTurnConfig = field(default_factory=MultiTurnConfig)
    algo: LLMUpdaterConfig = field(default_factory=LLMUpdaterConfig)
    training: LLMTrainingSection = field(default_factory=LLMTrainingSection)
    runner: RunnerConfig = field(default_factory=RunnerConfig)
    placement: Mapping[str, str | int] = field(
        default_factory=lambda: {"actor": "0", "rollout": "0", "reward": "0", "tools": "0"}
    )
    cluster: ClusterSection = field(default_factory=ClusterSection)


def validate(cfg: AgenticConfig) -> Placement:
    """What no section can check alone, including the SFT warm-up's needs from the task;
    returns the placement. Raises :class:`ConfigError` with the offending key."""
    devices = cfg.cluster.topology()  # a joined cluster (cluster.address): its real nodes
    placement = validate_placement(cfg.placement, devices, COMPONENTS)
    check_llm_rl_config(
        cfg.algo,
        cfg.generation,
        cfg.model,
        cfg.runner,
        response_limit=("multi_turn.max_response_tokens", cfg.multi_turn.max_response_tokens),
    )
    check_llm_data_parallel(
        cfg.training,
        placement["actor"].world_size,
        cfg.algo,
        cfg.runner.prompts_per_step * cfg.generation.n,
    )
    task = cfg.task
    if cfg.sft.steps and task.kind == "multihop":
        if task.sft_traces < 1:
            raise ConfigError("task.sft_traces: the SFT warm-up needs at least one trace")
        if task.call_format != "tagged":
            raise ConfigError("task.call_format: the SFT traces are in the tagged format")
        train = task.multihop.num_people - task.multihop.test_people
        if task.sft_traces > train:
            raise ConfigError(
                f"task.sft_traces ({task.sft_traces}) exceeds the {train} train questions"
            )
    if cfg.sft.steps and task.kind == "coding" and task.call_format != "tagged":
        raise ConfigError("task.call_format: the SFT traces are in the tagged format")
    return placement


def load_agentic_config(
    source: str | pathlib.Path | Mapping[str, object], overrides: Sequence[str] = ()
) -> AgenticConfig:
    """Load a preset name (``"search"``, ``"coder"``), a YAML path or a mapping, apply
    overrides and validate."""
    return load_app_config(
        AgenticConfig, source, overrides, package="rlinf.apps.agentic", validate=validate
    )

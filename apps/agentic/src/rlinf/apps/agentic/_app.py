"""The agentic app's own pieces, handed to the LLM apps' shared commands
(:class:`rlinf.models.llm.LLMApp`: train, resume, eval, sft): the task (rows, tools,
scorer), gold-trace SFT examples, the prompt order, :class:`AgenticFlow`, the greedy
multi-turn evaluation and the learning-curve panels."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from rlinf.models.llm import LLMApp, LLMTrainResult

from ._config import AgenticConfig, load_agentic_config
from ._eval import greedy_eval
from ._task import TaskData, load_task, prompt_iterator

if TYPE_CHECKING:
    from rlinf.models.llm import LLMRLFlow

__all__ = ["APP", "TrainResult", "command", "evaluate", "resume", "train"]

PANELS = (
    ("reward", (("rollout/reward_mean", "rollout reward"),)),
    ("tool calls / trajectory", (("rollout/tool_calls", "rollout"), ("eval/tool_calls", "held-out (greedy)"))),
    ("accuracy", (("rollout/accuracy", "rollout"), ("eval/accuracy", "held-out (greedy)"))),
)  # fmt: skip


@dataclass(frozen=True)
class TrainResult(LLMTrainResult):
    """:class:`rlinf.models.llm.LLMTrainResult` with the tool calls per held-out
    trajectory before RL (NaN if resumed) and after the last update."""

    @property
    def initial_tool_calls(self) -> float:
        return self.initial("eval/tool_calls")

    @property
    def final_tool_calls(self) -> float:
        return self.final("eval/tool_calls")


def _load_data(cfg: AgenticConfig, resumed: bool) -> TaskData:
    # Without the warm-up no gold traces are needed (coding makes them by running the tool).
    return load_task(cfg.task, trace_rows=0 if resumed else cfg.task.sft_traces)


def _make_flow(cfg: AgenticConfig, task: TaskData, model_path: str, ref_path: str) -> LLMRLFlow:
    from ._flow import AgenticFlow  # imports Ray: only once every input is checked

    return AgenticFlow(cfg, task, model_path, ref_path, total_updates=cfg.runner.steps)


APP: LLMApp[AgenticConfig, TaskData] = LLMApp(
    name="agentic",
    load_config=load_agentic_config,
    load_data=_load_data,
    sft_examples=lambda cfg, task: task.sft_examples(cfg.task.sft_traces),
    prompts=lambda cfg, task: prompt_iterator(cfg.task, task.train, cfg.runner.seed),
    make_flow=_make_flow,
    greedy_eval=greedy_eval,
    panels=PANELS,
    plot_title=lambda cfg: f"agentic ({cfg.task.kind}, {cfg.algo.name}, {cfg.runner.name})",
    figsize=(14, 4),
    summary=(
        ("held-out accuracy", "eval/accuracy", ".3f"),
        ("tool calls per trajectory", "eval/tool_calls", ".2f"),
    ),
    postfix={"calls": "rollout/tool_calls"},
    result_type=TrainResult,
)
"""The agentic app for the shared LLM commands; ``rlinf-agentic`` runs ``APP.command``."""

train = APP.train
resume = APP.resume
evaluate = APP.evaluate
command = APP.command

"""The agentic flow: :class:`rlinf.models.llm.LLMRLFlow` with multi-turn agent rollouts,
tool workers launched beside them and the task's scorer.

One training step::

    driver --prompts--> rollout ranks <--calls / observations--> tool workers
    rollout ranks --{batch, transcripts}--> [rollout channel]
    [rollout channel] --> reward worker (task scorer) --{+ rewards}--> [scored channel]
    [scored channel] --> actor (log-probs, advantages, update; tool output masked) --> v+1
    actor --WeightSnapshot (object store)--> every rollout rank (checks v+1)

Each rollout rank runs many trajectories at once: a trajectory waiting on a tool never holds
back the others (``multi_turn_generate``), and the tool workers run calls on several threads
(``tools.max_concurrency``). The same code runs collocated or disaggregated; only the
placement in the config differs.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import Any

from rlinf.core import WorkerGroup
from rlinf.envs.agentic import ToolAgentEnv, ToolWorker
from rlinf.models.llm import AgentRolloutWorker, LLMFlowConfig, LLMRLFlow
from rlinf.models.llm.engines import with_engine_tis

from ._config import COMPONENTS, AgenticConfig
from ._task import TaskData

__all__ = ["AgenticFlow"]


class AgenticFlow(LLMRLFlow):
    """Starts the cluster, the tool workers (unless ``tools.local``) and the actor /
    rollout / reward groups of an agentic run.

    ``step(rows, version)`` and ``evaluate(rows, version)`` take :class:`TaskRow`\\ s; see
    :class:`~rlinf.models.llm.LLMRLFlow`. Besides its metrics, a step reports
    ``rollout/turns`` and ``rollout/tool_calls`` (per-trajectory means) and
    ``time/tool_wait``; an evaluation ``eval/turns`` and ``eval/tool_calls``.
    ``groups["tools"]`` is the ToolWorker group when launched.

    Args:
        cfg: a validated :class:`AgenticConfig`.
        task: the run's task (rows and picklable tool / scorer factories).
        model_path: HF directory the policy starts from (the SFT output, or a checkpoint's
            model when resuming).
        ref_path: HF directory of the KL reference (the policy before RL).
        total_updates: updates of the whole run (learning-rate schedule).
    """

    def __init__(
        self,
        cfg: AgenticConfig,
        task: TaskData,
        model_path: str,
        ref_path: str,
        total_updates: int,
    ) -> None:
        def launch_tools(launch: Callable[..., WorkerGroup]) -> Sequence[Any]:
            # Runs before the actor starts; what it launches dies with the cluster.
            if cfg.tools.local:
                return (
                    functools.partial(
                        ToolAgentEnv,
                        task.call_format,
                        tools_factory=task.tools_factory,
                        max_threads=cfg.tools.max_concurrency,
                    ),
                )
            # Threads per worker: many trajectories' calls run at once.
            tools = launch(
                ToolWorker,
                "tools",
                args=(task.tools_factory,),
                max_concurrency=cfg.tools.max_concurrency,
            )
            # Built here, from the group, so that a dead worker's error names the group;
            # the env pickles with its workers' handles into each rollout worker.
            return (functools.partial(_identity, ToolAgentEnv(task.call_format, workers=tools)),)

        super().__init__(
            LLMFlowConfig(
                "agentic",
                cfg.runner,
                cfg.cluster,
                cfg.placement,
                COMPONENTS,
                cfg.model.dtype,
                correct_statuses=("correct", "passed"),
                no_answer_statuses=("no_answer", "no_code"),
                # Partial rollouts reach trajectories before each turn and inside one.
                partial=cfg.runner.partial,
            ),
            model_path=model_path,
            ref_path=ref_path,
            # Truncated IS on by default when vLLM / SGLang generate.
            algo=with_engine_tis(cfg.algo, cfg.generation),
            total_updates=total_updates,
            training=cfg.training,
            scorer_factory=task.scorer_factory,
            rollout_worker=AgentRolloutWorker,
            rollout_args=(cfg.generation, cfg.multi_turn),  # launch_tools appends the env
            task_of=_no_task,
            launch_extra=launch_tools,
        )


def _no_task(row: Any) -> None:
    """Every trajectory's session task: the tools are shared, the prompt says it all."""
    return None


def _identity(env: ToolAgentEnv) -> ToolAgentEnv:
    """``env_factory`` of an env built in the driver."""
    return env

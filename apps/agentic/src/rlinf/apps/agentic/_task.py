"""The task of a run: its rows, SFT examples, tools, call format and scorer, all built from
the config (picklable factories, so tools and scorers are made in the worker processes)."""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from rlinf.envs.agentic import (
    AnswerScorer,
    CodeTool,
    CodingScorer,
    JSONCallFormat,
    SandboxConfig,
    SearchTool,
    TaggedCallFormat,
    ToolSet,
    generate_coding_tasks,
    generate_multihop,
)
from rlinf.envs.math import PromptIterator
from rlinf.models.llm import SFTExample

from ._config import TaskSection

__all__ = ["TaskData", "TaskRow", "load_task", "prompt_iterator"]


@dataclass(frozen=True)
class TaskRow:
    """One prompt of the task.

    Attributes:
        prompt: the text the model continues.
        answer: what the scorer compares with (multihop: the answer; coding: the tests).
        trace: gold ``(text, trained?)`` segments after the prompt (empty: none).
    """

    prompt: str
    answer: str
    trace: tuple[tuple[str, bool], ...] = ()


@dataclass(frozen=True)
class TaskData:
    """Train and held-out rows plus the picklable factories of the run's task.

    Attributes:
        train: train rows (RL prompts; the first ``sft_traces`` also teach the warm-up).
        test: held-out rows.
        tools_factory: builds the task's :class:`ToolSet` (in a tool worker).
        scorer_factory: builds the task's scorer (in the reward worker).
        call_format: how calls, answers and observations look.
    """

    train: list[TaskRow]
    test: list[TaskRow]
    tools_factory: Callable[[], ToolSet]
    scorer_factory: Callable[[], Any]
    call_format: Any

    def sft_examples(self, count: int) -> list[SFTExample]:
        """The SFT examples of the first ``count`` train rows that have a trace."""
        rows = [r for r in self.train if r.trace][:count]
        if not rows:
            raise ValueError("the task has no gold traces for the SFT warm-up")
        return [SFTExample(r.prompt, r.trace) for r in rows]


def _search_tools(corpus: tuple[str, ...], top_k: int, max_chars: int) -> ToolSet:
    return ToolSet([SearchTool(corpus, top_k=top_k, max_chars=max_chars)])


def _code_tools(sandbox: SandboxConfig) -> ToolSet:
    return ToolSet([CodeTool(sandbox)])


def _coding_trace(
    solution: str, tests: str, tool: CodeTool, fmt: Any
) -> tuple[tuple[str, bool], ...]:
    """Run the solution with its first test through the real code tool, then answer."""
    first = tests.splitlines()[0] if tests.strip() else ""
    program = f"{solution}{first}\nprint('ok')\n"
    result = tool.run(program)
    if not result.ok:
        raise RuntimeError(f"the reference solution failed its test in the sandbox: {result.text}")
    observation = fmt.wrap(result)
    return (
        (f"<code>{program}</code>", True),
        (observation, False),
        (f"<answer>{solution}</answer>", True),
    )


def load_task(task: TaskSection, *, trace_rows: int | None = None) -> TaskData:
    """Generate the task of ``task`` (deterministic in its seeds).

    ``trace_rows``: coding only: gold traces are made (by running the code tool) for the
    first that many train rows (default ``task.sft_traces``); multihop rows always carry
    theirs.
    """
    fmt_cls = TaggedCallFormat if task.call_format == "tagged" else JSONCallFormat
    fmt = fmt_cls(tools=task.tools)
    if task.kind == "multihop":
        data = generate_multihop(task.multihop)
        mh = task.multihop
        return TaskData(
            train=[TaskRow(r.prompt, r.answer, r.trace) for r in data.train],
            test=[TaskRow(r.prompt, r.answer) for r in data.test],
            tools_factory=functools.partial(
                _search_tools, tuple(data.corpus), mh.top_k, mh.max_chars
            ),
            scorer_factory=functools.partial(AnswerScorer, task.format_reward),
            call_format=fmt,
        )
    train, test = generate_coding_tasks(task.coding)
    tool = CodeTool(task.sandbox)
    rows = []
    count = task.sft_traces if trace_rows is None else trace_rows
    for i, t in enumerate(train):
        trace = _coding_trace(t.solution, t.tests, tool, fmt) if i < count else ()
        rows.append(TaskRow(t.prompt, t.answer, trace))
    return TaskData(
        train=rows,
        test=[TaskRow(t.prompt, t.answer) for t in test],
        tools_factory=functools.partial(_code_tools, task.sandbox),
        scorer_factory=functools.partial(CodingScorer, task.sandbox),
        call_format=fmt,
    )


def prompt_iterator(task: TaskSection, train: list[TaskRow], runner_seed: int) -> PromptIterator:
    """The seeded, resumable order of train prompts (``runner.seed`` offsets the task's
    seed, so another runner seed visits the same rows in another order)."""
    seed = task.multihop.seed if task.kind == "multihop" else task.coding.seed
    return PromptIterator(train, shuffle=True, seed=seed + 1_000_003 * runner_seed)

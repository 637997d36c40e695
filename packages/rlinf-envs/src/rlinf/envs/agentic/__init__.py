"""rlinf.envs.agentic: tools and multi-turn agent tasks for LLMs.

* Tool interface: :class:`Tool`, :class:`ToolCall`, :class:`ToolResult`, :class:`ToolSet`.
* Tool-call formats (parse calls out of generated text; malformed calls become an error
  observation): :class:`TaggedCallFormat` (``<search>...</search>``), :class:`JSONCallFormat`
  (``<tool_call>{"name": ..., "arguments": {...}}</tool_call>``).
* Code execution: :func:`run_python` in a sandbox (CPU / wall / memory / output limits, no
  network, private working directory, scrubbed environment, no device nodes, no change
  outside its directory), :class:`CodeTool`, and the
  coding task whose reward is unit tests passing.
* Search: :class:`BM25Index` over a local corpus (``rlinf-envs[search]``), :class:`SearchTool`,
  and the offline multi-hop question-answering task over a generated corpus.
* :class:`ToolAgentEnv`: per-trajectory sessions that parse each model turn and run its tool
  call asynchronously (in threads, or on :class:`ToolWorker` actors beside the rollout).

Names are imported on first use (PEP 562), so importing the package loads nothing heavy.
"""

from __future__ import annotations

import importlib

_EXPORTS = {
    # interface
    "TOOL_STATUSES": "_tools",
    "Tool": "_tools",
    "ToolCall": "_tools",
    "ToolResult": "_tools",
    "ToolSet": "_tools",
    # call formats
    "CallFormat": "_calls",
    "ParsedTurn": "_calls",
    "TaggedCallFormat": "_calls",
    "JSONCallFormat": "_calls",
    # code execution
    "SandboxConfig": "_sandbox",
    "SandboxResult": "_sandbox",
    "run_python": "_sandbox",
    "SANDBOX_STATUSES": "_sandbox",
    "CodeTool": "_code_tool",
    "strip_code_fence": "_code_tool",
    "CodingConfig": "_coding_tasks",
    "CodingScorer": "_coding",
    "CodingTask": "_coding_tasks",
    "CodingResult": "_coding",
    "extract_code": "_coding",
    "reference_solution": "_coding_tasks",
    "generate_coding_tasks": "_coding_tasks",
    # search
    "BM25Index": "_search",
    "SearchTool": "_search",
    "tokenize": "_search",
    "MultiHopConfig": "_multihop",
    "MultiHopData": "_multihop",
    "AgentRow": "_multihop",
    "AnswerScorer": "_multihop",
    "AnswerResult": "_multihop",
    "normalize_answer": "_multihop",
    "generate_multihop": "_multihop",
    # sessions and workers
    "ToolAgentEnv": "_agent_env",
    "ToolSession": "_agent_env",
    "ToolWorker": "_tool_worker",
    "tool_worker_handles": "_tool_worker",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> object:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'rlinf.envs.agentic' has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{module}"), name)


def __dir__() -> list[str]:
    return __all__

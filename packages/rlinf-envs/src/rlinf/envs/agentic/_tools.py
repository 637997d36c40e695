"""The tool interface: what an agent can call between generations, and what comes back."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

__all__ = ["TOOL_STATUSES", "Tool", "ToolCall", "ToolResult", "ToolSet"]

#: Every status a :class:`ToolResult` may carry. ``ok``: the tool ran and answered;
#: ``error``: the call was invalid or the tool failed (message in ``text``); the rest are
#: sandbox outcomes of code execution (see ``rlinf.envs.agentic.run_python``).
TOOL_STATUSES = (
    "ok",
    "error",
    "malformed",
    "unknown_tool",
    "timeout",
    "memory",
    "output_limit",
    "killed",
)


@dataclass(frozen=True)
class ToolCall:
    """One call parsed out of generated text.

    Attributes:
        name: the tool's name (e.g. ``"search"``).
        arguments: the raw argument text (a search query, a code snippet, or the JSON of a
            function call's ``arguments``); each tool parses its own.
    """

    name: str
    arguments: str


@dataclass(frozen=True)
class ToolResult:
    """What a tool returns to the agent.

    Attributes:
        text: the observation shown to the model (before any wrapping by the call format).
        status: one of :data:`TOOL_STATUSES`.
        elapsed_s: seconds the tool took.
    """

    text: str
    status: str = "ok"
    elapsed_s: float = 0.0

    def __post_init__(self) -> None:
        if self.status not in TOOL_STATUSES:
            raise ValueError(
                f"ToolResult.status must be one of {TOOL_STATUSES}, got {self.status!r}"
            )

    @property
    def ok(self) -> bool:
        """The tool ran and answered."""
        return self.status == "ok"


@runtime_checkable
class Tool(Protocol):
    """A callable tool. ``run`` must never raise on bad arguments: it returns a
    :class:`ToolResult` with status ``error`` and a message the model can read. It may be
    called from several threads at once."""

    @property
    def name(self) -> str:
        """The name calls use."""
        ...

    @property
    def description(self) -> str:
        """One line for prompts and docs."""
        ...

    def run(self, arguments: str) -> ToolResult:
        """Run one call."""
        ...


class ToolSet:
    """Tools by name; :meth:`run` dispatches a :class:`ToolCall` (unknown names give an
    ``unknown_tool`` result that lists the known ones)."""

    def __init__(self, tools: Iterable[Tool]) -> None:
        self._tools: dict[str, Tool] = {}
        for tool in tools:
            if not isinstance(tool, Tool):
                raise TypeError(f"{tool!r} is not a Tool (needs name, description, run)")
            if tool.name in self._tools:
                raise ValueError(f"two tools are named {tool.name!r}")
            self._tools[tool.name] = tool

    @property
    def names(self) -> tuple[str, ...]:
        """Tool names in registration order."""
        return tuple(self._tools)

    @property
    def tools(self) -> Mapping[str, Tool]:
        """Read-only view of the tools by name."""
        return dict(self._tools)

    def run(self, call: ToolCall) -> ToolResult:
        """Run ``call`` on its tool."""
        tool = self._tools.get(call.name)
        if tool is None:
            known = ", ".join(self._tools) or "none"
            return ToolResult(f"unknown tool {call.name!r} (tools: {known})", "unknown_tool")
        return tool.run(call.arguments)

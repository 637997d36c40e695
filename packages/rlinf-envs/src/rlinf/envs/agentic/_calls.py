"""Tool-call formats: find the call (or the final answer) in one model turn, and wrap what
the tool returned as the observation text appended to the trajectory.

Rules shared by every format (``parse``):

* Text inside result blocks (``<result>...</result>``, or from an unclosed ``<result>`` to
  the end of the turn) never counts: a model that imitates an observation does not call
  anything by doing so.
* The LAST complete call or answer in the turn wins (generation stops at a call's closing
  tag, so a call is normally the end of the turn; earlier drafts are superseded).
* An answer ends the trajectory (kind ``"answer"``).
* A call that cannot run (empty arguments, invalid JSON, unknown tool, missing name, a call
  tag left open at the end of the turn) is kind ``"malformed"`` with a message naming the
  problem; the agent env shows that message to the model as an error observation.
* No call and no answer: kind ``"none"`` (the trajectory ends).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from ._tools import ToolCall, ToolResult

__all__ = ["CallFormat", "JSONCallFormat", "ParsedTurn", "TaggedCallFormat"]

PARSED_KINDS = ("call", "answer", "none", "malformed")
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_\-]*")


@dataclass(frozen=True)
class ParsedTurn:
    """What one model turn asked for.

    Attributes:
        kind: ``"call"`` (run ``call``), ``"answer"`` (final answer; the trajectory ends),
            ``"none"`` (neither; the trajectory ends) or ``"malformed"`` (a call that
            cannot run; ``error`` says why).
        call: the tool call when ``kind == "call"``, else None.
        answer: the answer text (stripped) when ``kind == "answer"``, else None.
        error: the problem when ``kind == "malformed"``, else None.
    """

    kind: str
    call: ToolCall | None = None
    answer: str | None = None
    error: str | None = None

    def __post_init__(self) -> None:
        if self.kind not in PARSED_KINDS:
            raise ValueError(f"ParsedTurn.kind must be one of {PARSED_KINDS}, got {self.kind!r}")
        expected = {"call": "call", "answer": "answer", "malformed": "error"}.get(self.kind)
        for field in ("call", "answer", "error"):
            if (getattr(self, field) is not None) != (field == expected):
                raise ValueError(f"ParsedTurn(kind={self.kind!r}) with a wrong {field!r} field")


@runtime_checkable
class CallFormat(Protocol):
    """How calls, answers and observations look in generated text."""

    @property
    def stop(self) -> tuple[str, ...]:
        """Strings that end a model turn (the closing tags of calls)."""
        ...

    def parse(self, turn_text: str) -> ParsedTurn:
        """What the newest model turn asks for (see the module rules)."""
        ...

    def wrap(self, result: ToolResult) -> str:
        """The observation text appended after the turn."""
        ...


def _check_name(what: str, value: object) -> str:
    if not isinstance(value, str) or not _NAME.fullmatch(value):
        raise ValueError(
            f"{what} must be a tag name like 'search' (letters, digits, _ -), got {value!r}"
        )
    return value


def _check_tags(tools: object, *others: tuple[str, str]) -> tuple[str, ...]:
    if isinstance(tools, str) or not isinstance(tools, (tuple, list)) or not tools:
        raise ValueError(f"tools must be a non-empty tuple of tool names, got {tools!r}")
    names = tuple(_check_name("each tool name", t) for t in tools)
    if len(set(names)) != len(names):
        raise ValueError(f"tools has duplicate names: {names}")
    seen = set(names)
    for what, tag in others:
        _check_name(what, tag)
        if tag in seen:
            raise ValueError(f"{what} {tag!r} collides with a tool name or another tag")
        seen.add(tag)
    return names


def _strip_results(text: str, result_tag: str) -> str:
    """``text`` with every result block removed (an unclosed one runs to the end)."""
    pattern = re.compile(rf"<{re.escape(result_tag)}>.*?(?:</{re.escape(result_tag)}>|\Z)", re.S)
    return pattern.sub(" ", text)


def _last_match(text: str, tags: tuple[str, ...]) -> tuple[str, str, int] | None:
    """The complete ``<tag>body</tag>`` that ends last: ``(tag, body, end)``."""
    best = None
    for tag in tags:
        t = re.escape(tag)
        for m in re.finditer(rf"<{t}>(.*?)</{t}>", text, re.S):
            if best is None or m.end() > best[2]:
                best = (tag, m.group(1), m.end())
    return best


def _open_after(text: str, tags: tuple[str, ...], start: int) -> str | None:
    """A call tag opened after ``start`` and never closed (the model meant to call)."""
    for tag in tags:
        if f"<{tag}>" in text[start:]:
            return tag
    return None


def _wrap(result_tag: str, result: ToolResult) -> str:
    return f"<{result_tag}>{result.text}</{result_tag}>"


@dataclass(frozen=True)
class TaggedCallFormat:
    """Calls as ``<search>query</search>``; the tag's body (stripped) is the argument text.

    Attributes:
        tools: tool names, each its own tag.
        answer_tag: the final answer ``<answer>...</answer>``.
        result_tag: observations ``<result>...</result>``.
    """

    tools: tuple[str, ...] = ("search",)
    answer_tag: str = "answer"
    result_tag: str = "result"

    def __post_init__(self) -> None:
        tools = _check_tags(
            self.tools, ("answer_tag", self.answer_tag), ("result_tag", self.result_tag)
        )
        object.__setattr__(self, "tools", tools)

    @property
    def stop(self) -> tuple[str, ...]:
        """The closing tags of the tools, then of the answer (generating past an answer
        only wastes tokens: the trajectory ends there)."""
        return (*(f"</{t}>" for t in self.tools), f"</{self.answer_tag}>")

    def parse(self, turn_text: str) -> ParsedTurn:
        """See the module rules."""
        text = _strip_results(turn_text, self.result_tag)
        last = _last_match(text, (*self.tools, self.answer_tag))
        unclosed = _open_after(text, self.tools, last[2] if last else 0)
        if unclosed is not None:
            return ParsedTurn("malformed", error=f"<{unclosed}> call was never closed")
        if last is None:
            return ParsedTurn("none")
        tag, body, _ = last
        if tag == self.answer_tag:
            return ParsedTurn("answer", answer=body.strip())
        if not body.strip():
            return ParsedTurn("malformed", error=f"empty <{tag}> call (no arguments)")
        return ParsedTurn("call", call=ToolCall(tag, body.strip()))

    def wrap(self, result: ToolResult) -> str:
        """``<result>{text}</result>``."""
        return _wrap(self.result_tag, result)


@dataclass(frozen=True)
class JSONCallFormat:
    """Calls as ``<tool_call>{"name": "search", "arguments": {"query": "..."}}</tool_call>``.

    ``ToolCall.arguments`` rule: when ``arguments`` is an object with exactly one value and
    that value is a string (``{"query": "..."}``, ``{"code": "..."}``), the argument text is
    that string, so single-argument tools read the same text as in the tagged format;
    otherwise it is the compact JSON of the object (keys sorted) for the tool to parse. A
    bare string ``"arguments": "..."`` is taken as the text itself.

    Attributes:
        tools: names the model may call.
        call_tag: the tag around the JSON.
        answer_tag: the final answer ``<answer>...</answer>``.
        result_tag: observations ``<result>...</result>``.
    """

    tools: tuple[str, ...] = ("search",)
    call_tag: str = "tool_call"
    answer_tag: str = "answer"
    result_tag: str = "result"

    def __post_init__(self) -> None:
        tools = _check_tags(
            self.tools,
            ("call_tag", self.call_tag),
            ("answer_tag", self.answer_tag),
            ("result_tag", self.result_tag),
        )
        object.__setattr__(self, "tools", tools)

    @property
    def stop(self) -> tuple[str, ...]:
        """The closing call tag, then the answer's (the trajectory ends at an answer)."""
        return (f"</{self.call_tag}>", f"</{self.answer_tag}>")

    def parse(self, turn_text: str) -> ParsedTurn:
        """See the module rules and the class docstring."""
        text = _strip_results(turn_text, self.result_tag)
        last = _last_match(text, (self.call_tag, self.answer_tag))
        if _open_after(text, (self.call_tag,), last[2] if last else 0) is not None:
            return ParsedTurn("malformed", error=f"<{self.call_tag}> was never closed")
        if last is None:
            return ParsedTurn("none")
        tag, body, _ = last
        if tag == self.answer_tag:
            return ParsedTurn("answer", answer=body.strip())
        call = self._decode(body)
        if isinstance(call, str):
            return ParsedTurn("malformed", error=call)
        return ParsedTurn("call", call=call)

    def _decode(self, body: str) -> ToolCall | str:
        """The call in ``body``, or the problem as a message."""
        if not body.strip():
            return f"empty <{self.call_tag}>"
        try:
            obj = json.loads(body)
        except json.JSONDecodeError as e:
            return f"invalid JSON in <{self.call_tag}>: {e.msg} at position {e.pos}"
        if not isinstance(obj, dict):
            return f"<{self.call_tag}> must hold a JSON object, got {type(obj).__name__}"
        name = obj.get("name")
        if name is None:
            return f'<{self.call_tag}> has no "name"'
        if name not in self.tools:
            return f"unknown tool {name!r} (tools: {', '.join(self.tools)})"
        if "arguments" not in obj:
            return f'call of {name!r} has no "arguments"'
        args = obj["arguments"]
        if isinstance(args, dict) and len(args) == 1 and isinstance(next(iter(args.values())), str):
            args = next(iter(args.values()))
        if isinstance(args, str):
            text = args.strip()
        elif isinstance(args, dict):
            text = json.dumps(args, sort_keys=True, separators=(",", ":")) if args else ""
        else:
            return f'"arguments" of {name!r} must be an object, got {type(args).__name__}'
        if not text:
            return f"empty arguments in call of {name!r}"
        return ToolCall(name, text)

    def wrap(self, result: ToolResult) -> str:
        """``<result>{text}</result>``."""
        return _wrap(self.result_tag, result)

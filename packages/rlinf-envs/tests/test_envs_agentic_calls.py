"""Tool-call formats: calls, answers, malformed calls and the rules shared by all formats."""

from __future__ import annotations

import pickle

import pytest

from rlinf.envs.agentic import (
    CallFormat,
    JSONCallFormat,
    ParsedTurn,
    TaggedCallFormat,
    ToolCall,
    ToolResult,
)


def test_tagged_call_answer_none():
    fmt = TaggedCallFormat(tools=("search", "code"))
    assert isinstance(fmt, CallFormat)
    assert fmt.stop == ("</search>", "</code>", "</answer>")
    assert fmt.parse("I should look it up. <search> capital of France </search>") == ParsedTurn(
        "call", call=ToolCall("search", "capital of France")
    )
    assert fmt.parse("<code>print(1)\n</code>").call == ToolCall("code", "print(1)")
    assert fmt.parse("So it is <answer> Paris </answer>") == ParsedTurn("answer", answer="Paris")
    assert fmt.parse("just thinking aloud").kind == "none"
    assert fmt.parse("<foo>x</foo>").kind == "none"  # not a tool: plain text


def test_tagged_last_call_wins_and_results_ignored():
    fmt = TaggedCallFormat()
    assert fmt.parse("<search>a</search> no, <search>b</search>").call == ToolCall("search", "b")
    # An answer after a call ends the trajectory; a call after an answer supersedes it.
    assert fmt.parse("<search>a</search><answer>x</answer>").kind == "answer"
    assert fmt.parse("<answer>x</answer><search>a</search>").call.arguments == "a"
    # Calls and answers inside (imitated) result blocks never count.
    text = "<search>real</search><result><search>fake</search><answer>y</answer></result>"
    assert fmt.parse(text).call == ToolCall("search", "real")
    assert fmt.parse("<result>open <answer>z</answer>").kind == "none"


def test_tagged_malformed():
    fmt = TaggedCallFormat()
    empty = fmt.parse("<search>  </search>")
    assert empty.kind == "malformed" and "empty <search> call" in empty.error
    unclosed = fmt.parse("<answer>x</answer> <search>what")
    assert unclosed.kind == "malformed" and "<search> call was never closed" in unclosed.error
    assert fmt.wrap(ToolResult("error: bad", "malformed")) == "<result>error: bad</result>"
    assert fmt.wrap(ToolResult("doc one")) == "<result>doc one</result>"


def test_json_calls():
    fmt = JSONCallFormat(tools=("search", "calc"))
    assert fmt.stop == ("</tool_call>", "</answer>")
    text = '<tool_call>{"name": "search", "arguments": {"query": " who won "}}</tool_call>'
    assert fmt.parse(text) == ParsedTurn("call", call=ToolCall("search", "who won"))
    # Several arguments: the compact JSON, keys sorted.
    text = '<tool_call>{"name": "calc", "arguments": {"b": 2, "a": "x"}}</tool_call>'
    assert fmt.parse(text).call == ToolCall("calc", '{"a":"x","b":2}')
    # A single non-string argument is JSON too; a bare string is the text itself.
    text = '<tool_call>{"name": "calc", "arguments": {"n": 3}}</tool_call>'
    assert fmt.parse(text).call.arguments == '{"n":3}'
    text = '<tool_call>{"name": "calc", "arguments": "1+1"}</tool_call>'
    assert fmt.parse(text).call.arguments == "1+1"
    first = '<tool_call>{"name": "search", "arguments": {"query": "a"}}</tool_call>'
    second = '<tool_call>{"name": "calc", "arguments": {"q": "b"}}</tool_call>'
    assert fmt.parse(first + second).call == ToolCall("calc", "b")
    assert fmt.parse(first + "<answer>42</answer>") == ParsedTurn("answer", answer="42")
    assert fmt.parse(f"{first}<result>{second}</result>").call.name == "search"
    assert fmt.parse("nothing").kind == "none"


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("", "empty <tool_call>"),
        ('{"name": "search", "arguments": {"query": "a"', "invalid JSON in <tool_call>"),
        ('["search"]', "must hold a JSON object, got list"),
        ('{"arguments": {"query": "a"}}', 'has no "name"'),
        ('{"name": "browse", "arguments": {"url": "a"}}', "unknown tool 'browse' (tools: search)"),
        ('{"name": "search"}', "call of 'search' has no \"arguments\""),
        ('{"name": "search", "arguments": {}}', "empty arguments in call of 'search'"),
        ('{"name": "search", "arguments": {"query": " "}}', "empty arguments in call of 'search'"),
        ('{"name": "search", "arguments": 3}', "must be an object, got int"),
    ],
)
def test_json_malformed(body, message):
    parsed = JSONCallFormat().parse(f"thinking <tool_call>{body}</tool_call>")
    assert parsed.kind == "malformed"
    assert message in parsed.error
    assert parsed.call is None


def test_json_unclosed_call():
    parsed = JSONCallFormat().parse('<tool_call>{"name": "search"')
    assert parsed.kind == "malformed" and "<tool_call> was never closed" in parsed.error


def test_constructor_validation_and_pickle():
    with pytest.raises(ValueError, match="non-empty tuple of tool names"):
        TaggedCallFormat(tools=())
    with pytest.raises(ValueError, match="non-empty tuple of tool names"):
        TaggedCallFormat(tools="search")
    with pytest.raises(ValueError, match="duplicate"):
        TaggedCallFormat(tools=("search", "search"))
    with pytest.raises(ValueError, match="tag name"):
        TaggedCallFormat(tools=("web search",))
    with pytest.raises(ValueError, match="answer_tag 'search' collides"):
        TaggedCallFormat(answer_tag="search")
    with pytest.raises(ValueError, match="result_tag 'tool_call' collides"):
        JSONCallFormat(result_tag="tool_call")
    fmt = JSONCallFormat(tools=["search", "code"])
    assert fmt.tools == ("search", "code")
    assert pickle.loads(pickle.dumps(fmt)) == fmt
    with pytest.raises(ValueError, match="wrong 'answer'"):
        ParsedTurn("call", call=ToolCall("search", "x"), answer="y")
    with pytest.raises(ValueError, match="kind must be one of"):
        ParsedTurn("done")

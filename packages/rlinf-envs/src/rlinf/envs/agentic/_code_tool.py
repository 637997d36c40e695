"""CodeTool: the ``code`` tool, which runs a Python snippet in the sandbox."""

from __future__ import annotations

import re
import time

from ._sandbox import SandboxConfig, run_python
from ._tools import ToolResult

__all__ = ["CodeTool", "strip_code_fence"]

_FENCE = re.compile(r"```[ \t]*(?:python|py)?[ \t]*\n(.*?)```", re.DOTALL | re.IGNORECASE)
_NOTES = {
    "timeout": "[the program ran out of time and was stopped]",
    "memory": "[the program ran out of memory]",
    "output_limit": "[too much output: the program was stopped]",
    "killed": "[the program was killed by a signal]",
}


def strip_code_fence(text: str) -> str:
    """The code inside the last markdown fence of ``text`` (```python ... ```), or
    ``text`` itself when it has no fence; surrounding blank lines removed."""
    blocks = _FENCE.findall(text)
    return (blocks[-1] if blocks else text).strip("\n")


class CodeTool:
    """Runs the call's argument as a Python program (see :func:`run_python`).

    The observation is the program's stdout (first ``max_chars`` characters) followed by
    the tail of its stderr (where a traceback ends), plus a note when the sandbox stopped
    it. The status mirrors the sandbox's (``ok``, ``error``, ``timeout``, ``memory``,
    ``output_limit``, ``killed``). Never raises; safe to call from several threads.

    Args:
        config: the sandbox limits of each run.
        max_chars: most characters of output shown to the model (>= 64); long outputs keep
            the start of stdout and the end of stderr.
    """

    name = "code"
    description = "Run a Python program and see its output (stdout, then errors)."

    def __init__(self, config: SandboxConfig | None = None, max_chars: int = 400) -> None:
        if max_chars < 64:
            raise ValueError(f"max_chars must be >= 64, got {max_chars}")
        self.config = config if config is not None else SandboxConfig()
        self.max_chars = max_chars

    def run(self, arguments: str) -> ToolResult:
        start = time.monotonic()
        code = strip_code_fence(arguments) if isinstance(arguments, str) else ""
        if not code.strip():
            return ToolResult("error: no code to run", "error", time.monotonic() - start)
        try:
            result = run_python(code, self.config)
        except Exception as exc:  # the tool contract: report, never raise
            text = f"error: the sandbox failed to start: {exc}"
            return ToolResult(text, "error", time.monotonic() - start)
        text = self._format(result.stdout, result.stderr, _NOTES.get(result.status))
        return ToolResult(text, result.status, time.monotonic() - start)

    def _format(self, stdout: str, stderr: str, note: str | None) -> str:
        budget = max(self.max_chars - (len(note) + 1 if note else 0), 0)
        out, err = stdout.rstrip("\n"), stderr.strip("\n")
        # stderr's tail (where the exception is named) gets at least half the budget
        err_keep = min(len(err), max(budget // 2, budget - len(out) - 1))
        err_part = err[len(err) - err_keep :]
        out_part = out[: max(budget - err_keep - (1 if err_part else 0), 0)]
        parts = [p for p in (out_part, err_part, note) if p]
        return "\n".join(parts) if parts else "(no output)"

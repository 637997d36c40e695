"""Scoring of the offline coding task: the reward is the response's code passing the unit tests.

:func:`extract_code` takes the final ``<answer>`` block of a response; :class:`CodingScorer`
runs it, then the task's ``assert`` tests, in the sandbox. The tasks themselves are made in
:mod:`._coding_tasks`.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from ._code_tool import strip_code_fence
from ._sandbox import SandboxConfig, run_python

__all__ = ["CodingResult", "CodingScorer", "extract_code"]

# Not _calls._strip_results: that one leaves a space in place of each block, which would
# change the code when a result block sits inside an answer; here blocks vanish outright.
_RESULT_BLOCK = re.compile(r"<result>.*?(?:</result>|\Z)", re.DOTALL)
_ANSWER_BLOCK = re.compile(r"<answer>(.*?)</answer>", re.DOTALL)


def extract_code(response: str) -> str | None:
    """The code of the last complete ``<answer>...</answer>`` block of ``response``, outside
    ``<result>`` observation blocks (a markdown fence inside it is removed); None if none."""
    blocks = _ANSWER_BLOCK.findall(_RESULT_BLOCK.sub("", response))
    if not blocks:
        return None
    code = strip_code_fence(blocks[-1])
    return code if code.strip() else None


@dataclass(frozen=True)
class CodingResult:
    """The verdict on one response.

    Attributes:
        score: 1.0 when every test passed, else 0.0.
        status: ``passed``; ``failed`` (an assertion failed); ``no_code`` (no answer
            block); ``error`` (the code or a test raised something else, or tried a
            forbidden operation); or the sandbox's ``timeout`` / ``memory`` /
            ``output_limit`` / ``killed``.
        detail: the end of stderr when it did not pass.
    """

    score: float
    status: str
    detail: str | None = None


_FAILED, _ERROR = 2, 3
# Runs the solution, then the tests, in one namespace. Exit codes tell the outcome; the
# solution cannot end the run early with success: SystemExit is caught and os._exit is
# replaced before it runs (the sandbox already forbids fork/exec/kill).
_HARNESS = """\
import os as _os, posix as _posix, sys as _sys, traceback as _tb


def _no_exit(*args, **kwargs):
    raise RuntimeError("exiting is not allowed while the tests run")


_os._exit = _posix._exit = _no_exit
_ns = {{"__name__": "__main__"}}
for _name, _source, _code in (("solution", {code!r}, {error}), ("tests", {tests!r}, {failed})):
    try:
        exec(compile(_source, _name + ".py", "exec"), _ns)
    except MemoryError:
        raise
    except BaseException as _exc:
        _tb.print_exception(_exc)
        _sys.stdout.flush()
        _sys.stderr.flush()
        raise SystemExit({failed} if isinstance(_exc, AssertionError) and _name == "tests"
                         else {error})
"""


@dataclass
class CodingScorer:
    """Scores responses by running their final code against the tests in the sandbox.

    Implements the RewardWorker ``Scorer`` protocol. Responses run in parallel on
    ``max_workers`` threads (each run is its own sandboxed process).

    Args:
        sandbox: limits of each test run.
        max_workers: concurrent runs (>= 1).
    """

    sandbox: SandboxConfig = field(
        default_factory=lambda: SandboxConfig(cpu_time_s=2, wall_time_s=5.0, memory_mb=256)
    )
    max_workers: int = 4

    def __post_init__(self) -> None:
        if self.max_workers < 1:
            raise ValueError(f"max_workers must be >= 1, got {self.max_workers}")

    def score_one(self, response: str, tests: str) -> CodingResult:
        """Score one response against the tests source ``tests``."""
        code = extract_code(response)
        if code is None:
            return CodingResult(0.0, "no_code")
        program = _HARNESS.format(code=code, tests=tests, failed=_FAILED, error=_ERROR)
        result = run_python(program, self.sandbox)
        if result.status == "ok":
            return CodingResult(1.0, "passed")
        detail = result.stderr[-500:] or None
        if result.status == "error":
            status = "failed" if result.exit_code == _FAILED else "error"
            return CodingResult(0.0, status, detail)
        return CodingResult(0.0, result.status, detail)

    def score(self, responses: Sequence[str], answers: Sequence[str]) -> list[CodingResult]:
        """One result per response; ``answers[i]`` is the tests source of response i."""
        if len(responses) != len(answers):
            raise ValueError(f"{len(responses)} responses but {len(answers)} answers")
        if not responses:
            return []
        workers = min(self.max_workers, len(responses))
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="coding-score") as pool:
            return list(pool.map(self.score_one, responses, answers))

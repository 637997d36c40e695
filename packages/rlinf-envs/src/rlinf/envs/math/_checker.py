"""Score model responses against ground-truth answers, safely and in batches."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from ._extract import extract_answer
from ._pool import TimeoutPool
from ._verify import MathVerifyCheck

__all__ = ["STATUSES", "CheckResult", "CheckStatus", "MathChecker", "MathCheckerConfig"]

CheckStatus = Literal["correct", "wrong", "no_answer", "timeout", "error"]
STATUSES: tuple[CheckStatus, ...] = ("correct", "wrong", "no_answer", "timeout", "error")


@dataclass(frozen=True)
class MathCheckerConfig:
    """How answers are extracted and checked.

    Attributes:
        num_workers: checker processes; each holds its own sympy, ~150 MB of memory.
        timeout_s: hard wall-clock limit of one check; past it the worker is killed and
            replaced, and the item scores 0 with status ``"timeout"``.
        inner_timeout_s: math-verify's own alarm per parse/compare, whole seconds; it ends
            interruptible slow work cheaply (no worker restart). Must be below ``timeout_s``.
        start_method: ``"forkserver"`` or ``"spawn"`` (never ``"fork"``: the driver may run
            threads that a forked child would inherit mid-lock).
        startup_timeout_s: how long a worker may take to start and import math-verify.
        fallback_to_number: when a response has no box command at all, check its last
            number instead of reporting ``"no_answer"``; a response with a malformed box
            (unclosed, empty) is ``"no_answer"`` either way (rules: :mod:`._extract`).
        float_rounding: decimal places floats are rounded to before comparing.
        numeric_precision: significant digits of numeric comparisons.
        strict: math-verify strict mode (variables must match, sets differ from tuples).
    """

    num_workers: int = 2
    timeout_s: float = 10.0
    inner_timeout_s: int = 3
    start_method: str = "forkserver"
    startup_timeout_s: float = 120.0
    fallback_to_number: bool = True
    float_rounding: int = 6
    numeric_precision: int = 15
    strict: bool = True

    def __post_init__(self) -> None:
        if self.num_workers < 1:
            raise ValueError(f"num_workers must be >= 1, got {self.num_workers}")
        if not self.timeout_s > 0:
            raise ValueError(f"timeout_s must be > 0, got {self.timeout_s}")
        if not 1 <= self.inner_timeout_s < self.timeout_s:
            raise ValueError(
                f"inner_timeout_s must be an integer in [1, timeout_s), got "
                f"{self.inner_timeout_s} with timeout_s={self.timeout_s}"
            )
        if self.start_method not in ("forkserver", "spawn"):
            raise ValueError(
                f"start_method must be 'forkserver' or 'spawn', got {self.start_method!r}"
            )
        if not self.startup_timeout_s > 0:
            raise ValueError(f"startup_timeout_s must be > 0, got {self.startup_timeout_s}")


@dataclass(frozen=True)
class CheckResult:
    """The verdict on one response.

    Attributes:
        status: ``"correct"``, ``"wrong"``, ``"no_answer"`` (nothing extracted),
            ``"timeout"`` (the check ran out of time) or ``"error"`` (the check crashed, or
            the ground truth cannot be parsed).
        extracted: the answer found in the response, ``None`` if none.
        method: how it was found: ``"boxed"``, ``"number"`` or ``"none"``.
        detail: why a check timed out or failed; ``None`` otherwise.
    """

    status: CheckStatus
    extracted: str | None
    method: Literal["boxed", "number", "none"]
    detail: str | None = None

    @property
    def correct(self) -> bool:
        """Whether the response's answer matches the ground truth."""
        return self.status == "correct"

    @property
    def score(self) -> float:
        """1.0 if correct else 0.0 (timeouts and errors score 0 too)."""
        return 1.0 if self.status == "correct" else 0.0


class MathChecker:
    """Extract answers from responses and check them in a pool of worker processes.

    Workers start on the first :meth:`score`, not at construction. Use as a context manager
    or call :meth:`close`; a checker that is garbage-collected also stops its workers.
    Concurrent :meth:`score` calls from several threads are safe but take turns.

    Args:
        config: the checker settings.
        check_fn: picklable ``(prediction, gold) -> "correct" | "wrong" | "timeout"``
            (optionally with a ``warmup()`` method); defaults to :class:`MathVerifyCheck`
            built from ``config``. Tests inject slow or crashing checks here.
    """

    def __init__(
        self,
        config: MathCheckerConfig | None = None,
        *,
        check_fn: Callable[[str, str], Any] | None = None,
    ) -> None:
        self.config = config or MathCheckerConfig()
        if check_fn is None:
            check_fn = MathVerifyCheck(
                float_rounding=self.config.float_rounding,
                numeric_precision=self.config.numeric_precision,
                strict=self.config.strict,
                inner_timeout_s=self.config.inner_timeout_s,
            )
        self._pool = TimeoutPool(
            check_fn,
            num_workers=self.config.num_workers,
            timeout_s=self.config.timeout_s,
            start_method=self.config.start_method,
            startup_timeout_s=self.config.startup_timeout_s,
        )
        self._counts: Counter[str] = Counter()
        # The pool hands tasks to specific workers and reads their pipes; two threads
        # scoring at once would read each other's replies, so calls take turns.
        self._lock = threading.Lock()

    @property
    def counts(self) -> dict[str, int]:
        """Cumulative number of results per status since creation, plus ``"total"``."""
        out = {status: self._counts[status] for status in STATUSES}
        out["total"] = sum(out.values())
        return out

    @property
    def worker_restarts(self) -> int:
        """How many workers were replaced after a timeout or crash."""
        return self._pool.restarts

    def score(self, responses: Sequence[str], answers: Sequence[str]) -> list[CheckResult]:
        """Check each ``responses[i]`` against ``answers[i]``; results in the same order.

        Raises:
            ValueError: if the two sequences differ in length.
        """
        if len(responses) != len(answers):
            raise ValueError(
                f"got {len(responses)} responses but {len(answers)} answers; they must pair up"
            )
        extractions = [
            extract_answer(text, fallback_to_number=self.config.fallback_to_number)
            for text in responses
        ]
        to_check = [i for i, ex in enumerate(extractions) if ex.text is not None]
        # str(): ground truths often arrive as numbers (e.g. 42 from a JSON column).
        tasks = [(extractions[i].text, str(answers[i])) for i in to_check]
        with self._lock:
            outcomes = self._pool.run(tasks)
        results = [CheckResult("no_answer", None, "none") for _ in responses]
        for i, outcome in zip(to_check, outcomes, strict=True):
            ex = extractions[i]
            if outcome.status == "ok" and outcome.value in ("correct", "wrong"):
                results[i] = CheckResult(outcome.value, ex.text, ex.method)
            elif outcome.status == "ok" and outcome.value == "timeout":
                detail = "math-verify timed out"
                results[i] = CheckResult("timeout", ex.text, ex.method, detail)
            elif outcome.status == "ok":
                detail = f"check returned {outcome.value!r}, not 'correct'/'wrong'/'timeout'"
                results[i] = CheckResult("error", ex.text, ex.method, detail)
            else:
                results[i] = CheckResult(outcome.status, ex.text, ex.method, outcome.error)
        with self._lock:
            self._counts.update(result.status for result in results)
        return results

    def close(self) -> None:
        """Stop the worker processes (idempotent)."""
        self._pool.close()

    def __enter__(self) -> MathChecker:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

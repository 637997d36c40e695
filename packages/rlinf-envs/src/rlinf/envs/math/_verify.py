"""The equivalence check itself: math-verify's ``parse`` + ``verify``, run inside a worker."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

__all__ = ["MathVerifyCheck"]


def _boxed(text: str) -> str:
    # Wrapping in \boxed{} makes math-verify read both LaTeX ("\frac{1}{2}") and plain
    # expressions ("1/2", "0.5") from the same string, and nothing else in it.
    return "\\boxed{" + text + "}"


@dataclass(frozen=True)
class MathVerifyCheck:
    """Picklable check ``(prediction, gold) -> "correct" | "wrong" | "timeout"``.

    ``prediction`` is an already extracted answer (the box content), ``gold`` the ground
    truth. math-verify's own alarm-based timeouts stay on as a cheap first line: they stop
    slow-but-interruptible sympy work and report ``"timeout"`` without losing the worker;
    the pool's hard timeout handles work that never checks for signals.

    Attributes:
        float_rounding: decimal places floats are rounded to before comparing.
        numeric_precision: significant digits of numeric (evalf) comparisons.
        strict: math-verify strict mode (variables must match, sets differ from tuples).
        inner_timeout_s: math-verify's per-operation alarm, whole seconds (>= 1).
    """

    float_rounding: int = 6
    numeric_precision: int = 15
    strict: bool = True
    inner_timeout_s: int = 3

    def warmup(self) -> None:
        """Import math-verify and run one check, so the first real check is not slow."""
        self("1", "1")

    def __call__(self, prediction: str, gold: str) -> Literal["correct", "wrong", "timeout"]:
        from math_verify import parse, verify  # heavy (sympy): imported in workers only
        from math_verify.errors import TimeoutException

        try:
            gold_parsed = parse(
                _boxed(gold), parsing_timeout=self.inner_timeout_s, raise_on_error=True
            )
            if not gold_parsed:
                raise ValueError(f"math-verify cannot parse the ground truth {gold!r}")
            pred_parsed = parse(
                _boxed(prediction), parsing_timeout=self.inner_timeout_s, raise_on_error=True
            )
            if not pred_parsed:
                return "wrong"
            ok = verify(
                gold_parsed,
                pred_parsed,
                float_rounding=self.float_rounding,
                numeric_precision=self.numeric_precision,
                strict=self.strict,
                timeout_seconds=self.inner_timeout_s,
                raise_on_error=True,
            )
        except TimeoutException:  # a BaseException in math-verify, hence caught by name
            return "timeout"
        return "correct" if ok else "wrong"

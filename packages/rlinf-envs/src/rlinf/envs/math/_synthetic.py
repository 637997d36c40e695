"""Synthetic integer arithmetic problems, so the default math job needs no download.

Train and held-out splits are disjoint by construction: an expression belongs to a split by
a hash of its text, so no generator seed or size can put one prompt in both.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Literal

from ._rows import MathRow

__all__ = ["ARITHMETIC_PRESETS", "ArithmeticConfig", "generate_arithmetic", "split_of"]

_PRECEDENCE = {"+": 1, "-": 1, "*": 2}
Split = Literal["train", "test"]


@dataclass(frozen=True)
class ArithmeticConfig:
    """Difficulty and phrasing of the arithmetic problems.

    Attributes:
        min_operands: fewest numbers in an expression (>= 2).
        max_operands: most numbers in an expression (>= ``min_operands``).
        min_digits: fewest digits of an operand (>= 1; one-digit operands include 0).
        max_digits: most digits of an operand; each operand draws its digit count
            uniformly from ``[min_digits, max_digits]``, then a value of that length.
        operators: operators to draw from, a non-empty subset of ``"+"``, ``"-"``, ``"*"``.
        parentheses: when True an expression is a random binary tree, printed with the
            parentheses its structure needs (``7 - (2 + 3)``); when False it is a flat chain
            evaluated with the usual precedence (``7 - 2 * 3``).
        heldout_fraction: share of all possible expressions that belong to the held-out
            ``"test"`` split (chosen by hash, so splits never overlap); in ``(0, 1)``.
        template: prompt text; ``{expression}`` is replaced by the expression (``str.format``
            syntax, so literal braces are doubled: ``\\boxed{{}}``).
    """

    min_operands: int = 2
    max_operands: int = 3
    min_digits: int = 1
    max_digits: int = 2
    operators: tuple[str, ...] = ("+", "-", "*")
    parentheses: bool = False
    heldout_fraction: float = 0.1
    template: str = "What is {expression}? Put your final answer within \\boxed{{}}."

    def __post_init__(self) -> None:
        object.__setattr__(self, "operators", tuple(self.operators))
        if not 2 <= self.min_operands <= self.max_operands:
            raise ValueError(
                f"need 2 <= min_operands <= max_operands, got {self.min_operands}, "
                f"{self.max_operands}"
            )
        if not 1 <= self.min_digits <= self.max_digits:
            raise ValueError(
                f"need 1 <= min_digits <= max_digits, got {self.min_digits}, {self.max_digits}"
            )
        if not self.operators or not set(self.operators) <= set(_PRECEDENCE):
            raise ValueError(f"operators must be a non-empty subset of +, -, *: {self.operators}")
        if not 0.0 < self.heldout_fraction < 1.0:
            raise ValueError(f"heldout_fraction must be in (0, 1), got {self.heldout_fraction}")
        try:
            self.template.format(expression="1")
        except (KeyError, IndexError, ValueError) as exc:
            raise ValueError(
                f"template must use only {{expression}} (double other braces): {exc!r}"
            ) from None
        if "{expression}" not in self.template:
            raise ValueError("template must contain {expression}")


ARITHMETIC_PRESETS: Mapping[str, ArithmeticConfig] = MappingProxyType(
    {
        "easy": ArithmeticConfig(max_operands=2, operators=("+", "-")),
        "medium": ArithmeticConfig(),
        "hard": ArithmeticConfig(min_operands=3, max_operands=5, max_digits=3, parentheses=True),
    }
)
"""Named difficulty levels: ``"easy"`` (a + b or a - b, up to two digits; ~20k expressions),
``"medium"`` (the defaults: 2-3 operands, + - *), ``"hard"`` (3-5 operands up to three
digits, bracketed trees)."""


def _operand(rng: random.Random, config: ArithmeticConfig) -> int:
    digits = rng.randint(config.min_digits, config.max_digits)
    low = 0 if digits == 1 else 10 ** (digits - 1)
    return rng.randint(low, 10**digits - 1)


def _apply(op: str, a: int, b: int) -> int:
    return a + b if op == "+" else a - b if op == "-" else a * b


def _tree(rng: random.Random, config: ArithmeticConfig, n: int) -> tuple[str, int, int]:
    """A random expression tree over ``n`` operands as (text, value, precedence)."""
    if n == 1:
        value = _operand(rng, config)
        return str(value), value, 3
    k = rng.randint(1, n - 1)
    op = rng.choice(config.operators)
    left, lval, lprec = _tree(rng, config, k)
    right, rval, rprec = _tree(rng, config, n - k)
    prec = _PRECEDENCE[op]
    # Left-associative operators: a left child needs brackets only if it binds more loosely;
    # a right child also when it binds equally under "-" (a - (b + c) != a - b + c).
    if lprec < prec:
        left = f"({left})"
    if rprec < prec or (rprec == prec and op == "-"):
        right = f"({right})"
    return f"{left} {op} {right}", _apply(op, lval, rval), prec


def _chain(rng: random.Random, config: ArithmeticConfig, n: int) -> tuple[str, int]:
    """A flat chain ``a op b op c ...`` and its value under the usual precedence."""
    values = [_operand(rng, config) for _ in range(n)]
    ops = [rng.choice(config.operators) for _ in range(n - 1)]
    text = str(values[0]) + "".join(f" {op} {v}" for op, v in zip(ops, values[1:], strict=True))
    # Fold products first, then add/subtract the terms left to right.
    terms, signs = [values[0]], ["+"]
    for op, value in zip(ops, values[1:], strict=True):
        if op == "*":
            terms[-1] *= value
        else:
            terms.append(value)
            signs.append(op)
    total = sum(t if s == "+" else -t for s, t in zip(signs, terms, strict=True))
    return text, total


def split_of(expression: str, heldout_fraction: float) -> Split:
    """The split an expression belongs to, by a stable hash of its text."""
    digest = hashlib.blake2b(expression.encode(), digest_size=8).digest()
    return "test" if int.from_bytes(digest, "big") < heldout_fraction * 2**64 else "train"


def generate_arithmetic(
    config: ArithmeticConfig, *, split: Split, num_rows: int, seed: int = 0
) -> list[MathRow]:
    """``num_rows`` distinct problems of one split, the same for the same arguments.

    Row ids are ``"arith-<split>-<seed>-<i>"``; metadata holds ``expression``, ``split`` and
    ``num_operands``.

    Raises:
        ValueError: the difficulty settings allow too few distinct expressions in this split
            for ``num_rows`` (e.g. asking 1000 one-digit sums).
    """
    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    if num_rows < 0:
        raise ValueError(f"num_rows must be >= 0, got {num_rows}")
    rng = random.Random(f"rlinf.envs.math.arithmetic:{seed}:{split}")
    rows: list[MathRow] = []
    seen: set[str] = set()
    attempts, max_attempts = 0, 1000 + 200 * num_rows
    while len(rows) < num_rows:
        attempts += 1
        if attempts > max_attempts:
            raise ValueError(
                f"found only {len(rows)} distinct {split!r} expressions in {max_attempts} draws; "
                f"widen the difficulty settings or ask for fewer than {num_rows} rows"
            )
        n = rng.randint(config.min_operands, config.max_operands)
        if config.parentheses:
            expression, value, _ = _tree(rng, config, n)
        else:
            expression, value = _chain(rng, config, n)
        if expression in seen or split_of(expression, config.heldout_fraction) != split:
            continue
        seen.add(expression)
        rows.append(
            MathRow(
                id=f"arith-{split}-{seed}-{len(rows)}",
                prompt=config.template.format(expression=expression),
                answer=str(value),
                metadata={"expression": expression, "split": split, "num_operands": n},
            )
        )
    return rows

"""Offline coding tasks: write a small function ``f``; the tests are generated ``assert`` lines.

Problems come from templated families (integer arithmetic, strings, lists), each with
generated ``assert`` tests. Train and test are disjoint by construction: a problem (family
and parameters) belongs to a split by a hash of its key, whatever the seed or sizes. The
scorer that runs a response against the tests lives in :mod:`._coding`.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["CodingConfig", "CodingTask", "generate_coding_tasks", "reference_solution"]

_Family = Callable[[random.Random], tuple[str, str, str, Callable, Callable]]


def _signed(b: int) -> str:
    return f"plus {b}" if b >= 0 else f"minus {-b}"


def _int_families() -> list[_Family]:
    def ints(r: random.Random) -> int:
        return r.randint(-50, 50)

    def naturals(r: random.Random) -> int:
        return r.randint(0, 999)

    def affine(r):
        a, b = r.randint(2, 9), r.randint(-9, 9)
        desc = f"{a} times x {_signed(b)}"
        return f"affine:{a}:{b}", desc, f"x * {a} + {b}", lambda x: x * a + b, ints

    def square(r):
        a = r.randint(-9, 9)
        desc = f"the square of x {_signed(a)}"
        return f"square:{a}", desc, f"x * x + {a}", lambda x: x * x + a, ints

    def modulo(r):
        m = r.randint(2, 13)
        desc = f"the remainder of x divided by {m}"
        return f"mod:{m}", desc, f"x % {m}", lambda x: x % m, naturals

    def clamp(r):
        lo, hi = r.randint(-10, 0), r.randint(1, 10)
        desc = f"x limited to the range from {lo} to {hi} (inclusive)"
        src = f"min(max(x, {lo}), {hi})"
        return f"clamp:{lo}:{hi}", desc, src, lambda x: min(max(x, lo), hi), ints

    def digits(r):
        k = r.randint(1, 5)
        desc = f"{k} times the sum of the decimal digits of x (x is never negative)"
        src = f"{k} * sum(int(d) for d in str(x))"
        return f"digits:{k}", desc, src, lambda x: k * sum(int(d) for d in str(x)), naturals

    return [affine, square, modulo, clamp, digits]


def _str_families() -> list[_Family]:
    letters = "abcdefghijklmnopqrstuvwxyz"

    def words(r: random.Random) -> str:
        return "".join(r.choice(letters[:8]) for _ in range(r.randint(0, 8)))

    def simple(r):
        key, desc, src, fn = r.choice(
            [
                ("reverse", "s reversed", "s[::-1]", lambda s: s[::-1]),
                ("upper", "s in upper case", "s.upper()", str.upper),
                ("revupper", "s reversed and in upper case", "s[::-1].upper()",
                 lambda s: s[::-1].upper()),
                ("length2", "twice the length of s", "2 * len(s)", lambda s: 2 * len(s)),
            ]
        )  # fmt: skip
        return key, desc, src, fn, words

    def repeat(r):
        k = r.randint(2, 5)
        return f"repeat:{k}", f"s repeated {k} times", f"s * {k}", lambda s: s * k, words

    def remove(r):
        c = r.choice(letters[:8])
        desc = f"s with every {c!r} removed"
        return f"remove:{c}", desc, f"s.replace({c!r}, '')", lambda s: s.replace(c, ""), words

    def count(r):
        c = r.choice(letters[:8])
        desc = f"the number of times {c!r} occurs in s"
        return f"count:{c}", desc, f"s.count({c!r})", lambda s: s.count(c), words

    def prefix(r):
        k = r.randint(1, 5)
        return f"prefix:{k}", f"the first {k} characters of s", f"s[:{k}]", lambda s: s[:k], words

    return [simple, repeat, remove, count, prefix]


def _list_families() -> list[_Family]:
    def lists(r: random.Random, low: int = 0) -> list[int]:
        return [r.randint(-20, 20) for _ in range(r.randint(low, 6))]

    def nonempty(r: random.Random) -> list[int]:
        return lists(r, 1)

    def simple(r):
        key, desc, src, fn, gen = r.choice(
            [
                ("sum", "the sum of xs", "sum(xs)", sum, lists),
                ("max", "the largest element of xs (never empty)", "max(xs)", max, nonempty),
                ("min", "the smallest element of xs (never empty)", "min(xs)", min, nonempty),
                ("desc", "xs sorted from largest to smallest", "sorted(xs, reverse=True)",
                 lambda xs: sorted(xs, reverse=True), lists),
                ("evens", "the even elements of xs, in order", "[v for v in xs if v % 2 == 0]",
                 lambda xs: [v for v in xs if v % 2 == 0], lists),
                ("squares", "the sum of the squares of xs", "sum(v * v for v in xs)",
                 lambda xs: sum(v * v for v in xs), lists),
            ]
        )  # fmt: skip
        return key, desc, src, fn, gen

    def above(r):
        t = r.randint(-5, 10)
        desc = f"the sum of the elements of xs greater than {t}"
        src = f"sum(v for v in xs if v > {t})"
        return f"above:{t}", desc, src, lambda xs: sum(v for v in xs if v > t), lists

    def divisible(r):
        k = r.randint(2, 9)
        desc = f"how many elements of xs are divisible by {k}"
        src = f"sum(1 for v in xs if v % {k} == 0)"
        return f"div:{k}", desc, src, lambda xs: sum(1 for v in xs if v % k == 0), lists

    def scale(r):
        k = r.randint(2, 9)
        desc = f"a list of each element of xs multiplied by {k}"
        src = f"[v * {k} for v in xs]"
        return f"scale:{k}", desc, src, lambda xs: [v * k for v in xs], lists

    return [simple, above, divisible, scale]


#: family group -> (argument name, argument description, families)
_GROUPS = {
    "int": ("x", "an integer x", _int_families()),
    "str": ("s", "a string s", _str_families()),
    "list": ("xs", "a list of integers xs", _list_families()),
}


@dataclass(frozen=True)
class CodingConfig:
    """What :func:`generate_coding_tasks` makes.

    Attributes:
        seed: generator seed (the same config always gives the same tasks).
        num_train: training tasks (>= 0).
        num_test: held-out tasks (>= 0).
        groups: problem groups to draw from, a non-empty subset of ``"int"``, ``"str"``,
            ``"list"``.
        num_tests: ``assert`` lines per task (>= 1).
        num_examples: example calls shown in the prompt (>= 0).
        heldout_fraction: share of all problems that belong to the test split (by hash);
            in ``(0, 1)``.
        template: prompt text; ``{problem}`` is replaced by the problem statement.
    """

    seed: int = 0
    num_train: int = 200
    num_test: int = 50
    groups: tuple[str, ...] = ("int", "str", "list")
    num_tests: int = 5
    num_examples: int = 2
    heldout_fraction: float = 0.2
    template: str = "{problem}\nPut the complete function inside <answer></answer>."

    def __post_init__(self) -> None:
        object.__setattr__(self, "groups", tuple(self.groups))
        for name in ("num_train", "num_test", "num_examples"):
            if getattr(self, name) < 0:
                raise ValueError(f"CodingConfig.{name} must be >= 0, got {getattr(self, name)}")
        if self.num_tests < 1:
            raise ValueError(f"CodingConfig.num_tests must be >= 1, got {self.num_tests}")
        if not self.groups or not set(self.groups) <= set(_GROUPS):
            raise ValueError(f"CodingConfig.groups must be a non-empty subset of {tuple(_GROUPS)}")
        if not 0.0 < self.heldout_fraction < 1.0:
            raise ValueError(f"heldout_fraction must be in (0, 1), got {self.heldout_fraction}")
        if "{problem}" not in self.template:
            raise ValueError("CodingConfig.template must contain {problem}")


@dataclass(frozen=True)
class CodingTask:
    """One problem.

    Attributes:
        prompt: the text shown to the model.
        answer: what the scorer needs: the tests source (same text as ``tests``).
        tests: ``assert`` lines calling ``f``.
        solution: a reference implementation (for SFT traces and checks).
        key: the problem's identity (family and parameters); decides its split.
    """

    prompt: str
    answer: str
    tests: str
    solution: str = ""
    key: str = ""


def _split_of(key: str, heldout_fraction: float) -> str:
    digest = int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "big")
    return "test" if digest / 2.0**64 < heldout_fraction else "train"


def _make_task(rng: random.Random, config: CodingConfig) -> CodingTask:
    group = rng.choice(config.groups)
    arg, arg_desc, families = _GROUPS[group]
    key, desc, expr, fn, gen = rng.choice(families)(rng)
    calls = [gen(rng) for _ in range(config.num_examples + config.num_tests)]
    examples, tested = calls[: config.num_examples], calls[config.num_examples :]
    problem = f"Write a Python function f({arg}) that takes {arg_desc} and returns {desc}."
    if examples:
        shown = " and ".join(f"f({v!r}) == {fn(v)!r}" for v in examples)
        problem += f" For example, {shown}."
    # repr(), not ==: an object whose __eq__ always says True must not pass
    tests = "".join(f"assert repr(f({v!r})) == {repr(fn(v))!r}\n" for v in tested)
    solution = f"def f({arg}):\n    return {expr}\n"
    prompt = config.template.format(problem=problem)
    return CodingTask(prompt, tests, tests, solution, f"{group}:{key}")


def generate_coding_tasks(config: CodingConfig) -> tuple[list[CodingTask], list[CodingTask]]:
    """``(train, test)`` tasks with distinct problems; no problem is in both splits.

    Raises:
        ValueError: the families cannot supply that many distinct problems for a split.
    """
    rng = random.Random(config.seed)
    splits: dict[str, list[CodingTask]] = {"train": [], "test": []}
    wanted = {"train": config.num_train, "test": config.num_test}
    seen: set[str] = set()
    stale = 0  # draws in a row that gave nothing new: the families are exhausted
    while any(len(splits[s]) < wanted[s] for s in splits) and stale < 3000:
        stale += 1
        task = _make_task(rng, config)
        split = _split_of(task.key, config.heldout_fraction)
        if task.key in seen or len(splits[split]) >= wanted[split]:
            continue
        seen.add(task.key)
        splits[split].append(task)
        stale = 0
    for s in splits:
        if len(splits[s]) < wanted[s]:
            raise ValueError(
                f"only {len(splits[s])} distinct {s} problems could be generated for groups "
                f"{config.groups}; ask for fewer (num_{s}={wanted[s]})"
            )
    return splits["train"], splits["test"]


def reference_solution(task: CodingTask) -> str:
    """Source of a correct ``f`` for ``task`` (e.g. the final answer of an SFT trace)."""
    if not task.solution:
        raise ValueError("this CodingTask carries no reference solution")
    return task.solution

"""The synthetic arithmetic task: determinism, disjoint splits, exact answers."""

from __future__ import annotations

import ast
import operator
from pathlib import Path

import pytest

from rlinf.envs.math import (
    ARITHMETIC_PRESETS,
    ArithmeticConfig,
    MathDataConfig,
    extract_boxed,
    generate_arithmetic,
    load_math_rows,
    split_of,
    write_math_jsonl,
)

_OPS = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul}


def _reference_value(expression: str) -> int:
    """Evaluate with Python's own parser, accepting only integers and + - * (and brackets)."""

    def ev(node: ast.AST) -> int:
        if isinstance(node, ast.BinOp) and type(node.op) in _OPS:
            return _OPS[type(node.op)](ev(node.left), ev(node.right))
        if isinstance(node, ast.Constant) and type(node.value) is int:
            return node.value
        raise AssertionError(f"unexpected syntax {ast.dump(node)} in {expression!r}")

    return ev(ast.parse(expression, mode="eval").body)


@pytest.mark.parametrize("preset", sorted(ARITHMETIC_PRESETS))
def test_answers_are_exact_and_prompts_well_formed(preset: str) -> None:
    config = ARITHMETIC_PRESETS[preset]
    rows = generate_arithmetic(config, split="train", num_rows=150, seed=1)
    assert len({r.prompt for r in rows}) == 150
    for row in rows:
        expression = row.metadata["expression"]
        assert row.answer == str(_reference_value(expression))
        assert expression in row.prompt and "\\boxed{}" in row.prompt
        n = row.metadata["num_operands"]
        assert config.min_operands <= n <= config.max_operands
        operands = [
            int(t) for t in expression.replace("(", " ").replace(")", " ").split() if t.isdigit()
        ]
        assert len(operands) == n
        assert all(len(str(v)) <= config.max_digits for v in operands)


def test_parentheses_setting() -> None:
    flat = generate_arithmetic(ArithmeticConfig(max_operands=5), split="train", num_rows=300)
    assert not any("(" in r.prompt for r in flat)
    tree = generate_arithmetic(
        ArithmeticConfig(min_operands=3, max_operands=5, parentheses=True),
        split="train",
        num_rows=300,
    )
    assert any("(" in r.metadata["expression"] for r in tree)


def test_same_seed_same_rows_other_seed_other_rows() -> None:
    config = ARITHMETIC_PRESETS["medium"]
    a = generate_arithmetic(config, split="train", num_rows=100, seed=7)
    b = generate_arithmetic(config, split="train", num_rows=100, seed=7)
    c = generate_arithmetic(config, split="train", num_rows=100, seed=8)
    assert a == b and [r.metadata for r in a] == [r.metadata for r in b]
    assert [r.prompt for r in a] != [r.prompt for r in c]


@pytest.mark.parametrize("preset", sorted(ARITHMETIC_PRESETS))
def test_train_and_heldout_never_share_a_prompt(preset: str) -> None:
    config = ARITHMETIC_PRESETS[preset]
    train = {
        r.prompt
        for seed in (0, 1)
        for r in generate_arithmetic(config, split="train", num_rows=150, seed=seed)
    }
    test_rows = generate_arithmetic(config, split="test", num_rows=200, seed=0)
    assert not train & {r.prompt for r in test_rows}
    assert all(
        split_of(r.metadata["expression"], config.heldout_fraction) == "test" for r in test_rows
    )


def test_too_small_space_is_an_error() -> None:
    tiny = ArithmeticConfig(max_operands=2, max_digits=1, operators=("+",))
    with pytest.raises(ValueError, match="distinct 'train' expressions"):
        generate_arithmetic(tiny, split="train", num_rows=500)


def test_jsonl_round_trip_through_the_loader(tmp_path: Path) -> None:
    rows = generate_arithmetic(ARITHMETIC_PRESETS["medium"], split="test", num_rows=20, seed=2)
    path = write_math_jsonl(rows, tmp_path / "sub" / "arith_test.jsonl")
    loaded = load_math_rows(MathDataConfig(paths=(str(path),)))
    assert loaded == rows
    assert [r.metadata for r in loaded] == [r.metadata for r in rows]
    # The model is asked for \boxed{}; a response in that form extracts to the answer.
    assert extract_boxed(f"so \\boxed{{{rows[0].answer}}}") == rows[0].answer


def test_config_validation() -> None:
    with pytest.raises(ValueError, match="min_operands"):
        ArithmeticConfig(min_operands=1)
    with pytest.raises(ValueError, match="min_digits"):
        ArithmeticConfig(min_digits=3, max_digits=2)
    with pytest.raises(ValueError, match="operators"):
        ArithmeticConfig(operators=("/",))
    with pytest.raises(ValueError, match="heldout_fraction"):
        ArithmeticConfig(heldout_fraction=0.0)
    with pytest.raises(ValueError, match="template"):
        ArithmeticConfig(template="no placeholder")
    with pytest.raises(ValueError, match="template"):
        ArithmeticConfig(template="{expression} in \\boxed{}")
    with pytest.raises(ValueError, match="split"):
        generate_arithmetic(ArithmeticConfig(), split="valid", num_rows=1)  # type: ignore[arg-type]

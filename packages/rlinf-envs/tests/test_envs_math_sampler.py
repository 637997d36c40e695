"""Seeded, resumable iteration order over math rows."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rlinf.envs.math import MathDataConfig, MathRow, PromptIterator, write_math_jsonl

ROWS = [MathRow(id=str(i), prompt=f"p{i}", answer=str(i)) for i in range(7)]


def _ids(rows: list[MathRow]) -> list[str]:
    return [r.id for r in rows]


def test_each_epoch_is_a_permutation_and_seeded() -> None:
    it = PromptIterator(ROWS, seed=3)
    first, second = _ids(it.next_batch(7)), _ids(it.next_batch(7))
    assert sorted(first) == sorted(second) == sorted(r.id for r in ROWS)
    assert first != second  # reshuffled every epoch
    assert it.epoch == 2 and it.position == 0
    again = PromptIterator(ROWS, seed=3)
    assert _ids(again.next_batch(14)) == first + second
    assert _ids(PromptIterator(ROWS, seed=4).next_batch(14)) != first + second


def test_unshuffled_is_file_order() -> None:
    it = PromptIterator(ROWS, shuffle=False)
    assert _ids(it.next_batch(9)) == [*_ids(ROWS), "0", "1"]


@pytest.mark.parametrize("split_at", [0, 3, 7, 10, 20])
def test_resume_reproduces_the_uninterrupted_order(split_at: int) -> None:
    reference = _ids(PromptIterator(ROWS, seed=11).next_batch(30))
    it = PromptIterator(ROWS, seed=11)
    head = _ids(it.next_batch(split_at)) if split_at else []
    state = json.loads(json.dumps(it.state_dict()))  # as a checkpoint would store it
    resumed = PromptIterator(ROWS, seed=11)
    resumed.load_state_dict(state)
    assert head + _ids(resumed.next_batch(30 - split_at)) == reference


def test_state_for_another_order_is_rejected() -> None:
    state = PromptIterator(ROWS, seed=1).state_dict()
    with pytest.raises(ValueError, match="seed, shuffle, num_rows"):
        PromptIterator(ROWS, seed=2).load_state_dict(state)
    with pytest.raises(ValueError, match="seed, shuffle, num_rows"):
        PromptIterator(ROWS[:5], seed=1).load_state_dict(state)
    with pytest.raises(ValueError, match="seed, shuffle, num_rows"):
        PromptIterator(ROWS, seed=1, shuffle=False).load_state_dict(state)
    with pytest.raises(ValueError, match="lacks"):
        PromptIterator(ROWS, seed=1).load_state_dict({"epoch": 0})
    with pytest.raises(ValueError, match="out of range"):
        PromptIterator(ROWS, seed=1).load_state_dict({**state, "position": 7})


def test_from_config_and_errors(tmp_path: Path) -> None:
    path = write_math_jsonl(ROWS, tmp_path / "rows.jsonl")
    it = PromptIterator.from_config(MathDataConfig(paths=(str(path),), seed=5))
    assert _ids(it.next_batch(7)) == _ids(PromptIterator(ROWS, seed=5).next_batch(7))
    with pytest.raises(ValueError, match="at least one row"):
        PromptIterator([])
    with pytest.raises(ValueError, match="batch size"):
        it.next_batch(0)

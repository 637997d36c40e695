"""Train and held-out rows of a run, from the synthetic generator or from files."""

from __future__ import annotations

import dataclasses

from rlinf.envs.math import (
    MathDataConfig,
    MathDataError,
    MathRow,
    PromptIterator,
    generate_arithmetic,
    load_math_rows,
)

from ._config import DataSection

__all__ = ["load_splits", "prompt_iterator"]


def load_splits(data: DataSection) -> tuple[list[MathRow], list[MathRow]]:
    """``(train rows, held-out rows)`` of ``data``.

    Raises:
        MathDataError: a data file is missing, unreadable, holds a malformed row (named by
            file and line) or no row at all (named by file and config key).
    """
    if data.source == "synthetic":
        train = generate_arithmetic(
            data.arithmetic, split="train", num_rows=data.train_rows, seed=data.seed
        )
        test = generate_arithmetic(
            data.arithmetic, split="test", num_rows=data.test_rows, seed=data.seed
        )
        return train, test
    assert data.train_files is not None and data.test_files is not None
    test_cfg = dataclasses.replace(data.test_files, shuffle=False)
    return _read("data.train_files", data.train_files), _read("data.test_files", test_cfg)


def _read(key: str, files: MathDataConfig) -> list[MathRow]:
    # One path at a time, so that an empty one is named (concatenated, it would vanish).
    rows: list[MathRow] = []
    for path in files.paths:
        try:
            part = load_math_rows(dataclasses.replace(files, paths=(path,)))
        except OSError as e:  # e.g. no permission: a user's mistake, named like the others
            raise MathDataError(path, None, f"cannot read: {e.strerror or e}") from None
        if not part:
            raise MathDataError(path, None, f"no rows (every path of {key} needs at least one)")
        rows += part
    return rows


def prompt_iterator(data: DataSection, train: list[MathRow], seed: int) -> PromptIterator:
    """The seeded, resumable order of train prompts (``runner.seed`` offsets ``data.seed``,
    so another runner seed visits the same rows in another order)."""
    shuffle = True if data.train_files is None else data.train_files.shuffle
    return PromptIterator(train, shuffle=shuffle, seed=data.seed + 1_000_003 * seed)

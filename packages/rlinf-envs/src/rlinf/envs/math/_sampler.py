"""Endless, seeded, resumable iteration over math rows.

The order of epoch ``e`` is a function of ``(seed, e)`` alone, not of how many rows were
drawn before, so a run resumed from ``(epoch, position)`` sees exactly the rows the
uninterrupted run would have seen.
"""

from __future__ import annotations

import random
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from ._data import MathDataConfig, load_math_rows
from ._rows import MathRow

__all__ = ["PromptIterator"]


class PromptIterator(Iterator[MathRow]):
    """Yield rows epoch after epoch, each epoch a (seeded) permutation of all rows.

    Args:
        rows: the dataset (at least one row).
        shuffle: permute each epoch; when False every epoch is the file order.
        seed: seed of the permutations.
    """

    def __init__(self, rows: Sequence[MathRow], *, shuffle: bool = True, seed: int = 0) -> None:
        if not rows:
            raise ValueError("PromptIterator needs at least one row")
        self.rows = rows
        self.shuffle = shuffle
        self.seed = seed
        self._epoch = 0
        self._position = 0
        self._order_epoch = -1
        self._order: list[int] = []

    @classmethod
    def from_config(cls, config: MathDataConfig) -> PromptIterator:
        """Load the rows named by ``config`` and iterate them with its shuffle settings."""
        return cls(load_math_rows(config), shuffle=config.shuffle, seed=config.seed)

    @property
    def epoch(self) -> int:
        """Index of the epoch the next row comes from (0-based)."""
        return self._epoch

    @property
    def position(self) -> int:
        """Index of the next row within the current epoch's order."""
        return self._position

    def order(self, epoch: int) -> list[int]:
        """Row indices in the order epoch ``epoch`` visits them."""
        if epoch != self._order_epoch:
            order = list(range(len(self.rows)))
            if self.shuffle:
                # A string seed is hashed with SHA-512 by `random`, so the permutation is the
                # same in every process and Python run (unlike hash() of a tuple).
                random.Random(f"rlinf.envs.math:{self.seed}:{epoch}").shuffle(order)
            self._order, self._order_epoch = order, epoch
        return self._order

    def __next__(self) -> MathRow:
        row = self.rows[self.order(self._epoch)[self._position]]
        self._position += 1
        if self._position == len(self.rows):
            self._epoch, self._position = self._epoch + 1, 0
        return row

    def next_batch(self, size: int) -> list[MathRow]:
        """The next ``size`` rows; a batch may span the end of one epoch and the next."""
        if size < 1:
            raise ValueError(f"batch size must be >= 1, got {size}")
        return [next(self) for _ in range(size)]

    def state_dict(self) -> dict[str, int]:
        """What a checkpoint must store to resume the same order: epoch, position, and the
        seed, shuffle flag and dataset size they apply to (all plain ints, JSON-friendly)."""
        return {
            "epoch": self._epoch,
            "position": self._position,
            "seed": self.seed,
            "shuffle": int(self.shuffle),
            "num_rows": len(self.rows),
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Continue from a :meth:`state_dict`.

        Raises:
            ValueError: the state belongs to another seed or dataset size (resuming would
                silently replay a different order), or its position is out of range.
        """
        missing = {"epoch", "position", "seed", "shuffle", "num_rows"} - set(state)
        if missing:
            raise ValueError(f"iterator state lacks {sorted(missing)}")
        saved = (state["seed"], bool(state["shuffle"]), state["num_rows"])
        if saved != (self.seed, self.shuffle, len(self.rows)):
            raise ValueError(
                f"iterator state is for (seed, shuffle, num_rows)={saved}; this iterator has "
                f"{(self.seed, self.shuffle, len(self.rows))}"
            )
        epoch, position = int(state["epoch"]), int(state["position"])
        if epoch < 0 or not 0 <= position < len(self.rows):
            raise ValueError(f"iterator state has epoch={epoch}, position={position} out of range")
        self._epoch, self._position = epoch, position

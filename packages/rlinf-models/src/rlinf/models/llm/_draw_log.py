"""StepDraws: the train rows each step takes from the prompt order, so that a checkpoint
resumes the order exactly while steps run ahead and refills draw in between.

With ``runner.max_staleness=k`` step ``s+k``'s rows are drawn before step ``s`` trains, and
with dynamic-sampling refill step ``s``'s extra rows are drawn while it trains, so the
order interleaves ``S(s+k), R(s), S(s+k+1), R(s+1), ...``. A checkpoint after step ``s``
keeps the order's state before ``S(s+1)`` (the rows of the untrained steps are drawn
again) and the sizes and positions of the refills already trained after that point
(``R(s+1-k) .. R(s)``), which the resumed run skips at the same positions; so the resumed
run's steps get the rows an uninterrupted run's would. Without refills there is nothing
to skip and the state is the one before ``S(s+1)``, as before.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

__all__ = ["StepDraws"]


class _Source(Protocol):
    def next_batch(self, n: int) -> Sequence[Any]: ...

    def state_dict(self) -> dict[str, Any]: ...


@dataclass(frozen=True)
class _Draw:
    step: int
    refill: bool
    rows: int
    state: dict[str, Any]


class StepDraws:
    """Draws a run's rows from ``source`` and remembers what each step took.

    Args:
        source: the prompt order (``next_batch`` / ``state_dict``).
        skips: a checkpoint's ``[[at, rows], ...]``: before the resumed run's next draw
            once it has drawn ``at`` rows, drop ``rows`` rows (refills trained before
            the checkpoint).
    """

    def __init__(self, source: _Source, skips: Sequence[Sequence[int]] = ()) -> None:
        self.source = source
        self._skips = [(int(at), int(n)) for at, n in skips]
        if any(at < 0 or n < 1 for at, n in self._skips):
            raise ValueError(f"bad prompt skips {list(skips)}: need at >= 0 and rows >= 1")
        self._used = 0
        self._log: list[_Draw] = []

    def draw(self, step: int, n: int, *, refill: bool = False) -> Sequence[Any]:
        """``n`` rows for ``step`` (``refill``: extra rows of a step that is training)."""
        while self._skips and self._skips[0][0] <= self._used:
            self.source.next_batch(self._skips.pop(0)[1])
        state = self.source.state_dict()
        rows = self.source.next_batch(n)
        self._used += len(rows)
        self._log.append(_Draw(step, refill, len(rows), state))
        return rows

    def checkpoint(self, trained: int) -> tuple[dict[str, Any], list[list[int]]]:
        """After ``trained`` steps: ``(state, skips)`` to resume from (see the module doc);
        drops the log of the steps trained. Skips of a resume not reached yet (the run
        ended before its next draw) are made now: those rows were trained already."""
        while self._skips:
            self.source.next_batch(self._skips.pop(0)[1])
        nxt = next((i for i, d in enumerate(self._log) if d.step >= trained and not d.refill), None)
        if nxt is None:
            self._log.clear()
            return self.source.state_dict(), []
        state = dict(self._log[nxt].state)
        skips: list[list[int]] = []
        used = 0
        for d in self._log[nxt:]:
            if d.step < trained:  # a refill already trained: the resumed run skips it
                skips.append([used, d.rows])
            else:
                used += d.rows
        self._log = [d for d in self._log if d.step >= trained]
        return state, skips

    @staticmethod
    def skips_of(state: Mapping[str, Any]) -> list[list[int]]:
        """A checkpoint state's ``prompt_skips`` (none when it has no such key)."""
        return [list(s) for s in state.get("prompt_skips", [])]

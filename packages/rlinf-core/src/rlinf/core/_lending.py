"""The CPU realization of lent slots: more intra-op threads for the rest of one phase.

A worker whose group runs with ``max_concurrency >= 2`` receives loans on a second thread
while its phase (an update) runs on the first; the phase calls :meth:`ThreadLoans.apply`
between work units (mini-batch steps), which is where the thread count changes. The count
is set from the compute thread itself because OpenMP's thread count is per calling thread:
``torch.set_num_threads`` from the receiving thread would not reach the update.

GPUs lend differently (an elastic data-parallel world, or a sleeping engine woken up); the
decisions (``rlinf.sched.SlotLender``) and the worker methods
(``rlinf.sched.SlotBorrower``: ``lend_slots`` / ``recall_slots``) stay the same.
"""

from __future__ import annotations

import threading
import time

import torch

__all__ = ["ThreadBorrower", "ThreadLoans"]


class ThreadLoans:
    """Threads lent to this process, scoped to one phase.

    Phases are numbered in increasing order (e.g. the update count). A loan may arrive
    before its phase begins (the lending call can overtake the phase's call on the other
    thread) and is kept for it; a loan for a phase that already ended is ignored.

    Args:
        base_threads: the process's own intra-op threads (its placement's share).
        threads_per_slot: intra-op threads one lent slot adds.
    """

    def __init__(self, base_threads: int, threads_per_slot: int) -> None:
        if base_threads < 1 or threads_per_slot < 1:
            raise ValueError(
                f"base_threads ({base_threads}) and threads_per_slot ({threads_per_slot}) "
                "must be >= 1"
            )
        self.base = base_threads
        self.per_slot = threads_per_slot
        self._lock = threading.Lock()
        self._phase: int | None = None  # the phase now running
        self._ended = -1  # the last phase that ended
        self._loan: tuple[int, int] | None = None  # (phase, slots)
        self._raised_at: float | None = None
        self.lent_s = 0.0  # seconds the current phase ran with extra threads

    def begin(self, phase: int) -> None:
        """The compute thread starts ``phase`` (a loan for another phase is dropped)."""
        with self._lock:
            if phase <= self._ended:
                raise ValueError(f"phase {phase} begins after phase {self._ended} ended")
            self._phase = phase
            if self._loan is not None and self._loan[0] != phase:
                self._loan = None
        self.lent_s = 0.0
        torch.set_num_threads(self.base)

    def lend(self, phase: int, slots: int) -> bool:
        """Lend ``slots`` slots for ``phase`` (any thread). Returns whether the phase still
        runs: a loan for a phase that ended is ignored (its slots are already back)."""
        if slots < 1:
            raise ValueError(f"a loan needs >= 1 slot, got {slots}")
        with self._lock:
            if phase <= self._ended:
                return False
            self._loan = (phase, slots)
            return True

    def recall(self, phase: int) -> None:
        """Take back the slots of ``phase`` (any thread); applied at the next :meth:`apply`."""
        with self._lock:
            if self._loan is not None and self._loan[0] == phase:
                self._loan = None

    def threads(self) -> int:
        """The thread count the running phase should use now."""
        with self._lock:
            if self._loan is None or self._loan[0] != self._phase:
                return self.base
            return self.base + self._loan[1] * self.per_slot

    def apply(self) -> None:
        """Between work units, on the compute thread: use the lent threads (or give them
        back after a recall)."""
        want = self.threads()
        if want == torch.get_num_threads():
            return
        now = time.perf_counter()
        if want > self.base and self._raised_at is None:
            self._raised_at = now
        elif want == self.base and self._raised_at is not None:
            self.lent_s += now - self._raised_at
            self._raised_at = None
        torch.set_num_threads(want)

    def end(self) -> float:
        """The phase is over (compute thread): back to the own threads; returns the
        seconds it ran with lent threads."""
        if self._raised_at is not None:
            self.lent_s += time.perf_counter() - self._raised_at
            self._raised_at = None
        with self._lock:
            if self._phase is not None:
                self._ended = max(self._ended, self._phase)
            self._phase = None
            if self._loan is not None and self._loan[0] <= self._ended:
                self._loan = None
        torch.set_num_threads(self.base)
        return self.lent_s


class ThreadBorrower:
    """Worker mixin: the ``rlinf.sched.SlotBorrower`` methods over :attr:`loans`.

    The worker sets ``self.loans`` (a :class:`ThreadLoans`) in its ``__init__`` and runs
    its update between ``loans.begin(phase)`` and ``loans.end()``, calling
    ``loans.apply`` between work units. Both methods run beside the update, so the
    worker's group needs ``max_concurrency >= 2``.
    """

    loans: ThreadLoans

    def lend_slots(self, phase: int, slots: int) -> bool:
        """Use ``slots`` lent slots (more threads) for the rest of update ``phase``.
        False: that update had already ended."""
        return self.loans.lend(phase, slots)

    def recall_slots(self, phase: int) -> None:
        """Give the lent slots of update ``phase`` back at its next work unit."""
        self.loans.recall(phase)

"""Interrupts of a CLI run: the first SIGINT or SIGTERM stops the run, later ones cannot.

A terminal's Ctrl-C reaches a CLI twice under ``uv run`` (the terminal signals the whole
foreground process group, and uv forwards the signal to its child), and impatient users
press it again. With Python's default handler the second ``KeyboardInterrupt`` lands inside
the shutdown (``ray.shutdown()``, the workers' close calls) and cuts it short, leaving
Ray's processes behind. Under :class:`InterruptGuard` the first signal raises
:class:`Interrupted` where the run is, so ``finally`` blocks shut everything down; later
signals only print that the shutdown is still under way.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
from collections.abc import Iterator
from typing import IO, Any

__all__ = ["GUARDED_SIGNALS", "InterruptGuard", "Interrupted", "keep_signal_handlers"]

GUARDED_SIGNALS = (signal.SIGINT, signal.SIGTERM)
"""The signals :class:`InterruptGuard` handles."""


class Interrupted(KeyboardInterrupt):
    """The run was stopped by a signal (the first one :class:`InterruptGuard` saw).

    A ``KeyboardInterrupt``, so ``except Exception`` clauses let it through.

    Attributes:
        signum: the signal's number.
    """

    def __init__(self, signum: int):
        self.signum = signum
        super().__init__(f"stopped by {signal.Signals(signum).name}")


class InterruptGuard:
    """Handle SIGINT and SIGTERM for the duration of a ``with`` block (main thread only;
    elsewhere it does nothing).

    The first signal prints ``<prog>: <SIG> received: ...`` to ``stream`` and raises
    :class:`Interrupted`; each later one prints that the shutdown goes on and returns.
    On exit the previous handlers are restored.

    Attributes:
        signum: the first signal received (None: none).
        repeats: how many signals arrived after the first.
    """

    def __init__(self, prog: str, stream: IO[str] | None = None):
        self.prog = prog
        self.stream = stream
        self.signum: int | None = None
        self.repeats = 0
        self._previous: dict[int, Any] = {}

    def _print(self, text: str) -> None:
        stream = self.stream if self.stream is not None else sys.stderr
        line = f"{self.prog}: {text}\n"
        try:
            fd = stream.fileno()
        except (AttributeError, OSError, ValueError):
            fd = -1
        # Straight to the file descriptor: a handler that print()s while the main thread
        # is inside a print() to the same stream fails ("reentrant call").
        with contextlib.suppress(OSError):
            if fd >= 0:
                os.write(fd, line.encode())
                return
        with contextlib.suppress(Exception):
            stream.write(line)

    def _handle(self, signum: int, frame: object) -> None:
        name = signal.Signals(signum).name
        if self.signum is None:
            self.signum = signum
            self._print(
                f"{name} received: stopping the run and every process it started "
                "(further signals do not cut this short)"
            )
            raise Interrupted(signum)
        self.repeats += 1
        self._print(f"{name} received again: still shutting down, please wait")

    def exit_code(self) -> int:
        """``128 + signum`` of the first signal (130 for SIGINT, 143 for SIGTERM)."""
        return 128 + (self.signum if self.signum is not None else signal.SIGINT)

    def report(self) -> int:
        """Print how the run ended after an interrupt; return :meth:`exit_code`."""
        name = signal.Signals(self.signum or signal.SIGINT).name
        again = f"; {self.repeats} later signal(s) ignored" if self.repeats else ""
        self._print(f"stopped by {name}; the run and its processes have ended{again}")
        return self.exit_code()

    def __enter__(self) -> InterruptGuard:
        if threading.current_thread() is threading.main_thread():
            for s in GUARDED_SIGNALS:
                self._previous[s] = signal.signal(s, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        for s, handler in self._previous.items():
            signal.signal(s, handler)
        self._previous.clear()


@contextlib.contextmanager
def keep_signal_handlers() -> Iterator[None]:
    """Restore the Python-level SIGINT and SIGTERM handlers that code in the block
    replaces (``ray.init()`` installs its own SIGTERM handler); a handler that was the
    default one before the block is left as the block set it."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    before = {s: signal.getsignal(s) for s in GUARDED_SIGNALS}
    try:
        yield
    finally:
        for s, handler in before.items():
            if callable(handler) and handler is not signal.default_int_handler:
                signal.signal(s, handler)

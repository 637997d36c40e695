"""A watchdog process that ends every process a local Ray started, however the driver ends.

Why it exists: ``ray.init()`` starts the GCS server, the raylet and a few helpers as the
driver's children, tied to it by the kernel (``PR_SET_PDEATHSIG``), but the raylet's own
children, the dashboard agent and the runtime-env agent, are tied to nothing but the raylet.
When the raylet dies abruptly (driver killed, or its shutdown cut short by a second Ctrl-C),
both agents notice within a second yet stay alive for about a minute, blocked on reporting
the raylet's death to the GCS that died with it (measured with Ray 2.60: ~55 s). No Ray
setting skips that report (only GCS-wide RPC timeouts bound it), and Ray starts both agents
even with ``include_dashboard=False``.

The reaper is started before ``ray.init()`` as a separate process in its own session
(untouched by the terminal's Ctrl-C). It keeps a list of the driver's Ray processes and
their descendants, refreshed every :data:`POLL_S`, and ends them (SIGTERM, then SIGKILL
after :data:`GRACE_S`) when told to (:meth:`ProcessReaper.reap`, after ``ray.shutdown()``)
or when its stdin reaches end of file: the driver died, even by SIGKILL.
"""

from __future__ import annotations

import os
import select
import signal
import subprocess
import sys
from collections.abc import Iterable

import psutil

__all__ = ["GRACE_S", "POLL_S", "ProcessReaper", "main"]

POLL_S = 0.5
"""Seconds between two refreshes of the list of processes to end."""

GRACE_S = 1.0
"""Seconds between SIGTERM and SIGKILL for a process that has not ended."""


class ProcessReaper:
    """The driver's handle on its reaper process.

    Example::

        reaper = ProcessReaper.start()
        before = ProcessReaper.children()
        ray.init()
        reaper.watch(ProcessReaper.children() - before)
        ...
        ray.shutdown()
        reaper.reap()          # ends what ray.shutdown() left behind
    """

    def __init__(self, proc: subprocess.Popen[bytes]):
        """Use :meth:`start`."""
        self._proc = proc

    @classmethod
    def start(cls) -> ProcessReaper:
        """Start a reaper for this process. Until :meth:`watch` names the roots, it tracks
        every child this process starts from now on (and their descendants)."""
        # Named here, not by the reaper: by the time it runs, ray.init() may have begun.
        existing = [str(pid) for pid in cls.children()]
        proc = subprocess.Popen(
            [sys.executable, "-m", "rlinf.core._reaper", str(os.getpid()), *existing],
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            # Its own session: the terminal's Ctrl-C and hang-up go to the driver only.
            start_new_session=True,
        )
        return cls(proc)

    @staticmethod
    def children() -> set[int]:
        """Pids of this process's children as of now."""
        return {c.pid for c in psutil.Process().children()}

    @property
    def pid(self) -> int:
        """The reaper's own pid."""
        return self._proc.pid

    def watch(self, roots: Iterable[int]) -> None:
        """Track only ``roots`` (children of this process) and their descendants."""
        pids = sorted(set(roots) - {self._proc.pid})
        self._send("watch " + " ".join(map(str, pids)))

    def reap(self, timeout: float = 10.0) -> None:
        """End every tracked process still alive and wait (up to ``timeout`` s) until
        the reaper is done."""
        self._send("reap")
        try:
            if self._proc.stdin is not None:
                self._proc.stdin.close()
        except OSError:
            pass
        try:
            self._proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()

    def _send(self, line: str) -> None:
        if self._proc.stdin is None or self._proc.stdin.closed:
            return
        try:
            self._proc.stdin.write(line.encode() + b"\n")
            self._proc.stdin.flush()
        except (BrokenPipeError, ValueError):
            # The reaper is gone already: nothing is left to tell it.
            pass


class _Tracker:
    """The processes to end: the roots' descendants, remembered after their parents die."""

    def __init__(self, driver: psutil.Process, existing: Iterable[int]):
        self.driver = driver
        # Children the driver had before it started the reaper are not Ray's.
        self.ignored = set(existing) | {os.getpid()}
        self.roots: set[int] | None = None
        self.tracked: dict[int, psutil.Process] = {}

    def refresh(self) -> None:
        """Add every new descendant of the roots; forget processes that ended."""
        table: dict[int, psutil.Process] = {}
        kids: dict[int, list[int]] = {}
        # One pass over the process table (not one per tracked process).
        for p in psutil.process_iter(["ppid"]):
            table[p.pid] = p
            kids.setdefault(p.info["ppid"], []).append(p.pid)
        self.tracked = {pid: p for pid, p in self.tracked.items() if table.get(pid) == p}
        frontier = list(self.tracked)
        if table.get(self.driver.pid) == self.driver:
            frontier += [
                pid
                for pid in kids.get(self.driver.pid, ())
                if pid not in self.ignored and (self.roots is None or pid in self.roots)
            ]
        while frontier:
            pid = frontier.pop()
            if pid in self.ignored:
                continue
            self.tracked[pid] = table[pid]
            frontier += [c for c in kids.get(pid, ()) if c not in self.tracked]

    def watch(self, roots: set[int]) -> None:
        """Narrow the roots to ``roots`` (children of the driver)."""
        self.roots = roots
        self.tracked = {}
        self.refresh()


def _end(procs: Iterable[psutil.Process]) -> None:
    """SIGTERM each process, SIGKILL those still alive :data:`GRACE_S` later, and wait.

    ``psutil.Process`` checks that a pid was not reused before signalling it.
    """
    alive = []
    for p in procs:
        try:
            p.terminate()
            alive.append(p)
        except psutil.Error:
            continue
    _, left = psutil.wait_procs(alive, timeout=GRACE_S)
    for p in left:
        try:
            p.kill()
        except psutil.Error:
            continue
    psutil.wait_procs(left, timeout=GRACE_S)


def main(argv: list[str] | None = None) -> int:
    """The reaper process: ``python -m rlinf.core._reaper <driver pid> [<pid> ...]``
    (the driver's children that existed before, which are left alone).

    Reads commands from stdin: ``watch <pid> ...`` narrows the roots, ``reap`` (or end of
    file, or SIGTERM) ends every tracked process and exits.
    """
    args = sys.argv[1:] if argv is None else argv
    tracker = _Tracker(psutil.Process(int(args[0])), map(int, args[1:]))
    stop = False

    def on_term(signum: int, frame: object) -> None:
        nonlocal stop
        stop = True

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, on_term)
    stdin = sys.stdin.buffer
    while not stop:
        tracker.refresh()
        try:
            ready, _, _ = select.select([stdin], [], [], POLL_S)
        except InterruptedError:
            continue
        if not ready:
            continue
        line = stdin.readline().decode(errors="replace").split()
        if not line or line[0] == "reap":
            break
        if line[0] == "watch":
            tracker.watch({int(x) for x in line[1:]})
    tracker.refresh()
    _end(tracker.tracked.values())
    return 0


if __name__ == "__main__":
    sys.exit(main())

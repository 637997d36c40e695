"""``rlinf-embodied train`` stopped by Ctrl-C (twice), SIGTERM or SIGKILL leaves no process.

Each test starts the real CLI in its own session, waits until its three worker groups run,
signals it, and checks that every process it started (its process tree as seen while it
ran, and anything left in its session) is gone within seconds.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time

import psutil
import pytest

ENV = {**os.environ, "RAY_ENABLE_UV_RUN_RUNTIME_ENV": "0", "RAY_AUTH_MODE": "disabled"}
TRAIN = [sys.executable, "-m", "rlinf.apps.embodied.cli", "train", "--config", "cartpole"]
LONG_RUN = [
    "runner.progress=false",
    "runner.total_env_steps=100000000",
    "runner.checkpoint_every=0",
    "runner.horizon=32",
    # Three worker groups (the preset runs the policy in the env worker), on Ray (one slot
    # would run in-process): the most processes a stop has to take down.
    "runner.policy_in_env=false",
    "cluster.backend=ray",
]


def _alive(p: psutil.Process) -> bool:
    try:
        return p.is_running() and p.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def _in_session(sid: int) -> list[psutil.Process]:
    out = []
    for p in psutil.process_iter():
        try:
            if os.getsid(p.pid) == sid and _alive(p):
                out.append(p)
        except (OSError, psutil.Error):
            continue
    return out


class _Cli:
    """The CLI in its own session, its stderr collected by a thread, its process tree
    recorded while it runs."""

    def __init__(self, run_dir: str):
        self.proc = subprocess.Popen(
            [*TRAIN, "--run-dir", run_dir, *LONG_RUN],
            env=ENV,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
        self.stderr: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        self.seen: dict[int, psutil.Process] = {}

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.stderr.append(line.rstrip("\n"))

    def record(self) -> int:
        """Add the current process tree to ``seen``; return how many workers it has."""
        try:
            tree = psutil.Process(self.proc.pid).children(recursive=True)
        except psutil.NoSuchProcess:
            return 0
        workers = 0
        for p in tree:
            self.seen.setdefault(p.pid, p)
            try:
                workers += "WorkerHost" in " ".join(p.cmdline())
            except psutil.Error:
                continue
        return workers

    def wait_running(self, timeout: float = 240.0) -> None:
        deadline = time.monotonic() + timeout
        while self.record() < 3:
            assert self.proc.poll() is None, "\n".join(self.stderr[-20:])
            assert time.monotonic() < deadline, "the workers did not start"
            time.sleep(0.2)
        # Into the training loop: env, rollout and actor groups all busy.
        for _ in range(10):
            self.record()
            time.sleep(0.2)

    def wait_line(self, text: str, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while not any(text in line for line in self.stderr):
            assert time.monotonic() < deadline, f"no {text!r} in {self.stderr[-5:]}"
            time.sleep(0.05)

    def left_behind(self, timeout: float = 10.0) -> list[str]:
        deadline = time.monotonic() + timeout
        while True:
            left = [p for p in self.seen.values() if _alive(p)]
            left += [p for p in _in_session(self.proc.pid) if p.pid not in self.seen]
            if not left or time.monotonic() > deadline:
                return [f"{p.pid} {' '.join(p.cmdline())[:80]}" for p in left if _alive(p)]
            time.sleep(0.2)

    def stop_all(self) -> None:
        for p in [*self.seen.values(), *_in_session(self.proc.pid)]:
            if _alive(p):
                p.kill()
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()


# Three real CLI runs (Ray start included each time): ~100 s on an idle 2-core machine.
@pytest.mark.slow
@pytest.mark.parametrize("how", ["sigint_twice", "sigterm", "sigkill"])
def test_a_stopped_cli_leaves_no_process_behind(tmp_path, how):
    cli = _Cli(str(tmp_path / "run"))
    try:
        cli.wait_running()
        # The reaper, Ray's GCS, raylet, agents and the workers: all in the tree.
        assert len(cli.seen) >= 8, [p.pid for p in cli.seen.values()]
        if how == "sigint_twice":
            # A terminal's Ctrl-C reaches the whole foreground group; a second one (or
            # uv run forwarding the first again) arrives during the shutdown.
            os.killpg(cli.proc.pid, signal.SIGINT)
            cli.wait_line("SIGINT received: stopping the run")
            os.killpg(cli.proc.pid, signal.SIGINT)
        elif how == "sigterm":
            cli.proc.send_signal(signal.SIGTERM)
        else:
            cli.proc.kill()
        code = cli.proc.wait(timeout=120)
        cli._reader.join(timeout=10)
        assert cli.left_behind() == []
        if how == "sigint_twice":
            assert code == 130
            assert "rlinf-embodied: SIGINT received again: still shutting down" in "\n".join(
                cli.stderr
            )
            assert cli.stderr[-1] == (
                "rlinf-embodied: stopped by SIGINT; the run and its processes have ended; "
                "1 later signal(s) ignored"
            )
        elif how == "sigterm":
            assert code == 143
            assert cli.stderr[-1] == (
                "rlinf-embodied: stopped by SIGTERM; the run and its processes have ended"
            )
        else:
            assert code == -signal.SIGKILL
    finally:
        cli.stop_all()


# The README command's path: every worker a thread of the CLI's process. A stop lands while
# a worker thread is mid-call (an update or a rollout); the CLI must wait for it, or the
# interpreter would exit under running torch code and abort (exit 134).
@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_an_in_process_cli_stops_with_its_signal_exit_code(tmp_path, sig):
    run_dir = tmp_path / "run"
    args = [a for a in LONG_RUN if a not in ("runner.policy_in_env=false", "cluster.backend=ray")]
    proc = subprocess.Popen(
        [*TRAIN, "--run-dir", str(run_dir), *args, "cluster.backend=inprocess"],
        env=ENV,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 240
        metrics = run_dir / "metrics.jsonl"
        while not (metrics.exists() and metrics.stat().st_size):
            assert proc.poll() is None and time.monotonic() < deadline, "no update logged"
            time.sleep(0.2)
        assert psutil.Process(proc.pid).children(recursive=True) == []  # no Ray, no workers
        proc.send_signal(sig)
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == 128 + sig, err
        assert err.strip().splitlines()[-1] == (
            f"rlinf-embodied: stopped by {signal.Signals(sig).name}; the run and its "
            "processes have ended"
        )
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()

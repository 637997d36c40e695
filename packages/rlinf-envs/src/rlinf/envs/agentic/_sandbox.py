"""Run untrusted Python (model-written code) in a contained subprocess.

Layers, each meant to hold if another fails (audit hooks alone are no security boundary):

* process: a new session (process group) with a fresh private working directory, ``HOME``
  and ``TMPDIR`` there, and a scrubbed environment; the whole group is killed at the wall
  limit, on output overflow and after the main process exits, so nothing outlives a run;
* kernel limits (``setrlimit``): CPU seconds, address space, file size, open files, core
  dumps off, and processes;
* a seccomp filter (:mod:`._sandbox_filter`), always: ``mknod`` and ``mkfifo`` fail with
  ``EPERM`` (no device node, no FIFO, which no audit event reports); a child where the
  kernel refuses the filter never runs the code (:func:`run_python` raises);
* Landlock (Linux >= 5.19, best effort, skipped where the kernel lacks it), always tried:
  the kernel refuses every file-system change outside the sandbox directory, and device
  nodes and FIFOs inside it;
* namespaces (Linux, best effort, skipped silently where the kernel refuses, or turned off
  by ``SandboxConfig.namespaces``): a new user
  namespace (the child loses every capability of the host, so it cannot raise its limits
  again), a network namespace without interfaces (no connection can leave), and a mount
  namespace where every mount is read-only except the sandbox directory and ``/proc`` is
  hidden (no other process's environment can be read);
* an audit hook (PEP 578, :mod:`._sandbox_hook`) installed before the user code, which
  raises ``PermissionError`` on sockets, fork / exec / spawn, ``ctypes``, signals to other
  processes, raising limits, writes and file-system changes outside the sandbox directory
  (symbolic links may only point inside it), and reads under ``/proc`` other than the
  process's own entries; inside the directory a program may do what programs normally do
  (folders, renames, removal, ``chmod``, links, ``shutil.rmtree``, ``tempfile``).

Without namespaces (the "fallback") Landlock, the seccomp filter and the audit hook are the
layers between the code and the host's files; where the kernel has no Landlock either, only
the hook guards writes: run the tool workers in a container there.

The child setup (``_child_main`` in :mod:`._sandbox_child`, the "prelude") is sent as source
text and runs in the child's own interpreter before the user code, not in a ``preexec_fn``,
so starting sandboxes from many threads at once is safe.
"""

from __future__ import annotations

import contextlib
import json
import os
import selectors
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass

from ._sandbox_child import prelude_source

__all__ = ["SANDBOX_STATUSES", "SandboxConfig", "SandboxResult", "run_python"]

#: ``ok``: exit code 0; ``error``: non-zero exit (an exception, a denied operation);
#: ``timeout``: the CPU or wall limit was hit; ``memory``: the address-space limit was hit;
#: ``output_limit``: stdout or stderr passed ``max_output_bytes``; ``killed``: ended by a
#: signal for another reason (e.g. a crash in C code).
SANDBOX_STATUSES = ("ok", "error", "timeout", "memory", "output_limit", "killed")

_READ_CHUNK = 65536
#: Exit code of a child whose code ran out of memory (MemoryError reached the top).
MEMORY_EXIT_CODE = 86
#: Exit code of a child whose setup failed before the code ran; stderr starts with the marker.
SETUP_EXIT_CODE = 87
_SETUP_MARKER = "rlinf sandbox: could not install"


@dataclass(frozen=True)
class SandboxConfig:
    """Limits of one sandboxed run.

    Attributes:
        cpu_time_s: CPU seconds (``RLIMIT_CPU``, whole seconds, >= 1); past it the child
            gets ``SIGXCPU`` (then ``SIGKILL`` one second later) and the run is a timeout.
        wall_time_s: wall-clock seconds (> 0) before the whole process group is killed
            (catches sleeping or blocked code that uses no CPU).
        memory_mb: address-space limit in MiB (``RLIMIT_AS``, >= 64: the interpreter
            itself needs ~30); allocations past it raise ``MemoryError``.
        max_output_bytes: bytes kept of each of stdout and stderr (>= 1); more output
            kills the run with status ``output_limit`` (the first bytes are kept).
        max_file_bytes: largest file the code may write (``RLIMIT_FSIZE``, >= 0).
        max_open_files: file descriptors (``RLIMIT_NOFILE``, >= 16: the interpreter needs
            some for itself).
        max_processes: ``RLIMIT_NPROC`` (>= 1), set only when the user namespace was
            created (there it counts the sandbox's own processes and threads; outside one
            it would count all of the user's processes). Not enforced for root, which is
            why fork is also denied by the audit hook.
        python: the interpreter to run (default: the current one).
        block_network: put the child in an empty network namespace and deny sockets.
        namespaces: enter new user, mount (and network) namespaces where the kernel allows
            it; False runs the fallback (audit hook, seccomp filter and limits only) even
            where namespaces are available, e.g. to test that mode.
    """

    cpu_time_s: int = 5
    wall_time_s: float = 10.0
    memory_mb: int = 512
    max_output_bytes: int = 65536
    max_file_bytes: int = 1 << 20
    max_open_files: int = 64
    max_processes: int = 16
    python: str = sys.executable
    block_network: bool = True
    namespaces: bool = True

    def __post_init__(self) -> None:
        checks = {
            "cpu_time_s": (self.cpu_time_s, 1),
            "memory_mb": (self.memory_mb, 64),
            "max_output_bytes": (self.max_output_bytes, 1),
            "max_file_bytes": (self.max_file_bytes, 0),
            "max_open_files": (self.max_open_files, 16),
            "max_processes": (self.max_processes, 1),
        }
        for name, (value, low) in checks.items():
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise ValueError(f"SandboxConfig.{name} must be an int >= {low}, got {value!r}")
        if not isinstance(self.wall_time_s, (int, float)) or not self.wall_time_s > 0:
            raise ValueError(f"SandboxConfig.wall_time_s must be > 0, got {self.wall_time_s!r}")
        if not self.python:
            raise ValueError("SandboxConfig.python must name a Python interpreter")


@dataclass(frozen=True)
class SandboxResult:
    """What a sandboxed run produced.

    Attributes:
        stdout: captured standard output (at most ``max_output_bytes`` bytes, decoded as
            UTF-8 with replacement).
        stderr: captured standard error (same cap).
        exit_code: the exit status; negative: killed by that signal.
        status: one of :data:`SANDBOX_STATUSES`.
        wall_s: seconds from start to the end of the run.
    """

    stdout: str
    stderr: str
    exit_code: int
    status: str
    wall_s: float


def _child_argv(config: SandboxConfig, box: str, main: str) -> list[str]:
    limits = {
        "cpu": config.cpu_time_s,
        "memory": config.memory_mb * 1024 * 1024,
        "fsize": config.max_file_bytes,
        "nofile": config.max_open_files,
        "nproc": config.max_processes,
        "network": not config.block_network,
        "memory_exit": MEMORY_EXIT_CODE,
        "namespaces": bool(config.namespaces),
        "setup_exit": SETUP_EXIT_CODE,
        "setup_marker": _SETUP_MARKER,
    }
    # -I: ignore PYTHON* variables and user site-packages, no script directory on sys.path.
    program = prelude_source()
    return [config.python, "-I", "-X", "utf8", "-c", program, box, main, json.dumps(limits)]


def _kill_group(pgid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)


def _feed(pipe, data: bytes) -> None:
    try:
        pipe.write(data)
    except (BrokenPipeError, OSError):
        pass  # the child exited or closed stdin: it did not want the rest
    finally:
        with contextlib.suppress(OSError):
            pipe.close()


def _collect(proc: subprocess.Popen, config: SandboxConfig, deadline: float) -> tuple:
    """Read stdout/stderr until both close, the deadline passes or one overflows.

    Returns ``(stdout bytes, stderr bytes, reason)`` with reason None, ``"timeout"`` or
    ``"output_limit"``.
    """
    buffers = {proc.stdout.fileno(): bytearray(), proc.stderr.fileno(): bytearray()}
    cap = config.max_output_bytes
    reason = None
    with selectors.DefaultSelector() as selector:
        for fd in buffers:
            selector.register(fd, selectors.EVENT_READ)
        while selector.get_map() and reason is None:
            left = deadline - time.monotonic()
            if left <= 0:
                reason = "timeout"
                break
            for key, _ in selector.select(timeout=left):
                chunk = os.read(key.fd, _READ_CHUNK)
                if not chunk:
                    selector.unregister(key.fd)
                    continue
                buffer = buffers[key.fd]
                buffer += chunk
                if len(buffer) > cap:
                    del buffer[cap:]
                    reason = "output_limit"
                    break
    out, err = buffers[proc.stdout.fileno()], buffers[proc.stderr.fileno()]
    return bytes(out), bytes(err), reason


def _wait_unreaped(pid: int, deadline: float) -> bool:
    """Wait (until ``deadline``) for ``pid`` to exit without reaping it, so its process
    group id cannot be reused before the group is killed. True when it exited."""
    while True:
        info = os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
        if info is not None and info.si_pid == pid:
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.005)


def _status(exit_code: int, stderr: bytes) -> str:
    if exit_code == 0:
        return "ok"
    if exit_code == MEMORY_EXIT_CODE or (exit_code > 0 and b"MemoryError" in stderr[-2048:]):
        return "memory"
    if exit_code == -signal.SIGXCPU:
        return "timeout"
    return "killed" if exit_code < 0 else "error"


def run_python(code: str, config: SandboxConfig, *, stdin: str | None = None) -> SandboxResult:
    """Run ``code`` (Python source) in a sandbox (see the module docstring).

    Args:
        code: the program; it runs as ``__main__`` from a file in the sandbox directory.
        config: the limits.
        stdin: text fed to the program's standard input (none: ``/dev/null``).

    Returns:
        The captured output, exit code and status. Raises only when the sandbox itself
        cannot start: ``OSError`` when ``config.python`` cannot be run, ``RuntimeError``
        when the child could not install a layer that must hold (the seccomp filter).
    """
    if not isinstance(code, str):
        raise TypeError(f"code must be a str, got {type(code).__name__}")
    start = time.monotonic()
    deadline = start + config.wall_time_s
    box = tempfile.mkdtemp(prefix="rlinf-sandbox-")
    try:
        main = os.path.join(box, "main.py")
        with open(main, "w", encoding="utf-8") as f:
            f.write(code)
        env = {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", "HOME": box, "TMPDIR": box}
        proc = subprocess.Popen(
            _child_argv(config, box, main),
            cwd=box,
            env=env,
            stdin=subprocess.DEVNULL if stdin is None else subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,  # its own process group: killpg reaches every child
            close_fds=True,
        )
        feeder = None
        if stdin is not None:
            data = stdin.encode("utf-8")
            feeder = threading.Thread(target=_feed, args=(proc.stdin, data), daemon=True)
            feeder.start()
        try:
            out, err, reason = _collect(proc, config, deadline)
            if reason is None and not _wait_unreaped(proc.pid, deadline):
                reason = "timeout"  # closed its pipes but kept running
        finally:
            _kill_group(proc.pid)  # also after a clean exit: no straggler survives
            exit_code = proc.wait()
            proc.stdout.close()
            proc.stderr.close()
            if feeder is not None:
                feeder.join(timeout=1.0)
        if exit_code == SETUP_EXIT_CODE and err.startswith(_SETUP_MARKER.encode()):
            detail = err.decode("utf-8", errors="replace").strip()
            raise RuntimeError(f"the sandbox refused to run the code: {detail}")
        status = reason or _status(exit_code, err)
        return SandboxResult(
            stdout=out.decode("utf-8", errors="replace"),
            stderr=err.decode("utf-8", errors="replace"),
            exit_code=exit_code,
            status=status,
            wall_s=time.monotonic() - start,
        )
    finally:
        shutil.rmtree(box, ignore_errors=True)

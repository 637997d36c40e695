"""A private Ray cluster of several nodes on this machine, started with ``ray start``.

Every node is one ``ray start --block`` process in a session of its own, with its own free
ports (so that it collides with no other Ray on the machine) and the cluster's own
temporary directory. A driver must look for its local node in that directory only (with
Ray's default one it also finds other clusters' nodes on the machine and times out asking
our head about them): run drivers with :attr:`RayNodes.env` (``RAY_TMPDIR``). Stopping sends SIGTERM to those processes only (``--block`` then stops
the node's Ray processes), and SIGKILL to their process groups after a grace period:
unlike ``ray stop``, nothing else running on the machine is touched.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["RayNodes", "ray_nodes", "run_driver"]

# Ports that Ray would otherwise take at fixed defaults (shared with other clusters on the
# machine) or discover through files that a loaded machine writes too late.
_PORT_FLAGS = (
    "--dashboard-agent-listen-port",
    "--dashboard-agent-grpc-port",
    "--metrics-export-port",
    "--runtime-env-agent-port",
    "--node-manager-port",
    "--object-manager-port",
)


_STARTS = 3


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class RayNodes:
    """Handles of a running cluster.

    Attributes:
        address: ``host:port`` of the head's GCS (what ``--address`` takes).
        root: ``RAY_TMPDIR`` of the cluster; Ray's temporary directory is ``root/ray``
            (logs under ``ray/session_latest/logs``, node logs ``node<i>.log`` in ``root``).
        procs: the ``ray start --block`` processes, head first.
    """

    address: str
    root: Path
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)

    @property
    def env(self) -> dict[str, str]:
        """Environment variables for a driver of this cluster (see the module doc)."""
        return {"RAY_TMPDIR": str(self.root)}

    def stop(self, grace_s: float = 20.0) -> None:
        """Stop the nodes, workers first, and wait for them."""
        for proc in reversed(self.procs):
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=grace_s)
            # The node's Ray processes share the session of its `ray start` process.
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        self.procs.clear()


def _driver_env(nodes: RayNodes) -> dict[str, str]:
    return dict(
        os.environ, RAY_ENABLE_UV_RUN_RUNTIME_ENV="0", RAY_AUTH_MODE="disabled", **nodes.env
    )


def _ray_start(nodes: RayNodes, args: list[str], log: Path) -> subprocess.Popen[bytes]:
    ray_cli = str(Path(sys.executable).with_name("ray"))
    ports = [x for flag in _PORT_FLAGS for x in (flag, str(_free_port()))]
    # A raylet waits a fixed time for its agents (Python processes that a loaded machine
    # starts slowly) to report their ports, then aborts: give them longer.
    env = dict(
        _driver_env(nodes),
        RAY_raylet_start_wait_time_s="120",
        RAY_agent_register_timeout_ms="120000",
    )
    with open(log, "wb") as out:
        return subprocess.Popen(
            [ray_cli, "start", "--block", "--disable-usage-stats", *ports, *args],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
        )


def run_driver(nodes: RayNodes, code: str, timeout_s: float = 120.0) -> Any:
    """Run ``code`` (Python) as a driver of the cluster in a fresh interpreter (this
    process stays free of any Ray connection) and return what it printed as
    ``print("RESULT", json.dumps(x))`` (Ray's own log lines may share its stdout).

    Raises:
        RuntimeError: the driver failed or printed no result (the message holds its output).
    """
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env=_driver_env(nodes),
        timeout=timeout_s,
    )
    results = [ln[len("RESULT ") :] for ln in out.stdout.splitlines() if ln.startswith("RESULT ")]
    if out.returncode != 0 or not results:
        raise RuntimeError(
            f"driver failed (exit {out.returncode}):\n{out.stdout[-1000:]}\n{out.stderr[-3000:]}"
        )
    return json.loads(results[-1])


def _alive_nodes(nodes: RayNodes) -> int:
    code = (
        f"import json, ray; ray.init(address={nodes.address!r}, logging_level='ERROR'); "
        "print('RESULT', json.dumps(sum(n['Alive'] for n in ray.nodes())))"
    )
    try:
        return int(run_driver(nodes, code, 60.0))
    except (RuntimeError, subprocess.TimeoutExpired):
        return 0


def _raylet_errors(root: Path) -> str:
    """The fatal lines of the cluster's raylet logs (why a node did not come up)."""
    lines = []
    for f in sorted((root / "ray").glob("session_*/logs/raylet*.out")):
        lines += [ln for ln in f.read_text(errors="replace").splitlines() if " C " in ln]
    return "\n".join(lines[-5:]) or "(none)"


@contextlib.contextmanager
def ray_nodes(
    cpus: tuple[int, ...],
    resources: tuple[Mapping[str, float], ...] = (),
    *,
    timeout_s: float = 180.0,
) -> Iterator[RayNodes]:
    """Start ``len(cpus)`` Ray nodes (node ``i`` with ``cpus[i]`` CPUs and ``resources[i]``
    custom resources), wait until all are alive, yield them, stop them.

    Raises:
        RuntimeError: a node did not come up within ``timeout_s`` (the message holds its log).
    """
    # Short: Ray's socket paths under it must stay within the 107 bytes of AF_UNIX.
    root = Path(tempfile.mkdtemp(prefix="rlinf-nodes-"))
    port = _free_port()
    nodes = RayNodes(f"127.0.0.1:{port}", root)
    try:
        for i, n in enumerate(cpus):
            extra = ["--resources", json.dumps(dict(resources[i]))] if i < len(resources) else []
            if i == 0:
                args = ["--head", "--port", str(port), "--include-dashboard", "false"]
                # The dashboard's head process runs even when the UI is off: own port too.
                args += ["--dashboard-port", str(_free_port())]
                args += ["--ray-client-server-port", str(_free_port()), "--temp-dir"]
                args += [str(root / "ray")]
            else:
                args = ["--address", nodes.address]
            log = root / f"node{i}.log"
            deadline = time.monotonic() + timeout_s
            # `ray start` gives a node's raylet a fixed 30 s to register: on a loaded machine
            # a start can fail and the next one succeed.
            for attempt in range(_STARTS):
                proc = _ray_start(nodes, [*args, "--num-cpus", str(n), *extra], log)
                nodes.procs.append(proc)
                while _alive_nodes(nodes) < i + 1 and proc.poll() is None:
                    if time.monotonic() > deadline:
                        break
                    time.sleep(1.0)
                if proc.poll() is None and _alive_nodes(nodes) == i + 1:
                    break
                nodes.procs.pop()
                RayNodes(nodes.address, root, [proc]).stop()
                if attempt == _STARTS - 1 or time.monotonic() > deadline:
                    raise RuntimeError(
                        f"Ray node {i} did not start ({attempt + 1} tries):\n"
                        f"{log.read_text()[-1500:]}\nraylet errors:\n{_raylet_errors(root)}"
                    )
        yield nodes
    finally:
        nodes.stop()
        shutil.rmtree(root, ignore_errors=True)

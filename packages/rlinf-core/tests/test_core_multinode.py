"""Two Ray nodes on this machine; a group spanning both exchanges tensors."""

from __future__ import annotations

import contextlib
import json
import os
import pathlib
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

import pytest

DRIVER = pathlib.Path(__file__).with_name("multinode_driver.py")


def free_ports(n: int) -> list[int]:
    socks = [socket.socket() for _ in range(n)]
    try:
        for s in socks:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def ray_cli() -> str:
    local = pathlib.Path(sys.executable).with_name("ray")
    return str(local) if local.exists() else shutil.which("ray") or "ray"


def node_args(ports: list[int]) -> list[str]:
    nm, om, agent, agent_grpc, metrics, renv = ports
    return [
        "--block",
        "--node-ip-address=127.0.0.1",
        f"--node-manager-port={nm}",
        f"--object-manager-port={om}",
        f"--dashboard-agent-listen-port={agent}",
        f"--dashboard-agent-grpc-port={agent_grpc}",
        f"--metrics-export-port={metrics}",
        f"--runtime-env-agent-port={renv}",
        "--num-cpus=2",
        # CPU slots even on a GPU machine: the test's placement counts CPU devices.
        "--num-gpus=0",
        "--object-store-memory=150000000",
    ]


def stop(proc: subprocess.Popen, temp_dir: str) -> None:
    """Stop a `ray start --block` and everything it spawned (its own process group)."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=15)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=10)


def leftover_pids(temp_dir: str) -> list[int]:
    """Processes whose command line names our private temp dir (started by this test)."""
    pids = []
    for entry in pathlib.Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                if temp_dir.encode() in (entry / "cmdline").read_bytes():
                    pids.append(int(entry.name))
    return pids


def wait_for_port(port: int, timeout: float) -> None:
    """Wait until the head's GCS accepts connections; a busy machine can take a while."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.5)
    pytest.fail(f"the Ray head did not open its GCS port {port} within {timeout} s")


@pytest.mark.slow
def test_group_spanning_two_nodes_exchanges_tensors():
    temp_dir = tempfile.mkdtemp(prefix="rlmn", dir="/tmp")
    env = dict(os.environ, RAY_AUTH_MODE="disabled", RAY_ENABLE_UV_RUN_RUNTIME_ENV="0")
    gcs, client, *ports = free_ports(14)
    procs: list[subprocess.Popen] = []
    try:
        head = [
            ray_cli(),
            "start",
            "--head",
            f"--port={gcs}",
            f"--temp-dir={temp_dir}",
            "--include-dashboard=false",
            f"--ray-client-server-port={client}",
            *node_args(ports[:6]),
        ]
        procs.append(
            subprocess.Popen(
                head,
                env=env,
                start_new_session=True,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        )
        address = f"127.0.0.1:{gcs}"
        wait_for_port(gcs, timeout=120)
        worker = [
            ray_cli(),
            "start",
            f"--address={address}",
            '--resources={"rlinf_node_b": 1}',
            *node_args(ports[6:12]),
        ]
        procs.append(
            subprocess.Popen(
                worker,
                env=env,
                start_new_session=True,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        )
        # Attaching a driver makes Ray list every raylet on the machine (other clusters'
        # too) and ask our GCS about them; on a saturated machine that RPC can time out
        # before anything of ours ran. Only that failure is retried.
        for _attempt in range(3):
            run = subprocess.run(
                [sys.executable, str(DRIVER), address, temp_dir],
                env=env,
                capture_output=True,
                text=True,
                timeout=480,
            )
            if "when trying to resolve node to connect to" not in run.stderr:
                break
        lines = [line for line in run.stdout.splitlines() if line.startswith("RESULT ")]
        assert lines, (
            f"driver failed (rc={run.returncode}):\n{run.stdout[-3000:]}\n{run.stderr[-5000:]}"
        )
        out = json.loads(lines[0][len("RESULT ") :])
    finally:
        for proc in reversed(procs):
            stop(proc, temp_dir)
        for pid in leftover_pids(temp_dir):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        shutil.rmtree(temp_dir, ignore_errors=True)
    assert out["num_nodes"] == 2
    assert out["group_b_nodes"] == [1]
    assert out["rank_nodes"] == out["node_ids"]  # rank 0 on the head, rank 1 on the second node
    assert out["exchange"] == [[2.0 * i for i in range(6)], [float(i) for i in range(6)]]
    assert out["bcast"] == [[7.0, 7.0, 7.0], [7.0, 7.0, 7.0]]

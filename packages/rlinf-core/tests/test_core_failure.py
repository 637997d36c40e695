"""A real worker death that reaches the driver only as a peer's follow-up error: the CLI's
last line still names the death (found by ``Cluster.shutdown``)."""

from __future__ import annotations

import os
import pathlib
import signal
import subprocess
import sys

DRIVER = pathlib.Path(__file__).with_name("failure_driver.py")


def test_last_line_names_the_killed_worker_not_the_follow_up_error():
    env = {**os.environ, "RAY_ENABLE_UV_RUN_RUNTIME_ENV": "0", "RAY_AUTH_MODE": "disabled"}
    driver = subprocess.Popen(
        [sys.executable, str(DRIVER)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    pid = None
    try:
        line = driver.stdout.readline()
        assert line.strip().isdigit(), driver.communicate(timeout=180)[1][-3000:]
        pid = int(line)
        os.kill(pid, signal.SIGKILL)
        _, err = driver.communicate(timeout=180)
    finally:
        if driver.poll() is None:
            os.killpg(driver.pid, signal.SIGKILL)
            driver.wait()
    lines = err.splitlines()
    assert driver.returncode == 1, err[-3000:]
    # The traceback ends on the server's error; the line after it names the cause.
    assert "ConnectionError: server rank 0: env closed its connection" in err
    assert lines[-1] == (
        "failure-driver: error: WorkerDied: worker group 'env' rank 0 died: found dead at shutdown"
    )

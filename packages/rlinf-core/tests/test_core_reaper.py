"""ProcessReaper: what a driver started ends with it, even when the driver is SIGKILLed."""

from __future__ import annotations

import json
import os
import pathlib
import signal
import subprocess
import sys
import time

import psutil
import pytest

DRIVER = pathlib.Path(__file__).with_name("reaper_driver.py")


def _alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def _wait_gone(pids: list[int], timeout: float) -> list[int]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        left = [p for p in pids if _alive(p)]
        if not left:
            return []
        time.sleep(0.2)
    return [p for p in pids if _alive(p)]


def _start(mode: str) -> tuple[subprocess.Popen[str], dict]:
    driver = subprocess.Popen(
        [sys.executable, str(DRIVER), mode],
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    line = driver.stdout.readline()
    assert line, "the driver ended before printing its pids"
    return driver, json.loads(line)


def _cleanup(driver: subprocess.Popen[str], info: dict | None) -> None:
    pids = [] if info is None else [info["before"], info["reaper"], *info["tree"]]
    for pid in [driver.pid, *pids]:
        if _alive(pid):
            os.kill(pid, signal.SIGKILL)
    driver.wait()


@pytest.mark.parametrize("how", ["sigkill", "reap"])
def test_reaper_ends_the_tree_started_after_it(how):
    driver, info = _start("kill" if how == "sigkill" else "reap")
    try:
        tree = info["tree"]
        assert len(tree) == 4 and all(_alive(p) for p in tree)
        # The orphan's parent has exited: it no longer is the driver's descendant.
        driver_tree = {p.pid for p in psutil.Process(driver.pid).children(recursive=True)}
        assert tree[-1] not in driver_tree
        if how == "sigkill":
            driver.kill()
            driver.wait()
        else:
            assert driver.stdout.readline().strip() == "reaped"
        # The root ignores SIGTERM: it takes the SIGKILL after the grace period.
        assert _wait_gone([*tree, info["reaper"]], timeout=15) == []
        # A child the driver had before the reaper started is not Ray's: left alone.
        assert _alive(info["before"])
        assert how == "sigkill" or _alive(driver.pid)
    finally:
        _cleanup(driver, info)

"""Driver run by test_core_reaper.py in its own process: stands in for ``ray.init()`` with
a process tree that is hard to end, hands it to a ProcessReaper, prints the pids.

``python reaper_driver.py kill``: then waits to be killed; ``... reap``: then calls
``reap()`` and waits. Printed JSON: ``{"before": pid, "reaper": pid, "tree": [pids]}``.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time

from rlinf.core._reaper import POLL_S, ProcessReaper

SLEEP = "import time; time.sleep(600)"

# Like Ray's agents: ignores SIGTERM, and starts processes of its own: one at once, one
# later (after the reaper was told the roots), and one through a parent that exits
# (orphaned, as a raylet's children are when it dies).
ROOT = f"""
import signal, subprocess, sys, time
signal.signal(signal.SIGTERM, signal.SIG_IGN)
kids = [subprocess.Popen([sys.executable, "-c", {SLEEP!r}])]
mid = subprocess.Popen(
    [sys.executable, "-c",
     "import subprocess, sys, time; "
     "p = subprocess.Popen([sys.executable, '-c', {SLEEP!r}]); print(p.pid, flush=True); "
     "time.sleep({4 * POLL_S})"],
    stdout=subprocess.PIPE, text=True,
)
orphan = int(mid.stdout.readline())
time.sleep({2 * POLL_S})
kids.append(subprocess.Popen([sys.executable, "-c", {SLEEP!r}]))
print(" ".join(str(p) for p in [*(k.pid for k in kids), orphan]), flush=True)
mid.wait()
time.sleep(600)
"""


def main(mode: str) -> None:
    before = subprocess.Popen([sys.executable, "-c", SLEEP])  # not Ray's: must survive
    reaper = ProcessReaper.start()
    started = ProcessReaper.children()
    root = subprocess.Popen([sys.executable, "-c", ROOT], stdout=subprocess.PIPE, text=True)
    reaper.watch(ProcessReaper.children() - started)
    tree = [root.pid, *map(int, root.stdout.readline().split())]
    # Let the orphan lose its parent and the reaper see the late child.
    time.sleep(6 * POLL_S)
    print(json.dumps({"before": before.pid, "reaper": reaper.pid, "tree": tree}), flush=True)
    if mode == "reap":
        reaper.reap()
        print("reaped", flush=True)
    time.sleep(600)


if __name__ == "__main__":
    main(sys.argv[1])

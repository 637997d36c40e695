"""Driver run by test_core_failure.py in its own process: an app-like CLI (``run_cli``)
whose ``server`` rank fails because its peer, the ``env`` rank, is SIGKILLed by the test.

Prints the env rank's pid once the two are connected; the test kills it. The driver only
ever waits on the server, so the death reaches it as nothing but the server's follow-up
``ConnectionError``: as when a flow waits on a rollout rank whose env worker died.
"""

from __future__ import annotations

import argparse
import os
import sys
from multiprocessing.connection import Client, Connection, Listener

from rlinf.core import Cluster, ClusterConfig, Worker, run_cli


class Peer(Worker):
    def pid(self) -> int:
        return os.getpid()

    def listen(self) -> tuple[str, int]:
        self._listener = Listener(("127.0.0.1", 0))
        return self._listener.address

    def connect(self, address: tuple[str, int]) -> None:
        # Returns once the kernel queued the connection; the server accepts it later.
        self._conn: Connection = Client(address)

    def serve(self) -> object:
        conn = self._listener.accept()
        try:
            return conn.recv()
        except (EOFError, OSError) as e:
            raise ConnectionError(f"server rank {self.rank}: env closed its connection") from e


def _command(args: argparse.Namespace) -> None:
    config = ClusterConfig(num_cpus=2, num_gpus=0, devices_per_node=2, object_store_memory=10**8)
    with Cluster(config) as cluster:
        pgs = cluster.allocate({"env": "0", "server": "1"})
        env = cluster.launch(Peer, pgs, "env")
        server = cluster.launch(Peer, pgs, "server")
        address = server.call("listen").wait(180)[0]
        env.call("connect", address).wait(180)
        serving = server.call("serve")
        print(env.call("pid").wait(180)[0], flush=True)
        serving.wait(120)


if __name__ == "__main__":
    sys.exit(
        run_cli("failure_driver", argparse.ArgumentParser(prog="failure-driver"), _command, [])
    )

"""Driver run by test_core_multinode.py in its own process: joins the two-node cluster,
launches a group spanning both nodes and exchanges tensors between them."""

from __future__ import annotations

import json
import sys
import time

import ray
import torch

from rlinf.core import Cluster, ClusterConfig, Worker


class Ping(Worker):
    def where(self) -> str:
        return ray.get_runtime_context().get_node_id()

    def exchange(self, n: int) -> list[float]:
        mine = torch.arange(n, dtype=torch.float32) * (self.rank + 1)
        peer = 1 - self.rank
        if self.rank == 0:
            self.send(mine, self.group_name, peer)
            got = self.recv(self.group_name, peer)
        else:
            got = self.recv(self.group_name, peer)
            self.send(mine, self.group_name, peer)
        return got.tolist()

    def bcast(self, n: int) -> list[float]:
        obj = {"w": torch.full((n,), 7.0)} if self.rank == 0 else None
        return self.broadcast(obj, src=(self.group_name, 0), dsts=[(self.group_name, 1)])[
            "w"
        ].tolist()


def main(address: str, temp_dir: str) -> None:
    # A driver finds its local node by scanning the session folders under its temp dir;
    # with Ray's default one it would also find the nodes of any other cluster running on
    # this machine and time out asking our GCS about them.
    ray.init(
        address=address,
        _node_ip_address="127.0.0.1",
        _temp_dir=temp_dir,
        namespace=ClusterConfig().namespace,
    )
    cluster = Cluster(
        ClusterConfig(address=address, devices_per_node=1, node_groups={"b": "rlinf_node_b"})
    )
    try:
        # The second node may still be joining; the node group needs it to be there.
        deadline = time.monotonic() + 120
        while sum(n["Alive"] for n in ray.nodes()) < 2 and time.monotonic() < deadline:
            time.sleep(0.5)
        topo = cluster.topology
        pgs = cluster.allocate({"ping": "0-1"})
        group = cluster.launch(Ping, pgs, "ping")
        out = {
            "num_nodes": topo.num_nodes,
            "node_ids": [n.node_id for n in topo.nodes],
            "group_b_nodes": list(topo.node_groups["b"]),
            "rank_nodes": group.call("where").wait(timeout=120),
            "exchange": group.call("exchange", 6).wait(timeout=120),
            "bcast": group.call("bcast", 3).wait(timeout=120),
        }
        print("RESULT " + json.dumps(out), flush=True)
    finally:
        cluster.shutdown()


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])

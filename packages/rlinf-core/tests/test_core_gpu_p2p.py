"""NCCL send/recv and broadcast between workers on different GPUs (needs two CUDA devices).

Runs in a subprocess with its own Ray, because the other core tests share a CPU-only
cluster; two ranks cannot share one GPU under NCCL, hence the device count check.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

SCRIPT = textwrap.dedent(
    """
    import torch
    from rlinf.core import Cluster, ClusterConfig, Worker

    N = 1 << 20

    class Peer(Worker):
        def send_cuda(self):
            self.send(torch.arange(N, device=self.device, dtype=torch.float32), "gpu_b", 0)

        def recv_cuda(self):
            tensor = self.recv("gpu_a", 0)
            return tensor.device.type, tensor.cpu()

        def bcast(self):
            mine = self.group_name == "gpu_a"
            obj = {"w": torch.full((N,), 3.0, device=self.device)} if mine else None
            out = self.broadcast(obj, src=("gpu_a", 0), dsts=[("gpu_b", 0)])
            return out["w"].device.type, out["w"].cpu()

    with Cluster(ClusterConfig(num_cpus=4, num_gpus=2)) as cluster:
        pgs = cluster.allocate({"gpu_a": "0", "gpu_b": "1"})
        a = cluster.launch(Peer, pgs, "gpu_a")
        b = cluster.launch(Peer, pgs, "gpu_b")
        sent = a.call("send_cuda")
        device, got = b.call("recv_cuda").wait(timeout=300)[0]
        sent.wait(timeout=300)
        assert device == "cuda", device
        assert torch.equal(got, torch.arange(N, dtype=torch.float32))
        results = [a.call("bcast"), b.call("bcast")]
        for future in results:
            device, w = future.wait(timeout=300)[0]
            assert device == "cuda", device
            assert torch.equal(w, torch.full((N,), 3.0))
    print("nccl ok")
    """
)


@pytest.mark.gpu
def test_nccl_send_recv_and_broadcast_between_gpus(tmp_path):
    import torch

    if torch.cuda.device_count() < 2:
        pytest.skip("needs two CUDA devices: NCCL ranks cannot share one GPU")
    script = tmp_path / "nccl_p2p.py"
    script.write_text(SCRIPT)
    result = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=900, check=False
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-5000:]
    assert "nccl ok" in result.stdout

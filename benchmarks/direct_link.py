"""Round trip of one env <-> policy step: rlinf.channel.DirectLink vs the raw socket it
replaced (``multiprocessing.connection`` on a TCP socket with a token sent first, the code
the env and rollout workers had before).

Both are measured in the same run between this process and one child process on the same
machine, on a CartPole-shaped request (obs ``[n, 4]`` float32 and the final-obs rows) and
reply (actions ``[n]``, log-probs and values ``[n]``). Prints the median microseconds per
round trip and the ratio link / raw (goal: <= 1.1).

    uv run python benchmarks/direct_link.py --envs 8 --steps 5000
"""

from __future__ import annotations

import argparse
import contextlib
import multiprocessing as mp
import secrets
import socket
import statistics
import time
from multiprocessing.connection import Connection

import numpy as np

from rlinf.channel import DirectLink, LinkClosed, LinkListener


def _reply(request: dict) -> dict:
    n = len(request["obs"]["state"])
    return {
        "action": np.zeros(n, np.int64),
        "record": {"log_probs": np.zeros(n, np.float32), "values": np.zeros(n, np.float32)},
        "record_prev": {"next_values": np.zeros(n, np.float32)},
    }


def _serve_link(listener: LinkListener, steps: int) -> None:
    (link,) = listener.accept(1, timeout=60)
    for _ in range(steps):
        link.send(_reply(link.recv()))
    with contextlib.suppress(LinkClosed):  # wait for the client's goodbye
        link.recv(timeout=60)


def _serve_raw(server: socket.socket, token: bytes, steps: int) -> None:
    sock, _ = server.accept()
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    conn = Connection(sock.detach())
    assert conn.recv_bytes() == token
    conn.recv()
    for _ in range(steps):
        conn.send(_reply(conn.recv()))


def _request(n: int, rng: np.random.Generator) -> dict:
    index = np.array([0])
    rows = {"state": rng.normal(size=(1, 4)).astype(np.float32)}
    return {"obs": {"state": rng.normal(size=(n, 4)).astype(np.float32)}, "final": (index, rows)}


def _time(round_trip, steps: int, n: int) -> float:
    rng = np.random.default_rng(0)
    req = _request(n, rng)
    times = []
    for _ in range(steps):
        start = time.perf_counter()
        round_trip(req)
        times.append(time.perf_counter() - start)
    return statistics.median(times[steps // 10 :]) * 1e6


def bench_link(n: int, steps: int) -> float:
    listener = LinkListener("bench")
    child = mp.get_context("fork").Process(target=_serve_link, args=(listener, steps))
    child.start()
    with DirectLink.connect(listener.address, name="env") as link:
        us = _time(lambda req: link.request(req, timeout=60), steps, n)
    child.join(60)
    listener.close()
    return us


def bench_raw(n: int, steps: int) -> float:
    token = secrets.token_bytes(32)
    server = socket.create_server(("127.0.0.1", 0))
    child = mp.get_context("fork").Process(target=_serve_raw, args=(server, token, steps))
    child.start()
    sock = socket.create_connection(server.getsockname()[:2])
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    conn = Connection(sock.detach())
    conn.send_bytes(token)
    conn.send(("env", 0, 0))

    def round_trip(req: dict) -> dict:
        conn.send(req)
        return conn.recv()

    us = _time(round_trip, steps, n)
    conn.close()
    child.join(60)
    server.close()
    return us


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--envs", type=int, nargs="+", default=[8, 256])
    parser.add_argument("--steps", type=int, default=5000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    print(f"{'envs':>5} {'DirectLink us':>14} {'raw socket us':>14} {'ratio':>6}")
    for n in args.envs:
        # Alternate the two, best of repeats: the machine is shared, noise only adds time.
        links, raws = [], []
        for _ in range(args.repeats):
            links.append(bench_link(n, args.steps))
            raws.append(bench_raw(n, args.steps))
        link, raw = min(links), min(raws)
        print(f"{n:>5} {link:>14.1f} {raw:>14.1f} {link / raw:>6.2f}")


if __name__ == "__main__":
    main()

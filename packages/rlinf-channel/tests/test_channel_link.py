"""Conformance of DirectLink / LinkListener: handshake, request/reply order, timeouts,
close, peer death and many peers served at once. No Ray: links are plain processes' TCP."""

from __future__ import annotations

import pickle
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

from rlinf.channel import (
    DirectLink,
    LinkAddress,
    LinkClosed,
    LinkListener,
    LinkRefused,
    LinkTimeout,
    PeerDied,
    wait_links,
)


def _pair(name: str = "client") -> tuple[LinkListener, DirectLink, DirectLink]:
    """A listener, a client link to it and the listener's side of that link."""
    listener = LinkListener("server")
    box: list[DirectLink] = []
    thread = threading.Thread(
        target=lambda: box.append(DirectLink.connect(listener.address, name=name))
    )
    thread.start()
    (served,) = listener.accept(1, timeout=10)
    thread.join(10)
    return listener, box[0], served


def test_request_reply_keeps_order_and_arrays():
    listener, client, served = _pair()
    try:
        assert (client.peer, served.peer) == ("server", "client")
        # Several requests in flight before the server reads any: replies come in order.
        for i in range(3):
            client.send({"i": i, "obs": np.full((2, 3), i, np.float32)})
        for _ in range(3):
            req = served.recv(timeout=5)
            served.send({"i": req["i"], "sum": float(req["obs"].sum())})
        assert [client.recv(timeout=5) for _ in range(3)] == [
            {"i": 0, "sum": 0.0},
            {"i": 1, "sum": 6.0},
            {"i": 2, "sum": 12.0},
        ]
        served.send("pong")
        assert client.request("ping", timeout=5) == "pong"
        assert served.recv(timeout=5) == "ping"
    finally:
        client.close()
        served.close()
        listener.close()


def test_wrong_token_is_refused_and_not_counted():
    listener = LinkListener("server")
    wrong = LinkAddress(listener.address.host, listener.address.port, b"x" * 32, "server")
    errors: list[BaseException] = []
    links: list[DirectLink] = []

    def stranger() -> None:
        try:
            DirectLink.connect(wrong, name="stranger", timeout=10)
        except LinkRefused as e:
            errors.append(e)

    def friend() -> None:
        time.sleep(0.3)  # after the stranger
        links.append(DirectLink.connect(listener.address, name="friend", timeout=10))

    threads = [threading.Thread(target=stranger), threading.Thread(target=friend)]
    for t in threads:
        t.start()
    try:
        (served,) = listener.accept(1, timeout=10)
        for t in threads:
            t.join(10)
        assert served.peer == "friend"
        assert len(errors) == 1 and "refused" in str(errors[0])
        assert "stranger" in str(errors[0]) and "'server'" in str(errors[0])
        assert "x" * 32 not in repr(wrong)  # the token never shows in logs
    finally:
        listener.close()
        for link in links:
            link.close()


def test_connect_to_nothing_and_accept_timeout_and_short_token():
    listener = LinkListener("server")
    address = listener.address
    with pytest.raises(LinkTimeout, match=r"0 of 2 peers connected within 0\.2 s"):
        listener.accept(2, timeout=0.2)
    listener.close()
    with pytest.raises(LinkClosed, match="closed"):
        listener.accept(1)
    with pytest.raises(LinkRefused, match="cannot connect"):
        DirectLink.connect(address, name="late", timeout=2)
    with pytest.raises(ValueError, match="at least 16 bytes"):
        LinkListener(token=b"short")


def test_recv_timeout_names_the_peer_and_leaves_the_link_usable():
    listener, client, served = _pair("env 3")
    try:
        with pytest.raises(LinkTimeout, match=r"peer 'env 3'.*within 0.2 s") as info:
            served.recv(timeout=0.2)
        assert isinstance(info.value, TimeoutError)
        client.send(7)
        assert served.recv(timeout=5) == 7
    finally:
        client.close()
        served.close()
        listener.close()


def test_close_says_goodbye_and_is_idempotent():
    listener, client, served = _pair()
    client.send("last words")
    client.close()
    client.close()
    assert client.closed
    with pytest.raises(LinkClosed, match="the link is closed"):
        client.send("more")
    # Messages sent before the goodbye are still delivered, then the close is reported.
    assert served.recv(timeout=5) == "last words"
    with pytest.raises(LinkClosed, match=r"peer 'client'.*closed the link"):
        served.recv(timeout=5)
    assert served.closed
    listener.close()


_DOOMED = """
import os, pickle, signal, sys
from rlinf.channel import DirectLink
link = DirectLink.connect(pickle.loads(bytes.fromhex(sys.argv[1])), name="doomed", timeout=30)
link.send("hello")
link.recv(timeout=30)  # wait for the go-ahead, then die without a goodbye
os.kill(os.getpid(), signal.SIGKILL)
"""


def test_peer_death_raises_peer_died_naming_the_peer():
    listener = LinkListener("server")
    proc = subprocess.Popen([sys.executable, "-c", _DOOMED, pickle.dumps(listener.address).hex()])
    try:
        (served,) = listener.accept(1, timeout=60)
        assert served.recv(timeout=30) == "hello"
        served.send("go")
        with pytest.raises(PeerDied, match=r"peer 'doomed'.*failed or died") as info:
            served.recv(timeout=30)
        assert isinstance(info.value, ConnectionError)
        assert served.closed
        with pytest.raises(LinkClosed):
            served.send("anyone?")
    finally:
        proc.wait(30)
        listener.close()
    assert proc.returncode == -9


def test_many_peers_served_through_wait_links():
    listener = LinkListener("server")
    peers, rounds = 8, 25
    results: dict[int, list[int]] = {}

    def client(i: int) -> None:
        with DirectLink.connect(listener.address, name=f"peer {i}") as link:
            results[i] = [link.request((i, r), timeout=30) for r in range(rounds)]

    threads = [threading.Thread(target=client, args=(i,)) for i in range(peers)]
    for t in threads:
        t.start()
    links = listener.accept(peers, timeout=30)
    assert sorted(link.peer for link in links) == sorted(f"peer {i}" for i in range(peers))
    answered, open_links = 0, list(links)
    while open_links:
        for link in wait_links(open_links, timeout=30):
            try:
                i, r = link.recv()
            except LinkClosed:  # this client is done and said goodbye
                open_links.remove(link)
                continue
            assert link.peer == f"peer {i}"  # each request arrives on its own peer's link
            link.send(1000 * i + r)
            answered += 1
    for t in threads:
        t.join(30)
    listener.close()
    assert answered == peers * rounds
    assert results == {i: [1000 * i + r for r in range(rounds)] for i in range(peers)}


def test_readme_link_example_runs(tmp_path):
    import re
    from pathlib import Path

    readme = Path(__file__).resolve().parents[1] / "README.md"
    blocks = re.findall(r"```python\n(.*?)```", readme.read_text(), flags=re.DOTALL)
    (block,) = [b for b in blocks if "LinkListener" in b]
    script = tmp_path / "link_example.py"
    script.write_text(block)
    result = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "['env 0', 'env 1']" in result.stdout
    assert "link 'impatient' <-> peer 'quiet': nothing from the peer within 0.2 s" in result.stdout

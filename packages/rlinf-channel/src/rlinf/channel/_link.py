"""Direct links: authenticated request/reply connections between two processes.

A channel moves items through a hosting actor and the object store; that costs several Ray
calls per item, far too much for lockstep exchanges such as env <-> policy once per step.
A direct link is one TCP connection between the two processes: a message is a length-framed
pickle (``multiprocessing.connection`` framing) and a request/reply round trip is one
message each way, with no third process on the path.

Set-up: the serving side opens a :class:`LinkListener`; its :attr:`LinkListener.address`
(host, port, secret token; it pickles, so pass it to the peers through Ray or any other
way) is what a peer gives :meth:`DirectLink.connect`. The peer first sends the token (a
stray process cannot feed pickles to the listener) and its name; the listener answers with
its own name, or drops the connection on a wrong token, which the peer sees as
:class:`LinkRefused`.

Failures name the peer: :class:`LinkTimeout` (nothing arrived in time), :class:`PeerDied`
(the connection broke: the peer process failed, died or was killed), :class:`LinkClosed`
(this side closed the link, or the peer closed it on purpose with :meth:`DirectLink.close`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import hmac
import pickle
import socket
import time
from collections.abc import Iterable
from multiprocessing.connection import Connection, wait
from typing import Any, Generic, TypeVar

__all__ = [
    "DirectLink",
    "LinkAddress",
    "LinkClosed",
    "LinkError",
    "LinkListener",
    "LinkRefused",
    "LinkTimeout",
    "PeerDied",
    "wait_links",
]

SendT = TypeVar("SendT")
RecvT = TypeVar("RecvT")

_BYE = b""  # the goodbye frame: a pickle is never empty, so it cannot be mistaken for one
_MIN_TOKEN = 16
_HANDSHAKE_S = 10.0


class LinkError(Exception):
    """Base class of every error a direct link raises."""


class LinkClosed(LinkError):
    """The link was closed, by this side or by the peer on purpose."""


class LinkTimeout(LinkError, TimeoutError):
    """Nothing arrived from the peer within the timeout."""


class PeerDied(LinkError, ConnectionError):
    """The connection broke without a goodbye: the peer process failed or died."""


class LinkRefused(LinkError, ConnectionError):
    """The listener could not be reached or refused the token."""


@dataclasses.dataclass(frozen=True)
class LinkAddress:
    """Where and how to reach a :class:`LinkListener`.

    Attributes:
        host: the listener's IP address or host name.
        port: its TCP port.
        token: the secret a peer must present (not shown in ``repr``).
        name: the listener's name, used in errors before the handshake answers.
    """

    host: str
    port: int
    token: bytes = dataclasses.field(repr=False)
    name: str = "listener"


class DirectLink(Generic[SendT, RecvT]):
    """One end of an authenticated connection; sends ``SendT`` messages, receives ``RecvT``.

    Messages are any picklable objects (numpy arrays included); each side may send several
    before the other receives, and messages arrive in the order sent. Made by
    :meth:`connect` (client side) or :meth:`LinkListener.accept` (serving side).

    Args:
        conn: the authenticated connection.
        name: this end's name; peer: the other end's name (both appear in errors).
    """

    def __init__(self, conn: Connection, *, name: str, peer: str) -> None:
        self._conn: Connection | None = conn
        self.name = name
        self.peer = peer

    @classmethod
    def connect(
        cls, address: LinkAddress, *, name: str, timeout: float = 30.0
    ) -> DirectLink[SendT, RecvT]:
        """Connect to the listener at ``address`` and authenticate as ``name``.

        Raises:
            LinkRefused: nothing listens there, or it refused the token.
            LinkTimeout: the listener did not answer the handshake within ``timeout``.
        """
        where = f"link {name!r} -> {address.name!r} at {address.host}:{address.port}"
        try:
            sock = socket.create_connection((address.host, address.port), timeout=timeout)
        except OSError as e:
            raise LinkRefused(f"{where}: cannot connect: {e}") from e
        conn = _wrap(sock)
        try:
            conn.send_bytes(address.token)
            conn.send_bytes(pickle.dumps(name))
            if not conn.poll(timeout):
                conn.close()
                raise LinkTimeout(f"{where}: no handshake answer within {timeout} s")
            peer = pickle.loads(conn.recv_bytes())
        except (EOFError, OSError) as e:
            conn.close()
            raise LinkRefused(f"{where}: the listener refused the connection (wrong token?)") from e
        return cls(conn, name=name, peer=str(peer))

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` was called (or the peer said goodbye)."""
        return self._conn is None

    def fileno(self) -> int:
        """The socket's file descriptor (lets :func:`wait_links` wait on many links)."""
        return self._live().fileno()

    def send(self, message: SendT) -> None:
        """Send ``message`` (never blocks for the peer to receive it unless the socket's
        buffer is full).

        Raises:
            LinkClosed: the link was closed.
            PeerDied: the connection broke.
        """
        conn = self._live()
        try:
            conn.send_bytes(pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL))
        except OSError as e:
            self._drop()
            raise PeerDied(f"{self._where()}: the peer went away while sending: {e}") from e

    def poll(self, timeout: float = 0.0) -> bool:
        """Whether a message (or the peer's goodbye or death) is ready within ``timeout``."""
        return self._live().poll(timeout)

    def recv(self, timeout: float | None = None) -> RecvT:
        """The next message; waits at most ``timeout`` seconds (None: forever).

        Raises:
            LinkTimeout: nothing arrived in time (the link stays usable).
            LinkClosed: the link was closed, or the peer closed it on purpose.
            PeerDied: the peer failed or died (the connection broke without a goodbye).
        """
        conn = self._live()
        try:
            ready = timeout is None or conn.poll(timeout)
            frame = conn.recv_bytes() if ready else None
        except (EOFError, OSError) as e:
            self._drop()
            raise PeerDied(
                f"{self._where()}: the peer closed the connection without a goodbye (it "
                f"failed or died; its own error says why): {type(e).__name__} {e}".rstrip()
            ) from e
        if frame is None:
            raise LinkTimeout(f"{self._where()}: nothing from the peer within {timeout} s")
        if frame == _BYE:
            self._drop()
            raise LinkClosed(f"{self._where()}: the peer closed the link")
        return pickle.loads(frame)

    def request(self, message: SendT, timeout: float | None = None) -> RecvT:
        """Send ``message`` and wait for the peer's reply: one round trip."""
        self.send(message)
        return self.recv(timeout)

    def close(self) -> None:
        """Say goodbye to the peer (its next ``recv`` raises :class:`LinkClosed`) and close.
        Idempotent."""
        conn, self._conn = self._conn, None
        if conn is None:
            return
        # OSError: the peer is gone already, nobody to tell.
        with contextlib.suppress(OSError):
            conn.send_bytes(_BYE)
        conn.close()

    def __enter__(self) -> DirectLink[SendT, RecvT]:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self.closed else "open"
        return f"DirectLink({self.name!r} <-> {self.peer!r}, {state})"

    def _where(self) -> str:
        return f"link {self.name!r} <-> peer {self.peer!r}"

    def _live(self) -> Connection:
        if self._conn is None:
            raise LinkClosed(f"{self._where()}: the link is closed")
        return self._conn

    def _drop(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()


class LinkListener:
    """Accepts authenticated :class:`DirectLink`\\ s on a TCP port.

    Args:
        name: this side's name (each accepted link's ``name``; peers see it as their
            ``peer``).
        token: the secret peers must present (at least 16 bytes); None: a random one.
        host: address to listen on (``"127.0.0.1"`` for this machine only; a Ray worker
            would give ``ray.util.get_node_ip_address()``).
        port: 0 picks a free port.
    """

    def __init__(
        self,
        name: str = "listener",
        *,
        token: bytes | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        import secrets

        token = secrets.token_bytes(32) if token is None else bytes(token)
        if len(token) < _MIN_TOKEN:
            raise ValueError(f"a link token must have at least {_MIN_TOKEN} bytes")
        self.name = name
        self._sock: socket.socket | None = socket.create_server((host, port), backlog=128)
        bound = self._sock.getsockname()
        self.address = LinkAddress(bound[0], bound[1], token, name)

    def accept(self, count: int = 1, timeout: float = 30.0) -> list[DirectLink[Any, Any]]:
        """Wait until ``count`` peers connected with the right token; returns their links in
        arrival order. Connections with a wrong token (or none) are dropped and not counted.

        Raises:
            LinkTimeout: fewer than ``count`` peers authenticated within ``timeout``.
            LinkClosed: the listener is closed.
        """
        if self._sock is None:
            raise LinkClosed(f"listener {self.name!r} is closed")
        links: list[DirectLink[Any, Any]] = []
        deadline = time.monotonic() + timeout
        while len(links) < count:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                for link in links:
                    link.close()
                raise LinkTimeout(
                    f"listener {self.name!r}: {len(links)} of {count} peers connected within "
                    f"{timeout} s"
                )
            self._sock.settimeout(remaining)
            try:
                sock, _ = self._sock.accept()
            except TimeoutError:
                continue
            # A peer gets a bounded time to authenticate, so a silent stranger cannot hold
            # up the peers behind it until the deadline.
            link = self._handshake(_wrap(sock), min(remaining, _HANDSHAKE_S))
            if link is not None:
                links.append(link)
        return links

    def close(self) -> None:
        """Stop listening (links already accepted stay open). Idempotent."""
        sock, self._sock = self._sock, None
        if sock is not None:
            sock.close()

    def __enter__(self) -> LinkListener:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _handshake(self, conn: Connection, timeout: float) -> DirectLink[Any, Any] | None:
        token = self.address.token
        try:
            ok = conn.poll(timeout) and hmac.compare_digest(
                conn.recv_bytes(maxlength=len(token)), token
            )
            if ok and conn.poll(timeout):
                peer = str(pickle.loads(conn.recv_bytes()))
                conn.send_bytes(pickle.dumps(self.name))
                return DirectLink(conn, name=self.name, peer=peer)
        except (EOFError, OSError, pickle.UnpicklingError):
            pass  # a wrong-length token, a peer that gave up: not one of ours
        conn.close()
        return None


def wait_links(
    links: Iterable[DirectLink[Any, Any]], timeout: float | None = None
) -> list[DirectLink[Any, Any]]:
    """The links (of ``links``, in their order) that have a message, a goodbye or a broken
    connection ready within ``timeout`` seconds; empty on timeout. ``recv`` on each of them
    returns at once (or raises)."""
    live = list(links)
    ready = set(wait([link._live() for link in live], timeout))
    return [link for link in live if link._conn in ready]


def _wrap(sock: socket.socket) -> Connection:
    # Small messages must leave at once, not wait for Nagle's algorithm to batch them.
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.settimeout(None)
    return Connection(sock.detach())

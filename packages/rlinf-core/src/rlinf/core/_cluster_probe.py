"""What a running Ray cluster holds, asked before an app starts anything on it.

An app joining a cluster (``cluster.address``) checks its placement against the cluster's
real nodes while its config is loaded, so that a spec naming devices or a node group the
cluster lacks fails before any run directory, placement group or worker exists.
"""

from __future__ import annotations

import socket

from rlinf.sched import PlacementError, Topology

from ._cluster_config import ClusterConfig
from ._config import ConfigError
from ._signals import keep_signal_handlers

__all__ = ["check_reachable", "joined_topology"]


def check_reachable(address: str, timeout_s: float = 10.0) -> None:
    """Fail fast unless something listens at ``address`` (``"host:port"``; ``"auto"`` is
    left to Ray, which reads the local cluster's address file and fails at once).

    Ray's own ``init`` retries an unreachable address for minutes; a refused or silent
    port here is a clear error within ``timeout_s``.

    Raises:
        ConfigError: naming ``cluster.address``: malformed, or no answer.
    """
    if address == "auto":
        return
    if "://" in address:
        raise ConfigError(
            f"cluster.address: {address!r} is a client URL; give the head's 'host:port' "
            "(as `ray start --head` prints it) or 'auto'"
        )
    host, sep, port = address.rpartition(":")
    if not sep or not host or not port.isdigit():
        raise ConfigError(f"cluster.address: {address!r} is not 'auto' or 'host:port'")
    try:
        with socket.create_connection((host, int(port)), timeout=timeout_s):
            pass
    except OSError as e:
        raise ConfigError(
            f"cluster.address: no Ray cluster answers at {address} ({e}); start one with "
            "`ray start --head --port <port>` on the head node"
        ) from e


def joined_topology(config: ClusterConfig) -> Topology:
    """The alive nodes of the cluster at ``config.address`` and its node groups
    (:meth:`rlinf.sched.Topology.from_ray` with ``config``'s device counting).

    Connects as a Ray driver for the question and disconnects again, unless this process
    is connected already (then it asks through that connection and stays connected).

    Raises:
        ConfigError: naming ``cluster.address`` (cannot join) or ``cluster.node_groups``
            (a group names a node or resource the cluster lacks).
    """
    if config.address is not None:
        check_reachable(config.address)
    import ray  # only here: loading a config without an address imports no Ray

    def ask() -> Topology:
        try:
            return Topology.from_ray(
                devices_per_node=config.devices_per_node,
                cpus_per_device=config.cpus_per_device,
                node_groups=config.node_groups,
            )
        except PlacementError as e:
            raise ConfigError(f"cluster.node_groups: {e}") from e

    if ray.is_initialized():
        return ask()
    if config.address is None:
        raise ConfigError("cluster.address: no address given; nothing to join")
    try:
        # ray.init() replaces the SIGTERM handler; keep the CLI's (rlinf.core._signals).
        with keep_signal_handlers():
            ray.init(
                address=config.address,
                namespace=config.namespace,
                logging_level="ERROR",
                log_to_driver=False,
            )
    except (ConnectionError, RuntimeError, ValueError) as e:
        raise ConfigError(
            f"cluster.address: cannot join the Ray cluster at {config.address}: {e}"
        ) from e
    try:
        return ask()
    finally:
        ray.shutdown()

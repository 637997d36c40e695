"""Config pieces every app shares: the ``cluster`` section, preset lookup, placement checks."""

from __future__ import annotations

import os
import pathlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from typing import Any, Literal, TypeVar

from rlinf.sched import Placement, PlacementError, Topology

from ._backend import Backend, choose_backend
from ._cluster_config import ClusterConfig
from ._config import ConfigError, load_config

__all__ = [
    "ClusterSection",
    "RunnerSection",
    "find_preset",
    "load_app_config",
    "resolve_torch_threads",
    "validate_placement",
]

C = TypeVar("C")


@dataclass(frozen=True)
class ClusterSection:
    """The Ray cluster of an app run: a local one started for it, or a running one joined
    by ``address`` (CPU slots stand in for devices on nodes without GPUs).

    Placement indices number the devices of all nodes, node by node (head first; see
    :meth:`rlinf.sched.Topology.from_ray`); ``"<group>@<devices>"`` numbers them within a
    node group.

    Attributes:
        num_cpus: CPUs a locally started Ray may use (``None``: all of the machine's);
            ignored with ``address``.
        devices: device slots per node when no node has GPUs; on a GPU cluster every GPU is
            a device and this is ignored.
        address: join a running Ray cluster instead of starting one (``"auto"`` or
            ``"host:port"`` of its head, as ``ray start --head`` prints); the placement is
            then checked against that cluster's nodes when the config is loaded.
        node_groups: named subsets of nodes for placement specs ``"<group>@<devices>"``:
            name -> node indices (``[1, 2]``), or name -> a Ray resource that the group's
            nodes have (``ray start --resources '{"<resource>": 1}'``; needs ``address``).
        backend: ``auto`` (default): a flow whose whole placement is one CPU slot with
            one rank per component runs in-process (every worker a thread of the driver's
            process, no Ray: seconds less to the first step on a laptop), where the flow
            supports it and no Ray runs in the process yet; anything else on Ray.
            ``ray``: always Ray actors. ``inprocess``: in-process or an error saying why
            not (see :func:`rlinf.core._backend.choose_backend`).
    """

    num_cpus: int | None = 2
    devices: int = 2
    address: str | None = None
    node_groups: Mapping[str, tuple[int, ...] | str] = field(default_factory=dict)
    backend: Literal["auto", "ray", "inprocess"] = "auto"

    def __post_init__(self) -> None:
        if self.backend not in ("auto", "ray", "inprocess"):
            raise ValueError(f"backend must be 'auto', 'ray' or 'inprocess', got {self.backend!r}")
        if self.backend == "inprocess" and self.address is not None:
            raise ValueError("backend 'inprocess' starts no cluster: it cannot join an address")
        if self.devices < 1:
            raise ValueError(f"devices must be >= 1, got {self.devices}")
        if self.address is not None and not self.address.strip():
            raise ValueError("address must be 'auto' or 'host:port', got an empty string")
        for name, sel in self.node_groups.items():
            if isinstance(sel, str) and self.address is None:
                raise ValueError(
                    f"node_groups.{name}: a group by Ray resource ({sel!r}) needs a joined "
                    "cluster (cluster.address); a locally started Ray has one node: use [0]"
                )

    def cores_per_slot(self) -> int:
        """Cores behind each device slot: ``num_cpus`` (or the machine's) over ``devices``.

        Joining a running cluster (``address``), this machine's core count stands in for
        the node's."""
        cores = (self.num_cpus if self.address is None else None) or os.cpu_count() or 1
        return max(1, cores // self.devices)

    def cluster_config(self, backend: Backend = "ray") -> ClusterConfig:
        """The :class:`~rlinf.core.ClusterConfig` that starts (or joins) this cluster, on
        ``backend`` (:meth:`choose_backend`'s answer)."""
        return ClusterConfig(
            address=self.address,
            num_cpus=self.num_cpus,
            devices_per_node=self.devices,
            node_groups=dict(self.node_groups),
            backend=backend,
        )

    def choose_backend(
        self,
        placement: Mapping[str, str | int],
        components: Sequence[str],
        *,
        unsupported: str | None = None,
    ) -> Backend:
        """The backend a flow with this placement runs on (see :attr:`backend`).

        Args:
            placement: the config's ``placement`` section.
            components: the flow's placed components.
            unsupported: why the calling flow cannot run in-process (None: it can).

        Raises:
            ConfigError: ``cluster.backend=inprocess`` where it cannot run, saying why.
        """
        if self.backend == "ray" or self.address is not None:
            return "ray"  # __post_init__ refused inprocess with an address
        try:
            parsed = Placement.parse(dict(placement), self.topology(), components=components)
            return choose_backend(
                self.backend,
                parsed,
                address=None,
                gpu_visible=_gpu_visible(),
                unsupported=unsupported,
            )
        except (ValueError, PlacementError) as e:
            raise ConfigError(f"cluster.backend={self.backend}: {e}") from None

    def topology(self) -> Topology:
        """The devices placements are checked against: one node of ``devices`` slots for a
        local cluster (no Ray needed), or the nodes of the cluster at ``address`` as they
        are now (:func:`rlinf.core._cluster_probe.joined_topology`; imports Ray).

        Raises:
            ConfigError: naming ``cluster.address`` or ``cluster.node_groups``.
        """
        if self.address is None:
            try:
                return Topology.uniform(1, self.devices, node_groups=dict(self.node_groups))
            except PlacementError as e:
                raise ConfigError(f"cluster.node_groups: {e}") from e
        from ._cluster_probe import joined_topology

        return joined_topology(self.cluster_config())


def _gpu_visible() -> bool:
    import torch  # the flows that ask have loaded it already

    return torch.cuda.is_available()


@dataclass(frozen=True)
class RunnerSection:
    """What every app's ``runner`` section has; apps subclass it with their run length
    (and may redeclare a field to change its default, e.g. ``name``).

    Attributes:
        name: run name (suffix of the run directory).
        seed: seed of the run (initial weights, sampling, data order; see the app).
        checkpoint_every: save a checkpoint every this many updates (0: only at the end).
        runs_root: directory under which ``<timestamp>-<name>`` run directories are made.
        metric_backends: MetricLogger backends (``tensorboard``, ``jsonl``, ``wandb``,
            ``console``).
        torch_threads: intra-op torch threads per process, or ``"auto"``: the cores of one
            device slot (:meth:`ClusterSection.cores_per_slot`). Components placed on the
            same slot take turns in every flow, so each may use all of the slot's cores; on
            separate slots (disaggregated) they split the machine. Tiny MLP policies are
            often fastest with 1.
        timeout_s: longest wait for any worker or channel before the run fails.
        progress: show a tqdm progress bar.
        weight_sync: how weights go from the actor ranks to the rollout ranks:
            ``object_store`` (the actor's rank 0 puts one snapshot, each rollout rank
            fetches it), ``collective`` (bucketed broadcasts, gloo on CPU / NCCL on GPU,
            shards gathered bucket by bucket) or ``auto`` (collective when the actor has
            several ranks or the actor and rollout span several nodes).
        weight_sync_bucket_mb: bucket size (MiB) of the collective path: the most extra
            memory a sync takes per process (besides a tensor larger than a bucket).
    """

    name: str = "run"
    seed: int = 0
    checkpoint_every: int = 0
    runs_root: str = "runs"
    metric_backends: tuple[str, ...] = ("tensorboard", "jsonl")
    torch_threads: int | Literal["auto"] = "auto"
    timeout_s: float = 600.0
    progress: bool = True
    weight_sync: Literal["auto", "object_store", "collective"] = "auto"
    weight_sync_bucket_mb: float = 64.0

    @property
    def weight_sync_bucket_bytes(self) -> int:
        """``weight_sync_bucket_mb`` in bytes, as the weight-sync functions take it."""
        return int(self.weight_sync_bucket_mb * 1024**2)

    def __post_init__(self) -> None:
        object.__setattr__(self, "metric_backends", tuple(self.metric_backends))
        if self.weight_sync not in ("auto", "object_store", "collective"):
            raise ValueError(
                f"weight_sync must be auto, object_store or collective, got {self.weight_sync!r}"
            )
        if not self.weight_sync_bucket_mb >= 0.001:
            raise ValueError(
                f"weight_sync_bucket_mb must be >= 0.001, got {self.weight_sync_bucket_mb}"
            )
        if self.checkpoint_every < 0:
            raise ValueError(f"checkpoint_every must be >= 0, got {self.checkpoint_every}")
        if self.torch_threads != "auto" and self.torch_threads < 1:
            raise ValueError(f"torch_threads must be >= 1 or 'auto', got {self.torch_threads}")
        if not self.timeout_s > 0:
            raise ValueError(f"timeout_s must be > 0, got {self.timeout_s}")


def resolve_torch_threads(runner: RunnerSection, cluster: ClusterSection) -> int:
    """The intra-op thread count each worker process of a run uses (``"auto"`` resolved)."""
    if runner.torch_threads == "auto":
        return cluster.cores_per_slot()
    return runner.torch_threads


def find_preset(name_or_path: str | pathlib.Path, package: str) -> pathlib.Path:
    """A YAML path as is, or the preset ``<name>.yaml`` bundled in ``<package>/presets``.

    Raises:
        ConfigError: the file does not exist, or no preset has that name (the message lists
            the presets there are).
    """
    path = pathlib.Path(name_or_path)
    if path.suffix in (".yaml", ".yml") or path.exists():
        if not path.exists():
            raise ConfigError(f"config file {path} does not exist")
        return path
    presets = resources.files(package) / "presets"
    preset = presets / f"{name_or_path}.yaml"
    if not preset.is_file():
        names = sorted(
            p.name.removesuffix(".yaml") for p in presets.iterdir() if p.name.endswith(".yaml")
        )
        raise ConfigError(f"no preset named {name_or_path!r}; presets: {', '.join(names)}")
    return pathlib.Path(str(preset))


def validate_placement(
    placement: Mapping[str, str | int],
    devices: int | Topology,
    components: Sequence[str],
    *,
    single_process: Sequence[str] = (),
) -> Placement:
    """Parse an app's ``placement`` section before any worker starts.

    Args:
        placement: component -> device spec as in ``rlinf.sched`` (``"0"``, ``"0-1"``,
            ``"<group>@0"``).
        devices: the cluster's devices (:meth:`ClusterSection.topology`), or a slot count
            that stands for one node of that many slots.
        components: the components the app runs; every one must be placed (and no other).
        single_process: components that must run as exactly one process.

    Raises:
        ConfigError: naming ``placement`` or ``placement.<component>``, the spec, and what
            the cluster has (nodes, devices, node groups).
    """
    topology = Topology.uniform(1, devices) if isinstance(devices, int) else devices
    try:
        parsed = Placement.parse(dict(placement), topology, components=components)
    except PlacementError as e:
        raise ConfigError(f"placement: {e}; cluster: {topology.describe()}") from e
    for c in single_process:
        if parsed[c].world_size != 1:
            raise ConfigError(
                f"placement.{c}: the {c} runs as exactly one process (got {parsed[c].world_size})"
            )
    return parsed


def load_app_config(
    cls: type[C],
    source: str | pathlib.Path | Mapping[str, Any],
    overrides: Sequence[str] = (),
    *,
    package: str,
    validate: Callable[[C], Any],
) -> C:
    """An app's config from a preset name (see :func:`find_preset`), a YAML path or a
    mapping, with ``key=value`` overrides, checked by ``validate(cfg)`` (which raises
    :class:`ConfigError` naming the key) before any directory or worker exists."""
    src = source if isinstance(source, Mapping) else find_preset(source, package)
    cfg = load_config(cls, src, overrides)
    validate(cfg)
    return cfg

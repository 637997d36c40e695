"""rlinf.core: the rlinf runtime.

Cluster (start or join Ray), Worker and WorkerGroup (launch a class on a placement, call
methods on all or some ranks, scatter/gather), point-to-point send/recv and broadcast of
tensors between workers, typed config loading, timers and metric logging, and the
``Registry`` helper.
"""

from ._batch import concat_batches, split_batch
from ._cluster import Cluster, ClusterConfig
from ._comm import WorkerAddress
from ._config import ConfigError, apply_overrides, config_from_dict, config_to_dict, load_config
from ._errors import CallTimeout, CommError, WorkerDied, WorkerError
from ._future import GroupFuture
from ._group import WorkerGroup
from ._metrics import MetricLogger, Timers
from ._registry import Registry, RegistryError
from ._worker import Worker, WorkerContext

__all__ = [
    "CallTimeout",
    "Cluster",
    "ClusterConfig",
    "CommError",
    "ConfigError",
    "GroupFuture",
    "MetricLogger",
    "Registry",
    "RegistryError",
    "Timers",
    "Worker",
    "WorkerAddress",
    "WorkerContext",
    "WorkerDied",
    "WorkerError",
    "WorkerGroup",
    "apply_overrides",
    "concat_batches",
    "config_from_dict",
    "config_to_dict",
    "load_config",
    "split_batch",
]

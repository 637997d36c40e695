"""rlinf.core: the rlinf runtime.

Cluster (start or join Ray), Worker and WorkerGroup (launch a class on a placement, call
methods on all or some ranks, scatter/gather), point-to-point send/recv and broadcast of
tensors between workers, typed config loading, timers and metric logging, the ``Registry``
helper, and what every app shares: run directories and checkpoints, preset lookup and
placement validation, the CLI's Ray environment, shutdown helpers, and
:func:`count_driver_traffic` to check that payloads stay off the driver.

Nothing is imported until used (PEP 562): a CLI can import :func:`ensure_ray_env` and set
Ray's environment variables before anything imports Ray.
"""

from __future__ import annotations

from ._lazy import lazy_exports

__all__ = [
    "CONFIG_FILE",
    "METRICS_FILE",
    "MODEL_DIR",
    "USER_ERRORS",
    "CallTimeout",
    "CliProbe",
    "Cluster",
    "ClusterConfig",
    "ClusterSection",
    "CommError",
    "ConfigError",
    "DriverTraffic",
    "GroupFuture",
    "MetricLogger",
    "Registry",
    "RegistryError",
    "RunnerSection",
    "Timers",
    "Worker",
    "WorkerAddress",
    "WorkerContext",
    "WorkerDied",
    "WorkerError",
    "WorkerGroup",
    "add_checkpoint_eval_command",
    "add_sft_command",
    "add_train_command",
    "app_main",
    "app_parser",
    "apply_overrides",
    "best_effort",
    "check_run_dir_free",
    "concat_batches",
    "config_from_dict",
    "config_to_dict",
    "count_driver_traffic",
    "ensure_ray_env",
    "find_preset",
    "find_run_dir",
    "latest_checkpoint",
    "lazy_command",
    "lazy_exports",
    "load_app_config",
    "load_checkpoint",
    "load_config",
    "new_run_dir",
    "probe_cli",
    "read_metrics",
    "restore_driver_rng",
    "resume_run",
    "run_cli",
    "run_model_dir",
    "save_checkpoint",
    "split_batch",
    "start_run",
    "train_or_resume",
    "truncate_metrics",
    "validate_placement",
    "write_config",
]

_HOMES = {
    "concat_batches": "._batch",
    "split_batch": "._batch",
    "Cluster": "._cluster",
    "ClusterConfig": "._cluster",
    "WorkerAddress": "._comm",
    "ConfigError": "._config",
    "apply_overrides": "._config",
    "config_from_dict": "._config",
    "config_to_dict": "._config",
    "load_config": "._config",
    "CallTimeout": "._errors",
    "CommError": "._errors",
    "WorkerDied": "._errors",
    "WorkerError": "._errors",
    "GroupFuture": "._future",
    "WorkerGroup": "._group",
    "MetricLogger": "._metrics",
    "Timers": "._metrics",
    "Registry": "._registry",
    "RegistryError": "._registry",
    "Worker": "._worker",
    "WorkerContext": "._worker",
    "ClusterSection": "._appconfig",
    "RunnerSection": "._appconfig",
    "find_preset": "._appconfig",
    "load_app_config": "._appconfig",
    "validate_placement": "._appconfig",
    "add_checkpoint_eval_command": "._cli",
    "add_sft_command": "._cli",
    "add_train_command": "._cli",
    "ensure_ray_env": "._cli",
    "run_cli": "._cli",
    "train_or_resume": "._cli",
    "USER_ERRORS": "._appcli",
    "CliProbe": "._appcli",
    "app_main": "._appcli",
    "app_parser": "._appcli",
    "lazy_command": "._appcli",
    "probe_cli": "._appcli",
    "best_effort": "._shutdown",
    "DriverTraffic": "._traffic",
    "count_driver_traffic": "._traffic",
    "CONFIG_FILE": "._rundir",
    "METRICS_FILE": "._rundir",
    "MODEL_DIR": "._rundir",
    "check_run_dir_free": "._rundir",
    "find_run_dir": "._rundir",
    "truncate_metrics": "._rundir",
    "latest_checkpoint": "._rundir",
    "load_checkpoint": "._rundir",
    "new_run_dir": "._rundir",
    "read_metrics": "._rundir",
    "restore_driver_rng": "._rundir",
    "resume_run": "._rundir",
    "run_model_dir": "._rundir",
    "start_run": "._rundir",
    "save_checkpoint": "._rundir",
    "write_config": "._rundir",
}


__getattr__ = lazy_exports(__name__, _HOMES)


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))

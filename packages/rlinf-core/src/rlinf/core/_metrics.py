"""Timers (``time/*``) and a metric logger: TensorBoard by default, W&B when asked."""

from __future__ import annotations

import contextlib
import json
import math
import pathlib
import time
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

__all__ = ["MetricLogger", "Timers", "process_age_s"]

_BACKENDS = ("tensorboard", "jsonl", "wandb", "console")


def process_age_s() -> float:
    """Seconds since this process started (its creation time as the OS records it), so a
    driver can report its time to first step including interpreter start-up and imports:
    ``time/first_step_s``."""
    import psutil

    return max(0.0, time.time() - psutil.Process().create_time())


class Timers:
    """Accumulate wall-clock durations per name within a step.

    Example::

        timers = Timers()
        with timers("rollout"):
            ...
        logger.log(timers.pop(), step)   # {"time/rollout": 1.23}
    """

    def __init__(self, prefix: str = "time/"):
        """``prefix`` is prepended to every name in ``metrics()``."""
        self.prefix = prefix
        self._totals: dict[str, float] = {}

    @contextlib.contextmanager
    def __call__(self, name: str) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            self.add(name, time.perf_counter() - start)

    def add(self, name: str, seconds: float) -> None:
        """Add ``seconds`` to timer ``name`` (for durations measured elsewhere, e.g. remotely)."""
        self._totals[name] = self._totals.get(name, 0.0) + seconds

    def metrics(self) -> dict[str, float]:
        """``{prefix + name: total seconds}`` accumulated since the last reset."""
        return {f"{self.prefix}{k}": v for k, v in self._totals.items()}

    def reset(self) -> None:
        """Forget all accumulated durations."""
        self._totals.clear()

    def pop(self) -> dict[str, float]:
        """``metrics()`` followed by ``reset()``."""
        out = self.metrics()
        self.reset()
        return out


class MetricLogger:
    """Write scalar metrics of each step to a run directory and optional services.

    Backends: ``"tensorboard"`` (event files under ``log_dir/tensorboard``), ``"jsonl"``
    (``log_dir/metrics.jsonl``, one line per step, handy for plots and tests), ``"wandb"``
    (needs ``pip install 'rlinf-core[wandb]'``) and ``"console"`` (one line per step).
    """

    def __init__(
        self,
        log_dir: str | pathlib.Path,
        *,
        backends: Sequence[str] = ("tensorboard", "jsonl"),
        run_name: str | None = None,
        wandb_project: str | None = None,
        config: Mapping[str, Any] | None = None,
    ):
        """Open every backend; ``config`` is stored with the run where the backend supports it."""
        unknown = [b for b in backends if b not in _BACKENDS]
        if unknown:
            raise ValueError(f"unknown metric backend(s) {unknown}; valid: {list(_BACKENDS)}")
        self.log_dir = pathlib.Path(log_dir)
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self.backends = tuple(backends)
        self._tb = None
        self._jsonl = None
        self._wandb_run = None
        if "tensorboard" in backends:
            from torch.utils.tensorboard import SummaryWriter

            self._tb = SummaryWriter(log_dir=str(self.log_dir / "tensorboard"))
        if "jsonl" in backends:
            self._jsonl = open(self.log_dir / "metrics.jsonl", "a", encoding="utf-8")  # noqa: SIM115
        if "wandb" in backends:
            try:
                import wandb
            except ImportError as e:
                raise ImportError(
                    "the 'wandb' metric backend needs W&B: pip install 'rlinf-core[wandb]'"
                ) from e
            self._wandb_run = wandb.init(
                project=wandb_project or "rlinf",
                name=run_name,
                dir=str(self.log_dir),
                config=dict(config or {}),
            )

    def log(self, metrics: Mapping[str, float], step: int) -> None:
        """Record scalar ``metrics`` (name -> number, e.g. ``"train/loss"``) at ``step``."""
        values: dict[str, float] = {}
        for name, value in metrics.items():
            if hasattr(value, "item"):
                value = value.item()
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise TypeError(f"metric {name!r} must be a number, got {value!r}")
            values[name] = float(value)
        if self._tb is not None:
            for name, value in values.items():
                self._tb.add_scalar(name, value, step)
        if self._jsonl is not None:
            row = {
                "step": step,
                **{k: (v if math.isfinite(v) else str(v)) for k, v in values.items()},
            }
            self._jsonl.write(json.dumps(row) + "\n")
            self._jsonl.flush()
        if self._wandb_run is not None:
            self._wandb_run.log(values, step=step)
        if "console" in self.backends:
            shown = " ".join(f"{k}={v:.4g}" for k, v in sorted(values.items()))
            print(f"[step {step}] {shown}", flush=True)

    def close(self) -> None:
        """Flush and close every backend."""
        if self._tb is not None:
            self._tb.close()
            self._tb = None
        if self._jsonl is not None:
            self._jsonl.close()
            self._jsonl = None
        if self._wandb_run is not None:
            self._wandb_run.finish()
            self._wandb_run = None

    def __enter__(self) -> MetricLogger:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

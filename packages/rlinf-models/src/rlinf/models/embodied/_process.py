"""Set-up every embodied worker process shares before it builds a model."""

from __future__ import annotations

import warnings

import torch

__all__ = ["import_optimizer_deps", "setup_torch_process"]


def setup_torch_process(torch_threads: int) -> None:
    """Use ``torch_threads`` intra-op threads, and silence torch's warning about read-only
    NumPy arrays: arrays that arrive through Ray are zero-copy and read-only, and the
    policies and updaters only read them."""
    torch.set_num_threads(torch_threads)
    warnings.filterwarnings("ignore", message="The given NumPy array is not writable")


def import_optimizer_deps() -> None:
    """Import what torch imports when a process builds its first optimizer:
    ``torch.optim.Optimizer`` methods are wrapped by ``torch._disable_dynamo``, which
    imports ``torch._dynamo`` (with sympy and inductor; seconds of CPU) on first call.
    A trainer's :meth:`~rlinf.core.Worker.warm_up` calls it, so the import runs while the
    process waits for its constructor's arguments instead of inside the constructor."""
    import torch._dynamo  # noqa: F401

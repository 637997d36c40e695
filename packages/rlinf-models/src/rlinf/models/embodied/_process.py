"""Set-up every embodied worker process shares before it builds a model."""

from __future__ import annotations

import warnings

import torch

__all__ = ["setup_torch_process"]


def setup_torch_process(torch_threads: int) -> None:
    """Use ``torch_threads`` intra-op threads, and silence torch's warning about read-only
    NumPy arrays: arrays that arrive through Ray are zero-copy and read-only, and the
    policies and updaters only read them."""
    torch.set_num_threads(torch_threads)
    warnings.filterwarnings("ignore", message="The given NumPy array is not writable")

"""Hugging Face export of a (possibly sharded) trained model."""

from __future__ import annotations

from pathlib import Path

from ._backend import TrainingBackend

__all__ = ["save_hf_pretrained"]


def save_hf_pretrained(backend: TrainingBackend, out_dir: str | Path) -> Path | None:
    """Write ``backend.model`` (a Hugging Face ``PreTrainedModel``) as a
    ``save_pretrained`` directory from its full weights. Every rank calls it (gathering
    the shards is a collective); rank 0 writes and gets the path, the others ``None``.

    Raises:
        TypeError: the model has no ``save_pretrained`` taking a ``state_dict``.
    """
    model = backend.model
    if not callable(getattr(model, "save_pretrained", None)) or not hasattr(model, "config"):
        raise TypeError(
            f"save_hf_pretrained needs a Hugging Face PreTrainedModel, got {type(model).__name__}"
        )
    state = backend.full_state_dict()
    if backend.rank != 0:
        return None
    out = Path(out_dir)
    model.save_pretrained(out, state_dict=state)
    return out

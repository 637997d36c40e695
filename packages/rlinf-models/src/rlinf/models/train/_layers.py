"""The repeated blocks of a model: the units fsdp2 shards one by one and activation
checkpointing recomputes."""

from __future__ import annotations

from torch import nn

__all__ = ["apply_activation_checkpointing", "layer_modules"]


def layer_modules(model: nn.Module) -> list[nn.Module]:
    """The blocks of ``model``: modules whose class a Hugging Face model inside lists in
    ``_no_split_modules`` (its decoder layers), else the items of every ``nn.ModuleList``.
    Outermost first, no block inside another."""
    names: set[str] = set()
    for m in model.modules():
        names.update(getattr(m, "_no_split_modules", None) or ())
    found: list[nn.Module] = []
    if names:
        found = [m for m in model.modules() if type(m).__name__ in names]
    else:
        for m in model.modules():
            if isinstance(m, nn.ModuleList):
                found.extend(m)
    inner: set[int] = set()
    for m in found:
        inner.update(id(x) for x in m.modules() if x is not m)
    return [m for m in found if id(m) not in inner]


def apply_activation_checkpointing(model: nn.Module) -> None:
    """Wrap each block of :func:`layer_modules` in place so that its activations are
    recomputed in backward (non-reentrant checkpoint: works in ``eval()`` mode too, unlike
    Hugging Face's ``gradient_checkpointing_enable``, and with fsdp2).

    Raises:
        ValueError: ``model`` has no blocks (nothing to checkpoint).
    """
    # Imported here: torch.distributed.algorithms pulls in much of torch.distributed, which
    # runs without activation checkpointing never need.
    from torch.distributed.algorithms._checkpoint.checkpoint_wrapper import (
        CheckpointImpl,
        checkpoint_wrapper,
    )

    blocks = {id(m) for m in layer_modules(model)}
    if not blocks:
        raise ValueError(
            f"activation_checkpointing: {type(model).__name__} has no transformer layers or "
            "nn.ModuleList blocks to checkpoint"
        )
    for parent in list(model.modules()):
        for child_name, child in list(parent.named_children()):
            if id(child) in blocks:
                wrapped = checkpoint_wrapper(child, checkpoint_impl=CheckpointImpl.NO_REENTRANT)
                if isinstance(parent, nn.ModuleList):
                    parent[int(child_name)] = wrapped
                else:
                    setattr(parent, child_name, wrapped)

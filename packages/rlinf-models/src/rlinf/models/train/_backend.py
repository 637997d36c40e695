"""The training-backend interface, its registry, and the one-process ``torch`` backend."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

import torch
from torch import nn

from rlinf.core import Registry

from ._config import TrainingConfig
from ._dist import world_rank_size
from ._layers import apply_activation_checkpointing
from ._offload import ModelOffloader

__all__ = [
    "TRAINING_BACKENDS",
    "OptimizerFactory",
    "TorchBackend",
    "TrainingBackend",
    "build_backend",
]

OptimizerFactory = Callable[[list[nn.Parameter]], torch.optim.Optimizer]
"""Builds the optimizer over the prepared model's trainable parameters (sharded ones for
fsdp2: the optimizer must be made after sharding)."""


class TrainingBackend(ABC):
    """One model and its optimizer, trained data-parallel over the default process group.

    Gradients are *summed* over ranks: each rank back-propagates its share of the global
    loss (e.g. its micro-batch's mean times its tokens / the global tokens), so the step
    equals one process's step on the whole global batch.

    Args:
        model: the module to train; prepared in place (the same object is :attr:`model`).
        make_optimizer: :data:`OptimizerFactory`.
        config: :class:`TrainingConfig`.
        forward_methods: methods other than ``forward`` that run the model (e.g. an
            actor-critic's ``evaluate``); fsdp2 gathers the parameters around them too.
    """

    name: ClassVar[str]

    def __init__(
        self,
        model: nn.Module,
        make_optimizer: OptimizerFactory,
        config: TrainingConfig,
        forward_methods: Sequence[str] = (),
    ) -> None:
        self.config = config
        self.rank, self.world_size = world_rank_size()
        for method in forward_methods:
            if not callable(getattr(model, method, None)):
                raise ValueError(f"forward_methods: {type(model).__name__} has no {method!r}")
        if config.activation_checkpointing:
            apply_activation_checkpointing(model)
        self.model = self._prepare(model, tuple(forward_methods))
        self.optimizer = make_optimizer([p for p in self.model.parameters() if p.requires_grad])
        self._offloader = ModelOffloader(self.model, self.optimizer)

    @abstractmethod
    def _prepare(self, model: nn.Module, forward_methods: tuple[str, ...]) -> nn.Module:
        """Place / shard ``model`` in place and return it."""

    @property
    def params(self) -> list[nn.Parameter]:
        """The optimizer's parameters (local shards under fsdp2)."""
        return [p for g in self.optimizer.param_groups for p in g["params"]]

    @property
    def offloaded(self) -> bool:
        """True while :meth:`offload` holds the training state in host memory."""
        return self._offloader.offloaded

    def offload(self) -> None:
        """Move the parameters (local shards under fsdp2), gradients, buffers and optimizer
        state to host memory (pinned when CUDA is present), freeing the device for another
        phase; a no-op when already offloaded. Nothing may run the model until
        :meth:`onload`."""
        self._offloader.offload()

    def onload(self) -> None:
        """Bring back what :meth:`offload` moved, bit for bit, to the device it came from
        (a no-op when resident)."""
        self._offloader.onload()

    def zero_grad(self) -> None:
        """Drop the accumulated gradients."""
        self.optimizer.zero_grad(set_to_none=True)

    def backward(self, loss: torch.Tensor) -> None:
        """Accumulate the gradient of this rank's share ``loss`` (a scalar) into the sum
        over ranks. Call once per micro-batch; gradients add up until :meth:`step`."""
        loss.backward()

    def clip_grad_norm(self, max_norm: float | None) -> float:
        """Scale the gradients so that their global 2-norm (over all ranks' shards) is at
        most ``max_norm`` (``None``: no clipping); returns the norm before clipping."""
        limit = float("inf") if max_norm is None else max_norm
        norm = torch.nn.utils.clip_grad_norm_(self.params, limit)
        # Under fsdp2 the norm is a replicated DTensor: full_tensor() is its value.
        full = getattr(norm, "full_tensor", None)
        return float(full() if full is not None else norm)

    def step(self) -> None:
        """One optimizer step with the accumulated gradients."""
        self.optimizer.step()

    def full_state_dict(self) -> dict[str, torch.Tensor]:
        """Unsharded CPU copy of the model's state dict, a snapshot that later steps leave
        alone (a collective under fsdp2: every rank calls it; every rank gets the full
        tensors)."""
        dsd = _state_dict_api()
        sd = dsd.get_model_state_dict(
            self.model, options=dsd.StateDictOptions(full_state_dict=True)
        )
        # .cpu() of a CPU tensor is the parameter itself: copy so that steps do not reach it.
        return {k: v.detach().to("cpu", copy=True) for k, v in sd.items()}

    def full_train_state(self) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
        """``(model, optimizer)`` unsharded state dicts keyed by parameter names (a
        collective under fsdp2; every rank gets them): a picklable checkpoint that
        :meth:`load_full_train_state` restores on any number of ranks."""
        dsd = _state_dict_api()
        model_sd, optim_sd = dsd.get_state_dict(
            self.model, self.optimizer, options=dsd.StateDictOptions(full_state_dict=True)
        )
        return _to_cpu(model_sd), _to_cpu(optim_sd)

    def load_full_train_state(
        self, model_state: Mapping[str, Any], optim_state: Mapping[str, Any]
    ) -> None:
        """Restore :meth:`full_train_state` (every rank passes the same full dicts)."""
        dsd = _state_dict_api()
        dsd.set_state_dict(
            self.model,
            self.optimizer,
            model_state_dict=dict(model_state),
            optim_state_dict=dict(optim_state),
            options=dsd.StateDictOptions(full_state_dict=True),
        )

    def save(self, path: str | Path, extra: Mapping[str, Any] | None = None) -> None:
        """Write model and optimizer state (and picklable ``extra``) as a
        ``torch.distributed.checkpoint`` directory: each rank writes its shards. A
        collective under fsdp2. Any number of ranks, of any backend, can :meth:`load` it."""
        import torch.distributed.checkpoint as dcp

        model_sd, optim_sd = _state_dict_api().get_state_dict(self.model, self.optimizer)
        state = {"model": model_sd, "optimizer": optim_sd, "extra": dict(extra or {})}
        dcp.save(state, checkpoint_id=str(path), no_dist=self.world_size == 1 and not _dist_on())

    def load(self, path: str | Path, extra: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """Restore what :meth:`save` wrote (resharded to this backend's ranks); returns the
        saved values of the keys of ``extra`` (whose values are only placeholders: the
        checkpoint loads the keys it is asked for)."""
        if not (Path(path) / ".metadata").is_file():
            raise FileNotFoundError(f"{path} is not a torch.distributed.checkpoint directory")
        import torch.distributed.checkpoint as dcp

        dsd = _state_dict_api()
        model_sd, optim_sd = dsd.get_state_dict(self.model, self.optimizer)
        state: dict[str, Any] = {"model": model_sd, "optimizer": optim_sd}
        state["extra"] = dict(extra or {})
        dcp.load(state, checkpoint_id=str(path), no_dist=self.world_size == 1 and not _dist_on())
        dsd.set_state_dict(
            self.model,
            self.optimizer,
            model_state_dict=state["model"],
            optim_state_dict=state["optimizer"],
        )
        return dict(state["extra"])


def _state_dict_api() -> Any:
    """``torch.distributed.checkpoint.state_dict``, imported on first use: it pulls in
    DTensor and sympy, about as much CPU time as ``import torch`` itself, which every worker
    process would otherwise pay at start-up even when it never saves or gathers."""
    import torch.distributed.checkpoint.state_dict as dsd

    return dsd


def _to_cpu(tree: Any) -> Any:
    """CPU copies of the tensors of a nested dict / list state."""
    if isinstance(tree, torch.Tensor):
        return tree.detach().to("cpu", copy=True)
    if isinstance(tree, Mapping):
        return {k: _to_cpu(v) for k, v in tree.items()}
    if isinstance(tree, list | tuple):
        return type(tree)(_to_cpu(v) for v in tree)
    return tree


def _dist_on() -> bool:
    return torch.distributed.is_available() and torch.distributed.is_initialized()


TRAINING_BACKENDS: Registry[type[TrainingBackend]] = Registry("training backend")
"""Backend name -> :class:`TrainingBackend` subclass (``"torch"``, ``"fsdp2"``,
``"megatron"`` (loaded on first use: needs the ``rlinf-models[megatron]`` extra); plugins
register their own)."""


@TRAINING_BACKENDS.register("torch")
class TorchBackend(TrainingBackend):
    """The model as is, in this process: today's single-process training. With more than
    one rank it would silently train replicas apart, so it refuses a multi-rank group."""

    name = "torch"

    def _prepare(self, model: nn.Module, forward_methods: tuple[str, ...]) -> nn.Module:
        if self.world_size != 1:
            raise ValueError(
                f"training backend 'torch' runs one process, but the process group has "
                f"{self.world_size} ranks: use backend 'fsdp2'"
            )
        if self.config.mixed_precision != "none" or self.config.cpu_offload:
            raise ValueError(
                "training backend 'torch' supports neither mixed_precision nor cpu_offload: "
                "use backend 'fsdp2' (it runs on one rank too)"
            )
        return model


TRAINING_BACKENDS.register("fsdp2", "rlinf.models.train._fsdp:FSDP2Backend")
TRAINING_BACKENDS.register(
    "megatron",
    "rlinf.models.train._megatron:MegatronBackend",
    install_hint="install the extra: pip install 'rlinf-models[megatron]'",
)


def build_backend(
    config: TrainingConfig,
    model: nn.Module,
    make_optimizer: OptimizerFactory,
    forward_methods: Iterable[str] = (),
) -> TrainingBackend:
    """The :data:`TRAINING_BACKENDS` entry ``config.backend`` wrapping ``model``."""
    cls = TRAINING_BACKENDS.get(config.backend)
    return cls(model, make_optimizer, config, tuple(forward_methods))

"""The LLM apps' ``training`` section: how the actor's policy and critic are trained (one
process, or data-parallel FSDP2 over ``placement.actor``'s ranks), checked before anything
starts. Imports no torch: loading an app's config stays fast; :meth:`resolve` maps the
section onto :class:`rlinf.models.train.TrainingConfig`, the one home of these options."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from rlinf.core import ConfigError

if TYPE_CHECKING:
    from rlinf.models.train import TrainingConfig

    from ._updater_config import LLMUpdaterConfig

__all__ = ["LLMTrainingSection", "check_llm_data_parallel"]


@dataclass(frozen=True)
class LLMTrainingSection:
    """How the actor trains; each field is the :class:`~rlinf.models.train.TrainingConfig`
    field of the same name (see there), except that ``backend`` may stay ``"auto"``.

    Attributes:
        backend: ``"auto"`` (default): ``torch`` (one process, the model as is) when
            ``placement.actor`` has one rank and no fsdp2-only option is set, else
            ``fsdp2``; or a name in ``rlinf.models.train.TRAINING_BACKENDS``.
        mixed_precision: ``"none"`` or ``"bf16"`` (fsdp2: bf16 compute, fp32 reduction).
        cpu_offload: fsdp2: sharded parameters, gradients and optimizer state in CPU memory.
        offload: ``"none"`` (default) or ``"phase"``: the policy, critic and reference
            model each on the device only for their own phases of an update, in host
            memory while the rollout (or another phase) runs; any backend.
        activation_checkpointing: recompute each transformer layer's activations in
            backward.
        reshard_after_forward: fsdp2: free each layer's gathered parameters after its
            forward.
        tensor_parallel_size: megatron: ranks sharing each layer (divides the actor's).
        pipeline_parallel_size: megatron: pipeline stages (only 1 so far).
    """

    backend: str = "auto"
    mixed_precision: str = "none"
    cpu_offload: bool = False
    offload: str = "none"
    activation_checkpointing: bool = False
    reshard_after_forward: bool = True
    tensor_parallel_size: int = 1
    pipeline_parallel_size: int = 1

    def backend_for(self, actor_ranks: int) -> str:
        """The backend name ``"auto"`` stands for with ``actor_ranks`` actor ranks."""
        if self.backend != "auto":
            return self.backend
        fsdp_only = self.mixed_precision != "none" or self.cpu_offload
        return "fsdp2" if actor_ranks > 1 or fsdp_only else "torch"

    def resolve(self, actor_ranks: int) -> TrainingConfig:
        """The :class:`~rlinf.models.train.TrainingConfig` of ``actor_ranks`` ranks
        (imports the training backends: call it where they are needed anyway).

        Raises:
            ConfigError: the backend is not registered, or a field is invalid.
        """
        from rlinf.core import RegistryError
        from rlinf.models.train import TRAINING_BACKENDS, TrainingConfig

        backend = self.backend_for(actor_ranks)
        try:
            TRAINING_BACKENDS.get(backend)
        except RegistryError as e:
            raise ConfigError(f"training.backend: {e}") from None
        try:
            return TrainingConfig(
                backend=backend,
                mixed_precision=self.mixed_precision,  # type: ignore[arg-type]
                cpu_offload=self.cpu_offload,
                offload=self.offload,  # type: ignore[arg-type]
                activation_checkpointing=self.activation_checkpointing,
                reshard_after_forward=self.reshard_after_forward,
                tensor_parallel_size=self.tensor_parallel_size,
                pipeline_parallel_size=self.pipeline_parallel_size,
            )
        except ValueError as e:
            raise ConfigError(f"training: {e}") from None


def check_llm_data_parallel(
    training: LLMTrainingSection,
    actor_ranks: int,
    algo: LLMUpdaterConfig,
    rows_per_step: int,
) -> None:
    """Checks of the ``training`` section against the actor's ranks and the batch, before
    any worker starts.

    Args:
        training: the app's ``training`` section.
        actor_ranks: ranks of ``placement.actor``.
        algo: the app's ``algo`` section (``mini_batch_size``).
        rows_per_step: responses per update (prompts per step x samples per prompt).

    Raises:
        ConfigError: naming the offending key: an unknown ``offload`` mode or one
            combined with ``cpu_offload``, the one-process ``torch`` backend on several ranks or with an fsdp2-only option, or fewer
            responses per step (or per mini-batch) than actor ranks.
    """
    if training.offload not in ("none", "phase"):
        raise ConfigError(f"training.offload: 'none' or 'phase', got {training.offload!r}")
    if training.offload == "phase" and training.cpu_offload:
        raise ConfigError(
            "training.offload: 'phase' and training.cpu_offload exclude each other "
            "(cpu_offload already keeps the training state in CPU memory)"
        )
    backend = training.backend_for(actor_ranks)
    if not backend:
        raise ConfigError("training.backend: must be a backend name or 'auto'")
    if backend == "torch" and actor_ranks > 1:
        raise ConfigError(
            f"training.backend: 'torch' trains in one process but placement.actor has "
            f"{actor_ranks} ranks: use 'fsdp2' (or 'auto')"
        )
    if backend == "torch" and (training.mixed_precision != "none" or training.cpu_offload):
        raise ConfigError(
            "training.backend: 'torch' supports neither training.mixed_precision nor "
            "training.cpu_offload: use 'fsdp2' (or 'auto'; it runs on one rank too)"
        )
    if actor_ranks < 2:
        return
    if rows_per_step < actor_ranks:
        raise ConfigError(
            f"placement.actor: {actor_ranks} actor ranks but a step has only {rows_per_step} "
            "responses (runner.prompts_per_step x generation.n): each rank needs >= 1"
        )
    if algo.mini_batch_size and algo.mini_batch_size < actor_ranks:
        raise ConfigError(
            f"algo.mini_batch_size: {algo.mini_batch_size} responses per mini-batch cannot "
            f"be split across placement.actor's {actor_ranks} ranks: need >= 1 each"
        )

"""The LLM apps' ``training`` section: ``auto`` picks the backend from the actor's ranks
and the options, and it maps field for field onto TrainingConfig; bad values name the key."""

from __future__ import annotations

import pytest

from rlinf.core import ConfigError
from rlinf.models.llm import LLMTrainingSection, LLMUpdaterConfig, check_llm_data_parallel
from rlinf.models.train import TrainingConfig


def test_auto_resolves_to_torch_on_one_rank_and_fsdp2_otherwise():
    assert LLMTrainingSection().resolve(1) == TrainingConfig(backend="torch")
    assert LLMTrainingSection().resolve(2) == TrainingConfig(backend="fsdp2")
    section = LLMTrainingSection(mixed_precision="bf16", activation_checkpointing=True)
    assert section.resolve(1) == TrainingConfig(
        backend="fsdp2", mixed_precision="bf16", activation_checkpointing=True
    )
    kept = LLMTrainingSection(backend="fsdp2", cpu_offload=True, reshard_after_forward=False)
    assert kept.resolve(1) == TrainingConfig(
        backend="fsdp2", cpu_offload=True, reshard_after_forward=False
    )


def test_bad_values_name_the_key():
    with pytest.raises(ConfigError, match=r"training\.backend: unknown .*'megatrom'.*fsdp2"):
        LLMTrainingSection(backend="megatrom").resolve(2)
    with pytest.raises(ConfigError, match="training: mixed_precision must be one of"):
        LLMTrainingSection(mixed_precision="fp8").resolve(2)
    algo = LLMUpdaterConfig()
    with pytest.raises(ConfigError, match=r"placement\.actor: 3 actor ranks but a step has only 2"):
        check_llm_data_parallel(LLMTrainingSection(), 3, algo, 2)
    # One rank: nothing to split, any batch is fine.
    check_llm_data_parallel(LLMTrainingSection(), 1, algo, 1)

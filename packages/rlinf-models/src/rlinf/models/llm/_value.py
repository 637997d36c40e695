"""ValueModel: a causal-LM backbone with a linear value head, the PPO critic."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import torch
from torch import nn
from transformers import AutoModel, PreTrainedModel

from ._load import check_model_dir
from ._logprobs import check_sequence_layout, position_ids_from_mask

__all__ = ["ValueModel"]

_HEAD_FILE = "value_head.pt"


class ValueModel(nn.Module):
    """Token-level state values for response positions.

    ``values[:, t]`` is the head applied to the backbone's last hidden state at position
    ``P + t - 1``: the value of the prefix *before* response token ``t`` is chosen (the state
    in which the policy acts), so ``values[:, 0]`` is the value of the prompt alone.

    Args:
        backbone: a local model directory (the transformer body is loaded with
            ``AutoModel``; a causal LM's output projection is not loaded) or an already built
            module: a causal LM (its ``base_model`` is used, sharing weights with it: pass a
            copy for a separate critic) or a bare transformer body.
        dtype: parameter dtype when loading from a path (the head follows the backbone).
        device: where the model lives.
        head_init_std: standard deviation of the head's initial weights; 0 (default) makes
            every initial value exactly 0 (the bias is always 0 at start).
    """

    def __init__(
        self,
        backbone: str | Path | nn.Module,
        *,
        dtype: torch.dtype = torch.float32,
        device: str | torch.device = "cpu",
        head_init_std: float = 0.0,
    ) -> None:
        super().__init__()
        if isinstance(backbone, str | Path):
            path = check_model_dir(backbone)
            body: nn.Module = AutoModel.from_pretrained(path, dtype=dtype, local_files_only=True)
        elif isinstance(backbone, nn.Module):
            body = backbone
            base = getattr(backbone, "base_model", None)
            if isinstance(backbone, PreTrainedModel) and base is not None and base is not backbone:
                body = base
        else:
            raise TypeError(
                f"backbone must be a model path or an nn.Module, got {type(backbone).__name__}"
            )
        if head_init_std < 0:
            raise ValueError(f"head_init_std must be >= 0, got {head_init_std}")
        hidden = body.config.hidden_size
        param = next(body.parameters())
        self.backbone = body
        # True once a trained head was loaded by from_pretrained (False: freshly initialized).
        self.head_loaded = False
        self.value_head = nn.Linear(hidden, 1, dtype=param.dtype)
        nn.init.normal_(self.value_head.weight, std=head_init_std)
        nn.init.zeros_(self.value_head.bias)
        self.to(device)

    def forward(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor, prompt_length: int
    ) -> torch.Tensor:
        """Values ``[B, R]`` (float32) for ``input_ids`` / ``attention_mask`` ``[B, P+R]``
        in the :class:`~rlinf.models.llm.RolloutBatch` layout. Entries at padding are
        meaningless (mask them)."""
        check_sequence_layout(input_ids, attention_mask, prompt_length)
        total = input_ids.shape[1]
        hidden = self.backbone(
            input_ids=input_ids,
            attention_mask=attention_mask,
            position_ids=position_ids_from_mask(attention_mask),
            use_cache=False,
        ).last_hidden_state
        states = hidden[:, prompt_length - 1 : total - 1]
        return self.value_head(states).squeeze(-1).float()

    def save_pretrained(
        self, out_dir: str | Path, state_dict: Mapping[str, torch.Tensor] | None = None
    ) -> Path:
        """Write the backbone (``save_pretrained``) and the head to ``out_dir``.

        ``state_dict``: this model's full state (``backbone.*``, ``value_head.*`` keys) to
        write instead of the module's own tensors, e.g. the gathered weights of a sharded
        (fsdp2) critic.
        """
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        if state_dict is None:
            self.backbone.save_pretrained(out)
            head = {k: v.detach().cpu() for k, v in self.value_head.state_dict().items()}
        else:
            parts: dict[str, dict[str, torch.Tensor]] = {"backbone": {}, "value_head": {}}
            for key, value in state_dict.items():
                prefix, _, name = key.partition(".")
                if prefix not in parts:
                    raise ValueError(f"state_dict key {key!r} is not a ValueModel key")
                parts[prefix][name] = value
            self.backbone.save_pretrained(out, state_dict=parts["backbone"])
            head = {k: v.detach().cpu() for k, v in parts["value_head"].items()}
        torch.save(head, out / _HEAD_FILE)
        return out

    @classmethod
    def from_pretrained(
        cls,
        path: str | Path,
        *,
        dtype: torch.dtype = torch.float32,
        device: str | torch.device = "cpu",
        head_init_std: float = 0.0,
    ) -> ValueModel:
        """Load a directory written by :meth:`save_pretrained`. A plain model directory
        (no ``value_head.pt``, e.g. the policy's) gives its backbone with a new head
        initialized as in the constructor, as Hugging Face does for new task heads; check
        :attr:`head_loaded` to tell the two apart."""
        p = check_model_dir(path)
        model = cls(p, dtype=dtype, device="cpu", head_init_std=head_init_std)
        if (p / _HEAD_FILE).is_file():
            state = torch.load(p / _HEAD_FILE, map_location="cpu", weights_only=True)
            model.value_head.load_state_dict(state)
            model.head_loaded = True
        return model.to(device)

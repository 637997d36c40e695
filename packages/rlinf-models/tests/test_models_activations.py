"""sigmoid_tanh against float64 tanh: values, gradients, and when it defers to torch.tanh."""

from __future__ import annotations

import pytest
import torch

from rlinf.models import PolicyConfig
from rlinf.models._activations import SigmoidTanh, sigmoid_tanh
from rlinf.models._encoders import Encoder


class _Spec:
    def __init__(self, shape):
        self.shape, self.dtype = shape, torch.float32


def _large(requires_grad: bool) -> torch.Tensor:
    # Over the 16384-element threshold, from deep saturation through 0.
    x = torch.linspace(-30.0, 30.0, 256 * 257, dtype=torch.float32).reshape(256, 257)
    return x.requires_grad_(requires_grad)


def test_values_match_float64_tanh():
    x = _large(False)
    ref = torch.tanh(x.double())
    got = sigmoid_tanh(x)
    assert got.dtype == torch.float32 and got.shape == x.shape
    assert (got.double() - ref).abs().max() < 3e-7
    assert got.min() >= -1.0 and got.max() <= 1.0


def test_gradient_matches_tanh_derivative():
    x = _large(True)
    weights = torch.randn(x.shape, generator=torch.Generator().manual_seed(0))
    (sigmoid_tanh(x) * weights).sum().backward()
    ref = weights.double() * (1.0 - torch.tanh(x.detach().double()) ** 2)
    # The value's rounding (< 2e-7) enters 1 - y^2 at most twice, scaled by the weight.
    assert ((x.grad.double() - ref).abs() <= 4e-7 * weights.abs().double() + 1e-9).all()


def test_second_derivative_is_refused_not_wrong():
    x = _large(True)
    (g,) = torch.autograd.grad(sigmoid_tanh(x).sum(), x, create_graph=True)
    # The first gradient carries no graph, so asking for the second one fails loudly.
    assert not g.requires_grad
    with pytest.raises(RuntimeError, match="does not require grad"):
        g.sum().backward()


def test_small_inputs_use_torch_tanh_exactly():
    x = torch.randn(16, 256)
    assert torch.equal(sigmoid_tanh(x), torch.tanh(x))
    x.requires_grad_(True)
    y = sigmoid_tanh(x)
    assert y.grad_fn is not None and "Tanh" in type(y.grad_fn).__name__


def test_no_grad_path_matches_autograd_path():
    with torch.no_grad():
        plain = sigmoid_tanh(_large(True))
    assert torch.equal(plain, sigmoid_tanh(_large(True)).detach())


def test_policy_tanh_layers_use_it():
    enc = Encoder(PolicyConfig(hidden_sizes=(8,), activation="tanh"), {"s": _Spec((3,))}, None)
    assert any(isinstance(m, SigmoidTanh) for m in enc.mlp)

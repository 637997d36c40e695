import math

import pytest
import torch

from rlinf.algos import chunked_entropy_from_logits, entropy_from_logits, log_probs_from_logits


def test_entropy_uniform_and_one_hot():
    assert entropy_from_logits(torch.zeros(7)).item() == pytest.approx(math.log(7))
    assert entropy_from_logits(torch.tensor([100.0, 0.0, 0.0])).item() == pytest.approx(0, abs=1e-6)


def test_entropy_matches_distribution():
    logits = torch.randn(3, 4, 11, generator=torch.Generator().manual_seed(0))
    ref = torch.distributions.Categorical(logits=logits).entropy()
    torch.testing.assert_close(entropy_from_logits(logits), ref)


@pytest.mark.parametrize("chunk", [1, 3, 7, 100])
def test_chunked_entropy_equals_unchunked_with_grad(chunk):
    base = torch.randn(2, 5, 13, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    a = base.clone().requires_grad_(True)
    b = base.clone().requires_grad_(True)
    full = entropy_from_logits(a)
    chunked = chunked_entropy_from_logits(b, chunk_size=chunk)
    assert chunked.shape == (2, 5)
    torch.testing.assert_close(chunked, full.float())
    w = torch.arange(10, dtype=torch.float32).view(2, 5)
    (full.float() * w).sum().backward()
    (chunked * w).sum().backward()
    torch.testing.assert_close(a.grad, b.grad)


def test_chunked_entropy_no_grad_and_bf16():
    logits = torch.randn(9, 17, generator=torch.Generator().manual_seed(2)).bfloat16()
    with torch.no_grad():
        out = chunked_entropy_from_logits(logits, chunk_size=4)
    assert out.dtype == torch.float32
    torch.testing.assert_close(out, entropy_from_logits(logits.float()))


def test_log_probs_from_logits():
    logits = torch.randn(2, 6, 10, generator=torch.Generator().manual_seed(3))
    labels = torch.randint(0, 10, (2, 6), generator=torch.Generator().manual_seed(4))
    ref = torch.log_softmax(logits, -1).gather(-1, labels[..., None]).squeeze(-1)
    torch.testing.assert_close(log_probs_from_logits(logits, labels, chunk_size=5), ref)


def test_entropy_bad_inputs():
    with pytest.raises(ValueError, match="chunk_size must be >= 1"):
        chunked_entropy_from_logits(torch.zeros(2, 3), chunk_size=0)
    with pytest.raises(ValueError, match="logits contains NaN"):
        chunked_entropy_from_logits(torch.tensor([[0.0, float("nan")]]))
    with pytest.raises(ValueError, match="labels has shape"):
        log_probs_from_logits(torch.zeros(2, 3, 4), torch.zeros(2, 2, dtype=torch.long))

import pytest
import torch

from rlinf.algos import AGG_MODES, aggregate_loss, masked_mean, masked_var, masked_whiten

LOSS = torch.tensor([[1.0, 2.0, 100.0], [4.0, 100.0, 100.0]])
MASK = torch.tensor([[1, 1, 0], [1, 0, 0]], dtype=torch.bool)


@pytest.mark.parametrize(
    ("mode", "expected"),
    [
        ("token-mean", 7 / 3),
        ("seq-mean-token-sum", 3.5),
        ("seq-mean-token-mean", 2.75),
        ("seq-mean-token-sum-norm", 7 / 6),
    ],
)
def test_modes_hand_values(mode, expected):
    assert aggregate_loss(LOSS, MASK, mode).item() == pytest.approx(expected)


def test_sum_norm_uses_constant_length():
    assert aggregate_loss(LOSS, MASK, "seq-mean-token-sum-norm", norm_length=10).item() == (
        pytest.approx(0.35)
    )


def test_modes_agree_on_uniform_masks():
    loss = torch.randn(4, 5, generator=torch.Generator().manual_seed(0))
    mask = torch.ones(4, 5, dtype=torch.bool)
    tm = aggregate_loss(loss, mask, "token-mean")
    assert aggregate_loss(loss, mask, "seq-mean-token-mean").item() == pytest.approx(tm.item())
    assert aggregate_loss(loss, mask, "seq-mean-token-sum-norm").item() == pytest.approx(tm.item())
    assert aggregate_loss(loss, mask, "seq-mean-token-sum").item() == pytest.approx(5 * tm.item())
    assert tm.item() == pytest.approx(loss.mean().item())


def test_empty_rows_are_excluded_from_sequence_means():
    loss = torch.tensor([[1.0, 3.0], [5.0, 5.0]])
    mask = torch.tensor([[1, 1], [0, 0]], dtype=torch.bool)
    assert aggregate_loss(loss, mask, "seq-mean-token-mean").item() == pytest.approx(2.0)
    assert aggregate_loss(loss, mask, "seq-mean-token-sum").item() == pytest.approx(4.0)


def test_gradient_flows_only_to_valid_tokens():
    loss = LOSS.clone().requires_grad_(True)
    aggregate_loss(loss, MASK, "token-mean").backward()
    torch.testing.assert_close(loss.grad, MASK.float() / 3)


def test_aggregation_bad_inputs():
    with pytest.raises(KeyError, match="valid names: seq-mean-token-mean"):
        aggregate_loss(LOSS, MASK, "mean")
    with pytest.raises(ValueError, match="mask is empty"):
        aggregate_loss(LOSS, torch.zeros_like(MASK), "token-mean")
    with pytest.raises(ValueError, match="mask has shape"):
        aggregate_loss(LOSS, torch.ones(2, 2, dtype=torch.bool))
    with pytest.raises(ValueError, match="loss contains NaN"):
        aggregate_loss(torch.tensor([[float("nan"), 1.0]]), None)
    # NaN outside the mask is ignored.
    nan_pad = torch.tensor([[1.0, float("nan")]])
    assert aggregate_loss(nan_pad, torch.tensor([[True, False]])).item() == 1.0
    assert set(AGG_MODES) == {
        "token-mean",
        "seq-mean-token-sum",
        "seq-mean-token-mean",
        "seq-mean-token-sum-norm",
    }


def test_masked_stats():
    x = torch.tensor([1.0, 2.0, 3.0, 100.0])
    m = torch.tensor([True, True, True, False])
    assert masked_mean(x, m).item() == pytest.approx(2.0)
    assert masked_var(x, m).item() == pytest.approx(1.0)
    assert masked_var(x, m, unbiased=False).item() == pytest.approx(2 / 3)
    torch.testing.assert_close(masked_whiten(x, m, eps=0.0), torch.tensor([-1.0, 0.0, 1.0, 0.0]))
    with pytest.raises(ValueError, match="mask is empty"):
        masked_mean(x, torch.zeros(4, dtype=torch.bool))

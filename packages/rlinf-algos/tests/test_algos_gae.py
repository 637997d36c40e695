import pytest
import torch

from rlinf.algos import discounted_returns, gae_advantages

D = torch.float64


def ref_gae(r, v, nv, term, trunc, mask, gamma, lam):
    """Transparent per-row loop over the valid steps of each row."""
    rows, cols = len(r), len(r[0])
    adv = [[0.0] * cols for _ in range(rows)]
    for b in range(rows):
        valid = [t for t in range(cols) if mask[b][t]]
        for i in reversed(range(len(valid))):
            t = valid[i]
            nxt = valid[i + 1] if i + 1 < len(valid) else None
            if nv is not None:
                boot = nv[b][t]
            elif nxt is not None:
                boot = v[b][nxt]
            else:
                boot = 0.0
            delta = r[b][t] + gamma * (0.0 if term[b][t] else boot) - v[b][t]
            cont = 0.0 if (term[b][t] or trunc[b][t] or nxt is None) else adv[b][nxt]
            adv[b][t] = delta + gamma * lam * cont
    return adv


def ref_returns(r, nv, term, trunc, mask, gamma):
    rows, cols = len(r), len(r[0])
    out = [[0.0] * cols for _ in range(rows)]
    for b in range(rows):
        valid = [t for t in range(cols) if mask[b][t]]
        for i in reversed(range(len(valid))):
            t = valid[i]
            nxt = valid[i + 1] if i + 1 < len(valid) else None
            if trunc[b][t] or nxt is None:
                future = nv[b][t] if nv is not None else 0.0
            else:
                future = out[b][nxt]
            out[b][t] = r[b][t] + gamma * (0.0 if term[b][t] else future)
    return out


def random_rollout(seed, rows=3, cols=9):
    g = torch.Generator().manual_seed(seed)
    r = torch.randn(rows, cols, generator=g, dtype=D)
    v = torch.randn(rows, cols, generator=g, dtype=D)
    final = torch.randn(rows, cols, generator=g, dtype=D)
    u = torch.rand(rows, cols, generator=g)
    term = u < 0.2
    trunc = (u >= 0.2) & (u < 0.4)
    # Consistent next values: V(s_{t+1}) inside an episode, the final observation's value
    # at a boundary and at the horizon.
    nv = torch.cat([v[:, 1:], final[:, -1:]], dim=1)
    nv = torch.where(term | trunc, final, nv)
    return r, v, nv, term, trunc


def test_gae_hand_values_truncation_vs_termination():
    r = torch.tensor([[1.0, 2.0, 3.0]], dtype=D)
    v = torch.tensor([[0.5, 1.0, 1.5]], dtype=D)
    nv = torch.tensor([[1.0, 9.0, 2.0]], dtype=D)
    flag = torch.tensor([[False, True, False]])
    adv, ret = gae_advantages(r, v, gamma=0.9, lam=0.8, next_values=nv, truncated=flag)
    # t=2: 3 + .9*2 - 1.5 = 3.3; t=1 bootstraps the final obs: 2 + .9*9 - 1 = 9.1;
    # t=0: 1 + .9*1 - .5 + .72 * 9.1 = 7.952
    torch.testing.assert_close(adv, torch.tensor([[7.952, 9.1, 3.3]], dtype=D))
    torch.testing.assert_close(ret, adv + v)
    adv, _ = gae_advantages(r, v, gamma=0.9, lam=0.8, next_values=nv, terminated=flag)
    torch.testing.assert_close(adv, torch.tensor([[2.12, 1.0, 3.3]], dtype=D))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_gae_matches_loop_with_terminations_and_truncations(seed):
    r, v, nv, term, trunc = random_rollout(seed)
    mask = torch.ones_like(term)
    adv, ret = gae_advantages(
        r, v, gamma=0.97, lam=0.9, next_values=nv, terminated=term, truncated=trunc
    )
    ref = ref_gae(
        r.tolist(), v.tolist(), nv.tolist(), term.tolist(), trunc.tolist(), mask.tolist(), 0.97, 0.9
    )
    torch.testing.assert_close(adv, torch.tensor(ref, dtype=D))
    torch.testing.assert_close(ret, adv + v)
    assert bool(term.any()) and bool(trunc.any())


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_gae_with_next_values_skips_masked_steps(seed):
    # Holes in the mask (not just right padding): the recursion passes through them.
    r, v, nv, term, trunc = random_rollout(seed)
    g = torch.Generator().manual_seed(100 + seed)
    mask = torch.rand(r.shape, generator=g) > 0.3
    r = torch.where(mask, r, torch.nan)  # garbage where invalid must not leak
    adv, ret = gae_advantages(
        r, v, gamma=0.97, lam=0.9, next_values=nv, terminated=term, truncated=trunc, mask=mask
    )
    ref = ref_gae(
        r.tolist(), v.tolist(), nv.tolist(), term.tolist(), trunc.tolist(), mask.tolist(), 0.97, 0.9
    )
    torch.testing.assert_close(adv, torch.tensor(ref, dtype=D))
    torch.testing.assert_close(ret, torch.where(mask, adv + v, 0.0))
    assert bool((~mask).any()) and bool((adv[~mask] == 0).all())


def test_gae_variable_length_masks_token_level():
    g = torch.Generator().manual_seed(3)
    r = torch.randn(3, 6, generator=g, dtype=D)
    v = torch.randn(3, 6, generator=g, dtype=D)
    mask = torch.tensor(
        [[1, 1, 1, 1, 1, 1], [1, 1, 1, 0, 0, 0], [1, 0, 1, 1, 0, 0]], dtype=torch.bool
    )
    # Garbage in the padding must not leak.
    r = torch.where(mask, r, torch.nan)
    adv, ret = gae_advantages(r, v, gamma=0.95, lam=0.7, mask=mask)
    no = torch.zeros_like(mask)
    ref = ref_gae(
        torch.nan_to_num(r).tolist(),
        v.tolist(),
        None,
        no.tolist(),
        no.tolist(),
        mask.tolist(),
        0.95,
        0.7,
    )
    torch.testing.assert_close(adv, torch.tensor(ref, dtype=D))
    assert (adv[~mask] == 0).all() and (ret[~mask] == 0).all()
    # Row 1 is exactly the 3-step sequence on its own.
    alone, _ = gae_advantages(r[1:2, :3], v[1:2, :3], gamma=0.95, lam=0.7)
    torch.testing.assert_close(adv[1:2, :3], alone)


@pytest.mark.parametrize("seed", [0, 5])
def test_gae_lambda_one_equals_returns_minus_values(seed):
    r, v, nv, term, trunc = random_rollout(seed)
    adv, _ = gae_advantages(
        r, v, gamma=0.9, lam=1.0, next_values=nv, terminated=term, truncated=trunc
    )
    ret = discounted_returns(r, gamma=0.9, next_values=nv, terminated=term, truncated=trunc)
    torch.testing.assert_close(adv, ret - v)


def test_gae_lambda_one_with_masks_token_level():
    g = torch.Generator().manual_seed(7)
    r = torch.randn(2, 5, generator=g, dtype=D)
    v = torch.randn(2, 5, generator=g, dtype=D)
    mask = torch.tensor([[1, 1, 0, 1, 0], [1, 1, 1, 1, 1]], dtype=torch.bool)
    adv, _ = gae_advantages(r, v, gamma=0.8, lam=1.0, mask=mask)
    ret = discounted_returns(r, gamma=0.8, mask=mask)
    torch.testing.assert_close(adv, torch.where(mask, ret - v, 0.0))


def test_gae_lambda_zero_is_td_error():
    r, v, nv, term, trunc = random_rollout(11)
    adv, _ = gae_advantages(
        r, v, gamma=0.9, lam=0.0, next_values=nv, terminated=term, truncated=trunc
    )
    torch.testing.assert_close(adv, r + 0.9 * (~term) * nv - v)


def test_discounted_returns_matches_loop():
    r, _, nv, term, trunc = random_rollout(4)
    mask = torch.rand(r.shape, generator=torch.Generator().manual_seed(1)) > 0.25
    out = discounted_returns(
        r, gamma=0.9, next_values=nv, terminated=term, truncated=trunc, mask=mask
    )
    ref = ref_returns(r.tolist(), nv.tolist(), term.tolist(), trunc.tolist(), mask.tolist(), 0.9)
    torch.testing.assert_close(out, torch.tensor(ref, dtype=D))


def test_discounted_returns_hand_values():
    r = torch.tensor([1.0, 1.0, 1.0])
    torch.testing.assert_close(discounted_returns(r, gamma=0.5), torch.tensor([1.75, 1.5, 1.0]))


def test_gae_leading_dims():
    r, v, nv, term, _ = random_rollout(2, rows=4)
    adv, _ = gae_advantages(r, v, gamma=0.9, lam=0.9, next_values=nv, terminated=term)
    adv3, _ = gae_advantages(
        r.view(2, 2, -1),
        v.view(2, 2, -1),
        gamma=0.9,
        lam=0.9,
        next_values=nv.view(2, 2, -1),
        terminated=term.view(2, 2, -1),
    )
    torch.testing.assert_close(adv3.view(4, -1), adv)


def test_gae_float32_inputs_give_float32():
    adv, ret = gae_advantages(torch.ones(2, 3), torch.zeros(2, 3), gamma=1.0, lam=1.0)
    assert adv.dtype == torch.float32
    torch.testing.assert_close(adv, torch.tensor([[3.0, 2.0, 1.0]] * 2))
    torch.testing.assert_close(ret, adv)


def test_gae_bad_inputs():
    r = torch.zeros(2, 3)
    with pytest.raises(ValueError, match="values has shape"):
        gae_advantages(r, torch.zeros(2, 4), gamma=0.9, lam=0.9)
    with pytest.raises(ValueError, match="mask is empty"):
        gae_advantages(r, r, gamma=0.9, lam=0.9, mask=torch.zeros(2, 3, dtype=torch.bool))
    with pytest.raises(ValueError, match="mask has shape"):
        gae_advantages(r, r, gamma=0.9, lam=0.9, mask=torch.ones(3, 2, dtype=torch.bool))
    with pytest.raises(ValueError, match="rewards contains NaN"):
        gae_advantages(torch.tensor([[0.0, float("nan")]]), torch.zeros(1, 2), gamma=0.9, lam=0.9)
    with pytest.raises(ValueError, match="values contains NaN or inf"):
        gae_advantages(torch.zeros(1, 2), torch.tensor([[0.0, float("inf")]]), gamma=0.9, lam=0.9)
    with pytest.raises(ValueError, match="truncated requires next_values"):
        gae_advantages(r, r, gamma=0.9, lam=0.9, truncated=torch.zeros(2, 3, dtype=torch.bool))
    with pytest.raises(ValueError, match="lam must be in"):
        gae_advantages(r, r, gamma=0.9, lam=1.5)
    with pytest.raises(ValueError, match="gamma must be in"):
        discounted_returns(r, gamma=-0.1)
    with pytest.raises(ValueError, match="non-empty time dimension"):
        gae_advantages(torch.zeros(2, 0), torch.zeros(2, 0), gamma=0.9, lam=0.9)

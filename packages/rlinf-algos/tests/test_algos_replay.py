import pytest
import torch

from rlinf.algos import ReplayBuffer, sample_mixed


def items(start, stop):
    idx = torch.arange(start, stop)
    return {"obs": idx.float()[:, None].repeat(1, 3), "act": idx.float()[:, None], "id": idx}


def test_ring_overwrites_oldest_first():
    buf = ReplayBuffer(4)
    buf.add(items(0, 3))
    assert len(buf) == 3
    assert buf.ordered()["id"].tolist() == [0, 1, 2]
    buf.add(items(3, 6))
    assert len(buf) == 4
    assert buf.ordered()["id"].tolist() == [2, 3, 4, 5]
    torch.testing.assert_close(buf.ordered()["obs"][:, 0], torch.tensor([2.0, 3.0, 4.0, 5.0]))
    buf.add(items(6, 7))
    assert buf.ordered()["id"].tolist() == [3, 4, 5, 6]


def test_add_more_than_capacity_keeps_newest():
    buf = ReplayBuffer(4)
    buf.add(items(0, 10))
    assert buf.ordered()["id"].tolist() == [6, 7, 8, 9]
    buf.add(items(10, 11))
    assert buf.ordered()["id"].tolist() == [7, 8, 9, 10]


def test_sampling_is_uniform_reproducible_and_consistent():
    buf = ReplayBuffer(8)
    buf.add(items(0, 5))
    a = buf.sample(2000, torch.Generator().manual_seed(0))
    b = buf.sample(2000, torch.Generator().manual_seed(0))
    assert torch.equal(a["id"], b["id"])
    assert a["obs"].shape == (2000, 3) and a["act"].shape == (2000, 1)
    # fields of one sample belong together
    torch.testing.assert_close(a["obs"][:, 0], a["id"].float())
    counts = torch.bincount(a["id"], minlength=8)
    assert counts[5:].sum() == 0
    assert bool((counts[:5] > 320).all()) and bool((counts[:5] < 480).all())


def test_sample_mixed_ratio():
    online, demos = ReplayBuffer(10), ReplayBuffer(10)
    online.add(items(0, 10))
    neg = items(0, 10)
    demos.add({k: -v - 1 for k, v in neg.items()})
    batch = sample_mixed(online, demos, 64, ratio=0.5, generator=torch.Generator().manual_seed(0))
    assert batch["id"].shape == (64,)
    assert int((batch["id"] >= 0).sum()) == 32
    assert bool((batch["id"][:32] >= 0).all()) and bool((batch["id"][32:] < 0).all())
    batch = sample_mixed(online, demos, 10, ratio=0.25)
    assert int((batch["id"] >= 0).sum()) == round(2.5)
    only = sample_mixed(online, demos, 8, ratio=1.0)
    assert bool((only["id"] >= 0).all())


def test_save_load_round_trip(tmp_path):
    buf = ReplayBuffer(4)
    buf.add(items(0, 6))
    path = tmp_path / "buf.pt"
    buf.save(path)
    loaded = ReplayBuffer.load(path)
    assert len(loaded) == 4 and loaded.capacity == 4
    for k, v in buf.ordered().items():
        assert torch.equal(loaded.ordered()[k], v)
    # the ring position survives: the next add overwrites the same oldest item
    buf.add(items(6, 7))
    loaded.add(items(6, 7))
    assert loaded.ordered()["id"].tolist() == buf.ordered()["id"].tolist() == [3, 4, 5, 6]
    g1, g2 = torch.Generator().manual_seed(3), torch.Generator().manual_seed(3)
    assert torch.equal(buf.sample(16, g1)["id"], loaded.sample(16, g2)["id"])


def test_save_load_partial(tmp_path):
    buf = ReplayBuffer(10)
    buf.add(items(0, 3))
    buf.save(tmp_path / "b.pt")
    loaded = ReplayBuffer.load(tmp_path / "b.pt")
    assert loaded.ordered()["id"].tolist() == [0, 1, 2]
    loaded.add(items(3, 4))
    assert loaded.ordered()["id"].tolist() == [0, 1, 2, 3]


def test_clear():
    buf = ReplayBuffer(3)
    buf.add(items(0, 2))
    buf.clear()
    assert len(buf) == 0
    with pytest.raises(ValueError, match="empty ReplayBuffer"):
        buf.sample(1)


def test_replay_bad_inputs(tmp_path):
    buf = ReplayBuffer(4)
    with pytest.raises(ValueError, match="cannot sample from an empty ReplayBuffer"):
        buf.sample(2)
    buf.add(items(0, 2))
    with pytest.raises(ValueError, match=r"missing \['id'\], extra \['foo'\]"):
        buf.add({"obs": torch.zeros(1, 3), "act": torch.zeros(1, 1), "foo": torch.zeros(1)})
    with pytest.raises(
        ValueError, match=r"batch\['obs'\] has item shape \(4,\), buffer holds \(3,\)"
    ):
        buf.add({"obs": torch.zeros(1, 4), "act": torch.zeros(1, 1), "id": torch.zeros(1)})
    with pytest.raises(ValueError, match="disagree on the leading"):
        buf.add({"obs": torch.zeros(2, 3), "act": torch.zeros(1, 1), "id": torch.zeros(1)})
    with pytest.raises(ValueError, match=r"batch\['act'\] contains NaN"):
        buf.add(
            {
                "obs": torch.zeros(1, 3),
                "act": torch.full((1, 1), float("nan")),
                "id": torch.zeros(1),
            }
        )
    with pytest.raises(ValueError, match="capacity must be a positive int"):
        ReplayBuffer(0)
    with pytest.raises(ValueError, match="ratio must be in"):
        sample_mixed(buf, buf, 4, ratio=1.5)
    other = ReplayBuffer(4)
    other.add({"x": torch.zeros(2)})
    with pytest.raises(ValueError, match="different schemas"):
        sample_mixed(buf, other, 4)
    with pytest.raises(ValueError, match="cannot sample from an empty"):
        sample_mixed(buf, ReplayBuffer(2), 4)
    assert len(buf) == 2  # failed adds left the buffer untouched

"""DrQ random shifts: exact outputs for given shifts, and the random draw's range."""

from __future__ import annotations

import pytest
import torch

from rlinf.algos import random_shift, shift_images


def _image() -> torch.Tensor:
    # [1, 3, 3, 1]: pixel (i, j) holds 10 * i + j.
    return torch.tensor([[0, 1, 2], [10, 11, 12], [20, 21, 22]], dtype=torch.uint8)[
        None, :, :, None
    ]


def test_shift_by_hand():
    img = _image()
    down_right = shift_images(img, torch.tensor([[1, 1]]))[0, :, :, 0]
    # Content moves up-left; the last row and column repeat the edge.
    assert down_right.tolist() == [[11, 12, 12], [21, 22, 22], [21, 22, 22]]
    up = shift_images(img, torch.tensor([[-1, 0]]))[0, :, :, 0]
    assert up.tolist() == [[0, 1, 2], [0, 1, 2], [10, 11, 12]]
    left_far = shift_images(img, torch.tensor([[0, -5]]))[0, :, :, 0]
    assert left_far.tolist() == [[0, 0, 0], [10, 10, 10], [20, 20, 20]]
    assert shift_images(img, torch.tensor([[0, 0]])).equal(img)
    assert down_right.dtype == torch.uint8


def test_each_image_its_own_shift_and_channels_move_together():
    img = torch.cat([_image(), _image() + 100], dim=-1)  # [1, 3, 3, 2]
    batch = torch.cat([img, img])  # [2, 3, 3, 2]
    out = shift_images(batch, torch.tensor([[0, 1], [1, 0]]))
    assert out[0, :, :, 0].tolist() == [[1, 2, 2], [11, 12, 12], [21, 22, 22]]
    assert out[0, :, :, 1].tolist() == [[101, 102, 102], [111, 112, 112], [121, 122, 122]]
    assert out[1, :, :, 0].tolist() == [[10, 11, 12], [20, 21, 22], [20, 21, 22]]


def test_random_shift_matches_its_draw():
    images = torch.arange(2 * 6 * 5 * 3, dtype=torch.float32).reshape(2, 6, 5, 3)
    out = random_shift(images, pad=2, generator=torch.Generator().manual_seed(7))
    shifts = torch.randint(-2, 3, (2, 2), generator=torch.Generator().manual_seed(7))
    assert out.equal(shift_images(images, shifts))
    draws = torch.randint(-2, 3, (1000, 2), generator=torch.Generator().manual_seed(0))
    assert set(draws.flatten().tolist()) == {-2, -1, 0, 1, 2}
    assert random_shift(images, pad=0).equal(images)


def test_bad_input_is_named():
    with pytest.raises(ValueError, match=r"images must be \[B, H, W, C\]"):
        shift_images(torch.zeros(3, 3, 1), torch.zeros(1, 2, dtype=torch.long))
    with pytest.raises(ValueError, match=r"shifts must be an integer \[B, 2\]"):
        shift_images(_image(), torch.zeros(1, 2))
    with pytest.raises(ValueError, match="pad must be an int >= 0"):
        random_shift(_image(), pad=-1)
